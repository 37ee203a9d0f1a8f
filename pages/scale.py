"""At scale: the sharded map (``sieve run --engine ray`` / ``sieve scale map``) of a corpus
too large to hold in memory.  The app draws a per-cluster sample of the map; box and lasso
shapes are applied to every row on the server (DuckDB over the map shards); the budget is
allocated on per-cluster counts and picked per cluster; the export is Parquet shards plus a
manifest that ``sieve reproduce`` rebuilds.

The map, the selection and the export go through the same workflows as the Map, Budget and
Export pages (core.workflows with the Ray engine); the budget's values become SelectParams by
the Budget page's rules (pages.forms -> core.budget_settings); what the Ray engine cannot run
is read from its declarations (workflows.engine_limits)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core import workflows
from core.encoders.models import DEFAULT_MODEL
from core.engines.local import MapParams
from core.explore_files import fetch_rows
from core.stages.embed import EmbedParams
from core.queries import check_new_files, confine_write
from core.workflow_types import RAY, Events, ExportTarget, ShardedMap
from pages import common as C
from pages import figures, forms
from pages import state as S

MAX_DRAWN = 50_000
PAGE_ROWS = 200


def _chart_key() -> str:
    sc = S.ScaleState(S.ss())
    return f"scale_chart_{sc.chart_version}"


def _bump_chart() -> None:
    sc = S.ScaleState(S.ss())
    sc.bump_chart()


def _selected() -> np.ndarray:
    sc = S.ScaleState(S.ss())
    return np.asarray(sc.selected, dtype=np.int64)


# -- building a sharded map in this process (small corpora; big ones use the CLI on Ray) ---------


def _build(ws, sample_size: int, shard_rows: int) -> None:
    """workflows.build_map on the Ray engine in this process (``local=True``): the shards, the
    sample fit and the assignment a cluster would run."""
    sc = S.ScaleState(S.ss())
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


def _no_map(ws, info) -> None:
    st.info("This dataset has no sharded map yet. For a corpus that does not fit in memory, build one on a Ray "
            "cluster from a shell, then come back here:")
    st.code(f"sieve run DATA --text {info.text.column or 'COLUMN'} --engine ray --budget N --out subset/ "
            f"--workspace {ws.root}\n# or step by step:\nsieve embed --engine ray --workspace {ws.root}\n"
            f"sieve scale map --workspace {ws.root}", language="bash")
    st.caption("A small dataset can also be sharded here, in this process (no Ray): the same shards, the same "
               "sample fit and assignment, so you can try the flow before running it on a cluster.")
    c1, c2, c3 = st.columns([1, 1, 1])
    state = S.ss()
    sample = S.persisted(state, c1.number_input, "Sample the map is fitted on (rows)", S.W_SCALE_SAMPLE,
                         S.C_SCALE_SAMPLE, min(200_000, max(10, info.n_rows)), min_value=10, step=1000)
    shard_rows = S.persisted(state, c2.number_input, "Rows per shard", S.W_SCALE_SHARD_ROWS, S.C_SCALE_SHARD_ROWS,
                             50_000, min_value=100, step=10_000)
    c3.write("")
    if c3.button("Build sharded map here", key=S.W_SCALE_BUILD, type="primary", icon=":material/hub:"):
        _build(ws, int(sample), int(shard_rows))


# -- the map: a drawn sample, shapes applied to every row -------------------------------------------


def _drawn_cap() -> int:
    return int(S.persisted(S.ss(), st.number_input, "Points drawn", S.W_SCALE_DRAWN, S.C_SCALE_DRAWN, MAX_DRAWN,
                           min_value=100, max_value=500_000, step=10_000,
                           help="How many rows the browser draws (a per-cluster sample). Selections always "
                                "apply to every row."))


def _figure(ws, handle: ShardedMap, cap: int) -> dict:
    """The drawn sample's figure (pages.figures.cluster_scatter, customdata = row ids), cached
    in session state so it is identical across reruns."""
    sc = S.ScaleState(S.ss())
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
    _bump_chart()
    return cached


@C.safe_callback
def _on_select() -> None:
    sc = S.ScaleState(S.ss())
    map_dir = sc.map_dir
    if map_dir is None:
        return
    ids, how = workflows.current_map(C.get_workspace(), RAY).rows_in(S.ss().get(_chart_key()))
    sc.select(ids, how)


@C.safe_callback
def _pin() -> None:
    S.SessionView(S.ss()).pin(_selected())


@C.safe_callback
def _ban() -> None:
    S.SessionView(S.ss()).ban(_selected())


@C.safe_callback
def _clear() -> None:
    sc = S.ScaleState(S.ss())
    sc.select(np.zeros(0, np.int64), "none")
    _bump_chart()


def _selection_panel(ws, handle: ShardedMap, names: dict) -> None:
    ids = _selected()
    st.metric("Selected rows (all shards)", f"{len(ids):,}")
    m1, m2 = st.columns(2)
    m1.metric("Pinned rows", f"{len(S.SessionView(S.ss()).pins):,}", help="Always included in the subset.")
    m2.metric("Banned rows", f"{len(S.SessionView(S.ss()).bans):,}", help="Never included in the subset.")
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


# -- budget, selection, export ------------------------------------------------------------------




def _select(ws, handle: ShardedMap, params, on_ray: bool) -> dict:
    """workflows.select on the Ray engine (``on_ray``: per-cluster picks as Ray tasks, else in
    this process; the same rows), cached in session state per map and parameters."""
    sc = S.ScaleState(S.ss())
    key = (str(handle.folder), json.dumps(params.to_dict(), sort_keys=True, default=str))
    cached = sc.selection
    if cached is not None and cached["key"] == key:
        return cached
    with st.spinner("Allocating on cluster counts and picking per cluster…"):
        sel = workflows.select(ws, handle, params, engine=workflows.resolve_engine(RAY, local=not on_ray))
    cached = {"key": key, "selection": sel, "params": params}
    sc.selection = cached
    return cached


def _limits() -> None:
    """What the Ray engine cannot run (its declarations), beside its budget form."""
    options, picks = workflows.engine_limits(RAY)
    st.caption("Not on the Ray engine (they need the whole map in memory; use the Budget page on a local map): "
               f"options {', '.join(options)}; picks {', '.join(picks) or 'none'}.")


def _allocation(sel, names: dict) -> None:
    chosen = {int(c): int(n) for c, n in zip(*np.unique(sel.clusters, return_counts=True))} if len(sel) else {}
    sizes = sel.stats["cluster_sizes"]  # rows per cluster over the whole map (core.engines.ray.select)
    df = pd.DataFrame([{"cluster": c, "name": names.get(c, str(c)), "size": s, "budget": sel.allocation.get(c, 0),
                        "selected": chosen.get(c, 0)} for c, s in sorted(sizes.items(), key=lambda kv:
                                                                           (kv[0] < 0, kv[0]))])
    st.metric("Rows in the subset", f"{len(sel):,}")
    st.dataframe(df, hide_index=True, width="stretch", height=min(420, 38 + 35 * len(df)))
    for note in sel.notes:
        st.caption(f"Note: {C.esc(note)}")


def _export(ws, handle: ShardedMap, result: dict) -> None:
    sc = S.ScaleState(S.ss())
    S.init_widget(S.ss(), S.W_SCALE_FOLDER, S.C_SCALE_FOLDER, "subset-shards")
    c1, c2 = st.columns([3, 1])
    name = c1.text_input(f"Folder under {C.esc(C.export_root(ws))} (new or empty)", key=S.W_SCALE_FOLDER,
                         on_change=S.persist(S.ss(), S.W_SCALE_FOLDER, S.C_SCALE_FOLDER))
    overwrite = c1.checkbox("Overwrite an existing manifest of that name", key=S.W_SCALE_OVERWRITE,
                            help="The folder itself must be new or empty either way.")
    c2.write("")
    if c2.button("Export shards", key=S.W_SCALE_EXPORT, type="primary", icon=":material/save:"):
        root = C.export_root(ws)
        out_dir = confine_write(name, root, "export folder", "export folder")
        mpath = confine_write(f"{name.strip()}.manifest.json", root, "export folder", "export folder")
        check_new_files([mpath], overwrite=overwrite)
        sel, params = result["selection"], result["params"]
        exported = workflows.export(ws, handle, params, sel, ExportTarget(out_dir, manifest_path=mpath))
        sc.last_export = {"path": str(out_dir), "manifest": str(exported.manifest_path),
                          "rows": len(sel), "files": len(exported.files)}
    last = sc.last_export
    if last:
        st.success(f"Wrote {last['rows']:,} rows in {last['files']} Parquet file(s) to {C.esc(last['path'])}, and "
                   f"the manifest {C.esc(last['manifest'])}.")
        st.code(f"sieve reproduce {shlex.quote(last['manifest'])} --out {shlex.quote(last['path'] + '-again')} "
                f"--workspace {shlex.quote(str(ws.root))}", language="bash")
        mpath = Path(last["manifest"])
        if mpath.is_file() and not mpath.is_symlink():
            st.download_button("Download manifest", mpath.read_bytes(), file_name=mpath.name,
                               mime="application/json", key=S.W_SCALE_MANIFEST, icon=":material/receipt_long:")


def body() -> None:
    sc = S.ScaleState(S.ss())
    opened = C.page_dataset("At scale")
    if opened is None:
        return
    state, ws, info = opened
    C.sync_pins_bans(state, info.key)
    try:
        handle = workflows.current_map(ws, RAY)
    except C.SieveError:
        _no_map(ws, info)
        return
    map_dir, embed_dir, meta = handle.folder, handle.embed_folder, handle.info
    sc.map_dir = str(map_dir)
    names = handle.cluster_names
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
    fig = _figure(ws, handle, cap)
    with left:
        st.plotly_chart(fig["fig"], key=_chart_key(), on_select=_on_select, selection_mode=("points", "box", "lasso"),
                        config={"displaylogo": False, "scrollZoom": True})
        st.caption(f"Drawing {fig['n_drawn']:,} of {meta['n_rows']:,} rows (every cluster represented). A box or "
                   "lasso selects every row inside it, drawn or not.")
    with right:
        _selection_panel(ws, handle, names)
    tabs = st.tabs(["Budget", "Selected rows", "Clusters"])
    with tabs[0]:
        params, on_ray = forms.scale_select_form(state, int(meta["n_rows"]))
        _limits()
        try:
            result = _select(ws, handle, params, on_ray)
        except C.SieveError as exc:  # e.g. pins beyond the budget: say so here, keep the rest of the page
            C.show_error(exc)
            result = None
        if result is not None:
            _allocation(result["selection"], names)
            st.subheader("Export")
            _export(ws, handle, result)
    with tabs[1]:
        _rows(ws, _selected())
    with tabs[2]:
        st.dataframe(pd.DataFrame([{"id": c["id"], "name": c["name"], "size": c["size"],
                                    "keywords": ", ".join(c["keywords"][:8])} for c in meta.get("clusters", [])]),
                     hide_index=True, width="stretch")
    for note in meta.get("notes", []):
        st.caption(f"Note: {C.esc(note)}")


C.run_page(body)
