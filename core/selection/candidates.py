"""Which rows a selection may choose: soft noise, pins and bans, the leakage check,
duplicate groups (one representative each) and the rows of each cluster.

Every function works on arrays aligned with the map (n rows) and adds what it did to
``notes`` (sentences for the user) and ``stats`` (JSON-able counts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from core.stages.cluster import NOISE
from core.store.workspace import SieveError

from ..nn import max_sim
from .dedup import find_groups, text_keys
from .params import SelectParams


def effective_labels(labels: np.ndarray, soft_labels: np.ndarray | None, soft_strength: np.ndarray | None,
                     threshold: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(labels with soft noise applied, (n,) int32; mask of the rows moved, (n,) bool).  Noise rows
    whose soft membership in their most likely cluster is >= ``threshold`` join that cluster."""
    eff = np.asarray(labels).astype(np.int32, copy=True)
    moved = np.zeros(len(eff), bool)
    if threshold is None or soft_labels is None or soft_strength is None:
        return eff, moved
    sl = np.asarray(soft_labels)
    ss = np.asarray(soft_strength)
    moved = (eff == NOISE) & (sl >= 0) & (ss >= threshold)
    eff[moved] = sl[moved]
    return eff, moved


def soft_noise(labels, soft_labels, soft_strength, params: SelectParams, notes: list, stats: dict) -> np.ndarray:
    """:func:`effective_labels` for ``params.soft_noise_threshold``, said in ``notes``/``stats``."""
    eff, moved = effective_labels(labels, soft_labels, soft_strength, params.soft_noise_threshold)
    if params.soft_noise_threshold is not None:
        if soft_labels is None or soft_strength is None:
            if (eff == NOISE).any():
                notes.append("soft noise: this map has no soft membership (a map fitted on a sample, or made "
                             "before it was stored), so its unclustered rows stay unclustered")
        elif moved.any():  # nothing to say when no row moved (no noise, or no cluster to join)
            notes.append(f"soft noise: {int(moved.sum())} unclustered row(s) with soft membership >= "
                         f"{params.soft_noise_threshold:g} joined their most likely cluster")
        stats["soft_noise_moved"] = int(moved.sum())
    return eff


def pin_ban_masks(row_ids: np.ndarray, params: SelectParams, ids_sorted: bool) -> tuple[np.ndarray, np.ndarray]:
    """(pinned, banned), (n,) bool each.  Raises SieveError naming pins/bans for ids not on the map."""
    n = len(row_ids)
    order = np.arange(n) if ids_sorted else np.argsort(row_ids, kind="stable")
    sorted_ids = row_ids[order]

    def mask(ids: Sequence[int], what: str) -> np.ndarray:
        out = np.zeros(n, bool)
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return out
        loc = np.searchsorted(sorted_ids, ids)
        ok = (loc < n) & (sorted_ids[np.minimum(loc, n - 1)] == ids)
        if not ok.all():
            raise SieveError(f"{what}: row id(s) {ids[~ok][:10].tolist()} are not on the map")
        out[order[loc]] = True
        return out

    return mask(params.pins, "pins"), mask(params.bans, "bans")


def leakage(row_ids, vectors, reference_vectors, reference_sims, pinned, banned, params: SelectParams,
            notes: list, stats: dict) -> None:
    """Rows with cosine similarity >= ``params.leakage_threshold`` to a reference row: reported
    ('warn') or added to ``banned`` in place ('drop'; pins are kept)."""
    if params.leakage == "off":
        return
    if reference_sims is None:
        reference_sims = max_sim(vectors, reference_vectors, seed=params.seed)[0]
    leaked = np.asarray(reference_sims) >= params.leakage_threshold
    stats["leaked"] = int(leaked.sum())
    stats["leaked_row_ids"] = row_ids[leaked][:1000].tolist()
    if params.leakage == "drop":
        drop = leaked & ~pinned
        banned |= drop
        stats["leaked_dropped"] = int(drop.sum())
        notes.append(f"leakage: {int(drop.sum())} row(s) with cosine similarity >= {params.leakage_threshold:g} "
                     "to a reference row were dropped from the candidates")
        if (leaked & pinned).any():
            notes.append(f"leakage: {int((leaked & pinned).sum())} pinned row(s) are near-copies of reference "
                         "rows; pins are kept")
    elif leaked.any():
        notes.append(f"leakage: {int(leaked.sum())} row(s) have cosine similarity >= "
                     f"{params.leakage_threshold:g} to a reference row (leakage='drop' removes them)")


