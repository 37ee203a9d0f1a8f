"""Stage benchmark: `python -m bench [--sizes sample,50000] [--repeats 1]`.

For each size it generates data (sample_data/generate.py, or the committed sample),
runs every stage in a fresh process (bench/stage.py) on a fresh workspace, and
appends a table to bench/RESULTS.md with the machine's description.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("ingest", "embed", "project", "cluster", "label", "select", "export")
RESULTS = ROOT / "bench" / "RESULTS.md"


def machine() -> str:
    cores = os.cpu_count()
    try:
        mem_kb = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1])
        mem = f"{mem_kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration):
        mem = "RAM unknown"
    cpu = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
        cpu = model
    except (OSError, StopIteration):
        pass
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return f"{cores} cores ({cpu}), {mem}, {gpu}, Python {platform.python_version()}, {platform.system()}"


def dataset(size: str, workdir: Path) -> Path:
    if size == "sample":
        return ROOT / "sample_data" / "prompts.csv"
    sys.path.insert(0, str(ROOT))
    from sample_data.generate import generate_rows
    import pyarrow.parquet as pq

    path = workdir / f"gen_{size}.parquet"
    pq.write_table(generate_rows(int(size), seed=11), path)
    return path


def run_stage(stage: str, ws: Path, data: Path, out: Path) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "bench.stage", stage, str(ws), str(data), str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"stage {stage} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_size(size: str, repeats: int, workdir: Path, log) -> tuple[int, dict[str, list[dict]]]:
    data = dataset(size, workdir)
    runs: dict[str, list[dict]] = {s: [] for s in STAGES}
    rows = 0
    for r in range(repeats):
        ws = workdir / f"ws_{size}_{r}"
        shutil.rmtree(ws, ignore_errors=True)
        for stage in STAGES:
            res = run_stage(stage, ws, data, workdir)
            rows = res.get("rows", rows)
            runs[stage].append(res)
            log(f"  {size} run {r + 1}/{repeats} {stage}: {res}")
    return rows, runs


def median(runs: list[dict], key: str) -> float:
    vals = [r[key] for r in runs if key in r]
    return statistics.median(vals) if vals else float("nan")


def render(results: dict, repeats: int, started: str, load: str) -> str:
    lines = [
        f"### Stage timings, {started}",
        "",
        f"Machine: {machine()}; load average {load} (a figure above ~0.3 means other work shared the cores).  "
        f"Medians of {repeats} run(s); each stage in a fresh process on a fresh workspace "
        "(earlier stages cached).  `stage s` is the stage's own call; `process s` adds imports, numba "
        "compilation and loading cached inputs; peak RSS is the process's.  Model: all-MiniLM-L6-v2, fp32, CPU.",
        "",
        "| rows | stage | stage s | process s | CPU s | peak RSS MB |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for size, (rows, runs) in results.items():
        for stage in STAGES:
            rs = runs[stage]
            lines.append(
                f"| {rows:,} ({size}) | {stage} | {median(rs, 'stage_s'):.2f} | {median(rs, 'wall_s'):.2f} | "
                f"{median(rs, 'cpu_s'):.2f} | {median(rs, 'peak_rss_mb'):.0f} |"
            )
    return "\n".join(lines) + "\n"


def prepend(path: Path, section: str) -> None:
    """Insert a '### ' section at the top of RESULTS.md, keeping earlier runs below it."""
    old = path.read_text() if path.exists() else "# Benchmark results\n\nNewest first; earlier runs are kept for comparison.\n"
    head, _, rest = old.partition("\n### ")
    path.write_text(head.rstrip() + "\n\n" + section.rstrip() + "\n" + ("\n### " + rest if rest else ""))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--sizes", default="sample,50000", help="comma-separated: 'sample' or row counts")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--no-write", action="store_true", help="print the table, don't touch RESULTS.md")
    args = ap.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sieve-bench-") as tmp:
        for size in args.sizes.split(","):
            results[size] = bench_size(size.strip(), args.repeats, Path(tmp), lambda m: print(m, flush=True))
    load = f"{load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    table = render(results, args.repeats, started, load)
    print(table)
    if not args.no_write:
        prepend(RESULTS, table)


if __name__ == "__main__":
    main()
