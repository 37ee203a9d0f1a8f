"""Colour by any column, and the linked summaries beside the map (no Streamlit here).

A :class:`ColumnView` turns one column (or the texts' lengths) into what a chart needs:
categories with a code per row, or numbers with fixed histogram bins.  :func:`bars`
counts all rows and the selected rows per bar (the small charts compare the two, as
Embedding Atlas's linked views do), and :func:`bar_mask` gives the rows of a clicked bar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.stages.dataset import load_column

OTHER = "(other)"
MISSING = "(missing)"
TEXT_LENGTH = "text length (characters)"


@dataclass
class ColumnView:
    """One column over the map's rows (aligned with ``MapData.row_ids``).

    ``kind`` is "categorical" (``codes`` (n,) int32 index ``categories``; the most
    frequent ``max_categories`` values keep their own bar, the rest are "(other)",
    nulls "(missing)") or "numeric" (``values`` (n,) float64, NaN = missing; ``edges``
    the histogram's bin edges over the finite values)."""

    name: str
    kind: str
    codes: np.ndarray | None = None
    categories: list[str] = field(default_factory=list)
    values: np.ndarray | None = None
    edges: np.ndarray | None = None

    @property
    def n_bars(self) -> int:
        return len(self.categories) if self.kind == "categorical" else max(0, len(self.edges) - 1) + 1


def categorical_view(name: str, values: Sequence[Any], max_categories: int = 12) -> ColumnView:
    """Categories by frequency (ties by value); the rest "(other)", nulls "(missing)"."""
    vals = list(values)
    missing = np.array([v is None or (isinstance(v, float) and v != v) for v in vals], dtype=bool)
    as_text = np.array(["" if m else str(v) for v, m in zip(vals, missing)], dtype=object)
    present = ~missing
    uniq, inverse, counts = np.unique(as_text[present], return_inverse=True, return_counts=True)
    keep = sorted(range(len(uniq)), key=lambda i: (-counts[i], uniq[i]))[:max_categories]
    cats = [str(uniq[i]) for i in keep]
    code_of = np.full(len(uniq), len(cats), np.int32)  # not kept: "(other)"
    for j, i in enumerate(keep):
        code_of[i] = j
    codes = np.zeros(len(vals), np.int32)
    codes[present] = code_of[inverse.ravel()] if len(uniq) else 0
    if len(uniq) > len(keep):
        cats.append(OTHER)
    if missing.any():
        cats.append(MISSING)
        codes[missing] = len(cats) - 1
    return ColumnView(name, "categorical", codes=codes.astype(np.int32), categories=cats)


def numeric_view(name: str, values: np.ndarray, bins: int = 12) -> ColumnView:
    """Numbers with ``bins`` equal-width bins over the finite values (numpy's histogram edges)."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    edges = np.histogram_bin_edges(finite, bins) if len(finite) else np.array([0.0, 1.0])
    return ColumnView(name, "numeric", values=v, edges=edges)


def column_view(ws, column: str, row_ids: np.ndarray, *, max_categories: int = 12, bins: int = 12) -> ColumnView:
    """A dataset column over ``row_ids``: numeric columns are binned, the others are categories."""
    col = load_column(ws, column, row_ids)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_decimal(col.type):
        vals = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
        return numeric_view(column, vals, bins)
    return categorical_view(column, col.to_pylist(), max_categories)


def text_length_view(texts: Sequence[str], bins: int = 12) -> ColumnView:
    return numeric_view(TEXT_LENGTH, np.array([len(t or "") for t in texts], dtype=np.float64), bins)


def bar_index(view: ColumnView) -> np.ndarray:
    """(n,) int64: each row's bar (numeric: its bin; the last bar holds missing values)."""
    if view.kind == "categorical":
        return view.codes.astype(np.int64)
    nb = len(view.edges) - 1
    idx = np.clip(np.searchsorted(view.edges, view.values, side="right") - 1, 0, nb - 1)
    idx[~np.isfinite(view.values)] = nb
    return idx.astype(np.int64)


def bar_labels(view: ColumnView) -> list[str]:
    if view.kind == "categorical":
        return list(view.categories)
    e = view.edges
    fmt = (lambda x: f"{x:,.0f}") if np.allclose(e, np.round(e)) else (lambda x: f"{x:,.3g}")
    return [f"{fmt(e[i])}–{fmt(e[i + 1])}" for i in range(len(e) - 1)] + [MISSING]


def bars(view: ColumnView, selected: np.ndarray | None) -> list[dict]:
    """Per bar: label, rows ("all"), selected rows, and each as a share of its total.

    ``selected`` is a boolean mask over the rows (None or all False: no selection).
    Numeric views drop an empty "(missing)" bar."""
    idx = bar_index(view)
    nb = view.n_bars
    all_c = np.bincount(idx, minlength=nb)
    sel = np.zeros(len(idx), bool) if selected is None else np.asarray(selected, bool)
    sel_c = np.bincount(idx[sel], minlength=nb)
    labels = bar_labels(view)
    out = []
    for i in range(nb):
        if view.kind == "numeric" and i == nb - 1 and all_c[i] == 0:
            continue
        out.append({"bar": i, "label": labels[i], "all": int(all_c[i]), "selected": int(sel_c[i]),
                    "all_share": float(all_c[i] / max(1, len(idx))),
                    "selected_share": float(sel_c[i] / max(1, int(sel.sum())))})
    return out


def bar_mask(view: ColumnView, bar: int) -> np.ndarray:
    """(n,) bool: the rows in bar ``bar`` (a category, or a bin [lo, hi), the last bin closed)."""
    return bar_index(view) == int(bar)


def color_values(view: ColumnView) -> tuple[str, np.ndarray]:
    """What to colour points by: ("categorical", codes) or ("numeric", values)."""
    return (view.kind, view.codes if view.kind == "categorical" else view.values)
