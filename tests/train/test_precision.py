"""Mixed precision: what ``optim.amp`` resolves to, that bf16 really runs the model in bfloat16 on
the CPU and still learns, that fp16 goes through a gradient scaler, and what a run records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from emoprep.errors import SetupError
from emoprep.testing.shards import build_shard_folder
from emoprep.train.config import parse_sets, resolve_config
from emoprep.train.loop import train_epoch
from emoprep.train.precision import resolve_amp
from emoprep.train.run import train

E2E_TINY = ["optim.epochs=1", "optim.batch_size=4", "settings.d_model=8", "settings.heads=2", "settings.layers=1",
            "settings.ff=16", "settings.mlp_hidden=16", "settings.cnn_width=0.0625"]


def test_auto_is_float32_on_cpu_and_bad_values_fail_early() -> None:
    assert resolve_amp("auto", torch.device("cpu")) == "off"
    assert resolve_amp("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(SetupError, match="optim.amp must be one of"):
        resolve_config("mesm", sets=parse_sets(["optim.amp=fp8"]))


class _Batch:
    """The loop's view of a batch: inputs, targets, length, ``to``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.inputs, self.targets = x, y

    def __len__(self) -> int:
        return len(self.targets)

    def to(self, device: torch.device) -> _Batch:
        return self


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_autocast_runs_the_forward_in_low_precision_and_still_learns(amp: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 16)
    y = (x[:, :3] > 0).float()
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3))
    seen: list[torch.dtype] = []
    model[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.BCEWithLogitsLoss()
    batches = [_Batch(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    first = train_epoch(model, batches, optimizer, loss_fn, 1.0, torch.device("cpu"), amp=amp)
    for _ in range(20):
        last = train_epoch(model, batches, optimizer, loss_fn, 1.0, torch.device("cpu"), amp=amp)
    assert set(seen) == {torch.bfloat16 if amp == "bf16" else torch.float16}
    assert all(p.dtype == torch.float32 for p in model.parameters()), "weights stay float32 (autocast, not .half())"
    assert last < 0.5 * first


def test_a_bf16_mesm_run_trains_and_records_how_it_computed(tmp_path: Path) -> None:
    shards = build_shard_folder(tmp_path / "s", {"train": 8, "valid": 4, "test": 4}, crops=True, logmel=True,
                                face_mesh=False)
    out = tmp_path / "run"
    result = train("mesm", shards, out, sets=parse_sets([*E2E_TINY, "optim.amp=bf16"]), device="cpu", quiet=True)
    run = json.loads((out / "run.json").read_text())
    assert run["compute"] == {"amp": "bf16", "sparse_impl": "gather"}
    history = json.loads((out / "history.jsonl").read_text().splitlines()[0])
    assert torch.isfinite(torch.tensor([history["train_loss"], history["valid_loss"]])).all()
    assert 0.0 <= result["test"]["average"]["f1"] <= 1.0
