"""Budget: split a row budget across clusters (policy, noise handling, per-cluster
sliders or a min/max/override table), pick rows inside each cluster, and see how
the subset compares with the full set and with a random subset of the same size."""

from __future__ import annotations

import html

import numpy as np
import streamlit as st

from core.stages.metrics import fmt_distance
from core.palette import cluster_centres, name_annotations
from pages import common as C

MAX_SLIDERS = 12
NOISE_MODES = ("include", "exclude", "own budget")
MODES = ("Automatic", "Sliders", "Table")


def _sizes(data) -> dict[int, int]:
    ids, cnt = np.unique(data.labels, return_counts=True)
    return {int(c): int(k) for c, k in zip(ids, cnt)}


def _token_budget_widget(data, info) -> None:
    from core.selection.inputs import token_counts

    ws = C.get_workspace()
    total = int(np.asarray(token_counts(ws, data, C.ss().get(C.C_TOKENIZER, "model"))).sum())
    if not C.ss().get(C.C_TOKEN_BUDGET):
        C.ss()[C.C_TOKEN_BUDGET] = max(1, total // 10)
    _persisted(st.number_input, f"Total budget (tokens; the whole set has {total:,})", C.W_TOKEN_BUDGET,
               C.C_TOKEN_BUDGET, max(1, total // 10), min_value=1, step=1000,
               help="Rows are taken in pick order while they fit; the total never exceeds this.")
    st.text(f"tokens_total={total}")


def _total_widgets(slot, n: int, sliders: bool, sliders_total: int | None) -> None:
    """The total budget (slider and Rows box) in a form: arrow-key steps and typing rerun
    nothing until **Apply** (or Enter).  In Sliders mode they show the sliders' sum."""
    cur = int(min(max(1, C.ss().get(C.C_BUDGET, C.default_budget(n))), n))
    if sliders_total is not None:
        cur = int(min(max(1, sliders_total), n))
    else:  # after Apply, whichever of the two widgets was changed wins
        for w in (C.W_BUDGET_SLIDER, C.W_BUDGET_NUMBER):
            v = C.ss().get(w)
            if v is not None and int(v) != cur:
                cur = int(min(max(1, int(v)), n))
                break
    C.ss()[C.C_BUDGET] = cur
    for w in (C.W_BUDGET_SLIDER, C.W_BUDGET_NUMBER):
        if C.ss().get(w) != cur:
            C.ss()[w] = cur
    disabled = sliders
    with slot.form("budget_total_form", border=False):
        c1, c2, c3 = st.columns([6, 2, 1], vertical_alignment="bottom")
        if n > 1:
            c1.slider("Total budget (rows)", 1, n, key=C.W_BUDGET_SLIDER, disabled=disabled,
                      help="The sum of the per-cluster sliders below." if disabled else
                      "Step with the arrow keys, then press Apply.")
        else:  # a slider needs min < max: a one-row map's budget is that row
            c1.caption("Total budget (rows): the map has one row, so the budget is 1.")
        c2.number_input("Rows", 1, n, step=1, key=C.W_BUDGET_NUMBER, disabled=disabled or n <= 1)
        c3.form_submit_button("Apply", type="primary", disabled=disabled or n <= 1, key=C.W_BUDGET_APPLY)


def _sliders_total(data, sizes: dict[int, int], include_noise: bool) -> int | None:
    """The per-cluster sliders' current sum (plus an own noise budget), or None before
    they are first drawn."""
    keys = [f"{C.W_SLIDER_PREFIX}{C.ss().get(C.K_MAP_KEY)}.{c}" for c in _slider_ids(sizes, include_noise)]
    if not keys or any(k not in C.ss() for k in keys):
        return None
    noise = int(C.ss().get(C.C_NOISE_BUDGET, 0) or 0) if C.ss().get(C.C_NOISE) == "own budget" else 0
    return sum(int(C.ss()[k]) for k in keys) + noise


def _slider_ids(sizes: dict[int, int], include_noise: bool) -> list[int]:
    return [c for c in sorted(sizes, key=lambda c: (c < 0, c)) if c >= 0 or include_noise]


def _persisted(widget, label: str, wkey: str, ckey: str, default, *args, **kwargs):
    C.init_widget(wkey, ckey, default)
    value = widget(label, *args, key=wkey, **kwargs)
    C.ss()[ckey] = value
    return value


def _sliders(data, sizes: dict[int, int], auto: dict[int, int], include_noise: bool) -> None:
    """One slider per cluster, in a form: steps rerun nothing until **Apply**."""
    names = data.cluster_names
    saved = C.ss().get(C.C_SLIDERS) or {}
    values = {}
    with st.form("cluster_sliders_form", border=False):
        cols = st.columns(3)
        for j, c in enumerate(_slider_ids(sizes, include_noise)):
            wkey = f"{C.W_SLIDER_PREFIX}{C.ss().get(C.K_MAP_KEY)}.{c}"
            if wkey not in C.ss():
                C.ss()[wkey] = int(min(saved.get(c, auto.get(c, 0)), sizes[c]))
            values[c] = int(cols[j % 3].slider(f"{c}: {C.esc(names.get(c, c))} ({sizes[c]:,} rows)", 0, sizes[c], key=wkey))
        st.form_submit_button("Apply per-cluster budgets", type="primary", key=C.W_SLIDERS_APPLY)
    C.ss()[C.C_SLIDERS] = values


def _table(data, sizes: dict[int, int]) -> None:
    import pandas as pd

    names = data.cluster_names
    canon = C.ss().get(C.C_TABLE) or {}
    wkey = C.ss().get(C.K_TABLE_WKEY)
    if wkey is None or wkey not in C.ss() or C.ss().get(C.K_TABLE_BASE) is None:
        seq = C.ss().get(C.K_TABLE_SEQ, 0) + 1
        C.ss()[C.K_TABLE_SEQ] = seq
        wkey = f"{C.W_TABLE_PREFIX}{seq}"
        ids = sorted(sizes, key=lambda c: (c < 0, c))
        C.ss()[C.K_TABLE_BASE] = pd.DataFrame({
            "cluster": ids,
            "name": [names.get(c, str(c)) for c in ids],
            "size": [sizes[c] for c in ids],
            "min": pd.array([canon.get(c, (None, None, None))[0] for c in ids], dtype="Int64"),
            "max": pd.array([canon.get(c, (None, None, None))[1] for c in ids], dtype="Int64"),
            "override": pd.array([canon.get(c, (None, None, None))[2] for c in ids], dtype="Int64"),
        })
        C.ss()[C.K_TABLE_WKEY] = wkey
    base = C.ss()[C.K_TABLE_BASE]
    st.caption("Leave a cell empty for no constraint. *override* is an exact budget for that cluster.")
    edited = st.data_editor(
        base, key=wkey, hide_index=True, width="stretch", num_rows="fixed",
        disabled=["cluster", "name", "size"],
        column_config={
            "min": st.column_config.NumberColumn(min_value=0, step=1, format="%d"),
            "max": st.column_config.NumberColumn(min_value=0, step=1, format="%d"),
            "override": st.column_config.NumberColumn(min_value=0, step=1, format="%d"),
        },
    )

    def val(v):
        return None if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else int(v)

    table = {}
    for row in edited.itertuples(index=False):
        lo, hi, ov = val(row.min), val(row.max), val(row.override)
        if lo is not None or hi is not None or ov is not None:
            table[int(row.cluster)] = (lo, hi, ov)
    C.ss()[C.C_TABLE] = table


def _settings(data, info, sizes: dict[int, int]):
    """The Split/Pick/depth settings; returns the slot for the total budget (None with tokens)."""
    from core.explore import column_kinds
    from core.selection import BUDGET_UNITS, DEFAULT_PICK, PICKS, POLICIES, TOKENIZERS, describe

    n = len(data.row_ids)
    n_clusters = len([c for c in sizes if c >= 0])
    st.subheader("Split")
    modes = MODES if n_clusters <= MAX_SLIDERS else ("Automatic", "Table")
    default_mode = "Automatic"
    if C.ss().get(C.C_PER_CLUSTER_MODE) not in modes:
        C.ss()[C.C_PER_CLUSTER_MODE] = default_mode
    if C.ss().get(C.W_MODE, default_mode) not in modes:
        del C.ss()[C.W_MODE]
    u1, u2 = st.columns(2)
    unit = _persisted(u1.radio, "Budget unit", C.W_UNIT, C.C_UNIT, "rows", BUDGET_UNITS, horizontal=True,
                      help="tokens: the budget (and min/max/overrides) count tokens; policies weigh each "
                           "cluster's token mass.")
    if unit == "tokens":
        _persisted(u2.selectbox, "Tokenizer", C.W_TOKENIZER, C.C_TOKENIZER, "model", TOKENIZERS,
                   help="model: the embedding model's own tokenizer; words: whitespace-separated words.")
        modes = ("Automatic", "Table")
        if C.ss().get(C.C_PER_CLUSTER_MODE) not in modes:
            C.ss()[C.C_PER_CLUSTER_MODE] = default_mode
        if C.ss().get(C.W_MODE, default_mode) not in modes:
            del C.ss()[C.W_MODE]
    c1, c2, c3 = st.columns(3)
    mode = _persisted(c1.radio, "Per-cluster budgets", C.W_MODE, C.C_PER_CLUSTER_MODE, default_mode, modes,
                      horizontal=True,
                      help="Automatic: the policy splits the total. Sliders: set each cluster's rows (the total is "
                           f"their sum); offered for row budgets on maps with at most {MAX_SLIDERS} clusters (this "
                           f"one has {n_clusters}). Table: min/max/override per cluster, for any number of clusters.")
    _persisted(c2.selectbox, "Policy", C.W_POLICY, C.C_POLICY, "equal", POLICIES,
               help="proportional: like the full set; equal: the same for every cluster; sqrt: in between.")
    noise = _persisted(c3.selectbox, "Unclustered rows", C.W_NOISE, C.C_NOISE, "include", NOISE_MODES,
                       help="include: treated as one more group; exclude: never picked; own budget: a fixed count.")
    slot = None
    if unit == "tokens":
        _token_budget_widget(data, info)
    else:
        slot = st.container()  # filled by body() once the per-cluster sliders are known
    c1, c2, c3 = st.columns(3)
    top = n if unit == "rows" else None
    if noise == "own budget":
        _persisted(c1.number_input, f"Unclustered budget ({unit})", C.W_NOISE_BUDGET, C.C_NOISE_BUDGET, 0,
                   min_value=0, max_value=int(sizes.get(-1, 0)) if unit == "rows" else None, step=1)
    _persisted(c2.number_input, f"Min per cluster ({unit})", C.W_MIN, C.C_MIN, 0, min_value=0, max_value=top, step=1)
    _persisted(c3.number_input, f"Max per cluster ({unit}; 0 = no cap)", C.W_MAX, C.C_MAX, 0, min_value=0,
               max_value=top, step=1)

    st.subheader("Pick")
    c1, c2, c3, c4 = st.columns(4)
    pick = _persisted(c1.selectbox, "Method", C.W_PICK, C.C_PICK, DEFAULT_PICK, PICKS,
                      help=describe())
    _persisted(c2.number_input, "Seed", C.W_SEED, C.C_SEED, 0, min_value=0, max_value=2**31 - 1, step=1,
               help="Seeds the random pick, and the candidate pool of diverse/facility in large clusters.")
    if pick == "mmr":
        _persisted(c3.slider, "MMR λ (relevance vs. novelty)", C.W_MMR_LAMBDA, C.C_MMR_LAMBDA, 0.5, 0.0, 1.0,
                   step=0.05, help="1: the most relevant rows; near 0: each pick as unlike the others as possible.")
        numeric = column_kinds(info.columns, info.numeric_text)["numeric"]
        options = [""] + numeric
        if C.ss().get(C.C_RELEVANCE, "") not in options:
            C.ss()[C.C_RELEVANCE] = ""
        _persisted(c4.selectbox, "Relevance", C.W_RELEVANCE, C.C_RELEVANCE, "", options,
                   format_func=lambda c: "similarity to the centre" if c == "" else f"score: {c}")
    if pick == "score":
        numeric = column_kinds(info.columns, info.numeric_text)["numeric"]
        if not numeric:
            st.warning("The dataset has no numeric column to pick by score.")
        else:
            if C.ss().get(C.C_SCORE_COLUMN) not in numeric:
                C.ss()[C.C_SCORE_COLUMN] = numeric[0]
            _persisted(c3.selectbox, "Score column", C.W_SCORE, C.C_SCORE_COLUMN, numeric[0], numeric)
            _persisted(c4.checkbox, "Lowest first", C.W_ASCENDING, C.C_ASCENDING, False)
    _depth_settings(data, info)
    return slot


def _depth_settings(data, info) -> None:
    from core.explore import column_kinds
    from core.selection import DEDUP_MODES, LEAKAGE_MODES

    st.subheader("Duplicates, noise and strata")
    c1, c2, c3, c4 = st.columns(4)
    dedup = _persisted(c1.selectbox, "Duplicates", C.W_DEDUP, C.C_DEDUP, "none", DEDUP_MODES,
                       help="exact: rows with the same normalised text form one group; near: also rows of one "
                            "cluster whose embeddings are nearly identical. A budget counts groups and picks one "
                            "representative of each (its group size becomes sieve_group_size in the export).")
    if dedup == "near":
        _persisted(c2.number_input, "Near-duplicate similarity", C.W_NEAR_DUP, C.C_NEAR_DUP, 0.95, min_value=0.5,
                   max_value=1.0, step=0.01, format="%.2f")
    soft = _persisted(c3.checkbox, "Soft noise", C.W_SOFT_NOISE_ON, C.C_SOFT_NOISE_ON, False,
                      help="Unclustered rows whose HDBSCAN soft membership reaches the threshold join their "
                           "most likely cluster for this selection.")
    if soft:
        _persisted(c4.slider, "Soft membership ≥", C.W_SOFT_NOISE, C.C_SOFT_NOISE, 0.1, 0.0, 1.0, step=0.01)
    kinds = column_kinds(info.columns, info.numeric_text)
    text_col = info.text.column
    options = [""] + [c for c in kinds["text"] + kinds["numeric"] if c != text_col]
    if C.ss().get(C.C_STRATA, "") not in options:
        C.ss()[C.C_STRATA] = ""
    s1, _ = st.columns([1, 3])
    _persisted(s1.selectbox, "Strata column", C.W_STRATA, C.C_STRATA, "", options,
               format_func=lambda c: "none" if c == "" else c,
               help="Split each cluster's budget across this column's values (e.g. source or language) "
                    "by the same policy.")

    with st.expander("Reference set: coverage and leakage", expanded=bool(C.ss().get(C.C_REFERENCE))):
        r1, r2 = st.columns([3, 1])
        _persisted(r1.text_input, "Reference / eval file (path on the server)", C.W_REFERENCE, C.C_REFERENCE, "",
                   help="Embedded with the map's model. Coverage: share of its rows near a chosen row. "
                        "Leakage: candidate rows that are near-copies of its rows.")
        _persisted(r2.text_input, "Its text column", C.W_REFERENCE_TEXT, C.C_REFERENCE_TEXT, "text")
        r1, r2, r3 = st.columns(3)
        _persisted(r1.selectbox, "Leakage", C.W_LEAKAGE, C.C_LEAKAGE, "warn", LEAKAGE_MODES,
                   help="warn: report rows that are near-copies of reference rows; drop: never pick them.")
        _persisted(r2.number_input, "Leakage similarity", C.W_LEAKAGE_THRESHOLD, C.C_LEAKAGE_THRESHOLD, 0.95,
                   min_value=0.5, max_value=1.0, step=0.01, format="%.2f")
        _persisted(r3.number_input, "Coverage distance", C.W_COVERAGE_DISTANCE, C.C_COVERAGE_DISTANCE, 0.3,
                   min_value=0.0, max_value=2.0, step=0.05, format="%.2f")
    with st.expander("Target set: match its distribution", expanded=bool(C.ss().get(C.C_TARGET))):
        t1, t2 = st.columns([3, 1])
        _persisted(t1.text_input, "Target file (path on the server)", C.W_TARGET, C.C_TARGET, "",
                   help="Embedded with the map's model; each of its rows counts for the cluster of its nearest "
                        "row, and the budget follows those shares (importance resampling; the policy is not used).")
        _persisted(t2.text_input, "Its text column", C.W_TARGET_TEXT, C.C_TARGET_TEXT, "text")


def _allocation_table(data, sizes, selection) -> None:
    import pandas as pd

    names = data.cluster_names
    pins, bans = C.pins(), C.bans()
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
    import pandas as pd

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
    """One line per depth option that changed something (plain text for tests, a caption for people)."""
    s = selection.stats
    parts = []
    if "soft_noise_moved" in s:
        parts.append(f"soft_noise_moved={s['soft_noise_moved']}")
    if "groups" in s:
        parts.append(f"dedup_groups={s['groups']} duplicate_rows={s['duplicate_rows']}")
    if "tokens_used" in s:
        parts.append(f"tokens_used={s['tokens_used']} tokens_budget={s['tokens_budget']}")
    if "leaked" in s:
        parts.append(f"leaked={s['leaked']}")
    if parts:
        st.text(" ".join(parts))
    if "soft_noise_moved" in s:
        st.caption(f"Soft noise moved {s['soft_noise_moved']:,} unclustered row(s) into their most likely cluster.")
    if "groups" in s:
        st.caption(f"{s['duplicate_rows']:,} duplicate row(s) collapsed into {s['groups']:,} groups; the chosen rows "
                   f"stand for {s.get('chosen_group_rows', len(selection)):,} rows "
                   f"({s.get('chosen_duplicates', 0):,} duplicates can be exported with them on the Export page).")


def _charts(data, sizes, selection, metrics, params) -> None:
    import plotly.graph_objects as go

    from core.explore import draw_sample

    from core.stages.metrics import metric_aims

    aims = metric_aims(params.policy, params.pick)
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
            delta = f"{fmt_distance(metrics.nn_distance - metrics.nn_distance_random, signed=True)} vs random"
        nn_aim, nn_judged = aims["nn_distance"]
        c3.metric("Diversity (mean NN distance)", fmt_distance(metrics.nn_distance), delta=delta,
                  delta_color="normal" if nn_judged else "off",
                  help="Mean cosine distance from each chosen row to its nearest other chosen row; "
                       "compared with random subsets of the same size.")
        c3.caption(f"Pick {params.pick}: {nn_aim}.")
    else:
        c3.caption("Diversity is computed on request for large subsets.")
        if c3.button("Compute diversity", key=C.W_DIVERSITY):
            C.ss()[C.K_WANT_DIVERSITY] = True
            st.rerun()
    _comparison(metrics, aims)
    st.text(f"coverage={metrics.coverage:.4f} jsd={metrics.jsd:.4f} "
            f"nn_distance={metrics.nn_distance if metrics.nn_distance is None else round(metrics.nn_distance, 4)} "
            f"nn_distance_random="
            f"{metrics.nn_distance_random if metrics.nn_distance_random is None else round(metrics.nn_distance_random, 4)}")

    names = data.cluster_names
    ids = sorted(sizes, key=lambda c: (c < 0, c))
    full_n = max(1, sum(sizes.values()))
    sub_n = max(1, len(selection))
    chosen = dict(zip(*np.unique(selection.clusters, return_counts=True))) if len(selection) else {}
    labels = [("noise" if c < 0 else str(c)) for c in ids]
    hover = [html.escape(str(names.get(c, c))) for c in ids]
    fig = go.Figure([
        go.Bar(name="full set", x=labels, y=[sizes[c] / full_n for c in ids], marker_color="#9e9e9e",
               customdata=list(zip([sizes[c] for c in ids], hover)),
               hovertemplate="%{x}: %{customdata[1]}<br>%{customdata[0]} rows (%{y:.1%})<extra>full</extra>"),
        go.Bar(name="subset", x=labels, y=[chosen.get(c, 0) / sub_n for c in ids], marker_color="#1f77b4",
               customdata=list(zip([int(chosen.get(c, 0)) for c in ids], hover)),
               hovertemplate="%{x}: %{customdata[1]}<br>%{customdata[0]} rows (%{y:.1%})<extra>subset</extra>"),
    ])
    fig.update_layout(barmode="group", height=380, xaxis=dict(type="category", title="cluster"),
                      margin=dict(l=10, r=10, t=70, b=10), yaxis_tickformat=".0%",
                      title="Share of rows per cluster: full set vs subset",
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1))
    bg = draw_sample(data.labels, 30_000, seed=0)
    chosen_pos = np.asarray(selection.positions, dtype=np.int64)
    if len(chosen_pos) > 30_000:
        chosen_pos = chosen_pos[draw_sample(data.labels[chosen_pos], 30_000, seed=1)]
    m = go.Figure([
        go.Scattergl(x=data.xy[bg, 0], y=data.xy[bg, 1], mode="markers", name="all rows", hoverinfo="skip",
                     marker=dict(size=3, color="#bdbdbd", opacity=0.6)),
        go.Scattergl(x=data.xy[chosen_pos, 0], y=data.xy[chosen_pos, 1], mode="markers", name="chosen",
                     hoverinfo="skip", marker=dict(size=5, color="#d62728")),
    ])
    m.update_layout(height=380, margin=dict(l=10, r=10, t=70, b=10), title="Chosen rows on the map",
                    xaxis=dict(showticklabels=False), yaxis=dict(showticklabels=False),
                    annotations=name_annotations(cluster_centres(data.xy[bg], data.labels[bg]), names),
                    legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1))
    left, right = st.columns([3, 2])
    left.plotly_chart(fig, key="budget_bars", config={"displaylogo": False})
    right.plotly_chart(m, key="budget_map", config={"displaylogo": False})


