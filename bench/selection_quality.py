"""Quality harness (issue 16): does the map find the real structure, and does a subset train better than random?

    python -m bench.selection_quality [--budgets 0.005,0.01,0.02,0.05] [--no-write] [--maps all|fast]

Data: banking77 (``shared/data/banking77.parquet`` next to the checkout or one level up, or
``$SIEVE_BANKING77``; outside the repository; read only,
nothing derived from its text is written here; 77 intents, a ``split`` column).  It is
embedded once with the project's default backend (all-MiniLM-L6-v2, ``EmbedParams()``)
and the vectors are cached in ``$SIEVE_QUALITY_CACHE`` (default /tmp/sieve-quality-cache),
with the UMAP projections, so a rerun only re-clusters and re-selects.

Sets: the *pool* Sieve maps and selects from is the ``train`` split (10,003 rows), as is,
and two seeded Zipf resamplings of it (class at a seeded random rank r keeps
``min(size, max(8, round(n_max * (r+1)^-a)))`` rows, a = 0.5 and 1.0).  The ``test`` split
(3,080 rows, 40 per class) is halved per class (seeded): the *evaluation* half (1,540 rows)
is what the probe scores on, and no method ever picks from it; the other half is the
*target* set of the ``--target`` methods (its texts' vectors only, never its labels).

For each set:

* **map**: ARI and NMI of the clusters against the labels over all pool rows (noise =
  one more cluster) and over the clustered rows, the noise share, the cluster count, seconds;
  the plain baseline (``umap.UMAP(n_components=5)`` + ``hdbscan.HDBSCAN()``, every default)
  side by side with Sieve's default map and the alternatives (HDBSCAN on UMAP-10D,
  PLSCAN, EVoC, Leiden; each also after soft assignment of its noise), and the map
  defaults before issue 16 (min_cluster_size ~sqrt(n)/2, noise kept) and each half of the
  change alone.  "noise" is the share of rows left unclustered by the map as made (the
  default map joins a noise row to its most likely cluster at soft membership >= 0.02).
* **subset**, per budget (share of the pool) and method: class coverage, coverage of the
  rarest fifth of classes, label entropy (bits), and the **probe**: a logistic regression
  (scikit-learn, C = 10, on the subset's unit vectors with their true labels) scored by
  macro-F1 over all 77 classes on the evaluation rows.  Random: mean and std over 10
  uniform subsets of the same size; Sieve methods: mean over 3 seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BANKING77 = Path(os.environ.get("SIEVE_BANKING77", "")) if os.environ.get("SIEVE_BANKING77") else next(
    (p / "shared" / "data" / "banking77.parquet" for p in (ROOT.parent, ROOT.parent.parent)
     if (p / "shared" / "data" / "banking77.parquet").is_file()), ROOT.parent / "shared" / "data" / "banking77.parquet")
CACHE = Path(os.environ.get("SIEVE_QUALITY_CACHE", "/tmp/sieve-quality-cache"))
SKEWS = (0.5, 1.0)
N_RANDOM = 10
SIEVE_SEEDS = (0, 1, 2)
PROBE_C = 10.0

# (name, SelectParams fields); None = uniform random over the whole pool (no map).  The row
# whose fields are exactly the CLI's default recipe is marked "(default)" in the table.
METHODS = [
    ("random (global)", None),
    ("proportional + random", dict(policy="proportional", pick="random")),
    ("equal + random", dict(policy="equal", pick="random")),
    ("equal + diverse", dict(policy="equal", pick="diverse")),
    ("sqrt + diverse", dict(policy="sqrt", pick="diverse")),
    ("equal + facility", dict(policy="equal", pick="facility")),
    ("sqrt + facility", dict(policy="sqrt", pick="facility")),
    ("sqrt + facility, soft noise 0", dict(policy="sqrt", pick="facility", soft_noise_threshold=0.0)),
    ("sqrt + facility, soft noise 0, clusters by coverage",
     dict(policy="sqrt", pick="facility", soft_noise_threshold=0.0, cluster_choice="coverage")),
    ("equal + facility, soft noise 0, clusters by coverage",
     dict(policy="equal", pick="facility", soft_noise_threshold=0.0, cluster_choice="coverage")),
    ("sqrt + facility, unclustered excluded", dict(policy="sqrt", pick="facility", noise="exclude")),
    ("equal + facility-global", dict(policy="equal", pick="facility-global")),
    ("sqrt + facility-global", dict(policy="sqrt", pick="facility-global")),
    ("sqrt + facility-balanced", dict(policy="sqrt", pick="facility-balanced")),
    ("proportional + facility-balanced", dict(policy="proportional", pick="facility-balanced")),
    ("sqrt + facility-balanced, soft noise 0", dict(policy="sqrt", pick="facility-balanced",
                                                    soft_noise_threshold=0.0)),
    ("target (other test half) + facility", dict(pick="facility", target_path="target")),
    ("target (other test half) + random", dict(pick="random", target_path="target")),
]


def old_defaults() -> list:
    """(table name, ClusterParams) of the map defaults before issue 16's change, and each half of it."""
    from core.stages.cluster import ClusterParams

    return [("previous default (min_cluster_size ~sqrt(n)/2, min_samples <= 10, noise kept)",
             ClusterParams(auto_rule=1, assign_noise=None)),
            ("new sizes only (~sqrt(n)/4, min_samples <= 5, noise kept)", ClusterParams(assign_noise=None)),
            ("previous sizes + noise joined at soft membership >= 0.02", ClusterParams(auto_rule=1))]


