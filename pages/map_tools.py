"""The Map page's exploration tools, kept out of pages/map.py: curating the clusters
(rename, merge, split; core.curate / core.pipeline.curate_map) and search by meaning
(core.search).

Session-state keys of these tools are defined here (prefix ``w.curate.`` for widgets).
"""

from __future__ import annotations

import functools

import numpy as np
import streamlit as st

from pages import common as C

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


def _apply(edits: list[dict], done: str) -> None:
    """Make ``edits`` the map's edit list and switch this session to the result.

    Cluster ids change, so the widgets holding ids (these tools', the map's cluster
    filter) start afresh."""
    from core.engines.local import curate_map

    ws, data = C.get_workspace(), C.ss()[C.K_MAP]
    keys = curate_map(ws, data.keys, edits, data.params)
    C.get_map(ws, keys.map_id)
    for k in (W_CUR_RENAME_ID, W_CUR_RENAME_NAME, W_CUR_MERGE_IDS, W_CUR_SPLIT_ID, C.W_FILTER):
        C.ss().pop(k, None)
    C.flash("success", done)


# Button callbacks: they read the widgets' values from session state (the values sent with
# the click), and a bad edit becomes one error line (safe_callback).


@C.safe_callback
def _rename() -> None:
    cid, name = int(C.ss()[W_CUR_RENAME_ID]), C.ss().get(W_CUR_RENAME_NAME, "")
    _apply(C.ss()[C.K_MAP].edits + [{"op": "rename", "cluster": cid, "name": name}], f"Renamed cluster {cid}.")


@C.safe_callback
def _merge() -> None:
    ids = sorted(int(c) for c in C.ss()[W_CUR_MERGE_IDS])
    _apply(C.ss()[C.K_MAP].edits + [{"op": "merge", "clusters": ids}],
           f"Merged clusters {', '.join(map(str, ids))} into cluster {ids[0] if ids else ''}.")


@C.safe_callback
def _split() -> None:
    cid, k = int(C.ss()[W_CUR_SPLIT_ID]), int(C.ss()[W_CUR_SPLIT_K])
    _apply(C.ss()[C.K_MAP].edits + [{"op": "split", "cluster": cid, "k": k}], f"Split cluster {cid} into {k} parts.")


@C.safe_callback
def _undo() -> None:
    _apply(C.ss()[C.K_MAP].edits[:-1], "Undid the last edit.")


@C.safe_callback
def _clear() -> None:
    _apply([], "Cleared every edit: the clusters are HDBSCAN's again.")


def _label(data):
    names = data.cluster_names
    return lambda c: f"{c}: {names.get(c, c)}"


def curate_panel(ws, data) -> None:
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
    _edit_list(ws, data)


def _edit_list(ws, data) -> None:
    import pandas as pd

    st.text(f"edits={len(data.edits)}")
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


def _semantic() -> dict | None:
    """The last search by meaning, if it was made on this session's map."""
    res = C.ss().get(K_SEM)
    return res if res is not None and res["map"] == C.ss().get(C.K_MAP_KEY) else None


def semantic_highlight(data) -> tuple[tuple, np.ndarray] | None:
    """(a token for the figure's cache key, a row mask) of the search results to ring on the map, or None."""
    from core.explore import ids_in

    res = _semantic()
    if res is None or not C.ss().get(W_SEM_HIGHLIGHT, True) or not len(res["ids"]):
        return None
    return (res["what"], len(res["ids"])), ids_in(data.row_ids, res["ids"])


def _run_search(data, vec: np.ndarray, what: str) -> None:
    from core.search import nearest, row_norms

    normalized = data.params is None or bool(data.params.embed.normalize)
    pos, sims = nearest(data.vectors, vec, int(C.ss().get(W_SEM_K, 20)),
                        norms=None if normalized else row_norms(data.vectors))
    C.ss()[K_SEM] = {"map": C.ss().get(C.K_MAP_KEY), "what": what, "ids": data.row_ids[pos].astype(np.int64),
                     "sims": sims, "positions": pos}


