"""Export: download or save the chosen rows (Parquet, JSONL or CSV) with a manifest
that `sieve reproduce` turns back into the same rows.  On the Ray engine (chosen on the Map
page): Parquet shards plus a manifest (pages.export_sharded)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import streamlit as st

from core import queries, workflows
from core.explore_files import EXPORT_MIME, export_bytes
from core.workflow_types import ExportTarget
from pages import common as C
from pages import engine_choice, export_sharded, forms
from pages import state as S

FORMATS = ("parquet", "jsonl", "csv")


def _manifest(data, params, result, fmt: str, export_info: dict) -> dict:
    # the params of this session's own map, never the latest one's
    return workflows.manifest(C.get_workspace(), data, params, result["selection"], result["metrics"], export_info)


def _file_builder(ws, selection, names: dict, fmt: str, keep_text: bool, include_duplicates: bool = False,
                  dataset_key: str | None = None):
    """A no-argument callable for st.download_button: builds the file only on click
    (on another thread, so it touches no session state).  It reads the rows only while
    the workspace still holds ``dataset_key``, the dataset the selection was made on."""

    def build() -> bytes:
        return export_bytes(ws, selection, names, fmt, keep_text=keep_text, include_duplicates=include_duplicates,
                            dataset_key=dataset_key)

    return build


def _save(ws, data, params, result, fmt: str, name: str, include_duplicates: bool = False,
          overwrite: bool = False) -> None:
    """Export under the server's export folder (a web user names a file inside it, never a free path):
    every file written (data, manifest, map file) is confined there, never through a symbolic
    link, and an existing file is replaced only with ``overwrite``."""
    b = S.ExportState(S.ss())
    name = name.strip()
    if not name:
        raise C.SieveError("give a file name to save to, e.g. subset.parquet")
    if not Path(name).suffix:
        name = f"{name}.{fmt}"
    root = C.export_root(ws)
    path = queries.confine_write(name, root)
    fmt = queries.export_format(path)  # the extension decides; an unknown one is a clear error
    mpath = queries.confine_write(f"{name}.manifest.json", root)
    queries.check_new_files([path, mpath, mpath.with_name(queries.map_file_name(mpath))], overwrite=overwrite)
    exported = workflows.export(ws, data, params, result["selection"],
                                ExportTarget(path, fmt, mpath, include_duplicates), metrics=result["metrics"])
    out, mpath = exported.path, exported.manifest_path
    ws.set_meta("selection", params.to_dict())  # `sieve export` in a shell now repeats this choice
    b.last_save = {"path": str(out), "manifest": str(mpath), "rows": len(result["selection"]),
                   "key": result["key"]}  # the (map, selection) it saved


def _format(state: S.State, selection) -> tuple[str, bool]:
    """The format radio and, with duplicate groups, whether their other members go too."""
    fmt = S.persisted(state, st.radio, "Format", S.W_FORMAT, S.C_FORMAT, FORMATS[0], FORMATS, horizontal=True)
    include_dups = False
    if selection.group_sizes is not None:
        n_dups = 0 if selection.duplicate_positions is None else len(selection.duplicate_positions)
        include_dups = S.persisted(state, st.checkbox, f"Also export the {n_dups:,} other member(s) of the chosen "
                                   "duplicate groups (reason duplicate-of:<row id>)", S.W_INCLUDE_DUPLICATES,
                                   S.C_INCLUDE_DUPLICATES, False)
        st.caption("Each chosen row carries sieve_group_size: the rows it stands for (usable as a training weight).")
    return fmt, include_dups


def _downloads(ws, data, params, result, fmt: str, include_dups: bool) -> dict:
    """The subset and its manifest (and the map file of a parallel UMAP map) as downloads;
    returns the manifest."""
    selection = result["selection"]
    file_name = f"sieve-subset-{len(selection)}.{fmt}"
    manifest_name = f"{file_name}.manifest.json"
    keep_text = data.dataset.text.template is not None
    st.subheader("Download")
    c1, c2 = st.columns(2)
    c1.download_button(f"Download {file_name}", data=_file_builder(ws, selection, dict(data.cluster_names), fmt,
                                                                   keep_text, include_dups, data.keys.dataset),
                       file_name=file_name, mime=EXPORT_MIME[fmt], key=S.W_DOWNLOAD, type="primary",
                       on_click="ignore", icon=":material/download:")
    manifest = _manifest(data, params, result, fmt, {"file_name": file_name, "format": fmt,
                                                     "include_duplicates": include_dups})
    map_name = None
    if (manifest.get("map") or {}).get("required"):  # parallel UMAP: the map travels with the manifest
        map_name = queries.map_file_name(manifest_name)
        manifest = {**manifest, "map": {**manifest["map"], "file": map_name}}
    c2.download_button(f"Download {manifest_name}", data=json.dumps(manifest, indent=2, sort_keys=True),
                       file_name=manifest_name, mime="application/json", key=S.W_DOWNLOAD_MANIFEST,
                       on_click="ignore", icon=":material/description:")
    if map_name:
        st.download_button(f"Download {map_name}", data=lambda: queries.map_file_bytes(data), file_name=map_name,
                           mime="application/octet-stream", key=S.W_DOWNLOAD_MAP, on_click="ignore",
                           icon=":material/map:")
        st.caption("This map was computed with parallel UMAP, which cannot be recomputed bit for bit: keep the map "
                   "file next to the manifest and `sieve reproduce` reuses it.")
    st.caption("The file is built when you click. To rebuild exactly these rows later:")
    st.code(f"sieve reproduce {shlex.quote(manifest_name)} --out {shlex.quote('reproduced.' + fmt)}", language="bash")
    return manifest


def _save_name(state: S.State, root, file_name: str) -> str:
    """The file-name box: it follows the offered default until the user types a name."""
    b = S.ExportState(state)
    last_default = b.save_default
    if state.get(S.C_SAVE_PATH) in (None, last_default):
        state[S.C_SAVE_PATH] = file_name
        if state.get(S.W_SAVE_PATH) == last_default:
            state[S.W_SAVE_PATH] = file_name
    b.save_default = file_name
    return S.persisted(state, st.text_input, f"File name inside the export folder {C.esc(root)} (the extension "
                       "sets the format)", S.W_SAVE_PATH, S.C_SAVE_PATH, file_name)


def _save_section(state: S.State, ws, data, params, result, fmt: str, include_dups: bool) -> None:
    """Save under the server's export folder; what the last Save wrote, and how to reproduce it."""
    b = S.ExportState(state)
    st.subheader("Save on the server")
    root = C.export_root(ws)
    path_text = _save_name(state, root, f"sieve-subset-{len(result['selection'])}.{fmt}")
    overwrite = st.checkbox("Overwrite existing files of that name", key=S.W_OVERWRITE, value=False)
    if st.button("Save", key=S.W_SAVE):
        _save(ws, data, params, result, fmt, path_text, include_dups, overwrite)
    last = b.last_save
    if not last or last.get("key") != result["key"]:  # the budget, settings or dataset changed since
        return
    st.success(f"Saved {last['rows']:,} rows to {C.esc(last['path'])} and the manifest to "
               f"{C.esc(last['manifest'])}.")
    st.metric("Rows saved", f"{last['rows']:,}")
    out = Path(last["path"])
    again = out.with_name(f"{out.stem}.reproduced{out.suffix}")
    st.code(f"sieve reproduce {shlex.quote(last['manifest'])} --out {shlex.quote(str(again))}", language="bash")


