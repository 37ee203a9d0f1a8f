"""core.selection.strata: strata cells inside each cluster, with per-cell bounds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.selection import SelectParams, select
from core.store.workspace import SieveError


def test_strata_split_each_cluster_and_respect_cell_quotas():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], [120, 80])
    strata = np.concatenate([rng.choice(["forum", "docs", "crowd"], 120, p=[0.8, 0.15, 0.05]),
                             rng.choice(["forum", "docs"], 80, p=[0.5, 0.5])])
    row_ids = np.arange(200)
    p = SelectParams(budget=40, policy="equal", strata_column="source")
    sel = select(labels, row_ids, p, strata=strata)
    assert sel.allocation == {0: 20, 1: 20}
    cells = sel.stats["strata"]
    for c in ("0", "1"):
        assert sum(cells[c].values()) == 20
        got = {s: int(((sel.clusters == int(c)) & (strata[sel.positions] == s)).sum()) for s in cells[c]}
        assert got == cells[c]
    n_crowd = int(((labels == 0) & (strata == "crowd")).sum())
    assert cells["0"]["crowd"] == min(n_crowd, 7)  # equal across the three cells, or all the small one has
    # caps per cell, floors per cell
    capped = select(labels, row_ids, dataclasses.replace(p, strata_bounds={"forum": (None, 4), "docs": (3, None)}),
                    strata=strata)
    for c, cell in capped.stats["strata"].items():
        assert cell["forum"] <= 4 and cell["docs"] >= 3
    # the interleaved output order: rank 1 of every cell first
    first = sel.positions[sel.clusters == 1][:2]
    assert set(strata[first].tolist()) == {"forum", "docs"}
    # an infeasible floor names strata_bounds
    with pytest.raises(SieveError, match="strata_bounds"):
        select(labels, row_ids, dataclasses.replace(p, budget=4, strata_bounds={"forum": (5, None)}), strata=strata)
