"""Ingest: read CSV/TSV/JSON/JSONL/Parquet (a path or a glob) into the workspace.

The dataset table ``dataset`` keeps every original column and adds:

- ``sieve_row_id``  stable id: the row's position in the input (files in sorted order)
- ``sieve_text``    the text to embed (one column, or a template over several)
- ``sieve_text_ok`` false for null, empty or whitespace-only texts (kept, never embedded)
- ``sieve_text_hash`` md5 of the text (the embedding cache key)

Everything happens in one DuckDB transaction: a failure leaves the workspace as it was.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .workspace import SieveError, Workspace, fetch_arrow, quote_ident, stage_key

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
DATASET_TABLE = "dataset"
META_DATASET = "dataset"

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

    def __post_init__(self):
        if self.file_format is not None and self.file_format not in set(FORMATS.values()):
            raise SieveError(
                f"file_format={self.file_format!r} is not one of {sorted(set(FORMATS.values()))}"
            )


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


def confine_source(source: str, root: Path | str) -> str:
    """``source`` (a path or glob relative to ``root``) as an absolute pattern inside
    ``root`` (server mode: $SIEVE_DATA_DIR).  Absolute paths, ``~`` and ``..`` are
    refused, and so is any matching file that resolves outside ``root`` (a symlink)."""
    raw = str(source).strip()
    if not raw:
        raise SieveError("data path is empty")
    if Path(raw).is_absolute() or raw.startswith("~"):
        raise SieveError(f"data path {raw!r} must be relative to the data folder {root}, not absolute")
    if any(part == ".." for part in Path(raw).parts):
        raise SieveError(f"data path {raw!r} must not contain '..'")
    root = Path(root).expanduser().resolve()
    pattern = str(root / raw)
    for p in resolve_sources(pattern):
        if root not in p.parents:
            raise SieveError(f"data path {raw!r} leads outside the data folder {root}")
    return pattern


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


def reader_sql(fmt: str) -> str:
    """A DuckDB table function over the bound file list ``?``."""
    if fmt == "csv":
        # RFC 4180 quoting, so an unterminated quote is an error, not a silently different dialect.
        return (f"read_csv(?, header=true, delim=',', quote='\"', escape='\"', auto_detect=true, "
                f"union_by_name=true, max_line_size={MAX_LINE_BYTES})")
    if fmt == "tsv":
        return (f"read_csv(?, header=true, delim='\t', auto_detect=true, union_by_name=true, "
                f"max_line_size={MAX_LINE_BYTES})")
    if fmt == "json":
        return "read_json(?, format='auto', union_by_name=true)"
    if fmt == "jsonl":
        return "read_json(?, format='newline_delimited', union_by_name=true)"
    if fmt == "parquet":
        return "read_parquet(?, union_by_name=true)"
    raise SieveError(f"file_format={fmt!r} is not supported")


def text_expression(spec: TextSpec, columns: dict[str, str]) -> tuple[str, list[str]]:
    """SQL that builds the text, and its bound parameters (template literals)."""
    if spec.column is not None:
        _require_column(spec.column, columns, "text column")
        _require_scalar(spec.column, columns[spec.column], "text column")
        return f"CAST({quote_ident(spec.column)} AS VARCHAR)", []
    parts, params = [], []
    for literal, fld, _, _ in string.Formatter().parse(spec.template):
        if literal:
            parts.append("?")
            params.append(literal)
        if fld:
            _require_column(fld, columns, "template column")
            _require_scalar(fld, columns[fld], "template column")
            parts.append(f"coalesce(CAST({quote_ident(fld)} AS VARCHAR), '')")
    return "concat(" + ", ".join(parts) + ")", params


def _require_column(name: str, columns: dict[str, str], what: str) -> None:
    if name not in columns:
        shown = ", ".join(repr(c) for c in list(columns)[:20])
        raise SieveError(f"{what} {name!r} is not in the data; columns are {shown}")


def _require_scalar(name: str, dtype: str, what: str) -> None:
    if any(tok in dtype.upper() for tok in ("STRUCT", "MAP", "[]", "LIST", "UNION")):
        raise SieveError(f"{what} {name!r} has nested type {dtype}; choose a column of plain text")


def ingest(ws: Workspace, params: IngestParams, progress: Progress | None = None, *,
           keep_previous: bool = False) -> tuple[DatasetInfo, bool]:
    """Load ``params.source`` into the workspace.  Returns (info, cached).

    ``keep_previous``: keep the replaced dataset table as ``sieve_previous_dataset`` so
    :func:`restore_dataset` can put it back (``sieve reproduce`` undoes a failed run)."""
    paths = resolve_sources(params.source)
    fmt = detect_format(paths, params.file_format)
    if progress:
        progress(0, 3, "fingerprinting files")
    fingerprint = fingerprint_files(paths)
    key = stage_key(
        "ingest",
        {"text": params.text, "vectors": params.vector_column, "format": fmt},
        fingerprint,
    )
    with ws.lock("ingest"):
        current = ws.get_meta(META_DATASET)
        if current and current.get("key") == key:
            return DatasetInfo.from_dict(current), True

        import duckdb

        if progress:
            progress(1, 3, f"reading {len(paths)} file(s)")
        with ws.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                if keep_previous:
                    _stash_dataset(con)
                info = _load(con, paths, fmt, params, key, fingerprint)
                ws.set_meta(META_DATASET, info.to_dict(), con=con)
                con.execute("COMMIT")
            except SieveError:
                con.execute("ROLLBACK")
                raise
            except duckdb.Error as exc:
                con.execute("ROLLBACK")
                hint = " (rows with different numbers of fields, or an unterminated quote?)" if "sniffing" in str(exc) else ""
                raise SieveError(f"could not read {_name(paths)} as {fmt}: {_first_line(exc)}{hint}") from exc
            except BaseException:
                con.execute("ROLLBACK")
                raise
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
    import json

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


def _load(con, paths: list[Path], fmt: str, params: IngestParams, key: str, fingerprint: str) -> DatasetInfo:
    files = [str(p) for p in paths]
    con.execute("DROP TABLE IF EXISTS sieve_raw")
    con.execute(f"CREATE TEMP TABLE sieve_raw AS SELECT * FROM {reader_sql(fmt)}", [files])
    described = con.execute("DESCRIBE sieve_raw").fetchall()
    columns = {row[0]: row[1] for row in described}
    if len(columns) != len(described):
        raise SieveError(f"{_name(paths)} has duplicate column names")
    if fmt in ("csv", "tsv"):
        _check_csv_header(con, files, fmt, paths)
    reserved = [c for c in columns if c.lower().startswith(RESERVED_PREFIX)]
    if reserved:
        raise SieveError(f"column {reserved[0]!r} in {_name(paths)} uses the reserved prefix {RESERVED_PREFIX!r}")
    n_rows = con.execute("SELECT count(*) FROM sieve_raw").fetchall()[0][0]
    if n_rows == 0:
        if fmt in ("csv", "tsv") and any(_has_body(p) for p in paths):
            raise SieveError(f"{_name(paths)} looks malformed: its header was read but no row could be parsed "
                             "(an unterminated quote?)")
        raise SieveError(f"{_name(paths)} has no rows")
    text_sql, text_params = text_expression(params.text, columns)
    vector_dim = None
    if params.vector_column is not None:
        vector_dim = _check_vector_column(con, params.vector_column, columns)
    has_vector = f" AND {quote_ident(params.vector_column)} IS NOT NULL" if params.vector_column else ""
    con.execute(f"DROP TABLE IF EXISTS {DATASET_TABLE}")
    con.execute(
        f"""
        CREATE TABLE {DATASET_TABLE} AS
        SELECT *,
               sieve_text IS NOT NULL AND NOT regexp_matches(sieve_text, '^\\s*$'){has_vector} AS sieve_text_ok,
               md5(coalesce(sieve_text, '')) AS sieve_text_hash
        FROM (
            SELECT (row_number() OVER (ORDER BY rowid)) - 1 AS sieve_row_id, *, {text_sql} AS sieve_text
            FROM sieve_raw
        )
        """,
        text_params,
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
        key=key,
        sources=[str(p) for p in paths],
        fingerprint=fingerprint,
        text=params.text,
        vector_column=params.vector_column,
        n_rows=int(n_rows),
        n_empty=int(n_empty),
        n_duplicates=int(n_rows - n_empty - n_distinct),
        columns=columns,
        vector_dim=vector_dim,
    )


def _has_body(path: Path) -> bool:
    """True when a text file has something after its first line."""
    with open(path, "rb") as fh:
        fh.readline()
        return bool(fh.read(4096).strip())


def _check_csv_header(con, files: list[str], fmt: str, paths: list[Path]) -> None:
    """DuckDB renames repeated CSV headers (text, text_1); we refuse them instead."""
    delim = "\t" if fmt == "tsv" else None
    for f, p in zip(files, paths):
        opts = f", delim='{delim}'" if delim else ""
        row = con.execute(
            f"SELECT * FROM read_csv(?, header=false, all_varchar=true, max_line_size={MAX_LINE_BYTES}{opts}) LIMIT 1",
            [f],
        ).fetchall()[0]
        names = [str(x).strip() for x in (row or ()) if x is not None]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SieveError(f"{p} has duplicate column name(s) {dupes}; rename them so each column is unique")


def _check_vector_column(con, name: str, columns: dict[str, str]) -> int:
    _require_column(name, columns, "vector column")
    dtype = columns[name].upper()
    numeric = ("FLOAT", "DOUBLE", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "DECIMAL", "HUGEINT", "REAL")
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
    bad = con.execute(
        f"SELECT count(*) FROM sieve_raw WHERE {q} IS NOT NULL AND "
        f"len(list_filter({q}::DOUBLE[], lambda x: x IS NULL OR isnan(x) OR isinf(x))) > 0"
    ).fetchall()[0][0]
    if bad:
        raise SieveError(f"vector column {name!r} has {bad} vector(s) with null, NaN or infinite values")
    return int(lo)


def _name(paths: list[Path]) -> str:
    return str(paths[0]) if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} more files)"


_INFORMATIVE = ("not possible to automatically detect", "invalid unicode", "not utf-8", "expected number of columns", "malformed", "unterminated",
                "could not convert", "mismatch", "no magic bytes", "not a parquet")


def _first_line(exc: Exception) -> str:
    """DuckDB's first error line, plus its most telling detail line when there is one."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    detail = next((ln for ln in lines[1:] if any(k in ln.lower() for k in _INFORMATIVE)), None)
    return f"{lines[0]} {detail}" if detail and detail not in lines[0] else lines[0]


# -- readers used by later stages --------------------------------------------------


def current_dataset(ws: Workspace) -> DatasetInfo:
    d = ws.get_meta(META_DATASET)
    if not d:
        raise SieveError(f"workspace {ws.root} has no dataset yet; run `sieve ingest DATA --text COLUMN` first")
    return DatasetInfo.from_dict(d)


def load_texts(ws: Workspace, *, only_ok: bool = True):
    """(row_ids int64 array, texts list[str], hashes list[str]) in row-id order."""
    import numpy as np

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
    import numpy as np

    ids = tbl.column(0).to_numpy()
    col = tbl.column(1)
    if row_ids is None:
        return col
    pos = np.searchsorted(ids, row_ids)
    return col.take(pos)
