"""core.selection.picks.facility: pick='facility' (greedy facility location, lazy evaluation;
its block fast path, ``algo_version`` 3, is in test_facility_block.py).
"""

from __future__ import annotations

import numpy as np

from core.stages.metrics import facility_score
from core.nn import unit
from core.selection import SelectParams, pick_facility, select
from tests.builders import blob_cluster as _blob_cluster
from tests.fakes import blobs_on_sphere


def test_facility_beats_random_on_the_facility_objective():
    centres = np.eye(8)[:6] + 0.05
    v = blobs_on_sphere(centres, [200, 60, 20, 10, 6, 4], spread=0.15, seed=2)
    labels = np.zeros(len(v), int)
    row_ids = np.arange(len(v))
    fac = select(labels, row_ids, SelectParams(budget=6, pick="facility"), vectors=v)
    assert fac.reasons == ["facility"] * 6
    clients = np.arange(len(v))
    f_fac = facility_score(v, fac.positions, clients)
    f_rand = [facility_score(v, select(labels, row_ids, SelectParams(budget=6, pick="random", seed=s)).positions,
                             clients) for s in range(10)]
    assert f_fac > max(f_rand)
    # greedy picks the biggest blob first (largest marginal gain), then mostly new blobs
    blob = np.repeat(np.arange(6), [200, 60, 20, 10, 6, 4])
    assert blob[fac.positions[0]] == 0
    assert len(set(blob[fac.positions].tolist())) >= 5


def test_facility_lazy_greedy_equals_plain_greedy():
    v, _ = _blob_cluster(120, seed=4)
    cands = np.arange(120)
    lazy = pick_facility(cands, 15, v, cands)
    # plain greedy: recompute every gain every step
    sims = np.maximum(unit(v) @ unit(v).T, 0)
    cur, plain = np.zeros(120), []
    for _ in range(15):
        gains = np.maximum(sims - cur[None, :], 0).sum(axis=1)
        gains[plain] = -1
        best = int(np.argmax(gains))
        plain.append(best)
        cur = np.maximum(cur, sims[best])
    assert lazy.tolist() == plain


def test_facility_on_a_sampled_big_cluster_is_deterministic_and_covers():
    v = blobs_on_sphere(np.eye(16)[:4] + 0.1, [3000, 1000, 500, 500], spread=0.2, seed=5)
    cands = np.arange(len(v))
    a = pick_facility(cands, 8, v, cands, seed=3, max_clients=300, max_candidates=1000)
    b = pick_facility(cands, 8, v, cands, seed=3, max_clients=300, max_candidates=1000)
    assert a.tolist() == b.tolist()
    blob = np.repeat(np.arange(4), [3000, 1000, 500, 500])
    assert set(blob[a].tolist()) == {0, 1, 2, 3}
