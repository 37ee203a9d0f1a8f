"""Every map stage's ``run(ws, inputs, params)`` returns one StageResult type (core.stages.base)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.stages import cluster, embed, naming, project
from core.stages.base import StageResult
from core.store.workspace import SieveError


def test_each_stage_returns_the_artifact_the_map_built_with_its_lineage(sieve_fake_map):
    ws, keys, p = sieve_fake_map.ws, sieve_fake_map.keys, sieve_fake_map.params
    e = embed.run(ws, None, p.embed, encoder=sieve_fake_map.encoder)
    pr = project.run(ws, e.key, p.project)
    c = cluster.run(ws, pr.key, p.cluster)
    n = naming.run(ws, (c.key, e.key), p.label)
    results = [e, pr, c, n]
    assert all(type(r) is StageResult for r in results)
    assert [r.stage for r in results] == ["embed", "project", "cluster", "label"]
    assert [r.key for r in results] == [keys.embed, keys.project, keys.cluster, keys.label]
    assert all(r.cached for r in results)  # the map already built every artifact
    # lineage: each sidecar names the artifact it was computed from
    assert (e.parent, pr.parent, c.parent) == (keys.dataset, keys.embed, keys.project)
    assert e.meta["model_id"] == keys.model_id and e.meta["n_rows"] == len(sieve_fake_map.data.row_ids)


def test_a_new_params_computes_once_then_is_cached(sieve_fake_map):
    ws, keys, p = sieve_fake_map.ws, sieve_fake_map.keys, sieve_fake_map.params
    params = replace(p.cluster, min_cluster_size=p.cluster.min_cluster_size + 7 if p.cluster.min_cluster_size else 12)
    first = cluster.run(ws, keys.project, params)
    again = cluster.run(ws, keys.project, params)
    assert not first.cached and again.cached and first.key == again.key != keys.cluster
    assert first.meta == again.meta and first.parent == keys.project


def test_an_unknown_input_key_is_a_one_line_error(sieve_fake_map):
    with pytest.raises(SieveError):
        project.run(sieve_fake_map.ws, "0" * 16, sieve_fake_map.params.project)
