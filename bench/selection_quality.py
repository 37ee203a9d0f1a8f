"""Selection quality: does a balanced, diverse subset cover rare classes better than random?

    python -m bench.selection_quality [--budgets 0.01,0.05,0.1] [--seeds 5] [--no-write]

On labelled text with skewed class sizes -- banking77 (../shared/data, outside the
repository; read only, nothing derived from its text is written here), a Zipf-skewed
subsample of it, and the generated sample set (topic = label) -- it embeds with the
real default model, maps with the default parameters, and compares selection
strategies at each budget, averaged over ``--seeds`` seeds:

* random (global): a uniform sample of the whole set (no map)
* proportional + random, equal + random, equal + diverse, equal + facility
* equal + facility + near dedup (duplicate groups collapsed first)

Per subset: share of the true labels covered, entropy of its label distribution
(bits; the maximum is log2 of the number of labels), share of the rarest 20% of
labels represented, and the duplicate rate (chosen rows with an exact-normalised or
cosine >= 0.95 twin among the chosen).  The labels are never shown to Sieve.
The table is inserted at the top of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BANKING77 = ROOT.parent / "shared" / "data" / "banking77.parquet"

METHODS = [
    ("random (global)", None),
    ("proportional + random", dict(policy="proportional", pick="random")),
    ("equal + random", dict(policy="equal", pick="random")),
    ("equal + diverse", dict(policy="equal", pick="diverse")),
    ("equal + facility", dict(policy="equal", pick="facility")),
    ("equal + facility + near dedup", dict(policy="equal", pick="facility", dedup="near")),
]


def _datasets(tmp: Path) -> list[tuple[str, Path, str, str]]:
    """(name, file, label column, description) -- files written to ``tmp`` only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sample_data.generate import generate_rows

    out = []
    if BANKING77.is_file():
        t = pq.read_table(BANKING77, columns=["id", "text", "label"])
        out.append(("banking77", BANKING77, "label", f"{t.num_rows:,} rows, {len(set(t.column('label').to_pylist()))} "
                    "intents (75-227 rows each)"))
        # Zipf-like skew: the label at rank r (a fixed order) keeps 1/(1 + r/4) of its rows
        labels = np.asarray(t.column("label").to_pylist(), dtype=object)
        names = sorted(set(labels.tolist()), key=lambda s: (hash_str(s), s))
        keep = np.zeros(len(labels), bool)
        rng = np.random.default_rng(0)
        for r, name in enumerate(names):
            idx = np.nonzero(labels == name)[0]
            k = max(3, int(round(len(idx) / (1 + r / 4))))
            keep[np.sort(rng.choice(idx, min(k, len(idx)), replace=False))] = True
        skew = t.filter(pa.array(keep))
        path = tmp / "banking77_skewed.parquet"
        pq.write_table(skew, path)
        sizes = np.unique(np.asarray(skew.column("label").to_pylist(), dtype=object), return_counts=True)[1]
        out.append(("banking77, Zipf-skewed", path, "label", f"{skew.num_rows:,} rows, 77 intents "
                    f"({sizes.min()}-{sizes.max()} rows each; label at rank r keeps 1/(1+r/4))"))
    gen = generate_rows(6000, seed=5)
    path = tmp / "generated.parquet"
    pq.write_table(gen, path)
    sizes = np.unique(np.asarray(gen.column("topic").to_pylist(), dtype=object), return_counts=True)[1]
    out.append(("generated (sample_data)", path, "topic", f"{gen.num_rows:,} rows, {len(sizes)} topics "
                f"({sizes.min()}-{sizes.max()} rows each; ~5% exact/near duplicates)"))
    return out


def hash_str(s: str) -> int:
    import hashlib

    return int(hashlib.md5(s.encode()).hexdigest()[:8], 16)


