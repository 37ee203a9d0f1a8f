"""The pick protocol and the registry of pick methods.

A pick method chooses rows inside one cluster (or one strata cell of it) and returns
candidate positions in pick order.  Each method is registered once, as a
:class:`PickMethod`, with what it needs (vectors, scores, texts, token counts) and the
engines that run it ('local', 'ray'); the CLI choices, the Budget page's options, the
vector-reading rule and the Ray engine's refusals are all read from :data:`REGISTRY`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Protocol

import numpy as np

ENGINES = ("local", "ray")
SCORE_NEEDS = ("none", "optional", "required")


@dataclass
class ClusterView:
    """One cluster's vectors as the picks read them: ``rows[positions]`` -> (m, d) float32 unit
    vectors, ``centroid`` (d,) float32 unit mean, ``pool_rank(positions)`` -> (m,) int seeded
    ranks (pooled picks only).  All None for picks that read no vectors."""

    rows: object = None
    centroid: np.ndarray | None = None
    pool_rank: Callable[[np.ndarray], np.ndarray] | None = None


@dataclass
class PickRequest:
    """One cluster's (or strata cell's) pick.

    ``candidates`` (m,) int64: map positions that may be chosen (eligible, not pinned).
    ``k``: rows to choose; with a token budget ``capacity`` (tokens left) and ``cost`` (m,)
    int64 tokens per candidate, rows are taken in pick order while they fit.
    ``seeds`` (s,) int64: positions already chosen (the cluster's pins), or None.
    ``members`` (c,) int64: every position of the cluster (facility location's clients).
    ``scores`` (n,) float64 per map row (NaN = missing), or None."""

    candidates: np.ndarray
    k: int
    cost: np.ndarray | None
    capacity: int | None
    cluster_id: int
    stratum: str | None
    seed: int
    view: ClusterView
    seeds: np.ndarray | None
    members: np.ndarray
    scores: np.ndarray | None = None
    score_column: str | None = None
    score_ascending: bool = False
    mmr_lambda: float = 0.5
    algo_version: int = 2


class Pick(Protocol):
    """A pick method: candidate positions (int64) in pick order, at most ``req.k`` of them and,
    with a token capacity, never more tokens than it."""

    def __call__(self, req: PickRequest) -> np.ndarray: ...


class ViewBuilder(Protocol):
    """Builds a cluster's :class:`ClusterView` from the (n, d) vectors and its member positions."""

    def __call__(self, vectors: np.ndarray, members: np.ndarray, seed: int, cluster_id: int,
                 algo_version: int) -> ClusterView: ...


class JointPick(Protocol):
    """A pick over all clusters at once: cluster -> chosen positions in pick order (at most ``need[c]``)."""

    def __call__(self, cands: Mapping[int, np.ndarray], need: Mapping[int, int], vectors: np.ndarray,
                 clients: np.ndarray, seeds: np.ndarray, *, seed: int, algo_version: int) -> dict[int, np.ndarray]: ...


@dataclass(frozen=True)
class PickMethod:
    """A registered pick method.

    ``pick`` runs per cluster/cell; ``joint`` (instead) runs once over every cluster and then
    works on row budgets without strata only (``fallback`` names the per-cluster method to
    use there).  ``vectors``/``texts``/``token_counts``: inputs it reads; ``scores``: 'none',
    'optional' (read when a score_column is set) or 'required'.  ``view``: how the cluster's
    vectors are prepared (None: no vectors).  ``engines``: the engines that run it."""

    name: str
    summary: str
    pick: Pick | None = None
    joint: JointPick | None = None
    view: ViewBuilder | None = None
    vectors: bool = False
    scores: str = "none"
    texts: bool = False
    token_counts: bool = False
    engines: tuple[str, ...] = ENGINES
    fallback: str | None = None


REGISTRY: dict[str, PickMethod] = {}


def register(method: PickMethod) -> PickMethod:
    """Add ``method`` to :data:`REGISTRY` (in registration order).  Raises ValueError for a
    name registered twice, an unknown engine or score need, or neither/both of pick and joint."""
    if method.name in REGISTRY:
        raise ValueError(f"pick method {method.name!r} is registered twice")
    if (method.pick is None) == (method.joint is None):
        raise ValueError(f"pick method {method.name!r} needs exactly one of pick / joint")
    if method.scores not in SCORE_NEEDS or not set(method.engines) <= set(ENGINES):
        raise ValueError(f"pick method {method.name!r}: scores in {SCORE_NEEDS}, engines in {ENGINES}")
    if method.vectors != (method.view is not None or method.joint is not None):
        raise ValueError(f"pick method {method.name!r}: a vector pick needs a view (or is joint)")
    REGISTRY[method.name] = method
    return method


def engine_picks(engine: str) -> tuple[str, ...]:
    """The pick methods ``engine`` ('local' or 'ray') runs, in registration order."""
    return tuple(name for name, m in REGISTRY.items() if engine in m.engines)
