"""FE2E/MESM's architecture choices against the authors' code (README, "FE2E and MESM against the
authors' code"): each setting does what it says, the defaults are the authors', a run saved before
the settings existed still loads, and the end-to-end presets do not clip gradients."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from emoprep.errors import SetupError
from emoprep.train import albert
from emoprep.train.batch import InputSpec, ModalityInput
from emoprep.train.config import load_run_config, resolve_config
from emoprep.train.models import ModelContext, get_model
from emoprep.train.models.common import LateFusion, LinearFusion
from emoprep.train.models.fe2e import FE2ESettings, SequenceEncoder

N_CLASSES = 3
CONTEXT = ModelContext(label_names=("anger", "joy", "sadness"))
TINY = {"d_model": 8, "heads": 2, "layers": 2, "ff": 16, "mlp_hidden": 16, "cnn_width": 1 / 16, "dropout": 0.0}
SPECS = {
    "text": InputSpec("text", "tokens", "tokens", vocab_size=30),
    "acoustic": InputSpec("acoustic", "images", "logmel", image_shape=(1, 32, 16)),
    "visual": InputSpec("visual", "images", "face_crops", image_shape=(3, 16, 16)),
}
# rows: all three; no visual; only visual; nothing
PRESENT = {"text": [1, 1, 0, 0], "acoustic": [1, 1, 0, 0], "visual": [1, 0, 1, 0]}


def settings(**overrides) -> FE2ESettings:
    return dataclasses.replace(FE2ESettings(), **{**TINY, **overrides})


def build(name: str = "fe2e", specs: dict[str, InputSpec] = SPECS, **overrides) -> nn.Module:
    entry = get_model(name)
    torch.manual_seed(0)
    return entry.build(specs, N_CLASSES, dataclasses.replace(entry.settings(), **{**TINY, **overrides}), CONTEXT)


def inputs(specs: dict[str, InputSpec] = SPECS, seed: int = 0) -> dict[str, ModalityInput]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for m, spec in specs.items():
        rows = torch.tensor(PRESENT[m], dtype=torch.bool)
        mask = rows.unsqueeze(1).expand(-1, 3).clone()
        if spec.kind == "tokens":
            values = torch.randint(2, spec.vocab_size, mask.shape, generator=gen) * mask
        else:
            values = torch.rand(*mask.shape, *spec.image_shape, generator=gen) * (255 if m == "visual" else 1)
            values = values * mask.view(*mask.shape, 1, 1, 1)
        out[m] = ModalityInput(values, mask)
    return out


def test_defaults_are_the_authors() -> None:
    s = FE2ESettings()
    chosen = (s.norm, s.input_dropout, s.head_dropout, s.fusion, s.text_summary)
    assert chosen == ("post", False, False, "linear", "cls")
    assert s.positions == "sinusoidal", "emoprep's one architectural default that differs (README's table says why)"
    model = build()
    assert isinstance(model.fusion, LinearFusion)
    for branch in model.branches.values():
        assert isinstance(branch.drop, nn.Identity) and isinstance(branch.encoder.drop, nn.Identity)


# --- norm ----------------------------------------------------------------------------------------

def test_post_norm_is_pytorchs_default_layer_without_a_final_norm() -> None:
    encoder = SequenceEncoder(settings(norm="post"))
    assert all(not layer.norm_first for layer in encoder.encoder.layers)
    assert encoder.encoder.norm is None
    pre = SequenceEncoder(settings(norm="pre"))
    assert all(layer.norm_first for layer in pre.encoder.layers)
    assert isinstance(pre.encoder.norm, nn.LayerNorm)


@pytest.mark.parametrize("train", [False, True])
def test_post_norm_computes_the_authors_encoder(train: bool) -> None:
    """The authors' WrappedTransformerEncoder: ``TransformerEncoder(TransformerEncoderLayer(d, heads))``,
    sequence first, CLS prepended, no positions; same weights, same CLS output."""
    torch.manual_seed(0)
    s = settings(norm="post", positions="none")
    ours = SequenceEncoder(s).train(train)
    layer = nn.TransformerEncoderLayer(d_model=s.d_model, nhead=s.heads, dim_feedforward=s.ff, dropout=s.dropout)
    theirs = nn.TransformerEncoder(layer, num_layers=s.layers, enable_nested_tensor=False).train(train)
    theirs.load_state_dict(ours.encoder.state_dict())  # strict: same parameters, no final norm
    h = torch.randn(3, 5, s.d_model)
    lens = [5, 2, 4]
    mask = torch.tensor([[i < n for i in range(5)] for n in lens])
    h = h * mask.unsqueeze(-1)
    src = torch.cat([ours.cls.expand(3, 1, -1), h], dim=1).permute(1, 0, 2)
    pad = torch.tensor([[False] * (n + 1) + [True] * (5 - n) for n in lens])
    torch.testing.assert_close(ours(h, mask), theirs(src, src_key_padding_mask=pad)[0], atol=1e-6, rtol=1e-5)


# --- positions -----------------------------------------------------------------------------------

def test_without_positions_the_encoder_ignores_order() -> None:
    h, mask = torch.randn(2, 4, 8), torch.ones(2, 4, dtype=torch.bool)
    reversed_h = h.flip(1)
    bag = SequenceEncoder(settings(positions="none")).eval()
    torch.testing.assert_close(bag(reversed_h, mask), bag(h, mask), atol=1e-5, rtol=1e-5)
    ordered = SequenceEncoder(settings(positions="sinusoidal")).eval()
    assert not torch.allclose(ordered(reversed_h, mask), ordered(h, mask), atol=1e-4)


# --- dropouts ------------------------------------------------------------------------------------

def silence_layers(encoder: SequenceEncoder) -> SequenceEncoder:
    """The transformer layers' own dropouts (attention, residual, feed-forward) set to 0."""
    for layer in encoder.encoder.layers:
        layer.self_attn.dropout = 0.0
        for m in layer.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0
    return encoder


