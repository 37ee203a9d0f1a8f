"""Select: split a budget (rows or tokens) across clusters by a policy, then pick rows
inside each cluster by a method.  Deterministic for a given seed; pins always in, bans never.

:func:`select` is pure (labels, vectors, scores, ... -> chosen rows with cluster, rank and
reason) and reads as its steps: check the inputs; soft noise; pins and bans; leakage;
duplicate groups; clusters and their sizes; strata cells; target weights; allocation
(:mod:`core.selection.allocate`); the picks (:mod:`core.selection.clusters`, methods in
:mod:`core.selection.picks`); the result.  All options are in :class:`SelectParams` and
recorded in the manifest; docs/SELECTION.md describes them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
    threadpool_limits = None

from core.store.workspace import SieveError

from .allocate import Allocation, allocate, group_bounds, shortfall_note
from .candidates import Groups, cluster_members, duplicate_groups, leakage, pin_ban_masks, soft_noise
from .cluster_cover import coverage_chooser
from .clusters import Picked, PickPlan, pick_clusters
from .facility_global import target_cluster_weights
from .params import SelectParams
from .picks import REGISTRY
from .strata import strata_cells


@dataclass
class Selection:
    """The chosen rows, in output order (cluster by cluster, pins first, then pick order)."""

    positions: np.ndarray  # indices into the map's arrays, in output order
    row_ids: np.ndarray
    clusters: np.ndarray
    ranks: np.ndarray  # 1-based within the cluster, in pick order
    reasons: list[str]
    allocation: dict[int, int]  # cluster -> budget (rows, or tokens with budget_unit='tokens')
    notes: list[str] = field(default_factory=list)
    group_sizes: np.ndarray | None = None  # per chosen row: rows in its duplicate group (dedup on)
    duplicate_positions: np.ndarray | None = None  # the other (unchosen, unbanned) members of chosen groups
    duplicate_row_ids: np.ndarray | None = None  # ... their row ids
    duplicate_of: np.ndarray | None = None  # ... and the row id of the chosen row each duplicates
    tokens: np.ndarray | None = None  # per chosen row: its token count (budget_unit='tokens')
    labels: np.ndarray | None = None  # every map row's cluster for this selection (soft noise applied)
    stats: dict = field(default_factory=dict)  # JSON-able counts: soft noise, duplicates, leakage, tokens, strata
    text_keys: np.ndarray | None = None  # (n,) uint64 normalised-text hash per map row, for the metrics (dedup on)
    reference_vectors: np.ndarray | None = None  # (r, d) float32 reference set, for the coverage metric

    def __len__(self) -> int:
        return len(self.row_ids)


@dataclass
class RowInputs:
    """The optional per-row inputs of :func:`select` (see its docstring)."""

    vectors: np.ndarray | None = None
    scores: np.ndarray | None = None
    groups: np.ndarray | None = None
    texts: Sequence[str] | None = None
    token_counts: np.ndarray | None = None
    strata: Sequence | None = None
    soft_labels: np.ndarray | None = None
    soft_strength: np.ndarray | None = None
    reference_vectors: np.ndarray | None = None
    reference_sims: np.ndarray | None = None
    target_positions: np.ndarray | None = None


def check_scores(scores, params: SelectParams) -> np.ndarray:
    """``scores`` as (n,) float64.  Raises SieveError when missing or infinite."""
    if scores is None:
        raise SieveError(f"pick={params.pick!r} needs the values of score_column {params.score_column!r}")
    scores = np.asarray(scores, dtype=np.float64)
    if np.isinf(scores).any():
        raise SieveError(f"score_column {params.score_column!r} contains infinite values")
    return scores


def check_inputs(labels: np.ndarray, row_ids: np.ndarray, params: SelectParams, x: RowInputs) -> int:
    """The number of map rows.  Raises SieveError when an input the params need is missing or misaligned."""
    n = len(labels)
    if len(row_ids) != n:
        raise SieveError("labels and row_ids must have the same length")
    method = REGISTRY[params.pick]
    if method.vectors and x.vectors is None:
        raise SieveError(f"pick={params.pick!r} needs the embedding vectors")
    if params.cluster_choice == "coverage" and x.vectors is None:
        raise SieveError("cluster_choice='coverage' needs the embedding vectors")
    if method.scores == "required" or (method.scores == "optional" and params.score_column):
        x.scores = check_scores(x.scores, params)
    if params.budget_unit == "tokens":
        if x.token_counts is None:
            raise SieveError("budget_unit='tokens' needs the token counts of the rows")
        x.token_counts = np.asarray(x.token_counts, dtype=np.int64)
        if len(x.token_counts) != n:
            raise SieveError("token_counts must have one entry per row")
        if (x.token_counts < 0).any():
            raise SieveError("token_counts must be non-negative")
    elif params.budget > n:
        raise SieveError(f"budget={params.budget} is larger than the {n} rows on the map")
    if params.strata_column:
        if x.strata is None:
            raise SieveError(f"strata_column {params.strata_column!r} needs its values")
        if len(x.strata) != n:
            raise SieveError("strata must have one entry per row")
    if params.dedup != "none" and x.groups is None:
        if x.texts is None:
            raise SieveError(f"dedup={params.dedup!r} needs the texts (or precomputed groups)")
        if params.dedup == "near" and x.vectors is None:
            raise SieveError("dedup='near' needs the embedding vectors")
    if params.target_path and x.target_positions is None:
        raise SieveError("target_path needs the target rows' nearest map rows (target_positions)")
    if params.leakage != "off" and x.reference_sims is None:
        if x.reference_vectors is None:
            raise SieveError(f"leakage={params.leakage!r} needs the reference vectors")
        if x.vectors is None:
            raise SieveError(f"leakage={params.leakage!r} needs the embedding vectors")
    return n


def target_policy(eff, clusters, params: SelectParams, x: RowInputs, full_sizes, notes, stats):
    """(policy, weights_from): the params' policy on the clusters' sizes, or -- with a target
    set -- 'proportional' on the target rows' shares (DSIR-style importance resampling)."""
    if not params.target_path:
        return params.policy, full_sizes
    tw = target_cluster_weights(eff[np.asarray(x.target_positions, dtype=np.int64)], clusters)
    stats["target_rows"] = int(len(x.target_positions))
    stats["target_clusters"] = int(sum(v > 0 for v in tw.values()))
    notes.append(f"target: {len(x.target_positions)} target row(s) fall in {stats['target_clusters']} of "
                 f"{len(clusters)} clusters; the budget follows their shares (the policy is not used)")
    return "proportional", tw


