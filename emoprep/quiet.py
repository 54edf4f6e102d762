"""Keep native libraries' start-up chatter off the user's terminal.

MediaPipe's and TensorFlow Lite's C++ code write INFO/WARNING lines straight to file descriptor 2
when a graph is built and first run ("Created TensorFlow Lite XNNPACK delegate", absl's
"Feedback manager ..."); Python's logging cannot reach them.  Models are therefore built *and warmed
up* inside :func:`silenced_stderr`, which points fd 2 at /dev/null for the duration.  Real errors
still surface: they are raised as Python exceptions after the block.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def silenced_stderr() -> Iterator[None]:
    """Silence fd 2 (native writes included) within the block; restore it afterwards."""
    # Native code writes to file descriptor 2 whatever Python's sys.stderr is (a Dask worker, for
    # one, replaces sys.stderr with an object without a file descriptor).
    fd = 2
    try:
        os.fstat(fd)
    except OSError:  # no fd 2 at all: nothing native can be printed
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def tensorflow_environment() -> None:
    """The environment TensorFlow must find when it is first imported in a process, whoever imports
    it: phonet (acoustic features) directly, or MediaPipe (faces), which imports it too.

    ``TF_ENABLE_ONEDNN_OPTS=0``: with oneDNN, phonet's posteriors depend (by float32 rounding) on
    which native libraries the process loaded first, so the same utterance would get other acoustic
    values after a face had been detected in the process; TensorFlow's own kernels do not (and are as
    fast for phonet's small BGRU).  ``TF_USE_LEGACY_KERAS=1``: phonet is Keras-2 code and fails under
    Keras 3.  The rest keeps CUDA/oneDNN/absl start-up chatter off the terminal.  ``setdefault``
    leaves a user's own choice alone; once TensorFlow is imported, none of this has any effect.
    """
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "2")
