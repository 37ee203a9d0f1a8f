"""core.selection.picks.diverse: pick='diverse' (k-center greedy), and its bounded candidate
pool for large maps (``algo_version`` 2, issue 6).

Claims checked here:

* algo_version 2 gives the *same ids* as the original k-center greedy whenever every
  cluster fits in the pool (<= DIVERSE_POOL_MIN rows), on several seeds, sizes and
  dimensions, with pins, bans and either policy;
* on bigger clusters it stays a diverse pick: its mean nearest-neighbour distance is
  within 12 % of the exact greedy's and far above random, and it represents the
  cluster as well (mean distance to the nearest chosen row within 10 %);
* a manifest's select dict without ``algo_version`` replays the original algorithm:
  the same ids as the code before the fast path (frozen below);
* budgets, caps, token budgets and strata still hold, and the pick is deterministic;
* with four blobs of unequal size, the greedy hits every blob and random usually does not.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.stages import metrics as M
from core.selection import ALGO_VERSION, DIVERSE_POOL_MIN, SelectParams, select
from tests.builders import labelled_blobs as _blobs, unit_rows as _unit
from tests.fakes import blobs_on_sphere


@pytest.mark.parametrize("seed", range(5))
def test_pool_diverse_equals_exact_greedy_when_clusters_fit_the_pool(seed):
    rng = np.random.default_rng(100 + seed)
    dim = [8, 32, 384, 16, 64][seed]
    sizes = rng.integers(50, DIVERSE_POOL_MIN, size=int(rng.integers(2, 6)))
    labels, v = _blobs(seed, sizes, dim, noise=int(rng.integers(0, 80)))
    row_ids = np.arange(len(labels), dtype=np.int64) * 3 + 11
    n = len(labels)
    cases = [dict(), dict(pins=(int(row_ids[3]), int(row_ids[40])), bans=(int(row_ids[7]),)),
             dict(policy="proportional", seed=seed + 1, noise="exclude")]
    for extra in cases:
        budget = int(rng.integers(10, n // 3))
        old = select(labels, row_ids, SelectParams(budget=budget, pick="diverse", algo_version=1, **extra), vectors=v)
        new = select(labels, row_ids, SelectParams(budget=budget, pick="diverse", **extra), vectors=v)
        assert new.row_ids.tolist() == old.row_ids.tolist()
        assert new.ranks.tolist() == old.ranks.tolist() and new.reasons == old.reasons


def _coverage_stats(v, chosen):
    u = _unit(v)
    dist = 1 - (u @ u[chosen].T).max(axis=1)
    return float(dist.mean())


@pytest.mark.parametrize("dim,budget", [(16, 40), (32, 120), (384, 60)])
def test_pool_diverse_on_big_clusters_stays_diverse(dim, budget):
    labels, v = _blobs(7, [4000, 2500], dim, spread=0.7)
    row_ids = np.arange(len(labels))
    old = select(labels, row_ids, SelectParams(budget=budget, pick="diverse", algo_version=1), vectors=v)
    new = select(labels, row_ids, SelectParams(budget=budget, pick="diverse"), vectors=v)
    rnd = select(labels, row_ids, SelectParams(budget=budget, pick="random"), vectors=v)
    assert len(new) == len(old) == budget
    assert new.allocation == old.allocation
    nn_old = M.mean_nn_distance(v, old.positions, max_rows=10**6)
    nn_new = M.mean_nn_distance(v, new.positions, max_rows=10**6)
    nn_rnd = M.mean_nn_distance(v, rnd.positions, max_rows=10**6)
    assert nn_new >= 0.88 * nn_old
    assert nn_new >= 1.1 * nn_rnd
    assert _coverage_stats(v, new.positions) <= 1.10 * _coverage_stats(v, old.positions)


def test_old_manifest_dict_replays_the_original_algorithm():
    # Clusters of 1,500 and 1,300 rows: bigger than the pool, so versions 1 and 2 differ.
    rng = np.random.default_rng(2024)
    centres = rng.standard_normal((3, 24))
    labels = np.repeat([0, 1, 2], [1500, 300, 1300])
    v = (centres[labels] + rng.standard_normal((len(labels), 24)) * 0.6).astype(np.float32)
    row_ids = np.arange(len(labels), dtype=np.int64) * 7 + 3
    manifest_select = {"budget": 30, "policy": "equal", "pick": "diverse", "seed": 5, "pins": [10], "bans": [17]}
    params = SelectParams.from_dict(json.loads(json.dumps(manifest_select)))
    assert params.algo_version == 1
    sel = select(labels, row_ids, params, vectors=v)
    # the ids the code before algo_version existed chose for this manifest
    expected = [10, 1235, 4840, 6499, 7164, 1557, 3608, 1473, 1907, 4091, 12281, 12274, 11784, 12232, 12148,
                12211, 11343, 11371, 12589, 11070, 19442, 18616, 13618, 16936, 14556, 20583, 15053, 17181, 16124,
                17531]
    assert sel.row_ids.tolist() == expected
    # new parameters get the fast version, which records itself and round-trips
    fresh = SelectParams(budget=30, pick="diverse", seed=5, pins=(10,), bans=(17,))
    assert fresh.algo_version == ALGO_VERSION and fresh.to_dict()["algo_version"] == ALGO_VERSION
    assert SelectParams.from_dict(json.loads(json.dumps(fresh.to_dict()))) == fresh
    new = select(labels, row_ids, fresh, vectors=v)
    assert new.row_ids.tolist() != expected and new.row_ids[0] == 10 and len(new) == 30
    assert 17 not in new.row_ids.tolist()


def test_pool_diverse_budgets_caps_and_determinism():
    labels, v = _blobs(3, [3000, 1800, 40, 700], 24, noise=200)
    row_ids = np.arange(len(labels))
    p = SelectParams(budget=400, pick="diverse", policy="sqrt", max_per_cluster=150, min_per_cluster=30, seed=9,
                     pins=(int(np.nonzero(labels == 0)[0][5]),))
    a = select(labels, row_ids, p, vectors=v)
    b = select(labels, row_ids, p, vectors=v)
    assert a.row_ids.tolist() == b.row_ids.tolist()
    assert len(a) == 400 == sum(a.allocation.values())
    got = dict(zip(*np.unique(a.clusters, return_counts=True)))
    assert {int(c): int(k) for c, k in got.items()} == {c: k for c, k in a.allocation.items() if k}
    assert all(k <= 150 for c, k in a.allocation.items() if c >= 0)
    assert all(a.allocation[c] >= 30 for c in (0, 1, 2, 3))
    assert len(set(a.row_ids.tolist())) == len(a)
    other = select(labels, row_ids, SelectParams(**{**p.__dict__, "seed": 10}), vectors=v)
    assert other.row_ids.tolist() != a.row_ids.tolist()  # another seed, another pool


def test_pool_diverse_token_budget_and_strata():
    labels, v = _blobs(4, [2600, 1500], 16)
    n = len(labels)
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 60, n)
    row_ids = np.arange(n)
    sel = select(labels, row_ids, SelectParams(budget=5000, pick="diverse", budget_unit="tokens"), vectors=v,
                 token_counts=tokens)
    assert 0 < tokens[sel.positions].sum() <= 5000
    for c, cap in sel.allocation.items():
        assert tokens[sel.positions[sel.clusters == c]].sum() <= cap
    assert tokens[sel.positions].sum() >= 5000 - 2 * 60  # the pool does not run dry before the budget
    strata = np.where(rng.random(n) < 0.3, "a", "b")
    st = select(labels, row_ids, SelectParams(budget=300, pick="diverse", strata_column="s"), vectors=v,
                strata=strata)
    assert len(st) == 300 and len(set(st.row_ids.tolist())) == 300
    for c, cells in st.stats["strata"].items():
        for s, k in cells.items():
            assert int(((st.clusters == int(c)) & (strata[st.positions] == s)).sum()) == k


def _four_blobs():
    """One cluster made of four tight blobs of unequal size (40, 3, 3, 3) on the unit sphere."""
    centres = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, 0]], float)
    v = blobs_on_sphere(centres, [40, 3, 3, 3], spread=0.03, seed=0)
    blob = np.repeat([0, 1, 2, 3], [40, 3, 3, 3])
    return v, blob


def test_diverse_hits_every_blob_and_random_usually_does_not():
    v, blob = _four_blobs()
    labels = np.zeros(len(v), int)
    row_ids = np.arange(len(v))
    sel = select(labels, row_ids, SelectParams(budget=4, pick="diverse"), vectors=v)
    assert sorted(blob[sel.positions].tolist()) == [0, 1, 2, 3]
    assert sel.reasons == ["diverse"] * 4 and sel.ranks.tolist() == [1, 2, 3, 4]
    all_hit = sum(
        len(set(blob[select(labels, row_ids, SelectParams(budget=4, pick="random", seed=s)).positions])) == 4
        for s in range(20)
    )
    assert all_hit <= 5  # ~0.5 % chance per seed
    # the same with a pinned row in the big blob: the picks go to the three others
    pinned = select(labels, row_ids, SelectParams(budget=4, pick="diverse", pins=(7,)), vectors=v)
    assert pinned.reasons == ["pinned", "diverse", "diverse", "diverse"] and pinned.row_ids[0] == 7
    assert sorted(blob[pinned.positions].tolist()) == [0, 1, 2, 3]
