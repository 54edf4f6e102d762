"""phonet's network in PyTorch gives the 142 features phonet's own TensorFlow model gives.

The TensorFlow side runs in a fresh interpreter (``TF_SIDE``): the same :class:`Features142` code -
same windows, same batches - with its network swapped for phonet's Keras model, built by phonet
itself (``Phonet(["all"])``) and run as emoprep ran it before (oneDNN off, legacy Keras), once in
float32 (phonet's precision, and the extractor's) and once built with Keras' float type at float64.
Inputs: every speech recording of the real sample data and speech synthesised by espeak-ng (the
demo's voice), at several voices and rates.

Two comparisons:

* float64 against float64, within the issue's 1e-5: the port computes phonet's function (the same
  architecture, weights, gate order and scaling), with float rounding out of the way;
* float32 against float32, as shipped: within float32's own floor (:data:`TOLERANCE` says why that
  floor is above 1e-5).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emoprep.extraction.extractors.features142 import FEATURE_NAMES, N_BBE, N_FEATURES, N_MFCC, Features142

N_ARTICULATION = N_BBE + N_MFCC
NOT_MAX = np.array([j for j, name in enumerate(FEATURE_NAMES) if j >= N_ARTICULATION and not name.endswith("_max")])

EXACT_TOLERANCE = 1e-5
"""Max abs difference of any feature when both networks compute in float64 (the issue's target;
measured: 0, the float32 features identical).  For scale: 0.1% more in one recurrent weight moves
features by 3-9e-6, a wrong gate order, weight or scaling by 0.1-10."""
TOLERANCE = 2e-4
"""Max abs difference allowed in any of the 142 features of any window, both networks in float32.

