"""The benchmark harness: `make bench` / `python -m bench`.

    python -m bench [--sizes 5000,50000,200000,1000000] [--repeats 3] [--sections ...] [--quick]
                    [--ea-python /work/ea-venv/bin/python] [--no-write] [--out bench/RESULTS.md]

Every measurement runs in a fresh process (wall time, CPU time and peak RSS of that
process).  Sections (``--sections``, comma-separated; default all):

* ``embed``: short (~20-word) and long (~200-word) generated texts, embedded by the
  plain baseline (``SentenceTransformer.encode``, fp32, default batch) and by Sieve's
  backends (torch fp32, onnx-int8, static preview).  Texts/s, the ratio to the baseline,
  cosine to the fp32 vectors and the ARI of the resulting clusters.  At most
  ``--embed-sample`` short and ``--long-sample`` long texts are embedded; bigger sizes
  get an extrapolated time (the generator's length distribution is the same at every size).
* ``stages``: per size, ingest / embed / project / cluster / label / select / export, each
  in a fresh process on a fresh workspace (earlier stages cached), plus the projection
  with ``exact`` (seeded, single-threaded) and the baseline map (umap-learn defaults 2-D and
  5-D, hdbscan defaults) on the same vectors, with ratios.  Above ``--full-embed-max`` rows
  the pipeline embeds with the static preview backend (stated), the real model's time at
  that size being the ``embed`` section's extrapolation.
* ``map_scale`` / ``interactive``: ``python -m bench.map_scale`` / ``bench.interactive``
  (UMAP/HDBSCAN at scale; lasso, budget change, allocation at 1M), when those files exist.
* ``first_paint``: ``python -m bench.first_paint`` (the app in Chromium).
* ``peers``: ``python -m bench.peers`` (`sieve run` vs Embedding Atlas on 5k rows).

The run is prepended to bench/RESULTS.md (earlier runs kept) with the machine, library
versions, load averages, and a targets table (issue 6) with pass/miss per target.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS, ROOT, fmt, load, machine, median, prepend, py, versions

STAGES = ("ingest", "embed", "project", "cluster", "label", "select", "export")
SECTIONS = ("embed", "stages", "map_scale", "interactive", "first_paint", "peers")
METHODS = ("baseline", "torch", "onnx-int8", "static")
DEFAULT_SIZES = "5000,50000,200000,1000000"
__all__ = ["machine", "prepend", "RESULTS", "main"]  # bench.first_paint imports machine/prepend from here


# -- data ---------------------------------------------------------------------------------------------------


def gen_table(n: int, long_words: int | None = None):
    sys.path.insert(0, str(ROOT))
    from sample_data.generate import generate_rows

    return generate_rows(n, seed=11, long_words=long_words)


def texts_file(n: int, long_words: int | None, path: Path) -> tuple[Path, int]:
    """The non-empty texts of ``n`` generated rows, as a JSON list (what gets embedded)."""
    texts = [t for t in gen_table(n, long_words).column("text").to_pylist() if t and t.strip()]
    path.write_text(json.dumps(texts))
    return path, len(texts)


# -- embed section ------------------------------------------------------------------------------------------


def section_embed(args, tmp: Path, log) -> dict:
    biggest = max(args.size_list)
    kinds = {"short": (None, [min(biggest, args.embed_sample)]), "long": (200, [min(biggest, args.long_sample)])}
    out = {"runs": [], "agree": {}, "notes": [], "prepare": {}}
    for method in args.methods:  # one-time model preparation, timed apart from the measured runs
        if method in ("onnx-int8", "static"):
            p = py("bench.embed_speed", "--prepare", method, timeout=args.timeout)
            out["prepare"][method] = p.result.get("seconds") if p.ok else p.error()
            log(f"  prepare {method}: {out['prepare'][method]}")
    for kind, (long_words, samples) in kinds.items():
        for m in samples:
            path, n = texts_file(m, long_words, tmp / f"texts_{kind}_{m}.json")
            reps = args.embed_repeats
            vec_paths = {}
            for method in args.methods:
                runs = []
                for r in range(reps):
                    vec = tmp / f"vec_{kind}_{m}_{method}.npy"
                    p = py("bench.embed_speed", method, path, vec, timeout=args.timeout)
                    if not p.ok:
                        log(f"  embed {kind} {m} {method}: FAILED {p.error()}")
                        out["notes"].append(f"{method} on {kind} texts: {p.error()}")
                        break
                    runs.append({**p.result, "wall_s": p.wall_s, "proc_cpu_s": p.cpu_s,
                                 "proc_rss_mb": p.peak_rss_mb})
                    vec_paths[method] = vec
                    log(f"  embed {kind} n={n} {method} run {r + 1}/{reps}: {runs[-1]}")
                if runs:
                    out["runs"].append({"kind": kind, "sample": m, "n": n, "method": method, "runs": runs})
            # Agreement with the fp32 baseline at the smallest sample of each kind.
            if m == samples[0] and "baseline" in vec_paths and len(vec_paths) > 1 and "agree" in args.embed_checks:
                others = [f"{k}={v}" for k, v in vec_paths.items() if k != "baseline"]
                p = py("bench.agree", "--rows", args.agree_rows, vec_paths["baseline"], *others, timeout=args.timeout)
                if p.ok:
                    out["agree"][kind] = p.result
                    log(f"  agreement {kind}: {p.result}")
                else:
                    out["notes"].append(f"agreement on {kind} texts failed: {p.error()}")
    return out


def render_embed(res: dict, sizes: list[int]) -> str:
    lines = ["| texts | embedded | method (resolved) | model load s | embed s | texts/s | × baseline | embed CPU s | "
             "× baseline (CPU) | cosine to fp32 (median / p1) | ARI vs fp32 clusters | process peak RSS MB |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    base, base_cpu = {}, {}
    for e in res["runs"]:
        if e["method"] == "baseline":
            base[(e["kind"], e["sample"])] = median(r["texts_per_s"] for r in e["runs"])
            base_cpu[(e["kind"], e["sample"])] = median(r.get("encode_cpu_s") for r in e["runs"])
    for e in res["runs"]:
        tps = median(r["texts_per_s"] for r in e["runs"])
        b = base.get((e["kind"], e["sample"]))
        ag = res["agree"].get(e["kind"], {})
        first = min(x["sample"] for x in res["runs"] if x["kind"] == e["kind"])
        a = ag.get(e["method"], {}) if e["sample"] == first else {}
        cos = f"{a['cos_median']:.4f} / {a['cos_p01']:.4f}" if "cos_median" in a else ("1 (reference)" if e["method"] == "baseline" and ag and e["sample"] == first else "–")
        resolved = e["runs"][0].get("resolved", e["method"])
        name = e["method"] if resolved == e["method"] else f"{e['method']} ({resolved})"
        cpu = median(r.get("encode_cpu_s") for r in e["runs"])
        bc = base_cpu.get((e["kind"], e["sample"]))
        lines.append(
            f"| {e['kind']} | {e['n']:,} | {name} | {fmt(median(r['load_s'] for r in e['runs']))} | "
            f"{fmt(median(r['encode_s'] for r in e['runs']))} | {fmt(tps, 0)} | {fmt(tps / b if b else None)} | "
            f"{fmt(cpu)} | {fmt(bc / cpu if bc and cpu else None)} | {cos} | "
            f"{fmt(a.get('ari'), 3) if a else '–'} | {fmt(median(r['proc_rss_mb'] for r in e['runs']), 0)} |")
    # Extrapolated embedding time of each size, per method (short and long).
    lines += ["", "Embedding time at each size, seconds (measured where the size is at most the sample, "
              "otherwise the size divided by the measured texts/s of the largest sample):", "",
              "| texts | method | " + " | ".join(f"{s:,} rows" for s in sizes) + " |",
              "|---|---|" + "---:|" * len(sizes)]
    for kind in ("short", "long"):
        for method in METHODS:
            es = [e for e in res["runs"] if e["kind"] == kind and e["method"] == method]
            if not es:
                continue
            cells = []
            for s in sizes:
                exact = [e for e in es if e["sample"] == s]
                if exact:
                    cells.append(fmt(median(r["encode_s"] for r in exact[0]["runs"]), 1))
                else:
                    big = max(es, key=lambda e: e["n"])
                    tps = median(r["texts_per_s"] for r in big["runs"])
                    cells.append(f"≈{s * big['n'] / big['sample'] / tps:,.0f}")
            lines.append(f"| {kind} | {method} | " + " | ".join(cells) + " |")
    if res.get("prepare"):
        lines += ["", "One-time model preparation before the runs above, in its own process (the ONNX export + "
                  "quantization / the static distillation; a few seconds when the Sieve cache dir already has it): "
                  + "; ".join(f"{k} {fmt(v) + ' s' if isinstance(v, (int, float)) else v}"
                              for k, v in res["prepare"].items()) + "."]
    if res["notes"]:
        lines += [""] + [f"- {n}" for n in res["notes"]]
    return "\n".join(lines)


# -- stages section -----------------------------------------------------------------------------------------


def run_stage(stage: str, ws: Path, data: Path, out: Path, args, backend: str, exact: bool = False) -> dict:
    extra = ["--backend", backend] + (["--exact"] if exact else [])
    p = py("bench.stage", stage, ws, data, out, *extra, timeout=args.stage_timeout)
    if not p.ok:
        return {"stage": stage, "error": p.error(), "wall_s": p.wall_s, "peak_rss_mb": p.peak_rss_mb}
    return {**p.result, "proc_wall_s": p.wall_s, "proc_cpu_s": p.cpu_s, "proc_rss_mb": p.peak_rss_mb}


def section_stages(args, tmp: Path, log) -> dict:
    import pyarrow.parquet as pq

    out = {}
    for size in args.size_list:
        t = time.perf_counter()
        data = tmp / f"gen_{size}.parquet"
        pq.write_table(gen_table(size), data)
        log(f"  generated {size:,} rows in {time.perf_counter() - t:.1f} s")
        backend = "auto" if size <= args.full_embed_max else "static"
        reps = args.repeats if size <= args.small_max else args.repeats_large
        runs: dict[str, list[dict]] = {}
        baseline = []
        for r in range(reps):
            ws = tmp / f"ws_{size}_{r}"
            shutil.rmtree(ws, ignore_errors=True)
            order = list(STAGES)
            if size <= args.exact_max:
                order.insert(2, "project_exact")  # timing only; the later stages use the default projection
            failed = False
            for stage in order:
                name, exact = ("project", True) if stage == "project_exact" else (stage, False)
                res = run_stage(name, ws, data, tmp, args, backend, exact)
                runs.setdefault(stage, []).append(res)
                log(f"  {size:,} run {r + 1}/{reps} {stage}: {res}")
                if "error" in res and stage != "project_exact":
                    failed = True
                    break
            if not failed and size <= args.baseline_max:
                p = py("bench.baseline", ws, *(["--min-samples", args.baseline_min_samples]
                                              if args.baseline_min_samples else []), timeout=args.stage_timeout)
                b = ({**p.result, "proc_wall_s": p.wall_s, "proc_cpu_s": p.cpu_s, "proc_rss_mb": p.peak_rss_mb}
                     if p.ok else {"error": p.error()})
                baseline.append(b)
                log(f"  {size:,} run {r + 1}/{reps} baseline map: {b}")
            shutil.rmtree(ws, ignore_errors=True)
        out[size] = {"backend": backend, "repeats": reps, "runs": runs, "baseline": baseline}
        data.unlink(missing_ok=True)
    return out


def _med(rs: list[dict], key: str) -> float:
    return median(r.get(key) for r in rs if "error" not in r)


def render_stages(res: dict) -> str:
    lines = ["| rows | stage | stage s | process s | process CPU s | peak RSS MB | note |",
             "|---:|---|---:|---:|---:|---:|---|"]
    for size, d in res.items():
        for stage, rs in d["runs"].items():
            err = next((r["error"] for r in rs if "error" in r), "")
            note = err or next((r["note"] for r in rs if r.get("note")), "")
            if stage == "embed":
                note = (f"backend {d['backend']}" + ("" if d["backend"] == "auto" else
                        " (preview; real-model time: see the embed section's extrapolation)")
                        + (f"; {note}" if note else ""))
            if stage == "label" and rs and "clusters" in rs[0]:
                note = f"{rs[0]['clusters']} clusters, {rs[0]['noise_share']:.0%} unclustered" + (f"; {note}" if note else "")
            label = "project (exact: seeded, single-threaded)" if stage == "project_exact" else stage
            lines.append(f"| {size:,} | {label} | {fmt(_med(rs, 'stage_s'))} | {fmt(_med(rs, 'proc_wall_s'))} | "
                         f"{fmt(_med(rs, 'proc_cpu_s'))} | {fmt(_med(rs, 'proc_rss_mb'), 0)} | {note} |")
    # Baseline map side by side.
    rows = [(s, d) for s, d in res.items() if d["baseline"]]
    if rows:
        lines += ["", "Map against the plain baseline on the same vectors (umap-learn `UMAP()` 2-D and "
                  "`UMAP(n_components=5)`, then `hdbscan.HDBSCAN()` on the 5-D output, every other parameter "
                  "default; the baseline's 5-D run is there because Sieve clusters in 5-D too), in a fresh process: "
                  "the baseline's map time includes importing umap/hdbscan and the first UMAP call's numba "
                  "compilation, as Sieve's project + cluster stage times (default parallel projection) do.  "
                  "The ratio is Sieve / baseline.", "",
                  "| rows | baseline UMAP 2-D s | UMAP 5-D s | HDBSCAN s | baseline map s (with imports) | baseline clusters (noise) | "
                  "Sieve project + cluster s | Sieve exact project s | ratio Sieve / baseline | CPU ratio (processes) | "
                  "baseline peak RSS MB |",
                  "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
        for size, d in rows:
            b = [x for x in d["baseline"] if "error" not in x]
            if not b:
                lines.append(f"| {size:,} | failed: {d['baseline'][0]['error']} |||||||||")
                continue
            sieve = _med(d["runs"]["project"], "stage_s") + _med(d["runs"]["cluster"], "stage_s")
            base = _med(b, "import_s") + _med(b, "map_s")
            ex = _med(d["runs"].get("project_exact", []), "stage_s")
            ms = f"; min_samples={b[0]['min_samples']}" if b[0].get("min_samples") else ""
            s_cpu = _med(d["runs"]["project"], "proc_cpu_s") + _med(d["runs"]["cluster"], "proc_cpu_s")
            b_cpu = _med(b, "proc_cpu_s")
            lines.append(f"| {size:,} | {fmt(_med(b, 'umap2_s'))} | {fmt(_med(b, 'umap5_s'))} | "
                         f"{fmt(_med(b, 'hdbscan_s'))} | {fmt(base)} | {b[0]['clusters']} ({b[0]['noise_share']:.0%}{ms}) | "
                         f"{fmt(sieve)} | {fmt(ex)} | {fmt(sieve / base if base else None)} | "
                         f"{fmt(s_cpu / b_cpu if b_cpu else None)} | {fmt(_med(b, 'proc_rss_mb'), 0)} |")
    return "\n".join(lines)


# -- external sections --------------------------------------------------------------------------------------


def section_module(module: str, args, log, *extra) -> dict:
    path = ROOT / "bench" / (module.split(".")[-1] + ".py")
    if not path.exists():
        return {"skipped": f"{path.relative_to(ROOT)} does not exist yet"}
    t0 = load()
    p = py(module, *extra, timeout=args.section_timeout)
    log(f"  {module}: exit {p.rc}, {p.wall_s:.0f} s, peak RSS {p.peak_rss_mb:.0f} MB")
    res = {"wall_s": p.wall_s, "peak_rss_mb": p.peak_rss_mb, "load_start": t0, "load_end": load(),
           "stdout": p.stdout.strip(), "result": p.result}
    if not p.ok:
        res["error"] = p.error()
        res["stderr"] = p.stderr[-2000:]
    return res


def render_module(res: dict) -> str:
    if "skipped" in res:
        return f"Skipped: {res['skipped']}."
    text = "\n".join(line for line in res["stdout"].splitlines() if not line.startswith("{"))
    text = re.sub(r"^#{1,3} ", "#### ", text, flags=re.M)  # keep the run's own heading levels
    head = (f"Whole section: {res['wall_s']:.0f} s wall, load average {res['load_start']:.1f} at start, "
            f"{res['load_end']:.1f} at end.")
    if "error" in res:
        head += f"  **Failed ({res['error']})**; stderr tail:\n\n```\n{res['stderr'].strip()}\n```"
    return head + "\n\n" + text


# -- targets ------------------------------------------------------------------------------------------------


def table_value(text: str, row_words: tuple[str, ...], column: str) -> float | None:
    """The number in ``column`` (a header substring) of the first markdown table row naming
    all ``row_words``; None when the table or row is not there."""
    header: list[str] | None = None
    for line in text.splitlines():
        st = line.strip()
        if not st.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in st.strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if set(st) <= set("|-: "):
            continue
        if all(w.lower() in st.lower() for w in row_words):
            for h, c in zip(header, cells):
                if column.lower() in h:
                    m = re.match(r"^[≈~]?\s*([0-9][0-9,]*\.?[0-9]*)\s*(ms)?", c)
                    if m:
                        v = float(m.group(1).replace(",", ""))
                        return v / 1000 if m.group(2) else v
    return None


def targets(results: dict) -> list[dict]:
    rows = []

    def add(target, measured, limit, better="low", where="", shown=None, ratio=None):
        if measured is None or measured != measured:
            rows.append({"target": target, "measured": "not measured", "ratio": "–", "status": "–", "where": where})
            return
        ok = measured <= limit if better == "low" else measured >= limit
        rows.append({"target": target, "measured": shown or fmt(measured), "status": "pass" if ok else "miss",
                     "ratio": ratio or fmt(measured / limit), "where": where})

    emb = results.get("embed")
    if emb and "runs" in emb:
        for kind in ("short", "long"):
            es = {e["method"]: e for e in emb["runs"] if e["kind"] == kind and e["sample"] == max(
                x["sample"] for x in emb["runs"] if x["kind"] == kind)}
            if "baseline" in es and "onnx-int8" in es:
                r = median(x["texts_per_s"] for x in es["onnx-int8"]["runs"]) / median(
                    x["texts_per_s"] for x in es["baseline"]["runs"])
                c = median(x.get("encode_cpu_s") for x in es["baseline"]["runs"]) / median(
                    x.get("encode_cpu_s") for x in es["onnx-int8"]["runs"])
                low = min(r, c) if c == c else r  # the lesser of the wall and CPU ratios: a busy machine moves both
                add(f"embedding ≥ 2.5× fp32 ({kind} texts; onnx-int8 vs baseline, lesser of wall/CPU ratio)", low,
                    2.5, "high", "embed", f"{r:.2f}× wall, {c:.2f}× CPU", f"{low / 2.5:.2f}")
            ag = emb["agree"].get(kind, {}).get("onnx-int8", {})
            if "cos_median" in ag:
                add(f"onnx-int8 cosine to fp32 ≥ 0.98 ({kind}, median)", ag["cos_median"], 0.98, "high", "embed",
                    f"{ag['cos_median']:.4f} (p1 {ag['cos_p01']:.4f})")
            if kind == "short" and "ari" in ag:
                add("onnx-int8 clusters ARI vs fp32 ≥ 0.9 (short)", ag["ari"], 0.9, "high", "embed", f"{ag['ari']:.3f}")
            if kind == "short" and "baseline" in es and "static" in es:
                r = median(x["texts_per_s"] for x in es["static"]["runs"]) / median(
                    x["texts_per_s"] for x in es["baseline"]["runs"])
                st = emb["agree"].get(kind, {}).get("static", {})
                add("static preview ≥ 20× fp32 (short)", r, 20, "high", "embed",
                    f"{r:.1f}×" + (f" (ARI vs fp32 {st['ari']:.2f})" if "ari" in st else ""), f"{r / 20:.2f}")
    ms = results.get("map_scale", {}).get("stdout", "")
    add("UMAP 2-D + 5-D of 100k rows ≤ 60 s (default parallel path)", table_value(ms, ("umap-parallel", "100,000"), "wall"),
        60, where="map_scale (parsed)")
    stages = results.get("stages", {}).get("sizes", {})
    hd = table_value(ms, ("hdbscan-1m",), "wall")
    where = "map_scale (parsed)"
    if hd is None and 1_000_000 in stages:
        hd, where = _med(stages[1_000_000]["runs"].get("cluster", []), "stage_s"), "stages, 1M cluster stage"
    add("HDBSCAN on 1M 5-D points ≤ 60 s", hd, 60, where=where)
    it = results.get("interactive", {}).get("stdout", "")
    add("allocation + diverse pick at 1M ≤ 5 s", table_value(it, ("allocation", "diverse"), "measured"), 5,
        where="interactive (parsed)")
    fp = results.get("first_paint", {}).get("result", {})
    add("app first paint ≤ 3 s", fp.get("first_paint_s"), 3, where="first_paint")
    add("lasso re-applied at 1M ≤ 1 s", table_value(it, ("lasso",), "measured"), 1, where="interactive (parsed)")
    add("budget change at 100k ≤ 1 s", table_value(it, ("budget change",), "measured"), 1,
        where="interactive (parsed)")
    if 1_000_000 in stages:
        peak = max((r.get("proc_rss_mb", 0) for rs in stages[1_000_000]["runs"].values() for r in rs), default=None)
        add("peak RSS < 8 GB at 1M rows (largest stage process)", peak / 1024 if peak else None, 8, where="stages",
            shown=f"{peak / 1024:.2f} GB" if peak else None)
    else:
        add("peak RSS < 8 GB at 1M rows (largest stage process)", None, 8, where="stages (1M not run)")
    peers = results.get("peers", {})
    if "ratio" in peers:
        add("`sieve run` ≤ 0.5× Embedding Atlas (5k rows)", peers["ratio"], 0.5, where="peers",
            shown=f"{peers['sieve_fresh_median_s']:.1f} s vs {peers['ea_median_s']:.1f} s = {peers['ratio']:.2f}×",
            ratio=f"{peers['ratio'] / 0.5:.2f}")
    else:
        add("`sieve run` ≤ 0.5× Embedding Atlas (5k rows)", None, 0.5, where="peers: " + (peers.get("skipped") or peers.get("failed") or "not run")[:200])
    return rows


def render_targets(rows: list[dict]) -> str:
    lines = ["| target (issue 6) | measured | measured / target | pass/miss | from | reason / next step |",
             "|---|---|---:|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['target']} | {r['measured']} | {r['ratio']} | {r['status']} | {r['where']} | |")
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------------------


def render_all(args, results: dict, started: str, loads: list[float], wall: float) -> str:
    parts = [
        f"### Harness run, {started}",
        "",
        f"Machine: {machine()}.  Libraries: {versions()}.  Load average {loads[0]:.1f} at start, {loads[1]:.1f} at end "
        "(a figure above ~0.3 per core means other work shared the machine).  "
        f"Command: `python -m bench {' '.join(args.argv)}`; {wall / 60:.1f} min in all.  Sizes: "
        f"{', '.join(f'{s:,}' for s in args.size_list)}; {args.repeats} repeat(s) up to {args.small_max:,} rows, "
        f"{args.repeats_large} above (figures are medians).  Model: all-MiniLM-L6-v2 on CPU.",
        "",
        "#### Targets",
        "",
        render_targets(targets(results)),
    ]
    for sec, title in (("embed", "Embedding"), ("stages", "Stages"), ("map_scale", "Map at scale (bench/map_scale.py)"),
                       ("interactive", "Interactive speed (bench/interactive.py)"), ("first_paint", "First paint"),
                       ("peers", "Peer comparison (bench/peers.py)")):
        if sec not in results:
            continue
        r = results[sec]
        parts += ["", f"#### {title}", ""]
        if "failed" in r:
            parts.append(f"**The section failed:** {r['failed']}")
        elif sec == "embed":
            parts.append(f"Short = generated prompts (~20 words), long = the same generator padded to ~200 words "
                         f"(`generate_rows(long_words=200)`); at most {args.embed_sample:,} short and "
                         f"{args.long_sample:,} long texts embedded per measurement.  Baseline = "
                         "`SentenceTransformer(path).encode(texts)` with every default (fp32, batch 32, file order); "
                         "Sieve = `run_embed` in a fresh workspace with the backend named; its model load includes the "
                         "one-time ONNX export / static distillation when the Sieve cache dir lacks them.  The CPU "
                         "columns (embedding only) move less than wall time when other work shares the machine.  "
                         "Cosine/ARI: against "
                         "the baseline's vectors, ARI of Sieve's map (exact projection) + clusters on each set of vectors, "
                         f"on the first {args.agree_rows:,} texts.  {args.embed_repeats} run(s) each.  Load average {r['load_start']:.1f} → {r['load_end']:.1f}.\n")
            parts.append(render_embed(r, args.size_list))
        elif sec == "stages":
            parts.append(f"Each stage a fresh process on a fresh workspace (earlier stages cached).  `stage s` = the "
                         "stage's own call; `process s` adds imports, numba compilation and loading cached inputs.  "
                         f"Pipeline embedding: default backend up to {args.full_embed_max:,} rows, the static preview "
                         f"above (stated per row).  Exact projection timed up to {args.exact_max:,} rows, the baseline "
                         f"map up to {args.baseline_max:,}.  Select = budget n/10, equal policy, diverse pick, plus "
                         f"the metrics.  Load average {r['load_start']:.1f} → {r['load_end']:.1f}.\n")
            parts.append(render_stages(r["sizes"]))
        elif sec == "first_paint":
            parts.append(render_module(r))
        elif sec == "peers":
            from bench.peers import render

            parts.append(render(r) if "rows" in r else f"Skipped: {r.get('skipped', r.get('error'))}")
        else:
            parts.append(render_module(r))
    return "\n".join(parts) + "\n"


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated row counts (default %(default)s)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats at sizes up to --small-max (default 3)")
    ap.add_argument("--repeats-large", type=int, default=1, help="repeats above --small-max (default 1)")
    ap.add_argument("--small-max", type=int, default=5000)
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of " + ",".join(SECTIONS))
    ap.add_argument("--quick", action="store_true",
                    help="a few minutes: 5k rows, 1 repeat, 2k short / 300 long texts, no map_scale/interactive/peers")
    ap.add_argument("--methods", default=",".join(METHODS), help="embedding methods (default %(default)s)")
    ap.add_argument("--embed-sample", type=int, default=20000, help="most short texts embedded per measurement")
    ap.add_argument("--long-sample", type=int, default=500, help="most long texts embedded per measurement")
    ap.add_argument("--embed-repeats", type=int, default=1, help="repeats of each embedding measurement")
    ap.add_argument("--embed-checks", default="agree", help="'agree' (cosine + ARI vs fp32) or 'none'")
    ap.add_argument("--agree-rows", type=int, default=5000,
                    help="cosine/ARI on the first this-many embedded texts (the map of each set of vectors)")
    ap.add_argument("--full-embed-max", type=int, default=50000,
                    help="above this many rows the stages embed with the static preview backend")
    ap.add_argument("--exact-max", type=int, default=50000, help="largest size whose exact projection is timed")
    ap.add_argument("--baseline-max", type=int, default=50000, help="largest size for the baseline map")
    ap.add_argument("--baseline-min-samples", type=int, default=None,
                    help="hdbscan min_samples for the baseline (only if its defaults blow up memory; stated)")
    ap.add_argument("--ea-python", default="/work/ea-venv/bin/python", help="Embedding Atlas venv's python (peers)")
    ap.add_argument("--peer-rows", type=int, default=5000)
    ap.add_argument("--peer-repeats", type=int, default=2)
    ap.add_argument("--first-paint-repeats", type=int, default=3)
    ap.add_argument("--stage-timeout", type=float, default=1800, help="seconds before one stage process is killed")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds before one embed process is killed")
    ap.add_argument("--section-timeout", type=float, default=1800, help="seconds for map_scale / interactive")
    ap.add_argument("--no-write", action="store_true", help="print only; don't touch RESULTS.md")
    ap.add_argument("--out", type=Path, default=RESULTS, help="the results file (default bench/RESULTS.md)")
    ap.add_argument("--json", type=Path, default=None, help="also write every raw measurement to this JSON file")
    ap.add_argument("--from-json", type=Path, default=None,
                    help="render a run saved with --json again instead of measuring (same other options)")
    args = ap.parse_args(argv)
    if args.quick:
        defaults = {"sizes": DEFAULT_SIZES, "repeats": 3, "embed_sample": 20000, "long_sample": 500,
                    "sections": ",".join(SECTIONS)}
        quick = {"sizes": "5000", "repeats": 1, "embed_sample": 2000, "long_sample": 300,
                 "sections": "embed,stages,first_paint"}
        for k, v in quick.items():
            if getattr(args, k) == defaults[k]:
                setattr(args, k, v)
    args.argv = argv
    args.size_list = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    bad = set(sections) - set(SECTIONS)
    if bad:
        ap.error(f"unknown section(s) {sorted(bad)}; choose from {', '.join(SECTIONS)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    def log(m):
        print(m, file=sys.stderr, flush=True)

    if args.from_json:  # render a saved run again (e.g. after a change to the tables)
        saved = json.loads(args.from_json.read_text())
        meta = saved.pop("_run")
        if "stages" in saved:
            saved["stages"]["sizes"] = {int(k): v for k, v in saved["stages"]["sizes"].items()}
        args.argv = meta["argv"]
        text = render_all(args, saved, meta["started"], meta["loads"], meta["wall_s"])
        print(text)
        if not args.no_write:
            prepend(args.out, text)
        return
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t0, load0 = time.perf_counter(), load()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="sieve-bench-") as tmp:
        tmp = Path(tmp)
        for sec in sections:
            log(f"== {sec} (load average {load():.1f})")
            ls = load()
            try:
                if sec == "embed":
                    results[sec] = section_embed(args, tmp, log)
                elif sec == "stages":
                    results[sec] = {"sizes": section_stages(args, tmp, log)}
                elif sec in ("map_scale", "interactive"):
                    results[sec] = section_module(f"bench.{sec}", args, log)
                elif sec == "first_paint":
                    results[sec] = section_module("bench.first_paint", args, log, "--no-write", "--json",
                                                  "--repeats", args.first_paint_repeats)
                elif sec == "peers":
                    from bench.peers import run as run_peers

                    results[sec] = run_peers(args.ea_python, args.peer_rows, args.peer_repeats, log=log,
                                             timeout=args.stage_timeout)
            except (Exception, SystemExit) as exc:  # one broken section must not lose the others' figures
                log(f"  section {sec} failed: {exc}")
                results[sec] = {"failed": f"{type(exc).__name__}: {str(exc)[-1500:]}"}
            results[sec].setdefault("load_start", ls)
            results[sec].setdefault("load_end", load())
            log(f"== {sec} done at {(time.perf_counter() - t0) / 60:.1f} min")
    loads, wall = [load0, load()], time.perf_counter() - t0
    if args.json:
        meta = {"argv": argv, "started": started, "loads": loads, "wall_s": wall}
        args.json.write_text(json.dumps({**results, "_run": meta}, default=str, indent=1))
    text = render_all(args, results, started, loads, wall)
    print(text)
    if not args.no_write:
        prepend(args.out, text)


if __name__ == "__main__":
    main()
