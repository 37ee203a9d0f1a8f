"""Widgets -> Params: the Map page's advanced settings -> core.engines.local.MapParams, the Budget
page's persisted values -> core.budget_settings.BudgetSettings -> SelectParams (on a local map, and the
part the Ray engine runs on a sharded map).

Every function takes the session state it reads (``state``, a mapping: st.session_state in the
app); the rules that turn settings into parameters live in core (core.budget_settings).
"""

from __future__ import annotations

from typing import Any, MutableMapping

import streamlit as st

from core import queries, workflows
from core.budget_settings import BudgetSettings
from core.encoders.base import BACKENDS, DEVICES
from core.encoders.long_text import LONG_TEXT_MODES
from core.engines.local import MapParams
from core.selection import DEFAULT_CLUSTER_CHOICE, DEFAULT_PICK, DEFAULT_POLICY, DEFAULT_SOFT_NOISE, SelectParams
from core.stages.cluster import DEFAULT_ASSIGN_NOISE, ClusterParams
from core.stages.cluster_methods import ALGORITHMS
from core.stages.embed import EmbedParams
from core.stages.project import METRICS, ProjectParams
from core.workflow_types import RAY
from pages import common as C
from pages import state as S

State = MutableMapping[str, Any]

# (name, default) of the Map page's advanced settings; widgets are keyed "w.map.<name>".
MAP_SETTINGS = {
    "model": "all-MiniLM-L6-v2", "device": "auto", "batch_size": 64, "backend": "auto",
    "n_neighbors": 15, "min_dist": 0.1, "metric": "cosine", "dims": 5,
    "min_cluster_size": 0, "min_samples": 0, "seed": 42, "exact": False, "long_text": "truncate", "cluster_method": "hdbscan",
    "join_noise": True, "assign_noise": DEFAULT_ASSIGN_NOISE,
}


# -- Map ----------------------------------------------------------------------------------------


def settings_from_params(params) -> dict:
    """The advanced-settings values of a map's MapParams (the defaults for None)."""
    if params is None:
        return dict(MAP_SETTINGS)
    return {
        "model": params.embed.model, "device": params.embed.device, "batch_size": params.embed.batch_size,
        "backend": getattr(params.embed, "backend", "auto"),
        "n_neighbors": params.project.n_neighbors, "min_dist": float(params.project.min_dist),
        "metric": params.project.metric, "dims": params.project.cluster_dims,
        "min_cluster_size": params.cluster.min_cluster_size or 0, "min_samples": params.cluster.min_samples or 0,
        "seed": params.project.seed, "exact": bool(getattr(params.project, "exact", False)),
        "long_text": getattr(params.embed, "long_text", "truncate"),
        "cluster_method": getattr(params.cluster, "algorithm", "hdbscan"),
        "join_noise": params.cluster.assign_noise is not None,
        "assign_noise": float(params.cluster.assign_noise if params.cluster.assign_noise is not None
                              else DEFAULT_ASSIGN_NOISE),
    }


