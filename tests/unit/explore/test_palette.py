"""core.palette (issue 14 A6): a cluster palette without greys, distinct for many clusters,
noise grey; cluster centres and the plain-text name labels drawn there (the names on the Map
and Budget pages: tests/app/test_palette_app.py; the At-scale page: tests/app/test_scale_app.py)."""

from __future__ import annotations

import numpy as np
import pytest

from core.palette import (NOISE_COLOR, PALETTE_SIZE, cluster_centres, cluster_colors, distinct_colors, hex_to_rgb,
                          name_annotations, plain_label, srgb_to_lab)


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
