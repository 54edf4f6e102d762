"""One self-contained HTML page: sections of text, tables and images, every image embedded as a
``data:`` URI so the file can be mailed, attached to an issue or opened offline.

No JavaScript and no external assets: a report must open the same way in a browser years later, and
there is nothing in it that could fail to load.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232a; margin: 0; background: #f6f7f9; }
main { max-width: 1180px; margin: 0 auto; padding: 16px 24px 48px; }
header { background: #22303c; color: #f1f4f7; padding: 18px 24px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #b9c6d2; }
nav { margin: 14px 0 4px; font-size: 14px; }
nav a { margin-right: 14px; color: #2a6db0; text-decoration: none; }
section { background: #fff; border: 1px solid #e1e5ea; border-radius: 6px; padding: 4px 18px 14px; margin: 16px 0; }
h2 { font-size: 18px; margin: 14px 0 8px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
p.note { color: #5b6673; font-size: 13px; margin: 6px 0; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border-bottom: 1px solid #e6e9ed; padding: 3px 10px; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
td.text, th.text { text-align: left; max-width: 520px; }
th { background: #f0f2f5; font-weight: 600; }
figure { margin: 8px 0 12px; }
img { max-width: 100%; height: auto; }
figure img { border: 1px solid #eef0f3; }
figcaption { color: #5b6673; font-size: 13px; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid #e1e5ea; border-radius: 4px; padding: 8px; width: 520px; max-width: 100%; font-size: 13px; }
.card img { max-width: 100%; height: auto; display: block; margin-top: 6px; }
pre { font-size: 12px; background: #f6f7f9; padding: 8px; overflow-x: auto; }
details { margin: 6px 0; }
summary { cursor: pointer; }
.bad { color: #b3261e; } .good { color: #1e7b34; }
code { font-size: 12.5px; background: #f0f2f5; padding: 0 3px; border-radius: 3px; }
"""


def png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """Numbers as people read them: thousands separators, 3 significant decimals for fractions."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], text_columns: Sequence[int] = ()) -> str:
    """An HTML table; cells are escaped and formatted, ``text_columns`` are left-aligned prose."""
    def cell(tag: str, i: int, value: Any) -> str:
        cls = ' class="text"' if i in text_columns else ""
        return f"<{tag}{cls}>{esc(fmt(value))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def image(png: bytes, alt: str, caption: str | None = None, width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    img = f'<img src="{png_uri(png)}" alt="{esc(alt)}"{size}>'
    return f"<figure>{img}<figcaption>{esc(caption)}</figcaption></figure>" if caption else img


def details(summary: str, body: str, open_: bool = False) -> str:
    """A collapsible block (plain HTML, no script) holding preformatted ``body`` text."""
    return f"<details{' open' if open_ else ''}><summary>{esc(summary)}</summary><pre>{esc(body)}</pre></details>"


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def paragraph(text: str) -> str:
    return f"<p>{esc(text)}</p>"


@dataclass
class Section:
    """A titled block of the page; ``parts`` are HTML fragments built with this module's helpers."""

    title: str
    parts: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")

    def add(self, *fragments: str) -> Section:
        self.parts.extend(fragments)
        return self

    def html(self) -> str:
        return f'<section id="{self.anchor}"><h2>{esc(self.title)}</h2>{"".join(self.parts)}</section>'


def render(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    nav = "".join(f'<a href="#{s.anchor}">{esc(s.title)}</a>' for s in sections)
    body = "".join(s.html() for s in sections)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>"
        f"<body><header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
        f"<main><nav>{nav}</nav>{body}</main></body></html>\n"
    )


def write_page(path: Path, title: str, subtitle: str, sections: Sequence[Section]) -> Path:
    """Write the page next to its final name and rename it, so a reader never sees half a report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(title, subtitle, sections), encoding="utf-8")
    tmp.replace(path)
    return path
