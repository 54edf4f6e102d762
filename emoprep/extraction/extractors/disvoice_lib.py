"""The DisVoice/phonet pieces behind the 142 acoustic features, loaded quietly and once per process.

Why not ``import disvoice``: the package ``__init__`` imports every module (glottal, replearning with
torch, kaldi_io, matplotlib) and costs 10-40 s, and kaldi_io prints a KALDI_ROOT banner to stderr.
The 142 features need only two things, and both are taken from the libraries themselves:

* ``disvoice/articulation/articulation_functions.py`` (``get_transition_segments``,
  ``extract_transitions`` with its ``barke`` Bark energies and pysptk MFCCs).  It imports only numpy
  and pysptk, so it is loaded directly from its file without running ``disvoice/__init__``.
* phonet's 18-class BGRU network and its input scaler: not phonet's Keras ``Phonet`` object (its
  import loads TensorFlow) but the same network in PyTorch with phonet's own weights
  (:mod:`~emoprep.extraction.extractors.phonet_torch`).

:func:`rapt` wraps pysptk's RAPT pitch tracker so that every call behaves as the first call of a fresh
process (see its docstring for the hidden state in SPTK's C code and how it is reset).

The pysptk ``pkg_resources`` deprecation warning is silenced here, so users do not see it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import threading
import warnings
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from ...errors import SetupError


@contextlib.contextmanager
def _silenced():
    """Swallow Python-level warnings and stderr prints of noisy imports (pkg_resources, kaldi_io)."""
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


_RAPT_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _nrandom() -> Any:
    """SPTK's ``double nrandom(unsigned long *next)``, from the very library pysptk loaded.

    ``dlopen`` of a path that is already loaded returns the loaded library, so this function shares
    its static variables with the ``rapt`` that pysptk calls.
    """
    import ctypes

    sptk = pysptk()
    try:
        lib = ctypes.CDLL(sptk._sptk.__file__)
        fn = lib.nrandom
    except (OSError, AttributeError) as exc:
        raise SetupError(
            f"pysptk's native library does not export SPTK's nrandom ({exc}); emoprep needs it to make "
            "RAPT deterministic - install the pinned pysptk from pyproject.toml"
        ) from exc
    fn.restype = ctypes.c_double
    fn.argtypes = [ctypes.POINTER(ctypes.c_ulong)]
    return fn


def reset_rapt_noise() -> None:
    """Put SPTK's Gaussian generator back in the state of a fresh process (``sw == 0``).

    Root cause of RAPT's order dependence (pysptk 1.0.1, ``lib/SPTK/bin/pitch/snack/jkGetF0.c`` and
    ``bin/nrand/_nrand.c``): ``rapt()`` dithers its input with ``50 * nrandom(&next)`` per sample,
    ``next = 1`` seeded afresh on every call, for ``len(x) + (alpha + beta + 3) * hop`` samples (the
    signal plus 1280 samples of noise padding at 16 kHz / 20 ms / 60 Hz).  ``nrandom`` is a polar
    (Marsaglia) normal generator that makes deviates in pairs and keeps the second one of a pair in
    *static* variables (``static int sw; static double r1, r2, s``) for its next call, whatever seed
    that call passes.  After a call that drew an odd number of deviates (an odd-length window), the
    next ``rapt`` call therefore starts with the previous call's cached deviate and its whole dither
    sequence is shifted by one sample; which windows are affected depends on the parity of every
    window processed before in the process.  That changes f0 by ~0.01-1 Hz and, rarely, a voicing
    decision (and so DisVoice's onset frames).  We found no other state of ``rapt`` that survives a
    call: its other static buffers are re-initialised per call or overwritten before they are read,
    valgrind's memcheck reports no uninitialised read over all 344 speech-emotion windows, and with
    this reset every window's f0 is bit-identical to a fresh process's in any processing order.

    The reset observes the generator through ``next``: ``nrandom`` advances ``next`` only when it
    draws a new pair (``sw == 0``) and leaves it untouched when it returns the cached deviate
    (``sw == 1``, after which ``sw == 0``).  So: draw once; if ``next`` moved, a pair was drawn and its
    second deviate is now cached - draw once more to consume it.  Either way ``sw == 0`` afterwards,
    exactly as in a fresh process (``r1, r2, s`` are overwritten before they are read when ``sw == 0``).
    The 64-bit LCG ``next`` has full period, so it never returns to 1 after a draw.
    """
    import ctypes

    fn = _nrandom()
    seed = ctypes.c_ulong(1)
    fn(ctypes.byref(seed))
    if seed.value != 1:  # a pair was drawn, its second deviate is cached: consume it
        fn(ctypes.byref(seed))
        if seed.value == 1:  # cannot happen with SPTK's nrandom; never continue non-deterministically
            raise RuntimeError("SPTK nrandom state could not be reset")


def rapt(pcm: Any, fs: int, hop: int, **kwargs: Any) -> Any:
    """``pysptk.sptk.rapt`` as the first call of a fresh process would compute it (see
    :func:`reset_rapt_noise`).  A lock keeps the reset and the call together when threads share the
    process (SPTK's statics are global)."""
    sptk = pysptk()
    with _RAPT_LOCK:
        reset_rapt_noise()
        return sptk.sptk.rapt(pcm, fs, hop, **kwargs)


def disvoice_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in ("disvoice", "phonet", "pysptk", "torch"):
        try:
            out.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            out.append(f"{dist}==missing")
    return ", ".join(out)


def load_phonet(threads: int = 1) -> Any:
    """phonet's network in PyTorch (:mod:`~emoprep.extraction.extractors.phonet_torch`), limited to ``threads``
    threads while it runs.

    One thread by default: the pipeline runs one Dask worker per core, and a thread pool of the
    network's own on top of that would oversubscribe the machine.
    """
    from .phonet_torch import load_network

    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise SetupError(f"PyTorch cannot be imported ({exc}); install the pinned set from pyproject.toml") from exc
    return load_network(threads)
