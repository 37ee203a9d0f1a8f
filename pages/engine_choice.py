"""The engine a dataset's Map, Budget and Export pages run on: in memory (``local``,
core.engines.local: the whole map in this process) or sharded (``ray``, core.engines.ray: a map
kept as Parquet shards, drawn as a per-cluster sample, selected and picked on every row).

One choice per dataset (pages.state.EngineState), made on the Map page (:func:`choose`) and
read by the Budget and Export pages (:func:`current`, :func:`caption`).  Until one is made,
a dataset with a sharded map and no in-memory map runs on Ray, any other on local.
"""

from __future__ import annotations

from typing import Callable

import streamlit as st

from core import queries, workflows
from core.store.errors import SieveError
from core.workflow_types import LOCAL, RAY
from pages import common as C
from pages import state as S
from pages.state import State

LABELS = {LOCAL: "In memory (local)", RAY: "Sharded (Ray)"}


def sharded_map(ws):
    """The workspace's sharded map of its current dataset (core.workflow_types.ShardedMap),
    or None when it has none."""
    try:
        return workflows.current_map(ws, RAY)
    except SieveError:
        return None


def default(ws) -> str:
    """``ray`` when the workspace has a sharded map and no in-memory map of its dataset, else ``local``."""
    if queries.map_keys(ws) is None and sharded_map(ws) is not None:
        return RAY
    return LOCAL


def current(state: State, ws, info) -> str:
    """The engine chosen for the dataset ``info`` (a DatasetInfo), else :func:`default`."""
    chosen = S.EngineState(state).engines.get(info.key)
    return chosen if chosen in LABELS else default(ws)


def choose(state: State, ws, info) -> str:
    """The Map page's "Engine" radio for the dataset ``info``; returns (and keeps) the choice."""
    wkey = f"{S.W_ENGINE_PREFIX}{info.key}"
    if wkey not in state:
        state[wkey] = current(state, ws, info)
    engine = st.radio("Engine", tuple(LABELS), key=wkey, format_func=LABELS.get, horizontal=True,
                      help="In memory: the whole map in this process, with every Map and Budget feature. "
                           "Sharded: a map stored as Parquet shards (`sieve run --engine ray`, or built here), "
                           "for corpora too large for memory; the Budget and Export pages follow this choice.")
    S.EngineState(state).engines[info.key] = engine
    return engine


def caption(engine: str) -> None:
    """Which engine the page runs on, and where to change it."""
    st.caption(f"Engine: {LABELS[engine]}. Change it on the Map page.")


def sharded_map_or_guidance(state: State, ws, info):
    """The sharded map of the dataset ``info`` (its pins and bans synced), or None after telling
    the user to build one on the Map page (with a link)."""
    C.sync_pins_bans(state, info.key)
    handle = sharded_map(ws)
    if handle is None:
        C.need("This dataset has no sharded map yet. Build one on the Map page (engine: Sharded) first.",
               S.PAGE_MAP, "Go to Map", ":material/scatter_plot:")
    return handle


def dispatch(title: str, on_ray: Callable, on_local: Callable) -> None:
    """The Budget and Export pages' body: title the page, open this session's dataset (else
    guidance), say the engine, then ``on_ray(state, ws, info)`` on Ray, else
    ``on_local(state, ws, info, data)`` with this session's in-memory map (else guidance)."""
    opened = C.page_dataset(title)
    if opened is None:
        return
    state, ws, info = opened
    engine = current(state, ws, info)
    caption(engine)
    if engine == RAY:
        on_ray(state, ws, info)
        return
    data = C.map_or_guidance(state, ws)
    if data is not None:
        on_local(state, ws, info, data)
