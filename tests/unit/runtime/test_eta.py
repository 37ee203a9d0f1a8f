"""core.runtime.eta: first-map time estimates from the row count and a throughput table."""

from __future__ import annotations

from core.runtime.eta import (
    COMPILE_S,
    PREPARE_MODEL_S,
    embed_rate,
    estimate_map_seconds,
    human_seconds,
    remaining_seconds,
)


def test_estimate_grows_with_rows_and_pending_one_time_costs():
    base = estimate_map_seconds(3_000, "onnx-int8")
    assert estimate_map_seconds(30_000, "onnx-int8") > 5 * base / 2
    assert estimate_map_seconds(3_000, "torch") > base  # fp32 embeds slower than int8
    assert estimate_map_seconds(3_000, "onnx-int8", model_ready=False) == base + PREPARE_MODEL_S
    assert estimate_map_seconds(3_000, "torch", model_ready=False) == estimate_map_seconds(3_000, "torch")
    assert estimate_map_seconds(3_000, "onnx-int8", compiled=False) == base + COMPILE_S
    assert estimate_map_seconds(3_000, "onnx-int8", embedded=True) < base
    assert estimate_map_seconds(3_000, "onnx-int8", cores=8) < base
    assert embed_rate("torch", gpu=True) > embed_rate("torch", cores=16)


def test_remaining_is_measured_throughput_and_human_text():
    assert remaining_seconds(0, 100, 5.0) is None
    assert remaining_seconds(25, 100, 10.0) == 30.0
    assert remaining_seconds(100, 100, 10.0) == 0.0
    assert human_seconds(3) == "about 5 s" and human_seconds(41) == "about 45 s"
    assert human_seconds(61) == "about 2 min" and human_seconds(7200) == "about 2.0 h"
