"""core.selection.facility_global: global facility location (pick='facility-global') and
target-set cluster weights (importance resampling, issue 16).
"""

from __future__ import annotations

import numpy as np
import pytest

from core.selection import SelectParams, select
from core.store.workspace import SieveError
from tests.builders import separated_blobs as _blobs


def _skewed_map(seed=0):
    pts, vec, truth = _blobs(seed, sizes=(300, 200, 100, 30, 6))
    return truth.astype(np.int32), np.arange(len(truth), dtype=np.int64) * 3, vec


@pytest.mark.parametrize("budget", [5, 23, 100])
def test_facility_global_sums_to_budget_respects_allocation_and_is_deterministic(budget):
    labels, ids, vec = _skewed_map()
    p = SelectParams(budget=budget, policy="equal", pick="facility-global", seed=3)
    a = select(labels, ids, p, vectors=vec)
    b = select(labels, ids, p, vectors=vec)
    assert len(a.positions) == budget == len(set(a.positions.tolist()))
    assert (a.row_ids == b.row_ids).all()
    got = dict(zip(*np.unique(a.clusters, return_counts=True)))
    assert {int(k): int(v) for k, v in got.items()} == {k: v for k, v in a.allocation.items() if v}
    # the same allocation as the per-cluster facility pick: the rare cluster is covered
    assert a.allocation == select(labels, ids, SelectParams(budget=budget, pick="facility"), vectors=vec).allocation
    if budget >= 5:
        assert 4 in set(a.clusters.tolist())


def test_facility_global_keeps_pins_and_rejects_tokens():
    labels, ids, vec = _skewed_map()
    sel = select(labels, ids, SelectParams(budget=20, pick="facility-global", pins=(int(ids[-1]),)), vectors=vec)
    assert int(ids[-1]) in sel.row_ids.tolist() and len(sel.positions) == 20
    with pytest.raises(SieveError, match="facility-global"):
        SelectParams(budget=20, pick="facility-global", budget_unit="tokens")


def test_target_weights_follow_the_target_rows_clusters():
    labels, ids, vec = _skewed_map()
    members = {c: np.nonzero(labels == c)[0] for c in range(5)}
    # target: 30 rows near cluster 4 (the rare one), 10 near cluster 0, none elsewhere
    target = np.concatenate([members[4][np.arange(30) % 6], members[0][:10]])
    p = SelectParams(budget=40, pick="random", target_path="t.jsonl", seed=1)
    sel = select(labels, ids, p, vectors=vec, target_positions=target)
    assert len(sel.positions) == 40 and sel.allocation[4] == 6  # capped at its size ...
    assert sel.allocation[0] == 34 and sum(sel.allocation.values()) == 40  # ... the rest where the target is
    assert all(sel.allocation[c] == 0 for c in (1, 2, 3))
    assert sel.stats["target_rows"] == 40 and sel.stats["target_clusters"] == 2
    # with min per cluster, every cluster is protected
    floor = select(labels, ids, SelectParams(budget=40, target_path="t.jsonl", min_per_cluster=2), vectors=vec,
                   target_positions=target)
    assert all(floor.allocation[c] >= 2 for c in range(5)) and sum(floor.allocation.values()) == 40
    with pytest.raises(SieveError, match="target"):
        select(labels, ids, p, vectors=vec)
