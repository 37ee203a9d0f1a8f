"""core.stages.cluster: ClusterParams and the map's defaults (issue 16): min_cluster_size
~sqrt(n)/4, min_samples min(mcs, 5), and noise rows joining their most likely cluster at soft
membership >= 0.02 -- while a params dict without ``auto_rule`` / ``assign_noise`` (every map
made before) keeps the old rule, no joining and its cache key; noise, relabelling by size, the
algorithm's inputs, and clustering a sample then assigning the rest.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from core.engines.local import MapParams
from core.engines.ray.map import ScaleMapParams
from core.stages.cluster import (DEFAULT_ASSIGN_NOISE, LEGACY_CLUSTER, NOISE, ClusterParams, cluster, cluster_key,
                                 default_min_cluster_size, default_min_samples, relabel_by_size)
from core.store.workspace import SieveError
from tests.builders import separated_blobs as _blobs


OLD = {"min_cluster_size": None, "min_samples": None, "method": "eom", "epsilon": 0.0}


def _blobs_and_strays(seed=3):
    """Three tight 5-D blobs of 250 rows and 15 stragglers around each (row order: blobs, strays)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0] * 5, [6.0] * 5, [-6.0, 6.0, -6.0, 6.0, -6.0]])
    pts = np.concatenate([rng.normal(c, 0.35, (250, 5)) for c in centres] + [c + rng.normal(0, 3.5, (15, 5))
                                                                          for c in centres])
    truth = np.concatenate([np.full(250, i) for i in range(3)] + [np.full(15, i) for i in range(3)])
    return pts, truth


def test_new_rule_halves_min_cluster_size_and_caps_min_samples_at_5():
    p = ClusterParams()
    assert p.auto_rule == 2 and p.assign_noise == DEFAULT_ASSIGN_NOISE == 0.02
    r = p.resolved(10_003)
    assert (r.min_cluster_size, r.min_samples) == (25, 5)
    assert (ClusterParams().resolved(1069).min_cluster_size, ClusterParams().resolved(2942).min_cluster_size) == (8, 14)
    old = ClusterParams.from_dict(OLD).resolved(10_003)
    assert (old.min_cluster_size, old.min_samples) == (50, 10)
    # explicit values win under either rule
    assert ClusterParams(min_cluster_size=7, auto_rule=1).resolved(10_003).min_samples == 7
    assert ClusterParams(min_cluster_size=40, min_samples=3).resolved(10_003).min_samples == 3
    for n in (0, 10, 999, 10**5, 10**8):
        assert default_min_cluster_size(n) <= default_min_cluster_size(n, rule=1)
        assert 5 <= default_min_cluster_size(n) <= 1000
    assert default_min_samples(3) == 3 and default_min_samples(25) == 5 and default_min_samples(25, rule=1) == 10


def test_old_params_dict_means_the_old_rule_no_joining_and_the_same_key():
    p = ClusterParams.from_dict(OLD)
    assert p.auto_rule == LEGACY_CLUSTER["auto_rule"] == 1 and p.assign_noise is None
    kd = p.key_dict()
    assert "auto_rule" not in kd and "assign_noise" not in kd
    # the key of an old map equals the one computed from its dict with the legacy fields spelled out
    spelled = ClusterParams.from_dict({**OLD, "auto_rule": 1, "assign_noise": None})
    assert cluster_key(p, "pk") == cluster_key(spelled, "pk")
    assert cluster_key(ClusterParams(), "pk") != cluster_key(ClusterParams(assign_noise=None), "pk") \
        != cluster_key(ClusterParams(auto_rule=1), "pk")
    # a new map's params record both fields, so it replays with them
    d = json.loads(json.dumps(MapParams().to_dict()))
    assert d["cluster"]["auto_rule"] == 2 and d["cluster"]["assign_noise"] == DEFAULT_ASSIGN_NOISE
    assert MapParams.from_dict(d).cluster == ClusterParams()
    for k in ("auto_rule", "assign_noise"):
        del d["cluster"][k]
    old = MapParams.from_dict(d).cluster
    assert old.auto_rule == 1 and old.assign_noise is None


