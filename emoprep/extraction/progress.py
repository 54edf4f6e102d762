"""What the user sees on the terminal: the progress bar of a run and its closing summary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..console import console
from ..format.names import MANIFEST
from ..format.release_counts import describe_count_differences
from .pipeline import RunObserver, RunSummary

ISSUE_NOTES = {
    "clamped": "negative starts set to 0",
    "clamped_end": "ends past the media set to its end",
}
"""What the reader did to the rows behind a count, for kinds whose name alone does not say."""


class RichObserver(RunObserver):
    """Stage lines and a bar over shards on stderr, drawn with rich."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = None

    def stage(self, message: str) -> None:
        self.progress.console.print(f"[dim]{message}[/]")

    def warning(self, message: str) -> None:
        self.progress.console.print(f"[yellow]warning:[/] {escape(message)}")

    def shards(self, done: int, total: int) -> None:
        if self.task is None:
            self.task = self.progress.add_task("shards", total=total)
        self.progress.update(self.task, completed=done)


class WarningsOnly(RunObserver):
    """``--quiet``: no bar and no stage lines, but warnings still reach stderr."""

    def warning(self, message: str) -> None:
        console().print(f"[yellow]warning:[/] {escape(message)}")


@contextmanager
def progress_bar(disable: bool = False) -> Iterator[RunObserver]:
    """The observer the CLI hands to :func:`~emoprep.extraction.run_extract`."""
    if disable:
        yield WarningsOnly()
        return
    bar = Progress(
        TextColumn("[bold]shards"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console(),
    )
    with bar:
        yield RichObserver(bar)


def print_summary(s: RunSummary) -> None:
    """One table: what was written, what was skipped, what failed and where to look."""
    c = console()
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_row("output", str(s.out_dir))
    t.add_row("ran on", s.executor)
    t.add_row("utterances", str(s.utterances) + "  (" + ", ".join(f"{k} {v}" for k, v in sorted(s.rows_per_split.items())) + ")")
    t.add_row("shards", f"{s.shards}: {s.written} written, {s.skipped} already complete (skipped)")
    if s.reader_issues:
        t.add_row("reader", ", ".join(f"{k} {v}" + (f" ({ISSUE_NOTES[k]})" if k in ISSUE_NOTES else "")
                                      for k, v in sorted(s.reader_issues.items())))
    counts = describe_count_differences(s.count_differences)
    if counts:
        t.add_row("counts", f"[dim]{escape(counts)}[/]")
    if s.glove:
        rate = f"{s.oov_rate:.1%}" if s.oov_rate is not None else "n/a"
        t.add_row("text", f"GloVe vectors from {s.glove}; OOV rate {rate}")
    else:
        t.add_row("text", "tokens only: no GloVe file given (--glove or $EMOPREP_GLOVE), vector columns are null")
    fail_style = "yellow" if s.failure_records else "green"
    t.add_row("failures", f"[{fail_style}]{s.failed_utterances} utterance(s), {s.failure_records} record(s)[/]"
              + ("  -> failures.parquet" if s.failure_records else ""))
    t.add_row("time", f"{s.seconds:.1f} s")
    c.print(t)
    if s.shard_errors:
        c.print(f"[bold red]{len(s.shard_errors)} shard(s) did not complete[/]; no manifest written. Rerun the same command to resume.")
        for name, err in sorted(s.shard_errors.items())[:10]:
            c.print(f"  {name}: {err}")
    else:
        c.print(f"[bold green]complete[/]: {s.out_dir}/{MANIFEST}")
