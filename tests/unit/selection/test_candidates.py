"""core.selection.candidates: which rows a selection may choose (soft noise, the leakage check)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.nn import unit
from core.selection import SelectParams, select
from core.store.workspace import SieveError


def test_soft_noise_moves_the_rows_above_the_threshold():
    labels = np.array([0] * 10 + [1] * 10 + [-1] * 6)
    soft_labels = np.concatenate([labels[:20], [0, 1, 1, 0, 1, 0]])
    soft_strength = np.concatenate([np.ones(20), [0.9, 0.5, 0.05, 0.3, 0.31, 0.0]]).astype(np.float32)
    row_ids = np.arange(26)
    p = SelectParams(budget=26, soft_noise_threshold=0.3)
    sel = select(labels, row_ids, p, soft_labels=soft_labels, soft_strength=soft_strength)
    moved = {20: 0, 21: 1, 23: 0, 24: 1}
    for r, c in moved.items():
        assert sel.clusters[sel.row_ids == r][0] == c
    assert set(sel.row_ids[sel.clusters == -1].tolist()) == {22, 25}
    assert sel.stats["soft_noise_moved"] == 4
    assert sel.allocation == {-1: 2, 0: 12, 1: 12}
    assert any("4 unclustered row(s)" in note for note in sel.notes)
    assert sel.labels[20] == 0 and labels[20] == -1  # the map's own labels are not changed
    off = select(labels, row_ids, SelectParams(budget=26), soft_labels=soft_labels, soft_strength=soft_strength)
    assert off.allocation == {-1: 6, 0: 10, 1: 10} and "soft_noise_moved" not in off.stats
    # noise='exclude' now excludes only the rows that stayed unclustered
    ex = select(labels, row_ids, SelectParams(budget=20, soft_noise_threshold=0.3, noise="exclude"),
                soft_labels=soft_labels, soft_strength=soft_strength)
    assert ex.allocation == {-1: 0, 0: 10, 1: 10}
    assert {20, 21, 23, 24} & set(ex.row_ids.tolist())


def test_soft_noise_says_nothing_when_no_row_moves():
    """A note only when rows moved: a map without noise (or none above the threshold) gets none."""
    labels = np.array([0] * 10 + [1] * 10)
    sel = select(labels, np.arange(20), SelectParams(budget=6, soft_noise_threshold=0.0),
                 soft_labels=labels, soft_strength=np.ones(20, np.float32))
    assert sel.stats["soft_noise_moved"] == 0 and not any("soft noise" in n for n in sel.notes)
    noisy = np.array([0] * 10 + [-1] * 4)
    weak = select(noisy, np.arange(14), SelectParams(budget=6, soft_noise_threshold=0.5),
                  soft_labels=np.array([0] * 14), soft_strength=np.array([1.0] * 10 + [0.1] * 4, np.float32))
    assert weak.stats["soft_noise_moved"] == 0 and not any("soft noise" in n for n in weak.notes)


def test_leakage_check_catches_planted_near_copies_of_eval_rows():
    rng = np.random.default_rng(3)
    v = unit(rng.standard_normal((300, 32)))
    labels = rng.integers(0, 3, 300)
    row_ids = np.arange(300)
    evals = unit(rng.standard_normal((40, 32)))
    planted = [7, 50, 120, 299]
    v[planted] = unit(evals[:4] + 0.02 * rng.standard_normal((4, 32)))
    p = SelectParams(budget=300, reference_path="eval.jsonl", leakage="warn")
    warn = select(labels, row_ids, p, vectors=v, reference_vectors=evals)
    assert warn.stats["leaked_row_ids"] == planted and len(warn) == 300
    assert any("4 row(s)" in note for note in warn.notes)
    drop = select(labels, row_ids, dataclasses.replace(p, budget=296, leakage="drop", pins=(50,)), vectors=v,
                  reference_vectors=evals)
    assert not {7, 120, 299} & set(drop.row_ids.tolist()) and 50 in drop.row_ids  # pins win
    assert drop.stats["leaked_dropped"] == 3
    with pytest.raises(SieveError, match="reference_path"):
        SelectParams(budget=5, leakage="drop")
