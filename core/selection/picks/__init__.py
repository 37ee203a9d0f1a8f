"""Pick methods and their registry.

A new method goes in its own module here, defining a :class:`PickMethod`, and one line in
the tuple below; PICKS, VECTOR_PICKS, the CLI's ``--pick`` choices, the Budget page's
options and the Ray engine's refusals all follow from :data:`REGISTRY`.
"""

from .balanced import FACILITY_BALANCED
from .base import ENGINES, REGISTRY, ClusterView, Pick, PickMethod, PickRequest, engine_picks, register
from .diverse import DIVERSE, diverse_pool_size, pick_diverse, pick_diverse_pool
from .facility import FACILITY, FACILITY_GLOBAL, FACILITY_MAX_CANDIDATES, FACILITY_MAX_CLIENTS, pick_facility
from .kcenter import KCENTER_COSINE, pick_kcenter_cosine
from .mmr import MMR, pick_mmr
from .ordered import BOUNDARY, CENTROID, CORE, RANDOM, SCORE, pick_boundary, pick_centroid, pick_random, pick_score
from .views import DIVERSE_POOL_FACTOR, DIVERSE_POOL_MIN

for _method in (RANDOM, CENTROID, DIVERSE, SCORE, FACILITY, MMR, BOUNDARY, CORE, FACILITY_GLOBAL, KCENTER_COSINE,
                FACILITY_BALANCED):
    register(_method)

PICKS = tuple(REGISTRY)
VECTOR_PICKS = tuple(name for name, m in REGISTRY.items() if m.vectors)
# The pick the CLI and the app start from: facility location, which (with the sqrt policy,
# core.selection.params.DEFAULT_POLICY) trained best on the quality harness
# (bench/selection_quality.py, docs/SELECTION.md).  SelectParams' own defaults stay.
DEFAULT_PICK = "facility"


def describe(engine: str | None = None) -> str:
    """One line per registered method ('name: summary'; only ``engine``'s when given), for help texts."""
    return "; ".join(f"{name}: {m.summary}" for name, m in REGISTRY.items() if engine is None or engine in m.engines)
