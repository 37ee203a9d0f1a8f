"""The CLI's map options (core.cli.options, core.cli.parse) reach the cluster params (issue 16)."""

from __future__ import annotations

from types import SimpleNamespace

from core.stages.cluster import DEFAULT_ASSIGN_NOISE


def test_cli_options_reach_the_cluster_params():
    from core.cli.options import MAP
    from core.cli.parse import map_params

    assert MAP["assign_noise"].default == DEFAULT_ASSIGN_NOISE and MAP["keep_noise"].default is False
    base = {o.name: o.default for o in MAP.values()} | {"model": "sentence-transformers/all-MiniLM-L6-v2",
                                                           "device": "cpu", "batch_size": 8, "backend": "torch"}
    assert map_params(SimpleNamespace(**base), 1).cluster.assign_noise == 0.02
    assert map_params(SimpleNamespace(**{**base, "assign_noise": 0.1}), 1).cluster.assign_noise == 0.1
    assert map_params(SimpleNamespace(**{**base, "keep_noise": True}), 1).cluster.assign_noise is None
