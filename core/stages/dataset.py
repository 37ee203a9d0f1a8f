"""The current dataset: its description (:class:`DatasetInfo`), the workspace pointers that
name it, and readers of its rows (texts, any column) in row-id order."""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field

import numpy as np

from core.store.sql import quote_ident
from core.store.workspace import DATASET_TABLE, SieveError, Workspace, fetch_arrow

META_DATASET = "dataset"


def template_fields(template: str) -> list[str]:
    """The field names a ``str.format`` template uses, in order.  Raises SieveError when malformed."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise SieveError(f"template {template!r} is malformed: {exc}") from exc
    return [f for _, f, _, _ in parsed if f is not None and f != ""]


def unescape_template(template: str) -> str:
    """Turn the two-character sequences ``\\n`` and ``\\t`` typed in a shell into real ones."""
    return template.replace("\\n", "\n").replace("\\t", "\t")



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



@dataclass
class DatasetInfo:
    """The current dataset as ingested: its key and sources, text spec, counts and column types
    (stored in the workspace's meta, read by :func:`current_dataset`)."""
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



def require_column(name: str, columns: dict[str, str], what: str) -> None:
    """Raise SieveError naming ``what`` and the first columns when ``name`` is not in ``columns``."""
    if name not in columns:
        shown = ", ".join(repr(c) for c in list(columns)[:20])
        raise SieveError(f"{what} {name!r} is not in the data; columns are {shown}")



PREVIOUS_TABLE = "sieve_previous_dataset"



RESTORED_META = ("dataset", "map", "selection")  # the workspace's current pointers



def has_table(con, name: str) -> bool:
    """True when the DuckDB connection ``con`` has a (non-temporary) table ``name``."""
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary",
                            [name]).fetchall()[0][0])



def stash_dataset(con) -> None:
    """Rename the dataset table to PREVIOUS_TABLE (inside the caller's transaction)."""
    con.execute(f"DROP TABLE IF EXISTS {PREVIOUS_TABLE}")
    if has_table(con, DATASET_TABLE):
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
            if has_table(con, PREVIOUS_TABLE):
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
    """Drop the dataset table kept by ``ingest(keep_previous=True)``, if any."""
    with ws.connect() as con:
        con.execute(f"DROP TABLE IF EXISTS {PREVIOUS_TABLE}")



def current_dataset(ws: Workspace) -> DatasetInfo:
    """The workspace's current :class:`DatasetInfo`.  Raises SieveError when nothing was ingested."""
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
    require_column(column, info.columns, "column")
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
