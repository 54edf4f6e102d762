"""The paper's settings where they are known: the text learning-rate factor only on pretrained
weights, MESM's p by the shards' dataset (recorded with its reason), the per-dataset ``paper``
presets, and model settings range-checked when the configuration is resolved (before any work)."""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

import pytest
import yaml

from emoprep.errors import SetupError
from emoprep.testing.shards import LABELS
from emoprep.train import albert
from emoprep.train.batch import InputSpec
from emoprep.train.config import (
    PRESETS,
    model_defaults_file,
    parse_sets,
    resolve,
    resolve_config,
)
from emoprep.train.models import ModelContext, get_model, model_names, register
from emoprep.train.run import PRETRAINED_TEXT, REST, _param_groups

PAPER_ALBERT = parse_sets(["settings.albert_path=/models/albert-base-v2"])
"""The preset only needs the folder to be given here; the run checks its content before any work."""


@pytest.fixture(autouse=True)
def _no_albert_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(albert.ENV, raising=False)


# --- 3. bad model settings fail when the configuration is resolved ------------------------------

BAD = [
    ("mesm", "settings.p=1.5", r"settings\.p must be in \(0, 1\], got 1\.5"),
    ("mesm", "settings.p=0", r"settings\.p must be in \(0, 1\]"),
    ("mesm", "settings.d_model=-4", r"settings\.d_model must be positive, got -4"),
    ("mesm", "settings.cnn_width=0", r"settings\.cnn_width must be positive"),
    ("mesm", "settings.heads=3", r"settings\.d_model \(64\) must be a multiple of settings\.heads \(3\)"),
    ("fe2e", "settings.layers=0", r"settings\.layers must be positive, got 0"),
    ("fe2e", "settings.cnn_width=-0.5", r"settings\.cnn_width must be positive"),
    ("fe2e", "settings.dropout=1.0", r"settings\.dropout must be in \[0, 1\), got 1\.0"),
    ("fe2e", "settings.mlp_hidden=0", r"settings\.mlp_hidden must be positive"),
    ("fe2e", "settings.text_encoder=bert", r"settings\.text_encoder must be one of auto, transformer, albert"),
    ("lf-lstm", "settings.hidden=-4", r"settings\.hidden must be positive, got -4"),
    ("lf-lstm", "settings.layers=0", r"settings\.layers must be positive"),
    ("lf-lstm", "settings.dropout=-0.1", r"settings\.dropout must be in \[0, 1\)"),
    ("lf-trans", "settings.d_model=0", r"settings\.d_model must be positive"),
    ("lf-trans", "settings.ff=-1", r"settings\.ff must be positive"),
    ("lf-trans", "settings.dropout=1.5", r"settings\.dropout must be in \[0, 1\)"),
    ("mult", "settings.layers=0", r"settings\.layers must be positive"),
    ("mult", "settings.kernel_size=2", r"settings\.kernel_size must be odd and positive"),
    ("mult", "settings.attn_dropout=1.0", r"settings\.attn_dropout must be in \[0, 1\)"),
    ("emoembs", "settings.emb_dim=0", r"settings\.emb_dim must be positive"),
    ("emoembs", "settings.mapping=cubic", r"settings\.mapping must be one of linear, mlp, got 'cubic'"),
    ("emoembs", "settings.dropout=1.0", r"settings\.dropout must be in \[0, 1\)"),
]


@pytest.mark.parametrize(("model", "item", "message"), BAD)
def test_bad_model_settings_are_refused_when_the_configuration_is_resolved(model: str, item: str, message: str) -> None:
    with pytest.raises(SetupError, match=message):
        resolve_config(model, sets=parse_sets([item]))


@pytest.mark.parametrize("model", model_names())
def test_every_model_validates_its_settings_and_its_defaults_pass(model: str) -> None:
    entry = get_model(model)
    assert callable(getattr(entry.settings, "validate", None))
    entry.settings().validate()
    resolve_config(model)  # the model's yaml passes too


