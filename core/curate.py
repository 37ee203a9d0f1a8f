"""Curate: a user's edits of a map's clusters -- rename, merge, split -- applied on top of
the clusters HDBSCAN found.

The edits are an ordered list of small dicts (the same list in the workspace, in the
manifest and in ``sieve curate EDITS.json``)::

    [{"op": "rename", "cluster": 3, "name": "refunds"},
     {"op": "merge", "clusters": [1, 4]},
     {"op": "split", "cluster": 2, "k": 2, "seed": 0}]

Each edit names cluster ids as they are *after* the edits before it.

- ``rename``: a new name for one cluster (ids and rows unchanged).
- ``merge``: two or more clusters become one, with the smallest of their ids; the others'
  ids are not reused.
- ``split``: re-cluster only that cluster's rows, with k-means (scikit-learn's
  ``KMeans``, ``n_init=10``, seeded) on the projection HDBSCAN clustered on.  The
  biggest part keeps the id; the others get new ids above every id used so far.
  Unclustered rows whose soft membership pointed at the split cluster follow
  ``KMeans.predict``.

A merged or split cluster is named again from its c-TF-IDF keywords (as the label stage
does); every other cluster keeps its name and keywords.  Unclustered rows (-1) cannot be
edited.  Everything here is pure (arrays in, arrays out) except :func:`run_curate` and
:func:`load_curated`, which store and read the result as a workspace artifact.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.stages.cluster import NOISE
from core.stages.dataset import load_texts
from core.stages.embed import load_embeddings
from core.stages.naming import ClusterInfo, LabelParams, label_clusters, load_labels
from core.store.artifacts import read_json_file, stage_key
from core.store.workspace import SieveError, Workspace

OPS = ("rename", "merge", "split")
EDITS_VERSION = 1
MAX_NAME = 80
_FIELDS = {"rename": {"op", "cluster", "name"}, "merge": {"op", "clusters"}, "split": {"op", "cluster", "k", "seed"}}


def _int(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{what} must be a whole number, got {v!r}")
    return int(v)


def _normalise_one(e: Any) -> dict:
    if not isinstance(e, dict):
        raise ValueError(f"must be an object like {{\"op\": \"rename\", ...}}, got {type(e).__name__}")
    op = e.get("op")
    if op not in OPS:
        raise ValueError(f"op must be one of {', '.join(OPS)}, got {op!r}")
    extra = set(e) - _FIELDS[op]
    if extra:
        raise ValueError(f"unknown field(s) {', '.join(sorted(extra))}; {op} takes {', '.join(sorted(_FIELDS[op]))}")
    if op == "rename":
        name = e.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError("name must be a non-empty string")
        name = " ".join(name.split())
        if len(name) > MAX_NAME:
            raise ValueError(f"name must be at most {MAX_NAME} characters, got {len(name)}")
        return {"op": op, "cluster": _int(e.get("cluster"), "cluster"), "name": name}
    if op == "merge":
        ids = e.get("clusters")
        if not isinstance(ids, (list, tuple)):
            raise ValueError("clusters must be a list of cluster ids")
        ids = [_int(c, "each of clusters") for c in ids]
        if len(set(ids)) < 2:
            raise ValueError(f"clusters must name two or more different clusters, got {ids}")
        return {"op": op, "clusters": sorted(set(ids))}
    k = _int(e.get("k", 2), "k")
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    seed = _int(e.get("seed", 0), "seed")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    return {"op": op, "cluster": _int(e.get("cluster"), "cluster"), "k": k, "seed": seed}


def normalise_edits(edits: Any) -> list[dict]:
    """The edit list in its canonical form (defaults filled in, merge ids sorted).

    Raises :class:`SieveError` naming the bad edit, e.g. ``edit 2 (merge): clusters
    must name two or more different clusters``."""
    if not isinstance(edits, (list, tuple)):
        raise SieveError(f"edits must be a JSON list of edits, got {type(edits).__name__}")
    out = []
    for i, e in enumerate(edits, 1):
        try:
            out.append(_normalise_one(e))
        except ValueError as exc:
            op = e.get("op") if isinstance(e, dict) else None
            raise SieveError(f"edit {i}" + (f" ({op})" if op in OPS else "") + f": {exc}") from None
    return out


def read_edits(path: Path | str) -> list[dict]:
    """Read and check an edits file (a JSON list, or ``{"edits": [...]}``)."""
    p = Path(path)
    raw = read_json_file(p, "edits file")
    if isinstance(raw, dict) and "edits" in raw:
        raw = raw["edits"]
    try:
        return normalise_edits(raw)
    except SieveError as exc:
        raise SieveError(f"edits file {p}: {exc}") from None


@dataclass
class Curated:
    labels: np.ndarray  # (n,) int32, -1 = unclustered
    soft_labels: np.ndarray | None  # (n,) int32, or None when the map has none
    clusters: list[ClusterInfo]  # one per label, noise last


def _split(points: np.ndarray, members: np.ndarray, k: int, seed: int):
    """k-means parts of ``members`` (positions); returns (part per member, fitted model)."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=10, random_state=seed)
    part = km.fit_predict(np.asarray(points[members], dtype=np.float64))
    return part, km


