"""``emoprep check-raw``: validate a raw dataset tree before any extraction runs.

It looks at the layout (the folders the reader needs), runs the reader (which parses every
transcript and label file but decodes no media; on a URL root, over a local mirror of the metadata,
exactly as ``extract`` reads it: :func:`~emoprep.extraction.readers.read_dataset`) and reports what
an extraction would get:
utterances per split and class, missing and empty media, unparseable lines with ``file:line``, and
how the counts compare with the full release's (``expected:`` in ``pipelines/<dataset>.yaml``).
A count mismatch is *information* (a subset or a different option gives other counts), never an
error; the report is not ``ok`` only when the tree cannot be read at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from ...errors import EmoprepError
from ...format.storage import Folder, is_file, is_url, redact
from ...format.release_counts import count_differences, describe_count_differences
from ..config import ExtractConfig, pipeline_defaults
from ..config.reader_options import default_option_strings
from ..records import SPLITS, ReaderIssue
from . import get_reader, read_dataset
from .base import ReadResult
from .layouts import IemocapLayout, MoseiLayout


@dataclass
class ExpectedCount:
    key: str
    expected: int
    found: int | None

    @property
    def matches(self) -> bool:
        return self.found == self.expected


@dataclass
class CheckReport:
    """Everything check-raw found; :meth:`render` formats it for the terminal."""

    dataset: str
    root: Path | str | None
    """A local folder or list file, or a URL (shown without credentials)."""
    layout_errors: list[str] = field(default_factory=list)
    layout_notes: list[str] = field(default_factory=list)
    reader_error: str | None = None
    result: ReadResult | None = None
    per_split: dict[str, int] = field(default_factory=dict)
    per_class: dict[str, dict[str, int]] = field(default_factory=dict)
    """label name (or ``unlabelled``) -> split -> utterances with that label."""
    per_category: dict[str, int] = field(default_factory=dict)
    empty_media: list[str] = field(default_factory=list)
    expected: list[ExpectedCount] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.layout_errors and self.reader_error is None

    def issues(self, kind: str) -> list[ReaderIssue]:
        return [i for i in (self.result.issues if self.result else []) if i.kind == kind]

    def render(self, max_items: int = 20) -> str:
        out = [f"check-raw: {self.dataset} at {self.root if self.root is not None else '(built-in)'}"]
        for e in self.layout_errors:
            out.append(f"  ERROR  {e}")
        for n in self.layout_notes:
            out.append(f"  note   {n}")
        if self.reader_error:
            out.append(f"  ERROR  {self.reader_error}")
        if self.result is None:
            out.append("result: NOT READABLE")
            return "\n".join(out)
        r = self.result
        total = len(r.utterances)
        out.append(f"utterances: {total}  ({', '.join(f'{s} {self.per_split.get(s, 0)}' for s in SPLITS)})")
        if self.per_class:
            splits = [s for s in SPLITS if self.per_split.get(s)]
            width = max(len(k) for k in self.per_class) + 2
            out.append("per class:".ljust(width + 2) + "".join(s.rjust(8) for s in splits))
            for name, by in self.per_class.items():
                out.append(f"  {name.ljust(width)}" + "".join(str(by.get(s, 0)).rjust(8) for s in splits))
        if self.per_category:
            out.append("categories: " + ", ".join(f"{k} {v}" for k, v in sorted(self.per_category.items())))
        reader_counts = {k: v for k, v in sorted(r.counts.items()) if not k.startswith("split_")}
        out.append("reader counts: " + ", ".join(f"{k}={v}" for k, v in reader_counts.items()))
        for kind, title in (
            ("malformed", "unparseable lines"),
            ("missing_media", "missing media"),
            ("invalid", "invalid segments"),
            ("clamped", "clamped starts"),
            ("clamped_end", "ends past the media (set to its end)"),
        ):
            items = self.issues(kind)
            if items:
                out.append(f"{title}: {len(items)}")
                for i in items[:max_items]:
                    who = f" [{i.utterance_id}]" if i.utterance_id else ""
                    out.append(f"  {i.source}{who}: {i.message}")
                if len(items) > max_items:
                    out.append(f"  ... and {len(items) - max_items} more")
        if self.empty_media:
            out.append(f"empty media files (0 bytes; truncated download?): {len(self.empty_media)}")
            out.extend(f"  {p}" for p in self.empty_media[:max_items])
        for e in self.expected:
            if e.matches:
                out.append(f"expected {e.key}: {e.expected}  found {e.found}  (full release)")
        differing = describe_count_differences(count_differences(self.expected))
        if differing:
            out.append(f"info: {differing}")
        out.append("result: OK" if self.ok else "result: PROBLEMS (see ERROR lines)")
        return "\n".join(out)


class _LocalTree:
    """The layout questions, asked of a local folder (or list file)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def is_file(self) -> bool:
        return self.root.is_file()

    def is_dir(self, rel: str = "") -> bool:
        return (self.root / rel).is_dir()

    def sessions(self) -> set[str]:
        return {p.name for p in IemocapLayout(self.root).sessions()}


