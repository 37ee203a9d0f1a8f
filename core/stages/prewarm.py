"""The map stages' warm-up tasks, run in the background by :func:`core.runtime.warmup.start_warmup`.

Each compiles a stage's numba code (UMAP, pynndescent, HDBSCAN) on a tiny synthetic array,
or prepares the default model, so a user's first map does not pay for it.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from core.encoders.models import DEFAULT_MODEL
from core.encoders.onnx import export_onnx
from core.encoders.registry import resolve_backend
from core.runtime.warmup import enable_disk_cache, start_warmup
from core.stages.cluster import ClusterParams, cluster
from core.stages.knn import nndescent, query_knn
from core.stages.project import ProjectParams, project


def tiny_vectors(n: int = 300, dims: int = 16) -> np.ndarray:
    """(n, dims) float32 unit vectors around 4 random centres (seed 0): the warm-up's input."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, dims))
    v = (centres[rng.integers(0, 4, n)] + 0.3 * rng.standard_normal((n, dims))).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def warm_up(n: int = 300, dims: int = 16, *, knn: bool = True) -> None:
    """Compile the map's numba code paths on a tiny synthetic array (a few seconds with a
    warm disk cache; 20-60 s cold); ``knn``: also pynndescent (:func:`warm_knn`)."""
    enable_disk_cache()
    v = tiny_vectors(n, dims)
    # the default path (parallel and single-threaded kernels), with the fit-on-a-sample
    # branch, then the exact path
    p = project(v, ProjectParams(fit_sample=n // 2), parallel=True)
    project(v, ProjectParams(fit_sample=n // 2), parallel=False)
    project(v[: n // 2], ProjectParams(exact=True))
    cluster(p.xnd, ClusterParams())
    if knn:
        warm_knn(v)


def warm_knn(v: np.ndarray | None = None) -> None:
    """Compile pynndescent, the kNN of maps above EXACT_KNN_MAX_ROWS rows and of the
    placement queries.  Its kernels take the distance function as an argument, so numba's
    disk cache cannot keep them across processes: each process compiles them (about 25 s
    on the 2-core machine, which the first large map used to pay)."""
    v = tiny_vectors() if v is None else v
    metric = ProjectParams().metric
    _, _, index = nndescent(v, 15, metric, 0)
    query_knn(v, index, v[:20], 15, metric)


def prepare_default_model() -> bool:
    """Export and quantize the default model for the "onnx-int8" backend once (cached
    under the Sieve cache dir; :func:`core.encoders.onnx.export_onnx`), when that is what
    ``backend="auto"`` means here.  ``SIEVE_NO_PREPARE_MODEL=1`` skips it.  True if the
    model is ready (or not needed)."""
    if os.environ.get("SIEVE_NO_PREPARE_MODEL"):
        return False
    if resolve_backend("auto", "auto") != "onnx-int8":
        return True
    export_onnx(DEFAULT_MODEL)
    return True


def start_background_warmup() -> threading.Thread:
    """Start (once per process) the background warm-up: the default model, then the map's
    numba code, then pynndescent (:func:`core.runtime.warmup.start_warmup`)."""
    return start_warmup(prepare_default_model, lambda: warm_up(knn=False), warm_knn)
