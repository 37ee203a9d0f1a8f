"""Cluster: HDBSCAN on the n-D projection.  Noise is its own group, id -1."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .workspace import SieveError, Workspace, stage_key

NOISE = -1
# Bumped when the stage's output changes, so cached results of older code are recomputed
# (only this stage and the ones after it; the embeddings are kept).  2: soft membership.
STAGE_VERSION = 2
NOISE_NAME = "unclustered"
METHODS = ("eom", "leaf")


def default_min_cluster_size(n: int) -> int:
    """About sqrt(n)/2, at least 5 and at most 1000 (≈27 at 3k rows, ≈112 at 50k)."""
    return int(min(1000, max(5, round(math.sqrt(max(n, 1)) / 2))))


@dataclass(frozen=True)
class ClusterParams:
    min_cluster_size: int | None = None  # None: default_min_cluster_size(n)
    min_samples: int | None = None  # None: min(min_cluster_size, 10)
    method: str = "eom"
    epsilon: float = 0.0

    def __post_init__(self):
        if self.min_cluster_size is not None and (not isinstance(self.min_cluster_size, int) or self.min_cluster_size < 2):
            raise SieveError(f"min_cluster_size must be an integer >= 2, got {self.min_cluster_size!r}")
        if self.min_samples is not None and (not isinstance(self.min_samples, int) or self.min_samples < 1):
            raise SieveError(f"min_samples must be a positive integer, got {self.min_samples!r}")
        if self.method not in METHODS:
            raise SieveError(f"method must be one of {METHODS}, got {self.method!r}")
        if not isinstance(self.epsilon, (int, float)) or self.epsilon < 0:
            raise SieveError(f"epsilon must be >= 0, got {self.epsilon!r}")

    def resolved(self, n: int) -> "ClusterParams":
        mcs = self.min_cluster_size or default_min_cluster_size(n)
        ms = self.min_samples or min(mcs, 10)
        return ClusterParams(mcs, ms, self.method, self.epsilon)


@dataclass
class Clustering:
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


def cluster(points: np.ndarray, params: ClusterParams = ClusterParams()) -> Clustering:
    """Pure: points (n, k) -> labels.  Cluster ids are renumbered by size (0 = largest)."""
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    if n == 0:
        raise SieveError("cluster needs at least one row")
    p = params.resolved(n)
    notes: list[str] = []
    if n < 2 * p.min_cluster_size or n < 5:
        notes.append(
            f"only {n} row(s), fewer than 2 x min_cluster_size={p.min_cluster_size}: all rows form one cluster"
        )
        ones = np.ones(n, np.float32)
        return Clustering(np.zeros(n, np.int32), ones, p, notes, np.zeros(n, np.int32), ones)

    import hdbscan

    model = hdbscan.HDBSCAN(
        min_cluster_size=p.min_cluster_size,
        min_samples=p.min_samples,
        cluster_selection_method=p.method,
        cluster_selection_epsilon=float(p.epsilon),
        core_dist_n_jobs=1,
        prediction_data=True,
    )
    raw = model.fit_predict(points).astype(np.int64)
    strength = np.nan_to_num(np.asarray(model.probabilities_, dtype=np.float32), nan=0.0)
    labels, mapping = relabel_by_size(raw, return_mapping=True)
    soft_labels, soft_strength = labels.copy(), strength.copy()
    if (labels == NOISE).all():
        notes.append("HDBSCAN found no cluster: every row is unclustered; try a smaller min_cluster_size")
    else:
        _soft_membership(model, points, raw, mapping, soft_labels, soft_strength)
    return Clustering(labels, strength, p, notes, soft_labels, soft_strength)


def _soft_membership(model, points, raw, mapping, soft_labels, soft_strength, chunk: int = 4096) -> None:
    """Fill in, for noise rows, their most likely cluster and its membership (in place)."""
    from hdbscan.prediction import membership_vector

    noise = np.nonzero(raw < 0)[0]
    order = np.array([mapping[k] for k in range(len(mapping))], dtype=np.int32)  # raw id -> renumbered id
    for start in range(0, len(noise), chunk):
        idx = noise[start : start + chunk]
        mv = np.nan_to_num(np.asarray(membership_vector(model, points[idx]), dtype=np.float64), nan=0.0)
        if mv.ndim == 1:
            mv = mv.reshape(len(idx), -1)
        best = mv.argmax(axis=1)
        soft_labels[idx] = order[best]
        soft_strength[idx] = mv[np.arange(len(idx)), best].astype(np.float32)


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


def run_cluster(ws: Workspace, project_key: str, params: ClusterParams = ClusterParams()) -> tuple[str, bool]:
    key = stage_key("cluster", {"params": params, "version": STAGE_VERSION}, project_key)
    if ws.has_artifact("cluster", key):
        return key, True
    arrays, _ = ws.load_artifact("project", project_key)
    result = cluster(np.asarray(arrays["xnd"]), params)
    ws.save_artifact(
        "cluster", key,
        {"labels": result.labels, "strength": result.strength, "soft_labels": result.soft_labels,
         "soft_strength": result.soft_strength, "row_ids": np.asarray(arrays["row_ids"])},
        {"parent": project_key, "params": params, "resolved_params": result.params, "notes": result.notes,
         "n_clusters": result.n_clusters},
    )
    return key, False
