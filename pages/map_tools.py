"""The Map page's exploration tools, kept out of pages/map.py: curating the clusters
(rename, merge, split; core.curate / core.workflows.edit_clusters) and search by meaning
(core.search).

Session-state keys of these tools are defined here (prefix ``w.curate.`` for widgets).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import streamlit as st

from core import workflows
from core.explore import event_point_ids, ids_in
from core.explore_files import column_kinds
from core.search import embed_query, nearest, row_norms
from core.summaries import TEXT_LENGTH, bar_labels, bar_mask, bars, column_view, text_length_view
from pages import common as C
from pages import figures
from pages import state as S

W_CUR_RENAME_ID = "w.curate.rename_id"
W_CUR_RENAME_NAME = "w.curate.rename_name"
W_CUR_RENAME = "w.curate.rename"
W_CUR_MERGE_IDS = "w.curate.merge_ids"
W_CUR_MERGE = "w.curate.merge"
W_CUR_SPLIT_ID = "w.curate.split_id"
W_CUR_SPLIT_K = "w.curate.split_k"
W_CUR_SPLIT = "w.curate.split"
W_CUR_UNDO = "w.curate.undo"
W_CUR_CLEAR = "w.curate.clear"

K_SEM = "sieve.semantic"  # {"map": map id, "what": str, "ids": row ids, "sims": similarities} of the last search
K_SEM_FOLLOWED = "sieve.semantic.followed"  # the single selected row last put in the Row id box
W_SEM_QUERY = "w.semantic.query"
W_SEM_K = "w.semantic.k"
W_SEM_GO = "w.semantic.go"
W_SEM_ROW = "w.semantic.row"
W_SEM_LIKE = "w.semantic.like"
W_SEM_SELECT = "w.semantic.select"
W_SEM_PIN = "w.semantic.pin"
W_SEM_BAN = "w.semantic.ban"
W_SEM_HIGHLIGHT = "w.semantic.highlight"


def _apply(state: S.State, edits: list[dict], done: str) -> None:
    """Make ``edits`` the map's edit list and switch this session to the result.

    Cluster ids change, so the widgets holding ids (these tools', the map's cluster
    filter) start afresh."""
    m = S.MapState(state)
    ws, data = C.get_workspace(), m.map
    keys = workflows.edit_clusters(ws, edits, data)
    C.get_map(state, ws, keys.map_id)
    for k in (W_CUR_RENAME_ID, W_CUR_RENAME_NAME, W_CUR_MERGE_IDS, W_CUR_SPLIT_ID, S.W_FILTER):
        state.pop(k, None)
    S.SessionView(state).flash("success", done)


# Button callbacks: they read the widgets' values from session state (the values sent with
# the click), and a bad edit becomes one error line (safe_callback).


@C.safe_callback
def _rename() -> None:
    state = S.ss()
    m = S.MapState(state)
    cid, name = int(state[W_CUR_RENAME_ID]), state.get(W_CUR_RENAME_NAME, "")
    _apply(state, m.map.edits + [{"op": "rename", "cluster": cid, "name": name}], f"Renamed cluster {cid}.")


@C.safe_callback
def _merge() -> None:
    state = S.ss()
    m = S.MapState(state)
    ids = sorted(int(c) for c in state[W_CUR_MERGE_IDS])
    _apply(state, m.map.edits + [{"op": "merge", "clusters": ids}],
           f"Merged clusters {', '.join(map(str, ids))} into cluster {ids[0] if ids else ''}.")


@C.safe_callback
def _split() -> None:
    state = S.ss()
    m = S.MapState(state)
    cid, k = int(state[W_CUR_SPLIT_ID]), int(state[W_CUR_SPLIT_K])
    _apply(state, m.map.edits + [{"op": "split", "cluster": cid, "k": k}], f"Split cluster {cid} into {k} parts.")


@C.safe_callback
def _undo() -> None:
    state = S.ss()
    m = S.MapState(state)
    _apply(state, m.map.edits[:-1], "Undid the last edit.")


@C.safe_callback
def _clear() -> None:
    state = S.ss()
    _apply(state, [], "Cleared every edit: the clusters are HDBSCAN's again.")


def _label(data):
    names = data.cluster_names
    return lambda c: f"{c}: {names.get(c, c)}"


def curate_panel(state: S.State, ws, data) -> None:
    """Rename, merge and split clusters; undo; the current edit list."""
    ids = sorted(c.id for c in data.clusters if c.id >= 0)
    st.caption("Edits apply on top of the clusters HDBSCAN found and are kept in the workspace and in every "
               "export's manifest, so `sieve reproduce` replays them. A split re-clusters only that cluster's "
               "rows (seeded k-means on the clustering projection); merged and split clusters are named again "
               "from their keywords. Each edit redraws the map and clears the current selection.")
    if not ids:
        st.caption("This map has no clusters to edit.")
        return
    fmt = _label(data)
    c1, c2, c3 = st.columns(3)
    with c1:
        st.markdown("**Rename**")
        st.selectbox("Cluster", ids, key=W_CUR_RENAME_ID, format_func=fmt)
        st.text_input("New name", key=W_CUR_RENAME_NAME, max_chars=80)
        st.button("Rename", key=W_CUR_RENAME, on_click=_rename)
    with c2:
        st.markdown("**Merge**")
        st.multiselect("Clusters (two or more)", ids, key=W_CUR_MERGE_IDS, format_func=fmt)
        st.button("Merge", key=W_CUR_MERGE, on_click=_merge)
    with c3:
        st.markdown("**Split**")
        st.selectbox("Cluster", ids, key=W_CUR_SPLIT_ID, format_func=fmt)
        st.number_input("Parts (k)", min_value=2, max_value=20, value=2, key=W_CUR_SPLIT_K)
        st.button("Split", key=W_CUR_SPLIT, on_click=_split)
    _edit_list(state, ws, data)


def _edit_list(state: S.State, ws, data) -> None:
    st.metric("Cluster edits", f"{len(data.edits):,}", help="Renames, merges and splits applied to this map.")
    if not data.edits:
        return
    rows = [{"#": i, "op": e["op"], "clusters": ", ".join(str(c) for c in e.get("clusters", [e.get("cluster")])),
             "detail": e.get("name") or (f"k={e['k']}, seed={e['seed']}" if e["op"] == "split" else "")}
            for i, e in enumerate(data.edits, 1)]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    c1, c2 = st.columns(2)
    c1.button("Undo last edit", key=W_CUR_UNDO, on_click=_undo)
    c2.button("Clear all edits", key=W_CUR_CLEAR, on_click=_clear)


# -- search by meaning ----------------------------------------------------------------------------


def _semantic(state: S.State) -> dict | None:
    """The last search by meaning, if it was made on this session's map."""
    m = S.MapState(state)
    res = state.get(K_SEM)
    return res if res is not None and res["map"] == m.map_key else None


