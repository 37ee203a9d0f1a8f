"""Export: download or save the chosen rows (Parquet, JSONL or CSV) with a manifest
that `sieve reproduce` turns back into the same rows."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import streamlit as st

from pages import common as C

FORMATS = ("parquet", "jsonl", "csv")


def _manifest(data, params, result, fmt: str, export_info: dict) -> dict:
    from core.manifest import build_manifest

    return build_manifest(data, data.params, params, result["selection"], result["metrics"], export_info)


def _file_builder(ws, selection, names: dict, fmt: str, keep_text: bool, include_duplicates: bool = False,
                  dataset_key: str | None = None):
    """A no-argument callable for st.download_button: builds the file only on click
    (on another thread, so it touches no session state).  It reads the rows only while
    the workspace still holds ``dataset_key``, the dataset the selection was made on."""
    from core.explore import export_bytes

    def build() -> bytes:
        return export_bytes(ws, selection, names, fmt, keep_text=keep_text, include_duplicates=include_duplicates,
                            dataset_key=dataset_key)

    return build


def _save(ws, data, params, result, fmt: str, name: str, include_duplicates: bool = False,
          overwrite: bool = False) -> None:
    """Export under the server's export folder (a web user names a file inside it, never a free path):
    every file written (data, manifest, map file) is confined there, never through a symbolic
    link, and an existing file is replaced only with ``overwrite``."""
    from core.stages.export import format_for
    from core.manifest import export_with_manifest
    from core.map_sidecar import map_sidecar_name
    from core.store.paths import check_new_files, confine_write

    name = name.strip()
    if not name:
        raise C.SieveError("give a file name to save to, e.g. subset.parquet")
    if not Path(name).suffix:
        name = f"{name}.{fmt}"
    root = C.export_root(ws)
    path = confine_write(name, root)
    fmt = format_for(path)  # the extension decides; an unknown one is a clear error
    mpath = confine_write(f"{name}.manifest.json", root)
    check_new_files([path, mpath, mpath.with_name(map_sidecar_name(mpath))], overwrite=overwrite)
    keep_text = data.dataset.text.template is not None
    manifest = _manifest(data, params, result, fmt, {"path": str(path), "format": fmt,
                                                     "include_duplicates": include_duplicates})
    out, mpath, _ = export_with_manifest(ws, result["selection"], data.cluster_names, path, fmt, mpath, manifest,
                                         data, keep_text=keep_text, include_duplicates=include_duplicates,
                                         dataset_key=data.keys.dataset)
    ws.set_meta("selection", params.to_dict())  # `sieve export` in a shell now repeats this choice
    C.ss()[C.K_LAST_SAVE] = {"path": str(out), "manifest": str(mpath), "rows": len(result["selection"]),
                             "key": result["key"]}  # the (map, selection) it saved


def body() -> None:
    st.title("Export")
    ws = C.get_workspace()
    info = C.dataset_or_guidance(ws)
    if info is None:
        return
    data = C.map_or_guidance(ws)
    if data is None:
        return
    params = C.ss().get(C.K_SELECT_PARAMS)
    if params is None:
        C.need("No budget has been set in this session yet. Choose one on the Budget page first.", C.PAGE_BUDGET,
               "Go to Budget", ":material/balance:")
        return
    # Pins/bans may have changed on the Map page since the Budget page ran.
    params = C.params_from_state(data, info)
    C.ss()[C.K_SELECT_PARAMS] = params
    result = C.current_selection(ws, data, params)
    selection = result["selection"]
    n = len(selection)

    st.metric("Rows to export", f"{n:,}")
    st.caption(f"{n:,} rows: budget {params.budget:,}, policy {params.policy}, pick {params.pick}, seed {params.seed}, "
               f"{len(params.pins)} pinned, {len(params.bans)} banned.")
    C.init_widget(C.W_FORMAT, C.C_FORMAT, FORMATS[0])
    fmt = st.radio("Format", FORMATS, key=C.W_FORMAT, horizontal=True, on_change=C.persist(C.W_FORMAT, C.C_FORMAT))
    C.ss()[C.C_FORMAT] = fmt
    include_dups = False
    if selection.group_sizes is not None:
        n_dups = 0 if selection.duplicate_positions is None else len(selection.duplicate_positions)
        C.init_widget(C.W_INCLUDE_DUPLICATES, C.C_INCLUDE_DUPLICATES, False)
        include_dups = st.checkbox(f"Also export the {n_dups:,} other member(s) of the chosen duplicate groups "
                                   "(reason duplicate-of:<row id>)", key=C.W_INCLUDE_DUPLICATES,
                                   on_change=C.persist(C.W_INCLUDE_DUPLICATES, C.C_INCLUDE_DUPLICATES))
        C.ss()[C.C_INCLUDE_DUPLICATES] = include_dups
        st.caption("Each chosen row carries sieve_group_size: the rows it stands for (usable as a training weight).")
    file_name = f"sieve-subset-{n}.{fmt}"
    manifest_name = f"{file_name}.manifest.json"
    keep_text = data.dataset.text.template is not None
    from core.explore import EXPORT_MIME

    st.subheader("Download")
    c1, c2 = st.columns(2)
    c1.download_button(f"Download {file_name}", data=_file_builder(ws, selection, dict(data.cluster_names), fmt,
                                                                   keep_text, include_dups, data.keys.dataset),
                       file_name=file_name, mime=EXPORT_MIME[fmt], key=C.W_DOWNLOAD, type="primary",
                       on_click="ignore", icon=":material/download:")
    manifest = _manifest(data, params, result, fmt, {"file_name": file_name, "format": fmt,
                                                     "include_duplicates": include_dups})
    map_name = None
    if (manifest.get("map") or {}).get("required"):  # parallel UMAP: the map travels with the manifest
        from core.map_sidecar import map_sidecar_bytes, map_sidecar_name

        map_name = map_sidecar_name(manifest_name)
        manifest = {**manifest, "map": {**manifest["map"], "file": map_name}}
    c2.download_button(f"Download {manifest_name}", data=json.dumps(manifest, indent=2, sort_keys=True),
                       file_name=manifest_name, mime="application/json", key=C.W_DOWNLOAD_MANIFEST,
                       on_click="ignore", icon=":material/description:")
    if map_name:
        st.download_button(f"Download {map_name}", data=lambda: map_sidecar_bytes(data), file_name=map_name,
                           mime="application/octet-stream", key=C.W_DOWNLOAD_MAP, on_click="ignore",
                           icon=":material/map:")
        st.caption("This map was computed with parallel UMAP, which cannot be recomputed bit for bit: keep the map "
                   "file next to the manifest and `sieve reproduce` reuses it.")
    st.caption("The file is built when you click. To rebuild exactly these rows later:")
    st.code(f"sieve reproduce {shlex.quote(manifest_name)} --out {shlex.quote('reproduced.' + fmt)}", language="bash")

    st.subheader("Save on the server")
    root = C.export_root(ws)
    last_default = C.ss().get(C.K_SAVE_DEFAULT)
    if C.ss().get(C.C_SAVE_PATH) in (None, last_default):  # follow the budget/format until the user types a name
        C.ss()[C.C_SAVE_PATH] = file_name
        if C.ss().get(C.W_SAVE_PATH) == last_default:
            C.ss()[C.W_SAVE_PATH] = file_name
    C.ss()[C.K_SAVE_DEFAULT] = file_name
    C.init_widget(C.W_SAVE_PATH, C.C_SAVE_PATH, file_name)
    path_text = st.text_input(f"File name inside the export folder {C.esc(root)} (the extension sets the format)",
                              key=C.W_SAVE_PATH, on_change=C.persist(C.W_SAVE_PATH, C.C_SAVE_PATH))
    C.ss()[C.C_SAVE_PATH] = path_text
    overwrite = st.checkbox("Overwrite existing files of that name", key=C.W_OVERWRITE, value=False)
    if st.button("Save", key=C.W_SAVE):
        _save(ws, data, params, result, fmt, path_text, include_dups, overwrite)
    last = C.ss().get(C.K_LAST_SAVE)
    if last and last.get("key") != result["key"]:  # the budget, settings or dataset changed since
        last = None
    if last:
        st.success(f"Saved {last['rows']:,} rows to {C.esc(last['path'])} and the manifest to "
                   f"{C.esc(last['manifest'])}.")
        st.text(f"saved_rows={last['rows']}")
        st.text(f"saved_path={last['path']}")
        out = Path(last["path"])
        again = out.with_name(f"{out.stem}.reproduced{out.suffix}")
        st.code(f"sieve reproduce {shlex.quote(last['manifest'])} --out {shlex.quote(str(again))}", language="bash")

    st.subheader("Manifest")
    st.caption("Everything needed to rebuild this subset: the data's fingerprint, model and parameters, "
               "the selection settings, library versions and the chosen row ids.")
    st.json(manifest, expanded=1)


C.run_page(body)
