"""Label: a readable name per cluster from class-based TF-IDF keywords, plus its
size and the rows nearest its centroid."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from .cluster import NOISE, NOISE_NAME
from .workspace import SieveError, Workspace, stage_key


@dataclass(frozen=True)
class LabelParams:
    n_keywords: int = 8
    n_name_words: int = 3
    n_representatives: int = 5
    max_docs_per_cluster: int = 2000
    seed: int = 0

    def __post_init__(self):
        for name in ("n_keywords", "n_name_words", "n_representatives", "max_docs_per_cluster"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise SieveError(f"{name} must be a positive integer, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise SieveError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.n_name_words > self.n_keywords:
            raise SieveError("n_name_words must not exceed n_keywords")


@dataclass
class ClusterInfo:
    id: int
    name: str
    keywords: list[str]
    size: int
    representatives: list[int] = field(default_factory=list)  # row ids, nearest the centroid first

    def to_dict(self) -> dict:
        return asdict(self)


def ctfidf_keywords(texts: Sequence[str], labels: np.ndarray, n_keywords: int) -> dict[int, list[str]]:
    """Top class-based TF-IDF terms per label (BERTopic's weighting: tf * log(1 + A / f_t))."""
    from sklearn.feature_extraction.text import CountVectorizer

    ids = sorted(set(int(x) for x in labels))
    vec = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z0-9+#'-]{1,}\b",
                          lowercase=True, max_features=50_000)
    try:
        docs = vec.fit_transform(texts)
    except ValueError:  # only stop words / no tokens at all
        return {i: [] for i in ids}
    terms = np.asarray(vec.get_feature_names_out())
    label_index = {c: j for j, c in enumerate(ids)}
    import scipy.sparse as sp

    onehot = sp.csr_matrix(
        (np.ones(len(labels)), ([label_index[int(c)] for c in labels], np.arange(len(labels)))),
        shape=(len(ids), len(labels)),
    )
    counts = (onehot @ docs).toarray().astype(np.float64)  # classes x terms
    totals = counts.sum(axis=1, keepdims=True)
    tf = counts / np.where(totals == 0, 1, totals)
    avg_words = max(totals.mean(), 1.0)
    freq = counts.sum(axis=0)
    idf = np.log1p(avg_words / np.where(freq == 0, 1, freq))
    scores = tf * idf
    out = {}
    for c, j in label_index.items():
        row = scores[j]
        top = np.lexsort((terms, -row))[:n_keywords]
        out[c] = [str(terms[t]) for t in top if row[t] > 0]
    return out


def representatives(vectors: np.ndarray, members: np.ndarray, k: int) -> np.ndarray:
    """Positions (into ``members``) of the k rows nearest the members' mean direction."""
    v = np.asarray(vectors[members], dtype=np.float32)
    centroid = v.mean(axis=0)
    dist = np.linalg.norm(v - centroid, axis=1)
    return np.lexsort((members, dist))[:k]


def label_clusters(texts: Sequence[str], labels: np.ndarray, vectors: np.ndarray, row_ids: np.ndarray,
                   params: LabelParams = LabelParams()) -> list[ClusterInfo]:
    """Pure: texts, labels and vectors (all aligned) -> one :class:`ClusterInfo` per label."""
    labels = np.asarray(labels)
    if not (len(texts) == len(labels) == len(vectors) == len(row_ids)):
        raise SieveError("texts, labels, vectors and row_ids must have the same length")
    rng = np.random.default_rng(params.seed)
    sample_pos = []
    for c in sorted(set(labels.tolist())):
        pos = np.nonzero(labels == c)[0]
        if len(pos) > params.max_docs_per_cluster:
            pos = np.sort(rng.choice(pos, params.max_docs_per_cluster, replace=False))
        sample_pos.append(pos)
    sample = np.concatenate(sample_pos)
    keywords = ctfidf_keywords([texts[i] for i in sample], labels[sample], params.n_keywords)

    infos, seen = [], {}
    for c in sorted(set(labels.tolist()), key=lambda x: (x == NOISE, x)):
        members = np.nonzero(labels == c)[0]
        kws = keywords.get(int(c), [])
        if c == NOISE:
            name = NOISE_NAME
        else:
            name = " / ".join(kws[: params.n_name_words]) or f"cluster {c}"
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name} ({seen[name]})"
        reps = members[representatives(vectors, members, params.n_representatives)]
        infos.append(ClusterInfo(int(c), name, kws, int(len(members)), [int(row_ids[r]) for r in reps]))
    return infos


def run_label(ws: Workspace, cluster_key: str, embed_key: str, params: LabelParams = LabelParams()) -> tuple[str, bool]:
    from .embed import load_embeddings
    from .ingest import load_texts

    key = stage_key("label", params, cluster_key)
    if ws.has_artifact("label", key):
        return key, True
    arrays, _ = ws.load_artifact("cluster", cluster_key)
    row_ids, vectors = load_embeddings(ws, embed_key)
    text_ids, texts, _ = load_texts(ws)
    if not np.array_equal(np.asarray(row_ids), text_ids) or not np.array_equal(np.asarray(arrays["row_ids"]), text_ids):
        raise SieveError("the dataset changed since the embeddings were computed; re-run the map")
    infos = label_clusters(texts, np.asarray(arrays["labels"]), np.asarray(vectors), text_ids, params)
    ws.save_artifact("label", key, {}, {"parent": cluster_key, "params": params,
                                        "clusters": [i.to_dict() for i in infos]})
    return key, False


def load_labels(ws: Workspace, key: str) -> list[ClusterInfo]:
    _, meta = ws.load_artifact("label", key)
    return [ClusterInfo(**d) for d in meta["clusters"]]
