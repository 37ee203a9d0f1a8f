"""Issue 15 items 5 and 6: every path a user types goes through core.store.paths.

Reads (data path, reference set, model folder) stay inside $SIEVE_DATA_DIR and never
disclose files outside it; writes (exports, manifests, map files, shard folders) stay
inside the export folder, never go through a symbolic link, never replace the folder
itself and never replace an existing file unless asked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.store.paths import check_new_files, confine_read, confine_write
from core.encoders.models import confine_model
from core.store.workspace import SieveError
from pages import common as C
from pages import state as S
from tests.app_fixtures import empty_env, map_env, new_app, no_errors, open_page, small_map  # noqa: F401

SECRET = "TOPSECRETHEADER"


@pytest.fixture
def tree(tmp_path):
    """data/ (the allowed folder, with a link out of it) beside outside/ (a secret CSV)."""
    data, outside, empty = tmp_path / "data", tmp_path / "outside", tmp_path / "empty"
    for d in (data / "sub", outside, empty):
        d.mkdir(parents=True)
    (outside / "secret.csv").write_text(f"{SECRET},b\n1,2\n")
    (data / "sub" / "rows.csv").write_text("text,n\nhello world,1\nsecond row,2\n")
    (data / "out").symlink_to(outside)
    (data / "void").symlink_to(empty)
    return data, outside


# -- reads --------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["/etc/passwd", "~/x.csv", "../outside/secret.csv", "sub/../../outside/secret.csv",
                                 "a\x00b.csv", "\x1b[31mred.csv", "", "   "])
def test_reads_are_refused_before_the_disk_is_touched(raw, tree):
    data, _ = tree
    with pytest.raises(SieveError) as err:
        confine_read(raw, data)
    msg = str(err.value)
    assert "\n" not in msg and "\x1b" not in msg and "\x00" not in msg and SECRET not in msg


def test_a_link_out_is_refused_whether_or_not_its_target_exists(tree):
    data, _ = tree
    messages = []
    for raw in ("out/secret.csv", "out/no-such-file.csv"):
        with pytest.raises(SieveError) as err:
            confine_read(raw, data)
        messages.append(str(err.value).replace(raw, "X"))
    assert messages[0] == messages[1] and "outside" in messages[0]


def test_a_glob_reaching_outside_fails_like_a_glob_matching_nothing(tree):
    """A glob through a link out must not reveal whether files exist out there."""
    data, _ = tree
    messages = []
    for raw in ("out/*.csv", "void/*.csv", "sub/*.nothing", "**/secret.csv"):
        with pytest.raises(SieveError) as err:
            confine_read(raw, data)
        assert "secret.csv'" not in str(err.value).replace(repr(raw), "")
        messages.append(str(err.value).replace(repr(raw), "X"))
    assert len(set(messages)) == 1, messages
    assert confine_read("sub/*.csv", data) == str(data.resolve() / "sub/*.csv")


def test_model_folders_are_confined_in_server_mode(tree):
    data, _ = tree
    (data / "models" / "mini").mkdir(parents=True)
    assert confine_model("all-MiniLM-L6-v2", data) == "all-MiniLM-L6-v2"
    assert confine_model("models/mini", data) == str(data.resolve() / "models" / "mini")
    assert confine_model("/anything/at/all", None) == "/anything/at/all"  # local mode: as typed
    for bad in ("/etc", "~/models", "../outside", "out", "sentence-transformers/all-mpnet-base-v2", "models/*"):
        with pytest.raises(SieveError):
            confine_model(bad, data)


# -- writes -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [".", "./", "sub/..", "", "/tmp/x.parquet", "../x.parquet", "a\x00.csv"])
def test_writes_never_name_the_folder_itself_or_leave_it(raw, tmp_path):
    with pytest.raises(SieveError):
        confine_write(raw, tmp_path / "exports")


def test_writes_never_go_through_a_symbolic_link(tmp_path):
    root, outside = tmp_path / "exports", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "dir").symlink_to(root / "real", target_is_directory=True)  # even a link that stays inside
    (root / "x.manifest.json").symlink_to(outside / "planted.json")
    for raw in ("dir/a.csv", "x.manifest.json"):
        with pytest.raises(SieveError, match="symbolic link"):
            confine_write(raw, root)
    with pytest.raises(SieveError, match="symbolic link"):
        check_new_files([root / "x.manifest.json"], overwrite=True)
    assert not (outside / "planted.json").exists()
    p = confine_write("new/a.csv", root)
    assert p == root.resolve() / "new" / "a.csv"


def test_existing_files_are_replaced_only_when_asked(tmp_path):
    (tmp_path / "a.csv").write_text("old")
    with pytest.raises(SieveError, match="already exists"):
        check_new_files([tmp_path / "a.csv", tmp_path / "b.csv"], overwrite=False)
    check_new_files([tmp_path / "a.csv", tmp_path / "b.csv"], overwrite=True)


def test_write_manifest_replaces_a_planted_link_instead_of_writing_through_it(tmp_path):
    """Even the CLI's writer never follows a link at the final name: it renames over it."""
    from core.manifest import write_manifest

    (tmp_path / "outside.json").write_text("precious")
    link = tmp_path / "m.manifest.json"
    link.symlink_to(tmp_path / "outside.json")
    write_manifest(link, {"selected_row_ids": [1]})
    assert (tmp_path / "outside.json").read_text() == "precious"
    assert not link.is_symlink() and '"selected_row_ids"' in link.read_text()


# -- export and data paths, as the shared-server safety tests checked them ---------------------


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.csv", "a/../../outside.csv", "~/x.csv", ""])
def test_export_paths_are_confined(bad, tmp_path):
    with pytest.raises(SieveError):
        confine_write(bad, tmp_path / "exports")


def test_export_path_inside_is_allowed(tmp_path):
    root = tmp_path / "exports"
    assert confine_write("sub/dir/out.parquet", root) == root.resolve() / "sub/dir/out.parquet"


def test_export_path_cannot_escape_through_a_symlink(tmp_path):
    root = tmp_path / "exports"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(SieveError):
        confine_write("link/escaped.csv", root)


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.csv", "a/../../x.csv", "~/x.csv", "", "link/*.csv"])
def test_data_paths_are_confined_in_server_mode(bad, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (tmp_path / "secret.csv").write_text("text\nsecret\n")
    (root / "link").symlink_to(tmp_path)  # a symlink out of the data folder
    with pytest.raises(SieveError):
        confine_read(bad, root)


def test_data_path_inside_is_allowed(tmp_path):
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    for name in ("a.csv", "b.csv"):
        (root / "sub" / name).write_text("text\nhello\n")
    assert confine_read("sub/*.csv", root) == str(root.resolve() / "sub/*.csv")


# -- the app ------------------------------------------------------------------------------


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
