"""Map: compute (embed -> project -> cluster -> label) with progress, then explore
the clusters: box/lasso selection re-applied to all rows on the server, search,
a cluster filter, and pins/bans that the Budget page honours."""

from __future__ import annotations

import logging
import time

import numpy as np
import streamlit as st

from pages import common as C
from pages import map_tools

log = logging.getLogger("sieve.app")

STAGES = ("embed", "project", "cluster", "label")
PAGE_SIZE = 100
ALL = "all clusters"

# (name, default) of the advanced settings; widgets are keyed "w.map.<name>".
SETTINGS = {
    "model": "all-MiniLM-L6-v2", "device": "auto", "batch_size": 64, "backend": "auto",
    "n_neighbors": 15, "min_dist": 0.1, "metric": "cosine", "dims": 5,
    "min_cluster_size": 0, "min_samples": 0, "seed": 42, "exact": False, "long_text": "truncate", "cluster_method": "hdbscan",
}


def _settings_from_params(params) -> dict:
    if params is None:
        return dict(SETTINGS)
    return {
        "model": params.embed.model, "device": params.embed.device, "batch_size": params.embed.batch_size,
        "backend": getattr(params.embed, "backend", "auto"),
        "n_neighbors": params.project.n_neighbors, "min_dist": float(params.project.min_dist),
        "metric": params.project.metric, "dims": params.project.cluster_dims,
        "min_cluster_size": params.cluster.min_cluster_size or 0, "min_samples": params.cluster.min_samples or 0,
        "seed": params.project.seed, "exact": bool(getattr(params.project, "exact", False)),
        "long_text": getattr(params.embed, "long_text", "truncate"),
        "cluster_method": getattr(params.cluster, "algorithm", "hdbscan"),
    }


def _advanced(data) -> dict:
    from core.stages.cluster_methods import ALGORITHMS
    from core.encoders.base import BACKENDS, DEVICES
    from core.encoders.registry import backend_caption
    from core.encoders.long_text import LONG_TEXT_MODES
    from core.stages.project import METRICS

    saved = C.ss().get(C.C_MAP_SETTINGS) or _settings_from_params(getattr(data, "params", None))
    for name, default in SETTINGS.items():
        if C.W_MAP_PREFIX + name not in C.ss():
            C.ss()[C.W_MAP_PREFIX + name] = saved.get(name, default)
    with st.expander("Advanced settings", expanded=False):
        st.caption("Changing a setting recomputes only the stages that depend on it; the rest come from the cache.")
        c1, c2, c3 = st.columns(3)
        c1.text_input("Model (sentence-transformers name or local folder)", key=C.W_MAP_PREFIX + "model")
        c2.selectbox("Device", DEVICES, key=C.W_MAP_PREFIX + "device")
        c3.number_input("Batch size", min_value=1, max_value=4096, step=16, key=C.W_MAP_PREFIX + "batch_size")
        c1, c2 = st.columns([1, 2])
        c1.selectbox("Embedding backend", BACKENDS, key=C.W_MAP_PREFIX + "backend")
        c2.caption(backend_caption(C.ss()[C.W_MAP_PREFIX + "backend"]))
        c1, c2 = st.columns([1, 2])
        c1.selectbox("Texts over the token limit", LONG_TEXT_MODES, key=C.W_MAP_PREFIX + "long_text")
        c2.caption("truncate: embed the first max_seq_length tokens (256 for all-MiniLM-L6-v2), as "
                   "sentence-transformers does. chunk: embed overlapping windows of the whole text and average "
                   "them, so texts that differ after the limit get different vectors (slower on long texts). "
                   "The static backend reads every token either way.")
        st.markdown("**UMAP**")
        c1, c2, c3, c4 = st.columns(4)
        c1.slider("n_neighbors", 2, 200, key=C.W_MAP_PREFIX + "n_neighbors")
        c2.slider("min_dist", 0.0, 1.0, step=0.01, key=C.W_MAP_PREFIX + "min_dist")
        c3.selectbox("metric", METRICS, key=C.W_MAP_PREFIX + "metric")
        c4.number_input("dims (for clustering)", min_value=2, max_value=100, key=C.W_MAP_PREFIX + "dims")
        st.checkbox("Exact (seeded, single-threaded, slower)", key=C.W_MAP_PREFIX + "exact",
                    help="Bit-reproducible UMAP. Otherwise UMAP runs in parallel and exports store the map.")
        st.markdown("**HDBSCAN**")
        c1, c2, c3 = st.columns(3)
        c1.number_input("min_cluster_size (0 = auto, about √n / 2)", min_value=0, max_value=1_000_000,
                        key=C.W_MAP_PREFIX + "min_cluster_size")
        c2.number_input("min_samples (0 = auto)", min_value=0, max_value=100_000, key=C.W_MAP_PREFIX + "min_samples")
        c3.number_input("seed", min_value=0, max_value=2**31 - 1, key=C.W_MAP_PREFIX + "seed")
        st.selectbox("Cluster method", ALGORITHMS, key=C.W_MAP_PREFIX + "cluster_method",
                     help="hdbscan: HDBSCAN on the UMAP projection (default). plscan: fast_hdbscan's PLSCAN on it. "
                          "evoc: EVoC on the vectors. leiden: Leiden communities of the kNN graph (no noise). "
                          "min_cluster_size/min_samples apply to hdbscan and plscan.")
    values = {name: C.ss()[C.W_MAP_PREFIX + name] for name in SETTINGS}
    C.ss()[C.C_MAP_SETTINGS] = values
    return values


