"""Picking inside every cluster (and strata cell) once the budget is allocated: each
cluster's pins first, then its pick method's rows (see :mod:`core.selection.picks`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .params import SelectParams
from .picks import ClusterView, PickMethod, PickRequest, pick_random
from .strata import StrataCells, cell_allocation, interleave


@dataclass
class PickPlan:
    """What the per-cluster picks need.  ``counts``: cluster -> allocated units; ``members_of``:
    cluster -> positions (int64, row-id order); ``pinned``/``avail`` (n,) bool; ``w`` (n,) int64
    units per row (1, or its tokens); ``vectors`` (n, d) and ``scores`` (n,) float64 or None."""

    params: SelectParams
    method: PickMethod
    clusters: list[int]
    members_of: dict[int, np.ndarray]
    counts: dict[int, int]
    pinned: np.ndarray
    avail: np.ndarray
    w: np.ndarray
    tokens_mode: bool
    vectors: np.ndarray | None = None
    scores: np.ndarray | None = None
    strata: StrataCells | None = None


@dataclass
class Picked:
    """The chosen positions per cluster (pins first), their 1-based ranks and reasons, notes
    and the per-cluster strata split (cluster -> stratum -> units)."""

    positions: list[np.ndarray] = field(default_factory=list)
    ranks: list[np.ndarray] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    strata_alloc: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, pins: np.ndarray, picked: np.ndarray, reason: str) -> None:
        """One cluster's rows: its pins, then its picks (``reason``)."""
        chosen = np.concatenate([pins, picked]).astype(np.int64)
        self.positions.append(chosen)
        self.ranks.append(np.arange(1, len(chosen) + 1, dtype=np.int32))
        self.reasons.extend(["pinned"] * len(pins) + [reason] * len(picked))


def pick_clusters(plan: PickPlan) -> Picked:
    """Every cluster's rows, in cluster order."""
    out = Picked()
    joint = joint_picks(plan)
    for c in plan.clusters:
        members = plan.members_of[c]
        pins = members[plan.pinned[members]]
        cands = members[plan.avail[members] & ~plan.pinned[members]]
        if joint is not None:
            picked = joint[c]
            short = max(0, plan.counts[c] - len(pins)) - len(picked)
            if short > 0:  # the global pool ran out in this cluster: seeded random rows follow
                rest = cands[~np.isin(cands, picked)]
                picked = np.concatenate([picked, pick_random(rest, short, plan.params.seed, c)])
        else:
            picked = pick_cluster(plan, c, members, pins, cands, out)
        out.add(pins, picked, plan.params.pick)
    return out


def joint_picks(plan: PickPlan) -> dict | None:
    """A joint method's (facility-global) picks for every cluster at once, else None."""
    if plan.method.joint is None:
        return None
    m, pinned, avail = plan.members_of, plan.pinned, plan.avail
    cands = {c: m[c][avail[m[c]] & ~pinned[m[c]]] for c in plan.clusters}
    need = {c: max(0, plan.counts[c] - int(pinned[m[c]].sum())) for c in plan.clusters}
    return plan.method.joint(cands, need, plan.vectors, np.nonzero(avail)[0], np.nonzero(pinned)[0],
                             seed=plan.params.seed, algo_version=plan.params.algo_version)


def pick_cluster(plan: PickPlan, c: int, members: np.ndarray, pins: np.ndarray, cands: np.ndarray,
                 out: Picked) -> np.ndarray:
    """One cluster's picks (pins excluded), split across its strata cells when there are any."""
    p, k = plan.params, plan.counts[c]
    view = ClusterView()
    if plan.method.view is not None:
        view = plan.method.view(plan.vectors, members, p.seed, c, p.algo_version)
    if plan.strata is None:
        return pick_cell(plan, cands, k, pins, c, None, view, members, pins)
    ca = cell_allocation(plan.strata, c, k, p)
    out.notes.extend(f"cluster {c}: {note}" for note in ca.notes)
    names, codes = plan.strata.names, plan.strata.codes
    out.strata_alloc[str(c)] = {names[s]: int(v) for s, v in ca.counts.items()}
    parts = [pick_cell(plan, cands[codes[cands] == s], ca.counts[s], pins[codes[pins] == s], c, names[s], view,
                       members, pins) for s in sorted(ca.counts)]
    return interleave(parts)


def pick_cell(plan: PickPlan, cands: np.ndarray, units: int, cell_pins: np.ndarray, cluster_id: int,
              stratum: str | None, view: ClusterView, members: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Candidates (positions) chosen in pick order for a cell of ``units`` (rows: ``units`` less
    its pins; tokens: rows fitting ``units`` less its pins' tokens)."""
    if plan.tokens_mode:
        k, capacity, cost = 0, units - int(plan.w[cell_pins].sum()), plan.w
    else:
        k, capacity, cost = max(0, units - len(cell_pins)), None, None
    if len(cands) == 0 or (capacity is None and k <= 0) or (capacity is not None and capacity <= 0 and
                                                           not (cost is not None and (cost[cands] == 0).any())):
        return cands[:0]
    c_cost = None if capacity is None else np.asarray(cost[cands], dtype=np.int64)
    if capacity is not None:
        k = len(cands)
    p = plan.params
    req = PickRequest(candidates=cands, k=k, cost=c_cost, capacity=capacity, cluster_id=cluster_id, stratum=stratum,
                      seed=p.seed, view=view, seeds=seeds if len(seeds) else None, members=members,
                      scores=plan.scores, score_column=p.score_column, score_ascending=p.score_ascending,
                      mmr_lambda=p.mmr_lambda, algo_version=p.algo_version)
    return plan.method.pick(req)
