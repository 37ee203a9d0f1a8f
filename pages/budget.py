"""Budget: split a row budget across clusters (policy, noise handling, per-cluster
sliders or a min/max/override table), pick rows inside each cluster, and see how
the subset compares with the full set and with a random subset of the same size.
On the Ray engine (chosen on the Map page): pages.budget_sharded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core import queries, workflows
from core.explore import draw_sample
from core.selection import SelectParams
from pages import budget_form, budget_sharded, engine_choice
from pages import common as C
from pages import figures, forms
from pages import state as S
from pages.state import State

# (selection.stats key, metric label) of the depth options' results
DEPTH_METRICS = (("soft_noise_moved", "Rows moved out of noise"), ("groups", "Duplicate groups"),
                 ("duplicate_rows", "Duplicate rows"), ("tokens_used", "Tokens used"),
                 ("tokens_budget", "Token budget"), ("leaked", "Leaked rows"))


def _sizes(data) -> dict[int, int]:
    ids, cnt = np.unique(data.labels, return_counts=True)
    return {int(c): int(k) for c, k in zip(ids, cnt)}


def _allocation_table(state: State, data, sizes, selection) -> None:
    names = data.cluster_names
    sv = S.SessionView(state)
    pins, bans = sv.pins, sv.bans
    pin_l = data.labels[data.positions(sorted(pins))] if pins else np.zeros(0, int)
    ban_l = data.labels[data.positions(sorted(bans))] if bans else np.zeros(0, int)
    chosen = dict(zip(*np.unique(selection.clusters, return_counts=True))) if len(selection) else {}
    rows = []
    for c in sorted(sizes, key=lambda c: (c < 0, c)):
        rows.append({"cluster": c, "name": C.esc(names.get(c, str(c))), "size": sizes[c],
                     "budget": selection.allocation.get(c, 0), "selected": int(chosen.get(c, 0)),
                     "pinned": int((pin_l == c).sum()), "banned": int((ban_l == c).sum())})
    st.table(pd.DataFrame(rows).set_index("cluster"))


def _comparison(metrics, aims: dict) -> None:
    """This subset vs random subsets of the same size, metric by metric."""
    rows = metrics.comparison()
    if not rows:
        return
    vec_note = ""
    if metrics.n_random_vectors is not None and metrics.n_random_vectors < metrics.n_random:
        vec_note = f"; vector metrics on {metrics.n_random_vectors} of them, sampled rows"
    st.markdown(f"**This subset vs random** (mean of {metrics.n_random} random subsets of the same size from "
                f"the same eligible rows{vec_note})")
    arrow = {"subset": "✔ subset", "random": "random", "tie": "tie", None: ""}

    def verdict(r) -> str:
        judged = aims.get(r["key"], ("", True))[1]
        return arrow[r["better"]] if judged else "not a goal here"

    df = pd.DataFrame([{"metric": r["metric"] + (" ↑" if r["higher_is_better"] else " ↓"),
                        "this subset": None if r["subset"] is None else round(r["subset"], 4),
                        "random": None if r["random"] is None else round(r["random"], 4),
                        "better": verdict(r), "what this subset aims at": aims.get(r["key"], ("",))[0]}
                       for r in rows]).set_index("metric")
    st.dataframe(df, width="stretch", column_config={
        "what this subset aims at": st.column_config.TextColumn(width="large")})


def _depth_results(selection, params) -> None:
    """A metric per depth option that changed something, and a caption that explains it."""
    s = selection.stats
    shown = [(label, s[key]) for key, label in DEPTH_METRICS if key in s]
    for col, (label, value) in zip(st.columns(max(1, len(shown))), shown):
        col.metric(label, f"{int(value):,}")
    if "soft_noise_moved" in s:
        st.caption(f"Soft noise moved {s['soft_noise_moved']:,} unclustered row(s) into their most likely cluster.")
    if "groups" in s:
        st.caption(f"{s['duplicate_rows']:,} duplicate row(s) collapsed into {s['groups']:,} groups; the chosen rows "
                   f"stand for {s.get('chosen_group_rows', len(selection)):,} rows "
                   f"({s.get('chosen_duplicates', 0):,} duplicates can be exported with them on the Export page).")


def _headline(state: State, metrics, params, aims: dict) -> None:
    """Cluster coverage, JSD and diversity, each beside random subsets of the same size."""
    b = S.BudgetState(state)
    rnd = metrics.random or {}
    c1, c2, c3 = st.columns(3)
    c1.metric("Cluster coverage", f"{metrics.coverage:.0%}", help="Clusters with at least one chosen row.")
    jsd_aim, jsd_judged = aims["jsd"]
    c2.metric("Jensen–Shannon divergence", f"{metrics.jsd:.3f}",
              delta=None if rnd.get("jsd") is None else f"{metrics.jsd - rnd['jsd']:+.3f} vs random",
              delta_color="inverse" if jsd_judged else "off",
              help="Of the subset's cluster mix from the full set's: 0 = the same mix; 1 = disjoint.")
    c2.caption(f"Policy {params.policy}: {jsd_aim}.")
    if metrics.nn_distance is not None:
        delta = None
        if metrics.nn_distance_random is not None:
            delta = f"{queries.fmt_distance(metrics.nn_distance - metrics.nn_distance_random, signed=True)} vs random"
        nn_aim, nn_judged = aims["nn_distance"]
        c3.metric("Diversity (mean NN distance)", queries.fmt_distance(metrics.nn_distance), delta=delta,
                  delta_color="normal" if nn_judged else "off",
                  help="Mean cosine distance from each chosen row to its nearest other chosen row; "
                       "compared with random subsets of the same size.")
        c3.caption(f"Pick {params.pick}: {nn_aim}.")
    else:
        c3.caption("Diversity is computed on request for large subsets.")
        if c3.button("Compute diversity", key=S.W_DIVERSITY):
            b.want_diversity = True
            st.rerun()


def _charts(state: State, data, sizes, selection, metrics, params) -> None:
    """The headline metrics, the comparison with random subsets, the per-cluster shares and
    the chosen rows on the map."""
    aims = queries.metric_aims(params.policy, params.pick)
    _headline(state, metrics, params, aims)
    _comparison(metrics, aims)
    chosen = dict(zip(*np.unique(selection.clusters, return_counts=True))) if len(selection) else {}
    bg = draw_sample(data.labels, 30_000, seed=0)
    chosen_pos = np.asarray(selection.positions, dtype=np.int64)
    if len(chosen_pos) > 30_000:
        chosen_pos = chosen_pos[draw_sample(data.labels[chosen_pos], 30_000, seed=1)]
    left, right = st.columns([3, 2])
    left.plotly_chart(figures.share_bars(sizes, chosen, data.cluster_names), key="budget_bars",
                      config={"displaylogo": False})
    right.plotly_chart(figures.chosen_rows_map(data.xy, data.labels, bg, chosen_pos, data.cluster_names),
                       key="budget_map", config={"displaylogo": False})


def _auto_split(state: State, ws, data) -> dict[int, int]:
    """The policy's split of the current total, which the per-cluster sliders start from."""
    p = forms.select_params(state, data).to_dict()
    p.update(overrides={}, bounds={}, pick="random", score_column=None, budget=int(state[S.C_BUDGET]),
             reference_path=None, leakage="off")
    return workflows.select(ws, data, SelectParams.from_dict(p), remember=False).allocation


