"""One writer per output folder, no silent replacement of another configuration's shards, and
`inspect --verify` against the manifest: the whole DAG on the small demo, text only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from cli import main
from emoprep.extraction.config import build_config
from emoprep.errors import SetupError
from emoprep.extraction import RunObserver, run_extract
from emoprep.extraction.engine.lock import LOCK_NAME, OutputLocked
from emoprep.format.verify import verify_output

TEXT_ONLY = {"modalities": ["text"], "shard_size": 3}
OTHER = {**TEXT_ONLY, "text": {"drop_nonverbal": False}}
THIRD = {**TEXT_ONLY, "visual": {"face_size": 112}}

HOLDER = """
import sys
from pathlib import Path
from emoprep.extraction.engine.lock import OutputLock
lock = OutputLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
sys.stdin.readline()
"""


class Stages(RunObserver):
    """Records the stage lines; ``on_shards(done)`` runs whenever the count of finished shards is told
    (a hook inside the run that needs no knowledge of the pipeline's internals)."""

    def __init__(self, on_shards: Callable[[int], None] | None = None) -> None:
        self.lines: list[str] = []
        self.on_shards = on_shards

    def stage(self, message: str) -> None:
        self.lines.append(message)

    def shards(self, done: int, total: int) -> None:
        if self.on_shards:
            self.on_shards(done)


def _interrupt_after_first_shard(done: int) -> None:
    if done >= 1:
        raise KeyboardInterrupt  # Ctrl-C once one shard is written


def _shard_state(out: Path) -> dict[str, tuple[int, str]]:
    """File -> (mtime, config hash) of every shard in ``out``."""
    return {
        p.name: (p.stat().st_mtime_ns, pq.read_schema(p).metadata[b"emoprep.config_hash"].decode())
        for p in sorted(out.glob("*-of-*.parquet"))
    }


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen]:
    """Another process that holds the lock of ``tmp_path / "out"`` (a run in progress, for our purposes)."""
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_the_run_holds_the_lock_throughout_and_removes_it(small_demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    seen = []
    observer = Stages(lambda done: seen.append(json.loads((out / LOCK_NAME).read_text())["pid"]))
    summary = run_extract(build_config("demo", TEXT_ONLY), small_demo, out, synchronous=True, observer=observer)
    assert summary.complete and len(seen) > summary.shards  # told before the first shard and after each
    assert set(seen) == {os.getpid()}, "the lock is held while shards are written (not removed as a leftover)"
    assert not (out / LOCK_NAME).exists()
    assert verify_output(out) == (summary.shards + 2, [])


def test_a_second_run_fails_fast_while_another_holds_the_folder(small_demo: Path, tmp_path: Path,
                                                                holder: subprocess.Popen) -> None:
    out = tmp_path / "out"
    t = time.perf_counter()
    with pytest.raises(OutputLocked, match=f"pid {holder.pid} on host .*, started "):
        run_extract(build_config("demo", TEXT_ONLY), small_demo, out, synchronous=True)
    assert time.perf_counter() - t < 5, "refused before reading the dataset"
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]
    result = CliRunner().invoke(main, ["extract", "--dataset", "demo", "--root", str(small_demo), "--out", str(out),
                                       "--modalities", "text", "--synchronous", "--quiet"])
    assert result.exit_code == 2
    said = " ".join(result.output.split())  # rich wraps long lines
    assert "in use by another emoprep run" in said and f"pid {holder.pid}" in said


def test_a_killed_runs_lock_is_taken_over(small_demo: Path, tmp_path: Path, holder: subprocess.Popen) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    stages = Stages()
    summary = run_extract(build_config("demo", TEXT_ONLY), small_demo, tmp_path / "out", synchronous=True,
                          observer=stages)
    assert summary.complete
    assert any(f"gone (pid {holder.pid} on host" in line for line in stages.lines)


