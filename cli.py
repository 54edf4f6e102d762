"""The ``emoprep`` command line, at the project's top level for ``python cli.py ...``.

The commands live in :mod:`emoprep.cli` (the installed ``emoprep`` script and ``python -m emoprep``
run them from there, so the package never depends on a top-level module named ``cli``).
"""

from emoprep.cli import main

if __name__ == "__main__":
    main()
