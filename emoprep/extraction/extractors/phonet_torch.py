"""phonet's phonological-class network in PyTorch, with phonet's own trained weights.

Why: phonet (0.3.7) builds its network with Keras, so using it meant importing TensorFlow and Keras
in every worker (about 5 CPU-s and 1.7 GB of install for a 2-layer bidirectional GRU) and TensorFlow's
load-order-dependent oneDNN kernels.  The network is small and fixed, so it is written out here
layer for layer (``Phonet.model``) and its weights are read from phonet's ``models/model.h5``,
``mu.npy`` and ``std.npy`` with h5py and numpy.  The phonet package is located with
:func:`importlib.util.find_spec`, which does not execute it (its ``__init__`` imports TensorFlow).

The architecture, input ``(batch, 40 frames, 34)``:

* ``BatchNormalization`` (inference: moving statistics, Keras' epsilon 1e-3);
* two ``Bidirectional(GRU(128, reset_after=False, return_sequences=True))`` layers, outputs of the
  forward and the (time-reversed) backward direction concatenated;
* ``TimeDistributed(Dense(128, relu))`` shared by all heads (the dropouts are inactive at inference);
* per phonological class: ``TimeDistributed(Dense(128, relu))`` then ``TimeDistributed(Dense(2,
  softmax))``; the posterior of the class is the softmax's second column.

Keras' ``reset_after=False`` GRU applies the reset gate *before* the recurrent matrix of the
candidate, ``h~ = tanh(x W_h + b_h + (r * h) U_h)``, where :class:`torch.nn.GRU` computes
``r * (h U_h + b_hn)``; so the cell is written here.  The input projections of all 40 steps are one
matrix product per layer (they do not depend on the state), and both directions step together.

Everything runs in float32, as phonet's TensorFlow model does (and with the same arrangement of
the batch normalisation and the softmax).  With both networks in float64 (``dtype``; phonet's Keras
model built at Keras' float64), the 142 features are identical to TensorFlow's: the port computes
phonet's function.  In float32, posteriors differ from TensorFlow's by a few float32 steps (other
summation orders, other tanh/sigmoid/exp approximations), and the PLLR's log-odds amplify that next
to 0 and 1: the 142 features agree within 1.2e-4, 99.8% of them within 1e-5, on real and synthesised
speech - about as far as TensorFlow's own float32 answer is from the exact one
(``tests/unit/test_phonet_torch.py``; ``benchmarks/phonet_float32_floor.py`` shows TensorFlow itself
moving features by 3.2e-5 when only its batch shape changes).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ...errors import SetupError

CLASSES: tuple[str, ...] = (
    "vocalic", "consonantal", "back", "anterior", "open", "close", "nasal", "stop", "continuant",
    "lateral", "flap", "trill", "voice", "strident", "labial", "dental", "velar", "pause",
)
"""phonet's ``Phonological().get_list_phonological_keys()``: the order of the model's heads."""
BN_EPSILON = 1e-3  # Keras BatchNormalization's default, which phonet keeps


def phonet_models_dir() -> Path:
    """phonet's ``models/`` folder, found without importing phonet (its import loads TensorFlow)."""
    spec = importlib.util.find_spec("phonet")
    if spec is None or not spec.submodule_search_locations:
        raise SetupError("phonet is not installed: pip install 'phonet==0.3.7' (its weights are the model's)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    missing = [name for name in ("model.h5", "mu.npy", "std.npy") if not (folder / name).is_file()]
    if missing:
        raise SetupError(f"phonet's install lacks {', '.join(missing)} in {folder}; reinstall phonet==0.3.7")
    return folder


@dataclass(frozen=True)
class PhonetWeights:
    """Every array of phonet's model, by role, as float32 numpy arrays (Keras layouts: ``x @ W``)."""

    bn: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # gamma, beta, moving mean, moving variance
    gru: tuple[tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...], ...]  # [layer][direction] = (W, U, b)
    shared: tuple[np.ndarray, np.ndarray]
    heads: tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], ...]  # per class: W1, b1, W2, b2
    mu: np.ndarray
    std: np.ndarray


def read_weights(folder: Path | None = None) -> PhonetWeights:
    """phonet's weights from ``model.h5`` (a Keras 2 weights file) and its input scaler.

    Keras loaded the file by layer order; names map to roles as follows: ``time_distributed_1`` is
    the shared dense layer, ``time_distributed_{j+2}`` the hidden layer of head ``j``, and each head's
    softmax layer is named after its class (checked against phonet's Keras model by the equality test).
    """
    import h5py

    folder = folder or phonet_models_dir()

    with h5py.File(folder / "model.h5", "r") as f:
        def layer(name: str) -> list[np.ndarray]:
            group = f[name]
            return [np.asarray(group[w], dtype=np.float32) for w in group.attrs["weight_names"]]

        gamma, beta, mean, var = layer("batch_normalization_1")
        gru = []
        for k in (1, 2):
            w = layer(f"bidirectional_{k}")  # forward kernel, recurrent, bias; then backward's
            gru.append((tuple(w[:3]), tuple(w[3:])))
        shared = tuple(layer("time_distributed_1"))
        heads = tuple(tuple(layer(f"time_distributed_{j + 2}") + layer(c)) for j, c in enumerate(CLASSES))
    return PhonetWeights(
        bn=(gamma, beta, mean, var), gru=tuple(gru), shared=shared, heads=heads,  # type: ignore[arg-type]
        mu=np.load(folder / "mu.npy"), std=np.load(folder / "std.npy"),
    )