@C.safe_callback
def _search_query() -> None:
    from core.search import embed_query

    data = C.ss()[C.K_MAP]
    if str(data.keys.model_id).startswith("column:"):
        raise C.SieveError(f"this map's vectors come from the data ({data.keys.model_id}), not from a model, so a "
                           "text query cannot be embedded; use More like this instead")
    e = data.params.embed if data.params is not None else None
    if e is None:
        raise C.SieveError("this map's settings are unknown; compute the map again to search it by meaning")
    query = C.ss().get(W_SEM_QUERY, "")
    vec = embed_query(C.get_encoder(e.model, e.device, e.normalize, getattr(e, "backend", "torch")), query)
    _run_search(data, vec, "query: " + " ".join(query.split()))


@C.safe_callback
def _more_like_this() -> None:
    data = C.ss()[C.K_MAP]
    rid = int(C.ss().get(W_SEM_ROW, -1))
    pos = int(data.positions([rid])[0]) if len(data.row_ids) else 0
    if pos >= len(data.row_ids) or int(data.row_ids[pos]) != rid:
        raise C.SieveError(f"row {rid} is not on the map (rows with an empty text are not embedded)")
    _run_search(data, np.asarray(data.vectors[pos], dtype=np.float32), f"more like row {rid}")


@C.safe_callback
def _select_results() -> None:
    res = _semantic()
    if res is not None:
        C.ss()[C.K_SELECTED] = np.sort(res["ids"])
        C.ss()[C.K_SELECTED_HOW] = "meaning"
        C.ss()[C.K_CHART_VERSION] = C.ss().get(C.K_CHART_VERSION, 0) + 1


@C.safe_callback
def _pin_results() -> None:
    if _semantic() is not None:
        C.pin_rows(_semantic()["ids"])


@C.safe_callback
def _ban_results() -> None:
    if _semantic() is not None:
        C.ban_rows(_semantic()["ids"])


def semantic_panel(ws, data) -> None:
    """A query box (embedded with the map's model) and More like this; the nearest rows,
    ringed on the map, to select, pin or ban."""
    c1, c2, c3 = st.columns([4, 1, 1])
    c1.text_input("Search by meaning", key=W_SEM_QUERY, placeholder="e.g. refunds for a cancelled flight")
    c2.number_input("Rows", min_value=1, max_value=1000, value=20, key=W_SEM_K)
    c3.write("")
    c3.button("Search", key=W_SEM_GO, on_click=_search_query, type="primary", icon=":material/search:")
    sel = C.selected_ids()
    if W_SEM_ROW not in C.ss():
        C.ss()[W_SEM_ROW] = int(sel[0]) if len(sel) else int(data.row_ids[0]) if len(data.row_ids) else 0
    if len(sel) == 1 and C.ss().get(K_SEM_FOLLOWED) != int(sel[0]):  # a clicked point: more like it
        C.ss()[W_SEM_ROW] = C.ss()[K_SEM_FOLLOWED] = int(sel[0])
    c1, c2, _ = st.columns([2, 1, 3])
    c1.number_input("Row id", min_value=0, step=1, key=W_SEM_ROW,
                    help="More like this: search from this row's own vector (e.g. a row you clicked on the map).")
    c2.write("")
    c2.button("More like this", key=W_SEM_LIKE, on_click=_more_like_this)
    res = _semantic()
    if res is None:
        st.caption("The query is embedded with the map's own model and backend; rows are ranked by cosine "
                   "similarity (exact search over every row).")
        return
    _results(data, res)


