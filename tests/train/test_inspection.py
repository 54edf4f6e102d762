"""Looking inside end-to-end runs: counted FLOPs in metrics.json and from the CLI, and the MESM
attention pictures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import cli
from emoprep.errors import SetupError
from emoprep.testing.shards import build_shard_folder
from emoprep.train.config import parse_sets
from emoprep.train.inspection import attention_picture, flops_of_fresh_model, flops_of_run
from emoprep.train.run import train

TINY = ["optim.epochs=1", "optim.batch_size=4", "settings.d_model=8", "settings.heads=2", "settings.layers=1",
        "settings.ff=16", "settings.mlp_hidden=16", "settings.cnn_width=0.0625"]


@pytest.fixture(scope="module")
def mesm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shards = build_shard_folder(tmp_path_factory.mktemp("e2e") / "s", {"train": 12, "valid": 6, "test": 6},
                                crops=True, logmel=True, face_mesh=False)
    out = tmp_path_factory.mktemp("runs") / "mesm"
    train("mesm", shards, out, sets=parse_sets([*TINY, "settings.p=0.5"]), quiet=True)
    return out


def test_metrics_hold_counted_flops(mesm_run: Path) -> None:
    flops = json.loads((mesm_run / "metrics.json").read_text())["flops"]
    assert 0 < flops["counted_gflops_per_sample"] < flops["dense_gflops_per_sample"]
    stages = {s["stage"]: s for s in flops["stages"]}
    assert stages["visual.stage1"]["kept_fraction"] < 1.0 and stages["visual.stem"]["kept_fraction"] == 1.0
    again = flops_of_run(mesm_run, "test")  # the same count from the run folder
    assert again.counted_per_sample / 1e9 == pytest.approx(flops["counted_gflops_per_sample"], rel=1e-6)


def test_mesm_counts_fewer_flops_than_fe2e_and_more_as_p_grows() -> None:
    sizes = {"face_size": 48, "frames": 3, "chunks": 3, "tokens": 5}
    _, fe2e = flops_of_fresh_model("fe2e", None, **sizes)
    counted = [flops_of_fresh_model("mesm", parse_sets([f"settings.p={p}"]), **sizes)[1].counted_per_sample
               for p in (0.3, 0.5, 1.0)]
    assert counted[0] < counted[1] < counted[2]
    assert counted[1] <= 0.65 * fe2e.counted_per_sample
    with pytest.raises(SetupError, match="hand-crafted"):
        flops_of_fresh_model("lf-lstm", None, **sizes)


def test_flops_command_prints_the_stage_table(mesm_run: Path) -> None:
    result = CliRunner().invoke(cli.main, ["flops", "--run", str(mesm_run)])
    assert result.exit_code == 0, result.output
    assert "visual.stage1" in result.output and "per utterance" in result.output
    assert CliRunner().invoke(cli.main, ["flops"]).exit_code != 0


def test_attention_picture_is_drawn(mesm_run: Path, tmp_path: Path) -> None:
    out = attention_picture(mesm_run, tmp_path / "att.png")
    with Image.open(out) as img:
        pixels = np.asarray(img.convert("RGB"))
    assert pixels.shape[0] > 300 and pixels.shape[1] > 600
    assert pixels.std() > 10  # a picture, not a blank page
    result = CliRunner().invoke(cli.main, ["attention", str(mesm_run), "--out", str(tmp_path / "b.png"), "--utterance", "nope"])
    assert result.exit_code == 2 and "no labelled utterance" in result.output
