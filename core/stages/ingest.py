"""Ingest: read CSV/TSV/JSON/JSONL/Parquet (a path or a glob) into the workspace.

The dataset table ``dataset`` keeps every original column and adds:

- ``sieve_row_id``  stable id: the row's position in the input (files in sorted order)
- ``sieve_text``    the text to embed (one column, or a template over several)
- ``sieve_text_ok`` false for null, empty or blank texts (kept, never embedded): blank means
  made only of Unicode separators, control and format characters (categories Zs, Zl, Zp,
  Cc, Cf: NBSP, U+3000, zero-width space, RLM, BOM, ...), see :func:`is_blank`
- ``sieve_text_hash`` md5 of the text (the embedding cache key)

Text is kept as written (issue 12): CSV/TSV are read with every column as VARCHAR
(then a column is typed BIGINT or DOUBLE only when every value prints back exactly as
written, so ``2.50``, ``007`` and ``1e3`` stay strings); a JSON field whose type varies
between rows is read as the strings/numbers as written (objects and arrays are refused
as text, naming the column and row); Parquet BINARY that is valid UTF-8 becomes text.

Everything happens in one DuckDB transaction: a failure leaves the workspace as it was.
"""

from __future__ import annotations

import functools
import glob as globlib
import hashlib
import re
import string
import sys
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
import json
import csv

import duckdb
import numpy as np
import pyarrow.parquet as pq

from core.stages.dialect import (count_records, normal_encoding, parse_delimiter, reader_error, sniff_delimiter,
                      uses_quotes, utf8_files)
from core.store.workspace import DATASET_TABLE, SieveError, Workspace, fetch_arrow
from core.store.artifacts import stage_key
from core.store.sql import quote_ident

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
RESERVED_PREFIX = "sieve_"
MAX_LINE_BYTES = 64 * 1024 * 1024  # one CSV line (DuckDB's default is 2 MB)
META_DATASET = "dataset"
BLANK_CATEGORIES = ("Zs", "Zl", "Zp", "Cc", "Cf")
FLOAT32_MAX = 3.4028234663852886e38
RAW_ROWS = "(SELECT (row_number() OVER (ORDER BY rowid)) - 1 AS sieve_pos, * FROM sieve_raw)"  # row = sieve_row_id

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class TextSpec:
    """Where the text comes from: one column, or a template like ``{instruction}\\n{input}``."""

    column: str | None = None
    template: str | None = None

    def __post_init__(self):
        if (self.column is None) == (self.template is None):
            raise SieveError("text: give exactly one of a text column or a template")
        if self.template is not None and not template_fields(self.template):
            raise SieveError(f"template {self.template!r} names no column; write columns as {{name}}")

    def describe(self) -> str:
        return f"column {self.column!r}" if self.column is not None else f"template {self.template!r}"


@dataclass(frozen=True)
class IngestParams:
    source: str | tuple[str, ...]
    text: TextSpec
    vector_column: str | None = None
    file_format: str | None = None  # None: from the file extension
    delimiter: str | None = None  # CSV/TSV; None: detected (tab for .tsv)
    encoding: str | None = None  # text files; None: UTF-8 (anything else is refused, naming the file)

    def __post_init__(self):
        if self.file_format is not None and self.file_format not in set(FORMATS.values()):
            raise SieveError(
                f"file_format={self.file_format!r} is not one of {sorted(set(FORMATS.values()))}"
            )
        object.__setattr__(self, "delimiter", parse_delimiter(self.delimiter))
        object.__setattr__(self, "encoding", normal_encoding(self.encoding))


