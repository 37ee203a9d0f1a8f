"""Workflows: the one layer the ``sieve`` CLI and the app's pages call.

``build_map``, ``select``, ``export`` (the rows and their manifest, written as a pair),
``run`` (ingest -> embed -> map -> select -> export) and ``reproduce`` chain the stages
through an *engine* (:class:`core.engines.base.Engine`): ``"local"`` (this process,
:class:`core.engines.local_engine.LocalEngine`) or ``"ray"`` (Parquet shards on a Ray
cluster, :class:`core.engines.ray.RayEngine`).  Every workflow takes the engine as an
argument, an Engine or its name (:func:`resolve_engine`); a map handle says which engine
made it (MapData: local, ShardedMap: Ray), so the steps over a handle need no engine.
What differs between engines lives in the engine classes; nothing here asks which one runs.
The front ends' smaller steps are here too: ``ingest`` (with a progress callback),
``edit_clusters`` of a local map, ``load_encoder``, ``start_warmup`` and ``wait_for_model``.

Nothing here prints.  Progress goes through :class:`Events` (the stage callbacks of
:mod:`core.engines.local`, ``on_step(name, value)`` after each finished step, ``on_wait``
when a local map queues behind another session); bad input raises
:class:`core.store.workspace.SieveError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Callable

from core.encoders.base import Encoder
from core.encoders.registry import load_encoder as registry_encoder
from core.runtime import warmup
from core.stages import ingest as ingest_stage
from core.stages import prewarm
from core.stages.dataset import DatasetInfo
from core.stages.embed import EmbedParams
from core.stages.ingest import IngestParams
from core.stages.long_texts import count_dataset
from core.store.workspace import SieveError, Workspace

from .curate import read_edits, stored_edits
from .engines import local
from .engines.base import Engine, not_run_by
from .engines.local import MapData, MapKeys, MapParams
from .engines.local_engine import METRICS_MAX_ROWS, long_text_note
from .engines.registry import engine_for, engine_from_options
from .manifest import build_manifest, read_manifest, verify_export
from .selection import Selection, SelectParams
from .workflow_types import LOCAL, Events, Exported, ExportTarget, MapHandle, RunResult

REPORT_VECTORS_MAX_ROWS = METRICS_MAX_ROWS  # larger subsets skip the vector metrics (diversity, coverage, ...)
StepProgress = Callable[[int, int, str], None]  # (done, total, message)


def resolve_engine(engine: Engine | str = LOCAL, *, encoder: Encoder | None = None, **options) -> Engine:
    """The Engine a workflow runs on: ``engine`` itself, or the engine of that name
    (core.engines.registry) with those of ``encoder`` and ``options`` (e.g. a command line's
    ``address``, ``workers``, ``shard_rows``, ``sample_size``, ``sample_seed``, ``backend``)
    it takes; None values keep its defaults.  An ``encoder`` given with an Engine that has
    one replaces it.  SieveError for an unknown name (``--engine must be local or ray``)."""
    if isinstance(engine, str):
        return engine_from_options(engine, {"encoder": encoder, **options})
    if encoder is not None and hasattr(engine, "encoder"):
        return replace(engine, encoder=encoder)
    return engine


def engine_limits(engine: Engine | str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What ``engine`` cannot run, as declared (core.engines.base.not_run_by): (SelectParams
    options it takes only at their defaults, pick methods it does not run)."""
    return not_run_by(resolve_engine(engine).name)


def recipe_default(engine: Engine | str, name: str, value):
    """``value`` (a front end's starting value for the SelectParams field ``name``, e.g. the
    harness's recipe DEFAULT_SOFT_NOISE) where ``engine`` runs that field, else the field's own
    default, which every engine takes (:func:`engine_limits`): a front end's default never gets
    an option refused."""
    options, _ = engine_limits(engine)
    return next(f.default for f in fields(SelectParams) if f.name == name) if name in options else value


def check_target(engine: Engine | str, target: ExportTarget) -> None:
    """Fail fast, before any work, on an output the engine cannot write (SieveError):
    local needs a known format; Ray writes Parquet shards only."""
    resolve_engine(engine).check_target(target)


@contextlib.contextmanager
def naming_edits_file(path: Path | str | None):
    """An edit that does not apply (``edit 2 (merge): ...``) names the edits file it came from."""
    try:
        yield
    except SieveError as exc:
        if path is not None and str(exc).startswith("edit "):
            raise SieveError(f"edits file {path}: {exc}") from None
        raise


def ingest(ws: Workspace, params: IngestParams, progress: StepProgress | None = None) -> tuple[DatasetInfo, bool]:
    """Load a dataset into the workspace (core.stages.ingest.ingest), reporting
    ``progress(done, total, message)``: (its info, whether it was already loaded).
    SieveError naming the file, column or parameter; a failure leaves the workspace as it was."""
    return ingest_stage.ingest(ws, params, progress=progress)


