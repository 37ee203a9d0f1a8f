"""The Engine interface (core/engines/base.py): the local engine and the Ray engine (run in
this process, ``local=True``) take the same steps over their own map handles, select into
the one ``core.selection.Selection`` type and write manifests of the one typed
``core.manifest.Manifest`` that read back strictly and name exactly the rows exported."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from core.stages.cluster import ClusterParams
from core.stages.embed import EmbedParams
from core.engines.local import MapData, MapParams
from core.engines.ray.engine import ShardedMap
from core.engines.base import ExportTarget, Unsupported, refusals
from core.engines.registry import engine_for, get_engine
from core.stages.ingest import IngestParams, ingest
from core.stages.dataset import TextSpec
from core.manifest import load_manifest, read_manifest
from core.stages.project import ProjectParams
from core.selection import Selection, SelectParams
from core.store.workspace import SieveError, Workspace
from sample_data.generate import generate_rows
from tests.fakes import BagOfWordsEncoder, params_with_a_local_only_field

PARAMS = MapParams(EmbedParams(model="test/hash-bow"), ProjectParams(n_neighbors=10, seed=1),
                   ClusterParams(min_cluster_size=8))
ENGINES = {"local": ({"encoder": BagOfWordsEncoder()}, MapData, "out.parquet"),
           "ray": ({"local": True, "encoder_factory": BagOfWordsEncoder, "shard_rows": 150, "sample_size": 300},
                   ShardedMap, "out-shards")}


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("engines") / "rows.parquet"
    pq.write_table(generate_rows(400, seed=3), path)
    return path


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_each_engine_maps_selects_and_exports_through_one_interface(name, data_path, tmp_path):
    options, handle_type, out_name = ENGINES[name]
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(data_path), TextSpec(column="text")))
    engine = get_engine(name, **options)
    handle = engine.map(ws, PARAMS)
    assert isinstance(handle, handle_type) and engine.name == name
    params = SelectParams(budget=40, pick="centroid", seed=2, pins=(5,), bans=(6,))
    engine.check(params)
    sel = engine.select(ws, handle, params)
    assert isinstance(sel, Selection) and len(sel) == 40 == sum(sel.allocation.values())
    ids = sel.row_ids.tolist()
    assert 5 in ids and 6 not in ids and len(set(ids)) == 40 and all(0 <= i < 400 for i in ids)
    res = engine.export(ws, handle, sel, params, ExportTarget(tmp_path / out_name))
    man = read_manifest(res.manifest_path)  # strictly validated
    assert man == res.manifest and man["selected_row_ids"] == sorted(ids) and man["n_selected"] == 40
    assert ("engine" in man) == (name == "ray") and man.get("engine", "local") == name
    assert sum(c["selected"] for c in man["clusters"]) == 40
    typed = load_manifest(res.manifest_path)
    assert typed.to_dict() == man and typed.select_params() == params
    exported = sorted(i for f in res.files for i in pq.read_table(f).column("sieve_row_id").to_pylist())
    assert exported == sorted(ids)


def test_what_an_engine_cannot_run_is_refused_before_any_work():
    with pytest.raises(SieveError, match="--engine must be local or ray, got 'spark'"):
        get_engine("spark")
    ray = get_engine("ray", local=True)
    for bad in (SelectParams(budget=5, pick="score", score_column="s"), SelectParams(budget=5, pick="facility-global"),
                SelectParams(budget=5, dedup="exact")):
        with pytest.raises(SieveError, match="not supported by the Ray engine"):
            ray.check(bad)
    get_engine("local").check(SelectParams(budget=5, pick="facility-global"))  # the local engine runs every pick


def test_each_refusal_names_its_option_and_the_engines_that_run_it():
    """The Ray engine's refusals come from declarations: SelectParams field metadata and the
    pick registry; every one is listed (not only the first), each naming its option."""
    ray = get_engine("ray", local=True)
    params = SelectParams(budget=5, dedup="exact", budget_unit="tokens", strata_column="src", reference_path="r.csv",
                          soft_noise_threshold=0.2, pick="score", score_column="s", target_path="t.jsonl")
    lines = ray.unsupported(params)
    names = ["score_column", "dedup", "soft_noise_threshold", "budget_unit", "strata_column", "reference_path",
             "target_path", "pick"]
    assert len(lines) == len(names)
    for name, line in zip(names, lines):
        assert line.startswith(f"{name}=") and "not supported by the Ray engine" in line
        assert "use the local engine" in line and "\n" not in line
    assert get_engine("local").unsupported(params) == []
    assert ray.unsupported(SelectParams(budget=5, pick="centroid", pins=(1,), seed=3)) == []
    with pytest.raises(SieveError, match=r"^score_column='s' is not supported by the Ray engine"):
        ray.check(params)


def test_a_field_declared_local_only_is_refused_by_ray(monkeypatch):
    """Declaring ``metadata={"engines": ("local",)}`` on a SelectParams field is all it takes:
    Ray refuses the field set away from its default, naming it; the local engine runs it."""
    from core.engines import base

    Extended = params_with_a_local_only_field()
    monkeypatch.setattr(base, "SelectParams", Extended)
    ray, local = get_engine("ray", local=True), get_engine("local")
    on = Extended(budget=5, fancy="on")
    assert ray.unsupported(Extended(budget=5)) == []  # the default is what every engine does
    assert ray.unsupported(on) == ["fancy='on' is not supported by the Ray engine yet; use the local engine for it"]
    with pytest.raises(SieveError, match="fancy='on'"):
        ray.check(on)
    local.check(on)
    assert refusals(on, "ray", "Ray") == ray.unsupported(on) and refusals(on, "local") == []


def test_a_refusal_carries_the_option_for_a_front_end_to_name_it_its_way():
    """check() raises Unsupported: the same message, plus the field, value and engines, so the
    CLI can name the flag as typed; it survives pickling (Ray ships exceptions)."""
    import pickle

    with pytest.raises(Unsupported) as caught:
        get_engine("ray", local=True).check(SelectParams(budget=5, soft_noise_threshold=0.5))
    exc = caught.value
    assert str(exc) == "soft_noise_threshold=0.5 is not supported by the Ray engine yet; use the local engine for it"
    assert (exc.option, exc.value, exc.engine, exc.allowed) == ("soft_noise_threshold", 0.5, "ray", ("local",))
    assert exc.named("--soft-noise", "0.5") == ("--soft-noise 0.5 is not supported by the ray engine yet; "
                                                "use the local engine for it")
    again = pickle.loads(pickle.dumps(exc))
    assert isinstance(again, SieveError) and str(again) == str(exc) and again.option == exc.option


def test_a_map_handle_names_its_engine():
    with pytest.raises(SieveError, match="not a map handle"):
        engine_for(object())
    assert engine_for(ShardedMap("m", "e", {})).name == "ray"
