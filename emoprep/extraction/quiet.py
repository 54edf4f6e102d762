"""Keep native libraries' start-up chatter off the user's terminal.

MediaPipe's and TensorFlow Lite's C++ code write INFO/WARNING lines straight to file descriptor 2
when a graph is built, first run, meets a new image size or restarts ("Created TensorFlow Lite
XNNPACK delegate", absl's "W0000 ... Feedback manager requires a model with a single signature");
Python's logging cannot reach them, and neither an environment variable (``GLOG_minloglevel``,
``TF_CPP_MIN_LOG_LEVEL``) nor an option of MediaPipe's Python API turns absl's C++ logging down.
So every MediaPipe call - building, warming up *and* each ``process``/``reset`` - runs inside
:func:`silenced_stderr`, which points fd 2 at /dev/null for the duration (a few microseconds of
system calls against milliseconds of inference).  Real errors still surface: MediaPipe raises them
as Python exceptions, after the block.
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
