"""Allocation: split a budget (rows or tokens) across groups by a policy, within per-group
floors, caps and exact overrides (water-filling, then largest-remainder rounding)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from core.stages.cluster import NOISE
from core.store.workspace import SieveError

from .params import POLICIES, SelectParams


@dataclass
class Allocation:
    """``counts``: group -> units (rows or tokens); ``notes``: shortfalls said in words."""

    counts: dict[int, int]  # cluster -> rows
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Units allocated in all."""
        return int(sum(self.counts.values()))


def policy_weights(sizes: Mapping[int, int], policy: str) -> dict[int, float]:
    """Group -> weight: its size ('proportional'), 1 for a non-empty group ('equal'), or the
    square root of its size ('sqrt').  Raises SieveError for another policy."""
    if policy == "proportional":
        return {c: float(s) for c, s in sizes.items()}
    if policy == "equal":
        return {c: (1.0 if s > 0 else 0.0) for c, s in sizes.items()}
    if policy == "sqrt":
        return {c: math.sqrt(s) for c, s in sizes.items()}
    raise SieveError(f"policy must be one of {POLICIES}, got {policy!r}")


def _clip_bounds(sizes, lower, upper, fixed) -> tuple[dict[int, int], dict[int, int]]:
    """(floor, cap) per group: bounds clipped to the size, overrides as floor = cap."""
    groups = sorted(sizes)
    cap = {c: int(min(sizes[c], upper.get(c, sizes[c]))) for c in groups}
    lo = {c: int(min(max(lower.get(c, 0), 0), cap[c])) for c in groups}
    for c, v in fixed.items():
        if c in cap:
            v = int(min(max(v, 0), sizes[c]))
            cap[c] = lo[c] = v
    return lo, cap


def water_fill(w: Mapping[int, float], lo: Mapping[int, int], cap: Mapping[int, int], target: int) -> dict[int, float]:
    """The continuous split ``clip(lambda * w, lo, cap)`` with lambda found by bisection so it sums to ``target``."""
    groups = sorted(w)

    def fill(lam: float) -> dict[int, float]:
        return {c: min(max(lam * w[c], lo[c]), cap[c]) for c in groups}

    hi_lam = max([cap[c] / w[c] for c in groups if w[c] > 0] + [1.0])
    lo_lam = 0.0
    for _ in range(200):
        mid = (lo_lam + hi_lam) / 2
        if sum(fill(mid).values()) < target:
            lo_lam = mid
        else:
            hi_lam = mid
    return fill(hi_lam)


def largest_remainder(x: Mapping[int, float], lo: Mapping[int, int], cap: Mapping[int, int],
                      target: int) -> dict[int, int]:
    """Whole units per group from the continuous split ``x``, summing to ``target`` (ties by group id)."""
    groups = sorted(x)
    counts = {c: int(min(max(math.floor(x[c] + 1e-9), lo[c]), cap[c])) for c in groups}
    diff = target - sum(counts.values())
    while diff != 0:
        if diff > 0:
            cands = sorted((c for c in groups if counts[c] < cap[c]), key=lambda c: (-(x[c] - counts[c]), c))
            step = 1
        else:
            cands = sorted((c for c in groups if counts[c] > lo[c]), key=lambda c: ((x[c] - counts[c]), c))
            step = -1
        if not cands:  # cannot happen when lo <= target <= room
            raise SieveError("allocation could not meet the budget")
        for c in cands[: abs(diff)]:
            counts[c] += step
        diff = target - sum(counts.values())
    return counts


def rechoose_singles(x: Mapping[int, float], counts: dict[int, int], lo: Mapping[int, int], cap: Mapping[int, int],
                     fixed: Mapping[int, int], w: Mapping[int, float], choose: Callable) -> dict[int, int]:
    """``counts`` with its sub-unit groups' units handed out by ``choose`` instead of by remainder.

    *Flexible* groups are the clusters (not noise) with a continuous share ``x`` below one unit,
    no floor, no override and room for one unit: rounding gives each 0 or 1.  Their ``k`` units
    go to ``choose(w, anchored, flexible, k)`` (``flexible`` in largest-remainder order,
    ``anchored`` = the groups with a unit anyway), which returns ``k`` of them; the total is
    unchanged.  Raises SieveError if ``choose`` returns another number of flexible groups."""
    flexible = sorted((c for c in x if c != NOISE and c not in fixed and lo[c] == 0 and cap[c] >= 1
                       and x[c] < 1 - 1e-9), key=lambda c: (-x[c], c))
    k = sum(counts[c] for c in flexible)
    if k == 0 or k == len(flexible):
        return counts
    flex = set(flexible)
    anchored = [c for c in sorted(counts) if c != NOISE and c not in flex and counts[c] >= 1]
    chosen = set(choose(w, anchored, flexible, k))
    if len(chosen) != k or not chosen <= flex:
        raise SieveError(f"cluster choice returned {len(chosen)} clusters for {k} rows")
    return {c: (int(c in chosen) if c in flex else v) for c, v in counts.items()}


