"""Select: split a row budget across clusters by a policy, then pick rows inside
each cluster by a method.  Deterministic for a given seed; pins always in, bans never.

Pure parts: :func:`allocate` (budget -> rows per cluster) and :func:`select`
(labels, vectors, scores -> chosen rows with cluster, rank and reason).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .cluster import NOISE
from .workspace import SieveError

POLICIES = ("proportional", "equal", "sqrt")
PICKS = ("random", "centroid", "diverse", "score")
NOISE_MODES = ("include", "exclude")


def _int_keys(d: Mapping | None, what: str) -> dict:
    out = {}
    for k, v in (d or {}).items():
        try:
            out[int(k)] = v
        except (TypeError, ValueError) as exc:
            raise SieveError(f"{what}: cluster id {k!r} is not an integer") from exc
    return out


def _row_ids(values, what: str) -> tuple[int, ...]:
    out = set()
    for x in values or ():
        if isinstance(x, bool) or not isinstance(x, (int, np.integer, str)):
            raise SieveError(f"{what}: row ids must be whole numbers, got {x!r}")
        try:
            out.add(int(x))
        except ValueError as exc:
            raise SieveError(f"{what}: row ids must be whole numbers, got {x!r}") from exc
    return tuple(sorted(out))


@dataclass
class SelectParams:
    budget: int
    policy: str = "equal"
    pick: str = "random"
    seed: int = 0
    noise: str | int = "include"  # "include", "exclude", or a row budget for the noise group
    min_per_cluster: int = 0  # floor for every cluster
    max_per_cluster: int | None = None  # cap for every cluster
    overrides: dict[int, int] = field(default_factory=dict)  # cluster -> exact budget
    bounds: dict[int, tuple[int | None, int | None]] = field(default_factory=dict)  # cluster -> (min, max)
    score_column: str | None = None
    score_ascending: bool = False
    pins: tuple[int, ...] = ()
    bans: tuple[int, ...] = ()

    def __post_init__(self):
        if isinstance(self.budget, bool) or not isinstance(self.budget, (int, np.integer)) or self.budget < 1:
            raise SieveError(f"budget must be a positive whole number of rows, got {self.budget!r}")
        self.budget = int(self.budget)
        if self.policy not in POLICIES:
            raise SieveError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        if self.pick not in PICKS:
            raise SieveError(f"pick must be one of {PICKS}, got {self.pick!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise SieveError(f"seed must be a non-negative integer, got {self.seed!r}")
        if isinstance(self.noise, str):
            if self.noise not in NOISE_MODES:
                raise SieveError(f"noise must be 'include', 'exclude' or a row budget, got {self.noise!r}")
        elif isinstance(self.noise, bool) or not isinstance(self.noise, (int, np.integer)) or self.noise < 0:
            raise SieveError(f"noise budget must be a non-negative integer, got {self.noise!r}")
        if not isinstance(self.min_per_cluster, int) or self.min_per_cluster < 0:
            raise SieveError(f"min_per_cluster must be a non-negative integer, got {self.min_per_cluster!r}")
        if self.max_per_cluster is not None:
            if not isinstance(self.max_per_cluster, int) or self.max_per_cluster < 0:
                raise SieveError(f"max_per_cluster must be a non-negative integer, got {self.max_per_cluster!r}")
            if self.min_per_cluster > self.max_per_cluster:
                raise SieveError(
                    f"min_per_cluster={self.min_per_cluster} is larger than max_per_cluster={self.max_per_cluster}"
                )
        self.overrides = _int_keys(self.overrides, "overrides")
        for c, v in self.overrides.items():
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise SieveError(f"overrides: budget for cluster {c} must be a non-negative integer, got {v!r}")
        self.bounds = _int_keys(self.bounds, "bounds")
        for c, b in self.bounds.items():
            if not isinstance(b, (list, tuple)) or len(b) != 2:
                raise SieveError(f"bounds: cluster {c} needs (min, max), got {b!r}")
            lo, hi = b
            for v in (lo, hi):
                if v is not None and (not isinstance(v, (int, np.integer)) or v < 0):
                    raise SieveError(f"bounds: min/max for cluster {c} must be non-negative integers, got {v!r}")
            if lo is not None and hi is not None and lo > hi:
                raise SieveError(f"bounds: min {lo} is larger than max {hi} for cluster {c}")
        if not isinstance(self.score_ascending, bool):
            raise SieveError(f"score_ascending must be true or false, got {self.score_ascending!r}")
        if self.pick == "score" and not self.score_column:
            raise SieveError("pick='score' needs a score_column")
        self.pins = _row_ids(self.pins, "pins")
        self.bans = _row_ids(self.bans, "bans")
        clash = sorted(set(self.pins) & set(self.bans))
        if clash:
            raise SieveError(f"pins and bans conflict: row id(s) {clash[:10]} are both pinned and banned")

    def to_dict(self) -> dict:
        return {
            "budget": self.budget, "policy": self.policy, "pick": self.pick, "seed": self.seed,
            "noise": self.noise, "min_per_cluster": self.min_per_cluster, "max_per_cluster": self.max_per_cluster,
            "overrides": {str(k): v for k, v in sorted(self.overrides.items())},
            "bounds": {str(k): list(v) for k, v in sorted(self.bounds.items())},
            "score_column": self.score_column, "score_ascending": self.score_ascending,
            "pins": list(self.pins), "bans": list(self.bans),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "SelectParams":
        d = dict(d)
        d["bounds"] = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in (d.get("bounds") or {}).items()}
        d["pins"] = tuple(d.get("pins") or ())
        d["bans"] = tuple(d.get("bans") or ())
        return cls(**d)


# -- allocation -------------------------------------------------------------------


@dataclass
class Allocation:
    counts: dict[int, int]  # cluster -> rows
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return int(sum(self.counts.values()))


def policy_weights(sizes: Mapping[int, int], policy: str) -> dict[int, float]:
    if policy == "proportional":
        return {c: float(s) for c, s in sizes.items()}
    if policy == "equal":
        return {c: (1.0 if s > 0 else 0.0) for c, s in sizes.items()}
    if policy == "sqrt":
        return {c: math.sqrt(s) for c, s in sizes.items()}
    raise SieveError(f"policy must be one of {POLICIES}, got {policy!r}")


def allocate(
    sizes: Mapping[int, int],
    budget: int,
    policy: str = "equal",
    *,
    lower: Mapping[int, int] | None = None,
    upper: Mapping[int, int] | None = None,
    fixed: Mapping[int, int] | None = None,
    weights_from: Mapping[int, int] | None = None,
) -> Allocation:
    """Split ``budget`` rows across groups.

    ``sizes``: rows available per group.  ``lower``/``upper``: per-group bounds
    (clipped to the size).  ``fixed``: exact per-group budgets (overrides).  The
    continuous split is ``clip(lambda * weight, lower, upper)`` with lambda found so the
    total equals the budget (water-filling: a group at its cap gives its unused share
    to the others); it is rounded by largest remainder.  The result sums exactly to
    ``budget`` whenever ``sum(lower) <= budget <= sum(upper)``; when the caps allow
    fewer rows every group gets its cap and a note says so.
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise SieveError(f"budget must be a non-negative integer, got {budget!r}")
    lower, upper, fixed = dict(lower or {}), dict(upper or {}), dict(fixed or {})
    groups = sorted(sizes)
    cap = {c: int(min(sizes[c], upper.get(c, sizes[c]))) for c in groups}
    lo = {c: int(min(max(lower.get(c, 0), 0), cap[c])) for c in groups}
    for c, v in fixed.items():
        if c in cap:
            v = int(min(max(v, 0), sizes[c]))
            cap[c] = lo[c] = v
    notes: list[str] = []
    need, room = sum(lo.values()), sum(cap.values())
    if need > budget:
        raise SieveError(
            f"budget={budget} is smaller than the {need} rows that pins, minimums and overrides require"
        )
    target = budget
    if room < budget:
        notes.append(f"budget={budget} cannot be reached: caps, overrides and bans allow at most {room} rows")
        target = room
    w = policy_weights({c: (weights_from or sizes).get(c, sizes[c]) for c in groups}, policy)

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
    x = fill(hi_lam)
    counts = {c: int(min(max(math.floor(x[c] + 1e-9), lo[c]), cap[c])) for c in groups}
    diff = target - sum(counts.values())
    # Largest remainder; ties by group id, so the result is deterministic.
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
    return Allocation(counts, notes)


