"""Shared bookkeeping of the pick methods: rows left and token capacity left.

Every picker returns candidate positions in pick order.  With ``cost``/``capacity``
(token budgets) a row that would overshoot the capacity left is skipped and the next one
in pick order is tried; without them the first ``k`` are returned.
"""

from __future__ import annotations

import numpy as np


def fill_index(c: np.ndarray, k: int, capacity: int) -> np.ndarray:
    """Indices into ``c`` (m,) int token costs, in order, taken while they fit ``capacity``
    tokens (at most ``k``; a row that would overshoot is skipped).  (j,) int64."""
    if len(c) == 0 or k <= 0:
        return np.zeros(0, np.int64)
    c = np.asarray(c, dtype=np.int64)
    suffix_min = np.minimum.accumulate(c[::-1])[::-1]
    out, left = [], int(capacity)
    for i in range(len(c)):
        if left < suffix_min[i] or len(out) >= k:
            break
        if c[i] <= left:
            out.append(i)
            left -= int(c[i])
    return np.asarray(out, dtype=np.int64)


def take_in_order(candidates: np.ndarray, order: np.ndarray, k: int, cost: np.ndarray | None,
                  capacity: int | None) -> np.ndarray:
    """``candidates[order]`` filled to ``k`` rows or ``capacity`` tokens (``cost`` aligned with candidates)."""
    if cost is None or capacity is None:
        return candidates[order[:k]]
    return candidates[order][fill_index(np.asarray(cost)[order], k, capacity)]


class PickBudget:
    """Rows left (``k``) and, for token budgets, capacity left; tracks open candidates
    (``open`` (m,) bool: not chosen and still affordable)."""

    def __init__(self, n: int, k: int, cost: np.ndarray | None, capacity: int | None):
        self.k, self.taken = k, 0
        self.cost = None if cost is None or capacity is None else np.asarray(cost, dtype=np.int64)
        self.left = None if self.cost is None else int(capacity)
        self.open = np.ones(n, bool)
        self.close_unaffordable()

    def close_unaffordable(self) -> None:
        """Close the candidates that no longer fit the capacity left."""
        if self.cost is not None:
            self.open &= self.cost <= self.left

    def done(self) -> bool:
        """True when ``k`` rows are taken or no open candidate is left."""
        return self.taken >= self.k or not self.open.any()

    def take(self, i: int) -> None:
        """Take candidate ``i`` (pays its cost)."""
        self.taken += 1
        self.open[i] = False
        if self.cost is not None:
            self.left -= int(self.cost[i])
            self.close_unaffordable()


def pool_then_rest(candidates: np.ndarray, pool: np.ndarray, chosen: list[int], rest: np.ndarray, b: PickBudget,
                   k: int, cost: np.ndarray | None) -> np.ndarray:
    """The rows chosen from a candidate pool, then -- when the budget outlasts the pool --
    the other candidates (``rest``, already in seeded order) while they fit."""
    out = candidates[pool[np.asarray(chosen, dtype=np.int64)]]
    if len(rest) and b.taken < k and (b.left is None or b.left > 0):
        more = take_in_order(candidates[rest], np.arange(len(rest)), k - b.taken,
                             None if cost is None else np.asarray(cost)[rest], b.left)
        out = np.concatenate([out, more])
    return out
