"""Issue 12: what Sieve reads is what the user wrote.

Kind 1 (text fidelity), 2 (CSV/TSV dialects and encodings), 3 (blank and invisible text),
5 (precomputed vectors with extreme values) and 8 (inline --pin/--ban lists), each on data
built here.  The property test of kind 1 is in unit/stages/test_ingest_property.py."""

from __future__ import annotations

import csv
import json
import sys
import unicodedata
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.stages import ingest as ingest_mod
from core.stages import sources as sources_mod
from core.cli.parse import parse_ids as _parse_ids
from core.stages.embed import precomputed_vectors
from core.explore_files import column_kinds, preview_source
from core.stages.export import export_rows
from core.stages.ingest import BLANK_CATEGORIES, IngestParams, blank_regex, ingest, is_blank
from core.stages.dataset import TextSpec
from core.scores import score_values
from core.store.query import run_filter
from core.store.workspace import SieveError, Workspace
from tests.fakes import query_table, run_sieve


def _ingest(tmp_path, name: str, content, **kw):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    text = kw.pop("text", None)
    spec = TextSpec(template=kw.pop("template")) if "template" in kw else TextSpec(column=text or "text")
    ws = Workspace(tmp_path / "ws")
    info, _ = ingest(ws, IngestParams(str(path), spec, **kw))
    return ws, info, path


def _rows(ws, sql="SELECT * FROM dataset ORDER BY sieve_row_id"):
    return query_table(ws, sql).to_pylist()


def _export_all(ws, tmp_path, fmt):
    n = _rows(ws, "SELECT count(*) AS n FROM dataset")[0]["n"]
    sel = SimpleNamespace(row_ids=np.arange(n), clusters=np.zeros(n, np.int32), ranks=np.arange(1, n + 1),
                          reasons=["diverse"] * n, group_sizes=None, duplicate_positions=None, labels=None)
    out = export_rows(ws, sel, {0: "c"}, tmp_path / f"out.{fmt}", fmt, keep_text=True)
    if fmt == "csv":
        with open(out, newline="", encoding="utf-8") as fh:
            return sorted(csv.DictReader(fh), key=lambda r: int(r["sieve_row_id"]))
    if fmt == "jsonl":
        return sorted((json.loads(x) for x in out.read_text().split("\n") if x), key=lambda r: r["sieve_row_id"])
    return sorted(pq.read_table(out).to_pylist(), key=lambda r: r["sieve_row_id"])


# -- kind 1: text fidelity across types and formats ------------------------------------------------


def test_numeric_looking_csv_values_keep_their_spelling_in_text_and_export(tmp_path):
    content = "question,answer,n\nWhat is the price?,2.50,7\nHow many?,7,12\nBig?,1e3,3\nCode?,007,4\nVersion?,1.10,5\n"
    ws, info, _ = _ingest(tmp_path, "qa.csv", content, template="{question} {answer}")
    rows = _rows(ws)
    assert [r["sieve_text"] for r in rows] == ["What is the price? 2.50", "How many? 7", "Big? 1e3", "Code? 007",
                                              "Version? 1.10"]
    assert info.columns["answer"] == "VARCHAR"
    assert info.columns["n"] == "BIGINT"  # every value prints back as written, so it may be a number
    out = _export_all(ws, tmp_path, "csv")
    assert [r["answer"] for r in out] == ["2.50", "7", "1e3", "007", "1.10"]
    assert [r["n"] for r in out] == ["7", "12", "3", "4", "5"]
    assert [r["answer"] for r in _export_all(ws, tmp_path, "jsonl")] == ["2.50", "7", "1e3", "007", "1.10"]
    assert [r["answer"] for r in _export_all(ws, tmp_path, "parquet")] == ["2.50", "7", "1e3", "007", "1.10"]


def test_a_template_column_of_plain_integers_stays_text(tmp_path):
    ws, info, _ = _ingest(tmp_path, "d.csv", "id,text\n7,a\n12,b\n", template="{id}: {text}")
    assert info.columns["id"] == "VARCHAR"
    assert [r["id"] for r in _export_all(ws, tmp_path, "jsonl")] == ["7", "12"]


