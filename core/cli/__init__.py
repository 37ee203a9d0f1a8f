"""The ``sieve`` command line: the same workflows as the app (core.workflows), headless.

Commands only parse options and print; errors are one line on stderr naming the file,
column or parameter, exit code 2.  ``app`` is the typer application, ``main`` the
console script (``sieve``) and ``python -m core.cli``.
"""

from __future__ import annotations

import typer

from .console import PlainConsole, guard, plain
from .data import app_, curate, embed, info, ingest, map_, search
from .scale import scale_app
from .subset import export, reproduce, run, select_, verify

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Sieve: map a text dataset and pick a balanced, reproducible subset under per-cluster budgets.")

for _name, _command in (("ingest", ingest), ("embed", embed), ("map", map_), ("search", search),
                        ("curate", curate), ("select", select_), ("export", export), ("run", run),
                        ("reproduce", reproduce), ("verify", verify), ("info", info)):
    app.command(_name)(guard(_command))
app.command("app")(app_)
app.add_typer(scale_app, name="scale")

__all__ = ["PlainConsole", "app", "main", "plain"]


def main() -> None:
    """The ``sieve`` console script."""
    app()
