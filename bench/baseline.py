"""The plain baseline map, in this (fresh) process, on the vectors of a Sieve workspace.

    python -m bench.baseline WORKSPACE [--min-samples K]

What someone without Sieve would write: ``umap.UMAP().fit_transform(vectors)`` with every
default (2-D, for display), ``umap.UMAP(n_components=5).fit_transform(vectors)`` (the
clustering input; Sieve computes both too), then ``hdbscan.HDBSCAN().fit(xnd)`` with every
default (``--min-samples`` only if the defaults blow up memory; the report says so).
The vectors are the workspace's current map's (the same ones Sieve mapped).  Prints JSON.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import warnings


def main(argv: list[str]) -> None:
    import numpy as np

    from core.engines.local import load_map
    from core.store.workspace import Workspace

    ws_path = argv[0]
    min_samples = int(argv[argv.index("--min-samples") + 1]) if "--min-samples" in argv else None
    t_cpu = time.process_time()
    vectors = np.asarray(load_map(Workspace(ws_path)).vectors, dtype=np.float32)
    t = time.perf_counter()
    import hdbscan
    import umap

    import_s = time.perf_counter() - t
    out = {"n": len(vectors), "import_s": round(import_s, 2)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        umap.UMAP().fit_transform(vectors)
        out["umap2_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        xnd = umap.UMAP(n_components=5).fit_transform(vectors)
        out["umap5_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        kw = {"min_samples": min_samples} if min_samples else {}
        labels = hdbscan.HDBSCAN(**kw).fit(xnd).labels_
        out["hdbscan_s"] = round(time.perf_counter() - t, 2)
    out["map_s"] = round(out["umap2_s"] + out["umap5_s"] + out["hdbscan_s"], 2)
    out["clusters"] = int(len(set(labels.tolist()) - {-1}))
    out["noise_share"] = round(float((labels == -1).mean()), 3)
    out["min_samples"] = min_samples
    out["cpu_s"] = round(time.process_time() - t_cpu, 2)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