@dataclass
class DatasetInfo:
    key: str
    sources: list[str]
    fingerprint: str
    text: TextSpec
    vector_column: str | None
    n_rows: int
    n_empty: int
    n_duplicates: int
    columns: dict[str, str] = field(default_factory=dict)
    vector_dim: int | None = None
    delimiter: str | None = None  # the CSV/TSV delimiter used (given or detected)
    encoding: str | None = None  # the encoding given (None: UTF-8)
    numeric_text: list[str] = field(default_factory=list)  # VARCHAR columns whose every value is a number

    @property
    def n_embeddable(self) -> int:
        return self.n_rows - self.n_empty

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "sources": self.sources,
            "fingerprint": self.fingerprint,
            "text": {"column": self.text.column, "template": self.text.template},
            "vector_column": self.vector_column,
            "n_rows": self.n_rows,
            "n_empty": self.n_empty,
            "n_duplicates": self.n_duplicates,
            "columns": self.columns,
            "vector_dim": self.vector_dim,
            "delimiter": self.delimiter,
            "encoding": self.encoding,
            "numeric_text": self.numeric_text,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "DatasetInfo":
        d = dict(d)
        d["text"] = TextSpec(**d["text"])
        return cls(**d)


def template_fields(template: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise SieveError(f"template {template!r} is malformed: {exc}") from exc
    return [f for _, f, _, _ in parsed if f is not None and f != ""]


def unescape_template(template: str) -> str:
    """Turn the two-character sequences ``\\n`` and ``\\t`` typed in a shell into real ones."""
    return template.replace("\\n", "\n").replace("\\t", "\t")


def resolve_sources(source: str | Path | list | tuple) -> list[Path]:
    """Expand a path, a glob or a list of paths into a sorted list of existing files."""
    if isinstance(source, (list, tuple)):
        if not source:
            raise SieveError("no input file given")
        return [p for s in source for p in resolve_sources(s)]
    src = str(source)
    if "\x00" in src or any(ord(ch) < 32 and ch not in "\t" for ch in src):
        raise SieveError(f"file name {src!r} contains a control character (e.g. NUL); rename the file")
    if any(ch in src for ch in "*?["):
        paths = sorted(Path(p) for p in globlib.glob(src, recursive=True) if Path(p).is_file())
        if not paths:
            raise SieveError(f"no file matches {src}")
    else:
        p = Path(src).expanduser()
        if not p.exists():
            raise SieveError(f"file {src} does not exist")
        if p.is_dir():
            raise SieveError(f"{src} is a folder; give a file or a glob such as {src}/*.parquet")
        paths = [p]
    for p in paths:
        if p.stat().st_size == 0:
            raise SieveError(f"file {p} is empty")
    return [p.resolve() for p in paths]


def detect_format(paths: list[Path], file_format: str | None) -> str:
    if file_format:
        return file_format
    kinds = set()
    for p in paths:
        suffixes = [s.lower() for s in p.suffixes]
        ext = next((s for s in reversed(suffixes) if s in FORMATS), None)
        if ext is None:
            raise SieveError(
                f"file {p} has an unknown extension {p.suffix!r}; expected one of {sorted(FORMATS)}"
            )
        kinds.add(FORMATS[ext])
    if len(kinds) > 1:
        raise SieveError(f"the files mix formats {sorted(kinds)}; load one format at a time")
    return kinds.pop()


def fingerprint_files(paths: list[Path]) -> str:
    """sha256 over the names' order and every file's bytes."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\x00")
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def reader_sql(fmt: str, delimiter: str | None = None, quoted: bool = True) -> str:
    """A DuckDB table function over the bound file list ``?``.

    CSV/TSV: the header is always the first line (``header=true, skip=0``: DuckDB never
    takes a data row as the header), RFC 4180 quoting (an unterminated quote is an
    error), ``delimiter`` (default ``,``; tab for tsv) and every column as VARCHAR so
    values keep their spelling (see :func:`column_casts`).  No comment character: DuckDB's
    sniffer would otherwise take a line starting with ``#`` for a comment and drop it.
    ``quoted=False`` (TSV without quoting): quotes are plain characters."""
    if fmt in ("csv", "tsv"):
        d = delimiter or ("\t" if fmt == "tsv" else ",")
        lit = d.replace("'", "''")
        quote = "quote='\"', escape='\"'" if quoted else "quote='', escape=''"
        return (f"read_csv(?, header=true, skip=0, delim='{lit}', {quote}, comment='', "
                f"all_varchar=true, union_by_name=true, max_line_size={MAX_LINE_BYTES})")
    if fmt == "json":
        return "read_json(?, format='auto', union_by_name=true)"
    if fmt == "jsonl":
        return "read_json(?, format='newline_delimited', union_by_name=true)"
    if fmt == "parquet":
        return "read_parquet(?, union_by_name=true)"
    raise SieveError(f"file_format={fmt!r} is not supported")


@functools.cache
def blank_regex() -> str:
    """An RE2 pattern matching texts made only of characters of the Unicode categories
    Zs, Zl, Zp, Cc and Cf (Python's ``unicodedata`` tables), e.g. NBSP, U+3000, U+200B,
    U+200F, U+FEFF, tabs and newlines."""
    ranges: list[list[int]] = []
    for c in range(sys.maxunicode + 1):
        if 0xD800 <= c <= 0xDFFF or unicodedata.category(chr(c)) not in BLANK_CATEGORIES:
            continue
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    cls = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)
    return f"^[{cls}]*$"


def is_blank(text: str | None) -> bool:
    """True for None and for texts made only of Zs/Zl/Zp/Cc/Cf characters (what ingest flags empty)."""
    return text is None or all(unicodedata.category(ch) in BLANK_CATEGORIES for ch in text)


def text_expression(spec: TextSpec, columns: dict[str, str]) -> tuple[str, list[str]]:
    """SQL that builds the text, and its bound parameters (template literals)."""
    if spec.column is not None:
        _require_column(spec.column, columns, "text column")
        _require_scalar(spec.column, columns[spec.column], "text column")
        return as_text(spec.column, columns[spec.column]), []
    parts, params = [], []
    for literal, fld, _, _ in string.Formatter().parse(spec.template):
        if literal:
            parts.append("?")
            params.append(literal)
        if fld:
            _require_column(fld, columns, "template column")
            _require_scalar(fld, columns[fld], "template column")
            parts.append(f"coalesce({as_text(fld, columns[fld])}, '')")
    return "concat(" + ", ".join(parts) + ")", params


def as_text(name: str, dtype: str) -> str:
    q = quote_ident(name)
    if dtype.upper() == "JSON":  # scalars as written: strings unquoted, numbers as JSON prints them
        return f"({q} ->> '$')"
    return f"CAST({q} AS VARCHAR)"


def _require_column(name: str, columns: dict[str, str], what: str) -> None:
    if name not in columns:
        shown = ", ".join(repr(c) for c in list(columns)[:20])
        raise SieveError(f"{what} {name!r} is not in the data; columns are {shown}")


def _require_scalar(name: str, dtype: str, what: str) -> None:
    if any(tok in dtype.upper() for tok in ("STRUCT", "MAP", "[]", "LIST", "UNION")):
        raise SieveError(f"{what} {name!r} has nested type {dtype}; choose a column of plain text")
    if dtype.upper() == "BLOB":
        raise SieveError(f"{what} {name!r} holds bytes that are not valid UTF-8 text; choose a column of text")


def _check_text_rows(con, spec: TextSpec, columns: dict[str, str]) -> None:
    """Refuse JSON objects/arrays in a text or template column, naming the column and row."""
    names = [spec.column] if spec.column is not None else template_fields(spec.template)
    for name in names:
        if columns.get(name, "").upper() != "JSON":
            continue
        q = quote_ident(name)
        row = con.execute(f"SELECT sieve_pos, json_type({q}) FROM {RAW_ROWS} WHERE json_type({q}) IN ('OBJECT', 'ARRAY') "
                          "ORDER BY sieve_pos LIMIT 1").fetchall()
        if row:
            kind = "an object" if row[0][1] == "OBJECT" else "an array"
            raise SieveError(f"column {name!r} holds {kind} at row {row[0][0]}, not text; Sieve embeds text as written, "
                             "so choose a column of strings or a template over plain fields")


def ingest(ws: Workspace, params: IngestParams, progress: Progress | None = None, *,
           keep_previous: bool = False) -> tuple[DatasetInfo, bool]:
    """Load ``params.source`` into the workspace.  Returns (info, cached).

    Raises SieveError (one line naming the file or column) for unreadable files, files
    that are not UTF-8 (or not in ``params.encoding``), CSV rows whose field count
    differs from the header, headers repeated (even only by case), and bad vectors.
    ``keep_previous``: keep the replaced dataset table as ``sieve_previous_dataset`` so
    :func:`restore_dataset` can put it back (``sieve reproduce`` undoes a failed run)."""
    paths = resolve_sources(params.source)
    fmt = detect_format(paths, params.file_format)
    if progress:
        progress(0, 3, "fingerprinting files")
    fingerprint = fingerprint_files(paths)
    spec = {"text": params.text, "vectors": params.vector_column, "format": fmt, "reader": READER_VERSION}
    if params.delimiter or params.encoding:
        spec.update(delimiter=params.delimiter, encoding=params.encoding)
    key = stage_key("ingest", spec, fingerprint)
    with ws.lock("ingest"):
        current = ws.get_meta(META_DATASET)
        if current and current.get("key") == key:
            return DatasetInfo.from_dict(current), True
        if progress:
            progress(1, 3, f"reading {len(paths)} file(s)")
        with tempfile.TemporaryDirectory(prefix="sieve-ingest-") as tmp:
            files = utf8_files(paths, fmt, params.encoding, Path(tmp))
            delim = None
            if fmt in ("csv", "tsv"):
                delim = params.delimiter or sniff_delimiter(Path(files[0]), fmt)
            info = _load_transaction(ws, paths, files, fmt, delim, params, key, fingerprint,
                                     keep_previous=keep_previous)
        if progress:
            progress(3, 3, "loaded")
        return info, False


PREVIOUS_TABLE = "sieve_previous_dataset"
RESTORED_META = ("dataset", "map", "selection")  # the workspace's current pointers


def _has_table(con, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary",
                            [name]).fetchall()[0][0])


def _stash_dataset(con) -> None:
    con.execute(f"DROP TABLE IF EXISTS {PREVIOUS_TABLE}")
    if _has_table(con, DATASET_TABLE):
        con.execute(f"ALTER TABLE {DATASET_TABLE} RENAME TO {PREVIOUS_TABLE}")


def saved_pointers(ws: Workspace) -> dict:
    """The workspace's current dataset/map/selection pointers, for :func:`restore_dataset`."""
    return {k: ws.get_meta(k) for k in RESTORED_META}


def restore_dataset(ws: Workspace, saved: dict) -> None:
    """Put back the dataset table stashed by ``ingest(keep_previous=True)`` and the pointers
    ``saved`` (from :func:`saved_pointers`), in one transaction."""
    with ws.connect() as con:
        con.execute("BEGIN TRANSACTION")
        rows = con.execute("SELECT value FROM sieve_meta WHERE key = 'dataset'").fetchall()
        now = json.loads(rows[0][0]).get("key") if rows else None
        before = (saved.get("dataset") or {}).get("key")
        if now != before:
            if _has_table(con, PREVIOUS_TABLE):
                con.execute(f"DROP TABLE IF EXISTS {DATASET_TABLE}")
                con.execute(f"ALTER TABLE {PREVIOUS_TABLE} RENAME TO {DATASET_TABLE}")
            elif before is None:
                con.execute(f"DROP TABLE IF EXISTS {DATASET_TABLE}")
        for k, v in saved.items():
            if v is None:
                con.execute("DELETE FROM sieve_meta WHERE key = ?", [k])
            else:
                ws.set_meta(k, v, con=con)
        con.execute("COMMIT")


def drop_previous_dataset(ws: Workspace) -> None:
    with ws.connect() as con:
        con.execute(f"DROP TABLE IF EXISTS {PREVIOUS_TABLE}")


READER_VERSION = 2  # 2: text as written (issue 12)


def _load_transaction(ws, paths, files, fmt, delim, params, key, fingerprint, *,
                      keep_previous: bool = False) -> DatasetInfo:
    with ws.connect() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            if keep_previous:
                _stash_dataset(con)
            info = _load(con, paths, files, fmt, delim, params, key, fingerprint)
            ws.set_meta(META_DATASET, info.to_dict(), con=con)
            con.execute("COMMIT")
        except SieveError:
            con.execute("ROLLBACK")
            raise
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise reader_error(exc, _name(paths), fmt, [Path(f) for f in files], delim) from exc
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return info


def read_raw(con, files: list[str], fmt: str, delim: str | None, paths: list[Path],
             limit: int | None = None, text_columns: frozenset[str] = frozenset()) -> dict[str, str]:
    """Read the files (or their first ``limit`` rows) into the temp table ``sieve_raw``
    with values as written; returns {column: DuckDB type}.  CSV/TSV ``text_columns``
    stay VARCHAR.  Used by ingest, the Data page's preview and the reference set."""
    con.execute("DROP TABLE IF EXISTS sieve_raw")
    cut = f" LIMIT {int(limit)}" if limit is not None else ""
    quoted = all(uses_quotes(Path(f), fmt, delim or "\t") for f in files) if fmt == "tsv" else True
    con.execute(f"CREATE TEMP TABLE sieve_raw AS SELECT * FROM {reader_sql(fmt, delim, quoted)}{cut}", [files])
    described = con.execute("DESCRIBE sieve_raw").fetchall()
    columns = {row[0]: row[1] for row in described}
    if len(columns) != len(described):
        raise SieveError(f"{_name(paths)} has duplicate column names")
    check_headers(con, files, fmt, delim, paths, columns)
    casts = column_casts(con, fmt, columns, text_columns)
    if casts:
        exprs = ", ".join(casts.get(c, quote_ident(c)) + f" AS {quote_ident(c)}" for c in columns)
        con.execute(f"CREATE TEMP TABLE sieve_raw2 AS SELECT {exprs} FROM sieve_raw ORDER BY rowid")
        con.execute("DROP TABLE sieve_raw")
        con.execute("ALTER TABLE sieve_raw2 RENAME TO sieve_raw")
        columns = {row[0]: row[1] for row in con.execute("DESCRIBE sieve_raw").fetchall()}
    return columns


def _load(con, paths: list[Path], files: list[str], fmt: str, delim: str | None, params: IngestParams, key: str,
          fingerprint: str) -> DatasetInfo:
    spec = params.text
    columns = read_raw(con, files, fmt, delim, paths,
                       text_columns=frozenset([spec.column] if spec.column is not None else template_fields(spec.template)))
    reserved = [c for c in columns if c.lower().startswith(RESERVED_PREFIX)]
    if reserved:
        raise SieveError(f"column {reserved[0]!r} in {_name(paths)} uses the reserved prefix {RESERVED_PREFIX!r}")
    n_rows = con.execute("SELECT count(*) FROM sieve_raw").fetchall()[0][0]
    if fmt in ("csv", "tsv"):
        _check_row_count(n_rows, files, fmt, delim, paths)
    if n_rows == 0:
        if fmt in ("csv", "tsv") and any(_has_body(Path(f)) for f in files):
            raise SieveError(f"{_name(paths)} looks malformed: its header was read but no row could be parsed "
                             "(an unterminated quote?)")
        raise SieveError(f"{_name(paths)} has no rows")
    text_sql, text_params = text_expression(params.text, columns)
    _check_text_rows(con, params.text, columns)
    numeric_text = numeric_text_columns(con, columns)
    vector_dim = None
    if params.vector_column is not None:
        vector_dim = _check_vector_column(con, params.vector_column, columns)
    has_vector = f" AND {quote_ident(params.vector_column)} IS NOT NULL" if params.vector_column else ""
    con.execute(f"DROP TABLE IF EXISTS {DATASET_TABLE}")
    con.execute(
        f"""
        CREATE TABLE {DATASET_TABLE} AS
        SELECT *,
               sieve_text IS NOT NULL AND NOT regexp_matches(sieve_text, ?){has_vector} AS sieve_text_ok,
               md5(coalesce(sieve_text, '')) AS sieve_text_hash
        FROM (
            SELECT (row_number() OVER (ORDER BY rowid)) - 1 AS sieve_row_id, *, {text_sql} AS sieve_text
            FROM sieve_raw
        )
        """,
        [blank_regex(), *text_params],
    )
    con.execute("DROP TABLE sieve_raw")
    n_empty, n_distinct = con.execute(
        f"SELECT count(*) FILTER (WHERE NOT sieve_text_ok), "
        f"count(DISTINCT sieve_text_hash) FILTER (WHERE sieve_text_ok) FROM {DATASET_TABLE}"
    ).fetchall()[0]
    if n_empty == n_rows:
        what = f"vector column {params.vector_column!r}" if params.vector_column else f"text {params.text.describe()}"
        raise SieveError(f"every row of {_name(paths)} has an empty {what}; nothing to embed")
    return DatasetInfo(
        key=key, sources=[str(p) for p in paths], fingerprint=fingerprint, text=params.text,
        vector_column=params.vector_column, n_rows=int(n_rows), n_empty=int(n_empty),
        n_duplicates=int(n_rows - n_empty - n_distinct), columns=columns, vector_dim=vector_dim,
        delimiter=delim, encoding=params.encoding, numeric_text=numeric_text,
    )


def column_casts(con, fmt: str, columns: dict[str, str], text_columns: frozenset[str] = frozenset()) -> dict[str, str]:
    """SQL per column that types it without changing any value's spelling.

    CSV/TSV (read as VARCHAR): BIGINT when every value prints back as written
    (``7``, ``-12``), else DOUBLE when every value does (``0.5``), else VARCHAR
    (``2.50``, ``007``, ``1e3``, ``1.10``); ``text_columns`` (the text and template
    columns) always stay VARCHAR, so their exports are strings too.  JSON fields of varying type whose values
    are all scalars: the strings and numbers as written.  BLOB that is valid UTF-8 in
    every row: VARCHAR."""
    casts: dict[str, str] = {}
    if fmt in ("csv", "tsv"):
        cols = [c for c, t in columns.items() if t.upper() == "VARCHAR" and c not in text_columns]
        if not cols:
            return casts
        checks = []
        for c in cols:
            q = quote_ident(c)
            checks += [f"count({q}) > 0 AND bool_and({q} IS NULL OR "
                       f"coalesce(CAST(TRY_CAST({q} AS {t}) AS VARCHAR) = {q}, false))" for t in ("BIGINT", "DOUBLE")]
        flags = con.execute(f"SELECT {', '.join(checks)} FROM sieve_raw").fetchall()[0]
        for i, c in enumerate(cols):
            if flags[2 * i]:
                casts[c] = f"CAST({quote_ident(c)} AS BIGINT)"
            elif flags[2 * i + 1]:
                casts[c] = f"CAST({quote_ident(c)} AS DOUBLE)"
        return casts
    for c, t in columns.items():
        q = quote_ident(c)
        if t.upper() == "JSON":
            nested = con.execute(f"SELECT count(*) FROM sieve_raw WHERE json_type({q}) IN ('OBJECT', 'ARRAY')"
                                 ).fetchall()[0][0]
            if not nested:
                casts[c] = f"({q} ->> '$')"
        elif t.upper() == "BLOB":
            bad = con.execute(f"SELECT count(*) FROM sieve_raw WHERE {q} IS NOT NULL AND try(decode({q})) IS NULL"
                              ).fetchall()[0][0]
            if not bad:
                casts[c] = f"decode({q})"
    return casts


def _check_row_count(n_rows: int, files: list[str], fmt: str, delim: str | None, paths: list[Path]) -> None:
    """Refuse a CSV/TSV when DuckDB read fewer rows than the standard library's parser
    finds records (a row must never go missing silently)."""
    counts = [count_records(Path(f), delim or ",", uses_quotes(Path(f), fmt, delim or ",")) for f in files]
    if any(c is None for c in counts):
        return
    if n_rows < sum(counts):
        raise SieveError(f"{_name(paths)}: DuckDB read {n_rows} row(s) but the file has {sum(counts)} record(s) "
                         f"after the header (delimiter {delim!r}); check its quoting or give --delimiter")


def numeric_text_columns(con, columns: dict[str, str]) -> list[str]:
    """The VARCHAR columns of ``sieve_raw`` whose every non-null value parses as a number
    (``2.50``, ``007``, ``1e3``): kept as written, but offered as score columns and cast
    at use (:func:`core.pipeline.score_values`)."""
    cols = [c for c, t in columns.items() if t.upper() == "VARCHAR"]
    if not cols:
        return []
    checks = [f"count({quote_ident(c)}) > 0 AND bool_and({quote_ident(c)} IS NULL OR "
              f"TRY_CAST(trim({quote_ident(c)}) AS DOUBLE) IS NOT NULL)" for c in cols]
    flags = con.execute(f"SELECT {', '.join(checks)} FROM sieve_raw").fetchall()[0]
    return [c for c, ok in zip(cols, flags) if ok]


def _has_body(path: Path) -> bool:
    """True when a text file has something after its first line."""
    with open(path, "rb") as fh:
        fh.readline()
        return bool(fh.read(4096).strip())


def header_names(paths: list[Path], fmt: str, delim: str | None, con=None) -> list[list[str]]:
    """Each file's column names exactly as written (CSV/TSV header record, Parquet
    schema, JSON object keys)."""
    out = []
    for p in paths:
        if fmt in ("csv", "tsv"):
            with open(p, newline="", encoding="utf-8-sig", errors="replace") as fh:
                rec = next(csv.reader(fh, delimiter=delim or ",", quotechar='"', doublequote=True), [])
            out.append([n for n in rec if n.strip()])
        elif fmt == "parquet":
            out.append(list(pq.read_schema(p).names))
        elif con is not None:
            form = "newline_delimited" if fmt == "jsonl" else "auto"
            keys = con.execute(f"SELECT DISTINCT unnest(json_keys(json)) FROM read_json_objects(?, format='{form}')",
                               [str(p)]).fetchall()
            out.append(sorted(k[0] for k in keys))
    return out


def check_headers(con, files: list[str], fmt: str, delim: str | None, paths: list[Path],
                  columns: dict[str, str]) -> None:
    """Refuse column names repeated in a file, also when they differ only in case
    (DuckDB's names are case-insensitive and it would rename ``Text`` to ``Text_1``),
    and check that each CSV header was read as the header."""
    suspicious = any(re.fullmatch(r"(.+)_\d+", c) and re.fullmatch(r"(.+)_\d+", c).group(1).lower()
                     in {k.lower() for k in columns if k != c} for c in columns)
    if fmt in ("json", "jsonl") and not suspicious:
        return
    for p, names in zip(paths, header_names([Path(f) for f in files], fmt, delim, con)):
        seen: dict[str, str] = {}
        for n in names:
            other = seen.setdefault(n.lower(), n)
            if other != n or names.count(n) > 1:
                same = "" if other == n else " (they differ only in case; Sieve's tables ignore case)"
                raise SieveError(f"{p} has duplicate column names {other!r} and {n!r}{same}; rename one so each "
                                 "column is unique")
        lost = [n for n in names if n not in columns] if fmt in ("csv", "tsv") else []
        if lost:
            raise SieveError(f"{p}: the header's column {lost[0]!r} was not read as a column (delimiter "
                             f"{delim!r}); give --delimiter")


def _check_vector_column(con, name: str, columns: dict[str, str]) -> int:
    _require_column(name, columns, "vector column")
    dtype = columns[name].upper()
    numeric = ("FLOAT", "DOUBLE", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "DECIMAL", "HUGEINT", "REAL",
               "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT")
    if not (dtype.endswith("]") and any(dtype.startswith(t) for t in numeric)):
        raise SieveError(f"vector column {name!r} has type {columns[name]}; expected a list of numbers")
    q = quote_ident(name)
    lo, hi = con.execute(f"SELECT min(len({q})), max(len({q})) FROM sieve_raw WHERE {q} IS NOT NULL").fetchall()[0]
    if lo is None:
        raise SieveError(f"vector column {name!r} is entirely null")
    if lo != hi:
        raise SieveError(f"vector column {name!r} has vectors of different lengths ({lo} to {hi})")
    if lo == 0:
        raise SieveError(f"vector column {name!r} holds empty vectors")
    _check_vector_values(con, name)
    return int(lo)


def _check_vector_values(con, name: str) -> None:
    """Refuse, naming the column and the first row: null/NaN/infinite values, values
    beyond float32's range (|x| > 3.4e38) and all-zero vectors (no direction)."""
    q = quote_ident(name)
    elems = f"{q}::DOUBLE[]"
    checks = [  # (a row's condition, what it holds, what to do)
        (f"len(list_filter({elems}, lambda x: x IS NULL OR isnan(x) OR isinf(x))) > 0",
         "a null, NaN or infinite value", "fix or drop those rows"),
        (f"len(list_filter({elems}, lambda x: abs(x) > {FLOAT32_MAX!r})) > 0",
         "a value beyond float32's range (|x| > 3.4e38)", "fix or drop those rows"),
        (f"list_max(list_transform({elems}, lambda x: abs(x))) = 0",
         "an all-zero vector", "a zero vector has no direction, fix or drop those rows"),
    ]
    for cond, what, fix in checks:
        row = con.execute(f"SELECT sieve_pos, count(*) OVER () FROM {RAW_ROWS} WHERE {q} IS NOT NULL AND {cond} "
                          "ORDER BY sieve_pos LIMIT 1").fetchall()
        if row:
            raise SieveError(f"vector column {name!r} has {what} at row {row[0][0]} ({row[0][1]} row(s) in all); {fix}")


def _name(paths: list[Path]) -> str:
    return str(paths[0]) if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} more files)"


