"""The engines by name (``--engine`` in the CLI)."""

from __future__ import annotations

from core.engines.base import Engine
from core.engines.local_engine import LocalEngine
from core.engines.ray.engine import RayEngine
from core.store.workspace import SieveError

ENGINES = {"local": LocalEngine, "ray": RayEngine}


def get_engine(name: str, **options) -> Engine:
    """A new engine of kind ``name`` ("local" or "ray") with its ``options`` (the engine
    class's fields); SieveError naming ``engine`` for another name."""
    if name not in ENGINES:
        raise SieveError(f"engine must be one of {tuple(ENGINES)}, got {name!r}")
    return ENGINES[name](**options)
