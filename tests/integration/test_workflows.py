"""core.workflows: the layer the CLI and the pages call (build_map, select, export + manifest,
run, reproduce).  Real DuckDB, real UMAP/HDBSCAN on small generated data, the seeded
TopicEncoder in place of the model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core import workflows
from core.stages.cluster import ClusterParams
from core.manifest import ids_digest, read_manifest
from core.stages.ingest import IngestParams
from core.stages.dataset import TextSpec
from core.engines.local import MapParams
from core.engines.local_engine import LocalEngine
from core.engines.ray import RayEngine, ShardedMap
from core.stages.embed import EmbedParams
from core.stages.project import ProjectParams
from core.selection import SelectParams
from core.workflow_types import ENGINES, LOCAL, RAY, Events, ExportTarget
from core.store.workspace import SieveError, Workspace
from tests.fakes import BagOfWordsEncoder, TopicEncoder, read_any, write_table

ROWS, SEED = 300, 5


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    from sample_data.generate import generate_rows

    table = generate_rows(ROWS, seed=SEED, mess=False)
    path = write_table(table, tmp_path_factory.mktemp("wf_data") / "data.parquet")
    enc = TopicEncoder(dict(zip(table.column("text").to_pylist(), table.column("topic").to_pylist())))
    return path, table, enc


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, data_file):
    """One local ``run`` (ingest -> map -> select -> export) with every step recorded."""
    path, table, enc = data_file
    root = tmp_path_factory.mktemp("wf_run")
    steps = []
    params = SelectParams(budget=40, policy="equal", pick="diverse", seed=2, bans=(7,), pins=(3,))
    target = ExportTarget(root / "subset.parquet")
    ws = Workspace(root / "ws")
    result = workflows.run(ws, IngestParams(str(path), TextSpec(column="text")), MapParams(), params, target,
                           encoder=enc, events=Events(on_step=lambda name, value: steps.append((name, value))))
    return ws, root, params, target, result, steps, enc


def test_run_writes_the_rows_and_a_manifest_that_agree(local_run, capfd):
    ws, root, params, target, result, steps, _ = local_run
    t = read_any(target.path)
    ids = t.column("sieve_row_id").to_pylist()
    man = read_manifest(root / "subset.parquet.manifest.json")
    assert result.exported.path == target.path and result.exported.manifest_path == target.manifest_file()
    assert len(ids) == len(set(ids)) == params.budget == result.exported.n_rows == len(result.selection)
    assert man["selected_row_ids"] == sorted(ids) == sorted(result.selection.row_ids.tolist())
    assert man["selected_ids_sha256"] == ids_digest(result.selection.row_ids)
    assert 3 in ids and 7 not in ids  # the pin and the ban
    assert SelectParams.from_dict(man["select"]) == params
    assert man["export"]["path"] == str(target.path) and man["export"]["format"] == "parquet"
    assert result.exported.n_duplicates is None and result.seconds > 0
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # a workflow prints nothing


def test_run_reports_its_steps_in_order_with_their_results(local_run):
    ws, _, params, _, result, steps, _ = local_run
    assert [name for name, _ in steps] == ["dataset", "map", "selection", "export"]
    info, cached = steps[0][1]
    assert info.n_rows == ROWS and cached is False
    data = steps[1][1]
    assert data is result.map and len(data.row_ids) == ROWS and (data.labels >= 0).any()
    sdata, selection, sparams, metrics = steps[2][1]
    assert selection is result.selection and sparams == params and 0 < metrics.coverage <= 1
    assert steps[3][1] is result.exported
    # the selection is remembered for `sieve export`
    assert workflows.saved_selection(ws) == params


def test_export_is_one_implementation_for_the_cli_and_the_pages(local_run, tmp_path):
    """export() again, with metrics given (as the Export page does) and without (as the
    CLI does): the same rows and the same manifest but for the paths and the time."""
    ws, _, params, _, result, _, _ = local_run
    data, selection = result.map, result.selection
    a = workflows.export(ws, data, params, selection, ExportTarget(tmp_path / "a.jsonl"))
    b = workflows.export(ws, data, params, selection, ExportTarget(tmp_path / "b.csv", None, tmp_path / "m.json"),
                         metrics=workflows.report(data, selection, params))
    assert b.manifest_path == tmp_path / "m.json" and (tmp_path / "m.json").is_file()
    assert read_any(a.path).column("sieve_row_id").to_pylist() == read_any(b.path).column("sieve_row_id").to_pylist()
    drop = ("export", "created")
    ma = {k: v for k, v in a.manifest.items() if k not in drop}
    mb = {k: v for k, v in b.manifest.items() if k not in drop}
    assert json.dumps(ma, sort_keys=True, default=str) == json.dumps(mb, sort_keys=True, default=str)
    assert a.manifest["export"]["format"] == "jsonl" and b.manifest["export"]["format"] == "csv"
    assert json.loads(a.manifest_path.read_text())["export"]["sha256"] == a.manifest["export"]["sha256"]


def test_reproduce_in_a_fresh_workspace_gives_identical_rows(local_run, tmp_path, capfd):
    ws, root, params, target, result, _, enc = local_run
    steps = []
    again = workflows.reproduce(Workspace(tmp_path / "fresh"), target.manifest_file(),
                                ExportTarget(tmp_path / "again.parquet"), encoder=enc,
                                events=Events(on_step=lambda n, v: steps.append((n, v))))
    assert again.manifest["selected_row_ids"] == result.exported.manifest["selected_row_ids"]
    assert read_any(again.path).column("sieve_row_id").to_pylist() == \
        read_any(target.path).column("sieve_row_id").to_pylist()
    assert [n for n, _ in steps] == ["export", "long_texts"] and steps[0][1] is again
    assert capfd.readouterr() == ("", "")


def test_reproduce_warns_about_a_changed_data_file_beside_the_manifest(local_run, tmp_path):
    ws, root, params, target, result, _, enc = local_run
    copy = tmp_path / "subset.parquet"
    copy.write_bytes(target.path.read_bytes() + b"x")
    mpath = tmp_path / "subset.parquet.manifest.json"
    man = json.loads(target.manifest_file().read_text())
    mpath.write_text(json.dumps(man))
    sidecar = man["map"].get("file")
    if sidecar:  # the parallel UMAP's map travels beside the manifest
        (tmp_path / sidecar).write_bytes((target.manifest_file().parent / sidecar).read_bytes())
    steps = []
    workflows.reproduce(Workspace(tmp_path / "fresh"), mpath, ExportTarget(tmp_path / "again.csv"), encoder=enc,
                        events=Events(on_step=lambda n, v: steps.append((n, v))))
    assert steps[0][0] == "warning" and "sha256 differs" in steps[0][1]
    assert [n for n, _ in steps[1:]] == ["export", "long_texts"]


def test_verify_names_the_problem(local_run, tmp_path):
    _, _, _, target, result, _, _ = local_run
    man, problem = workflows.verify(target.manifest_file())
    assert problem is None and man["n_selected"] == result.exported.n_rows


def test_select_remembers_only_when_asked(local_run, tmp_path):
    ws, _, params, _, result, _, _ = local_run
    other = SelectParams(budget=12, policy="proportional", pick="random", seed=9)
    sel = workflows.select(ws, result.map, other, remember=False)
    assert len(sel) == 12 and workflows.saved_selection(ws) == params
    sel = workflows.select(ws, result.map, other)
    assert workflows.saved_selection(ws) == other
    workflows.select(ws, result.map, params)  # back, for the other tests


def test_build_map_names_the_edits_file_of_an_edit_that_does_not_apply(local_run, tmp_path):
    ws, _, _, _, result, _, enc = local_run
    edits = tmp_path / "edits.json"
    edits.write_text(json.dumps([{"op": "rename", "cluster": 999, "name": "nope"}]))
    with pytest.raises(SieveError, match=r"^edits file .*edits\.json: edit \d"):
        workflows.build_map(ws, result.map.params or MapParams(), edits_path=edits, encoder=enc)


def test_ingest_progress_a_queued_build_map_and_cluster_edits_of_a_given_map(data_file, tmp_path):
    """The steps the pages need in their own shape: ``ingest`` reports its progress, a
    ``build_map`` that queues behind another session tells ``events.on_wait`` and then runs,
    ``edit_clusters`` replaces (or, ``append``, extends) the edits of the map it is given."""
    import threading

    path, _, enc = data_file
    ws = Workspace(tmp_path / "ws")
    seen = []
    info, cached = workflows.ingest(ws, IngestParams(str(path), TextSpec(column="text")),
                                    progress=lambda done, total, msg: seen.append((done, total)))
    assert info.n_rows == ROWS and not cached and seen and seen[-1][0] == seen[-1][1]
    held, release, waits = threading.Event(), threading.Event(), []

    def holder():  # another session of this process holds the workspace until this one queues
        with ws.lock("the map"):
            held.set()
            release.wait(60)

    t = threading.Thread(target=holder)
    t.start()
    assert held.wait(60)
    data = workflows.build_map(ws, MapParams(), encoder=enc,
                               events=Events(on_wait=lambda h: (waits.append(h), release.set())))
    t.join(60)
    assert len(waits) == 1 and "the map" in waits[0], waits
    assert isinstance(data, workflows.MapData) and len(data.row_ids) == ROWS and data.keys.edits is None
    first = workflows.edit_clusters(ws, [{"op": "rename", "cluster": 0, "name": "first"}], data)
    both = workflows.edit_clusters(ws, [{"op": "rename", "cluster": 1, "name": "second"}], data, append=True)
    only = workflows.edit_clusters(ws, [{"op": "rename", "cluster": 1, "name": "second"}], data)
    assert first.edits and len({first.edits, both.edits, only.edits}) == 3
    assert [e["name"] for e in workflows.current_map(ws).edits] == ["second"]
    assert workflows.edit_clusters(ws, [], data) == data.keys  # no edit left: the base map


def test_saved_selection_without_one_is_a_clear_error(tmp_path):
    with pytest.raises(SieveError, match="no selection yet"):
        workflows.saved_selection(Workspace(tmp_path / "ws"))


@pytest.mark.parametrize("engine, target, needle", [
    ("spark", ExportTarget("out.parquet"), "--engine must be local or ray, got 'spark'"),
    (LOCAL, ExportTarget("out.xlsx"), "xlsx"),
    (RAY, ExportTarget("out", "csv"), "--format csv is not available with --engine ray"),
])
def test_check_target_fails_fast(engine, target, needle):
    with pytest.raises(SieveError) as exc:
        workflows.check_target(engine, target)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("change, needle", [
    (dict(map_params=MapParams(cluster=ClusterParams(algorithm="leiden"))), "--cluster-method leiden"),
    (dict(edits_path="edits.json"), "--edits is not available with --engine ray"),
    (dict(target=ExportTarget("shards", include_duplicates=True)), "--include-duplicates"),
    (dict(target="full"), "is not an empty folder"),
    (dict(sel_params=SelectParams(budget=5, dedup="exact")), "^dedup='exact' is not supported by the Ray engine"),
    (dict(sel_params=SelectParams(budget=5, pick="facility-global")), "^pick='facility-global' is not supported"),
    (dict(target=ExportTarget("shards", "csv")), "--format csv is not available with --engine ray"),
])
def test_the_ray_engine_refuses_what_it_cannot_do_before_any_work(change, needle, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    kw = dict(map_params=MapParams(), sel_params=SelectParams(budget=5), target=ExportTarget(tmp_path / "shards"),
              edits_path=None)
    kw.update(change)
    if kw["target"] == "full":
        kw["target"] = ExportTarget(full)
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(SieveError, match=needle):
        workflows.run(ws, IngestParams(str(tmp_path / "missing.csv"), TextSpec(column="text")), kw["map_params"],
                      kw["sel_params"], kw["target"], engine=RAY, edits_path=kw["edits_path"])
    assert ENGINES == (LOCAL, RAY)
    assert not (tmp_path / "shards").exists()  # nothing written


def test_report_skips_vector_metrics_above_the_row_limit(local_run, monkeypatch):
    _, _, params, _, result, _, _ = local_run
    m = workflows.report(result.map, result.selection, params)
    assert m.n_random > 0 and np.isfinite(m.jsd) and m.nn_distance is not None
    monkeypatch.setattr(workflows, "REPORT_VECTORS_MAX_ROWS", len(result.selection) - 1)
    m = workflows.report(result.map, result.selection, params)
    assert np.isfinite(m.jsd) and m.nn_distance is None


class Recording:
    """An engine that delegates to another and records which of its methods the workflows call."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self.calls.append(name)
            return attr(*args, **kwargs)

        return call


