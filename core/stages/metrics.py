"""Metrics: how a selection compares with the full set -- and with random subsets of
the same size drawn from the same eligible rows (averaged over ``n_random`` seeds),
so every number has its baseline beside it.

* coverage: share of (non-noise) clusters with at least one chosen row
* jsd: Jensen-Shannon divergence of the cluster distributions (0 = same mix)
* nn_distance: mean cosine distance from a chosen row to its nearest other chosen row
  (over a sample of the chosen rows, see below; the nearest row is searched exactly
  among *all* chosen rows)
* facility: mean over a deterministic sample of all rows (the *clients*) of max(0,
  highest cosine similarity to a chosen row) -- how well the subset represents everything
* dup_rate: share of chosen rows (same sample as nn_distance) that are an exact
  (normalised text) or near (cosine >= ``near_threshold``) duplicate of another chosen row
* reference_coverage: share of reference rows within ``coverage_distance`` (cosine
  distance) of a chosen row

None of these is quadratic in the dataset or in the subset.  The label metrics are
counts (O(n)).  The vector metrics are sampled: for a subset of k rows,
nn_distance/dup_rate use ``sample_size(k, 4000)`` query rows and facility uses
``sample_size(k, 2000)`` clients, i.e. min(cap, max(256, 2,500,000 / k)) -- every
chosen row up to 625 chosen rows (2,000 clients up to 1,250), 256 query rows and 256
clients at k = 10,000 -- so each costs O(sample x k x dim) and a subset of
10,000 rows is measured (with its 5 random baselines) in well under a second.  Samples
are seeded, so the numbers are deterministic, and the subset and its random baselines
use the same clients.  For a sampled subset (k > 625) the vector metrics of the random
baseline are measured on the first of the ``n_random`` random subsets only
(``SelectionMetrics.n_random_vectors``), so the baseline costs what measuring one subset
costs.  Its uncertainty is then about 1 % (std) for the mean NN distance -- on the bench
data, random 10,000-row subsets differ by 0.5 %-1 % and the 256-query sample adds 0.5 %.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from core.nn import max_sim
from core.stages.cluster import NOISE

RANDOM_KEYS = ("coverage", "jsd", "nn_distance", "facility", "dup_rate", "reference_coverage")


@dataclass
class SelectionMetrics:
    """How a selection compares with the full set and with random subsets of its size (see
    :func:`selection_metrics`)."""
    n_full: int
    n_subset: int
    counts_full: dict[int, int]
    counts_subset: dict[int, int]
    coverage: float  # share of (non-noise) clusters with at least one chosen row
    jsd: float  # Jensen-Shannon divergence (base 2, 0..1) of the cluster distributions
    nn_distance: float | None  # mean cosine distance to the nearest other chosen row
    nn_distance_random: float | None  # the same for random subsets of the same size
    facility: float | None = None  # facility-location value (see the module docstring)
    dup_rate: float | None = None  # share of chosen rows duplicating another chosen row
    reference_coverage: float | None = None  # share of reference rows near a chosen row
    random: dict = field(default_factory=dict)  # the same metrics, mean over random subsets
    n_random: int = 0
    near_threshold: float = 0.95
    coverage_distance: float | None = None
    n_random_vectors: int | None = None  # random subsets the vector metrics' baseline was measured on

    def to_dict(self) -> dict:
        d = asdict(self)
        d["counts_full"] = {str(k): v for k, v in self.counts_full.items()}
        d["counts_subset"] = {str(k): v for k, v in self.counts_subset.items()}
        d["comparison"] = self.comparison()
        return d

    def comparison(self) -> list[dict]:
        """Rows of 'this subset vs random' for display: metric, subset, random, better."""
        higher = {"coverage": True, "jsd": False, "nn_distance": True, "facility": True, "dup_rate": False,
                  "reference_coverage": True}
        names = {"coverage": "cluster coverage", "jsd": "JS divergence to the full set",
                 "nn_distance": "mean NN distance (diversity)", "facility": "facility-location value",
                 "dup_rate": "duplicate rate", "reference_coverage": "reference coverage"}
        out = []
        for k in RANDOM_KEYS:
            mine, rnd = getattr(self, k), self.random.get(k)
            if mine is None and rnd is None:
                continue
            better = None
            if mine is not None and rnd is not None:
                better = "subset" if (mine > rnd if higher[k] else mine < rnd) else ("tie" if mine == rnd else "random")
            out.append({"metric": names[k], "key": k, "subset": mine, "random": rnd, "better": better,
                        "higher_is_better": higher[k]})
        return out


SPREAD_PICKS = ("diverse", "facility", "mmr", "boundary")  # picks that aim at spread or representativeness


def metric_aims(policy: str, pick: str) -> dict[str, tuple[str, bool]]:
    """What a subset chosen with ``policy`` and ``pick`` aims at, per metric key of
    :data:`RANDOM_KEYS`: ``(explanation, judged)``.  ``judged`` is False where beating a
    random subset is not the goal, so a UI must not colour the difference as good or
    bad: a balanced policy (equal, sqrt) *should* diverge from the full cluster mix, and
    a random or centre-first pick does not aim at spread."""
    balanced = policy in ("equal", "sqrt")
    spread = pick in SPREAD_PICKS
    return {
        "coverage": ("every cluster gets rows: near 100% for any policy with enough budget", True),
        "jsd": (("higher than random by design: a balanced policy evens out the clusters, so the subset "
                 "diverges from the full set's mix; small clusters gain, large ones give up rows") if balanced else
                "close to 0: a proportional subset keeps the full set's cluster mix", not balanced),
        "nn_distance": (("higher than random: this pick spreads the chosen rows apart") if spread else
                        f"not a goal of the {pick} pick (choose diverse or facility to spread rows)", spread),
        "facility": (("higher than random: each row of the full set has a chosen row close to it") if spread else
                     f"not a goal of the {pick} pick", spread),
        "dup_rate": ("lower than random: fewer near-copies among the chosen rows", spread or pick == "random"),
        "reference_coverage": ("higher is better: more reference rows have a chosen row nearby", True),
    }


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) between two count vectors of one length."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.sum() == 0 or q.sum() == 0:
        return 1.0 if p.sum() != q.sum() else 0.0
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a, b):
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / b[mask])))

    return float(min(1.0, max(0.0, (kl(p, m) + kl(q, m)) / 2)))


def coverage(labels: np.ndarray, chosen: np.ndarray) -> float:
    """Share of the (non-noise) clusters with at least one chosen row."""
    labels = np.asarray(labels)
    groups, inv = _codes(labels)
    return _coverage_codes(groups, inv[np.asarray(chosen, dtype=np.int64)])


def _codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct labels, each row's index into them) -- by counting for cluster ids."""
    labels = np.asarray(labels)
    if len(labels) and labels.dtype.kind in "iu" and labels.min() >= -1 and labels.max() < 10_000_000:
        shifted = labels.astype(np.int64) + 1
        present = np.bincount(shifted) > 0
        return np.nonzero(present)[0] - 1, (np.cumsum(present) - 1)[shifted]
    groups, inv = np.unique(labels, return_inverse=True)
    return groups, inv.ravel()


