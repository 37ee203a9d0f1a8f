"""Degenerate maps (issue 12 kind 6): one row, two rows, all rows identical, every row
noise.  Every page works on them, identical texts form one group, the same input and
seed give the same map, and `sieve reproduce` succeeds.  Data is built here."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from pages import state as S
from tests.fakes import BagOfWordsEncoder
from tests.app_fixtures import new_app, no_errors, open_page, metric_value

SAME = "Summarize this article in three sentences."


def _csv(path, texts):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"])
        for i, t in enumerate(texts):
            w.writerow([i, t])
    return path


def _map(root, texts, min_cluster_size=None):
    from core.stages.cluster import ClusterParams
    from core.stages.embed import EmbedParams
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec
    from core.engines.local import MapParams, build_map, load_map
    from core.stages.project import ProjectParams
    from core.store.workspace import Workspace

    root.mkdir(parents=True, exist_ok=True)
    data = _csv(root.parent / f"{root.name}.csv", texts)
    ws = Workspace(root)
    ingest(ws, IngestParams(str(data), TextSpec(column="text")))
    params = MapParams(EmbedParams(model="test/hash-bow"), ProjectParams(n_neighbors=10, seed=1),
                       ClusterParams(min_cluster_size=min_cluster_size))
    build_map(ws, params, encoder=BagOfWordsEncoder())
    return ws, load_map(ws)


DEGENERATE = {
    "one_row": ["the only row of this dataset"],
    "all_identical": [SAME] * 30,
}


@pytest.fixture(params=sorted(DEGENERATE))
def degenerate_env(request, tmp_path, monkeypatch):
    ws, data = _map(tmp_path / request.param, DEGENERATE[request.param])
    monkeypatch.setenv("SIEVE_WORKSPACE", str(ws.root))
    monkeypatch.setenv("SIEVE_EXPORT_DIR", str(tmp_path / "exports"))
    return request.param, ws, data


# -- clustering -------------------------------------------------------------------------------


@pytest.mark.parametrize("mcs", [None, 2, 5])
def test_identical_texts_form_one_cluster(tmp_path, mcs):
    _, data = _map(tmp_path / "ws", [SAME] * 30, min_cluster_size=mcs)
    assert set(data.labels.tolist()) == {0}
    assert [c.id for c in data.clusters] == [0] and data.clusters[0].size == 30
    assert any("same vector" in n for n in data.notes)


def test_identical_rows_are_never_split_among_distinct_topics(tmp_path):
    """30 copies of one prompt among varied rows: the copies share one cluster."""
    from sample_data.generate import generate_rows

    varied = generate_rows(200, seed=4, mess=False).column("text").to_pylist()
    texts = varied[:100] + [SAME] * 30 + varied[100:]
    _, data = _map(tmp_path / "ws", texts, min_cluster_size=5)
    copies = data.labels[100:130]
    assert len(set(copies.tolist())) == 1


def test_duplicate_groups_are_exact():
    from core.stages.distinct import duplicate_groups

    rng = np.random.default_rng(0)
    base = rng.normal(size=(5, 7)).astype(np.float32)
    rows = base[[0, 1, 0, 2, 3, 1, 4, 4]]
    rows[7, 3] = np.nextafter(rows[7, 3], np.inf)  # one ulp away: a different vector
    first, inverse = duplicate_groups(rows)
    assert inverse.tolist() == [0, 1, 0, 2, 3, 1, 4, 5]
    assert first.tolist() == [0, 1, 3, 4, 6, 7]


def test_old_cluster_params_keep_the_old_behaviour():
    from core.stages.cluster import ClusterParams

    old = ClusterParams.from_dict({"min_cluster_size": 5, "min_samples": None, "method": "eom", "epsilon": 0.0})
    assert old.merge_duplicates is False
    assert "merge_duplicates" not in old.key_dict()
    assert ClusterParams().key_dict()["merge_duplicates"] is True


# -- pages ------------------------------------------------------------------------------------


def test_budget_and_export_pages_work_on_degenerate_maps(degenerate_env, tmp_path):
    from core.manifest import read_manifest

    name, ws, data = degenerate_env
    n = len(data.row_ids)
    at = open_page(S.PAGE_BUDGET)
    no_errors(at)
    budget = int(metric_value(at, "Rows in the subset"))
    assert 1 <= budget <= n
    number = at.number_input(key=S.W_BUDGET_NUMBER)
    assert number.value == budget
    if n == 1:
        assert number.disabled and not [s for s in at.slider if s.key == S.W_BUDGET_SLIDER]
    at.radio(key="w.mode").set_value("Sliders").run()
    no_errors(at)
    at.radio(key="w.mode").set_value("Automatic").run()
    at.switch_page(S.PAGE_EXPORT).run()
    no_errors(at)
    assert int(next(m.value for m in at.metric if m.label == "Rows to export").replace(",", "")) == budget
    labels = [b.label for b in at.get("download_button")]
    assert any(lbl.endswith(".parquet") for lbl in labels) and any("manifest" in lbl for lbl in labels)
    at.text_input(key="w.save_path").input("degenerate.parquet").run()
    at.button(key="w.save").click().run()
    no_errors(at)
    man = read_manifest(tmp_path / "exports" / "degenerate.parquet.manifest.json")
    assert man["n_selected"] == budget


def test_map_page_shows_degenerate_maps(degenerate_env):
    at = open_page(S.PAGE_MAP)
    no_errors(at)


# -- CLI: same input and seed, same map; reproduce succeeds ----------------------------------

runner = CliRunner()


def _cli(*args):
    from core.cli import app

    res = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    return res.exit_code, res.output + (res.stderr if res.stderr_bytes is not None else "")


@pytest.mark.parametrize("texts", [["only one row"], ["hello world", "goodbye moon"], [SAME] * 12],
                         ids=["one_row", "two_rows", "all_identical"])
def test_reproduce_succeeds_on_tiny_and_degenerate_inputs(tmp_path, texts, sieve_real_encoder):
    data = _csv(tmp_path / "in.csv", texts)
    out = tmp_path / "o.parquet"
    code, text = _cli("run", data, "--text", "text", "--budget", 1, "--out", out, "-w", tmp_path / "ws",
                      "--backend", "torch")
    assert code == 0, text
    man = json.loads((tmp_path / "o.parquet.manifest.json").read_text())
    assert man["n_selected"] == 1 and man["cluster"]["n_clusters"] == 1
    code, text = _cli("reproduce", tmp_path / "o.parquet.manifest.json", "--out", tmp_path / "again.parquet",
                      "-w", tmp_path / "ws2")
    assert code == 0, text
    again = json.loads((tmp_path / "again.parquet.manifest.json").read_text())
    assert again["selected_row_ids"] == man["selected_row_ids"]
    assert again["map"]["sha256"] == man["map"]["sha256"]  # the same map (its content hash), same input and seed


def test_all_noise_exclude_says_so():
    """When every row is noise, --noise exclude names that, not caps/overrides/bans."""
    from core.selection import SelectParams, select

    labels = np.full(10, -1, np.int32)
    sel = select(labels, np.arange(10), SelectParams(budget=3, noise="exclude"))
    assert len(sel) == 0
    text = " ".join(sel.notes)
    assert "unclustered" in text and "exclude" in text
    assert "caps" not in text and "override" not in text and "ban" not in text


def test_nn_distance_never_shows_negative_zero():
    from core.stages.metrics import fmt_distance

    assert fmt_distance(-0.0) == "0.000"
    assert fmt_distance(-1e-9) == "0.000"
    assert fmt_distance(None) == "n/a"
    assert fmt_distance(0.1234) == "0.123"


# -- the Map/Budget/Export pages on the Ray engine, on a sharded degenerate map --------------------------------------


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_scale_page_works_on_degenerate_sharded_maps(tmp_path, monkeypatch, name):
    from core.engines import ray as scale
    from core.manifest import read_manifest
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec
    from core.stages.project import ProjectParams
    from core.stages.cluster import ClusterParams
    from core.store.workspace import Workspace

    texts = DEGENERATE[name]
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(_csv(tmp_path / "in.csv", texts)), TextSpec(column="text")))
    emb = scale.embed_shards(ws, scale.ScaleEmbedParams(model="test/hash-bow", shard_rows=300),
                             encoder_factory=BagOfWordsEncoder, local=True)
    res = scale.scale_map(ws, emb.folder, scale.ScaleMapParams(100, 3, ProjectParams(n_neighbors=10, seed=1),
                                                               ClusterParams()), local=True)
    assert res.n_clusters == 1  # identical rows: one group, not noise
    monkeypatch.setenv("SIEVE_WORKSPACE", str(ws.root))
    monkeypatch.setenv("SIEVE_EXPORT_DIR", str(tmp_path / "exports"))
    at = open_page(S.PAGE_MAP, 240, state={S.K_PINS: set(), S.K_BANS: set()})
    no_errors(at)
    assert len(at.get("plotly_chart")) == 1  # the sharded map is drawn
    at.switch_page(S.PAGE_BUDGET).run()
    no_errors(at)
    if not at.number_input(key=S.W_BUDGET_NUMBER).disabled:  # a one-row map's budget is that row
        at.number_input(key=S.W_BUDGET_NUMBER).set_value(1)
        at.button(key=S.W_BUDGET_APPLY).click().run()
    no_errors(at)
    sel = at.session_state[S.K_SCALE_SELECTION]["selection"]
    assert len(sel.row_ids) == 1
    at.switch_page(S.PAGE_EXPORT).run()
    no_errors(at)
    at.text_input(key=S.W_SCALE_FOLDER).input("picked").run()
    at.button(key=S.W_SCALE_EXPORT).click().run()
    no_errors(at)
    man = read_manifest(tmp_path / "exports" / "picked.manifest.json")
    assert man["n_selected"] == 1