def default_method() -> str:
    """The METHODS name of the shipped default (core.selection.DEFAULT_POLICY / DEFAULT_PICK / DEFAULT_SOFT_NOISE)."""
    from core.selection import DEFAULT_PICK, DEFAULT_POLICY, DEFAULT_SOFT_NOISE

    recipe = dict(policy=DEFAULT_POLICY, pick=DEFAULT_PICK, soft_noise_threshold=DEFAULT_SOFT_NOISE)
    return next(name for name, spec in METHODS if spec == recipe)


# -- data ------------------------------------------------------------------------------

def load_banking77(log) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(vectors (n, 384) float32, labels (n,) object, split (n,) object, meta); vectors cached."""
    import pyarrow.parquet as pq

    t = pq.read_table(BANKING77, columns=["id", "label", "split"])
    labels = np.asarray(t.column("label").to_pylist(), dtype=object)
    split = np.asarray(t.column("split").to_pylist(), dtype=object)
    CACHE.mkdir(parents=True, exist_ok=True)
    vec_path, meta_path = CACHE / "banking77_vectors.npy", CACHE / "banking77_meta.json"
    if not vec_path.is_file():
        log("embedding banking77 once (default backend) ...")
        embed_into_cache(vec_path, meta_path)
    vectors = np.load(vec_path)
    if len(vectors) != len(labels):
        raise SystemExit(f"{vec_path}: {len(vectors)} vectors for {len(labels)} rows; delete the cache")
    return vectors, labels, split, json.loads(meta_path.read_text())


def embed_into_cache(vec_path: Path, meta_path: Path) -> None:
    import tempfile

    from core.stages.embed import EmbedParams, load_embeddings, run_embed
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec
    from core.store.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="sieve-quality-ws-") as tmp:
        ws = Workspace(Path(tmp))
        t0 = time.perf_counter()
        ingest(ws, IngestParams(str(BANKING77), TextSpec(column="text")))
        p = EmbedParams().resolved(None)
        r = run_embed(ws, p)
        _, vec = load_embeddings(ws, r.key)
        np.save(vec_path, np.asarray(vec, np.float32))
        meta_path.write_text(json.dumps({"backend": p.backend, "model": p.model, "model_id": r.model_id,
                                         "seconds": time.perf_counter() - t0}))


def zipf_pool(labels: np.ndarray, pool: np.ndarray, a: float, seed: int = 0) -> np.ndarray:
    """Positions of a seeded Zipf resampling of ``pool``: the class at (seeded random)
    rank r keeps min(size, max(8, round(n_max * (r + 1) ** -a))) of its rows."""
    rng = np.random.default_rng(seed)
    names = np.unique(labels[pool])
    order = rng.permutation(len(names))
    n_max = max(int((labels[pool] == x).sum()) for x in names)
    keep = []
    for r, i in enumerate(order):
        idx = pool[labels[pool] == names[i]]
        k = min(len(idx), max(8, int(round(n_max * (r + 1) ** -a))))
        keep.append(rng.choice(idx, k, replace=False))
    return np.sort(np.concatenate(keep))


# -- maps --------------------------------------------------------------------------------

def cached_projection(name: str, vectors: np.ndarray, dims: int, log) -> np.ndarray:
    """Sieve's default UMAP (core.stages.project, ProjectParams(cluster_dims=dims)) -> the n-D coordinates."""
    from core.stages.project import ProjectParams, project

    path = CACHE / f"proj-{name}-{len(vectors)}-{dims}.npy"
    if path.is_file():
        return np.load(path)
    t0 = time.perf_counter()
    xnd = project(vectors, ProjectParams(cluster_dims=dims)).xnd
    log(f"  UMAP-{dims}D ({name}): {time.perf_counter() - t0:.0f} s")
    np.save(path, xnd)
    return xnd