def _render(state: S.State, ws, data) -> None:
    b = S.ExportState(state)
    if b.select_params is None:
        C.need("No budget has been set in this session yet. Choose one on the Budget page first.", S.PAGE_BUDGET,
               "Go to Budget", ":material/balance:")
        return
    params = forms.select_params(state, data)  # pins/bans may have changed on the Map page since the Budget page ran
    b.select_params = params
    result = C.current_selection(state, ws, data, params)
    n = len(result["selection"])
    st.metric("Rows to export", f"{n:,}")
    st.caption(f"{n:,} rows: budget {params.budget:,}, policy {params.policy}, pick {params.pick}, seed {params.seed}, "
               f"{len(params.pins)} pinned, {len(params.bans)} banned.")
    fmt, include_dups = _format(state, result["selection"])
    manifest = _downloads(ws, data, params, result, fmt, include_dups)
    _save_section(state, ws, data, params, result, fmt, include_dups)
    st.subheader("Manifest")
    st.caption("Everything needed to rebuild this subset: the data's fingerprint, model and parameters, "
               "the selection settings, library versions and the chosen row ids.")
    st.json(manifest, expanded=1)


def body() -> None:
    engine_choice.dispatch("Export", export_sharded.render, lambda state, ws, info, data: _render(state, ws, data))


C.run_page(body)
