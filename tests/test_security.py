"""Shared-server safety of core: the SQL filter box and export paths.

Every attack below must be refused with a clear SieveError, and must have no effect
(no file read or written, no database attached, no setting changed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from core.export import confine_path
from core.ingest import IngestParams, TextSpec, ingest
from core.query import filter_rows, run_filter
from core.workspace import SieveError, Workspace
from tests.fakes import write_table


@pytest.fixture
def table():
    return pa.table({
        "sieve_row_id": pa.array([0, 1, 2, 3], pa.int64()),
        "text": ["bread", "python", "brakes", "<script>alert(1)</script>"],
        "quality": [0.1, 0.5, 0.9, 0.3],
        "select": ["a", "b", "c", "d"],  # a column named like a keyword
    })


def test_filter_selects_rows(table):
    assert filter_rows(table, "quality > 0.3").tolist() == [1, 2]
    assert filter_rows(table, "text ILIKE '%br%'").tolist() == [0, 2]
    assert filter_rows(table, '"select" = \'c\'').tolist() == [2]


def _attacks(tmp: Path) -> dict[str, str]:
    secret = tmp / "secret.csv"
    secret.write_text("a\n1\n")
    target = tmp / "written.csv"
    return {
        "read a local file": f"quality > (SELECT count(*) FROM read_csv('{secret}'))",
        "read a file as text": f"EXISTS (SELECT * FROM read_text('{secret}'))",
        "glob the filesystem": "EXISTS (SELECT * FROM glob('/etc/*'))",
        "union out of the filter": f"1=1) UNION SELECT 99 FROM read_csv('{secret}') --",
        "write a file with COPY": f"1=1); COPY dataset TO '{target}'; --",
        "attach another database": f"1=1); ATTACH '{tmp / 'evil.duckdb'}' AS evil; --",
        "install an extension": "1=1); INSTALL httpfs; --",
        "load an extension": "1=1); LOAD httpfs; --",
        "re-enable external access": "1=1); SET enable_external_access = true; --",
        "pragma": "1=1); PRAGMA database_list; --",
        "create a table": "1=1); CREATE TABLE pwned AS SELECT 1; --",
        "parquet over http": "EXISTS (SELECT * FROM read_parquet('http://127.0.0.1:9/x.parquet'))",
    }


@pytest.mark.parametrize("name", list(_attacks(Path("/tmp"))))
def test_filter_refuses_attack(name, table, tmp_path):
    sql = _attacks(tmp_path)[name]
    with pytest.raises(SieveError) as err:
        filter_rows(table, sql)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "written.csv").exists()
    assert not (tmp_path / "evil.duckdb").exists()


def test_filter_runs_against_the_workspace_dataset_only(tmp_path):
    ws = Workspace(tmp_path / "ws")
    path = write_table(pa.table({"id": [1, 2, 3], "text": ["a b", "c d", "e f"], "n": [1, 5, 9]}), tmp_path / "d.csv")
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    assert run_filter(ws, "n >= 5").tolist() == [1, 2]
    with pytest.raises(SieveError):  # the workspace's own tables are not reachable
        run_filter(ws, "EXISTS (SELECT * FROM sieve_meta)")
    with pytest.raises(SieveError):
        run_filter(ws, "EXISTS (SELECT * FROM embed_cache)")


@pytest.mark.parametrize("bad", ["", "   ", "x" * 5000])
def test_filter_rejects_empty_or_huge(bad, table):
    with pytest.raises(SieveError):
        filter_rows(table, bad)


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.csv", "a/../../outside.csv", "~/x.csv", ""])
def test_export_paths_are_confined(bad, tmp_path):
    with pytest.raises(SieveError):
        confine_path(bad, tmp_path / "exports")


def test_export_path_inside_is_allowed(tmp_path):
    root = tmp_path / "exports"
    assert confine_path("sub/dir/out.parquet", root) == (root / "sub/dir/out.parquet").resolve()


def test_export_path_cannot_escape_through_a_symlink(tmp_path):
    root = tmp_path / "exports"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(SieveError):
        confine_path("link/escaped.csv", root)


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.csv", "a/../../x.csv", "~/x.csv", "", "link/*.csv"])
def test_data_paths_are_confined_in_server_mode(bad, tmp_path):
    from core.ingest import confine_source

    root = tmp_path / "data"
    root.mkdir()
    (tmp_path / "secret.csv").write_text("text\nsecret\n")
    (root / "link").symlink_to(tmp_path)  # a symlink out of the data folder
    with pytest.raises(SieveError):
        confine_source(bad, root)


def test_data_path_inside_is_allowed(tmp_path):
    from core.ingest import confine_source

    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    for name in ("a.csv", "b.csv"):
        (root / "sub" / name).write_text("text\nhello\n")
    assert confine_source("sub/*.csv", root) == str(root.resolve() / "sub/*.csv")


def test_ids_from_filter_are_numpy_int64(table):
    ids = filter_rows(table, "quality < 1")
    assert ids.dtype == np.int64 and ids.tolist() == [0, 1, 2, 3]
