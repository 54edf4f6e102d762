"""The DisVoice/phonet pieces behind the 142 acoustic features, loaded quietly and once per process.

Why not ``import disvoice``: the package ``__init__`` imports every module (glottal, replearning with
torch, kaldi_io, matplotlib) and costs 10-40 s, and kaldi_io prints a KALDI_ROOT banner to stderr.
The 142 features need only two things, and both are taken from the libraries themselves:

* ``disvoice/articulation/articulation_functions.py`` (``get_transition_segments``,
  ``extract_transitions`` with its ``barke`` Bark energies and pysptk MFCCs).  It imports only numpy
  and pysptk, so it is loaded directly from its file without running ``disvoice/__init__``.
* phonet's ``Phonet`` object (the 18-class BGRU model, its input scaler, ``mask_correction``).

TensorFlow's CUDA/oneDNN chatter and the pysptk ``pkg_resources`` deprecation warning are silenced
here, before the first TensorFlow import, so users of a CPU machine do not see them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import warnings
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import SetupError


def quiet_tensorflow() -> None:
    """Environment for phonet's TensorFlow: Keras 2 API, no CUDA/oneDNN log noise.

    Must run before TensorFlow is first imported in the process; ``setdefault`` leaves a user's own
    choice alone.  ``TF_USE_LEGACY_KERAS=1`` is required: phonet is Keras-2 code
    (``compile(sample_weight_mode=...)``) and fails under Keras 3.
    """
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


@contextlib.contextmanager
def _silenced():
    """Swallow Python-level warnings and stderr prints of noisy imports (pkg_resources, absl)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stderr(io.StringIO()):
            yield


@lru_cache(maxsize=1)
def articulation_functions() -> ModuleType:
    """DisVoice's ``articulation_functions`` module, loaded from its file (see module docstring)."""
    spec = importlib.util.find_spec("disvoice")
    if spec is None or spec.origin is None:
        raise SetupError("DisVoice is not installed: pip install 'disvoice==0.1.10' (see pyproject.toml)")
    path = Path(spec.origin).parent / "articulation" / "articulation_functions.py"
    if not path.is_file():
        raise SetupError(f"DisVoice install lacks {path.name}; reinstall disvoice==0.1.10")
    mod_spec = importlib.util.spec_from_file_location("emoprep_disvoice_articulation_functions", path)
    assert mod_spec is not None and mod_spec.loader is not None
    module = importlib.util.module_from_spec(mod_spec)
    with _silenced():
        mod_spec.loader.exec_module(module)
    return module


def pysptk() -> ModuleType:
    with _silenced():
        import pysptk as mod
    return mod


def disvoice_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in ("disvoice", "phonet", "pysptk", "tensorflow", "tf-keras"):
        try:
            out.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            out.append(f"{dist}==missing")
    return ", ".join(out)


def load_phonet(threads: int = 1) -> Any:
    """A ``phonet.Phonet(["all"])`` with TensorFlow limited to ``threads`` threads.

    One thread by default: the pipeline runs one Dask worker per core, and TensorFlow's own pool on
    top of that would oversubscribe the machine.  The unused phoneme-recognition model that Phonet
    also loads is dropped to save memory.
    """
    quiet_tensorflow()
    with _silenced():
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        try:
            import tensorflow as tf
            from phonet.phonet import Phonet
        except ImportError as exc:
            raise SetupError(
                f"phonet/TensorFlow cannot be imported ({exc}); install the pinned set from pyproject.toml "
                "(phonet==0.3.7, tensorflow<2.18, tf-keras<2.18, numpy<2, scipy<1.12)"
            ) from exc
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass  # TensorFlow already initialised in this process: keep its settings
        phon = Phonet(["all"])
    phon.model_phon = None
    return phon
