"""Project: UMAP to 2-D (for display) and to a few dimensions (for clustering).

Two paths:

* ``exact=True``: two seeded ``umap.UMAP`` fits sharing one k-nearest-neighbour graph.
  umap-learn runs single-threaded when seeded, so the result is bit-reproducible.  This is
  what every map made before the ``exact`` field existed used, so a params dict without
  ``exact`` (an old manifest) means ``exact=True``.
* ``exact=False`` (default): one kNN graph, one fuzzy simplicial set and one spectral
  initialisation (``cluster_dims`` components; the 2-D run starts from its first two
  columns), then two parallel layout optimisations.  Not bit-reproducible, so exports
  store the computed map next to the manifest (see :mod:`core.stages.export`).

Above ``fit_sample`` rows either path fits on a seeded sample of that many rows and places
the others into the fitted maps in chunks (UMAP's transform: a kNN query into the sample,
then a short optimisation against the fixed sample), which bounds memory at 1M rows.

A GPU implementation (cuML) is used automatically for the non-exact path when ``cuml``
imports and a CUDA device is present (``SIEVE_NO_GPU=1`` turns that off).

Tiny inputs (fewer than ``MIN_UMAP_ROWS`` rows) fall back to PCA, and say so.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from core.runtime import warmup
from core.runtime.hardware import gpu_available
from core.stages.base import StageResult, stage_result
from core.stages.distinct import duplicate_groups
from core.stages.embed import load_embeddings
from core.stages.knn import EXACT_KNN_MAX_ROWS, knn, query_knn
from core.store.artifacts import stage_key
from core.store.workspace import SieveError, Workspace

METRICS = ("cosine", "euclidean", "manhattan", "correlation")
MIN_UMAP_ROWS = 10
DEFAULT_FIT_SAMPLE = 200_000
TRANSFORM_CHUNK = 50_000
MAX_SEED = 2**32 - 1  # numpy's RandomState, which UMAP seeds, takes no larger seed

# Below this many rows the non-exact path optimises single-threaded (seeded, so it is
# bit-reproducible and exports need no map file); parallelism only pays off above it.
PARALLEL_MIN_ROWS = 10_000
# kNN distance at which umap-learn treats two points as disconnected.
_DISCONNECTION = {"cosine": 2.0, "correlation": 2.0}

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ProjectParams:
    """UMAP parameters (McInnes et al. 2018, ``umap-learn``): neighbours, metric, min_dist, the
    n-D clustering space, seed, exact vs fast, fit sample; validated on creation (SieveError)."""
    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "cosine"
    cluster_dims: int = 5
    cluster_min_dist: float = 0.0
    seed: int = 42
    # False: shared graph + spectral init, parallel optimisation (not bit-reproducible).
    # True: two seeded single-threaded umap.UMAP fits (bit-reproducible; slower).
    exact: bool = False
    # Above this many rows, fit on a seeded sample of this size and transform the rest.
    # None: always fit on every row.
    fit_sample: int | None = DEFAULT_FIT_SAMPLE

    def __post_init__(self):
        if not isinstance(self.n_neighbors, int) or self.n_neighbors < 2:
            raise SieveError(f"n_neighbors must be an integer >= 2, got {self.n_neighbors!r}")
        for name in ("min_dist", "cluster_min_dist"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not (0.0 <= float(v) <= 1.0):
                raise SieveError(f"{name} must be between 0 and 1, got {v!r}")
        if self.metric not in METRICS:
            raise SieveError(f"metric must be one of {METRICS}, got {self.metric!r}")
        if not isinstance(self.cluster_dims, int) or not (2 <= self.cluster_dims <= 100):
            raise SieveError(f"cluster_dims must be an integer from 2 to 100, got {self.cluster_dims!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not (0 <= self.seed <= MAX_SEED):
            raise SieveError(f"seed must be a whole number from 0 to {MAX_SEED} (2**32 - 1, UMAP's limit), "
                             f"got {self.seed!r}")
        if not isinstance(self.exact, bool):
            raise SieveError(f"exact must be true or false, got {self.exact!r}")
        if self.fit_sample is not None and (not isinstance(self.fit_sample, int) or self.fit_sample < 100):
            raise SieveError(f"fit_sample must be an integer >= 100 or None, got {self.fit_sample!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "ProjectParams":
        """From a manifest/meta dict.  Fields it lacks take their pre-``exact`` meaning
        (seeded exact UMAP on every row), so old manifests reproduce exactly."""
        return cls(**{**LEGACY_PROJECT, **d})

    def key_dict(self) -> dict:
        """What the cache key hashes: fields still at their legacy value are left out, so
        an old map's key (and cached artifact) is unchanged."""
        d = asdict(self)
        for k, v in LEGACY_PROJECT.items():
            if d.get(k) == v:
                d.pop(k)
        return d


