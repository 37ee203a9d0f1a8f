"""The Export page on the Ray engine: the Budget page's selection on the sharded map, written as a
folder of Parquet shards under the server's export folder plus a manifest (core.workflows.export
with an ExportTarget), which ``sieve reproduce`` turns back into the same rows."""

from __future__ import annotations

import shlex
from pathlib import Path

import streamlit as st

from core import queries, workflows
from core.workflow_types import ExportTarget, ShardedMap
from pages import budget_sharded
from pages import common as C
from pages import forms
from pages import state as S
from pages.engine_choice import sharded_map_or_guidance
from pages.state import State


def _write(ws, handle: ShardedMap, result: dict, name: str, overwrite: bool) -> None:
    """Export the shards to the folder ``name`` and its manifest to ``<name>.manifest.json``, both
    confined to the export folder (never the folder itself, never through a link); SieveError."""
    root = C.export_root(ws)
    out_dir = queries.confine_write(name, root, "export folder", "export folder")
    mpath = queries.confine_write(f"{name.strip()}.manifest.json", root, "export folder", "export folder")
    queries.check_new_files([mpath], overwrite=overwrite)
    sel, params = result["selection"], result["params"]
    exported = workflows.export(ws, handle, params, sel, ExportTarget(out_dir, manifest_path=mpath))
    S.ShardedState(S.ss()).last_export = {"path": str(out_dir), "manifest": str(exported.manifest_path),
                                          "rows": len(sel), "files": len(exported.files)}


def _last(ws) -> None:
    """What the last export wrote, the manifest as a download, and how to reproduce it."""
    last = S.ShardedState(S.ss()).last_export
    if not last:
        return
    st.success(f"Wrote {last['rows']:,} rows in {last['files']} Parquet file(s) to {C.esc(last['path'])}, and "
               f"the manifest {C.esc(last['manifest'])}.")
    st.code(f"sieve reproduce {shlex.quote(last['manifest'])} --out {shlex.quote(last['path'] + '-again')} "
            f"--workspace {shlex.quote(str(ws.root))}", language="bash")
    mpath = Path(last["manifest"])
    if mpath.is_file() and not mpath.is_symlink():
        st.download_button("Download manifest", mpath.read_bytes(), file_name=mpath.name,
                           mime="application/json", key=S.W_SCALE_MANIFEST, icon=":material/receipt_long:")


def _form(state: State, ws, handle: ShardedMap, result: dict) -> None:
    S.init_widget(state, S.W_SCALE_FOLDER, S.C_SCALE_FOLDER, "subset-shards")
    c1, c2 = st.columns([3, 1])
    name = c1.text_input(f"Folder under {C.esc(C.export_root(ws))} (new or empty)", key=S.W_SCALE_FOLDER,
                         on_change=S.persist(state, S.W_SCALE_FOLDER, S.C_SCALE_FOLDER))
    overwrite = c1.checkbox("Overwrite an existing manifest of that name", key=S.W_SCALE_OVERWRITE,
                            help="The folder itself must be new or empty either way.")
    c2.write("")
    if c2.button("Export shards", key=S.W_SCALE_EXPORT, type="primary", icon=":material/save:"):
        _write(ws, handle, result, name, overwrite)
    _last(ws)


def render(state: State, ws, info) -> None:
    """The Export page on the Ray engine for the dataset ``info``."""
    handle = sharded_map_or_guidance(state, ws, info)
    if handle is None:
        return
    if S.ShardedState(state).selection is None:
        C.need("No budget has been set in this session yet. Choose one on the Budget page first.", S.PAGE_BUDGET,
               "Go to Budget", ":material/balance:")
        return
    n_rows = int(handle.info["n_rows"])
    params = forms.ray_select_params(state, n_rows)  # pins/bans may have changed on the Map page since
    result = budget_sharded.select(state, ws, handle, params, bool(state.get(S.C_SCALE_ON_RAY, False)))
    n = len(result["selection"])
    st.metric("Rows to export", f"{n:,}")
    st.caption(f"{n:,} rows: budget {params.budget:,}, policy {params.policy}, pick {params.pick}, seed {params.seed}, "
               f"{len(params.pins)} pinned, {len(params.bans)} banned. On the Ray engine the subset is written as "
               "Parquet shards plus a manifest.")
    st.subheader("Save on the server")
    _form(state, ws, handle, result)