# -- picking inside a cluster -------------------------------------------------------


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(n == 0, 1, n)


def pick_random(candidates: np.ndarray, k: int, seed: int, cluster_id: int) -> np.ndarray:
    """Seeded per cluster, so one cluster's budget never changes another's rows;
    a larger k extends a smaller k's pick."""
    rng = np.random.default_rng([seed, cluster_id + 1 if cluster_id >= 0 else 10**9])
    return candidates[rng.permutation(len(candidates))[:k]]


def pick_centroid(candidates: np.ndarray, k: int, vectors: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(_unit(vectors[candidates]) - centroid, axis=1)
    return candidates[np.lexsort((candidates, d))[:k]]


def pick_diverse(candidates: np.ndarray, k: int, vectors: np.ndarray, centroid: np.ndarray,
                 seeds: np.ndarray | None = None) -> np.ndarray:
    """k-center greedy (farthest point first).  Starts from ``seeds`` (e.g. pinned rows)
    or, without any, from the candidate nearest the centroid."""
    if k <= 0 or len(candidates) == 0:
        return candidates[:0]
    v = _unit(vectors[candidates])
    chosen: list[int] = []
    if seeds is not None and len(seeds):
        s = _unit(vectors[seeds])
        mind = np.full(len(candidates), np.inf, dtype=np.float32)
        for row in s:
            mind = np.minimum(mind, np.linalg.norm(v - row, axis=1))
    else:
        first = int(np.lexsort((candidates, np.linalg.norm(v - centroid, axis=1)))[0])
        chosen.append(first)
        mind = np.linalg.norm(v - v[first], axis=1)
    while len(chosen) < min(k, len(candidates)):
        mind_masked = mind.copy()
        mind_masked[chosen] = -1.0
        nxt = int(np.argmax(mind_masked))
        chosen.append(nxt)
        mind = np.minimum(mind, np.linalg.norm(v - v[nxt], axis=1))
    return candidates[np.asarray(chosen, dtype=np.int64)]


def pick_score(candidates: np.ndarray, k: int, scores: np.ndarray, ascending: bool) -> np.ndarray:
    s = np.asarray(scores[candidates], dtype=np.float64)
    key = np.where(np.isnan(s), np.inf, s if ascending else -s)  # missing scores last
    return candidates[np.lexsort((candidates, key))[:k]]


# -- the whole selection -------------------------------------------------------------


@dataclass
class Selection:
    positions: np.ndarray  # indices into the map's arrays, in output order
    row_ids: np.ndarray
    clusters: np.ndarray
    ranks: np.ndarray  # 1-based within the cluster, in pick order
    reasons: list[str]
    allocation: dict[int, int]
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.row_ids)