def allocate(
    sizes: Mapping[int, int],
    budget: int,
    policy: str = "equal",
    *,
    lower: Mapping[int, int] | None = None,
    upper: Mapping[int, int] | None = None,
    fixed: Mapping[int, int] | None = None,
    weights_from: Mapping[int, int] | None = None,
    unit: str = "rows",
    choose: Callable | None = None,
) -> Allocation:
    """Split ``budget`` units (rows, or tokens with ``unit='tokens'``) across groups.

    ``sizes``: units available per group.  ``lower``/``upper``: per-group bounds
    (clipped to the size).  ``fixed``: exact per-group budgets (overrides).
    ``weights_from``: the sizes the policy weighs (default ``sizes``).  The
    continuous split is ``clip(lambda * weight, lower, upper)`` with lambda found so the
    total equals the budget (water-filling: a group at its cap gives its unused share
    to the others); it is rounded by largest remainder.  The result sums exactly to
    ``budget`` whenever ``sum(lower) <= budget <= sum(upper)``; when the caps allow
    fewer units every group gets its cap and a note says so.  Raises SieveError for a
    negative budget, an unknown policy, or floors above the budget.  ``choose``: which
    clusters get the units of the groups whose share is below one unit (:func:`rechoose_singles`;
    None: the largest remainders, i.e. by the policy's weight).
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise SieveError(f"budget must be a non-negative integer, got {budget!r}")
    lo, cap = _clip_bounds(sizes, dict(lower or {}), dict(upper or {}), dict(fixed or {}))
    notes: list[str] = []
    need, room = sum(lo.values()), sum(cap.values())
    if need > budget:
        raise SieveError(f"budget={budget} is smaller than the {need} {unit} that pins, minimums and overrides require")
    target = budget
    if room < budget:
        notes.append(f"budget={budget} cannot be reached: caps, overrides and bans allow at most {room} {unit}")
        target = room
    w = policy_weights({c: (weights_from or sizes).get(c, sizes[c]) for c in sorted(sizes)}, policy)
    x = water_fill(w, lo, cap, target)
    counts = largest_remainder(x, lo, cap, target)
    if choose is not None:
        counts = rechoose_singles(x, counts, lo, cap, dict(fixed or {}), w, choose)
    return Allocation(counts, notes)


def group_bounds(sizes: Mapping[int, int], params: SelectParams, pinned: Mapping[int, int]):
    """(lower, upper, fixed) per group from the params and the pinned counts (units per group)."""
    lower, upper, fixed = {}, {}, {}
    for c in sizes:
        lo = params.min_per_cluster if c != NOISE else 0
        hi = params.max_per_cluster
        blo, bhi = params.bounds.get(c, (None, None))
        lo = max(lo, blo or 0)
        hi = bhi if bhi is not None else hi
        lower[c] = max(lo, pinned.get(c, 0))
        if hi is not None:
            upper[c] = max(hi, pinned.get(c, 0))
    for c, v in params.overrides.items():
        if c in sizes:
            fixed[c] = max(v, pinned.get(c, 0))
    if NOISE in sizes:
        if params.noise == "exclude":
            fixed[NOISE] = pinned.get(NOISE, 0)
        elif not isinstance(params.noise, str):
            fixed[NOISE] = max(int(params.noise), pinned.get(NOISE, 0))
    return lower, upper, fixed


def shortfall_note(note: str, sizes: Mapping[int, int], params: SelectParams) -> str:
    """``allocate``'s "cannot be reached" note with the reasons that apply to ``params``:
    excluded noise (every row, when no cluster has a row), caps, overrides, bans."""
    if "cannot be reached" not in note:
        return note
    head = note.split(":", 1)[0]
    noise_rows = int(sizes.get(NOISE, 0))
    clustered = sum(v for c, v in sizes.items() if c != NOISE)
    excluded = params.noise == "exclude" and noise_rows > 0
    if excluded and clustered == 0:
        return (f"{head}: every row is unclustered (noise) and noise='exclude' leaves them all out, so nothing "
                "is selected; use noise 'include' or a noise budget, or map with a smaller min_cluster_size")
    reasons = []
    if excluded:
        reasons.append(f"noise='exclude' leaves out {noise_rows:,} unclustered {params.unit}")
    if params.max_per_cluster is not None or any(hi is not None for _, hi in params.bounds.values()):
        reasons.append("per-cluster caps")
    if params.overrides:
        reasons.append("overrides")
    if params.bans:
        reasons.append("bans")
    room = note.rsplit("allow at most", 1)[-1].strip()
    why = ", ".join(reasons) if reasons else "the rows available"
    return f"{head}: {why} allow at most {room}"
