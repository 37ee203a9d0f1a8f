"""Throughput of the Ray engine (core/engines/ray/); prints a markdown table to stdout.

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

``--backends torch,onnx-int8`` embeds once per backend (onnx-int8 is what ``auto`` picks on
CPU-only clusters).  ``--write`` prepends the table, the machine and the load averages to
bench/RESULTS.md; without it nothing is written.
"""

from __future__ import annotations

import argparse
import os
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
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec
    from core.store.workspace import Workspace

    path = root / f"{name}.parquet"
    pq.write_table(table, path)
    ws = Workspace(root / name)
    ingest(ws, IngestParams(str(path), TextSpec(column="text"), vectors))
    return ws


def bench_embed(root: Path, rows: int, workers: list[int], shard_rows: int, device: str,
                backends: tuple[str, ...] = ("torch",)) -> list[dict]:
    import pyarrow.csv as pcsv

    from core.engines import ray as scale
    from core.stages.embed import embed_texts
    from core.encoders.registry import load_encoder

    table = pcsv.read_csv(ROOT / "sample_data" / "prompts.csv").slice(0, rows)
    texts = [t for t in table.column("text").to_pylist() if t and t.strip()]
    out = []
    for backend in backends:
        if device != "cuda":
            import torch

            torch.set_num_threads(1)
            os.environ["OMP_NUM_THREADS"] = "1"  # onnx-int8: one intra-op thread too (core.runtime.hardware.usable_cores)
            enc = load_encoder("all-MiniLM-L6-v2", "cpu", backend=backend)
            os.environ.pop("OMP_NUM_THREADS")
            embed_texts(texts[:64], enc, 64)  # warm (the onnx-int8 export is cached on disk)
            t0 = time.perf_counter()
            for i in range(0, len(texts), shard_rows):  # the same shards as the Ray runs
                embed_texts(texts[i:i + shard_rows], enc, 64)
            dt = time.perf_counter() - t0
            out.append({"what": f"embed {backend}, local process, 1 thread, same shards", "workers": 1, "rows": len(texts),
                        "wall_s": dt, "rows_s": len(texts) / dt, "per_worker": len(texts) / dt})
        for w in workers:
            ws = _workspace(root, f"embed-{backend}-{w}", table)
            res = scale.embed_shards(ws, scale.ScaleEmbedParams(shard_rows=shard_rows, workers=w, device=device,
                                                                backend=backend))
            out.append({"what": f"embed {backend} on Ray ({device} actors)", "workers": res.workers,
                        "rows": res.n_rows, "wall_s": res.seconds, "rows_s": res.n_rows / res.seconds,
                        "per_worker": res.n_rows / res.shard_seconds if res.shard_seconds else float("nan")})
    return out


def bench_assign(root: Path, n: int, workers: list[int], sample: int) -> list[dict]:
    from core.engines import ray as scale

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

    from core.engines import ray as scale
    from core.stages.cluster import ClusterParams
    from core.stages.project import ProjectParams

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
    ap.add_argument("--backends", default="torch", help="comma-separated embedding backends (torch, onnx-int8)")
    ap.add_argument("--write", action="store_true", help="prepend the tables to bench/RESULTS.md")
    ap.add_argument("--note", default="", help="a sentence added to the RESULTS.md section")
    args = ap.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",") if w.strip()]

    from core.engines import ray as scale

    scale.connect(args.address, num_cpus=None if args.address else max(workers),
                  object_store_memory=None if args.address else args.object_store_mb * 2**20,
                  env={"PYTHONPATH": str(ROOT)})
    import ray

    load_start = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="sieve-ray-bench-"))
    try:
        rows = []
        if args.rows:
            rows += bench_embed(root, args.rows, workers, args.shard_rows, args.device,
                                tuple(b.strip() for b in args.backends.split(",") if b.strip()))
        if args.assign_rows:
            rows += bench_assign(root, args.assign_rows, workers, args.assign_sample)
        ari = bench_ari(root, args.ari_rows, args.sample_size, max(workers)) if args.ari_rows else None
    finally:
        ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)

    text = report(rows, ari, ray.__version__, load_start, os.getloadavg()[0], args, argv)
    print(text)
    if args.write:
        from bench.common import RESULTS, prepend

        prepend(RESULTS, text)


def report(rows: list[dict], ari: dict | None, ray_version: str, load_start: float, load_end: float, args,
           argv) -> str:
    from bench.common import machine, versions

    cmd = "python -m bench.ray_throughput " + " ".join(argv if argv is not None else sys.argv[1:])
    out = [f"### Ray engine throughput, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n",
           f"Machine: {machine()}.  ray {ray_version}; {versions()}.  Load average {load_start:.1f} at start, "
           f"{load_end:.1f} at end.  Command: `{cmd.strip()}`.  A local Ray instance with "
           f"{max(int(w) for w in args.workers.split(','))} CPU(s); each CPU actor has 1 thread.\n"]
    if args.note:
        out.append(args.note + "\n")
    if rows:
        out.append("| what | workers | rows | wall s | rows/s (end to end) | rows/s per worker (steady) |")
        out.append("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        per = "" if r["per_worker"] != r["per_worker"] else f"{r['per_worker']:.1f}"
        extra = f" (fit {r['fit_s']:.1f} s)" if r.get("fit_s") else ""
        out.append(f"| {r['what']}{extra} | {r['workers']} | {r['rows']:,} | {r['wall_s']:.1f} | {r['rows_s']:.1f} "
                   f"| {per} |")
    if rows:
        out.append("\n\"End to end\" includes starting the actors, loading the model and numba's first compilation "
                   "in each worker; \"steady\" is the time inside the workers only (read, embed, write).")
    if ari:
        out.append("\n| rows | sample | ARI sample fit + assign vs full fit | ARI vs truth | sample path s | full fit s |")
        out.append("|---:|---:|---:|---:|---:|---:|")
        out.append(f"| {ari['rows']:,} | {ari['sample']:,} | {ari['ari_vs_full']:.3f} | {ari['ari_vs_truth']:.3f} | "
                   f"{ari['sample_path_s']:.0f} | {ari['full_fit_s']:.0f} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
