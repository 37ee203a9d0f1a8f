"""Select: split a budget (rows or tokens) across clusters by a policy, then pick rows
inside each cluster by a method.  Deterministic for a given seed; pins always in, bans never.

Pure parts: :func:`allocate` (budget -> units per group) and :func:`select`
(labels, vectors, scores, ... -> chosen rows with cluster, rank and reason).

Depth options (all in :class:`SelectParams`, all recorded in the manifest):

* ``dedup``: 'exact' joins rows whose normalised texts are equal, 'near' also rows of
  one cluster whose embeddings have cosine similarity >= ``near_dup_threshold``.
  Groups are collapsed *before* allocation: a cluster's size is its number of groups,
  and one representative per group can be picked (a pinned member, else the member
  with the lowest row id that is not banned).  Each chosen row carries its group size.
* ``pick``: random, centroid (= core: nearest the centre first), boundary (farthest
  first), diverse (k-center greedy), facility (lazy greedy facility location), mmr
  (maximal marginal relevance), score.
* ``soft_noise_threshold``: unclustered rows whose HDBSCAN soft membership is at least
  this join their most likely cluster for the selection.
* ``budget_unit='tokens'``: the budget, the per-cluster min/max/overrides/bounds, the
  noise budget and the strata bounds are all token counts.  The policies weigh the
  clusters' *token mass* (proportional: by tokens; equal: the same tokens for each;
  sqrt: by the square root of the tokens).  Inside a cluster rows are taken in pick
  order while they fit, skipping rows that would overshoot, so the total never
  exceeds the budget.
* ``strata_column``: a second split.  Each cluster's budget is divided across its
  strata cells (values of the column) by the same policy, with optional per-cell
  floors/caps ``strata_bounds = {stratum: (min, max)}``; rows are picked per cell and
  interleaved (cell ranks round-robin) in the cluster's output order.
* ``reference_path`` / ``leakage``: candidate rows with cosine similarity >=
  ``leakage_threshold`` to a reference row are reported ('warn') or banned ('drop').
* ``algo_version``: 2 (new params) runs 'diverse' on a seeded candidate pool of
  ``max(DIVERSE_POOL_MIN, DIVERSE_POOL_FACTOR * k)`` rows per cluster (fast at 1M rows;
  the same ids as 1 when every cluster fits the pool); 1 (a dict without the field, i.e.
  an older manifest) is the original exact greedy.  See docs/SELECTION.md.
"""

from __future__ import annotations

import heapq
import math
import zlib
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from core.stages.cluster import NOISE
from .select_global import pick_facility_global, target_cluster_weights
from core.store.workspace import SieveError

POLICIES = ("proportional", "equal", "sqrt")
PICKS = ("random", "centroid", "diverse", "score", "facility", "mmr", "boundary", "core", "facility-global")
# The pick the CLI and the app start from: k-center greedy spreads each cluster's rows,
# which is what a balanced subset is for (random is still one choice away).
DEFAULT_PICK = "diverse"
VECTOR_PICKS = ("centroid", "diverse", "facility", "mmr", "boundary", "core", "facility-global")
NOISE_MODES = ("include", "exclude")
DEDUP_MODES = ("none", "exact", "near")
BUDGET_UNITS = ("rows", "tokens")
TOKENIZERS = ("model", "words")
LEAKAGE_MODES = ("off", "warn", "drop")
MISSING_STRATUM = "(missing)"

FACILITY_MAX_CLIENTS = 1000  # rows of a cluster that the facility objective is evaluated on
FACILITY_MAX_CANDIDATES = 10_000  # candidates evaluated per cluster (a deterministic sample beyond)

# Versions of the pick algorithms.  1: the original exact k-center greedy for pick='diverse'
# (what a manifest without ``algo_version`` replays).  2: k-center greedy on a seeded
# candidate pool of bounded size per cluster, with float32 matrix-vector updates (fast at 1M rows).
ALGO_VERSIONS = (1, 2)
ALGO_VERSION = 2  # the default for new parameters
DIVERSE_POOL_MIN = 1024  # algo_version 2: candidates per cluster (or strata cell) 'diverse' runs on, at least ...
DIVERSE_POOL_FACTOR = 8  # ... and at least this many per row to pick (all candidates when fewer)


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


def _fraction(value, what: str, lo: float = 0.0, hi: float = 1.0, *, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)):
        raise SieveError(f"{what} must be a number in {'(' if lo_open else '['}{lo}, {hi}], got {value!r}")
    v = float(value)
    if v > hi or v < lo or (lo_open and v == lo):
        raise SieveError(f"{what} must be in {'(' if lo_open else '['}{lo}, {hi}], got {value!r}")
    return v


def _bounds_pair(b, what: str, name) -> tuple[int | None, int | None]:
    if not isinstance(b, (list, tuple)) or len(b) != 2:
        raise SieveError(f"{what}: {name} needs (min, max), got {b!r}")
    lo, hi = b
    for v in (lo, hi):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0):
            raise SieveError(f"{what}: min/max for {name} must be non-negative integers, got {v!r}")
    if lo is not None and hi is not None and lo > hi:
        raise SieveError(f"{what}: min {lo} is larger than max {hi} for {name}")
    return (None if lo is None else int(lo), None if hi is None else int(hi))


