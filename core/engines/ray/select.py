"""Selection at scale: the budget allocated on per-cluster counts (DuckDB over the map
shards), then the picks inside each cluster in parallel (Ray tasks running
:func:`core.selection.select` on that cluster alone, which gives the rows the in-memory
selection gives).  The result is the local engine's :class:`core.selection.Selection`."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from core.engines.base import check_supported
from core.engines.ray.cluster import require_ray
from core.engines.ray.shards import arrow_vectors, cluster_sizes, duck, parquet_glob, shard_source, sql_str
from core.selection import VECTOR_PICKS, Selection, SelectParams, allocate, group_bounds, select
from core.store.workspace import SieveError, fetch_arrow


def check_select_params(params: SelectParams) -> None:
    """SieveError naming the first option or pick of ``params`` the Ray engine cannot run
    (:func:`core.engines.base.check_supported`: the pick registry's ``engines`` and the
    SelectParams fields' ``engines`` metadata)."""
    check_supported(params, "ray", "Ray")


def count_by_cluster(map_dir: Path | str, row_ids: Sequence[int]) -> dict[int, int]:
    """{cluster: how many of ``row_ids``} by DuckDB over the map shards (ids not on the map are not counted)."""
    con = duck()
    try:
        return cluster_sizes(con, shard_source(map_dir, "map"), row_ids)
    finally:
        con.close()


def cluster_counts(map_dir: Path | str, pins: Sequence[int] = (), bans: Sequence[int] = ()):
    """({cluster: rows}, {cluster: banned rows}, {cluster: pinned rows}) by DuckDB over the map shards."""
    src = shard_source(map_dir, "map")
    con = duck()
    try:
        total = cluster_sizes(con, src)
        out = []
        for name, ids in (("bans", bans), ("pins", pins)):
            ids = np.asarray(ids, dtype=np.int64)
            counts = cluster_sizes(con, src, ids)
            found = int(sum(counts.values()))
            if found != len(np.unique(ids)):
                raise SieveError(f"{name}: {len(np.unique(ids)) - found} row id(s) are not on the map")
            out.append(counts)
    finally:
        con.close()
    return total, out[0], out[1]


def pick_cluster(map_dir: str, embed_dir: str, cluster_id: int, k: int, params_dict: dict,
                 need_vectors: bool) -> dict:
    """One cluster's ``k`` picks: :func:`core.selection.select` on that cluster's rows alone
    (a Ray task: plain arguments in, ``{"cluster", "row_ids" int64, "ranks" int32,
    "reasons"}`` out)."""
    threadpool_limits(1)
    con = duck()
    try:
        src = shard_source(map_dir, "map")
        if need_vectors:
            # only the vector shards holding this cluster's rows (map-<range> pairs with vec-<range>)
            files = con.execute(f"SELECT DISTINCT filename FROM read_parquet({sql_str(parquet_glob(map_dir, 'map'))}, "
                                f"filename = true) WHERE cluster = {int(cluster_id)}").fetchall()
            vec_files = sorted(str(Path(embed_dir) / ("vec-" + Path(f).name[len("map-"):])) for (f,) in files)
            listing = "[" + ", ".join(sql_str(f) for f in vec_files) + "]"
            tbl = fetch_arrow(con, f"SELECT m.sieve_row_id, v.vector FROM {src} m JOIN "
                                   f"read_parquet({listing}) v USING (sieve_row_id) "
                                   f"WHERE m.cluster = {int(cluster_id)} ORDER BY m.sieve_row_id")
            vectors = arrow_vectors(tbl.column(1))
        else:
            tbl = fetch_arrow(con, f"SELECT sieve_row_id FROM {src} WHERE cluster = {int(cluster_id)} "
                                   "ORDER BY sieve_row_id")
            vectors = None
    finally:
        con.close()
    ids = tbl.column(0).to_numpy().astype(np.int64)
    d = dict(params_dict)
    members = set(ids.tolist())
    d.update(budget=int(k), min_per_cluster=0, max_per_cluster=None, overrides={}, bounds={}, noise="include",
             pins=[p for p in d.get("pins", []) if p in members], bans=[b for b in d.get("bans", []) if b in members])
    sel = select(np.full(len(ids), int(cluster_id), np.int32), ids, SelectParams.from_dict(d), vectors=vectors)
    return {"cluster": int(cluster_id), "row_ids": sel.row_ids.astype(np.int64), "ranks": sel.ranks.astype(np.int32),
            "reasons": list(sel.reasons)}


def scale_select(map_dir: Path | str, embed_dir: Path | str, params: SelectParams, *,
                 local: bool = False) -> Selection:
    """Allocate ``params.budget`` on per-cluster counts, then pick inside every cluster in
    parallel on Ray (``local=True``: in this process, for tests and small maps).  Gives
    the rows, ranks, reasons and allocation :func:`core.selection.select` gives on the whole
    map.  SieveError for an option the Ray engine cannot run, a budget over the map's
    rows, or pins/bans not on the map."""
    check_select_params(params)
    total, banned, pinned = cluster_counts(map_dir, params.pins, params.bans)
    n = sum(total.values())
    if params.budget > n:
        raise SieveError(f"budget={params.budget} is larger than the {n} rows on the map")
    sizes = {c: total[c] - banned.get(c, 0) for c in sorted(total)}
    lower, upper, fixed = group_bounds(sizes, params, {c: pinned.get(c, 0) for c in sizes})
    alloc = allocate(sizes, params.budget, params.policy, lower=lower, upper=upper, fixed=fixed,
                     weights_from=total, unit=params.unit)
    need_vectors = params.pick in VECTOR_PICKS
    pd = params.to_dict()
    jobs = [(c, k) for c, k in sorted(alloc.counts.items()) if k > 0]
    args = [(str(map_dir), str(embed_dir), c, k, pd, need_vectors) for c, k in jobs]
    if local:
        parts = [pick_cluster(*a) for a in args]
    else:
        ray = require_ray()
        task = ray.remote(num_cpus=1, max_retries=3)(pick_cluster)
        parts = ray.get([task.remote(*a) for a in args])
    parts.sort(key=lambda p: p["cluster"])
    return _as_selection(parts, alloc, total)


def _as_selection(parts: list[dict], alloc, total: dict[int, int]) -> Selection:
    """The per-cluster picks as one :class:`core.selection.Selection` (clusters in id order).
    ``positions`` are -1: the Ray engine holds no in-memory map to index; the per-cluster
    row counts over the whole map are in ``stats["cluster_sizes"]``."""
    empty = np.zeros(0, np.int64)
    row_ids = np.concatenate([p["row_ids"] for p in parts]) if parts else empty
    return Selection(
        positions=np.full(len(row_ids), -1, np.int64),
        row_ids=row_ids,
        clusters=np.concatenate([np.full(len(p["row_ids"]), p["cluster"], np.int32) for p in parts]) if parts
        else empty.astype(np.int32),
        ranks=np.concatenate([p["ranks"] for p in parts]) if parts else empty.astype(np.int32),
        reasons=[r for p in parts for r in p["reasons"]],
        allocation={int(c): int(v) for c, v in alloc.counts.items()},
        notes=list(alloc.notes),
        stats={"cluster_sizes": {int(c): int(v) for c, v in total.items()}},
    )