def _apply_split(labels: np.ndarray, soft: np.ndarray | None, points: np.ndarray, e: dict, next_id: int,
                 where: str) -> list[int]:
    """Split cluster ``e["cluster"]`` in place (``labels`` and ``soft``); returns the ids of its parts."""
    c, k = e["cluster"], e["k"]
    members = np.nonzero(labels == c)[0]
    if len(members) < k:
        raise SieveError(f"{where}: cluster {c} has {len(members)} row(s), fewer than k={k}")
    part, km = _split(points, members, k, e["seed"])
    sizes = np.bincount(part, minlength=k)
    first = np.array([members[part == j].min() if sizes[j] else len(labels) for j in range(k)])
    order = [int(j) for j in np.lexsort((first, -sizes)) if sizes[j] > 0]  # biggest part first
    new_id = {order[0]: c}
    for j in order[1:]:
        new_id[j] = next_id
        next_id += 1
    mapping = np.array([new_id.get(j, c) for j in range(k)], dtype=np.int32)
    labels[members] = mapping[part]
    if soft is not None:  # unclustered rows that leaned to the split cluster lean to its nearest part
        stray = np.nonzero((soft == c) & (labels == NOISE))[0]
        if len(stray):
            soft[stray] = mapping[km.predict(np.asarray(points[stray], dtype=np.float64))]
    return [new_id[j] for j in order]


def apply_edits(labels: np.ndarray, clusters: Sequence[ClusterInfo], edits: Sequence[dict], *,
                points: np.ndarray, texts: Sequence[str], vectors: np.ndarray, row_ids: np.ndarray,
                soft_labels: np.ndarray | None = None, label_params: LabelParams = LabelParams()) -> Curated:
    """Apply ``edits`` (see the module docstring) to a map's ``labels`` (n,) and ``clusters``.

    ``points`` (n, d) is the projection HDBSCAN ran on (splits re-cluster it), ``texts``,
    ``vectors`` (n, dim) and ``row_ids`` (n,) name the new clusters (c-TF-IDF keywords,
    representatives).  Raises :class:`SieveError` naming the first bad edit."""
    edits = normalise_edits(edits)
    labels = np.asarray(labels, dtype=np.int32).copy()
    soft = None if soft_labels is None else np.asarray(soft_labels, dtype=np.int32).copy()
    info = {c.id: replace(c, keywords=list(c.keywords), representatives=list(c.representatives)) for c in clusters}
    present = {int(c) for c in np.unique(labels)}
    next_id = max([c for c in present | set(info) if c >= 0], default=-1) + 1
    fresh: set[int] = set()  # clusters to name again from their keywords
    renamed: dict[int, str] = {}  # names the user gave (win over keywords)
    for i, e in enumerate(edits, 1):
        where = f"edit {i} ({e['op']})"
        ids = e["clusters"] if e["op"] == "merge" else [e["cluster"]]
        for c in ids:
            if c == NOISE:
                raise SieveError(f"{where}: unclustered rows (-1) cannot be renamed, merged or split")
            if c not in present:
                raise SieveError(f"{where}: cluster {c} does not exist (clusters now: "
                                 f"{', '.join(str(x) for x in sorted(present) if x >= 0)})")
        if e["op"] == "rename":
            current = {c: renamed.get(c, info[c].name if c in info and c not in fresh else None) for c in present}
            taken = {v: c for c, v in current.items() if v is not None and c != e["cluster"]}
            if e["name"] in taken:
                raise SieveError(f"{where}: the name {e['name']!r} is already cluster {taken[e['name']]}'s name")
            renamed[e["cluster"]] = e["name"]
        elif e["op"] == "merge":
            keep, gone = ids[0], ids[1:]
            hit = np.isin(labels, gone)
            labels[hit] = keep
            if soft is not None:
                soft[np.isin(soft, gone)] = keep
            for g in gone:
                present.discard(g)
                info.pop(g, None)
                renamed.pop(g, None)
            renamed.pop(keep, None)
            fresh.difference_update(gone)
            fresh.add(keep)
        else:
            c = e["cluster"]
            new_ids = _apply_split(labels, soft, points, e, next_id, where)
            next_id = max([next_id, *[x + 1 for x in new_ids]])
            present.update(new_ids)
            fresh.update(new_ids)
            renamed.pop(c, None)
    if soft is not None:
        soft[labels >= 0] = labels[labels >= 0]
    return Curated(labels, soft, _named(labels, info, fresh, renamed, texts, vectors, row_ids, label_params))


