"""The command line as a user meets it: help, exit codes, summary, inspect."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main


def _commands() -> list[str]:
    return sorted(main.commands)


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_real_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_top_level_help_lists_commands_and_version() -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["--help"]).output
    for command in ("extract", "inspect"):
        assert command in out
    assert runner.invoke(main, ["--version"]).exit_code == 0


def test_missing_glove_is_a_setup_error_before_any_work(small_demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["extract", "--dataset", "demo", "--root", str(small_demo), "--out", str(out),
               "--modalities", "text", "--glove", str(tmp_path / "missing.txt"), "--quiet"]
    )
    assert result.exit_code == 2
    assert "GloVe file not found" in result.output
    assert not list(out.glob("*-of-*.parquet"))


def test_unknown_dataset_and_bad_option_syntax(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(main, ["extract", "--dataset", "nope", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "unknown dataset" in r.output
    r = runner.invoke(main, ["extract", "--dataset", "demo", "--out", str(tmp_path), "--option", "novalue"])
    assert r.exit_code == 2 and "KEY=VALUE" in r.output


def test_extract_then_inspect_as_a_subprocess(small_demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "shards"
    cmd = [sys.executable, "-m", "emoprep", "extract", "--dataset", "demo", "--root", str(small_demo),
           "--out", str(out), "--modalities", "text", "--synchronous"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert "complete" in run.stderr and f"{manifest['counts']['utterances']}" in run.stderr
    assert "tokens only" in run.stderr  # the summary says no vectors were written
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already complete" in again.stderr
    assert f"{len(manifest['shards'])} already complete" in again.stderr
    shown = subprocess.run([sys.executable, "-m", "emoprep", "inspect", str(out)], capture_output=True, text=True)
    assert shown.returncode == 0
    for split in {s["split"] for s in manifest["shards"]}:
        assert f"{split}=" in shown.stderr
    assert "float[n x 300]" in shown.stderr and "failures: none" in shown.stderr


def test_inspect_of_an_unfinished_folder_says_so(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["inspect", str(tmp_path)])
    assert r.exit_code == 2 and "has not finished" in r.output


def test_failures_give_exit_status_3_and_a_count(small_demo: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "tree"
    shutil.copytree(small_demo, root)
    victim = sorted((root / "Raw/Videos/Full/Combined").glob("*.mp4"))[0]
    victim.write_bytes(b"not a video at all")
    (root / "Raw/Audio/Full/WAV_16000" / f"{victim.stem}.wav").unlink()
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "emoprep", "extract", "--dataset", "demo", "--root", str(root), "--out", str(out),
           "--modalities", "text,logmel", "--synchronous"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 3, run.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    n = manifest["counts"]["failed_utterances"]
    assert n > 0 and f"{n} utterance(s)" in run.stderr and "failures.parquet" in run.stderr


def test_ctrl_c_keeps_finished_shards_and_the_rerun_resumes(small_demo: Path, tmp_path: Path) -> None:
    import signal
    import time

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "emoprep", "extract", "--dataset", "demo", "--root", str(small_demo), "--out", str(out),
           "--modalities", "text,logmel,visual", "--shard-size", "1", "--synchronous", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("*-of-*.parquet")) and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert proc.returncode == 130, err
    assert "rerun the same command to resume" in err and not (out / "manifest.json").exists()
    kept = len(list(out.glob("*-of-*.parquet")))
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and f"{kept} already complete" in again.stderr


def test_train_paper_preset_without_albert_stops_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from emoprep.testing.shards import build_shard_folder
    from emoprep.train.inputs import Featurizer

    shards = build_shard_folder(tmp_path / "s", {"train": 8, "valid": 4}, crops=True, logmel=True, face_mesh=False)
    manifest = json.loads((shards / "manifest.json").read_text())
    (shards / "manifest.json").write_text(json.dumps({**manifest, "dataset": "iemocap"}))
    monkeypatch.delenv("EMOPREP_ALBERT", raising=False)

    def no_work(*args, **kwargs):
        raise AssertionError("the featuriser ran")

    monkeypatch.setattr(Featurizer, "fit", no_work)
    result = CliRunner().invoke(main, ["train", "mesm", "--preset", "paper", "--shards", str(shards), "--out",
                                       str(tmp_path / "run"), "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "--preset paper fine-tunes ALBERT" in result.output and "EMOPREP_ALBERT" in result.output
    assert not (tmp_path / "run").exists()
    assert "--preset" in CliRunner().invoke(main, ["train", "--help"]).output