@dataclass
class SelectParams:
    budget: int  # rows, or tokens with budget_unit='tokens'
    policy: str = "equal"
    pick: str = "random"
    seed: int = 0
    noise: str | int = "include"  # "include", "exclude", or a budget for the noise group
    min_per_cluster: int = 0  # floor for every cluster
    max_per_cluster: int | None = None  # cap for every cluster
    overrides: dict[int, int] = field(default_factory=dict)  # cluster -> exact budget
    bounds: dict[int, tuple[int | None, int | None]] = field(default_factory=dict)  # cluster -> (min, max)
    score_column: str | None = None  # pick='score'; with pick='mmr' the relevance
    score_ascending: bool = False
    pins: tuple[int, ...] = ()
    bans: tuple[int, ...] = ()
    dedup: str = "none"  # none | exact | near (near implies exact)
    near_dup_threshold: float = 0.95  # cosine similarity joining near-duplicates (inside a cluster)
    mmr_lambda: float = 0.5  # pick='mmr': weight of relevance vs. novelty
    soft_noise_threshold: float | None = None  # noise rows with soft membership >= this join their cluster
    budget_unit: str = "rows"  # rows | tokens
    tokenizer: str = "model"  # model | words (budget_unit='tokens')
    strata_column: str | None = None  # a metadata column: allocate over clusters x strata cells
    strata_bounds: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)  # stratum -> per-cell (min, max)
    reference_path: str | None = None  # an evaluation/reference file (coverage, leakage)
    reference_text: str = "text"  # its text column
    coverage_distance: float = 0.3  # a reference row is covered if a chosen row is within this cosine distance
    leakage: str = "off"  # off | warn | drop: candidate rows that are near-copies of reference rows
    leakage_threshold: float = 0.95  # cosine similarity to a reference row that counts as leakage
    # Pick algorithm version (see ALGO_VERSIONS).  New params get the fast one; a dict
    # without this field (an older manifest) gets 1, so it replays the same rows.
    algo_version: int = ALGO_VERSION
    # Importance resampling toward a target set: cluster weights = the target rows' shares
    # (each target row counts for the cluster of its nearest map row); replaces the policy.
    target_path: str | None = None
    target_text: str = "text"

    def __post_init__(self):
        if isinstance(self.budget, bool) or not isinstance(self.budget, (int, np.integer)) or self.budget < 1:
            raise SieveError(f"budget must be a positive whole number of rows (or tokens), got {self.budget!r}")
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
        if self.dedup not in DEDUP_MODES:
            raise SieveError(f"dedup must be one of {DEDUP_MODES}, got {self.dedup!r}")
        self.near_dup_threshold = _fraction(self.near_dup_threshold, "near_dup_threshold", lo_open=True)
        self.mmr_lambda = _fraction(self.mmr_lambda, "mmr_lambda")
        if self.soft_noise_threshold is not None:
            self.soft_noise_threshold = _fraction(self.soft_noise_threshold, "soft_noise_threshold")
        if self.budget_unit not in BUDGET_UNITS:
            raise SieveError(f"budget_unit must be one of {BUDGET_UNITS}, got {self.budget_unit!r}")
        if self.tokenizer not in TOKENIZERS:
            raise SieveError(f"tokenizer must be one of {TOKENIZERS}, got {self.tokenizer!r}")
        if self.strata_column is not None and (not isinstance(self.strata_column, str) or not self.strata_column):
            raise SieveError(f"strata_column must be a column name, got {self.strata_column!r}")
        if not isinstance(self.strata_bounds, Mapping):
            raise SieveError(f"strata_bounds must map stratum -> (min, max), got {self.strata_bounds!r}")
        self.strata_bounds = {str(k): _bounds_pair(v, "strata_bounds", f"stratum {k!r}")
                              for k, v in self.strata_bounds.items()}
        if self.strata_bounds and not self.strata_column:
            raise SieveError("strata_bounds needs a strata_column")
        if self.reference_path is not None and (not isinstance(self.reference_path, str) or not self.reference_path):
            raise SieveError(f"reference_path must be a file path, got {self.reference_path!r}")
        if not isinstance(self.reference_text, str) or not self.reference_text:
            raise SieveError(f"reference_text must be a column name, got {self.reference_text!r}")
        self.coverage_distance = _fraction(self.coverage_distance, "coverage_distance", 0.0, 2.0)
        if self.leakage not in LEAKAGE_MODES:
            raise SieveError(f"leakage must be one of {LEAKAGE_MODES}, got {self.leakage!r}")
        self.leakage_threshold = _fraction(self.leakage_threshold, "leakage_threshold", lo_open=True)
        if self.leakage != "off" and not self.reference_path:
            raise SieveError(f"leakage={self.leakage!r} needs a reference_path (the evaluation set)")
        if isinstance(self.algo_version, bool) or not isinstance(self.algo_version, (int, np.integer)) \
                or self.algo_version not in ALGO_VERSIONS:
            raise SieveError(f"algo_version must be one of {ALGO_VERSIONS}, got {self.algo_version!r}")
        self.algo_version = int(self.algo_version)
        if self.target_path is not None and (not isinstance(self.target_path, str) or not self.target_path):
            raise SieveError(f"target_path must be a file path, got {self.target_path!r}")
        if not isinstance(self.target_text, str) or not self.target_text:
            raise SieveError(f"target_text must be a column name, got {self.target_text!r}")
        if self.pick == "facility-global" and (self.budget_unit == "tokens" or self.strata_column):
            raise SieveError("pick='facility-global' works on row budgets without strata; "
                             "use pick='facility' with budget_unit='tokens' or a strata_column")

    @property
    def unit(self) -> str:
        return "tokens" if self.budget_unit == "tokens" else "rows"

    def to_dict(self) -> dict:
        return {
            "budget": self.budget, "policy": self.policy, "pick": self.pick, "seed": self.seed,
            "noise": self.noise, "min_per_cluster": self.min_per_cluster, "max_per_cluster": self.max_per_cluster,
            "overrides": {str(k): v for k, v in sorted(self.overrides.items())},
            "bounds": {str(k): list(v) for k, v in sorted(self.bounds.items())},
            "score_column": self.score_column, "score_ascending": self.score_ascending,
            "pins": list(self.pins), "bans": list(self.bans),
            "dedup": self.dedup, "near_dup_threshold": self.near_dup_threshold, "mmr_lambda": self.mmr_lambda,
            "soft_noise_threshold": self.soft_noise_threshold, "budget_unit": self.budget_unit,
            "tokenizer": self.tokenizer, "strata_column": self.strata_column,
            "strata_bounds": {k: list(v) for k, v in sorted(self.strata_bounds.items())},
            "reference_path": self.reference_path, "reference_text": self.reference_text,
            "coverage_distance": self.coverage_distance, "leakage": self.leakage,
            "leakage_threshold": self.leakage_threshold, "algo_version": self.algo_version,
            # only when set, so manifests without a target keep their exact shape
            **({"target_path": self.target_path, "target_text": self.target_text} if self.target_path else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "SelectParams":
        d = dict(d)
        d["bounds"] = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in (d.get("bounds") or {}).items()}
        d["strata_bounds"] = {k: tuple(v) if isinstance(v, (list, tuple)) else v
                              for k, v in (d.get("strata_bounds") or {}).items()}
        d["pins"] = tuple(d.get("pins") or ())
        d["bans"] = tuple(d.get("bans") or ())
        d.setdefault("algo_version", 1)  # written before versions existed: the original algorithms
        unknown = sorted(set(d) - {f for f in cls.__dataclass_fields__})
        if unknown:
            raise SieveError(f"unknown selection parameter(s) {unknown}; is this manifest from a newer Sieve?")
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
    unit: str = "rows",
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
            f"budget={budget} is smaller than the {need} {unit} that pins, minimums and overrides require"
        )
    target = budget
    if room < budget:
        notes.append(f"budget={budget} cannot be reached: caps, overrides and bans allow at most {room} {unit}")
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
#
# Every picker returns candidate positions in pick order.  With ``cost``/``capacity``
# (token budgets) a row that would overshoot the capacity left is skipped and the
# next one in pick order is tried; without them the first ``k`` are returned.


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(n == 0, 1, n)


