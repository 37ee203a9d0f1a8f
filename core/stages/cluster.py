"""Cluster: HDBSCAN on the n-D projection.  Noise is its own group, id -1.

Up to ``fit_sample`` rows, HDBSCAN (the ``hdbscan`` package) runs on every row, with soft
membership for noise rows.  Above it, HDBSCAN is fitted on a seeded sample of that many
rows (``min_cluster_size`` scaled to the sample) and every other row takes the cluster of
its nearest sample row in mutual-reachability distance (noise if that row is noise), which
keeps 1M rows well under a minute.  Soft membership is optional at scale (``soft``:
None = on up to ``SOFT_MAX_ROWS`` rows).  A params dict without these fields (an old
manifest) means the old behaviour: every row, soft membership on.

cuML's HDBSCAN is used instead when it imports and a GPU is present (not exact-checked).

``algorithm`` chooses another clusterer (``core.stages.cluster_methods``: EVoC, PLSCAN, Leiden);
"hdbscan" is the default and what a params dict without the field means.  For those, a
noise row's soft membership is the majority cluster among its ``SOFT_KNN`` nearest clustered
rows in the n-D projection (strength = that majority's share; :mod:`core.stages.cluster_soft`).

Defaults (``auto_rule`` 2, issue 16, measured in ``bench/selection_quality.py``; see
docs/SELECTION.md): ``min_cluster_size`` about sqrt(n)/4 and ``min_samples`` min(mcs, 5), and
noise rows whose soft membership is at least ``assign_noise`` (0.02) join that cluster.
A params dict without ``auto_rule`` / ``assign_noise`` (maps made before) means the old
rule (sqrt(n)/2, min(mcs, 10)) and no assignment, so old manifests replay the same ids.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from core.runtime import warmup
from core.runtime.hardware import gpu_available, usable_cores
from core.stages.base import StageResult, stage_result
from core.stages.cluster_methods import ALGORITHMS, ON_VECTORS, evoc_labels, leiden_labels, plscan_labels
from core.stages.cluster_soft import hdbscan_soft_membership, knn_soft_membership
from core.stages.distinct import duplicate_groups
from core.store.artifacts import stage_key
from core.store.workspace import SieveError, Workspace

NOISE = -1
# Bumped when the stage's output changes, so cached results of older code are recomputed
# (only this stage and the ones after it; the embeddings are kept).  2: soft membership.
STAGE_VERSION = 2
NOISE_NAME = "unclustered"
METHODS = ("eom", "leaf")
DEFAULT_FIT_SAMPLE = 200_000
SOFT_MAX_ROWS = 200_000
SAMPLE_SEED = 0
ASSIGN_CHUNK = 100_000


# The rules that fill in min_cluster_size / min_samples left as None: {rule: (divisor of
# sqrt(n), min_samples cap)}.  1: maps made before 2026-11-30 (and params dicts without
# ``auto_rule``); 2: the default since (finer clusters, less noise: issue 16).
AUTO_RULES = {1: (2.0, 10), 2: (4.0, 5)}
DEFAULT_AUTO_RULE = 2
# Noise rows with a soft membership >= this join their most likely cluster (the default map).
DEFAULT_ASSIGN_NOISE = 0.02


def default_min_cluster_size(n: int, rule: int = DEFAULT_AUTO_RULE) -> int:
    """About sqrt(n)/4 (``rule`` 2, the default; rule 1: sqrt(n)/2), at least 5 and at most
    1000 (rule 2: ≈14 at 3k rows, ≈56 at 50k; rule 1: ≈27, ≈112)."""
    return int(min(1000, max(5, round(math.sqrt(max(n, 1)) / AUTO_RULES[rule][0]))))


def default_min_samples(min_cluster_size: int, rule: int = DEFAULT_AUTO_RULE) -> int:
    """min(min_cluster_size, 5) (``rule`` 2, the default; rule 1: min(min_cluster_size, 10))."""
    return int(min(min_cluster_size, AUTO_RULES[rule][1]))


@dataclass(frozen=True)
class ClusterParams:
    """HDBSCAN (Campello et al. 2013; the ``hdbscan`` package) or another clusterer's parameters
    (see the module docstring); validated on creation (SieveError)."""
    min_cluster_size: int | None = None  # None: default_min_cluster_size(n, auto_rule)
    min_samples: int | None = None  # None: default_min_samples(min_cluster_size, auto_rule)
    method: str = "eom"
    epsilon: float = 0.0
    # Above this many rows: fit on a seeded sample of this size, assign the rest.  None: never.
    fit_sample: int | None = DEFAULT_FIT_SAMPLE
    # Soft membership of noise rows: True, False or None (auto: on up to SOFT_MAX_ROWS rows).
    soft: bool | None = None
    # Rows with identical vectors (identical texts) are clustered as one point with its
    # multiplicity: they share one position, so they fall in one cluster, and too few
    # distinct vectors make one cluster (see cluster()).  False: the old behaviour.
    merge_duplicates: bool = True
    # The clusterer (core.stages.cluster_methods.ALGORITHMS); EVoC and Leiden cluster the raw vectors.
    algorithm: str = "hdbscan"
    # The rule for the None values above (AUTO_RULES); a params dict without it: 1, the old rule.
    auto_rule: int = DEFAULT_AUTO_RULE
    # HDBSCAN: noise rows whose soft membership is >= this join that cluster (their strength =
    # that membership); None: noise stays noise (maps made before, and --keep-noise).  Other
    # algorithms keep their noise.
    assign_noise: float | None = DEFAULT_ASSIGN_NOISE

    def __post_init__(self):
        if self.min_cluster_size is not None and (not isinstance(self.min_cluster_size, int) or self.min_cluster_size < 2):
            raise SieveError(f"min_cluster_size must be an integer >= 2, got {self.min_cluster_size!r}")
        if self.min_samples is not None and (not isinstance(self.min_samples, int) or self.min_samples < 1):
            raise SieveError(f"min_samples must be a positive integer, got {self.min_samples!r}")
        if self.method not in METHODS:
            raise SieveError(f"method must be one of {METHODS}, got {self.method!r}")
        if not isinstance(self.epsilon, (int, float)) or self.epsilon < 0:
            raise SieveError(f"epsilon must be >= 0, got {self.epsilon!r}")
        if self.fit_sample is not None and (not isinstance(self.fit_sample, int) or self.fit_sample < 100):
            raise SieveError(f"fit_sample must be an integer >= 100 or None, got {self.fit_sample!r}")
        if self.soft is not None and not isinstance(self.soft, bool):
            raise SieveError(f"soft must be true, false or null, got {self.soft!r}")
        if not isinstance(self.merge_duplicates, bool):
            raise SieveError(f"merge_duplicates must be true or false, got {self.merge_duplicates!r}")
        if self.algorithm not in ALGORITHMS:
            raise SieveError(f"cluster algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")
        if isinstance(self.auto_rule, bool) or self.auto_rule not in AUTO_RULES:
            raise SieveError(f"auto_rule must be one of {sorted(AUTO_RULES)}, got {self.auto_rule!r}")
        a = self.assign_noise
        if a is not None and (isinstance(a, bool) or not isinstance(a, (int, float)) or not 0.0 <= a <= 1.0):
            raise SieveError(f"assign_noise must be between 0 and 1 or null, got {a!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "ClusterParams":
        """From a manifest/meta dict; missing fields mean the old behaviour."""
        return cls(**{**LEGACY_CLUSTER, **d})

    def key_dict(self) -> dict:
        """What the cache key hashes: fields at their legacy value are left out, so old
        keys (and cached artifacts) stay valid."""
        d = asdict(self)
        for k, v in LEGACY_CLUSTER.items():
            if d.get(k) == v:
                d.pop(k)
        return d

    def resolved(self, n: int) -> "ClusterParams":
        """These params for ``n`` rows, with min_cluster_size, min_samples and soft filled in."""
        mcs = self.min_cluster_size or default_min_cluster_size(n, self.auto_rule)
        ms = self.min_samples or default_min_samples(mcs, self.auto_rule)
        soft = self.soft if self.soft is not None else n <= SOFT_MAX_ROWS
        return replace(self, min_cluster_size=mcs, min_samples=ms, soft=soft)


LEGACY_CLUSTER = {"fit_sample": None, "soft": True, "merge_duplicates": False, "algorithm": "hdbscan",
                  "auto_rule": 1, "assign_noise": None}


@dataclass
class Clustering:
    """Per-row cluster labels (int32, -1 = noise), membership strengths (float32 in [0, 1]) and
    soft labels/strengths (noise rows given their nearest cluster), with the params used and notes."""
    labels: np.ndarray  # (n,) int32; -1 is noise
    strength: np.ndarray  # (n,) float32 membership strength in [0, 1]
    params: ClusterParams  # with the defaults resolved
    notes: list[str] = field(default_factory=list)
    # For noise rows: the cluster they belong to most (HDBSCAN soft membership) and how
    # strongly, so a selection can take noise into its nearest cluster above a threshold.
    # For clustered rows: their own label and strength.
    soft_labels: np.ndarray | None = None
    soft_strength: np.ndarray | None = None

    @property
    def n_clusters(self) -> int:
        return int(len(set(self.labels.tolist()) - {NOISE}))


def _hdbscan(points: np.ndarray, p: ClusterParams, prediction_data: bool):
    import hdbscan

    model = hdbscan.HDBSCAN(
        min_cluster_size=p.min_cluster_size,
        min_samples=p.min_samples,
        cluster_selection_method=p.method,
        cluster_selection_epsilon=float(p.epsilon),
        core_dist_n_jobs=1,
        prediction_data=prediction_data,
    )
    raw = model.fit_predict(points).astype(np.int64)
    strength = np.nan_to_num(np.asarray(model.probabilities_, dtype=np.float32), nan=0.0)
    return model, raw, strength


def one_cluster(n: int, p: ClusterParams, note: str) -> Clustering:
    """Every one of ``n`` rows in cluster 0 with strength 1, and ``note`` saying why."""
    ones = np.ones(n, np.float32)
    return Clustering(np.zeros(n, np.int32), ones, p, [note], np.zeros(n, np.int32), ones)


def cluster(points: np.ndarray, params: ClusterParams = ClusterParams(), vectors: np.ndarray | None = None, *,
            groups: tuple[np.ndarray, np.ndarray] | None = None) -> Clustering:
    """Pure: points (n, k) -> labels.  Cluster ids are renumbered by size (0 = largest).

    ``groups`` = (first, inverse) from :func:`duplicate_groups` of the rows' vectors: with
    ``params.merge_duplicates``, every row takes its group's first row's point (identical
    texts share one position, so HDBSCAN sees one point with its multiplicity and can never
    split them), and fewer than 2 x min_cluster_size (or 5) distinct vectors form one cluster.
    ``vectors`` (n, d): the raw embeddings, needed by the EVoC and Leiden algorithms."""
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    if n == 0:
        raise SieveError("cluster needs at least one row")
    p = params.resolved(n)
    notes: list[str] = []
    if n < 2 * p.min_cluster_size or n < 5:
        return one_cluster(n, p, f"only {n} row(s), fewer than 2 x min_cluster_size={p.min_cluster_size}: "
                                 "all rows form one cluster")
    if groups is not None and p.merge_duplicates:
        first, inverse = groups
        k = len(first)
        if k < 2 * p.min_cluster_size or k < 5:
            what = "every row has the same vector (identical texts)" if k == 1 else \
                f"only {k} distinct vector(s) among {n} rows, fewer than 2 x min_cluster_size={p.min_cluster_size}"
            return one_cluster(n, p, f"{what}: all rows form one cluster")
        if k < n:
            points = points[first][inverse]
            notes.append(f"{n - k:,} row(s) repeat the vector of another row; identical vectors were clustered "
                         "as one point (they share a cluster)")

    warmup.wait_for_warmup()
    if p.algorithm != "hdbscan":
        return _other_algorithm(points, p, vectors, notes)
    if gpu_available():  # pragma: no cover - no GPU in CI
        model, raw, strength = _gpu_hdbscan(points, p)
        notes.append("HDBSCAN ran on the GPU (cuML)")
    elif p.fit_sample is not None and n > p.fit_sample:
        model = None
        raw, strength = _sample_fit_assign(points, p, notes)
    else:
        model, raw, strength = _hdbscan(points, p, prediction_data=bool(p.soft))
    labels, mapping = relabel_by_size(raw, return_mapping=True)
    soft_labels, soft_strength = labels.copy(), strength.copy()
    if (labels == NOISE).all():
        notes.append("HDBSCAN found no cluster: every row is unclustered; try a smaller min_cluster_size")
    elif p.soft and model is not None and getattr(model, "prediction_data_", None) is not None:
        hdbscan_soft_membership(model, points, raw, mapping, soft_labels, soft_strength)
    elif p.soft:
        notes.append("soft membership is not available for a map clustered on a sample; "
                     "noise rows keep no nearest cluster")
    return join_noise(Clustering(labels, strength, p, notes, soft_labels, soft_strength),
                      has_soft=bool(p.soft) and model is not None)


def _other_algorithm(points: np.ndarray, p: ClusterParams, vectors, notes: list[str]) -> Clustering:
    """EVoC / Leiden (on ``vectors``) or PLSCAN (on ``points``), then kNN soft membership."""
    if p.algorithm in ON_VECTORS and (vectors is None or len(vectors) != len(points)):
        raise SieveError(f"cluster algorithm {p.algorithm!r} needs the embedding vectors of every row")
    try:
        if p.algorithm == "evoc":
            raw, strength = evoc_labels(vectors, seed=SAMPLE_SEED)
        elif p.algorithm == "leiden":
            raw, strength = leiden_labels(vectors, seed=SAMPLE_SEED)
        else:
            raw, strength = plscan_labels(points, min_samples=p.min_samples, min_cluster_size=p.min_cluster_size)
    except ImportError as exc:
        raise SieveError(f"cluster algorithm {p.algorithm!r} needs a package that is not installed: {exc}") from exc
    labels = relabel_by_size(raw)
    notes.append(f"clustered with {p.algorithm}")
    if (labels == NOISE).all():
        notes.append(f"{p.algorithm} found no cluster: every row is unclustered")
    soft_labels, soft_strength = knn_soft_membership(points, labels, strength)
    # assign_noise applies to HDBSCAN's soft membership only: a kNN majority share is another scale
    return Clustering(labels, strength, p, notes, soft_labels, soft_strength)


def join_noise(c: Clustering, has_soft: bool) -> Clustering:
    """``c`` with every noise row whose soft membership is >= ``c.params.assign_noise`` moved
    into its most likely cluster (label = soft label, strength = that membership), the
    clusters renumbered by size again (soft labels too), and a note; unchanged when
    ``assign_noise`` is None, when no row moves, or without soft membership (``has_soft``)."""
    thr = c.params.assign_noise
    noise = c.labels == NOISE
    if thr is None or not noise.any() or noise.all():
        return c
    if not has_soft or c.soft_labels is None:
        c.notes.append("unclustered rows were not joined to a cluster: this map has no soft membership")
        return c
    move = noise & (c.soft_labels != NOISE) & (c.soft_strength >= thr)
    if not move.any():
        return c
    labels = np.where(move, c.soft_labels, c.labels).astype(np.int64)
    strength = np.where(move, c.soft_strength, c.strength).astype(np.float32)
    new, mapping = relabel_by_size(labels, return_mapping=True)
    lut = np.full(max(mapping, default=0) + 2, NOISE, np.int32)  # old id -> new id; index -1 stays noise
    for old, to in mapping.items():
        lut[old] = to
    soft_labels = lut[c.soft_labels.astype(np.int64)]
    c.notes.append(f"{int(move.sum()):,} of {int(noise.sum()):,} unclustered rows joined their most likely "
                   f"cluster (soft membership >= {thr:g}); {int(noise.sum() - move.sum()):,} stay unclustered")
    return Clustering(new, strength, c.params, c.notes, soft_labels, c.soft_strength.copy())


def _sample_fit_assign(points: np.ndarray, p: ClusterParams, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """HDBSCAN on a seeded sample, then every other row takes the label (and strength) of
    its nearest sample row in mutual-reachability distance."""
    from scipy.spatial import cKDTree

    n = len(points)
    s = int(p.fit_sample)
    rng = np.random.default_rng(SAMPLE_SEED)
    fit_rows = np.sort(rng.choice(n, s, replace=False))
    sp = ClusterParams(max(2, round(p.min_cluster_size * s / n)), None, p.method, p.epsilon, None, False)
    sp = sp.resolved(s)
    sp = ClusterParams(sp.min_cluster_size, min(p.min_samples, sp.min_cluster_size), p.method, p.epsilon, None, False)
    sample = np.ascontiguousarray(points[fit_rows])
    _, raw_s, strength_s = _hdbscan(sample, sp, prediction_data=False)
    notes.append(f"HDBSCAN was fitted on a seeded sample of {s:,} of {n:,} rows (min_cluster_size "
                 f"{sp.min_cluster_size}, min_samples {sp.min_samples}); the others took the cluster "
                 "of their nearest sample row")
    k = sp.min_samples
    tree = cKDTree(sample)  # exact kNN, as sklearn's KDTree, but multi-threaded (and faster on one thread)
    workers = usable_cores()
    core = tree.query(sample, k=k + 1, workers=workers)[0].reshape(s, -1)[:, -1] if k > 0 else np.zeros(s)
    raw = np.full(n, NOISE, np.int64)
    strength = np.zeros(n, np.float32)
    raw[fit_rows], strength[fit_rows] = raw_s, strength_s
    rest = np.setdiff1d(np.arange(n), fit_rows)
    for start in range(0, len(rest), ASSIGN_CHUNK):
        rows = rest[start : start + ASSIGN_CHUNK]
        dist, idx = tree.query(points[rows], k=[*range(1, max(k, 1) + 1)], workers=workers)
        own_core = dist[:, -1:]
        mr = np.maximum(np.maximum(dist, own_core), core[idx])
        best = idx[np.arange(len(rows)), mr.argmin(axis=1)]
        raw[rows], strength[rows] = raw_s[best], strength_s[best]
    return raw, strength


def _gpu_hdbscan(points: np.ndarray, p: ClusterParams):  # pragma: no cover - no GPU in CI
    from cuml.cluster import HDBSCAN as CuHDBSCAN

    model = CuHDBSCAN(min_cluster_size=p.min_cluster_size, min_samples=p.min_samples,
                      cluster_selection_method=p.method, cluster_selection_epsilon=float(p.epsilon))
    raw = np.asarray(model.fit_predict(points.astype(np.float32))).astype(np.int64)
    strength = np.nan_to_num(np.asarray(model.probabilities_, dtype=np.float32), nan=0.0)
    return None, raw, strength


def relabel_by_size(raw: np.ndarray, return_mapping: bool = False):
    """Renumber clusters 0..k-1 by decreasing size (ties: smaller old id first); keep -1.
    With ``return_mapping``, also the dict old id -> new id."""
    ids, counts = np.unique(raw[raw >= 0], return_counts=True)
    order = np.lexsort((ids, -counts))
    mapping = {int(ids[o]): new for new, o in enumerate(order)}
    out = np.full(len(raw), NOISE, dtype=np.int32)
    for old, new in mapping.items():
        out[raw == old] = new
    return (out, mapping) if return_mapping else out


def cluster_key(params: ClusterParams, project_key: str) -> str:
    """The cluster artifact key of ``params`` on the projection ``project_key``."""
    return stage_key("cluster", {"params": params.key_dict(), "version": STAGE_VERSION}, project_key)


def run_cluster(ws: Workspace, project_key: str, params: ClusterParams = ClusterParams()) -> tuple[str, bool]:
    """Cluster the projection ``project_key``; returns (cluster artifact key, cached)."""
    key = cluster_key(params, project_key)
    if ws.has_artifact("cluster", key):
        return key, True
    arrays, pmeta = ws.load_artifact("project", project_key)
    groups, vectors = None, None
    parent = pmeta.get("parent")
    if (params.merge_duplicates or params.algorithm in ON_VECTORS) and parent and ws.has_artifact("embed", parent):
        emb = np.asarray(ws.load_artifact("embed", parent)[0]["vectors"])
        groups = duplicate_groups(emb) if params.merge_duplicates else None
        vectors = emb.astype(np.float32) if params.algorithm in ON_VECTORS else None
    result = cluster(np.asarray(arrays["xnd"]), params, vectors, groups=groups)
    ws.save_artifact(
        "cluster", key,
        {"labels": result.labels, "strength": result.strength, "soft_labels": result.soft_labels,
         "soft_strength": result.soft_strength, "row_ids": np.asarray(arrays["row_ids"])},
        {"parent": project_key, "params": params, "resolved_params": result.params, "notes": result.notes,
         "n_clusters": result.n_clusters},
    )
    return key, False


def run(ws: Workspace, inputs: str, params: ClusterParams = ClusterParams()) -> StageResult:
    """:func:`run_cluster` of the projection ``inputs`` (its key) as a StageResult."""
    key, cached = run_cluster(ws, inputs, params)
    return stage_result(ws, "cluster", key, cached)
