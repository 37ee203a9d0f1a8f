"""The Map page's exploration tools, kept out of pages/map.py: curating the clusters
(rename, merge, split).  Thin UI over core.curate / core.pipeline.curate_map.

Session-state keys of these tools are defined here (prefix ``w.curate.`` for widgets).
"""

from __future__ import annotations

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


def _apply(edits: list[dict], done: str) -> None:
    """Make ``edits`` the map's edit list and switch this session to the result.

    Cluster ids change, so the widgets holding ids (these tools', the map's cluster
    filter) start afresh."""
    from core.pipeline import curate_map

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
