"""Explore: the app's UI-independent logic (no Streamlit here).

Pure numpy part (fast at 1M rows):

- :func:`points_in_box` / :func:`points_in_lasso`: boolean masks over all rows.
- :func:`selection_mask`: a Streamlit/Plotly selection event -> row mask over ALL rows.
  Box and lasso shapes are re-applied on the server, so a map that draws only a
  sample still selects every row inside the shape.
- :func:`draw_sample`: which rows to draw (deterministic, small clusters whole).
- :func:`text_search`: case-insensitive literal substring search.
- :func:`selection_summary` / :func:`cluster_table`: stats for the tables.

File and row helpers (uploads, previews, fetching rows, download bytes) are in core.explore_files.
"""

from __future__ import annotations

import html
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.selection import allocate

NOISE = -1

# -- shapes -------------------------------------------------------------------------


def _xy(xy) -> tuple[np.ndarray, np.ndarray]:
    xy = np.asarray(xy)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"xy must have shape (n, 2), got {xy.shape}")
    return xy[:, 0], xy[:, 1]


def points_in_box(xy, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """Rows inside the axis-aligned box (edges included; corners in any order)."""
    x, y = _xy(xy)
    xa, xb = sorted((float(x0), float(x1)))
    ya, yb = sorted((float(y0), float(y1)))
    return (x >= xa) & (x <= xb) & (y >= ya) & (y <= yb)


def points_in_lasso(xy, xs: Sequence[float], ys: Sequence[float]) -> np.ndarray:
    """Rows inside the polygon (even-odd rule; the polygon closes itself).

    Vectorised ray casting: rows outside the polygon's bounding box are dropped
    first, the rest are bucketed by y once (a radix sort), and each edge only
    touches the rows in the buckets of its own y-band.
    """
    x, y = _xy(xy)
    px = np.asarray(xs, dtype=np.float64).ravel()
    py = np.asarray(ys, dtype=np.float64).ravel()
    n = len(x)
    out = np.zeros(n, dtype=bool)
    if len(px) != len(py):
        raise ValueError("lasso x and y must have the same length")
    if len(px) < 3 or n == 0:
        return out
    ok = np.isfinite(px) & np.isfinite(py)
    px, py = px[ok], py[ok]
    if len(px) < 3:
        return out
    cand = np.nonzero((x >= px.min()) & (x <= px.max()) & (y >= py.min()) & (y <= py.max()))[0]
    if len(cand) == 0:
        return out
    cy = y[cand].astype(np.float64)
    cx = x[cand].astype(np.float64)
    # Bucket the rows by y (a 16-bit key, so numpy's stable argsort is a radix sort).
    nb = int(min(4096, max(1, len(cand) // 64)))
    y_lo, y_hi = float(py.min()), float(py.max())
    scale = nb / (y_hi - y_lo) if y_hi > y_lo else 0.0
    bins = np.clip(((cy - y_lo) * scale).astype(np.int64), 0, nb - 1).astype(np.uint16)
    order = np.argsort(bins, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(bins, minlength=nb))])
    cy, cx = cy[order], cx[order]
    inside = np.zeros(len(cand), dtype=bool)
    xj, yj = px[-1], py[-1]
    for xi, yi in zip(px.tolist(), py.tolist()):
        if yi != yj:
            lo, hi = (yi, yj) if yi < yj else (yj, yi)
            a = int(starts[min(nb - 1, max(0, int((lo - y_lo) * scale)))])
            b = int(starts[min(nb - 1, max(0, int((hi - y_lo) * scale))) + 1])
            if b > a:
                band_y, band_x = cy[a:b], cx[a:b]
                cross = xi + (band_y - yi) * ((xj - xi) / (yj - yi))
                inside[a:b] ^= (band_y >= lo) & (band_y < hi) & (band_x < cross)
        xj, yj = xi, yi
    out[cand[order[inside]]] = True
    return out


def _as_selection(event: Any) -> Mapping:
    """The ``selection`` part of a plotly_chart event (or the event itself)."""
    if event is None:
        return {}
    sel = event.get("selection", event) if hasattr(event, "get") else {}
    return sel if hasattr(sel, "get") else {}


def _customdata_position(cd: Any) -> int | None:
    """customdata comes back as a scalar (go.Scattergl), a list, or ``{"0": id}`` (px)."""
    if cd is None:
        return None
    if isinstance(cd, Mapping):
        cd = cd.get("0", next(iter(cd.values()), None)) if cd else None
    elif isinstance(cd, (list, tuple)):
        cd = cd[0] if cd else None
    try:
        return int(cd)
    except (TypeError, ValueError):
        return None


def event_shapes(event: Any) -> tuple[list[tuple[float, float, float, float]], list[tuple[list, list]]]:
    """The usable shapes of a plotly selection event: boxes as (x0, x1, y0, y1), sorted,
    and lassos as (xs, ys); a box needs two x and two y values, a lasso three points."""
    sel = _as_selection(event)
    boxes, lassos = [], []
    for b in sel.get("box") or []:
        bx, by = list(b.get("x") or []), list(b.get("y") or [])
        if len(bx) >= 2 and len(by) >= 2:
            boxes.append((min(bx), max(bx), min(by), max(by)))
    for la in sel.get("lasso") or []:
        lx, ly = list(la.get("x") or []), list(la.get("y") or [])
        if len(lx) >= 3 and len(lx) == len(ly):
            lassos.append((lx, ly))
    return boxes, lassos


def event_point_ids(event: Any) -> list[int]:
    """The ``customdata`` ids of the clicked points of a plotly selection event."""
    ids = [_customdata_position(p.get("customdata")) for p in _as_selection(event).get("points") or []]
    return [i for i in ids if i is not None]


def has_shapes(event: Any) -> bool:
    sel = _as_selection(event)
    return bool(sel.get("box")) or bool(sel.get("lasso"))


def selection_mask(
    event: Any,
    xy,
    *,
    trace_positions: Sequence[np.ndarray] | None = None,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """A boolean mask over ALL rows of ``xy`` for a plotly selection event.

    Box and lasso shapes (``selection.box`` / ``selection.lasso``, each with ``x`` and
    ``y`` lists) are applied to every row, and their union is taken.  Without any
    shape, clicked ``selection.points`` are mapped back through ``customdata`` (a
    row position) or, failing that, ``trace_positions[curve_number][point_index]``.
    ``allowed`` (a mask) restricts the result, e.g. to the clusters on display.
    """
    n = len(np.asarray(xy))
    mask = np.zeros(n, dtype=bool)
    sel = _as_selection(event)
    boxes, lassos = event_shapes(sel)
    for x0, x1, y0, y1 in boxes:
        mask |= points_in_box(xy, x0, x1, y0, y1)
    for lx, ly in lassos:
        mask |= points_in_lasso(xy, lx, ly)
    if not sel.get("box") and not sel.get("lasso"):
        for p in sel.get("points") or []:
            pos = _customdata_position(p.get("customdata"))
            if pos is None and trace_positions is not None:
                c, i = p.get("curve_number"), p.get("point_index", p.get("point_number"))
                if c is not None and i is not None and 0 <= c < len(trace_positions):
                    tp = trace_positions[c]
                    pos = int(tp[i]) if 0 <= i < len(tp) else None
            if pos is not None and 0 <= pos < n:
                mask[pos] = True
    if allowed is not None:
        mask &= np.asarray(allowed, dtype=bool)
    return mask


# -- what to draw -----------------------------------------------------------------------


def _codes_counts(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(labels, return_inverse=True, return_counts=True)``, by counting for cluster ids."""
    labels = np.asarray(labels)
    if len(labels) and labels.dtype.kind in "iu" and labels.min() >= -1 and labels.max() < 10_000_000:
        shifted = labels.astype(np.int64) + 1
        cnt = np.bincount(shifted)
        present = cnt > 0
        return (np.nonzero(present)[0] - 1).astype(labels.dtype), (np.cumsum(present) - 1)[shifted], cnt[present]
    groups, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return groups, inverse.ravel(), counts


def draw_sample(labels, max_points: int = 100_000, seed: int = 0, *, min_keep: int = 200) -> np.ndarray:
    """Sorted positions of at most ``max_points`` rows to draw.

    Every row when there are few enough.  Otherwise each cluster keeps at least
    ``min_keep`` rows (a smaller cluster is kept whole) and the rest of the room is
    shared in proportion to size; rows inside a cluster are drawn with a generator
    seeded by ``(seed, cluster)``, so the result is the same on every call.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if max_points < 1:
        raise ValueError("max_points must be positive")
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    groups, inverse, counts = _codes_counts(labels)
    sizes = {int(g): int(c) for g, c in zip(groups, counts)}
    floor = min(int(min_keep), max_points // max(len(groups), 1))
    alloc = allocate(sizes, int(max_points), "proportional", lower={g: min(s, floor) for g, s in sizes.items()})
    order = np.argsort(inverse.astype(np.uint16) if len(groups) < 2**16 else inverse, kind="stable")  # radix
    starts = np.concatenate([[0], np.cumsum(counts)])
    out = []
    for j, g in enumerate(groups.tolist()):
        members = order[starts[j] : starts[j + 1]]
        k = alloc.counts[int(g)]
        if k >= len(members):
            out.append(members)
        elif k > 0:
            rng = np.random.default_rng([int(seed), int(g) + 1 if g >= 0 else 10**9])
            out.append(members[rng.choice(len(members), k, replace=False)])
    return np.sort(np.concatenate(out)).astype(np.int64) if out else np.zeros(0, np.int64)


# -- search and stats -------------------------------------------------------------------


def text_search(texts, query: str | None) -> np.ndarray:
    """Rows whose text contains ``query`` (case-insensitive, literal: no regex)."""
    arr = texts if isinstance(texts, (pa.Array, pa.ChunkedArray)) else pa.array(list(texts), pa.string())
    n = len(arr)
    if not query or not str(query).strip():
        return np.zeros(n, dtype=bool)
    hit = pc.match_substring(arr, pattern=str(query), ignore_case=True)
    return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)


def snippet(text: Any, length: int = 80) -> str:
    """A one-line, HTML-escaped prefix of ``text`` for Plotly hover labels."""
    s = "" if text is None else " ".join(str(text).split())
    if len(s) > length:
        s = s[: max(1, length - 1)] + "…"
    return html.escape(s, quote=True)


def _counts(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(labels, return_counts=True)``; by counting for cluster ids (small integers >= -1)."""
    labels = np.asarray(labels)
    if len(labels) and labels.dtype.kind in "iu" and labels.min() >= -1 and labels.max() < 10_000_000:
        cnt = np.bincount(labels.astype(np.int64) + 1)
        present = np.nonzero(cnt)[0]
        return (present - 1).astype(labels.dtype), cnt[present]
    return np.unique(labels, return_counts=True)


def selection_summary(labels, mask_or_positions, names: Mapping[int, str] | None = None) -> dict:
    """Rows selected and the clusters they touch, biggest first.

    Returns ``{"rows": n, "clusters": [{"id", "name", "count", "share"}...]}`` where
    ``share`` is the part of that cluster that is selected.
    """
    labels = np.asarray(labels)
    sel = np.asarray(mask_or_positions)
    if sel.dtype == bool:
        chosen = labels[sel]
    else:
        chosen = labels[sel.astype(np.int64)]
    names = names or {}
    out = []
    if len(chosen):
        ids, cnt = _counts(chosen)
        full_ids, full_cnt = _counts(labels)
        full = dict(zip(full_ids.tolist(), full_cnt.tolist()))
        for c, k in sorted(zip(ids.tolist(), cnt.tolist()), key=lambda t: (-t[1], t[0])):
            out.append({"id": int(c), "name": names.get(int(c), str(c)), "count": int(k),
                        "share": float(k) / full[c]})
    return {"rows": int(len(chosen)), "clusters": out}


def cluster_table(clusters: Iterable[Any], n_total: int | None = None) -> list[dict]:
    """One row per cluster (``ClusterInfo`` objects or dicts): id, name, keywords, size, share."""
    rows = []
    for c in clusters:
        d = c if isinstance(c, Mapping) else c.__dict__
        rows.append({"id": int(d["id"]), "name": d["name"], "keywords": ", ".join(d.get("keywords") or []),
                     "size": int(d["size"])})
    total = n_total if n_total else sum(r["size"] for r in rows)
    for r in rows:
        r["share"] = (r["size"] / total) if total else 0.0
    return rows


def ids_in(row_ids: np.ndarray, ids: Iterable[int]) -> np.ndarray:
    """Mask over ``row_ids`` (sorted) of the given ids."""
    row_ids = np.asarray(row_ids, dtype=np.int64)
    if isinstance(ids, np.ndarray):
        ids = ids.astype(np.int64, copy=False).ravel()
        if len(ids) > 1 and not (ids[1:] >= ids[:-1]).all():
            ids = np.sort(ids)
        if len(ids) > 1:
            ids = ids[np.r_[True, ids[1:] != ids[:-1]]]
    else:
        ids = np.asarray(sorted(set(int(i) for i in ids)), dtype=np.int64)
    if not len(ids) or not len(row_ids):
        return np.zeros(len(row_ids), bool)
    if len(row_ids) < 2 or (row_ids[1:] > row_ids[:-1]).all():  # sorted (the map's order): a binary search
        loc = np.searchsorted(row_ids, ids)
        hit = loc < len(row_ids)
        hit[hit] = row_ids[loc[hit]] == ids[hit]
        out = np.zeros(len(row_ids), bool)
        out[loc[hit]] = True
        return out
    return np.isin(row_ids, ids, assume_unique=True)
