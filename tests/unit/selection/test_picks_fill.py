"""core.selection.picks.fill: token budgets (rows that would overshoot the capacity left are
skipped), over every pick that takes them.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.selection import PICKS, REGISTRY, SelectParams, select
from core.store.workspace import SieveError


# the joint picks (facility-global, facility-balanced) are refused with token budgets (tested in
# test_facility_global and test_coverage): the other picks take them
TOKEN_BUDGET_PICKS = tuple(p for p in PICKS if REGISTRY[p].joint is None)


@st.composite
def token_case(draw):
    n = draw(st.integers(1, 50))
    labels = np.array(draw(st.lists(st.integers(-1, 3), min_size=n, max_size=n)))
    tokens = np.array(draw(st.lists(st.integers(0, 40), min_size=n, max_size=n)))
    row_ids = np.arange(n) * 7
    flags = draw(st.lists(st.sampled_from(["", "", "", "", "pin", "ban"]), min_size=n, max_size=n))
    pins = tuple(int(r) for r, f in zip(row_ids, flags) if f == "pin")
    bans = tuple(int(r) for r, f in zip(row_ids, flags) if f == "ban")
    p = SelectParams(
        budget=draw(st.integers(1, 400)), budget_unit="tokens", pick=draw(st.sampled_from(TOKEN_BUDGET_PICKS)),
        policy=draw(st.sampled_from(["equal", "proportional", "sqrt"])), pins=pins, bans=bans,
        min_per_cluster=draw(st.sampled_from([0, 0, 10])), max_per_cluster=draw(st.sampled_from([None, None, 30])),
        noise=draw(st.sampled_from(["include", "exclude", 15])), seed=draw(st.integers(0, 3)),
        score_column="q", mmr_lambda=draw(st.floats(0, 1)),
        strata_column=draw(st.sampled_from([None, "s"])), dedup=draw(st.sampled_from(["none", "exact"])),
    )
    rng = np.random.default_rng(draw(st.integers(0, 100)))
    strata = rng.choice(["a", "b"], n)
    texts = [f"text {i % 9}" for i in range(n)]
    return labels, row_ids, tokens, p, rng.standard_normal((n, 5)).astype(np.float32), rng.uniform(size=n), \
        strata, texts


@given(token_case())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_token_budgets_never_overshoot(case):
    labels, row_ids, tokens, p, vectors, scores, strata, texts = case
    try:
        sel = select(labels, row_ids, p, vectors=vectors, scores=scores, token_counts=tokens, strata=strata,
                     texts=texts)
    except SieveError as exc:
        assert "budget" in str(exc)  # pins/floors need more tokens than the budget
        return
    used = int(tokens[sel.positions].sum())
    assert used <= p.budget
    assert sel.tokens.tolist() == tokens[sel.positions].tolist()
    assert sel.stats["tokens_used"] == used
    assert set(p.pins) <= set(sel.row_ids.tolist())
    assert not set(p.bans) & set(sel.row_ids.tolist())
    for c in set(labels.tolist()):
        assert int(tokens[sel.positions[sel.clusters == c]].sum()) <= sel.allocation[c]  # per cluster too
    assert len(set(sel.positions.tolist())) == len(sel)


def test_token_budget_greedy_fill_skips_rows_that_do_not_fit():
    labels = np.zeros(5, int)
    row_ids = np.arange(5)
    scores = np.array([5.0, 4, 3, 2, 1])
    tokens = np.array([6, 5, 3, 2, 9])
    sel = select(labels, row_ids, SelectParams(budget=10, pick="score", score_column="q", budget_unit="tokens"),
                 scores=scores, token_counts=tokens)
    assert sel.row_ids.tolist() == [0, 2]  # 6 fits, 5 would overshoot (11), 3 fits (9), 2 would (11), 9 would
    assert sel.allocation == {0: 10} and sel.stats["tokens_used"] == 9
    # proportional on token mass: a cluster with 3x the tokens gets 3x the budget
    labels = np.repeat([0, 1], [10, 10])
    tok = np.concatenate([np.full(10, 30), np.full(10, 10)])
    sel = select(labels, np.arange(20), SelectParams(budget=120, policy="proportional", budget_unit="tokens"),
                 token_counts=tok)
    assert sel.allocation == {0: 90, 1: 30}
    with pytest.raises(SieveError, match="token"):
        select(labels, np.arange(20), SelectParams(budget=10, budget_unit="tokens"))
