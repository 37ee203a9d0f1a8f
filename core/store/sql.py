"""Small SQL helpers for DuckDB."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """Quote an SQL identifier for DuckDB (double quotes, inner quotes doubled)."""
    return '"' + str(name).replace('"', '""') + '"'
