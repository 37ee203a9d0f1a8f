"""The Budget page's settings widgets: Split (unit, per-cluster mode, policy, noise, the total in
a form, per-cluster sliders or a min/max/override table), Pick, and the depth options (duplicates,
soft noise, strata, reference and target sets).  Each widget persists its value under a ``C_``
key (pages.state); pages.forms.budget_settings reads them back as one typed object.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core import queries
from core.budget_settings import NOISE_CHOICES, PER_CLUSTER_MODES, default_budget
from core.explore_files import column_kinds
from core.selection import (BUDGET_UNITS, CLUSTER_CHOICES, DEDUP_MODES, DEFAULT_CLUSTER_CHOICE, DEFAULT_PICK,
                            DEFAULT_POLICY, DEFAULT_SOFT_NOISE, LEAKAGE_MODES, PICKS, POLICIES, TOKENIZERS)
from pages import common as C
from pages import state as S
from pages.state import State

MAX_SLIDERS = 12


def token_budget_widget(state: State, ws, data) -> None:
    """The total in tokens (a tenth of the whole set's tokens the first time)."""
    total = queries.token_total(ws, data, state.get(S.C_TOKENIZER, "model"))
    if not state.get(S.C_TOKEN_BUDGET):
        state[S.C_TOKEN_BUDGET] = max(1, total // 10)
    S.persisted(state, st.number_input, f"Total budget (tokens; the whole set has {total:,})", S.W_TOKEN_BUDGET,
                S.C_TOKEN_BUDGET, max(1, total // 10), min_value=1, step=1000,
                help="Rows are taken in pick order while they fit; the total never exceeds this.")
    st.metric("Tokens in the whole set", f"{total:,}")


def total_widgets(state: State, slot, n: int, sliders: bool, sliders_total: int | None) -> None:
    """The total budget (slider and Rows box) in a form: arrow-key steps and typing rerun
    nothing until **Apply** (or Enter).  In Sliders mode they show the sliders' sum."""
    cur = int(min(max(1, state.get(S.C_BUDGET, default_budget(n))), n))
    if sliders_total is not None:
        cur = int(min(max(1, sliders_total), n))
    else:  # after Apply, whichever of the two widgets was changed wins
        for w in (S.W_BUDGET_SLIDER, S.W_BUDGET_NUMBER):
            v = state.get(w)
            if v is not None and int(v) != cur:
                cur = int(min(max(1, int(v)), n))
                break
    state[S.C_BUDGET] = cur
    for w in (S.W_BUDGET_SLIDER, S.W_BUDGET_NUMBER):
        if state.get(w) != cur:
            state[w] = cur
    with slot.form("budget_total_form", border=False):
        c1, c2, c3 = st.columns([6, 2, 1], vertical_alignment="bottom")
        if n > 1:
            c1.slider("Total budget (rows)", 1, n, key=S.W_BUDGET_SLIDER, disabled=sliders,
                      help="The sum of the per-cluster sliders below." if sliders else
                      "Step with the arrow keys, then press Apply.")
        else:  # a slider needs min < max: a one-row map's budget is that row
            c1.caption("Total budget (rows): the map has one row, so the budget is 1.")
        c2.number_input("Rows", 1, n, step=1, key=S.W_BUDGET_NUMBER, disabled=sliders or n <= 1)
        c3.form_submit_button("Apply", type="primary", disabled=sliders or n <= 1, key=S.W_BUDGET_APPLY)


def slider_ids(sizes: dict[int, int], include_noise: bool) -> list[int]:
    """The clusters that get a slider (noise last, with ``include_noise``)."""
    return [c for c in sorted(sizes, key=lambda c: (c < 0, c)) if c >= 0 or include_noise]


def _slider_key(state: State, c: int) -> str:
    m = S.MapState(state)
    return f"{S.W_SLIDER_PREFIX}{m.map_key}.{c}"


def sliders_total(state: State, sizes: dict[int, int], include_noise: bool) -> int | None:
    """The per-cluster sliders' current sum (plus an own noise budget), or None before
    they are first drawn."""
    keys = [_slider_key(state, c) for c in slider_ids(sizes, include_noise)]
    if not keys or any(k not in state for k in keys):
        return None
    noise = int(state.get(S.C_NOISE_BUDGET, 0) or 0) if state.get(S.C_NOISE) == "own budget" else 0
    return sum(int(state[k]) for k in keys) + noise


def cluster_sliders(state: State, data, sizes: dict[int, int], auto: dict[int, int], include_noise: bool) -> None:
    """One slider per cluster, in a form: steps rerun nothing until **Apply**."""
    names = data.cluster_names
    saved = state.get(S.C_SLIDERS) or {}
    values = {}
    with st.form("cluster_sliders_form", border=False):
        cols = st.columns(3)
        for j, c in enumerate(slider_ids(sizes, include_noise)):
            wkey = _slider_key(state, c)
            if wkey not in state:
                state[wkey] = int(min(saved.get(c, auto.get(c, 0)), sizes[c]))
            values[c] = int(cols[j % 3].slider(f"{c}: {C.esc(names.get(c, c))} ({sizes[c]:,} rows)", 0, sizes[c],
                                               key=wkey))
        st.form_submit_button("Apply per-cluster budgets", type="primary", key=S.W_SLIDERS_APPLY)
    state[S.C_SLIDERS] = values


def _table_base(state: State, data, sizes: dict[int, int]) -> str:
    """The editor's widget key; a new key (and base frame from the persisted table) when it has none."""
    b = S.BudgetState(state)
    wkey = b.table_wkey
    if wkey is not None and wkey in state and b.table_base is not None:
        return wkey
    names, canon = data.cluster_names, state.get(S.C_TABLE) or {}
    seq = b.table_seq + 1
    b.table_seq = seq
    wkey = f"{S.W_TABLE_PREFIX}{seq}"
    ids = sorted(sizes, key=lambda c: (c < 0, c))
    cell = {c: canon.get(c, (None, None, None)) for c in ids}
    b.table_base = pd.DataFrame({
        "cluster": ids, "name": [names.get(c, str(c)) for c in ids], "size": [sizes[c] for c in ids],
        "min": pd.array([cell[c][0] for c in ids], dtype="Int64"),
        "max": pd.array([cell[c][1] for c in ids], dtype="Int64"),
        "override": pd.array([cell[c][2] for c in ids], dtype="Int64"),
    })
    b.table_wkey = wkey
    return wkey


def _cell(v) -> int | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else int(v)


def cluster_table_editor(state: State, data, sizes: dict[int, int]) -> None:
    """min / max / override per cluster in a data editor; persists {cluster: (min, max, override)}."""
    b = S.BudgetState(state)
    wkey = _table_base(state, data, sizes)
    st.caption("Leave a cell empty for no constraint. *override* is an exact budget for that cluster.")
    number = st.column_config.NumberColumn(min_value=0, step=1, format="%d")
    edited = st.data_editor(b.table_base, key=wkey, hide_index=True, width="stretch", num_rows="fixed",
                            disabled=["cluster", "name", "size"],
                            column_config={"min": number, "max": number, "override": number})
    table = {}
    for row in edited.itertuples(index=False):
        lo, hi, ov = _cell(row.min), _cell(row.max), _cell(row.override)
        if lo is not None or hi is not None or ov is not None:
            table[int(row.cluster)] = (lo, hi, ov)
    state[S.C_TABLE] = table


def _offer_modes(state: State, modes: tuple[str, ...]) -> None:
    """Keep the persisted and the widget's per-cluster mode among ``modes``."""
    if state.get(S.C_PER_CLUSTER_MODE) not in modes:
        state[S.C_PER_CLUSTER_MODE] = "Automatic"
    if state.get(S.W_MODE, "Automatic") not in modes:
        del state[S.W_MODE]


def split_settings(state: State, ws, data, sizes: dict[int, int]):
    """Unit, per-cluster mode, policy and noise, then the total (tokens here; rows: the returned
    slot, filled once the per-cluster sliders are known, else None) and min/max per cluster."""
    n_clusters = len([c for c in sizes if c >= 0])
    st.subheader("Split")
    modes = PER_CLUSTER_MODES if n_clusters <= MAX_SLIDERS else ("Automatic", "Table")
    _offer_modes(state, modes)
    u1, u2 = st.columns(2)
    unit = S.persisted(state, u1.radio, "Budget unit", S.W_UNIT, S.C_UNIT, "rows", BUDGET_UNITS, horizontal=True,
                       help="tokens: the budget (and min/max/overrides) count tokens; policies weigh each "
                            "cluster's token mass.")
    if unit == "tokens":
        S.persisted(state, u2.selectbox, "Tokenizer", S.W_TOKENIZER, S.C_TOKENIZER, "model", TOKENIZERS,
                    help="model: the embedding model's own tokenizer; words: whitespace-separated words.")
        modes = ("Automatic", "Table")
        _offer_modes(state, modes)
    c1, c2, c3, c4 = st.columns(4)
    S.persisted(state, c1.radio, "Per-cluster budgets", S.W_MODE, S.C_PER_CLUSTER_MODE, "Automatic", modes,
                horizontal=True,
                help="Automatic: the policy splits the total. Sliders: set each cluster's rows (the total is "
                     f"their sum); offered for row budgets on maps with at most {MAX_SLIDERS} clusters (this "
                     f"one has {n_clusters}). Table: min/max/override per cluster, for any number of clusters.")
    S.persisted(state, c2.selectbox, "Policy", S.W_POLICY, S.C_POLICY, DEFAULT_POLICY, POLICIES,
                help="proportional: like the full set; equal: the same for every cluster; sqrt: in between.")
    noise = S.persisted(state, c3.selectbox, "Unclustered rows", S.W_NOISE, S.C_NOISE, "include", NOISE_CHOICES,
                        help="include: treated as one more group; exclude: never picked; own budget: a fixed count.")
    S.persisted(state, c4.selectbox, "Clusters that get a row", S.W_CLUSTER_CHOICE, S.C_CLUSTER_CHOICE,
                DEFAULT_CLUSTER_CHOICE, CLUSTER_CHOICES,
                help="When the budget cannot give every cluster a row: size: the clusters with the largest shares; "
                     "coverage: the clusters whose medoids cover the others best (facility location).")
    slot = None
    if unit == "tokens":
        token_budget_widget(state, ws, data)
    else:
        slot = st.container()
    c1, c2, c3 = st.columns(3)
    top = len(data.row_ids) if unit == "rows" else None
    if noise == "own budget":
        S.persisted(state, c1.number_input, f"Unclustered budget ({unit})", S.W_NOISE_BUDGET, S.C_NOISE_BUDGET, 0,
                    min_value=0, max_value=int(sizes.get(-1, 0)) if unit == "rows" else None, step=1)
    S.persisted(state, c2.number_input, f"Min per cluster ({unit})", S.W_MIN, S.C_MIN, 0, min_value=0,
                max_value=top, step=1)
    S.persisted(state, c3.number_input, f"Max per cluster ({unit}; 0 = no cap)", S.W_MAX, S.C_MAX, 0, min_value=0,
                max_value=top, step=1)
    return slot


def _choose_column(state: State, ckey: str, options: list[str]) -> None:
    """Keep the persisted column ``ckey`` among ``options`` (else the first option)."""
    if state.get(ckey) not in options:
        state[ckey] = options[0]


def pick_settings(state: State, info) -> None:
    """The pick method, its seed, and the options of mmr (λ, relevance) and score (column, order)."""
    st.subheader("Pick")
    c1, c2, c3, c4 = st.columns(4)
    pick = S.persisted(state, c1.selectbox, "Method", S.W_PICK, S.C_PICK, DEFAULT_PICK, PICKS,
                       help=queries.pick_help())
    S.persisted(state, c2.number_input, "Seed", S.W_SEED, S.C_SEED, 0, min_value=0, max_value=2**31 - 1, step=1,
                help="Seeds the random pick, and the candidate pool of diverse/facility in large clusters.")
    numeric = column_kinds(info.columns, info.numeric_text)["numeric"]
    if pick == "mmr":
        S.persisted(state, c3.slider, "MMR λ (relevance vs. novelty)", S.W_MMR_LAMBDA, S.C_MMR_LAMBDA, 0.5, 0.0, 1.0,
                    step=0.05, help="1: the most relevant rows; near 0: each pick as unlike the others as possible.")
        options = [""] + numeric
        _choose_column(state, S.C_RELEVANCE, options)
        S.persisted(state, c4.selectbox, "Relevance", S.W_RELEVANCE, S.C_RELEVANCE, "", options,
                    format_func=lambda c: "similarity to the centre" if c == "" else f"score: {c}")
    if pick == "score":
        if not numeric:
            st.warning("The dataset has no numeric column to pick by score.")
        else:
            _choose_column(state, S.C_SCORE_COLUMN, numeric)
            S.persisted(state, c3.selectbox, "Score column", S.W_SCORE, S.C_SCORE_COLUMN, numeric[0], numeric)
            S.persisted(state, c4.checkbox, "Lowest first", S.W_ASCENDING, S.C_ASCENDING, False)


def depth_settings(state: State, info) -> None:
    """Duplicates, soft noise and strata; then the reference and target sets."""
    st.subheader("Duplicates, noise and strata")
    c1, c2, c3, c4 = st.columns(4)
    dedup = S.persisted(state, c1.selectbox, "Duplicates", S.W_DEDUP, S.C_DEDUP, "none", DEDUP_MODES,
                        help="exact: rows with the same normalised text form one group; near: also rows of one "
                             "cluster whose embeddings are nearly identical. A budget counts groups and picks one "
                             "representative of each (its group size becomes sieve_group_size in the export).")
    if dedup == "near":
        S.persisted(state, c2.number_input, "Near-duplicate similarity", S.W_NEAR_DUP, S.C_NEAR_DUP, 0.95,
                    min_value=0.5, max_value=1.0, step=0.01, format="%.2f")
    soft = S.persisted(state, c3.checkbox, "Soft noise", S.W_SOFT_NOISE_ON, S.C_SOFT_NOISE_ON, True,
                       help="Unclustered rows whose soft membership reaches the threshold join their most likely "
                            "cluster for this selection (default: on at 0, every one; it covered more classes on "
                            "the quality harness, docs/SELECTION.md). Turn it off to keep the unclustered rows "
                            "out with Unclustered rows: exclude, or to give them their own budget.")
    if soft:
        S.persisted(state, c4.slider, "Soft membership ≥", S.W_SOFT_NOISE, S.C_SOFT_NOISE, DEFAULT_SOFT_NOISE, 0.0,
                    1.0, step=0.01)
    kinds = column_kinds(info.columns, info.numeric_text)
    options = [""] + [c for c in kinds["text"] + kinds["numeric"] if c != info.text.column]
    _choose_column(state, S.C_STRATA, options)
    s1, _ = st.columns([1, 3])
    S.persisted(state, s1.selectbox, "Strata column", S.W_STRATA, S.C_STRATA, "", options,
                format_func=lambda c: "none" if c == "" else c,
                help="Split each cluster's budget across this column's values (e.g. source or language) "
                     "by the same policy.")
    reference_settings(state)


def reference_settings(state: State) -> None:
    """The reference set (coverage, leakage) and the target set (distribution to match)."""
    with st.expander("Reference set: coverage and leakage", expanded=bool(state.get(S.C_REFERENCE))):
        r1, r2 = st.columns([3, 1])
        S.persisted(state, r1.text_input, "Reference / eval file (path on the server)", S.W_REFERENCE, S.C_REFERENCE,
                    "", help="Embedded with the map's model. Coverage: share of its rows near a chosen row. "
                             "Leakage: candidate rows that are near-copies of its rows.")
        S.persisted(state, r2.text_input, "Its text column", S.W_REFERENCE_TEXT, S.C_REFERENCE_TEXT, "text")
        r1, r2, r3 = st.columns(3)
        S.persisted(state, r1.selectbox, "Leakage", S.W_LEAKAGE, S.C_LEAKAGE, "warn", LEAKAGE_MODES,
                    help="warn: report rows that are near-copies of reference rows; drop: never pick them.")
        S.persisted(state, r2.number_input, "Leakage similarity", S.W_LEAKAGE_THRESHOLD, S.C_LEAKAGE_THRESHOLD, 0.95,
                    min_value=0.5, max_value=1.0, step=0.01, format="%.2f")
        S.persisted(state, r3.number_input, "Coverage distance", S.W_COVERAGE_DISTANCE, S.C_COVERAGE_DISTANCE, 0.3,
                    min_value=0.0, max_value=2.0, step=0.05, format="%.2f")
    with st.expander("Target set: match its distribution", expanded=bool(state.get(S.C_TARGET))):
        t1, t2 = st.columns([3, 1])
        S.persisted(state, t1.text_input, "Target file (path on the server)", S.W_TARGET, S.C_TARGET, "",
                    help="Embedded with the map's model; each of its rows counts for the cluster of its nearest "
                         "row, and the budget follows those shares (importance resampling; the policy is not used).")
        S.persisted(state, t2.text_input, "Its text column", S.W_TARGET_TEXT, S.C_TARGET_TEXT, "text")