def test_joining_moves_only_noise_rows_at_or_above_the_threshold():
    pts, truth = _blobs_and_strays()
    kept = cluster(pts, ClusterParams(min_cluster_size=40, min_samples=25, assign_noise=None))
    joined = cluster(pts, ClusterParams(min_cluster_size=40, min_samples=25))
    noise = kept.labels == NOISE
    assert noise.sum() >= 5 and kept.n_clusters == joined.n_clusters == 3
    move = noise & (kept.soft_strength >= 0.02)
    assert move.any()
    # rows HDBSCAN clustered keep their cluster (the same partition), noise rows below the threshold stay noise
    assert (joined.labels[~noise] != NOISE).all() and (joined.labels[noise & ~move] == NOISE).all()
    pairs = set(zip(kept.labels[~noise].tolist(), joined.labels[~noise].tolist()))
    assert len(pairs) == 3
    rename = dict(pairs)
    # a moved row lands in its soft cluster, with that membership as its strength
    assert all(joined.labels[i] == rename[int(kept.soft_labels[i])] for i in np.nonzero(move)[0])
    np.testing.assert_allclose(joined.strength[move], kept.soft_strength[move])
    assert (joined.soft_labels[joined.labels != NOISE] == joined.labels[joined.labels != NOISE]).all()
    # ids still 0..k-1 by decreasing size; the note says how many moved
    sizes = np.bincount(joined.labels[joined.labels != NOISE])
    assert (np.diff(sizes) <= 0).all()
    assert any(f"{int(move.sum()):,} of {int(noise.sum()):,} unclustered rows joined" in n for n in joined.notes)
    # the stragglers mostly land in their own blob
    blob_of = {c: np.bincount(truth[joined.labels == c]).argmax() for c in range(3)}
    assert np.mean([blob_of[c] == t for c, t in zip(joined.labels[move], truth[move])]) >= 0.8
    # threshold 0: every noise row with a soft cluster joins; 1: (almost) none does
    everyone = cluster(pts, ClusterParams(min_cluster_size=40, min_samples=25, assign_noise=0.0))
    assert (everyone.labels != NOISE).all()
    strict = cluster(pts, ClusterParams(min_cluster_size=40, min_samples=25, assign_noise=1.0))
    assert (strict.labels == NOISE).sum() == int((noise & (kept.soft_strength < 1.0)).sum())


def test_no_soft_membership_means_no_joining_and_a_note():
    pts, _ = _blobs_and_strays()
    off = cluster(pts, ClusterParams(min_cluster_size=40, min_samples=25, soft=False))
    kept = cluster(pts, ClusterParams(min_cluster_size=40, min_samples=25, assign_noise=None))
    np.testing.assert_array_equal(off.labels, kept.labels)
    assert any("not joined" in n for n in off.notes)
    sample = cluster(pts, ClusterParams(min_cluster_size=40, min_samples=25, fit_sample=400))
    assert (sample.labels == NOISE).any() and any("not joined" in n for n in sample.notes)
    # the sharded (Ray) map has no soft membership: its params never claim a joining
    assert ScaleMapParams().cluster.assign_noise is None
    assert ScaleMapParams(cluster=ClusterParams(assign_noise=0.3)).cluster.assign_noise is None


@pytest.mark.parametrize("value", [-0.01, 1.01, True, "0.1"])
def test_bad_assign_noise_is_named(value):
    with pytest.raises(SieveError, match="assign_noise"):
        ClusterParams(assign_noise=value)


def test_old_cluster_params_mean_hdbscan_and_keep_their_key():
    old = {"min_cluster_size": None, "min_samples": None, "method": "eom", "epsilon": 0.0}
    p = ClusterParams.from_dict(old)
    assert p.algorithm == "hdbscan"
    assert "algorithm" not in p.key_dict() and "algorithm" not in ClusterParams().key_dict()
    assert cluster_key(p, "pk") == cluster_key(ClusterParams.from_dict({**old, "algorithm": "hdbscan"}), "pk")
    assert cluster_key(ClusterParams(algorithm="leiden"), "pk") != cluster_key(ClusterParams(), "pk")
    with pytest.raises(SieveError, match="cluster algorithm"):
        ClusterParams(algorithm="kmeans")


def test_vector_algorithms_need_the_vectors():
    pts, _, _ = _blobs()
    with pytest.raises(SieveError, match="needs the embedding vectors"):
        cluster(pts, ClusterParams(algorithm="leiden"))


def _ari(a, b) -> float:
    return adjusted_rand_score(np.asarray(a), np.asarray(b))