def semantic_highlight(state: S.State, data) -> tuple[tuple, np.ndarray] | None:
    """(a token for the figure's cache key, a row mask) of the search results to ring on the map, or None."""
    res = _semantic(state)
    if res is None or not state.get(W_SEM_HIGHLIGHT, True) or not len(res["ids"]):
        return None
    return (res["what"], len(res["ids"])), ids_in(data.row_ids, res["ids"])


def _run_search(state: S.State, data, vec: np.ndarray, what: str) -> None:
    m = S.MapState(state)
    normalized = data.params is None or bool(data.params.embed.normalize)
    pos, sims = nearest(data.vectors, vec, int(state.get(W_SEM_K, 20)),
                        norms=None if normalized else row_norms(data.vectors))
    state[K_SEM] = {"map": m.map_key, "what": what, "ids": data.row_ids[pos].astype(np.int64),
                     "sims": sims, "positions": pos}


@C.safe_callback
def _search_query() -> None:
    state = S.ss()
    m = S.MapState(state)
    data = m.map
    if str(data.keys.model_id).startswith("column:"):
        raise C.SieveError(f"this map's vectors come from the data ({data.keys.model_id}), not from a model, so a "
                           "text query cannot be embedded; use More like this instead")
    e = data.params.embed if data.params is not None else None
    if e is None:
        raise C.SieveError("this map's settings are unknown; compute the map again to search it by meaning")
    query = state.get(W_SEM_QUERY, "")
    vec = embed_query(C.get_encoder(e.model, e.device, e.normalize, getattr(e, "backend", "torch")), query)
    _run_search(state, data, vec, "query: " + " ".join(query.split()))