def _coverage_codes(groups: np.ndarray, chosen_codes: np.ndarray) -> float:
    hit = np.zeros(len(groups), bool)
    hit[chosen_codes] = True
    real = np.asarray(groups) != NOISE
    if not real.any():
        real = np.ones(len(groups), bool)
    return float(hit[real].sum() / real.sum()) if real.any() else 0.0


# Sample sizes of the vector metrics.  The exact computations are quadratic in the subset
# size, so the *queries* (rows whose nearest chosen row is looked up) and the facility
# *clients* are deterministic samples whose size shrinks as the subset grows: at most
# ``max_rows`` (4,000) / ``FACILITY_CLIENTS`` (2,000), and at most ``PAIRS`` / subset size,
# but never fewer than ``MIN_SAMPLE``.  Each metric is then O(sample x subset x dim).
PAIRS = 2_500_000
MIN_SAMPLE = 256
FACILITY_CLIENTS = 2000


def sample_size(k: int, cap: int, *, pairs: int = PAIRS, floor: int = MIN_SAMPLE) -> int:
    """How many query rows a metric over a ``k``-row subset uses (see the constants above)."""
    return int(min(cap, max(floor, pairs // max(int(k), 1))))


def _unit_rows(vectors: np.ndarray, idx: np.ndarray) -> np.ndarray:
    base = np.asarray(np.take(vectors, idx, axis=0), dtype=np.float32)
    base /= np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-12)
    return base


def _nn_sims(vectors: np.ndarray, idx: np.ndarray, *, max_rows: int, seed: int, block: int,
             base: np.ndarray | None = None):
    """(query indices into sorted idx, their highest similarity to another chosen row, sorted idx).

    ``base``: the chosen rows' unit vectors in sorted-position order, if already gathered."""
    rng = np.random.default_rng(seed)
    sidx = np.sort(np.asarray(idx))
    if base is None:
        base = _unit_rows(vectors, sidx)
    q_idx = np.arange(len(base))
    if len(base) > max_rows:
        q_idx = np.sort(rng.choice(len(base), max_rows, replace=False))
    best = np.empty(len(q_idx), dtype=np.float32)
    for start in range(0, len(q_idx), block):
        qi = q_idx[start : start + block]
        sims = base[qi] @ base.T
        sims[np.arange(len(qi)), qi] = -np.inf  # not itself
        best[start : start + block] = sims.max(axis=1)
    return q_idx, best, sidx


def mean_nn_distance(vectors: np.ndarray, idx: np.ndarray, *, max_rows: int = 4000, seed: int = 0,
                     block: int = 2048) -> float | None:
    """Mean cosine distance from each chosen row (up to ``max_rows`` sampled) to its nearest other chosen row."""
    idx = np.asarray(idx)
    if len(idx) < 2:
        return None
    _, best, _ = _nn_sims(vectors, idx, max_rows=max_rows, seed=seed, block=block)
    return cosine_distance_mean(best)


def duplicate_rate(idx: np.ndarray, *, keys: np.ndarray | None = None, vectors: np.ndarray | None = None,
                   near_threshold: float = 0.95, max_rows: int = 4000, seed: int = 0) -> float | None:
    """Share of chosen rows (``max_rows`` sampled) with an exact-key or near (cosine >= threshold) twin among the chosen."""
    idx = np.sort(np.asarray(idx, dtype=np.int64))
    if len(idx) == 0 or (keys is None and vectors is None):
        return None
    dup = np.zeros(len(idx), bool)
    if keys is not None:
        k = np.asarray(keys)[idx]
        _, inv, cnt = np.unique(k, return_inverse=True, return_counts=True)
        dup |= cnt[inv] > 1
    q = np.arange(len(idx))
    if vectors is not None and len(idx) >= 2:
        q, best, _ = _nn_sims(vectors, idx, max_rows=max_rows, seed=seed, block=2048)
        return float(np.mean(dup[q] | (best >= near_threshold)))
    return float(np.mean(dup[q]))


def _nn_and_dups(vectors, idx, keys, near_threshold, seed, max_rows=4000, base=None):
    """(mean NN distance, duplicate rate) from one nearest-neighbour pass over a sample of
    ``max_rows`` chosen rows (all of them when fewer)."""
    idx = np.asarray(idx, dtype=np.int64)
    if len(idx) < 2:
        return None, (duplicate_rate(idx, keys=keys) if keys is not None else (0.0 if len(idx) else None))
    q, best, sidx = _nn_sims(vectors, idx, max_rows=max_rows, seed=seed, block=2048, base=base)
    dup = best >= near_threshold
    if keys is not None:
        k = np.asarray(keys)[sidx]
        _, inv, cnt = np.unique(k, return_inverse=True, return_counts=True)
        dup |= (cnt[inv.ravel()] > 1)[q]
    return cosine_distance_mean(best), float(np.mean(dup))


def cosine_distance_mean(sims: np.ndarray) -> float:
    """Mean of ``1 - sims``, clipped at 0: float32 rounding makes the similarity of two
    identical unit vectors slightly above 1, which must not read as a negative distance."""
    return max(0.0, float(np.mean(1.0 - np.asarray(sims, dtype=np.float64))))


def fmt_distance(value: float | None, signed: bool = False) -> str:
    """A distance (or, ``signed``, a difference of distances) to 3 decimals, never
    "-0.000"; ``None`` is "n/a"."""
    if value is None:
        return "n/a"
    r = round(float(value), 3) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{r:+.3f}" if signed else f"{max(r, 0.0):.3f}"


def facility_clients(n: int, *, max_clients: int = FACILITY_CLIENTS, seed: int = 0) -> np.ndarray:
    """A deterministic sample of row positions the facility value is measured on."""
    if n <= max_clients:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, 1234]).choice(n, max_clients, replace=False))


