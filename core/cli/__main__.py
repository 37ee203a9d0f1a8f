"""``python -m core.cli``: the ``sieve`` command line."""

from core.cli import main

main()
