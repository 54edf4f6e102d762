"""ALBERT as the text encoder of the end-to-end models, from a local folder only (never the network).

The MESM authors fine-tuned ALBERT-base on the utterances' words (at most 100 tokens, text part at
lr/10).  emoprep trains offline by default (a transformer over GloVe vectors or learned token
embeddings); with ``settings.text_encoder=albert`` the text branch of ``fe2e``/``mesm`` is ALBERT
instead, read from a folder that holds a model and its tokenizer as written by ``save_pretrained``.
Get one on a machine with internet (``pip install "emoprep[albert]"``)::

    from transformers import AlbertModel, AutoTokenizer
    AlbertModel.from_pretrained("albert-base-v2").save_pretrained("models/albert-base-v2")
    AutoTokenizer.from_pretrained("albert-base-v2").save_pretrained("models/albert-base-v2")

(with transformers 5, which writes ``tokenizer.json``: a folder with only a sentencepiece
``spiece.model`` needs protobuf >= 5 to convert, which mediapipe's pin refuses), then copy the
folder and train with ``--set settings.text_encoder=albert --set
settings.albert_path=models/albert-base-v2`` (or ``EMOPREP_ALBERT=models/albert-base-v2``).

What happens then:

- :func:`text_choice` (called by the run before any training work) checks that ``transformers`` is
  importable and that the folder holds an ALBERT configuration, weights and a tokenizer that loads;
  anything missing is a :class:`~emoprep.errors.SetupError` that says what to do.
- The text branch reads the shards' raw ``text`` column (every shard has it) and the featuriser
  tokenises it with the folder's tokenizer in the DataLoader workers: ``[CLS] ... [SEP]``, at most
  ``settings.text_max_len`` ids (``data.max_len`` does not apply).  The run records
  ``inputs.text = {"column": "text", "reason": "ALBERT tokenizer from <folder>"}``; the saved
  featuriser stores the folder, not the vocabulary.
- The model's text branch is ``AlbertModel.from_pretrained(folder)`` run with the attention mask;
  its ``[CLS]`` hidden state (``settings.text_summary: cls``, the authors'; ``pooler``: the pooled
  output), projected to ``d_model``, gives the text logits and MESM's query.
  ALBERT's own weights train at ``optim.lr * optim.text_lr_scale`` (the paper: lr/10); the
  projection and the text head on top start random and train at ``optim.lr``.

Everything is loaded with ``local_files_only=True``: a missing file is an error, never a download.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import SetupError

ENV = "EMOPREP_ALBERT"
"""Environment variable naming the ALBERT folder when ``settings.albert_path`` is empty."""
TEXT_ENCODERS = ("auto", "transformer", "albert")
"""``auto`` = ``transformer``: over GloVe vectors, else learned token embeddings; ``albert``: ALBERT."""
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
INSTALL = 'pip install "emoprep[albert]"'
HOW_TO_GET = (
    "on a machine with internet run\n"
    "    from transformers import AlbertModel, AutoTokenizer\n"
    '    AlbertModel.from_pretrained("albert-base-v2").save_pretrained(DIR)\n'
    '    AutoTokenizer.from_pretrained("albert-base-v2").save_pretrained(DIR)\n'
    f"and copy DIR here, then pass --set settings.albert_path=DIR (or set {ENV}=DIR)"
)


@dataclass(frozen=True)
class AlbertChoice:
    """The checked ALBERT folder (absolute) and how many token ids a text may have."""

    folder: str
    max_len: int


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise SetupError(f"settings.text_encoder=albert needs the transformers library: {INSTALL}") from None
    return transformers


def albert_folder(albert_path: str) -> Path:
    """``albert_path``, else ``$EMOPREP_ALBERT``, as an absolute path (not yet checked)."""
    raw = albert_path or os.environ.get(ENV, "")
    if not raw:
        raise SetupError(f"settings.text_encoder=albert needs a local ALBERT folder: set settings.albert_path "
                         f"or {ENV}; to get one, {HOW_TO_GET}")
    return Path(raw).expanduser().resolve()


def check_folder(folder: Path, max_len: int | None = None) -> None:
    """SetupError unless ``transformers`` imports and ``folder`` holds an ALBERT model and tokenizer."""
    _transformers()
    if not folder.is_dir():
        raise SetupError(f"the ALBERT folder {folder} does not exist; to get one, {HOW_TO_GET}")
    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        missing.append(f"weights ({' or '.join(WEIGHT_FILES[::2])})")
    if missing:
        raise SetupError(f"the ALBERT folder {folder} has no {' and no '.join(missing)}; to get a complete one, {HOW_TO_GET}")
    config = load_config(str(folder))
    if config.model_type != "albert":
        raise SetupError(f"{folder} holds a {config.model_type!r} model, not ALBERT; to get ALBERT, {HOW_TO_GET}")
    tokenizer = load_tokenizer(str(folder))
    if len(tokenizer) > config.vocab_size:
        raise SetupError(f"the tokenizer in {folder} has {len(tokenizer)} ids but the model only {config.vocab_size}: "
                         "they are not a pair; save both from the same checkpoint")
    if max_len is not None and not 3 <= max_len <= config.max_position_embeddings:
        raise SetupError(f"settings.text_max_len must be between 3 and {config.max_position_embeddings} (the model's "
                         f"positions), got {max_len}")


def text_choice(settings: Any, modalities: tuple[str, ...]) -> AlbertChoice | None:
    """The checked ALBERT folder when the model's text encoder is ALBERT and text is used, else None.

    ``settings`` is the model's typed settings (already validated: ``text_encoder`` is one of
    :data:`TEXT_ENCODERS`); a model without a ``text_encoder`` setting never uses ALBERT.  The run
    calls it before any training work, so that a missing library or folder stops it at once.
    """
    if getattr(settings, "text_encoder", "auto") != "albert" or "text" not in modalities:
        return None
    folder = albert_folder(settings.albert_path)
    max_len = settings.text_max_len
    check_folder(folder, max_len)
    return AlbertChoice(str(folder), max_len)


def _quiet_load(load: Any, *args: Any, **kwargs: Any) -> Any:
    """``load(*args, local_files_only=True, **kwargs)`` without progress bars; library errors
    (unreadable files, a tokenizer that needs a missing package) as SetupErrors."""
    transformers = _transformers()
    logging = transformers.utils.logging
    bars = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        return load(*args, local_files_only=True, **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        raise SetupError(f"cannot load ALBERT from {args[0]}: {exc}; to get a complete folder, {HOW_TO_GET}") from None
    finally:
        if bars:
            logging.enable_progress_bar()


@lru_cache(maxsize=4)
def load_config(folder: str) -> Any:
    return _quiet_load(_transformers().AutoConfig.from_pretrained, folder)


@lru_cache(maxsize=4)
def load_tokenizer(folder: str) -> Any:
    """The folder's tokenizer, once per process (each DataLoader worker loads its own)."""
    # Row groups are tokenised in loader workers: the Rust thread pool buys nothing there and warns
    # when a process that used it forks.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return _quiet_load(_transformers().AutoTokenizer.from_pretrained, folder)


def load_model(folder: str) -> Any:
    """``AlbertModel`` with the folder's weights (a fresh module each call: it is trained)."""
    return _quiet_load(_transformers().AlbertModel.from_pretrained, folder)


def vocab_size(folder: str) -> int:
    return len(load_tokenizer(folder))


def tokenize(folder: str, texts: list[str | None], max_len: int) -> list[list[int]]:
    """Ids of each text, ``[CLS] ... [SEP]`` cut to ``max_len``; an empty or missing text gives no ids."""
    keep = [i for i, t in enumerate(texts) if t and t.strip()]
    out: list[list[int]] = [[] for _ in texts]
    if keep:
        encoded = load_tokenizer(folder)([texts[i] for i in keep], truncation=True, max_length=max_len,
                                         add_special_tokens=True)["input_ids"]
        for i, ids in zip(keep, encoded):
            out[i] = list(ids)
    return out