def allocate_clusters(sizes, params: SelectParams, bounds, policy, weights_from, choose=None) -> Allocation:
    """:func:`allocate` over the clusters, its shortfall notes said with their reasons."""
    lower, upper, fixed = bounds
    try:
        alloc = allocate(sizes, params.budget, policy, lower=lower, upper=upper, fixed=fixed,
                         weights_from=weights_from, unit=params.unit, choose=choose)
    except SieveError as exc:
        if params.strata_bounds:
            raise SieveError(f"{exc} (with the strata_bounds floors of every cluster x stratum cell)") from exc
        raise
    alloc.notes[:] = [shortfall_note(note, sizes, params) for note in alloc.notes]
    return alloc


def cluster_chooser(params: SelectParams, vectors, members_of, avail, notes: list, stats: dict):
    """The allocation's ``choose`` for ``params.cluster_choice`` ('coverage' on a row budget:
    core.selection.cluster_cover; the rows it hands out are counted in ``stats``), else None."""
    if params.cluster_choice != "coverage":
        return None
    if params.budget_unit == "tokens":
        notes.append("cluster_choice='coverage' applies to row budgets; with a token budget the largest "
                     "shares get the units")
        return None
    inner = coverage_chooser(vectors, {c: m[avail[m]] for c, m in members_of.items()})

    def choose(weights, anchored, flexible, k):
        stats["clusters_chosen_by_coverage"] = int(k)
        notes.append(f"cluster choice: {k} of the {len(flexible)} clusters too small for a whole row by share "
                     "get one, chosen by coverage (facility location over cluster medoids)")
        return inner(weights, anchored, flexible, k)

    return choose


def one_blas_thread():
    """Picks do many small matrix products: one BLAS thread avoids oversubscription stalls on
    busy machines and keeps the arithmetic the same whatever the core count."""
    if threadpool_limits is None:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def finish(row_ids, eff, params: SelectParams, x: RowInputs, alloc: Allocation, picked: Picked, notes: list,
           stats: dict, groups: Groups | None, banned: np.ndarray) -> Selection:
    """The :class:`Selection` from the picks: notes, duplicate members of chosen groups, tokens."""
    pos = np.concatenate(picked.positions) if picked.positions else np.zeros(0, np.int64)
    notes = list(alloc.notes) + notes + picked.notes
    scores = x.scores
    if scores is not None and params.score_column and np.isnan(scores).any() \
            and REGISTRY[params.pick].scores != "none":
        notes.append(f"{int(np.isnan(scores).sum())} row(s) have no {params.score_column!r} score; they rank last")
    sel = Selection(positions=pos, row_ids=row_ids[pos], clusters=eff[pos].astype(np.int32),
                    ranks=np.concatenate(picked.ranks) if picked.ranks else np.zeros(0, np.int32),
                    reasons=picked.reasons, allocation={int(c): int(v) for c, v in alloc.counts.items()},
                    notes=notes, labels=eff, stats=stats)
    if picked.strata_alloc:
        stats["strata"] = picked.strata_alloc
    if groups is not None:
        chosen_mask = np.zeros(len(eff), bool)
        chosen_mask[pos] = True
        sel.group_sizes = groups.size[pos]
        rep_of = groups.rep_of
        dpos = np.nonzero(~chosen_mask & ~banned & chosen_mask[rep_of])[0]
        dpos = dpos[np.lexsort((row_ids[dpos], row_ids[rep_of[dpos]]))]
        sel.duplicate_positions = dpos
        sel.duplicate_row_ids = row_ids[dpos]
        sel.duplicate_of = row_ids[rep_of[dpos]]
        stats["chosen_duplicates"] = int(len(dpos))
        stats["chosen_group_rows"] = int(sel.group_sizes.sum())
    if params.budget_unit == "tokens":
        sel.tokens = x.token_counts[pos]
        used = int(sel.tokens.sum())
        stats.update(tokens_used=used, tokens_budget=int(params.budget))
        notes.append(f"token budget: {used:,} of {params.budget:,} tokens used in {len(pos):,} rows")
    return sel


