"""core.encoders.registry: the "auto" backend resolves by device and by whether onnxruntime is there."""

from __future__ import annotations

from core.encoders import registry as R
from core.stages.embed import EmbedParams
from core.encoders.registry import resolve_backend


def test_auto_resolves_by_device_and_onnxruntime(monkeypatch):
    assert resolve_backend("auto", "cpu") == "onnx-int8"  # onnxruntime is a dependency
    assert resolve_backend("auto", "cuda") == "torch"
    assert resolve_backend("auto", "mps") == "torch"
    assert resolve_backend("auto", "auto") == "onnx-int8"  # no GPU here
    for explicit in ("torch", "onnx-int8", "static"):
        assert resolve_backend(explicit, "cpu") == explicit
        assert EmbedParams(backend=explicit).resolved().backend == explicit
    assert EmbedParams(device="cpu").resolved() == EmbedParams(device="cpu", backend="onnx-int8")
    monkeypatch.setattr(R, "onnxruntime_available", lambda: False)
    assert resolve_backend("auto", "cpu") == "torch"
    assert EmbedParams(device="cpu").resolved().backend == "torch"
