"""Render ``schemas/utterance.v<N>.json`` as the Markdown page ``schemas/README.md``.

The JSON file is the contract; the page is generated from it (``emoprep schema --markdown``) and a
test fails when the two drift apart, so the docs can never describe another schema than the code.
"""

from __future__ import annotations

from .schema import SCHEMA_VERSION, schema_document


def _features(col: dict) -> str:
    names = col.get("feature_names")
    if not names:
        return ""
    if len(names) <= 40:
        return ", ".join(f"`{n}`" for n in names)
    return ", ".join(f"`{n}`" for n in names[:6]) + f", … ({len(names)} names, see the JSON)"


def render_markdown(version: int = SCHEMA_VERSION) -> str:
    doc = schema_document(version)
    out = [
        f"# emoprep output schema v{doc['version']}",
        "",
        "<!-- generated from utterance.v%d.json by `emoprep schema --markdown`; do not edit by hand -->" % version,
        "",
        doc["description"],
        "",
        "Types use Arrow notation; `fixed_size_list<T>[N]` fixes a dimension in the type itself. A column",
        "that is `null` for a row was not extracted: disabled for the run (see `manifest.json` →",
        "`modalities`) or failed for that utterance (see `failures.parquet`). Fixed-size elements are never",
        "null: a missing element (e.g. the AUs of a frame without a face) has all its values null.",
        "",
        "## File metadata (Parquet key-value)",
        "",
        "| key | value |",
        "|---|---|",
    ]
    out += [f"| `{k}` | {v} |" for k, v in doc["file_metadata"].items()]
    groups: dict[str, list[dict]] = {}
    for col in doc["columns"]:
        groups.setdefault(col["group"], []).append(col)
    for group, cols in groups.items():
        out += ["", f"## {group}", "", "| column | type | nullable | unit / window | description | null means |", "|---|---|---|---|---|---|"]
        for c in cols:
            unit = c.get("unit", "")
            if "window_s" in c:
                unit = f"window {c['window_s']} s, hop {c['hop_s']} s"
            desc = c["description"]
            feats = _features(c)
            if feats:
                desc += f" Features: {feats}"
            out.append(
                f"| `{c['name']}` | `{c['type']}` | {'yes' if c['nullable'] else 'no'} | {unit} | "
                f"{desc.replace('|', '/')} | {c.get('null_means', '').replace('|', '/')} |"
            )
    out += [
        "",
        "## Changelog",
        "",
        "- v1: first published schema.",
        "",
    ]
    return "\n".join(out)