def test_json_field_of_mixed_types_is_the_text_as_written(tmp_path):
    lines = [{"text": "Un café crème\tplease\nthanks"}, {"text": 7}, {"text": "with \"quotes\" and \\"}]
    ws, info, _ = _ingest(tmp_path, "d.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    assert [r["sieve_text"] for r in _rows(ws)] == ["Un café crème\tplease\nthanks", "7", 'with "quotes" and \\']
    for fmt in ("parquet", "jsonl", "csv"):
        assert [r["text"] for r in _export_all(ws, tmp_path, fmt)][0] == "Un café crème\tplease\nthanks"


@pytest.mark.parametrize("nested,kind", [({"a": [1, 2]}, "an object"), ([1, "b"], "an array")])
def test_json_objects_or_arrays_used_as_text_are_refused_naming_column_and_row(tmp_path, nested, kind):
    lines = [{"text": "fine", "body": "x"}, {"text": "ok", "body": "y"}, {"text": nested, "body": "z"}]
    with pytest.raises(SieveError, match=rf"column 'text' holds {kind} at row 2"):
        _ingest(tmp_path, "d.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(SieveError, match=rf"column 'text' holds {kind} at row 2"):
        ingest(Workspace(tmp_path / "ws2"), IngestParams(str(tmp_path / "d.jsonl"), TextSpec(template="{body} {text}")))


def test_parquet_utf8_binary_is_text_and_invalid_bytes_are_refused(tmp_path):
    path = tmp_path / "b.parquet"
    pq.write_table(pa.table({"text": pa.array(["café".encode(), "日本語\ttab".encode()], pa.binary())}), path)
    ws = Workspace(tmp_path / "ws")
    info, _ = ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    assert [r["sieve_text"] for r in _rows(ws)] == ["café", "日本語\ttab"]
    assert [r["text"] for r in _export_all(ws, tmp_path, "csv")] == ["café", "日本語\ttab"]
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"text": pa.array([b"ok", b"caf\xe9"], pa.binary())}), bad)
    with pytest.raises(SieveError, match="text column 'text' holds bytes that are not valid UTF-8"):
        ingest(Workspace(tmp_path / "ws3"), IngestParams(str(bad), TextSpec(column="text")))


def test_numbers_kept_as_text_are_cast_at_use(tmp_path):
    ws, info, _ = _ingest(tmp_path, "d.csv", "text,score,bad\na,0.5,1\nb,1,\"0,5\"\nc,2.50,3\nd,,4\n")
    assert info.columns["score"] == "VARCHAR"  # 2.50 would print back as 2.5
    assert info.numeric_text == ["score"]  # offered as a score column in the app, cast at use
    assert column_kinds(info.columns, info.numeric_text)["numeric"] == ["score"]
    df, cols, _ = preview_source(str(tmp_path / "d.csv"))
    assert df.attrs["numeric_text"] == ["score"] and df["score"].tolist()[:3] == ["0.5", "1", "2.50"]
    got = score_values(ws, "score", np.arange(4))
    assert got[:3].tolist() == [0.5, 1.0, 2.5] and np.isnan(got[3])
    with pytest.raises(SieveError, match=r"score_column 'bad' must be numeric, but it holds '0,5' at row 1 \(a decimal comma"):
        score_values(ws, "bad", np.arange(4))
    assert run_filter(ws, "CAST(score AS DOUBLE) > 0.7").tolist() == [1, 2]
    with pytest.raises(SieveError, match=r"CAST\(score AS DOUBLE\)"):
        run_filter(ws, "score > 0.7")


# -- kind 2: CSV/TSV dialects and encodings ------------------------------------------------------


@pytest.mark.parametrize("delim", [";", "|", "\t", ","])
def test_delimiter_is_detected_and_no_row_or_header_is_lost(tmp_path, delim):
    body = delim.join(["id", "text", "score"]) + "\n" + "".join(
        delim.join([str(i), f'"row {i}{delim} with the delimiter"' if i % 2 else f"row {i}",
                   f'"{i},5"' if delim == "," else f"{i},5"]) + "\n"
        for i in range(5))
    ws, info, _ = _ingest(tmp_path, "d.csv", body)
    assert info.delimiter == delim and info.n_rows == 5
    assert list(info.columns)[:3] == ["id", "text", "score"]
    assert [r["text"] for r in _rows(ws)] == [f"row {i}{delim} with the delimiter" if i % 2 else f"row {i}"
                                              for i in range(5)]
    assert [r["score"] for r in _rows(ws)] == [f"{i},5" for i in range(5)]  # decimal commas kept as written


def test_delimiter_option_and_header_that_looks_like_data(tmp_path):
    ws, info, _ = _ingest(tmp_path, "d.csv", "1;text\n2;hello\n3;world\n", text="text", delimiter="semicolon")
    assert info.delimiter == ";" and info.n_rows == 2
    assert list(info.columns) == ["1", "text"]  # the header is the first line, even when it looks like data


