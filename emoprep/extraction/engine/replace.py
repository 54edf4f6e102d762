"""Say, before any work, when a run would replace shards written with another configuration.

A shard is reused only by a run of the same configuration (its footer's ``emoprep.config_hash``), so
a run with other settings into the same ``--out`` recomputes every shard and the earlier run's
results are gone.  That is never done silently: the run refuses unless ``--overwrite`` says to
replace them.

An interrupted replacing run must stay resumable without the flag, as every run is: the run that
starts writing into a folder records its configuration hash in ``utterances.parquet`` (the plan of
record), and a later run of that same configuration may carry on replacing what its start was
allowed to replace.
"""

from __future__ import annotations

import json
from typing import Any

from ...errors import SetupError
from ...format.manifest import Manifest, read_manifest_or_none
from ...format.names import UTTERANCES, is_shard_name
from ...format.storage import Folder
from ..config import ExtractConfig
from .writer import footer_in

_MAX_DIFFERENCES = 6


def shards_by_other_configs(out: Folder, config_hash: str) -> dict[str, list[str]]:
    """``{config_hash: [shard file, ...]}`` of the readable shards in ``out`` written with another
    configuration (damaged or foreign files are not results: the run repairs or removes them).
    On object storage this lists the prefix and fetches each shard's footer only."""
    found: dict[str, list[str]] = {}
    for name in out.names():
        if not is_shard_name(name):
            continue
        other = (footer_in(out, name) or {}).get("config_hash")
        if other and other != config_hash:
            found.setdefault(str(other), []).append(name)
    return found


def plan_config_hash(out: Folder) -> str | None:
    """The configuration hash of the last run that started writing into ``out`` (None if unknown)."""
    return (footer_in(out, UTTERANCES) or {}).get("config_hash")


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for each setting that differs (values compared as JSON)."""
    a = _flat(json.loads(json.dumps(old, default=str)))
    b = _flat(json.loads(json.dumps(new, default=str)))
    return [f"{k}: {json.dumps(a.get(k))} -> {json.dumps(b.get(k))}" for k in sorted(a.keys() | b.keys())
            if a.get(k) != b.get(k)]


def _previous_run(out: Folder, config_hash: str) -> Manifest | None:
    manifest = read_manifest_or_none(out)
    return manifest if manifest is not None and manifest.config_hash == config_hash else None


def check_replacement(out: Folder, config: ExtractConfig, overwrite: bool) -> str | None:
    """None when ``out`` holds no shards of another configuration; else a line saying what this run
    replaces, when it may (``overwrite``, or resuming a run that was allowed to).

    Raises :class:`SetupError`, naming the other configuration(s) and what differs, when it may not.
    """
    others = shards_by_other_configs(out, config.config_hash)
    if not others:
        return None
    parts = []
    for other, files in others.items():
        part = f"{len(files)} shard(s) written with config {other}"
        previous = _previous_run(out, other)
        if previous is not None:
            part += f" (a complete run of {previous.created or '?'})"
            diff = config_differences(previous.config, config.hashed_dict())
            if diff:
                more = f", and {len(diff) - _MAX_DIFFERENCES} more" if len(diff) > _MAX_DIFFERENCES else ""
                part += f"; settings changed: {'; '.join(diff[:_MAX_DIFFERENCES])}{more}"
        parts.append(part)
    held = f"{out.url} holds " + ", ".join(parts)
    this = f"this run (config {config.config_hash})"
    if overwrite:
        return f"{held}; {this} replaces them (--overwrite)"
    if plan_config_hash(out) == config.config_hash:
        return f"{held}; {this} resumes replacing them (a run of this configuration began it with --overwrite)"
    raise SetupError(
        f"{held}. {this[0].upper()}{this[1:]} would replace them, since shards are reused only by the "
        "configuration that wrote them. Pass --overwrite to replace them, or choose another --out to keep both."
    )