def facility_score(vectors: np.ndarray, idx: np.ndarray, clients: np.ndarray) -> float | None:
    """Mean over ``clients`` (positions) of max(0, highest cosine similarity to a chosen row)."""
    idx = np.asarray(idx, dtype=np.int64)
    if len(idx) == 0:
        return None
    best, _ = max_sim(vectors[np.asarray(clients)], vectors[np.sort(idx)])
    return float(np.mean(np.maximum(best, 0.0)))


def _max_sims(query_unit: np.ndarray, base_unit: np.ndarray, block: int = 2048) -> np.ndarray:
    """Exact highest similarity of each (unit) query row to the (unit) base rows."""
    best = np.empty(len(query_unit), dtype=np.float32)
    for s in range(0, len(query_unit), block):
        best[s : s + block] = (query_unit[s : s + block] @ base_unit.T).max(axis=1)
    return best


def reference_coverage(reference: np.ndarray, vectors: np.ndarray, idx: np.ndarray, distance: float) -> float | None:
    """Share of reference rows whose nearest chosen row is within ``distance`` (cosine)."""
    idx = np.asarray(idx, dtype=np.int64)
    if len(idx) == 0 or len(reference) == 0:
        return None
    best, _ = max_sim(reference, vectors[np.sort(idx)])
    return float(np.mean(1.0 - best <= distance + 1e-7))


