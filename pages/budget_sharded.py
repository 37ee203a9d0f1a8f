"""The Budget page on the Ray engine: the Budget page's own total, split and pick widgets (the
same keys and persisted values, offering what the Ray engine runs), allocated on per-cluster
counts and picked per cluster over the shards (core.workflows.select on Ray), the allocation
table and what the engine cannot run (read from its declarations: workflows.engine_limits)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from core import queries, workflows
from core.selection import POLICIES
from core.workflow_types import RAY, ShardedMap
from pages import budget_form
from pages import common as C
from pages import forms
from pages import state as S
from pages.engine_choice import sharded_map_or_guidance
from pages.state import State


def _offer(state: State, wkey: str, ckey: str, options: tuple, default) -> None:
    """Keep the persisted value ``ckey`` (and its widget's) among ``options`` (else ``default``)."""
    if state.get(ckey, default) not in options:
        state[ckey] = default
    if wkey in state and state[wkey] not in options:
        del state[wkey]


def settings_form(state: State, n_rows: int) -> bool:
    """The Budget page's total, policy, noise, min/max, pick and seed widgets on a sharded map of
    ``n_rows`` rows (only what the Ray engine runs), and "Pick on Ray"; returns that switch."""
    offered = forms.ray_choices()
    picks = offered["pick"]
    _offer(state, S.W_PICK, S.C_PICK, picks, forms.RAY_DEFAULTS["pick"])
    _offer(state, S.W_NOISE, S.C_NOISE, offered["noise"], "include")
    for wkey, ckey in ((S.W_MIN, S.C_MIN), (S.W_MAX, S.C_MAX)):  # e.g. tokens, set on a local map
        if int(state.get(ckey, 0) or 0) > n_rows:
            state[ckey] = n_rows
            state.pop(wkey, None)
    st.subheader("Split")
    budget_form.total_widgets(state, st.container(), n_rows, False, None)
    c1, c2, c3, c4 = st.columns(4)
    S.persisted(state, c1.selectbox, "Policy", S.W_POLICY, S.C_POLICY, forms.RAY_DEFAULTS["policy"], POLICIES,
                help="proportional: like the full set; equal: the same for every cluster; sqrt: in between.")
    S.persisted(state, c2.selectbox, "Unclustered rows", S.W_NOISE, S.C_NOISE, "include", offered["noise"],
                help="include: treated as one more group; exclude: never picked.")
    S.persisted(state, c3.number_input, "Min per cluster (rows)", S.W_MIN, S.C_MIN, 0, min_value=0,
                max_value=n_rows, step=1)
    S.persisted(state, c4.number_input, "Max per cluster (rows; 0 = no cap)", S.W_MAX, S.C_MAX, 0, min_value=0,
                max_value=n_rows, step=1)
    st.subheader("Pick")
    c1, c2, c3 = st.columns([2, 1, 1])
    S.persisted(state, c1.selectbox, "Method", S.W_PICK, S.C_PICK, forms.RAY_DEFAULTS["pick"], picks,
                help=queries.pick_help(RAY) + " The vector picks read only the shards that hold the cluster.")
    S.persisted(state, c2.number_input, "Seed", S.W_SEED, S.C_SEED, 0, min_value=0, max_value=2**31 - 1, step=1,
                help="Seeds the random pick, and the candidate pool of diverse/facility in large clusters.")
    c3.write("")
    on_ray = S.persisted(state, c3.checkbox, "Pick on Ray", S.W_SCALE_ON_RAY, S.C_SCALE_ON_RAY, False,
                         help="Run the per-cluster picks as Ray tasks (RAY_ADDRESS, else a local Ray instance). "
                              "Off: in this process; the rows chosen are the same.")
    return bool(on_ray)


def limits() -> None:
    """What the Ray engine cannot run (its declarations), beside its budget form."""
    options, picks = workflows.engine_limits(RAY)
    st.caption("Not on the Ray engine (they need the whole map in memory; choose the In memory engine on the Map "
               f"page): options {', '.join(options)}; picks {', '.join(picks) or 'none'}.")


def select(state: State, ws, handle: ShardedMap, params, on_ray: bool) -> dict:
    """workflows.select on the Ray engine (``on_ray``: per-cluster picks as Ray tasks, else in
    this process; the same rows), cached in session state per map and parameters:
    {"key", "selection": core.selection.Selection, "params": SelectParams}.  Raises SieveError."""
    sc = S.ShardedState(state)
    key = (str(handle.folder), json.dumps(params.to_dict(), sort_keys=True, default=str))
    cached = sc.selection
    if cached is not None and cached["key"] == key:
        return cached
    with st.spinner("Allocating on cluster counts and picking per cluster…"):
        sel = workflows.select(ws, handle, params, engine=workflows.resolve_engine(RAY, local=not on_ray))
    cached = {"key": key, "selection": sel, "params": params}
    sc.selection = cached
    return cached


def _allocation(sel, names: dict) -> None:
    chosen = {int(c): int(n) for c, n in zip(*np.unique(sel.clusters, return_counts=True))} if len(sel) else {}
    sizes = sel.stats["cluster_sizes"]  # rows per cluster over the whole map (core.engines.ray.select)
    df = pd.DataFrame([{"cluster": c, "name": names.get(c, str(c)), "size": s, "budget": sel.allocation.get(c, 0),
                        "selected": chosen.get(c, 0)} for c, s in sorted(sizes.items(), key=lambda kv:
                                                                           (kv[0] < 0, kv[0]))])
    st.subheader("Result")
    st.metric("Rows in the subset", f"{len(sel):,}")
    st.subheader("Per-cluster allocation")
    st.dataframe(df, hide_index=True, width="stretch", height=min(420, 38 + 35 * len(df)))
    for note in sel.notes:
        st.caption(f"Note: {C.esc(note)}")


def render(state: State, ws, info) -> None:
    """The Budget page on the Ray engine for the dataset ``info``."""
    handle = sharded_map_or_guidance(state, ws, info)
    if handle is None:
        return
    n_rows = int(handle.info["n_rows"])
    on_ray = settings_form(state, n_rows)
    limits()
    try:
        result = select(state, ws, handle, forms.ray_select_params(state, n_rows), on_ray)
    except C.SieveError as exc:  # e.g. pins beyond the budget: say so here, keep the rest of the page
        C.show_error(exc)
        return
    _allocation(result["selection"], handle.cluster_names)
    st.page_link(S.PAGE_EXPORT, label="Next: export the subset", icon=":material/download:")
