"""Issue 15 items 8 and 9: text from data or users is never interpreted as markup.

App: every markdown-rendering Streamlit call gets data through ``pages.common.esc``
(the browser side is tests/browser/test_markdown_browser.py).  CLI: rich prints user
strings as plain text, with control characters (ANSI escapes) neutralised.
"""

from __future__ import annotations

import io
import json
import re

import pyarrow as pa
import pytest

from pages import common as C

from pages import state as S
from tests.app_fixtures import empty_env, map_env, new_app, open_page, small_map  # noqa: F401
from tests.fakes import run_sieve, write_table

IMG = "![x](http://127.0.0.1:9/img.png)"
LINK = "[lnk](http://127.0.0.1:9/l)"
# markdown that would become an image, a link, an autolink, HTML or code if not escaped
_LIVE = re.compile(r"(?<!\\)(!\[|\]\(|<|`)|https?\\?:")


def _rendered(at) -> list[str]:
    """Every markdown body and label the page shows that quotes the hostile names."""
    out = [e.value for kind in ("error", "warning", "info", "success", "caption", "markdown", "toast")
           for e in at.get(kind)]
    for kind in ("selectbox", "text_input", "checkbox", "radio", "slider", "number_input", "button"):
        out += [w.label for w in at.get(kind)]
    return [m for m in out if "127" in m]


def test_esc_makes_markdown_inert():
    s = C.esc(f"{IMG} {LINK} www.example.com a@b.co <img src=x> `code` $x$ :smile: line\nbreak \x1b[31m")
    assert not _LIVE.search(s) and "\n" not in s and "\x1b" not in s
    assert s.replace("\\", "").replace(C.ZWSP, "") == f"{IMG} {LINK} www.example.com a@b.co <img src=x> `code` " \
                                                    "$x$ :smile: line break ?[31m"
    assert not re.search(r"(?i)(https?:|www\.|\w@\w)", s.replace("\\", ""))  # no autolink survives


def test_data_page_escapes_hostile_column_names(empty_env, tmp_path):
    path = write_table(pa.table({"text": ["hello world", "second row"], IMG: [1.0, 2.0], LINK: ["a", "b"]}),
                       tmp_path / "hostile.csv")
    at = new_app(timeout=240).run()
    at.radio(key=S.W_SOURCE_KIND).set_value("Path or glob").run()
    at.text_input(key=S.W_SOURCE_PATH).input(str(path)).run()
    at.radio(key=S.W_TEXT_MODE).set_value("Template").run()
    at.text_input(key=S.W_TEMPLATE).input("{nope} " + LINK).run()
    at.button(key=S.W_LOAD).click().run()
    assert not at.exception
    assert at.error and any("nope" in e.value for e in at.error)
    assert any("127" in e.value for e in at.error)  # the error lists the hostile columns ...
    bad = [m for m in _rendered(at) if _LIVE.search(m)]
    assert not bad, bad  # ... escaped


def test_map_sql_error_quoting_the_user_is_escaped(map_env):
    at = open_page(S.PAGE_MAP, timeout=240)
    at.text_input(key=S.W_SQL_WHERE).input(f'"{IMG}" > 1 OR "{LINK}" = 1').run()
    at.button(key=S.W_SQL_SELECT).click().run()
    assert not at.exception and at.error and _rendered(at)
    bad = [m for m in _rendered(at) if _LIVE.search(m)]
    assert not bad, bad


def test_upload_with_nul_and_separators_in_its_name_keeps_the_page_working(empty_env):
    """Issue 15 item 10 (the upload part): such a name broke the session's page."""
    at = new_app(timeout=240).run()
    at.radio(key=S.W_SOURCE_KIND).set_value("Upload").run()
    at.file_uploader(key=S.W_UPLOAD).upload("e\x00vil/../\x1b[31mrows\x00.CSV", b"text\nhello\nworld\n",
                                            "text/csv").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    names = [p.name for p in (empty_env / "uploads").iterdir()]
    assert len(names) == 1 and names[0].endswith("-31mrows.csv") and "\x00" not in names[0], names
    at.button(key=S.W_LOAD).click().run()
    assert not at.exception and not at.error
    at.file_uploader(key=S.W_UPLOAD).upload("x\x00.exe", b"MZ", "application/octet-stream").run()
    assert not at.exception and any("unknown extension" in e.value for e in at.error)


# -- the CLI ------------------------------------------------------------------------------


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
