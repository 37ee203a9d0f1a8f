"""Run ONE pipeline stage in this (fresh) process and print its measurements as JSON.

bench/__main__.py calls this once per stage, so each stage's peak RSS is its own.
``wall_s`` is the whole process (imports, numba compilation, cached inputs loaded),
which is what a user of `sieve` pays; ``stage_s`` is the stage's own function call.
Earlier stages must already be cached in the workspace.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def main(argv: list[str]) -> None:
    stage, ws_path, data, out_dir = argv[:4]
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    from core.pipeline import MapParams, current_map, load_map, run_selection
    from core.workspace import Workspace

    ws = Workspace(ws_path)
    p = MapParams()
    extra: dict = {}
    timer = {}

    def timed(fn):
        t = time.perf_counter()
        out = fn()
        timer["stage_s"] = round(time.perf_counter() - t, 2)
        return out

    if stage == "ingest":
        from core.ingest import IngestParams, TextSpec, ingest

        info, _ = timed(lambda: ingest(ws, IngestParams(data, TextSpec(column="text"))))
        extra = {"rows": info.n_rows}
    elif stage == "embed":
        from core.embed import run_embed

        extra = {"embedded": timed(lambda: run_embed(ws, p.embed)).n_computed}
    elif stage == "project":
        from core.embed import run_embed
        from core.project import run_project

        emb = run_embed(ws, p.embed)
        timed(lambda: run_project(ws, emb.key, p.project))
    elif stage == "cluster":
        from core.cluster import run_cluster
        from core.embed import run_embed
        from core.project import run_project

        pkey, _ = run_project(ws, run_embed(ws, p.embed).key, p.project)
        timed(lambda: run_cluster(ws, pkey, p.cluster))
    elif stage == "label":
        from core.cluster import run_cluster
        from core.embed import run_embed
        from core.label import run_label
        from core.pipeline import build_map
        from core.project import run_project

        emb_key = run_embed(ws, p.embed).key
        ckey, _ = run_cluster(ws, run_project(ws, emb_key, p.project)[0], p.cluster)
        timed(lambda: run_label(ws, ckey, emb_key, p.label))
        build_map(ws, p)  # all cached: records the map for the later stages
    elif stage in ("select", "export"):
        from core.metrics import selection_metrics
        from core.select import SelectParams

        mdata = load_map(ws)
        params = SelectParams(budget=max(1, len(mdata.row_ids) // 10), policy="equal", pick="diverse")
        if stage == "select":
            def work():
                s = run_selection(ws, mdata, params)
                selection_metrics(mdata.labels, s.positions, mdata.vectors)
                return s

            extra = {"selected": len(timed(work))}
        else:
            from core.export import build_manifest, export_rows, write_manifest

            sel = run_selection(ws, mdata, params)
            _, map_params = current_map(ws)

            def work():
                path = export_rows(ws, sel, mdata.cluster_names, f"{out_dir}/subset.parquet")
                write_manifest(str(path) + ".manifest.json", build_manifest(mdata, map_params, params, sel))

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
    }))


if __name__ == "__main__":
    main(sys.argv[1:])
