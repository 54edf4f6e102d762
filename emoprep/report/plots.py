"""The report's figures, drawn with matplotlib's Agg backend (no display needed) and returned as PNG
bytes.  Sizes are chosen for a laptop screen: about 1000 pixels wide at most."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np

DPI = 100


def _plt():  # noqa: ANN202 - the pyplot module
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_png(fig) -> bytes:  # noqa: ANN001 - a matplotlib Figure
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def grouped_bars(categories: Sequence[str], series: Mapping[str, Sequence[float]], ylabel: str, title: str = "",
                 percent: bool = False) -> bytes:
    """One group of bars per category, one bar per series (e.g. per split)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(min(10, 1.2 + 0.9 * len(categories) * max(1, len(series)) ** 0.5), 3.2))
    x = np.arange(len(categories))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, categories, rotation=30 if len(categories) > 6 else 0, ha="right" if len(categories) > 6 else "center")
    ax.set_ylabel(ylabel)
    if percent:
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    if title:
        ax.set_title(title, fontsize=11)
    if len(series) > 1:
        ax.legend(fontsize=9, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return to_png(fig)


def histograms(values: Mapping[str, np.ndarray], xlabel: str, bins: int = 30) -> bytes:
    """Overlaid step histograms on shared bins, one per group (e.g. per split)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.0))
    every = np.concatenate([np.asarray(v, dtype=float) for v in values.values() if len(v)]) if values else np.zeros(0)
    edges = np.histogram_bin_edges(every, bins=bins) if every.size else bins
    for name, v in values.items():
        if len(v):
            ax.hist(v, bins=edges, histtype="step", linewidth=1.6, label=f"{name} (n={len(v)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("utterances")
    ax.legend(fontsize=9, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return to_png(fig)


def boxplots(panels: Mapping[str, Mapping[str, np.ndarray]], ncols: int = 3) -> bytes:
    """Small multiples: one panel per feature, one box per label inside it."""
    plt = _plt()
    n = len(panels)
    rows = -(-n // ncols)
    fig, axes = plt.subplots(rows, ncols, figsize=(10, 2.6 * rows), squeeze=False)
    for ax, (title, groups) in zip(axes.flat, panels.items()):
        names = [g for g, v in groups.items() if len(v)]
        ax.boxplot([groups[g] for g in names], showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=35, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return to_png(fig)


def heatmap(matrix: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], colorbar: str) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(min(10, 1.5 + 0.28 * len(col_labels)), 0.8 + 0.34 * len(row_labels)))
    im = ax.imshow(matrix, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    fig.colorbar(im, ax=ax, label=colorbar, fraction=0.03)
    return to_png(fig)


def contact_sheet(rows: Mapping[str, Sequence[np.ndarray]], columns: int) -> bytes:
    """A grid of face crops: one row per label, up to ``columns`` crops each (RGB uint8 arrays)."""
    plt = _plt()
    fig, axes = plt.subplots(len(rows), columns, figsize=(0.95 * columns + 1.2, 1.05 * len(rows)), squeeze=False)
    for r, (label, crops) in enumerate(rows.items()):
        for c in range(columns):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(crops):
                ax.imshow(crops[c])
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.subplots_adjust(wspace=0.04, hspace=0.08)
    return to_png(fig)


def spectrogram(chunks: np.ndarray, frames: Sequence[int], title: str) -> bytes:
    """Log-mel chunks ``(n, 128, 32)`` joined in time (padding dropped), low mels at the bottom."""
    plt = _plt()
    joined = np.concatenate([c[:, : int(f)] for c, f in zip(chunks, frames)], axis=1)
    fig, ax = plt.subplots(figsize=(10, 2.6))
    im = ax.imshow(joined, origin="lower", aspect="auto", cmap="magma", extent=(0, joined.shape[1] * 0.0125, 0, 128))
    edges = np.cumsum([int(f) for f in frames])[:-1] * 0.0125
    for x in edges:
        ax.axvline(x, color="white", linewidth=0.5, alpha=0.5)
    ax.set_xlabel("seconds (white lines: 400 ms chunk edges)")
    ax.set_ylabel("mel band")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="log power", fraction=0.025)
    return to_png(fig)


def learning_curves(epochs: Sequence[int], losses: Mapping[str, Sequence[float]], f1: Sequence[float],
                    chosen: int | None) -> bytes:
    """Train/valid loss on the left, validation average F1 on the right, the chosen epoch marked."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    for name, values in losses.items():
        left.plot(epochs, values, marker=".", label=name)
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend(fontsize=9, frameon=False)
    right.plot(epochs, f1, marker=".", color="tab:green")
    right.set_xlabel("epoch")
    right.set_ylabel("validation average F1")
    for ax in (left, right):
        if chosen is not None:
            ax.axvline(chosen, color="grey", linestyle="--", linewidth=1)
        ax.spines[["top", "right"]].set_visible(False)
    if chosen is not None:
        right.annotate(f"chosen: epoch {chosen}", (chosen, min(f1) if f1 else 0), fontsize=8, color="grey",
                       xytext=(4, 4), textcoords="offset points")
    fig.tight_layout()
    return to_png(fig)


def image_strip(images: Sequence[np.ndarray], height: float = 1.0) -> bytes:
    """A few face crops side by side (RGB uint8 arrays)."""
    plt = _plt()
    n = max(1, len(images))
    fig, axes = plt.subplots(1, n, figsize=(height * n, height), squeeze=False)
    for ax, img in zip(axes[0], images):
        ax.imshow(img)
    for ax in axes[0]:
        ax.axis("off")
    fig.subplots_adjust(wspace=0.03)
    return to_png(fig)


def timeline(spans: Sequence[tuple[float, float]], probs: Mapping[str, Sequence[float]],
             predicted: Mapping[str, Sequence[int]], thresholds: Mapping[str, float],
             faces: Sequence[tuple[float, np.ndarray]], title: str) -> bytes:
    """One media file over time: each class's probability per utterance (drawn across its span, so
    overlapping windows read as a curve), the predicted labels as bars below, and face crops under
    that, each at the time of the utterance it was taken from (evenly spread, as many as fit)."""
    plt = _plt()
    names = list(probs)
    has_faces = bool(faces)
    ratios = [3.0, 0.25 * len(names) + 0.3] + ([0.9] if has_faces else [])
    fig, axes = plt.subplots(len(ratios), 1, figsize=(10, sum(ratios) * 0.9 + 0.6), sharex=True,
                             gridspec_kw={"height_ratios": ratios})
    top, bars = axes[0], axes[1]
    mids = np.asarray([(a + b) / 2 for a, b in spans])
    colours = plt.get_cmap("tab10")
    for k, name in enumerate(names):
        colour = colours(k % 10)
        top.plot(mids, probs[name], marker=".", markersize=3, linewidth=1.3, color=colour, label=name)
        if name in thresholds:
            top.axhline(thresholds[name], color=colour, linestyle=":", linewidth=0.8, alpha=0.7)
        for (a, b), on in zip(spans, predicted[name]):
            if on:
                bars.broken_barh([(a, b - a)], (k - 0.35, 0.7), color=colour, alpha=0.55, linewidth=0)
    top.set_ylim(0, 1)
    top.set_ylabel("probability")
    top.set_title(title, fontsize=10)
    top.legend(fontsize=8, frameon=False, ncol=min(len(names), 7), loc="upper left", bbox_to_anchor=(0, -0.02))
    bars.set_yticks(range(len(names)), names, fontsize=8)
    bars.set_ylim(-0.6, len(names) - 0.4)
    bars.invert_yaxis()
    bars.set_ylabel("predicted", fontsize=8)
    end = max((b for _, b in spans), default=1.0)
    for ax in axes:
        ax.set_xlim(0, end)
        ax.spines[["top", "right"]].set_visible(False)
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    if has_faces:
        # square crops: as many seconds wide as the strip is tall, and only as many as fit side by side
        ax = axes[2]
        box = ax.get_position()
        fig_w, fig_h = fig.get_size_inches()
        width = end * (box.height * fig_h) / (box.width * fig_w)
        fit = max(1, int(end / width))
        chosen = [faces[round(i)] for i in np.linspace(0, len(faces) - 1, min(fit, len(faces)))]
        for t, face in chosen:
            left = min(max(t - width / 2, 0.0), max(end - width, 0.0))
            ax.imshow(face, extent=(left, left + width, 0, 1), aspect="auto")
        ax.set_yticks([])
        ax.set_ylim(0, 1)
        ax.set_xlim(0, end)
        ax.set_ylabel("faces", fontsize=8)
    return to_png(fig)
