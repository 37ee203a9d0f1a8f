"""The engines by name (``--engine`` in the CLI) and by the map handle they make."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from core.engines.base import Engine
from core.engines.local import MapData
from core.engines.local_engine import LocalEngine
from core.engines.ray.engine import RayEngine, ShardedMap
from core.store.workspace import SieveError

ENGINES = {"local": LocalEngine, "ray": RayEngine}
HANDLES = {MapData: "local", ShardedMap: "ray"}  # map handle type -> the engine that makes and reads it


def get_engine(name: str, **options) -> Engine:
    """A new engine of kind ``name`` ("local" or "ray") with its ``options`` (the engine
    class's fields; TypeError for another); SieveError naming ``--engine`` for another name."""
    if name not in ENGINES:
        raise SieveError(f"--engine must be {' or '.join(ENGINES)}, got {name!r}")
    return ENGINES[name](**options)


def engine_from_options(name: str, options: dict[str, Any]) -> Engine:
    """:func:`get_engine` with those of ``options`` that engine takes (a command line's
    ``--address``, ``--workers``... are the Ray engine's; the local engine has none of them).
    ``None`` values keep the engine's defaults."""
    cls = ENGINES.get(name)
    taken = {f.name for f in fields(cls)} if cls is not None else set()
    return get_engine(name, **{k: v for k, v in options.items() if k in taken and v is not None})


def engine_for(handle: Any) -> Engine:
    """A default engine of the kind that made the map ``handle`` (MapData: local,
    ShardedMap: Ray); SieveError for another object."""
    for kind, name in HANDLES.items():
        if isinstance(handle, kind):
            return get_engine(name)
    raise SieveError(f"not a map handle: {type(handle).__name__}")