def _map_params(v: dict):
    from core.stages.cluster import ClusterParams
    from core.stages.embed import EmbedParams
    from core.encoders.models import confine_model
    from core.engines.local import MapParams
    from core.stages.project import ProjectParams

    return MapParams(
        EmbedParams(model=confine_model(v["model"], C.data_root()), batch_size=int(v["batch_size"]), device=v["device"],
                    backend=v.get("backend", "auto"), long_text=v.get("long_text", "truncate")).resolved(),
        ProjectParams(n_neighbors=int(v["n_neighbors"]), min_dist=float(v["min_dist"]), metric=v["metric"],
                      cluster_dims=int(v["dims"]), seed=int(v["seed"]), exact=bool(v.get("exact", False))),
        ClusterParams(min_cluster_size=int(v["min_cluster_size"]) or None, min_samples=int(v["min_samples"]) or None,
                      algorithm=v.get("cluster_method", "hdbscan")),
    )


def _load_encoder(params, status):
    """The encoder, saying what takes the time: waiting for the background preparation
    of the int8 model, preparing it here (one time), or loading it."""
    from core.runtime.warmup import wait_for_model, warmup_state

    e = params.embed
    if e.backend == "onnx-int8" and warmup_state()["started"] and not warmup_state()["model"]:
        status.update(label="Preparing the int8 ONNX model (one time on this machine, about half a minute)…")
        wait_for_model()
    status.update(label=f"Loading the model {e.model} ({e.backend})…")

    def progress(done, total, msg):  # the one-time export, when it runs here
        status.update(label=f"{msg[:1].upper()}{msg[1:]} ({done}/{total}); later maps skip this…")

    encoder = C.get_encoder(e.model, e.device, e.normalize, e.backend, _progress=progress)
    status.update(label="Model loaded.")
    return encoder


def _estimate(ws, info, params) -> str:
    """'about 40 s' for this dataset on this machine, from core.runtime.eta's throughput table."""
    from core.stages.embed import embed_key
    from core.runtime.eta import estimate_map_seconds, human_seconds
    from core.runtime.warmup import warmup_state
    from core.runtime.hardware import usable_cores

    e = params.embed
    embedded = bool(info.vector_column) or ws.has_artifact("embed", embed_key(ws, e)[0])
    ready = True
    if e.backend == "onnx-int8" and not embedded:
        from core.encoders.onnx import is_exported

        ready = is_exported(e.model)
    secs = estimate_map_seconds(info.n_embeddable - info.n_duplicates, e.backend, cores=usable_cores(),
                                gpu=e.device in ("cuda", "mps"), embedded=embedded, model_ready=ready,
                                compiled=warmup_state()["compiled"])
    extra = [] if ready else ["the one-time int8 model preparation"]
    if not warmup_state()["compiled"]:
        extra.append("compiling UMAP/HDBSCAN once")
    return human_seconds(secs) + (f", including {' and '.join(extra)}" if extra else "")


