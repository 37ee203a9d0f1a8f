"""The pages' path boxes go through core.store.paths (issue 15 items 5 and 6): the Budget
page's reference set, the Data page's path box, the Map page's model folder and the Export
page's Save stay inside their folders, never write through a link, and ask before overwriting.
"""

from __future__ import annotations

import pytest

from pages import common as C
from pages import state as S
from tests.app_fixtures import empty_env, map_env, new_app, no_errors, open_page, small_map  # noqa: F401
from tests.builders import SECRET


def _messages(at) -> list[str]:
    return [e.value for e in [*at.error, *at.warning, *at.info, *at.success, *at.caption]]


@pytest.mark.parametrize("ref", ["../outside/secret.csv", "__ABS__", "out/secret.csv", "**/*.csv"])
def test_budget_reference_path_is_confined_in_server_mode(ref, map_env, tree, monkeypatch):
    """Issue 15 item 5: the reference path ignored $SIEVE_DATA_DIR and leaked a CSV's header."""
    data, outside = tree
    monkeypatch.setenv("SIEVE_DATA_DIR", str(data))
    ref = str(outside / "secret.csv") if ref == "__ABS__" else ref
    at = open_page(S.PAGE_BUDGET, state={S.C_REFERENCE: ref, S.C_REFERENCE_TEXT: "missing"})
    assert not at.exception
    assert at.error, "a reference outside the data folder must be refused"
    assert not any(SECRET in m for m in _messages(at)), _messages(at)


def test_budget_reference_inside_the_data_folder_is_read(map_env, tree, monkeypatch):
    from tests.fakes import BagOfWordsEncoder

    data, _ = tree
    monkeypatch.setenv("SIEVE_DATA_DIR", str(data))
    monkeypatch.setattr(C, "reference_encoder", lambda ws, data: BagOfWordsEncoder())  # the map's fake model
    at = open_page(S.PAGE_BUDGET, state={S.C_REFERENCE: "sub/rows.csv", S.C_REFERENCE_TEXT: "nope"})
    assert any("'nope' is not in" in e.value.replace("\\", "") for e in at.error), [e.value for e in at.error]


def test_new_session_in_server_mode_opens_without_an_error(empty_env, tree, monkeypatch):
    """The path box was pre-filled with the dataset's absolute path, which the confinement
    refused: every new session opened on an error."""
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec
    from core.store.workspace import Workspace

    data, _ = tree
    monkeypatch.setenv("SIEVE_DATA_DIR", str(data))
    ingest(Workspace(empty_env), IngestParams(str(data / "sub" / "rows.csv"), TextSpec(column="text")))
    at = new_app().run()
    no_errors(at)
    assert at.radio(key=S.W_SOURCE_KIND).value == "Path or glob"
    assert at.text_input(key=S.W_SOURCE_PATH).value == "sub/rows.csv"


def test_model_folder_outside_the_data_folder_is_refused(map_env, tree, monkeypatch):
    data, outside = tree
    monkeypatch.setenv("SIEVE_DATA_DIR", str(data))
    at = open_page(S.PAGE_MAP)
    at.text_input(key=S.W_MAP_PREFIX + "model").input(str(outside)).run()
    at.button(key=S.W_COMPUTE).click().run()
    assert not at.exception
    assert any("must be relative" in e.value for e in at.error), [e.value for e in at.error]


def test_export_save_is_confined_refuses_links_and_asks_before_overwriting(map_env, tmp_path, monkeypatch):
    """Issue 15 item 6: a link planted at <name>.manifest.json made Save write outside the
    export folder, and Save silently replaced existing exports."""
    root, outside = tmp_path / "exports", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    monkeypatch.setenv("SIEVE_EXPORT_DIR", str(root))
    (root / "s.parquet.manifest.json").symlink_to(outside / "created.json")
    at = open_page(S.PAGE_BUDGET)
    at.switch_page(S.PAGE_EXPORT).run()
    at.text_input(key=S.W_SAVE_PATH).input("s.parquet").run()
    at.button(key=S.W_SAVE).click().run()
    assert not at.exception
    assert any("symbolic link" in e.value for e in at.error), [e.value for e in at.error]
    assert not (outside / "created.json").exists() and not (root / "s.parquet").exists()
    (root / "s.parquet.manifest.json").unlink()
    at.button(key=S.W_SAVE).click().run()
    no_errors(at)
    first = (root / "s.parquet").stat().st_mtime_ns
    at.button(key=S.W_SAVE).click().run()
    assert any("already exists" in e.value for e in at.error)
    assert (root / "s.parquet").stat().st_mtime_ns == first
    at.checkbox(key=S.W_OVERWRITE).check().run()
    at.button(key=S.W_SAVE).click().run()
    no_errors(at)
    assert (root / "s.parquet").stat().st_mtime_ns != first
    assert not list(outside.iterdir())
