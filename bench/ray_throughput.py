"""Throughput of the Ray engine (core/scale.py); prints a markdown table to stdout.

    python -m bench.ray_throughput [--rows 1200] [--workers 1,2] [--shard-rows 150]
                                   [--assign-rows 20000] [--ari-rows 0] [--sample-size 20000]

* embed: the first ``--rows`` rows of sample_data/prompts.csv embedded by the real model
  (all-MiniLM-L6-v2, torch fp32, CPU actors of 1 thread) through ``embed_shards`` with
  1, 2, ... actors, each on a fresh workspace and a running local Ray instance with as
  many CPUs as the largest worker count.  Reported: end-to-end rows/s (actor start and
  model load included) and steady rows/s per worker (time inside the workers only).
  The same rows embedded in this process with one torch thread give the per-CPU-core
  baseline.  On a machine with GPUs, ``--device cuda`` gives the per-GPU figure.
* assign: ``--assign-rows`` synthetic 384-d vectors (8 clusters in a 5-D subspace)
  placed by a sample fit (UMAP transform + HDBSCAN approximate_predict) with 1, 2, ...
  actors.
* ``--ari-rows N`` (e.g. 200000): ARI of fit-on-``--sample-size`` + assignment against
  a full fit on all N synthetic rows (the full fit is the slow part: minutes at 200k).

Nothing is written to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


def synthetic(n: int, k: int = 8, dim: int = 384, latent: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, latent)) * 3
    truth = rng.integers(0, k, n)
    z = centres[truth] + rng.normal(size=(n, latent)) * 0.35
    basis = np.linalg.qr(rng.normal(size=(dim, latent)))[0]
    return (z @ basis.T + rng.normal(size=(n, dim)) * 0.05).astype(np.float32), truth


def _workspace(root: Path, name: str, table: pa.Table, vectors: str | None = None):
    from core.ingest import IngestParams, TextSpec, ingest
    from core.workspace import Workspace

    path = root / f"{name}.parquet"
    pq.write_table(table, path)
    ws = Workspace(root / name)
    ingest(ws, IngestParams(str(path), TextSpec(column="text"), vectors))
    return ws


def bench_embed(root: Path, rows: int, workers: list[int], shard_rows: int, device: str) -> list[dict]:
    import pyarrow.csv as pcsv

    from core import scale
    from core.embed import embed_texts, load_encoder

    table = pcsv.read_csv(ROOT / "sample_data" / "prompts.csv").slice(0, rows)
    texts = [t for t in table.column("text").to_pylist() if t and t.strip()]
    out = []
    if device != "cuda":
        import torch

        torch.set_num_threads(1)
        enc = load_encoder("all-MiniLM-L6-v2", "cpu")
        t0 = time.perf_counter()
        embed_texts(texts, enc, 64)
        dt = time.perf_counter() - t0
        out.append({"what": "embed, local process, 1 torch thread", "workers": 1, "rows": len(texts),
                    "wall_s": dt, "rows_s": len(texts) / dt, "per_worker": len(texts) / dt})
    for w in workers:
        ws = _workspace(root, f"embed{w}", table)
        res = scale.embed_shards(ws, scale.ScaleEmbedParams(shard_rows=shard_rows, workers=w, device=device))
        out.append({"what": f"embed on Ray ({device} actors)", "workers": res.workers, "rows": res.n_rows,
                    "wall_s": res.seconds, "rows_s": res.n_rows / res.seconds,
                    "per_worker": res.n_rows / res.shard_seconds if res.shard_seconds else float("nan")})
    return out


def bench_assign(root: Path, n: int, workers: list[int], sample: int) -> list[dict]:
    from core import scale

    x, _ = synthetic(n)
    table = pa.table({"text": [f"row {i}" for i in range(n)],
                      "vec": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])})
    out = []
    for w in workers:
        ws = _workspace(root, f"assign{w}", table, "vec")
        emb = scale.embed_shards(ws, scale.ScaleEmbedParams(shard_rows=max(1000, n // 8)))
        m = scale.scale_map(ws, emb.folder, scale.ScaleMapParams(sample_size=sample, sample_seed=0, workers=w))
        placed = n - m.n_sample
        out.append({"what": f"map: fit on {sample:,} (driver), assign on Ray", "workers": w, "rows": placed,
                    "wall_s": m.seconds["assign"], "rows_s": placed / m.seconds["assign"],
                    "per_worker": float("nan"), "fit_s": m.seconds.get("fit", 0.0)})
    return out


def bench_ari(root: Path, n: int, sample: int, workers: int) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from core import scale
    from core.cluster import ClusterParams
    from core.project import ProjectParams

    x, truth = synthetic(n)
    table = pa.table({"text": [f"row {i}" for i in range(n)],
                      "vec": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])})
    ws = _workspace(root, "ari", table, "vec")
    emb = scale.embed_shards(ws, scale.ScaleEmbedParams(shard_rows=max(1000, n // 16)))
    t0 = time.perf_counter()
    m = scale.scale_map(ws, emb.folder, scale.ScaleMapParams(sample_size=sample, sample_seed=0, workers=workers))
    t_sample = time.perf_counter() - t0
    labels = scale.load_scaled_map(m.folder).column("cluster").to_numpy()
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    t0 = time.perf_counter()
    full = scale.fit_sample(np.arange(n), xn, ProjectParams(), ClusterParams(), transformable=False)
    t_full = time.perf_counter() - t0
    return {"rows": n, "sample": sample, "ari_vs_full": adjusted_rand_score(full.labels, labels),
            "ari_vs_truth": adjusted_rand_score(truth, labels), "sample_path_s": t_sample, "full_fit_s": t_full}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1200)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--shard-rows", type=int, default=150)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--assign-rows", type=int, default=20_000)
    ap.add_argument("--assign-sample", type=int, default=2_000)
    ap.add_argument("--ari-rows", type=int, default=0)
    ap.add_argument("--sample-size", type=int, default=20_000)
    ap.add_argument("--address", default=None, help="An existing Ray cluster (default: a local instance).")
    ap.add_argument("--object-store-mb", type=int, default=500)
    args = ap.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",") if w.strip()]

    from core import scale

    scale.connect(args.address, num_cpus=None if args.address else max(workers),
                  object_store_memory=None if args.address else args.object_store_mb * 2**20,
                  env={"PYTHONPATH": str(ROOT)})
    import ray

    root = Path(tempfile.mkdtemp(prefix="sieve-ray-bench-"))
    try:
        rows = []
        if args.rows:
            rows += bench_embed(root, args.rows, workers, args.shard_rows, args.device)
        if args.assign_rows:
            rows += bench_assign(root, args.assign_rows, workers, args.assign_sample)
        ari = bench_ari(root, args.ari_rows, args.sample_size, max(workers)) if args.ari_rows else None
    finally:
        ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)

    print(f"### Ray engine throughput ({platform.node()}, {os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, ray {ray.__version__})\n")
    if rows:
        print("| what | workers | rows | wall s | rows/s (end to end) | rows/s per worker (steady) |")
        print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        per = "" if r["per_worker"] != r["per_worker"] else f"{r['per_worker']:.1f}"
        extra = f" (fit {r['fit_s']:.1f} s)" if r.get("fit_s") else ""
        print(f"| {r['what']}{extra} | {r['workers']} | {r['rows']:,} | {r['wall_s']:.1f} | {r['rows_s']:.1f} | {per} |")
    if ari:
        print("\n| rows | sample | ARI sample fit + assign vs full fit | ARI vs truth | sample path s | full fit s |")
        print("|---:|---:|---:|---:|---:|---:|")
        print(f"| {ari['rows']:,} | {ari['sample']:,} | {ari['ari_vs_full']:.3f} | {ari['ari_vs_truth']:.3f} | "
              f"{ari['sample_path_s']:.0f} | {ari['full_fit_s']:.0f} |")


if __name__ == "__main__":
    main()
