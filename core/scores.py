"""Numbers from a dataset column for the selection: the ``score_column`` a score pick
ranks by, and numbers kept as text (CSV/TSV values stay strings in the dataset)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.stages.dataset import load_column
from core.store.workspace import SieveError, Workspace


def score_values(ws: Workspace, column: str, row_ids: np.ndarray) -> np.ndarray:
    """A numeric column as float64 aligned to ``row_ids``.

    SQL NULLs are missing scores (NaN here; they rank last).  NaN or infinite
    values stored in the data are refused, naming the column."""
    col = load_column(ws, column, row_ids)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        values = pa.array(text_numbers(col.to_pylist(), f"score_column {column!r}", row_ids), pa.float64())
    elif not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_decimal(col.type)):
        raise SieveError(f"score_column {column!r} has type {col.type}; it must be numeric")
    else:
        values = pc.cast(col, pa.float64())
    present = values.drop_null().to_numpy(zero_copy_only=False)
    bad = int((~np.isfinite(present)).sum())
    if bad:
        raise SieveError(f"score_column {column!r} has {bad} NaN or infinite value(s); fix or drop them first")
    return values.to_numpy(zero_copy_only=False).astype(np.float64)


def text_numbers(values: list, what: str, row_ids=None) -> list[float | None]:
    """Numbers from a column kept as written (CSV/TSV values such as ``2.50`` or ``007``
    stay strings in the dataset): each value through ``float()``, blanks and nulls as
    None.  Raises SieveError naming ``what``, the value and its row when one is not a number."""
    out: list[float | None] = []
    for i, v in enumerate(values):
        if v is None or not str(v).strip():
            out.append(None)
            continue
        try:
            out.append(float(str(v).strip()))
        except ValueError:
            row = int(row_ids[i]) if row_ids is not None else i
            hint = " (a decimal comma? write numbers with '.')" if "," in str(v) else ""
            raise SieveError(f"{what} must be numeric, but it holds {v!r} at row {row}{hint}") from None
    return out