def load_encoder(model: str, device: str = "auto", normalize: bool = True, backend: str = "torch",
                 progress: StepProgress | None = None) -> Encoder:
    """The encoder of ``model`` on ``backend`` ("auto" resolved here; core.encoders.registry),
    reporting a one-time model preparation through ``progress(done, total, message)``.
    SieveError for an unknown backend or a model that cannot be loaded."""
    return registry_encoder(model, device=device, normalize=normalize, backend=backend, progress=progress)


def start_warmup() -> None:
    """Start, once per process and in a background thread, preparing the default model and
    compiling UMAP/HDBSCAN, so the first map does not wait for them (SIEVE_NO_WARMUP=1: not)."""
    if not os.environ.get("SIEVE_NO_WARMUP"):
        prewarm.start_background_warmup()


def wait_for_model(timeout: float | None = None) -> bool:
    """Block while the background warm-up prepares the default model (at most ``timeout``
    seconds; None: until done); True when that is done or no warm-up runs."""
    return warmup.wait_for_model(timeout)


def dataset_long_text_note(ws: Workspace, info: DatasetInfo, model: str) -> str | None:
    """How many texts of the current dataset are over ``model``'s token limit (counted with its
    tokenizer), as one sentence; None when none are, or the dataset brings its own vectors."""
    if info.vector_column:
        return None
    return count_dataset(ws, model).message() or None


def embedded_long_text_note(ws: Workspace, embed_key: str, mode: str) -> str | None:
    """After a local embedding: how many texts were over the model's limit and what ``mode``
    (truncate or chunk) did with them, as one sentence; None when none were."""
    return long_text_note(ws, embed_key, mode)


def embed(ws: Workspace, params: EmbedParams, *, engine: Engine | str = LOCAL, events: Events = Events()):
    """Embed the current dataset on ``engine`` (cached by model and text; resumable).  Local:
    an EmbedResult (core.stages.embed.run_embed); Ray: a ScaleEmbedResult (Parquet shards).
    Raises SieveError on an option the engine cannot honour."""
    return resolve_engine(engine).embed(ws, params, events)


def build_map(ws: Workspace, params: MapParams, *, engine: Engine | str = LOCAL, edits_path: Path | str | None = None,
              encoder: Encoder | None = None, events: Events = Events()) -> MapHandle:
    """Embed (if needed), project, cluster and label the current dataset on ``engine``
    (cached stages are skipped); returns the map handle (local: MapData).

    ``edits_path``: a JSON file of cluster edits applied on top (read before any work;
    an edit that does not apply names the file); ``encoder`` replaces the model of ``params``.
    Progress goes to ``events`` (local: ``on_wait(holder)`` when the map queues behind
    another computation that holds the workspace).  Raises SieveError on bad input;
    Cancelled (core.stages.embed) when the embedding is stopped."""
    eng = resolve_engine(engine, encoder=encoder)
    edits = read_edits(edits_path) if edits_path is not None else None
    with naming_edits_file(edits_path):
        return eng.map(ws, params, edits=edits, events=events)


def edit_clusters(ws: Workspace, edits: list[dict], base: MapData | None = None, *,
                  append: bool = False) -> MapKeys:
    """Make ``edits`` (core.curate: rename, merge, split) the cluster edits of the local map
    ``base`` (default: the workspace's latest map), replacing its earlier ones (``append``:
    after them), and make the result the workspace's current map.  Returns its keys
    (the base map's when no edit is left).  SieveError naming a bad edit; nothing is stored then."""
    keys, params = (base.keys, base.params) if base is not None else local.current_map(ws)
    if append:
        edits = stored_edits(ws, keys.label) + list(edits)
    return local.curate_map(ws, keys, edits, params)


def map_embeddings(ws: Workspace, params: MapParams, *, engine: Engine | str, events: Events = Events()) -> MapHandle:
    """Map the embeddings the workspace holds (from :func:`embed` on ``engine``) without
    embedding again (``sieve scale map``); the map handle.  Raises SieveError."""
    return resolve_engine(engine).map_embeddings(ws, params, events)


def current_map(ws: Workspace, engine: Engine | str = LOCAL) -> MapHandle:
    """The workspace's current map on ``engine``; SieveError when there is none."""
    return resolve_engine(engine).current_map(ws)


def select(ws: Workspace, handle: MapHandle, params: SelectParams, *, engine: Engine | str | None = None,
           remember: bool = True, encoder: Encoder | None = None) -> Selection:
    """Apply ``params`` to the map ``handle`` on ``engine`` (default: the kind of engine that
    made the handle; Ray: per-cluster picks in parallel).  ``remember`` keeps ``params`` as the
    workspace's selection (``sieve export`` repeats it) on an engine that keeps selections
    (local); ``encoder`` embeds a reference or target set (default: the map's model).
    Raises SieveError on parameters the engine cannot apply."""
    eng = resolve_engine(engine if engine is not None else engine_for(handle), encoder=encoder)
    selection = eng.select(ws, handle, params)
    if remember and eng.keeps_selection:
        ws.set_meta("selection", params.to_dict())
    return selection


