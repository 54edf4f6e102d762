"""ALBERT as the end-to-end models' text encoder, from a local folder: a tiny randomly initialised
ALBERT and a sentencepiece tokenizer trained here, saved to a temporary folder; nothing is fetched."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from emoprep.errors import SetupError
from emoprep.testing.shards import FILLER, WORDS, build_shard_folder
from emoprep.train import albert
from emoprep.train.config import parse_sets, resolve_config
from emoprep.train.inputs import Featurizer
from emoprep.train.models import ModelContext, get_model
from emoprep.train.models.fe2e import FE2ESettings
from emoprep.train.models.lf_lstm import LFLSTMSettings
from emoprep.train.run import _param_groups, train

transformers = pytest.importorskip("transformers", reason='the ALBERT text encoder needs transformers: pip install "emoprep[albert]"')
spm = pytest.importorskip("sentencepiece")

TINY = ["optim.epochs=1", "optim.batch_size=4", "settings.d_model=8", "settings.heads=2", "settings.layers=1",
        "settings.ff=16", "settings.mlp_hidden=16", "settings.cnn_width=0.0625"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing may be fetched: offline mode in the environment and in huggingface_hub, which read
    the variable when it was imported."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.delenv(albert.ENV, raising=False)
    assert transformers.utils.hub.is_offline_mode()


def _tiny_albert(folder: Path) -> Path:
    """A sentencepiece vocabulary trained on the test shards' words, its ALBERT tokenizer, and a
    random ALBERT of hidden size 16, all saved with ``save_pretrained`` to ``folder``."""
    folder.mkdir(parents=True)
    words = [*FILLER, *WORDS.values()]
    sentences = [" ".join(words[i:] + words[:i]) for i in range(len(words))] * 3
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_prefix=str(folder / "sp"), vocab_size=60, model_type="unigram",
        pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"],
        hard_vocab_limit=False, minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=str(folder / "sp.model"))
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    try:  # transformers 5: the tokenizers-backed class takes the pieces and scores
        tokenizer = transformers.AlbertTokenizer(vocab=vocab)
    except TypeError:  # transformers 4: the sentencepiece file
        tokenizer = transformers.AlbertTokenizer(vocab_file=str(folder / "sp.model"))
    for name in ("sp.model", "sp.vocab"):
        (folder / name).unlink()
    config = transformers.AlbertConfig(vocab_size=len(tokenizer), embedding_size=8, hidden_size=16, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=32, max_position_embeddings=128)
    torch.manual_seed(0)
    transformers.AlbertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def albert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_albert(tmp_path_factory.mktemp("albert") / "tiny-albert")


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_shard_folder(tmp_path_factory.mktemp("e2e") / "s", {"train": 12, "valid": 6, "test": 6},
                              crops=True, logmel=True, face_mesh=False)


def _sets(albert_dir: Path | None, *extra: str) -> dict:
    """Tiny fe2e/mesm settings with ALBERT text (from ``albert_dir``, or from EMOPREP_ALBERT when None)."""
    folder = [] if albert_dir is None else [f"settings.albert_path={albert_dir}"]
    return parse_sets([*TINY, "settings.text_encoder=albert", *folder, *extra])


@pytest.mark.parametrize("model", ["fe2e", "mesm"])
def test_albert_text_is_trained_end_to_end(model: str, albert_dir: Path, shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    metrics = train(model, shards, out, sets=_sets(albert_dir, "optim.text_lr_scale=0.1"), quiet=True)
    assert metrics["epochs_run"] == 1 and "test" in metrics

    info = json.loads((out / "run.json").read_text())
    assert info["inputs"]["text"] == {"column": "text", "reason": f"ALBERT tokenizer from {albert_dir.resolve()}"}
    saved = json.loads((out / "featurizer.json").read_text())
    assert saved["branches"]["text"]["tokenizer"] == str(albert_dir.resolve()) and saved["vocab"] == []
    assert saved["branches"]["text"]["max_tokens"] == 100

    # the ALBERT weights are trained: the best checkpoint differs from the folder's
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    start = transformers.AlbertModel.from_pretrained(albert_dir, local_files_only=True).state_dict()
    prefix = "branches.text.albert."
    albert_keys = [k for k in best if k.startswith(prefix)]
    assert len(albert_keys) == len(start)
    changed = [k for k in albert_keys if not torch.equal(best[k], start[k[len(prefix):]])]
    assert "branches.text.albert.embeddings.word_embeddings.weight" in changed
    assert any(".encoder." in k for k in changed)

    # ALBERT's own (pretrained) weights learn at lr * text_lr_scale; the projection and head on top
    # start random and learn at lr, like everything else; run.json records both groups
    albert_size = sum(p.numel() for p in transformers.AlbertModel.from_pretrained(albert_dir, local_files_only=True).parameters())
    assert info["param_groups"] == [
        {"name": "rest", "lr": pytest.approx(5e-5), "parameters": info["parameters"] - albert_size},
        {"name": "pretrained text encoder (ALBERT)", "lr": pytest.approx(5e-6), "parameters": albert_size},
    ]
    cfg = resolve_config(model, sets=_sets(albert_dir, "optim.text_lr_scale=0.1"))
    entry = get_model(model)
    featurizer = Featurizer.load(out / "featurizer.json")
    specs = featurizer.specs()
    assert specs["text"].kind == "tokens" and specs["text"].column == "text"
    assert specs["text"].vocab_size == len(transformers.AutoTokenizer.from_pretrained(albert_dir, local_files_only=True))
    net = entry.build(specs, 3, cfg.settings, ModelContext(("a", "b", "c")))
    groups = _param_groups(net, cfg)
    text_group = next(g for g in groups if g["lr"] == pytest.approx(cfg.optim.lr * 0.1))
    ids = {id(p) for p in text_group["params"]}
    albert_params = list(net.branches["text"].albert.parameters())
    assert albert_params and all(id(p) in ids for p in albert_params)
    assert len(ids) == len(albert_params)
    on_top = [*net.branches["text"].proj.parameters(), *net.branches["text"].head.parameters()]
    assert not any(id(p) in ids for p in [*on_top, *net.branches["visual"].parameters()])
    rest = next(g for g in groups if g["name"] == "rest")
    assert rest["lr"] == pytest.approx(cfg.optim.lr) and all(any(p is q for q in rest["params"]) for p in on_top)


def test_albert_featuriser_tokenises_raw_text(albert_dir: Path, shards: Path) -> None:
    from emoprep.format.manifest import read_manifest
    from emoprep.train.data import ShardStream
    from emoprep.train.inputs import choose_branches

    choice = albert.text_choice(FE2ESettings(text_encoder="albert", albert_path=str(albert_dir), text_max_len=5), ("text",))
    branches = choose_branches(read_manifest(shards), ("text",), {}, "end_to_end", choice)
    featurizer, _ = Featurizer.fit(shards, branches, ("anger", "happiness", "sadness"), 500)
    tokenizer = transformers.AutoTokenizer.from_pretrained(albert_dir, local_files_only=True)
    rows = list(ShardStream(shards, "valid", ["utterance_id", "split", "emotions", "text"]))
    examples = list(ShardStream(shards, "valid", featurizer.columns(), transform=featurizer))
    assert examples
    for (_, _, _, inputs), row in zip(examples, [r for r in rows if r["emotions"] is not None]):
        ids, mask = inputs["text"]
        assert ids.tolist() == tokenizer(row["text"], truncation=True, max_length=5)["input_ids"]
        assert len(ids) <= 5 and ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id and mask.all()
    again = Featurizer.from_json(json.loads(json.dumps(featurizer.to_json())))
    assert again.branches == featurizer.branches
    with pytest.raises(SetupError, match="leave inputs.text at auto"):
        choose_branches(read_manifest(shards), ("text",), {"text": "tokens"}, "end_to_end", choice)


def test_missing_folder_or_library_stops_before_the_run_folder(albert_dir: Path, shards: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    with pytest.raises(SetupError, match=r"(?s)does not exist.*save_pretrained"):
        train("fe2e", shards, out, sets=_sets(tmp_path / "nowhere"), quiet=True)
    assert not out.exists() or not any(out.iterdir())

    with pytest.raises(SetupError, match="settings.albert_path or EMOPREP_ALBERT"):
        train("fe2e", shards, out, sets=_sets(None), quiet=True)
    monkeypatch.setenv(albert.ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(SetupError, match="elsewhere does not exist"):
        train("fe2e", shards, out, sets=_sets(None), quiet=True)

    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / "config.json").write_text((albert_dir / "config.json").read_text())
    with pytest.raises(SetupError, match=r"has no weights \(model.safetensors or pytorch_model.bin\)"):
        train("fe2e", shards, out, sets=_sets(incomplete), quiet=True)
    assert not out.exists() or not any(out.iterdir())

    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers now raises ImportError
    with pytest.raises(SetupError, match=r'pip install "emoprep\[albert\]"'):
        train("fe2e", shards, out, sets=_sets(albert_dir), quiet=True)
    assert not out.exists() or not any(out.iterdir())


def test_paper_preset_trains_albert_at_a_tenth_of_the_lr(albert_dir: Path, shards: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``--preset paper`` on IEMOCAP shards: ALBERT from the folder, p = 0.7, all recorded in run.json
    (training itself is skipped: the records are written before it)."""
    iemocap = Path(shutil.copytree(shards, tmp_path / "iemocap"))
    manifest = json.loads((iemocap / "manifest.json").read_text())
    (iemocap / "manifest.json").write_text(json.dumps({**manifest, "dataset": "iemocap"}))
    monkeypatch.setattr("emoprep.train.run._fit_and_evaluate", lambda *args: {})
    monkeypatch.setenv(albert.ENV, str(albert_dir))
    out = tmp_path / "run"
    train("mesm", iemocap, out, sets=parse_sets(TINY), preset="paper", quiet=True)
    info = json.loads((out / "run.json").read_text())
    assert info["preset"] == {"name": "paper", "file": "pipelines/train/mesm-iemocap.yaml", "dataset": "iemocap"}
    assert info["chosen"]["settings.p"]["value"] == 0.7
    assert info["chosen"]["settings.p"]["reason"].startswith("set by --preset paper")
    assert [(g["name"], g["lr"]) for g in info["param_groups"]] == [
        ("rest", pytest.approx(5e-5)), ("pretrained text encoder (ALBERT)", pytest.approx(5e-6))]
    assert info["inputs"]["text"]["reason"] == f"ALBERT tokenizer from {albert_dir.resolve()}"


def test_text_encoder_setting_is_checked(shards: Path, tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="text_encoder must be one of auto, transformer, albert"):
        train("fe2e", shards, tmp_path / "run", sets=parse_sets([*TINY, "settings.text_encoder=bert"]), quiet=True)
    assert albert.text_choice(FE2ESettings(text_encoder="albert"), ("acoustic", "visual")) is None  # no text, no ALBERT
    assert albert.text_choice(LFLSTMSettings(), ("text",)) is None  # models without the setting
