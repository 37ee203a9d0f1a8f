"""Workflows: the one layer the ``sieve`` CLI and the app's pages call.

``build_map``, ``select``, ``export`` (the rows and their manifest, written as a pair),
``run`` (ingest -> embed -> map -> select -> export) and ``reproduce`` chain the stages
for one *engine*: ``"local"`` (this process, :mod:`core.engines.local`) or ``"ray"``
(Parquet shards on a Ray cluster, :mod:`core.engines.ray`).  A map handle says which engine
made it: :class:`core.engines.local.MapData` (local) or :class:`ScaledMap` (Ray).  The types
live in :mod:`core.workflow_types`.

Nothing here prints.  Progress goes through :class:`Events` (the stage callbacks of
:mod:`core.engines.local` plus ``on_step(name, value)`` after each finished step); bad
input raises :class:`core.store.workspace.SieveError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from core.encoders.base import Encoder
from core.stages.dataset import DatasetInfo, current_dataset
from core.stages.embed import EmbedParams, EmbedResult, run_embed
from core.stages.export import format_for
from core.stages.ingest import IngestParams
from core.stages.ingest import ingest as ingest_dataset
from core.stages.knn import EXACT_KNN_MAX_ROWS
from core.stages.long_texts import count_dataset
from core.stages.prewarm import start_background_warmup
from core.store.workspace import SieveError, Workspace

from .curate import read_edits
from .engines import local as pipeline
from .engines import ray as scale
from .engines.local import MapData, MapParams
from .manifest import build_manifest, export_with_manifest, read_manifest, verify_export, write_manifest
from .selection import Selection, SelectParams
from .workflow_types import (ENGINES, LOCAL, RAY, Events, Exported, ExportTarget, MapHandle, RayOptions, RunResult,
                             ScaledMap)

REPORT_VECTORS_MAX_ROWS = 20_000  # larger subsets skip the vector metrics (diversity, coverage, ...)


def check_engine(engine: str) -> None:
    """Raises SieveError unless ``engine`` is one of ENGINES."""
    if engine not in ENGINES:
        raise SieveError(f"--engine must be local or ray, got {engine!r}")


def check_target(engine: str, target: ExportTarget) -> None:
    """Fail fast, before any work, on an output the engine cannot write (SieveError):
    local needs a known format; Ray writes Parquet shards only."""
    check_engine(engine)
    if engine == LOCAL:
        format_for(target.path, target.fmt)
    elif target.fmt not in (None, "parquet"):
        raise SieveError(f"--format {target.fmt} is not available with --engine ray: it writes Parquet shards")


def warm_up_large_map(n_rows: int) -> None:
    """A map above EXACT_KNN_MAX_ROWS rows needs pynndescent, whose compilation (tens of
    seconds) no disk cache keeps: compile it in the background while the embedding runs
    (the projection waits for it).  SIEVE_NO_WARMUP=1 turns this off."""
    if n_rows > EXACT_KNN_MAX_ROWS and not os.environ.get("SIEVE_NO_WARMUP"):
        start_background_warmup()


@contextlib.contextmanager
def naming_edits_file(path: Path | str | None):
    """An edit that does not apply (``edit 2 (merge): ...``) names the edits file it came from."""
    try:
        yield
    except SieveError as exc:
        if path is not None and str(exc).startswith("edit "):
            raise SieveError(f"edits file {path}: {exc}") from None
        raise


def ingest(ws: Workspace, params: IngestParams) -> tuple[DatasetInfo, bool]:
    """Load a dataset into the workspace (core.stages.ingest.ingest): (its info, whether it was already loaded)."""
    return ingest_dataset(ws, params)


def dataset_long_text_note(ws: Workspace, info: DatasetInfo, model: str) -> str | None:
    """How many texts of the current dataset are over ``model``'s token limit (counted with its
    tokenizer), as one sentence; None when none are, or the dataset brings its own vectors."""
    if info.vector_column:
        return None
    return count_dataset(ws, model).message() or None


def embedded_long_text_note(ws: Workspace, embed_key: str, mode: str) -> str | None:
    """After embedding: how many texts were over the model's limit and what ``mode``
    (truncate or chunk) did with them, as one sentence; None when none were."""
    meta = ws.load_artifact("embed", embed_key)[1]
    res = EmbedResult(embed_key, meta["model_id"], meta["dim"], meta["n_rows"], 0, True, meta.get("long_texts"))
    return res.long_text_message(mode) or None


def embed(ws: Workspace, params: EmbedParams, *, engine: str = LOCAL, ray: RayOptions = RayOptions(),
          events: Events = Events()):
    """Embed the current dataset (cached by model and text; resumable).  Local: an
    EmbedResult (core.stages.embed.run_embed); Ray: a ScaleEmbedResult (Parquet shards).
    Raises SieveError on an option the engine cannot honour."""
    check_engine(engine)
    if engine == LOCAL:
        on_progress = events.progress
        return run_embed(ws, params, progress=(lambda d, t, m: on_progress("embed", d, t, m)) if on_progress else None)
    if params.long_text != "truncate":
        raise SieveError("--long-text chunk is not available with --engine ray yet; use --engine local")
    ray.connect()
    return scale.embed_shards(ws, scale.ScaleEmbedParams(
        model=params.model, batch_size=params.batch_size, device=params.device, shard_rows=ray.shard_rows,
        workers=ray.workers, backend=params.backend))


def build_scaled_map(ws: Workspace, params: scale.ScaleMapParams, ray: RayOptions = RayOptions()):
    """Fit the map on a seeded sample of the sharded embeddings, then place every row on Ray
    (core.engines.ray.scale_map): a ScaleMapResult."""
    ray.connect()
    return scale.scale_map(ws, None, params)


def build_map(ws: Workspace, params: MapParams, *, edits_path: Path | str | None = None,
              encoder: Encoder | None = None, events: Events = Events()) -> MapData:
    """Embed (if needed), project, cluster and label the current dataset on the local engine
    (core.engines.local.build_map; cached stages are skipped) and load the map.

    ``edits_path``: a JSON file of cluster edits applied on top (read before any work;
    an edit that does not apply names the file); ``encoder`` replaces the model of ``params``.
    Raises SieveError on bad input."""
    edits = read_edits(edits_path) if edits_path is not None else None
    return _build_local(ws, params, edits, edits_path, current_dataset(ws).n_rows, encoder, events)


def _build_local(ws, params, edits, edits_path, n_rows, encoder, events) -> MapData:
    warm_up_large_map(n_rows)
    with naming_edits_file(edits_path):
        keys = pipeline.build_map(ws, params, encoder=encoder, progress=events.progress, on_stage=events.on_stage,
                                  edits=edits)
    return pipeline.load_map(ws, keys)


def current_map(ws: Workspace, engine: str = LOCAL) -> MapHandle:
    """The workspace's current map on ``engine``; SieveError when there is none."""
    check_engine(engine)
    if engine == RAY:
        map_dir, embed_dir = scale.map_folder(ws)
        return ScaledMap(embed_dir, map_dir)
    return pipeline.load_map(ws)


