"""Every bad input gives one clear message naming the file, column or parameter,
leaves the workspace exactly as it was, and makes the CLI exit non-zero.

The corpus is in tests/bad_inputs.py.  Degenerate but valid inputs (tiny datasets,
identical texts, a 10 MB row, hostile column names) must work, saying what they did.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from core.stages.ingest import IngestParams, ingest
from core.stages.dataset import TextSpec
from core.engines.local import MapParams, build_map, load_map, run_selection
from core.selection import SelectParams
from core.store.workspace import SieveError, Workspace
from tests.bad_inputs import CASES, GOOD_WEIRD_COLUMNS, write_case, weird_columns_table
from tests.fakes import HashEncoder, run_sieve, write_table

GOOD_ROWS = 60


def good_table(n: int = GOOD_ROWS) -> pa.Table:
    topics = ["bread baking flour oven", "python list dict loop", "car brake tyre oil"]
    q = [i / n for i in range(n)]
    return pa.table({
        "id": [f"r{i}" for i in range(n)],
        "text": [f"{topics[i % 3]} question number {i}" for i in range(n)],
        "q": q,
        "q_nan": [float("nan") if i == 7 else v for i, v in enumerate(q)],
        "q_inf": [math.inf if i == 9 else v for i, v in enumerate(q)],
    })


def snapshot(ws: Workspace) -> dict:
    """Everything a failed operation must leave untouched, compared logically."""
    with ws.connect() as con:
        meta = sorted(con.execute("SELECT key, value FROM sieve_meta").fetchall())
        tables = sorted(r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall())
        digest = None
        if "dataset" in tables:
            digest = con.execute(
                "SELECT count(*), md5(string_agg(sieve_text_hash || ':' || sieve_row_id, ',' ORDER BY sieve_row_id)) "
                "FROM dataset").fetchall()[0]
    files = sorted(str(p.relative_to(ws.root)) for p in ws.root.rglob("*")
                   if p.is_file() and p.name not in ("sieve.duckdb", "sieve.duckdb.wal", ".lock"))
    return {"meta": meta, "tables": tables, "dataset": digest, "files": files}


@pytest.fixture(scope="module")
def mapped_ws(tmp_path_factory):
    """A workspace with a valid dataset and a map (fake encoder); tests must not change it."""
    root = tmp_path_factory.mktemp("bad-inputs")
    path = write_table(good_table(), root / "good.parquet")
    ws = Workspace(root / "ws")
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    build_map(ws, MapParams(), encoder=HashEncoder(dim=16))
    return ws


def assert_one_clear_line(message: str, fragments) -> None:
    assert "\n" not in message.strip(), f"not one line: {message!r}"
    assert "Traceback" not in message
    for frag in fragments:
        assert frag.lower() in message.lower(), f"{frag!r} not in {message!r}"


def _ingest_args(case):
    return TextSpec(column=case.text, template=case.template), case.vectors


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_file_core(case, mapped_ws, tmp_path):
    path = write_case(case, tmp_path)
    before = snapshot(mapped_ws)
    with pytest.raises(ValueError) as err:
        spec, vectors = _ingest_args(case)
        ingest(mapped_ws, IngestParams(str(path), spec, vectors))
    assert isinstance(err.value, SieveError)
    assert_one_clear_line(str(err.value), case.expect)
    assert snapshot(mapped_ws) == before
    load_map(mapped_ws)  # the previous map is still there and readable


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_file_cli(case, mapped_ws, tmp_path):
    path = write_case(case, tmp_path)
    before = snapshot(mapped_ws)
    args = ["ingest", str(path), "-w", str(mapped_ws.root)]
    if case.text:
        args += ["--text", case.text]
    if case.template:
        args += ["--template", case.template]
    if case.vectors:
        args += ["--vectors", case.vectors]
    proc = run_sieve(*args, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    # rich may wrap a long line; what matters is one error and no traceback
    text = " ".join(lines)
    assert text.startswith("error:"), proc.stderr
    assert_one_clear_line(text, case.expect)
    assert snapshot(mapped_ws) == before


SELECT_CASES = [
    ("negative budget", dict(budget=-5), ["--budget", "-5"], ("budget",)),
    ("zero budget", dict(budget=0), ["--budget", "0"], ("budget",)),
    ("budget larger than the data", dict(budget=GOOD_ROWS + 1), ["--budget", str(GOOD_ROWS + 1)], ("budget", "larger")),
    ("min > max", dict(budget=10, min_per_cluster=5, max_per_cluster=3), ["--budget", "10", "--min", "5", "--max", "3"],
     ("min_per_cluster", "max_per_cluster")),
    ("negative override", dict(budget=10, overrides={0: -1}), ["--budget", "10", "--override", "0=-1"], ("overrides",)),
    ("pins conflict with bans", dict(budget=10, pins=(1, 2), bans=(2,)), ["--budget", "10", "--pin", "1,2", "--ban", "2"],
     ("pins", "bans")),
    ("pin not on the map", dict(budget=10, pins=(10_000,)), ["--budget", "10", "--pin", "10000"], ("pins", "10000")),
    ("NaN in score column", dict(budget=10, pick="score", score_column="q_nan"),
     ["--budget", "10", "--pick", "score", "--score-column", "q_nan"], ("q_nan", "nan")),
    ("inf in score column", dict(budget=10, pick="score", score_column="q_inf"),
     ["--budget", "10", "--pick", "score", "--score-column", "q_inf"], ("q_inf", "infinite")),
    ("text as score column", dict(budget=10, pick="score", score_column="text"),
     ["--budget", "10", "--pick", "score", "--score-column", "text"], ("text", "numeric")),
    ("unknown policy", dict(budget=10, policy="fair"), ["--budget", "10", "--policy", "fair"], ("policy",)),
    ("unknown pick", dict(budget=10, pick="best"), ["--budget", "10", "--pick", "best"], ("pick",)),
]


@pytest.mark.parametrize("name,kwargs,cli,expect", SELECT_CASES, ids=[c[0] for c in SELECT_CASES])
def test_bad_selection_core(name, kwargs, cli, expect, mapped_ws):
    before = snapshot(mapped_ws)
    data = load_map(mapped_ws)
    with pytest.raises(ValueError) as err:
        run_selection(mapped_ws, data, SelectParams(**kwargs))
    assert_one_clear_line(str(err.value), expect)
    assert snapshot(mapped_ws) == before


@pytest.mark.parametrize("name,kwargs,cli,expect", SELECT_CASES, ids=[c[0] for c in SELECT_CASES])
def test_bad_selection_cli(name, kwargs, cli, expect, mapped_ws):
    before = snapshot(mapped_ws)
    proc = run_sieve("select", *cli, "-w", str(mapped_ws.root), timeout=120)
    assert proc.returncode == 2, proc.stderr
    text = " ".join(ln for ln in proc.stderr.strip().splitlines() if ln.strip())
    assert text.startswith("error:"), proc.stderr
    assert_one_clear_line(text, expect)
    assert snapshot(mapped_ws) == before


def test_bad_export_name_cli(mapped_ws, tmp_path):
    proc = run_sieve("run", str(tmp_path / "x.csv"), "--text", "text", "--budget", "5", "--out",
                     str(tmp_path / "subset.xlsx"), "-w", str(mapped_ws.root), timeout=60)
    assert proc.returncode == 2
    assert "subset.xlsx" in proc.stderr and "Traceback" not in proc.stderr


# -- degenerate but valid inputs: they work and say what they did ---------------------------


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_datasets_fall_back_and_say_so(n, tmp_path):
    table = good_table(n)
    path = write_table(table, tmp_path / "tiny.csv")
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    keys = build_map(ws, MapParams(), encoder=HashEncoder(dim=8))
    data = load_map(ws, keys)
    assert len(data.row_ids) == n and np.isfinite(data.xy).all()
    assert any("PCA" in note for note in data.notes)
    assert any("one cluster" in note for note in data.notes)
    sel = run_selection(ws, data, SelectParams(budget=n, pick="diverse"))
    assert sorted(sel.row_ids.tolist()) == list(range(n))


def test_all_identical_texts(tmp_path):
    table = pa.table({"id": list(range(80)), "text": ["the very same prompt"] * 80})
    path = write_table(table, tmp_path / "same.parquet")
    ws = Workspace(tmp_path / "ws")
    info, _ = ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    assert info.n_duplicates == 79
    enc = HashEncoder(dim=8)
    data = load_map(ws, build_map(ws, MapParams(), encoder=enc))
    assert len(enc.texts_seen) == 1  # embedded once
    assert np.isfinite(data.xy).all() and len(data.labels) == 80
    sel = run_selection(ws, data, SelectParams(budget=10, pick="diverse"))
    assert len(sel) == 10 and len(set(sel.row_ids.tolist())) == 10


def test_hostile_column_names_work_end_to_end(tmp_path):
    """Names with spaces, quotes and SQL are quoted everywhere: nothing breaks, nothing is executed."""
    table = weird_columns_table()
    path = write_table(table, tmp_path / "weird.parquet")
    ws = Workspace(tmp_path / "ws")
    info, _ = ingest(ws, IngestParams(str(path), TextSpec(template='{my text} / {say "hi"}')))
    assert set(GOOD_WEIRD_COLUMNS) <= set(info.columns)
    data = load_map(ws, build_map(ws, MapParams(), encoder=HashEncoder(dim=8)))
    sel = run_selection(ws, data, SelectParams(budget=6, pick="score", score_column="drop table dataset;--"))
    from core.stages.export import export_rows
    from tests.fakes import read_any

    out = read_any(export_rows(ws, sel, data.cluster_names, tmp_path / "out.parquet"))
    assert set(GOOD_WEIRD_COLUMNS) <= set(out.column_names)
    assert out.num_rows == 6
    # the score column (named like SQL) drove the pick: each cluster's top scores were taken
    scores = np.asarray(table.column("drop table dataset;--").to_pylist())
    for c in set(out.column("sieve_cluster_id").to_pylist()):
        mine = sorted((s for s, k in zip(out.column("drop table dataset;--").to_pylist(),
                                          out.column("sieve_cluster_id").to_pylist()) if k == c), reverse=True)
        members = data.row_ids[data.labels == c]
        assert mine == sorted(scores[members].tolist(), reverse=True)[: len(mine)]
    with ws.connect() as con:  # the table named in a column name still exists
        assert con.execute("SELECT count(*) FROM dataset").fetchall()[0][0] == table.num_rows


def test_ten_megabyte_row(tmp_path, sieve_real_encoder):
    """One 10 MB text is ingested whole and embedded (the model truncates it)."""
    big = ("lorem ipsum dolor sit amet " * 400_000)[: 10 * 1024 * 1024]
    table = pa.table({"id": [1, 2, 3], "text": [big, "a short question about bread", "python lists"]})
    path = write_table(table, tmp_path / "big.csv")
    assert path.stat().st_size > 10 * 1024 * 1024
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    with ws.connect() as con:
        assert con.execute("SELECT max(length(sieve_text)) FROM dataset").fetchall()[0][0] == len(big)
    from core.stages.embed import EmbedParams, load_embeddings, run_embed

    res = run_embed(ws, EmbedParams(), encoder=sieve_real_encoder)
    _, vectors = load_embeddings(ws, res.key)
    assert vectors.shape == (3, 384) and np.isfinite(vectors).all()
