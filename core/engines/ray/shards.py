"""Shard I/O: Parquet shards under ``<workspace>/shards``, one file per range of row ids.

DuckDB reads a whole folder with ``read_parquet('dir/*.parquet')``; every file is
written under a temporary name and renamed, so a shard exists whole or not at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.stages.dataset import current_dataset
from core.store.artifacts import atomic_path, atomic_write_json
from core.store.workspace import DATASET_TABLE, Workspace, fetch_arrow

SHARDS_DIR = "shards"
META_SCALE = "scale"  # workspace meta key: the latest sharded embed/map
STAGE_VERSION = 1


def shard_name(start: int, end: int) -> str:
    """The id of the shard of row ids [start, end): both zero-padded to 12 digits."""
    return f"{start:012d}-{end:012d}"


def shards_root(ws: Workspace) -> Path:
    """The folder of a workspace's shards (input, embed, map)."""
    return ws.root / SHARDS_DIR


def input_shards(ws: Workspace, shard_rows: int) -> list[dict]:
    """The workspace dataset's embeddable rows (``sieve_row_id``, ``sieve_text``) as Parquet
    shards of ``shard_rows`` row ids; written once per (dataset, shard_rows).  Returns
    ``[{"id", "start", "end", "rows", "path"}]`` in row-id order (shards with no
    embeddable row are left out)."""
    info = current_dataset(ws)
    folder = shards_root(ws) / "input" / f"{info.key}-{shard_rows}"
    listing = folder / "_shards.json"
    if listing.is_file():
        shards = json.loads(listing.read_text())["shards"]
        if all((folder / s["file"]).is_file() for s in shards):
            return [dict(s, path=str(folder / s["file"])) for s in shards]
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    with ws.connect() as con:
        top = con.execute(f"SELECT max(sieve_row_id) FROM {DATASET_TABLE}").fetchall()[0][0]
        for start in range(0, (int(top) + 1) if top is not None else 0, shard_rows):
            end = start + shard_rows
            n = con.execute(f"SELECT count(*) FROM {DATASET_TABLE} WHERE sieve_text_ok AND sieve_row_id >= ? "
                            "AND sieve_row_id < ?", [start, end]).fetchall()[0][0]
            if not n:
                continue
            name = f"rows-{shard_name(start, end)}.parquet"
            if not (folder / name).is_file():
                with atomic_path(folder / name) as tmp:
                    lit = str(tmp).replace("'", "''")
                    con.execute(
                        f"COPY (SELECT sieve_row_id, sieve_text FROM {DATASET_TABLE} WHERE sieve_text_ok AND "
                        f"sieve_row_id >= {start} AND sieve_row_id < {end} ORDER BY sieve_row_id) "
                        f"TO '{lit}' (FORMAT parquet)")
            shards.append({"id": shard_name(start, end), "start": start, "end": end, "rows": int(n), "file": name})
    atomic_write_json(listing, {"dataset": info.key, "shard_rows": shard_rows, "shards": shards})
    return [dict(s, path=str(folder / s["file"])) for s in shards]


def vector_table(row_ids: np.ndarray, vectors: np.ndarray):
    """(``sieve_row_id`` int64, ``vector`` fixed_size_list<float32>[dim]) as an Arrow table."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    flat = pa.array(vectors.reshape(-1), pa.float32())
    return pa.table({"sieve_row_id": pa.array(np.asarray(row_ids, dtype=np.int64)),
                     "vector": pa.FixedSizeListArray.from_arrays(flat, int(vectors.shape[1]))})


def arrow_vectors(column) -> np.ndarray:
    """A (fixed-size) list column of floats as an (n, dim) float32 array."""
    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(col)
    if n == 0:
        return np.zeros((0, 0), np.float32)
    flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(n, -1)


def write_parquet_atomic(path: Path | str, table) -> Path:
    """Write an Arrow ``table`` to ``path`` under a temporary name, then rename it."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def parquet_glob(folder: Path | str, prefix: str) -> str:
    """The glob of a folder's ``<prefix>-*.parquet`` shards."""
    return str(Path(folder) / f"{prefix}-*.parquet")


def shard_source(folder: Path | str, prefix: str) -> str:
    """A DuckDB ``read_parquet(...)`` expression over a folder's ``<prefix>-*.parquet`` shards."""
    return f"read_parquet({sql_str(parquet_glob(folder, prefix))})"


def duck():
    """A new in-memory DuckDB connection (close it after use)."""
    return duckdb.connect()


def cluster_sizes(con, src: str, row_ids: Sequence[int] | None = None) -> dict[int, int]:
    """{cluster: rows} over the map shards ``src`` (a ``read_parquet(...)`` expression);
    only the rows in ``row_ids`` when given."""
    if row_ids is None:
        rows = con.execute(f"SELECT cluster, count(*) FROM {src} GROUP BY cluster").fetchall()
    else:
        con.register("sieve_ids", pa.table({"sieve_row_id": pa.array(np.asarray(row_ids, dtype=np.int64))}))
        try:
            rows = con.execute(f"SELECT m.cluster, count(*) FROM {src} m SEMI JOIN sieve_ids USING (sieve_row_id) "
                               "GROUP BY m.cluster").fetchall()
        finally:
            con.unregister("sieve_ids")
    return {int(c): int(n) for c, n in rows}


def sql_str(s: str) -> str:
    """``s`` as a SQL string literal (single quotes doubled)."""
    return "'" + str(s).replace("'", "''") + "'"


def load_vectors(embed_dir: Path | str, row_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(row ids (n,) int64, vectors (n, dim) float32) from the vector shards in row-id
    order (optionally only ``row_ids``)."""
    con = duck()
    try:
        src = shard_source(embed_dir, "vec")
        if row_ids is None:
            tbl = fetch_arrow(con, f"SELECT sieve_row_id, vector FROM {src} ORDER BY sieve_row_id")
        else:
            con.register("wanted", pa.table({"sieve_row_id": pa.array(np.asarray(row_ids, dtype=np.int64))}))
            tbl = fetch_arrow(con, f"SELECT v.sieve_row_id, v.vector FROM {src} v SEMI JOIN wanted w "
                                   "USING (sieve_row_id) ORDER BY v.sieve_row_id")
    finally:
        con.close()
    return tbl.column(0).to_numpy().astype(np.int64), arrow_vectors(tbl.column(1))