def _compute(ws, info, params) -> None:
    from core.stages.embed import Cancelled, embed_key
    from core.runtime.eta import human_seconds, remaining_seconds
    from core.engines.local import build_map
    from core.runtime.warmup import warmup_state

    encoder = None
    if not info.vector_column:
        key, _ = embed_key(ws, params.embed)
        if not ws.has_artifact("embed", key):
            with st.status(f"Loading model {C.esc(params.embed.model)}…") as status:
                encoder = _load_encoder(params, status)
    box = st.container(border=True)
    lines = {s: box.empty() for s in STAGES}
    bars: dict[str, object] = {}
    started: dict[str, float] = {}
    details: dict[str, str] = {}  # each stage's first progress message, e.g. "2048 cached, 882 to embed"
    last = [0.0]
    for s in STAGES:
        lines[s].text(f"{s}: waiting")

    def on_stage(stage, event, meta):
        if event == "start":
            started[stage] = time.perf_counter()
            waiting = stage in ("project", "cluster") and warmup_state()["started"] and not warmup_state()["compiled"]
            lines[stage].text(f"{stage}: " + ("compiling UMAP/HDBSCAN once for this server process, then running…"
                                              if waiting else "running…"))
        else:
            state = "cached (skipped)" if meta.get("cached") else f"done in {meta['seconds']:.1f} s"
            lines[stage].text(f"{stage}: {state}" + (f" ({details[stage]})" if stage in details else ""))
            if stage in bars:
                bars.pop(stage).empty()

    def progress(stage, done, total, msg):
        if stage not in details:
            details[stage] = msg
            note = "; the longest texts go first, so the first batches are the slowest" if stage == "embed" else ""
            lines[stage].text(f"{stage}: running… ({msg}{note})")
        now = time.perf_counter()
        if done < total and now - last[0] < 0.25:
            return
        last[0] = now
        if stage not in bars:
            bars[stage] = box.progress(0.0)
        elapsed = now - started.get(stage, now)
        left = remaining_seconds(done, total, elapsed) if done < total else None
        eta = f", {human_seconds(left)} left" if left is not None else ""
        bars[stage].progress(min(1.0, done / max(total, 1)),
                             text=f"{stage}: {msg} ({done:,}/{total:,}, {elapsed:.0f} s{eta})")

    def on_wait(holder: str) -> None:  # another session's computation runs first; this one queues
        lines[STAGES[0]].text(f"waiting for another computation to finish ({holder})")

    C.ss()[C.K_COMPUTING] = True
    try:
        keys = build_map(ws, params, encoder=encoder, on_stage=on_stage, progress=progress, on_wait=on_wait)
    except Cancelled as exc:
        C.ss()[C.K_COMPUTING] = False
        st.warning(f"{C.esc(exc)}. Press **Compute map** again to resume.")
        return
    except Exception:
        C.ss()[C.K_COMPUTING] = False
        raise
    C.ss()[C.K_COMPUTING] = False
    C.ss()[C.K_MAP_RUN] = {"timings": keys.timings, "cached": keys.cached, "details": details, "label": keys.map_id}
    C.get_map(ws, keys.map_id)
    st.rerun()


def _compute_section(ws, info, data) -> None:
    settings = _advanced(data)
    c1, c2, c3 = st.columns([1, 1, 4])
    go_clicked = c1.button("Compute map", type="primary", key=C.W_COMPUTE)
    stop_clicked = c2.button("Stop", key=C.W_STOP, help="Stops after the current batch; finished chunks are kept.")
    if C.ss().get(C.K_COMPUTING) and not go_clicked:
        C.ss()[C.K_COMPUTING] = False
        st.warning(("Stopped. " if stop_clicked else "The map computation was interrupted. ")
                   + "Embeddings finished so far are kept; press **Compute map** to resume where it stopped.")
    run = C.ss().get(C.K_MAP_RUN)
    if run and data is not None and run.get("label") == data.keys.map_id:  # describes the map shown, no other
        details = run.get("details", {})
        parts = [f"{s}: " + ("cached" if run["cached"].get(s) else f"{run['timings'].get(s, 0):.1f} s")
                 + (f" ({details[s]})" if s == "embed" and s in details and not run["cached"].get(s) else "")
                 for s in STAGES if s in run["timings"]]
        c3.caption("Last run — " + ", ".join(parts))
    if go_clicked:
        _compute(ws, info, _map_params(settings))


# -- exploring -------------------------------------------------------------------------------


