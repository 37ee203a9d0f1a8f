"""'facility-balanced': balanced facility location over all clusters at once
(:func:`core.selection.coverage.pick_facility_balanced`; every eligible row a client, weighted
by 1 / sqrt of its cluster's size, each cluster capped at its allocated rows)."""

from __future__ import annotations

from ..coverage import pick_facility_balanced
from .base import PickMethod

FACILITY_BALANCED = PickMethod(
    "facility-balanced", "balanced facility location over all clusters at once: every row a client, weighted "
    "1/sqrt(cluster size) so small clusters count more; per-cluster counts kept (row budgets, no strata)",
    joint=pick_facility_balanced, vectors=True, engines=("local",), fallback="facility")