@C.safe_callback
def _more_like_this() -> None:
    state = S.ss()
    m = S.MapState(state)
    data = m.map
    rid = int(state.get(W_SEM_ROW, -1))
    pos = int(data.positions([rid])[0]) if len(data.row_ids) else 0
    if pos >= len(data.row_ids) or int(data.row_ids[pos]) != rid:
        raise C.SieveError(f"row {rid} is not on the map (rows with an empty text are not embedded)")
    _run_search(state, data, np.asarray(data.vectors[pos], dtype=np.float32), f"more like row {rid}")


@C.safe_callback
def _select_results() -> None:
    state = S.ss()
    m = S.MapState(state)
    res = _semantic(state)
    if res is not None:
        m.select(np.sort(res["ids"]), "meaning")
        m.bump_chart()


@C.safe_callback
def _pin_results() -> None:
    state = S.ss()
    if _semantic(state) is not None:
        S.SessionView(state).pin(_semantic(state)["ids"])


@C.safe_callback
def _ban_results() -> None:
    state = S.ss()
    if _semantic(state) is not None:
        S.SessionView(state).ban(_semantic(state)["ids"])


def semantic_panel(state: S.State, ws, data) -> None:
    """A query box (embedded with the map's model) and More like this; the nearest rows,
    ringed on the map, to select, pin or ban."""
    c1, c2, c3 = st.columns([4, 1, 1])
    c1.text_input("Search by meaning", key=W_SEM_QUERY, placeholder="e.g. refunds for a cancelled flight")
    c2.number_input("Rows", min_value=1, max_value=1000, value=20, key=W_SEM_K)
    c3.write("")
    c3.button("Search", key=W_SEM_GO, on_click=_search_query, type="primary", icon=":material/search:")
    sel = S.MapState(state).selected
    if W_SEM_ROW not in state:
        state[W_SEM_ROW] = int(sel[0]) if len(sel) else int(data.row_ids[0]) if len(data.row_ids) else 0
    if len(sel) == 1 and state.get(K_SEM_FOLLOWED) != int(sel[0]):  # a clicked point: more like it
        state[W_SEM_ROW] = state[K_SEM_FOLLOWED] = int(sel[0])
    c1, c2, _ = st.columns([2, 1, 3])
    c1.number_input("Row id", min_value=0, step=1, key=W_SEM_ROW,
                    help="More like this: search from this row's own vector (e.g. a row you clicked on the map).")
    c2.write("")
    c2.button("More like this", key=W_SEM_LIKE, on_click=_more_like_this)
    res = _semantic(state)
    if res is None:
        st.caption("The query is embedded with the map's own model and backend; rows are ranked by cosine "
                   "similarity (exact search over every row).")
        return
    _results(state, data, res)


def _results(state: S.State, data, res: dict) -> None:
    m = S.MapState(state)
    st.metric("Rows found", f"{len(res['ids']):,}")
    st.caption(f"Nearest rows, {C.esc(res['what'])}")
    c1, c2, c3, c4 = st.columns(4)
    c1.checkbox("Ring them on the map", key=W_SEM_HIGHLIGHT, value=True,
                help="Redraws the map, which clears the current selection.")
    c2.button("Select these rows", key=W_SEM_SELECT, on_click=_select_results, icon=":material/select:")
    c3.button("Pin these rows", key=W_SEM_PIN, on_click=_pin_results, icon=":material/push_pin:")
    c4.button("Ban these rows", key=W_SEM_BAN, on_click=_ban_results, icon=":material/block:")
    texts, names = m.texts, data.cluster_names
    pos = data.positions(res["ids"])
    df = pd.DataFrame({"row id": res["ids"], "similarity": res["sims"],
                       "cluster": [names.get(int(c), str(c)) for c in data.labels[pos]],
                       "text": [texts[int(p)] for p in pos]})
    st.dataframe(df, hide_index=True, width="stretch", column_config={
        "row id": st.column_config.NumberColumn(format="%d"),
        "similarity": st.column_config.NumberColumn(format="%.3f"),
        "text": st.column_config.TextColumn(width="large")})


# -- colour by any column, and the linked summaries ----------------------------------------------

