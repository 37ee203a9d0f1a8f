"""Facility location's fast path (``algo_version`` 3): the exact greedy on a client x
candidate similarity block computed once (core.selection.facility_block).

Claims checked here:

* new parameters get version 3; versions 1 and 2 still give the ids the code chose
  before version 3 existed (frozen below: facility and facility-global, pins, bans and a
  token budget), so old manifests replay;
* on a cluster small enough that every row is a client and a candidate, version 3 picks
  exactly what a plain float64 greedy picks (the objective's definition, written out);
* facility-global's version 3 picks (nearly) the same rows as its version 2 (same clients
  and candidates; only the arithmetic changed, so float-rounding ties may go the other way);
* on clusters big enough to be sampled, version 3's facility value (mean over every row
  of a cluster of its highest similarity to that cluster's chosen rows) is >= 0.98 x
  version 2's and above random's, on several seeds and budgets;
* deterministic for a seed; pins seed the greedy (and come first); bans are never
  chosen; token budgets are never exceeded, rows that would overshoot are skipped;
  strata cells still get their counts;
* the chunked gain update (bounded memory) is still the greedy.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.nn import unit
from core.selection import ALGO_VERSION, SelectParams
from core.selection import facility_block as FB
from core.selection import select
from core.selection.picks.facility import pick_facility_block
from core.selection.picks.views import ClusterRows

# Written by the code before algo_version 3 (commit 1d68ed5) for _frozen_case() below.
FROZEN_V2 = {
    "facility": [12572, 12672, 12627, 12697, 12, 32, 167, 197, 832, 767, 877, 497, 467, 1382, 1197, 687, 1397, 2002,
                 4952, 2462, 1697, 3092, 4137, 2937, 3642, 2512, 3677, 2517, 2682, 1917, 4447, 1977, 6122, 10792, 8162,
                 7787, 10672, 7142, 5997, 8707, 11817, 9092, 7842, 6337, 9377, 7507, 10712, 8147, 8842, 11587, 9002,
                 11837, 10337, 11347, 12107, 12037, 12302, 12317, 12402, 12217],
    "facility-global": [12592, 12727, 12612, 12672, 12, 197, 117, 52, 767, 832, 877, 497, 467, 452, 687, 1197, 1382,
                        2002, 4952, 2462, 1697, 3092, 4137, 3677, 3642, 1917, 2512, 2937, 4382, 1722, 4257, 4372, 6122,
                        10792, 8162, 7787, 7142, 10337, 7842, 11817, 9717, 8707, 10672, 7487, 5997, 10712, 6992, 5752,
                        9092, 11292, 6622, 11052, 9987, 10747, 12107, 12037, 12217, 12317, 12297, 12122],
    "tokens": [12572, 12672, 12697, 12497, 147, 12, 832, 767, 877, 497, 467, 687, 4952, 2462, 1697, 3092, 4137, 2517,
               2682, 3837, 6122, 10792, 8162, 7787, 10672, 7142, 5997, 8707, 11817, 9092, 7842, 9717, 9292, 11532, 9337,
               12107, 12037],
}


def _frozen_case():
    rng = np.random.default_rng(2026)
    sizes = [40, 260, 700, 1400, 90]
    labels = np.concatenate([np.full(s, c) for c, s in enumerate(sizes)] + [np.full(60, -1)])
    centres = rng.standard_normal((len(sizes), 24))
    v = (centres[np.maximum(labels, 0)] + rng.standard_normal((len(labels), 24)) * 0.9).astype(np.float32)
    rid = np.arange(len(labels), dtype=np.int64) * 5 + 2
    tokens = rng.integers(5, 200, len(labels))
    return labels, v, rid, tokens


def _structured(seed: int, sizes=(150, 300, 600, 1200, 2500, 4000), dim: int = 48):
    """Clusters made of 12 sub-blobs of Dirichlet sizes and different spreads (facility location matters)."""
    rng = np.random.default_rng(seed)
    labels, parts = [], []
    for c, n in enumerate(sizes):
        subs = rng.standard_normal(dim) + rng.standard_normal((12, dim)) * 0.7
        which = rng.choice(12, n, p=rng.dirichlet(np.full(12, 0.5)))
        parts.append(subs[which] + rng.standard_normal((n, dim)) * rng.uniform(0.2, 0.6, 12)[which][:, None])
        labels += [c] * n
    return np.asarray(labels), unit(np.concatenate(parts))


def _facility_value(labels, v, sel) -> float:
    """Mean over every row of its highest (clipped) cosine similarity to its cluster's chosen rows."""
    total = 0.0
    for c in np.unique(labels):
        members, chosen = np.nonzero(labels == c)[0], sel.positions[sel.clusters == c]
        if len(chosen):
            total += np.maximum((v[members] @ v[chosen].T).max(axis=1), 0).sum()
    return total / len(labels)


