"""Property tests of the loaders: any table (odd column names, unicode text with quotes,
commas and newlines, nulls) written as CSV, JSONL or Parquet is ingested with every row
and column kept, stable ids in file order, the text intact, and empties flagged."""

from __future__ import annotations

import csv
import json
import re
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.ingest import IngestParams, TextSpec, ingest
from core.workspace import Workspace, fetch_arrow, quote_ident

# RE2's \s (what the ingest uses to call a text empty) is [\t\n\f\r ].
_BLANK = re.compile(r"[\t\n\f\r ]*")

names = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters=" \"';-_é"),
    min_size=1, max_size=12,
).map(str.strip).filter(lambda s: s and s[0].isalpha() and not s.lower().startswith("sieve_") and s != "text")

# Texts start with a letter so that no format reads them back as numbers.
texts = st.one_of(
    st.none(),
    st.just(""),
    st.sampled_from(["  ", "\t\n"]),
    st.builds(lambda a, b: a + b, st.sampled_from(["q", "Ü", "x"]),
              st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\x00"),
                      max_size=40)),
)


@st.composite
def tables(draw):
    n = draw(st.integers(1, 20))
    extra = draw(st.lists(names, min_size=0, max_size=3, unique_by=str.lower))
    cols = {"text": draw(st.lists(texts, min_size=n, max_size=n))}
    for i, name in enumerate(extra):
        if i % 2 == 0:
            cols[name] = draw(st.lists(st.integers(-10**6, 10**6), min_size=n, max_size=n))
        else:
            cols[name] = draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=n, max_size=n))
    # at least one embeddable text, or ingest (correctly) refuses the file
    if all(t is None or _BLANK.fullmatch(t) for t in cols["text"]):
        cols["text"][0] = "a real text"
    return pa.table(cols)


def _write(table: pa.Table, fmt: str, folder: Path) -> Path:
    path = folder / f"data.{fmt}"
    rows = table.to_pylist()
    if fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    else:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(table.column_names)
            for r in rows:
                w.writerow(["" if v is None else v for v in r.values()])
    return path


def _check(table: pa.Table, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(table, fmt, Path(tmp))
        ws = Workspace(Path(tmp) / "ws")
        info, cached = ingest(ws, IngestParams(str(path), TextSpec(column="text")))
        assert not cached
        assert info.n_rows == table.num_rows
        assert set(table.column_names) <= set(info.columns)  # every column kept, names intact
        with ws.connect() as con:
            got = fetch_arrow(con, "SELECT sieve_row_id, sieve_text, sieve_text_ok, "
                              + ", ".join(quote_ident(c) for c in table.column_names)
                              + " FROM dataset ORDER BY sieve_row_id")
        assert got.column("sieve_row_id").to_pylist() == list(range(table.num_rows))  # ids follow file order
        want = table.column("text").to_pylist()
        for got_text, ok, orig in zip(got.column("sieve_text").to_pylist(), got.column("sieve_text_ok").to_pylist(),
                                      want):
            empty = orig is None or bool(_BLANK.fullmatch(orig))
            assert ok == (not empty)
            if not empty:
                assert got_text == orig  # quotes, commas, newlines and unicode survive
        assert info.n_empty == sum(1 for t in want if t is None or _BLANK.fullmatch(t))
        for name in table.column_names[1:]:
            a, b = got.column(name).to_pylist(), table.column(name).to_pylist()
            assert all(abs(float(x) - float(y)) <= 1e-3 * max(1.0, abs(float(y))) for x, y in zip(a, b))
        again, cached = ingest(ws, IngestParams(str(path), TextSpec(column="text")))
        assert cached and again.key == info.key  # the same file is a cache hit with the same ids


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(tables())
def test_parquet_round_trip(table):
    _check(table, "parquet")


@SETTINGS
@given(tables())
def test_jsonl_round_trip(table):
    _check(table, "jsonl")


@SETTINGS
@given(tables())
def test_csv_round_trip(table):
    _check(table, "csv")
