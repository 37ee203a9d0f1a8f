"""Selection: split a budget (rows or tokens) across clusters by a policy, then pick rows
inside each cluster by a registered pick method.

Public API: :func:`select` (pure), :func:`allocate`, :class:`SelectParams`,
:class:`Selection`, the value sets, and the pick registry (:data:`REGISTRY`, :class:`PickMethod`).
Workspace-backed inputs live in :mod:`core.selection.inputs`.
"""

from .allocate import Allocation, allocate, group_bounds, policy_weights, shortfall_note
from .candidates import effective_labels
from .cluster_cover import CLUSTER_CHOICES
from .params import (ALGO_VERSION, ALGO_VERSIONS, BUDGET_UNITS, DEDUP_MODES, DEFAULT_CLUSTER_CHOICE, DEFAULT_POLICY,
                     DEFAULT_SOFT_NOISE, LEAKAGE_MODES, MISSING_STRATUM, NOISE_MODES, POLICIES, TOKENIZERS,
                     SelectParams)
from .picks import (DEFAULT_PICK, DIVERSE_POOL_FACTOR, DIVERSE_POOL_MIN, ENGINES, FACILITY_MAX_CANDIDATES,
                    FACILITY_MAX_CLIENTS, PICKS, REGISTRY, VECTOR_PICKS, Pick, PickMethod, PickRequest, describe,
                    engine_picks, pick_facility, register)
from .selector import Selection, select

__all__ = [
    "ALGO_VERSION", "ALGO_VERSIONS", "BUDGET_UNITS", "CLUSTER_CHOICES", "DEDUP_MODES", "DEFAULT_CLUSTER_CHOICE",
    "DEFAULT_PICK", "DEFAULT_POLICY", "DEFAULT_SOFT_NOISE", "DIVERSE_POOL_FACTOR",
    "DIVERSE_POOL_MIN", "ENGINES", "FACILITY_MAX_CANDIDATES", "FACILITY_MAX_CLIENTS", "LEAKAGE_MODES",
    "MISSING_STRATUM", "NOISE_MODES", "PICKS", "POLICIES", "REGISTRY", "TOKENIZERS", "VECTOR_PICKS", "Allocation",
    "Pick", "PickMethod", "PickRequest", "Selection", "SelectParams", "allocate", "describe", "effective_labels",
    "engine_picks",
    "group_bounds", "pick_facility", "policy_weights", "register", "select", "shortfall_note",
]
