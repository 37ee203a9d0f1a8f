"""pick='facility-balanced' (core.selection.coverage): balanced facility location over all
clusters at once -- every eligible row a client weighted 1/sqrt(its cluster's size), each
cluster capped at the policy's allocation.  Determinism, budgets, pins/bans, the objective,
and the refusals (the CLI and `sieve reproduce`:
tests/integration/test_facility_balanced_cli.py)."""

from __future__ import annotations

import numpy as np
import pytest

from core.nn import unit
from core.selection import PICKS, SelectParams, allocate, engine_picks, select
from core.selection.coverage import client_weights, pick_facility_balanced
from core.store.workspace import SieveError


def blobs(n_per=(200, 120, 60, 30, 15), d=12, seed=0):
    """Gaussian blobs of the given sizes (labels = blob, with 5 % of rows as noise -1)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(n_per), d)) * 3
    x = np.concatenate([c + rng.normal(size=(m, d)) for c, m in zip(centres, n_per)]).astype(np.float32)
    lab = np.concatenate([np.full(m, i) for i, m in enumerate(n_per)])
    lab[rng.random(len(lab)) < 0.05] = -1
    return x, lab


def run(x, lab, **kw):
    p = SelectParams(**{"policy": "sqrt", "pick": "facility-balanced", **kw})
    return select(lab, np.arange(len(lab), dtype=np.int64), p, vectors=x)


@pytest.mark.parametrize("budget,seed", [(10, 0), (37, 1), (120, 2)])
def test_deterministic_and_counts_follow_the_allocation(budget, seed):
    x, lab = blobs(seed=seed)
    a, b = run(x, lab, budget=budget, seed=seed), run(x, lab, budget=budget, seed=seed)
    assert np.array_equal(a.positions, b.positions) and a.reasons == b.reasons
    assert len(a) == budget == sum(a.allocation.values())
    assert len(set(a.positions.tolist())) == budget
    ids, cnt = np.unique(lab, return_counts=True)
    want = allocate({int(c): int(m) for c, m in zip(ids, cnt)}, budget, "sqrt").counts
    assert a.allocation == want
    got = dict(zip(*np.unique(a.clusters, return_counts=True)))
    assert {int(c): int(v) for c, v in got.items()} == {c: v for c, v in want.items() if v}
    assert set(a.reasons) == {"facility-balanced"}


def test_pins_are_in_and_bans_are_out_and_the_budget_holds():
    x, lab = blobs()
    pins, bans = (3, 250, 400), tuple(range(0, 200, 2))
    s = run(x, lab, budget=40, pins=pins, bans=bans)
    assert len(s) == 40 and set(pins) <= set(s.row_ids.tolist())
    assert not set(bans) & set(s.row_ids.tolist())
    assert [r for r, rid in zip(s.reasons, s.row_ids) if rid in pins] == ["pinned"] * 3


def test_weights_are_inverse_sqrt_of_the_cluster_size():
    cands = {0: np.arange(0, 100), 1: np.arange(100, 104), 2: np.zeros(0, np.int64)}
    w = client_weights(cands, np.array([0, 50, 101, 200]))
    assert np.allclose(w, [0.1, 0.1, 0.5, 1.0])  # 200: a pin (no cluster's candidate) weighs 1


def weighted_value(x, lab, chosen):
    u = unit(x)
    ids, inv, cnt = np.unique(lab, return_inverse=True, return_counts=True)
    w = cnt[inv] ** -0.5
    return float(w @ np.maximum(u @ u[chosen].T, 0).max(axis=1))


def test_greedy_beats_random_rows_with_the_same_counts_on_its_objective():
    x, lab = blobs(seed=3)
    cands = {int(c): np.nonzero(lab == c)[0] for c in np.unique(lab)}
    need = {c: 2 for c in cands}
    got = pick_facility_balanced(cands, need, x, np.arange(len(lab)), seed=0)
    assert all(len(got[c]) == 2 and set(got[c]) <= set(cands[c].tolist()) for c in cands)
    ours = weighted_value(x, lab, np.concatenate(list(got.values())))
    rng = np.random.default_rng(0)
    rand = [weighted_value(x, lab, np.concatenate([rng.choice(cands[c], 2, replace=False) for c in cands]))
            for _ in range(20)]
    assert ours > max(rand)


def brute_greedy(x, lab, cands, need, power):
    """The plain (non-lazy) greedy on the weighted objective under the per-cluster caps."""
    u = unit(x)
    sizes = {c: len(p) for c, p in cands.items()}
    w = np.array([sizes[c] ** -power for c in lab])
    cur, left, out = np.zeros(len(x)), dict(need), []
    for _ in range(sum(need.values())):
        best, gain = None, -1.0
        for c, pos in cands.items():
            if left[c] == 0:
                continue
            for p in pos:
                if p in out:
                    continue
                g = float(w @ np.maximum(np.maximum(u @ u[p], 0) - cur, 0))
                if g > gain + 1e-9:
                    best, gain = (c, p), g
        out.append(best[1])
        left[best[0]] -= 1
        cur = np.maximum(cur, np.maximum(u @ u[best[1]], 0))
    return out


@pytest.mark.parametrize("power", [0.5, 0.0, 1.0])
def test_lazy_greedy_picks_what_the_plain_weighted_greedy_picks(power):
    x, lab = blobs(n_per=(40, 25, 12, 6), d=6, seed=4)
    lab = np.where(lab < 0, 0, lab)
    cands = {int(c): np.nonzero(lab == c)[0] for c in np.unique(lab)}
    need = {0: 3, 1: 2, 2: 2, 3: 1}
    got = pick_facility_balanced(cands, need, x, np.arange(len(lab)), power=power)
    want = brute_greedy(x, lab, cands, need, power)
    assert sorted(np.concatenate(list(got.values())).tolist()) == sorted(want)
    for c in cands:  # each cluster's rows come in greedy order
        assert got[c].tolist() == [p for p in want if lab[p] == c]


def test_refused_with_tokens_or_strata_and_not_on_ray():
    assert "facility-balanced" in PICKS and "facility-balanced" not in engine_picks("ray")
    with pytest.raises(SieveError, match="facility-balanced.*budget_unit='tokens'"):
        SelectParams(budget=10, pick="facility-balanced", budget_unit="tokens")
    with pytest.raises(SieveError, match="facility-balanced"):
        SelectParams(budget=10, pick="facility-balanced", strata_column="source")
    with pytest.raises(SieveError, match="needs the embedding vectors"):
        select(np.zeros(20, int), np.arange(20), SelectParams(budget=5, pick="facility-balanced"))
