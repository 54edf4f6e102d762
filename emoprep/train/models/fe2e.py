"""FE2E: the MESM paper's fully end-to-end model (IEMOCAP 84.5 Acc / 58.8 F1, MOSEI 67.6 WAcc).

Each image modality (RGB face crops, log-mel chunks) goes through its CNN (:mod:`.cnn`) one image
per position, then an MLP to ``d``; each modality then has a transformer with a learned CLS token
whose output gives that modality's logits, and the logits are fused by a learned weighted sum over
the modalities each row really has (:class:`LateFusion`).

Text, offline by default (``text_encoder: auto``, same as ``transformer``), is a transformer over the
shards' GloVe vectors, or over learned token embeddings when the shards have none.  As in the paper,
it can instead be ALBERT-base fine-tuned on the raw text (``text_encoder: albert``, ``albert_path:
DIR`` or ``EMOPREP_ALBERT=DIR``, at most ``text_max_len`` tokens; needs ``pip install
"emoprep[albert]"``): the model is read from the local folder DIR, never downloaded, and its pooled
``[CLS]`` output projected to ``d_model`` gives the text logits and MESM's query (see
:mod:`emoprep.train.albert` for how to get DIR).  Dense hand-crafted inputs, if given, get the text
treatment.

Masked positions (frames without a face, padding) are never replaced by an invented crop: the CNN
runs only on the valid images of the batch (gathered, then scattered back), so they cost nothing,
cannot move the batch-norm statistics, and the transformer masks them out.  Unlike the authors'
transformer, this one adds sinusoidal positions: the order of frames, chunks and words matters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ...errors import SetupError
from .. import albert
from ..batch import InputSpec, ModalityInput
from . import ModelContext, register
from .cnn import ImageCNN
from .common import InputProjection, LateFusion, check_heads, nonempty, sinusoidal_encoding


@dataclass
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


def check_settings(s: FE2ESettings) -> None:
    check_heads(s.d_model, s.heads)
    if s.text_encoder not in albert.TEXT_ENCODERS:
        raise SetupError(f"text_encoder must be one of {', '.join(albert.TEXT_ENCODERS)}, got {s.text_encoder!r}")
    if s.layers < 1 or s.ff < 1 or s.mlp_hidden < 1:
        raise SetupError(f"layers, ff and mlp_hidden must be positive, got {s.layers}, {s.ff}, "
                         f"{s.mlp_hidden}")
    if s.cnn_width <= 0:
        raise SetupError(f"cnn_width must be positive, got {s.cnn_width}")


class SequenceEncoder(nn.Module):
    """Learned CLS token + sinusoidal positions -> pre-LN transformer encoder -> CLS output ``(B, d)``.

    The CLS key is never masked, so a row with no real position attends to it alone: finite, no
    NaN, and the fusion drops that row's logits anyway.
    """

    def __init__(self, s: FE2ESettings) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.randn(s.d_model) * 0.02)
        self.drop = nn.Dropout(s.dropout)
        layer = nn.TransformerEncoderLayer(
            s.d_model, s.heads, s.ff, s.dropout, batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, s.layers, norm=nn.LayerNorm(s.d_model), enable_nested_tensor=False,
        )

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.cls.expand(h.shape[0], 1, -1), h], dim=1)
        h = self.drop(h + sinusoidal_encoding(h.shape[1], h.shape[2], h.device))
        pad = torch.cat([mask.new_zeros(mask.shape[0], 1), ~mask], dim=1)
        return self.encoder(h, src_key_padding_mask=pad)[:, 0]


class SequenceBranch(nn.Module):
    """Text (or any dense/token sequence): projection to ``d``, encoder, logits from the CLS output."""

    def __init__(self, spec: InputSpec, n_classes: int, s: FE2ESettings) -> None:
        super().__init__()
        self.proj = InputProjection(spec, s.d_model)
        self.encoder = SequenceEncoder(s)
        self.drop = nn.Dropout(s.dropout)
        self.head = nn.Linear(s.d_model, n_classes)

    def forward(self, x: ModalityInput) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits (B, C), CLS output (B, d))``: MESM queries its attention with the latter."""
        summary = self.encoder(self.proj(x.values, x.mask), x.mask)
        return self.head(self.drop(summary)), summary

    def flop_stages(self) -> list[tuple[str, nn.Module]]:
        return [("proj", self.proj), ("encoder", self.encoder)]


class AlbertBranch(nn.Module):
    """Text through ALBERT (weights from a local folder, trained with the rest): the pooled ``[CLS]``
    output, projected to ``d``, gives the logits and the summary (MESM's query).

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
        self.drop = nn.Dropout(s.dropout)
        self.proj = nn.Linear(self.albert.config.hidden_size, s.d_model)
        self.head = nn.Linear(s.d_model, n_classes)

    def forward(self, x: ModalityInput) -> tuple[torch.Tensor, torch.Tensor]:
        mask = x.mask.clone()
        mask[:, 0] |= ~x.present
        out = self.albert(input_ids=x.values.masked_fill(~mask, 0), attention_mask=mask.long())
        summary = self.proj(out.pooler_output)
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
        self.drop = nn.Dropout(s.dropout)
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
        check_settings(settings)
        self.branches = nn.ModuleDict({m: self.build_branch(spec, n_classes, settings) for m, spec in inputs.items()})
        self.fusion = LateFusion(len(inputs))

    def build_branch(self, spec: InputSpec, n_classes: int, settings: FE2ESettings) -> nn.Module:
        if spec.modality == "text" and settings.text_encoder == "albert":
            return AlbertBranch(spec, n_classes, settings)
        if spec.column == "text":
            raise SetupError("the text input is raw text tokenised for ALBERT, but settings.text_encoder is "
                             f"{settings.text_encoder!r}, not albert")
        if spec.kind != "images":
            return SequenceBranch(spec, n_classes, settings)
        cnn = ImageCNN(spec, settings.cnn_width, self.selector(settings))
        return ImageBranch(spec, n_classes, settings, cnn)

    def selector(self, settings: FE2ESettings) -> Callable[[int], nn.Module] | None:
        """What the CNN puts before each stage, as ``selector(in_channels)``: nothing (dense
        stages) here; MESM overrides it with its text-queried attention."""
        return None

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
