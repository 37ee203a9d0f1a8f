"""Colours and names on the map (issue 14 A6): a cluster palette without greys, distinct for
many clusters, noise grey; each cluster's name drawn as plain text at its centre on the Map
and Budget pages (the At-scale page: tests/test_scale_app.py)."""

from __future__ import annotations

import dataclasses
import html
import json

import numpy as np
import pytest

from core.palette import (NOISE_COLOR, PALETTE_SIZE, cluster_centres, cluster_colors, distinct_colors, hex_to_rgb,
                          name_annotations, plain_label, srgb_to_lab)
from pages import figures
from pages import state as S
from tests.app_fixtures import *  # noqa: F401,F403 - fixtures
from tests.app_fixtures import chart, no_errors, open_page


def _lab(colors) -> np.ndarray:
    return srgb_to_lab(hex_to_rgb(colors))


def _min_delta_e(colors) -> float:
    lab = _lab(colors)
    d = np.linalg.norm(lab[:, None] - lab[None], axis=2)
    return float((d + np.eye(len(lab)) * 1e9).min())


def test_lab_conversion_matches_reference_values():
    # CIE L*a*b* (D65) of sRGB white, black, red and mid grey, as published (e.g. Bruce Lindbloom's calculator)
    lab = _lab(["#ffffff", "#000000", "#ff0000", "#808080"])
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.1)
    np.testing.assert_allclose(lab[3], [53.59, 0, 0], atol=0.05)


def test_palette_has_no_greys_and_stays_away_from_the_noise_grey():
    pal = distinct_colors()
    assert len(pal) == PALETTE_SIZE == len(set(pal))
    lab = _lab(pal)
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    assert chroma.min() >= 35  # greys and near-greys have chroma ~0-15
    assert np.linalg.norm(lab - _lab([NOISE_COLOR])[0], axis=1).min() >= 35
    assert 30 <= lab[:, 0].min() and lab[:, 0].max() <= 85  # readable on the white plot background
    # the old palette's greys are gone
    assert not {"#7f7f7f", "#8c8c8c", "#b3b3b3", "#bab0ac", "#7F7F7F", "#9e9e9e"} & set(pal)


@pytest.mark.parametrize("n,min_de", [(10, 50), (28, 30), (64, 20), (256, 10)])
def test_colours_are_distinct_for_many_clusters(n, min_de):
    colors = cluster_colors(range(n))
    assert len(set(colors.values())) == n  # no repeat up to 256 clusters
    assert _min_delta_e(list(colors.values())) >= min_de  # CIE76 ΔE; ~2.3 is "just noticeable"


def test_colours_are_deterministic_per_cluster_id_and_noise_is_grey():
    assert cluster_colors([-1, 0, 1])[-1] == NOISE_COLOR
    full = cluster_colors(range(-1, 40))
    assert cluster_colors([7, 33]) == {7: full[7], 33: full[33]}  # a filter does not recolour clusters
    assert cluster_colors([300])[300] == distinct_colors()[300 % PALETTE_SIZE]
    assert NOISE_COLOR not in [full[c] for c in range(40)]


def test_centres_are_medians_and_labels_are_plain_text():
    xy = np.array([[0, 0], [1, 1], [10, 10], [5, 5], [6, 6], [100, 100]], dtype=np.float32)
    labels = np.array([0, 0, 0, 1, 1, -1])
    assert cluster_centres(xy, labels) == {0: (1.0, 1.0), 1: (5.5, 5.5)}  # median, not mean; no noise
    assert plain_label("<b>a</b> & <br>b") == "&lt;b&gt;a&lt;/b&gt; &amp; &lt;br&gt;b"
    assert plain_label("x" * 100, max_len=10) == "x" * 9 + "…"
    ann = name_annotations({0: (1.0, 2.0), 1: (3.0, 4.0)}, {0: "café / noir", 1: "<i>x</i>"})
    assert [(a["x"], a["y"], a["text"]) for a in ann] == [(1.0, 2.0, "café / noir"),
                                                          (3.0, 4.0, "&lt;i&gt;x&lt;/i&gt;")]
    assert all(not a["showarrow"] for a in ann)
    assert len(name_annotations({c: (0.0, 0.0) for c in range(200)}, {}, max_names=80)) == 80


# -- on the pages -------------------------------------------------------------------------------


def _annotations(at) -> list[dict]:
    return json.loads(chart(at).proto.spec)["layout"].get("annotations", [])


def _trace_xy(fig: dict) -> dict[str, np.ndarray]:
    """Trace name -> its points (x, y), decoding Plotly's typed arrays."""
    import base64

    def arr(v):
        if isinstance(v, dict):
            return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return np.asarray(v, dtype=np.float64)

    return {t["name"]: np.column_stack([arr(t["x"]), arr(t["y"])]) for t in fig["data"]}


def test_map_page_draws_each_cluster_name_at_its_centre_in_distinct_colours(map_env):
    _, data = map_env
    at = open_page(S.PAGE_MAP)
    no_errors(at)
    fig = json.loads(chart(at).proto.spec)
    named = [c for c in data.clusters if c.id >= 0]
    ann = {a["text"]: a for a in fig["layout"]["annotations"]}
    assert set(ann) == {plain_label(c.name) for c in named}
    points = _trace_xy(fig)
    for c in named:
        a = ann[plain_label(c.name)]
        mine = points[html.escape(c.name)]  # the cluster's drawn points (its trace; the legend escapes)
        assert (a["x"], a["y"]) == pytest.approx(tuple(np.median(mine, axis=0)), rel=1e-5, abs=1e-5)
    colors = {t["name"]: t["marker"]["color"] for t in fig["data"]}
    assert colors["unclustered"] == NOISE_COLOR
    cluster_cols = [v for k, v in colors.items() if k != "unclustered"]
    assert len(set(cluster_cols)) == len(cluster_cols) and NOISE_COLOR not in cluster_cols


def test_map_figure_escapes_names_from_data(map_env):
    _, data = map_env
    evil = dataclasses.replace(data, clusters=[dataclasses.replace(c, name=f"<b>x{c.id}</b> & <a href=y>")
                                               for c in data.clusters])
    fig, _ = figures.map_figure(evil, ["t"] * len(data.row_ids), np.arange(len(data.row_ids)))
    texts = [a.text for a in fig.layout.annotations]
    assert texts and all("<" not in t and ">" not in t and "&lt;b&gt;" in t and "&amp;" in t for t in texts)


def test_map_page_names_only_the_clusters_shown(map_env):
    _, data = map_env
    at = open_page(S.PAGE_MAP)
    keep = [c for c in data.clusters if c.id >= 0][:2]
    at.multiselect(key=S.W_FILTER).set_value([c.id for c in keep])
    at.run()
    no_errors(at)
    assert {a["text"] for a in _annotations(at)} == {plain_label(c.name) for c in keep}


def test_budget_map_carries_the_cluster_names(map_env):
    _, data = map_env
    at = open_page(S.PAGE_BUDGET)
    no_errors(at)
    maps = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    chosen_map = next(f for f in maps if any(t.get("name") == "chosen" for t in f["data"]))
    texts = {a["text"] for a in chosen_map["layout"]["annotations"]}
    assert texts == {plain_label(c.name) for c in data.clusters if c.id >= 0}
