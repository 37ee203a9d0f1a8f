"""core.explore: shapes -> masks, selection events, sampling, search, helpers."""

from __future__ import annotations

import numpy as np
import pytest

from core import explore as ex
from core import explore_files as exf
from core.explore import draw_sample, ids_in, points_in_lasso, selection_summary


def _naive_pip(xy, xs, ys):
    """Textbook even-odd ray casting, one edge at a time over all points."""
    x, y = xy[:, 0].astype(float), xy[:, 1].astype(float)
    inside = np.zeros(len(x), bool)
    j = len(xs) - 1
    for i in range(len(xs)):
        xi, yi, xj, yj = xs[i], ys[i], xs[j], ys[j]
        if yi != yj:
            inside ^= ((yi > y) != (yj > y)) & (x < xi + (y - yi) * (xj - xi) / (yj - yi))
        j = i
    return inside


def _star(n_vertices=100, r0=1.5, amp=0.5, lobes=5):
    t = np.linspace(0, 2 * np.pi, n_vertices, endpoint=False)
    r = r0 + amp * np.sin(lobes * t)
    return r * np.cos(t), r * np.sin(t)


def test_points_in_box_any_corner_order():
    xy = np.array([[0, 0], [1, 1], [2, 2], [0.5, 1.5]], dtype=np.float32)
    m = ex.points_in_box(xy, 1.6, -0.1, 1.6, -0.1)
    assert m.tolist() == [True, True, False, True]


def test_points_in_lasso_square_and_triangle():
    xy = np.array([[0.5, 0.5], [1.2, 0.5], [0.1, 0.9], [-0.1, 0.5]])
    sq = ex.points_in_lasso(xy, [0, 1, 1, 0], [0, 0, 1, 1])
    assert sq.tolist() == [True, False, True, False]
    tri = ex.points_in_lasso(xy, [0, 2, 0], [0, 0, 2])
    assert tri.tolist() == [True, True, True, False]


def test_points_in_lasso_matches_reference_on_random_polygons():
    rng = np.random.default_rng(1)
    xy = rng.normal(size=(20_000, 2)).astype(np.float32)
    for k in range(20):
        nv = int(rng.integers(3, 60))
        xs, ys = rng.normal(size=nv) * 1.5, rng.normal(size=nv) * 1.5  # self-intersecting too
        assert np.array_equal(ex.points_in_lasso(xy, xs, ys), _naive_pip(xy, xs, ys)), k
    xs, ys = _star()
    assert np.array_equal(ex.points_in_lasso(xy, xs, ys), _naive_pip(xy, xs, ys))


def test_points_in_lasso_degenerate():
    xy = np.zeros((5, 2))
    assert not ex.points_in_lasso(xy, [0, 1], [0, 1]).any()  # fewer than 3 vertices
    assert not ex.points_in_lasso(np.zeros((0, 2)), [0, 1, 1], [0, 0, 1]).any()
    assert not ex.points_in_lasso(xy + 5, [0, 1, 1], [0, 0, 1]).any()  # all outside the bbox
    with pytest.raises(ValueError):
        ex.points_in_lasso(np.zeros(5), [0, 1, 1], [0, 0, 1])


def test_points_in_lasso_at_one_million_rows_matches_the_box():
    """A rectangular lasso over 1M points selects exactly what the same box selects
    (timing is measured in bench/, not here)."""
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(1_000_000, 2)).astype(np.float32)
    xs, ys = [-0.5, 1.25, 1.25, -0.5], [-1.0, -1.0, 0.75, 0.75]
    lasso = ex.points_in_lasso(xy, xs, ys)
    box = ex.points_in_box(xy, -0.5, 1.25, -1.0, 0.75)
    on_edge = np.isin(xy[:, 0], [-0.5, 1.25]) | np.isin(xy[:, 1], [-1.0, 0.75])
    assert np.array_equal(lasso[~on_edge], box[~on_edge])
    assert 100_000 < lasso.sum() < 600_000

def _grid(n=50):
    g = np.stack(np.meshgrid(np.arange(n), np.arange(n)), -1).reshape(-1, 2).astype(np.float32)
    return g