def baseline_projection(name: str, vectors: np.ndarray, log) -> np.ndarray:
    path = CACHE / f"baseline-{name}-{len(vectors)}.npy"
    if path.is_file():
        return np.load(path)
    import umap

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xnd = umap.UMAP(n_components=5).fit_transform(vectors)
    log(f"  baseline UMAP-5D ({name}): {time.perf_counter() - t0:.0f} s")
    np.save(path, xnd)
    return xnd


def map_variants(name: str, vectors: np.ndarray, which: str, log, evoc: bool = True) -> dict:
    """name -> (labels, soft labels or None, seconds of the clustering step)."""
    import hdbscan

    from core.stages import cluster_methods as cm
    from core.stages.cluster import ClusterParams, cluster, relabel_by_size

    OLD_DEFAULTS = old_defaults()
    out = {}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = hdbscan.HDBSCAN().fit(baseline_projection(name, vectors, log)).labels_
    out["baseline: UMAP-5D + HDBSCAN (all defaults)"] = (base, None, time.perf_counter() - t0)
    dims = (5, 10) if which == "all" else (5,)
    for d in dims:
        xnd = cached_projection(name, vectors, d, log)
        t0 = time.perf_counter()
        c = cluster(xnd, ClusterParams())
        tag = "Sieve default: UMAP-5D + HDBSCAN" if d == 5 else f"UMAP-{d}D + HDBSCAN"
        out[tag] = (c.labels, c.soft_labels, time.perf_counter() - t0)
    xnd = cached_projection(name, vectors, 5, log)
    for tag, p in OLD_DEFAULTS:  # what the default map was, and each half of the change alone
        t0 = time.perf_counter()
        c = cluster(xnd, p)
        out[tag] = (c.labels, c.soft_labels, time.perf_counter() - t0)
    xnd = cached_projection(name, vectors, 5, log)
    runs = [("UMAP-5D + PLSCAN", lambda: cm.plscan_labels(xnd)),
            *([("EVoC (raw vectors)", lambda: cm.evoc_labels(vectors))] if evoc else []),
            ("Leiden (kNN graph, resolution 1)", lambda: cm.leiden_labels(vectors, resolution=1.0)),
            ("Leiden (kNN graph, resolution 2)", lambda: cm.leiden_labels(vectors, resolution=2.0))]
    if which != "all":  # fast: the baseline, the default map and Leiden only
        runs = [r for r in runs if r[0].startswith("Leiden")]
    for tag, fn in runs:
        path = CACHE / f"labels-{name}-{len(vectors)}-{zlib.crc32(tag.encode())}.npz"
        if path.is_file():
            z = np.load(path)
            out[tag] = (z["labels"], None, float(z["sec"]))
            continue
        t0 = time.perf_counter()
        try:
            raw, _ = fn()
        except Exception as exc:  # a missing/broken optional package: say so in the table
            log(f"  {tag}: failed: {exc}")
            continue
        out[tag] = (relabel_by_size(raw), None, time.perf_counter() - t0)
        np.savez(path, labels=out[tag][0], sec=out[tag][2])
        log(f"  {tag}: {out[tag][2]:.0f} s")
    return out


