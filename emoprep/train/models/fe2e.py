"""FE2E: the MESM paper's fully end-to-end model (IEMOCAP 84.5 Acc / 58.8 F1, MOSEI 67.6 WAcc).

Each image modality (RGB face crops, log-mel chunks) goes through its CNN (:mod:`.cnn`) one image
per position, then an MLP to ``d``; each modality then has a transformer with a learned CLS token
whose output gives that modality's logits, and the logits are fused by a learned weighted sum over
the modalities each row really has (``fusion: linear``, the authors' ``Linear(M, 1, bias=False)``
with an absent modality counting 0: :class:`~.common.LinearFusion`; or ``softmax``:
:class:`~.common.LateFusion`).

Text, offline by default (``text_encoder: auto``, same as ``transformer``), is a transformer over the
shards' GloVe vectors, or over learned token embeddings when the shards have none.  As in the paper,
it can instead be ALBERT-base fine-tuned on the raw text (``text_encoder: albert``, ``albert_path:
DIR`` or ``EMOPREP_ALBERT=DIR``, at most ``text_max_len`` tokens; needs ``pip install
"emoprep[albert]"``): the model is read from the local folder DIR, never downloaded, and its
``[CLS]`` hidden state (``text_summary: cls``, the authors'; or ``pooler``) projected to
``d_model`` gives the text logits and MESM's query (see
:mod:`emoprep.train.albert` for how to get DIR).  Dense hand-crafted inputs, if given, get the text
treatment.

Masked positions (frames without a face, padding) are never replaced by an invented crop: the CNN
runs only on the valid images of the batch (gathered, then scattered back), so they cost nothing,
cannot move the batch-norm statistics, and the transformer masks them out.  Unlike the authors'
transformer, this one adds sinusoidal positions by default (``positions``): the order of frames,
chunks and words matters, and the default text encoder over GloVe has no other source of order.

The transformer (``norm``), the dropouts (``input_dropout``, ``head_dropout``), the fusion and the
ALBERT summary default to the authors' code; each setting says what the other choice does, and the
README's table "FE2E and MESM against the authors' code" lists every difference and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ...errors import SetupError
from .. import albert
from ..batch import InputSpec, ModalityInput
from . import ModelContext, check_dropout, check_one_of, check_positive, check_width_heads, register
from .cnn import ImageCNN
from .common import InputProjection, LateFusion, LinearFusion, nonempty, sinusoidal_encoding

NORMS = ("post", "pre")
POSITIONS = ("sinusoidal", "none")
FUSIONS = ("linear", "softmax")
TEXT_SUMMARIES = ("cls", "pooler")


@dataclass(frozen=True)
class FE2ESettings:
    d_model: int = 64
    layers: int = 4
    heads: int = 4
    ff: int = 2048
    """Feed-forward width of each transformer layer (the authors' code: PyTorch's default, 2048)."""
    dropout: float = 0.1
    cnn_width: float = 1.0
    """Multiplier on every CNN channel count (and MESM's attention sizes); 1.0 = the paper."""
    mlp_hidden: int = 1024
    """Hidden width of the MLP from the flattened CNN output to ``d_model`` (the authors': 1024)."""
    text_encoder: str = "auto"
    """``auto`` = ``transformer`` (over GloVe vectors, else learned token embeddings; offline) or
    ``albert`` (ALBERT from ``albert_path``, as in the paper; see :mod:`emoprep.train.albert`)."""
    albert_path: str = ""
    """Local folder with an ALBERT model and tokenizer saved by ``save_pretrained``; empty: the
    environment variable ``EMOPREP_ALBERT``.  Never downloaded."""
    text_max_len: int = 100
    """Most ALBERT tokens per utterance, ``[CLS]`` and ``[SEP]`` included (the paper: 100)."""
    # Architecture choices against the authors' code (README, "FE2E and MESM against the authors'
    # code"); the defaults are the authors' except ``positions``.
    norm: str = "post"
    """``post``: each transformer layer normalises after its residual additions and the stack has no
    final norm (the authors': PyTorch's default ``TransformerEncoderLayer``); ``pre``: normalise
    before each sublayer, plus a final ``LayerNorm``."""
    positions: str = "sinusoidal"
    """``sinusoidal``: fixed sine/cosine positions added to the sequence; ``none``: no positions (the
    authors commented theirs out), which makes every branch a bag of frames, chunks or words."""
    input_dropout: bool = False
    """Dropout (``dropout``) on the encoder's input sequence; the authors' had none."""
    head_dropout: bool = False
    """Dropout (``dropout``) on each branch's summary before its logits; the authors' had none."""
    fusion: str = "linear"
    """``linear``: the authors' ``Linear(M, 1, bias=False)`` over the stacked logits, an absent
    modality contributing 0; ``softmax``: weights softmax-normalised over the modalities the row
    has (:class:`~.common.LinearFusion`, :class:`~.common.LateFusion`)."""
    text_summary: str = "cls"
    """With ``text_encoder: albert``, which output summarises the text: ``cls``, the last hidden
    state at ``[CLS]`` (the authors'), or ``pooler``, ALBERT's pooled output (tanh of a dense layer
    on it)."""

    SAVED_BEFORE: ClassVar[dict[str, Any]] = {"norm": "pre", "positions": "sinusoidal", "input_dropout": True,
                                              "head_dropout": True, "fusion": "softmax", "text_summary": "pooler"}
    """What a run saved before these settings existed was built with (its ``config.yaml`` lacks them):
    :func:`emoprep.train.config.load_run_config` fills them in, so that its weights still load."""

    def validate(self) -> None:
        """Range checks (see :mod:`emoprep.train.models`): run on resolving the run's configuration,
        before any shard is read, and again by the constructor."""
        check_width_heads(self)
        check_positive(self, "layers", "ff", "mlp_hidden", "cnn_width")
        check_dropout(self, "dropout")
        check_one_of(self, "text_encoder", albert.TEXT_ENCODERS)
        if self.text_max_len < 3:
            raise SetupError(f"settings.text_max_len must be at least 3 ([CLS], a token, [SEP]), got {self.text_max_len}")
        check_one_of(self, "norm", NORMS)
        check_one_of(self, "positions", POSITIONS)
        check_one_of(self, "fusion", FUSIONS)
        check_one_of(self, "text_summary", TEXT_SUMMARIES)
        for name in ("input_dropout", "head_dropout"):  # for a model built without emoprep.settings.build
            if not isinstance(getattr(self, name), bool):
                raise SetupError(f"settings.{name} must be true or false, got {getattr(self, name)!r}")


def dropout_if(wanted: bool, s: FE2ESettings) -> nn.Module:
    """``Dropout(s.dropout)`` where a setting asks for it, else nothing (no parameters either way)."""
    return nn.Dropout(s.dropout) if wanted else nn.Identity()


class SequenceEncoder(nn.Module):
    """Learned CLS token (+ sinusoidal positions) -> transformer encoder -> CLS output ``(B, d)``.

    ``norm: post`` (default) is the authors' encoder: PyTorch's default layer (post-LN, ReLU,
    feed-forward ``ff``, dropout ``dropout`` inside the layers) and no final norm; ``pre`` normalises
    before each sublayer and ends with a ``LayerNorm``.  The CLS vector starts as ``N(0, 1)``, like
    the authors' ``nn.Embedding(1, d)``.

    The CLS key is never masked, so a row with no real position attends to it alone: finite, no
    NaN, and the fusion drops that row's logits anyway.
    """

    def __init__(self, s: FE2ESettings) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.randn(s.d_model))
        self.positions = s.positions == "sinusoidal"
        self.drop = dropout_if(s.input_dropout, s)
        pre = s.norm == "pre"
        layer = nn.TransformerEncoderLayer(
            s.d_model, s.heads, s.ff, s.dropout, batch_first=True, norm_first=pre,
        )
        self.encoder = nn.TransformerEncoder(
            layer, s.layers, norm=nn.LayerNorm(s.d_model) if pre else None, enable_nested_tensor=False,
        )

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.cls.expand(h.shape[0], 1, -1), h], dim=1)
        if self.positions:
            h = h + sinusoidal_encoding(h.shape[1], h.shape[2], h.device)
        pad = torch.cat([mask.new_zeros(mask.shape[0], 1), ~mask], dim=1)
        return self.encoder(self.drop(h), src_key_padding_mask=pad)[:, 0]


