"""Shared by the pages: escaping text for markdown, one-line errors, the two cached resources
(model, workspace), and the helpers that load this session's dataset, map and selection.

Rules: st.cache_resource holds only the encoder and the Workspace handle; everything computed
per session lives in session state (pages.state keys, keyed by the map/params it was computed
from), which every helper here takes as its ``state`` argument.
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

from core import queries, workflows
from core.stages.dataset import DatasetInfo, TextSpec
from core.stages.embed import Cancelled
from core.stages.ingest import IngestParams
from core.store.workspace import DEFAULT_WORKSPACE, SieveError, Workspace
from pages import state as S

try:  # private Streamlit API (see _leave_pages_directory_mode); a Streamlit without it skips that step
    from streamlit.runtime.pages_manager import PagesManager
except ImportError:  # pragma: no cover
    PagesManager = None

log = logging.getLogger("sieve.app")


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
    return queries.data_root()


def export_root(ws: Workspace) -> Path:
    """Where "Save" may write on the server: $SIEVE_EXPORT_DIR, else <workspace>/exports."""
    return queries.export_root(ws)


def confine_read(raw: str, what: str = "data path") -> str:
    """A typed path to read: confined to $SIEVE_DATA_DIR in server mode, else as typed."""
    return queries.confine_read(raw, what)


@st.cache_resource(show_spinner=False)
def _workspace(root: str) -> Workspace:
    return Workspace(root)


def get_workspace() -> Workspace:
    return _workspace(workspace_root())


@st.cache_resource(show_spinner=False, max_entries=2)
def get_encoder(model: str, device: str, normalize: bool, backend: str = "torch", _progress=None):
    """The encoder (cached per process); ``_progress(done, total, msg)`` hears the one-time
    model preparation (not part of the cache key)."""

    return workflows.load_encoder(model, device, normalize, backend, progress=_progress)


# -- errors -----------------------------------------------------------------------------


def show_flash(state: S.State) -> None:
    """The messages flashed since the last render, each escaped, once."""
    for level, message in S.SessionView(state).take_flashes():
        getattr(st, level, st.info)(esc(message))


def report_error(exc: BaseException) -> str:
    """One line for the UI (SieveError's own message; never a traceback)."""

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
    workflows.start_warmup()


def _leave_pages_directory_mode() -> None:
    """A server whose very first visitor opens a deep link (/map) runs that page in
    Streamlit's old pages/-directory mode: app.py, its st.navigation and page config are
    skipped, and the sidebar lists every file in pages/.  Switch that mode off and rerun,
    so app.py runs and resolves the same URL (private Streamlit API; a no-op if it moves)."""
    if "streamlit.testing.v1.app_test" in sys.modules:
        return  # AppTest resets that mode before every run and drives pages by script hash; leave it be
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


def run_page(body: Callable[[], None]) -> None:
    """Render a page; any error becomes one st.error line (never a traceback)."""
    _leave_pages_directory_mode()
    show_flash(S.ss())
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
            S.SessionView(S.ss()).flash("error", report_error(exc))

    return wrapper


# -- dataset / map in session state ----------------------------------------------------------


def current_dataset_or_none(ws: Workspace):
    return queries.dataset_or_none(ws)


def sync_pins_bans(state: S.State, dataset_key: str) -> None:
    """Pins, bans and per-cluster settings name row/cluster ids of one dataset: drop them when it changes."""
    sv = S.SessionView(state)
    previous, sv.pinban_dataset = sv.pinban_dataset, dataset_key
    if previous is not None and previous != dataset_key:
        sv.pins, sv.bans = set(), set()
        sv.forget_cluster_settings()


def pin_dataset(state: S.State, info, file_format: str | None = None) -> None:
    """This session works on ``info`` (a DatasetInfo) from now on."""
    S.SessionView(state).dataset_pin = {"info": info.to_dict(), "file_format": file_format}


def session_dataset(state: S.State, ws: Workspace):
    """The workspace's dataset if it is the one this session works on (pinned on first
    sight), else None after saying that the workspace moved on (another session or a
    `sieve run` in the same folder loaded another file) with buttons to switch to it or
    to load this session's dataset back.  Nothing of the other dataset is shown meanwhile,
    and this session's pins, bans and map stay."""
    info = current_dataset_or_none(ws)
    pin = S.SessionView(state).dataset_pin
    if info is None or pin is None or pin["info"]["key"] == info.key:
        if info is not None:
            pin_dataset(state, info, (pin or {}).get("file_format") if pin and pin["info"]["key"] == info.key else None)
        return info
    mine = pin["info"]
    st.warning(f"The workspace moved on: it now holds {info.n_rows:,} rows from {_sources(info.sources)} "
               f"(loaded by another session or a `sieve` command in the same workspace). This session works on "
               f"{mine['n_rows']:,} rows from {_sources(mine['sources'])}; its pins, bans and map are kept.")
    c1, c2, _ = st.columns([1, 1, 2])
    c1.button("Switch to the new dataset", key=S.W_SWITCH_DATASET, on_click=_switch_dataset, args=(info.to_dict(),),
              help="Drops this session's pins, bans and map of the old dataset.")
    c2.button("Load my dataset back", key=S.W_RELOAD_DATASET, on_click=_reload_dataset,
              help="Reads this session's files again into the workspace; its cached map comes back.")
    return None


def _sources(sources: list[str]) -> str:
    return esc(", ".join(Path(x).name for x in sources[:2]) + (" …" if len(sources) > 2 else ""))


@safe_callback
def _switch_dataset(info: dict) -> None:
    m = S.MapState(S.ss())
    pin_dataset(m.state, DatasetInfo.from_dict(info))
    del m.run
    m.forget()


@safe_callback
def _reload_dataset() -> None:
    sv = S.SessionView(S.ss())
    pin = sv.dataset_pin
    mine = pin["info"]
    params = IngestParams(tuple(mine["sources"]), TextSpec(**mine["text"]), mine["vector_column"], pin["file_format"],
                          delimiter=mine.get("delimiter"), encoding=mine.get("encoding"))
    info, _ = workflows.ingest(get_workspace(), params)
    if info.key != mine["key"]:  # the files changed since: this is a new dataset
        sv.flash("warning", "The files changed since this session loaded them: loaded them as a new dataset.")
        pin_dataset(sv.state, info, pin["file_format"])
    else:
        sv.flash("success", f"Loaded this session's dataset back ({info.n_rows:,} rows).")


def dataset_or_guidance(state: S.State, ws: Workspace):
    """This session's dataset, or None after telling the user to load one (with a link)
    or that the workspace moved on (see :func:`session_dataset`)."""
    if current_dataset_or_none(ws) is not None:
        return session_dataset(state, ws)
    need("No dataset is loaded yet. Choose one on the Data page first.", S.PAGE_DATA, "Go to Data",
             ":material/description:")
    return None


def page_dataset(title: str):
    """Title the page; (state, workspace, this session's dataset), or None after guidance
    (:func:`dataset_or_guidance`)."""
    st.title(title)
    state, ws = S.ss(), get_workspace()
    info = dataset_or_guidance(state, ws)
    return None if info is None else (state, ws, info)


def page_map(title: str):
    """Title the page; (state, workspace, dataset, this session's map), or None after
    guidance (:func:`dataset_or_guidance`, :func:`map_or_guidance`)."""
    opened = page_dataset(title)
    data = None if opened is None else map_or_guidance(opened[0], opened[1])
    return None if data is None else (*opened, data)


def map_or_guidance(state: S.State, ws: Workspace):
    """This session's map, or None after telling the user to compute one (with a link)."""
    data = get_map(state, ws)
    if data is None:
        need("There is no map of this dataset yet. Compute it on the Map page first.", S.PAGE_MAP, "Go to Map",
             ":material/scatter_plot:")
    return data


def get_map(state: S.State, ws: Workspace, label_key: str | None = None):
    """This session's map (or None).

    A session keeps its own map's label key: another session computing a map with
    other settings never changes what this one shows.  A new session starts from the
    workspace's latest map.  ``label_key`` switches this session to that map (after
    it computed one).
    """
    m = S.MapState(state)
    info = current_dataset_or_none(ws)
    if info is None:
        m.forget()
        return None
    sync_pins_bans(state, info.key)
    keys = queries.map_keys(ws, label_key or m.map_key)
    if keys is None:
        m.forget()
        return None
    if m.map_key == keys.map_id and m.map is not None:
        return m.map
    if m.map_key is not None:  # another map: its cluster ids mean other clusters
        m.forget_cluster_settings()
    m.forget()
    data = queries.map_data(ws, keys)
    row_ids, texts = queries.texts(ws)
    if not np.array_equal(np.asarray(row_ids), np.asarray(data.row_ids)):
        raise SieveError("the dataset changed since the map was computed; compute the map again")
    m.map, m.map_key, m.texts = data, keys.map_id, texts
    m.selected = np.zeros(0, np.int64)
    return data


# -- selection (Budget / Export) ---------------------------------------------------------------


def current_selection(state: S.State, ws: Workspace, data, params, *, diversity: bool | None = None) -> dict:
    """Run core selection + metrics (beside random subsets of the same size) for ``params``
    once per (map, params); cached in session state."""
    b = S.BudgetState(state)
    key = queries.selection_key(S.MapState(state).map_key, params)
    cached = b.selection
    if cached is None or cached["key"] != key:
        encoder = reference_encoder(ws, data) if params.reference_path else None
        selection = workflows.select(ws, data, params, remember=False, encoder=encoder)
        cached = {"key": key, "selection": selection, "metrics": None, "metrics_nn": False}
        b.selection = cached
    want_nn = diversity if diversity is not None else len(cached["selection"]) <= S.AUTO_DIVERSITY_MAX
    if cached["metrics"] is None or (want_nn and not cached["metrics_nn"]):
        cached["metrics"] = queries.selection_metrics(data, cached["selection"], params, vectors=bool(want_nn))
        cached["metrics_nn"] = bool(want_nn)
    return cached


def reference_encoder(ws: Workspace, data):
    """The map's own model (cached resource) for embedding a reference set."""
    e = data.params.embed
    return get_encoder(e.model, e.device, e.normalize, getattr(e, "backend", "torch"))


# -- rendering helpers ------------------------------------------------------------------------


def need(message: str, page: str, label: str, icon: str = ":material/arrow_forward:") -> None:
    """Say what is missing and link to the page that provides it."""
    st.info(message)
    st.page_link(page, label=label, icon=icon)