def _search_mask(data, query: str) -> np.ndarray:
    from core.explore import text_search

    key = (C.ss().get(C.K_MAP_KEY), query)
    cached = C.ss().get(C.K_SEARCH)
    if cached is None or cached["key"] != key:
        cached = {"key": key, "mask": text_search(C.ss()[C.K_TEXTS], query)}
        C.ss()[C.K_SEARCH] = cached
    return cached["mask"]


def _figure(data, visible: set[int] | None, query: str, highlight: bool):
    """The chart's figure, cached in session state so it is identical across reruns."""
    from core.explore import draw_sample

    sem = map_tools.semantic_highlight(data)  # the nearest rows of a search by meaning, ringed too
    colour = map_tools.color_view(C.get_workspace(), data)  # colour by a column instead of the clusters
    key = (C.ss().get(C.K_MAP_KEY), tuple(sorted(visible)) if visible is not None else None,
           query if (highlight and query) else None, sem[0] if sem else None, colour[0] if colour else None)
    cached = C.ss().get(C.K_FIG)
    if cached is not None and cached["key"] == key:
        return cached
    drawn = cached["drawn"] if cached is not None and cached["key"][0] == key[0] else \
        draw_sample(data.labels, C.MAX_DRAWN, seed=0)
    hl = _search_mask(data, query) if (highlight and query) else None
    if sem is not None:
        hl = sem[1] if hl is None else (hl | sem[1])
    fig, traces = C.map_figure(data, C.ss()[C.K_TEXTS], drawn, visible=visible, highlight=hl)
    if colour is not None:
        map_tools.recolor(fig, traces, colour[1])
    allowed = None if visible is None else np.isin(data.labels, list(visible))
    if cached is not None and cached["key"][:2] != key[:2]:  # another filter: the selection meant other rows
        if len(C.selected_ids()):
            st.toast("The cluster filter changed, so the selection was cleared.")
        C.ss()[C.K_SELECTED] = np.zeros(0, np.int64)
        C.ss().pop(C.K_SHAPES, None)
    if C.ss().get(C.K_SHAPES):  # a highlight redraws the map: keep the drawn box/lasso on it
        fig.update_layout(selections=C.ss()[C.K_SHAPES])
    C.ss()[C.K_CHART_VERSION] = C.ss().get(C.K_CHART_VERSION, 0) + 1
    cached = {"key": key, "fig": fig, "traces": traces, "drawn": drawn, "allowed": allowed}
    C.ss()[C.K_FIG] = cached
    return cached


def _chart_key() -> str:
    return f"map_chart_{C.ss().get(C.K_CHART_VERSION, 0)}"


@C.safe_callback
def _on_select() -> None:
    from core.explore import has_shapes, selection_mask

    data = C.ss().get(C.K_MAP)
    fig = C.ss().get(C.K_FIG)
    if data is None or fig is None:
        return
    event = C.ss().get(_chart_key())
    mask = selection_mask(event, data.xy, trace_positions=fig["traces"], allowed=fig["allowed"])
    C.ss()[C.K_SELECTED] = np.asarray(data.row_ids[mask], dtype=np.int64)
    sel = (event or {}).get("selection", {}) if hasattr(event, "get") else {}
    how = "box" if sel.get("box") else "lasso" if sel.get("lasso") else "points"
    C.ss()[C.K_SELECTED_HOW] = how if mask.any() or has_shapes(event) else "none"
    C.ss()[C.K_SHAPES] = _layout_selections(event)


def _layout_selections(event) -> list[dict]:
    """The event's boxes and lassos as plotly ``layout.selections`` (to redraw them)."""
    from core.explore import event_shapes

    boxes, lassos = event_shapes(event)
    out = [dict(type="rect", xref="x", yref="y", x0=x0, x1=x1, y0=y0, y1=y1) for x0, x1, y0, y1 in boxes]
    for xs, ys in lassos:
        path = "M" + "L".join(f"{float(x)},{float(y)}" for x, y in zip(xs, ys)) + "Z"
        out.append(dict(type="path", xref="x", yref="y", path=path))
    return out


def _bump_chart() -> None:
    """Reset the chart widget (its selection) and drop the drawn shapes from the figure."""
    C.ss()[C.K_CHART_VERSION] = C.ss().get(C.K_CHART_VERSION, 0) + 1
    C.ss().pop(C.K_SHAPES, None)
    fig = C.ss().get(C.K_FIG)
    if fig is not None:
        fig["fig"].layout.selections = ()


@C.safe_callback
def _pin() -> None:
    C.pin_rows(C.selected_ids())