def _results(data, res: dict) -> None:
    import pandas as pd

    st.text(f"semantic_results={len(res['ids'])}")
    st.caption(f"Nearest rows, {C.esc(res['what'])}")
    c1, c2, c3, c4 = st.columns(4)
    c1.checkbox("Ring them on the map", key=W_SEM_HIGHLIGHT, value=True,
                help="Redraws the map, which clears the current selection.")
    c2.button("Select these rows", key=W_SEM_SELECT, on_click=_select_results, icon=":material/select:")
    c3.button("Pin these rows", key=W_SEM_PIN, on_click=_pin_results, icon=":material/push_pin:")
    c4.button("Ban these rows", key=W_SEM_BAN, on_click=_ban_results, icon=":material/block:")
    texts, names = C.ss()[C.K_TEXTS], data.cluster_names
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
    from core.explore import column_kinds

    kinds = column_kinds(data.dataset.columns or {})
    return [c for c in data.dataset.columns if c in set(kinds["text"]) | set(kinds["numeric"])]


def _view(ws, data, column: str):
    """The ColumnView of ``column`` (or the text length) over the map's rows, cached per map."""
    from core.summaries import TEXT_LENGTH, column_view, text_length_view

    views = C.ss().setdefault(K_VIEWS, {})
    key = (C.ss().get(C.K_MAP_KEY), column)
    if key not in views:
        if len(views) > 16:
            views.clear()
        views[key] = text_length_view(C.ss()[C.K_TEXTS]) if column == TEXT_LENGTH else \
            column_view(ws, column, data.row_ids)
    return views[key]


def color_by_control(ws, data) -> None:
    """The "Colour by" box (above the map)."""
    from core.summaries import TEXT_LENGTH

    options = [CLUSTER, TEXT_LENGTH, *_columns(data)]
    if C.ss().get(W_COLOR_BY) not in options:
        C.ss()[W_COLOR_BY] = CLUSTER
    st.columns([1, 3])[0].selectbox("Colour by", options, key=W_COLOR_BY,
                 help="A numeric column gets a colour scale, any other column one colour per value (the 12 most "
                      "frequent; the rest are grey). Redraws the map, which clears the current selection.")


def color_view(ws, data):
    """(cache token, ColumnView) of the column the map is coloured by, or None for clusters."""
    column = C.ss().get(W_COLOR_BY, CLUSTER)
    if column == CLUSTER or not column:
        return None
    return ("colour", column), _view(ws, data, column)


def recolor(fig, traces, view) -> None:
    """Colour the map's per-cluster traces by ``view`` (the traces and their selection stay as they are)."""
    import html

    import plotly.colors as pc
    import plotly.graph_objects as go

    from core.summaries import MISSING, OTHER

    kind = view.kind
    palette = [c for c in pc.qualitative.D3 if c.lower() != "#7f7f7f"] + pc.qualitative.Set2
    if kind == "categorical":
        cmap = {i: ("#c7c7c7" if cat in (OTHER, MISSING) else palette[i % len(palette)])
                for i, cat in enumerate(view.categories)}
    finite = view.values[np.isfinite(view.values)] if kind == "numeric" else None
    lo, hi = (float(finite.min()), float(finite.max())) if finite is not None and len(finite) else (0.0, 1.0)
    for t, pos in zip(fig.data, traces):
        if t.name == "search matches":
            continue
        t.showlegend = False
        if kind == "categorical":
            t.marker.color = [cmap[int(c)] for c in view.codes[pos]]
        else:
            vals = view.values[pos]
            t.marker.color = np.where(np.isfinite(vals), vals, lo)
            t.marker.update(colorscale="Viridis", cmin=lo, cmax=hi, showscale=False)
    if kind == "categorical":
        for i, cat in enumerate(view.categories):
            fig.add_trace(go.Scattergl(x=[None], y=[None], mode="markers", name=html.escape(cat),
                                       marker=dict(size=8, color=cmap[i]), hoverinfo="skip"))
    else:
        fig.add_trace(go.Scattergl(x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
                                   marker=dict(colorscale="Viridis", cmin=lo, cmax=hi, color=[lo], showscale=True,
                                               colorbar=dict(title=dict(text=html.escape(view.name)), len=0.5))))
    fig.update_layout(legend_title_text=html.escape(view.name))


