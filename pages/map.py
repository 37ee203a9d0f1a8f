"""Map: choose the engine (in memory, or a sharded map on Ray: pages.map_sharded), compute
(embed -> project -> cluster -> label) with progress, then explore the clusters: box/lasso
selection re-applied to all rows on the server, search, a cluster filter, and pins/bans that
the Budget page honours."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import streamlit as st

from core import queries
from core.encoders.long_text import LongTextCount
from core.explore import cluster_table, draw_sample, has_shapes, ids_in, selection_mask, selection_summary, text_search
from core.explore_files import fetch_rows
from core.workflow_types import RAY
from pages import common as C
from pages import engine_choice, figures, forms, map_compute, map_sharded, map_tools
from pages import state as S

log = logging.getLogger("sieve.app")

PAGE_SIZE = 100
ALL = "all clusters"


# -- exploring -------------------------------------------------------------------------------


def _search_mask(data, query: str) -> np.ndarray:
    m = S.MapState(S.ss())
    key = (m.map_key, query)
    cached = m.search
    if cached is None or cached["key"] != key:
        cached = {"key": key, "mask": text_search(m.texts, query)}
        m.search = cached
    return cached["mask"]


def _figure(data, visible: set[int] | None, query: str, highlight: bool):
    """The chart's figure, cached in session state so it is identical across reruns."""
    m = S.MapState(S.ss())
    sem = map_tools.semantic_highlight(S.ss(), data)  # the nearest rows of a search by meaning, ringed too
    colour = map_tools.color_view(S.ss(), C.get_workspace(), data)  # colour by a column instead of the clusters
    key = (m.map_key, tuple(sorted(visible)) if visible is not None else None,
           query if (highlight and query) else None, sem[0] if sem else None, colour[0] if colour else None)
    cached = m.fig
    if cached is not None and cached["key"] == key:
        return cached
    drawn = cached["drawn"] if cached is not None and cached["key"][0] == key[0] else \
        draw_sample(data.labels, S.MAX_DRAWN, seed=0)
    hl = _search_mask(data, query) if (highlight and query) else None
    if sem is not None:
        hl = sem[1] if hl is None else (hl | sem[1])
    fig, traces = figures.map_figure(data, m.texts, drawn, visible=visible, highlight=hl)
    if colour is not None:
        figures.recolor(fig, traces, colour[1])
    allowed = None if visible is None else np.isin(data.labels, list(visible))
    if cached is not None and cached["key"][:2] != key[:2]:  # another filter: the selection meant other rows
        if len(S.MapState(S.ss()).selected):
            st.toast("The cluster filter changed, so the selection was cleared.")
        m.selected = np.zeros(0, np.int64)
        del m.shapes
    if m.shapes:  # a highlight redraws the map: keep the drawn box/lasso on it
        fig.update_layout(selections=m.shapes)
    m.bump_chart()
    cached = {"key": key, "fig": fig, "traces": traces, "drawn": drawn, "allowed": allowed}
    m.fig = cached
    return cached


def _chart_key() -> str:
    m = S.MapState(S.ss())
    return f"map_chart_{m.chart_version}"


@C.safe_callback
def _on_select() -> None:
    m = S.MapState(S.ss())
    data = m.map
    fig = m.fig
    if data is None or fig is None:
        return
    event = S.ss().get(_chart_key())
    mask = selection_mask(event, data.xy, trace_positions=fig["traces"], allowed=fig["allowed"])
    m.selected = np.asarray(data.row_ids[mask], dtype=np.int64)
    sel = (event or {}).get("selection", {}) if hasattr(event, "get") else {}
    how = "box" if sel.get("box") else "lasso" if sel.get("lasso") else "points"
    m.selected_how = how if mask.any() or has_shapes(event) else "none"
    m.shapes = figures.layout_selections(event)


def _bump_chart() -> None:
    """Reset the chart widget (its selection) and drop the drawn shapes from the figure."""
    m = S.MapState(S.ss())
    m.bump_chart()
    del m.shapes
    fig = m.fig
    if fig is not None:
        fig["fig"].layout.selections = ()


