"""Agreement of other embeddings with a reference one, in this (fresh) process.

    python -m bench.agree [--rows N] REF.npy NAME=OTHER.npy [NAME=OTHER.npy ...]

For each OTHER: the row-wise cosine to REF (median, 1st percentile, min) and the ARI
between the clusters Sieve's map gives on REF and on OTHER (same project and cluster
parameters, the exact seeded projection, so only the vectors differ), on the first
``--rows`` rows of each file.  Prints JSON.
"""

from __future__ import annotations

import json
import sys
from dataclasses import fields


def _map_labels(vectors):
    from core.stages.cluster import ClusterParams, cluster
    from core.stages.project import ProjectParams, project

    kw = {"exact": True} if "exact" in {f.name for f in fields(ProjectParams)} else {}
    proj = project(vectors, ProjectParams(**kw))
    return cluster(proj.xnd, ClusterParams()).labels


def main(argv: list[str]) -> None:
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    rows = None
    if argv and argv[0] == "--rows":
        rows, argv = int(argv[1]), argv[2:]
    ref = np.load(argv[0])[:rows]
    ref = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-12)
    ref_labels = _map_labels(ref)
    out = {"n": len(ref), "ref_clusters": int(len(set(ref_labels.tolist()) - {-1}))}
    for item in argv[1:]:
        name, path = item.split("=", 1)
        other = np.load(path)[:rows]
        other = other / np.maximum(np.linalg.norm(other, axis=1, keepdims=True), 1e-12)
        entry = {}
        if other.shape == ref.shape:  # a different dimension (e.g. a PCA'd static model) has no row cosine
            cos = (ref * other).sum(axis=1)
            entry.update(cos_median=round(float(np.median(cos)), 4), cos_p01=round(float(np.quantile(cos, 0.01)), 4),
                         cos_min=round(float(cos.min()), 4))
        labels = _map_labels(other)
        entry.update(ari=round(float(adjusted_rand_score(ref_labels, labels)), 3),
                     clusters=int(len(set(labels.tolist()) - {-1})))
        out[name] = entry
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
