"""The local engine behind :class:`core.engines.base.Engine`: the in-memory stages of
:mod:`core.engines.local` on one machine, exporting one file with its manifest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.encoders.base import Encoder
from core.engines.base import ExportResult
from core.engines.local import MapData, MapParams, build_map, load_map, run_selection, selection_report
from core.manifest import build_manifest, export_with_manifest
from core.selection import Selection, SelectParams
from core.stages.embed import run_embed
from core.stages.export import format_for
from core.store.workspace import Workspace

METRICS_MAX_ROWS = 20_000  # vector metrics (diversity, coverage) only for subsets up to this size


@dataclass
class LocalEngine:
    """``encoder``: the embedding model (default: the one ``MapParams.embed`` names);
    ``fmt``: the export format (default: from the file name); ``include_duplicates``:
    also export the other members of each chosen row's duplicate group."""

    encoder: Encoder | None = None
    fmt: str | None = None
    include_duplicates: bool = False
    name: str = "local"

    def embed(self, ws: Workspace, params: MapParams):
        """The embedding stage alone (:func:`core.stages.embed.run_embed`)."""
        return run_embed(ws, params.embed, encoder=self.encoder)

    def map(self, ws: Workspace, params: MapParams) -> MapData:
        """:func:`core.engines.local.build_map` then :func:`~core.engines.local.load_map`."""
        return load_map(ws, build_map(ws, params, encoder=self.encoder))

    def check(self, params: SelectParams) -> None:
        """The local engine runs every pick and option (``SelectParams`` checks itself)."""

    def select(self, ws: Workspace, handle: MapData, params: SelectParams) -> Selection:
        """:func:`core.engines.local.run_selection`."""
        return run_selection(ws, handle, params, encoder=self.encoder)

    def export(self, ws: Workspace, handle: MapData, selection: Selection, params: SelectParams, out: Path,
               manifest_path: Path | None = None) -> ExportResult:
        """The rows and their manifest (with its metrics) as a consistent pair
        (:func:`core.manifest.export_with_manifest`)."""
        fmt = format_for(out, self.fmt)
        metrics = selection_report(handle, selection, params, vectors=len(selection) <= METRICS_MAX_ROWS)
        path = Path(out).expanduser().resolve()
        mpath = Path(manifest_path) if manifest_path else Path(f"{path}.manifest.json")
        man = build_manifest(handle, handle.params, params, selection, metrics,
                             {"path": str(path), "format": fmt, "include_duplicates": self.include_duplicates})
        path, mpath, man = export_with_manifest(
            ws, selection, handle.cluster_names, path, fmt, mpath, man, handle,
            keep_text=handle.dataset.text.template is not None, include_duplicates=self.include_duplicates,
            dataset_key=handle.keys.dataset)
        return ExportResult([path], mpath, man)
