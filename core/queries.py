"""Queries: what the pages and the CLI ask of the workspace and the machine, read-only.

The front ends (``pages/``, ``core/cli/``) call only :mod:`core.workflows` and the explore
layer; this module is the explore layer's door to what lies below it for display: the
dataset's info and texts, a map's keys and arrays, an encoder's caption, the warm-up's
state and the time a map will take, token and long-text counts, a selection's metrics,
the server's folders and path confinement, and a few display formats.  Each function
here is the public entry point for its question; the functions it calls stay where they
are.  Nothing here changes the workspace, except caching what it computed (token counts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from core.encoders.long_text import LongTextCount
from core.encoders.models import confine_model
from core.encoders.onnx import is_exported
from core.encoders.registry import backend_caption
from core.engines import local
from core.engines.local import MapData, MapKeys, MapParams
from core.map_sidecar import map_sidecar_bytes, map_sidecar_name
from core.runtime import eta, warmup
from core.runtime.hardware import usable_cores
from core.selection import Selection, SelectParams, describe, engine_picks
from core.selection.inputs import token_counts
from core.stages import metrics
from core.stages.dataset import DatasetInfo, current_dataset, load_texts, unescape_template
from core.stages.embed import EmbedParams, embed_key
from core.stages.export import format_for
from core.stages.long_texts import count_dataset
from core.store import paths
from core.store.artifacts import canonical_json
from core.store.query import run_filter
from core.store.workspace import DEFAULT_WORKSPACE, SieveError, Workspace, database_error, is_damage

# -- the dataset ----------------------------------------------------------------------------


def dataset(ws: Workspace) -> DatasetInfo:
    """The workspace's current dataset (core.stages.dataset.current_dataset); SieveError when none was loaded."""
    return current_dataset(ws)


def dataset_or_none(ws: Workspace) -> DatasetInfo | None:
    """The workspace's current dataset, or None when none was loaded."""
    try:
        return current_dataset(ws)
    except SieveError:
        return None


def texts(ws: Workspace) -> tuple[np.ndarray, list[str]]:
    """(row ids (n,) int64, texts list[str]) of the current dataset's embeddable rows, in
    row-id order (core.stages.dataset.load_texts); SieveError without a dataset."""
    row_ids, text_list, _ = load_texts(ws)
    return row_ids, text_list


def long_text_count(ws: Workspace, model: str) -> LongTextCount:
    """How many texts of the current dataset are over ``model``'s token limit, counted with
    its tokenizer (core.stages.long_texts.count_dataset); SieveError without a dataset."""
    return count_dataset(ws, model)


def template_text(typed: str) -> str:
    """A text template as typed in a shell or a text box, with ``\\n`` and ``\\t`` turned
    into a new line and a tab (core.stages.dataset.unescape_template)."""
    return unescape_template(typed)


def filter_row_ids(ws: Workspace, where: str) -> np.ndarray:
    """Row ids (n,) int64 of the current dataset's rows matching the SQL ``where`` clause,
    run in the sandbox (core.store.query.run_filter); SieveError for a bad or refused clause."""
    return np.asarray(run_filter(ws, where), dtype=np.int64)


# -- maps -------------------------------------------------------------------------------------


def map_keys(ws: Workspace, map_id: str | None = None) -> MapKeys | None:
    """The keys of the map ``map_id`` (a ``MapKeys.map_id``) when it is a map of the current
    dataset, else of the workspace's latest map of it; None when there is none."""
    if map_id:
        try:
            return local.map_by_label(ws, map_id)[0]
        except SieveError:
            pass
    try:
        return local.current_map(ws)[0]
    except SieveError:
        return None


def map_record(ws: Workspace) -> tuple[MapKeys, MapParams]:
    """(keys, parameters) of the workspace's latest map, without loading its arrays;
    SieveError when it has no map of the current dataset."""
    return local.current_map(ws)


def map_data(ws: Workspace, keys: MapKeys) -> MapData:
    """The map ``keys`` as aligned arrays (core.engines.local.load_map); SieveError when the
    map or its record is missing, or its stages do not match."""
    return local.load_map(ws, keys)


def embeddings_cached(ws: Workspace, params: EmbedParams) -> bool:
    """Whether the current dataset's vectors for ``params`` are already in the workspace."""
    return ws.has_artifact("embed", embed_key(ws, params)[0])


def map_file_name(manifest_name: Path | str) -> str:
    """The name of the map file that travels beside a manifest (``x.manifest.json`` ->
    ``x.manifest.map.npz``; core.map_sidecar)."""
    return map_sidecar_name(manifest_name)


def map_file_bytes(data: MapData) -> bytes:
    """The map file (an .npz of the map's arrays) of ``data`` as bytes, for a download."""
    return map_sidecar_bytes(data)


# -- selection --------------------------------------------------------------------------------


def selection_metrics(data: MapData, selection: Selection, params: SelectParams, *, vectors: bool = True):
    """A selection's metrics beside random subsets of the same size
    (core.engines.local.selection_report); ``vectors=False`` skips the vector metrics
    (diversity, facility value, near duplicates, reference coverage)."""
    return local.selection_report(data, selection, params, vectors=vectors)


