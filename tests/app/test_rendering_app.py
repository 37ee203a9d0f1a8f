"""Issue 15 item 8 in the app: text from data or users is never interpreted as markup.

Every markdown-rendering Streamlit call gets data through ``pages.common.esc`` (AppTest;
the browser side is tests/browser/test_markdown_browser.py, the CLI side
tests/integration/test_rendering.py).
"""

from __future__ import annotations

import re

import pyarrow as pa

from pages import common as C

from pages import state as S
from tests.app_fixtures import empty_env, map_env, new_app, open_page, small_map  # noqa: F401
from tests.fakes import write_table

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