def select(ws: Workspace, handle: MapHandle, params: SelectParams, *, remember: bool = True,
           encoder: Encoder | None = None, ray: RayOptions | None = None):
    """Apply ``params`` to a map: a :class:`Selection` for a local map, a ScaleSelection
    (per-cluster picks in parallel on Ray) for a :class:`ScaledMap`.  ``remember`` keeps
    ``params`` as the workspace's selection (``sieve export`` repeats it; local only);
    ``encoder`` embeds a reference or target set (default: the map's model).
    ``ray``: where the picks run.  Raises SieveError on parameters the engine cannot apply."""
    if isinstance(handle, ScaledMap):
        if ray is not None:
            ray.connect()
        return scale.scale_select(handle.map_dir, handle.embed_dir, params)
    selection = pipeline.run_selection(ws, handle, params, encoder=encoder)
    if remember:
        ws.set_meta("selection", params.to_dict())
    return selection


def saved_selection(ws: Workspace) -> SelectParams:
    """The selection parameters the workspace remembers (from ``select``); SieveError without one."""
    saved = ws.get_meta("selection")
    if not saved:
        raise SieveError("no selection yet; run `sieve select --budget N` first")
    return SelectParams.from_dict(saved)


def report(data: MapData, selection: Selection, params: SelectParams):
    """The selection's metrics beside random subsets of the same size
    (core.engines.local.selection_report); the vector metrics only up to REPORT_VECTORS_MAX_ROWS rows."""
    return pipeline.selection_report(data, selection, params, vectors=len(selection) <= REPORT_VECTORS_MAX_ROWS)