CLUSTER = "cluster"
W_COLOR_BY = "w.summary.color_by"
W_SUMMARY_COLS = "w.summary.columns"
K_VIEWS = "sieve.summary.views"  # {(map id, column): core.summaries.ColumnView}
SUMMARIES_CONTAINER = "sieve-summaries"  # the small charts' container (CSS class st-key-sieve-summaries)
K_SUMMARY_VERSION = "sieve.summary.version"  # bumped to reset the small charts' selections


def _columns(data) -> list[str]:
    kinds = column_kinds(data.dataset.columns or {})
    return [c for c in data.dataset.columns if c in set(kinds["text"]) | set(kinds["numeric"])]


def _view(state: S.State, ws, data, column: str):
    """The ColumnView of ``column`` (or the text length) over the map's rows, cached per map."""
    m = S.MapState(state)
    views = state.setdefault(K_VIEWS, {})
    key = (m.map_key, column)
    if key not in views:
        if len(views) > 16:
            views.clear()
        views[key] = text_length_view(m.texts) if column == TEXT_LENGTH else \
            column_view(ws, column, data.row_ids)
    return views[key]


def color_by_control(state: S.State, ws, data) -> None:
    """The "Colour by" box (above the map)."""
    options = [CLUSTER, TEXT_LENGTH, *_columns(data)]
    if state.get(W_COLOR_BY) not in options:
        state[W_COLOR_BY] = CLUSTER
    st.columns([1, 3])[0].selectbox("Colour by", options, key=W_COLOR_BY,
                 help="A numeric column gets a colour scale, any other column one colour per value (the 12 most "
                      "frequent; the rest are grey). Redraws the map, which clears the current selection.")


def color_view(state: S.State, ws, data):
    """(cache token, ColumnView) of the column the map is coloured by, or None for clusters."""
    column = state.get(W_COLOR_BY, CLUSTER)
    if column == CLUSTER or not column:
        return None
    return ("colour", column), _view(state, ws, data, column)


def _chart_key(state: S.State, column: str) -> str:
    return f"w.summary.chart.{state.get(K_SUMMARY_VERSION, 0)}.{column}"


@C.safe_callback
def _on_bar(column: str) -> None:
    """A click on a bar: the selection becomes its rows (within the current selection, if any)."""
    state = S.ss()
    m = S.MapState(state)
    data = m.map
    bars_clicked = sorted(set(event_point_ids(state.get(_chart_key(state, column)))))
    if not bars_clicked:
        return
    view = _view(state, C.get_workspace(), data, column)
    mask = np.zeros(len(data.row_ids), bool)
    for b in bars_clicked:
        mask |= bar_mask(view, b)
    current = m.selected
    if len(current):
        mask &= ids_in(data.row_ids, current)
    m.selected = np.asarray(data.row_ids[mask], dtype=np.int64)
    labels = bar_labels(view)
    m.selected_how = f"{column} = {', '.join(labels[b] for b in bars_clicked)}"
    state[K_SUMMARY_VERSION] = state.get(K_SUMMARY_VERSION, 0) + 1
    m.bump_chart()  # the map drops its drawn shape


def linked_summaries(state: S.State, ws, data) -> None:
    """Small bar charts of the selection against all rows; a click on a bar filters the selection."""
    options = [TEXT_LENGTH, *_columns(data)]
    if W_SUMMARY_COLS not in state:
        state[W_SUMMARY_COLS] = options[:1]
    state[W_SUMMARY_COLS] = [c for c in state[W_SUMMARY_COLS] if c in options]
    chosen = st.multiselect("Summaries of", options, key=W_SUMMARY_COLS,
                            help="Grey: share of all rows per value; blue: share of the selection. Click a bar to "
                                 "keep only the selected rows with that value (all rows with it when nothing is "
                                 "selected).")
    selected = ids_in(data.row_ids, S.MapState(state).selected)
    box = st.container(key=SUMMARIES_CONTAINER)
    for column in chosen:
        view = _view(state, ws, data, column)
        rows = bars(view, selected)
        box.plotly_chart(figures.summary_bars(view, rows), key=_chart_key(state, column), on_select=functools.partial(_on_bar, column),
                        selection_mode="points", config={"displayModeBar": False})
