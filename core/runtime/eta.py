"""Time estimates for computing a map, so the app can say "about 40 s" from the row
count and measured throughput instead of a fixed promise.

Before a run, :func:`estimate_map_seconds` adds up the stages from a small table of
throughputs measured with ``bench/`` (bench/RESULTS.md: embedding rates of short
prompts per backend on a 2-core CPU, the UMAP projection's fixed and per-row cost, and
the one-time costs of a new machine: the int8 ONNX export and numba's compilation).
During a run, :func:`remaining_seconds` extrapolates the throughput measured so far.
Texts are embedded longest first, so both lean towards overestimating.
"""

from __future__ import annotations

import math

# Texts per second with 2 CPU cores (short prompts; bench/RESULTS.md, "Ray engine
# throughput" and the embedding harness runs): scaled by the cores available.
EMBED_TEXTS_PER_S_2CORES = {"onnx-int8": 400.0, "torch": 190.0, "static": 20_000.0}
GPU_TEXTS_PER_S = 3_000.0  # torch on a GPU: not measured here, a conservative figure
# UMAP (seconds = fixed + per row; the sample's 3,000 rows took 11 s, 50,000 rows 68 s).
PROJECT_FIXED_S, PROJECT_PER_ROW_S = 7.7, 1.2e-3
CLUSTER_LABEL_S = 2.0  # HDBSCAN and the names (about 1 s each on the sample)
PREPARE_MODEL_S = 30.0  # the one-time int8 ONNX export (bench.first_map: 12-34 s)
COMPILE_S = 40.0  # numba's one-time compilation of UMAP/HDBSCAN without a warm disk cache


def embed_rate(backend: str, *, cores: int = 2, gpu: bool = False) -> float:
    """Texts per second of ``backend`` ("onnx-int8", "torch", "static") on ``cores`` CPU
    cores, or on a GPU with ``gpu``."""
    if gpu and backend == "torch":
        return GPU_TEXTS_PER_S
    return EMBED_TEXTS_PER_S_2CORES.get(backend, EMBED_TEXTS_PER_S_2CORES["torch"]) * max(1, cores) / 2


def estimate_map_seconds(n_texts: int, backend: str, *, cores: int = 2, gpu: bool = False,
                         embedded: bool = False, model_ready: bool = True, compiled: bool = True) -> float:
    """Seconds to compute a map of ``n_texts`` distinct texts: embedding (skipped when
    ``embedded``), projection, clustering and names, plus the one-time model export
    (``model_ready`` false, onnx-int8 only) and compilation (``compiled`` false)."""
    s = PROJECT_FIXED_S + PROJECT_PER_ROW_S * n_texts + CLUSTER_LABEL_S
    if not embedded:
        s += n_texts / embed_rate(backend, cores=cores, gpu=gpu)
        if backend == "onnx-int8" and not model_ready:
            s += PREPARE_MODEL_S
    if not compiled:
        s += COMPILE_S
    return s


def remaining_seconds(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left at the throughput measured so far (None before the first item)."""
    if done <= 0 or elapsed <= 0:
        return None
    return max(0.0, elapsed / done * (total - done))


def human_seconds(seconds: float) -> str:
    """'about 40 s', 'about 3 min', 'about 1.5 h' (rounded up a little)."""
    if seconds < 60:
        return f"about {max(5, int(math.ceil(seconds / 5) * 5))} s"
    if seconds < 5400:
        return f"about {int(math.ceil(seconds / 60))} min"
    return f"about {seconds / 3600:.1f} h"
