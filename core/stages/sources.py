"""The input files: which files a path or glob names, their format, a fingerprint of their
contents, and reading them into DuckDB with every value as written (header checks, column casts)."""

from __future__ import annotations

import csv
import glob as globlib
import hashlib
import re
from pathlib import Path

import pyarrow.parquet as pq

from core.stages.dialect import uses_quotes
from core.store.sql import quote_ident
from core.store.workspace import SieveError

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

MAX_LINE_BYTES = 64 * 1024 * 1024  # one CSV line (DuckDB's default is 2 MB)



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
    """The one format of ``paths`` (``file_format`` when given, else from the extensions).
    Raises SieveError for an unknown extension or mixed formats."""
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
        raise SieveError(f"{source_name(paths)} has duplicate column names")
    check_headers(con, files, fmt, delim, paths, columns)
    casts = column_casts(con, fmt, columns, text_columns)
    if casts:
        exprs = ", ".join(casts.get(c, quote_ident(c)) + f" AS {quote_ident(c)}" for c in columns)
        con.execute(f"CREATE TEMP TABLE sieve_raw2 AS SELECT {exprs} FROM sieve_raw ORDER BY rowid")
        con.execute("DROP TABLE sieve_raw")
        con.execute("ALTER TABLE sieve_raw2 RENAME TO sieve_raw")
        columns = {row[0]: row[1] for row in con.execute("DESCRIBE sieve_raw").fetchall()}
    return columns



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



def numeric_text_columns(con, columns: dict[str, str]) -> list[str]:
    """The VARCHAR columns of ``sieve_raw`` whose every non-null value parses as a number
    (``2.50``, ``007``, ``1e3``): kept as written, but offered as score columns and cast
    at use (:func:`core.scores.score_values`)."""
    cols = [c for c, t in columns.items() if t.upper() == "VARCHAR"]
    if not cols:
        return []
    checks = [f"count({quote_ident(c)}) > 0 AND bool_and({quote_ident(c)} IS NULL OR "
              f"TRY_CAST(trim({quote_ident(c)}) AS DOUBLE) IS NOT NULL)" for c in cols]
    flags = con.execute(f"SELECT {', '.join(checks)} FROM sieve_raw").fetchall()[0]
    return [c for c, ok in zip(cols, flags) if ok]



def has_body(path: Path) -> bool:
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



def source_name(paths: list[Path]) -> str:
    """How errors name the input: the file, or the first file and how many more."""
    return str(paths[0]) if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} more files)"