class PhonetNetwork:
    """phonet's network: scaled features ``(batch, 40, 34)`` -> posteriors ``(batch, 40, 18)``."""

    def __init__(self, weights: PhonetWeights, threads: int = 1, dtype: type[np.floating] = np.float32) -> None:
        """``dtype``: float32 as phonet computes (and the extractor runs); float64 only to show that
        the port computes phonet's function, below float32's rounding (the equality test)."""
        import torch

        self.mu, self.std = weights.mu, weights.std
        self.threads = threads
        self.dtype = dtype

        t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=dtype))  # noqa: E731
        gamma, beta, mean, var = (np.asarray(a, dtype=dtype) for a in weights.bn)
        # tf.nn.batch_normalization's arrangement: x * inv + (beta - mean * inv)
        inv = (1 / np.sqrt(var + dtype(BN_EPSILON))) * gamma
        self._bn = (t(inv), t(beta - mean * inv))
        # per layer: input kernels of both directions side by side (one product for all steps),
        # recurrent kernels and biases stacked by direction
        self._gru = [
            (t(np.concatenate([fw[0], bw[0]], axis=1)), t(np.stack([fw[1], bw[1]])), t(np.concatenate([fw[2], bw[2]])))
            for fw, bw in weights.gru
        ]
        self._shared = tuple(t(a) for a in weights.shared)
        self._heads = [tuple(t(a) for a in head) for head in weights.heads]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode(), _torch_threads(self.threads):
            h = torch.from_numpy(np.ascontiguousarray(x, dtype=self.dtype))
            inv, offset = self._bn
            h = h * inv + offset
            for kernel, recurrent, bias in self._gru:
                h = _bigru(h, kernel, recurrent, bias)
            n, steps = h.shape[:2]
            w, b = self._shared
            h = torch.addmm(b, h.reshape(n * steps, -1), w).relu_()
            logits = torch.stack([torch.addmm(b2, torch.addmm(b1, h, w1).relu_(), w2) for w1, b1, w2, b2 in self._heads])
            post = torch.softmax(logits, dim=-1)[..., 1]  # (18, n * time)
            return post.transpose(0, 1).reshape(n, steps, len(CLASSES)).numpy()


def _bigru(x, kernel, recurrent, bias):  # type: ignore[no-untyped-def]
    """One ``Bidirectional(GRU(reset_after=False))`` layer, outputs ``(batch, time, 2 * units)``.

    Keras gate order in the kernels is (update z, reset r, candidate); per step and direction:
    ``z = sigmoid(xz + h Uz)``, ``r = sigmoid(xr + h Ur)``, ``c = tanh(xc + (r * h) Uc)``,
    ``h = z * h + (1 - z) * c``.  The backward direction reads the sequence reversed and its outputs
    are reversed back, as Keras' ``Bidirectional`` does.
    """
    import torch

    n, steps, _ = x.shape
    units = recurrent.shape[1]
    # input projections of every step, both directions, as (time, direction, batch, 3 * units),
    # the backward direction's already in its reading order
    xp = torch.addmm(bias, x.reshape(n * steps, -1), kernel).reshape(n, steps, 2, 3 * units).permute(1, 2, 0, 3)
    xp = torch.stack([xp[:, 0], xp[:, 1].flip(0)], dim=1).contiguous()
    u_zr, u_c = recurrent[:, :, : 2 * units].contiguous(), recurrent[:, :, 2 * units :].contiguous()
    h = x.new_zeros(2, n, units)
    out = x.new_empty(steps, 2, n, units)
    for step in range(steps):
        xt = xp[step]
        zr = torch.baddbmm(xt[..., : 2 * units], h, u_zr).sigmoid_()
        z, r = zr[..., :units], zr[..., units:]
        c = torch.baddbmm(xt[..., 2 * units :], r * h, u_c).tanh_()
        h = z * h + (1 - z) * c
        out[step] = h
    return torch.cat([out[:, 0], out[:, 1].flip(0)], dim=-1).transpose(0, 1)  # (batch, time, 2 * units)


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """PyTorch's intra-op pool at ``n`` threads for the block (the setting is process-wide: whatever
    else runs PyTorch in the process keeps its own)."""
    import torch

    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@lru_cache(maxsize=4)
def load_network(threads: int = 1) -> PhonetNetwork:
    """phonet's network with its weights, built once per process (and thread count)."""
    return PhonetNetwork(read_weights(), threads)