def test_a_row_with_an_unquoted_delimiter_is_refused_not_taken_as_header(tmp_path):
    with pytest.raises(SieveError) as exc:
        _ingest(tmp_path, "d.csv", "id,text\n1,Hello, world\n2,Good, morning\n3,Thanks, bye\n")
    assert "d.csv" in str(exc.value) and "has 3 fields, the header has 2" in str(exc.value)


def test_lines_starting_with_hash_are_rows_not_comments(tmp_path):
    ws, info, _ = _ingest(tmp_path, "d.csv", "id,text\n1,#hashtag rocks\n#2,comment-looking row\n3,last\n")
    assert info.n_rows == 3 and info.n_empty == 0
    assert [(r["id"], r["text"]) for r in _rows(ws)] == [("1", "#hashtag rocks"), ("#2", "comment-looking row"),
                                                         ("3", "last")]


def test_tsv_without_quoting_keeps_quotes_as_written(tmp_path):
    ws, info, _ = _ingest(tmp_path, "d.tsv", 'id\ttext\n1\t"Hello" she said\n2\tA 5" screen\n3\t""\n')
    assert [r["text"] for r in _rows(ws)] == ['"Hello" she said', 'A 5" screen', '""']
    (tmp_path / "q").mkdir()  # a TSV that does quote its fields is read with the quotes
    ws, info, _ = _ingest(tmp_path / "q", "d.tsv", 'id\ttext\n1\t"quoted\ttab"\n2\t"line\nbreak"\n')
    assert [r["text"] for r in _rows(ws)] == ["quoted\ttab", "line\nbreak"]


def test_fewer_rows_than_the_files_records_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_mod, "count_records", lambda path, delimiter, quoted=True: 4)
    with pytest.raises(SieveError, match=r"d.csv: DuckDB read 3 row\(s\) but the file has 4 record\(s\)"):
        _ingest(tmp_path, "d.csv", "text\na\nb\nc\n")


def test_non_utf8_file_is_refused_naming_the_file_and_read_with_encoding(tmp_path):
    data = "id,text\n1,Un café crème\n2,Où est la gare\n".encode("latin-1")
    with pytest.raises(SieveError) as exc:
        _ingest(tmp_path, "latin.csv", data)
    msg = str(exc.value)
    assert "latin.csv" in msg and "not UTF-8" in msg and "--encoding" in msg and "line 2" in msg
    ws, info, _ = _ingest(tmp_path, "latin.csv", data, encoding="latin-1")
    assert [r["text"] for r in _rows(ws)] == ["Un café crème", "Où est la gare"]
    assert info.encoding == "iso8859-1"
    with pytest.raises(SieveError, match="not UTF-8"):
        preview_source(str(tmp_path / "latin.csv"))
    df, _, _ = preview_source(str(tmp_path / "latin.csv"), encoding="latin-1")
    assert df["text"].tolist() == ["Un café crème", "Où est la gare"]


def test_invalid_utf8_beyond_the_checked_head_keeps_duckdbs_reason(tmp_path, monkeypatch):
    import core.stages.dialect as dialect

    monkeypatch.setattr(dialect, "UTF8_CHECK_BYTES", 16)
    monkeypatch.setattr(dialect.check_utf8, "__defaults__", (16,))
    data = ("text\n" + "".join(f"fine row {i}\n" for i in range(50))).encode() + b"caf\xe9\n"
    for name in ("late.csv", "late.jsonl"):
        body = data if name.endswith(".csv") else b"".join(
            b'{"text": "' + ln + b'"}\n' for ln in data.split(b"\n")[1:] if ln)
        with pytest.raises(SieveError) as exc:
            _ingest(tmp_path, name, body)
        assert name in str(exc.value) and "not UTF-8" in str(exc.value)


def test_reader_errors_keep_duckdbs_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(sources_mod, "MAX_LINE_BYTES", 1000)
    with pytest.raises(SieveError) as exc:
        _ingest(tmp_path, "long.csv", "text\n" + "x" * 3000 + "\n")
    assert "long.csv" in str(exc.value) and "line size" in str(exc.value).lower()
    with pytest.raises(SieveError) as exc:
        _ingest(tmp_path, "q.csv", 'id,text\n1,"unterminated\n2,b\n')
    assert "q.csv" in str(exc.value) and "unterminated" in str(exc.value).lower()


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_headers_differing_only_in_case_are_refused_by_name(tmp_path, fmt):
    path = tmp_path / f"d.{fmt}"
    if fmt == "csv":
        path.write_text("text,Text\nlower one,UPPER ONE\nlower two,UPPER TWO\n")
    elif fmt == "jsonl":
        path.write_text('{"text": "lower one", "Text": "UPPER ONE"}\n{"text": "lower two", "Text": "UPPER TWO"}\n')
    else:
        pq.write_table(pa.table({"text": ["lower one", "lower two"], "Text": ["UPPER ONE", "UPPER TWO"]}), path)
    with pytest.raises(SieveError) as exc:
        ingest(Workspace(tmp_path / "ws"), IngestParams(str(path), TextSpec(column="text")))
    msg = str(exc.value)
    assert ("'text' and 'Text'" in msg or "'Text' and 'text'" in msg) and "differ only in case" in msg


