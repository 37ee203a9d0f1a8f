"""Embedding Atlas's projection path on a CSV, for bench/peers.py.  Runs under the
Embedding Atlas virtualenv's Python (not Sieve's), so it imports nothing from Sieve.

    EA_PYTHON bench/peers_ea.py DATA.csv TEXT_COLUMN MODEL_PATH CACHE_ROOT

``embedding_atlas.projection.compute_projection`` with its defaults (sentence-transformers
embedder, batch 32, umap-learn 2-D on a cosine kNN graph), the same local model folder as
Sieve, and an empty cache folder so nothing is reused.  Prints one JSON line.
"""

import json
import resource
import sys
import time

T_START = time.perf_counter()


def main(argv):
    data, column, model, cache_root = argv[:4]
    import pandas as pd

    t = time.perf_counter()
    from embedding_atlas.projection import compute_projection

    import_s = time.perf_counter() - t
    df = pd.read_csv(data)
    t = time.perf_counter()
    out = compute_projection(df, inputs=column, modality="text", model=model, cache_root=cache_root)
    project_s = time.perf_counter() - t
    assert len(out) == len(df) and out["projection_x"].notna().all()
    from importlib import metadata

    print(json.dumps({
        "rows": len(df), "import_s": round(import_s, 2), "compute_projection_s": round(project_s, 2),
        "in_process_s": round(time.perf_counter() - T_START, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "versions": {p: metadata.version(p) for p in ("embedding-atlas", "sentence-transformers", "umap-learn", "torch")},
    }))


if __name__ == "__main__":
    main(sys.argv[1:])