def eligible_rows(eff, row_ids, ids_sorted: bool, params: SelectParams, x: RowInputs, notes: list, stats: dict):
    """(pinned, banned, active, groups): pins and bans (leaked rows banned with leakage='drop'),
    the rows that count (one per duplicate group, and every pin), the duplicate groups or None."""
    pinned, banned = pin_ban_masks(row_ids, params, ids_sorted)
    leakage(row_ids, x.vectors, x.reference_vectors, x.reference_sims, pinned, banned, params, notes, stats)
    dup = None
    if params.dedup != "none":
        dup = duplicate_groups(eff, row_ids, x.groups, x.texts, x.vectors, pinned, banned, params, notes, stats)
    active = (np.ones(len(eff), bool) if dup is None else dup.active) | pinned
    return pinned, banned, active, dup


def select(
    labels: np.ndarray,
    row_ids: np.ndarray,
    params: SelectParams,
    *,
    vectors: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    texts: Sequence[str] | None = None,
    token_counts: np.ndarray | None = None,
    strata: Sequence | None = None,
    soft_labels: np.ndarray | None = None,
    soft_strength: np.ndarray | None = None,
    reference_vectors: np.ndarray | None = None,
    reference_sims: np.ndarray | None = None,
    target_positions: np.ndarray | None = None,
) -> Selection:
    """Pure: choose rows for ``params.budget``.  Arrays are aligned (one entry per mapped row):
    ``labels`` (n,) int cluster ids (-1 noise), ``row_ids`` (n,) int64, ``vectors`` (n, d) float.

    ``scores`` (n,) float (score_column; NaN = missing).  ``groups``: a duplicate-group id per
    row (else computed from ``texts`` and ``vectors`` when ``params.dedup`` asks for it).
    ``token_counts`` (n,) int: tokens per row (budget_unit 'tokens').  ``strata``: the strata
    column's value per row.  ``soft_labels`` / ``soft_strength``: HDBSCAN soft membership (soft
    noise).  ``reference_vectors`` (r, d) (or precomputed ``reference_sims`` (n,), each row's
    highest cosine similarity to a reference row): the leakage check.  ``target_positions``
    (t,): for each row of the target set (``params.target_path``), the position of its nearest
    map row.  Raises SieveError (one line) for a missing or misaligned input, pins/bans not on
    the map, or a budget the floors and pins cannot meet."""
    x = RowInputs(vectors, scores, groups, texts, token_counts, strata, soft_labels, soft_strength,
                  reference_vectors, reference_sims, target_positions)
    labels, row_ids = np.asarray(labels), np.asarray(row_ids, dtype=np.int64)
    n = check_inputs(labels, row_ids, params, x)
    notes: list[str] = []
    stats: dict = {"unit": params.unit}
    eff = soft_noise(labels, x.soft_labels, x.soft_strength, params, notes, stats)
    ids_sorted = bool(n < 2 or (row_ids[1:] > row_ids[:-1]).all())  # the usual case: map order = id order
    pinned, banned, active, dup = eligible_rows(eff, row_ids, ids_sorted, params, x, notes, stats)
    avail = active & ~banned
    w = x.token_counts if params.budget_unit == "tokens" else np.ones(n, np.int64)
    clusters, inv, members_of = cluster_members(eff, row_ids, ids_sorted)

    def per_cluster(mask) -> dict[int, int]:
        tot = np.bincount(inv, weights=np.where(mask, w, 0).astype(np.float64), minlength=len(clusters))
        return {c: int(round(t)) for c, t in zip(clusters, tot)}

    full_sizes, sizes, pin_counts = per_cluster(active), per_cluster(avail), per_cluster(pinned)
    lower, upper, fixed = group_bounds(sizes, params, pin_counts)
    cells = None
    if params.strata_column:
        cells = strata_cells(x.strata, clusters, members_of, w, avail, pinned, active, params, lower, upper, sizes,
                             pin_counts)
    policy, weights_from = target_policy(eff, clusters, params, x, full_sizes, notes, stats)
    choose = cluster_chooser(params, x.vectors, members_of, avail, notes, stats)
    alloc = allocate_clusters(sizes, params, (lower, upper, fixed), policy, weights_from, choose)
    plan = PickPlan(params, REGISTRY[params.pick], clusters, members_of, alloc.counts, pinned, avail, w,
                    params.budget_unit == "tokens", x.vectors, x.scores, cells)
    with one_blas_thread():
        picked = pick_clusters(plan)
    return finish(row_ids, eff, params, x, alloc, picked, notes, stats, dup, banned)
