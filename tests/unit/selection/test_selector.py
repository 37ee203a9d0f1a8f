"""select() (core.selection.selector), property-tested over every pick, pins, bans, noise
modes, overrides and bounds; and the errors naming a missing input.

The feasibility rules below are the spec, written independently of core.selection:

* a cluster's *available* rows are its rows minus banned rows;
* its cap is min(available, max(upper, pinned)), where upper is its per-cluster max
  bound, else the global max_per_cluster, else unlimited;
* its floor is min(max(lower, pinned), cap), where lower is max(min_per_cluster, its
  per-cluster min bound) (min_per_cluster does not apply to the noise group);
* an override (or the noise mode 'exclude' / a noise row budget) fixes a group at
  min(max(value, pinned), available);
* a budget with sum(floor) <= budget <= sum(cap) is met exactly.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.stages.cluster import NOISE
from core.selection import PICKS, POLICIES, VECTOR_PICKS, SelectParams, select
from core.store.workspace import SieveError


def _select_spec(labels, row_ids, p: SelectParams):
    pinned = np.isin(row_ids, p.pins)
    banned = np.isin(row_ids, p.bans)
    lo, cap = {}, {}
    for c in sorted(set(labels.tolist())):
        m = labels == c
        avail = int((m & ~banned).sum())
        pins = int((m & pinned).sum())
        fixed = None
        if c == NOISE and p.noise == "exclude":
            fixed = 0
        elif c == NOISE and not isinstance(p.noise, str):
            fixed = int(p.noise)
        elif c != NOISE and c in p.overrides:
            fixed = p.overrides[c]
        if fixed is not None:
            lo[c] = cap[c] = min(max(fixed, pins), avail)
            continue
        blo, bhi = p.bounds.get(c, (None, None))
        upper = bhi if bhi is not None else p.max_per_cluster
        lower = max(p.min_per_cluster if c != NOISE else 0, blo or 0)
        cap[c] = avail if upper is None else min(avail, max(upper, pins))
        lo[c] = min(max(lower, pins), cap[c])
    return lo, cap


@st.composite
def selection_case(draw):
    n = draw(st.integers(1, 60))
    k = draw(st.integers(1, 5))
    labels = np.array(draw(st.lists(st.integers(-1, k - 1), min_size=n, max_size=n)), dtype=np.int32)
    row_ids = np.array(draw(st.lists(st.integers(0, 5000), min_size=n, max_size=n, unique=True)), dtype=np.int64)
    flags = draw(st.lists(st.sampled_from(["", "", "", "", "pin", "ban"]), min_size=n, max_size=n))
    pins = tuple(int(r) for r, f in zip(row_ids, flags) if f == "pin")
    bans = tuple(int(r) for r, f in zip(row_ids, flags) if f == "ban")
    clusters = sorted(set(labels.tolist()) - {NOISE})
    min_pc = draw(st.integers(0, 4))
    max_pc = draw(st.none() | st.integers(min_pc, 15))
    bounds, overrides = {}, {}
    for c in clusters:
        kind = draw(st.sampled_from(["none", "none", "bounds", "override"]))
        if kind == "bounds":
            blo = draw(st.none() | st.integers(0, 8))
            bhi = draw(st.none() | st.integers(blo or 0, 20))
            bounds[c] = (blo, bhi)
        elif kind == "override":
            overrides[c] = draw(st.integers(0, 15))
    pick = draw(st.sampled_from(PICKS))
    params = SelectParams(
        budget=1, policy=draw(st.sampled_from(POLICIES)), pick=pick,
        seed=draw(st.integers(0, 3)), noise=draw(st.sampled_from(["include", "exclude"]) | st.integers(0, 6)),
        min_per_cluster=min_pc, max_per_cluster=max_pc, overrides=overrides, bounds=bounds,
        score_column="q" if pick == "score" else None, score_ascending=draw(st.booleans()), pins=pins, bans=bans,
    )
    # mostly feasible budgets (the interesting case), sometimes anything up to n
    lo, cap = _select_spec(labels, row_ids, params)
    need, room = max(1, sum(lo.values())), sum(cap.values())
    if need <= room and draw(st.integers(0, 9)) < 7:
        budget = draw(st.integers(need, room))
    else:
        budget = draw(st.integers(1, n))
    params = dataclasses.replace(params, budget=budget)
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    vectors = rng.standard_normal((n, 4)).astype(np.float32)
    scores = rng.uniform(size=n)
    scores[rng.uniform(size=n) < 0.2] = np.nan
    return labels, row_ids, params, vectors, scores


@given(selection_case())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_select_properties(case):
    labels, row_ids, p, vectors, scores = case
    lo, cap = _select_spec(labels, row_ids, p)
    need, room = sum(lo.values()), sum(cap.values())
    event("infeasible" if need > p.budget else "over capacity" if p.budget > room else "feasible")
    if need > p.budget:
        with pytest.raises(SieveError, match="budget"):
            select(labels, row_ids, p, vectors=vectors, scores=scores)
        return
    sel = select(labels, row_ids, p, vectors=vectors, scores=scores)

    # sums exactly to the budget when feasible; otherwise every group is at its cap, with a note
    assert len(sel) == min(p.budget, room)
    if p.budget > room:
        assert any("cannot be reached" in note for note in sel.notes)
    # the arrays agree with each other and with the inputs
    assert len(set(sel.positions.tolist())) == len(sel)
    np.testing.assert_array_equal(sel.row_ids, row_ids[sel.positions])
    np.testing.assert_array_equal(sel.clusters, labels[sel.positions])
    assert len(sel.ranks) == len(sel.reasons) == len(sel)
    chosen = set(sel.row_ids.tolist())
    assert set(p.pins) <= chosen  # pins always in
    assert not set(p.bans) & chosen  # bans never
    for c in sorted(set(labels.tolist())):
        in_c = sel.clusters == c
        kc = int(in_c.sum())
        assert sel.allocation[c] == kc
        assert lo[c] <= kc <= cap[c], (c, lo[c], kc, cap[c])
        assert kc <= int((labels == c).sum())
        assert sel.ranks[in_c].tolist() == list(range(1, kc + 1))  # ranks 1..k in output order
        reasons = [r for r, m in zip(sel.reasons, in_c) if m]
        n_pins = int(np.isin(row_ids[labels == c], p.pins).sum())
        assert reasons == ["pinned"] * n_pins + [p.pick] * (kc - n_pins)
    if p.noise == "exclude":
        assert set(sel.row_ids[sel.clusters == NOISE].tolist()) <= set(p.pins)
    for c, v in p.overrides.items():  # overrides are exact (raised to the pins, cut to the available rows)
        avail = int(((labels == c) & ~np.isin(row_ids, p.bans)).sum())
        pins = int(((labels == c) & np.isin(row_ids, p.pins)).sum())
        assert sel.allocation[c] == min(max(v, pins), avail)
    # deterministic
    again = select(labels, row_ids, p, vectors=vectors.copy(), scores=scores.copy())
    np.testing.assert_array_equal(again.positions, sel.positions)
    np.testing.assert_array_equal(again.ranks, sel.ranks)
    assert again.reasons == sel.reasons and again.allocation == sel.allocation


def test_pins_rank_first_and_bans_are_skipped():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, -1, -1])
    row_ids = np.arange(9) * 10
    p = SelectParams(budget=6, pick="random", pins=(30, 80), bans=(0, 10))
    sel = select(labels, row_ids, p)
    assert set(sel.row_ids.tolist()) >= {30, 80} and not {0, 10} & set(sel.row_ids.tolist())
    by_cluster = {c: [(int(r), int(k), s) for r, k, s, cc in zip(sel.row_ids, sel.ranks, sel.reasons, sel.clusters)
                      if cc == c] for c in (0, 1, -1)}
    assert by_cluster[0][0] == (30, 1, "pinned")
    assert by_cluster[-1][0] == (80, 1, "pinned")
    assert all(reason == "random" for _, _, reason in by_cluster[1])


def test_noise_modes():
    labels = np.array([0] * 10 + [1] * 10 + [-1] * 10)
    row_ids = np.arange(30)
    inc = select(labels, row_ids, SelectParams(budget=9, noise="include"))
    assert inc.allocation == {-1: 3, 0: 3, 1: 3}
    exc = select(labels, row_ids, SelectParams(budget=9, noise="exclude"))
    assert exc.allocation[-1] == 0 and len(exc) == 9
    fixed = select(labels, row_ids, SelectParams(budget=9, noise=1))
    assert fixed.allocation == {-1: 1, 0: 4, 1: 4}
    # min_per_cluster does not apply to noise
    floor = select(labels, row_ids, SelectParams(budget=10, min_per_cluster=5, noise="include"))
    assert floor.allocation[0] >= 5 and floor.allocation[1] >= 5


def test_select_errors_name_the_problem():
    labels = np.zeros(5, int)
    row_ids = np.arange(5)
    with pytest.raises(SieveError, match="budget"):
        select(labels, row_ids, SelectParams(budget=6))
    with pytest.raises(SieveError, match="pins"):
        select(labels, row_ids, SelectParams(budget=2, pins=(99,)))
    with pytest.raises(SieveError, match="bans"):
        select(labels, row_ids, SelectParams(budget=2, bans=(99,)))
    with pytest.raises(SieveError, match="vectors"):
        select(labels, row_ids, SelectParams(budget=2, pick="diverse"))
    with pytest.raises(SieveError, match="same length"):
        select(labels, row_ids[:3], SelectParams(budget=2))


def test_depth_inputs_missing_name_what_is_needed():
    labels, row_ids = np.zeros(5, int), np.arange(5)
    for pick in VECTOR_PICKS:
        with pytest.raises(SieveError, match="vectors"):
            select(labels, row_ids, SelectParams(budget=2, pick=pick))
    with pytest.raises(SieveError, match="texts"):
        select(labels, row_ids, SelectParams(budget=2, dedup="exact"))
    with pytest.raises(SieveError, match="vectors"):
        select(labels, row_ids, SelectParams(budget=2, dedup="near"), texts=["a"] * 5)
    with pytest.raises(SieveError, match="strata_column"):
        select(labels, row_ids, SelectParams(budget=2, strata_column="src"))
    with pytest.raises(SieveError, match="reference"):
        select(labels, row_ids, SelectParams(budget=2, reference_path="x", leakage="warn"))
    with pytest.raises(SieveError, match="strata_bounds"):
        SelectParams(budget=2, strata_bounds={"a": (1, 2)})
    p = SelectParams(budget=9, dedup="near", near_dup_threshold=0.9, pick="facility", mmr_lambda=0.2,
                     soft_noise_threshold=0.1, budget_unit="tokens", tokenizer="words", strata_column="source",
                     strata_bounds={"docs": (1, None)}, reference_path="/x/eval.jsonl", reference_text="q",
                     coverage_distance=0.2, leakage="drop", leakage_threshold=0.9)
    assert SelectParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    with pytest.raises(SieveError, match="unknown"):
        SelectParams.from_dict({**p.to_dict(), "future_knob": 1})
