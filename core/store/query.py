"""A SQL ``WHERE`` filter over the dataset, safe on a shared server.

The user's text must parse, with DuckDB's own parser (``json_serialize_sql``), as ONE
expression: ``SELECT sieve_row_id FROM dataset WHERE (<text>)`` must come back as a
single plain SELECT of that shape (no UNION, ORDER BY, LIMIT, GROUP BY, CTE...).  Inside
the expression, subqueries may read only ``dataset``: table functions (``read_csv``,
``glob``, ``range``, ``duckdb_settings()``...) and setting/environment functions
(``current_setting``, ``getvariable``...) are refused from the parsed tree.

It then runs in a worker process (core/store/sql_sandbox.py) on an in-memory DuckDB that sees
only an Arrow copy of the dataset's referenced columns (``dataset``), with external
access off, no spill folder (``temp_directory`` empty), a memory limit
(``$SIEVE_SQL_MEMORY``, default 1GB, also enforced as an address-space cap, since DuckDB
does not track every allocation) and its configuration locked.  The time limit
(``$SIEVE_SQL_TIMEOUT`` seconds, default 10) is enforced three times over: DuckDB's
``interrupt()`` on the connection from a timer, ``alarm()`` in the worker a second later,
and the caller killing the worker; so no query outlives its limit, even when the session
that started it has gone.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from core.store.workspace import DATASET_TABLE, SieveError, Workspace, fetch_arrow

MAX_FILTER_CHARS = 2000
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY = "1GB"
# Functions that read settings, variables, the environment or the catalogue (the
# prefixes cover duckdb_*, pragma_*, current_* ...); refused wherever they appear.
DENIED_FUNCTIONS = {"current_setting", "getvariable", "getenv", "version", "which_secret", "set_variable",
                    "json_execute_serialized_sql", "query", "query_table", "sql_auto_complete", "user",
                    "session_user", "current_user", "current_role", "database_size", "current_query"}
DENIED_PREFIXES = ("duckdb_", "pragma_", "current_", "read_", "parquet_", "sniff_", "glob", "icu_", "pg_")
_PREFIX = "SELECT sieve_row_id FROM dataset WHERE (\n"
_SUFFIX = "\n)"


def sql_timeout() -> float:
    """``$SIEVE_SQL_TIMEOUT`` (seconds, > 0; default 10).  Raises SieveError if malformed."""
    raw = os.environ.get("SIEVE_SQL_TIMEOUT", "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_TIMEOUT_S
    except ValueError as exc:
        raise SieveError(f"SIEVE_SQL_TIMEOUT must be a number of seconds, got {raw!r}") from exc
    if not value > 0:
        raise SieveError(f"SIEVE_SQL_TIMEOUT must be positive, got {raw!r}")
    return value


def sql_memory() -> str:
    """``$SIEVE_SQL_MEMORY`` (a DuckDB size such as ``512MB``; default 1GB)."""
    raw = os.environ.get("SIEVE_SQL_MEMORY", "").strip() or DEFAULT_MEMORY
    if not raw.replace(" ", "").replace(".", "").isalnum():
        raise SieveError(f"SIEVE_SQL_MEMORY must be a size such as 1GB, got {raw!r}")
    return raw


def parse_filter(where: str) -> dict:
    """The parsed tree (DuckDB's ``json_serialize_sql``) of ``SELECT sieve_row_id FROM dataset
    WHERE (<where>)``, after checking it is exactly one SELECT of that shape whose WHERE is
    one expression that uses no table function and no setting function.  Raises SieveError."""
    con = duckdb.connect(":memory:", config={"enable_external_access": False})
    try:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [_PREFIX + where + _SUFFIX]).fetchone()[0])
    except duckdb.Error as exc:
        raise SieveError(f"filter is not valid SQL: {str(exc).strip().splitlines()[0]}") from exc
    finally:
        con.close()
    if tree.get("error"):
        msg = str(tree.get("error_message") or "not a SELECT").strip().splitlines()[0]
        raise SieveError(f"filter is not a single valid expression: {msg}")
    statements = tree.get("statements") or []
    if len(statements) != 1:
        raise SieveError("filter must be a single expression (no ';')")
    node = statements[0].get("node") or {}
    _check_shape(node)
    _check_tree(node["where_clause"])
    return node


def _check_shape(node: dict) -> None:
    """The top statement must be our own SELECT, unchanged but for its WHERE."""
    one = "filter must be one expression, not a query (no UNION, ORDER BY, LIMIT, GROUP BY, WITH ...)"
    if node.get("type") != "SELECT_NODE" or node.get("modifiers") or (node.get("cte_map") or {}).get("map"):
        raise SieveError(one)
    if node.get("group_expressions") or node.get("group_sets") or node.get("having") or node.get("qualify") \
            or node.get("sample") or node.get("where_clause") is None:
        raise SieveError(one)
    select = node.get("select_list") or []
    frm = node.get("from_table") or {}
    if len(select) != 1 or select[0].get("column_names") != ["sieve_row_id"] or select[0].get("alias") \
            or frm.get("type") != "BASE_TABLE" or frm.get("table_name") != "dataset" or frm.get("alias"):
        raise SieveError(one)


def _check_tree(tree) -> None:
    """Walk the parsed expression: subqueries may read only ``dataset``; no table functions,
    no setting/catalogue functions."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "TABLE_FUNCTION":
            name = ((item.get("function") or {}).get("function_name") or "?")
            raise SieveError(f"filter may not call the table function {name}(): it can read only the dataset")
        if kind == "BASE_TABLE" and (str(item.get("table_name", "")).lower() != "dataset"
                                     or item.get("schema_name") or item.get("catalog_name")):
            raise SieveError(f"filter may read only the table dataset, not {item.get('table_name')!r}")
        if item.get("class") == "FUNCTION":
            name = str(item.get("function_name") or "").lower()
            if name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES) or item.get("schema") \
                    or item.get("catalog"):
                raise SieveError(f"filter may not call {name}(): settings, files and the catalogue are off limits")
        stack.extend(item.values())


