"""FE2E and MESM on image inputs: shapes, masked frames that cost and change nothing, absent rows,
MESM at p = 1 equal to FE2E, an attention that receives gradients, and both models able to learn."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn
from torch.nn.functional import binary_cross_entropy_with_logits as bce

from emoprep.errors import SetupError
from emoprep.train.batch import InputSpec, ModalityInput
from emoprep.train.models import ModelContext, get_model
from emoprep.train.models.mesm import TextQueriedAttention
from emoprep.train.models.sparse import Sites

N_CLASSES = 3
CONTEXT = ModelContext(label_names=("anger", "joy", "sadness"))
TINY = {"d_model": 8, "heads": 2, "layers": 1, "ff": 16, "mlp_hidden": 16, "cnn_width": 1 / 16, "dropout": 0.0}
"""A 4-64-channel CNN and a one-layer transformer: each test runs in well under a second."""
VOCAB = 30


def specs(face: int = 16, text: str | None = "tokens", modalities: tuple[str, ...] = ("acoustic", "visual")
          ) -> dict[str, InputSpec]:
    out = {}
    if text == "tokens":
        out["text"] = InputSpec("text", "tokens", "tokens", vocab_size=VOCAB)
    elif text == "dense":
        out["text"] = InputSpec("text", "dense", "glove", dim=6)
    if "acoustic" in modalities:
        out["acoustic"] = InputSpec("acoustic", "images", "logmel", image_shape=(1, 32, 16))
    if "visual" in modalities:
        out["visual"] = InputSpec("visual", "images", "face_crops", image_shape=(3, face, face))
    return out


def build(name: str, input_specs: dict[str, InputSpec], **overrides) -> nn.Module:
    entry = get_model(name)
    torch.manual_seed(0)
    return entry.build(input_specs, N_CLASSES, dataclasses.replace(entry.settings(), **{**TINY, **overrides}), CONTEXT)


def modality_input(spec: InputSpec, mask: torch.Tensor, gen: torch.Generator) -> ModalityInput:
    """Random values at real positions (faces in [0, 255], standardised log-mel), zeros elsewhere."""
    shape = mask.shape
    if spec.kind == "tokens":
        return ModalityInput(torch.randint(2, VOCAB, shape, generator=gen) * mask, mask)
    if spec.kind == "dense":
        return ModalityInput(torch.randn(*shape, spec.dim, generator=gen) * mask.unsqueeze(-1), mask)
    values = torch.rand(*shape, *spec.image_shape, generator=gen) * 255 if spec.column == "face_crops" \
        else torch.randn(*shape, *spec.image_shape, generator=gen)
    return ModalityInput(values * mask.view(*shape, 1, 1, 1), mask)


# Row 0 full; row 1 has frames without a face in the middle; row 2 has no visual, row 3 no text and
# no audio, row 4 nothing at all.
MASKS = {
    "text": [[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
    "acoustic": [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
    "visual": [[1, 1, 1, 1, 1], [1, 0, 1, 0, 1], [0, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]],
}


def make_inputs(input_specs: dict[str, InputSpec], seed: int = 0) -> dict[str, ModalityInput]:
    gen = torch.Generator().manual_seed(seed)
    return {m: modality_input(s, torch.tensor(MASKS[m], dtype=torch.bool), gen) for m, s in input_specs.items()}


@pytest.mark.parametrize("name", ["fe2e", "mesm"])
@pytest.mark.parametrize(("face", "text"), [(48, "tokens"), (112, "dense"), (16, None)])
def test_forward_shapes_and_gradients(name: str, face: int, text: str | None) -> None:
    s = specs(face, text)
    model = build(name, s).train()
    logits = model(make_inputs(s))
    assert logits.shape == (5, N_CLASSES) and torch.isfinite(logits).all()
    assert torch.equal(logits[4], torch.zeros(N_CLASSES)), "a row with no modality gets logits 0"
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.branches["visual"].cnn.out_features == 32 * (face // 16) ** 2


@pytest.mark.parametrize("name", ["fe2e", "mesm"])
def test_a_batch_without_any_face_still_trains_every_parameter(name: str) -> None:
    """DistributedDataParallel needs a gradient for every parameter at every step."""
    s = specs()
    model = build(name, s).train()
    inputs = make_inputs(s)
    inputs["visual"] = ModalityInput(torch.zeros_like(inputs["visual"].values), torch.zeros(5, 5, dtype=torch.bool))
    stem_norm = model.branches["visual"].cnn.stem[1]
    logits = model(inputs)
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert torch.equal(stem_norm.running_var, torch.ones_like(stem_norm.running_var))
    assert all(torch.equal(m.running_mean, torch.zeros_like(m.running_mean))
               for m in model.branches["visual"].modules() if isinstance(m, nn.BatchNorm2d))


def test_too_small_or_wrong_images_fail_before_training() -> None:
    with pytest.raises(SetupError, match="at least 16x16"):
        build("fe2e", specs(face=12))
    with pytest.raises(SetupError, match="RGB"):
        build("fe2e", {"visual": InputSpec("visual", "images", "face_crops", image_shape=(1, 48, 48))})
    for bad in ({"p": 0.0}, {"p": 1.5}, {"cnn_width": 0.0}, {"heads": 3}):
        with pytest.raises(SetupError):
            build("mesm", specs(), **bad)


@pytest.mark.parametrize("name", ["fe2e", "mesm"])
def test_frames_without_a_face_are_neither_computed_nor_read(name: str) -> None:
    s = specs()
    model = build(name, s)
    inputs = make_inputs(s)
    visual = inputs["visual"]
    noise = torch.rand(visual.values.shape) * 255
    dirty = {**inputs, "visual": ModalityInput(torch.where(visual.mask.view(5, 5, 1, 1, 1), visual.values, noise),
                                                visual.mask)}
    for mode in (model.train, model.eval):  # training: batch-norm statistics must not see them either
        mode()
        torch.testing.assert_close(model(dirty), model(inputs), atol=0, rtol=0)
    first_conv = model.branches["visual"].cnn.low[0].conv1
    assert first_conv.last_total_sites == int(visual.mask.sum()) * 8 * 8, "the CNN ran on masked frames"


@pytest.mark.parametrize("name", ["fe2e", "mesm"])
def test_rows_without_a_modality_do_not_depend_on_its_branch(name: str) -> None:
    s = specs()
    model = build(name, s).eval()
    inputs = make_inputs(s)
    with torch.no_grad():
        before = model(inputs)
        for n, p in model.named_parameters():
            if n.startswith("branches.visual."):
                p.add_(torch.randn_like(p))
        after = model(inputs)
    has_visual = inputs["visual"].present
    torch.testing.assert_close(after[~has_visual], before[~has_visual], atol=0, rtol=0)
    assert (after[has_visual] - before[has_visual]).abs().amax(dim=1).gt(1e-4).all()


def test_mesm_at_p_one_computes_what_fe2e_computes() -> None:
    s = specs(face=48)
    mesm, fe2e = build("mesm", s, p=1.0), build("fe2e", s)
    missing, unexpected = fe2e.load_state_dict(mesm.state_dict(), strict=False)
    assert not missing and all(".select." in k or k == "default_query" for k in unexpected)
    inputs = make_inputs(s)
    for train in (True, False):
        mesm.train(train), fe2e.train(train)
        images = inputs["visual"].values[inputs["visual"].mask]
        query = torch.randn(len(images), TINY["d_model"])
        torch.testing.assert_close(mesm.branches["visual"].cnn(images, query), fe2e.branches["visual"].cnn(images),
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(mesm(inputs), fe2e(inputs), atol=1e-5, rtol=0)


def test_attention_parameters_receive_gradients() -> None:
    s = specs()
    model = build("mesm", s, p=0.5).train()
    bce(model(make_inputs(s)), torch.eye(N_CLASSES)[[0, 1, 2, 0, 1]]).backward()
    attention = [m for m in model.modules() if isinstance(m, TextQueriedAttention)]
    assert len(attention) == 6
    for layer in attention:
        for weight in (layer.w_m.weight, layer.w_q.weight, layer.w_i.weight):
            assert weight.grad is not None and weight.grad.abs().sum() > 0
    assert model.branches["text"].proj.proj.weight.grad.abs().sum() > 0


def test_attention_forward_is_the_papers_hard_selection() -> None:
    """The straight-through gate is exactly 0/1 in the forward: ``M_o = M_ns * M`` bit for bit."""
    torch.manual_seed(0)
    layer = TextQueriedAttention(channels=6, hidden=5, query_dim=4, p=0.5)
    x, query = torch.randn(3, 6, 4, 4), torch.randn(3, 4)
    active = torch.rand(3, 4, 4) < 0.6
    active[:, 0, 0] = True
    for sites in (None, active):
        given = x if sites is None else x * sites.unsqueeze(1)
        out, kept = layer(given, sites, query)
        assert torch.equal(out, given * kept.unsqueeze(1))
        attention = layer.last[0]
        assert ((attention * kept).flatten(1).sum(dim=1) >= 0.5 - 1e-6).all()
    assert not (kept & ~active).any(), "later stages keep a subset of the sites still active"


def test_rows_without_text_query_with_the_learned_vector() -> None:
    s = specs()
    model = build("mesm", s, p=0.5).eval()
    inputs = make_inputs(s)
    with torch.no_grad():
        before = model(inputs)
        model.default_query.add_(torch.randn_like(model.default_query))
        after = model(inputs)
    has_text = inputs["text"].present
    # To rounding: the gather path multiplies all rows' kept sites at once, so row 3's new choice of
    # sites changes the matrix sizes (and the summation blocking) the other rows are computed in.
    torch.testing.assert_close(after[has_text], before[has_text], atol=1e-6, rtol=0)
    assert not torch.allclose(after[3], before[3]), "row 3 has faces but no text: the learned query drives it"

    without_text = specs(text=None)
    alone = build("mesm", without_text)
    alone(make_inputs(without_text)).sum().backward()
    assert alone.default_query.grad.abs().sum() > 0


def test_mesm_records_attention_pictures() -> None:
    s = specs(face=48)
    p = 0.5
    model = build("mesm", s, p=p).eval()
    model.record_attention = True
    inputs = make_inputs(s)
    with torch.no_grad():
        model(inputs)
    pictures = {(r["modality"], r["stage"]): r for r in model.last_attention}
    assert sorted(pictures) == [(m, i) for m in ("acoustic", "visual") for i in (1, 2, 3)]
    mask = inputs["visual"].mask
    for stage, size in ((1, 24), (2, 12), (3, 6)):
        attention, kept = pictures["visual", stage]["attention"], pictures["visual", stage]["kept"]
        assert attention.shape == (5, 5, size, size) and kept.dtype == torch.bool
        assert not kept[~mask].any() and kept[mask].flatten(1).any(dim=1).all()
        torch.testing.assert_close(attention[mask].flatten(1).sum(dim=1), torch.ones(int(mask.sum())))
        assert ((attention * kept)[mask].flatten(1).sum(dim=1) >= p - 1e-6).all()
    stage1, stage2 = pictures["visual", 1]["kept"], pictures["visual", 2]["kept"]
    reachable = nn.functional.max_pool2d(stage1[mask].float(), 2) > 0
    assert not (stage2[mask] & ~reachable).any(), "stage 2 chooses among the sites stage 1 kept"
    assert pictures["acoustic", 1]["attention"].shape == (5, 4, 16, 8)


def separable_images(n: int, gen: torch.Generator) -> tuple[dict[str, ModalityInput], torch.Tensor]:
    """The class lights up one quadrant of the faces and one band of the spectrogram chunks."""
    s = specs(text=None)
    y = torch.randint(0, N_CLASSES, (n,), generator=gen)
    mask = torch.rand(n, 3, generator=gen) < 0.8
    mask[:, 0] = True
    inputs = {m: modality_input(spec, mask, gen) for m, spec in s.items()}
    face, chunk = inputs["visual"].values, inputs["acoustic"].values
    for row, label in enumerate(y.tolist()):
        face[row, :, :, (label % 2) * 8:(label % 2) * 8 + 8, (label // 2) * 8:(label // 2) * 8 + 8] *= 0.1
        chunk[row, :, label * 10:label * 10 + 10, :] += 2.0
    return {"visual": ModalityInput(face * mask.view(n, 3, 1, 1, 1), mask),
            "acoustic": ModalityInput(chunk * mask.view(n, 3, 1, 1, 1), mask)}, torch.eye(N_CLASSES)[y]


@pytest.mark.parametrize("name", ["fe2e", "mesm"])
def test_adam_steps_reduce_the_loss_on_images(name: str) -> None:
    """Measured in training mode (no dropout here): after 30 steps at a high learning rate the running
    batch-norm statistics still lag the weights, which says nothing about learning."""
    inputs, targets = separable_images(12, torch.Generator().manual_seed(0))
    model = build(name, specs(text=None), cnn_width=1 / 8).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        start = bce(model(inputs), targets).item()
    for _ in range(30):
        optimizer.zero_grad()
        bce(model(inputs), targets).backward()
        optimizer.step()
    with torch.no_grad():
        assert bce(model(inputs), targets).item() < 0.5 * start


@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("p", [0.3, 0.7])
def test_gather_and_masked_sparse_stages_give_the_same_logits_and_gradients(dtype: torch.dtype, tolerance: float,
                                                                            p: float) -> None:
    """The batch has frames without a face, padded chunks, rows without a modality and a row with
    nothing; a second batch has no face at all.  Gradients of every parameter and the running
    batch-norm statistics agree too (tolerance relative to each tensor's largest value)."""
    s = specs(face=48)
    masked = build("mesm", s, p=p, sparse_impl="masked").to(dtype).train()
    gather = build("mesm", s, p=p, sparse_impl="gather").to(dtype).train()
    gather.load_state_dict(masked.state_dict())
    no_face = make_inputs(s, seed=1)
    no_face["visual"] = ModalityInput(torch.zeros_like(no_face["visual"].values), torch.zeros(5, 5, dtype=torch.bool))
    for inputs in (make_inputs(s), no_face):
        inputs = {m: ModalityInput(x.values.to(dtype) if x.values.is_floating_point() else x.values, x.mask)
                  for m, x in inputs.items()}
        masked.zero_grad(), gather.zero_grad()
        targets = torch.eye(N_CLASSES, dtype=dtype)[[0, 1, 2, 0, 1]]
        logits = {}
        for name, model in (("masked", masked), ("gather", gather)):
            logits[name] = model(inputs)
            bce(logits[name], targets).backward()
        torch.testing.assert_close(logits["gather"], logits["masked"], atol=tolerance, rtol=0)
        for (name, a), b in zip(masked.named_parameters(), gather.parameters()):
            scale = max(1.0, float(a.grad.abs().max()))
            torch.testing.assert_close(b.grad, a.grad, atol=tolerance * scale, rtol=0, msg=name)
        for a, b in zip(masked.buffers(), gather.buffers()):
            torch.testing.assert_close(b, a, atol=tolerance, rtol=0)


@pytest.mark.parametrize("p", [0.3, 0.7, 1.0])
def test_attention_fast_path_for_every_site_equals_the_general_path(p: float) -> None:
    """The first stage's input is a dense map, every site active: the attention then works in the
    dense layout (no query copied to each site, no scores scattered into maps).  It must give what the
    general site-by-site path gives for the same sites, in float64: the kept sites, their gated
    features, the recorded maps, and the gradients of the input, the query and every parameter."""
    torch.manual_seed(0)
    layer = TextQueriedAttention(channels=6, hidden=5, query_dim=4, p=p).double()
    x = torch.randn(3, 6, 5, 7, dtype=torch.float64)
    query = torch.randn(3, 4, dtype=torch.float64)
    results = {}
    for every in (True, False):
        features = x.permute(0, 2, 3, 1).reshape(-1, 6).clone().requires_grad_(True)
        q = query.clone().requires_grad_(True)
        dense = Sites.from_dense(x)
        assert dense.every
        sites = Sites(features, dense.index, dense.shape, every=every)
        layer.zero_grad()
        out = layer.forward_sites(sites, q)
        assert not out.every, "the kept sites are no longer every site"
        upstream = torch.randn(out.features.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        (out.features * upstream).sum().backward()
        results[every] = (out, [t.clone() for t in layer.last], features.grad, q.grad,
                          [w.grad.clone() for w in layer.parameters() if w.grad is not None])
    (fast, fast_maps, *fast_grads), (general, general_maps, *general_grads) = results[True], results[False]
    assert torch.equal(fast.index, general.index) and fast.shape == general.shape
    torch.testing.assert_close(fast.features, general.features, atol=1e-12, rtol=0)
    for a, b in zip(fast_maps, general_maps):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    fast_params, general_params = fast_grads.pop(), general_grads.pop()
    assert len(fast_params) == len(general_params) >= 3
    for a, b in zip([*fast_grads, *fast_params], [*general_grads, *general_params]):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