def body() -> None:
    st.title("Budget")
    ws = C.get_workspace()
    info = C.dataset_or_guidance(ws)
    if info is None:
        return
    data = C.map_or_guidance(ws)
    if data is None:
        return
    sizes = _sizes(data)
    slot = _settings(data, info, sizes)

    mode = C.ss().get(C.C_PER_CLUSTER_MODE, "Automatic")
    include_noise = C.ss().get(C.C_NOISE) == "include"
    if slot is not None:
        sliders = mode == "Sliders"
        _total_widgets(slot, len(data.row_ids), sliders, _sliders_total(data, sizes, include_noise) if sliders else None)
    if mode != "Automatic":
        # The automatic split of the current total seeds the sliders / shows beside the table.
        from core.selection import SelectParams

        auto = {}
        if mode == "Sliders":
            from core.engines.local import run_selection

            p = C.params_from_state(data, info).to_dict()
            p.update(overrides={}, bounds={}, pick="random", score_column=None, budget=int(C.ss()[C.C_BUDGET]),
                     reference_path=None, leakage="off")
            auto = run_selection(ws, data, SelectParams.from_dict(p)).allocation
        st.subheader("Per-cluster budgets")
        if mode == "Sliders":
            st.caption("Each slider is that cluster's exact budget; the total is their sum. They start from the "
                       "policy's split of the total above.")
            _sliders(data, sizes, auto, include_noise=include_noise)
        else:
            _table(data, sizes)

    params = C.params_from_state(data, info)
    C.ss()[C.K_SELECT_PARAMS] = params
    want = True if C.ss().get(C.K_WANT_DIVERSITY) else None
    result = C.current_selection(ws, data, params, diversity=want)
    selection, metrics = result["selection"], result["metrics"]

    st.subheader("Result")
    st.text(f"budget_total={len(selection)}")
    for note in selection.notes:
        st.warning(C.esc(note))
    _depth_results(selection, params)
    _charts(data, sizes, selection, metrics, params)
    st.subheader("Per-cluster allocation")
    if params.budget_unit == "tokens":
        st.caption("budget is in tokens; selected counts rows.")
    _allocation_table(data, sizes, selection)
    st.page_link(C.PAGE_EXPORT, label="Next: export the subset", icon=":material/download:")


C.run_page(body)
