"""The corpus of bad inputs (issue: "never lets bad input through").

Each case writes its file(s) into a folder at test time (so nothing large or binary is
committed) and says what the one-line error must mention.  ``tests/integration/test_bad_inputs.py``
runs every case through ``core``, the CLI and, for a few, the app.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class BadInput:
    name: str
    filename: str
    write: Callable[[Path], None]
    expect: tuple[str, ...]  # every fragment must appear in the message (case-insensitive)
    text: str | None = "text"
    template: str | None = None
    vectors: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)


def _text(content: str | bytes):
    def write(path: Path) -> None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return write


def _parquet(table_fn):
    def write(path: Path) -> None:
        pq.write_table(table_fn(), path)

    return write


def _csv_rows(rows: list[list[str]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


CASES: list[BadInput] = [
    BadInput("empty file", "empty.csv", _text(""), ("empty.csv", "empty")),
    BadInput("header only", "header_only.csv", _text("id,text\n"), ("header_only.csv", "no rows")),
    BadInput("empty jsonl", "empty.jsonl", _text("\n"), ("empty.jsonl",)),
    BadInput("unterminated quote", "unterminated.csv", _text('id,text\n1,hello\n2,"never closed\n3,x\n'),
             ("unterminated.csv",)),
    BadInput("ragged rows", "ragged.csv", _text("id,text\n1,hello\n2,x,y,z\n3,ok\n4,a,b\n"), ("ragged.csv",)),
    BadInput("unknown extension", "data.txt", _text("id,text\n1,a\n"), ("data.txt", "extension")),
    BadInput("parquet posing as csv", "fake.csv",
             lambda p: pq.write_table(pa.table({"id": [1], "text": ["a"]}), p), ("fake.csv",)),
    BadInput("csv posing as parquet", "fake.parquet", _text("id,text\n1,a\n"), ("fake.parquet",)),
    BadInput("binary posing as csv", "binary.csv", _text(bytes(range(256)) * 40 + os.urandom(0)), ("binary.csv",)),
    BadInput("non-utf8 bytes", "latin1.csv", _text(b"id,text\n1,caf\xe9 au lait\n2,ok\n"), ("latin1.csv", "utf-8")),
    BadInput("invalid json line", "badline.jsonl",
             _text('{"id":1,"text":"a"}\n{"id":2,"text":\n{"id":3,"text":"c"}\n'), ("badline.jsonl", "json")),
    BadInput("nested text column", "nested.parquet",
             _parquet(lambda: pa.table({"id": [1, 2], "text": [{"a": "x"}, {"a": "y"}]})), ("text", "nested")),
    BadInput("missing text column", "nocol.csv", _text("id,body\n1,a\n"), ("'text'", "not in the data")),
    BadInput("missing template column", "notpl.csv", _text("id,body\n1,a\n"), ("'title'", "not in the data"),
             text=None, template="{title}\n{body}"),
    BadInput("duplicate column names", "dupcols.csv", _text("id,text,text\n1,a,b\n"), ("dupcols.csv", "duplicate")),
    BadInput("all-null text", "allnull.parquet",
             _parquet(lambda: pa.table({"id": [1, 2], "text": pa.array([None, None], pa.string())})),
             ("allnull.parquet", "empty")),
    BadInput("all-whitespace text", "blank.jsonl",
             _text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate([" ", "\t\n", "   "]))),
             ("blank.jsonl", "empty")),
    BadInput("mixed-type vector column", "vecmixed.jsonl",
             _text('{"id":1,"text":"a","vec":[1.0,2.0]}\n{"id":2,"text":"b","vec":"1,2"}\n'),
             ("'vec'",), vectors="vec"),
    BadInput("vectors of the wrong dimension", "vecdim.parquet",
             _parquet(lambda: pa.table({"id": [1, 2, 3], "text": ["a", "b", "c"],
                                        "vec": [[1.0, 2.0], [1.0], [3.0, 4.0]]})), ("'vec'", "lengths"),
             vectors="vec"),
    BadInput("NaN inside vectors", "vecnan.parquet",
             _parquet(lambda: pa.table({"id": [1, 2], "text": ["a", "b"],
                                        "vec": [[1.0, float("nan")], [1.0, 2.0]]})), ("'vec'", "nan"),
             vectors="vec"),
    BadInput("missing file", "does_not_exist.csv", None, ("does_not_exist.csv", "does not exist")),
    BadInput("glob matching nothing", "nothing_*.parquet", None, ("nothing_*.parquet",)),
]


def write_case(case: BadInput, folder: Path) -> Path:
    path = folder / case.filename
    if case.write is not None:
        case.write(path)
    return path


GOOD_WEIRD_COLUMNS = ['my text', 'say "hi"', "select", "drop table dataset;--", "it's"]


def weird_columns_table(n: int = 30) -> pa.Table:
    """Valid data whose column names contain spaces, quotes and SQL."""
    words = ["bread", "python", "brakes", "garden", "chords"]
    return pa.table({
        GOOD_WEIRD_COLUMNS[0]: [f"question {i} about {words[i % 5]} and more {words[(i + 1) % 5]}" for i in range(n)],
        GOOD_WEIRD_COLUMNS[1]: [f"v{i}" for i in range(n)],
        GOOD_WEIRD_COLUMNS[2]: list(range(n)),
        GOOD_WEIRD_COLUMNS[3]: [i / n for i in range(n)],
        GOOD_WEIRD_COLUMNS[4]: ["x"] * n,
    })
