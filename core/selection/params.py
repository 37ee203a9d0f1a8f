"""Selection parameters: :class:`SelectParams` and the value sets it accepts.

The parameters stay one flat dataclass (its dict form is the manifest's ``select``
section, so the keys and their order are a file format), validated by one small
checker per part: budget and allocation, pick, dedup, budget unit, strata,
reference/leakage and target.  Each checker raises :class:`SieveError` with a
one-line message naming the parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from core.store.workspace import SieveError

from .cluster_cover import CLUSTER_CHOICES
from .picks import REGISTRY
from .tokens import TOKENIZERS

POLICIES = ("proportional", "equal", "sqrt")
# The policy the CLI and the app start from (with picks.DEFAULT_PICK): the quality harness's
# winner.  SelectParams' own field default stays "equal" (manifests record both fields).
DEFAULT_POLICY = "sqrt"
# The soft-noise threshold the CLI and the app start from: 0, every row the map left unclustered
# joins its most likely cluster for the selection (the harness's 1 % balanced set: 97.4 % of
# classes and 1.76x random on the rarest fifth, against 94.8 % and 1.53x with noise kept; equal on
# the skewed sets; docs/SELECTION.md).  SelectParams' own field default stays None (off), so a
# manifest without the field replays as before; the Ray engine (no soft membership) keeps it off.
DEFAULT_SOFT_NOISE = 0.0
# Which clusters get the rows when the budget cannot give each one (core.selection.cluster_cover),
# as the CLI and the app start from.  SelectParams' own field default stays "size".
DEFAULT_CLUSTER_CHOICE = "size"
NOISE_MODES = ("include", "exclude")
DEDUP_MODES = ("none", "exact", "near")
BUDGET_UNITS = ("rows", "tokens")
LEAKAGE_MODES = ("off", "warn", "drop")
MISSING_STRATUM = "(missing)"

# Versions of the pick algorithms.  1: the original exact k-center greedy for pick='diverse'
# (what a manifest without ``algo_version`` replays).  2: k-center greedy on a seeded
# candidate pool of bounded size per cluster, with float32 matrix-vector updates (fast at 1M rows).
# 3: as 2, and pick='facility' / 'facility-global' run their lazy greedy on a candidate x client
# similarity block computed once (O(clients) per gain refresh), on a bounded candidate pool.
ALGO_VERSIONS = (1, 2, 3)
ALGO_VERSION = 3  # the default for new parameters

# Field metadata: the engines that honour a field set away from its default (no "engines":
# every engine).  core.engines.base.refusals reads it; dedup, token budgets, strata, reference
# and target sets, soft noise and scores need the whole map in memory, so the Ray engine refuses them.
LOCAL_ONLY = {"engines": ("local",)}


def _is_int(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, np.integer))


def int_keys(d: Mapping | None, what: str) -> dict:
    """``d`` with its keys as ints (JSON writes them as strings); SieveError naming ``what`` otherwise."""
    out = {}
    for k, v in (d or {}).items():
        try:
            out[int(k)] = v
        except (TypeError, ValueError) as exc:
            raise SieveError(f"{what}: cluster id {k!r} is not an integer") from exc
    return out


def row_ids(values, what: str) -> tuple[int, ...]:
    """Sorted unique row ids (whole numbers or their strings); SieveError naming ``what`` otherwise."""
    out = set()
    for x in values or ():
        if isinstance(x, bool) or not isinstance(x, (int, np.integer, str)):
            raise SieveError(f"{what}: row ids must be whole numbers, got {x!r}")
        try:
            out.add(int(x))
        except ValueError as exc:
            raise SieveError(f"{what}: row ids must be whole numbers, got {x!r}") from exc
    return tuple(sorted(out))


def fraction(value, what: str, lo: float = 0.0, hi: float = 1.0, *, lo_open: bool = False) -> float:
    """``value`` as a float in [lo, hi] (or (lo, hi] with ``lo_open``); SieveError naming ``what`` otherwise."""
    span = f"{'(' if lo_open else '['}{lo}, {hi}]"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)):
        raise SieveError(f"{what} must be a number in {span}, got {value!r}")
    v = float(value)
    if v > hi or v < lo or (lo_open and v == lo):
        raise SieveError(f"{what} must be in {span}, got {value!r}")
    return v


def bounds_pair(b, what: str, name, *, strict: bool = True) -> tuple[int | None, int | None]:
    """A (min, max) pair of non-negative ints or None; SieveError naming ``what`` and ``name`` otherwise.
    ``strict=False`` accepts booleans as ints (what cluster ``bounds`` always did)."""
    if not isinstance(b, (list, tuple)) or len(b) != 2:
        raise SieveError(f"{what}: {name} needs (min, max), got {b!r}")
    lo, hi = b
    for v in (lo, hi):
        ok = _is_int(v) if strict else isinstance(v, (int, np.integer))
        if v is not None and (not ok or v < 0):
            raise SieveError(f"{what}: min/max for {name} must be non-negative integers, got {v!r}")
    if lo is not None and hi is not None and lo > hi:
        raise SieveError(f"{what}: min {lo} is larger than max {hi} for {name}")
    return (None if lo is None else int(lo), None if hi is None else int(hi))


def _name(value, what: str, kind: str) -> None:
    if not isinstance(value, str) or not value:
        raise SieveError(f"{what} must be {kind}, got {value!r}")


def _one_of(value, allowed: tuple, what: str) -> None:
    if value not in allowed:
        raise SieveError(f"{what} must be one of {allowed}, got {value!r}")


def check_allocation(p: "SelectParams") -> None:
    """Budget, policy, seed, noise, per-cluster floors/caps, overrides and bounds (normalises ints and keys)."""
    if not _is_int(p.budget) or p.budget < 1:
        raise SieveError(f"budget must be a positive whole number of rows (or tokens), got {p.budget!r}")
    p.budget = int(p.budget)
    _one_of(p.policy, POLICIES, "policy")
    if not _is_int(p.seed) or p.seed < 0:
        raise SieveError(f"seed must be a non-negative integer, got {p.seed!r}")
    if isinstance(p.noise, str):
        if p.noise not in NOISE_MODES:
            raise SieveError(f"noise must be 'include', 'exclude' or a row budget, got {p.noise!r}")
    elif not _is_int(p.noise) or p.noise < 0:
        raise SieveError(f"noise budget must be a non-negative integer, got {p.noise!r}")
    if not isinstance(p.min_per_cluster, int) or p.min_per_cluster < 0:
        raise SieveError(f"min_per_cluster must be a non-negative integer, got {p.min_per_cluster!r}")
    if p.max_per_cluster is not None:
        if not isinstance(p.max_per_cluster, int) or p.max_per_cluster < 0:
            raise SieveError(f"max_per_cluster must be a non-negative integer, got {p.max_per_cluster!r}")
        if p.min_per_cluster > p.max_per_cluster:
            raise SieveError(f"min_per_cluster={p.min_per_cluster} is larger than max_per_cluster={p.max_per_cluster}")
    p.overrides = int_keys(p.overrides, "overrides")
    for c, v in p.overrides.items():
        if not _is_int(v) or v < 0:
            raise SieveError(f"overrides: budget for cluster {c} must be a non-negative integer, got {v!r}")
    p.bounds = int_keys(p.bounds, "bounds")
    for c, b in p.bounds.items():
        bounds_pair(b, "bounds", f"cluster {c}", strict=False)
    p.pins = row_ids(p.pins, "pins")
    p.bans = row_ids(p.bans, "bans")
    clash = sorted(set(p.pins) & set(p.bans))
    if clash:
        raise SieveError(f"pins and bans conflict: row id(s) {clash[:10]} are both pinned and banned")


def check_pick(p: "SelectParams") -> None:
    """The pick method (one of the registry's), its score column, MMR weight, the cluster choice and
    the algorithm version."""
    _one_of(p.pick, tuple(REGISTRY), "pick")
    if not isinstance(p.score_ascending, bool):
        raise SieveError(f"score_ascending must be true or false, got {p.score_ascending!r}")
    if REGISTRY[p.pick].scores == "required" and not p.score_column:
        raise SieveError(f"pick={p.pick!r} needs a score_column")
    p.mmr_lambda = fraction(p.mmr_lambda, "mmr_lambda")
    _one_of(p.cluster_choice, CLUSTER_CHOICES, "cluster_choice")
    if not _is_int(p.algo_version) or p.algo_version not in ALGO_VERSIONS:
        raise SieveError(f"algo_version must be one of {ALGO_VERSIONS}, got {p.algo_version!r}")
    p.algo_version = int(p.algo_version)


def check_dedup_and_unit(p: "SelectParams") -> None:
    """Dedup mode and threshold, soft noise, budget unit and tokenizer."""
    _one_of(p.dedup, DEDUP_MODES, "dedup")
    p.near_dup_threshold = fraction(p.near_dup_threshold, "near_dup_threshold", lo_open=True)
    if p.soft_noise_threshold is not None:
        p.soft_noise_threshold = fraction(p.soft_noise_threshold, "soft_noise_threshold")
    _one_of(p.budget_unit, BUDGET_UNITS, "budget_unit")
    _one_of(p.tokenizer, TOKENIZERS, "tokenizer")


def check_strata(p: "SelectParams") -> None:
    """The strata column and its per-cell (min, max) bounds (normalised to str keys and int pairs)."""
    if p.strata_column is not None:
        _name(p.strata_column, "strata_column", "a column name")
    if not isinstance(p.strata_bounds, Mapping):
        raise SieveError(f"strata_bounds must map stratum -> (min, max), got {p.strata_bounds!r}")
    p.strata_bounds = {str(k): bounds_pair(v, "strata_bounds", f"stratum {k!r}") for k, v in p.strata_bounds.items()}
    if p.strata_bounds and not p.strata_column:
        raise SieveError("strata_bounds needs a strata_column")


def check_reference(p: "SelectParams") -> None:
    """The reference set (coverage, leakage) and the target set (importance resampling)."""
    if p.reference_path is not None:
        _name(p.reference_path, "reference_path", "a file path")
    _name(p.reference_text, "reference_text", "a column name")
    p.coverage_distance = fraction(p.coverage_distance, "coverage_distance", 0.0, 2.0)
    _one_of(p.leakage, LEAKAGE_MODES, "leakage")
    p.leakage_threshold = fraction(p.leakage_threshold, "leakage_threshold", lo_open=True)
    if p.leakage != "off" and not p.reference_path:
        raise SieveError(f"leakage={p.leakage!r} needs a reference_path (the evaluation set)")
    if p.target_path is not None:
        _name(p.target_path, "target_path", "a file path")
    _name(p.target_text, "target_text", "a column name")


def check_pick_scope(p: "SelectParams") -> None:
    """A joint pick (one greedy over all clusters) works on row budgets without strata."""
    method = REGISTRY[p.pick]
    if method.joint is not None and (p.budget_unit == "tokens" or p.strata_column):
        raise SieveError(f"pick={p.pick!r} works on row budgets without strata; "
                         f"use pick={method.fallback!r} with budget_unit='tokens' or a strata_column")


CHECKS = (check_allocation, check_pick, check_dedup_and_unit, check_strata, check_reference, check_pick_scope)


@dataclass
class SelectParams:
    """What to select: the budget split (allocation), the pick inside a cluster, dedup, the
    budget unit, strata, and the reference/target sets.  Validated on creation (see
    :data:`CHECKS`; raises :class:`SieveError` naming the parameter).  :meth:`to_dict` is the
    manifest's ``select`` section; :meth:`from_dict` reads one back (an older dict without
    ``algo_version`` replays the original algorithms)."""

    budget: int  # rows, or tokens with budget_unit='tokens'
    policy: str = "equal"
    pick: str = "random"
    seed: int = 0
    noise: str | int = "include"  # "include", "exclude", or a budget for the noise group
    min_per_cluster: int = 0  # floor for every cluster
    max_per_cluster: int | None = None  # cap for every cluster
    overrides: dict[int, int] = field(default_factory=dict)  # cluster -> exact budget
    bounds: dict[int, tuple[int | None, int | None]] = field(default_factory=dict)  # cluster -> (min, max)
    score_column: str | None = field(default=None, metadata=LOCAL_ONLY)  # pick='score'; with pick='mmr' the relevance
    score_ascending: bool = False
    pins: tuple[int, ...] = ()
    bans: tuple[int, ...] = ()
    dedup: str = field(default="none", metadata=LOCAL_ONLY)  # none | exact | near (near implies exact)
    near_dup_threshold: float = 0.95  # cosine similarity joining near-duplicates (inside a cluster)
    mmr_lambda: float = 0.5  # pick='mmr': weight of relevance vs. novelty
    # noise rows with soft membership >= this join their cluster
    soft_noise_threshold: float | None = field(default=None, metadata=LOCAL_ONLY)
    budget_unit: str = field(default="rows", metadata=LOCAL_ONLY)  # rows | tokens
    tokenizer: str = "model"  # model | words (budget_unit='tokens')
    # a metadata column: allocate over clusters x strata cells
    strata_column: str | None = field(default=None, metadata=LOCAL_ONLY)
    strata_bounds: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)  # stratum -> per-cell (min, max)
    # an evaluation/reference file (coverage, leakage)
    reference_path: str | None = field(default=None, metadata=LOCAL_ONLY)
    reference_text: str = "text"  # its text column
    coverage_distance: float = 0.3  # a reference row is covered if a chosen row is within this cosine distance
    leakage: str = "off"  # off | warn | drop: candidate rows that are near-copies of reference rows
    leakage_threshold: float = 0.95  # cosine similarity to a reference row that counts as leakage
    # Pick algorithm version (see ALGO_VERSIONS).  New params get the fast one; a dict
    # without this field (an older manifest) gets 1, so it replays the same rows.
    algo_version: int = ALGO_VERSION
    # Importance resampling toward a target set: cluster weights = the target rows' shares
    # (each target row counts for the cluster of its nearest map row); replaces the policy.
    target_path: str | None = field(default=None, metadata=LOCAL_ONLY)
    target_text: str = "text"
    # Which clusters get the rows when the budget cannot give each a row (core.selection.cluster_cover):
    # "size" (largest remainders: what a manifest without the field replays) or "coverage".
    cluster_choice: str = field(default="size", metadata=LOCAL_ONLY)

    def __post_init__(self):
        for check in CHECKS:
            check(self)

    @property
    def unit(self) -> str:
        """'tokens' or 'rows': what the budget and every bound count."""
        return "tokens" if self.budget_unit == "tokens" else "rows"

    def to_dict(self) -> dict:
        """The manifest's ``select`` section (JSON-able; keys and their order are a file format)."""
        return {
            "budget": self.budget, "policy": self.policy, "pick": self.pick, "seed": self.seed,
            "noise": self.noise, "min_per_cluster": self.min_per_cluster, "max_per_cluster": self.max_per_cluster,
            "overrides": {str(k): v for k, v in sorted(self.overrides.items())},
            "bounds": {str(k): list(v) for k, v in sorted(self.bounds.items())},
            "score_column": self.score_column, "score_ascending": self.score_ascending,
            "pins": list(self.pins), "bans": list(self.bans),
            "dedup": self.dedup, "near_dup_threshold": self.near_dup_threshold, "mmr_lambda": self.mmr_lambda,
            "soft_noise_threshold": self.soft_noise_threshold, "budget_unit": self.budget_unit,
            "tokenizer": self.tokenizer, "strata_column": self.strata_column,
            "strata_bounds": {k: list(v) for k, v in sorted(self.strata_bounds.items())},
            "reference_path": self.reference_path, "reference_text": self.reference_text,
            "coverage_distance": self.coverage_distance, "leakage": self.leakage,
            "leakage_threshold": self.leakage_threshold, "algo_version": self.algo_version,
            # only when set, so manifests without a target keep their exact shape
            **({"target_path": self.target_path, "target_text": self.target_text} if self.target_path else {}),
            **({"cluster_choice": self.cluster_choice} if self.cluster_choice != "size" else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "SelectParams":
        """Parameters from :meth:`to_dict`'s form.  Raises SieveError for unknown keys (a newer manifest)."""
        d = dict(d)
        d["bounds"] = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in (d.get("bounds") or {}).items()}
        d["strata_bounds"] = {k: tuple(v) if isinstance(v, (list, tuple)) else v
                              for k, v in (d.get("strata_bounds") or {}).items()}
        d["pins"] = tuple(d.get("pins") or ())
        d["bans"] = tuple(d.get("bans") or ())
        d.setdefault("algo_version", 1)  # written before versions existed: the original algorithms
        unknown = sorted(set(d) - {f for f in cls.__dataclass_fields__})
        if unknown:
            raise SieveError(f"unknown selection parameter(s) {unknown}; is this manifest from a newer Sieve?")
        return cls(**d)
