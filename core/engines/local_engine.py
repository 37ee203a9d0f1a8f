"""The local engine behind :class:`core.engines.base.Engine`: the in-memory stages of
:mod:`core.engines.local` on one machine, exporting one file with its manifest."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.encoders.base import Encoder
from core.engines.base import Events, Exported, ExportTarget, check_supported, refusals
from core.engines.local import (MapData, MapParams, build_map, load_map, reproduce, restoring, run_selection,
                                selection_report)
from core.manifest import build_manifest, export_with_manifest, verify_export
from core.selection import Selection, SelectParams
from core.stages.dataset import current_dataset
from core.stages.embed import EmbedParams, EmbedResult, run_embed
from core.stages.export import format_for
from core.stages.knn import EXACT_KNN_MAX_ROWS
from core.stages.prewarm import start_background_warmup
from core.store.workspace import Workspace

METRICS_MAX_ROWS = 20_000  # vector metrics (diversity, coverage) only for subsets up to this size


def warm_up_large_map(n_rows: int) -> None:
    """A map above EXACT_KNN_MAX_ROWS rows needs pynndescent, whose compilation (tens of
    seconds) no disk cache keeps: compile it in the background while the embedding runs
    (the projection waits for it).  SIEVE_NO_WARMUP=1 turns this off."""
    if n_rows > EXACT_KNN_MAX_ROWS and not os.environ.get("SIEVE_NO_WARMUP"):
        start_background_warmup()


def long_text_note(ws: Workspace, embed_key: str, mode: str) -> str | None:
    """After embedding: how many texts were over the model's limit and what ``mode``
    (truncate or chunk) did with them, as one sentence; None when none were."""
    meta = ws.load_artifact("embed", embed_key)[1]
    res = EmbedResult(embed_key, meta["model_id"], meta["dim"], meta["n_rows"], 0, True, meta.get("long_texts"))
    return res.long_text_message(mode) or None


@dataclass
class LocalEngine:
    """``encoder``: the embedding model (default: the one ``MapParams.embed`` names).
    Runs every pick and option; exports one Parquet, JSONL or CSV file."""

    encoder: Encoder | None = None
    name: str = "local"
    keeps_selection: bool = True

    def unsupported(self, params: SelectParams) -> list[str]:
        """:func:`core.engines.base.refusals` for "local" ([] today: every field and pick runs here)."""
        return refusals(params, self.name)

    def check(self, params: SelectParams) -> None:
        """SieveError naming the first option of ``params`` this engine cannot run."""
        check_supported(params, self.name)

    def check_target(self, target: ExportTarget) -> None:
        """SieveError unless the output's format is known (from ``target.fmt`` or its extension)."""
        format_for(target.path, target.fmt)

    def check_run(self, map_params: MapParams, sel_params: SelectParams, target: ExportTarget,
                  edits_path: Path | str | None) -> ExportTarget:
        """The target's format (SieveError on an unknown one) and the selection's options."""
        self.check_target(target)
        self.check(sel_params)
        return target

    def embed(self, ws: Workspace, params: EmbedParams, events: Events = Events()) -> EmbedResult:
        """The embedding stage alone (:func:`core.stages.embed.run_embed`; progress as "embed")."""
        on_progress = events.progress
        return run_embed(ws, params, encoder=self.encoder,
                         progress=(lambda d, t, m: on_progress("embed", d, t, m)) if on_progress else None)

    def map(self, ws: Workspace, params: MapParams, *, edits: list[dict] | None = None,
            events: Events = Events()) -> MapData:
        """:func:`core.engines.local.build_map` (cached stages skipped; ``edits`` applied on
        top; ``events.on_wait`` told when it queues behind another computation) then
        :func:`~core.engines.local.load_map`; reports the step ``map`` (MapData)."""
        warm_up_large_map(current_dataset(ws).n_rows)
        keys = build_map(ws, params, encoder=self.encoder, progress=events.progress,
                         on_stage=events.on_stage, edits=edits, on_wait=events.on_wait)
        data = load_map(ws, keys)
        events.step("map", data)
        return data

    def map_embeddings(self, ws: Workspace, params: MapParams, events: Events = Events()) -> MapData:
        """:meth:`map` (the embedding stage is cached by its parameters)."""
        return self.map(ws, params, events=events)

    def current_map(self, ws: Workspace) -> MapData:
        """:func:`core.engines.local.load_map` of the workspace's current map."""
        return load_map(ws)

    def select(self, ws: Workspace, handle: MapData, params: SelectParams) -> Selection:
        """:func:`core.engines.local.run_selection`."""
        return run_selection(ws, handle, params, encoder=self.encoder)

    def report(self, handle: MapData, selection: Selection, params: SelectParams, *,
               max_vector_rows: int | None = None):
        """:func:`core.engines.local.selection_report`; the vector metrics only up to
        ``max_vector_rows`` chosen rows (None: METRICS_MAX_ROWS)."""
        limit = METRICS_MAX_ROWS if max_vector_rows is None else max_vector_rows
        return selection_report(handle, selection, params, vectors=len(selection) <= limit)

    def export(self, ws: Workspace, handle: MapData, selection: Selection, params: SelectParams,
               target: ExportTarget, *, metrics=None) -> Exported:
        """The rows and their manifest (with ``metrics``, else :meth:`report`'s) as a consistent
        pair (:func:`core.manifest.export_with_manifest`).  Paths are used as given."""
        fmt = format_for(target.path, target.fmt)
        path = Path(target.path).expanduser()
        if metrics is None:
            metrics = self.report(handle, selection, params)
        dups = target.include_duplicates
        man = build_manifest(handle, handle.params, params, selection, metrics,
                             {"path": str(path), "format": fmt, "include_duplicates": dups})
        path, mpath, man = export_with_manifest(
            ws, selection, handle.cluster_names, path, fmt, target.manifest_file(), man, handle,
            keep_text=handle.dataset.text.template is not None, include_duplicates=dups,
            dataset_key=handle.keys.dataset)
        extra = len(selection.duplicate_positions) if dups and selection.duplicate_positions is not None else None
        return Exported(path, mpath, man, len(selection), extra, [path])

    def reproduce(self, ws: Workspace, manifest: dict, manifest_path: Path | str, target: ExportTarget, *,
                  data: str | None = None, events: Events = Events()) -> Exported:
        """Rebuild and export a local manifest's subset (the workspace left as it was on failure).
        Steps: ``warning`` (a data file beside the manifest that does not match it), ``export``,
        ``long_texts`` (a note or None)."""
        format_for(target.path, target.fmt)
        problem = verify_export(manifest, manifest_path)
        if problem:
            events.step("warning", problem)
        dups = bool(manifest.get("export", {}).get("include_duplicates", False))
        target = ExportTarget(target.path, target.fmt, target.manifest_path, dups)
        with restoring(ws):  # a failure leaves the workspace as it was
            mdata, selection, map_params, sel_params = reproduce(
                ws, manifest, data, encoder=self.encoder, progress=events.progress, on_stage=events.on_stage,
                manifest_path=manifest_path)
            exported = self.export(ws, mdata, selection, sel_params, target)
        events.step("export", exported)
        events.step("long_texts", long_text_note(ws, mdata.keys.embed, map_params.embed.long_text))
        return exported