@C.safe_callback
def _ban() -> None:
    C.ban_rows(C.selected_ids())


@C.safe_callback
def _clear() -> None:
    C.ss()[C.K_SELECTED] = np.zeros(0, np.int64)
    C.ss()[C.K_SELECTED_HOW] = "none"
    _bump_chart()


@C.safe_callback
def _select_matches() -> None:
    data = C.ss()[C.K_MAP]
    query = C.ss().get(C.C_SEARCH, "")
    mask = _search_mask(data, query)
    fig = C.ss().get(C.K_FIG)
    if fig is not None and fig["allowed"] is not None:
        mask = mask & fig["allowed"]
    C.ss()[C.K_SELECTED] = np.asarray(data.row_ids[mask], dtype=np.int64)
    C.ss()[C.K_SELECTED_HOW] = "search"
    _bump_chart()


def _summary(data) -> None:
    from core.explore import ids_in, selection_summary

    ids = C.selected_ids()
    mask = ids_in(data.row_ids, ids)
    summ = selection_summary(data.labels, mask, data.cluster_names)
    st.metric("Selected rows", f"{summ['rows']:,}")
    st.text(f"selected_count={summ['rows']}")
    st.text(f"clusters_touched={len(summ['clusters'])}")
    st.text(f"pinned_count={len(C.pins())} banned_count={len(C.bans())}")
    empty = summ["rows"] == 0
    st.button("Pin selection", key=C.W_PIN, on_click=_pin, disabled=empty, width="stretch",
              icon=":material/push_pin:", help="Always include these rows in the subset.")
    st.button("Ban selection", key=C.W_BAN, on_click=_ban, disabled=empty, width="stretch",
              icon=":material/block:", help="Never include these rows in the subset.")
    st.button("Clear selection", key=C.W_CLEAR, on_click=_clear, width="stretch", icon=":material/deselect:")
    if summ["clusters"]:
        st.caption(f"In {len(summ['clusters'])} cluster(s): see *Clusters touched* below the map.")
    c1, c2 = st.columns(2)
    if c1.button("Clear pins", key=C.W_CLEAR_PINS, disabled=not C.pins(), width="stretch"):
        C.pins().clear()
        st.rerun()
    if c2.button("Clear bans", key=C.W_CLEAR_BANS, disabled=not C.bans(), width="stretch"):
        C.bans().clear()
        st.rerun()


def _touched_table(data) -> None:
    """The clusters the selection touches, full width below the map (the side column
    is too narrow for three columns)."""
    import pandas as pd

    from core.explore import ids_in, selection_summary

    summ = selection_summary(data.labels, ids_in(data.row_ids, C.selected_ids()), data.cluster_names)
    if not summ["clusters"]:
        return
    df = pd.DataFrame(summ["clusters"])[["name", "count", "share"]]
    st.markdown("**Clusters touched**")
    st.dataframe(df, hide_index=True, width="stretch", height=min(300, 38 + 35 * len(df)),
                 column_config={"name": st.column_config.TextColumn("cluster touched", width="large"),
                                "count": st.column_config.NumberColumn("rows", format="%d"),
                                "share": st.column_config.NumberColumn("of cluster", format="percent")})


def _rows_table(ws, data, ids: np.ndarray, what: str, key: str) -> None:
    from core.explore import fetch_rows

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
    pins, bans = C.pins(), C.bans()
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
    st.caption("A DuckDB WHERE expression over the dataset's columns, e.g. `quality > 0.8 AND source = 'forum'`. "
               "It runs in a sandbox that sees only this dataset.")
    where = st.text_input("WHERE", key=C.W_SQL_WHERE, placeholder="length(sieve_text) > 200")
    if st.button("Select matching rows", key=C.W_SQL_SELECT, disabled=not where.strip()):
        from core.store.query import run_filter

        try:
            ids = np.asarray(run_filter(ws, where), dtype=np.int64)
        except C.SieveError as exc:
            C.show_error(exc)
            return
        mask = np.isin(data.row_ids, ids)
        if fig["allowed"] is not None:
            mask &= fig["allowed"]
        C.ss()[C.K_SELECTED] = np.asarray(data.row_ids[mask], dtype=np.int64)
        C.ss()[C.K_SELECTED_HOW] = "sql"
        _bump_chart()
        off_map = len(ids) - int(np.isin(ids, data.row_ids).sum())
        C.flash("success", f"Selected {int(mask.sum()):,} row(s) matching the filter"
                + (f" ({off_map:,} more match but have no text, so they are not on the map)" if off_map else "") + ".")
        st.rerun()


