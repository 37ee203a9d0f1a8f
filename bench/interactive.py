"""Interactive speed at scale: `python -m bench.interactive [--repeats 3] [--keep DIR]`.

Generates synthetic maps (unit float32 vectors, 384-d, in ~200 clusters of lognormal
sizes plus 5 % unclustered rows, 2-D coordinates near each cluster's spot, labels) of
1,000,000 and 100,000 rows into a temporary folder (the vectors as a memory-mapped
``.npy``, as the app loads them), then measures, each the median of ``--repeats`` runs
in one fresh worker process per case:

* select, 1M rows: budget allocation + ``pick='diverse'`` (equal policy, budget 10,000)
  -- ``core.selection.select``, the pure part of ``run_selection``; the worker's peak RSS;
* lasso, 1M rows: a 200-vertex polygon covering ~20 % of the points re-applied to all
  rows, plus what the Map page derives from it on the server (selected row ids, the
  selection mask again, the "clusters touched" summary, the cluster table and the
  first page of selected ids to fetch);
* budget change, 100k rows: ``core.engines.local.run_selection`` + ``selection_report``
  exactly as the Budget page calls them (``pages.common.current_selection``), with
  the page's defaults (equal policy, random pick, budget = a tenth of the rows, vector
  metrics on), alternating the budget so nothing is cached; also with ``pick='diverse'``
  and with the CLI's and app's default recipe (``DEFAULT_POLICY`` + ``DEFAULT_PICK`` + ``DEFAULT_SOFT_NOISE`` +
  ``DEFAULT_CLUSTER_CHOICE``: sqrt + facility, soft noise 0).

``--cases budget,budget_default`` runs only those cases (and generates only the maps they need).

Prints a markdown table (target, measured, pass/fail) to stdout; writes nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DIM = 384
N_CLUSTERS = 200


def generate(folder: Path, n: int, seed: int = 0) -> None:
    """labels.npy, xy.npy, vectors.npy (unit float32, written in chunks) for ``n`` rows."""
    rng = np.random.default_rng(seed)
    sizes = rng.lognormal(0.0, 0.8, N_CLUSTERS)
    probs = np.r_[0.05, sizes / sizes.sum() * 0.95]
    labels = (rng.choice(N_CLUSTERS + 1, size=n, p=probs) - 1).astype(np.int32)
    centres = rng.standard_normal((N_CLUSTERS, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    spots = rng.uniform(-20, 20, (N_CLUSTERS, 2)).astype(np.float32)
    vec = np.lib.format.open_memmap(folder / "vectors.npy", mode="w+", dtype=np.float32, shape=(n, DIM))
    xy = np.empty((n, 2), np.float32)
    step = 65536
    for s in range(0, n, step):
        lab = labels[s : s + step]
        x = rng.standard_normal((len(lab), DIM), dtype=np.float32) * np.float32(0.06)
        inside = lab >= 0
        x[inside] += centres[lab[inside]]
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        vec[s : s + len(lab)] = x
        pts = rng.standard_normal((len(lab), 2)).astype(np.float32)
        pts[inside] += spots[lab[inside]]
        pts[~inside] *= 12
        xy[s : s + len(lab)] = pts
    vec.flush()
    del vec
    np.save(folder / "labels.npy", labels)
    np.save(folder / "xy.npy", xy)


def _load(folder: Path):
    labels = np.load(folder / "labels.npy")
    return labels, np.load(folder / "xy.npy"), np.load(folder / "vectors.npy", mmap_mode="r")


def _map_data(folder: Path):
    """A core.engines.local.MapData over the generated arrays (no workspace needed for these params)."""
    from core.engines.local import MapData, MapParams
    from core.stages.naming import ClusterInfo

    labels, xy, vectors = _load(folder)
    ids, cnt = np.unique(labels, return_counts=True)
    clusters = [ClusterInfo(id=int(c), name=f"topic {c}", keywords=["a", "b"], size=int(k))
                for c, k in zip(ids, cnt)]
    return MapData(dataset=None, keys=None, row_ids=np.arange(len(labels), dtype=np.int64), xy=xy, labels=labels,
                   strength=np.ones(len(labels), np.float32), vectors=vectors, clusters=clusters, params=MapParams())


def _lasso_event(xy: np.ndarray, share: float = 0.2) -> dict:
    """A wobbly 200-vertex polygon around the centre holding about ``share`` of the points."""
    centre = np.median(xy, axis=0)
    r = np.sqrt(((xy - centre) ** 2).sum(axis=1))
    th = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    wobble = 1 + 0.08 * np.sin(7 * th)
    rad = float(np.quantile(r, share))
    x = centre[0] + rad * wobble * np.cos(th)
    y = centre[1] + rad * wobble * np.sin(th)
    return {"selection": {"lasso": [{"x": x.tolist(), "y": y.tolist()}], "box": [], "points": []}}


# -- workers (one fresh process per case) --------------------------------------------------------


def work_select(folder: Path, repeats: int) -> dict:
    from core.selection import SelectParams, select

    labels, _, vectors = _load(folder)
    row_ids = np.arange(len(labels), dtype=np.int64)
    times, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        sel = select(labels, row_ids, SelectParams(budget=10_000, policy="equal", pick="diverse"), vectors=vectors)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    assert len(sel) == 10_000
    return {"times": times, "cpu": cpu, "rows": len(sel)}


def work_lasso(folder: Path, repeats: int) -> dict:
    from core.explore import cluster_table, ids_in, selection_mask, selection_summary

    data = _map_data(folder)
    event = _lasso_event(data.xy)
    times, cpu, share = [], [], 0.0
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        mask = selection_mask(event, data.xy)  # the Map page's _on_select
        selected = np.asarray(data.row_ids[mask], dtype=np.int64)
        again = ids_in(data.row_ids, selected)  # _summary
        summary = selection_summary(data.labels, again, data.cluster_names)
        table = cluster_table(data.clusters, len(data.row_ids))  # the Clusters tab
        first_page = np.sort(selected)[:50]  # _rows_table: the ids of the page to fetch
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        share = float(mask.mean())
    assert summary["rows"] == len(selected) and len(table) == len(data.clusters) and len(first_page)
    return {"times": times, "cpu": cpu, "share": share}


def work_budget(folder: Path, repeats: int, pick: str | None, policy: str | None = "equal") -> dict:
    """``pick``/``policy`` None: the CLI's and the app's default recipe (DEFAULT_PICK, DEFAULT_POLICY,
    DEFAULT_SOFT_NOISE, DEFAULT_CLUSTER_CHOICE)."""
    from core.engines.local import run_selection, selection_report
    from core.selection import DEFAULT_CLUSTER_CHOICE, DEFAULT_PICK, DEFAULT_POLICY, DEFAULT_SOFT_NOISE, SelectParams

    recipe = {} if pick or policy else dict(soft_noise_threshold=DEFAULT_SOFT_NOISE,
                                            cluster_choice=DEFAULT_CLUSTER_CHOICE)
    pick, policy = pick or DEFAULT_PICK, policy or DEFAULT_POLICY

    data = _map_data(folder)
    n = len(data.row_ids)
    times, cpu = [], []
    for i in range(repeats):
        params = SelectParams(budget=n // 10 - 500 * (i % 2), policy=policy, pick=pick, **recipe)
        t, c = time.perf_counter(), time.process_time()
        sel = run_selection(None, data, params)  # what pages.common.current_selection does
        report = selection_report(data, sel, params, vectors=True)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        assert report.nn_distance is not None and report.facility is not None
    return {"times": times, "cpu": cpu}


WORKERS = {"select": work_select, "lasso": work_lasso, "budget": lambda f, r: work_budget(f, r, "random"),
           "budget_diverse": lambda f, r: work_budget(f, r, "diverse"),
           "budget_default": lambda f, r: work_budget(f, r, None, None)}


CASES = {"select": 1_000_000, "lasso": 1_000_000, "budget": 100_000, "budget_diverse": 100_000,
         "budget_default": 100_000}  # case -> rows of the map it runs on


def _worker(case: str, folder: str, repeats: int) -> None:
    out = WORKERS[case](Path(folder), repeats)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


def _run(case: str, folder: Path, repeats: int) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "bench.interactive", "--worker", case, "--data", str(folder),
                           "--repeats", str(repeats)], cwd=ROOT, env=env, capture_output=True, text=True)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"bench worker {case} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(line[len("RESULT "):])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", help="a folder to generate into and keep (reused if it already holds the data)")
    ap.add_argument("--cases", default=",".join(CASES),
                    help=f"comma-separated cases to run (default all: {','.join(CASES)})")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        _worker(a.worker, a.data, a.repeats)
        return
    base = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="sieve-interactive-"))
    try:
        asked = set(a.cases.split(","))
        if asked - set(CASES):
            ap.error(f"--cases: unknown case(s) {sorted(asked - set(CASES))}; choose from {list(CASES)}")
        cases = [c for c in CASES if c in asked]
        folders = {}
        gen_s = {}
        for n in sorted({CASES[c] for c in cases}, reverse=True):
            f = base / f"n{n}"
            f.mkdir(parents=True, exist_ok=True)
            if not (f / "xy.npy").is_file():
                t = time.perf_counter()
                generate(f, n)
                gen_s[n] = time.perf_counter() - t
            folders[n] = f
        res = {c: _run(c, folders[CASES[c]], a.repeats) for c in cases}
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    med = {k: statistics.median(v["times"]) for k, v in res.items()}
    cpu = {k: statistics.median(v["cpu"]) for k, v in res.items()}
    share = res["lasso"]["share"] if "lasso" in res else 0.0
    rows = [
        ("select", "Allocation + `diverse` pick, 1M rows x 384-d, budget 10,000 (200 clusters)", "≤ 5 s", 5.0),
        ("lasso", f"Lasso re-applied to 1M rows ({share:.0%} inside) + the Map page's tables",
         "≤ 1 s", 1.0),
        ("budget", "Budget change at 100k rows: run_selection + selection_report (page defaults: random pick, "
         "budget 10,000 / 9,500, vector metrics on)", "≤ 1 s", 1.0),
        ("budget_diverse", "Budget change at 100k rows with `pick='diverse'` (extra; same calls)", "≤ 1 s", 1.0),
        ("budget_default", "Budget change at 100k rows with the CLI's and app's defaults (`sqrt` policy, "
         "`facility` pick, soft noise 0; same calls)", "≤ 1 s", 1.0),
    ]
    rows = [r for r in rows if r[0] in res]
    cores = os.cpu_count()
    try:
        load = ", load average %.1f at the end" % os.getloadavg()[0]
    except OSError:
        load = ""
    print(f"### Interactive speed at scale ({cores} cores{load}; median of {a.repeats}; one fresh process per case; "
          "vectors memory-mapped from a warm page cache)")
    print()
    print("| case | target | measured (wall) | CPU time | result |")
    print("|---|---|---|---|---|")
    for key, name, target, limit in rows:
        print(f"| {name} | {target} | {med[key]:.2f} s | {cpu[key]:.2f} s | "
              f"{'pass' if med[key] <= limit else 'FAIL'} |")
    if "select" in res:
        rss = res["select"]["peak_rss_mb"]
        print(f"| Peak RSS of the 1M selection process (incl. the memory-mapped vector pages it touched) | ≤ 4 GB | "
              f"{rss / 1024:.2f} GB | | {'pass' if rss <= 4096 else 'FAIL'} |")
    print()
    runs = "; ".join(f"{k}: " + ", ".join(f"{t:.2f}" for t in v["times"]) for k, v in res.items())
    print(f"Individual runs (s): {runs}.")
    if gen_s:
        made = ", ".join(f"{n:,} rows {s:.0f} s" for n, s in gen_s.items())
        print(f"Data generation (not timed above): {made}.")


if __name__ == "__main__":
    main()