@dataclass
class _SubsetMeasure:
    """The metrics of one subset (the selection or a random draw) against the full set."""
    codes: np.ndarray
    group_arr: np.ndarray
    full_arr: np.ndarray
    vectors: np.ndarray | None
    keys: np.ndarray | None
    near_threshold: float
    seed: int
    q_rows: int
    clients_unit: np.ndarray | None
    reference: np.ndarray | None
    coverage_distance: float

    def __call__(self, idx: np.ndarray, with_vectors: bool = True) -> dict:
        sc = self.codes[idx]
        out = {"coverage": _coverage_codes(self.group_arr, sc),
               "jsd": jensen_shannon(self.full_arr, np.bincount(sc, minlength=len(self.group_arr)))}
        vectors = self.vectors
        if vectors is not None and with_vectors:
            sidx = np.sort(np.asarray(idx, dtype=np.int64))
            base = _unit_rows(vectors, sidx) if len(sidx) else None
            out["nn_distance"], out["dup_rate"] = _nn_and_dups(vectors, idx, self.keys, self.near_threshold, self.seed,
                                                               max_rows=self.q_rows, base=base)
            out["facility"] = None if base is None else \
                float(np.mean(np.maximum(_max_sims(self.clients_unit, base), 0.0)))
            if self.reference is not None:
                out["reference_coverage"] = None if base is None or len(self.reference) == 0 else \
                    float(np.mean(1.0 - max_sim(self.reference, base)[0] <= self.coverage_distance + 1e-7))
        elif self.keys is not None and vectors is None:
            out["dup_rate"] = duplicate_rate(idx, keys=self.keys)
        return out