def test_selection_mask_box_union_and_all_rows():
    xy = _grid()
    event = {"selection": {"points": [{"customdata": 0}], "box": [
        {"x": [0.5, 2.5], "y": [0.5, 1.5]}, {"x": [10, 11], "y": [10, 10]}], "lasso": []}}
    m = ex.selection_mask(event, xy)
    want = ex.points_in_box(xy, 0.5, 2.5, 0.5, 1.5) | ex.points_in_box(xy, 10, 11, 10, 10)
    assert np.array_equal(m, want)
    assert m.sum() == 2 + 2  # (1,1),(2,1) and (10,10),(11,10); the clicked point is ignored with shapes


def test_selection_mask_lasso_and_allowed():
    xy = _grid(20)
    lasso = {"x": [0, 5, 5, 0], "y": [0, 0, 5, 5]}
    m = ex.selection_mask({"selection": {"lasso": [lasso]}}, xy)
    assert np.array_equal(m, ex.points_in_lasso(xy, lasso["x"], lasso["y"]))
    allowed = xy[:, 0] < 2
    m2 = ex.selection_mask({"lasso": [lasso]}, xy, allowed=allowed)  # bare selection dict works too
    assert np.array_equal(m2, m & allowed)


def test_selection_mask_points_via_customdata_or_traces():
    xy = _grid(5)
    ev = {"selection": {"points": [{"customdata": 3}, {"customdata": {"0": 7}}, {"customdata": [9]},
                                   {"curve_number": 1, "point_index": 1}], "box": [], "lasso": []}}
    m = ex.selection_mask(ev, xy, trace_positions=[np.array([0, 1]), np.array([20, 21])])
    assert np.nonzero(m)[0].tolist() == [3, 7, 9, 21]


def test_selection_mask_empty_and_malformed():
    xy = _grid(5)
    assert not ex.selection_mask(None, xy).any()
    assert not ex.selection_mask({}, xy).any()
    assert not ex.selection_mask({"selection": {"box": [{"x": [1]}], "lasso": [{"x": [1, 2], "y": [1]}]}}, xy).any()
    assert not ex.selection_mask({"selection": {"points": [{"customdata": "x"}, {"customdata": 999}]}}, xy).any()


# -- sampling --------------------------------------------------------------------------------


def test_draw_sample_all_rows_when_small():
    labels = np.array([0, 0, 1, -1])
    assert ex.draw_sample(labels, 10).tolist() == [0, 1, 2, 3]


def test_draw_sample_deterministic_bounded_and_keeps_small_clusters():
    rng = np.random.default_rng(0)
    labels = rng.integers(-1, 30, size=200_000)
    labels[:40] = 99  # a tiny cluster
    s1 = ex.draw_sample(labels, 10_000, seed=3)
    s2 = ex.draw_sample(labels, 10_000, seed=3)
    assert np.array_equal(s1, s2)
    assert len(s1) <= 10_000 and len(s1) >= 9_900
    assert np.all(np.diff(s1) > 0)
    assert (labels[s1] == 99).sum() == 40  # small cluster kept whole
    assert set(np.unique(labels[s1])) == set(np.unique(labels))
    s3 = ex.draw_sample(labels, 10_000, seed=4)
    assert not np.array_equal(s1, s3)


def test_draw_sample_many_clusters_stays_bounded():
    labels = np.repeat(np.arange(5000), 30)  # 150k rows, 5000 clusters
    s = ex.draw_sample(labels, 20_000)
    assert len(s) <= 20_000


# -- search and stats ------------------------------------------------------------------------


def test_text_search_literal_case_insensitive():
    texts = ["Hello World", "a.b*c", None, "(unbalanced", "HELLO"]
    assert ex.text_search(texts, "hello").tolist() == [True, False, False, False, True]
    assert ex.text_search(texts, ".b*").tolist() == [False, True, False, False, False]
    assert ex.text_search(texts, "(").tolist() == [False, False, False, True, False]
    assert not ex.text_search(texts, "").any()
    assert not ex.text_search(texts, "   ").any()


