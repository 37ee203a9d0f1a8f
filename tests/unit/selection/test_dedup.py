"""Selection depth: duplicate-aware budgets, facility/mmr/boundary/core picks, soft
noise, token budgets, strata, reference coverage and leakage, the random baseline,
and reproducing such a selection from its manifest.

Constructed data and fake encoders keep this fast; only the tokenizer test loads
the packaged model's tokenizer (not the model)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.selection.dedup import find_groups, normalize_text, text_key, text_keys
from core.stages.metrics import facility_score, selection_metrics
from core.nn import similar_pairs, unit
from core.selection import PICKS, REGISTRY, VECTOR_PICKS, SelectParams, pick_facility, select

# the joint picks (facility-global, facility-balanced) are refused with token budgets (tested in
# test_quality_options and test_coverage): the other picks take them
TOKEN_BUDGET_PICKS = tuple(p for p in PICKS if REGISTRY[p].joint is None)
from core.store.workspace import SieveError
from tests.fakes import blobs_on_sphere

HYP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _blob_cluster(n=200, dim=12, seed=0):
    """One cluster of ``n`` unit vectors scattered around one direction."""
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal(dim)
    return blobs_on_sphere([centre], [n], spread=0.6, seed=seed), centre / np.linalg.norm(centre)


# -- pick methods: each one's defining property ---------------------------------------------------


def test_facility_beats_random_on_the_facility_objective():
    centres = np.eye(8)[:6] + 0.05
    v = blobs_on_sphere(centres, [200, 60, 20, 10, 6, 4], spread=0.15, seed=2)
    labels = np.zeros(len(v), int)
    row_ids = np.arange(len(v))
    fac = select(labels, row_ids, SelectParams(budget=6, pick="facility"), vectors=v)
    assert fac.reasons == ["facility"] * 6
    clients = np.arange(len(v))
    f_fac = facility_score(v, fac.positions, clients)
    f_rand = [facility_score(v, select(labels, row_ids, SelectParams(budget=6, pick="random", seed=s)).positions,
                             clients) for s in range(10)]
    assert f_fac > max(f_rand)
    # greedy picks the biggest blob first (largest marginal gain), then mostly new blobs
    blob = np.repeat(np.arange(6), [200, 60, 20, 10, 6, 4])
    assert blob[fac.positions[0]] == 0
    assert len(set(blob[fac.positions].tolist())) >= 5


def test_facility_lazy_greedy_equals_plain_greedy():
    v, _ = _blob_cluster(120, seed=4)
    cands = np.arange(120)
    lazy = pick_facility(cands, 15, v, cands)
    # plain greedy: recompute every gain every step
    sims = np.maximum(unit(v) @ unit(v).T, 0)
    cur, plain = np.zeros(120), []
    for _ in range(15):
        gains = np.maximum(sims - cur[None, :], 0).sum(axis=1)
        gains[plain] = -1
        best = int(np.argmax(gains))
        plain.append(best)
        cur = np.maximum(cur, sims[best])
    assert lazy.tolist() == plain


def test_facility_on_a_sampled_big_cluster_is_deterministic_and_covers():
    v = blobs_on_sphere(np.eye(16)[:4] + 0.1, [3000, 1000, 500, 500], spread=0.2, seed=5)
    cands = np.arange(len(v))
    a = pick_facility(cands, 8, v, cands, seed=3, max_clients=300, max_candidates=1000)
    b = pick_facility(cands, 8, v, cands, seed=3, max_clients=300, max_candidates=1000)
    assert a.tolist() == b.tolist()
    blob = np.repeat(np.arange(4), [3000, 1000, 500, 500])
    assert set(blob[a].tolist()) == {0, 1, 2, 3}


def test_mmr_lambda_one_is_top_relevance_and_small_lambda_spreads_out():
    v, centre = _blob_cluster(150, seed=1)
    labels = np.zeros(150, int)
    row_ids = np.arange(150) + 1000
    top = select(labels, row_ids, SelectParams(budget=10, pick="mmr", mmr_lambda=1.0), vectors=v)
    core = select(labels, row_ids, SelectParams(budget=10, pick="core"), vectors=v)
    assert top.row_ids.tolist() == core.row_ids.tolist()  # relevance = similarity to the centre
    # with a score column as the relevance, lambda=1 is the score order
    scores = np.random.default_rng(0).uniform(size=150)
    by_score = select(labels, row_ids, SelectParams(budget=10, pick="mmr", mmr_lambda=1.0, score_column="q"),
                      vectors=v, scores=scores)
    assert by_score.positions.tolist() == np.argsort(-scores)[:10].tolist()

    def min_pair_distance(pos):
        u = unit(v[pos])
        d = 1 - u @ u.T
        return d[np.triu_indices(len(pos), 1)].min()

    spread = select(labels, row_ids, SelectParams(budget=10, pick="mmr", mmr_lambda=0.1), vectors=v)
    assert min_pair_distance(spread.positions) > 1.5 * min_pair_distance(top.positions)
    assert spread.reasons == ["mmr"] * 10


def test_boundary_picks_far_from_the_centre_and_core_near_it():
    v, _ = _blob_cluster(200, seed=3)
    labels = np.zeros(200, int)
    row_ids = np.arange(200)
    u = unit(v)
    centre = u.mean(0) / np.linalg.norm(u.mean(0))
    d = np.linalg.norm(u - centre, axis=1)
    far = select(labels, row_ids, SelectParams(budget=10, pick="boundary"), vectors=v)
    near = select(labels, row_ids, SelectParams(budget=10, pick="core"), vectors=v)
    assert sorted(far.positions.tolist()) == sorted(np.argsort(-d)[:10].tolist())
    assert sorted(near.positions.tolist()) == sorted(np.argsort(d)[:10].tolist())
    assert d[far.positions].min() > d[near.positions].max()
    assert far.reasons == ["boundary"] * 10 and near.reasons == ["core"] * 10
    # core is the centroid pick under its own name
    cen = select(labels, row_ids, SelectParams(budget=10, pick="centroid"), vectors=v)
    assert cen.positions.tolist() == near.positions.tolist()


# -- duplicates ---------------------------------------------------------------------------------


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


def test_near_duplicate_search_on_big_clusters_uses_neighbours_and_finds_the_copies():
    rng = np.random.default_rng(1)
    base = unit(rng.standard_normal((400, 24)))
    v = np.concatenate([base, unit(base[:50] + 0.01 * rng.standard_normal((50, 24)))])
    exact = set(zip(*similar_pairs(v, 0.95)))
    approx = set(zip(*similar_pairs(v, 0.95, exact_rows=100)))  # forces the neighbour-graph path
    assert exact == {(i, 400 + i) for i in range(50)}
    assert approx == exact


# -- soft noise ------------------------------------------------------------------------------------


def test_soft_noise_moves_the_rows_above_the_threshold():
    labels = np.array([0] * 10 + [1] * 10 + [-1] * 6)
    soft_labels = np.concatenate([labels[:20], [0, 1, 1, 0, 1, 0]])
    soft_strength = np.concatenate([np.ones(20), [0.9, 0.5, 0.05, 0.3, 0.31, 0.0]]).astype(np.float32)
    row_ids = np.arange(26)
    p = SelectParams(budget=26, soft_noise_threshold=0.3)
    sel = select(labels, row_ids, p, soft_labels=soft_labels, soft_strength=soft_strength)
    moved = {20: 0, 21: 1, 23: 0, 24: 1}
    for r, c in moved.items():
        assert sel.clusters[sel.row_ids == r][0] == c
    assert set(sel.row_ids[sel.clusters == -1].tolist()) == {22, 25}
    assert sel.stats["soft_noise_moved"] == 4
    assert sel.allocation == {-1: 2, 0: 12, 1: 12}
    assert any("4 unclustered row(s)" in note for note in sel.notes)
    assert sel.labels[20] == 0 and labels[20] == -1  # the map's own labels are not changed
    off = select(labels, row_ids, SelectParams(budget=26), soft_labels=soft_labels, soft_strength=soft_strength)
    assert off.allocation == {-1: 6, 0: 10, 1: 10} and "soft_noise_moved" not in off.stats
    # noise='exclude' now excludes only the rows that stayed unclustered
    ex = select(labels, row_ids, SelectParams(budget=20, soft_noise_threshold=0.3, noise="exclude"),
                soft_labels=soft_labels, soft_strength=soft_strength)
    assert ex.allocation == {-1: 0, 0: 10, 1: 10}
    assert {20, 21, 23, 24} & set(ex.row_ids.tolist())


# -- token budgets -----------------------------------------------------------------------------------


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


def test_tokenizer_counts_with_the_models_tokenizer_and_words():
    from core.selection.tokens import count_tokens

    texts = ["hello world", "Tokenization isn't trivial!", "  three   short words "]
    assert count_tokens(texts, "words").tolist() == [2, 3, 3]
    counts = count_tokens(texts, "model")
    assert counts[0] == 2  # 'hello', 'world' (no [CLS]/[SEP])
    assert counts[1] > 3  # word pieces and punctuation
    long = count_tokens(["word " * 1000], "model")
    assert long[0] == 1000  # no truncation at the model's 256-token window


# -- strata ------------------------------------------------------------------------------------------


def test_strata_split_each_cluster_and_respect_cell_quotas():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], [120, 80])
    strata = np.concatenate([rng.choice(["forum", "docs", "crowd"], 120, p=[0.8, 0.15, 0.05]),
                             rng.choice(["forum", "docs"], 80, p=[0.5, 0.5])])
    row_ids = np.arange(200)
    p = SelectParams(budget=40, policy="equal", strata_column="source")
    sel = select(labels, row_ids, p, strata=strata)
    assert sel.allocation == {0: 20, 1: 20}
    cells = sel.stats["strata"]
    for c in ("0", "1"):
        assert sum(cells[c].values()) == 20
        got = {s: int(((sel.clusters == int(c)) & (strata[sel.positions] == s)).sum()) for s in cells[c]}
        assert got == cells[c]
    n_crowd = int(((labels == 0) & (strata == "crowd")).sum())
    assert cells["0"]["crowd"] == min(n_crowd, 7)  # equal across the three cells, or all the small one has
    # caps per cell, floors per cell
    capped = select(labels, row_ids, dataclasses.replace(p, strata_bounds={"forum": (None, 4), "docs": (3, None)}),
                    strata=strata)
    for c, cell in capped.stats["strata"].items():
        assert cell["forum"] <= 4 and cell["docs"] >= 3
    # the interleaved output order: rank 1 of every cell first
    first = sel.positions[sel.clusters == 1][:2]
    assert set(strata[first].tolist()) == {"forum", "docs"}
    # an infeasible floor names strata_bounds
    with pytest.raises(SieveError, match="strata_bounds"):
        select(labels, row_ids, dataclasses.replace(p, budget=4, strata_bounds={"forum": (5, None)}), strata=strata)


# -- leakage and reference coverage ---------------------------------------------------------------------


def test_leakage_check_catches_planted_near_copies_of_eval_rows():
    rng = np.random.default_rng(3)
    v = unit(rng.standard_normal((300, 32)))
    labels = rng.integers(0, 3, 300)
    row_ids = np.arange(300)
    evals = unit(rng.standard_normal((40, 32)))
    planted = [7, 50, 120, 299]
    v[planted] = unit(evals[:4] + 0.02 * rng.standard_normal((4, 32)))
    p = SelectParams(budget=300, reference_path="eval.jsonl", leakage="warn")
    warn = select(labels, row_ids, p, vectors=v, reference_vectors=evals)
    assert warn.stats["leaked_row_ids"] == planted and len(warn) == 300
    assert any("4 row(s)" in note for note in warn.notes)
    drop = select(labels, row_ids, dataclasses.replace(p, budget=296, leakage="drop", pins=(50,)), vectors=v,
                  reference_vectors=evals)
    assert not {7, 120, 299} & set(drop.row_ids.tolist()) and 50 in drop.row_ids  # pins win
    assert drop.stats["leaked_dropped"] == 3
    with pytest.raises(SieveError, match="reference_path"):
        SelectParams(budget=5, leakage="drop")


def test_reference_coverage_and_the_random_baseline():
    centres = np.eye(10)
    v = blobs_on_sphere(centres, [500] + [10] * 9, spread=0.1, seed=1)
    labels = np.repeat(np.arange(10), [500] + [10] * 9)
    reference = blobs_on_sphere(centres, [3] * 10, spread=0.1, seed=9)  # 3 rows near every blob
    chosen = select(labels, np.arange(len(v)), SelectParams(budget=20, policy="equal")).positions
    m = selection_metrics(labels, chosen, v, reference=reference, coverage_distance=0.3, n_random=5)
    assert m.coverage == 1.0 and m.reference_coverage == 1.0
    assert m.n_random == 5 and set(m.random) >= {"coverage", "jsd", "nn_distance", "facility", "dup_rate",
                                                 "reference_coverage"}
    assert m.random["reference_coverage"] < 0.8 and m.random["coverage"] < 1.0
    rows = {r["key"]: r for r in m.comparison()}
    assert rows["coverage"]["better"] == "subset" and rows["reference_coverage"]["better"] == "subset"
    assert rows["jsd"]["better"] == "random"  # balanced is far from the skewed full mix: by design
    d = json.loads(json.dumps(m.to_dict()))
    assert d["random"]["coverage"] == m.random["coverage"] and d["comparison"]


def test_duplicate_rate_counts_exact_and_near_twins():
    rng = np.random.default_rng(0)
    v = unit(rng.standard_normal((10, 16)))
    v[1] = v[0]  # near (identical vectors)
    keys = np.arange(10)
    keys[5] = keys[4]  # exact (same normalised text, different vectors)
    m = selection_metrics(np.zeros(10, int), np.arange(10), v, keys=keys, n_random=0)
    assert m.dup_rate == pytest.approx(0.4)
    m2 = selection_metrics(np.zeros(10, int), np.array([0, 2, 3, 4]), v, keys=keys, n_random=0)
    assert m2.dup_rate == 0.0


# -- validation ----------------------------------------------------------------------------------------


def test_depth_inputs_missing_name_what_is_needed():
    labels, row_ids = np.zeros(5, int), np.arange(5)
    for pick in VECTOR_PICKS:
        with pytest.raises(SieveError, match="vectors"):
            select(labels, row_ids, SelectParams(budget=2, pick=pick))
    with pytest.raises(SieveError, match="texts"):
        select(labels, row_ids, SelectParams(budget=2, dedup="exact"))
    with pytest.raises(SieveError, match="vectors"):
        select(labels, row_ids, SelectParams(budget=2, dedup="near"), texts=["a"] * 5)
    with pytest.raises(SieveError, match="strata_column"):
        select(labels, row_ids, SelectParams(budget=2, strata_column="src"))
    with pytest.raises(SieveError, match="reference"):
        select(labels, row_ids, SelectParams(budget=2, reference_path="x", leakage="warn"))
    with pytest.raises(SieveError, match="strata_bounds"):
        SelectParams(budget=2, strata_bounds={"a": (1, 2)})
    p = SelectParams(budget=9, dedup="near", near_dup_threshold=0.9, pick="facility", mmr_lambda=0.2,
                     soft_noise_threshold=0.1, budget_unit="tokens", tokenizer="words", strata_column="source",
                     strata_bounds={"docs": (1, None)}, reference_path="/x/eval.jsonl", reference_text="q",
                     coverage_distance=0.2, leakage="drop", leakage_threshold=0.9)
    assert SelectParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    with pytest.raises(SieveError, match="unknown"):
        SelectParams.from_dict({**p.to_dict(), "future_knob": 1})