@dataclass
class Groups:
    """Duplicate groups: ``active`` (n,) bool, the representatives; ``rep_of`` (n,) int64, each
    row's representative; ``size`` (n,) int64, each row's group size."""

    active: np.ndarray
    rep_of: np.ndarray
    size: np.ndarray


def duplicate_groups(eff, row_ids, groups, texts, vectors, pinned, banned, params: SelectParams,
                     notes: list, stats: dict) -> Groups:
    """One representative per duplicate group: a pinned member, else the lowest row id that is
    not banned.  ``groups`` (n,) ids, else found from ``texts``/``vectors`` (core.selection.dedup)."""
    n = len(eff)
    if groups is None:
        groups = find_groups(eff, keys=text_keys(texts), vectors=vectors, near=params.dedup == "near",
                             threshold=params.near_dup_threshold, seed=params.seed)
    groups = np.asarray(groups, dtype=np.int64)
    if len(groups) != n:
        raise SieveError("groups must have one entry per row")
    g_order = np.lexsort((row_ids, banned, ~pinned, groups))
    g = groups[g_order]
    first = np.r_[True, g[1:] != g[:-1]] if n else np.zeros(0, bool)
    head = g_order[np.maximum.accumulate(np.where(first, np.arange(n), 0))] if n else g_order
    rep_of = np.empty(n, np.int64)
    rep_of[g_order] = head
    active = rep_of == np.arange(n)
    _, inv_g, cnt = np.unique(groups, return_inverse=True, return_counts=True)
    size = cnt[inv_g].astype(np.int64)
    n_groups = len(cnt)
    stats.update(groups=int(n_groups), duplicate_rows=int(n - n_groups), rows_in_duplicate_groups=int((size > 1).sum()))
    notes.append(f"dedup={params.dedup}: {n - n_groups} duplicate row(s) collapsed into {n_groups} groups; "
                 "one representative per group can be chosen")
    extra = int((pinned & ~active).sum())
    if extra:
        notes.append(f"dedup: {extra} pinned row(s) duplicate another pinned row; pins are kept")
    return Groups(active, rep_of, size)


def small_unique(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(labels, return_inverse=True)`` for cluster ids (small integers >= -1), by counting."""
    labels = np.asarray(labels)
    if len(labels) == 0 or labels.dtype.kind not in "iu" or labels.min() < -1 or labels.max() > 10_000_000:
        return np.unique(labels, return_inverse=True)
    shifted = labels.astype(np.int64) + 1
    present = np.bincount(shifted) > 0
    values = np.nonzero(present)[0]
    lookup = np.cumsum(present) - 1
    return (values - 1).astype(labels.dtype), lookup[shifted].astype(np.intp)


def cluster_members(eff: np.ndarray, row_ids: np.ndarray, ids_sorted: bool):
    """(clusters, inv, members_of): the sorted cluster ids, each row's cluster index (n,), and
    cluster -> its positions in row-id order (int64)."""
    clusters_arr, inv = small_unique(eff)
    clusters = [int(c) for c in clusters_arr]
    if ids_sorted:  # the same order as lexsort((row_ids, inv)); a radix sort for small cluster counts
        by_cluster = np.argsort(inv.astype(np.uint16) if len(clusters) < 2**16 else inv, kind="stable")
    else:
        by_cluster = np.lexsort((row_ids, inv))
    bounds_idx = np.searchsorted(inv[by_cluster], np.arange(len(clusters) + 1))
    members_of = {c: by_cluster[bounds_idx[i] : bounds_idx[i + 1]] for i, c in enumerate(clusters)}
    return clusters, inv, members_of
