"""At scale: the sharded map (``sieve run --engine ray`` / ``sieve scale map``) of a corpus
too large to hold in memory.  The app draws a per-cluster sample of the map; box and lasso
shapes are applied to every row on the server (DuckDB over the map shards); the budget is
allocated on per-cluster counts and picked per cluster; the export is Parquet shards plus a
manifest that ``sieve reproduce`` rebuilds."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import streamlit as st

from core.palette import cluster_centres, cluster_colors, name_annotations
from core.selection import engine_picks
from pages import common as C

MAX_DRAWN = 50_000
PICKS = engine_picks("ray")  # what the Ray engine supports (the pick registry says)
POLICIES = ("equal", "proportional", "sqrt")
PAGE_ROWS = 200


def _chart_key() -> str:
    return f"scale_chart_{C.ss().get(C.K_SCALE_CHART_VERSION, 0)}"


def _bump_chart() -> None:
    C.ss()[C.K_SCALE_CHART_VERSION] = C.ss().get(C.K_SCALE_CHART_VERSION, 0) + 1


def _selected() -> np.ndarray:
    return np.asarray(C.ss().get(C.K_SCALE_SELECTED, np.zeros(0, np.int64)), dtype=np.int64)


# -- building a sharded map in this process (small corpora; big ones use the CLI on Ray) ---------


def _build(ws, sample_size: int, shard_rows: int) -> None:
    from core.engines import ray as scale
    from core.encoders.models import DEFAULT_MODEL

    with st.status("Building the sharded map in this process…", expanded=True) as status:
        st.write("Embedding the shards (cached per shard; an interrupted build resumes)…")
        emb = scale.embed_shards(ws, scale.ScaleEmbedParams(model=DEFAULT_MODEL, shard_rows=shard_rows,
                                                            backend="auto"), local=True)
        st.write(f"{emb.n_rows:,} vectors in {emb.n_shards} shard(s) ({emb.n_skipped} already done).")
        st.write(f"Fitting the map on a sample of up to {sample_size:,} rows, then placing every row…")
        res = scale.scale_map(ws, emb.folder, scale.ScaleMapParams(sample_size=sample_size), local=True)
        status.update(label=f"Sharded map: {res.n_clusters} clusters over {res.n_rows:,} rows", state="complete")
    C.ss()[C.K_SCALE_BUILD] = {"timings": res.seconds}
    for k in (C.K_SCALE_FIG, C.K_SCALE_SELECTED, C.K_SCALE_SELECTION):
        C.ss().pop(k, None)
    st.rerun()


def _no_map(ws, info) -> None:
    st.info("This dataset has no sharded map yet. For a corpus that does not fit in memory, build one on a Ray "
            "cluster from a shell, then come back here:")
    st.code(f"sieve run DATA --text {info.text.column or 'COLUMN'} --engine ray --budget N --out subset/ "
            f"--workspace {ws.root}\n# or step by step:\nsieve embed --engine ray --workspace {ws.root}\n"
            f"sieve scale map --workspace {ws.root}", language="bash")
    st.caption("A small dataset can also be sharded here, in this process (no Ray): the same shards, the same "
               "sample fit and assignment, so you can try the flow before running it on a cluster.")
    c1, c2, c3 = st.columns([1, 1, 1])
    C.init_widget(C.W_SCALE_SAMPLE, C.C_SCALE_SAMPLE, min(200_000, max(10, info.n_rows)))
    sample = c1.number_input("Sample the map is fitted on (rows)", min_value=10, step=1000, key=C.W_SCALE_SAMPLE,
                             on_change=C.persist(C.W_SCALE_SAMPLE, C.C_SCALE_SAMPLE))
    C.init_widget(C.W_SCALE_SHARD_ROWS, C.C_SCALE_SHARD_ROWS, 50_000)
    shard_rows = c2.number_input("Rows per shard", min_value=100, step=10_000, key=C.W_SCALE_SHARD_ROWS,
                                 on_change=C.persist(C.W_SCALE_SHARD_ROWS, C.C_SCALE_SHARD_ROWS))
    c3.write("")
    if c3.button("Build sharded map here", key=C.W_SCALE_BUILD, type="primary", icon=":material/hub:"):
        _build(ws, int(sample), int(shard_rows))


# -- the map: a drawn sample, shapes applied to every row -------------------------------------------


def _drawn_cap() -> int:
    C.init_widget(C.W_SCALE_DRAWN, C.C_SCALE_DRAWN, MAX_DRAWN)
    return int(st.number_input("Points drawn", min_value=100, max_value=500_000, step=10_000, key=C.W_SCALE_DRAWN,
                               on_change=C.persist(C.W_SCALE_DRAWN, C.C_SCALE_DRAWN),
                               help="How many rows the browser draws (a per-cluster sample). Selections always "
                                    "apply to every row."))


def _figure(ws, map_dir: Path, info: dict, cap: int) -> dict:
    key = (str(map_dir), cap)
    cached = C.ss().get(C.K_SCALE_FIG)
    if cached is not None and cached["key"] == key:
        return cached
    import html

    import plotly.graph_objects as go

    from core.engines import ray as scale
    from core.explore import fetch_rows, snippet

    pts = scale.draw_points(map_dir, cap)
    ids = pts.column("sieve_row_id").to_numpy().astype(np.int64)
    xs, ys = pts.column("x").to_numpy(), pts.column("y").to_numpy()
    labels = pts.column("cluster").to_numpy().astype(np.int64)
    texts = fetch_rows(ws, ids, columns=["sieve_text"]).column("sieve_text").to_pylist()
    names = {c["id"]: c["name"] for c in info.get("clusters", [])}
    order = sorted({int(c) for c in np.unique(labels)}, key=lambda c: (c >= 0, c))
    colors = cluster_colors(order)
    fig = go.Figure()
    snip = 100 if len(ids) <= 20_000 else 50
    for c in order:
        m = labels == c
        fig.add_trace(go.Scattergl(
            x=xs[m], y=ys[m], mode="markers", name=html.escape(names.get(c, str(c))),
            customdata=ids[m], text=[snippet(t, snip) for t, keep in zip(texts, m) if keep],
            hovertemplate="%{text}<extra>%{fullData.name}</extra>",
            marker=dict(size=4 if c >= 0 else 3, color=colors[c], opacity=0.8 if c >= 0 else 0.45)))
    fig.update_layout(height=640, margin=dict(l=10, r=10, t=30, b=10), dragmode="select", uirevision="sieve-scale",
                      legend=dict(itemclick=False, itemdoubleclick=False, itemsizing="constant", font=dict(size=11)),
                      xaxis=dict(showticklabels=False, title=None, zeroline=False),
                      yaxis=dict(showticklabels=False, title=None, zeroline=False), hoverlabel=dict(align="left"),
                      annotations=name_annotations(cluster_centres(np.column_stack([xs, ys]), labels), names))
    cached = {"key": key, "fig": fig, "n_drawn": int(len(ids))}
    C.ss()[C.K_SCALE_FIG] = cached
    _bump_chart()
    return cached


@C.safe_callback
def _on_select() -> None:
    map_dir = C.ss().get(C.K_SCALE_MAP_DIR)
    if map_dir is None:
        return
    from core.engines import ray as scale

    ids, how = scale.event_row_ids(Path(map_dir), C.ss().get(_chart_key()))
    C.ss()[C.K_SCALE_SELECTED] = ids
    C.ss()[C.K_SCALE_SELECTED_HOW] = how


@C.safe_callback
def _pin() -> None:
    C.pin_rows(_selected())


@C.safe_callback
def _ban() -> None:
    C.ban_rows(_selected())


@C.safe_callback
def _clear() -> None:
    C.ss()[C.K_SCALE_SELECTED] = np.zeros(0, np.int64)
    C.ss()[C.K_SCALE_SELECTED_HOW] = "none"
    _bump_chart()


def _selection_panel(ws, map_dir: Path, names: dict) -> None:
    import pandas as pd

    from core.engines import ray as scale

    ids = _selected()
    st.metric("Selected rows (all shards)", f"{len(ids):,}")
    st.text(f"scale_selected_count={len(ids)}")
    st.text(f"pinned_count={len(C.pins())} banned_count={len(C.bans())}")
    empty = len(ids) == 0
    st.button("Pin selection", key=C.W_SCALE_PIN, on_click=_pin, disabled=empty, width="stretch",
              icon=":material/push_pin:", help="Always include these rows in the subset.")
    st.button("Ban selection", key=C.W_SCALE_BAN, on_click=_ban, disabled=empty, width="stretch",
              icon=":material/block:", help="Never include these rows in the subset.")
    st.button("Clear selection", key=C.W_SCALE_CLEAR, on_click=_clear, width="stretch", icon=":material/deselect:")
    if not empty:
        counts = scale.count_by_cluster(map_dir, ids)
        df = pd.DataFrame([{"cluster touched": names.get(c, str(c)), "rows": n}
                           for c, n in sorted(counts.items(), key=lambda kv: -kv[1])])
        st.dataframe(df, hide_index=True, width="stretch", height=min(300, 38 + 35 * len(df)))


def _rows(ws, ids: np.ndarray) -> None:
    from core.explore import fetch_rows

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


# -- budget, selection, export ------------------------------------------------------------------


def _params(n_rows: int):
    from core.selection import SelectParams

    def widget(w, c, default):
        C.init_widget(w, c, default)
        return C.persist(w, c)

    c1, c2, c3, c4 = st.columns(4)
    budget = c1.number_input("Total budget (rows)", min_value=1, max_value=max(1, n_rows), step=100,
                             key=C.W_SCALE_BUDGET,
                             on_change=widget(C.W_SCALE_BUDGET, C.C_SCALE_BUDGET, min(1000, n_rows)))
    policy = c2.selectbox("Allocation across clusters", POLICIES, key=C.W_SCALE_POLICY,
                          on_change=widget(C.W_SCALE_POLICY, C.C_SCALE_POLICY, "equal"))
    pick = c3.selectbox("Pick inside a cluster", PICKS, key=C.W_SCALE_PICK,
                        on_change=widget(C.W_SCALE_PICK, C.C_SCALE_PICK, "random"),
                        help="random: seeded; centroid/core: nearest the cluster centre; diverse: farthest-point "
                             "sampling; facility: coverage; boundary: farthest from the centre; mmr: relevance to "
                             "the centre traded against novelty (the vector picks read only the shards that hold "
                             "the cluster).")
    seed = c4.number_input("Seed", min_value=0, step=1, key=C.W_SCALE_SEED,
                           on_change=widget(C.W_SCALE_SEED, C.C_SCALE_SEED, 0))
    d1, d2, d3, d4 = st.columns(4)
    noise = d1.selectbox("Unclustered rows", ("include", "exclude"), key=C.W_SCALE_NOISE,
                         on_change=widget(C.W_SCALE_NOISE, C.C_SCALE_NOISE, "include"))
    lo = d2.number_input("Floor per cluster", min_value=0, step=10, key=C.W_SCALE_MIN,
                         on_change=widget(C.W_SCALE_MIN, C.C_SCALE_MIN, 0))
    hi = d3.number_input("Cap per cluster (0 = none)", min_value=0, step=10, key=C.W_SCALE_MAX,
                         on_change=widget(C.W_SCALE_MAX, C.C_SCALE_MAX, 0))
    on_ray = d4.checkbox("Pick on Ray", key=C.W_SCALE_ON_RAY,
                         on_change=widget(C.W_SCALE_ON_RAY, C.C_SCALE_ON_RAY, False),
                         help="Run the per-cluster picks as Ray tasks (RAY_ADDRESS, else a local Ray instance). "
                              "Off: in this process; the rows chosen are the same.")
    params = SelectParams(budget=int(budget), policy=policy, pick=pick, seed=int(seed), noise=noise,
                          min_per_cluster=int(lo), max_per_cluster=int(hi) or None,
                          pins=sorted(C.pins()), bans=sorted(C.bans()))
    return params, bool(on_ray)


def _select(map_dir: Path, embed_dir: Path, params, on_ray: bool) -> dict:
    from core.engines import ray as scale

    key = (str(map_dir), json.dumps(params.to_dict(), sort_keys=True, default=str))
    cached = C.ss().get(C.K_SCALE_SELECTION)
    if cached is not None and cached["key"] == key:
        return cached
    with st.spinner("Allocating on cluster counts and picking per cluster…"):
        sel = scale.scale_select(map_dir, embed_dir, params, local=not on_ray)
    cached = {"key": key, "selection": sel, "params": params}
    C.ss()[C.K_SCALE_SELECTION] = cached
    return cached


def _allocation(sel, names: dict) -> None:
    import pandas as pd

    chosen = {int(c): int(n) for c, n in zip(*np.unique(sel.clusters, return_counts=True))} if len(sel) else {}
    sizes = sel.stats["cluster_sizes"]  # rows per cluster over the whole map (core.engines.ray.select)
    df = pd.DataFrame([{"cluster": c, "name": names.get(c, str(c)), "size": s, "budget": sel.allocation.get(c, 0),
                        "selected": chosen.get(c, 0)} for c, s in sorted(sizes.items(), key=lambda kv:
                                                                           (kv[0] < 0, kv[0]))])
    st.text(f"scale_selected_rows={len(sel)}")
    st.dataframe(df, hide_index=True, width="stretch", height=min(420, 38 + 35 * len(df)))
    for note in sel.notes:
        st.caption(f"Note: {C.esc(note)}")


def _export(ws, embed_dir: Path, map_dir: Path, result: dict) -> None:
    from core.engines import ray as scale
    from core.manifest import write_manifest
    from core.store.paths import check_new_files, confine_write

    C.init_widget(C.W_SCALE_FOLDER, C.C_SCALE_FOLDER, "subset-shards")
    c1, c2 = st.columns([3, 1])
    name = c1.text_input(f"Folder under {C.esc(C.export_root(ws))} (new or empty)", key=C.W_SCALE_FOLDER,
                         on_change=C.persist(C.W_SCALE_FOLDER, C.C_SCALE_FOLDER))
    overwrite = c1.checkbox("Overwrite an existing manifest of that name", key=C.W_SCALE_OVERWRITE,
                            help="The folder itself must be new or empty either way.")
    c2.write("")
    if c2.button("Export shards", key=C.W_SCALE_EXPORT, type="primary", icon=":material/save:"):
        root = C.export_root(ws)
        out_dir = confine_write(name, root, "export folder", "export folder")
        mpath = confine_write(f"{name.strip()}.manifest.json", root, "export folder", "export folder")
        check_new_files([mpath], overwrite=overwrite)
        sel, params = result["selection"], result["params"]
        files = scale.export_scaled(ws, sel, out_dir)
        man = scale.ray_manifest(ws, embed_dir, map_dir, params, sel,
                                 {"path": str(out_dir), "format": "parquet", "files": [f.name for f in files]})
        mpath = write_manifest(mpath, man)
        C.ss()[C.K_SCALE_LAST_EXPORT] = {"path": str(out_dir), "manifest": str(mpath), "rows": len(sel),
                                         "files": len(files)}
    last = C.ss().get(C.K_SCALE_LAST_EXPORT)
    if last:
        st.success(f"Wrote {last['rows']:,} rows in {last['files']} Parquet file(s) to {C.esc(last['path'])}, and "
                   f"the manifest {C.esc(last['manifest'])}.")
        st.code(f"sieve reproduce {shlex.quote(last['manifest'])} --out {shlex.quote(last['path'] + '-again')} "
                f"--workspace {shlex.quote(str(ws.root))}", language="bash")
        mpath = Path(last["manifest"])
        if mpath.is_file() and not mpath.is_symlink():
            st.download_button("Download manifest", mpath.read_bytes(), file_name=mpath.name,
                               mime="application/json", key=C.W_SCALE_MANIFEST, icon=":material/receipt_long:")


def body() -> None:
    from core.engines import ray as scale

    st.title("At scale")
    ws = C.get_workspace()
    info = C.dataset_or_guidance(ws)
    if info is None:
        return
    C.sync_pins_bans(info.key)
    try:
        map_dir, embed_dir = scale.map_folder(ws)
        meta = scale.scaled_map_info(map_dir)
    except C.SieveError:
        _no_map(ws, info)
        return
    C.ss()[C.K_SCALE_MAP_DIR] = str(map_dir)
    names = {c["id"]: c["name"] for c in meta.get("clusters", [])}
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Rows on the map", f"{meta['n_rows']:,}")
    m2.metric("Clusters", f"{meta['n_clusters']:,}")
    m3.metric("Fitted on a sample of", f"{meta['n_sample']:,}")
    m4.metric("Shards", f"{len(meta['shards']):,}")
    st.caption(f"Map shards: {C.esc(map_dir)} · vectors: {C.esc(embed_dir)}. The app draws a per-cluster sample; "
               "selections, "
               "counts and picks run on every row, through DuckDB over the shards.")
    left, right = st.columns([4, 1.3])
    with right:
        cap = _drawn_cap()
    fig = _figure(ws, map_dir, meta, cap)
    with left:
        st.plotly_chart(fig["fig"], key=_chart_key(), on_select=_on_select, selection_mode=("points", "box", "lasso"),
                        config={"displaylogo": False, "scrollZoom": True})
        st.caption(f"Drawing {fig['n_drawn']:,} of {meta['n_rows']:,} rows (every cluster represented). A box or "
                   "lasso selects every row inside it, drawn or not.")
    with right:
        _selection_panel(ws, map_dir, names)
    tabs = st.tabs(["Budget", "Selected rows", "Clusters"])
    with tabs[0]:
        params, on_ray = _params(int(meta["n_rows"]))
        try:
            result = _select(map_dir, embed_dir, params, on_ray)
        except C.SieveError as exc:  # e.g. pins beyond the budget: say so here, keep the rest of the page
            C.show_error(exc)
            result = None
        if result is not None:
            _allocation(result["selection"], names)
            st.subheader("Export")
            _export(ws, embed_dir, map_dir, result)
    with tabs[1]:
        _rows(ws, _selected())
    with tabs[2]:
        import pandas as pd

        st.dataframe(pd.DataFrame([{"id": c["id"], "name": c["name"], "size": c["size"],
                                    "keywords": ", ".join(c["keywords"][:8])} for c in meta.get("clusters", [])]),
                     hide_index=True, width="stretch")
    for note in meta.get("notes", []):
        st.caption(f"Note: {C.esc(note)}")


C.run_page(body)