def _clusters_per_label(true: np.ndarray, clusters: np.ndarray) -> tuple[float, float]:
    """Mean number of clusters holding >= 10% of a label's rows: for the largest and the smallest fifth of labels."""
    names, counts = np.unique(true, return_counts=True)
    order = names[np.argsort(counts, kind="stable")]
    fifth = max(1, len(names) // 5)

    def spread(name):
        c = clusters[(true == name) & (clusters >= 0)]
        if len(c) == 0:
            return 0
        _, k = np.unique(c, return_counts=True)
        return int((k >= 0.1 * (true == name).sum()).sum())

    return (float(np.mean([spread(x) for x in order[-fifth:]])), float(np.mean([spread(x) for x in order[:fifth]])))


def _entropy(labels: np.ndarray) -> float:
    _, c = np.unique(labels, return_counts=True)
    p = c / c.sum()
    return float(-(p * np.log2(p)).sum())


def _measure(true: np.ndarray, pos: np.ndarray, rare: set, keys, vectors) -> dict:
    from core.metrics import duplicate_rate

    got = true[pos]
    labels = set(got.tolist())
    return {
        "covered": len(labels) / len(set(true.tolist())),
        "entropy": _entropy(got),
        "rare": len(labels & rare) / len(rare),
        "dup": duplicate_rate(pos, keys=keys, vectors=vectors, near_threshold=0.95) or 0.0,
    }


def run_dataset(name: str, path: Path, label_col: str, ws_root: Path, budgets: list[float], seeds: int, log):
    from sklearn.metrics import adjusted_rand_score

    from core.ingest import IngestParams, TextSpec, ingest, load_column
    from core.pipeline import MapParams, build_map, load_map, run_selection
    from core.select import SelectParams
    from core.select_inputs import text_keys
    from core.workspace import Workspace

    ws = Workspace(ws_root)
    t0 = time.perf_counter()
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    keys = build_map(ws, MapParams())
    data = load_map(ws, keys)
    map_s = time.perf_counter() - t0
    true = np.asarray(load_column(ws, label_col, data.row_ids).to_pylist(), dtype=object)
    names, counts = np.unique(true, return_counts=True)
    n_rare = max(1, math.ceil(0.2 * len(names)))
    rare = set(names[np.lexsort((names, counts))][:n_rare].tolist())
    tk = text_keys(ws, data)
    n = len(true)
    in_rare = np.isin(true, list(rare))
    clustered = data.labels >= 0
    majority = {}
    for c in set(data.labels[clustered].tolist()):
        lab, cnt = np.unique(true[data.labels == c], return_counts=True)
        majority[c] = lab[np.argmax(cnt)]
    minority = np.array([majority[c] != t for c, t in zip(data.labels[in_rare & clustered], true[in_rare & clustered])])
    info = {
        "rare_noise": float((~clustered[in_rare]).mean()),
        "rare_minority": float(minority.mean()) if len(minority) else 0.0,
        "clusters_per_label": _clusters_per_label(true, data.labels),
        "rows": n, "labels": len(names), "rare": n_rare,
        "clusters": int(len(set(data.labels.tolist()) - {-1})),
        "noise": float((data.labels == -1).mean()),
        "ari": float(adjusted_rand_score(true, data.labels)),
        "map_s": map_s,
    }
    log(f"{name}: {info}")
    results = []
    for b in budgets:
        k = max(1, int(round(b * n)))
        for method, spec in METHODS:
            runs, sec = [], 0.0
            for seed in range(seeds):
                t1 = time.perf_counter()
                if spec is None:
                    pos = np.sort(np.random.default_rng(seed).choice(n, k, replace=False))
                else:
                    pos = run_selection(ws, data, SelectParams(budget=k, seed=seed, **spec)).positions
                sec += time.perf_counter() - t1
                runs.append(_measure(true, pos, rare, tk, data.vectors))
            mean = {m: float(np.mean([r[m] for r in runs])) for m in runs[0]}
            results.append((b, k, method, mean, sec / seeds))
            log(f"  {b:.0%} {method}: {mean} ({sec / seeds:.2f} s)")
    return info, results


def render(started: str, load: str, seeds: int, per_dataset: list) -> str:
    from bench.__main__ import machine

    lines = [
        f"### Selection quality, {started}",
        "",
        f"Machine: {machine()}; load average {load}.  Real default model (all-MiniLM-L6-v2, CPU), default map "
        f"parameters; every figure is the mean over {seeds} seeds (global random: {seeds} uniform samples).  "
        "Labels are never shown to Sieve: *labels covered* = share of true labels with at least one chosen row; "
        "*entropy* = of the chosen rows' label distribution (bits; max = log2 #labels); *rare covered* = share of "
        "the rarest 20% of labels represented; *dup rate* = chosen rows with an exact (normalised text) or "
        "cosine >= 0.95 twin among the chosen.  `python -m bench.selection_quality`.",
        "",
    ]
    for name, desc, info, results in per_dataset:
        lines += [
            f"**{name}**: {desc}.  Map: {info['clusters']} clusters, {info['noise']:.0%} unclustered, "
            f"ARI(clusters, labels) = {info['ari']:.2f}; rarest 20% = {info['rare']} labels, whose rows are "
            f"{info['rare_noise']:.0%} unclustered and {info['rare_minority']:.0%} in clusters where another "
            f"label is the majority; clusters holding >= 10% of a label: {info['clusters_per_label'][0]:.1f} for "
            f"the largest fifth of labels, {info['clusters_per_label'][1]:.1f} for the smallest; "
            f"max entropy {math.log2(info['labels']):.2f} bits; map built in {info['map_s']:.0f} s.",
            "",
            "| budget | method | labels covered | entropy (bits) | rare covered | dup rate | select s |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for b, k, method, m, sec in results:
            lines.append(f"| {b:.0%} ({k:,}) | {method} | {m['covered']:.1%} | {m['entropy']:.2f} | "
                         f"{m['rare']:.1%} | {m['dup']:.1%} | {sec:.2f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.selection_quality", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", default="0.01,0.05,0.1")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--only", default=None, help="comma-separated dataset names (default: all)")
    ap.add_argument("--no-write", action="store_true", help="print the table, don't touch RESULTS.md")
    ap.add_argument("--note", default="", help="a paragraph appended to the section (the analysis)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(ROOT))
    budgets = [float(x) for x in args.budgets.split(",")]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = os.getloadavg()[0]
    per_dataset = []
    with tempfile.TemporaryDirectory(prefix="sieve-selq-") as tmp:
        tmp = Path(tmp)
        for name, path, label_col, desc in _datasets(tmp):  # one workspace: the embedding cache is shared
            if args.only and name not in args.only.split(","):
                continue
            info, results = run_dataset(name, path, label_col, tmp / "ws", budgets, args.seeds,
                                        lambda m: print(m, flush=True))
            per_dataset.append((name, desc, info, results))
    load = f"{load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    text = render(started, load, args.seeds, per_dataset)
    if args.note:
        text += "\n" + args.note.strip() + "\n"
    print(text)
    if not args.no_write:
        from bench.__main__ import RESULTS, prepend

        prepend(RESULTS, text)


if __name__ == "__main__":
    main()
