"""Session state of the app: the pages' links, the session-state keys (app state ``K_``,
persisted widget values ``C_``, widget keys ``W_``), the widget-persistence protocol, and one
typed state object per page over those keys (SessionView, DataState, MapState, BudgetState,
ExportState, ShardedState, EngineState).

Rules: pages reach app state through the typed objects (``S.MapState(state).selected``), never
by key; every helper takes the session state (``state``) as an argument, and only :func:`ss`
reads st.session_state.  Widget state is dropped when a page is left, so each widget is
initialised from its persisted ``C_`` key on the next visit (:func:`persisted`); the Budget
page's persisted values are read back as one typed object by pages.forms.budget_settings.
The keys stay the storage contract (tests seed and read them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Generic, MutableMapping, TypeVar

import numpy as np
import streamlit as st

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_PATH = REPO_ROOT / "sample_data" / "prompts.csv"
SAMPLE_TEXT_COLUMN = "text"
MAX_DRAWN = 100_000
AUTO_DIVERSITY_MAX = 20_000  # larger subsets compute the NN diversity on request

PAGE_DATA = "pages/data.py"
PAGE_MAP = "pages/map.py"
PAGE_BUDGET = "pages/budget.py"
PAGE_EXPORT = "pages/export.py"

# -- session-state keys (app state) ---------------------------------------------------
K_AUTOLOADED = "sieve.autoloaded"  # bool: the sample was auto-loaded once this session
K_MAP = "sieve.map"  # core.engines.local.MapData of the current map
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
K_SELECT_PARAMS = "sieve.select_params"  # last core.selection.SelectParams from the Budget page
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
K_ENGINE = "sieve.engine"  # {dataset key: "local" | "ray"}: the engine the Map, Budget and Export pages run on
K_SCALE_MAP_DIR = "sieve.scale.map_dir"  # str: the sharded map the pages show on the Ray engine
K_SCALE_FIG = "sieve.scale.fig"  # {"key": map key, "fig", "n_drawn"} of the sharded map
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
W_SCALE_ON_RAY = "w.scale.on_ray"
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
W_ENGINE_PREFIX = "w.engine."  # + dataset key (the Map page's engine choice)
W_MAP_PREFIX = "w.map."  # + setting name (Map page advanced settings)
W_SLIDER_PREFIX = "w.slider."  # + map key + "." + cluster id (Budget page sliders)
W_TABLE_PREFIX = "w.cluster_table."  # + a counter (Budget page per-cluster editor)


State = MutableMapping[str, Any]


def ss() -> State:
    """This session's state (st.session_state): the only place the app reaches it; pages pass it on."""
    return st.session_state


def init_widget(state: State, wkey: str, ckey: str, default: Any) -> None:
    """Give a widget its persisted value when it (re)appears."""
    if wkey not in state:
        state[wkey] = state.get(ckey, default)


def persist(state: State, wkey: str, ckey: str) -> Callable[[], None]:
    """An on_change callback that copies the widget's value to its persisted key."""

    def cb():
        state[ckey] = state[wkey]

    return cb


def persisted(state: State, widget: Callable, label: str, wkey: str, ckey: str, default: Any, *args, **kwargs) -> Any:
    """Draw ``widget(label, *args, key=wkey, **kwargs)`` from its persisted value ``ckey``
    (``default`` the first time) and persist what it returns."""
    init_widget(state, wkey, ckey, default)
    value = widget(label, *args, key=wkey, **kwargs)
    state[ckey] = value
    return value


T = TypeVar("T")
NO_IDS = np.zeros(0, np.int64)
NO_IDS.flags.writeable = False


class Slot(Generic[T]):
    """An attribute of a state object kept in the session state under ``key``: reading gives
    ``default`` (or, with ``factory``, stores and gives a fresh ``factory()``) when the key is
    missing; assigning stores it; ``del`` drops it."""

    def __init__(self, key: str, default: T | None = None, factory: Callable[[], T] | None = None):
        self.key, self.default, self.factory = key, default, factory

    def __get__(self, obj, owner=None) -> T:
        if obj is None:
            return self
        if self.factory is not None:
            return obj.state.setdefault(self.key, self.factory())
        return obj.state.get(self.key, self.default)

    def __set__(self, obj, value: T) -> None:
        obj.state[self.key] = value

    def __delete__(self, obj) -> None:
        obj.state.pop(self.key, None)


class SessionView:
    """What every page shares: the dataset this session works on, its pins and bans, and
    messages flashed to the next render.  ``state`` is the session state (st.session_state)."""

    dataset_pin = Slot(K_DATASET_PIN)  # {"info": DatasetInfo dict, "file_format"}
    pinban_dataset = Slot(K_PINBAN_DATASET)  # the dataset key the pins/bans belong to
    pins = Slot(K_PINS, factory=set)  # set[int] of row ids always included
    bans = Slot(K_BANS, factory=set)  # set[int] of row ids never included

    def __init__(self, state: State):
        self.state = state

    def flash(self, level: str, message: str) -> None:
        """Say ``message`` (st.<level>: info, success, warning, error) once, at the next page render."""
        self.state.setdefault(K_FLASH, []).append((level, message))

    def take_flashes(self) -> list[tuple[str, str]]:
        """The (level, message) pairs flashed since the last render, removed."""
        return self.state.pop(K_FLASH, [])

    def forget_cluster_settings(self) -> None:
        """Per-cluster sliders, table and the cluster filter name cluster ids of one map: drop them."""
        for k in (C_SLIDERS, C_TABLE, C_FILTER):
            self.state.pop(k, None)

    def pin(self, ids) -> None:
        """Pin ``ids`` (always included; no longer banned) and say so at the next render."""
        ids = {int(i) for i in ids}
        self.pins.update(ids)
        self.bans.difference_update(ids)
        self.flash("success", f"Pinned {len(ids):,} row(s): they are always included.")

    def ban(self, ids) -> None:
        """Ban ``ids`` (never included; no longer pinned) and say so at the next render."""
        ids = {int(i) for i in ids}
        self.bans.update(ids)
        self.pins.difference_update(ids)
        self.flash("success", f"Banned {len(ids):,} row(s): they are never included.")


