"""core.summaries: the column views behind "colour by" and the linked bar charts."""

from __future__ import annotations

import numpy as np

from core.summaries import MISSING, OTHER, bar_labels, bar_mask, bars, categorical_view, numeric_view


def test_categorical_view_keeps_the_most_frequent_values_and_groups_the_rest():
    vals = ["a"] * 5 + ["b"] * 3 + ["c"] * 3 + ["d", None, None]
    v = categorical_view("col", vals, max_categories=2)
    assert v.categories == ["a", "b", OTHER, MISSING]  # b before c: ties by value
    assert [v.categories[c] for c in v.codes] == ["a"] * 5 + ["b"] * 3 + [OTHER] * 4 + [MISSING] * 2
    sel = np.zeros(len(vals), bool)
    sel[:2] = True
    sel[8] = True
    rows = {r["label"]: r for r in bars(v, sel)}
    assert rows["a"]["all"] == 5 and rows["a"]["selected"] == 2 and abs(rows["a"]["selected_share"] - 2 / 3) < 1e-9
    assert rows[OTHER]["selected"] == 1 and abs(sum(r["all_share"] for r in rows.values()) - 1) < 1e-9
    assert bar_mask(v, v.categories.index(MISSING)).tolist() == [False] * 12 + [True] * 2


def test_numeric_view_bins_every_finite_value_once_and_missing_apart():
    vals = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, np.nan], dtype=np.float64)
    v = numeric_view("q", vals, bins=5)
    rows = bars(v, None)
    assert [r["all"] for r in rows] == [2, 2, 2, 2, 3, 1]  # the last bin is closed; NaN has its own bar
    assert bar_labels(v)[-1] == MISSING and rows[-1]["label"] == MISSING
    assert bar_mask(v, 4).tolist() == [False] * 8 + [True] * 3 + [False]
    assert sum(bar_mask(v, i).sum() for i in range(v.n_bars)) == len(vals)
    assert len(bars(numeric_view("q", vals[:-1], bins=5), None)) == 5  # no empty "(missing)" bar
