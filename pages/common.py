"""Shared by the pages: session-state key constants, the two cached resources
(model, workspace), and small helpers that load core objects into session state.

Rules: pages read session state only through the constants below; st.cache_resource
holds only the encoder and the Workspace handle; everything computed per session
lives in st.session_state (keyed by the map/params it was computed from).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import streamlit as st

from core.store import paths
from core.palette import cluster_centres, cluster_colors, name_annotations
from core.store.workspace import DEFAULT_WORKSPACE, SieveError, Workspace
from core.store.artifacts import canonical_json

log = logging.getLogger("sieve.app")

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_PATH = REPO_ROOT / "sample_data" / "prompts.csv"
SAMPLE_TEXT_COLUMN = "text"
MAX_DRAWN = 100_000
AUTO_DIVERSITY_MAX = 20_000  # larger subsets compute the NN diversity on request

PAGE_DATA = "pages/data.py"
PAGE_MAP = "pages/map.py"
PAGE_BUDGET = "pages/budget.py"
PAGE_EXPORT = "pages/export.py"
PAGE_SCALE = "pages/scale.py"

# -- session-state keys (app state) ---------------------------------------------------
K_AUTOLOADED = "sieve.autoloaded"  # bool: the sample was auto-loaded once this session
K_MAP = "sieve.map"  # core.pipeline.MapData of the current map
K_MAP_KEY = "sieve.map_key"  # its MapKeys.map_id (label key, or curate key with cluster edits)
K_TEXTS = "sieve.texts"  # list[str] aligned with K_MAP rows
K_FIG = "sieve.fig"  # {"key": ..., "fig": go.Figure, "traces": [positions per trace]}
K_CHART_VERSION = "sieve.chart_version"  # bumped to reset the chart widget
K_SELECTED = "sieve.selected_ids"  # np.ndarray of selected row ids (sorted)
K_SELECTED_HOW = "sieve.selected_how"  # a short description of the last selection
K_SHAPES = "sieve.selected_shapes"  # plotly layout.selections of the last box/lasso (redrawn with the map)
K_PINS = "sieve.pins"  # set[int] row ids always included
K_BANS = "sieve.bans"  # set[int] row ids never included
K_PINBAN_DATASET = "sieve.pinban_dataset"  # dataset key the pins/bans belong to
K_DATASET_PIN = "sieve.dataset_pin"  # {"info": DatasetInfo dict, "file_format"}: the dataset this session works on
K_SELECT_PARAMS = "sieve.select_params"  # last core.select.SelectParams from the Budget page
K_SELECTION = "sieve.selection"  # {"key", "selection", "metrics"} cache
K_MAP_RUN = "sieve.map_run"  # {"timings", "cached"} of the last Compute map
K_COMPUTING = "sieve.computing"  # True while build_map runs (detects an interrupted run)
K_FLASH = "sieve.flash"  # list[(level, message)] shown once at the next page render
K_TABLE_BASE = "sieve.cluster_table_base"  # base DataFrame of the per-cluster editor
K_TABLE_WKEY = "sieve.cluster_table_wkey"  # its widget key
K_TABLE_SEQ = "sieve.cluster_table_seq"
K_UPLOADS = "sieve.uploads"  # {uploaded file id: saved path}
K_SEARCH = "sieve.search"  # {"key": (map key, query), "mask": bool array}
K_WANT_DIVERSITY = "sieve.want_diversity"  # the user asked for the NN diversity of a large subset
K_SAVE_DEFAULT = "sieve.save_default"  # the default file name last offered on the Export page
K_LAST_SAVE = "sieve.last_save"  # {"path", "manifest", "rows"} of the last Save on the Export page
K_SCALE_MAP_DIR = "sieve.scale.map_dir"  # str: the sharded map the At-scale page shows
K_SCALE_FIG = "sieve.scale.fig"  # {"key": map key, "fig", "ids": drawn row ids} of the At-scale page
K_SCALE_CHART_VERSION = "sieve.scale.chart_version"  # bumped to reset its chart widget
K_SCALE_SELECTED = "sieve.scale.selected_ids"  # np.ndarray of row ids inside the shapes (all rows)
K_SCALE_SELECTED_HOW = "sieve.scale.selected_how"
K_SCALE_SELECTION = "sieve.scale.selection"  # {"key", "selection": core.selection.Selection, "params"}
K_SCALE_LAST_EXPORT = "sieve.scale.last_export"  # {"path", "manifest", "rows"}
K_SCALE_BUILD = "sieve.scale.build"  # {"timings"} of the last in-app sharded build

# Canonical (persisted) values of widgets.  Widget state is dropped when a page is
# left, so each widget is initialised from its canonical key on the next visit.
C_SOURCE_KIND = "sieve.c.source_kind"
C_SOURCE_PATH = "sieve.c.source_path"
C_TEXT_MODE = "sieve.c.text_mode"
C_TEXT_COLUMN = "sieve.c.text_column"
C_TEMPLATE = "sieve.c.template"
C_VECTOR_COLUMN = "sieve.c.vector_column"
C_SCORE_COLUMN = "sieve.c.score_column"
C_FILE_FORMAT = "sieve.c.file_format"
C_MAP_SETTINGS = "sieve.c.map_settings"  # dict of the advanced map settings
C_FILTER = "sieve.c.cluster_filter"
C_SEARCH = "sieve.c.search"
C_HIGHLIGHT = "sieve.c.highlight"
C_BUDGET = "sieve.c.budget"
C_POLICY = "sieve.c.policy"
C_NOISE = "sieve.c.noise"
C_NOISE_BUDGET = "sieve.c.noise_budget"
C_MIN = "sieve.c.min_per_cluster"
C_MAX = "sieve.c.max_per_cluster"
C_PER_CLUSTER_MODE = "sieve.c.per_cluster_mode"
C_SLIDERS = "sieve.c.sliders"  # {cluster id: rows} of the slider mode
C_TABLE = "sieve.c.cluster_table"  # {cluster id: (min, max, override)} of the table mode
C_PICK = "sieve.c.pick"
C_ASCENDING = "sieve.c.ascending"
C_SEED = "sieve.c.seed"
C_DEDUP = "sieve.c.dedup"
C_NEAR_DUP = "sieve.c.near_dup_threshold"
C_MMR_LAMBDA = "sieve.c.mmr_lambda"
C_RELEVANCE = "sieve.c.mmr_relevance"  # a score column as the mmr relevance, or "" for the centre
C_SOFT_NOISE_ON = "sieve.c.soft_noise_on"
C_SOFT_NOISE = "sieve.c.soft_noise_threshold"
C_UNIT = "sieve.c.budget_unit"
C_TOKENIZER = "sieve.c.tokenizer"
C_TOKEN_BUDGET = "sieve.c.token_budget"
C_STRATA = "sieve.c.strata_column"
C_REFERENCE = "sieve.c.reference_path"
C_REFERENCE_TEXT = "sieve.c.reference_text"
C_TARGET = "sieve.c.target_path"
C_TARGET_TEXT = "sieve.c.target_text"
C_LEAKAGE = "sieve.c.leakage"
C_LEAKAGE_THRESHOLD = "sieve.c.leakage_threshold"
C_COVERAGE_DISTANCE = "sieve.c.coverage_distance"
C_INCLUDE_DUPLICATES = "sieve.c.include_duplicates"
C_FORMAT = "sieve.c.export_format"
C_SAVE_PATH = "sieve.c.save_path"
C_SCALE_BUDGET = "sieve.c.scale_budget"
C_SCALE_POLICY = "sieve.c.scale_policy"
C_SCALE_PICK = "sieve.c.scale_pick"
C_SCALE_SEED = "sieve.c.scale_seed"
C_SCALE_NOISE = "sieve.c.scale_noise"
C_SCALE_MIN = "sieve.c.scale_min"
C_SCALE_MAX = "sieve.c.scale_max"
C_SCALE_ON_RAY = "sieve.c.scale_on_ray"
C_SCALE_SAMPLE = "sieve.c.scale_sample_size"
C_SCALE_SHARD_ROWS = "sieve.c.scale_shard_rows"
C_SCALE_FOLDER = "sieve.c.scale_folder"
C_SCALE_DRAWN = "sieve.c.scale_drawn"

# Widget keys.
W_BUDGET_SLIDER = "w.budget_slider"
W_BUDGET_NUMBER = "w.budget_number"
W_BUDGET_APPLY = "w.budget_apply"  # the total budget form's submit button
W_SLIDERS_APPLY = "w.sliders_apply"  # the per-cluster sliders form's submit button
W_ASCENDING = "w.ascending"
W_BAN = "w.ban"
W_CLEAR = "w.clear"
W_COVERAGE_DISTANCE = "w.coverage_distance"
W_DEDUP = "w.dedup"
W_INCLUDE_DUPLICATES = "w.include_duplicates"
W_LEAKAGE = "w.leakage"
W_LEAKAGE_THRESHOLD = "w.leakage_threshold"
W_MMR_LAMBDA = "w.mmr_lambda"
W_NEAR_DUP = "w.near_dup"
W_REFERENCE = "w.reference"
W_REFERENCE_TEXT = "w.reference_text"
W_TARGET = "w.target"
W_TARGET_TEXT = "w.target_text"
W_RELEVANCE = "w.relevance"
W_SOFT_NOISE = "w.soft_noise"
W_SOFT_NOISE_ON = "w.soft_noise_on"
W_STRATA = "w.strata"
W_TOKEN_BUDGET = "w.token_budget"
W_TOKENIZER = "w.tokenizer"
W_UNIT = "w.budget_unit"
W_CLEAR_BANS = "w.clear_bans"
W_CLEAR_PINS = "w.clear_pins"
W_COMPUTE = "w.compute"
W_DIVERSITY = "w.diversity"
W_DOWNLOAD = "w.download"
W_DOWNLOAD_MANIFEST = "w.download_manifest"
W_DOWNLOAD_MAP = "w.download_map"
W_FILE_FORMAT = "w.file_format"
W_FILTER = "w.filter"
W_FORMAT = "w.format"
W_HIGHLIGHT = "w.highlight"
W_LOAD = "w.load"
W_SWITCH_DATASET = "w.switch_dataset"
W_RELOAD_DATASET = "w.reload_dataset"
W_MATCH_PAGE = "w.match_page"
W_MAX = "w.max"
W_MIN = "w.min"
W_MODE = "w.mode"
W_NOISE = "w.noise"
W_NOISE_BUDGET = "w.noise_budget"
W_PICK = "w.pick"
W_PIN = "w.pin"
W_POLICY = "w.policy"
W_SAVE = "w.save"
W_SAVE_PATH = "w.save_path"
W_OVERWRITE = "w.overwrite"
W_SCORE = "w.score"
W_SCORE_COLUMN = "w.score_column"
W_SEARCH = "w.search"
W_SEED = "w.seed"
W_SELECT_MATCHES = "w.select_matches"
W_SEL_PAGE = "w.sel_page"
W_SOURCE_KIND = "w.source_kind"
W_SOURCE_PATH = "w.source_path"
W_SQL_SELECT = "w.sql_select"
W_SQL_WHERE = "w.sql_where"
W_STOP = "w.stop"
W_TEMPLATE = "w.template"
W_TEXT_COLUMN = "w.text_column"
W_TEXT_MODE = "w.text_mode"
W_UPLOAD = "w.upload"
W_VECTOR_COLUMN = "w.vector_column"
W_SCALE_BUDGET = "w.scale.budget"
W_SCALE_POLICY = "w.scale.policy"
W_SCALE_PICK = "w.scale.pick"
W_SCALE_SEED = "w.scale.seed"
W_SCALE_NOISE = "w.scale.noise"
W_SCALE_MIN = "w.scale.min"
W_SCALE_MAX = "w.scale.max"
W_SCALE_ON_RAY = "w.scale.on_ray"
W_SCALE_SELECT = "w.scale.select"
W_SCALE_SAMPLE = "w.scale.sample_size"
W_SCALE_SHARD_ROWS = "w.scale.shard_rows"
W_SCALE_BUILD = "w.scale.build"
W_SCALE_PIN = "w.scale.pin"
W_SCALE_BAN = "w.scale.ban"
W_SCALE_CLEAR = "w.scale.clear"
W_SCALE_FOLDER = "w.scale.folder"
W_SCALE_DRAWN = "w.scale.drawn"
W_SCALE_EXPORT = "w.scale.export"
W_SCALE_OVERWRITE = "w.scale.overwrite"
W_SCALE_MANIFEST = "w.scale.download_manifest"
W_MAP_PREFIX = "w.map."  # + setting name (Map page advanced settings)
W_SLIDER_PREFIX = "w.slider."  # + map key + "." + cluster id (Budget page sliders)
W_TABLE_PREFIX = "w.cluster_table."  # + a counter (Budget page per-cluster editor)


def ss() -> Any:
    return st.session_state


# -- text from data or users, in anything Streamlit renders as markdown ------------------------

_MD_ESCAPE = re.compile(r"([\\`*_\[\]()<>!#|~$:{}])")
# GFM autolinks (remark-gfm) are found in the text *after* escapes are decoded, so no
# escape stops them: a zero-width space after the scheme, "www" or "@" breaks the pattern.
_AUTOLINK = re.compile(r"(?i)(\b(?:https?|ftp|mailto|file|data|javascript)(?=:)|\bwww(?=\.)|@)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
ZWSP = "\u200b"


def esc(text: Any) -> str:
    """``text`` (from data or a user: column and cluster names, file names, messages that
    quote them) made inert for Streamlit's markdown: every character that starts an image,
    link, emphasis, code, HTML, LaTeX or emoji is backslash-escaped, autolinks (``http:``,
    ``www.``, ``a@b``) are broken by a zero-width space, control characters become ``?``
    and line breaks spaces, so it renders as typed.  Use it for every message, label,
    help text and caption that carries such text."""
    s = _CONTROL.sub("?", "" if text is None else str(text)).replace("\r", " ").replace("\n", " ")
    return _MD_ESCAPE.sub(r"\\\1", _AUTOLINK.sub(lambda m: m.group(0) + ZWSP, s))


def show_error(exc_or_message: BaseException | str) -> None:
    """One escaped st.error line for an exception (see report_error) or a message."""
    msg = report_error(exc_or_message) if isinstance(exc_or_message, BaseException) else exc_or_message
    st.error(esc(msg))


# -- cached resources (only these two) ----------------------------------------------------


def workspace_root() -> str:
    return os.environ.get("SIEVE_WORKSPACE") or DEFAULT_WORKSPACE


def data_root() -> Path | None:
    """Server mode: $SIEVE_DATA_DIR is the only folder typed paths may read (core.store.paths)."""
    return paths.data_root()


def export_root(ws: Workspace) -> Path:
    """Where "Save" may write on the server: $SIEVE_EXPORT_DIR, else <workspace>/exports."""
    return paths.export_root(ws.root)


def confine_read(raw: str, what: str = "data path") -> str:
    """A typed path to read: confined to $SIEVE_DATA_DIR in server mode, else as typed."""
    root = data_root()
    return paths.confine_read(raw, root, what) if root else str(raw).strip()


@st.cache_resource(show_spinner=False)
def _workspace(root: str) -> Workspace:
    return Workspace(root)


def get_workspace() -> Workspace:
    return _workspace(workspace_root())


@st.cache_resource(show_spinner=False, max_entries=2)
def get_encoder(model: str, device: str, normalize: bool, backend: str = "torch", _progress=None):
    """The encoder (cached per process); ``_progress(done, total, msg)`` hears the one-time
    model preparation (not part of the cache key)."""
    from core.encoders.registry import load_encoder

    return load_encoder(model, device=device, normalize=normalize, backend=backend, progress=_progress)


# -- errors -----------------------------------------------------------------------------


def flash(level: str, message: str) -> None:
    ss().setdefault(K_FLASH, []).append((level, message))


def show_flash() -> None:
    for level, message in ss().pop(K_FLASH, []):
        getattr(st, level, st.info)(esc(message))


def report_error(exc: BaseException) -> str:
    """One line for the UI (SieveError's own message; never a traceback)."""
    from core.stages.embed import Cancelled

    if isinstance(exc, SieveError):
        return str(exc)
    if isinstance(exc, Cancelled):
        return str(exc)
    log.exception("unexpected error in the app")
    if isinstance(exc, OSError) and getattr(exc, "filename", None):
        return f"{exc.strerror or exc} ({exc.filename})"
    return f"unexpected {type(exc).__name__}: {exc}"


def start_warmup() -> None:
    """Compile UMAP/HDBSCAN once per process in a background thread, so the first map is
    not slowed by numba compilation (idempotent; SIEVE_NO_WARMUP=1 turns it off)."""
    if not os.environ.get("SIEVE_NO_WARMUP"):
        from core.stages.prewarm import start_background_warmup

        start_background_warmup()


def _leave_pages_directory_mode() -> None:
    """A server whose very first visitor opens a deep link (/map) runs that page in
    Streamlit's old pages/-directory mode: app.py, its st.navigation and page config are
    skipped, and the sidebar lists every file in pages/.  Switch that mode off and rerun,
    so app.py runs and resolves the same URL (private Streamlit API; a no-op if it moves)."""
    if "streamlit.testing.v1.app_test" in sys.modules:
        return  # AppTest resets that mode before every run and drives pages by script hash; leave it be
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - a Streamlit without it
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


def run_page(body: Callable[[], None]) -> None:
    """Render a page; any error becomes one st.error line (never a traceback)."""
    _leave_pages_directory_mode()
    show_flash()
    try:
        body()
    except Exception as exc:  # Streamlit's own rerun/stop signals are BaseException, not caught here
        show_error(exc)
    finally:
        start_warmup()  # after the page is drawn, so importing umap never delays the first paint


def safe_callback(fn: Callable) -> Callable:
    """Widget callbacks run outside the page body; keep their errors off the UI too."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            flash("error", report_error(exc))

    return wrapper


# -- persisted widget values ---------------------------------------------------------------


def init_widget(wkey: str, ckey: str, default: Any) -> None:
    """Give a widget its persisted value when it (re)appears."""
    if wkey not in ss():
        ss()[wkey] = ss().get(ckey, default)


def persist(wkey: str, ckey: str) -> Callable[[], None]:
    def cb():
        ss()[ckey] = ss()[wkey]

    return cb


# -- dataset / map in session state ----------------------------------------------------------


def current_dataset_or_none(ws: Workspace):
    from core.stages.dataset import current_dataset

    try:
        return current_dataset(ws)
    except SieveError:
        return None


def _reset_map_state() -> None:
    for k in (K_MAP, K_MAP_KEY, K_TEXTS, K_FIG, K_SELECTED, K_SELECTED_HOW, K_SHAPES, K_SELECTION, K_TABLE_BASE,
              K_TABLE_WKEY, K_SEARCH):
        ss().pop(k, None)


def sync_pins_bans(dataset_key: str) -> None:
    """Pins, bans and per-cluster settings name row/cluster ids of one dataset: drop them when it changes."""
    previous = ss().get(K_PINBAN_DATASET)
    ss()[K_PINBAN_DATASET] = dataset_key
    if previous is not None and previous != dataset_key:
        ss()[K_PINS] = set()
        ss()[K_BANS] = set()
        for k in (C_SLIDERS, C_TABLE, C_FILTER):
            ss().pop(k, None)


def pin_dataset(info, file_format: str | None = None) -> None:
    """This session works on ``info`` (a DatasetInfo) from now on."""
    ss()[K_DATASET_PIN] = {"info": info.to_dict(), "file_format": file_format}


def session_dataset(ws: Workspace):
    """The workspace's dataset if it is the one this session works on (pinned on first
    sight), else None after saying that the workspace moved on (another session or a
    `sieve run` in the same folder loaded another file) with buttons to switch to it or
    to load this session's dataset back.  Nothing of the other dataset is shown meanwhile,
    and this session's pins, bans and map stay."""
    info = current_dataset_or_none(ws)
    pin = ss().get(K_DATASET_PIN)
    if info is None or pin is None or pin["info"]["key"] == info.key:
        if info is not None:
            pin_dataset(info, (pin or {}).get("file_format") if pin and pin["info"]["key"] == info.key else None)
        return info
    mine = pin["info"]
    st.warning(f"The workspace moved on: it now holds {info.n_rows:,} rows from {_sources(info.sources)} "
               f"(loaded by another session or a `sieve` command in the same workspace). This session works on "
               f"{mine['n_rows']:,} rows from {_sources(mine['sources'])}; its pins, bans and map are kept.")
    c1, c2, _ = st.columns([1, 1, 2])
    c1.button("Switch to the new dataset", key=W_SWITCH_DATASET, on_click=_switch_dataset, args=(info.to_dict(),),
              help="Drops this session's pins, bans and map of the old dataset.")
    c2.button("Load my dataset back", key=W_RELOAD_DATASET, on_click=_reload_dataset,
              help="Reads this session's files again into the workspace; its cached map comes back.")
    return None


