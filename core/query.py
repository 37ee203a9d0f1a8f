"""A SQL ``WHERE`` filter over the dataset, safe on a shared server.

The user's expression runs on a separate in-memory DuckDB connection that sees
only an Arrow copy of the dataset's columns (as the view ``dataset``), has
external access disabled and its configuration locked.  Only one read-only
``SELECT`` is accepted, so reading or writing files, ATTACH, INSTALL/LOAD, COPY,
PRAGMA and SET are all refused.
"""

from __future__ import annotations

import numpy as np

from .ingest import DATASET_TABLE
from .workspace import SieveError, Workspace, fetch_arrow

MAX_FILTER_CHARS = 2000


def sandbox_connection(table):
    """An in-memory DuckDB that holds ``table`` as ``dataset`` and nothing else."""
    import duckdb

    con = duckdb.connect(":memory:", config={"enable_external_access": False, "autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False})
    con.register("dataset", table)  # zero-copy view of the Arrow table
    con.execute("SET lock_configuration = true")
    return con


def check_select(con, sql: str) -> None:
    """Refuse anything but a single SELECT statement."""
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise SieveError(f"filter is not valid SQL: {str(exc).splitlines()[0]}") from exc
    if len(statements) != 1:
        raise SieveError("filter must be a single expression (no ';')")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise SieveError(f"filter must be a read-only SELECT, not {statements[0].type.name}")


def filter_rows(table, where: str) -> np.ndarray:
    """Pure: the ``sieve_row_id`` values of ``table`` rows matching the WHERE expression."""
    import duckdb

    where = (where or "").strip()
    if not where:
        raise SieveError("filter is empty")
    if len(where) > MAX_FILTER_CHARS:
        raise SieveError(f"filter is longer than {MAX_FILTER_CHARS} characters")
    con = sandbox_connection(table)
    try:
        sql = f"SELECT sieve_row_id FROM dataset WHERE ({where})"
        check_select(con, sql)
        try:
            out = fetch_arrow(con, sql)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            hint = (" (columns read from CSV/TSV keep values as written, as text when any value would change "
                    "as a number, e.g. 2.50 or 007; cast them: CAST(score AS DOUBLE) > 0.5)"
                    if "VARCHAR" in first and ("compare" in first or "cast" in first.lower()) else "")
            raise SieveError(f"filter failed: {first}{hint}") from exc
    finally:
        con.close()
    return np.asarray(out.column(0).to_numpy(), dtype=np.int64)


def dataset_table(ws: Workspace):
    """The dataset's original columns plus ``sieve_row_id`` and ``sieve_text``, as Arrow."""
    with ws.connect() as con:
        return fetch_arrow(con, f"SELECT * EXCLUDE (sieve_text_ok, sieve_text_hash) FROM {DATASET_TABLE}")


def run_filter(ws: Workspace, where: str) -> np.ndarray:
    return filter_rows(dataset_table(ws), where)