LEGACY_PROJECT = {"exact": True, "fit_sample": None}


@dataclass
class Projection:
    """The 2-D map (n, 2) and the clustering space (n, cluster_dims), float32, with notes."""
    xy: np.ndarray  # (n, 2) float32, for display
    xnd: np.ndarray  # (n, cluster_dims) float32, for clustering
    notes: list[str] = field(default_factory=list)
    # False when a parallel (or GPU) optimisation made it: recomputing gives another map
    reproducible: bool = True


def _pca(vectors: np.ndarray, dims: int) -> np.ndarray:
    n = len(vectors)
    out = np.zeros((n, dims), dtype=np.float32)
    if n < 2:
        return out
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    k = min(dims, len(s))
    comp = u[:, :k] * s[:k]
    # Deterministic sign: the largest-magnitude entry of each component is positive.
    signs = np.sign(comp[np.abs(comp).argmax(axis=0), np.arange(k)])
    signs[signs == 0] = 1
    out[:, :k] = comp * signs
    return out


def _runs(params: ProjectParams) -> tuple[tuple[int, float], tuple[int, float]]:
    return (2, float(params.min_dist)), (params.cluster_dims, float(params.cluster_min_dist))


def _exact_fit(vectors, idx, dist, k, params, progress, parallel=False) -> tuple[list[np.ndarray], list[tuple[float, float]]]:
    """The seeded, single-threaded path (unchanged from before ``exact`` existed)."""
    import umap

    n = len(vectors)
    results, ab = [], []
    for step, (dims, min_dist) in enumerate(_runs(params), 1):
        if progress:
            progress(step, 3, f"UMAP to {dims}-D (exact)")
        reducer = umap.UMAP(
            n_components=dims,
            n_neighbors=k,
            min_dist=min_dist,
            metric=params.metric,
            random_state=params.seed,
            precomputed_knn=(idx, dist, None),
            init="spectral" if n > dims + 2 else "random",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            emb = reducer.fit_transform(vectors)
        results.append(np.asarray(emb, dtype=np.float32))
        ab.append((float(reducer._a), float(reducer._b)))
    return results, ab


def _fast_fit(vectors, idx, dist, k, params, progress, parallel=True) -> tuple[list[np.ndarray], list[tuple[float, float]]]:
    """One fuzzy graph, one spectral init, two (parallel) optimisations."""
    from umap.spectral import spectral_layout
    from umap.umap_ import find_ab_params, fuzzy_simplicial_set, noisy_scale_coords, simplicial_set_embedding

    n = len(vectors)
    rs = np.random.RandomState(params.seed)
    idx, dist = idx.copy(), dist.copy()
    far = dist >= _DISCONNECTION.get(params.metric, np.inf)
    idx[far], dist[far] = -1, np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph, _, _ = fuzzy_simplicial_set(vectors, k, rs, params.metric, knn_indices=idx, knn_dists=dist)
        dims_max = max(d for d, _ in _runs(params))
        n_epochs = 500 if n <= 10_000 else 200
        if progress:
            progress(1, 4, "spectral initialisation")
        if n > dims_max + 2:
            pruned = graph.tocoo(copy=True)
            pruned.data[pruned.data < pruned.data.max() / float(n_epochs)] = 0.0
            pruned.eliminate_zeros()
            init = spectral_layout(vectors, pruned, dims_max, rs, metric=params.metric)
            init = noisy_scale_coords(init, rs, max_coord=10, noise=0.0001)
        else:
            init = rs.uniform(-10.0, 10.0, size=(n, dims_max))
        results, ab = [], []
        for step, (dims, min_dist) in enumerate(_runs(params), 2):
            if progress:
                progress(step, 4, f"UMAP to {dims}-D")
            a, b = find_ab_params(1.0, min_dist)
            emb, _ = simplicial_set_embedding(
                vectors, graph.copy(), dims, 1.0, a, b, 1.0, 5, n_epochs,
                np.ascontiguousarray(init[:, :dims], dtype=np.float32), rs, params.metric, {},
                False, {}, False, parallel=parallel,
            )
            results.append(np.asarray(emb, dtype=np.float32))
            ab.append((float(a), float(b)))
    return results, ab


def _transform(fit_vectors, index, fit_embs, ab, queries, k, params, rng_seed: int, parallel: bool) -> list[np.ndarray]:
    """Place ``queries`` into fitted embeddings (umap-learn's transform, shared kNN)."""
    import scipy.sparse
    from umap.layouts import optimize_layout_euclidean
    from umap.umap_ import compute_membership_strengths, make_epochs_per_sample, smooth_knn_dist

    m = len(queries)
    idx, dist = query_knn(fit_vectors, index, queries, k, params.metric)
    idx[dist >= _DISCONNECTION.get(params.metric, np.inf)] = -1
    sigmas, rhos = smooth_knn_dist(dist, float(k), local_connectivity=0.0)
    rows, cols, vals, _ = compute_membership_strengths(idx, dist, sigmas, rhos, bipartite=True)
    graph = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(m, len(fit_vectors))).tocsr()
    graph.eliminate_zeros()
    # Initial position: the membership-weighted mean of the neighbours (an exact copy of
    # a fit row's position where the query coincides with it).
    w = np.zeros(idx.shape, np.float64)
    ok = idx >= 0
    w[ok] = np.asarray(graph[np.nonzero(ok)[0], idx[ok]]).ravel()
    ones = w >= 1.0
    first_one = ones.any(axis=1)
    w[first_one] = ones[first_one] * (np.cumsum(ones[first_one], axis=1) == 1)
    wsum = w.sum(axis=1, keepdims=True)
    w = np.where(wsum > 0, w / np.where(wsum > 0, wsum, 1.0), 1.0 / idx.shape[1])
    safe = np.where(ok, idx, 0)
    n_epochs = 100 if m <= 10_000 else 30
    coo = graph.tocoo()
    coo.data[coo.data < coo.data.max() / float(n_epochs)] = 0.0
    coo.eliminate_zeros()
    eps = make_epochs_per_sample(coo.data, n_epochs)
    rs = np.random.RandomState(rng_seed)
    out = []
    for emb, (a, b) in zip(fit_embs, ab):
        init = np.einsum("ij,ijd->id", w, emb[safe].astype(np.float64)).astype(np.float32)
        rng_state = rs.randint(np.iinfo(np.int32).min + 1, np.iinfo(np.int32).max - 1, 3).astype(np.int64)
        res = optimize_layout_euclidean(
            np.ascontiguousarray(init), emb.astype(np.float32, copy=True), coo.row, coo.col, n_epochs, len(emb),
            eps, a, b, rng_state, 1.0, 0.25, 5, parallel=parallel,
        )
        out.append(np.asarray(res, dtype=np.float32))
    return out


