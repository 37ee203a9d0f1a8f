"""The cluster names and colours on the Map and Budget pages (issue 14 A6), AppTest: each
cluster's name drawn as plain text at its centre, names from data escaped in the figure, only
the clusters shown are named (the palette itself: tests/unit/explore/test_palette.py; the
At-scale page: tests/app/test_scale_app.py)."""

from __future__ import annotations

import dataclasses
import html
import json

import numpy as np
import pytest

from core.palette import NOISE_COLOR, plain_label
from pages import figures
from pages import state as S
from tests.app_fixtures import *  # noqa: F401,F403 - fixtures
from tests.app_fixtures import chart, no_errors, open_page


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
