"""Latency of a search by meaning (core.search.nearest) at 100k and 1M rows.

    python -m bench.semantic_query [--sizes 100000,1000000] [--dim 384] [--queries 20] [--no-write]

Random unit vectors (float32, as Sieve stores its embeddings) stand in for a map's
vectors: the latency of an exact search depends on the size, not on the content.  Each
size is timed three ways: the vectors in memory; memory-mapped from a .npy file, as
load_map gives them (in the page cache after a first read); and with the rows' norms
(vectors that are not unit length).  The query embedding is timed separately, with the
packaged all-MiniLM-L6-v2 on each CPU backend (model load excluded; median of warm
calls).  The run is prepended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

QUERIES = ["how do I get a refund for a cancelled flight", "python list comprehension with a condition",
           "tomato plants with yellow leaves", "write a polite email declining a meeting"]


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def time_queries(vectors, queries: np.ndarray, k: int, norms=None) -> list[tuple[float, float]]:
    """(wall s, CPU s of this process) per query."""
    from core.search import nearest

    nearest(vectors, queries[0], k, norms=norms)  # warm (page cache, BLAS threads)
    out = []
    for q in queries:
        t0, c0 = time.perf_counter(), time.process_time()
        nearest(vectors, q, k, norms=norms)
        out.append((time.perf_counter() - t0, time.process_time() - c0))
    return out


def search_rows(n: int, dim: int, n_queries: int, k: int) -> list[tuple[str, list[tuple[float, float]]]]:
    from core.search import row_norms

    v = unit_vectors(n, dim)
    queries = unit_vectors(n_queries, dim, seed=1)
    rows = [("in memory, unit vectors", time_queries(v, queries, k))]
    t0 = time.perf_counter()
    norms = row_norms(v)
    norm_s = time.perf_counter() - t0
    rows.append((f"in memory, with row norms (computed once: {norm_s:.2f} s)", time_queries(v, queries, k, norms)))
    with tempfile.TemporaryDirectory(prefix="sieve-bench-") as tmp:
        path = Path(tmp) / "vectors.npy"
        np.save(path, v)
        del v
        mm = np.load(path, mmap_mode="r")
        rows.append(("memory-mapped .npy (as load_map), unit vectors", time_queries(mm, queries, k)))
        del mm
    return rows


def embed_rows(n_calls: int = 10) -> list[tuple[str, list[tuple[float, float]]]]:
    from core.encoders.registry import load_encoder

    out = []
    for backend in ("onnx-int8", "torch"):
        enc = load_encoder("all-MiniLM-L6-v2", device="cpu", backend=backend)
        enc.embed([QUERIES[0]])
        times = []
        for i in range(n_calls):
            t0, c0 = time.perf_counter(), time.process_time()
            enc.embed([QUERIES[i % len(QUERIES)]])
            times.append((time.perf_counter() - t0, time.process_time() - c0))
        out.append((f"embed one query, {backend}", times))
    return out


def table(results: dict, embed: list) -> str:
    lines = ["| what | rows | median wall s | max wall s | median CPU s |", "|---|---:|---:|---:|---:|"]

    def row(what, n, ts):
        wall, cpu = [t[0] for t in ts], [t[1] for t in ts]
        return f"| {what} | {n} | {statistics.median(wall):.3f} | {max(wall):.3f} | {statistics.median(cpu):.3f} |"

    for n, rows in results.items():
        lines += [row(f"search, {what}", f"{n:,}", ts) for what, ts in rows]
    lines += [row(what, "–", ts) for what, ts in embed]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.semantic_query")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--no-embed", action="store_true", help="skip timing the query embedding")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    from bench.common import RESULTS, machine, prepend

    load0 = os.getloadavg()[0]
    results = {int(n): search_rows(int(n), args.dim, args.queries, args.k) for n in args.sizes.split(",")}
    embed = [] if args.no_embed else embed_rows()
    text = (
        f"### Search by meaning: query latency, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
        f"Machine: {machine()}; load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end (other "
        f"work shared the machine when it is above ~0.3 per core).  `python -m bench.semantic_query`: exact "
        f"cosine top-{args.k} (`core.search.nearest`: chunked float32 matrix-vector product + argpartition) "
        f"over random {args.dim}-d unit vectors, {args.queries} queries per case after one warm-up query; the "
        "query embedding (packaged all-MiniLM-L6-v2, model already loaded) is timed separately.  Target: "
        "under 1 s at 1M rows.  CPU s is this process's CPU time per query (threads added up): on a busy "
        "machine, wall time exceeds it by the time spent waiting for a core.\n\n" + table(results, embed) + "\n"
    )
    print(text)
    if not args.no_write:
        prepend(RESULTS, text)


if __name__ == "__main__":
    main()