def manifest(ws: Workspace, data: MapData, params: SelectParams, selection: Selection, metrics,
             export_info: dict) -> dict:
    """The manifest of a local selection (core.manifest.build_manifest) with the map's own
    parameters (MapData.params)."""
    return build_manifest(data, data.params, params, selection, metrics, export_info)


def export(ws: Workspace, handle: MapHandle, params: SelectParams, selection, target: ExportTarget, *,
           metrics=None) -> Exported:
    """Write the chosen rows and their manifest as a consistent pair.

    Local map: one file (core.manifest.export_with_manifest; ``metrics`` from :func:`report`
    when not given).  :class:`ScaledMap`: a folder of Parquet part files and the manifest.
    Paths are used as given (callers resolve or confine them).  Raises SieveError on a bad
    format or output, OSError on a disk failure (nothing half-written)."""
    if isinstance(handle, ScaledMap):
        return _export_scaled(ws, handle, params, selection, target)
    fmt = format_for(target.path, target.fmt)
    path = Path(target.path).expanduser()
    if metrics is None:
        metrics = report(handle, selection, params)
    man = manifest(ws, handle, params, selection, metrics,
                   {"path": str(path), "format": fmt, "include_duplicates": target.include_duplicates})
    path, mpath, man = export_with_manifest(
        ws, selection, handle.cluster_names, path, fmt, target.manifest_file(), man, handle,
        keep_text=handle.dataset.text.template is not None, include_duplicates=target.include_duplicates,
        dataset_key=handle.keys.dataset)
    extra = None
    if target.include_duplicates and selection.duplicate_positions is not None:
        extra = len(selection.duplicate_positions)
    return Exported(path, mpath, man, len(selection), extra, [path])


def _export_scaled(ws: Workspace, handle: ScaledMap, params: SelectParams, selection, target: ExportTarget):
    out_dir = Path(target.path).expanduser()
    files = scale.export_scaled(ws, selection, out_dir)
    man = scale.ray_manifest(ws, handle.embed_dir, handle.map_dir, params, selection,
                             {"path": str(out_dir), "format": "parquet", "files": [f.name for f in files]}).to_dict()
    mpath = write_manifest(target.manifest_file(), man)
    return Exported(out_dir, Path(mpath), man, len(selection), None, list(files))


def run(ws: Workspace, ingest_params: IngestParams, map_params: MapParams, sel_params: SelectParams,
        target: ExportTarget, *, engine: str = LOCAL, edits_path: Path | str | None = None,
        encoder: Encoder | None = None, ray: RayOptions = RayOptions(), events: Events = Events()) -> RunResult:
    """Everything: ingest -> embed -> map -> select -> export, on ``engine``.

    Steps reported through ``events.on_step``: ``dataset`` ((DatasetInfo, cached)), then
    local: ``map`` (MapData), ``selection`` ((MapData, Selection, SelectParams, metrics));
    Ray: ``embeddings`` (ScaleEmbedResult), ``scaled_map`` ((ScaleMapResult, map info dict));
    last ``export`` (Exported).  ``encoder`` (local) replaces the model of ``map_params``.
    Options an engine cannot honour raise SieveError before any work."""
    check_target(engine, target)
    if engine == RAY:
        return _run_scaled(ws, ingest_params, map_params, sel_params, target, edits_path, ray, events)
    edits = read_edits(edits_path) if edits_path is not None else None
    info, cached = ingest_dataset(ws, ingest_params)
    events.step("dataset", (info, cached))
    t0 = time.perf_counter()
    data = _build_local(ws, map_params, edits, edits_path, info.n_rows, encoder, events)
    events.step("map", data)
    selection = select(ws, data, sel_params, encoder=encoder)
    metrics = report(data, selection, sel_params)
    events.step("selection", (data, selection, sel_params, metrics))
    exported = export(ws, data, sel_params, selection, target, metrics=metrics)
    events.step("export", exported)
    return RunResult(data, selection, exported, time.perf_counter() - t0)


def check_scaled_run(map_params: MapParams, sel_params: SelectParams, target: ExportTarget,
                     edits_path: Path | str | None) -> Path:
    """Refuse, before any hour-long embedding, what the Ray engine cannot do (SieveError);
    returns the output folder (which must be new or empty)."""
    if map_params.cluster.algorithm != "hdbscan":
        raise SieveError(f"--cluster-method {map_params.cluster.algorithm} is available with --engine local only")
    if map_params.embed.long_text != "truncate":
        raise SieveError("--long-text chunk is not available with --engine ray yet; use --engine local")
    if edits_path is not None:
        raise SieveError("--edits is not available with --engine ray: cluster edits apply to a local map")
    if target.include_duplicates:
        raise SieveError("--include-duplicates is not available with --engine ray (duplicate groups are "
                         "not computed at scale)")
    scale.check_select_params(sel_params)
    out_dir = Path(target.path).expanduser().resolve()
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise SieveError(f"--out {out_dir} exists and is not an empty folder; --engine ray writes a new folder "
                         "of Parquet shards")
    return out_dir