class _UrlTree:
    """The same questions, asked of a prefix on object storage from one listing of it (a "folder"
    there is a prefix that some object lies under)."""

    def __init__(self, url: str, options: Mapping[str, Any]) -> None:
        self.url, self.options = url, options

    @cached_property
    def files(self) -> set[str]:
        return set(Folder.of(self.url, self.options).files())

    def is_file(self) -> bool:
        return is_file(self.url, self.options)

    def is_dir(self, rel: str = "") -> bool:
        prefix = f"{rel.strip('/')}/" if rel else ""
        return any(f.startswith(prefix) for f in self.files)

    def sessions(self) -> set[str]:
        tops = {f.split("/", 1)[0] for f in self.files if "/" in f}
        return {t for t in tops if PurePosixPath(t).match(IemocapLayout.SESSION_GLOB)}


def _layout(dataset: str, root: Path | str | None, report: CheckReport,
            storage_options: Mapping[str, Any] | None = None) -> None:
    if root is None:
        return
    remote = is_url(str(root))
    tree = _UrlTree(str(root), storage_options or {}) if remote else _LocalTree(Path(root))
    shown = redact(str(root))
    if get_reader(dataset).name == "recordings":
        if not tree.is_file():
            report.layout_errors.append(f"{shown}: the recordings list does not exist")
        return
    if not tree.is_dir():
        report.layout_errors.append(f"{shown}: not a folder" + (" (nothing under this prefix)" if remote else ""))
        return
    layout: tuple[tuple[str, bool], ...] = MoseiLayout.FOLDERS if dataset == "mosei" else ()
    if dataset == "iemocap":
        present = tree.sessions()
        if not present:
            report.layout_errors.append(
                f"{shown}: no Session1..Session5 folders (give the IEMOCAP_full_release folder)"
            )
            return
        every = [IemocapLayout.session_name(n) for n in IemocapLayout.SESSIONS]
        missing_sessions = sorted(set(every) - present)
        if missing_sessions:
            report.layout_notes.append(f"sessions not present: {', '.join(missing_sessions)}")
        layout = IemocapLayout.folders([s for s in every if s in present])
    for rel, required in layout:
        if not tree.is_dir(rel):
            (report.layout_errors if required else report.layout_notes).append(f"missing folder {rel}/")


def _expected_value(value: Any, config: ExtractConfig) -> int | None:
    """An ``expected:`` entry: a number, or ``{"opt=value[,opt2=value2]": n, ..., default: n}``
    (the first entry whose conditions all hold for the run's dataset options, defaults included)."""
    options = default_option_strings(config.dataset) | dict(config.dataset_options)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        for key, n in value.items():
            conditions = [c.partition("=") for c in str(key).split(",")]
            if all(sep for _, sep, _ in conditions) and all(
                options.get(opt.strip()) == want.strip() for opt, _, want in conditions
            ):
                return int(n)
        return int(value["default"]) if "default" in value else None
    return None


def _found_count(key: str, result: ReadResult) -> int | None:
    if key == "utterances":
        return len(result.utterances)
    if key.startswith("split_"):
        return sum(1 for u in result.utterances if u.split == key[len("split_") :])
    return result.counts.get(key)


def check_raw(dataset: str, root: Path | str | None, config: ExtractConfig,
              storage_options: Mapping[str, Any] | None = None) -> CheckReport:
    """Validate ``root`` (a local path or a URL; ``storage_options`` for its store) for ``dataset`` and
    summarise what an extraction would read from it.  Empty media files are looked for on local
    media only (on object storage that would be one request per recording)."""
    remote = root is not None and is_url(str(root))
    if root is not None and not remote:
        root = Path(root).expanduser()
    report = CheckReport(dataset=dataset, root=redact(str(root)) if remote else root)
    _layout(dataset, root, report, storage_options)
    if report.layout_errors:
        return report
    try:
        result = read_dataset(dataset, root, config, storage_options)
    except EmoprepError as exc:
        report.reader_error = str(exc)
        return report
    report.result = result
    report.per_split = dict(Counter(u.split for u in result.utterances))
    per_class: dict[str, Counter] = {name: Counter() for name in result.label_names}
    categories: Counter[str] = Counter()
    seen_media: set[str] = set()
    for u in result.utterances:
        if u.labels.emotions is None:
            per_class.setdefault("unlabelled", Counter())[u.split] += 1
        else:
            for name, flag in zip(result.label_names, u.labels.emotions):
                if flag:
                    per_class[name][u.split] += 1
        if u.labels.category is not None:
            categories[u.labels.category] += 1
        for p in (u.video_path, u.audio_path):
            if p and p not in seen_media and not is_url(p):
                seen_media.add(p)
                try:
                    if Path(p).stat().st_size == 0:
                        report.empty_media.append(p)
                except OSError:
                    pass
    report.per_class = {k: dict(v) for k, v in per_class.items()}
    report.per_category = dict(categories)
    report.expected = compare_expected(dataset, config, result)
    return report


def compare_expected(dataset: str, config: ExtractConfig, result: ReadResult) -> list[ExpectedCount]:
    """What was read against the full release's counts (``expected:`` in the dataset's spec)."""
    out = []
    for key, value in (pipeline_defaults(dataset).get("expected") or {}).items():
        n = _expected_value(value, config)
        if n is not None:
            out.append(ExpectedCount(str(key), n, _found_count(str(key), result)))
    return out