def _random_baseline(measure: _SubsetMeasure, pool: np.ndarray, k: int, n_random: int, seed: int,
                     vector_runs: int) -> tuple[dict, int]:
    """({metric: mean over ``n_random`` seeded random draws of ``k`` rows from ``pool``}, draws made)."""
    if not (len(pool) >= k and k > 0 and n_random > 0):
        return {}, 0
    rng = np.random.default_rng(seed + 1)
    runs = [measure(rng.choice(pool, k, replace=False), with_vectors=i < vector_runs) for i in range(n_random)]
    rand = {}
    for key in RANDOM_KEYS:
        vals = [r[key] for r in runs if r.get(key) is not None]
        if vals:
            rand[key] = float(np.mean(vals))
    return rand, len(runs)


def selection_metrics(labels: np.ndarray, chosen: np.ndarray, vectors: np.ndarray | None = None, *,
                      eligible: np.ndarray | None = None, n_random: int = 5, seed: int = 0,
                      keys: np.ndarray | None = None, near_threshold: float = 0.95,
                      reference: np.ndarray | None = None, coverage_distance: float = 0.3) -> SelectionMetrics:
    """``chosen``: positions into ``labels``/``vectors``.  The random baseline draws
    ``len(chosen)`` rows from ``eligible`` (default: all rows), ``n_random`` times.

    ``keys``: normalised-text hashes per row (exact duplicates in dup_rate);
    ``reference``: reference vectors (reference_coverage).  Without ``vectors`` only the
    label metrics (and the exact duplicate rate) are computed."""
    labels = np.asarray(labels)
    chosen = np.asarray(chosen, dtype=np.int64)
    group_arr, codes = _codes(labels)
    groups = [g.item() for g in group_arr]
    full_arr = np.bincount(codes, minlength=len(groups))
    full = {c: int(v) for c, v in zip(groups, full_arr)}
    sub_arr = np.bincount(codes[chosen], minlength=len(groups))
    sub = {c: int(v) for c, v in zip(groups, sub_arr)}
    pool = np.arange(len(labels)) if eligible is None else np.asarray(eligible)
    k = len(chosen)
    q_rows = sample_size(k, 4000)
    clients = clients_unit = None
    if vectors is not None:
        clients = facility_clients(len(labels), max_clients=sample_size(k, FACILITY_CLIENTS), seed=seed)
        clients_unit = _unit_rows(vectors, clients)

    # Big (sampled) subsets: the vector metrics of the random baseline come from the first
    # random subset only (about 1 % uncertainty, see the module docstring).
    vector_runs = 1 if q_rows < k else n_random
    measure = _SubsetMeasure(codes, group_arr, full_arr, vectors, keys, near_threshold, seed, q_rows, clients_unit,
                             reference, coverage_distance)
    mine = measure(chosen)
    rand, n_done = _random_baseline(measure, pool, len(chosen), n_random, seed, vector_runs)
    return SelectionMetrics(
        n_full=int(len(labels)),
        n_subset=int(len(chosen)),
        counts_full=full,
        counts_subset=sub,
        coverage=mine["coverage"],
        jsd=mine["jsd"],
        nn_distance=mine.get("nn_distance"),
        nn_distance_random=rand.get("nn_distance"),
        facility=mine.get("facility"),
        dup_rate=mine.get("dup_rate"),
        reference_coverage=mine.get("reference_coverage"),
        random=rand,
        n_random=n_done,
        n_random_vectors=min(n_done, vector_runs) if vectors is not None else None,
        near_threshold=float(near_threshold),
        coverage_distance=float(coverage_distance) if reference is not None else None,
    )
