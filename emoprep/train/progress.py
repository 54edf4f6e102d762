"""What a training run shows on the terminal: stage lines, a bar per epoch, the final metric table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


class TrainingProgress:
    """Silent unless ``enabled`` (only the main process of a distributed run prints)."""

    def __init__(self, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self.console = console or Console(stderr=True, highlight=False)

    def stage(self, message: str) -> None:
        if self.enabled:
            self.console.print(f"[dim]{escape(message)}[/]")

    @contextmanager
    def epoch(self, epoch: int, epochs: int, batches: int) -> Iterator[Any]:
        """A bar over this epoch's batches showing the running loss; yields ``on_step(loss)``."""
        if not self.enabled:
            yield lambda loss: None
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task(f"epoch {epoch}/{epochs}", total=batches or None, loss=float("nan"))
            state = {"sum": 0.0, "n": 0}

            def on_step(loss: float) -> None:
                state["sum"] += loss
                state["n"] += 1
                progress.update(task, advance=1, loss=state["sum"] / state["n"])

            yield on_step

    def epoch_done(self, record: dict[str, Any], best: bool) -> None:
        if self.enabled:
            mark = " [green]best[/]" if best else ""
            self.console.print(
                f"epoch {record['epoch']:>3}: train loss {record['train_loss']:.4f}  valid loss {record['valid_loss']:.4f}  "
                f"valid avg F1 {record['valid_f1']:.4f}  ({record['seconds']:.1f} s){mark}"
            )

    def metrics_table(self, metrics: dict[str, Any], title: str, baseline: dict[str, Any] | None = None) -> None:
        """Per-class and average metrics of one split (Acc or WAcc by task), thresholds, support."""
        if not self.enabled:
            return
        acc = "wacc" if metrics["task"] == "multilabel" else "acc"
        table = Table(title=title, title_justify="left")
        for name in ("class", "threshold", acc.upper() if acc == "acc" else "WAcc", "F1", "precision", "recall", "positives"):
            table.add_column(name, justify="left" if name == "class" else "right")
        for name, m in metrics["per_class"].items():
            table.add_row(name, f"{m['threshold']:.2f}", f"{m[acc]:.3f}", f"{m['f1']:.3f}", f"{m['precision']:.3f}",
                          f"{m['recall']:.3f}", str(m["positives"]))
        avg = metrics["average"]
        table.add_row("[bold]average[/]", "", f"[bold]{avg[acc]:.3f}[/]", f"[bold]{avg['f1']:.3f}[/]", "", "", "")
        if baseline is not None:
            b = baseline["average"]
            table.add_row("[dim]all-positive[/]", "", f"[dim]{b[acc]:.3f}[/]", f"[dim]{b['f1']:.3f}[/]", "", "", "")
        self.console.print(table)