def _sources(sources: list[str]) -> str:
    return esc(", ".join(Path(x).name for x in sources[:2]) + (" …" if len(sources) > 2 else ""))


@safe_callback
def _switch_dataset(info: dict) -> None:
    from core.stages.dataset import DatasetInfo

    pin_dataset(DatasetInfo.from_dict(info))
    ss().pop(K_MAP_RUN, None)
    _reset_map_state()


@safe_callback
def _reload_dataset() -> None:
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec

    pin = ss()[K_DATASET_PIN]
    mine = pin["info"]
    params = IngestParams(tuple(mine["sources"]), TextSpec(**mine["text"]), mine["vector_column"], pin["file_format"],
                          delimiter=mine.get("delimiter"), encoding=mine.get("encoding"))
    info, _ = ingest(get_workspace(), params)
    if info.key != mine["key"]:  # the files changed since: this is a new dataset
        flash("warning", "The files changed since this session loaded them: loaded them as a new dataset.")
        pin_dataset(info, pin["file_format"])
    else:
        flash("success", f"Loaded this session's dataset back ({info.n_rows:,} rows).")


def dataset_or_guidance(ws: Workspace):
    """This session's dataset, or None after telling the user to load one (with a link)
    or that the workspace moved on (see :func:`session_dataset`)."""
    if current_dataset_or_none(ws) is not None:
        return session_dataset(ws)
    info = None
    if info is None:
        need("No dataset is loaded yet. Choose one on the Data page first.", PAGE_DATA, "Go to Data",
             ":material/description:")
    return info


