"""Issue 15 items 8 and 9 on the command line: text from data or users is never interpreted
as markup.  Rich prints user strings as plain text, with control characters (ANSI escapes)
neutralised.  (The app side: tests/app/test_rendering_app.py and
tests/browser/test_markdown_browser.py.)
"""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pytest

from tests.fakes import run_sieve, write_table


def _one_line_error(proc, *needles) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout and "MarkupError" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for n in needles:
        assert n in proc.stderr, proc.stderr


@pytest.fixture
def rows(tmp_path):
    return write_table(pa.table({"text": ["alpha beta", "gamma delta", "epsilon"]}), tmp_path / "rows.csv")


def test_cli_markup_in_a_column_name_is_printed_plainly(rows, tmp_path):
    _one_line_error(run_sieve("ingest", str(rows), "--text", "[/red]", "-w", str(tmp_path / "ws")), "[/red]")


def test_cli_markup_in_a_template_is_printed_plainly_after_the_ingest(rows, tmp_path):
    proc = run_sieve("ingest", str(rows), "--template", "{text} [/red] [bold]x", "-w", str(tmp_path / "ws"))
    assert proc.returncode == 0, proc.stderr
    assert "[/red] [bold]x" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_ansi_escapes_in_a_file_name_never_reach_the_terminal(tmp_path):
    evil = tmp_path / "\x1b[2J\x1b[31mevil.csv"
    evil.write_bytes(b"")  # an empty file: the error names it
    proc = run_sieve("ingest", str(evil), "--text", "text", "-w", str(tmp_path / "ws"))
    _one_line_error(proc, "evil.csv")
    assert "\x1b" not in proc.stderr and "\x1b" not in proc.stdout


def test_cli_manifest_source_with_markup_is_printed_plainly(tmp_path):
    man = {"manifest_version": 1, "dataset": {"sources": ["/nowhere/[/red].csv"], "key": "x",
                                              "text": {"column": "text"}},
           "model": {}, "project": {}, "cluster": {}, "select": {}, "selected_row_ids": [1]}
    path = tmp_path / "m.manifest.json"
    path.write_text(json.dumps(man))
    proc = run_sieve("reproduce", str(path), "--out", str(tmp_path / "o.parquet"), "-w", str(tmp_path / "ws"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "MarkupError" not in proc.stderr


def test_cli_console_prints_tables_and_lines_as_plain_text():
    from rich.table import Table

    from core.cli import PlainConsole

    buf = io.StringIO()
    con = PlainConsole(file=buf, markup=False, emoji=False, highlight=False, width=200)
    t = Table(title="[bold]t")
    t.add_column("name")
    t.add_row("[/red] \x1b[31mred :smile:")
    con.print(t)
    con.print("wrote [/red] to \x1b[2Jx")
    text = buf.getvalue()
    assert "[/red] ?[31mred :smile:" in text and "wrote [/red] to ?[2Jx" in text and "\x1b" not in text
