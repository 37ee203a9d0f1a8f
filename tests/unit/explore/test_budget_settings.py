"""core.budget_settings: the Budget page's settings -> SelectParams rules (no Streamlit)."""

from __future__ import annotations

import pytest

from core.budget_settings import BudgetSettings, default_budget
from core.selection import DEFAULT_SOFT_NOISE
from core.store.workspace import SieveError


@pytest.mark.parametrize("n, want", [(0, 1), (1, 1), (7, 7), (10, 10), (11, 1), (95, 10), (1234, 100), (3000, 300),
                                     (56_789, 6000)])
def test_default_budget_is_about_a_tenth_rounded(n, want):
    assert default_budget(n) == want
    assert 1 <= default_budget(n) <= max(1, n)


def test_defaults_give_a_tenth_of_the_rows_and_no_constraints():
    p = BudgetSettings().select_params(3000)
    assert p.budget == 300 and p.budget_unit == "rows" and p.noise == "include"
    assert p.overrides == {} and p.bounds == {} and p.max_per_cluster is None
    assert p.leakage == "off" and p.reference_path is None and p.score_column is None


def test_row_budget_never_exceeds_the_map_but_tokens_may():
    assert BudgetSettings(budget=500).select_params(120).budget == 120
    p = BudgetSettings(unit="tokens", token_budget=10_000, budget=5).select_params(120)
    assert p.budget == 10_000 and p.budget_unit == "tokens"
    assert BudgetSettings(unit="tokens").select_params(120).budget == 1  # no token budget yet: at least 1


def test_sliders_sum_is_the_total_plus_an_own_noise_budget():
    s = BudgetSettings(budget=99, mode="Sliders", sliders={0: 5, 1: 7}, noise="own budget", noise_budget=3)
    p = s.select_params(1000)
    assert p.overrides == {0: 5, 1: 7} and p.noise == 3 and p.budget == 15
    with_noise_slider = BudgetSettings(mode="Sliders", sliders={-1: 2, 0: 5}, noise="own budget", noise_budget=3)
    assert with_noise_slider.select_params(1000).budget == 7  # noise has its own slider: counted once
    assert BudgetSettings(mode="Sliders", sliders={0: 0}).select_params(1000).budget == 1


def test_tokens_have_no_sliders():
    s = BudgetSettings(unit="tokens", token_budget=800, mode="Sliders", sliders={0: 5})
    assert s.effective_mode() == "Automatic"
    p = s.select_params(1000)
    assert p.overrides == {} and p.budget == 800


def test_table_gives_overrides_and_bounds():
    s = BudgetSettings(budget=50, mode="Table", table={0: (None, None, 4), 1: (2, None, None), 2: (None, 9, None)})
    p = s.select_params(1000)
    assert p.overrides == {0: 4} and p.bounds == {1: (2, None), 2: (None, 9)} and p.budget == 50
    assert BudgetSettings(mode="Automatic", table={0: (1, 2, 3)}).select_params(1000).bounds == {}


def test_score_column_only_for_the_picks_that_read_one():
    assert BudgetSettings(pick="score", score_column="q").select_params(100).score_column == "q"
    assert BudgetSettings(pick="mmr", score_column="q", relevance=None).select_params(100).score_column is None
    assert BudgetSettings(pick="mmr", relevance="q").select_params(100).score_column == "q"
    assert BudgetSettings(pick="random", score_column="q").select_params(100).score_column is None


def test_leakage_needs_a_reference_set_and_paths_are_stripped():
    assert BudgetSettings(leakage="drop").select_params(100).leakage == "off"
    p = BudgetSettings(leakage="drop", reference_path="  ref.csv ", target_path=" ").select_params(100)
    assert p.leakage == "drop" and p.reference_path == "ref.csv" and p.target_path is None


def test_pins_and_bans_are_sorted_ids_and_soft_noise_is_optional():
    p = BudgetSettings(soft_noise=0.2, max_per_cluster=0).select_params(100, pins={5, 2}, bans=[9])
    assert p.pins == (2, 5) and p.bans == (9,) and p.soft_noise_threshold == 0.2 and p.max_per_cluster is None
    # the default recipe joins every unclustered row (DEFAULT_SOFT_NOISE); None turns it off
    assert BudgetSettings().select_params(100).soft_noise_threshold == DEFAULT_SOFT_NOISE == 0.0
    assert BudgetSettings(soft_noise=None).select_params(100).soft_noise_threshold is None


def test_bad_values_are_refused_by_select_params():
    with pytest.raises(SieveError):
        BudgetSettings(policy="nonsense").select_params(100)