def map_or_guidance(ws: Workspace):
    """This session's map, or None after telling the user to compute one (with a link)."""
    data = get_map(ws)
    if data is None:
        need("There is no map of this dataset yet. Compute it on the Map page first.", PAGE_MAP, "Go to Map",
             ":material/scatter_plot:")
    return data


def get_map(ws: Workspace, label_key: str | None = None):
    """This session's map (or None).

    A session keeps its own map's label key: another session computing a map with
    other settings never changes what this one shows.  A new session starts from the
    workspace's latest map.  ``label_key`` switches this session to that map (after
    it computed one).
    """
    from core.stages.dataset import load_texts
    from core.engines.local import current_map, load_map, map_by_label

    info = current_dataset_or_none(ws)
    if info is None:
        _reset_map_state()
        return None
    sync_pins_bans(info.key)
    want = label_key or ss().get(K_MAP_KEY)
    try:
        keys = map_by_label(ws, want)[0] if want else None
    except SieveError:
        keys = None
    if keys is None:
        try:
            keys, _ = current_map(ws)
        except SieveError:
            _reset_map_state()
            return None
    if ss().get(K_MAP_KEY) == keys.map_id and K_MAP in ss():
        return ss()[K_MAP]
    if ss().get(K_MAP_KEY) is not None:  # another map: its cluster ids mean other clusters
        for k in (C_SLIDERS, C_TABLE, C_FILTER):
            ss().pop(k, None)
    _reset_map_state()
    data = load_map(ws, keys)
    row_ids, texts, _ = load_texts(ws)
    if not np.array_equal(np.asarray(row_ids), np.asarray(data.row_ids)):
        raise SieveError("the dataset changed since the map was computed; compute the map again")
    ss()[K_MAP] = data
    ss()[K_MAP_KEY] = keys.map_id
    ss()[K_TEXTS] = texts
    ss()[K_SELECTED] = np.zeros(0, np.int64)
    return data


