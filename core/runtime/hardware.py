"""What this machine offers: the CPU cores this process may use and whether a GPU can run cuML."""

from __future__ import annotations

import importlib.util
import os

_gpu: bool | None = None


def usable_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by ``OMP_NUM_THREADS`` when
    set (Ray sets it to each worker's CPUs, so two workers on two cores do not each start
    two threads)."""
    try:
        n = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        n = max(1, os.cpu_count() or 1)
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) > 0:
        n = min(n, int(omp))
    return n


def gpu_available() -> bool:
    """True when cuML imports and a CUDA device is present (``SIEVE_NO_GPU=1``: never)."""
    global _gpu
    if os.environ.get("SIEVE_NO_GPU"):
        return False
    if _gpu is None:
        _gpu = False
        if importlib.util.find_spec("cuml") is not None:
            try:  # pragma: no cover - no GPU in CI
                import cupy

                _gpu = cupy.cuda.runtime.getDeviceCount() > 0
            except Exception:
                _gpu = False
    return _gpu