def map_settings_form(state: State, data) -> dict:
    """The Map page's "Advanced settings" expander; returns (and persists) its values."""
    saved = state.get(S.C_MAP_SETTINGS) or settings_from_params(getattr(data, "params", None))
    for name, default in MAP_SETTINGS.items():
        if S.W_MAP_PREFIX + name not in state:
            state[S.W_MAP_PREFIX + name] = saved.get(name, default)
    key = {name: S.W_MAP_PREFIX + name for name in MAP_SETTINGS}
    with st.expander("Advanced settings", expanded=False):
        st.caption("Changing a setting recomputes only the stages that depend on it; the rest come from the cache.")
        _embed_settings(state, key)
        st.markdown("**UMAP**")
        c1, c2, c3, c4 = st.columns(4)
        c1.slider("n_neighbors", 2, 200, key=key["n_neighbors"])
        c2.slider("min_dist", 0.0, 1.0, step=0.01, key=key["min_dist"])
        c3.selectbox("metric", METRICS, key=key["metric"])
        c4.number_input("dims (for clustering)", min_value=2, max_value=100, key=key["dims"])
        st.checkbox("Exact (seeded, single-threaded, slower)", key=key["exact"],
                    help="Bit-reproducible UMAP. Otherwise UMAP runs in parallel and exports store the map.")
        st.markdown("**HDBSCAN**")
        c1, c2, c3 = st.columns(3)
        c1.number_input("min_cluster_size (0 = auto, about √n / 4)", min_value=0, max_value=1_000_000,
                        key=key["min_cluster_size"])
        c2.number_input("min_samples (0 = auto)", min_value=0, max_value=100_000, key=key["min_samples"])
        c3.number_input("seed", min_value=0, max_value=2**31 - 1, key=key["seed"])
        st.selectbox("Cluster method", ALGORITHMS, key=key["cluster_method"],
                     help="hdbscan: HDBSCAN on the UMAP projection (default). plscan: fast_hdbscan's PLSCAN on it. "
                          "evoc: EVoC on the vectors. leiden: Leiden communities of the kNN graph (no noise). "
                          "min_cluster_size/min_samples apply to hdbscan and plscan.")
        c1, c2 = st.columns(2)
        c1.checkbox("Unclustered rows join their most likely cluster", key=key["join_noise"],
                    help="A row HDBSCAN leaves unclustered joins the cluster of its highest soft membership when "
                         "that membership is at least the threshold; the others stay unclustered.")
        c2.number_input("… at soft membership ≥", min_value=0.0, max_value=1.0, step=0.01, format="%.2f",
                        key=key["assign_noise"], disabled=not state[key["join_noise"]])
    values = {name: state[k] for name, k in key.items()}
    state[S.C_MAP_SETTINGS] = values
    return values


def _embed_settings(state: State, key: dict) -> None:
    c1, c2, c3 = st.columns(3)
    c1.text_input("Model (sentence-transformers name or local folder)", key=key["model"])
    c2.selectbox("Device", DEVICES, key=key["device"])
    c3.number_input("Batch size", min_value=1, max_value=4096, step=16, key=key["batch_size"])
    c1, c2 = st.columns([1, 2])
    c1.selectbox("Embedding backend", BACKENDS, key=key["backend"])
    c2.caption(queries.encoder_caption(state[key["backend"]]))
    c1, c2 = st.columns([1, 2])
    c1.selectbox("Texts over the token limit", LONG_TEXT_MODES, key=key["long_text"])
    c2.caption("truncate: embed the first max_seq_length tokens (256 for all-MiniLM-L6-v2), as "
               "sentence-transformers does. chunk: embed overlapping windows of the whole text and average "
               "them, so texts that differ after the limit get different vectors (slower on long texts). "
               "The static backend reads every token either way.")


def map_params(v: dict) -> MapParams:
    """MapParams of the advanced-settings values ``v`` (a model path confined in server mode)."""
    return MapParams(
        EmbedParams(model=queries.model_path(v["model"], C.data_root()), batch_size=int(v["batch_size"]), device=v["device"],
                    backend=v.get("backend", "auto"), long_text=v.get("long_text", "truncate")).resolved(),
        ProjectParams(n_neighbors=int(v["n_neighbors"]), min_dist=float(v["min_dist"]), metric=v["metric"],
                      cluster_dims=int(v["dims"]), seed=int(v["seed"]), exact=bool(v.get("exact", False))),
        ClusterParams(min_cluster_size=int(v["min_cluster_size"]) or None, min_samples=int(v["min_samples"]) or None,
                      algorithm=v.get("cluster_method", "hdbscan"),
                      assign_noise=float(v.get("assign_noise", DEFAULT_ASSIGN_NOISE)) if v.get("join_noise", True)
                      else None),
    )


# -- Budget -------------------------------------------------------------------------------------