Why not 1e-5 (the issue's target, met in float64 above): the floor is float32 rounding of the
posteriors, amplified.  Both networks compute in float32 and differ in summation order and in their
tanh/sigmoid/exp approximations, so a posterior differs by a few float32 steps (measured: at most
5.7e-7).  Next to 1 that is a large relative change of ``1 - p`` (a posterior of 0.9999 has ``1 - p``
held to float32's step of 6e-8: one step moves log10 of the odds by 2.6e-4), the PLLR's log-odds carry
it, and the ``max`` statistic keeps the most amplified frame.  ``benchmarks/phonet_float32_floor.py``
measures it: TensorFlow against *itself* fed one sequence per call instead of a block of windows
differs by 3.2e-5 (stop_max), by 1.3e-5 when its inputs move by one float32 step, and both float32
networks are 1.5e-4 from the same network in float64 (pause_max).  Measured here: max 1.2e-4 (a
``pause_max``), 99.8% of the values within 1e-5; 2e-4 is the float32-vs-exact distance with a margin,
while any real error (a wrong gate order, weight, scaling or window) moves features by 0.1-10."""
OTHER_STATISTICS_TOLERANCE = 5e-5
"""Max abs difference of every phonological statistic but ``max`` (measured: 1.8e-5, a kurtosis)."""
WITHIN_1E5 = 0.995
"""Share of all feature values that must agree within 1e-5 (measured: 0.998)."""
SKIP = 77

TF_SIDE = """
import os, sys
import numpy as np
os.environ.update(TF_USE_LEGACY_KERAS="1", TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="3")
try:
    import tensorflow as tf
    from phonet.phonet import Phonet
except ImportError as exc:
    print(f"TensorFlow/phonet cannot be imported: {exc}")
    sys.exit(77)
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
from emoprep.extraction.extractors.features142 import Features142

inputs = np.load(sys.argv[1])
out = {}
for precision in ("float32", "float64"):
    tf.keras.backend.set_floatx(precision)  # phonet's layers and its loaded weights take this type
    phon = Phonet(["all"])
    model = tf.function(lambda x: phon.models(x, training=False))
    assert all(w.dtype == precision for w in phon.models.weights)

    def keras_network(x):
        return np.stack([o.numpy()[:, :, 1] for o in model(x.astype(precision))], axis=-1)

    features = Features142()
    assert np.array_equal(features._mu, phon.MU) and np.array_equal(features._std, phon.STD)
    features._net = keras_network
    for name in inputs.files:
        res = features.compute(inputs[name])
        key = f"{precision}/{name}"
        out[key], out[key + "/onsets"], out[key + "/valid"] = res.values, res.onset_frames, res.valid
np.savez(sys.argv[2], **out)
"""


def _synthesised() -> dict[str, np.ndarray]:
    """espeak-ng speech at 16 kHz: three sentences, three voices."""
    from scipy.signal import resample_poly

    from emoprep.extraction.readers.demo.speech import Speaker, Voice

    speaker = Speaker()
    sentences = ("I really did not expect to see you here today.",
                 "Well, that was the best meal we have had in years!",
                 "Nobody told me the meeting had been moved to Friday morning.")
    voices = (Voice(), Voice(rate=120, pitch=20, pitch_range=80), Voice(rate=210, pitch=80, pitch_range=20))
    out = {}
    for i, (text, voice) in enumerate(zip(sentences, voices)):
        pcm = speaker.say(text, voice).astype(np.float32) / 32768
        g = np.gcd(16000, speaker.sample_rate)
        out[f"espeak-{i}"] = resample_poly(pcm, 16000 // g, speaker.sample_rate // g).astype(np.float32)
    return out


@pytest.fixture(scope="module")
def tensorflow_features(shared, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, np.ndarray], dict]:
    """The test signals, and the features of each from phonet's Keras model in both precisions."""
    from emoprep.extraction.media.audio import decode_audio

    files = sorted(shared("speech-emotion").glob("*.wav"))
    assert files, "no speech-emotion wav files"
    inputs = {f"speech-emotion/{p.stem}": decode_audio(p, 0.0, 1e6, 16000) for p in files}
    inputs.update(_synthesised())
    folder = tmp_path_factory.mktemp("phonet")
    np.savez(folder / "inputs.npz", **inputs)
    done = subprocess.run([sys.executable, "-c", TF_SIDE, str(folder / "inputs.npz"), str(folder / "tf.npz")],
                          capture_output=True, text=True, timeout=1800)
    if done.returncode == SKIP:
        pytest.skip(done.stdout.strip())
    assert done.returncode == 0, done.stderr[-3000:]
    return inputs, dict(np.load(folder / "tf.npz"))


def _compare(features: Features142, inputs: dict[str, np.ndarray], reference: dict, precision: str):
    """Per signal: the same windows and onsets, identical articulation features; yields the signal's
    name, its number of windows and the abs differences of its 142 features."""
    for name, audio in inputs.items():
        key = f"{precision}/{name}"
        res = features.compute(audio)
        assert res.values.shape == (len(res.bounds), N_FEATURES)
        assert np.array_equal(res.onset_frames, reference[key + "/onsets"]), name
        assert np.array_equal(res.valid, reference[key + "/valid"]), name
        # the 34 articulation features do not go through the network: identical
        assert np.array_equal(res.values[:, :N_ARTICULATION], reference[key][:, :N_ARTICULATION]), name
        yield name, len(res.valid), np.abs(res.values.astype(np.float64) - reference[key])


def test_float64_network_computes_phonets_function(tensorflow_features) -> None:
    from emoprep.extraction.extractors.phonet_torch import PhonetNetwork, read_weights

    inputs, reference = tensorflow_features
    features = Features142()
    features._net = PhonetNetwork(read_weights(), dtype=np.float64)
    worst = 0.0
    for name, _, diff in _compare(features, inputs, reference, "float64"):
        assert diff.max() <= EXACT_TOLERANCE, (
            f"{name}: max abs difference {diff.max():.3g} at window/feature {np.unravel_index(diff.argmax(), diff.shape)}")
        worst = max(worst, float(diff.max()))
    print(f"float64: {len(inputs)} signals, max abs difference {worst:.3g}")


def test_torch_network_gives_tensorflows_142_features(tensorflow_features) -> None:
    inputs, reference = tensorflow_features
    worst, windows, close, values = 0.0, 0, 0, 0
    for name, n, diff in _compare(Features142(), inputs, reference, "float32"):
        assert diff[:, NOT_MAX].max(initial=0.0) <= OTHER_STATISTICS_TOLERANCE, (
            f"{name}: {FEATURE_NAMES[NOT_MAX[diff[:, NOT_MAX].max(axis=0).argmax()]]} differs by {diff[:, NOT_MAX].max():.3g}")
        assert diff.max() <= TOLERANCE, f"{name}: max abs difference {diff.max():.3g} at window/feature {np.unravel_index(diff.argmax(), diff.shape)}"
        worst, windows = max(worst, float(diff.max())), windows + n
        close, values = close + int((diff <= 1e-5).sum()), values + diff.size
    assert windows > 300  # 134 s of recorded speech at 0.4 s a window, and the synthesised sentences
    assert close / values >= WITHIN_1E5, f"only {close / values:.4f} of the values agree within 1e-5"
    print(f"float32: {len(inputs)} signals, {windows} windows, max abs difference {worst:.3g}, "
          f"{close / values:.4f} within 1e-5")


def test_network_is_phonets_architecture(tmp_path: Path) -> None:
    """The weights file maps onto the network as phonet's Keras model is built: shapes by role, and a
    head's softmax over two classes."""
    from emoprep.extraction.extractors.phonet_torch import CLASSES, load_network, read_weights

    w = read_weights()
    assert w.mu.shape == w.std.shape and w.mu.shape[-1] == 34  # per frame of the 40, as phonet scales
    assert [gru[0][0].shape for gru in w.gru] == [(34, 384), (256, 384)]
    assert all(d[1].shape == (128, 384) and d[2].shape == (384,) for gru in w.gru for d in gru)
    assert len(w.heads) == len(CLASSES) == 18
    assert all(h[0].shape == (128, 128) and h[2].shape == (128, 2) for h in w.heads)
    x = np.random.default_rng(0).normal(size=(3, 40, 34)).astype(np.float32)
    post = load_network()(x)
    assert post.shape == (3, 40, 18) and np.all((post > 0) & (post < 1))
    # sequences are independent: a batch gives each sequence what it gets alone
    assert np.allclose(load_network()(x[1:2]), post[1:2], atol=1e-6)
