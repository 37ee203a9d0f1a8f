"""Search by meaning (core.search, `sieve search`, the Map page's search box) on a small
map made with the real packaged model (torch fp32) and generated rows of known topics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.search import embed_query, nearest, row_norms
from core.engines.local import load_map
from core.store.workspace import SieveError
from tests.fakes import build_topic_map


@pytest.fixture(scope="module")
def real_map(tmp_path_factory):
    """(workspace, MapData, topics by row id) of 200 generated rows embedded with all-MiniLM-L6-v2."""
    ws, table = build_topic_map(tmp_path_factory.mktemp("search"))
    data = load_map(ws)
    topics = dict(zip(range(table.num_rows), table.column("topic").to_pylist()))  # row ids follow file order
    return ws, data, topics


def test_nearest_is_exact_cosine_top_k():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(5000, 32)).astype(np.float32)
    q = rng.normal(size=32).astype(np.float32)
    pos, sims = nearest(v, q, 7, norms=row_norms(v), chunk=1000)  # several chunks
    want = (v @ q) / (np.linalg.norm(v, axis=1) * np.linalg.norm(q))
    assert pos.tolist() == np.argsort(-want)[:7].tolist()
    assert np.allclose(sims, want[pos], atol=1e-5) and (np.diff(sims) <= 0).all()
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    assert nearest(unit, q, 7)[0].tolist() == pos.tolist()  # unit rows need no norms
    assert len(nearest(v, q, 10**6)[0]) == 5000
    with pytest.raises(SieveError, match="k must be"):
        nearest(v, q, 0)
    with pytest.raises(SieveError, match="dimensions"):
        nearest(v, q[:5], 3)


def test_a_query_about_a_topic_returns_that_topic_first(real_map):
    from core.encoders.registry import load_encoder

    ws, data, topics = real_map
    enc = load_encoder(params=data.params.embed)
    for query, topic in [("growing vegetables in my garden soil", "gardening"),
                         ("SQL query joins and database indexes", "sql_databases"),
                         ("how to train and feed my dog or cat", "pet_care")]:
        pos, sims = nearest(data.vectors, embed_query(enc, query), 5)
        got = [topics[int(r)] for r in data.row_ids[pos]]
        assert got[0] == topic and got.count(topic) >= 4, (query, got)
        assert 0 < sims[-1] <= sims[0] <= 1
    with pytest.raises(SieveError, match="empty"):
        embed_query(enc, "   ")


def test_sieve_search_cli_prints_plain_rows(real_map):
    from tests.fakes import run_sieve

    ws, data, topics = real_map
    p = run_sieve("search", "budget for monthly savings and expenses", "-k", "4", "-w", ws.root, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = p.stdout.strip().splitlines()
    assert lines[0] == "row_id\tsimilarity\tcluster\ttext" and len(lines) == 5
    rows = [ln.split("\t") for ln in lines[1:]]
    assert [topics[int(r[0])] for r in rows].count("personal_finance") >= 3
    sims = [float(r[1]) for r in rows]
    assert sims == sorted(sims, reverse=True)
    # more like this: a row's own vector finds itself first, at similarity 1
    rid = int(rows[0][0])
    p = run_sieve("search", "--row", str(rid), "-k", "3", "-w", ws.root, timeout=300)
    assert p.returncode == 0, p.stderr
    first = p.stdout.strip().splitlines()[1].split("\t")
    assert int(first[0]) == rid and abs(float(first[1]) - 1) < 1e-4
    p = run_sieve("search", "--row", "999999", "-w", ws.root, timeout=300)
    assert p.returncode == 2 and "999999" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_map_page_search_by_meaning_rings_selects_and_pins(real_map, monkeypatch):
    from pages import state as S
    from pages import map_tools as T
    from tests.app_fixtures import chart, no_errors, open_page, metric_value

    ws, data, topics = real_map
    monkeypatch.setenv("SIEVE_WORKSPACE", str(ws.root))
    at = open_page(S.PAGE_MAP, timeout=180)
    no_errors(at)
    before = json.loads(chart(at).proto.spec)
    at.text_input(key=T.W_SEM_QUERY).input("chords and scales to practise on the guitar")
    at.number_input(key=T.W_SEM_K).set_value(5)
    at.button(key=T.W_SEM_GO).click().run()
    no_errors(at)
    assert metric_value(at, "Rows found") == "5"
    table = at.dataframe[-1].value
    ids = [int(r) for r in table["row id"]]
    assert [topics[r] for r in ids].count("music_theory") >= 4
    assert list(table["similarity"]) == sorted(table["similarity"], reverse=True)
    after = json.loads(chart(at).proto.spec)  # the results are ringed on the map
    assert len(after["data"]) == len(before["data"]) + 1
    assert after["data"][-1]["name"] == "search matches"
    ringed = {int(data.row_ids[p]) for p in at.session_state[S.K_FIG]["traces"][-1]}
    assert ringed == set(ids)
    at.button(key=T.W_SEM_SELECT).click().run()
    assert metric_value(at, "Selected rows") == "5"
    at.button(key=T.W_SEM_PIN).click().run()
    no_errors(at)
    assert metric_value(at, "Pinned rows") == "5" and at.session_state[S.K_PINS] == set(ids)
    # more like this: a row's own vector finds that row first
    at.number_input(key=T.W_SEM_ROW).set_value(ids[2])
    at.button(key=T.W_SEM_LIKE).click().run()
    no_errors(at)
    assert int(at.dataframe[-1].value["row id"][0]) == ids[2]
    at.number_input(key=T.W_SEM_ROW).set_value(10**6)
    at.button(key=T.W_SEM_LIKE).click().run()
    assert not at.exception and any("not on the map" in e.value for e in at.error)