def _named(labels, info: dict[int, ClusterInfo], fresh: set[int], renamed: dict[int, str], texts, vectors,
           row_ids, label_params: LabelParams) -> list[ClusterInfo]:
    """One ClusterInfo per label: kept clusters keep name/keywords; ``fresh`` ones are labelled
    again (a suffix " (2)" keeps names distinct); ``renamed`` names win."""
    ids, counts = np.unique(labels, return_counts=True)
    size = dict(zip(ids.tolist(), counts.tolist()))
    if fresh:
        auto = {c.id: c for c in label_clusters(texts, labels, vectors, row_ids, label_params)}
        used = {renamed.get(c, info[c].name) for c in size if c not in fresh and c in info} | set(renamed.values())
        for c in sorted(fresh):
            new = auto[c]
            name, n = new.name, 1
            while name in used:
                n += 1
                name = f"{new.name} ({n})"
            used.add(name)
            info[c] = replace(new, name=name)
    out = [replace(info[c], size=int(size[c]), name=renamed.get(c, info[c].name)) for c in size]
    return sorted(out, key=lambda c: (c.id == NOISE, c.id))


# -- the workspace ------------------------------------------------------------------------------

META_EDITS = "edits"  # + ":" + label key -> {"version": 1, "edits": [...]} (the map's current edits)


def curate_key(label_key: str, edits: Sequence[dict]) -> str:
    """The content key of a curated map: the base map's label key, the edits and their version."""
    return stage_key("curate", {"version": EDITS_VERSION, "edits": normalise_edits(edits)}, label_key)


def stored_edits(ws: Workspace, label_key: str) -> list[dict]:
    """The edits the workspace keeps for the map with this label key ([] when none)."""
    d = ws.get_meta(f"{META_EDITS}:{label_key}") or {}
    return normalise_edits(d.get("edits", []))


def store_edits(ws: Workspace, label_key: str, edits: Sequence[dict]) -> None:
    ws.set_meta(f"{META_EDITS}:{label_key}", {"version": EDITS_VERSION, "edits": normalise_edits(edits)})


def run_curate(ws: Workspace, keys, edits: Sequence[dict],
               label_params: LabelParams = LabelParams()) -> tuple[str, bool]:
    """Apply ``edits`` to the map ``keys`` (a ``MapKeys``) and store the result as the
    ``curate`` artifact (written atomically, cached by :func:`curate_key`).  Returns (key, cached)."""
    edits = normalise_edits(edits)
    key = curate_key(keys.label, edits)
    if ws.has_artifact("curate", key):
        return key, True
    clus, _ = ws.load_artifact("cluster", keys.cluster)
    proj, _ = ws.load_artifact("project", keys.project)
    row_ids, vectors = load_embeddings(ws, keys.embed)
    text_ids, texts, _ = load_texts(ws)
    if not np.array_equal(np.asarray(row_ids), text_ids):
        raise SieveError("the dataset changed since the embeddings were computed; re-run the map")
    soft = np.asarray(clus["soft_labels"]) if "soft_labels" in clus else None
    cur = apply_edits(np.asarray(clus["labels"]), load_labels(ws, keys.label), edits, points=proj["xnd"],
                      texts=texts, vectors=vectors, row_ids=text_ids, soft_labels=soft, label_params=label_params)
    arrays = {"labels": cur.labels, "row_ids": np.asarray(row_ids, dtype=np.int64)}
    if cur.soft_labels is not None:
        arrays["soft_labels"] = cur.soft_labels
    ws.save_artifact("curate", key, arrays, {"parent": keys.label, "version": EDITS_VERSION, "edits": edits,
                                            "clusters": [c.to_dict() for c in cur.clusters]})
    return key, False


def load_curated(ws: Workspace, key: str) -> tuple[dict[str, np.ndarray], list[ClusterInfo], list[dict]]:
    """(arrays: labels, row_ids, maybe soft_labels; clusters; edits) of a curate artifact."""
    arrays, meta = ws.load_artifact("curate", key)
    return arrays, [ClusterInfo(**d) for d in meta["clusters"]], list(meta.get("edits", []))
