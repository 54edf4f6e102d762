"""Do the workers compute what this run would compute?  Checked before any shard task is submitted.

On a cluster this run joined (``--scheduler``/``--scheduler-file``) the workers are other machines'
installations: a worker with another emoprep version or another extraction backend (a different
librosa, a missing OpenFace binary, another GloVe file) would write shards that differ from their
neighbours' under one configuration hash.  Every worker reports its version and what
:func:`~emoprep.extraction.engine.worker.probe_extractors` says of its extractors; the run goes on
only when all reports equal the reference (this machine's own on a joined cluster, else the first
worker's), and otherwise stops with a SetupError naming the worker, the value and both sides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import SetupError
from ..config import ExtractConfig
from ..media.fetch import MediaAccess
from .worker import fetch_resources, probe_extractors


@dataclass(frozen=True)
class WorkerReport:
    """What one process would put in the manifest: the emoprep version and the backends' descriptions."""

    emoprep: str
    backends: dict[str, Any]


def worker_report(config: ExtractConfig, access: MediaAccess | None = None) -> WorkerReport:
    """This process's report; runs on every worker first (fetching its resources and loading its
    models, so that every worker starts its shard tasks ready)."""
    from ... import version  # read now, on the worker: the installed version there

    fetch_resources(config, access)
    return WorkerReport(version.__version__, probe_extractors(config))


def differences(ours: Any, theirs: Any, where: str = "") -> list[str]:
    """Where two reports' values differ, as ``key.path: ours != theirs`` lines (all of them)."""
    if isinstance(ours, Mapping) and isinstance(theirs, Mapping):
        out: list[str] = []
        for key in sorted(set(ours) | set(theirs), key=str):
            path = f"{where}.{key}" if where else str(key)
            out += differences(ours.get(key, "<absent>"), theirs.get(key, "<absent>"), path)
        return out
    return [] if ours == theirs else [f"{where}: {ours!r} here, {theirs!r} on the worker"]


def agreed_backends(reports: Mapping[str, WorkerReport], own: WorkerReport | None = None) -> dict[str, Any]:
    """The backends every worker agrees on (for the manifest); a SetupError naming each worker that
    differs from ``own`` (this machine; None: the first worker's report is the reference)."""
    if not reports:
        raise SetupError("the cluster has no workers; start some (or wait for them) and rerun")
    names = list(reports)
    reference = own if own is not None else reports[names[0]]
    problems = []
    for name in names:
        report = reports[name]
        found = differences(reference.emoprep, report.emoprep, "emoprep version")
        found += differences(reference.backends, report.backends, "backends")
        problems += [f"worker {name}: {line}" for line in found]
    if problems:
        side = "this machine" if own is not None else f"worker {names[0]}"
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise SetupError(
            f"the cluster's workers do not match {side} ('here'); nothing was submitted:\n  {shown}\n"
            "install the same emoprep version and extraction backends on every worker (docs/cluster.md)"
        )
    return dict(reference.backends)