def _bar_chart(view, rows: list[dict]):
    import plotly.graph_objects as go

    labels = [r["label"] for r in rows]
    fig = go.Figure([
        go.Bar(x=[r["all_share"] for r in rows], y=labels, orientation="h", name="all rows",
               marker_color="#bdbdbd", customdata=[r["bar"] for r in rows],
               hovertemplate="%{y}: %{x:.1%} of all rows<extra></extra>"),
        go.Bar(x=[r["selected_share"] for r in rows], y=labels, orientation="h", name="selection",
               marker_color="#1f77b4", customdata=[r["bar"] for r in rows],
               hovertemplate="%{y}: %{x:.1%} of the selection<extra></extra>"),
    ])
    fig.update_layout(barmode="group", height=70 + 22 * len(rows), margin=dict(l=0, r=0, t=24, b=0),
                      title=dict(text=view.name[:40], font=dict(size=12)), showlegend=False, dragmode=False,
                      xaxis=dict(tickformat=".0%", title=None), yaxis=dict(autorange="reversed", type="category"))
    return fig


def _chart_key(column: str) -> str:
    return f"w.summary.chart.{C.ss().get(K_SUMMARY_VERSION, 0)}.{column}"


@C.safe_callback
def _on_bar(column: str) -> None:
    """A click on a bar: the selection becomes its rows (within the current selection, if any)."""
    from core.explore import event_point_ids, ids_in
    from core.summaries import bar_labels, bar_mask

    data = C.ss()[C.K_MAP]
    bars_clicked = sorted(set(event_point_ids(C.ss().get(_chart_key(column)))))
    if not bars_clicked:
        return
    view = _view(C.get_workspace(), data, column)
    mask = np.zeros(len(data.row_ids), bool)
    for b in bars_clicked:
        mask |= bar_mask(view, b)
    current = C.selected_ids()
    if len(current):
        mask &= ids_in(data.row_ids, current)
    C.ss()[C.K_SELECTED] = np.asarray(data.row_ids[mask], dtype=np.int64)
    labels = bar_labels(view)
    C.ss()[C.K_SELECTED_HOW] = f"{column} = {', '.join(labels[b] for b in bars_clicked)}"
    C.ss()[K_SUMMARY_VERSION] = C.ss().get(K_SUMMARY_VERSION, 0) + 1
    C.ss()[C.K_CHART_VERSION] = C.ss().get(C.K_CHART_VERSION, 0) + 1  # the map drops its drawn shape


def linked_summaries(ws, data) -> None:
    """Small bar charts of the selection against all rows; a click on a bar filters the selection."""
    from core.explore import ids_in
    from core.summaries import TEXT_LENGTH, bars

    options = [TEXT_LENGTH, *_columns(data)]
    if W_SUMMARY_COLS not in C.ss():
        C.ss()[W_SUMMARY_COLS] = options[:1]
    C.ss()[W_SUMMARY_COLS] = [c for c in C.ss()[W_SUMMARY_COLS] if c in options]
    chosen = st.multiselect("Summaries of", options, key=W_SUMMARY_COLS,
                            help="Grey: share of all rows per value; blue: share of the selection. Click a bar to "
                                 "keep only the selected rows with that value (all rows with it when nothing is "
                                 "selected).")
    selected = ids_in(data.row_ids, C.selected_ids())
    box = st.container(key=SUMMARIES_CONTAINER)
    for column in chosen:
        view = _view(ws, data, column)
        rows = bars(view, selected)
        box.plotly_chart(_bar_chart(view, rows), key=_chart_key(column), on_select=functools.partial(_on_bar, column),
                        selection_mode="points", config={"displayModeBar": False})