def _pool_then_rest(candidates: np.ndarray, pool: np.ndarray, chosen: list[int], rest: np.ndarray, b, k: int,
                    cost: np.ndarray | None) -> np.ndarray:
    """The rows chosen from a candidate pool, then -- when the budget outlasts the pool --
    the other candidates (``rest``, already in seeded order) while they fit."""
    out = candidates[pool[np.asarray(chosen, dtype=np.int64)]]
    if len(rest) and b.taken < k and (b.left is None or b.left > 0):
        more = _static(candidates[rest], np.arange(len(rest)), k - b.taken,
                       None if cost is None else np.asarray(cost)[rest], b.left)
        out = np.concatenate([out, more])
    return out


def _static(candidates: np.ndarray, order: np.ndarray, k: int, cost: np.ndarray | None, capacity) -> np.ndarray:
    """``candidates[order]`` filled to ``k`` rows or ``capacity`` (cost aligned with candidates)."""
    if cost is None or capacity is None:
        return candidates[order[:k]]
    return candidates[order][_fill_index(np.asarray(cost)[order], k, capacity)]


def _fill_index(c: np.ndarray, k: int, capacity: int) -> np.ndarray:
    if len(c) == 0 or k <= 0:
        return np.zeros(0, np.int64)
    c = np.asarray(c, dtype=np.int64)
    suffix_min = np.minimum.accumulate(c[::-1])[::-1]
    out, left = [], int(capacity)
    for i in range(len(c)):
        if left < suffix_min[i] or len(out) >= k:
            break
        if c[i] <= left:
            out.append(i)
            left -= int(c[i])
    return np.asarray(out, dtype=np.int64)


class _Budget:
    """Rows left (``k``) and, for token budgets, capacity left; tracks open candidates."""

    def __init__(self, n: int, k: int, cost: np.ndarray | None, capacity: int | None):
        self.k, self.taken = k, 0
        self.cost = None if cost is None or capacity is None else np.asarray(cost, dtype=np.int64)
        self.left = None if self.cost is None else int(capacity)
        self.open = np.ones(n, bool)
        self._close_unaffordable()

    def _close_unaffordable(self) -> None:
        if self.cost is not None:
            self.open &= self.cost <= self.left

    def done(self) -> bool:
        return self.taken >= self.k or not self.open.any()

    def fits(self, i: int) -> bool:
        return self.cost is None or self.cost[i] <= self.left

    def take(self, i: int) -> None:
        self.taken += 1
        self.open[i] = False
        if self.cost is not None:
            self.left -= int(self.cost[i])
            self._close_unaffordable()


def pick_random(candidates: np.ndarray, k: int, seed: int, cluster_id: int, *, stratum: str | None = None,
                cost: np.ndarray | None = None, capacity: int | None = None) -> np.ndarray:
    """Seeded per cluster (and stratum), so one cluster's budget never changes another's rows;
    a larger k extends a smaller k's pick."""
    key = [seed, cluster_id + 1 if cluster_id >= 0 else 10**9]
    if stratum is not None:
        key.append(zlib.crc32(stratum.encode("utf-8")) + 1)
    rng = np.random.default_rng(key)
    return _static(candidates, rng.permutation(len(candidates)), k, cost, capacity)