def test_cluster_on_a_sample_then_assign_agrees_with_a_full_fit():
    rng = np.random.default_rng(5)
    centres = rng.uniform(-10, 10, (5, 5))
    pts = np.concatenate([c + rng.normal(0, 0.5, (700, 5)) for c in centres] + [rng.uniform(-12, 12, (100, 5))])
    # assign_noise=None: HDBSCAN's own noise on both paths (the sample path has no soft membership to join by)
    full = cluster(pts, ClusterParams(min_cluster_size=60, assign_noise=None))
    part = cluster(pts, ClusterParams(min_cluster_size=60, fit_sample=1000, assign_noise=None))
    assert full.n_clusters == part.n_clusters == 5
    assert any("sample of 1,000 of 3,600 rows" in n for n in part.notes)
    clustered = (full.labels != NOISE) & (part.labels != NOISE)
    print(f"ARI sample-fit-assign vs full: {_ari(part.labels, full.labels):.3f} "
          f"(clustered rows {_ari(part.labels[clustered], full.labels[clustered]):.3f})")
    assert _ari(part.labels, full.labels) >= 0.9
    assert ((part.strength >= 0) & (part.strength <= 1)).all()
    # soft membership: auto (on) for the full fit; not available on a sample, said so
    assert full.params.soft is True and (full.soft_labels[full.labels == NOISE] >= 0).all()
    np.testing.assert_array_equal(part.soft_labels, part.labels)
    off = cluster(pts, ClusterParams(min_cluster_size=60, soft=False, assign_noise=None))
    np.testing.assert_array_equal(off.labels, full.labels)
    np.testing.assert_array_equal(off.soft_labels, off.labels)


def test_cluster_marks_scattered_points_as_noise():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0]], float)
    blobs = np.concatenate([c + 0.3 * rng.standard_normal((60, 3)) for c in centres])
    outliers = rng.uniform(-30, 40, size=(25, 3))
    outliers = outliers[np.min(np.linalg.norm(outliers[:, None] - centres[None], axis=2), axis=1) > 5]
    pts = np.concatenate([blobs, outliers])
    res = cluster(pts, ClusterParams(min_cluster_size=10))
    assert len(res.labels) == len(pts)  # noise is never dropped
    assert res.n_clusters == 3
    assert (res.labels[180:] == NOISE).mean() >= 0.8
    assert (res.labels[:180] != NOISE).mean() >= 0.95
    assert adjusted_rand_score(np.repeat([0, 1, 2], 60), res.labels[:180]) > 0.95
    assert res.strength.shape == (len(pts),)


def test_default_min_cluster_size():
    # the default rule (auto_rule 2, issue 16): about sqrt(n)/4; rule 1 (older maps): sqrt(n)/2
    assert default_min_cluster_size(0) == 5
    assert default_min_cluster_size(50) == 5
    assert default_min_cluster_size(600) == 6
    assert default_min_cluster_size(3000) == 14
    assert default_min_cluster_size(50_000) == 56
    assert default_min_cluster_size(10**9) == 1000
    assert [default_min_cluster_size(n, rule=1) for n in (0, 50, 600, 3000, 50_000, 10**9)] == [5, 5, 12, 27, 112, 1000]
    rng = np.random.default_rng(1)
    res = cluster(rng.standard_normal((400, 3)), ClusterParams())
    assert res.params.min_cluster_size == default_min_cluster_size(400) == 5
    assert res.params.min_samples == 5
    assert ClusterParams(min_cluster_size=4).resolved(400).min_samples == 4


def test_real_map_used_the_default_min_cluster_size(sieve_real_map):
    _, meta = sieve_real_map.ws.load_artifact("cluster", sieve_real_map.keys.cluster)
    assert meta["resolved_params"]["min_cluster_size"] == default_min_cluster_size(sieve_real_map.table.num_rows)
    assert meta["params"]["min_cluster_size"] is None


@given(st.lists(st.integers(min_value=-1, max_value=6), max_size=80))
@settings(max_examples=150, deadline=None)
def test_relabel_by_size(raw):
    raw = np.asarray(raw, dtype=np.int64)
    out = relabel_by_size(raw)
    assert len(out) == len(raw)
    assert ((out == NOISE) == (raw == NOISE)).all()
    if (raw >= 0).any():
        assert adjusted_rand_score(raw[raw >= 0], out[raw >= 0]) == pytest.approx(1.0)
    sizes = [int((out == c).sum()) for c in range(len(set(out.tolist()) - {NOISE}))]
    assert sizes == sorted(sizes, reverse=True) and all(s > 0 for s in sizes)
