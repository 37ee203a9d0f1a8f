"""core.store.paths (issue 15 items 5 and 6): every path a user types is confined.

Reads (data path, reference set) stay inside $SIEVE_DATA_DIR and never disclose files
outside it; writes (exports, manifests, map files, shard folders) stay inside the export
folder, never go through a symbolic link, never replace the folder itself and never replace
an existing file unless asked.  (The model folder: unit/encoders/test_models.py; the
pages' path boxes: app/test_paths_app.py.)
"""

from __future__ import annotations

import pytest

from core.store.paths import check_new_files, confine_read, confine_write
from core.store.workspace import SieveError
from tests.builders import SECRET


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