def test_new_params_get_version_3_and_old_dicts_replay_version_1():
    assert ALGO_VERSION == 3
    p = SelectParams(budget=10, pick="facility")
    assert p.algo_version == 3 and p.to_dict()["algo_version"] == 3
    assert SelectParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert SelectParams.from_dict({"budget": 10, "pick": "facility"}).algo_version == 1
    assert SelectParams.from_dict({**p.to_dict(), "algo_version": 2}).algo_version == 2


@pytest.mark.parametrize("pick", ["facility", "facility-global"])
@pytest.mark.parametrize("version", [1, 2])
def test_versions_1_and_2_give_the_frozen_ids(pick, version):
    labels, v, rid, _ = _frozen_case()
    params = SelectParams(budget=60, policy="sqrt", pick=pick, seed=4, algo_version=version, pins=(12, 2002),
                          bans=(7, 17, 5002))
    assert select(labels, rid, params, vectors=v).row_ids.tolist() == FROZEN_V2[pick]


def test_version_2_token_budget_gives_the_frozen_ids():
    labels, v, rid, tokens = _frozen_case()
    params = SelectParams(budget=3000, policy="sqrt", pick="facility", seed=4, algo_version=2, budget_unit="tokens")
    assert select(labels, rid, params, vectors=v, token_counts=tokens).row_ids.tolist() == FROZEN_V2["tokens"]


def _check_greedy(V: np.ndarray, picks, seeds=()) -> None:
    """Every pick is a best pick of facility location's greedy, written out in float64 (clients =
    candidates = every row of V), given the pins and the picks before it -- up to float32 rounding
    (near-duplicate rows tie to about 1e-7)."""
    S = np.maximum(V.astype(np.float64) @ V.astype(np.float64).T, 0)
    cur = np.zeros(len(V)) if not len(seeds) else S[:, list(seeds)].max(axis=1)
    done = list(seeds)
    for i in picks:
        gains = np.maximum(S - cur[:, None], 0).sum(axis=0)
        gains[done] = -np.inf
        assert gains[i] >= gains.max() - 1e-5 * max(1.0, gains.max())
        done.append(i)
        cur = np.maximum(cur, S[:, i])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_version_3_is_the_exact_greedy_on_a_small_cluster(seed):
    rng = np.random.default_rng(seed)
    n, dim, k = 200, 16, 25
    V = unit(rng.standard_normal((3, dim))[rng.integers(0, 3, n)] + rng.standard_normal((n, dim)) * 0.7)
    members = np.arange(n, dtype=np.int64)
    rows = ClusterRows(V, members)
    got = pick_facility_block(members, k, rows, members, seed=seed)
    assert len(got) == k == len(set(got.tolist()))
    _check_greedy(V, got.tolist())
    # pins seed the greedy: the rest is the greedy continued from their coverage
    pins = np.array([5, 77], dtype=np.int64)
    got = pick_facility_block(np.setdiff1d(members, pins), k, rows, members, seeds=pins, seed=seed)
    assert len(got) == k and not set(got.tolist()) & {5, 77}
    _check_greedy(V, got.tolist(), seeds=pins.tolist())


def test_facility_global_version_3_picks_as_version_2():
    for seed in (0, 1, 2):
        labels, v = _structured(seed, sizes=(80, 150, 300, 500))
        rid = np.arange(len(labels), dtype=np.int64)
        base = dict(budget=120, policy="sqrt", pick="facility-global", seed=seed, pins=(3, 400), bans=(9, 700))
        old = select(labels, rid, SelectParams(**base, algo_version=2), vectors=v)
        new = select(labels, rid, SelectParams(**base, algo_version=3), vectors=v)
        # the same greedy: the same rows up to float-rounding ties, and the same objective
        assert len(set(new.row_ids.tolist()) & set(old.row_ids.tolist())) >= 0.9 * len(old)
        assert new.row_ids.tolist()[:10] == old.row_ids.tolist()[:10]
        assert _facility_value(labels, v, new) >= 0.998 * _facility_value(labels, v, old)