class DataState(SessionView):
    """The Data page: the sample auto-loaded once, and the uploads saved this session."""
    autoloaded = Slot(K_AUTOLOADED, False)
    uploads = Slot(K_UPLOADS, factory=dict)  # {uploaded file id: saved path}


class MapState(SessionView):
    """The Map page: this session's map, its drawn figure and chart widget, the selection
    (row ids, how it was made, the drawn shapes), the search cache and the last computation."""

    map = Slot(K_MAP)  # core.engines.local.MapData
    map_key = Slot(K_MAP_KEY)  # its MapKeys.map_id
    texts = Slot(K_TEXTS)  # list[str] aligned with the map's rows
    fig = Slot(K_FIG)  # {"key", "fig", "traces", "drawn", "allowed"}
    chart_version = Slot(K_CHART_VERSION, 0)  # bumped to reset the chart widget
    selected = Slot(K_SELECTED, NO_IDS)  # np.ndarray of selected row ids (sorted int64)
    selected_how = Slot(K_SELECTED_HOW)
    shapes = Slot(K_SHAPES)  # plotly layout.selections of the last box/lasso
    search = Slot(K_SEARCH)  # {"key": (map key, query), "mask": bool array}
    run = Slot(K_MAP_RUN)  # {"timings", "cached", "details", "label"} of the last Compute map
    computing = Slot(K_COMPUTING, False)  # True while build_map runs

    def forget(self) -> None:
        """Drop this session's map and all computed from it: figure, selection, search, and the
        Budget page's cached selection and per-cluster table."""
        for k in (K_MAP, K_MAP_KEY, K_TEXTS, K_FIG, K_SELECTED, K_SELECTED_HOW, K_SHAPES, K_SELECTION, K_TABLE_BASE,
                  K_TABLE_WKEY, K_SEARCH):
            self.state.pop(k, None)

    def select(self, ids, how: str) -> None:
        """Make ``ids`` the selection (sorted int64 row ids), made by ``how``."""
        self.selected = np.asarray(ids, dtype=np.int64)
        self.selected_how = how

    def bump_chart(self) -> None:
        """A new chart widget key: the chart forgets its own selection."""
        self.chart_version = self.chart_version + 1


class BudgetState(SessionView):
    """The Budget and Export pages' selection: the last SelectParams, the cached selection and
    its metrics, and the per-cluster table editor's base frame."""

    select_params = Slot(K_SELECT_PARAMS)  # core.selection.SelectParams
    selection = Slot(K_SELECTION)  # {"key", "selection", "metrics", "metrics_nn"}
    want_diversity = Slot(K_WANT_DIVERSITY, False)
    table_base = Slot(K_TABLE_BASE)  # pandas.DataFrame of the per-cluster editor
    table_wkey = Slot(K_TABLE_WKEY)  # its widget key
    table_seq = Slot(K_TABLE_SEQ, 0)


class ExportState(BudgetState):
    """The Export page: the default file name last offered and what the last Save wrote."""

    save_default = Slot(K_SAVE_DEFAULT)
    last_save = Slot(K_LAST_SAVE)  # {"path", "manifest", "rows", "key"}


class EngineState(SessionView):
    """The engine each dataset's Map, Budget and Export pages run on (pages.engine_choice)."""

    engines = Slot(K_ENGINE, factory=dict)  # {dataset key: "local" | "ray"}


class ShardedState(SessionView):
    """The Map, Budget and Export pages on the Ray engine: the sharded map shown, its drawn
    figure and chart widget, the selection over all rows, the cached selection and the last
    export and build."""

    map_dir = Slot(K_SCALE_MAP_DIR)
    fig = Slot(K_SCALE_FIG)  # {"key", "fig", "n_drawn"}
    chart_version = Slot(K_SCALE_CHART_VERSION, 0)
    selected = Slot(K_SCALE_SELECTED, NO_IDS)
    selected_how = Slot(K_SCALE_SELECTED_HOW)
    selection = Slot(K_SCALE_SELECTION)  # {"key", "selection", "params"}
    last_export = Slot(K_SCALE_LAST_EXPORT)  # {"path", "manifest", "rows", "files"}
    build = Slot(K_SCALE_BUILD)  # {"timings"}

    def select(self, ids, how: str) -> None:
        """Make ``ids`` the selection (int64 row ids over all shards), made by ``how``."""
        self.selected = np.asarray(ids, dtype=np.int64)
        self.selected_how = how

    def bump_chart(self) -> None:
        """A new chart widget key: the chart forgets its own selection."""
        self.chart_version = self.chart_version + 1
