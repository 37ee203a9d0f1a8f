"""What the At-scale page draws and selects on a sharded map: a drawn sample of the
rows, and the rows inside a box or lasso (every row, drawn or not), by DuckDB over the
map shards."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from core.engines.ray.shards import cluster_sizes, duck, shard_source
from core.explore import event_point_ids, event_shapes, has_shapes, points_in_lasso
from core.selection import allocate
from core.store.workspace import fetch_arrow


def draw_points(map_dir: Path | str, max_points: int = 100_000, seed: int = 0):
    """At most ``max_points`` rows to draw, as an Arrow table (sieve_row_id int64, x, y
    float32, cluster int32) in row-id order: every cluster keeps
    a share (core.explore.draw_sample's rule) computed from the per-cluster counts; the
    rows inside a cluster are a seeded hash sample, chosen by DuckDB over the shards."""
    src = shard_source(map_dir, "map")
    con = duck()
    try:
        counts = cluster_sizes(con, src)
        n = int(sum(counts.values()))
        if n <= max_points:
            return fetch_arrow(con, f"SELECT sieve_row_id, x, y, cluster FROM {src} ORDER BY sieve_row_id")
        floor = min(200, max_points // max(len(counts), 1))
        alloc = allocate(counts, int(max_points), "proportional", lower={c: min(v, floor) for c, v in counts.items()})
        con.register("quota", pa.table({"cluster": pa.array(list(alloc.counts), pa.int32()),
                                        "k": pa.array(list(alloc.counts.values()), pa.int64())}))
        # rank rows inside each cluster by a seeded mix of the row id (splitmix-style, in SQL)
        return fetch_arrow(con, f"""
            SELECT sieve_row_id, x, y, cluster FROM (
              SELECT m.*, q.k, row_number() OVER (PARTITION BY m.cluster ORDER BY
                ((m.sieve_row_id * 2654435761 + {int(seed) * 97 + 1}) % 4294967291), m.sieve_row_id) AS r
              FROM {src} m JOIN quota q USING (cluster)) WHERE r <= k ORDER BY sieve_row_id""")
    finally:
        con.close()


def lasso_row_ids(map_dir: Path | str, xs: Sequence[float], ys: Sequence[float],
                  batch_rows: int = 1_000_000) -> np.ndarray:
    """Row ids of every mapped row inside the lasso polygon (server side, all rows): DuckDB
    keeps the rows inside the polygon's bounding box, and the exact test runs on them."""
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    if len(xs) < 3:
        return np.zeros(0, np.int64)
    src = shard_source(map_dir, "map")
    con = duck()
    out = []
    try:
        rel = con.sql(f"SELECT sieve_row_id, x, y FROM {src} WHERE x BETWEEN $1 AND $2 AND y BETWEEN $3 AND $4 "
                      "ORDER BY sieve_row_id",
                      params=[float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())])
        reader = (rel.to_arrow_reader(batch_rows) if hasattr(rel, "to_arrow_reader")
                  else rel.fetch_record_batch(batch_rows))
        for b in reader:
            ids = b.column(0).to_numpy().astype(np.int64)
            xy = np.column_stack([b.column(1).to_numpy(), b.column(2).to_numpy()])
            out.append(ids[points_in_lasso(xy, xs, ys)])
    finally:
        con.close()
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def event_row_ids(map_dir: Path | str, event) -> tuple[np.ndarray, str]:
    """A plotly selection event on a drawn sample of the map -> (row ids, how): every row
    inside its boxes and lassos (all rows, drawn or not, via :func:`lasso_row_ids`), or
    the clicked points (``customdata`` holds row ids) when it has no shape."""
    sel = _selection_part(event)
    boxes, lassos = event_shapes(sel)
    parts = [lasso_row_ids(map_dir, [x0, x1, x1, x0], [y0, y0, y1, y1]) for x0, x1, y0, y1 in boxes]
    parts += [lasso_row_ids(map_dir, lx, ly) for lx, ly in lassos]
    if has_shapes(sel):
        how = "box" if sel.get("box") else "lasso"
    else:
        how = "points"
        parts.append(np.asarray(event_point_ids(sel), dtype=np.int64))
    ids = np.unique(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, np.int64)
    return ids, how if len(ids) else "none"


def _selection_part(event) -> dict:
    """The ``selection`` part of a plotly_chart event (or the event itself); {} for none."""
    sel = event.get("selection", event) if hasattr(event, "get") else {}
    return sel if hasattr(sel, "get") else {}