def _centre_distance(candidates: np.ndarray, vectors: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    return np.linalg.norm(_unit(vectors[candidates]) - centroid, axis=1)


def pick_centroid(candidates: np.ndarray, k: int, vectors: np.ndarray, centroid: np.ndarray, *,
                  cost: np.ndarray | None = None, capacity: int | None = None) -> np.ndarray:
    """Nearest the cluster centre first ('core'; ties by row position)."""
    d = _centre_distance(candidates, vectors, centroid)
    return _static(candidates, np.lexsort((candidates, d)), k, cost, capacity)


pick_core = pick_centroid


def pick_boundary(candidates: np.ndarray, k: int, vectors: np.ndarray, centroid: np.ndarray, *,
                  cost: np.ndarray | None = None, capacity: int | None = None) -> np.ndarray:
    """Farthest from the cluster centre first (the cluster's edge cases)."""
    d = _centre_distance(candidates, vectors, centroid)
    return _static(candidates, np.lexsort((candidates, -d)), k, cost, capacity)


def pick_diverse(candidates: np.ndarray, k: int, vectors: np.ndarray, centroid: np.ndarray,
                 seeds: np.ndarray | None = None, *, cost: np.ndarray | None = None,
                 capacity: int | None = None) -> np.ndarray:
    """k-center greedy (farthest point first).  Starts from ``seeds`` (e.g. pinned rows)
    or, without any, from the candidate nearest the centroid."""
    if k <= 0 or len(candidates) == 0:
        return candidates[:0]
    v = _unit(vectors[candidates])
    b = _Budget(len(candidates), k, cost, capacity)
    chosen: list[int] = []
    if seeds is not None and len(seeds):
        s = _unit(vectors[seeds])
        mind = np.full(len(candidates), np.inf, dtype=np.float32)
        for row in s:
            mind = np.minimum(mind, np.linalg.norm(v - row, axis=1))
    else:
        first = next((int(i) for i in np.lexsort((candidates, np.linalg.norm(v - centroid, axis=1)))
                      if b.open[i]), None)
        if first is None:
            return candidates[:0]
        chosen.append(first)
        b.take(first)
        mind = np.linalg.norm(v - v[first], axis=1)
    while not b.done():
        mind_masked = np.where(b.open, mind, -1.0)
        nxt = int(np.argmax(mind_masked))
        chosen.append(nxt)
        b.take(nxt)
        mind = np.minimum(mind, np.linalg.norm(v - v[nxt], axis=1))
    return candidates[np.asarray(chosen, dtype=np.int64)]


def diverse_pool_size(n: int, k: int, cost: np.ndarray | None = None, capacity: int | None = None) -> int:
    """How many candidates the fast 'diverse' pick (algo_version 2) runs on: all of them up to
    ``DIVERSE_POOL_MIN``, else ``max(DIVERSE_POOL_MIN, DIVERSE_POOL_FACTOR * k)`` (k estimated
    from the median cost for a token budget)."""
    if cost is not None and capacity is not None and len(cost):
        k = int(math.ceil(max(0, capacity) / max(1.0, float(np.median(cost))))) + 1
    return int(min(n, max(DIVERSE_POOL_MIN, DIVERSE_POOL_FACTOR * max(k, 0))))


def pick_diverse_pool(candidates: np.ndarray, k: int, rows, centroid: np.ndarray, order: np.ndarray,
                      seeds: np.ndarray | None = None, *, cost: np.ndarray | None = None,
                      capacity: int | None = None, pool_size: int | None = None) -> np.ndarray:
    """k-center greedy on a bounded candidate pool (``pick='diverse'``, algo_version 2).

    The pool is the first :func:`diverse_pool_size` candidates in the seeded random
    ``order`` (a rank per candidate; all candidates when there are few).  On the pool it
    is exactly the farthest-point greedy of :func:`pick_diverse` -- starting from the
    seeds (pins), else from the candidate nearest ``centroid``; each step takes the open
    candidate whose highest cosine similarity to the rows chosen so far is lowest (for
    unit vectors: the farthest, ties to the first candidate) -- kept up to date with one
    float32 matrix-vector product per pick, so a pick costs ``pool x dim``, not
    ``cluster x dim``.  ``rows[positions]`` gives unit vectors.  If a token budget
    outlasts the pool, the other candidates follow in ``order`` while they fit."""
    n = len(candidates)
    if k <= 0 or n == 0:
        return candidates[:0]
    order = np.asarray(order)
    size = diverse_pool_size(n, k, cost, capacity) if pool_size is None else int(min(n, pool_size))
    by_rank = np.argsort(order, kind="stable")
    pool = np.arange(n) if size >= n else np.sort(by_rank[:size])
    rest = by_rank[size:] if size < n else np.zeros(0, np.int64)
    V = rows[candidates[pool]]
    pc = None if cost is None or capacity is None else np.asarray(cost, dtype=np.int64)[pool]
    b = _Budget(len(pool), k, pc, capacity)
    chosen: list[int] = []
    if seeds is not None and len(seeds):
        S = rows[np.asarray(seeds, dtype=np.int64)]
        maxsim = np.full(len(pool), -np.inf, dtype=np.float32)
        for s in range(0, len(S), 1024):
            np.maximum(maxsim, (V @ S[s : s + 1024].T).max(axis=1), out=maxsim)
    else:
        d = np.linalg.norm(V - centroid, axis=1)
        first = next((int(i) for i in np.lexsort((candidates[pool], d)) if b.open[i]), None)
        if first is None:
            return candidates[:0]
        chosen.append(first)
        b.take(first)
        maxsim = V @ V[first]
    maxsim = np.asarray(maxsim, dtype=np.float32)
    maxsim[~b.open] = np.inf
    tmp = np.empty(len(pool), dtype=np.float32)
    if b.cost is None:  # rows: a plain loop (no per-step scan of the open set)
        dot, maximum, inf = np.dot, np.maximum, np.inf
        for _ in range(min(k, len(pool)) - len(chosen)):
            nxt = int(maxsim.argmin())  # the farthest open candidate; ties -> the first
            chosen.append(nxt)
            dot(V, V[nxt], out=tmp)
            maximum(maxsim, tmp, out=maxsim)
            maxsim[nxt] = inf
        b.taken = len(chosen)
    while b.cost is not None and not b.done():
        nxt = int(np.argmin(maxsim))
        chosen.append(nxt)
        b.take(nxt)
        np.dot(V, V[nxt], out=tmp)
        np.maximum(maxsim, tmp, out=maxsim)
        maxsim[~b.open] = np.inf
    return _pool_then_rest(candidates, pool, chosen, rest, b, k, cost)


class _RowCache:
    """Unit vectors of map positions, gathered (and normalised) on first use only, so a
    cluster's centre sample and its candidate pools read each row once."""

    def __init__(self, vectors: np.ndarray):
        self.vectors = vectors
        self.pos = np.zeros(0, np.int64)
        self.unit = np.zeros((0, vectors.shape[1]), np.float32)

    def __getitem__(self, idx) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        loc = np.searchsorted(self.pos, idx)
        found = loc < len(self.pos)
        found[found] = self.pos[loc[found]] == idx[found]
        if not found.all():
            missing = idx[~found]
            if len(missing) > 1 and not (missing[1:] > missing[:-1]).all():
                missing = np.unique(missing)
            new = _unit(np.take(self.vectors, missing, axis=0))
            pos = np.concatenate([self.pos, missing])
            order = np.argsort(pos, kind="stable")
            self.pos = pos[order]
            self.unit = np.concatenate([self.unit, new])[order] if len(self.unit) else new
            loc = np.searchsorted(self.pos, idx)
        return self.unit[loc]


def _pool_order(members: np.ndarray, seed: int, cluster_id: int) -> np.ndarray:
    """A seeded random rank per member (aligned with ``members``)."""
    rng = np.random.default_rng([seed, 11, cluster_id + 1 if cluster_id >= 0 else 10**9])
    return rng.permutation(len(members))


def _rank_lookup(members: np.ndarray, rank: np.ndarray):
    """positions (members of the cluster) -> their ranks."""
    by_pos = np.argsort(members, kind="stable")
    sorted_members = members[by_pos]
    return lambda positions: rank[by_pos[np.searchsorted(sorted_members, positions)]]


def _sample_centroid(rows, members: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Unit mean of the members' unit vectors -- of the ``DIVERSE_POOL_MIN`` lowest-ranked
    members for a bigger cluster (summed in ``members`` order)."""
    sample = members if len(members) <= DIVERSE_POOL_MIN else members[np.sort(np.argsort(rank)[:DIVERSE_POOL_MIN])]
    c = rows[sample].mean(axis=0)
    norm = np.linalg.norm(c)
    return c / (norm if norm > 0 else 1)


def pick_score(candidates: np.ndarray, k: int, scores: np.ndarray, ascending: bool, *,
               cost: np.ndarray | None = None, capacity: int | None = None) -> np.ndarray:
    s = np.asarray(scores[candidates], dtype=np.float64)
    key = np.where(np.isnan(s), np.inf, s if ascending else -s)  # missing scores last
    return _static(candidates, np.lexsort((candidates, key)), k, cost, capacity)


def pick_mmr(candidates: np.ndarray, k: int, vectors: np.ndarray, centroid: np.ndarray, lam: float,
             relevance: np.ndarray | None = None, seeds: np.ndarray | None = None, *,
             cost: np.ndarray | None = None, capacity: int | None = None) -> np.ndarray:
    """Maximal marginal relevance: repeatedly the candidate maximising
    ``lam * relevance - (1 - lam) * max(0, max cosine similarity to the rows chosen so far)``.

    ``relevance`` (aligned with ``candidates``, in [0, 1]) defaults to the cosine
    similarity to the cluster centre.  ``lam=1``: top relevance; small ``lam``: spread out.
    Ties go to the first candidate."""
    if k <= 0 or len(candidates) == 0:
        return candidates[:0]
    v = _unit(vectors[candidates])
    rel = (v @ centroid).astype(np.float64) if relevance is None else np.asarray(relevance, dtype=np.float64)
    b = _Budget(len(candidates), k, cost, capacity)
    maxsim = np.zeros(len(candidates), dtype=np.float64)
    if seeds is not None and len(seeds):
        maxsim = np.maximum(maxsim, (v @ _unit(vectors[seeds]).T).max(axis=1))
    chosen: list[int] = []
    while not b.done():
        score = np.where(b.open, lam * rel - (1.0 - lam) * maxsim, -np.inf)
        nxt = int(np.argmax(score))  # ties -> the first candidate
        chosen.append(nxt)
        b.take(nxt)
        maxsim = np.maximum(maxsim, v @ v[nxt])
    return candidates[np.asarray(chosen, dtype=np.int64)]


def pick_facility(candidates: np.ndarray, k: int, vectors: np.ndarray, clients: np.ndarray,
                  seeds: np.ndarray | None = None, *, seed: int = 0, cluster_id: int = 0,
                  cost: np.ndarray | None = None, capacity: int | None = None,
                  max_clients: int = FACILITY_MAX_CLIENTS, max_candidates: int = FACILITY_MAX_CANDIDATES,
                  block: int = 1024, batch_size: int = 32) -> np.ndarray:
    """Greedy facility location with lazy evaluation (a priority queue of stale gains).

    Maximises ``sum_j max(0, max_{i in S} cos(x_j, x_i))`` over the clients ``j`` (the
    cluster's rows; a deterministic sample of ``max_clients`` for big clusters) by
    adding, each step, the candidate with the largest gain.  Gains only shrink as S
    grows (submodularity), so a popped candidate whose refreshed gain still beats the
    next stale bound is the true best.  Big clusters evaluate a deterministic sample of
    ``max(max_candidates, 2k)`` candidates; rows outside it follow in random order if
    the sample runs out."""
    n = len(candidates)
    if k <= 0 or n == 0:
        return candidates[:0]
    rng = np.random.default_rng([seed, 7, cluster_id + 1 if cluster_id >= 0 else 10**9])
    clients = np.asarray(clients, dtype=np.int64)
    if len(clients) > max_clients:
        clients = np.sort(rng.choice(clients, max_clients, replace=False))
    X = _unit(vectors[clients])
    k_hint = k
    if cost is not None and capacity is not None:
        med = max(1.0, float(np.median(cost)))
        k_hint = min(n, int(math.ceil(capacity / med)) + 1)
    pool = np.arange(n)
    rest = np.zeros(0, np.int64)
    if n > max(max_candidates, 2 * k_hint):
        size = max(max_candidates, 2 * k_hint)
        perm = rng.permutation(n)
        pool, rest = np.sort(perm[:size]), perm[size:]
    C = _unit(vectors[candidates[pool]])
    cur = np.zeros(len(X), dtype=np.float32)
    if seeds is not None and len(seeds):
        cur = np.maximum(cur, (X @ _unit(vectors[seeds]).T).max(axis=1))
    gains = np.empty(len(pool), dtype=np.float64)
    for s in range(0, len(pool), block):
        sims = np.maximum(C[s : s + block] @ X.T, 0.0)
        gains[s : s + block] = np.maximum(sims - cur, 0.0).sum(axis=1, dtype=np.float64)
    pc = None if cost is None or capacity is None else np.asarray(cost)[pool]
    b = _Budget(len(pool), k, pc, capacity)
    heap = [(-float(g), int(i)) for i, g in enumerate(gains)]
    heapq.heapify(heap)
    chosen: list[int] = []
    while heap and not b.done():
        # Refresh the top `batch` stale bounds in one matrix product (BLAS reuses the clients).
        batch: list[int] = []
        while heap and len(batch) < batch_size:
            _, i = heapq.heappop(heap)
            if b.open[i]:
                batch.append(i)
        if not batch:
            break
        sims = np.maximum(X @ C[batch].T, 0.0)  # (clients, batch)
        g = np.maximum(sims - cur[:, None], 0.0).sum(axis=0, dtype=np.float64)
        best = min(range(len(batch)), key=lambda j: (-g[j], batch[j]))
        bound = -heap[0][0] if heap else -np.inf
        if g[best] >= bound - 1e-9:  # beats every other (stale, so optimistic) bound: the true best
            i = batch[best]
            chosen.append(i)
            b.take(i)
            cur = np.maximum(cur, sims[:, best])
        else:
            best = -1
        for j, i in enumerate(batch):  # refreshed gains stay upper bounds: cur only grows
            if j != best:
                heapq.heappush(heap, (-float(g[j]), i))
    return _pool_then_rest(candidates, pool, chosen, rest, b, k, cost)


# -- the whole selection -------------------------------------------------------------


@dataclass
class Selection:
    positions: np.ndarray  # indices into the map's arrays, in output order
    row_ids: np.ndarray
    clusters: np.ndarray
    ranks: np.ndarray  # 1-based within the cluster, in pick order
    reasons: list[str]
    allocation: dict[int, int]  # cluster -> budget (rows, or tokens with budget_unit='tokens')
    notes: list[str] = field(default_factory=list)
    group_sizes: np.ndarray | None = None  # per chosen row: rows in its duplicate group (dedup on)
    duplicate_positions: np.ndarray | None = None  # the other (unchosen, unbanned) members of chosen groups
    duplicate_row_ids: np.ndarray | None = None  # ... their row ids
    duplicate_of: np.ndarray | None = None  # ... and the row id of the chosen row each duplicates
    tokens: np.ndarray | None = None  # per chosen row: its token count (budget_unit='tokens')
    labels: np.ndarray | None = None  # every map row's cluster for this selection (soft noise applied)
    stats: dict = field(default_factory=dict)  # JSON-able counts: soft noise, duplicates, leakage, tokens, strata
    context: dict = field(default_factory=dict)  # arrays for the metrics (text keys, reference vectors)

    def __len__(self) -> int:
        return len(self.row_ids)


def effective_labels(labels: np.ndarray, soft_labels: np.ndarray | None, soft_strength: np.ndarray | None,
                     threshold: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(labels with soft noise applied, mask of the rows moved).  Noise rows whose soft
    membership in their most likely cluster is >= ``threshold`` join that cluster."""
    eff = np.asarray(labels).astype(np.int32, copy=True)
    moved = np.zeros(len(eff), bool)
    if threshold is None or soft_labels is None or soft_strength is None:
        return eff, moved
    sl = np.asarray(soft_labels)
    ss = np.asarray(soft_strength)
    moved = (eff == NOISE) & (sl >= 0) & (ss >= threshold)
    eff[moved] = sl[moved]
    return eff, moved


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


def _check_scores(scores, params: SelectParams) -> np.ndarray:
    if scores is None:
        raise SieveError(f"pick={params.pick!r} needs the values of score_column {params.score_column!r}")
    scores = np.asarray(scores, dtype=np.float64)
    if np.isinf(scores).any():
        raise SieveError(f"score_column {params.score_column!r} contains infinite values")
    return scores


def _relevance(scores: np.ndarray, ascending: bool) -> np.ndarray:
    """Scores scaled to [0, 1] (1 = most relevant); missing scores 0."""
    s = np.asarray(scores, dtype=np.float64)
    ok = ~np.isnan(s)
    out = np.zeros(len(s))
    if ok.any():
        lo, hi = s[ok].min(), s[ok].max()
        r = (s[ok] - lo) / (hi - lo) if hi > lo else np.ones(int(ok.sum()))
        out[ok] = 1.0 - r if ascending else r
    return out


def _pick_cell(params: SelectParams, cands: np.ndarray, k: int, capacity: int | None, cost: np.ndarray | None, *,
               cluster_id: int, stratum: str | None, vectors, centroid, scores, seeds: np.ndarray,
               members: np.ndarray, pool_rank=None) -> np.ndarray:
    """Candidates (positions) chosen in pick order: ``k`` rows, or rows fitting ``capacity`` tokens."""
    if len(cands) == 0 or (capacity is None and k <= 0) or (capacity is not None and capacity <= 0 and
                                                           not (cost is not None and (cost[cands] == 0).any())):
        return cands[:0]
    c_cost = None if capacity is None else np.asarray(cost[cands], dtype=np.int64)
    if capacity is not None:
        k = len(cands)
    kw = dict(cost=c_cost, capacity=capacity)
    pick = params.pick
    if pick == "random":
        return pick_random(cands, k, params.seed, cluster_id, stratum=stratum, **kw)
    if pick == "score":
        return pick_score(cands, k, scores, params.score_ascending, **kw)
    if pick in ("centroid", "core"):
        return pick_centroid(cands, k, vectors, centroid, **kw)
    if pick == "boundary":
        return pick_boundary(cands, k, vectors, centroid, **kw)
    if pick == "diverse" and params.algo_version >= 2:
        return pick_diverse_pool(cands, k, vectors, centroid, pool_rank(cands),
                                 seeds=seeds if len(seeds) else None, **kw)
    if pick == "diverse":
        return pick_diverse(cands, k, vectors, centroid, seeds=seeds if len(seeds) else None, **kw)
    if pick == "facility":
        cid = cluster_id if stratum is None else cluster_id * 7919 + zlib.crc32(stratum.encode("utf-8")) % 7919
        return pick_facility(cands, k, vectors, members, seeds=seeds if len(seeds) else None, seed=params.seed,
                             cluster_id=cid, **kw)
    if pick == "mmr":
        rel = _relevance(scores[cands], params.score_ascending) if params.score_column else None
        return pick_mmr(cands, k, vectors, centroid, params.mmr_lambda, rel, seeds=seeds if len(seeds) else None,
                        **kw)
    raise SieveError(f"pick must be one of {PICKS}, got {pick!r}")


def _interleave(parts: list[np.ndarray]) -> np.ndarray:
    """Round-robin over the cells' pick orders (rank 1 of every cell, then rank 2, ...)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return np.zeros(0, np.int64)
    rank = np.concatenate([np.arange(len(p)) for p in parts])
    cell = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
    allp = np.concatenate(parts)
    return allp[np.lexsort((cell, rank))]


class _ClusterRows:
    """One cluster's unit vectors, indexed by map position (so pickers see the same
    numbers as from a normalised copy of the whole matrix, without making one)."""

    def __init__(self, vectors: np.ndarray, members: np.ndarray):
        self.pos = np.sort(np.asarray(members, dtype=np.int64))
        self.unit = _unit(vectors[self.pos])

    def __getitem__(self, idx) -> np.ndarray:
        return self.unit[np.searchsorted(self.pos, np.asarray(idx, dtype=np.int64))]


def _one_blas_thread():
    """Picks do many small matrix products: one BLAS thread avoids oversubscription stalls on
    busy machines and keeps the arithmetic the same whatever the core count."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _pick_clusters(params, clusters, members_of, alloc, pinned, avail, w, tokens_mode, need_centroid, vectors,
                   scores, snames, scode, cell_bounds, notes, strata_alloc, out_pos, out_rank, out_reason) -> None:
    """Pick inside every cluster (and strata cell); appends to the ``out_*`` lists."""
    glob = _global_picks(params, clusters, members_of, alloc, pinned, avail, vectors)
    for c in clusters:
        members = members_of[c]
        k = alloc.counts[c]
        pins_c = members[pinned[members]]
        cands = members[avail[members] & ~pinned[members]]
        if glob is not None:
            picked = glob[c]
            short = max(0, k - len(pins_c)) - len(picked)
            if short > 0:  # the global pool ran out in this cluster: seeded random rows follow
                rest = cands[~np.isin(cands, picked)]
                picked = np.concatenate([picked, pick_random(rest, short, params.seed, c)])
            chosen = np.concatenate([pins_c, picked]).astype(np.int64)
            out_pos.append(chosen)
            out_rank.append(np.arange(1, len(chosen) + 1, dtype=np.int32))
            out_reason.extend(["pinned"] * len(pins_c) + [params.pick] * len(picked))
            continue
        centroid = rows = pool_rank = None
        if need_centroid and params.pick == "diverse" and params.algo_version >= 2:
            # Fast path: only the rows of a centre sample, the pools and the pins are read.
            rows = _RowCache(vectors)
            rank = _pool_order(members, params.seed, c)
            pool_rank = _rank_lookup(members, rank)
            centroid = _sample_centroid(rows, members, rank)
        elif need_centroid:
            rows = _ClusterRows(vectors, members)
            centroid = rows[members].mean(axis=0)  # members in row-id order, as before
            norm = np.linalg.norm(centroid)
            centroid = centroid / (norm if norm > 0 else 1)
        kw = dict(cluster_id=c, vectors=rows, centroid=centroid, scores=scores, seeds=pins_c, members=members,
                  pool_rank=pool_rank)
        if snames is None:
            if tokens_mode:
                picked = _pick_cell(params, cands, 0, k - int(w[pins_c].sum()), w, stratum=None, **kw)
            else:
                picked = _pick_cell(params, cands, max(0, k - len(pins_c)), None, None, stratum=None, **kw)
        else:
            csize, cfull, clo, chi = cell_bounds[c]
            try:
                ca = allocate(csize, k, params.policy, lower=clo, upper=chi, weights_from=cfull, unit=params.unit)
            except SieveError as exc:
                raise SieveError(f"strata_bounds: cluster {c}'s budget of {k} {params.unit} cannot meet its strata "
                                 f"floors and pins ({sum(clo.values())} {params.unit})") from exc
            notes.extend(f"cluster {c}: {note}" for note in ca.notes)
            strata_alloc[str(c)] = {snames[s]: int(v) for s, v in ca.counts.items()}
            parts = []
            for s in sorted(ca.counts):
                in_cell = scode[cands] == s
                pins_cs = pins_c[scode[pins_c] == s]
                if tokens_mode:
                    parts.append(_pick_cell(params, cands[in_cell], 0, ca.counts[s] - int(w[pins_cs].sum()),
                                            w, stratum=snames[s], **kw))
                else:
                    parts.append(_pick_cell(params, cands[in_cell], max(0, ca.counts[s] - len(pins_cs)), None,
                                            None, stratum=snames[s], **kw))
            picked = _interleave(parts)
        chosen = np.concatenate([pins_c, picked]).astype(np.int64)
        out_pos.append(chosen)
        out_rank.append(np.arange(1, len(chosen) + 1, dtype=np.int32))
        out_reason.extend(["pinned"] * len(pins_c) + [params.pick] * len(picked))


def _global_picks(params, clusters, members_of, alloc, pinned, avail, vectors) -> dict | None:
    """pick='facility-global': every cluster's picks from one joint greedy (else None)."""
    if params.pick != "facility-global":
        return None
    cands = {c: members_of[c][avail[members_of[c]] & ~pinned[members_of[c]]] for c in clusters}
    need = {c: max(0, alloc.counts[c] - int(pinned[members_of[c]].sum())) for c in clusters}
    return pick_facility_global(cands, need, vectors, np.nonzero(avail)[0], np.nonzero(pinned)[0], seed=params.seed)


def _small_unique(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(labels, return_inverse=True)`` for cluster ids (small integers >= -1), by counting."""
    labels = np.asarray(labels)
    if len(labels) == 0 or labels.dtype.kind not in "iu" or labels.min() < -1 or labels.max() > 10_000_000:
        return np.unique(labels, return_inverse=True)
    shifted = labels.astype(np.int64) + 1
    present = np.bincount(shifted) > 0
    values = np.nonzero(present)[0]
    lookup = np.cumsum(present) - 1
    return (values - 1).astype(labels.dtype), lookup[shifted].astype(np.intp)


def select(
    labels: np.ndarray,
    row_ids: np.ndarray,
    params: SelectParams,
    *,
    vectors: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    texts: Sequence[str] | None = None,
    token_counts: np.ndarray | None = None,
    strata: Sequence | None = None,
    soft_labels: np.ndarray | None = None,
    soft_strength: np.ndarray | None = None,
    reference_vectors: np.ndarray | None = None,
    reference_sims: np.ndarray | None = None,
    target_positions: np.ndarray | None = None,
) -> Selection:
    """Pure: choose rows for ``params.budget``.  Arrays are aligned (one entry per mapped row).

    ``groups``: a duplicate-group id per row (else computed from ``texts`` and ``vectors``
    when ``params.dedup`` asks for it).  ``token_counts``: tokens per row (budget_unit
    'tokens').  ``strata``: the strata column's value per row.  ``soft_labels`` /
    ``soft_strength``: HDBSCAN soft membership (soft noise).  ``reference_vectors`` (or
    precomputed ``reference_sims``, each row's highest cosine similarity to a reference
    row): the leakage check.  ``target_positions`` (t,): for each row of the target set
    (``params.target_path``), the position of its nearest map row."""
    labels = np.asarray(labels)
    row_ids = np.asarray(row_ids, dtype=np.int64)
    n = len(labels)
    if len(row_ids) != n:
        raise SieveError("labels and row_ids must have the same length")
    if params.pick in VECTOR_PICKS and vectors is None:
        raise SieveError(f"pick={params.pick!r} needs the embedding vectors")
    if params.pick == "score" or (params.pick == "mmr" and params.score_column):
        scores = _check_scores(scores, params)
    tokens_mode = params.budget_unit == "tokens"
    cost_all = None
    if tokens_mode:
        if token_counts is None:
            raise SieveError("budget_unit='tokens' needs the token counts of the rows")
        cost_all = np.asarray(token_counts, dtype=np.int64)
        if len(cost_all) != n:
            raise SieveError("token_counts must have one entry per row")
        if (cost_all < 0).any():
            raise SieveError("token_counts must be non-negative")
    elif params.budget > n:
        raise SieveError(f"budget={params.budget} is larger than the {n} rows on the map")
    if params.strata_column:
        if strata is None:
            raise SieveError(f"strata_column {params.strata_column!r} needs its values")
        if len(strata) != n:
            raise SieveError("strata must have one entry per row")
    if params.dedup != "none" and groups is None:
        if texts is None:
            raise SieveError(f"dedup={params.dedup!r} needs the texts (or precomputed groups)")
        if params.dedup == "near" and vectors is None:
            raise SieveError("dedup='near' needs the embedding vectors")
    if params.target_path and target_positions is None:
        raise SieveError("target_path needs the target rows' nearest map rows (target_positions)")
    if params.leakage != "off" and reference_sims is None:
        if reference_vectors is None:
            raise SieveError(f"leakage={params.leakage!r} needs the reference vectors")
        if vectors is None:
            raise SieveError(f"leakage={params.leakage!r} needs the embedding vectors")

    notes: list[str] = []
    stats: dict = {"unit": params.unit}
    eff, moved = effective_labels(labels, soft_labels, soft_strength, params.soft_noise_threshold)
    if params.soft_noise_threshold is not None:
        if soft_labels is None or soft_strength is None:
            notes.append("soft_noise_threshold: this map has no soft membership (compute the map again); "
                         "no unclustered row was moved")
        else:
            notes.append(f"soft noise: {int(moved.sum())} unclustered row(s) with soft membership >= "
                         f"{params.soft_noise_threshold:g} joined their most likely cluster")
        stats["soft_noise_moved"] = int(moved.sum())

    ids_sorted = bool(n < 2 or (row_ids[1:] > row_ids[:-1]).all())  # the usual case: map order = id order
    order = np.arange(n) if ids_sorted else np.argsort(row_ids, kind="stable")
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

    # -- leakage: rows that are near-copies of reference rows ------------------------------
    if params.leakage != "off":
        if reference_sims is None:
            from .nn import max_sim

            reference_sims = max_sim(vectors, reference_vectors, seed=params.seed)[0]
        leaked = np.asarray(reference_sims) >= params.leakage_threshold
        stats["leaked"] = int(leaked.sum())
        stats["leaked_row_ids"] = row_ids[leaked][:1000].tolist()
        if params.leakage == "drop":
            drop = leaked & ~pinned
            banned |= drop
            stats["leaked_dropped"] = int(drop.sum())
            notes.append(f"leakage: {int(drop.sum())} row(s) with cosine similarity >= {params.leakage_threshold:g} "
                         "to a reference row were dropped from the candidates")
            if (leaked & pinned).any():
                notes.append(f"leakage: {int((leaked & pinned).sum())} pinned row(s) are near-copies of reference "
                             "rows; pins are kept")
        elif leaked.any():
            notes.append(f"leakage: {int(leaked.sum())} row(s) have cosine similarity >= "
                         f"{params.leakage_threshold:g} to a reference row (leakage='drop' removes them)")

    # -- duplicate groups: one unit per group ---------------------------------------------------
    active = np.ones(n, bool)
    rep_of = group_size = None
    if params.dedup != "none":
        if groups is None:
            from .dedup import find_groups, text_keys

            groups = find_groups(eff, keys=text_keys(texts), vectors=vectors, near=params.dedup == "near",
                                 threshold=params.near_dup_threshold, seed=params.seed)
        groups = np.asarray(groups, dtype=np.int64)
        if len(groups) != n:
            raise SieveError("groups must have one entry per row")
        # representative: a pinned member, else the lowest row id that is not banned
        g_order = np.lexsort((row_ids, banned, ~pinned, groups))
        g = groups[g_order]
        first = np.r_[True, g[1:] != g[:-1]] if n else np.zeros(0, bool)
        head = g_order[np.maximum.accumulate(np.where(first, np.arange(n), 0))] if n else g_order
        rep_of = np.empty(n, np.int64)
        rep_of[g_order] = head
        active = rep_of == np.arange(n)
        _, inv_g, cnt = np.unique(groups, return_inverse=True, return_counts=True)
        group_size = cnt[inv_g].astype(np.int64)
        n_groups = len(cnt)
        stats.update(groups=int(n_groups), duplicate_rows=int(n - n_groups),
                     rows_in_duplicate_groups=int((group_size > 1).sum()))
        notes.append(f"dedup={params.dedup}: {n - n_groups} duplicate row(s) collapsed into {n_groups} groups; "
                     "one representative per group can be chosen")
        extra = int((pinned & ~active).sum())
        if extra:
            notes.append(f"dedup: {extra} pinned row(s) duplicate another pinned row; pins are kept")
    active = active | pinned
    avail = active & ~banned
    w = cost_all if tokens_mode else np.ones(n, np.int64)

    clusters_arr, inv = _small_unique(eff)
    clusters = [int(c) for c in clusters_arr]

    def per_cluster(mask) -> dict[int, int]:
        tot = np.bincount(inv, weights=np.where(mask, w, 0).astype(np.float64), minlength=len(clusters))
        return {c: int(round(t)) for c, t in zip(clusters, tot)}

    full_sizes = per_cluster(active)
    sizes = per_cluster(avail)
    pin_counts = per_cluster(pinned)
    lower, upper, fixed = group_bounds(sizes, params, pin_counts)
    if ids_sorted:  # the same order as lexsort((row_ids, inv)); a radix sort for small cluster counts
        by_cluster = np.argsort(inv.astype(np.uint16) if len(clusters) < 2**16 else inv, kind="stable")
    else:
        by_cluster = np.lexsort((row_ids, inv))
    bounds_idx = np.searchsorted(inv[by_cluster], np.arange(len(clusters) + 1))
    members_of = {c: by_cluster[bounds_idx[i] : bounds_idx[i + 1]] for i, c in enumerate(clusters)}

    # -- strata: per-cell floors/caps, and what they allow per cluster --------------------------
    snames = scode = None
    cell_bounds: dict[int, tuple[dict, dict, dict, dict]] = {}
    if params.strata_column:
        svals = np.asarray([MISSING_STRATUM if v is None else str(v) for v in strata], dtype=object)
        snames, scode = np.unique(svals.astype(str), return_inverse=True)
        snames = [str(s) for s in snames]
        for c in clusters:
            m = members_of[c]
            codes = np.unique(scode[m])
            csize, cfull, clo, chi = {}, {}, {}, {}
            for s in codes:
                cell = m[scode[m] == s]
                size = int(w[cell[avail[cell]]].sum())
                pins = int(w[cell[pinned[cell]]].sum())
                blo, bhi = params.strata_bounds.get(snames[s], (None, None))
                cap = size if bhi is None else min(size, max(bhi, pins))
                csize[int(s)] = size
                cfull[int(s)] = int(w[cell[active[cell]]].sum())
                chi[int(s)] = cap
                clo[int(s)] = min(max(blo or 0, pins), cap)
            cell_bounds[c] = (csize, cfull, clo, chi)
            upper[c] = min(upper.get(c, sizes[c]), max(sum(chi.values()), pin_counts[c]))
            lower[c] = max(lower.get(c, 0), sum(clo.values()))

    policy, weights_from = params.policy, full_sizes
    if params.target_path:
        tw = target_cluster_weights(eff[np.asarray(target_positions, dtype=np.int64)], clusters)
        policy, weights_from = "proportional", tw
        stats["target_rows"] = int(len(target_positions))
        stats["target_clusters"] = int(sum(v > 0 for v in tw.values()))
        notes.append(f"target: {len(target_positions)} target row(s) fall in {stats['target_clusters']} of "
                     f"{len(clusters)} clusters; the budget follows their shares (the policy is not used)")
    try:
        alloc = allocate(sizes, params.budget, policy, lower=lower, upper=upper, fixed=fixed,
                         weights_from=weights_from, unit=params.unit)
    except SieveError as exc:
        if params.strata_bounds:
            raise SieveError(f"{exc} (with the strata_bounds floors of every cluster x stratum cell)") from exc
        raise
    alloc.notes[:] = [shortfall_note(note, sizes, params) for note in alloc.notes]

    need_centroid = params.pick in VECTOR_PICKS
    out_pos, out_rank, out_reason = [], [], []
    strata_alloc: dict[str, dict[str, int]] = {}
    with _one_blas_thread():
        _pick_clusters(params, clusters, members_of, alloc, pinned, avail, w, tokens_mode, need_centroid, vectors,
                       scores, snames, scode, cell_bounds, notes, strata_alloc, out_pos, out_rank, out_reason)

    pos = np.concatenate(out_pos) if out_pos else np.zeros(0, np.int64)
    notes = list(alloc.notes) + notes
    if scores is not None and params.score_column and np.isnan(scores).any() \
            and params.pick in ("score", "mmr"):
        notes.append(f"{int(np.isnan(scores).sum())} row(s) have no {params.score_column!r} score; they rank last")
    sel = Selection(
        positions=pos,
        row_ids=row_ids[pos],
        clusters=eff[pos].astype(np.int32),
        ranks=np.concatenate(out_rank) if out_rank else np.zeros(0, np.int32),
        reasons=out_reason,
        allocation={int(c): int(v) for c, v in alloc.counts.items()},
        notes=notes,
        labels=eff,
        stats=stats,
    )
    if strata_alloc:
        stats["strata"] = strata_alloc
    if group_size is not None:
        chosen_mask = np.zeros(n, bool)
        chosen_mask[pos] = True
        sel.group_sizes = group_size[pos]
        dup = ~chosen_mask & ~banned & chosen_mask[rep_of]
        dpos = np.nonzero(dup)[0]
        dpos = dpos[np.lexsort((row_ids[dpos], row_ids[rep_of[dpos]]))]
        sel.duplicate_positions = dpos
        sel.duplicate_row_ids = row_ids[dpos]
        sel.duplicate_of = row_ids[rep_of[dpos]]
        stats["chosen_duplicates"] = int(len(dpos))
        stats["chosen_group_rows"] = int(sel.group_sizes.sum())
    if tokens_mode:
        sel.tokens = cost_all[pos]
        used = int(sel.tokens.sum())
        stats.update(tokens_used=used, tokens_budget=int(params.budget))
        notes.append(f"token budget: {used:,} of {params.budget:,} tokens used in {len(pos):,} rows")
    return sel
