"""cluster_choice='coverage' (core.selection.cluster_cover): when the budget cannot give every
cluster a row, the clusters that get one are chosen by weighted facility location over the
cluster medoids instead of by size; 'size' (and every manifest without the field) is unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from core.engines.base import refusals
from core.selection import SelectParams, allocate, select
from core.selection.allocate import rechoose_singles
from core.selection.cluster_cover import cluster_medoids, cover_clusters
from core.store.workspace import SieveError


def grouped_clusters(seed: int = 0, d: int = 16):
    """30 big clusters in 3 tight families of 10 (near-identical directions), then 10 small,
    distinct clusters.  Returns (vectors (n, d) float32, labels (n,), family per cluster)."""
    rng = np.random.default_rng(seed)
    vecs, labels, family = [], [], []
    for g in range(3):
        base = rng.normal(size=d) * 5
        for _ in range(10):
            c = base + rng.normal(size=d) * 0.3
            vecs.append(c + rng.normal(size=(100, d)) * 0.1)
            labels += [len(family)] * 100
            family.append(g)
    for j in range(10):
        c = rng.normal(size=d) * 5
        vecs.append(c + rng.normal(size=(10, d)) * 0.1)
        labels += [len(family)] * 10
        family.append(3 + j)
    return np.vstack(vecs).astype(np.float32), np.asarray(labels), np.asarray(family)


def coverage_value(reps, weights, chosen) -> float:
    """The weighted facility-location value of a set of cluster indices over every cluster."""
    s = np.maximum(reps @ reps[list(chosen)].T, 0.0)
    return float((weights * s.max(axis=1)).sum())


def run(labels, vectors, **kw):
    return select(labels, np.arange(len(labels), dtype=np.int64), SelectParams(**kw), vectors=vectors)


def test_coverage_choice_covers_better_than_size_order_on_families_of_clusters():
    x, labels, family = grouped_clusters()
    clusters = sorted(set(labels.tolist()))
    members = {c: np.flatnonzero(labels == c) for c in clusters}
    reps = cluster_medoids(x, members, clusters)
    weights = np.sqrt([len(members[c]) for c in clusters])
    by = {ch: run(labels, x, budget=8, policy="sqrt", pick="facility", cluster_choice=ch) for ch in ("size", "coverage")}
    chosen = {ch: sorted(set(s.clusters.tolist())) for ch, s in by.items()}
    # size order spends all 8 rows on one family of look-alike clusters; coverage reaches every family
    assert len(set(family[chosen["size"]])) == 1
    assert set(family[chosen["coverage"]]) >= {0, 1, 2}
    assert coverage_value(reps, weights, chosen["coverage"]) > coverage_value(reps, weights, chosen["size"])
    # and the in-cluster pick still runs: one facility row in each chosen cluster
    s = by["coverage"]
    assert len(s) == 8 and len(chosen["coverage"]) == 8 and set(s.reasons) == {"facility"}
    assert s.stats["clusters_chosen_by_coverage"] == 8 and any("by coverage" in n for n in s.notes)


def test_greedy_is_at_least_as_good_as_any_size_prefix_and_deterministic():
    rng = np.random.default_rng(3)
    reps = rng.normal(size=(40, 8)).astype(np.float32)
    reps /= np.linalg.norm(reps, axis=1, keepdims=True)
    w = rng.uniform(1, 5, 40)
    for k in (1, 3, 7, 15):
        got = cover_clusters(reps, w, np.zeros(40, bool), list(range(40)), k)
        assert len(got) == k == len(set(got))
        assert got == cover_clusters(reps, w, np.zeros(40, bool), list(range(40)), k)
        assert coverage_value(reps, w, got) >= coverage_value(reps, w, range(k)) - 1e-9
    # anchored clusters are covered already: a flexible twin of an anchor gains nothing
    twin = np.vstack([reps, reps[:1]])
    anchor = np.zeros(41, bool)
    anchor[0] = True
    assert 40 not in cover_clusters(twin, np.r_[w, w[0]], anchor, list(range(1, 41)), 5)


@pytest.mark.parametrize("budget", [1, 5, 13, 29, 39])
def test_budget_sums_and_repeats_exactly(budget):
    x, labels, _ = grouped_clusters(seed=1)
    a = run(labels, x, budget=budget, policy="sqrt", pick="facility", seed=4, cluster_choice="coverage")
    b = run(labels, x, budget=budget, policy="sqrt", pick="facility", seed=4, cluster_choice="coverage")
    assert np.array_equal(a.positions, b.positions) and len(a) == budget == sum(a.allocation.values())
    assert max(a.allocation.values()) <= 1 and len(set(a.clusters.tolist())) == budget


def test_size_choice_and_large_budgets_are_unchanged():
    x, labels, _ = grouped_clusters(seed=2)
    plain = run(labels, x, budget=8, policy="sqrt", pick="facility")
    assert np.array_equal(plain.positions, run(labels, x, budget=8, policy="sqrt", pick="facility",
                                               cluster_choice="size").positions)
    # a budget that gives every cluster its rows by share leaves nothing to choose
    big = [run(labels, x, budget=400, policy="sqrt", pick="facility", cluster_choice=ch) for ch in ("size", "coverage")]
    assert np.array_equal(big[0].positions, big[1].positions)


def test_floors_and_overrides_anchor_and_the_total_holds():
    sizes = {c: 10 for c in range(12)}
    picks = []

    def choose(w, anchored, flexible, k):
        picks.append((anchored, flexible, k))
        return flexible[-k:]  # the opposite of the size order

    alloc = allocate(sizes, 6, "equal", lower={0: 2}, fixed={1: 1}, choose=choose)
    anchored, flexible, k = picks[0]
    assert 0 in anchored and 1 in anchored and 0 not in flexible and 1 not in flexible
    assert alloc.total == 6 and alloc.counts[0] >= 2 and alloc.counts[1] == 1
    assert sorted(c for c in flexible if alloc.counts[c]) == sorted(flexible[-k:])
    with pytest.raises(SieveError, match="cluster choice"):
        rechoose_singles({0: 0.5, 1: 0.5}, {0: 1, 1: 0}, {0: 0, 1: 0}, {0: 5, 1: 5}, {}, {0: 1, 1: 1},
                         lambda *a: [0, 1])


def test_manifest_gating_token_budgets_vectors_and_ray():
    p = SelectParams(budget=5, pick="facility", cluster_choice="coverage")
    assert p.to_dict()["cluster_choice"] == "coverage" and SelectParams.from_dict(p.to_dict()) == p
    plain = SelectParams(budget=5).to_dict()
    assert "cluster_choice" not in plain and SelectParams.from_dict(plain).cluster_choice == "size"
    with pytest.raises(SieveError, match="cluster_choice"):
        SelectParams(budget=5, cluster_choice="biggest")
    x, labels, _ = grouped_clusters()
    with pytest.raises(SieveError, match="cluster_choice='coverage' needs the embedding vectors"):
        run(labels, None, budget=5, cluster_choice="coverage")
    tok = select(labels, np.arange(len(labels)), SelectParams(budget=8, pick="facility", budget_unit="tokens",
                                                               cluster_choice="coverage"),
                 vectors=x, token_counts=np.ones(len(labels), np.int64))
    assert "clusters_chosen_by_coverage" not in tok.stats and any("token budget" in n for n in tok.notes)
    assert any("cluster_choice" in r for r in refusals(p, "ray"))