def map_scores(true: np.ndarray, labels: np.ndarray) -> dict:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    ok = labels >= 0
    return {
        "ari": adjusted_rand_score(true, labels), "nmi": normalized_mutual_info_score(true, labels),
        "ari_nn": adjusted_rand_score(true[ok], labels[ok]) if ok.any() else float("nan"),
        "nmi_nn": normalized_mutual_info_score(true[ok], labels[ok]) if ok.any() else float("nan"),
        "noise": float((~ok).mean()), "clusters": int(len(set(labels[ok].tolist()))),
    }


# -- subsets -------------------------------------------------------------------------------

def probe_f1(x_train, y_train, x_eval, y_eval, classes) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    if len(set(y_train.tolist())) < 2:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = LogisticRegression(C=PROBE_C, max_iter=2000).fit(x_train, y_train)
        return float(f1_score(y_eval, clf.predict(x_eval), labels=classes, average="macro", zero_division=0))


def entropy(labels: np.ndarray) -> float:
    _, c = np.unique(labels, return_counts=True)
    p = c / c.sum()
    return float(-(p * np.log2(p)).sum())


def subset_scores(pos, true, rare, vectors, eval_x, eval_y, classes) -> dict:
    got = set(true[pos].tolist())
    return {"covered": len(got) / len(classes), "rare": len(got & rare) / len(rare), "entropy": entropy(true[pos]),
            "f1": probe_f1(vectors[pos], true[pos], eval_x, eval_y, classes)}


def run_set(name, vectors, true, eval_x, eval_y, target_x, budgets, which, log, evoc=True,
            fresh=False, cached_only=False) -> tuple[list, list]:
    from core.nn import max_sim
    from core.selection import ALGO_VERSION, SelectParams, select

    classes = sorted(set(eval_y.tolist()))
    names, counts = np.unique(true, return_counts=True)
    rare = set(names[np.lexsort((names, counts))][: max(1, math.ceil(0.2 * len(names)))].tolist())
    maps = map_variants(name, vectors, which, log, evoc)
    map_rows = []
    for tag, (labels, soft, sec) in maps.items():
        row = {"map": tag, "sec": sec, **map_scores(true, labels)}
        if soft is not None:
            sl = np.where(labels >= 0, labels, soft)
            row["soft"] = map_scores(true, sl)
        map_rows.append(row)
        log(f"  map {tag}: {row}")
    labels, soft, _ = maps["Sieve default: UMAP-5D + HDBSCAN"]
    map_digest = zlib.crc32(np.ascontiguousarray(labels, np.int32).tobytes())
    strength = np.where(labels >= 0, 1.0, 0.5).astype(np.float32)  # soft noise 0: every noise row moves
    row_ids = np.arange(len(true), dtype=np.int64)
    n = len(true)
    target = max_sim(target_x, vectors)[1]  # each target row's nearest pool row
    sel_rows = []
    for b in budgets:
        k = max(1, int(round(b * n)))
        for method, spec in METHODS:
            # the map's labels are part of a Sieve method's key (not of random's: it never reads them)
            key = zlib.crc32(repr((spec, N_RANDOM, SIEVE_SEEDS, PROBE_C) + ((map_digest, ALGO_VERSION) if spec else ())).encode())
            saved = CACHE / f"subset-{name}-{n}-{k}-{key}.json"
            if saved.is_file() and not fresh:  # an identical earlier computation (set, size, method, seeds)
                sel_rows.append((b, k, method, json.loads(saved.read_text())))
                continue
            if cached_only:  # a time-boxed run: rows not computed yet are left out (the table says so)
                log(f"  {b:.1%} {method}: not computed (--cached-only)")
                continue
            t0 = time.perf_counter()
            runs = []
            for seed in (range(N_RANDOM) if spec is None else SIEVE_SEEDS):
                if spec is None:
                    pos = np.sort(np.random.default_rng(1000 + seed).choice(n, k, replace=False))
                else:
                    pos = select(labels, row_ids, SelectParams(budget=k, seed=seed, **spec), vectors=vectors,
                                 soft_labels=soft, soft_strength=strength, target_positions=target).positions
                runs.append(subset_scores(pos, true, rare, vectors, eval_x, eval_y, classes))
            mean = {m: float(np.mean([r[m] for r in runs])) for m in runs[0]}
            mean["f1_std"] = float(np.std([r["f1"] for r in runs]))
            mean["sec"] = (time.perf_counter() - t0) / len(runs)
            saved.write_text(json.dumps(mean))
            sel_rows.append((b, k, method, mean))
            log(f"  {b:.1%} {method}: {mean}")
    return map_rows, sel_rows


