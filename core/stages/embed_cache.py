"""The embedding cache: vectors kept by (model key, text hash) in checksummed chunk files under
``<workspace>/cache/embed/<model key>/`` and indexed in the DuckDB table ``embed_cache``, so a
re-run computes nothing and an interrupted run resumes where it stopped."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa

from core.store.artifacts import atomic_save_npy, atomic_write_bytes, file_checksum, verify_file
from core.store.workspace import SieveError, Workspace, fetch_arrow

CACHE_TABLE = "embed_cache"

# compute(texts, offset, total) -> (len(texts), dim) float32: embeds one chunk of missing texts
ChunkCompute = Callable[[Sequence[str], int, int], np.ndarray]


def length_order(texts: Sequence[str]) -> np.ndarray:
    """Indices sorting texts longest first (ties by position), so batches pad little."""
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    return np.lexsort((np.arange(len(texts)), -lengths))


def ensure_cache_table(con) -> None:
    """Create the cache index table if it is missing."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {CACHE_TABLE} ("
        "model_key VARCHAR, text_hash VARCHAR, chunk VARCHAR, pos INTEGER, PRIMARY KEY (model_key, text_hash))"
    )


def hash_list(hashes: Sequence[str]) -> str:
    """sha256 hex of the hashes in order (one per line)."""
    h = hashlib.sha256()
    for x in hashes:
        h.update(x.encode())
        h.update(b"\n")
    return h.hexdigest()


def load_chunk(cache_dir: Path, chunk_id: str, dim: int) -> np.ndarray | None:
    """A cache chunk (memory-mapped), or None when it is missing, truncated, of another
    width, or fails the checksum written beside it (chunks of older versions have none)."""
    path = cache_dir / f"{chunk_id}.npy"
    try:
        sum_path = path.with_name(path.name + ".sum")
        if sum_path.is_file() and not verify_file(path, sum_path.read_text().strip()):
            return None
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return arr if arr.ndim == 2 and arr.shape[1] == dim and arr.dtype == np.float32 else None


def cached_chunks(ws: Workspace, model_key: str, unique: list[str], cache_dir: Path,
                  dim: int) -> tuple[dict[str, tuple[str, int]], dict[str, np.ndarray | None]]:
    """({text hash: (chunk id, row)} of the cached ``unique`` hashes, {chunk id: array}).  A
    cache row whose chunk file went missing, or is truncated or corrupt, is treated as not
    cached: those texts are embedded again."""
    with ws.connect() as con:
        ensure_cache_table(con)
        con.register("wanted", pa.table({"text_hash": pa.array(unique, pa.string())}))
        found = fetch_arrow(
            con,
            f"SELECT c.text_hash, c.chunk, c.pos FROM {CACHE_TABLE} c JOIN wanted w USING (text_hash) "
            "WHERE c.model_key = ?",
            [model_key],
        )
        con.unregister("wanted")
    cached = {h: (c, p) for h, c, p in zip(*(found.column(i).to_pylist() for i in range(3)))}
    chunks = {c: load_chunk(cache_dir, c, dim) for c in {cp[0] for cp in cached.values()}}
    cached = {h: cp for h, cp in cached.items() if chunks[cp[0]] is not None and cp[1] < len(chunks[cp[0]])}
    return cached, chunks


def store_chunk(ws: Workspace, cache_dir: Path, model_key: str, chunk_hashes: list[str], vecs: np.ndarray) -> str:
    """Write one chunk (``vecs`` (len(chunk_hashes), dim) float32) and its checksum atomically,
    then index its rows; returns the chunk id."""
    chunk_id = hash_list(chunk_hashes)[:24]
    atomic_save_npy(cache_dir / f"{chunk_id}.npy", vecs)
    atomic_write_bytes(cache_dir / f"{chunk_id}.npy.sum", file_checksum(cache_dir / f"{chunk_id}.npy").encode())
    with ws.connect() as con:
        ensure_cache_table(con)
        con.register(
            "new_rows",
            pa.table({"text_hash": chunk_hashes, "pos": pa.array(range(len(chunk_hashes)), pa.int32())}),
        )
        con.execute(
            f"INSERT OR REPLACE INTO {CACHE_TABLE} SELECT ?, text_hash, ?, pos FROM new_rows",
            [model_key, chunk_id],
        )
        con.unregister("new_rows")
    return chunk_id


def gather(hashes: Sequence[str], cached: dict[str, tuple[str, int]], chunks: dict, cache_dir: Path,
           dim: int) -> np.ndarray:
    """(len(hashes), dim) float32: each hash's cached vector.  Raises SieveError if a chunk
    just written cannot be read back."""
    vectors = np.empty((len(hashes), dim), dtype=np.float32)
    by_chunk: dict[str, list[tuple[int, int]]] = {}
    for i, h in enumerate(hashes):
        c, p = cached[h]
        by_chunk.setdefault(c, []).append((i, p))
    for c, pairs in by_chunk.items():
        arr = chunks.get(c)
        if arr is None:
            arr = load_chunk(cache_dir, c, dim)
        if arr is None:
            raise SieveError(f"embedding cache chunk {cache_dir / (c + '.npy')} could not be read back after "
                             "writing it; check the disk and run the command again")
        rows = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
        pos = np.fromiter((p for _, p in pairs), dtype=np.int64, count=len(pairs))
        vectors[rows] = arr[pos]
    return vectors


def embed_with_cache(ws: Workspace, texts: Sequence[str], hashes: Sequence[str], model_key: str, dim: int,
                     chunk_size: int, compute: ChunkCompute, progress=None) -> tuple[np.ndarray, int]:
    """((len(texts), dim) float32 vectors in input order, how many texts were computed).

    Texts whose hash is cached under ``model_key`` are read back; the others (each distinct
    text once, longest first) are embedded by ``compute`` in chunks of ``chunk_size``, each
    chunk stored before the next starts (so an interrupted run resumes)."""
    cache_dir = ws.root / "cache" / "embed" / model_key
    first: dict[str, int] = {}
    for i, h in enumerate(hashes):
        first.setdefault(h, i)
    unique = list(first)
    cached, chunks = cached_chunks(ws, model_key, unique, cache_dir, dim)
    missing = [h for h in unique if h not in cached]
    missing_texts = [texts[first[h]] for h in missing]
    order = length_order(missing_texts)
    missing = [missing[i] for i in order]
    missing_texts = [missing_texts[i] for i in order]

    total = len(missing)
    if progress:
        progress(0, total, f"{len(unique) - total} cached, {total} to embed")
    for start in range(0, total, chunk_size):
        chunk_hashes = missing[start : start + chunk_size]
        vecs = compute(missing_texts[start : start + chunk_size], start, total)
        chunk_id = store_chunk(ws, cache_dir, model_key, chunk_hashes, vecs)
        chunks[chunk_id] = None  # read back (and verified) below
        for j, h in enumerate(chunk_hashes):
            cached[h] = (chunk_id, j)
    return gather(hashes, cached, chunks, cache_dir, dim), total