def group_bounds(sizes: Mapping[int, int], params: SelectParams, pinned: Mapping[int, int]):
    """(lower, upper, fixed) per group from the params and the pinned counts."""
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


def select(
    labels: np.ndarray,
    row_ids: np.ndarray,
    params: SelectParams,
    *,
    vectors: np.ndarray | None = None,
    scores: np.ndarray | None = None,
) -> Selection:
    """Pure: choose ``params.budget`` rows.  Arrays are aligned (one entry per mapped row)."""
    labels = np.asarray(labels)
    row_ids = np.asarray(row_ids, dtype=np.int64)
    n = len(labels)
    if len(row_ids) != n:
        raise SieveError("labels and row_ids must have the same length")
    if params.pick in ("centroid", "diverse") and vectors is None:
        raise SieveError(f"pick={params.pick!r} needs the embedding vectors")
    if params.pick == "score":
        if scores is None:
            raise SieveError(f"pick='score' needs the values of score_column {params.score_column!r}")
        scores = np.asarray(scores, dtype=np.float64)
        if np.isinf(scores).any():
            raise SieveError(f"score_column {params.score_column!r} contains infinite values")
    if params.budget > n:
        raise SieveError(f"budget={params.budget} is larger than the {n} rows on the map")

    order = np.argsort(row_ids, kind="stable")
    sorted_ids = row_ids[order]

    def positions_of(ids: Sequence[int], what: str) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return ids
        loc = np.searchsorted(sorted_ids, ids)
        ok = (loc < n) & (sorted_ids[np.minimum(loc, n - 1)] == ids)
        if not ok.all():
            raise SieveError(f"{what}: row id(s) {ids[~ok][:10].tolist()} are not on the map")
        return order[loc]

    pin_pos = positions_of(params.pins, "pins")
    ban_pos = positions_of(params.bans, "bans")
    banned = np.zeros(n, bool)
    banned[ban_pos] = True
    pinned = np.zeros(n, bool)
    pinned[pin_pos] = True

    groups = sorted(set(labels.tolist()))
    full_sizes = {c: int((labels == c).sum()) for c in groups}
    sizes = {c: int(((labels == c) & ~banned).sum()) for c in groups}
    pin_counts = {c: int(((labels == c) & pinned).sum()) for c in groups}
    lower, upper, fixed = group_bounds(sizes, params, pin_counts)
    alloc = allocate(sizes, params.budget, params.policy, lower=lower, upper=upper, fixed=fixed,
                     weights_from=full_sizes)

    unit = _unit(vectors) if vectors is not None else None
    out_pos, out_rank, out_reason = [], [], []
    for c in groups:
        members = np.nonzero(labels == c)[0]
        members = members[np.argsort(row_ids[members], kind="stable")]
        k = alloc.counts[c]
        pins_c = members[pinned[members]]
        cands = members[~pinned[members] & ~banned[members]]
        m = max(0, k - len(pins_c))
        if params.pick == "random":
            picked = pick_random(cands, m, params.seed, c)
        elif params.pick == "score":
            picked = pick_score(cands, m, scores, params.score_ascending)
        else:
            centroid = unit[members].mean(axis=0)
            norm = np.linalg.norm(centroid)
            centroid = centroid / (norm if norm > 0 else 1)
            if params.pick == "centroid":
                picked = pick_centroid(cands, m, unit, centroid)
            else:
                picked = pick_diverse(cands, m, unit, centroid, seeds=pins_c if len(pins_c) else None)
        chosen = np.concatenate([pins_c, picked]).astype(np.int64)
        out_pos.append(chosen)
        out_rank.append(np.arange(1, len(chosen) + 1, dtype=np.int32))
        out_reason += ["pinned"] * len(pins_c) + [params.pick] * len(picked)

    pos = np.concatenate(out_pos) if out_pos else np.zeros(0, np.int64)
    notes = list(alloc.notes)
    if params.pick == "score" and scores is not None and np.isnan(scores).any():
        notes.append(f"{int(np.isnan(scores).sum())} row(s) have no {params.score_column!r} score; they rank last")
    return Selection(
        positions=pos,
        row_ids=row_ids[pos],
        clusters=labels[pos].astype(np.int32),
        ranks=np.concatenate(out_rank) if out_rank else np.zeros(0, np.int32),
        reasons=out_reason,
        allocation={int(c): int(v) for c, v in alloc.counts.items()},
        notes=notes,
    )
