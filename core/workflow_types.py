"""The types the workflows (core.workflows) take and return: engine names, the map handle,
and the run's result.  The progress callbacks (:class:`Events`), export targets and written
exports are the engine interface's (:mod:`core.engines.base`): the workflows pass them
through, so they are named here for the CLI and the pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from .engines.base import Events, Exported, ExportTarget, Step
from .engines.local import MapData
from .engines.ray.engine import ShardedMap
from .engines.registry import ENGINES as ENGINE_CLASSES

__all__ = ["LOCAL", "RAY", "ENGINES", "Events", "Exported", "ExportTarget", "Step", "MapHandle", "MapData", "ShardedMap",
           "RunResult"]

LOCAL = "local"
RAY = "ray"
ENGINES = tuple(ENGINE_CLASSES)  # ("local", "ray")

MapHandle = Union[MapData, ShardedMap]


@dataclass(frozen=True)
class RunResult:
    """What ``run`` made: the map handle, the selection, the export, and the seconds from
    the end of the ingest."""

    map: MapHandle
    selection: Any
    exported: Exported
    seconds: float