class SequenceBranch(nn.Module):
    """Text (or any dense/token sequence): projection to ``d``, encoder, logits from the CLS output."""

    def __init__(self, spec: InputSpec, n_classes: int, s: FE2ESettings) -> None:
        super().__init__()
        self.proj = InputProjection(spec, s.d_model)
        self.encoder = SequenceEncoder(s)
        self.drop = dropout_if(s.head_dropout, s)
        self.head = nn.Linear(s.d_model, n_classes)

    def forward(self, x: ModalityInput) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits (B, C), CLS output (B, d))``: MESM queries its attention with the latter."""
        summary = self.encoder(self.proj(x.values, x.mask), x.mask)
        return self.head(self.drop(summary)), summary

    def flop_stages(self) -> list[tuple[str, nn.Module]]:
        return [("proj", self.proj), ("encoder", self.encoder)]


class AlbertBranch(nn.Module):
    """Text through ALBERT (weights from a local folder, trained with the rest): its ``[CLS]`` last
    hidden state (``text_summary: cls``, the authors') or pooled output (``pooler``), projected to
    ``d``, gives the logits and the summary (MESM's query).  With ``cls`` the pooler's weights are
    frozen: they are not used, and DistributedDataParallel wants a gradient for every trainable one.

    A row without text keeps one key unmasked so that attention stays finite; the fusion and MESM's
    query drop that row's output anyway.
    """

    def __init__(self, spec: InputSpec, n_classes: int, s: FE2ESettings) -> None:
        super().__init__()
        if spec.kind != "tokens" or spec.column != "text":
            raise SetupError(f"text_encoder=albert reads the raw text column tokenised by ALBERT's tokenizer "
                             f"(emoprep train chooses it), but this text input is {spec.kind} {spec.column!r}")
        folder = albert.albert_folder(s.albert_path)
        albert.check_folder(folder, s.text_max_len)
        self.albert = albert.load_model(str(folder))
        if spec.vocab_size > self.albert.config.vocab_size:
            raise SetupError(f"the text input has {spec.vocab_size} token ids but the ALBERT model in {folder} only "
                             f"{self.albert.config.vocab_size}: the tokenizer and the model are not a pair")
        self.pooler = s.text_summary == "pooler"
        if not self.pooler and getattr(self.albert, "pooler", None) is not None:
            self.albert.pooler.requires_grad_(False)
        self.drop = dropout_if(s.head_dropout, s)
        self.proj = nn.Linear(self.albert.config.hidden_size, s.d_model)
        self.head = nn.Linear(s.d_model, n_classes)

    def forward(self, x: ModalityInput) -> tuple[torch.Tensor, torch.Tensor]:
        mask = x.mask.clone()
        mask[:, 0] |= ~x.present
        out = self.albert(input_ids=x.values.masked_fill(~mask, 0), attention_mask=mask.long())
        summary = self.proj(out.pooler_output if self.pooler else out.last_hidden_state[:, 0])
        return self.head(self.drop(summary)), summary

    def flop_stages(self) -> list[tuple[str, nn.Module]]:
        return [("albert", self.albert), ("proj", self.proj)]


class ImageBranch(nn.Module):
    """CNN on the valid images only, MLP to ``d``, encoder over the sequence, logits from the CLS.

    A batch with no valid image still runs the CNN, on zero images: every parameter then gets a
    (zero) gradient, which DistributedDataParallel needs, and batch norm leaves its statistics alone.
    """

    def __init__(self, spec: InputSpec, n_classes: int, s: FE2ESettings, cnn: ImageCNN) -> None:
        super().__init__()
        self.cnn = cnn
        self.d = s.d_model
        self.mlp = nn.Sequential(
            nn.Linear(cnn.out_features, s.mlp_hidden), nn.ReLU(), nn.Linear(s.mlp_hidden, s.d_model),
        )
        self.encoder = SequenceEncoder(s)
        self.drop = dropout_if(s.head_dropout, s)
        self.head = nn.Linear(s.d_model, n_classes)

    def forward(self, x: ModalityInput,
                query: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``query (B, dq)``: one vector per row for MESM's selectors, repeated for the row's images."""
        b, t = x.mask.shape
        per_image = None if query is None else query.unsqueeze(1).expand(b, t, -1)[x.mask]
        features = self.mlp(self.cnn(x.values[x.mask], per_image))
        h = features.new_zeros(b, t, self.d).index_put((x.mask,), features)
        summary = self.encoder(h, x.mask)
        return self.head(self.drop(summary)), summary

    def flop_stages(self) -> list[tuple[str, nn.Module]]:
        stages = [(f"stage{i + 1}", stage) for i, stage in enumerate(self.cnn.stages)]
        return [("stem", self.cnn.stem), ("low", self.cnn.low), *stages,
                ("mlp", self.mlp), ("encoder", self.encoder)]


@register("fe2e", FE2ESettings,
          "FE2E: CNNs on face crops and log-mel chunks, a CLS transformer per modality, weighted late fusion "
          "(MESM paper)", family="end_to_end")
class FE2E(nn.Module):
    def __init__(self, inputs: dict[str, InputSpec], n_classes: int, settings: FE2ESettings,
                 context: ModelContext) -> None:
        super().__init__()
        settings.validate()
        self.branches = nn.ModuleDict({m: self.build_branch(spec, n_classes, settings) for m, spec in inputs.items()})
        self.fusion = LinearFusion(len(inputs)) if settings.fusion == "linear" else LateFusion(len(inputs))

    def build_branch(self, spec: InputSpec, n_classes: int, settings: FE2ESettings) -> nn.Module:
        if spec.modality == "text" and settings.text_encoder == "albert":
            return AlbertBranch(spec, n_classes, settings)
        if spec.column == "text":
            raise SetupError("the text input is raw text tokenised for ALBERT, but settings.text_encoder is "
                             f"{settings.text_encoder!r}, not albert")
        if spec.kind != "images":
            return SequenceBranch(spec, n_classes, settings)
        return ImageBranch(spec, n_classes, settings, self.image_cnn(spec, settings))

    def image_cnn(self, spec: InputSpec, settings: FE2ESettings) -> ImageCNN:
        """The CNN of an image modality: dense stages here; MESM overrides it with selectors before
        the stages and sparse stages."""
        return ImageCNN(spec, settings.cnn_width)

    def query(self, inputs: dict[str, ModalityInput],
              results: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor | None:
        """The vector the image branches' selectors attend with, per row (FE2E has no selectors)."""
        return None

    def forward(self, inputs: dict[str, ModalityInput]) -> torch.Tensor:
        inputs = nonempty(inputs)
        images = {m for m, branch in self.branches.items() if isinstance(branch, ImageBranch)}
        results = {m: branch(inputs[m]) for m, branch in self.branches.items() if m not in images}
        query = self.query(inputs, results)
        results.update({m: self.branches[m](inputs[m], query) for m in images})
        logits = torch.stack([results[m][0] for m in self.branches], dim=1)
        present = torch.stack([inputs[m].present for m in self.branches], dim=1)
        return self.fusion(logits, present)

    def flop_stages(self) -> list[tuple[str, nn.Module]]:
        """Rows of :func:`emoprep.train.flops.count_flops`' table."""
        return [(f"{m}.{name}", module)
                for m, branch in self.branches.items() for name, module in branch.flop_stages()]