def pins() -> set[int]:
    return ss().setdefault(K_PINS, set())


def bans() -> set[int]:
    return ss().setdefault(K_BANS, set())


def pin_rows(ids) -> None:
    """Pin ``ids`` (always included; no longer banned) and say so at the next render."""
    ids = {int(i) for i in ids}
    pins().update(ids)
    bans().difference_update(ids)
    flash("success", f"Pinned {len(ids):,} row(s): they are always included.")


def ban_rows(ids) -> None:
    """Ban ``ids`` (never included; no longer pinned) and say so at the next render."""
    ids = {int(i) for i in ids}
    bans().update(ids)
    pins().difference_update(ids)
    flash("success", f"Banned {len(ids):,} row(s): they are never included.")


def selected_ids() -> np.ndarray:
    return ss().get(K_SELECTED, np.zeros(0, np.int64))


# -- selection (Budget / Export) ---------------------------------------------------------------


def current_selection(ws: Workspace, data, params, *, diversity: bool | None = None) -> dict:
    """Run core selection + metrics (beside random subsets of the same size) for ``params``
    once per (map, params); cached in session state."""
    from core.engines.local import run_selection, selection_report

    key = canonical_json({"map": ss().get(K_MAP_KEY), "params": params.to_dict()})
    cached = ss().get(K_SELECTION)
    if cached is None or cached["key"] != key:
        encoder = reference_encoder(ws, data) if params.reference_path else None
        selection = run_selection(ws, data, params, encoder=encoder)
        cached = {"key": key, "selection": selection, "metrics": None, "metrics_nn": False}
        ss()[K_SELECTION] = cached
    want_nn = diversity if diversity is not None else len(cached["selection"]) <= AUTO_DIVERSITY_MAX
    if cached["metrics"] is None or (want_nn and not cached["metrics_nn"]):
        cached["metrics"] = selection_report(data, cached["selection"], params, vectors=bool(want_nn))
        cached["metrics_nn"] = bool(want_nn)
    return cached


