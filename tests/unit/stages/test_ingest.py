"""Ingest: formats, globs, stable row ids, templates, empty texts, BYO vectors, caching, failures."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from core.stages.embed import EmbedParams, run_embed
from core.stages.ingest import IngestParams, ingest
from core.stages.dataset import TextSpec, current_dataset, load_column, load_texts, unescape_template
from core.stages.sources import fingerprint_files, resolve_sources
from core.store.workspace import DATASET_TABLE
from core.store.workspace import SieveError, Workspace
from tests.fakes import HashEncoder, query_table, write_table

ORIGINAL = ["id", "instruction", "input", "text", "quality", "n"]


def dataset_table(ws: Workspace) -> pa.Table:
    return query_table(ws, f"SELECT * FROM {DATASET_TABLE} ORDER BY sieve_row_id")


def db_state(ws: Workspace):
    """Everything a failed ingest must leave untouched."""
    return ws.get_meta("dataset"), dataset_table(ws).to_pylist()


# -- formats, paths and globs ------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "parquet"])
def test_each_format_keeps_every_column_and_row_order(fmt, tmp_path, sieve_small_table):
    path = write_table(sieve_small_table, tmp_path / f"data.{fmt}")
    ws = Workspace(tmp_path / "ws")
    info, cached = ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    assert not cached
    assert info.n_rows == 6 and info.n_empty == 0
    assert list(info.columns) == ORIGINAL  # every original column, in order, nothing extra
    got = dataset_table(ws)
    assert got.column("sieve_row_id").to_pylist() == list(range(6))  # ids follow file order
    assert got.column("id").to_pylist() == sieve_small_table.column("id").to_pylist()
    assert got.column("sieve_text").to_pylist() == sieve_small_table.column("text").to_pylist()
    assert got.column("n").to_pylist() == [1, 2, 3, 4, 5, 6]
    assert got.column("quality").to_pylist() == pytest.approx([0.9, 0.1, 0.5, 0.7, 0.3, 0.6])
    assert set(got.column_names) == set(ORIGINAL) | {"sieve_row_id", "sieve_text", "sieve_text_ok", "sieve_text_hash"}
    assert info.sources == [str(path.resolve())]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_glob_of_several_files_in_sorted_order(fmt, tmp_path):
    rows = pa.table({"id": [f"x{i:02d}" for i in range(12)], "text": [f"text number {i}" for i in range(12)]})
    # written out of order on purpose: ids must follow the files' sorted names
    for part in (2, 0, 1):
        write_table(rows.slice(part * 4, 4), tmp_path / "in" / f"part-{part}.{fmt}")
    ws = Workspace(tmp_path / "ws")
    info, _ = ingest(ws, IngestParams(str(tmp_path / "in" / f"part-*.{fmt}"), TextSpec(column="text")))
    assert info.n_rows == 12
    assert [p.rsplit("/", 1)[-1] for p in info.sources] == [f"part-{i}.{fmt}" for i in range(3)]
    got = dataset_table(ws)
    assert got.column("id").to_pylist() == rows.column("id").to_pylist()
    assert got.column("sieve_row_id").to_pylist() == list(range(12))


def test_list_of_paths_and_resolve_sources(tmp_path):
    a = write_table(pa.table({"text": ["a1", "a2"]}), tmp_path / "a.csv")
    b = write_table(pa.table({"text": ["b1"]}), tmp_path / "b.csv")
    assert resolve_sources((str(b), str(a))) == [b.resolve(), a.resolve()]  # a list keeps its order
    ws = Workspace(tmp_path / "ws")
    info, _ = ingest(ws, IngestParams((str(b), str(a)), TextSpec(column="text")))
    assert info.n_rows == 3
    assert load_texts(ws)[1] == ["b1", "a1", "a2"]


def test_explicit_file_format_overrides_extension(tmp_path):
    p = tmp_path / "data.txt"
    p.write_text("text,k\nhello,1\nworld,2\n")
    ws = Workspace(tmp_path / "ws")
    info, _ = ingest(ws, IngestParams(str(p), TextSpec(column="text"), file_format="csv"))
    assert info.n_rows == 2


# -- stable ids and caching ---------------------------------------------------------


def test_row_ids_are_stable_across_workspaces_and_reingest(tmp_path, sieve_small_table):
    path = write_table(sieve_small_table, tmp_path / "data.parquet")
    ws1, ws2 = Workspace(tmp_path / "ws1"), Workspace(tmp_path / "ws2")
    info1, c1 = ingest(ws1, IngestParams(str(path), TextSpec(column="text")))
    info2, c2 = ingest(ws2, IngestParams(str(path), TextSpec(column="text")))
    assert (c1, c2) == (False, False)
    t1, t2 = dataset_table(ws1), dataset_table(ws2)
    cols = ["sieve_row_id", "id", "sieve_text_hash"]
    assert t1.select(cols).equals(t2.select(cols))
    assert info1.key == info2.key and info1.fingerprint == info2.fingerprint == fingerprint_files([path.resolve()])

    # the same file again is a cache hit that changes nothing
    info3, c3 = ingest(ws1, IngestParams(str(path), TextSpec(column="text")))
    assert c3 is True
    assert info3.to_dict() == info1.to_dict()
    assert dataset_table(ws1).equals(t1)


def test_changed_file_or_spec_is_not_a_cache_hit(tmp_path, sieve_small_table):
    path = write_table(sieve_small_table, tmp_path / "data.csv")
    ws = Workspace(tmp_path / "ws")
    info1, _ = ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    info2, cached = ingest(ws, IngestParams(str(path), TextSpec(column="instruction")))
    assert cached is False and info2.key != info1.key
    assert load_texts(ws)[1] == sieve_small_table.column("instruction").to_pylist()
    write_table(sieve_small_table.slice(0, 4), path)
    info3, cached = ingest(ws, IngestParams(str(path), TextSpec(column="instruction")))
    assert cached is False and info3.fingerprint != info1.fingerprint and info3.n_rows == 4
    assert current_dataset(ws).key == info3.key


# -- text: column or template, empty texts -------------------------------------------


def test_template_text(tmp_path, sieve_small_table):
    path = write_table(sieve_small_table, tmp_path / "data.parquet")
    ws = Workspace(tmp_path / "ws")
    info, _ = ingest(ws, IngestParams(str(path), TextSpec(template="{instruction}\n{input}")))
    assert info.text.template == "{instruction}\n{input}"
    expected = [f"{i}\n{x or ''}" for i, x in zip(sieve_small_table.column("instruction").to_pylist(),
                                                    sieve_small_table.column("input").to_pylist())]
    assert load_texts(ws)[1] == expected
    assert info.n_empty == 0
    assert "instruction" in info.columns and "input" in info.columns  # originals kept


def test_template_with_literal_text_and_repeated_field(tmp_path):
    path = write_table(pa.table({"q": ["why?", None], "a": ["because", "x"]}), tmp_path / "qa.jsonl")
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(path), TextSpec(template="Q: {q} | A: {a} ({q})")))
    assert load_texts(ws)[1] == ["Q: why? | A: because (why?)", "Q:  | A: x ()"]


def test_unescape_template_from_shell():
    assert unescape_template(r"{instruction}\n{input}\t.") == "{instruction}\n{input}\t."


def test_empty_texts_are_kept_flagged_and_not_embedded(tmp_path):
    texts = ["first text", None, "", "   ", "\n\t", "last text", "first text"]
    path = write_table(pa.table({"id": list(range(7)), "text": texts}), tmp_path / "data.parquet")
    ws = Workspace(tmp_path / "ws")
    info, _ = ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    assert info.n_rows == 7  # nothing dropped
    assert info.n_empty == 4 and info.n_embeddable == 3
    assert info.n_duplicates == 1
    t = dataset_table(ws)
    assert t.column("sieve_text_ok").to_pylist() == [True, False, False, False, False, True, True]
    assert t.column("id").to_pylist() == list(range(7))

    enc = HashEncoder()
    res = run_embed(ws, EmbedParams(), encoder=enc)
    assert sorted(enc.texts_seen) == ["first text", "last text"]  # empties never reach the model
    assert res.n_rows == 3 and res.n_computed == 2
    arrays, _ = ws.load_artifact("embed", res.key)
    assert arrays["row_ids"].tolist() == [0, 5, 6]


def test_all_empty_texts_is_an_error(tmp_path):
    path = write_table(pa.table({"text": ["", "  ", None]}), tmp_path / "e.parquet")
    with pytest.raises(SieveError, match="empty"):
        ingest(Workspace(tmp_path / "ws"), IngestParams(str(path), TextSpec(column="text")))


# -- bring-your-own vectors -----------------------------------------------------------


def test_vector_column_is_used_instead_of_a_model(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(5, 7)) * 3
    table = pa.table({
        "text": ["a", "b", "c", "d", "e"],
        "emb": pa.array([list(v) for v in vecs[:4]] + [None], pa.list_(pa.float64())),
    })
    path = write_table(table, tmp_path / "v.parquet")
    ws = Workspace(tmp_path / "ws")
    info, _ = ingest(ws, IngestParams(str(path), TextSpec(column="text"), vector_column="emb"))
    assert info.vector_dim == 7 and info.vector_column == "emb"
    assert info.n_empty == 1  # the null vector is flagged, not dropped
    assert "emb" in info.columns

    import core.stages.embed

    def no_model(*a, **k):
        raise AssertionError("a model was loaded although the data brings its own vectors")

    monkeypatch.setattr(core.stages.embed, "load_encoder", no_model)
    res = run_embed(ws, EmbedParams())
    assert res.model_id == "column:emb" and res.dim == 7 and res.n_rows == 4 and res.n_computed == 0
    arrays, _ = ws.load_artifact("embed", res.key)
    expected = vecs[:4] / np.linalg.norm(vecs[:4], axis=1, keepdims=True)
    np.testing.assert_allclose(arrays["vectors"], expected, rtol=1e-5, atol=1e-6)
    assert arrays["row_ids"].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "emb, match",
    [
        (pa.array([[1.0, 2.0], [1.0, 2.0, 3.0]], pa.list_(pa.float64())), "different lengths"),
        (pa.array(["1,2", "3,4"]), "list of numbers"),
        (pa.array([[1.0, float("nan")], [1.0, 2.0]], pa.list_(pa.float64())), "NaN"),
        (pa.array([None, None], pa.list_(pa.float64())), "null"),
    ],
)
def test_bad_vector_column_names_the_column(tmp_path, emb, match):
    path = write_table(pa.table({"text": ["a", "b"], "emb": emb}), tmp_path / "v.parquet")
    with pytest.raises(SieveError, match=match) as exc:
        ingest(Workspace(tmp_path / "ws"), IngestParams(str(path), TextSpec(column="text"), vector_column="emb"))
    assert "'emb'" in str(exc.value)


# -- failures leave the workspace unchanged ---------------------------------------------


def _bad_inputs(tmp_path):
    good = pa.table({"text": ["x", "y"], "other": [1, 2]})
    nested = tmp_path / "nested.jsonl"
    nested.write_text('{"text": {"a": 1}, "k": 1}\n{"text": {"a": 2}, "k": 2}\n')
    reserved = write_table(pa.table({"text": ["x"], "sieve_score": [1]}), tmp_path / "reserved.parquet")
    empty = tmp_path / "empty.csv"
    empty.write_text("text,other\n")
    broken = tmp_path / "broken.json"
    broken.write_text("[{\"text\": \"a\"}, {\"text\": ")
    (tmp_path / "folder").mkdir()
    write_table(good, tmp_path / "mix" / "a.csv")
    write_table(good, tmp_path / "mix" / "b.parquet")
    ok = write_table(good, tmp_path / "good.csv")
    return {
        "missing column": (IngestParams(str(ok), TextSpec(column="nope")), "'nope'"),
        "missing template column": (IngestParams(str(ok), TextSpec(template="{text} {ghost}")), "'ghost'"),
        "missing vector column": (IngestParams(str(ok), TextSpec(column="text"), vector_column="vec"), "'vec'"),
        "non-list vector column": (IngestParams(str(ok), TextSpec(column="text"), vector_column="other"), "'other'"),
        "nested text column": (IngestParams(str(nested), TextSpec(column="text")), "'text'"),
        "reserved column": (IngestParams(str(reserved), TextSpec(column="text")), "'sieve_score'"),
        "no rows": (IngestParams(str(empty), TextSpec(column="text")), "no rows"),
        "broken file": (IngestParams(str(broken), TextSpec(column="text")), "broken.json"),
        "missing file": (IngestParams(str(tmp_path / "ghost.csv"), TextSpec(column="text")), "ghost.csv"),
        "glob without match": (IngestParams(str(tmp_path / "*.xlsx"), TextSpec(column="text")), "*.xlsx"),
        "unknown extension": (IngestParams(str(tmp_path / "folder"), TextSpec(column="text")), "folder"),
        "mixed formats": (IngestParams(str(tmp_path / "mix" / "*"), TextSpec(column="text")), "mix"),
    }


BAD_CASES = ["missing column", "missing template column", "missing vector column", "non-list vector column",
             "nested text column", "reserved column", "no rows", "broken file", "missing file",
             "glob without match", "unknown extension", "mixed formats"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_failed_ingest_names_the_problem_and_leaves_workspace_unchanged(case, tmp_path, sieve_small_table):
    good = write_table(sieve_small_table, tmp_path / "first.parquet")
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(good), TextSpec(column="text")))
    before = db_state(ws)
    params, needle = _bad_inputs(tmp_path)[case]
    with pytest.raises(SieveError) as exc:
        ingest(ws, params)
    assert isinstance(exc.value, ValueError)
    msg = str(exc.value)
    assert needle in msg and "\n" not in msg.strip()
    assert db_state(ws) == before


def test_failed_first_ingest_leaves_no_dataset(tmp_path):
    path = write_table(pa.table({"a": ["x"]}), tmp_path / "d.csv")
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(SieveError, match="'text'"):
        ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    with pytest.raises(SieveError, match="no dataset"):
        current_dataset(ws)


def test_load_column_follows_row_ids(tmp_path, sieve_small_table):
    path = write_table(sieve_small_table, tmp_path / "d.parquet")
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    assert load_column(ws, "n", np.array([5, 0, 2])).to_pylist() == [6, 1, 3]
    with pytest.raises(SieveError, match="'zzz'"):
        load_column(ws, "zzz")


# -- parameter validation: each bad field raises a ValueError naming it -----------------


def test_textspec_needs_exactly_one_of_column_or_template():
    for bad in (dict(), dict(column="text", template="{text}")):
        with pytest.raises(ValueError) as exc:
            TextSpec(**bad)
        assert "column" in str(exc.value) and "template" in str(exc.value)


@pytest.mark.parametrize("template", ["no fields here", "{}", "{unclosed"])
def test_textspec_bad_template(template):
    with pytest.raises(ValueError, match="template"):
        TextSpec(template=template)


INGEST_BAD = {
    "source": [("/definitely/not/here.csv", "/definitely/not/here.csv")],
    "text": [(TextSpec(column="missing_col"), "missing_col")],
    "vector_column": [("missing_vec", "missing_vec")],
    "file_format": [("xlsx", "file_format")],
    "delimiter": [("ab", "delimiter"), ('"', "delimiter")],
    "encoding": [("klingon-8", "encoding")],
}


def test_ingest_bad_cases_cover_every_field():
    assert set(INGEST_BAD) == {f.name for f in dataclasses.fields(IngestParams)}


@pytest.mark.parametrize("field,value,needle", [(f, v, n) for f, vs in INGEST_BAD.items() for v, n in vs])
def test_ingest_params_bad_value_names_it(field, value, needle, tmp_path):
    path = write_table(pa.table({"text": ["a", "b"]}), tmp_path / "d.csv")
    kwargs = {"source": str(path), "text": TextSpec(column="text"), field: value}
    with pytest.raises(ValueError) as exc:
        ingest(Workspace(tmp_path / "ws"), IngestParams(**kwargs))
    assert needle in str(exc.value)