def test_dropout_switches_put_dropout_where_they_say() -> None:
    model = build(dropout=0.5, input_dropout=True, head_dropout=True)
    for branch in model.branches.values():
        assert isinstance(branch.drop, nn.Dropout) and branch.drop.p == 0.5
        assert isinstance(branch.encoder.drop, nn.Dropout) and branch.encoder.drop.p == 0.5
    # in training mode, with the layers' own dropout silenced, only the input dropout can make two
    # passes over the same input differ
    h, mask = torch.randn(2, 4, 8), torch.ones(2, 4, dtype=torch.bool)
    noisy = silence_layers(SequenceEncoder(settings(dropout=0.5, input_dropout=True))).train()
    assert not torch.allclose(noisy(h, mask), noisy(h, mask))
    quiet = silence_layers(SequenceEncoder(settings(dropout=0.5, input_dropout=False))).train()
    torch.testing.assert_close(quiet(h, mask), quiet(h, mask), atol=0, rtol=0)


# --- fusion --------------------------------------------------------------------------------------

def test_linear_fusion_is_the_authors_linear_over_present_modalities() -> None:
    torch.manual_seed(0)
    fusion = LinearFusion(3)
    w = fusion.linear.weight.detach().view(3)
    assert w.abs().max() <= 1 / 3 ** 0.5, "nn.Linear(3, 1, bias=False)'s initialisation"
    logits = torch.tensor([[[1.0, -2.0], [3.0, 0.5], [float("nan"), 7.0]]] * 3, requires_grad=True)
    logits.data[0, 2, 0] = 5.0  # row 0 has every modality: exactly the authors' Linear over the stack
    present = torch.tensor([[True, True, True], [True, True, False], [False, False, False]])
    fused = fusion(logits, present)
    theirs = nn.functional.linear(logits[0].detach().T, w.view(1, 3)).squeeze(-1)
    torch.testing.assert_close(fused[0], theirs)
    # row 1 lacks the third modality (whose logits are even NaN): the weighted sum of the other two
    torch.testing.assert_close(fused[1], w[0] * logits[1, 0].detach() + w[1] * logits[1, 1].detach())
    assert torch.equal(fused[2], torch.zeros(2)), "a row with no modality gets logits 0"
    fused.sum().backward()
    assert torch.isfinite(fusion.linear.weight.grad).all()
    assert logits.grad[1, 2].abs().sum() == 0 and logits.grad[2].abs().sum() == 0, "absent branches get no gradient"
    assert torch.equal(logits.grad[0, 2], w[2].expand(2))


def test_linear_fusion_of_one_modality_is_that_branch() -> None:
    fusion = LinearFusion(1)
    assert not list(fusion.parameters())
    logits = torch.randn(2, 1, 3)
    present = torch.tensor([[True], [False]])
    assert torch.equal(fusion(logits, present), torch.stack([logits[0, 0], torch.zeros(3)]))


@pytest.mark.parametrize("fusion", ["linear", "softmax"])
def test_rows_missing_a_modality_ignore_its_branch(fusion: str) -> None:
    model = build(fusion=fusion).eval()
    assert isinstance(model.fusion, LinearFusion if fusion == "linear" else LateFusion)
    x = inputs()
    with torch.no_grad():
        before = model(x)
        for n, p in model.named_parameters():
            if n.startswith("branches.visual."):
                p.add_(torch.randn_like(p))
        after = model(x)
    no_visual = ~x["visual"].present
    torch.testing.assert_close(after[no_visual], before[no_visual], atol=0, rtol=0)
    assert not torch.allclose(after[0], before[0])
    assert torch.equal(before[3], torch.zeros(N_CLASSES))


def test_linear_fusion_of_a_full_row_is_the_weighted_sum_of_the_branch_logits() -> None:
    model = build().eval()
    x = inputs()
    with torch.no_grad():
        fused = model(x)
        branch = {m: model.branches[m](x[m])[0] for m in ("text", "acoustic")}
        branch["visual"] = model.branches["visual"](x["visual"], None)[0]
    w = model.fusion.linear.weight.view(-1)
    expected = sum(w[i] * branch[m][0] for i, m in enumerate(model.branches))
    torch.testing.assert_close(fused[0], expected, atol=1e-6, rtol=1e-5)