def project(vectors: np.ndarray, params: ProjectParams = ProjectParams(), progress: Progress | None = None, *,
            parallel: bool | None = None) -> Projection:
    """Pure: vectors (n, d) -> 2-D and n-D coordinates.  ``parallel``: None = parallel
    optimisation when not exact and n >= PARALLEL_MIN_ROWS (True/False force it, for
    the warm-up and tests; exact is always single-threaded)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) == 0:
        raise SieveError(f"project needs a non-empty 2-D array of vectors, got shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise SieveError("vectors contain NaN or infinite values")
    n = len(vectors)
    notes: list[str] = []
    if n < MIN_UMAP_ROWS:
        notes.append(f"only {n} row(s): UMAP needs at least {MIN_UMAP_ROWS}, so PCA was used for the map")
        return Projection(_pca(vectors, 2), _pca(vectors, params.cluster_dims), notes)

    first, inverse = duplicate_groups(vectors)
    if len(first) < MIN_UMAP_ROWS:  # UMAP on a handful of distinct points is degenerate (and not deterministic)
        notes.append(f"only {len(first)} distinct vector(s) among {n:,} rows: UMAP needs at least {MIN_UMAP_ROWS}, "
                     "so PCA of the distinct vectors was used for the map (identical rows share a position)")
        distinct = np.ascontiguousarray(vectors[first])
        return Projection(_pca(distinct, 2)[inverse], _pca(distinct, params.cluster_dims)[inverse], notes)

    # never compile the same numba code twice at once (pynndescent: above EXACT_KNN_MAX_ROWS fitted rows)
    big = min(len(vectors), params.fit_sample or len(vectors)) > EXACT_KNN_MAX_ROWS
    warmup.wait_for_warmup(knn=big)
    warmup.enable_disk_cache()
    if not params.exact and gpu_available():
        return _project_gpu(vectors, params, notes)

    k = min(params.n_neighbors, n - 1)
    if k != params.n_neighbors:
        notes.append(f"n_neighbors lowered from {params.n_neighbors} to {k} for {n} rows")
    fit_rows = _fit_sample(n, params, notes)
    fit_vectors = vectors if fit_rows is None else np.ascontiguousarray(vectors[fit_rows])
    if progress:
        progress(0, 4, "nearest-neighbour graph")
    idx, dist, index = knn(fit_vectors, k, params.metric, params.seed)
    parallel = not params.exact and (n >= PARALLEL_MIN_ROWS if parallel is None else bool(parallel))
    fit = _exact_fit if params.exact else _fast_fit
    embs, ab = fit(fit_vectors, idx, dist, k, params, progress, parallel=parallel)
    del idx, dist
    if fit_rows is not None:
        embs = _place_rest(vectors, fit_rows, fit_vectors, index, embs, ab, k, params, parallel, progress)
    if progress:
        progress(4, 4, "projected")
    return Projection(embs[0], embs[1], notes, reproducible=not parallel)


def _fit_sample(n: int, params: ProjectParams, notes: list[str]) -> np.ndarray | None:
    """Sorted row indices of the seeded fit sample, or None when every row is fitted."""
    if params.fit_sample is None or n <= params.fit_sample:
        return None
    rng = np.random.default_rng(params.seed)
    fit_rows = np.sort(rng.choice(n, params.fit_sample, replace=False))
    notes.append(f"UMAP was fitted on a seeded sample of {len(fit_rows):,} of {n:,} rows; "
                 "the others were placed into that map")
    return fit_rows


def _place_rest(vectors, fit_rows, fit_vectors, index, embs, ab, k, params, parallel, progress) -> list[np.ndarray]:
    """The fitted embeddings ``embs`` of ``fit_rows`` with every other row placed into them
    (UMAP transform, in chunks of TRANSFORM_CHUNK rows): one (n, dims) float32 array per run."""
    n = len(vectors)
    rest = np.setdiff1d(np.arange(n), fit_rows)
    full = [np.zeros((n, e.shape[1]), np.float32) for e in embs]
    for f, e in zip(full, embs):
        f[fit_rows] = e
    for c, start in enumerate(range(0, len(rest), TRANSFORM_CHUNK)):
        if progress:
            progress(3, 4, f"placing rows {start:,}-{min(start + TRANSFORM_CHUNK, len(rest)):,} of {len(rest):,}")
        rows = rest[start : start + TRANSFORM_CHUNK]
        placed = _transform(fit_vectors, index, embs, ab, np.ascontiguousarray(vectors[rows]), k, params,
                            params.seed + 1 + c, parallel)
        for f, p in zip(full, placed):
            f[rows] = p
    return full


def _project_gpu(vectors: np.ndarray, params: ProjectParams, notes: list[str]) -> Projection:  # pragma: no cover
    """cuML UMAP (no GPU here to test it): two fits; cuML builds its own kNN graph."""
    from cuml.manifold import UMAP as CuUMAP

    out = []
    for dims, min_dist in _runs(params):
        reducer = CuUMAP(n_components=dims, n_neighbors=min(params.n_neighbors, len(vectors) - 1),
                         min_dist=min_dist, metric=params.metric, init="spectral")
        out.append(np.asarray(reducer.fit_transform(vectors), dtype=np.float32))
    notes.append("UMAP ran on the GPU (cuML)")
    return Projection(out[0], out[1], notes, reproducible=False)


def project_key(params: ProjectParams, embed_key: str) -> str:
    """The project artifact key of ``params`` on the embedding ``embed_key``."""
    return stage_key("project", params.key_dict(), embed_key)


def run_project(ws: Workspace, embed_key: str, params: ProjectParams = ProjectParams(),
                progress: Progress | None = None) -> tuple[str, bool]:
    """Project the embedding artifact ``embed_key``; returns (key, cached)."""
    key = project_key(params, embed_key)
    if ws.has_artifact("project", key):
        return key, True
    row_ids, vectors = load_embeddings(ws, embed_key)
    proj = project(np.asarray(vectors), params, progress)
    ws.save_artifact(
        "project", key, {"xy": proj.xy, "xnd": proj.xnd, "row_ids": np.asarray(row_ids)},
        {"parent": embed_key, "params": params, "notes": proj.notes, "reproducible": proj.reproducible},
    )
    return key, False


def run(ws: Workspace, inputs: str, params: ProjectParams = ProjectParams(),
        progress: Progress | None = None) -> StageResult:
    """:func:`run_project` of the embedding ``inputs`` (its key) as a StageResult."""
    key, cached = run_project(ws, inputs, params, progress)
    return stage_result(ws, "project", key, cached)