def test_the_registry_refuses_settings_without_validate() -> None:
    @dataclasses.dataclass
    class Unchecked:
        size: int = 1

    with pytest.raises(TypeError, match="validate"):
        register("unchecked", Unchecked, "no range checks")


# --- 2. MESM's p by the shards' dataset, recorded with its reason --------------------------------

@pytest.mark.parametrize(("dataset", "p", "reason"), [
    ("iemocap", 0.7, "the paper's value for IEMOCAP shards"),
    ("mosei", 0.5, "the paper's value for MOSEI shards"),
    ("demo", 0.5, "the paper's value for MOSEI shards (demo shards are MOSEI-shaped)"),
    ("recordings", 0.5, "the paper gives no value for 'recordings' shards"),
    (None, 0.5, "dataset is unknown"),
])
def test_mesm_p_follows_the_shards_dataset(dataset: str | None, p: float, reason: str) -> None:
    r = resolve("mesm", dataset=dataset)
    assert r.config.settings.p == p
    assert r.chosen["settings.p"]["value"] == p and reason in r.chosen["settings.p"]["reason"]


def test_an_explicit_p_wins_and_is_recorded_as_such(tmp_path: Path) -> None:
    r = resolve("mesm", sets=parse_sets(["settings.p=0.9"]), dataset="iemocap")
    assert r.config.settings.p == 0.9 and r.chosen["settings.p"] == {"value": 0.9, "reason": "set by --set"}
    config = tmp_path / "mine.yaml"
    config.write_text("settings: {p: 0.5}\n")
    r = resolve("mesm", config, dataset="iemocap")
    assert r.config.settings.p == 0.5 and r.chosen["settings.p"]["reason"] == f"set by --config {config}"
    # another setting does not make p explicit
    r = resolve("mesm", sets=parse_sets(["settings.d_model=32"]), dataset="iemocap")
    assert r.config.settings.p == 0.7


def test_models_without_dataset_dependent_settings_record_nothing() -> None:
    assert resolve("fe2e", dataset="iemocap").chosen == {}
    assert resolve("lf-lstm", dataset="iemocap").config == resolve_config("lf-lstm")


# --- 2. the ``paper`` presets --------------------------------------------------------------------

@pytest.mark.parametrize(("model", "dataset", "batch", "p"), [
    ("mesm", "iemocap", 2, 0.7), ("mesm", "mosei", 2, 0.5), ("mesm", "demo", 2, 0.5),
    ("fe2e", "iemocap", 8, None), ("fe2e", "mosei", 8, None),
])
def test_paper_preset_sets_everything_the_paper_states(model: str, dataset: str, batch: int, p: float | None) -> None:
    r = resolve(model, sets=PAPER_ALBERT, dataset=dataset, preset="paper")
    cfg = r.config
    shape = "iemocap" if dataset == "iemocap" else "mosei"
    assert r.preset == {"name": "paper", "file": f"pipelines/train/{model}-{shape}.yaml", "dataset": dataset}
    assert (cfg.optim.lr, cfg.optim.text_lr_scale, cfg.optim.batch_size, cfg.optim.epochs, cfg.optim.patience) == \
        (5e-5, 0.1, batch, 40, 6)
    s = cfg.settings
    assert (s.text_encoder, s.text_max_len, s.d_model, s.layers, s.heads, s.cnn_width) == \
        ("albert", 100, 64, 4, 4, 1.0)
    assert cfg.modalities == ("text", "acoustic", "visual")
    assert cfg.task == ("singlelabel" if shape == "iemocap" else "multilabel")
    if p is not None:
        assert s.p == p and r.chosen["settings.p"]["reason"].startswith("set by --preset paper")
    # --config and --set still override the preset
    again = resolve(model, sets=parse_sets(["settings.albert_path=/a", "optim.epochs=3"]), dataset=dataset, preset="paper")
    assert again.config.optim.epochs == 3


