"""The Budget and Export pages' depth widgets (AppTest, no browser): duplicates, pick
methods, soft noise, token budgets, strata, and 'this subset vs random'."""

from __future__ import annotations

import numpy as np

from core.selection import CLUSTER_CHOICES, DEFAULT_CLUSTER_CHOICE, DEFAULT_SOFT_NOISE
from pages import state as S
from tests.app_fixtures import map_env, no_errors, open_page, small_map, metric_value  # noqa: F401


def _vs_random(at):
    """The page's 'this subset vs random' table (metric -> this subset, random, ...)."""
    return next(d.value for d in at.dataframe if "this subset" in d.value.columns)


def test_budget_depth_widgets_reach_core_and_show_the_random_baseline(map_env):
    _, data = map_env
    at = open_page(S.PAGE_BUDGET, state={S.C_BUDGET: 60})
    no_errors(at)
    assert not _vs_random(at).empty  # subset vs random, from the first paint
    # the default recipe: soft noise on at 0 (every unclustered row joins its most likely cluster)
    assert at.checkbox(key=S.W_SOFT_NOISE_ON).value is True and at.slider(key=S.W_SOFT_NOISE).value == 0.0
    assert at.session_state[S.K_SELECT_PARAMS].soft_noise_threshold == DEFAULT_SOFT_NOISE
    # which clusters get a row when the budget cannot give each one: the widget reaches the params
    choice = at.selectbox(key=S.W_CLUSTER_CHOICE)
    assert choice.value == DEFAULT_CLUSTER_CHOICE and set(choice.options) == set(CLUSTER_CHOICES)
    other = next(c for c in CLUSTER_CHOICES if c != DEFAULT_CLUSTER_CHOICE)
    choice.set_value(other).run()
    no_errors(at)
    assert at.session_state[S.K_SELECT_PARAMS].cluster_choice == other
    at.selectbox(key=S.W_DEDUP).set_value("exact").run()
    at.selectbox(key=S.W_PICK).set_value("facility").run()
    at.checkbox(key=S.W_SOFT_NOISE_ON).check().run()
    at.slider(key=S.W_SOFT_NOISE).set_value(0.05).run()
    no_errors(at)
    params = at.session_state[S.K_SELECT_PARAMS]
    assert (params.dedup, params.pick, params.soft_noise_threshold) == ("exact", "facility", 0.05)
    sel = at.session_state[S.K_SELECTION]["selection"]
    assert len(sel) == 60 and set(sel.reasons) <= {"facility"}
    assert int(metric_value(at, "Duplicate groups")) == sel.stats["groups"]
    assert int(metric_value(at, "Rows moved out of noise")) == sel.stats["soft_noise_moved"]
    metrics = at.session_state[S.K_SELECTION]["metrics"]
    assert metrics.random and metrics.facility is not None and metrics.n_random == 5
    row = _vs_random(at).loc["facility-location value ↑"]
    assert (row["this subset"], row["random"]) == (round(metrics.facility, 4), round(metrics.random["facility"], 4))

    at.selectbox(key=S.W_PICK).set_value("mmr").run()
    at.slider(key=S.W_MMR_LAMBDA).set_value(0.2).run()
    no_errors(at)
    assert at.session_state[S.K_SELECT_PARAMS].mmr_lambda == 0.2


def test_budget_in_tokens_never_overshoots(map_env):
    at = open_page(S.PAGE_BUDGET)
    at.radio(key=S.W_UNIT).set_value("tokens").run()
    at.selectbox(key=S.W_TOKENIZER).set_value("words").run()
    no_errors(at)
    assert at.radio(key=S.W_MODE).options == ["Automatic", "Table"]  # sliders are rows
    at.number_input(key=S.W_TOKEN_BUDGET).set_value(700).run()
    no_errors(at)
    sel = at.session_state[S.K_SELECTION]["selection"]
    used = int(metric_value(at, "Tokens used"))
    assert used == int(sel.tokens.sum()) <= 700 and metric_value(at, "Token budget") == "700"
    assert at.session_state[S.K_SELECT_PARAMS].budget_unit == "tokens"


def test_budget_strata_and_export_with_duplicates(map_env, tmp_path, monkeypatch):
    _, data = map_env
    monkeypatch.setenv("SIEVE_EXPORT_DIR", str(tmp_path))
    at = open_page(S.PAGE_BUDGET, state={S.C_BUDGET: 40, S.C_DEDUP: "exact"})
    at.selectbox(key=S.W_STRATA).set_value("source").run()
    no_errors(at)
    sel = at.session_state[S.K_SELECTION]["selection"]
    assert "strata" in sel.stats and len(sel) == 40
    at.switch_page(S.PAGE_EXPORT).run()
    no_errors(at)
    at.checkbox(key=S.W_INCLUDE_DUPLICATES).check().run()
    at.text_input(key=S.W_SAVE_PATH).set_value("depth.csv").run()
    at.button(key=S.W_SAVE).click().run()
    no_errors(at)
    import pyarrow.csv as pacsv

    t = pacsv.read_csv(tmp_path / "depth.csv")
    assert "sieve_group_size" in t.column_names
    n_dups = 0 if sel.duplicate_positions is None else len(sel.duplicate_positions)
    assert t.num_rows == 40 + n_dups
    reasons = t.column("sieve_reason").to_pylist()
    assert sum(r.startswith("duplicate-of:") for r in reasons) == n_dups
    assert np.all(np.asarray(t.column("sieve_group_size").to_pylist()) >= 1)
