"""core.stages.project: parallel UMAP (shared graph + spectral init) vs the exact seeded path,
fitting on a sample then placing the rest, small inputs and seeded determinism.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from core.stages import project as P
from core.stages.cluster import cluster
from core.stages.project import MIN_UMAP_ROWS, ProjectParams, project
from tests.fakes import blobs_on_sphere


SIZES = (260, 220, 200, 180, 160, 140)  # 1160 rows, 6 well-separated clusters


def _blobs(dim: int = 32, seed: int = 0):
    centers = np.random.default_rng(100 + seed).standard_normal((len(SIZES), dim))
    v = blobs_on_sphere(centers, SIZES, spread=0.06, seed=seed).astype(np.float32)
    truth = np.repeat(np.arange(len(SIZES)), SIZES)
    return v, truth


@pytest.fixture(scope="module")
def blobs():
    return _blobs()


@pytest.fixture(scope="module")
def exact_map(blobs):
    return project(blobs[0], ProjectParams(exact=True))


def _ari(a, b) -> float:
    return adjusted_rand_score(np.asarray(a), np.asarray(b))


def test_parallel_and_exact_maps_give_the_same_clusters(blobs, exact_map):
    v, truth = blobs
    fast = project(v, ProjectParams(), parallel=True)  # parallel even at this size
    assert not fast.reproducible and exact_map.reproducible
    assert fast.xy.shape == (len(v), 2) and fast.xnd.shape == (len(v), 5) and np.isfinite(fast.xnd).all()
    lf, le = cluster(fast.xnd).labels, cluster(exact_map.xnd).labels
    print(f"ARI parallel vs exact {_ari(lf, le):.3f}; vs truth {_ari(lf, truth):.3f} / {_ari(le, truth):.3f}")
    assert _ari(lf, le) >= 0.9
    assert _ari(lf, truth) >= 0.9 and _ari(le, truth) >= 0.9


def test_exact_path_is_bit_identical_and_small_fast_maps_are_deterministic(blobs, exact_map):
    v, _ = blobs
    again = project(v, ProjectParams(exact=True))
    np.testing.assert_array_equal(again.xy, exact_map.xy)
    np.testing.assert_array_equal(again.xnd, exact_map.xnd)
    # below PARALLEL_MIN_ROWS the shared-graph path runs single-threaded and seeded
    assert len(v) < P.PARALLEL_MIN_ROWS
    a, b = project(v, ProjectParams()), project(v, ProjectParams())
    assert a.reproducible and b.reproducible
    np.testing.assert_array_equal(a.xy, b.xy)
    np.testing.assert_array_equal(a.xnd, b.xnd)
    assert not np.array_equal(a.xnd, exact_map.xnd)  # it really is the other path


def test_fit_on_a_sample_then_place_the_rest_agrees_with_a_full_fit(blobs, exact_map):
    v, truth = blobs
    sampled = project(v, ProjectParams(fit_sample=400))
    assert any("sample of 400 of 1,160 rows" in n for n in sampled.notes)
    assert np.isfinite(sampled.xy).all() and np.isfinite(sampled.xnd).all()
    full_labels = cluster(exact_map.xnd).labels
    ls = cluster(sampled.xnd).labels
    assert _ari(ls, full_labels) >= 0.9 and _ari(ls, truth) >= 0.9
    # the exact path on a sample is still bit-reproducible
    e1 = project(v, ProjectParams(exact=True, fit_sample=400))
    e2 = project(v, ProjectParams(exact=True, fit_sample=400))
    np.testing.assert_array_equal(e1.xnd, e2.xnd)
    assert _ari(cluster(e1.xnd).labels, full_labels) >= 0.9


def test_small_input_lowers_n_neighbors_with_a_note():
    v = np.random.default_rng(0).standard_normal((12, 6)).astype(np.float32)
    p = project(v, ProjectParams(n_neighbors=15))
    assert p.xy.shape == (12, 2)
    assert any("n_neighbors lowered from 15 to 11" in note for note in p.notes)
    assert MIN_UMAP_ROWS <= 12


def test_projection_is_deterministic_for_a_seed(sieve_fake_map):
    v = np.asarray(sieve_fake_map.data.vectors)[:150]
    a = project(v, ProjectParams(seed=7))
    b = project(v, ProjectParams(seed=7))
    np.testing.assert_array_equal(a.xy, b.xy)
    np.testing.assert_array_equal(a.xnd, b.xnd)
    assert a.xnd.shape == (150, 5)
    c1, c2 = cluster(a.xnd), cluster(b.xnd)
    np.testing.assert_array_equal(c1.labels, c2.labels)
