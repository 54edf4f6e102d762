"""The hand-crafted-feature baselines keep the batch contract: padding and absent modalities never
count, logits stay finite, a row does not depend on its batch-mates, and each model can learn."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn
from torch.nn.functional import binary_cross_entropy_with_logits as bce

from emoprep.errors import SetupError
from emoprep.train.batch import InputSpec, ModalityInput
from emoprep.train.models import ModelContext, get_model, model_names
from emoprep.train.models.common import LateFusion, attention_padding_mask, masked_mean, sinusoidal_encoding

N_CLASSES = 3
CONTEXT = ModelContext(label_names=("anger", "joy", "sadness"))
TINY = {
    "lf-lstm": {"hidden": 8},
    "lf-trans": {"d_model": 8, "heads": 2, "ff": 16, "layers": 1},
    "mult": {"d_model": 8, "heads": 2, "layers": 1},
    "emoembs": {"hidden": 8, "emb_dim": 6},
    "fe2e": {"d_model": 8, "heads": 2, "layers": 1, "ff": 16, "mlp_hidden": 16, "cnn_width": 1 / 16},
    "mesm": {"d_model": 8, "heads": 2, "layers": 1, "ff": 16, "mlp_hidden": 16, "cnn_width": 1 / 16},
}
"""Small hyper-parameters so the whole file runs in seconds; unknown models use their defaults."""
MODELS = model_names()
VOCAB = 30


def specs(modalities: tuple[str, ...] = ("text", "acoustic", "visual"),
          text_kind: str = "dense") -> dict[str, InputSpec]:
    every = {
        "text": InputSpec("text", "dense", "text_glove", dim=6) if text_kind == "dense"
        else InputSpec("text", "tokens", "text_ids", vocab_size=VOCAB),
        "acoustic": InputSpec("acoustic", "dense", "acoustic_disvoice", dim=5),
        "visual": InputSpec("visual", "dense", "visual_au", dim=4),
    }
    return {m: every[m] for m in modalities}


def build(name: str, input_specs: dict[str, InputSpec], context: ModelContext = CONTEXT, **overrides) -> nn.Module:
    entry = get_model(name)
    settings = dataclasses.replace(entry.settings(), **{**TINY.get(name, {}), **overrides})
    torch.manual_seed(0)
    return entry.build(input_specs, N_CLASSES, settings, context)


def modality_input(spec: InputSpec, lengths: list[int], gen: torch.Generator,
                   width: int | None = None) -> ModalityInput:
    """Random values at real positions, zeros at padding, as the data layer delivers them."""
    width = max([*lengths, 1]) if width is None else width
    mask = torch.arange(width).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    if spec.kind == "tokens":
        values = torch.randint(2, spec.vocab_size, (len(lengths), width), generator=gen) * mask
    else:
        values = torch.randn(len(lengths), width, spec.dim, generator=gen) * mask.unsqueeze(-1)
    return ModalityInput(values, mask)


def make_inputs(input_specs: dict[str, InputSpec], lengths: dict[str, list[int]],
                seed: int = 0) -> dict[str, ModalityInput]:
    gen = torch.Generator().manual_seed(seed)
    return {m: modality_input(spec, lengths[m], gen) for m, spec in input_specs.items()}


# Row 0 full, rows 1-3 each miss one modality and some hold a single position, row 4 has nothing.
RAGGED = {"text": [4, 1, 0, 3, 0], "acoustic": [3, 0, 2, 1, 0], "visual": [5, 2, 1, 0, 0]}


def pad_more(x: ModalityInput, extra: int) -> ModalityInput:
    values = torch.cat([x.values, x.values.new_zeros((x.values.shape[0], extra, *x.values.shape[2:]))], dim=1)
    return ModalityInput(values, torch.cat([x.mask, x.mask.new_zeros((x.mask.shape[0], extra))], dim=1))


def add_row(x: ModalityInput, spec: InputSpec, length: int, gen: torch.Generator) -> ModalityInput:
    width = max(x.mask.shape[1], length)
    row = modality_input(spec, [length], gen, width)
    x = pad_more(x, width - x.mask.shape[1])
    return ModalityInput(torch.cat([x.values, row.values]), torch.cat([x.mask, row.mask]))


@pytest.mark.parametrize("text_kind", ["dense", "tokens"])
@pytest.mark.parametrize("name", MODELS)
def test_absent_and_short_rows_give_finite_logits_and_gradients(name: str, text_kind: str) -> None:
    s = specs(text_kind=text_kind)
    model = build(name, s).train()
    logits = model(make_inputs(s, RAGGED))
    assert logits.shape == (5, N_CLASSES)
    assert torch.isfinite(logits).all()
    assert torch.equal(logits[4], torch.zeros(N_CLASSES)), "a row with no modality must get logits 0"
    bce(logits, torch.eye(N_CLASSES)[[0, 1, 2, 0, 1]]).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("text_kind", ["dense", "tokens"])
@pytest.mark.parametrize("name", MODELS)
def test_row_does_not_depend_on_padding_or_batch_mates(name: str, text_kind: str) -> None:
    s = specs(text_kind=text_kind)
    model = build(name, s).eval()
    inputs = make_inputs(s, RAGGED)
    with torch.no_grad():
        base = model(inputs)
        padded = model({m: pad_more(x, 4) for m, x in inputs.items()})
        gen = torch.Generator().manual_seed(1)
        longer = model({m: add_row(x, s[m], x.mask.shape[1] + 3, gen) for m, x in inputs.items()})
    torch.testing.assert_close(padded, base, atol=1e-5, rtol=0)
    torch.testing.assert_close(longer[:5], base, atol=1e-5, rtol=0)


@pytest.mark.parametrize("text_kind", ["dense", "tokens"])
@pytest.mark.parametrize("name", MODELS)
def test_masked_positions_are_never_read(name: str, text_kind: str) -> None:
    """Garbage under the mask (padding and absent rows) must not change anything."""
    s = specs(text_kind=text_kind)
    model = build(name, s).eval()
    inputs = make_inputs(s, RAGGED)
    dirty = {}
    for m, x in inputs.items():
        if s[m].kind == "tokens":
            noise = torch.randint(2, VOCAB, x.values.shape)
        else:
            noise = 100 * torch.randn(x.values.shape)
        keep = x.mask if x.values.dim() == 2 else x.mask.unsqueeze(-1)
        dirty[m] = ModalityInput(torch.where(keep, x.values, noise), x.mask)
    with torch.no_grad():
        torch.testing.assert_close(model(dirty), model(inputs), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", MODELS)
def test_absent_modality_branch_contributes_nothing(name: str) -> None:
    """Perturbing every parameter of the acoustic branch (models name it after the modality) moves the
    rows that have acoustic input and leaves the rows without it exactly where they were."""
    s = specs()
    model = build(name, s).eval()
    inputs = make_inputs(s, RAGGED)
    with torch.no_grad():
        before = model(inputs)
        touched = [p for n, p in model.named_parameters() if "acoustic" in n]
        assert touched, "no parameter is named after the acoustic modality"
        for p in touched:
            p.add_(torch.randn_like(p))
        after = model(inputs)
    has_acoustic = inputs["acoustic"].present
    torch.testing.assert_close(after[~has_acoustic], before[~has_acoustic], atol=1e-6, rtol=0)
    assert (after[has_acoustic] - before[has_acoustic]).abs().amax(dim=1).gt(1e-4).all()


@pytest.mark.parametrize("modality", ["text", "acoustic", "visual"])
@pytest.mark.parametrize("name", MODELS)
def test_single_modality(name: str, modality: str) -> None:
    s = specs((modality,), text_kind="tokens")
    model = build(name, s).train()
    logits = model(make_inputs(s, {modality: [3, 1, 0]}))
    assert logits.shape == (3, N_CLASSES) and torch.isfinite(logits).all()
    assert torch.equal(logits[2], torch.zeros(N_CLASSES))
    assert not torch.equal(logits[0], logits[1])
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", MODELS)
def test_modality_missing_from_the_whole_batch(name: str) -> None:
    """A zero-width modality (no row has it) behaves like one padded to any width with every row absent."""
    s = specs()
    model = build(name, s).eval()
    inputs = make_inputs(s, {"text": [2, 1], "acoustic": [3, 1], "visual": [0, 0]})
    empty = ModalityInput(torch.zeros(2, 0, s["visual"].dim), torch.zeros(2, 0, dtype=torch.bool))
    with torch.no_grad():
        logits = model({**inputs, "visual": empty})
        torch.testing.assert_close(logits, model(inputs), atol=1e-5, rtol=0)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", MODELS)
def test_deterministic_given_seed(name: str) -> None:
    s = specs(text_kind="tokens")
    inputs = make_inputs(s, RAGGED)
    torch.manual_seed(3)
    first = build(name, s).train()(inputs)
    torch.manual_seed(3)
    second = build(name, s).train()(inputs)
    assert torch.equal(first, second)


def separable_batch(input_specs: dict[str, InputSpec], n: int,
                    gen: torch.Generator) -> tuple[dict[str, ModalityInput], torch.Tensor]:
    """Every modality carries the class: dense features are shifted along a class direction, tokens
    come from a class-specific part of the vocabulary.  Lengths vary and some modalities are absent."""
    y = torch.randint(0, N_CLASSES, (n,), generator=gen)
    inputs = {}
    for m, spec in input_specs.items():
        lengths = torch.randint(0, 7, (n,), generator=gen).tolist()
        x = modality_input(spec, lengths, gen)
        if spec.kind == "tokens":
            band = (VOCAB - 2) // N_CLASSES
            ids = 2 + y.unsqueeze(1) * band + torch.randint(0, band, x.values.shape, generator=gen)
            x = ModalityInput(ids * x.mask, x.mask)
        else:
            shift = torch.nn.functional.one_hot(y, spec.dim).float().unsqueeze(1) * 2.0
            x = ModalityInput((x.values * 0.5 + shift) * x.mask.unsqueeze(-1), x.mask)
        inputs[m] = x
    return inputs, torch.eye(N_CLASSES)[y]


@pytest.mark.parametrize("name", MODELS)
def test_adam_steps_reduce_the_loss_on_a_separable_problem(name: str) -> None:
    s = specs(text_kind="tokens")
    model = build(name, s)
    gen = torch.Generator().manual_seed(0)
    inputs, targets = separable_batch(s, 48, gen)
    held_out = separable_batch(s, 48, gen)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def loss(batch: tuple[dict[str, ModalityInput], torch.Tensor]) -> float:
        with torch.no_grad():
            return bce(model.eval()(batch[0]), batch[1]).item()

    start, start_held_out = loss((inputs, targets)), loss(held_out)
    for _ in range(30):
        optimizer.zero_grad()
        bce(model.train()(inputs), targets).backward()
        optimizer.step()
    assert loss((inputs, targets)) < 0.5 * start
    assert loss(held_out) < 0.8 * start_held_out, "it fits the training rows but learned nothing general"


def test_emoembs_text_embeddings_start_from_label_vectors() -> None:
    s = specs(text_kind="tokens")
    vectors = torch.randn(N_CLASSES, 7)
    context = dataclasses.replace(CONTEXT, label_vectors=vectors)
    model = build("emoembs", s, context)
    torch.testing.assert_close(model.text_emotions.detach(), vectors, atol=0, rtol=0)
    assert model.emotions("acoustic").shape == (N_CLASSES, TINY["emoembs"]["hidden"])

    other = build("emoembs", s, dataclasses.replace(CONTEXT, label_vectors=2 * vectors))
    inputs = make_inputs(s, RAGGED)
    assert not torch.allclose(model.eval()(inputs), other.eval()(inputs)), "label vectors must shape the scores"

    frozen = build("emoembs", s, context, freeze_text_embeddings=True)
    bce(frozen(inputs), torch.eye(N_CLASSES)[[0, 1, 2, 0, 1]]).backward()
    assert not frozen.text_emotions.requires_grad and frozen.text_emotions.grad is None

    random_init = build("emoembs", s)
    assert random_init.text_emotions.shape == (N_CLASSES, TINY["emoembs"]["emb_dim"])
    with pytest.raises(SetupError):
        build("emoembs", s, dataclasses.replace(CONTEXT, label_vectors=torch.randn(N_CLASSES + 1, 7)))


@pytest.mark.parametrize(("name", "bad"), [
    ("lf-trans", {"heads": 3}), ("mult", {"heads": 3}), ("mult", {"kernel_size": 2}), ("emoembs", {"mapping": "cubic"}),
])
def test_bad_settings_fail_before_training(name: str, bad: dict) -> None:
    with pytest.raises(SetupError):
        build(name, specs(), **bad)


@pytest.mark.parametrize("name", MODELS)
def test_default_settings_build_and_run(name: str) -> None:
    s = specs(text_kind="tokens")
    entry = get_model(name)
    model = entry.build(s, N_CLASSES, entry.settings(), CONTEXT)
    assert model(make_inputs(s, {"text": [2, 1], "acoustic": [1, 3], "visual": [0, 2]})).shape == (2, N_CLASSES)


def test_late_fusion_averages_over_present_modalities_only() -> None:
    fusion = LateFusion(3)
    logits = torch.tensor([[[1.0], [3.0], [100.0]]] * 3, requires_grad=True)
    present = torch.tensor([[True, True, False], [False, False, True], [False, False, False]])
    fused = fusion(logits, present)
    torch.testing.assert_close(fused, torch.tensor([[2.0], [100.0], [0.0]]))
    fused.sum().backward()
    assert torch.isfinite(fusion.weights.grad).all() and torch.isfinite(logits.grad).all()
    assert logits.grad[0, 2].item() == 0 and logits.grad[2].abs().sum().item() == 0


def test_attention_mask_keeps_absent_rows_finite() -> None:
    mask = torch.tensor([[True, True, False], [False, False, False]])
    pad = attention_padding_mask(mask)
    assert pad.tolist() == [[False, False, True], [False, True, True]]
    attn = nn.MultiheadAttention(4, 2, batch_first=True)
    x = torch.randn(2, 3, 4)
    out = attn(x, x, x, key_padding_mask=pad)[0]
    assert torch.isfinite(out).all()
    assert torch.isnan(attn(x, x, x, key_padding_mask=~mask)[0][1]).all(), "plain mask is the hazard this guards"


def test_masked_mean_and_positions() -> None:
    x = torch.tensor([[[1.0], [3.0], [50.0]], [[7.0], [7.0], [7.0]]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    assert masked_mean(x, mask).tolist() == [[2.0], [0.0]]
    pe = sinusoidal_encoding(5, 7)
    assert pe.shape == (5, 7) and torch.equal(pe[:3], sinusoidal_encoding(3, 7))


@pytest.mark.parametrize("name", ["lf-lstm", "emoembs"])
def test_recurrent_models_skip_holes(name: str) -> None:
    """A frame without a face in the middle of a row is skipped, not read as a step: the row gives
    the same logits as the row with that frame cut out (the LSTM reads the real frames in order)."""
    s = specs(("visual",))
    model = build(name, s).eval()
    gen = torch.Generator().manual_seed(3)
    frames = torch.randn(1, 3, 4, generator=gen)
    holed = ModalityInput(torch.stack([frames[0, 0], 50 * torch.ones(4), frames[0, 1], frames[0, 2]])[None],
                          torch.tensor([[True, False, True, True]]))
    cut = ModalityInput(frames, torch.ones(1, 3, dtype=torch.bool))
    with torch.no_grad():
        torch.testing.assert_close(model({"visual": holed}), model({"visual": cut}), atol=1e-5, rtol=0)
