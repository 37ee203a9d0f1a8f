"""core.selection.picks.diverse: pick='diverse' (k-center greedy), and its bounded candidate
pool for large maps (``algo_version`` 2).
"""

from __future__ import annotations

import numpy as np

from core.selection import SelectParams, select
from tests.fakes import blobs_on_sphere


def _four_blobs():
    """One cluster made of four tight blobs of unequal size (40, 3, 3, 3) on the unit sphere."""
    centres = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, 0]], float)
    v = blobs_on_sphere(centres, [40, 3, 3, 3], spread=0.03, seed=0)
    blob = np.repeat([0, 1, 2, 3], [40, 3, 3, 3])
    return v, blob


def test_diverse_hits_every_blob_and_random_usually_does_not():
    v, blob = _four_blobs()
    labels = np.zeros(len(v), int)
    row_ids = np.arange(len(v))
    sel = select(labels, row_ids, SelectParams(budget=4, pick="diverse"), vectors=v)
    assert sorted(blob[sel.positions].tolist()) == [0, 1, 2, 3]
    assert sel.reasons == ["diverse"] * 4 and sel.ranks.tolist() == [1, 2, 3, 4]
    all_hit = sum(
        len(set(blob[select(labels, row_ids, SelectParams(budget=4, pick="random", seed=s)).positions])) == 4
        for s in range(20)
    )
    assert all_hit <= 5  # ~0.5 % chance per seed
    # the same with a pinned row in the big blob: the picks go to the three others
    pinned = select(labels, row_ids, SelectParams(budget=4, pick="diverse", pins=(7,)), vectors=v)
    assert pinned.reasons == ["pinned", "diverse", "diverse", "diverse"] and pinned.row_ids[0] == 7
    assert sorted(blob[pinned.positions].tolist()) == [0, 1, 2, 3]