def test_a_real_column_named_like_a_rename_is_kept(tmp_path):
    ws, info, _ = _ingest(tmp_path, "d.jsonl", '{"text": "a", "text_1": "b"}\n')
    assert list(info.columns) == ["text", "text_1"]


# -- kind 3: blank and invisible text -------------------------------------------------------------


def test_unicode_blank_texts_are_counted_empty(tmp_path):
    blanks = ["\u00a0\u00a0", "\u3000", "\u200b", "\u200f", "\ufeff", "\u2028", "\u2029", "\u180e", "\u2060 \t",
              "\u00ad", "\x85", "\u202e\u2066"]
    texts = ["How do I reset my router?"] + blanks + ["\u00a0real\u200b"]
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": texts}), path)
    ws = Workspace(tmp_path / "ws")
    info, _ = ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    assert info.n_empty == len(blanks)
    assert [r["sieve_text_ok"] for r in _rows(ws)] == [True] + [False] * len(blanks) + [True]


def test_blank_sql_pattern_agrees_with_unicodedata_for_every_code_point():
    import duckdb

    cats = [chr(c) for c in range(sys.maxunicode + 1)
            if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) in BLANK_CATEGORIES and c != 0]
    others = [chr(c) for c in range(0x20, 0x30000, 97) if unicodedata.category(chr(c)) not in BLANK_CATEGORIES
              and unicodedata.category(chr(c)) != "Cs"]
    con = duckdb.connect()
    flagged = con.execute("SELECT list_transform(?, lambda s: regexp_matches(s, ?))",
                          [cats + [" " + o for o in others], blank_regex()]).fetchall()[0][0]
    assert flagged == [True] * len(cats) + [False] * len(others)
    assert all(is_blank(c) for c in cats) and not any(is_blank(o) for o in others)


# -- kind 5: precomputed vectors with extreme values ----------------------------------------------


def _vec_file(tmp_path, vectors):
    path = tmp_path / "v.jsonl"
    path.write_text("".join(json.dumps({"text": f"t{i}", "vec": v}) + "\n" for i, v in enumerate(vectors)))
    return path


def test_vector_beyond_float32_is_refused_naming_column_and_row(tmp_path):
    path = _vec_file(tmp_path, [[0.1, 0.5], [1.0, 2.0], [1e300, 0.5]])
    with pytest.raises(SieveError, match=r"vector column 'vec' has a value beyond float32's range .* at row 2"):
        ingest(Workspace(tmp_path / "ws"), IngestParams(str(path), TextSpec(column="text"), "vec"))
    proc = run_sieve("ingest", path, "--text", "text", "--vectors", "vec", "-w", tmp_path / "ws2")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "'vec'" in proc.stderr and "row 2" in proc.stderr


@pytest.mark.parametrize("bad,what", [(float("nan"), "NaN"), (None, "null")])
def test_nan_or_null_in_a_vector_is_refused_naming_the_row(tmp_path, bad, what):
    path = tmp_path / "v.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "vec": [[1.0, 2.0], [bad, 1.0]]}), path)
    with pytest.raises(SieveError, match=r"'vec' has a null, NaN or infinite value at row 1"):
        ingest(Workspace(tmp_path / "ws"), IngestParams(str(path), TextSpec(column="text"), "vec"))


def test_zero_vector_is_refused_naming_the_row(tmp_path):
    path = _vec_file(tmp_path, [[1.0, 2.0], [0.0, 0.0]])
    with pytest.raises(SieveError, match=r"'vec' has an all-zero vector at row 1"):
        ingest(Workspace(tmp_path / "ws"), IngestParams(str(path), TextSpec(column="text"), "vec"))


