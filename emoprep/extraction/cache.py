"""Where emoprep keeps things it builds once and reuses: GloVe caches, the demo corpus.

``EMOPREP_CACHE`` overrides the location; otherwise ``$XDG_CACHE_HOME/emoprep`` or ``~/.cache/emoprep``.
Everything in it can be deleted at any time; it is rebuilt on demand.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    root = os.environ.get("EMOPREP_CACHE")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "emoprep"
