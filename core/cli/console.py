"""The CLI's consoles, error handling and progress display.

Every string is printed as plain text (no rich markup of user text); a library error
becomes one line on stderr and exit code 2 (130 when cancelled or interrupted).
"""

from __future__ import annotations

import contextlib
import functools
import re
from typing import Callable

import duckdb
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from core.stages.embed import Cancelled
from core.store.workspace import SieveError

from .. import queries
from ..engines.base import Unsupported
from ..workflow_types import Events, Step
from .options import selection_flag

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(text: object) -> str:
    """``text`` with control characters other than newline and tab replaced by ``?``."""
    return _CONTROL.sub("?", str(text))


class PlainConsole(Console):
    """A rich Console that prints every string as plain text: no markup, no emoji codes,
    no highlighting, and control characters (ANSI escapes, NUL, carriage returns) shown
    as ``?``, so a file, column or cluster name can neither break nor restyle the terminal.
    Styles come only from :class:`rich.text.Text` objects built here."""

    def render_str(self, text: str, **kwargs) -> Text:
        kwargs.update(markup=False, emoji=False, highlight=False)
        return super().render_str(plain(text), **kwargs)


err = PlainConsole(stderr=True, markup=False, emoji=False, highlight=False)
out = PlainConsole(markup=False, emoji=False, highlight=False)


def note(message: str | None, prefix: str = "note") -> None:
    """Print ``prefix: message`` on stderr, nothing when there is no message."""
    if message:
        err.print(f"{prefix}: {message}", markup=False, highlight=False)


def fail(exc: BaseException) -> None:
    """Print ``error: ...`` as one line on stderr and exit 2."""
    err.print(Text.assemble(("error:", "red"), " ", plain(exc)), soft_wrap=True)
    raise typer.Exit(2)


@contextlib.contextmanager
def exits_on_failure(workspace=None):
    """Library errors inside the block become one line on stderr and exit 2 (130 when
    cancelled or interrupted); ``workspace`` names the database a damage message points at.
    An option the engine cannot run is named by its flag, as typed (:func:`refusal`)."""
    try:
        yield
    except Unsupported as exc:
        fail(SieveError(refusal(exc)))
    except SieveError as exc:
        fail(exc)
    except Cancelled as exc:
        err.print(f"cancelled: {exc}")
        raise typer.Exit(130)
    except KeyboardInterrupt:
        err.print("interrupted: finished chunks are kept; run the command again to resume")
        raise typer.Exit(130)
    except OSError as exc:
        fail(SieveError(f"{exc.strerror or exc} ({exc.filename})" if exc.filename else str(exc)))
    except duckdb.Error as exc:
        fail(queries.database_failure(exc, workspace))  # a damaged database surfaces mid-query


def refusal(exc: Unsupported) -> str:
    """An engine's refusal of a selection option, naming the flag a user typed and the engine
    as ``--engine`` takes it (``--soft-noise 0.5 is not supported by the ray engine yet; use
    the local engine for it``; core.cli.options.selection_flag)."""
    return exc.named(selection_flag(exc.option), str(exc.value))


def guard(fn: Callable) -> Callable:
    """Turn library errors into one line on stderr and a non-zero exit (:func:`exits_on_failure`)."""

    @functools.wraps(fn)
    def command(*args, **kwargs):
        with exits_on_failure(kwargs.get("workspace")):
            return fn(*args, **kwargs)

    return command


@contextlib.contextmanager
def progress(on_step: Step | None = None):
    """A rich progress display on stderr; yields the workflow :class:`Events` that drive it
    (``on_step`` prints each finished step)."""
    bars: dict[str, int] = {}
    with Progress(TextColumn("{task.description}", style="bold", markup=False), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=False) as prog:

        def on_progress(stage, done, total, msg):
            if stage not in bars:
                bars[stage] = prog.add_task(stage, total=max(total, 1))
            prog.update(bars[stage], completed=done, total=max(total, 1), description=plain(f"{stage}: {msg}"))

        def on_stage(stage, event, info):
            if event == "done":
                if stage not in bars:
                    bars[stage] = prog.add_task(stage, total=1)
                state = "cached" if info["cached"] else f"{info['seconds']:.1f} s"
                prog.update(bars[stage], completed=prog.tasks[bars[stage]].total, description=f"{stage}: {state}")

        yield Events(progress=on_progress, on_stage=on_stage, on_step=on_step)
