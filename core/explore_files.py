"""Files and rows for the pages: column kinds, uploads (safe names, pruning), a preview of a
source file before ingest, fetching dataset rows by id, and the bytes of a download.

UI-free helpers the Data, Map, Budget and Export pages call; nothing here imports Streamlit.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import duckdb
import pyarrow as pa

from core.stages.dialect import normal_encoding, parse_delimiter, reader_error, sniff_delimiter, utf8_files
from core.stages.export import export_rows, format_for
from core.stages.sources import detect_format, numeric_text_columns, read_raw, resolve_sources
from core.store.artifacts import atomic_write_bytes
from core.store.workspace import DATASET_TABLE


def column_kinds(columns: Mapping[str, str], numeric_text: Iterable[str] = ()) -> dict[str, list[str]]:
    """Split DuckDB column types into text-like, numeric and vector-like (list of numbers) columns.
    ``numeric_text``: text columns whose values are all numbers (kept as written, e.g. ``2.50``);
    they are listed as both text and numeric."""
    numeric_t = ("FLOAT", "DOUBLE", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "DECIMAL", "HUGEINT", "REAL",
                 "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT")
    text, numeric, vector = [], [], []
    for name, t in columns.items():
        if name.lower().startswith("sieve_"):
            continue
        u = str(t).upper()
        nested = any(tok in u for tok in ("STRUCT", "MAP", "[]", "LIST", "UNION"))
        if u.endswith("]") and any(u.startswith(p) for p in numeric_t):
            vector.append(name)
        elif not nested and any(u.startswith(p) for p in numeric_t):
            numeric.append(name)
        elif not nested:
            text.append(name)
    numeric += [c for c in numeric_text if c in text and c not in numeric]
    return {"text": text, "numeric": numeric, "vector": vector}


# -- file names --------------------------------------------------------------------------

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str, *, max_len: int = 100, default: str = "upload") -> str:
    """A file name that is safe to join to a folder: no path parts, no odd characters
    (NUL, control characters, separators), never hidden, and its extension kept.

    ``../../etc/passwd`` -> ``passwd``; ``my data (1).CSV`` -> ``my_data_1.csv`` (the
    extension is lower-cased so the format can be detected); ``\\x00.csv`` -> ``upload.csv``.
    """
    base = re.split(r"[\\/]", str(name or ""))[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = _SAFE.sub("_", stem).strip("._ -") or default
    ext = _SAFE.sub("", ext).lower()[:12]
    stem = stem[: max(1, max_len - len(ext) - 1)]
    return f"{stem}.{ext}" if ext else stem


# -- I/O helpers for the app (lazy imports) ----------------------------------------------

UPLOADS_KEEP = 20  # default of $SIEVE_UPLOADS_KEEP
UPLOADS_MAX_MB = 2048  # default of $SIEVE_UPLOADS_MAX_MB


def save_upload(root: Path | str, name: str, data, *, keep: Iterable[str] = ()) -> Path:
    """Write uploaded bytes to ``root/uploads/<hash>-<safe name>`` (atomically, once), then
    prune the folder (see :func:`prune_uploads`; ``keep``: paths never removed)."""
    buf = memoryview(data) if not isinstance(data, (bytes, bytearray, memoryview)) else data
    digest = hashlib.sha256(buf).hexdigest()[:12]
    path = Path(root) / "uploads" / f"{digest}-{safe_filename(name)}"
    if not path.is_file():
        atomic_write_bytes(path, bytes(buf))
    prune_uploads(path.parent, keep={str(path), *map(str, keep)})
    return path


def prune_uploads(folder: Path | str, *, keep: Iterable[str] = (), max_files: int | None = None,
                  max_bytes: int | None = None) -> list[Path]:
    """Remove the oldest uploads (by modification time) until at most ``max_files`` files
    (default ``$SIEVE_UPLOADS_KEEP``, 20) of at most ``max_bytes`` in all (default
    ``$SIEVE_UPLOADS_MAX_MB``, 2048 MB) remain; ``keep`` (paths) are never removed.
    Returns the removed paths."""
    max_files = int(os.environ.get("SIEVE_UPLOADS_KEEP", UPLOADS_KEEP)) if max_files is None else max_files
    if max_bytes is None:
        max_bytes = int(float(os.environ.get("SIEVE_UPLOADS_MAX_MB", UPLOADS_MAX_MB)) * 2**20)
    keep = {str(k) for k in keep}
    try:
        files = [p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")]
    except OSError:
        return []
    files.sort(key=lambda p: (str(p) not in keep, -p.stat().st_mtime))  # the kept ones count first
    total, count, removed = 0, 0, []
    for p in files:
        size = p.stat().st_size
        if str(p) in keep or (count < max_files and total + size <= max_bytes):
            total, count = total + size, count + 1
            continue
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def preview_source(source, *, limit: int = 20, file_format: str | None = None, delimiter: str | None = None,
                   encoding: str | None = None):
    """(preview rows as a pandas DataFrame, {column: type}, resolved paths) of a file or glob,
    read as ingest reads it (detected or given delimiter, UTF-8 or ``encoding``, values as
    written; column types from the first 10,000 rows; ``df.attrs["numeric_text"]``: the
    text columns whose values are all numbers).  Raises SieveError with the reader's
    reason (e.g. a file that is not UTF-8, named)."""
    paths = resolve_sources(source)
    fmt = detect_format(paths, file_format)
    delim = parse_delimiter(delimiter)
    con = duckdb.connect()
    try:
        with tempfile.TemporaryDirectory(prefix="sieve-preview-") as tmp:
            files = utf8_files(paths, fmt, normal_encoding(encoding), Path(tmp))
            if fmt in ("csv", "tsv"):
                delim = delim or sniff_delimiter(Path(files[0]), fmt)
            try:
                cols = read_raw(con, files, fmt, delim, paths, limit=10_000)
                df = con.execute(f"SELECT * FROM sieve_raw LIMIT {int(limit)}").fetchdf()
                df.attrs["numeric_text"] = numeric_text_columns(con, cols)
            except duckdb.Error as exc:
                raise reader_error(exc, str(paths[0]), fmt, [Path(f) for f in files], delim) from exc
    finally:
        con.close()
    return df, cols, paths


def fetch_rows(ws, row_ids, *, columns: Sequence[str] | None = None):
    """The dataset rows with these ids (original columns + ``sieve_text``), in the ids' order."""
    ids = [int(i) for i in row_ids]
    wanted = pa.table({"sieve_row_id": pa.array(ids, pa.int64()), "sieve_order": pa.array(range(len(ids)), pa.int64())})
    with ws.connect() as con:
        con.register("sieve_wanted", wanted)
        try:
            rel = con.sql(f"SELECT d.* FROM {DATASET_TABLE} d JOIN sieve_wanted w USING (sieve_row_id) "
                          "ORDER BY w.sieve_order")
            tbl = (getattr(rel, "to_arrow_table", None) or rel.arrow)()
        finally:
            con.unregister("sieve_wanted")
    if columns is not None:
        return tbl.select(["sieve_row_id", *[c for c in columns if c != "sieve_row_id"]])
    drop = [c for c in ("sieve_text_ok", "sieve_text_hash") if c in tbl.column_names]
    return tbl.drop(drop) if drop else tbl


EXPORT_MIME = {"parquet": "application/vnd.apache.parquet", "jsonl": "application/jsonl", "csv": "text/csv"}


def export_bytes(ws, selection, cluster_names: Mapping[int, str], fmt: str, *, keep_text: bool = False,
                 include_duplicates: bool = False, dataset_key: str | None = None) -> bytes:
    """The exported file's bytes (written to a temporary folder with core.stages.export, then read).
    ``dataset_key``: refuse (SieveError) if the workspace no longer holds that dataset."""
    fmt = format_for(f"x.{fmt}", fmt)
    with tempfile.TemporaryDirectory(prefix="sieve-export-") as tmp:
        path = export_rows(ws, selection, dict(cluster_names), Path(tmp) / f"subset.{fmt}", fmt, keep_text=keep_text,
                           include_duplicates=include_duplicates, dataset_key=dataset_key)
        return path.read_bytes()