def test_overflowing_and_underflowing_norms_normalise_to_unit_vectors(tmp_path):
    from core.stages.embed import EmbedParams, load_embeddings, run_embed

    vectors = [[3e19, 3e19, 0.0], [1e-30, 1e-30, 0.0], [3e38, -3e38, 1.0], [1e-44, 0.0, 0.0], [1.0, 2.0, 2.0]]
    path = _vec_file(tmp_path, vectors)
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(path), TextSpec(column="text"), "vec"))
    res = run_embed(ws, EmbedParams())
    _, got = load_embeddings(ws, res.key)
    assert got.dtype == np.float32 and np.isfinite(got).all()
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-6)
    want = np.asarray(vectors, np.float64)
    want = want / np.abs(want).max(axis=1, keepdims=True)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_without_normalising_a_row_that_underflows_float32_is_refused():
    col = pa.array([[1.0, 2.0], [1e-60, 1e-60]], pa.list_(pa.float64()))
    with pytest.raises(SieveError, match=r"'vec' has a vector whose values all underflow float32 .* at row 8"):
        precomputed_vectors(np.array([7, 8]), col, "vec", normalize=False)
    ok = precomputed_vectors(np.array([7, 8]), pa.array([[1.0, 2.0], [3.0, 4.0]], pa.list_(pa.float64())), "vec",
                             normalize=False)
    assert ok.tolist() == [[1.0, 2.0], [3.0, 4.0]]


# -- kind 8: CLI lists --------------------------------------------------------------------------


def test_inline_id_lists_of_any_length(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    long = ",".join(str(i) for i in range(1000))  # far beyond a file name's 255 characters
    assert _parse_ids(long, "ban") == tuple(range(1000))
    assert _parse_ids("3, 5 7,,9", "pin") == (3, 5, 7, 9)
    (tmp_path / "ids.txt").write_text("1\n2, 3\n")
    assert _parse_ids("ids.txt", "pin") == (1, 2, 3)
    (tmp_path / "12").write_text("4,5")  # a value is a file only when that file exists
    assert _parse_ids("12", "pin") == (4, 5)
    assert _parse_ids("13", "pin") == (13,)
    with pytest.raises(SieveError, match=r"--ban: 'x7' is not a row id"):
        _parse_ids(long + ",x7", "ban")
    (tmp_path / "bad.txt").write_text("1\ntwo\n")
    with pytest.raises(SieveError, match=r"--pin: 'two' in file bad.txt is not a row id"):
        _parse_ids("bad.txt", "pin")


def test_cli_select_takes_a_ban_list_longer_than_a_file_name(sieve_fake_map, tmp_path):
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(sieve_fake_map.ws.root, ws)  # the session map stays read-only
    ids = [int(i) for i in sieve_fake_map.data.row_ids[:100]]
    out = tmp_path / "o.jsonl"
    proc = run_sieve("select", "--budget", "5", "--ban", ",".join(map(str, ids)), "-w", ws)
    assert proc.returncode == 0, proc.stderr
    proc = run_sieve("export", "--out", out, "-w", ws)
    assert proc.returncode == 0, proc.stderr
    chosen = [json.loads(x)["sieve_row_id"] for x in out.read_text().split("\n") if x]
    assert len(chosen) == 5 and not set(chosen) & set(ids)
    proc = run_sieve("select", "--budget", "5", "--ban", ",".join(map(str, ids)) + ",7x", "-w", ws)
    assert proc.returncode == 2 and "'7x' is not a row id" in proc.stderr and "Traceback" not in proc.stderr


def test_delimiter_and_encoding_go_into_the_manifest_and_reproduce(tmp_path):
    from core.manifest import build_manifest, read_manifest, write_manifest
    from core.engines.local import MapParams, build_map, load_map, reproduce, run_selection
    from core.stages.project import ProjectParams
    from core.selection import SelectParams
    from tests.fakes import HashEncoder

    rows = "".join(f"{i};Grüße et café n°{i} {'àéîõü'[i % 5] * (i % 7)};{i % 3},5\n" for i in range(40))
    path = tmp_path / "latin.csv"
    path.write_bytes(("id;text;score\n" + rows).encode("latin-1"))
    ws = Workspace(tmp_path / "ws")
    info, _ = ingest(ws, IngestParams(str(path), TextSpec(column="text"), encoding="latin-1"))
    assert info.delimiter == ";" and info.encoding == "iso8859-1" and info.n_rows == 40
    params = MapParams(project=ProjectParams(exact=True))
    enc = HashEncoder()
    data = load_map(ws, build_map(ws, params, encoder=enc))
    sel_params = SelectParams(budget=10, seed=1)
    sel = run_selection(ws, data, sel_params)
    mpath = tmp_path / "m.json"
    write_manifest(mpath, build_manifest(data, params, sel_params, sel), data)
    man = read_manifest(mpath)
    assert man["dataset"]["delimiter"] == ";" and man["dataset"]["encoding"] == "iso8859-1"
    _, again, _, _ = reproduce(Workspace(tmp_path / "fresh"), man, encoder=enc, manifest_path=mpath)
    assert again.row_ids.tolist() == sel.row_ids.tolist()
