"""Run ONE pipeline stage in this (fresh) process and print its measurements as JSON.

    python -m bench.stage STAGE WORKSPACE DATA OUT_DIR [--backend B] [--exact]

bench/__main__.py calls this once per stage, so each stage's peak RSS is its own.
``wall_s`` is the whole process (imports, numba compilation, cached inputs loaded),
which is what a user of `sieve` pays; ``stage_s`` is the stage's own function call.
Earlier stages must already be cached in the workspace (same ``--backend``).
``--backend`` picks the embedding backend and ``--exact`` the seeded single-threaded
projection, when core has those fields (else the run says so in ``note``).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import fields


def map_params(backend: str | None, exact: bool):
    """MapParams for the run, plus notes on fields the core does not have (yet)."""
    from core.stages.embed import EmbedParams
    from core.engines.local import MapParams
    from core.stages.project import ProjectParams

    notes = []
    ekw, pkw = {}, {}
    if backend:
        if "backend" in {f.name for f in fields(EmbedParams)}:
            ekw["backend"] = backend
        else:
            notes.append("EmbedParams has no backend field: torch fp32 used")
    if "exact" in {f.name for f in fields(ProjectParams)}:
        pkw["exact"] = exact
    elif not exact:
        notes.append("ProjectParams has no exact field: seeded exact UMAP used")
    return MapParams(embed=EmbedParams(**ekw), project=ProjectParams(**pkw)), notes


def main(argv: list[str]) -> None:
    stage, ws_path, data, out_dir = argv[:4]
    backend = argv[argv.index("--backend") + 1] if "--backend" in argv else None
    exact = "--exact" in argv
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    from core.engines.local import current_map, load_map, run_selection
    from core.store.workspace import Workspace

    ws = Workspace(ws_path)
    p, notes = map_params(backend, exact)
    extra: dict = {}
    timer = {}

    def timed(fn):
        t = time.perf_counter()
        out = fn()
        timer["stage_s"] = round(time.perf_counter() - t, 2)
        return out

    if stage == "ingest":
        from core.stages.ingest import IngestParams, ingest
        from core.stages.dataset import TextSpec

        info, _ = timed(lambda: ingest(ws, IngestParams(data, TextSpec(column="text"))))
        extra = {"rows": info.n_rows}
    elif stage == "embed":
        from core.stages.embed import run_embed

        res = timed(lambda: run_embed(ws, p.embed))
        extra = {"embedded": res.n_computed, "model_id": res.model_id}
    elif stage == "project":
        from core.stages.embed import run_embed
        from core.stages.project import run_project

        emb = run_embed(ws, p.embed)
        timed(lambda: run_project(ws, emb.key, p.project))
    elif stage == "cluster":
        from core.stages.cluster import run_cluster
        from core.stages.embed import run_embed
        from core.stages.project import run_project

        pkey, _ = run_project(ws, run_embed(ws, p.embed).key, p.project)
        timed(lambda: run_cluster(ws, pkey, p.cluster))
    elif stage == "label":
        from core.stages.cluster import run_cluster
        from core.stages.embed import run_embed
        from core.stages.naming import run_label
        from core.engines.local import build_map
        from core.stages.project import run_project

        emb_key = run_embed(ws, p.embed).key
        ckey, _ = run_cluster(ws, run_project(ws, emb_key, p.project)[0], p.cluster)
        timed(lambda: run_label(ws, ckey, emb_key, p.label))
        build_map(ws, p)  # all cached: records the map for the later stages
        mdata = load_map(ws)
        extra = {"clusters": len(mdata.clusters), "noise_share": round(float((mdata.labels == -1).mean()), 3)}
    elif stage in ("select", "export"):
        from core.stages.metrics import selection_metrics
        from core.selection import SelectParams

        mdata = load_map(ws)
        params = SelectParams(budget=max(1, len(mdata.row_ids) // 10), policy="equal", pick="diverse")
        if stage == "select":
            def work():
                s = run_selection(ws, mdata, params)
                selection_metrics(mdata.labels, s.positions, mdata.vectors)
                return s

            extra = {"selected": len(timed(work))}
        else:
            from core.stages.export import export_rows
            from core.manifest import build_manifest, write_manifest

            sel = run_selection(ws, mdata, params)
            _, mparams = current_map(ws)

            def work():
                path = export_rows(ws, sel, mdata.cluster_names, f"{out_dir}/subset.parquet")
                write_manifest(str(path) + ".manifest.json", build_manifest(mdata, mparams, params, sel))

            timed(work)
            extra = {"selected": len(sel)}
    else:
        raise SystemExit(f"unknown stage {stage}")
    print(json.dumps({
        "stage": stage,
        "wall_s": round(time.perf_counter() - t_wall, 2),
        "cpu_s": round(time.process_time() - t_cpu, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        **timer,
        **extra,
        # only the notes about this stage's own parameters
        "note": "; ".join(n for n in notes if (stage == "embed" and "EmbedParams" in n)
                          or (stage == "project" and "ProjectParams" in n)),
    }))


if __name__ == "__main__":
    main(sys.argv[1:])
