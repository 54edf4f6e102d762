"""Looking inside a model: counted FLOPs for given input sizes or a run's own utterances, and the
MESM attention pictures (the paper's figure: where the text-queried attention looks on the faces and
the spectrogram, and which positions the nucleus keeps).

Both work from a finished run folder (its weights, featuriser and shards) or, for FLOPs, from a
model name with freshly initialised weights and synthetic inputs of the sizes asked for, so users
can compare with the paper's 8.65 (FE2E) and 5.18 / 4.54 (MESM) GFLOPs for their own lengths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import SetupError
from ..format.codecs import LOGMEL_FRAMES, LOGMEL_MELS
from .batch import InputSpec, ModalityInput
from .config import TrainConfig, resolve_config
from .flops import FlopReport, count_flops
from .models import ModelContext, get_model
from .run import load_run


def synthetic_inputs(specs: dict[str, InputSpec], lengths: dict[str, int], seed: int = 0) -> dict[str, ModalityInput]:
    """One row of random inputs: ``lengths`` positions per modality (frames, chunks, tokens)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for m, spec in specs.items():
        n = lengths[m]
        if spec.kind == "tokens":
            values = torch.randint(2, max(spec.vocab_size, 3), (1, n), generator=gen)
        elif spec.kind == "images":
            values = torch.rand((1, n, *spec.image_shape), generator=gen)
            values = values * 255 if spec.column == "face_crops" else values * 2 - 1
        else:
            values = torch.randn((1, n, spec.dim), generator=gen)
        out[m] = ModalityInput(values, torch.ones(1, n, dtype=torch.bool))
    return out


def flops_of_fresh_model(model: str, sets: dict[str, Any] | None, face_size: int, frames: int, chunks: int,
                         tokens: int) -> tuple[TrainConfig, FlopReport]:
    """Counted FLOPs of ``model`` with random weights on one synthetic utterance of the given sizes."""
    cfg = resolve_config(model, sets=sets)
    entry = get_model(model)
    specs = {
        "text": InputSpec("text", "dense", "glove", dim=300),
        "acoustic": InputSpec("acoustic", "images", "logmel", image_shape=(1, LOGMEL_MELS, LOGMEL_FRAMES)),
        "visual": InputSpec("visual", "images", "face_crops", image_shape=(3, face_size, face_size)),
    }
    specs = {m: s for m, s in specs.items() if m in cfg.modalities}
    if entry.family != "end_to_end":
        raise SetupError(f"{model} reads hand-crafted features; FLOPs tables are for the end-to-end models (fe2e, mesm)")
    torch.manual_seed(cfg.seed)
    net = entry.build(specs, 6, cfg.settings, ModelContext(tuple(f"c{i}" for i in range(6))))
    lengths = {"text": tokens, "acoustic": chunks, "visual": frames}
    return cfg, count_flops(net, synthetic_inputs(specs, lengths))


def flops_of_run(run_dir: Path, split: str = "test", limit: int = 8) -> FlopReport:
    """Counted FLOPs of a trained run on the first ``limit`` utterances of ``split`` (per sample)."""
    trainer, _ = load_run(run_dir)
    return count_flops(trainer.net, trainer.batch_of(split, limit=limit).inputs)


def attention_picture(run_dir: Path, out: Path, utterance: str | None = None, split: str = "test",
                      shards_dir: Path | None = None) -> Path:
    """Render one utterance of a trained MESM run (from its own shards, or ``shards_dir``): its face
    crops and log-mel chunks with each sparse stage's attention overlaid and the kept positions
    outlined, to a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run, _ = load_run(run_dir, shards_dir)
    if not hasattr(run.net, "record_attention"):
        raise SetupError(f"{run_dir} is a {run.cfg.model} run; attention pictures need a mesm run")
    batch = run.batch_of(split, [utterance] if utterance else None, limit=1)
    run.net.record_attention = True
    with torch.no_grad():
        probs = torch.sigmoid(run.net(batch.inputs))[0].numpy()
    maps = run.net.last_attention
    images = [m for m in ("visual", "acoustic") if m in batch.inputs]
    stages = sorted({int(a["stage"]) for a in maps})
    labels = run.featurizer.label_names
    rows = []
    for modality in images:
        rows.append((modality, None))
        rows += [(modality, s) for s in stages]
    fig, axes = plt.subplots(len(rows), 1, figsize=(12, 1.6 * len(rows) + 1), squeeze=False)
    for ax, (modality, stage) in zip(axes[:, 0], rows):
        x = batch.inputs[modality]
        valid = x.mask[0].numpy()
        strip = _strip(x.values[0].numpy(), valid, modality)
        ax.imshow(strip, cmap=None if modality == "visual" else "magma", aspect="auto" if modality == "acoustic" else "equal")
        if stage is not None:
            entry = next(a for a in maps if a["modality"] == modality and int(a["stage"]) == stage)
            flip = modality == "acoustic"
            attention = _strip_map(entry["attention"][0].numpy(), valid, strip.shape[:2], flip)
            kept = _strip_map(entry["kept"][0].float().numpy(), valid, strip.shape[:2], flip)
            ax.imshow(attention, cmap="jet", alpha=0.45, aspect=ax.get_aspect())
            ax.contour(kept, levels=[0.5], colors="white", linewidths=0.6)
            share = float(entry["kept"][0][x.mask[0]].float().mean()) if valid.any() else 0.0
            ax.set_ylabel(f"stage {stage}\n{share:.0%} kept", fontsize=8)
        else:
            ax.set_ylabel("faces" if modality == "visual" else "log-mel", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    truth = [n for n, t in zip(labels, batch.targets[0].tolist()) if t]
    guess = ", ".join(f"{n} {p:.2f}" for n, p in sorted(zip(labels, probs), key=lambda t: -t[1])[:3])
    fig.suptitle(f"{batch.ids[0]}  (p = {getattr(run.cfg.settings, 'p', None)})\ntrue: {', '.join(truth) or 'none'}   predicted: {guess}",
                 fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _strip(values: np.ndarray, valid: np.ndarray, modality: str) -> np.ndarray:
    """The row's images side by side (frames without a face shown grey)."""
    if modality == "visual":
        tiles = [v.transpose(1, 2, 0) / 255.0 if ok else np.full(v.transpose(1, 2, 0).shape, 0.5) for v, ok in zip(values, valid)]
        return np.clip(np.concatenate(tiles, axis=1), 0, 1)
    return np.concatenate([v[0] for v in values], axis=1)[::-1]  # low mels at the bottom


def _strip_map(maps: np.ndarray, valid: np.ndarray, size: tuple[int, int], flip: bool) -> np.ndarray:
    """Per-image ``(T, h, w)`` maps upsampled (nearest) to the strip's ``size`` (flipped upside down
    like the log-mel strip when ``flip``)."""
    T = len(maps)
    h, w = size[0], size[1] // max(T, 1)
    tiles = []
    for m, ok in zip(maps, valid):
        m = m if ok else np.zeros_like(m)
        tiles.append(np.kron(m, np.ones((h // m.shape[0] + 1, w // m.shape[1] + 1)))[:h, :w])
    strip = np.concatenate(tiles, axis=1)
    return strip[::-1] if flip else strip