def reference_encoder(ws: Workspace, data):
    """The map's own model (cached resource) for embedding a reference set."""
    e = data.params.embed
    return get_encoder(e.model, e.device, e.normalize, getattr(e, "backend", "torch"))


def params_from_state(data, info) -> Any:
    """SelectParams from the canonical Budget settings (+ pins/bans); raises SieveError."""
    from core.selection import DEFAULT_PICK, SelectParams

    n = len(data.row_ids)
    unit = ss().get(C_UNIT, "rows")
    mode = ss().get(C_PER_CLUSTER_MODE, "Automatic")
    if unit == "tokens" and mode == "Sliders":
        mode = "Automatic"
    noise_mode = ss().get(C_NOISE, "include")
    noise: str | int = noise_mode
    if noise_mode == "own budget":
        noise = int(ss().get(C_NOISE_BUDGET, 0))
    max_pc = int(ss().get(C_MAX, 0) or 0)
    overrides, bounds = {}, {}
    budget = int(ss().get(C_BUDGET, default_budget(n)))
    if unit == "tokens":
        budget = max(1, int(ss().get(C_TOKEN_BUDGET) or 1))
    if mode == "Sliders" and ss().get(C_SLIDERS):
        overrides = {int(c): int(v) for c, v in ss()[C_SLIDERS].items()}
        budget = max(1, sum(overrides.values()) + (int(noise) if isinstance(noise, int) and -1 not in overrides else 0))
    elif mode == "Table" and ss().get(C_TABLE):
        for c, (lo, hi, ov) in ss()[C_TABLE].items():
            if ov is not None:
                overrides[int(c)] = int(ov)
            if lo is not None or hi is not None:
                bounds[int(c)] = (None if lo is None else int(lo), None if hi is None else int(hi))
    score_column = ss().get(C_SCORE_COLUMN) or None
    pick = ss().get(C_PICK, DEFAULT_PICK)
    if pick == "score":
        score = score_column
    elif pick == "mmr":
        score = ss().get(C_RELEVANCE) or None
    else:
        score = None
    reference = (ss().get(C_REFERENCE) or "").strip() or None
    if reference:
        reference = confine_read(reference, "reference path")
    return SelectParams(
        budget=min(budget, n) if unit == "rows" else budget, policy=ss().get(C_POLICY, "equal"), pick=pick,
        seed=int(ss().get(C_SEED, 0)),
        noise=noise, min_per_cluster=int(ss().get(C_MIN, 0) or 0), max_per_cluster=max_pc or None,
        overrides=overrides, bounds=bounds, score_column=score,
        score_ascending=bool(ss().get(C_ASCENDING, False)), pins=tuple(sorted(pins())), bans=tuple(sorted(bans())),
        dedup=ss().get(C_DEDUP, "none"), near_dup_threshold=float(ss().get(C_NEAR_DUP, 0.95)),
        mmr_lambda=float(ss().get(C_MMR_LAMBDA, 0.5)),
        soft_noise_threshold=float(ss().get(C_SOFT_NOISE, 0.1)) if ss().get(C_SOFT_NOISE_ON) else None,
        budget_unit=unit, tokenizer=ss().get(C_TOKENIZER, "model"), strata_column=ss().get(C_STRATA) or None,
        reference_path=reference, reference_text=ss().get(C_REFERENCE_TEXT) or "text",
        coverage_distance=float(ss().get(C_COVERAGE_DISTANCE, 0.3)),
        leakage=ss().get(C_LEAKAGE, "warn") if reference else "off",
        leakage_threshold=float(ss().get(C_LEAKAGE_THRESHOLD, 0.95)),
        target_path=(ss().get(C_TARGET) or "").strip() or None, target_text=ss().get(C_TARGET_TEXT) or "text",
    )