def test_the_workflows_run_through_the_engine_protocol(local_run, data_file, tmp_path):
    """run, select, export and current_map call only the Engine's methods, in the order of
    the steps, whatever the engine (here a recording wrapper of the local engine)."""
    ws, _, params, _, result, _, enc = local_run
    path = data_file[0]
    eng = Recording(LocalEngine(encoder=enc))
    again = workflows.run(ws, IngestParams(str(path), TextSpec(column="text")), MapParams(), params,
                          ExportTarget(tmp_path / "again.parquet"), engine=eng)
    assert eng.calls == ["check_run", "map", "select", "report", "export"]
    assert again.selection.row_ids.tolist() == result.selection.row_ids.tolist()  # cached stages: the same subset
    eng.calls.clear()
    handle = workflows.current_map(ws, eng)
    sel = workflows.select(ws, handle, params, engine=eng, remember=False)
    workflows.export(ws, handle, params, sel, ExportTarget(tmp_path / "b.csv"), engine=eng)
    assert eng.calls == ["current_map", "select", "report", "export"]
    with pytest.raises(SieveError, match="--engine must be local or ray, got 'spark'"):
        workflows.resolve_engine("spark")
    assert workflows.resolve_engine(RAY, address="auto", encoder=enc, shard_rows=7).shard_rows == 7  # Ray takes no encoder
    assert workflows.resolve_engine(LOCAL, address="auto", encoder=enc).encoder is enc


