"""The map at scale, pure part: fit UMAP (2-D and n-D) and HDBSCAN on a seeded sample,
then place every other row with the fitted models (UMAP ``transform``, HDBSCAN
``approximate_predict``; McInnes et al. 2018, Campello et al. 2013)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa

from core.stages.cluster import NOISE, ClusterParams, cluster, relabel_by_size
from core.stages.distinct import duplicate_groups
from core.stages.project import ProjectParams, project


def sample_row_ids(row_ids: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A seeded uniform sample (sorted) of ``size`` of ``row_ids`` (all of them when fewer)."""
    row_ids = np.sort(np.asarray(row_ids, dtype=np.int64))
    if size >= len(row_ids):
        return row_ids
    rng = np.random.default_rng([int(seed), 0x5CA1E])
    return np.sort(row_ids[rng.choice(len(row_ids), size, replace=False)])


@dataclass
class SampleFit:
    """What the sample fit produced: coordinates/labels of the sample rows and the models
    that place every other row (None when the sample is every row)."""

    row_ids: np.ndarray
    xy: np.ndarray
    labels: np.ndarray
    strength: np.ndarray
    models: Any = None  # (umap 2-D, umap n-D, hdbscan, raw->renumbered mapping)
    params: ClusterParams | None = None
    notes: list[str] = field(default_factory=list)


def fit_sample(row_ids: np.ndarray, vectors: np.ndarray, project_params: ProjectParams,
               cluster_params: ClusterParams, *, transformable: bool = True) -> SampleFit:
    """Pure: fit the map on the sample (``row_ids`` (n,) int64, ``vectors`` (n, d) float32).

    ``transformable=False`` (the sample is every row) uses the local
    :func:`core.stages.project.project` + :func:`core.stages.cluster.cluster` (seeded, exact UMAP), so
    the result is the local map's.  Otherwise two UMAP models (2-D, n-D) and an HDBSCAN
    model with prediction data are fitted, which :func:`assign` uses for the other rows."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if not transformable:
        project_params = replace(project_params, exact=True)  # seeded, single-threaded: reproducible
        proj = project(vectors, project_params)
        clus = cluster(proj.xnd, cluster_params, groups=duplicate_groups(vectors))  # identical rows: one group
        return SampleFit(np.asarray(row_ids), proj.xy, clus.labels, clus.strength, None, clus.params,
                         proj.notes + clus.notes)
    import hdbscan  # heavy: deferred
    import umap

    n = len(vectors)
    k = min(project_params.n_neighbors, n - 1)
    models, out = [], []
    for dims, md in ((2, project_params.min_dist), (project_params.cluster_dims, project_params.cluster_min_dist)):
        reducer = umap.UMAP(n_components=dims, n_neighbors=k, min_dist=md, metric=project_params.metric,
                            random_state=project_params.seed, init="spectral")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.append(np.asarray(reducer.fit_transform(vectors), dtype=np.float32))
        models.append(reducer)
    p = cluster_params.resolved(n)
    hdb = hdbscan.HDBSCAN(min_cluster_size=p.min_cluster_size, min_samples=p.min_samples,
                          cluster_selection_method=p.method, cluster_selection_epsilon=float(p.epsilon),
                          core_dist_n_jobs=1, prediction_data=True)
    raw = hdb.fit_predict(out[1].astype(np.float64)).astype(np.int64)
    labels, mapping = relabel_by_size(raw, return_mapping=True)
    strength = np.nan_to_num(np.asarray(hdb.probabilities_, dtype=np.float32), nan=0.0)
    notes = [] if (labels != NOISE).any() else ["HDBSCAN found no cluster in the sample"]
    return SampleFit(np.asarray(row_ids), out[0], labels, strength, (models[0], models[1], hdb, mapping), p, notes)


def assign(models, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pure: place rows (``vectors`` (n, d) float32) with a sample fit's models ->
    (xy (n, 2) float32, labels (n,) int32 with -1 noise, strength (n,) float32)."""
    import hdbscan  # heavy: deferred

    m2, mnd, hdb, mapping = models
    vectors = np.asarray(vectors, dtype=np.float32)
    if len(vectors) == 0:
        return np.zeros((0, 2), np.float32), np.zeros(0, np.int32), np.zeros(0, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xy = np.asarray(m2.transform(vectors), dtype=np.float32)
        xnd = np.asarray(mnd.transform(vectors), dtype=np.float64)
        raw, prob = hdbscan.approximate_predict(hdb, xnd)
    table = np.full(max(mapping, default=-1) + 2, NOISE, dtype=np.int32)  # raw id + 1 -> new id
    for old, new in mapping.items():
        table[old + 1] = new
    raw = np.asarray(raw, dtype=np.int64)
    labels = np.where(raw >= 0, table[np.clip(raw, -1, len(table) - 2) + 1], NOISE).astype(np.int32)
    return xy, labels, np.nan_to_num(np.asarray(prob, dtype=np.float32), nan=0.0)


def map_table(row_ids, xy, labels, strength, sampled):
    """One map shard as an Arrow table: sieve_row_id int64, x/y float32, cluster int32,
    strength float32, sampled bool (the row was in the fit's sample)."""

    xy = np.asarray(xy, dtype=np.float32).reshape(-1, 2)
    return pa.table({
        "sieve_row_id": pa.array(np.asarray(row_ids, dtype=np.int64)),
        "x": pa.array(xy[:, 0]), "y": pa.array(xy[:, 1]),
        "cluster": pa.array(np.asarray(labels, dtype=np.int32)),
        "strength": pa.array(np.asarray(strength, dtype=np.float32)),
        "sampled": pa.array(np.asarray(sampled, dtype=bool)),
    })