def saved_selection(ws: Workspace) -> SelectParams:
    """The selection parameters the workspace remembers (from ``select``); SieveError without one."""
    saved = ws.get_meta("selection")
    if not saved:
        raise SieveError("no selection yet; run `sieve select --budget N` first")
    return SelectParams.from_dict(saved)


def report(handle: MapHandle, selection: Selection, params: SelectParams, *, engine: Engine | str | None = None):
    """The selection's metrics beside random subsets of the same size (local:
    core.engines.local.selection_report; the vector metrics only up to
    REPORT_VECTORS_MAX_ROWS rows); None on an engine without them (Ray)."""
    eng = resolve_engine(engine if engine is not None else engine_for(handle))
    return eng.report(handle, selection, params, max_vector_rows=REPORT_VECTORS_MAX_ROWS)


def manifest(ws: Workspace, data: MapData, params: SelectParams, selection: Selection, metrics,
             export_info: dict) -> dict:
    """The manifest of a local selection (core.manifest.build_manifest) with the map's own
    parameters (MapData.params)."""
    return build_manifest(data, data.params, params, selection, metrics, export_info)


def export(ws: Workspace, handle: MapHandle, params: SelectParams, selection: Selection, target: ExportTarget, *,
           metrics=None, engine: Engine | str | None = None) -> Exported:
    """Write the chosen rows and their manifest as a consistent pair, on ``engine`` (default:
    the kind that made ``handle``).

    Local map: one file (core.manifest.export_with_manifest; ``metrics`` from :func:`report`
    when not given).  Ray: a folder of Parquet part files and the manifest.  Paths are used
    as given (callers resolve or confine them).  Raises SieveError on a bad format or
    output, OSError on a disk failure (nothing half-written)."""
    eng = resolve_engine(engine if engine is not None else engine_for(handle))
    if metrics is None:
        metrics = report(handle, selection, params, engine=eng)
    return eng.export(ws, handle, selection, params, target, metrics=metrics)


def run(ws: Workspace, ingest_params: IngestParams, map_params: MapParams, sel_params: SelectParams,
        target: ExportTarget, *, engine: Engine | str = LOCAL, edits_path: Path | str | None = None,
        encoder: Encoder | None = None, events: Events = Events()) -> RunResult:
    """Everything: ingest -> embed -> map -> select -> export, on ``engine``.

    Steps reported through ``events.on_step``: ``dataset`` ((DatasetInfo, cached)), then the
    engine's map steps (local: ``map`` (MapData); Ray: ``embeddings`` (ScaleEmbedResult),
    ``scaled_map`` ((ScaleMapResult, map info dict))), ``selection`` ((handle, Selection,
    SelectParams, metrics), when the engine computes metrics), last ``export`` (Exported).
    ``encoder`` (local) replaces the model of ``map_params``.  Options the engine cannot
    honour (Engine.check_run) raise SieveError before any work."""
    eng = resolve_engine(engine, encoder=encoder)
    target = eng.check_run(map_params, sel_params, target, edits_path)
    edits = read_edits(edits_path) if edits_path is not None else None
    events.step("dataset", ingest(ws, ingest_params))
    t0 = time.perf_counter()
    with naming_edits_file(edits_path):
        handle = eng.map(ws, map_params, edits=edits, events=events)
    selection = select(ws, handle, sel_params, engine=eng)
    metrics = report(handle, selection, sel_params, engine=eng)
    if metrics is not None:
        events.step("selection", (handle, selection, sel_params, metrics))
    exported = eng.export(ws, handle, selection, sel_params, target, metrics=metrics)
    events.step("export", exported)
    return RunResult(handle, selection, exported, time.perf_counter() - t0)


def verify(manifest_path: Path | str) -> tuple[dict, str | None]:
    """Read a manifest and check the data file beside it (sha256): (manifest, the problem or None).
    Raises SieveError when the manifest cannot be read."""
    man = read_manifest(manifest_path)
    return man, verify_export(man, manifest_path)


def reproduce(ws: Workspace, manifest_path: Path | str, target: ExportTarget, *, data: str | None = None,
              encoder: Encoder | None = None, engine: Engine | None = None, events: Events = Events()) -> Exported:
    """Rebuild the exact subset of a manifest and export it with a new manifest; SieveError
    when the row ids differ (a failure leaves the workspace as it was).

    The engine is the manifest's (``engine``: one of that kind with its options; Ray:
    ``target.path`` is a new folder of Parquet shards).  Steps reported (Engine.reproduce):
    local ``warning`` (a data file beside the manifest that does not match it), ``export``
    (Exported), ``long_texts`` (a note or None); Ray ``export``.  ``encoder`` (local)
    replaces the manifest's model."""
    man = read_manifest(manifest_path)
    kind = man.get("engine", LOCAL)
    eng = resolve_engine(engine if engine is not None else kind, encoder=encoder)
    if eng.name != kind:
        raise SieveError(f"manifest {manifest_path} was written by the {kind} engine, not {eng.name}")
    return eng.reproduce(ws, man, manifest_path, target, data=data, events=events)
