"""The first map on the bundled sample, cold and warm: seconds from a fresh process to
a finished map, the way the app's first *Compute map* runs it (through core, not the UI).

    python -m bench.first_map [--repeats 1] [--no-write]

Each run is a fresh process on a fresh workspace:

* **cold**: a fresh ``SIEVE_CACHE_DIR`` (no exported ONNX model, no numba machine code),
  what a new user pays once;
* **warm**: the same ``SIEVE_CACHE_DIR`` again (the model is prepared, numba loads its
  compiled code from disk), what every later first map of a new process pays.

Like the app, the process starts the background warm-up first (core.runtime.warmup), then
ingests the sample, loads the encoder (``backend="auto"``; on a CPU the int8 ONNX model,
exported once into the cache dir) and builds the map.  ``--no-warmup`` leaves the
warm-up out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS, fmt, load, machine, median, prepend, py, versions

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "prompts.csv"
PHASES = ("ingest", "model", "embed", "project", "cluster", "label")


def child(ws_path: str, warmup: bool, idle: float) -> None:
    """One first map in this process; prints its phase timings as one JSON line.
    ``idle``: seconds between loading the data and pressing Compute (a user reading the
    Data page while the warm-up runs)."""
    t0 = time.perf_counter()
    from core.stages.embed import EmbedParams
    from core.encoders.registry import load_encoder
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec
    from core.engines.local import MapParams, build_map
    from core.runtime.warmup import wait_for_model
    from core.stages.prewarm import start_background_warmup
    from core.store.workspace import Workspace

    if warmup:
        start_background_warmup()
    out = {"import": time.perf_counter() - t0}
    ws = Workspace(ws_path)
    t = time.perf_counter()
    info, _ = ingest(ws, IngestParams(str(SAMPLE), TextSpec(column="text")))
    out["ingest"] = time.perf_counter() - t
    out["rows"] = info.n_rows
    time.sleep(idle)
    t_click = time.perf_counter()
    params = MapParams(EmbedParams().resolved())
    wait_for_model()  # as the app does: never export the model twice at once
    encoder = load_encoder(params=params.embed)
    out["model"] = time.perf_counter() - t_click
    keys = build_map(ws, params, encoder=encoder)
    out.update(keys.timings)
    out["compute"] = time.perf_counter() - t_click
    out["backend"] = params.embed.backend
    print(json.dumps(out))


def run(kind: str, cache_dir: str, warmup: bool, idle: float = 0.0) -> dict:
    env = {"SIEVE_CACHE_DIR": cache_dir, "NUMBA_CACHE_DIR": os.path.join(cache_dir, "numba")}
    with tempfile.TemporaryDirectory() as ws:
        args = ["--child", ws, "--idle", idle] + ([] if warmup else ["--no-warmup"])
        proc = py("bench.first_map", *args, timeout=1200, env=env)
    if not proc.ok:
        raise SystemExit(f"{kind} run failed: {proc.error()}")
    res = dict(proc.result, kind=kind, wall=proc.wall_s, cpu=proc.cpu_s)
    print(json.dumps(res), file=sys.stderr)
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--no-warmup", action="store_true")
    ap.add_argument("--idle", type=float, default=45.0,
                    help="seconds a user spends on the Data page before Compute, in the extra cold run (0: skip it)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, warmup=not args.no_warmup, idle=args.idle)
        return
    load0 = load()
    runs = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            runs.append(run("cold", cache, not args.no_warmup))
            runs.append(run("warm", cache, not args.no_warmup))
        if args.idle > 0 and not args.no_warmup:
            with tempfile.TemporaryDirectory() as cache:
                runs.append(run(f"cold, Compute after {args.idle:.0f} s on the Data page", cache, True, args.idle))
    section = report(runs, load0, load(), args)
    print(section)
    if not args.no_write:
        prepend(RESULTS, section)


def report(runs: list[dict], load0: float, load1: float, args) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"### First map on the sample, cold and warm, {stamp}", "",
             f"Machine: {machine()}; load average {load0:.1f} at start, {load1:.1f} at end (a figure above ~0.3 "
             f"means other work shared the cores).  `python -m bench.first_map`: {args.repeats} repeat(s); each "
             f"run a fresh process on a fresh workspace, the sample ({runs[0].get('rows', 0):,} rows), default map "
             f"settings (backend {runs[0].get('backend')}), the background warm-up "
             f"{'off' if args.no_warmup else 'started first, as the app does'}.  cold: a fresh SIEVE_CACHE_DIR "
             "(ONNX model exported, numba compiles); warm: the same cache dir again.  `model` includes waiting for "
             "the warm-up's model preparation; `compute` is from pressing Compute to the finished map; "
             "`process` adds start-up, ingest and any idle time.  Seconds.", "",
             "| run | " + " | ".join(PHASES) + " | compute | process | CPU s |",
             "|---|" + "---:|" * (len(PHASES) + 3)]
    for kind in dict.fromkeys(r["kind"] for r in runs):
        rs = [r for r in runs if r["kind"] == kind]
        cells = [fmt(median(r.get(p) for r in rs), 1) for p in PHASES]
        lines.append(f"| {kind} | " + " | ".join(cells) + f" | {fmt(median(r['compute'] for r in rs), 1)} | "
                     f"{fmt(median(r['wall'] for r in rs), 1)} | {fmt(median(r['cpu'] for r in rs), 1)} |")
    lines += ["", f"Versions: {versions()}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
