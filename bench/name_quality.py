"""Cluster-name quality on banking77: does each cluster's name say what its rows are about?

    python -m bench.name_quality [--data PATH] [--before-rev REV] [--cache DIR] [--no-write]

banking77 (13k short banking questions with one of 77 intent labels such as
``card_arrival``; ../shared/data, outside the repository, read only) is mapped with the
real default model and the default parameters (embed -> UMAP -> HDBSCAN, cached in a
workspace under ``--cache``, /tmp by default, so a second run skips the embedding).  The
same clusters are then named twice, so only the naming differs:

* **before**: ``core.stages.naming.label_clusters`` of ``--before-rev`` (default: the commit this
  work started from), extracted with ``git archive`` and run in a child process;
* **after**: ``core.stages.naming.label_clusters`` of the working tree.

Per naming: the share of clusters whose name contains a word of the cluster's majority
label (``card_arrival`` -> card, arrival; both sides Snowball-stemmed, so ``arrived``
matches ``arrival``), and the share of names that break the rules of docs/RELIABILITY.md
(a stop word of stopwords-iso's English list; a word, stemmed, in more than a fifth of
all names; two forms of one stem in one name).  The labels are never shown to Sieve.
The table is inserted at the top of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BANKING77 = ROOT.parent / "shared" / "data" / "banking77.parquet"
BEFORE_REV = "26dd6de"  # main when the multilingual names work started
CHILD = """
import json, sys
import numpy as np
from core.stages.naming import label_clusters
d = np.load(sys.argv[1], allow_pickle=False)
texts = [str(t) for t in d["texts"]]
infos = label_clusters(texts, d["labels"], d["vectors"], d["row_ids"])
print(json.dumps({str(i.id): i.name for i in infos}))
"""


def _map(data: Path, cache: Path, log) -> tuple[Path, str]:
    """Map banking77 once (cached) and save texts, clusters, true labels and vectors to an npz;
    returns (npz path, how the map was had)."""
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec, load_column, load_texts
    from core.engines.local import MapParams, build_map, load_map
    from core.store.workspace import Workspace

    out = cache / "arrays.npz"
    if out.exists() and out.stat().st_mtime > data.stat().st_mtime:
        return out, f"read from the cache {cache} (delete it to re-map)"
    ws = Workspace(cache / "ws")
    ingest(ws, IngestParams(str(data), TextSpec(column="text")))
    t0 = time.perf_counter()
    keys = build_map(ws, MapParams())
    took = f"computed in {time.perf_counter() - t0:.0f} s (embedding backend {MapParams().embed.resolved().backend})"
    log(f"map: {took}")
    m = load_map(ws)
    ids, texts, _ = load_texts(ws)
    assert np.array_equal(np.asarray(ids), m.row_ids)
    true = np.asarray(load_column(ws, "label", m.row_ids).to_pylist(), dtype=object)
    tmp = cache / "arrays.tmp.npz"
    np.savez(tmp, texts=np.asarray(texts, dtype=str), labels=m.labels, vectors=np.asarray(m.vectors),
             row_ids=m.row_ids, true=true.astype(str))
    os.replace(tmp, out)
    return out, took + ("" if not keys.cached.get("embed") else ", embeddings from the workspace cache")


def _names_at(rev: str, arrays: Path) -> dict[int, str]:
    """Names by ``core.stages.naming`` as of git revision ``rev``, in a child process on that code."""
    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / "core.tar"
        subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(tar), rev, "core"], check=True)
        with tarfile.open(tar) as tf:
            tf.extractall(tmp, filter="data")
        env = dict(os.environ, PYTHONPATH=tmp, HF_HUB_OFFLINE="1")
        out = subprocess.run([sys.executable, "-c", CHILD, str(arrays)], env=env, cwd=tmp,
                             capture_output=True, text=True, check=True)
    return {int(k): v for k, v in json.loads(out.stdout).items()}


def _names_now(arrays: Path) -> dict[int, str]:
    from core.stages.naming import label_clusters

    d = np.load(arrays, allow_pickle=False)
    infos = label_clusters([str(t) for t in d["texts"]], d["labels"], d["vectors"], d["row_ids"])
    return {i.id: i.name for i in infos}


def score(names: dict[int, str], labels: np.ndarray, true: np.ndarray) -> dict:
    """Name-quality figures of one naming (noise excluded)."""
    import regex
    import snowballstemmer
    import stopwordsiso

    stem = snowballstemmer.stemmer("english").stemWord
    stop = stopwordsiso.stopwords("en")
    named = {c: n for c, n in names.items() if c >= 0}
    words = {c: regex.findall(r"[\p{L}\p{M}\p{N}'’-]+", n.split(" (")[0].lower()) for c, n in named.items()}
    stems = {c: [stem(w) for w in ws] for c, ws in words.items()}
    df = Counter(s for ss in stems.values() for s in set(ss))
    limit = max(1.0, len(named) / 5)
    hit = stopped = common = dup = 0
    for c in named:
        lab = Counter(true[labels == c].tolist()).most_common(1)[0][0]
        lab_stems = {stem(w) for w in lab.lower().split("_") if w}
        hit += bool(lab_stems & set(stems[c]))
        stopped += any(w in stop for w in words[c])
        common += any(df[s] > limit for s in set(stems[c]))
        dup += len(set(stems[c])) < len(stems[c])
    n = max(1, len(named))
    return {"clusters": len(named), "label_word": hit / n, "stop_word": stopped / n, "over_fifth": common / n,
            "same_stem_twice": dup / n, "examples": [named[c] for c in sorted(named)[:8]]}


def render(started: str, data: Path, before_rev: str, before: dict, after: dict, noise: float, secs: float,
           how: str) -> str:
    from bench.common import machine, versions

    rows = [("clusters named", "clusters", "{:d}"),
            ("name contains a word of the majority label", "label_word", "{:.1%}"),
            ("name contains an English stop word (stopwords-iso)", "stop_word", "{:.1%}"),
            ("name has a word in > 1/5 of all names", "over_fifth", "{:.1%}"),
            ("name has two forms of one stem", "same_stem_twice", "{:.1%}")]
    lines = [f"### Cluster-name quality on banking77, {started}", "",
             f"Machine: {machine()}.  Libraries: {versions()}.  Command: `python -m bench.name_quality`; "
             f"{secs:.0f} s in all; the map {how}.  Data: {data.name} "
             f"({int(round(noise * 100))}% of rows unclustered); default "
             f"map (all-MiniLM-L6-v2, UMAP, HDBSCAN), the same clusters named by `core.stages.naming` at {before_rev} "
             "(before) and now (after).  Label words are compared Snowball-stemmed.", "",
             "| figure | before | after |", "|---|---:|---:|"]
    lines += [f"| {label} | {fmt.format(before[k])} | {fmt.format(after[k])} |" for label, k, fmt in rows]
    lines += ["", "First names (cluster 0-7), before: " + "; ".join(f"`{n}`" for n in before["examples"]),
              "", "After: " + "; ".join(f"`{n}`" for n in after["examples"]), ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.name_quality", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=BANKING77)
    ap.add_argument("--before-rev", default=BEFORE_REV)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sieve_name_quality")
    ap.add_argument("--no-write", action="store_true", help="print the section instead of adding it to RESULTS.md")
    a = ap.parse_args(argv)
    if not a.data.is_file():
        print(f"bench.name_quality: {a.data} not found (banking77.parquet lives in ../shared/data); "
              "pass --data PATH", file=sys.stderr)
        raise SystemExit(2)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t0 = time.perf_counter()
    a.cache.mkdir(parents=True, exist_ok=True)
    arrays, how = _map(a.data, a.cache, lambda s: print(s, file=sys.stderr))
    d = np.load(arrays, allow_pickle=False)
    labels, true = d["labels"], d["true"]
    before = score(_names_at(a.before_rev, arrays), labels, true)
    after = score(_names_now(arrays), labels, true)
    section = render(started, a.data, a.before_rev, before, after, float((labels < 0).mean()), time.perf_counter() - t0,
                     how)
    print(section)
    if not a.no_write:
        from bench.common import RESULTS, prepend

        prepend(RESULTS, section)


if __name__ == "__main__":
    main()