def _per_cluster(state: State, ws, data, sizes: dict[int, int], slot) -> None:
    """The total (rows) and, in Sliders/Table mode, the per-cluster budgets."""
    mode = state.get(S.C_PER_CLUSTER_MODE, "Automatic")
    include_noise = state.get(S.C_NOISE) == "include"
    if slot is not None:
        sliders = mode == "Sliders"
        total = budget_form.sliders_total(state, sizes, include_noise) if sliders else None
        budget_form.total_widgets(state, slot, len(data.row_ids), sliders, total)
    if mode == "Automatic":
        return
    st.subheader("Per-cluster budgets")
    if mode == "Sliders":
        auto = _auto_split(state, ws, data)
        st.caption("Each slider is that cluster's exact budget; the total is their sum. They start from the "
                   "policy's split of the total above.")
        budget_form.cluster_sliders(state, data, sizes, auto, include_noise=include_noise)
    else:
        budget_form.cluster_table_editor(state, data, sizes)


def _render(state: State, ws, info, data) -> None:
    b = S.BudgetState(state)
    sizes = _sizes(data)
    slot = budget_form.split_settings(state, ws, data, sizes)
    budget_form.pick_settings(state, info)
    budget_form.depth_settings(state, info)
    _per_cluster(state, ws, data, sizes, slot)

    params = forms.select_params(state, data)
    b.select_params = params
    want = True if b.want_diversity else None
    result = C.current_selection(state, ws, data, params, diversity=want)
    selection, metrics = result["selection"], result["metrics"]

    st.subheader("Result")
    st.metric("Rows in the subset", f"{len(selection):,}")
    for note in selection.notes:
        st.warning(C.esc(note))
    _depth_results(selection, params)
    _charts(state, data, sizes, selection, metrics, params)
    st.subheader("Per-cluster allocation")
    if params.budget_unit == "tokens":
        st.caption("budget is in tokens; selected counts rows.")
    _allocation_table(state, data, sizes, selection)
    st.page_link(S.PAGE_EXPORT, label="Next: export the subset", icon=":material/download:")


def body() -> None:
    engine_choice.dispatch("Budget", budget_sharded.render, _render)


C.run_page(body)