@pytest.mark.parametrize("budget", [60, 300, 1200])
def test_version_3_keeps_the_facility_value(budget):
    for seed in (1, 2, 3):
        labels, v = _structured(seed)
        rid = np.arange(len(labels), dtype=np.int64)
        value = {}
        for pick, version in (("facility", 2), ("facility", 3), ("random", 3)):
            sel = select(labels, rid, SelectParams(budget=budget, policy="sqrt", pick=pick, seed=seed,
                                                   algo_version=version), vectors=v)
            assert len(sel) == budget
            value[pick, version] = _facility_value(labels, v, sel)
        assert value["facility", 3] >= 0.98 * value["facility", 2]
        assert value["facility", 3] > value["random", 3]


def test_version_3_is_deterministic_and_keeps_pins_bans_and_budgets():
    labels, v, rid, tokens = _frozen_case()
    pins, bans = (12, 2002, 6122), (7, 17, 5002, 832)
    p = SelectParams(budget=80, policy="sqrt", pick="facility", seed=4, pins=pins, bans=bans)
    a, b = select(labels, rid, p, vectors=v), select(labels, rid, p, vectors=v)
    assert a.row_ids.tolist() == b.row_ids.tolist() and len(a) == 80 and len(set(a.row_ids.tolist())) == 80
    assert set(pins) <= set(a.row_ids.tolist()) and not set(bans) & set(a.row_ids.tolist())
    for pin in pins:  # each pin leads its cluster's rows
        c = a.clusters[a.row_ids == pin][0]
        assert a.reasons[int(np.nonzero(a.row_ids == pin)[0][0])] == "pinned"
        assert a.ranks[a.row_ids == pin][0] <= sum(labels[(rid == q)][0] == c for q in pins)
    other = select(labels, rid, SelectParams(budget=80, policy="sqrt", pick="facility", seed=5), vectors=v)
    assert other.row_ids.tolist() != a.row_ids.tolist()
    # the pins' coverage changes what follows them
    free = select(labels, rid, SelectParams(budget=80, policy="sqrt", pick="facility", seed=4, bans=bans), vectors=v)
    assert [x for x in a.row_ids.tolist() if x not in pins] != free.row_ids.tolist()[: 80 - len(pins)]

    pt = SelectParams(budget=3000, policy="sqrt", pick="facility", seed=4, budget_unit="tokens", bans=bans)
    t = select(labels, rid, pt, vectors=v, token_counts=tokens)
    assert t.tokens.sum() <= 3000 and not set(bans) & set(t.row_ids.tolist())
    for c, cap in t.allocation.items():  # no cluster over its token allocation, and little left unused
        assert t.tokens[t.clusters == c].sum() <= cap


def test_version_3_skips_rows_that_would_overshoot_the_token_budget():
    rng = np.random.default_rng(0)
    V = unit(rng.standard_normal((120, 8)))
    members = np.arange(120, dtype=np.int64)
    cost = np.full(120, 10, dtype=np.int64)
    greedy = pick_facility_block(members, 120, ClusterRows(V, members), members)
    cost[greedy[1]] = 1000  # the greedy's second row does not fit: it is skipped, the rest still come
    got = pick_facility_block(members, 120, ClusterRows(V, members), members, cost=cost, capacity=55)
    assert cost[got].sum() <= 55 and greedy[1] not in got.tolist() and len(got) == 5
    assert got[0] == greedy[0]


def test_version_3_with_strata():
    labels, v, rid, _ = _frozen_case()
    strata = np.where(np.arange(len(labels)) % 3 == 0, "a", "b")
    p = SelectParams(budget=90, policy="sqrt", pick="facility", seed=1, strata_column="src",
                     strata_bounds={"a": (10, None)})
    sel = select(labels, rid, p, vectors=v, strata=strata)
    assert len(sel) == 90 and len(set(sel.row_ids.tolist())) == 90
    for c, split in sel.stats["strata"].items():  # every cell got exactly its count, floors included
        chosen = strata[sel.positions[sel.clusters == int(c)]]
        assert {x: int((chosen == x).sum()) for x in split} == split
        assert split.get("a", 0) >= min(10, int(((labels == int(c)) & (strata == "a")).sum()), sel.allocation[int(c)])


def test_chunked_update_is_still_the_greedy(monkeypatch):
    labels, v = _structured(4, sizes=(900,))
    members = np.arange(len(labels), dtype=np.int64)
    rows = ClusterRows(v, members)
    whole = pick_facility_block(members, 60, rows, members, clients_min=900)
    monkeypatch.setattr(FB, "UPDATE_CHUNK", 5000)  # a few clients per chunk: another summation order
    chunked = pick_facility_block(members, 60, rows, members, clients_min=900)
    assert chunked[:20].tolist() == whole[:20].tolist()
    _check_greedy(v, whole.tolist())
    _check_greedy(v, chunked.tolist())