def test_run_and_reproduce_on_the_ray_engine_in_this_process(data_file, tmp_path):
    """The Ray engine (``local=True``: its shards, sample fit and per-cluster picks, without a
    cluster) through the same workflows: run writes Parquet shards + a Ray manifest, and
    reproduce (the engine is the manifest's) gives the same ids in a fresh workspace."""
    path = data_file[0]

    def engine():
        return RayEngine(local=True, encoder_factory=BagOfWordsEncoder, shard_rows=100, sample_size=300)

    steps = []
    params = SelectParams(budget=30, pick="centroid", seed=1, pins=(4,), bans=(9,))
    mparams = MapParams(EmbedParams(model="test/hash-bow"), ProjectParams(n_neighbors=10, seed=1),
                        ClusterParams(min_cluster_size=8))
    result = workflows.run(Workspace(tmp_path / "ws"), IngestParams(str(path), TextSpec(column="text")), mparams,
                           params, ExportTarget(tmp_path / "shards"), engine=engine(),
                           events=Events(on_step=lambda n, v: steps.append(n)))
    assert steps == ["dataset", "embeddings", "scaled_map", "export"]  # no metrics on Ray: no "selection" step
    assert isinstance(result.map, ShardedMap) and result.map.n_rows == ROWS
    man = read_manifest(result.exported.manifest_path)
    ids = sorted(result.selection.row_ids.tolist())
    assert man["engine"] == RAY and man["selected_row_ids"] == ids and len(ids) == 30 and 4 in ids and 9 not in ids
    files = sorted((tmp_path / "shards").glob("*.parquet"))
    assert files and sorted(i for f in files for i in read_any(f).column("sieve_row_id").to_pylist()) == ids
    with pytest.raises(SieveError, match="written by the ray engine, not local"):
        workflows.reproduce(Workspace(tmp_path / "fresh"), result.exported.manifest_path,
                            ExportTarget(tmp_path / "x"), engine=LocalEngine())
    again = workflows.reproduce(Workspace(tmp_path / "fresh"), result.exported.manifest_path,
                                ExportTarget(tmp_path / "again"), engine=engine())
    assert again.manifest["selected_row_ids"] == ids and again.manifest["engine"] == RAY
