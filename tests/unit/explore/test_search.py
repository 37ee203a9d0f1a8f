"""Search by meaning (core.search) on a small map made with the real packaged model (torch
fp32) and generated rows of known topics.  (`sieve search`: integration/test_search_cli.py;
the Map page's search box: app/test_search_app.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from core.search import embed_query, nearest, row_norms
from core.store.workspace import SieveError


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
