"""The engine interface: embed, map, select and export over a map handle.

A map handle is what an engine's :meth:`Engine.map` returns and its other steps take:
:class:`core.engines.local.MapData` (aligned in-memory arrays) for the local engine,
:class:`core.engines.ray.engine.ShardedMap` (folders of Parquet shards) for Ray.  Both
engines select into the same :class:`core.selection.Selection` and write the same typed
manifest (:class:`core.manifest.Manifest`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.engines.local import MapParams
from core.selection import Selection, SelectParams
from core.store.workspace import Workspace


@dataclass
class ExportResult:
    """What an export wrote: the data files (one file locally, Parquet parts on Ray), the
    manifest's path and the manifest as written (its JSON object)."""

    files: list[Path]
    manifest_path: Path
    manifest: dict


class Engine(Protocol):
    """One way to compute a map and pick a subset from it.  Every method raises
    :class:`core.store.workspace.SieveError` (one line naming the parameter or file) on bad input."""

    name: str

    def embed(self, ws: Workspace, params: MapParams) -> Any:
        """Embed the workspace's current dataset with ``params.embed`` (cached per content key)."""

    def map(self, ws: Workspace, params: MapParams) -> Any:
        """Embed, project, cluster and name the current dataset; returns the map handle."""

    def check(self, params: SelectParams) -> None:
        """SieveError when ``params`` asks for something this engine cannot run (before any work)."""

    def select(self, ws: Workspace, handle: Any, params: SelectParams) -> Selection:
        """Pick the subset of the map ``handle`` under ``params``' budget."""

    def export(self, ws: Workspace, handle: Any, selection: Selection, params: SelectParams, out: Path,
               manifest_path: Path | None = None) -> ExportResult:
        """Write the chosen rows to ``out`` and their manifest beside them (default
        ``<out>.manifest.json``), never leaving a mismatched pair."""