def _run_scaled(ws, ingest_params, map_params, sel_params, target, edits_path, ray, events) -> RunResult:
    """``run`` on Ray: ingest, sharded embedding, sample fit + assignment, per-cluster picks, shards + manifest."""
    out_dir = check_scaled_run(map_params, sel_params, target, edits_path)
    t0 = time.perf_counter()
    embed_params = scale.ScaleEmbedParams(
        model=map_params.embed.model, batch_size=map_params.embed.batch_size, device=map_params.embed.device,
        shard_rows=ray.shard_rows, workers=ray.workers, backend=ray.backend)
    scale_params = scale.ScaleMapParams(ray.sample_size, ray.sample_seed, map_params.project, map_params.cluster,
                                        ray.workers)
    events.step("dataset", ingest_dataset(ws, ingest_params))
    scale.connect(ray.address)
    emb = scale.embed_shards(ws, embed_params)
    events.step("embeddings", emb)
    res = scale.scale_map(ws, emb.folder, scale_params)
    events.step("scaled_map", (res, scale.scaled_map_info(res.folder)))
    handle = ScaledMap(Path(emb.folder), Path(res.folder))
    sel = select(ws, handle, sel_params)
    exported = export(ws, handle, sel_params, sel, ExportTarget(out_dir, manifest_path=target.manifest_path))
    events.step("export", exported)
    return RunResult(handle, sel, exported, time.perf_counter() - t0)


def verify(manifest_path: Path | str) -> tuple[dict, str | None]:
    """Read a manifest and check the data file beside it (sha256): (manifest, the problem or None).
    Raises SieveError when the manifest cannot be read."""
    man = read_manifest(manifest_path)
    return man, verify_export(man, manifest_path)


def reproduce(ws: Workspace, manifest_path: Path | str, target: ExportTarget, *, data: str | None = None,
              encoder: Encoder | None = None, events: Events = Events()) -> Exported:
    """Rebuild the exact subset of a manifest and export it with a new manifest; SieveError
    when the row ids differ (a failure leaves the workspace as it was).

    The engine is the manifest's (Ray: ``target.path`` is a new folder of Parquet shards).
    Steps reported: ``warning`` (a data file beside the manifest that does not match it),
    ``long_texts`` (a note or None, local), ``export`` (Exported).  ``encoder`` (local)
    replaces the manifest's model."""
    man = read_manifest(manifest_path)
    if man.get("engine") == RAY:
        return _reproduce_scaled(ws, man, data, target, events)
    format_for(target.path, target.fmt)
    problem = verify_export(man, manifest_path)
    if problem:
        events.step("warning", problem)
    dups = bool(man.get("export", {}).get("include_duplicates", False))
    target = ExportTarget(target.path, target.fmt, target.manifest_path, dups)
    with pipeline.restoring(ws):  # a failure leaves the workspace as it was
        mdata, selection, map_params, sel_params = pipeline.reproduce(
            ws, man, data, encoder=encoder, progress=events.progress, on_stage=events.on_stage,
            manifest_path=manifest_path)
        exported = export(ws, mdata, sel_params, selection, target)
    events.step("export", exported)
    events.step("long_texts", embedded_long_text_note(ws, mdata.keys.embed, map_params.embed.long_text))
    return exported


def _reproduce_scaled(ws: Workspace, man: dict, data: str | None, target: ExportTarget, events: Events) -> Exported:
    sel, embed_dir, map_dir = scale.reproduce_scaled(ws, man, data)
    if sorted(int(x) for x in sel.row_ids) != man["selected_row_ids"]:
        a, b = set(sel.row_ids.tolist()), set(man["selected_row_ids"])
        raise SieveError(f"reproduced subset differs from the manifest: {len(a - b)} row(s) added, "
                         f"{len(b - a)} missing")
    exported = export(ws, ScaledMap(Path(embed_dir), Path(map_dir)), SelectParams.from_dict(man["select"]), sel,
                      target)
    events.step("export", exported)
    return exported