def budget_settings(state: State) -> BudgetSettings:
    """The Budget page's persisted values as one typed object (a reference path confined to
    $SIEVE_DATA_DIR in server mode; raises SieveError outside it)."""
    g = state.get
    reference = (g(S.C_REFERENCE) or "").strip() or None
    if reference:
        reference = C.confine_read(reference, "reference path")
    return BudgetSettings(
        budget=None if g(S.C_BUDGET) is None else int(g(S.C_BUDGET)), unit=g(S.C_UNIT, "rows"),
        mode=g(S.C_PER_CLUSTER_MODE, "Automatic"), policy=g(S.C_POLICY, DEFAULT_POLICY), noise=g(S.C_NOISE, "include"),
        noise_budget=int(g(S.C_NOISE_BUDGET, 0) or 0), min_per_cluster=int(g(S.C_MIN, 0) or 0),
        max_per_cluster=int(g(S.C_MAX, 0) or 0), sliders=dict(g(S.C_SLIDERS) or {}), table=dict(g(S.C_TABLE) or {}),
        pick=g(S.C_PICK, DEFAULT_PICK), score_column=g(S.C_SCORE_COLUMN) or None, relevance=g(S.C_RELEVANCE) or None,
        ascending=bool(g(S.C_ASCENDING, False)), seed=int(g(S.C_SEED, 0)), dedup=g(S.C_DEDUP, "none"),
        near_dup_threshold=float(g(S.C_NEAR_DUP, 0.95)), mmr_lambda=float(g(S.C_MMR_LAMBDA, 0.5)),
        soft_noise=float(g(S.C_SOFT_NOISE, DEFAULT_SOFT_NOISE)) if g(S.C_SOFT_NOISE_ON, True) else None,
        tokenizer=g(S.C_TOKENIZER, "model"), token_budget=g(S.C_TOKEN_BUDGET) or None,
        strata_column=g(S.C_STRATA) or None, reference_path=reference, reference_text=g(S.C_REFERENCE_TEXT) or "text",
        coverage_distance=float(g(S.C_COVERAGE_DISTANCE, 0.3)), leakage=g(S.C_LEAKAGE, "warn"),
        leakage_threshold=float(g(S.C_LEAKAGE_THRESHOLD, 0.95)), target_path=g(S.C_TARGET) or None,
        target_text=g(S.C_TARGET_TEXT) or "text", cluster_choice=g(S.C_CLUSTER_CHOICE, DEFAULT_CLUSTER_CHOICE),
    )


def select_params(state: State, data) -> SelectParams:
    """SelectParams of the Budget page's settings on ``data`` (a MapData) with this session's
    pins and bans; raises SieveError."""
    sv = S.SessionView(state)
    return budget_settings(state).select_params(len(data.row_ids), sv.pins, sv.bans)


# -- Budget on the Ray engine -------------------------------------------------------------------

RAY_DEFAULTS = {"policy": "equal", "pick": "random"}  # until set: cheap on a corpus too large for memory
RAY_NOISE = ("include", "exclude")  # the unclustered rows' choices offered on Ray


def ray_choices() -> dict[str, tuple]:
    """What the Budget page offers on the Ray engine: {"pick": its pick methods (the pick
    registry says), "noise": RAY_NOISE}."""
    return {"pick": queries.engine_pick_names(RAY), "noise": RAY_NOISE}


def ray_budget_settings(state: State) -> BudgetSettings:
    """The Budget page's persisted values that the Ray engine runs (total rows, policy, noise,
    min/max per cluster, pick, seed) as one typed object; a pick or noise choice Ray does not
    offer reads as its default, and the other options stay at theirs (the engine refuses them:
    core.workflows.engine_limits)."""
    g, offered = state.get, ray_choices()
    pick = g(S.C_PICK, RAY_DEFAULTS["pick"])
    noise = g(S.C_NOISE, "include")
    return BudgetSettings(budget=None if g(S.C_BUDGET) is None else int(g(S.C_BUDGET)),
                          policy=g(S.C_POLICY, RAY_DEFAULTS["policy"]),
                          pick=pick if pick in offered["pick"] else RAY_DEFAULTS["pick"],
                          seed=int(g(S.C_SEED, 0)), noise=noise if noise in offered["noise"] else "include",
                          min_per_cluster=int(g(S.C_MIN, 0) or 0), max_per_cluster=int(g(S.C_MAX, 0) or 0),
                          # the local engine's recipe where Ray runs it, else the field's own default
                          soft_noise=workflows.recipe_default(RAY, "soft_noise_threshold", DEFAULT_SOFT_NOISE),
                          cluster_choice=workflows.recipe_default(RAY, "cluster_choice", DEFAULT_CLUSTER_CHOICE))


def ray_select_params(state: State, n_rows: int) -> SelectParams:
    """SelectParams of the Budget page's settings on a sharded map of ``n_rows`` rows, with this
    session's pins and bans, by the Budget page's rules (BudgetSettings.select_params); raises SieveError."""
    sv = S.SessionView(state)
    return ray_budget_settings(state).select_params(n_rows, sv.pins, sv.bans)
