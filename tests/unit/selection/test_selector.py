"""Select: the budget allocator (policies, bounds, overrides) and the per-cluster pick methods.

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

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.stages.cluster import NOISE
from core.selection import PICKS, POLICIES, SelectParams, allocate, select
from core.store.workspace import SieveError
from tests.fakes import blobs_on_sphere

HYP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- allocate ------------------------------------------------------------------------------


def _alloc_spec(sizes, lower, upper, fixed):
    cap = {c: min(s, upper.get(c, s)) for c, s in sizes.items()}
    lo = {c: min(max(lower.get(c, 0), 0), cap[c]) for c in sizes}
    for c, v in fixed.items():
        if c in sizes:
            lo[c] = cap[c] = min(max(v, 0), sizes[c])
    return lo, cap


def _water_level_exists(counts, weights, lo, cap, tol=1e-6):
    """True if one level lambda explains the split: every group strictly between its floor
    and cap is within 1 row of lambda*weight, capped groups want at least their cap - 1,
    floored groups at most their floor + 1."""
    low, high = 0.0, np.inf
    for c, k in counts.items():
        w = weights[c]
        if lo[c] == cap[c] or w == 0:
            continue
        if k > lo[c]:
            low = max(low, (k - 1) / w)
        if k < cap[c]:
            high = min(high, (k + 1) / w)
    return low < high + tol


@st.composite
def allocation_case(draw, with_bounds=True):
    ids = draw(st.lists(st.integers(-1, 9), min_size=1, max_size=8, unique=True))
    sizes = {c: draw(st.integers(0, 40)) for c in ids}
    lower, upper, fixed = {}, {}, {}
    if with_bounds:
        for c in ids:
            kind = draw(st.sampled_from(["none", "none", "lower", "upper", "both", "fixed"]))
            if kind in ("lower", "both"):
                lower[c] = draw(st.integers(0, 30))
            if kind in ("upper", "both"):
                upper[c] = draw(st.integers(lower.get(c, 0), 45))
            if kind == "fixed":
                fixed[c] = draw(st.integers(0, 45))
    lo, cap = _alloc_spec(sizes, lower, upper, fixed)
    need, room = sum(lo.values()), sum(cap.values())
    budget = draw(st.integers(need, room))
    policy = draw(st.sampled_from(POLICIES))
    return sizes, budget, policy, lower, upper, fixed, lo, cap


@given(allocation_case())
@HYP
def test_allocate_meets_budget_within_bounds(case):
    sizes, budget, policy, lower, upper, fixed, lo, cap = case
    a = allocate(sizes, budget, policy, lower=lower, upper=upper, fixed=fixed)
    assert set(a.counts) == set(sizes)
    assert a.total == budget  # exactly, because sum(floor) <= budget <= sum(cap)
    assert a.notes == []
    for c, k in a.counts.items():
        assert isinstance(k, int)
        assert 0 <= k <= sizes[c]
        assert lo[c] <= k <= cap[c]
        if c in fixed:
            assert k == min(fixed[c], sizes[c])
    weights = {c: {"proportional": float(s), "equal": float(s > 0), "sqrt": float(np.sqrt(s))}[policy]
               for c, s in sizes.items()}
    assert _water_level_exists(a.counts, weights, lo, cap)
    # deterministic
    assert allocate(dict(reversed(list(sizes.items()))), budget, policy, lower=lower, upper=upper,
                    fixed=fixed).counts == a.counts


@given(allocation_case())
@HYP
def test_equal_policy_is_water_filling(case):
    sizes, budget, _, lower, upper, fixed, lo, cap = case
    counts = allocate(sizes, budget, "equal", lower=lower, upper=upper, fixed=fixed).counts
    for i in counts:
        for j in counts:
            if counts[i] > counts[j] + 1:
                # j only gets less if it cannot take more (size / cap / fixed), or i is held up by its floor
                assert counts[j] == cap[j] or counts[i] == lo[i], (i, j, counts)


@given(allocation_case(with_bounds=False))
@HYP
def test_equal_without_bounds_differs_by_at_most_one_unless_exhausted(case):
    sizes, budget, *_ = case
    counts = allocate(sizes, budget, "equal").counts
    open_ = [k for c, k in counts.items() if k < sizes[c]]
    if open_:
        assert max(counts.values()) <= min(open_) + 1
        assert max(open_) - min(open_) <= 1


@given(allocation_case(with_bounds=False))
@HYP
def test_proportional_without_bounds_is_within_one_row_of_the_exact_share(case):
    sizes, budget, *_ = case
    total = sum(sizes.values())
    counts = allocate(sizes, budget, "proportional").counts
    assert sum(counts.values()) == budget
    for c, k in counts.items():
        exact = budget * sizes[c] / total if total else 0
        assert abs(k - exact) < 1


def test_allocate_examples():
    assert allocate({0: 100, 1: 10, 2: 1}, 30, "equal").counts == {0: 19, 1: 10, 2: 1}
    assert allocate({0: 10, 1: 10, 2: 10}, 10, "equal").counts == {0: 4, 1: 3, 2: 3}  # ties by id
    assert allocate({0: 300, 1: 100}, 40, "proportional").counts == {0: 30, 1: 10}
    assert allocate({0: 400, 1: 100}, 30, "sqrt").counts == {0: 20, 1: 10}
    assert allocate({0: 50, 1: 50}, 20, "equal", fixed={1: 3}).counts == {0: 17, 1: 3}


def test_allocate_over_capacity_gives_every_group_its_cap_with_a_note():
    a = allocate({0: 5, 1: 3, 2: 40}, 30, "equal", upper={2: 10})
    assert a.counts == {0: 5, 1: 3, 2: 10} and a.total == 18
    assert a.notes and "30" in a.notes[0]


def test_allocate_infeasible_floor_names_budget():
    with pytest.raises(SieveError, match="budget"):
        allocate({0: 10, 1: 10}, 5, "equal", lower={0: 4, 1: 4})
    with pytest.raises(ValueError, match="budget"):
        allocate({0: 10}, -1)


# -- select: the whole thing, property-tested ---------------------------------------------------


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


# -- pick methods -------------------------------------------------------------------------------


def test_random_pick_is_seeded_and_a_bigger_budget_extends_a_smaller_one():
    labels = np.repeat([0, 1], [50, 40])
    row_ids = np.arange(90) * 3 + 11
    small = select(labels, row_ids, SelectParams(budget=10, pick="random", seed=5))
    big = select(labels, row_ids, SelectParams(budget=30, pick="random", seed=5))
    same = select(labels, row_ids, SelectParams(budget=10, pick="random", seed=5))
    other = select(labels, row_ids, SelectParams(budget=10, pick="random", seed=6))
    np.testing.assert_array_equal(small.row_ids, same.row_ids)
    assert set(small.row_ids.tolist()) != set(other.row_ids.tolist())
    for c in (0, 1):
        s, b = small.row_ids[small.clusters == c], big.row_ids[big.clusters == c]
        assert b[: len(s)].tolist() == s.tolist()  # prefix, in rank order
    # one cluster's budget never changes another cluster's rows
    a = select(labels, row_ids, SelectParams(budget=20, pick="random", seed=5, overrides={1: 5}))
    b = select(labels, row_ids, SelectParams(budget=20, pick="random", seed=5, overrides={1: 12}))
    common = min((a.clusters == 0).sum(), (b.clusters == 0).sum())
    assert a.row_ids[a.clusters == 0][:common].tolist() == b.row_ids[b.clusters == 0][:common].tolist()
    assert a.row_ids[a.clusters == 1].tolist() == b.row_ids[b.clusters == 1][:5].tolist()


def test_random_pick_does_not_depend_on_input_order():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    row_ids = np.arange(60) + 100
    perm = rng.permutation(60)
    a = select(labels, row_ids, SelectParams(budget=15, pick="random", seed=1))
    b = select(labels[perm], row_ids[perm], SelectParams(budget=15, pick="random", seed=1))
    assert a.row_ids.tolist() == b.row_ids.tolist()


def test_centroid_picks_the_rows_nearest_the_centroid():
    rng = np.random.default_rng(2)
    vectors = np.concatenate([
        blobs_on_sphere([[1, 0.2, 0, 0]], [40], spread=0.35, seed=3),
        blobs_on_sphere([[0, 0, 1, 0]], [30], spread=0.35, seed=4),
    ])
    labels = np.repeat([0, 1], [40, 30])
    row_ids = rng.permutation(1000)[:70]
    sel = select(labels, row_ids, SelectParams(budget=10, policy="equal", pick="centroid"), vectors=vectors)
    for c in (0, 1):
        members = np.nonzero(labels == c)[0]
        unit = vectors[members] / np.linalg.norm(vectors[members], axis=1, keepdims=True)
        centre = unit.mean(0) / np.linalg.norm(unit.mean(0))
        d = np.linalg.norm(unit - centre, axis=1)
        expected = members[np.argsort(d, kind="stable")[:5]]
        got = sel.positions[sel.clusters == c]
        assert got.tolist() == expected.tolist()  # nearest first
        assert set(sel.reasons[i] for i in np.nonzero(sel.clusters == c)[0]) == {"centroid"}


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


def test_score_pick_top_k_with_nan_last():
    labels = np.zeros(6, int)
    row_ids = np.arange(6) + 10
    scores = np.array([0.5, np.nan, 0.9, 0.1, np.nan, 0.7])
    desc = select(labels, row_ids, SelectParams(budget=5, pick="score", score_column="q"), scores=scores)
    assert desc.row_ids.tolist() == [12, 15, 10, 13, 11]  # 0.9 0.7 0.5 0.1 then the first NaN
    asc = select(labels, row_ids, SelectParams(budget=5, pick="score", score_column="q", score_ascending=True),
                 scores=scores)
    assert asc.row_ids.tolist() == [13, 10, 15, 12, 11]
    top = select(labels, row_ids, SelectParams(budget=2, pick="score", score_column="q"), scores=scores)
    assert top.row_ids.tolist() == [12, 15] and top.reasons == ["score", "score"]
    assert any("no 'q' score" in note for note in desc.notes)
    with pytest.raises(SieveError, match="infinite"):
        select(labels, row_ids, SelectParams(budget=2, pick="score", score_column="q"),
               scores=np.array([1, np.inf, 2, 3, 4, 5.0]))
    with pytest.raises(SieveError, match="score_column"):
        select(labels, row_ids, SelectParams(budget=2, pick="score", score_column="q"))


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


def test_select_params_roundtrip_through_json():
    import json

    p = SelectParams(budget=50, policy="sqrt", pick="score", seed=3, noise=4, min_per_cluster=1,
                     max_per_cluster=9, overrides={2: 7}, bounds={1: (2, None), 3: (None, 5)},
                     score_column="quality", score_ascending=True, pins=(5, 1), bans=(9,))
    back = SelectParams.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p
    assert back.pins == (1, 5)


# -- parameter validation ------------------------------------------------------------------------

SELECT_BAD = {
    "budget": [0, -1, 2.5, True, "10"],
    "algo_version": [0, 4, "2", True, 1.5],
    "policy": ["uniform", "", None],
    "pick": ["best", None],
    "seed": [-1, 1.5, True, "0"],
    "noise": ["sometimes", -1, True, 2.5],
    "min_per_cluster": [-1, 1.5],
    "max_per_cluster": [-1, 2.5],
    "overrides": [{0: -1}, {"x": 3}, {0: 2.5}],
    "bounds": [{0: (5, 2)}, {0: (-1, None)}, {"x": (1, 2)}, {0: (1.5, None)}, {0: 5}],
    "score_column": [None, ""],  # with pick="score"
    "score_ascending": ["yes"],
    "pins": [("a",)],
    "bans": [("a",)],
    "dedup": ["fuzzy", None],
    "near_dup_threshold": [0, 1.5, -0.1, True, "0.9", float("nan")],
    "mmr_lambda": [-0.1, 1.1, None],
    "soft_noise_threshold": [-0.5, 2, "x"],
    "budget_unit": ["bytes", None],
    "tokenizer": ["gpt", None],
    "strata_column": ["", 3],
    "strata_bounds": [{"a": (3, 1)}, {"a": (-1, None)}, {"a": 5}, [1]],  # also: bounds without a column
    "reference_path": ["", 5],
    "reference_text": ["", None],
    "coverage_distance": [-0.1, 3, None],
    "leakage": ["maybe", "drop"],  # 'drop' without a reference_path
    "leakage_threshold": [0, 1.2, None],
    "target_path": ["", 5],
    "target_text": ["", None],
}


def test_select_bad_cases_cover_every_field():
    assert set(SELECT_BAD) == {f.name for f in dataclasses.fields(SelectParams)}


@pytest.mark.parametrize("field,value", [(f, v) for f, vs in SELECT_BAD.items() for v in vs])
def test_select_params_bad_value_names_the_field(field, value):
    kwargs = {"budget": 10, field: value}
    if field == "score_column":
        kwargs["pick"] = "score"
    with pytest.raises(ValueError) as exc:
        SelectParams(**kwargs)
    assert field in str(exc.value)


@pytest.mark.parametrize("kwargs,names", [
    (dict(min_per_cluster=5, max_per_cluster=2), ("min_per_cluster", "max_per_cluster")),
    (dict(pins=(1, 2), bans=(2,)), ("pins", "bans")),
])
def test_conflicting_params_name_both(kwargs, names):
    with pytest.raises(ValueError) as exc:
        SelectParams(budget=10, **kwargs)
    assert all(n in str(exc.value) for n in names)
