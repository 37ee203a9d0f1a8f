"""What the commands print on stderr: the dataset, the clusters, the selection and its
metrics, the files written.  Text from data (names, keywords) is never read as markup."""

from __future__ import annotations

import numpy as np
from rich.markup import escape
from rich.table import Table

from .. import queries
from ..workflow_types import Exported
from .console import err, note


def print_dataset(info, cached: bool) -> None:
    """One line about the loaded dataset (rows, empty texts, duplicates, how it was read)."""
    state = " (already loaded)" if cached else ""
    read = f"; delimiter {info.delimiter!r}" if info.delimiter else ""
    read += f"; encoding {info.encoding}" if info.encoding else ""
    err.print(
        f"dataset{state}: {info.n_rows} rows, {info.n_empty} empty or blank text(s) excluded from embedding, "
        f"{info.n_duplicates} exact duplicate(s); text from {info.text.describe()}{read}", highlight=False, soft_wrap=True
    )


def _cluster_table(title: str, rows) -> None:
    t = Table(title=title, show_lines=False)
    for col in ("id", "name", "size", "keywords"):
        t.add_column(col)
    for row in rows:
        t.add_row(*row)
    err.print(t)


def print_clusters(data) -> None:
    """The clusters of a local map (id, name, size, keywords) and its notes."""
    _cluster_table(f"{len([c for c in data.clusters if c.id >= 0])} clusters",
                   [(str(c.id), escape(c.name), str(c.size), escape(", ".join(c.keywords[:6])))  # names may be typed
                    for c in data.clusters])
    for n in data.notes:
        err.print(f"note: {n}")


def print_scaled_clusters(info: dict) -> None:
    """The clusters of a sharded (Ray) map, from its map-info dict."""
    clusters = info.get("clusters") or []
    _cluster_table(f"{len([c for c in clusters if c['id'] >= 0])} clusters over {info['n_rows']} rows",
                   [(str(c["id"]), c["name"], str(c["size"]), ", ".join(c["keywords"][:6])) for c in clusters])


def _fmt(v) -> str:
    return "n/a" if v is None else f"{round(v, 3) + 0.0:.3f}"  # never "-0.000"


def print_selection(data, selection, params, m) -> None:
    """The per-cluster budgets and picks of a selection, then its metrics ``m``
    (core.workflows.report) beside random subsets, then its notes."""
    names = data.cluster_names
    t = Table(title=f"{len(selection)} rows selected" + (f" ({int(selection.tokens.sum()):,} tokens)"
                                                          if selection.tokens is not None else ""))
    for col in ("cluster", "name", "size", f"budget ({params.unit})", "selected"):
        t.add_column(col)
    chosen = dict(zip(*np.unique(selection.clusters, return_counts=True))) if len(selection) else {}
    for c, n in sorted(selection.allocation.items(), key=lambda kv: (kv[0] == -1, kv[0])):
        t.add_row(str(c), names.get(c, str(c)), str(m.counts_full.get(c, 0)), str(n), str(int(chosen.get(c, 0))))
    err.print(t)
    rnd = f" (random: {queries.fmt_distance(m.nn_distance_random)})" if m.nn_distance_random is not None else ""
    nn = queries.fmt_distance(m.nn_distance)
    err.print(f"coverage {m.coverage:.0%} of clusters, JS divergence {m.jsd:.3f}, mean NN distance {nn}{rnd}")
    cmp = Table(title=f"this subset vs random subsets of the same size (mean of {m.n_random})")
    for col in ("metric", "subset", "random", "better"):
        cmp.add_column(col)
    for row in m.comparison():
        cmp.add_row(row["metric"], _fmt(row["subset"]), _fmt(row["random"]), str(row["better"] or ""))
    err.print(cmp)
    for n in selection.notes:
        err.print(f"note: {n}")


def print_exported(e: Exported, *, sharded: bool = False) -> None:
    """The files an export wrote: the rows (and duplicates beside them) and the manifest."""
    if sharded:
        err.print(f"wrote {e.n_rows} rows in {len(e.files)} file(s) to {e.path}")
    else:
        extra = f" (+{e.n_duplicates} duplicate(s) of them)" if e.n_duplicates is not None else ""
        err.print(f"wrote {e.n_rows} rows{extra} to {e.path}")
    err.print(f"wrote manifest to {e.manifest_path}")


def print_reproduced(e: Exported) -> None:
    """The closing line of ``sieve reproduce``: the same ids, and their digest."""
    err.print(f"reproduced: identical {e.n_rows} row ids (sha256 {e.manifest['selected_ids_sha256'][:12]})")


def print_step(name: str, value) -> None:
    """Print a finished workflow step (core.workflows.Events.on_step)."""
    if name == "dataset":
        print_dataset(*value)
    elif name == "embeddings":
        err.print(f"embeddings: {value.n_rows} x {value.dim} from {value.model_id} in {value.n_shards} shard(s) "
                  f"({value.n_computed} computed, {value.n_skipped} already done, {value.workers} worker(s))")
    elif name == "scaled_map":
        res, info = value
        err.print(f"map: {res.n_clusters} clusters fitted on {res.n_sample} sampled rows; {res.n_computed} shard(s) "
                  f"placed, {res.n_skipped} already done")
        print_scaled_clusters(info)
    elif name == "selection":
        print_selection(*value)
    elif name == "export":
        print_exported(value, sharded=value.manifest.get("engine") == "ray")
    elif name == "warning":
        note(value, "warning")
    elif name == "long_texts":
        note(value)
