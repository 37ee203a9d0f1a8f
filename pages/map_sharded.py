"""The Map page on the Ray engine: the sharded map (``sieve run --engine ray`` / ``sieve scale
map``) of a corpus too large to hold in memory.  The page draws a per-cluster sample of the map;
box and lasso shapes are applied to every row on the server (DuckDB over the map shards, through
the ShardedMap handle of core.workflows); pins and bans are the session's own, as on a local map.
Without a sharded map: the CLI commands, and a form that shards a small dataset in this process.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core import workflows
from core.encoders.models import DEFAULT_MODEL
from core.engines.local import MapParams
from core.explore_files import fetch_rows
from core.stages.embed import EmbedParams
from core.workflow_types import RAY, Events, ShardedMap
from pages import common as C
from pages import figures
from pages import state as S
from pages.state import State

MAX_DRAWN = 50_000
PAGE_ROWS = 200
NOT_ON_RAY = ("On the Ray engine the Map page draws, selects, pins and bans; search, the cluster filter, colour by, "
              "the SQL filter, cluster edits and the hierarchy need the whole map in memory (the In memory engine).")


def _chart_key() -> str:
    return f"scale_chart_{S.ShardedState(S.ss()).chart_version}"


def selected_ids(state: State) -> np.ndarray:
    """The row ids (int64, over every shard) inside the last box, lasso or click."""
    return np.asarray(S.ShardedState(state).selected, dtype=np.int64)


# -- building a sharded map in this process (small corpora; big ones use the CLI on Ray) ---------


def _build(ws, sample_size: int, shard_rows: int) -> None:
    """workflows.build_map on the Ray engine in this process (``local=True``): the shards, the
    sample fit and the assignment a cluster would run."""
    sc = S.ShardedState(S.ss())
    engine = workflows.resolve_engine(RAY, local=True, shard_rows=shard_rows, sample_size=sample_size,
                                      backend="auto")
    with st.status("Building the sharded map in this process…", expanded=True) as status:
        st.write("Embedding the shards (cached per shard; an interrupted build resumes)…")

        def on_step(name, value):
            if name == "embeddings":
                st.write(f"{value.n_rows:,} vectors in {value.n_shards} shard(s) ({value.n_skipped} already done).")
                st.write(f"Fitting the map on a sample of up to {sample_size:,} rows, then placing every row…")
            elif name == "scaled_map":
                res, _ = value
                sc.build = {"timings": res.seconds}
                status.update(label=f"Sharded map: {res.n_clusters} clusters over {res.n_rows:,} rows",
                              state="complete")

        workflows.build_map(ws, MapParams(EmbedParams(model=DEFAULT_MODEL)), engine=engine,
                            events=Events(on_step=on_step))
    del sc.fig, sc.selected, sc.selection
    st.rerun()


def no_map(state: State, ws, info) -> None:
    """No sharded map yet: the CLI commands, and a form that builds one in this process."""
    st.info("This dataset has no sharded map yet. For a corpus that does not fit in memory, build one on a Ray "
            "cluster from a shell, then come back here:")
    st.code(f"sieve run DATA --text {info.text.column or 'COLUMN'} --engine ray --budget N --out subset/ "
            f"--workspace {ws.root}\n# or step by step:\nsieve embed --engine ray --workspace {ws.root}\n"
            f"sieve scale map --workspace {ws.root}", language="bash")
    st.caption("A small dataset can also be sharded here, in this process (no Ray): the same shards, the same "
               "sample fit and assignment, so you can try the flow before running it on a cluster.")
    c1, c2, c3 = st.columns([1, 1, 1])
    sample = S.persisted(state, c1.number_input, "Sample the map is fitted on (rows)", S.W_SCALE_SAMPLE,
                         S.C_SCALE_SAMPLE, min(200_000, max(10, info.n_rows)), min_value=10, step=1000)
    shard_rows = S.persisted(state, c2.number_input, "Rows per shard", S.W_SCALE_SHARD_ROWS, S.C_SCALE_SHARD_ROWS,
                             50_000, min_value=100, step=10_000)
    c3.write("")
    if c3.button("Build sharded map here", key=S.W_SCALE_BUILD, type="primary", icon=":material/hub:"):
        _build(ws, int(sample), int(shard_rows))


# -- the map: a drawn sample, shapes applied to every row -------------------------------------------


def _drawn_cap(state: State) -> int:
    return int(S.persisted(state, st.number_input, "Points drawn", S.W_SCALE_DRAWN, S.C_SCALE_DRAWN, MAX_DRAWN,
                           min_value=100, max_value=500_000, step=10_000,
                           help="How many rows the browser draws (a per-cluster sample). Selections always "
                                "apply to every row."))


def _figure(ws, handle: ShardedMap, cap: int) -> dict:
    """The drawn sample's figure (pages.figures.cluster_scatter, customdata = row ids), cached
    in session state so it is identical across reruns."""
    sc = S.ShardedState(S.ss())
    key = (str(handle.folder), cap)
    cached = sc.fig
    if cached is not None and cached["key"] == key:
        return cached
    pts = handle.draw(cap)
    ids = pts.column("sieve_row_id").to_numpy().astype(np.int64)
    xy = np.column_stack([pts.column("x").to_numpy(), pts.column("y").to_numpy()])
    labels = pts.column("cluster").to_numpy().astype(np.int64)
    texts = fetch_rows(ws, ids, columns=["sieve_text"]).column("sieve_text").to_pylist()
    fig, _ = figures.cluster_scatter(xy, labels, ids, texts, handle.cluster_names, height=640, uirevision="sieve-scale")
    cached = {"key": key, "fig": fig, "n_drawn": int(len(ids))}
    sc.fig = cached
    sc.bump_chart()
    return cached


@C.safe_callback
def _on_select() -> None:
    sc = S.ShardedState(S.ss())
    if sc.map_dir is None:
        return
    ids, how = workflows.current_map(C.get_workspace(), RAY).rows_in(S.ss().get(_chart_key()))
    sc.select(ids, how)


@C.safe_callback
def _pin() -> None:
    S.SessionView(S.ss()).pin(selected_ids(S.ss()))


@C.safe_callback
def _ban() -> None:
    S.SessionView(S.ss()).ban(selected_ids(S.ss()))


@C.safe_callback
def _clear() -> None:
    sc = S.ShardedState(S.ss())
    sc.select(np.zeros(0, np.int64), "none")
    sc.bump_chart()


def _selection_panel(state: State, handle: ShardedMap, names: dict) -> None:
    ids = selected_ids(state)
    sv = S.SessionView(state)
    st.metric("Selected rows (all shards)", f"{len(ids):,}")
    m1, m2 = st.columns(2)
    m1.metric("Pinned rows", f"{len(sv.pins):,}", help="Always included in the subset.")
    m2.metric("Banned rows", f"{len(sv.bans):,}", help="Never included in the subset.")
    empty = len(ids) == 0
    st.button("Pin selection", key=S.W_SCALE_PIN, on_click=_pin, disabled=empty, width="stretch",
              icon=":material/push_pin:", help="Always include these rows in the subset.")
    st.button("Ban selection", key=S.W_SCALE_BAN, on_click=_ban, disabled=empty, width="stretch",
              icon=":material/block:", help="Never include these rows in the subset.")
    st.button("Clear selection", key=S.W_SCALE_CLEAR, on_click=_clear, width="stretch", icon=":material/deselect:")
    if not empty:
        counts = handle.count_by_cluster(ids)
        df = pd.DataFrame([{"cluster touched": names.get(c, str(c)), "rows": n}
                           for c, n in sorted(counts.items(), key=lambda kv: -kv[1])])
        st.dataframe(df, hide_index=True, width="stretch", height=min(300, 38 + 35 * len(df)))


def _rows(ws, ids: np.ndarray) -> None:
    if len(ids) == 0:
        st.caption("No rows selected — draw a box or lasso on the map.")
        return
    shown = np.sort(ids)[:PAGE_ROWS]
    df = fetch_rows(ws, shown).to_pandas()
    if "sieve_text" in df.columns:
        df.insert(1, "sieve_text", df.pop("sieve_text"))
    st.caption(f"The first {len(shown):,} of {len(ids):,} selected rows (by row id).")
    st.dataframe(df, hide_index=True, width="stretch", height=360, column_config={
        "sieve_row_id": st.column_config.NumberColumn("row id", format="%d"),
        "sieve_text": st.column_config.TextColumn("embedded text", width="large")})


def _metrics(handle: ShardedMap) -> None:
    meta = handle.info
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Rows on the map", f"{meta['n_rows']:,}")
    m2.metric("Clusters", f"{meta['n_clusters']:,}")
    m3.metric("Fitted on a sample of", f"{meta['n_sample']:,}")
    m4.metric("Shards", f"{len(meta['shards']):,}")
    st.caption(f"Map shards: {C.esc(handle.folder)} · vectors: {C.esc(handle.embed_folder)}. The app draws a "
               "per-cluster sample; selections, counts and picks run on every row, through DuckDB over the shards.")


def render(state: State, ws, info) -> None:
    """The Map page on the Ray engine for the dataset ``info``."""
    C.sync_pins_bans(state, info.key)
    try:
        handle = workflows.current_map(ws, RAY)
    except C.SieveError:
        no_map(state, ws, info)
        return
    S.ShardedState(state).map_dir = str(handle.folder)
    meta, names = handle.info, handle.cluster_names
    _metrics(handle)
    st.caption(NOT_ON_RAY)
    left, right = st.columns([4, 1.3])
    with right:
        cap = _drawn_cap(state)
    fig = _figure(ws, handle, cap)
    with left:
        st.plotly_chart(fig["fig"], key=_chart_key(), on_select=_on_select, selection_mode=("points", "box", "lasso"),
                        config={"displaylogo": False, "scrollZoom": True})
        st.caption(f"Drawing {fig['n_drawn']:,} of {meta['n_rows']:,} rows (every cluster represented). A box or "
                   "lasso selects every row inside it, drawn or not.")
    with right:
        _selection_panel(state, handle, names)
    tabs = st.tabs(["Selected rows", "Clusters"])
    with tabs[0]:
        _rows(ws, selected_ids(state))
    with tabs[1]:
        st.dataframe(pd.DataFrame([{"id": c["id"], "name": c["name"], "size": c["size"],
                                    "keywords": ", ".join(c["keywords"][:8])} for c in meta.get("clusters", [])]),
                     hide_index=True, width="stretch")
    for note in meta.get("notes", []):
        st.caption(f"Note: {C.esc(note)}")
    st.page_link(S.PAGE_BUDGET, label="Next: set a budget", icon=":material/balance:")
