"""Duplicate-aware selection (core.selection.dedup): text normalisation, exact and near
duplicate groups, budgets that count groups rather than rows, and the duplicates listed for export.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.selection.dedup import find_groups, normalize_text, text_key, text_keys
from core.nn import unit
from core.selection import PICKS, REGISTRY, SelectParams, select
from core.store.workspace import SieveError
from tests.fakes import blobs_on_sphere


HYP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# the joint picks (facility-global, facility-balanced) are refused with token budgets (tested in
# test_facility_global and test_coverage): the other picks take them
TOKEN_BUDGET_PICKS = tuple(p for p in PICKS if REGISTRY[p].joint is None)


def test_text_normalisation():
    assert normalize_text("  Hello,\n\tWORLD!!  ") == "hello, world"
    assert text_key("Hello world.") == text_key('"hello   WORLD"') == text_key("hello world")
    assert text_key("hello world") != text_key("hello there world")
    assert normalize_text("Ｆｕｌｌ width") == "full width"  # NFKC
    assert normalize_text(None) == ""


@st.composite
def dedup_case(draw):
    n = draw(st.integers(2, 60))
    labels = np.array(draw(st.lists(st.integers(-1, 3), min_size=n, max_size=n)))
    n_texts = draw(st.integers(1, n))
    texts = [f"Text number {draw(st.integers(0, n_texts - 1))}" + draw(st.sampled_from(["", "!", "  ", "."]))
             for _ in range(n)]
    row_ids = np.array(draw(st.lists(st.integers(0, 10_000), min_size=n, max_size=n, unique=True)))
    flags = draw(st.lists(st.sampled_from(["", "", "", "pin", "ban"]), min_size=n, max_size=n))
    pins = tuple(int(r) for r, f in zip(row_ids, flags) if f == "pin")
    bans = tuple(int(r) for r, f in zip(row_ids, flags) if f == "ban")
    unit_ = draw(st.sampled_from(["rows", "tokens"]))
    pick = draw(st.sampled_from(PICKS if unit_ == "rows" else TOKEN_BUDGET_PICKS))
    budget = draw(st.integers(1, n if unit_ == "rows" else 5 * n))
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    return dict(labels=labels, texts=texts, row_ids=row_ids, pins=pins, bans=bans, pick=pick, unit=unit_,
                budget=budget, vectors=rng.standard_normal((n, 6)).astype(np.float32),
                scores=rng.uniform(size=n), tokens=rng.integers(1, 9, n))


@given(dedup_case())
@HYP
def test_dedup_never_selects_two_members_of_one_group(case):
    p = SelectParams(budget=case["budget"], pick=case["pick"], dedup="exact", pins=case["pins"], bans=case["bans"],
                     score_column="q" if case["pick"] == "score" else None, budget_unit=case["unit"],
                     noise="include")
    try:
        sel = select(case["labels"], case["row_ids"], p, vectors=case["vectors"], scores=case["scores"],
                     texts=case["texts"], token_counts=case["tokens"])
    except SieveError as exc:
        assert "budget" in str(exc)  # only infeasible pins
        return
    keys = text_keys(case["texts"])
    chosen_keys = keys[sel.positions]
    pinned = np.isin(sel.row_ids, case["pins"])
    unpinned_keys = chosen_keys[~pinned]
    assert len(set(unpinned_keys.tolist())) == len(unpinned_keys)  # one row per group...
    assert not set(unpinned_keys.tolist()) & set(chosen_keys[pinned].tolist())  # ...and none beside a pinned one
    assert set(case["pins"]) <= set(sel.row_ids.tolist())
    assert not set(case["bans"]) & set(sel.row_ids.tolist())
    # group sizes: how many rows share the chosen row's normalised text
    for k, size in zip(chosen_keys, sel.group_sizes):
        assert size == int((keys == k).sum())
    # the duplicates listed for export: unchosen, unbanned members of the chosen rows' groups
    dup_keys = keys[sel.duplicate_positions]
    assert set(dup_keys.tolist()) <= set(chosen_keys.tolist())
    assert not set(sel.duplicate_row_ids.tolist()) & (set(sel.row_ids.tolist()) | set(case["bans"]))
    for r, of in zip(sel.duplicate_row_ids, sel.duplicate_of):
        i, j = np.searchsorted(np.sort(case["row_ids"]), [r, of])
        order = np.argsort(case["row_ids"])
        assert keys[order[i]] == keys[order[j]]
    if case["unit"] == "tokens":
        assert int(case["tokens"][sel.positions].sum()) <= p.budget


def test_dedup_allocation_counts_groups_not_rows():
    # cluster 0: 100 rows but only 5 distinct texts; cluster 1: 20 distinct rows
    texts = [f"repeated prompt {i % 5}" for i in range(100)] + [f"unique prompt {i}" for i in range(20)]
    labels = np.repeat([0, 1], [100, 20])
    row_ids = np.arange(120)
    plain = select(labels, row_ids, SelectParams(budget=20, policy="proportional"))
    assert plain.allocation == {0: 17, 1: 3}
    dd = select(labels, row_ids, SelectParams(budget=20, policy="proportional", dedup="exact"), texts=texts)
    assert dd.allocation == {0: 4, 1: 16}  # 5 groups vs 20: proportional on groups
    eq = select(labels, row_ids, SelectParams(budget=20, policy="equal", dedup="exact"), texts=texts)
    assert eq.allocation == {0: 5, 1: 15}  # cluster 0 has only 5 groups to give
    assert sorted(eq.group_sizes[eq.clusters == 0].tolist()) == [20] * 5
    assert set(eq.row_ids[eq.clusters == 0].tolist()) == {0, 1, 2, 3, 4}  # representative: lowest row id
    assert len(eq.duplicate_positions) == 95
    assert any("95 duplicate row(s)" in note for note in eq.notes)


def test_near_duplicates_collapse_inside_a_cluster():
    rng = np.random.default_rng(0)
    base = blobs_on_sphere(rng.standard_normal((2, 32)), [60, 60], spread=0.5, seed=1)
    # plant 3 near-copies of rows 0..9 (cosine ~0.99) in cluster 0
    copies = np.concatenate([unit(base[:10] + 0.01 * rng.standard_normal((10, 32))) for _ in range(3)])
    v = np.concatenate([base, copies])
    labels = np.concatenate([np.repeat([0, 1], 60), np.zeros(30, int)])
    row_ids = np.arange(len(v))
    texts = [f"t{i}" for i in range(len(v))]
    groups = find_groups(labels, keys=text_keys(texts), vectors=v, near=True, threshold=0.95)
    for j in range(10):
        members = np.nonzero(groups == groups[j])[0]
        assert sorted(members.tolist()) == [j, 120 + j, 130 + j, 140 + j]
    assert len(np.unique(groups)) == 120
    sel = select(labels, row_ids, SelectParams(budget=120, dedup="near"), vectors=v, texts=texts)
    assert len(sel) == 120  # every group once, never a copy
    assert not set(sel.row_ids.tolist()) & set(range(120, 150))
    assert sorted(sel.group_sizes.tolist()).count(4) == 10
    # 'exact' alone does not see them; a stricter threshold neither
    assert len(np.unique(find_groups(labels, keys=text_keys(texts)))) == 150
    assert len(np.unique(find_groups(labels, vectors=v, near=True, threshold=0.9999))) == 150
