"""FLOPs are counted from what ran: torch's counter for dense work, recorded active sites for sparse
convolutions, one convention (2 FLOPs per multiply-add) for both."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from emoprep.train.batch import InputSpec, ModalityInput
from emoprep.train.flops import count_flops
from emoprep.train.models import ModelContext, get_model
from emoprep.train.models.sparse import SiteConv2d

SPECS = {
    "text": InputSpec("text", "tokens", "tokens", vocab_size=30),
    "acoustic": InputSpec("acoustic", "images", "logmel", image_shape=(1, 32, 16)),
    "visual": InputSpec("visual", "images", "face_crops", image_shape=(3, 48, 48)),
}
TINY = {"d_model": 8, "heads": 2, "layers": 1, "ff": 16, "mlp_hidden": 16, "cnn_width": 1 / 16}


def build(name: str, **overrides) -> nn.Module:
    entry = get_model(name)
    torch.manual_seed(0)
    settings = dataclasses.replace(entry.settings(), **{**TINY, **overrides})
    return entry.build(SPECS, 3, settings, ModelContext(label_names=("a", "b", "c")))


def one_sample(rows: int = 1) -> dict[str, ModalityInput]:
    """10 faces, 4 log-mel chunks and 20 tokens, the same for every row."""
    gen = torch.Generator().manual_seed(0)
    full = {"text": 20, "acoustic": 4, "visual": 10}
    values = {
        "text": torch.randint(2, 30, (1, 20), generator=gen),
        "acoustic": torch.randn(1, 4, 1, 32, 16, generator=gen),
        "visual": torch.rand(1, 10, 3, 48, 48, generator=gen) * 255,
    }
    return {m: ModalityInput(v.expand(rows, *v.shape[1:]), torch.ones(rows, full[m], dtype=torch.bool))
            for m, v in values.items()}


class OneConv(nn.Module):
    """A single 3x3 convolution (3 -> 4 channels) on 2 images of 5x6, run at 7 active sites."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = SiteConv2d(3, 4)
        self.active = torch.zeros(2, 5, 6, dtype=torch.bool)
        self.active.view(-1)[torch.tensor([0, 3, 8, 17, 29, 31, 59])] = True

    def forward(self, inputs: dict[str, ModalityInput]) -> torch.Tensor:
        return self.conv(inputs["visual"].values, self.active)

    def flop_stages(self) -> list[tuple[str, nn.Module]]:
        return [("conv", self.conv)]


def test_one_convolution_counts_what_the_hand_counts() -> None:
    report = count_flops(OneConv(), {"visual": ModalityInput(torch.randn(2, 3, 5, 6), torch.ones(2, 1, dtype=torch.bool))})
    (row,) = report.stages
    # Dense: every output site of 2 images x 5 x 6 = 60 sites, each Cin x Cout x k x k = 3 x 4 x 3 x 3
    # = 108 multiply-adds, 2 FLOPs each: 2 x 60 x 108 = 12960 (bias not counted, like torch's counter).
    assert row.dense == 2 * (2 * 5 * 6) * (3 * 4 * 3 * 3) == 12960
    # Sparse: the 7 active output sites only: 2 x 7 x 108 = 1512.
    assert row.counted == 2 * 7 * (3 * 4 * 3 * 3) == 1512
    assert row.kept_fraction == 7 / 60
    assert report.counted_per_sample == 1512 / 2


def test_dense_models_count_what_torch_counts() -> None:
    fe2e = count_flops(build("fe2e"), one_sample())
    assert fe2e.counted_per_sample == fe2e.dense_per_sample
    assert all(s.kept_fraction == 1.0 for s in fe2e.stages)
    names = [s.stage for s in fe2e.stages]
    assert {"visual.stem", "visual.stage1", "visual.stage3", "acoustic.mlp", "text.encoder"} <= set(names)
    assert all(s.dense > 0 for s in fe2e.stages if s.stage.endswith(("stage1", "encoder", "mlp", "low")))
    mesm_all = count_flops(build("mesm", p=1.0), one_sample())
    assert mesm_all.counted_per_sample == mesm_all.dense_per_sample, "p = 1 computes every site"


def test_mesm_counts_fewer_flops_than_fe2e() -> None:
    fe2e = count_flops(build("fe2e"), one_sample())
    mesm = count_flops(build("mesm", p=0.5), one_sample())
    assert mesm.counted_per_sample < fe2e.counted_per_sample
    by_name = {s.stage: s for s in mesm.stages}
    for stage in ("visual.stage1", "acoustic.stage2"):
        assert by_name[stage].counted < by_name[stage].dense and 0 < by_name[stage].kept_fraction < 1
    assert by_name["visual.stem"].counted == by_name["visual.stem"].dense


def test_flops_are_per_sample() -> None:
    model = build("mesm", p=0.5)
    single, triple = count_flops(model, one_sample(1)), count_flops(model, one_sample(3))
    assert triple.batch_size == 3
    assert triple.counted_per_sample == single.counted_per_sample
    assert model.training, "counting leaves the model in the mode it found it"


def test_counted_flops_do_not_depend_on_the_sparse_implementation() -> None:
    """The gather path's sparse stages are not modules the counter can see; the count runs the
    masked path, which computes the same sites, and leaves the model's choice as it was."""
    gather, masked = build("mesm", p=0.5, sparse_impl="gather"), build("mesm", p=0.5, sparse_impl="masked")
    a, b = count_flops(gather, one_sample()), count_flops(masked, one_sample())
    assert a.stages == b.stages
    cnns = [m for m in gather.modules() if hasattr(m, "sparse_impl")]
    assert cnns and all(m.sparse_impl == "gather" for m in cnns)
