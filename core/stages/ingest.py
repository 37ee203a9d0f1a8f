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
import string
import sys
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import duckdb

from core.stages.dataset import META_DATASET, DatasetInfo, TextSpec, require_column, stash_dataset, template_fields
from core.stages.dialect import (count_records, normal_encoding, parse_delimiter, reader_error, sniff_delimiter,
                                 uses_quotes, utf8_files)
from core.stages.sources import (FORMATS, detect_format, fingerprint_files, has_body, numeric_text_columns, read_raw,
                                 resolve_sources, source_name)
from core.store.artifacts import stage_key
from core.store.sql import quote_ident
from core.store.workspace import DATASET_TABLE, SieveError, Workspace

RESERVED_PREFIX = "sieve_"
BLANK_CATEGORIES = ("Zs", "Zl", "Zp", "Cc", "Cf")
FLOAT32_MAX = 3.4028234663852886e38
RAW_ROWS = "(SELECT (row_number() OVER (ORDER BY rowid)) - 1 AS sieve_pos, * FROM sieve_raw)"  # row = sieve_row_id

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class IngestParams:
    """What to read: the source (path, glob or list), the text spec, an optional vector column,
    the format, the CSV delimiter and the encoding; validated on creation (SieveError)."""
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
        require_column(spec.column, columns, "text column")
        _require_scalar(spec.column, columns[spec.column], "text column")
        return as_text(spec.column, columns[spec.column]), []
    parts, params = [], []
    for literal, fld, _, _ in string.Formatter().parse(spec.template):
        if literal:
            parts.append("?")
            params.append(literal)
        if fld:
            require_column(fld, columns, "template column")
            _require_scalar(fld, columns[fld], "template column")
            parts.append(f"coalesce({as_text(fld, columns[fld])}, '')")
    return "concat(" + ", ".join(parts) + ")", params


def as_text(name: str, dtype: str) -> str:
    """SQL turning column ``name`` of DuckDB type ``dtype`` into its text as written."""
    q = quote_ident(name)
    if dtype.upper() == "JSON":  # scalars as written: strings unquoted, numbers as JSON prints them
        return f"({q} ->> '$')"
    return f"CAST({q} AS VARCHAR)"


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


READER_VERSION = 2  # 2: text as written (issue 12)


def _load_transaction(ws, paths, files, fmt, delim, params, key, fingerprint, *,
                      keep_previous: bool = False) -> DatasetInfo:
    with ws.connect() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            if keep_previous:
                stash_dataset(con)
            info = _load(con, paths, files, fmt, delim, params, key, fingerprint)
            ws.set_meta(META_DATASET, info.to_dict(), con=con)
            con.execute("COMMIT")
        except SieveError:
            con.execute("ROLLBACK")
            raise
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise reader_error(exc, source_name(paths), fmt, [Path(f) for f in files], delim) from exc
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return info


def _load(con, paths: list[Path], files: list[str], fmt: str, delim: str | None, params: IngestParams, key: str,
          fingerprint: str) -> DatasetInfo:
    spec = params.text
    columns = read_raw(con, files, fmt, delim, paths,
                       text_columns=frozenset([spec.column] if spec.column is not None else template_fields(spec.template)))
    reserved = [c for c in columns if c.lower().startswith(RESERVED_PREFIX)]
    if reserved:
        raise SieveError(f"column {reserved[0]!r} in {source_name(paths)} uses the reserved prefix {RESERVED_PREFIX!r}")
    n_rows = con.execute("SELECT count(*) FROM sieve_raw").fetchall()[0][0]
    if fmt in ("csv", "tsv"):
        _check_row_count(n_rows, files, fmt, delim, paths)
    if n_rows == 0:
        if fmt in ("csv", "tsv") and any(has_body(Path(f)) for f in files):
            raise SieveError(f"{source_name(paths)} looks malformed: its header was read but no row could be parsed "
                             "(an unterminated quote?)")
        raise SieveError(f"{source_name(paths)} has no rows")
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
        raise SieveError(f"every row of {source_name(paths)} has an empty {what}; nothing to embed")
    return DatasetInfo(
        key=key, sources=[str(p) for p in paths], fingerprint=fingerprint, text=params.text,
        vector_column=params.vector_column, n_rows=int(n_rows), n_empty=int(n_empty),
        n_duplicates=int(n_rows - n_empty - n_distinct), columns=columns, vector_dim=vector_dim,
        delimiter=delim, encoding=params.encoding, numeric_text=numeric_text,
    )


def _check_row_count(n_rows: int, files: list[str], fmt: str, delim: str | None, paths: list[Path]) -> None:
    """Refuse a CSV/TSV when DuckDB read fewer rows than the standard library's parser
    finds records (a row must never go missing silently)."""
    counts = [count_records(Path(f), delim or ",", uses_quotes(Path(f), fmt, delim or ",")) for f in files]
    if any(c is None for c in counts):
        return
    if n_rows < sum(counts):
        raise SieveError(f"{source_name(paths)}: DuckDB read {n_rows} row(s) but the file has {sum(counts)} record(s) "
                         f"after the header (delimiter {delim!r}); check its quoting or give --delimiter")


def _check_vector_column(con, name: str, columns: dict[str, str]) -> int:
    require_column(name, columns, "vector column")
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


# -- readers used by later stages --------------------------------------------------