def _cluster_table(data) -> None:
    import pandas as pd

    from core.explore import cluster_table

    df = pd.DataFrame(cluster_table(data.clusters, len(data.row_ids)))
    st.dataframe(df, hide_index=True, width="stretch",
                 column_config={"share": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)})
    st.text(f"clusters={len([c for c in data.clusters if c.id >= 0])} unclustered="
            f"{int((data.labels < 0).sum())}")


def _explore(ws, data) -> None:
    names = data.cluster_names
    ids = sorted(names, key=lambda c: (c < 0, c))
    c1, c2, c3 = st.columns([3, 2, 1])
    valid = [c for c in C.ss().get(C.C_FILTER, []) if c in names]
    if C.W_FILTER not in C.ss():
        C.ss()[C.W_FILTER] = valid
    chosen = c1.multiselect("Show clusters (empty = all)", ids, key=C.W_FILTER,
                            format_func=lambda c: f"{c}: {names.get(c, c)}")
    C.ss()[C.C_FILTER] = list(chosen)
    C.init_widget(C.W_SEARCH, C.C_SEARCH, "")
    query = c2.text_input("Search texts (case-insensitive)", key=C.W_SEARCH,
                          on_change=C.persist(C.W_SEARCH, C.C_SEARCH))
    C.ss()[C.C_SEARCH] = query
    C.init_widget(C.W_HIGHLIGHT, C.C_HIGHLIGHT, False)
    c3.write("")
    highlight = c3.checkbox("Highlight on map", key=C.W_HIGHLIGHT, on_change=C.persist(C.W_HIGHLIGHT, C.C_HIGHLIGHT),
                            help="Rings the search matches on the map; a drawn box or lasso stays.")
    visible = set(chosen) if chosen else None
    map_tools.color_by_control(C.get_workspace(), data)
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
        map_tools.linked_summaries(ws, data)

    query = query.strip()
    tabs = st.tabs(["Selected rows", "Clusters", "Search matches", "Search by meaning", "SQL filter",
                    "Curate clusters"])
    with tabs[0]:
        _touched_table(data)
        _rows_table(ws, data, C.selected_ids(), "rows selected — draw a box or lasso on the map", C.W_SEL_PAGE)
    with tabs[1]:
        _cluster_table(data)
    with tabs[2]:
        if not query:
            st.caption("Type in the search box to find texts.")
        else:
            mask = _search_mask(data, query)
            if fig["allowed"] is not None:
                mask = mask & fig["allowed"]
            st.text(f"search_matches={int(mask.sum())}")
            st.button("Select matches", key=C.W_SELECT_MATCHES, on_click=_select_matches, disabled=not mask.any())
            _rows_table(ws, data, data.row_ids[mask], "matches", C.W_MATCH_PAGE)
    with tabs[3]:
        map_tools.semantic_panel(ws, data)
    with tabs[4]:
        _sql_filter(ws, data, fig)
    with tabs[5]:
        map_tools.curate_panel(ws, data)
    for note in data.notes:
        st.caption(f"Note: {C.esc(note)}")


def body() -> None:
    st.title("Map")
    ws = C.get_workspace()
    info = C.dataset_or_guidance(ws)
    if info is None:
        return
    data = C.get_map(ws)
    st.caption(f"Dataset: {info.n_rows:,} rows ({info.n_embeddable:,} to embed) from "
               f"{C.esc(', '.join(info.sources[:2]))}{' …' if len(info.sources) > 2 else ''}")
    _compute_section(ws, info, data)
    if data is None:
        try:
            eta = _estimate(ws, info, _map_params(C.ss()[C.C_MAP_SETTINGS]))
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
    from core.encoders.long_text import LongTextCount

    counts = (data.stage_meta.get("embed") or {}).get("long_texts")
    if not counts:
        return
    mode = getattr(getattr(data.params, "embed", None), "long_text", "truncate")
    known = {k: counts[k] for k in ("n_texts", "n_over_limit", "n_over_cap", "max_seq_length", "max_text_chars")}
    msg = LongTextCount(**known).message(mode, "chunk under Advanced settings")
    if msg:
        st.info(msg)


C.run_page(body)
