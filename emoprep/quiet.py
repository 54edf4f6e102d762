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
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a captured/replaced stderr: nothing native to hide
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
