"""Strata: a second split of each cluster's budget across the values of a column (cells),
with per-cell floors/caps; rows are picked per cell and interleaved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from core.store.workspace import SieveError

from .allocate import Allocation, allocate
from .params import MISSING_STRATUM, SelectParams


@dataclass
class StrataCells:
    """``names``: the strata (sorted); ``codes`` (n,) int: each row's stratum index;
    ``bounds``: cluster -> (size, full size, floor, cap), each stratum index -> units."""

    names: list[str]
    codes: np.ndarray
    bounds: dict[int, tuple[dict, dict, dict, dict]]


def strata_cells(strata: Sequence, clusters: list[int], members_of: dict, w: np.ndarray, avail: np.ndarray,
                 pinned: np.ndarray, active: np.ndarray, params: SelectParams, lower: dict, upper: dict,
                 sizes: dict, pin_counts: dict) -> StrataCells:
    """The cells of every cluster with their floors/caps (``params.strata_bounds``, raised to
    the cell's pins); narrows the clusters' ``lower``/``upper`` in place to what the cells allow."""
    svals = np.asarray([MISSING_STRATUM if v is None else str(v) for v in strata], dtype=object)
    names, codes = np.unique(svals.astype(str), return_inverse=True)
    names = [str(s) for s in names]
    bounds: dict[int, tuple[dict, dict, dict, dict]] = {}
    for c in clusters:
        m = members_of[c]
        csize, cfull, clo, chi = {}, {}, {}, {}
        for s in np.unique(codes[m]):
            cell = m[codes[m] == s]
            size = int(w[cell[avail[cell]]].sum())
            pins = int(w[cell[pinned[cell]]].sum())
            blo, bhi = params.strata_bounds.get(names[s], (None, None))
            cap = size if bhi is None else min(size, max(bhi, pins))
            csize[int(s)] = size
            cfull[int(s)] = int(w[cell[active[cell]]].sum())
            chi[int(s)] = cap
            clo[int(s)] = min(max(blo or 0, pins), cap)
        bounds[c] = (csize, cfull, clo, chi)
        upper[c] = min(upper.get(c, sizes[c]), max(sum(chi.values()), pin_counts[c]))
        lower[c] = max(lower.get(c, 0), sum(clo.values()))
    return StrataCells(names, codes, bounds)


def cell_allocation(cells: StrataCells, cluster: int, k: int, params: SelectParams) -> Allocation:
    """Cluster ``cluster``'s ``k`` units split across its cells by the policy.  Raises
    SieveError naming strata_bounds when the cells' floors and pins exceed ``k``."""
    csize, cfull, clo, chi = cells.bounds[cluster]
    try:
        return allocate(csize, k, params.policy, lower=clo, upper=chi, weights_from=cfull, unit=params.unit)
    except SieveError as exc:
        raise SieveError(f"strata_bounds: cluster {cluster}'s budget of {k} {params.unit} cannot meet its strata "
                         f"floors and pins ({sum(clo.values())} {params.unit})") from exc


def interleave(parts: list[np.ndarray]) -> np.ndarray:
    """Round-robin over the cells' pick orders (rank 1 of every cell, then rank 2, ...)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return np.zeros(0, np.int64)
    rank = np.concatenate([np.arange(len(p)) for p in parts])
    cell = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
    allp = np.concatenate(parts)
    return allp[np.lexsort((cell, rank))]
