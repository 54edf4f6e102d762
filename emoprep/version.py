"""The installed emoprep version, in a module of its own at the bottom of the package.

Modules that record the version (shard metadata, manifests, run folders) import it from here rather
than from the package root, whose ``__init__`` re-exports the readers: no import reaches back up.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("emoprep")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
