"""Shared-server safety of the SQL filter box (core.store.query and its worker, core/store/sql_sandbox.py).
(The export and data paths: tests/unit/store/test_paths.py.)

Every attack below must be refused with a clear SieveError, and must have no effect
(no file read or written, no database attached, no setting changed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from core.stages.ingest import IngestParams, ingest
from core.stages.dataset import TextSpec
from core.store.query import filter_rows, run_filter
from core.store.workspace import SieveError, Workspace
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
        # issue 15 item 7: smuggled queries, the spill folder, settings, unbounded generators
        "union smuggled through the parentheses": "1=0) UNION ALL SELECT sieve_row_id FROM dataset WHERE (1=1",
        "order by smuggled": "1=1) ORDER BY (1",
        "limit smuggled": "1=1) LIMIT (1",
        "group by smuggled": "1=1) GROUP BY (sieve_row_id",
        "a file by its name (replacement scan)": f"EXISTS (SELECT * FROM '{secret}')",
        "the spill folder": "EXISTS (SELECT * FROM '.tmp/duckdb_temp_storage-0.tmp')",
        "current_setting": "current_setting('secret_directory') IS NOT NULL",
        "allowed_directories": "len(current_setting('allowed_directories')) >= 0",
        "duckdb_settings()": "EXISTS (SELECT * FROM duckdb_settings())",
        "getvariable": "getvariable('x') IS NULL",
        "range() as a table": "EXISTS (SELECT * FROM range(1000000000000))",
        "another schema": "EXISTS (SELECT * FROM main.dataset)",
        "a CTE": "EXISTS (WITH t AS (SELECT 1) SELECT * FROM t)",
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


def test_ids_from_filter_are_numpy_int64(table):
    ids = filter_rows(table, "quality < 1")
    assert ids.dtype == np.int64 and ids.tolist() == [0, 1, 2, 3]


# -- issue 15 item 7: the SQL box is bounded in time and memory and reads no file -------------------


def test_filter_is_one_expression_parsed_by_duckdb(table):
    """Subqueries over the dataset itself are fine; the parsed tree is what runs."""
    assert filter_rows(table, "quality > (SELECT avg(quality) FROM dataset)").tolist() == [1, 2]  # avg 0.45
    assert filter_rows(table, "text = 'a' OR quality > 0.8 -- a trailing comment").tolist() == [2]
    with pytest.raises(SieveError, match="one expression"):
        filter_rows(table, "1=0) UNION ALL SELECT sieve_row_id FROM dataset WHERE (1=1")


def test_filter_reads_nothing_under_the_servers_working_directory(table, tmp_path, monkeypatch):
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "spill.csv").write_text("a\n1\n")
    (tmp_path / "secret.csv").write_text("a\n1\n")
    monkeypatch.chdir(tmp_path)
    for sql in ["EXISTS (SELECT * FROM '.tmp/spill.csv')", "EXISTS (SELECT * FROM 'secret.csv')",
                "EXISTS (SELECT * FROM read_csv('secret.csv'))", "EXISTS (SELECT * FROM glob('*'))",
                "(SELECT count(*) FROM read_text('.tmp/*')) > 0"]:
        with pytest.raises(SieveError):
            filter_rows(table, sql)


def _children() -> list[int]:
    """Live SQL worker processes started by this test process (Linux /proc)."""
    import os

    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid() and fields[0] != "Z" \
                    and b"sql_sandbox" in (d / "cmdline").read_bytes():
                out.append(int(d.name))
    return out


def test_filter_times_out_and_leaves_nothing_running(monkeypatch):
    """A cross join that would run for hours stops at SIEVE_SQL_TIMEOUT; afterwards no worker
    process is left (DuckDB's threads are gone with it)."""
    import time

    n = 3000
    big = pa.table({"sieve_row_id": pa.array(range(n), pa.int64()), "text": [f"t{i}" for i in range(n)]})
    monkeypatch.setenv("SIEVE_SQL_TIMEOUT", "1.5")
    t0 = time.perf_counter()
    with pytest.raises(SieveError, match="SIEVE_SQL_TIMEOUT"):
        filter_rows(big, "EXISTS (SELECT 1 FROM dataset a, dataset b, dataset c "
                         "WHERE a.text || b.text || c.text = 'nothing')")
    elapsed = time.perf_counter() - t0
    assert 1.5 <= elapsed < 6, elapsed
    assert _children() == []  # DuckDB's threads lived in the worker, which is gone


def test_filter_memory_is_capped(table, monkeypatch):
    """repeat() allocates outside DuckDB's buffer manager: the worker's address-space cap
    turns it into a clear error instead of exhausting the server."""
    monkeypatch.setenv("SIEVE_SQL_MEMORY", "256MB")
    with pytest.raises(SieveError, match="SIEVE_SQL_MEMORY"):
        filter_rows(table, "length(repeat('ab', 700000000)) > 0")  # a 1.4 GB string


@pytest.mark.parametrize("name,value", [("SIEVE_SQL_TIMEOUT", "soon"), ("SIEVE_SQL_TIMEOUT", "-1"),
                                        ("SIEVE_SQL_MEMORY", "1GB; SET x=1")])
def test_filter_bounds_are_validated(name, value, table, monkeypatch):
    monkeypatch.setenv(name, value)
    with pytest.raises(SieveError, match=name):
        filter_rows(table, "quality > 0")