# --- ALBERT summary ------------------------------------------------------------------------------

@pytest.mark.parametrize("summary", ["cls", "pooler"])
def test_albert_text_summary(summary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.AlbertConfig(vocab_size=40, embedding_size=8, hidden_size=16, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    monkeypatch.setattr(albert, "albert_folder", lambda path: Path("/tiny-albert"))
    monkeypatch.setattr(albert, "check_folder", lambda folder, max_len=None: None)
    monkeypatch.setattr(albert, "load_model", lambda folder: transformers.AlbertModel(config))
    specs = {"text": InputSpec("text", "tokens", "text", vocab_size=40), "acoustic": SPECS["acoustic"]}
    model = build(specs=specs, text_encoder="albert", text_summary=summary).eval()
    branch = model.branches["text"]
    ids = torch.randint(2, 40, (2, 5))
    x = ModalityInput(ids, torch.ones(2, 5, dtype=torch.bool))
    with torch.no_grad():
        logits, got = branch(x)
        out = branch.albert(input_ids=ids, attention_mask=torch.ones(2, 5, dtype=torch.long))
    source = out.last_hidden_state[:, 0] if summary == "cls" else out.pooler_output
    torch.testing.assert_close(got, branch.proj(source))
    torch.testing.assert_close(logits, branch.head(got))
    # the pooler learns only when it is used (DistributedDataParallel wants a gradient for every
    # trainable parameter); it stays in the state dict either way
    assert all(p.requires_grad == (summary == "pooler") for p in branch.albert.pooler.parameters())
    assert any(k.startswith("branches.text.albert.pooler.") for k in model.state_dict())
    model.train()
    model(inputs(specs)).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


# --- settings checks, old runs, presets ------------------------------------------------------------

@pytest.mark.parametrize(("bad", "message"), [
    ({"norm": "sandwich"}, r"settings\.norm must be one of post, pre"),
    ({"positions": "learned"}, r"settings\.positions must be one of sinusoidal, none"),
    ({"fusion": "mean"}, r"settings\.fusion must be one of linear, softmax"),
    ({"text_summary": "mean"}, r"settings\.text_summary must be one of cls, pooler"),
    ({"head_dropout": "yes"}, r"settings\.head_dropout must be true or false"),
    ({"input_dropout": 1}, r"settings\.input_dropout must be true or false"),
])
@pytest.mark.parametrize("name", ["fe2e", "mesm"])
def test_bad_choices_are_refused(name: str, bad: dict, message: str) -> None:
    with pytest.raises(SetupError, match=message):
        build(name, **bad)


def test_choices_can_be_set_from_the_command_line() -> None:
    from emoprep.train.config import parse_sets

    cfg = resolve_config("fe2e", sets=parse_sets([
        "settings.norm=pre", "settings.fusion=softmax", "settings.positions=none", "settings.head_dropout=true",
        "settings.text_summary=pooler"]))
    assert {k: getattr(cfg.settings, k) for k in ("norm", "fusion", "positions", "head_dropout", "text_summary")} == {
        "norm": "pre", "fusion": "softmax", "positions": "none", "head_dropout": True, "text_summary": "pooler"}
    with pytest.raises(SetupError, match="settings.norm"):
        resolve_config("mesm", sets=parse_sets(["settings.norm=middle"]))


@pytest.mark.parametrize("name", ["fe2e", "mesm"])
def test_a_run_saved_before_the_choices_existed_loads_with_what_it_was_built_with(name: str, tmp_path: Path) -> None:
    saved = resolve_config(name).to_dict()
    for key in FE2ESettings.SAVED_BEFORE:
        del saved["settings"][key]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    old = load_run_config(tmp_path / "config.yaml").settings
    assert {k: getattr(old, k) for k in FE2ESettings.SAVED_BEFORE} == FE2ESettings.SAVED_BEFORE
    entry = get_model(name)
    weights = build(name, **FE2ESettings.SAVED_BEFORE).state_dict()  # what such a run saved
    again = entry.build(SPECS, N_CLASSES, dataclasses.replace(old, **TINY), CONTEXT)
    again.load_state_dict(weights)  # strict: pre-LN's final norms and the softmax fusion's weights
    with pytest.raises(RuntimeError):  # what loading them into today's defaults would meet
        build(name).load_state_dict(weights)
    # a run saved with every key keeps its own values
    full = resolve_config(name).to_dict()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(full, sort_keys=False))
    assert dataclasses.asdict(load_run_config(tmp_path / "config.yaml").settings) == full["settings"]


@pytest.mark.parametrize("name", ["fe2e", "mesm"])
def test_end_to_end_configs_do_not_clip_gradients(name: str) -> None:
    """The authors' FE2E/MESM command lines leave --clip at its default, off; their baselines clip at 2."""
    assert resolve_config(name).optim.grad_clip == 0.0
    assert resolve_config("lf-lstm").optim.grad_clip == 2.0