@C.safe_callback
def _pin() -> None:
    S.SessionView(S.ss()).pin(S.MapState(S.ss()).selected)


@C.safe_callback
def _ban() -> None:
    S.SessionView(S.ss()).ban(S.MapState(S.ss()).selected)


@C.safe_callback
def _clear() -> None:
    m = S.MapState(S.ss())
    m.select(np.zeros(0, np.int64), "none")
    _bump_chart()


@C.safe_callback
def _select_matches() -> None:
    m = S.MapState(S.ss())
    data = m.map
    query = S.ss().get(S.C_SEARCH, "")
    mask = _search_mask(data, query)
    fig = m.fig
    if fig is not None and fig["allowed"] is not None:
        mask = mask & fig["allowed"]
    m.select(data.row_ids[mask], "search")
    _bump_chart()


def _summary(data) -> None:
    ids = S.MapState(S.ss()).selected
    mask = ids_in(data.row_ids, ids)
    summ = selection_summary(data.labels, mask, data.cluster_names)
    st.metric("Selected rows", f"{summ['rows']:,}")
    st.metric("Clusters touched", f"{len(summ['clusters']):,}")
    m1, m2 = st.columns(2)
    m1.metric("Pinned rows", f"{len(S.SessionView(S.ss()).pins):,}", help="Always included in the subset.")
    m2.metric("Banned rows", f"{len(S.SessionView(S.ss()).bans):,}", help="Never included in the subset.")
    empty = summ["rows"] == 0
    st.button("Pin selection", key=S.W_PIN, on_click=_pin, disabled=empty, width="stretch",
              icon=":material/push_pin:", help="Always include these rows in the subset.")
    st.button("Ban selection", key=S.W_BAN, on_click=_ban, disabled=empty, width="stretch",
              icon=":material/block:", help="Never include these rows in the subset.")
    st.button("Clear selection", key=S.W_CLEAR, on_click=_clear, width="stretch", icon=":material/deselect:")
    if summ["clusters"]:
        st.caption(f"In {len(summ['clusters'])} cluster(s): see *Clusters touched* below the map.")
    c1, c2 = st.columns(2)
    if c1.button("Clear pins", key=S.W_CLEAR_PINS, disabled=not S.SessionView(S.ss()).pins, width="stretch"):
        S.SessionView(S.ss()).pins.clear()
        st.rerun()
    if c2.button("Clear bans", key=S.W_CLEAR_BANS, disabled=not S.SessionView(S.ss()).bans, width="stretch"):
        S.SessionView(S.ss()).bans.clear()
        st.rerun()


def _touched_table(data) -> None:
    """The clusters the selection touches, full width below the map (the side column
    is too narrow for three columns)."""

    summ = selection_summary(data.labels, ids_in(data.row_ids, S.MapState(S.ss()).selected), data.cluster_names)
    if not summ["clusters"]:
        return
    df = pd.DataFrame(summ["clusters"])[["name", "count", "share"]]
    st.markdown("**Clusters touched**")
    st.dataframe(df, hide_index=True, width="stretch", height=min(300, 38 + 35 * len(df)),
                 column_config={"name": st.column_config.TextColumn("cluster touched", width="large"),
                                "count": st.column_config.NumberColumn("rows", format="%d"),
                                "share": st.column_config.NumberColumn("of cluster", format="percent")})


