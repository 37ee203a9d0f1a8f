"""What ``--long-text chunk`` costs and changes on long texts, and the memory of a huge cell.

    python -m bench.long_text                # print the section
    python -m bench.long_text --write        # and prepend it to bench/RESULTS.md

Data (generated, seeded): paper-abstract-like texts of about 300 tokens of
all-MiniLM-L6-v2 (over its 256-token limit).  ``--pairs`` pairs share every sentence but
the last one, so they differ only after the limit; ``--distinct`` further abstracts are
all different.  For each backend: the time of ``truncate`` and ``chunk`` (same texts,
same process, after a warm-up), the share of pairs told apart (cosine < 0.9999), the
pairs' median cosine, and the cosine of each text's chunk vector to its truncate vector.

Memory: one cell of ``--cell-mb`` MB embedded in a fresh process per mode; the figure is
the growth of the peak RSS (ru_maxrss) over the process after loading the model.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from bench.common import RESULTS, ROOT, load, machine, prepend, run_child, versions

TOPICS = ["graph neural networks", "protein structure prediction", "contrastive pretraining", "speech recognition",
          "federated learning", "reinforcement learning from human feedback", "sparse attention", "drug discovery",
          "climate model downscaling", "retrieval-augmented generation", "causal inference", "robot manipulation"]
METHODS = ["a hierarchical encoder", "a diffusion prior", "a mixture of experts", "low-rank adapters",
           "a memory-augmented transformer", "a variational objective", "curriculum sampling", "a sparse autoencoder"]
DATA = ["three public benchmarks", "a new dataset of 40k annotated examples", "synthetic and real data",
        "multilingual corpora", "clinical records from two hospitals", "satellite imagery"]
FINDINGS = ["improves accuracy by four points", "halves the training cost", "is robust to label noise",
            "generalises to unseen domains", "reduces calibration error", "scales to billions of parameters"]
ENDINGS = ["Code and models are released under an open licence.", "A user study with 40 experts confirms the gains.",
           "We discuss failure cases on very small datasets.", "The approach fails on adversarial inputs, which we analyse.",
           "Ablations show that the attention prior matters most.", "We also release a leaderboard for the task."]


def abstract(rng: np.random.Generator, n_sentences: int = 10) -> list[str]:
    """Sentences of one seeded abstract (about 30 tokens each, ~300 tokens in all)."""
    t, m = rng.choice(TOPICS), rng.choice(METHODS)
    out = [f"We study {t} and propose {m} that addresses the main weakness of prior work on {rng.choice(TOPICS)}."]
    for _ in range(n_sentences - 2):
        out.append(f"Using {rng.choice(DATA)}, we show that {rng.choice(METHODS)} {rng.choice(FINDINGS)} "
                   f"when combined with {rng.choice(METHODS)} for {rng.choice(TOPICS)}.")
    out.append(str(rng.choice(ENDINGS)))
    return out


def make_texts(n_pairs: int, n_distinct: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """(pair a, pair b, distinct): a/b share all sentences but the last one."""
    rng = np.random.default_rng(seed)
    a, b = [], []
    for _ in range(n_pairs):
        s = abstract(rng)
        other = s[-1]
        while other == s[-1]:
            other = str(rng.choice(ENDINGS))
        a.append(" ".join(s))
        b.append(" ".join(s[:-1] + [other]))
    distinct = [" ".join(abstract(rng)) for _ in range(n_distinct)]
    return a, b, distinct


def measure_backend(backend: str, a, b, distinct, lim_model: str = "all-MiniLM-L6-v2") -> dict:
    from core.encoders import long_text as lt
    from core.stages.embed import EmbedParams, embed_prepared, encoder_limit
    from core.encoders.registry import load_encoder

    enc = load_encoder(backend=backend, device="cpu")
    limit = encoder_limit(enc, lim_model)
    texts = a + b + distinct
    embed_prepared(texts[:16], enc, EmbedParams(long_text="chunk", backend=backend), limit)  # warm up
    out = {"backend": backend}
    vecs = {}
    for mode in ("truncate", "chunk"):
        t0 = time.perf_counter()
        vecs[mode] = embed_prepared(texts, enc, EmbedParams(long_text=mode, backend=backend), limit)
        out[f"{mode}_s"] = time.perf_counter() - t0
    n = len(a)
    pair = {mode: np.sum(v[:n] * v[n : 2 * n], axis=1) for mode, v in vecs.items()}
    for mode, cos in pair.items():
        out[f"{mode}_apart"] = float(np.mean(cos < 0.9999))
        out[f"{mode}_pair_cos"] = float(np.median(cos))
        out[f"{mode}_pair_cos_min"] = float(cos.min())
        out[f"{mode}_pair_cos_max"] = float(cos.max())
    both = np.sum(vecs["truncate"] * vecs["chunk"], axis=1)
    out["chunk_vs_truncate_median"] = float(np.median(both))
    out["chunk_vs_truncate_p5"] = float(np.percentile(both, 5))
    lim = limit[0]
    tokens = lim.n_tokens(texts) if lim is not None else []
    out["median_tokens"] = float(np.median(tokens)) if tokens else None
    out["n_over"] = lt.count_long(texts, lim).n_over_limit
    if lim is not None:  # pairs whose first different token lies beyond the limit
        ta = [e.ids for e in lim.tokenizer.encode_batch(a, add_special_tokens=False)]
        tb = [e.ids for e in lim.tokenizer.encode_batch(b, add_special_tokens=False)]
        first = [next((i for i, (x, y) in enumerate(zip(p, q)) if x != y), min(len(p), len(q))) for p, q in zip(ta, tb)]
        out["pairs_after_limit"] = int(sum(f >= lim.content for f in first))
    out["windows"] = len(lt.prepare(texts, "chunk", lim, limited=limit[1]).inputs)
    out["n_texts"] = len(texts)
    return out


CELL_SCRIPT = textwrap.dedent("""
    import json, sys, time

    def hwm_mb():  # this process's own peak RSS (ru_maxrss would include the parent's at fork)
        with open("/proc/self/status") as fh:
            return next(int(x.split()[1]) for x in fh if x.startswith("VmHWM")) / 1024

    from core.stages.embed import EmbedParams, embed_prepared, encoder_limit, load_encoder
    backend, mode, mb = sys.argv[1], sys.argv[2], float(sys.argv[3])
    enc = load_encoder(backend=backend, device="cpu")
    lim = encoder_limit(enc, "all-MiniLM-L6-v2")
    embed_prepared(["warm up"], enc, EmbedParams(long_text=mode, backend=backend), lim)
    phrase = "we study graph neural networks for protein structure prediction and report results "
    try:  # reset the peak to the current RSS (Linux: "5" to clear_refs), so loading the model does not hide it
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    base = hwm_mb()  # after loading the model, before the cell
    cell = phrase * int(mb * 1e6 / len(phrase))  # built without an intermediate list
    t0 = time.perf_counter()
    embed_prepared([cell], enc, EmbedParams(long_text=mode, backend=backend), lim)
    secs = time.perf_counter() - t0
    peak = hwm_mb()
    print(json.dumps({"cell_mb": len(cell) / 1e6, "base_mb": base, "peak_mb": peak,
                      "grew_mb": peak - base, "seconds": secs}))