def test_the_lock_is_released_on_ctrl_c_and_a_refused_run_leaves_no_folder(small_demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_extract(build_config("demo", TEXT_ONLY), small_demo, out, synchronous=True,
                    observer=Stages(_interrupt_after_first_shard))
    assert len(list(out.glob("*-of-*.parquet"))) == 1 and not (out / LOCK_NAME).exists()
    fresh = tmp_path / "never"
    with pytest.raises(SetupError, match="GloVe file not found"):
        run_extract(build_config("demo", TEXT_ONLY), small_demo, fresh, glove=str(tmp_path / "missing.txt"))
    assert not fresh.exists()


def test_another_configuration_is_refused_then_replaced_with_overwrite_and_resumed(
    small_demo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first_cfg, other_cfg = build_config("demo", TEXT_ONLY), build_config("demo", OTHER)
    first = run_extract(first_cfg, small_demo, out, synchronous=True)
    before = _shard_state(out)
    assert first.complete and {h for _, h in before.values()} == {first_cfg.config_hash}

    # Refused, naming both configurations and what changed, before anything is touched.
    with pytest.raises(SetupError) as refused:
        run_extract(other_cfg, small_demo, out, synchronous=True)
    message = str(refused.value)
    assert f"{len(before)} shard(s) written with config {first_cfg.config_hash} (a complete run" in message
    assert f"config {other_cfg.config_hash}" in message and "--overwrite" in message
    assert "text.drop_nonverbal: true -> false" in message
    assert _shard_state(out) == before and (out / "manifest.json").exists()
    assert not (out / LOCK_NAME).exists()

    # --overwrite: replaced, and said so.  This run is interrupted once its first shard is written.
    stages = Stages(_interrupt_after_first_shard)
    with pytest.raises(KeyboardInterrupt):
        run_extract(other_cfg, small_demo, out, synchronous=True, overwrite=True, observer=stages)
    assert any(f"config {other_cfg.config_hash}) replaces them (--overwrite)" in line for line in stages.lines)
    assert sorted(h for _, h in _shard_state(out).values()).count(other_cfg.config_hash) == 1

    # A third configuration is refused: the folder holds shards of two others.
    with pytest.raises(SetupError, match=f"config {first_cfg.config_hash}.*config {other_cfg.config_hash}|"
                                         f"config {other_cfg.config_hash}.*config {first_cfg.config_hash}"):
        run_extract(build_config("demo", THIRD), small_demo, out, synchronous=True)

    # The replacing run resumes without the flag: its start was allowed to replace the old shards.
    stages = Stages()
    resumed = run_extract(other_cfg, small_demo, out, synchronous=True, observer=stages)
    assert resumed.complete and resumed.skipped == 1 and resumed.written == resumed.shards - 1
    assert any("resumes replacing them" in line for line in stages.lines)
    assert {h for _, h in _shard_state(out).values()} == {other_cfg.config_hash}
    assert json.loads((out / "manifest.json").read_text())["config_hash"] == other_cfg.config_hash

    # And going back to the first configuration is refused again.
    with pytest.raises(SetupError, match="--overwrite"):
        run_extract(first_cfg, small_demo, out, synchronous=True)


def test_verify_reports_a_flipped_byte_a_truncation_a_missing_and_an_unlisted_file(small_demo: Path,
                                                                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_extract(build_config("demo", TEXT_ONLY), small_demo, out, synchronous=True)
    runner = CliRunner()
    clean = runner.invoke(main, ["inspect", str(out), "--verify"])
    assert clean.exit_code == 0, clean.output
    assert "file(s) match manifest.json" in clean.output

    shards = [s["file"] for s in json.loads((out / "manifest.json").read_text())["shards"]]
    flipped, truncated, missing = shards[0], shards[1], shards[2]
    data = bytearray((out / flipped).read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, size unchanged
    (out / flipped).write_bytes(bytes(data))
    (out / truncated).write_bytes((out / truncated).read_bytes()[:-10])
    (out / missing).unlink()
    (out / "train-00099-of-00099.parquet").write_bytes((out / shards[3]).read_bytes())
    (out / "failures.parquet").write_bytes(b"not parquet")

    checked, problems = verify_output(out)
    assert checked == len(shards) + 2
    assert {(p.file, p.kind) for p in problems} == {
        (flipped, "sha256"), (truncated, "size"), (missing, "missing"),
        ("train-00099-of-00099.parquet", "unlisted"), ("failures.parquet", "unreadable"),
    }
    result = runner.invoke(main, ["inspect", str(out), "--verify"])
    assert result.exit_code == 1
    assert f"{flipped}: content differs" in result.output and "5 problem(s)" in result.output