def _rows_table(ws, data, ids: np.ndarray, what: str, key: str) -> None:
    n = len(ids)
    if n == 0:
        st.caption(f"No {what}.")
        return
    pages = (n + PAGE_SIZE - 1) // PAGE_SIZE
    page = 1
    if pages > 1:
        page = int(st.number_input(f"Page (of {pages:,}, {PAGE_SIZE} rows each)", 1, pages, 1, key=key))
    chunk = np.sort(np.asarray(ids, dtype=np.int64))[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    df = fetch_rows(ws, chunk).to_pandas()
    pos = data.positions(chunk)
    names = data.cluster_names
    # Columns the app adds use the reserved sieve_ prefix, so they never clash with the data's.
    df.insert(1, "sieve_cluster", [names.get(int(c), str(c)) for c in data.labels[pos]])
    pins, bans = S.SessionView(S.ss()).pins, S.SessionView(S.ss()).bans
    df.insert(2, "sieve_status", ["pinned" if int(i) in pins else "banned" if int(i) in bans else "" for i in chunk])
    if "sieve_text" in df.columns:
        df.insert(3, "sieve_text", df.pop("sieve_text"))
    st.dataframe(df, hide_index=True, width="stretch", height=380, column_config={
        "sieve_row_id": st.column_config.NumberColumn("row id", format="%d"),
        "sieve_cluster": st.column_config.TextColumn("cluster"),
        "sieve_status": st.column_config.TextColumn("status"),
        "sieve_text": st.column_config.TextColumn("embedded text", width="large"),
    })


def _sql_filter(ws, data, fig) -> None:
    """Select rows by a SQL WHERE expression over the data's columns (core.store.query runs it sandboxed)."""
    m = S.MapState(S.ss())
    st.caption("A DuckDB WHERE expression over the dataset's columns, e.g. `quality > 0.8 AND source = 'forum'`. "
               "It runs in a sandbox that sees only this dataset.")
    where = st.text_input("WHERE", key=S.W_SQL_WHERE, placeholder="length(sieve_text) > 200")
    if st.button("Select matching rows", key=S.W_SQL_SELECT, disabled=not where.strip()):

        try:
            ids = queries.filter_row_ids(ws, where)
        except C.SieveError as exc:
            C.show_error(exc)
            return
        mask = np.isin(data.row_ids, ids)
        if fig["allowed"] is not None:
            mask &= fig["allowed"]
        m.select(data.row_ids[mask], "sql")
        _bump_chart()
        off_map = len(ids) - int(np.isin(ids, data.row_ids).sum())
        S.SessionView(S.ss()).flash("success", f"Selected {int(mask.sum()):,} row(s) matching the filter"
                + (f" ({off_map:,} more match but have no text, so they are not on the map)" if off_map else "") + ".")
        st.rerun()


def _cluster_table(data) -> None:
    df = pd.DataFrame(cluster_table(data.clusters, len(data.row_ids)))
    st.dataframe(df, hide_index=True, width="stretch",
                 column_config={"share": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)})
    m1, m2, _ = st.columns([1, 1, 2])
    m1.metric("Clusters", f"{len([c for c in data.clusters if c.id >= 0]):,}")
    m2.metric("Unclustered rows", f"{int((data.labels < 0).sum()):,}")


def _controls(state: S.State, data) -> tuple[set[int] | None, str, bool]:
    """The cluster filter, the text search box and its highlight switch:
    (visible clusters or None for all, query, highlight)."""
    names = data.cluster_names
    ids = sorted(names, key=lambda c: (c < 0, c))
    c1, c2, c3 = st.columns([3, 2, 1])
    if S.W_FILTER not in state:
        state[S.W_FILTER] = [c for c in state.get(S.C_FILTER, []) if c in names]
    chosen = c1.multiselect("Show clusters (empty = all)", ids, key=S.W_FILTER,
                            format_func=lambda c: f"{c}: {names.get(c, c)}")
    state[S.C_FILTER] = list(chosen)
    query = S.persisted(state, c2.text_input, "Search texts (case-insensitive)", S.W_SEARCH, S.C_SEARCH, "")
    c3.write("")
    highlight = S.persisted(state, c3.checkbox, "Highlight on map", S.W_HIGHLIGHT, S.C_HIGHLIGHT, False,
                            help="Rings the search matches on the map; a drawn box or lasso stays.")
    return (set(chosen) if chosen else None), query, highlight


