"""Map at scale: UMAP (2-D + 5-D) exact vs parallel, HDBSCAN at 200k and 1M, numba cache.

    python -m bench.map_scale [--quick] [--umap-rows N] [--umap-1m]

Every measurement runs in a fresh process (``python -m bench.map_scale --one CASE ...``)
so its peak RSS and its numba compilation are its own; the parent prints a markdown
table.  Synthetic data: clustered 384-d unit vectors for UMAP (gaussian blobs around 50
random directions), 5-D gaussian blobs (40 clusters, 5 % uniform noise) for HDBSCAN.

* ``umap-exact`` / ``umap-parallel``: core.stages.project.project on N rows after a warm-up in
  the same process (the warm-up is not timed): the seeded single-threaded path vs the
  default parallel path (shared graph + spectral init).
* ``hdbscan-full`` / ``hdbscan-sample``: core.stages.cluster.cluster on 200k points fitted on
  every row vs on a 40k sample (the same 1:5 ratio as the 1M default) then assigned; ARI
  between the two.
* ``hdbscan-1m``: the default path at 1M (fit on 200k, assign 800k).
* ``cold-2k``: a cold process's first UMAP (2k rows, default path) with an empty numba
  disk cache, then again with the cache that run left.

``cpu_s`` is user + system CPU of the process (a fairer number than wall time on a busy
machine); ``wall_s`` is the measured call only.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vectors(n: int, dim: int = 384, k: int = 50, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, dim)).astype(np.float32)
    lab = rng.integers(0, k, n)
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 50_000):
        e = min(n, s + 50_000)
        out[s:e] = centres[lab[s:e]] + 0.35 * rng.standard_normal((e - s, dim)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out, lab


def points5(n: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    k, d = 40, 5
    centres = rng.uniform(-10, 10, (k, d))
    spread = rng.uniform(0.2, 0.6, k)
    lab = rng.choice(k, n, p=rng.dirichlet(np.full(k, 2.0)))
    x = centres[lab] + rng.standard_normal((n, d)) * spread[lab, None]
    noise = rng.random(n) < 0.05
    x[noise] = rng.uniform(-12, 12, (int(noise.sum()), d))
    lab[noise] = -1
    return x.astype(np.float32), lab


def one(case: str, n: int, out: str | None) -> dict:
    import numpy as np

    res: dict = {"case": case, "rows": n}
    if case.startswith("umap"):
        from core.stages.project import ProjectParams, project
        from core.stages.prewarm import warm_up

        v, _ = vectors(n)
        warm_up()
        exact = case == "umap-exact"
        c0, t0 = _cpu(), time.perf_counter()
        p = project(v, ProjectParams(exact=exact))
        res.update(wall_s=time.perf_counter() - t0, cpu_s=_cpu() - c0, notes="; ".join(p.notes))
    elif case.startswith("hdbscan"):
        from core.stages.cluster import ClusterParams, cluster

        x, _ = points5(n)
        if case == "hdbscan-full":
            params = ClusterParams(fit_sample=None, soft=False)
        elif case == "hdbscan-sample":
            params = ClusterParams(fit_sample=n // 5, soft=False)
        else:
            params = ClusterParams()
        c0, t0 = _cpu(), time.perf_counter()
        r = cluster(x, params)
        res.update(wall_s=time.perf_counter() - t0, cpu_s=_cpu() - c0, clusters=r.n_clusters,
                   noise=round(float((r.labels < 0).mean()), 3), notes="; ".join(r.notes)[:120])
        if out:
            np.save(out, r.labels)
    elif case == "cold-2k":
        from core.stages.project import ProjectParams, project

        v, _ = vectors(n)
        c0, t0 = _cpu(), time.perf_counter()
        project(v, ProjectParams())
        res.update(wall_s=time.perf_counter() - t0, cpu_s=_cpu() - c0)
    res["rss_mb"] = round(_rss_mb())
    return res


def _spawn(case: str, n: int, out: str | None = None, env: dict | None = None) -> dict:
    cmd = [sys.executable, "-m", "bench.map_scale", "--one", case, str(n)] + ([out] if out else [])
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})},
                       cwd=Path(__file__).resolve().parent.parent)
    if p.returncode != 0:
        res = {"case": case, "rows": n, "notes": "FAILED: " + (p.stderr.strip().splitlines() or ["?"])[-1]}
    else:
        res = json.loads(p.stdout.strip().splitlines()[-1])
    print(json.dumps(res), file=sys.stderr, flush=True)  # progress, one line per case
    return res


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--one":
        print(json.dumps(one(argv[1], int(argv[2]), argv[3] if len(argv) > 3 else None)))
        return
    quick = "--quick" in argv
    umap_rows = int(argv[argv.index("--umap-rows") + 1]) if "--umap-rows" in argv else (10_000 if quick else 100_000)
    h_small, h_big = (20_000, 100_000) if quick else (200_000, 1_000_000)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = {"SIEVE_CACHE_DIR": os.path.join(tmp, "cache"), "NUMBA_CACHE_DIR": ""}
        rows.append({**_spawn("cold-2k", 2000, env=cache), "case": "cold-2k (empty numba cache)"})
        rows.append({**_spawn("cold-2k", 2000, env=cache), "case": "cold-2k (warm numba cache)"})
        for case in ("umap-exact", "umap-parallel"):
            rows.append(_spawn(case, umap_rows))
        if "--umap-1m" in argv:
            rows.append(_spawn("umap-parallel", 1_000_000))
        full, samp = os.path.join(tmp, "full.npy"), os.path.join(tmp, "sample.npy")
        rows.append(_spawn("hdbscan-full", h_small, full))
        rows.append(_spawn("hdbscan-sample", h_small, samp))
        if os.path.exists(full) and os.path.exists(samp):
            import numpy as np
            from sklearn.metrics import adjusted_rand_score

            rows[-1]["ari_vs_full"] = round(float(adjusted_rand_score(np.load(full), np.load(samp))), 4)
        rows.append(_spawn("hdbscan-1m", h_big))
    print(f"Map at scale ({os.cpu_count()} CPUs; load average at the end "
          f"{os.getloadavg()[0]:.1f}).  cpu_s = user+system CPU of the call.\n")
    print("| case | rows | wall s | CPU s | peak RSS MB | ARI vs full | notes |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        fmt = lambda k: (f"{r[k]:.1f}" if isinstance(r.get(k), float) else str(r.get(k, "")))  # noqa: E731
        print(f"| {r['case']} | {r['rows']:,} | {fmt('wall_s')} | {fmt('cpu_s')} | {r.get('rss_mb', '')} | "
              f"{r.get('ari_vs_full', '')} | {str(r.get('notes', '')).replace('|', '/')} |")


if __name__ == "__main__":
    main(sys.argv[1:])