# -- readers used by later stages --------------------------------------------------


def current_dataset(ws: Workspace) -> DatasetInfo:
    d = ws.get_meta(META_DATASET)
    if not d:
        raise SieveError(f"workspace {ws.root} has no dataset yet; run `sieve ingest DATA --text COLUMN` first")
    return DatasetInfo.from_dict(d)


def load_texts(ws: Workspace, *, only_ok: bool = True):
    """(row_ids int64 array, texts list[str], hashes list[str]) in row-id order."""
    where = "WHERE sieve_text_ok" if only_ok else ""
    with ws.connect() as con:
        tbl = fetch_arrow(
            con,
            f"SELECT sieve_row_id, sieve_text, sieve_text_hash FROM {DATASET_TABLE} {where} ORDER BY sieve_row_id"
        )
    row_ids = tbl.column(0).to_numpy().astype(np.int64)
    return row_ids, tbl.column(1).to_pylist(), tbl.column(2).to_pylist()


def load_column(ws: Workspace, column: str, row_ids=None):
    """One original column, in row-id order (optionally restricted to ``row_ids``)."""
    info = current_dataset(ws)
    _require_column(column, info.columns, "column")
    with ws.connect() as con:
        tbl = fetch_arrow(
            con,
            f"SELECT sieve_row_id, {quote_ident(column)} FROM {DATASET_TABLE} ORDER BY sieve_row_id"
        )

    ids = tbl.column(0).to_numpy()
    col = tbl.column(1)
    if row_ids is None:
        return col
    pos = np.searchsorted(ids, row_ids)
    return col.take(pos)