def _search_tab(ws, data, fig: dict, query: str) -> None:
    if not query:
        st.caption("Type in the search box to find texts.")
        return
    mask = _search_mask(data, query)
    if fig["allowed"] is not None:
        mask = mask & fig["allowed"]
    st.metric("Search matches", f"{int(mask.sum()):,}")
    st.button("Select matches", key=S.W_SELECT_MATCHES, on_click=_select_matches, disabled=not mask.any())
    _rows_table(ws, data, data.row_ids[mask], "matches", S.W_MATCH_PAGE)


def _explore(ws, data) -> None:
    state = S.ss()
    visible, query, highlight = _controls(state, data)
    map_tools.color_by_control(state, ws, data)
    fig = _figure(data, visible, query.strip(), highlight)
    left, right = st.columns([4, 1.3])
    with left:
        st.plotly_chart(fig["fig"], key=_chart_key(), on_select=_on_select, selection_mode=("points", "box", "lasso"),
                        config={"displaylogo": False, "scrollZoom": True})
        drawn = len(fig["drawn"])
        note = f"Drawing {drawn:,} of {len(data.row_ids):,} rows (every cluster represented)" \
            if drawn < len(data.row_ids) else f"{drawn:,} rows"
        st.caption(note + ". Drag a box (or pick the lasso in the toolbar) to select; the shape is applied to all "
                   "rows on the server. In pan mode a click selects one point; double-click clears. Use the filter "
                   "above to hide clusters (legend clicks are disabled).")
    with right:
        _summary(data)
        map_tools.linked_summaries(state, ws, data)
    tabs = st.tabs(["Selected rows", "Clusters", "Search matches", "Search by meaning", "SQL filter",
                    "Curate clusters"])
    with tabs[0]:
        _touched_table(data)
        _rows_table(ws, data, S.MapState(state).selected, "rows selected — draw a box or lasso on the map", S.W_SEL_PAGE)
    with tabs[1]:
        _cluster_table(data)
    with tabs[2]:
        _search_tab(ws, data, fig, query.strip())
    with tabs[3]:
        map_tools.semantic_panel(state, ws, data)
    with tabs[4]:
        _sql_filter(ws, data, fig)
    with tabs[5]:
        map_tools.curate_panel(state, ws, data)
    for note in data.notes:
        st.caption(f"Note: {C.esc(note)}")


def body() -> None:
    opened = C.page_dataset("Map")
    if opened is None:
        return
    state, ws, info = opened
    if engine_choice.choose(state, ws, info) == RAY:
        map_sharded.render(state, ws, info)
        return
    data = C.get_map(state, ws)
    st.caption(f"Dataset: {info.n_rows:,} rows ({info.n_embeddable:,} to embed) from "
               f"{C.esc(', '.join(info.sources[:2]))}{' …' if len(info.sources) > 2 else ''}")
    map_compute.compute_section(ws, info, data)
    if data is None:
        try:
            eta = map_compute.estimate(ws, info, forms.map_params(S.ss()[S.C_MAP_SETTINGS]))
        except Exception:  # noqa: BLE001 - an estimate never blocks the page
            log.debug("no estimate", exc_info=True)
            eta = None
        st.info("No map of this dataset yet. Press **Compute map**"
                + (f": {eta} on this machine for {info.n_embeddable - info.n_duplicates:,} distinct texts" if eta else "")
                + ". Later runs reuse cached stages.")
        return
    n_clusters = len([c for c in data.clusters if c.id >= 0])
    st.caption(f"Map: {len(data.row_ids):,} rows, {n_clusters} clusters, model {C.esc(data.keys.model_id)}")
    _long_text_note(data)
    _explore(ws, data)


def _long_text_note(data) -> None:
    """How many texts were over the model's token limit when this map was embedded."""
    counts = (data.stage_meta.get("embed") or {}).get("long_texts")
    if not counts:
        return
    mode = getattr(getattr(data.params, "embed", None), "long_text", "truncate")
    known = {k: counts[k] for k in ("n_texts", "n_over_limit", "n_over_cap", "max_seq_length", "max_text_chars")}
    msg = LongTextCount(**known).message(mode, "chunk under Advanced settings")
    if msg:
        st.info(msg)


C.run_page(body)