""")


def measure_cell(backend: str, mode: str, mb: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", CELL_SCRIPT, backend, mode, str(mb)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=900)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_map(mb: float, backend: str, mode: str, workdir) -> dict:
    """Peak RSS of `sieve ingest` and `sieve map` (fresh processes) on 11 short rows plus
    one cell of ``mb`` MB: the issue's scenario (7.4 GB before the cap)."""
    d = Path(workdir)
    data = d / "huge.csv"
    words = "we study graph neural networks for protein structure prediction and report results".split()
    phrase = " ".join(words) + " "
    cell = phrase * int(mb * 1e6 / len(phrase))
    with open(data, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text"])
        w.writerow([cell])
        for i in range(11):
            w.writerow([f"a short prompt number {i} about {words[i % len(words)]}"])
    ws = d / f"ws-{backend}-{mode}"
    ing = run_child([sys.executable, "-c", CLI_HWM, "ingest", str(data), "--text", "text", "-w", str(ws)],
                    timeout=900)
    mp = run_child([sys.executable, "-c", CLI_HWM, "map", "--backend", backend, "--long-text", mode, "-w", str(ws)],
                   timeout=900)
    err = next((p.error() for p in (ing, mp) if not p.ok), None)
    return {"cell_mb": len(cell) / 1e6, "ingest_rss": ing.result.get("hwm_mb", float("nan")), "ingest_s": ing.wall_s,
            "map_rss": mp.result.get("hwm_mb", float("nan")), "map_s": mp.wall_s, "error": err}


# `sieve ...` that prints its own peak RSS (VmHWM) as a JSON line when it exits
CLI_HWM = textwrap.dedent("""
    import atexit, json, sys

    def report():
        with open("/proc/self/status") as fh:
            hwm = next(int(x.split()[1]) for x in fh if x.startswith("VmHWM")) / 1024
        sys.stdout.write(json.dumps({"hwm_mb": hwm}) + "\\n")
        sys.stdout.flush()

    atexit.register(report)
    sys.argv = ["sieve", *sys.argv[1:]]
    from core.cli import main
    main()
""")


def section(results: list[dict], cells: list[tuple[str, str, dict]], args, load0: float, load1: float,
            maps: list[tuple[str, str, dict]] = ()) -> str:
    from core.encoders.long_text import max_text_chars

    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"### Long texts: truncate vs chunk, and a {args.cell_mb:g} MB cell, {when}", "",
             f"Machine: {machine()}.  Libraries: {versions()}.  Load average {load0:.1f} at start, {load1:.1f} at end "
             "(the machine was shared with other work).  Command: `python -m bench.long_text"
             + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "") + "`.", "",
             f"Data: {args.pairs} pairs of generated paper abstracts (seed {args.seed}) that share every sentence but "
             f"the last ({results[0].get('pairs_after_limit', '?') if results else '?'} of them differ only after the "
             f"256-token limit, checked with the tokenizer), plus {args.distinct} distinct abstracts; "
             "all-MiniLM-L6-v2 on the CPU.  *Told apart*: share of pairs whose cosine is below 0.9999.  "
             "onnx-int8 quantizes activations per batch, so the same 256 tokens in two batches give slightly "
             "different vectors: its truncate pairs are 'told apart' by that noise, not by their tails.  "
             "*chunk vs truncate*: cosine of a text's chunk vector to its truncate vector (median, 5th percentile).", "",
             "| backend | texts | median tokens | over 256 | windows (chunk) | truncate s | chunk s | chunk / truncate "
             "| told apart: truncate / chunk | pair cosine, truncate: median / min "
             "| pair cosine, chunk: median / max "
             "| chunk vs truncate (median / p5) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in results:
        lines.append(
            f"| {r['backend']} | {r['n_texts']} | {r['median_tokens']:.0f} | {r['n_over']} | {r['windows']} "
            f"| {r['truncate_s']:.2f} | {r['chunk_s']:.2f} | {r['chunk_s'] / r['truncate_s']:.2f} "
            f"| {r['truncate_apart']:.0%} / {r['chunk_apart']:.0%} "
            f"| {r['truncate_pair_cos']:.5f} / {r['truncate_pair_cos_min']:.5f} "
            f"| {r['chunk_pair_cos']:.4f} / {r['chunk_pair_cos_max']:.4f} "
            f"| {r['chunk_vs_truncate_median']:.4f} / {r['chunk_vs_truncate_p5']:.4f} |")
    lines += ["", f"Peak memory of embedding one {args.cell_mb:g} MB cell (a fresh process per line; the cell cap is "
              f"{max_text_chars():,} characters, `SIEVE_MAX_TEXT_CHARS`):", "",
              "| backend | mode | cell MB | RSS after loading the model, MB | peak RSS, MB | growth (the cell itself "
              "included), MB | seconds |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for backend, mode, c in cells:
        if "error" in c:
            lines.append(f"| {backend} | {mode} | – | – | – | – | error: {c['error']} |")
        else:
            lines.append(f"| {backend} | {mode} | {c['cell_mb']:.1f} | {c['base_mb']:.0f} | {c['peak_mb']:.0f} "
                         f"| {c['grew_mb']:.0f} | {c['seconds']:.2f} |")
    if maps:
        lines += ["", "The whole command on 11 short rows plus that cell (fresh processes; peak RSS of each):", "",
                  "| backend | long text | cell MB | `sieve ingest` peak RSS, MB | s | `sieve map` peak RSS, MB | s |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for backend, mode, m in maps:
            tail = f" (error: {m['error']})" if m.get("error") else ""
            lines.append(f"| {backend} | {mode} | {m['cell_mb']:.1f} | {m['ingest_rss']:.0f} | {m['ingest_s']:.1f} "
                         f"| {m['map_rss']:.0f}{tail} | {m['map_s']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--distinct", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backends", default="onnx-int8,torch,static")
    ap.add_argument("--cell-mb", type=float, default=50.0)
    ap.add_argument("--cell-backends", default="onnx-int8,torch")
    ap.add_argument("--map-modes", default="truncate,chunk", help="`sieve map` (onnx-int8) with the cell, per mode")
    ap.add_argument("--write", action="store_true", help="prepend the section to bench/RESULTS.md")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load0 = load()
    a, b, distinct = make_texts(args.pairs, args.distinct, args.seed)
    results = []
    for backend in [x for x in args.backends.split(",") if x]:
        results.append(measure_backend(backend, a, b, distinct))
        print(json.dumps(results[-1]), file=sys.stderr)
    cells = []
    for backend in [x for x in args.cell_backends.split(",") if x]:
        for mode in ("truncate", "chunk"):
            cells.append((backend, mode, measure_cell(backend, mode, args.cell_mb)))
            print(json.dumps(cells[-1]), file=sys.stderr)
    maps = []
    with tempfile.TemporaryDirectory(prefix="sieve-long-text-") as tmp:
        for mode in [x for x in args.map_modes.split(",") if x]:
            maps.append(("onnx-int8", mode, measure_map(args.cell_mb, "onnx-int8", mode, tmp)))
            print(json.dumps(maps[-1]), file=sys.stderr)
    text = section(results, cells, args, load0, load(), maps)
    print(text)
    if args.write:
        prepend(RESULTS, text)


if __name__ == "__main__":
    main()