def test_paper_preset_without_an_albert_folder_stops_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SetupError, match=r"(?s)--preset paper fine-tunes ALBERT.*settings\.albert_path.*EMOPREP_ALBERT"):
        resolve("mesm", dataset="iemocap", preset="paper")
    monkeypatch.setenv(albert.ENV, "/models/albert-base-v2")
    assert resolve("mesm", dataset="iemocap", preset="paper").config.settings.text_encoder == "albert"


@pytest.mark.parametrize(("model", "dataset", "preset", "message"), [
    ("mesm", "recordings", "paper", "IEMOCAP and MOSEI shards.*'recordings'"),
    ("mesm", None, "paper", "IEMOCAP and MOSEI shards.*None"),
    ("mesm", "iemocap", "fast", "unknown preset 'fast'; known: paper"),
    ("lf-lstm", "iemocap", "paper", "--preset paper is for fe2e, mesm.*lf-lstm.yaml"),
])
def test_paper_preset_refusals(model: str, dataset: str | None, preset: str, message: str) -> None:
    with pytest.raises(SetupError, match=message):
        resolve(model, sets=PAPER_ALBERT, dataset=dataset, preset=preset)


def test_presets_are_packaged_and_are_not_models() -> None:
    train_files = resources.files("emoprep.pipelines").joinpath("train")
    names = sorted(f.name for f in train_files.iterdir() if f.name.endswith(".yaml"))
    models = model_names()
    assert PRESETS == ("paper",)
    for model in ("fe2e", "mesm"):
        for dataset in ("iemocap", "mosei"):
            assert f"{model}-{dataset}.yaml" in names
    for name in names:
        stem = name[: -len(".yaml")]
        mapping = yaml.safe_load(train_files.joinpath(name).read_text())
        if stem in models:
            assert mapping["model"] == stem
        else:  # a preset: <model>-<dataset>.yaml for a registered model, never a model itself
            model, _, dataset = stem.rpartition("-")
            assert model in models and dataset in ("iemocap", "mosei") and mapping["model"] == model
            with pytest.raises(SetupError, match="unknown model"):
                model_defaults_file(stem)
            with pytest.raises(SetupError, match="unknown model"):
                get_model(stem)
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"train/*.yaml"' in pyproject  # the package-data glob that ships them


# --- 1. text_lr_scale applies to pretrained text encoders only ------------------------------------

@pytest.mark.parametrize(("model", "settings"), [
    ("lf-lstm", {}),
    ("fe2e", {"d_model": 8, "heads": 2, "layers": 1, "ff": 16, "mlp_hidden": 16, "cnn_width": 1 / 16}),
    ("mesm", {"d_model": 8, "heads": 2, "layers": 1, "ff": 16, "mlp_hidden": 16, "cnn_width": 1 / 16}),
])
def test_text_trained_from_scratch_gets_the_full_learning_rate(model: str, settings: dict) -> None:
    cfg = resolve_config(model, sets=parse_sets(["optim.lr=0.01", "optim.text_lr_scale=0.1"]))
    entry = get_model(model)
    specs = {"text": InputSpec("text", "tokens", "tokens", vocab_size=5)}
    if entry.family == "end_to_end":
        specs["visual"] = InputSpec("visual", "images", "face_crops", image_shape=(3, 16, 16))
    else:
        specs["acoustic"] = InputSpec("acoustic", "dense", "acoustic", dim=4)
    net = entry.build(specs, 3, dataclasses.replace(entry.settings(), **settings), ModelContext(LABELS))
    groups = _param_groups(net, cfg)
    assert [(g["name"], g["lr"]) for g in groups] == [(REST, pytest.approx(0.01))]
    assert len(groups[0]["params"]) == len(list(net.parameters()))
    assert PRETRAINED_TEXT not in {g["name"] for g in groups}
