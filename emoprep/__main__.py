"""``python -m emoprep`` runs the same CLI as the ``emoprep`` command."""

from .cli import main

main()