def default_budget(n: int) -> int:
    """About a tenth of the rows, rounded to a round number."""
    if n <= 10:
        return max(1, n)
    b = n / 10
    step = 10 ** max(0, len(str(int(b))) - 1)
    return int(min(n, max(1, round(b / step) * step)))


# -- rendering helpers ------------------------------------------------------------------------


def need(message: str, page: str, label: str, icon: str = ":material/arrow_forward:") -> None:
    """Say what is missing and link to the page that provides it."""
    st.info(message)
    st.page_link(page, label=label, icon=icon)


def map_figure(data, texts, drawn: np.ndarray, *, visible: set[int] | None = None,
               highlight: np.ndarray | None = None, height: int = 720):
    """A Scattergl figure with one trace per cluster (noise first, grey; colours of
    core.palette) and each cluster's name at the median of its drawn points; returns
    (figure, positions per trace).  ``customdata`` holds each point's row position."""
    import html

    import plotly.graph_objects as go

    from core.explore import snippet

    names = data.cluster_names
    labels = data.labels
    ids = sorted({int(c) for c in np.unique(labels)}, key=lambda c: (c >= 0, c))
    colors = cluster_colors(ids)
    drawn = np.asarray(drawn, dtype=np.int64)
    dl = labels[drawn]
    snip_len = 100 if len(drawn) <= 20_000 else 50
    fig = go.Figure()
    traces = []
    for c in ids:
        if visible is not None and c not in visible:
            continue
        pos = drawn[dl == c]
        if len(pos) == 0:
            continue
        xy = np.asarray(data.xy[pos], dtype=np.float32)
        fig.add_trace(go.Scattergl(
            x=xy[:, 0], y=xy[:, 1], mode="markers", name=html.escape(names.get(c, str(c))),
            customdata=pos.astype(np.int32), text=[snippet(texts[i], snip_len) for i in pos],
            hovertemplate="%{text}<extra>%{fullData.name}</extra>",
            marker=dict(size=4 if c >= 0 else 3, color=colors[c], opacity=0.8 if c >= 0 else 0.45),
        ))
        traces.append(pos)
    if highlight is not None and highlight.any():
        pos = drawn[highlight[drawn]]
        if visible is not None:
            pos = pos[np.isin(labels[pos], list(visible))]
        if len(pos):
            xy = np.asarray(data.xy[pos], dtype=np.float32)
            fig.add_trace(go.Scattergl(
                x=xy[:, 0], y=xy[:, 1], mode="markers", name="search matches",
                customdata=pos.astype(np.int32), text=[snippet(texts[i], snip_len) for i in pos],
                hovertemplate="%{text}<extra>match</extra>",
                marker=dict(size=8, color="rgba(0,0,0,0)", line=dict(width=1.5, color="#d62728")),
            ))
            traces.append(pos)
    fig.update_layout(
        height=height, margin=dict(l=10, r=10, t=30, b=10), dragmode="select", uirevision="sieve-map",
        legend=dict(itemclick=False, itemdoubleclick=False, itemsizing="constant", font=dict(size=11)),
        xaxis=dict(showticklabels=False, title=None, zeroline=False),
        yaxis=dict(showticklabels=False, title=None, zeroline=False),
        hoverlabel=dict(align="left"),
    )
    centres = cluster_centres(data.xy[drawn], dl)
    if visible is not None:
        centres = {c: xy for c, xy in centres.items() if c in visible}
    fig.update_layout(annotations=name_annotations(centres, names))
    return fig, traces