def referenced_columns(tree, columns: list[str]) -> list[str]:
    """The columns of ``columns`` that the parsed expression names (all of them if it uses ``*``)."""
    names, stack = set(), [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if item.get("class") == "STAR":
                return list(columns)
            if item.get("class") == "COLUMN_REF":
                names.update(item.get("column_names") or [])
            stack.extend(item.values())
    return [c for c in columns if c in names or c == "sieve_row_id"]


def run_sandboxed(table, sql: str, *, timeout: float, memory: str, threads: int = 2) -> np.ndarray:
    """Run ``sql`` over ``table`` (as ``dataset``) in a worker process (core/store/sql_sandbox.py)
    with an address-space cap, external access off and no spill folder; kill it after
    ``timeout`` seconds.  Returns the int64 ``sieve_row_id`` column.  Raises SieveError."""
    header = json.dumps({"sql": sql, "memory": memory, "threads": threads, "timeout": timeout}).encode()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    payload = struct.pack("<Q", len(header)) + header + sink.getvalue().to_pybytes()
    script = str(Path(__file__).with_name("sql_sandbox.py"))  # run with -I, so core/ is not on its sys.path
    proc = subprocess.Popen([sys.executable, "-I", script],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/",
                            env={k: v for k, v in os.environ.items() if not k.startswith("SIEVE_")})
    try:
        out, err = proc.communicate(payload, timeout=timeout + 3)  # + start-up; the worker stops itself first
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise SieveError(f"filter stopped after {timeout:g} s (SIEVE_SQL_TIMEOUT); simplify it") from None
    finally:
        if proc.poll() is None:  # an exception of our own (e.g. interrupted): never leave it running
            proc.kill()
            proc.wait()
    message = (err.decode("utf-8", "replace").strip().splitlines() or [""])[-1][:300]
    if proc.returncode == 4 or (proc.returncode != 0 and "memory" in message.lower()):
        raise SieveError(f"filter ran out of its memory limit ({memory}, SIEVE_SQL_MEMORY): {message}")
    if proc.returncode == 3:
        hint = (" (columns read from CSV/TSV keep values as written, as text when any value would change "
                "as a number, e.g. 2.50 or 007; cast them: CAST(score AS DOUBLE) > 0.5)"
                if "VARCHAR" in message and ("compare" in message or "cast" in message.lower()) else "")
        raise SieveError(f"filter failed: {message}{hint}")
    if proc.returncode == 5 or (proc.returncode < 0 and -proc.returncode == signal.SIGALRM):
        raise SieveError(f"filter stopped after {timeout:g} s (SIEVE_SQL_TIMEOUT); simplify it")
    if proc.returncode != 0:
        raise SieveError(f"filter failed (worker exit {proc.returncode}; likely over its memory limit {memory})")
    return np.frombuffer(out, dtype="<i8").astype(np.int64)


def filter_rows(table, where: str, *, timeout: float | None = None) -> np.ndarray:
    """The ``sieve_row_id`` values (int64) of ``table`` rows matching the WHERE expression,
    within ``timeout`` seconds (default ``$SIEVE_SQL_TIMEOUT``).  Raises SieveError."""
    where = (where or "").strip()
    if not where:
        raise SieveError("filter is empty")
    if len(where) > MAX_FILTER_CHARS:
        raise SieveError(f"filter is longer than {MAX_FILTER_CHARS} characters")
    tree = parse_filter(where)
    limit = sql_timeout() if timeout is None else float(timeout)
    table = table.select(referenced_columns(tree["where_clause"], table.column_names))
    return run_sandboxed(table, _PREFIX + where + _SUFFIX, timeout=limit, memory=sql_memory())


def dataset_table(ws: Workspace):
    """The dataset's original columns plus ``sieve_row_id`` and ``sieve_text``, as Arrow."""
    with ws.connect() as con:
        return fetch_arrow(con, f"SELECT * EXCLUDE (sieve_text_ok, sieve_text_hash) FROM {DATASET_TABLE}")


def run_filter(ws: Workspace, where: str) -> np.ndarray:
    """Row ids (int64 array) of the current dataset's rows matching the SQL ``where``
    clause, run in the sandbox (:func:`filter_rows`).  Raises SieveError for a bad or refused clause."""
    return filter_rows(dataset_table(ws), where)