def selection_key(map_id: str | None, params: SelectParams) -> str:
    """A string that identifies a selection: its map and parameters (canonical JSON)."""
    return canonical_json({"map": map_id, "params": params.to_dict()})


def token_total(ws: Workspace, data: MapData, tokenizer: str) -> int:
    """Tokens in all the map's rows (``tokenizer``: 'model' or 'words'; counts are cached
    in the workspace, core.selection.inputs.token_counts)."""
    return int(np.asarray(token_counts(ws, data, tokenizer)).sum())


def pick_help(engine: str | None = None) -> str:
    """One line per pick method ('name: summary'; only ``engine``'s when given), for help texts."""
    return describe(engine)


def engine_pick_names(engine: str) -> tuple[str, ...]:
    """The pick methods ``engine`` ('local' or 'ray') runs, in registration order."""
    return engine_picks(engine)


def metric_aims(policy: str, pick: str) -> dict[str, tuple[str, bool]]:
    """{metric key: (what a ``policy``/``pick`` subset aims at there, whether the metric
    judges it)} (core.stages.metrics.metric_aims)."""
    return metrics.metric_aims(policy, pick)


def fmt_distance(value: float | None, signed: bool = False) -> str:
    """A cosine distance for display (core.stages.metrics.fmt_distance): 'n/a' for None."""
    return metrics.fmt_distance(value, signed)


# -- encoders, warm-up, time ----------------------------------------------------------------


def encoder_caption(backend: str) -> str:
    """One line: what embedding ``backend`` is, with its measured speed and agreement."""
    return backend_caption(backend)


def model_path(name: str, root: Path | str | None) -> str:
    """A model name or folder as given, a folder confined to ``root`` in server mode
    (core.encoders.models.confine_model); SieveError outside it."""
    return confine_model(name, root)


def model_prepared(model: str) -> bool:
    """Whether ``model``'s int8 ONNX export is already in the cache."""
    return is_exported(model)


def warmup_state() -> dict[str, bool]:
    """What the background warm-up has finished: {"started", "model", "compiled", "knn"}."""
    return warmup.warmup_state()


def map_time_estimate(ws: Workspace, info: DatasetInfo, params: MapParams) -> str:
    """'about 40 s' (and what that includes) to compute a map of ``info`` with ``params`` on
    this machine, from core.runtime.eta's throughput table and what is cached or warm."""
    e = params.embed
    embedded = bool(info.vector_column) or embeddings_cached(ws, e)
    ready = True
    if e.backend == "onnx-int8" and not embedded:
        ready = is_exported(e.model)
    compiled = warmup.warmup_state()["compiled"]
    secs = eta.estimate_map_seconds(info.n_embeddable - info.n_duplicates, e.backend, cores=usable_cores(),
                                    gpu=e.device in ("cuda", "mps"), embedded=embedded, model_ready=ready,
                                    compiled=compiled)
    extra = [] if ready else ["the one-time int8 model preparation"]
    if not compiled:
        extra.append("compiling UMAP/HDBSCAN once")
    return eta.human_seconds(secs) + (f", including {' and '.join(extra)}" if extra else "")


def remaining_seconds(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left at the throughput measured so far (None before the first item)."""
    return eta.remaining_seconds(done, total, elapsed)


def human_seconds(seconds: float) -> str:
    """'about 40 s', 'about 3 min', 'about 1.5 h' (rounded up a little)."""
    return eta.human_seconds(seconds)


# -- paths and files --------------------------------------------------------------------------


def data_root() -> Path | None:
    """Server mode: $SIEVE_DATA_DIR, the only folder typed paths may read; else None."""
    return paths.data_root()


def export_root(ws: Workspace) -> Path:
    """Where a server may write exports: $SIEVE_EXPORT_DIR, else <workspace>/exports."""
    return paths.export_root(ws.root)


def confine_read(raw: str, what: str = "data path") -> str:
    """A typed path to read: confined to $SIEVE_DATA_DIR in server mode (SieveError outside
    it, naming ``what``), else as typed (stripped)."""
    root = paths.data_root()
    return paths.confine_read(raw, root, what) if root else str(raw).strip()


def confine_write(raw: str, root: Path | str, what: str = "export path", folder: str = "export folder") -> Path:
    """A file name typed by a web user, as a path inside ``root`` (never through a link);
    SieveError naming ``what`` otherwise (core.store.paths.confine_write)."""
    return paths.confine_write(raw, root, what, folder)


def check_new_files(files: Iterable[Path], *, overwrite: bool) -> None:
    """SieveError naming the first of ``files`` that exists, unless ``overwrite``."""
    paths.check_new_files(list(files), overwrite=overwrite)


def export_format(path: Path | str, fmt: str | None = None) -> str:
    """The export format ('parquet', 'jsonl' or 'csv') of ``fmt``, else of ``path``'s
    extension; SieveError for an unknown one."""
    return format_for(path, fmt)


def database_failure(exc: BaseException, workspace: Path | str | None) -> SieveError:
    """One line for a DuckDB error: a damaged workspace database names its file (of the
    workspace folder ``workspace``), any other error gives its first 300 characters."""
    if is_damage(exc):
        return database_error(Workspace(workspace or DEFAULT_WORKSPACE).db_path, exc)
    return SieveError(f"DuckDB error: {' '.join(str(exc).split())[:300]}")