# -- report --------------------------------------------------------------------------------

def render_map(rows: list) -> list[str]:
    base = rows[0]["nmi"]
    out = ["| map | clusters | noise | ARI | NMI | NMI − baseline | ARI / NMI (clustered rows) | "
           "after soft noise: noise / NMI | cluster s |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        soft = f"{r['soft']['noise']:.0%} / {r['soft']['nmi']:.3f}" if "soft" in r else "–"
        out.append(f"| {r['map']} | {r['clusters']} | {r['noise']:.1%} | {r['ari']:.3f} | {r['nmi']:.3f} | "
                   f"{r['nmi'] - base:+.3f} | {r['ari_nn']:.3f} / {r['nmi_nn']:.3f} | {soft} | {r['sec']:.1f} |")
    return out


def render_subsets(rows: list, default: str = "") -> list[str]:
    out = ["| budget | method | classes covered | rarest fifth covered | × random | label entropy (bits) | "
           "probe macro-F1 | − random mean (points) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    rand = {}
    for b, k, method, m in rows:
        if method.startswith("random"):
            rand[b] = m
        r = rand[b]
        f1 = f"{m['f1']:.3f} ± {m['f1_std']:.3f}" if method.startswith("random") else f"{m['f1']:.3f}"
        ratio = m["rare"] / r["rare"] if r["rare"] else float("nan")
        label = f"**{method} (default)**" if method == default else method
        out.append(f"| {b:.1%} ({k}) | {label} | {m['covered']:.1%} | {m['rare']:.1%} | {ratio:.2f} | "
                   f"{m['entropy']:.2f} | {f1} | {100 * (m['f1'] - r['f1']):+.1f} |")
    return out


def render(started: str, load: str, meta: dict, sets: list, minutes: float) -> str:
    from bench.common import machine

    default = default_method()

    lines = [f"### Quality harness (issue 16), {started}", "",
             f"Machine: {machine()}; load average {load}; {minutes:.1f} min.  Vectors: {meta['model_id']} "
             f"(backend {meta['backend']}), embedded once and cached.  Pool = banking77's `train` split (and two "
             "seeded Zipf resamplings of it); evaluation = a seeded half of its `test` split (1,540 rows, 20 per "
             "class, never selectable); target (the `--target` methods) = the other half (vectors only).  "
             f"Probe: logistic regression (C = {PROBE_C:g}) on the subset's vectors and true labels, macro-F1 over "
             f"all 77 classes on the evaluation rows; random = mean ± std of {N_RANDOM} uniform subsets, Sieve "
             f"methods = mean of {len(SIEVE_SEEDS)} seeds.  Labels are never shown to Sieve.  "
             "`python -m bench.selection_quality`.", ""]
    for name, desc, map_rows, sel_rows in sets:
        lines += [f"**{name}**: {desc}.", ""] + render_map(map_rows) + [""] + render_subsets(sel_rows, default) + [""]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.selection_quality", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", default="0.005,0.01,0.02,0.05")
    ap.add_argument("--maps", default="all", choices=("all", "fast"), help="fast: the baseline, the default map and Leiden only")
    ap.add_argument("--only", default=None, help="comma-separated set names: balanced,zipf0.5,zipf1")
    ap.add_argument("--all-maps-on", default="balanced",
                    help="sets that get every map variant (the others: the baseline, the default map and Leiden)")
    ap.add_argument("--evoc", default="balanced",
                    help="sets EVoC runs on (comma-separated; it took 11 min for 10k rows on the shared 2 cores)")
    ap.add_argument("--fresh", action="store_true", help="recompute results (tables and subsets) cached from an identical earlier run")
    ap.add_argument("--cached-only", action="store_true",
                    help="a time-boxed table: only subsets an earlier (or a running) harness computed; others left out")
    ap.add_argument("--no-write", action="store_true", help="print the table, don't touch RESULTS.md")
    ap.add_argument("--note", default="", help="a paragraph appended to the section (the analysis)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(ROOT))
    budgets = [float(x) for x in args.budgets.split(",")]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t_start, load_before = time.perf_counter(), os.getloadavg()[0]

    def log(m):
        print(m, flush=True)

    vectors, labels, split, meta = load_banking77(log)
    train = np.nonzero(split == "train")[0]
    test = np.nonzero(split == "test")[0]
    # evaluation = a seeded half of the test split per class; the other half is the target set
    rng = np.random.default_rng(0)
    half = np.zeros(len(test), bool)
    for x in np.unique(labels[test]):
        idx = np.nonzero(labels[test] == x)[0]
        half[rng.choice(idx, len(idx) // 2, replace=False)] = True
    test, target = test[half], test[~half]
    sets = [("balanced", train, "banking77 `train` as is")]
    for a in SKEWS:
        sets.append((f"zipf{a:g}", zipf_pool(labels, train, a), f"banking77 `train`, Zipf-resampled, a = {a:g}"))
    done = []
    for tag, pool, desc in sets:
        if args.only and tag not in args.only.split(","):
            continue
        sizes = np.unique(labels[pool], return_counts=True)[1]
        desc = f"{desc}: {len(pool):,} rows, {len(sizes)} classes of {sizes.min()}-{sizes.max()} rows"
        log(f"{tag}: {desc}")
        evoc = tag in args.evoc.split(",")
        which = args.maps if tag in args.all_maps_on.split(",") else "fast"
        from core.selection import ALGO_VERSION
        from core.stages.cluster import ClusterParams

        key = zlib.crc32(repr((3, tag, budgets, METHODS, which, evoc, N_RANDOM, SIEVE_SEEDS, PROBE_C,
                               ClusterParams().key_dict(), ALGO_VERSION)).encode())
        saved = CACHE / f"results-{tag}-{key}.json"
        if saved.is_file() and not args.fresh:
            map_rows, sel_rows = json.loads(saved.read_text())
            log("  (results from the cache; --fresh recomputes them)")
        else:
            map_rows, sel_rows = run_set(tag, vectors[pool], labels[pool], vectors[test], labels[test],
                                         vectors[target], budgets, which, log, evoc, args.fresh, args.cached_only)
            if not args.cached_only:
                saved.write_text(json.dumps([map_rows, sel_rows]))
        done.append((tag, desc, map_rows, sel_rows))
    load = f"{load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    text = render(started, load, meta, done, (time.perf_counter() - t_start) / 60)
    if args.note:
        text += "\n" + args.note.strip() + "\n"
    print(text)
    if not args.no_write:
        from bench.common import RESULTS, prepend

        prepend(RESULTS, text)


if __name__ == "__main__":
    main()
