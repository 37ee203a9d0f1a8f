"""core.runtime.hardware: the usable cores follow OMP_NUM_THREADS (a Ray worker's CPUs)."""

from __future__ import annotations


def test_onnx_threads_follow_omp_num_threads(monkeypatch):
    """A Ray worker (OMP_NUM_THREADS = its CPUs) runs ONNX Runtime on that many threads,
    not on every core of the node."""
    from core.runtime.hardware import usable_cores

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    every = usable_cores()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert usable_cores() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", str(every + 8))
    assert usable_cores() == every
    monkeypatch.setenv("OMP_NUM_THREADS", "not-a-number")
    assert usable_cores() == every
