"""core.selection.allocate: the budget allocator (policies, bounds, overrides).

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

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.selection import POLICIES, allocate
from core.store.workspace import SieveError


HYP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