def test_selection_summary_and_cluster_table():
    labels = np.array([0, 0, 0, 1, 1, -1])
    s = ex.selection_summary(labels, np.array([True, True, False, True, False, False]), {0: "a", 1: "b"})
    assert s["rows"] == 3
    assert s["clusters"][0] == {"id": 0, "name": "a", "count": 2, "share": pytest.approx(2 / 3)}
    assert s["clusters"][1]["id"] == 1
    s2 = ex.selection_summary(labels, np.array([5, 0]), {})
    assert s2["rows"] == 2 and {c["id"] for c in s2["clusters"]} == {-1, 0}
    assert ex.selection_summary(labels, np.zeros(6, bool))["clusters"] == []
    rows = ex.cluster_table([{"id": 0, "name": "x", "keywords": ["k1", "k2"], "size": 3},
                             {"id": -1, "name": "unclustered", "keywords": [], "size": 1}])
    assert rows[0]["keywords"] == "k1, k2" and rows[0]["share"] == pytest.approx(0.75)


def test_ids_in_and_column_kinds():
    assert ex.ids_in(np.array([1, 3, 5, 7]), [5, 1, 42]).tolist() == [True, False, True, False]
    assert not ex.ids_in(np.array([1, 2]), []).any()
    kinds = exf.column_kinds({"text": "VARCHAR", "q": "DOUBLE", "n": "BIGINT", "v": "FLOAT[]", "s": "STRUCT(a INT)",
                             "sieve_text": "VARCHAR", "tags": "VARCHAR[]"})
    assert kinds == {"text": ["text"], "numeric": ["q", "n"], "vector": ["v"]}


# -- names and escaping ------------------------------------------------------------------------


def test_snippet_escapes_html():
    """(Markdown escaping is pages.common.esc, tested in app/test_rendering_app.py.)"""
    s = ex.snippet("<script>alert('x')</script>\n   more", 200)
    assert "<" not in s and "&lt;script&gt;" in s and "\n" not in s
    assert len(ex.snippet("y" * 500, 80)) <= 80


def test_ids_in_matches_a_plain_isin():
    rng = np.random.default_rng(0)
    sorted_ids = np.sort(rng.choice(10**6, 20_000, replace=False)).astype(np.int64)
    shuffled = rng.permutation(sorted_ids)
    for row_ids in (sorted_ids, shuffled):
        for ids in (rng.choice(row_ids, 3000), np.concatenate([rng.choice(row_ids, 50), [-5, 10**7]]),
                    np.zeros(0, np.int64)):
            want = np.isin(row_ids, ids)
            assert np.array_equal(ids_in(row_ids, ids), want)
            assert np.array_equal(ids_in(row_ids, ids.tolist()), want)


def test_selection_summary_and_draw_sample_match_plain_versions():
    rng = np.random.default_rng(1)
    labels = rng.integers(-1, 40, 50_000).astype(np.int32)
    mask = rng.random(50_000) < 0.2
    summ = selection_summary(labels, mask)
    ids, cnt = np.unique(labels[mask], return_counts=True)
    full = {int(c): int((labels == c).sum()) for c in ids}
    want = sorted(((int(c), int(k)) for c, k in zip(ids, cnt)), key=lambda t: (-t[1], t[0]))
    assert [(r["id"], r["count"]) for r in summ["clusters"]] == want
    assert all(r["share"] == r["count"] / full[r["id"]] for r in summ["clusters"])
    drawn = draw_sample(labels, 5000, seed=2)
    assert len(drawn) == 5000 and np.array_equal(drawn, np.unique(drawn))
    assert set(np.unique(labels[drawn]).tolist()) == set(np.unique(labels).tolist())
    assert np.array_equal(draw_sample(labels, 5000, seed=2), drawn)


def test_lasso_matches_a_plain_ray_cast():
    rng = np.random.default_rng(3)
    xy = rng.standard_normal((20_000, 2)).astype(np.float32)
    th = np.linspace(0, 2 * np.pi, 37, endpoint=False)
    r = 1 + 0.4 * np.sin(5 * th)
    px, py = r * np.cos(th), r * np.sin(th)
    got = points_in_lasso(xy, px, py)
    x, y = xy[:, 0].astype(np.float64), xy[:, 1].astype(np.float64)
    inside = np.zeros(len(xy), bool)
    for i in range(len(px)):
        xi, yi, xj, yj = px[i], py[i], px[i - 1], py[i - 1]
        cross = ((yi > y) != (yj > y)) & (x < (xj - xi) * (y - yi) / (yj - yi + 1e-300) + xi)
        inside ^= cross
    assert (got != inside).sum() <= 2  # points exactly on an edge may go either way
    assert 0.2 < got.mean() < 0.6
