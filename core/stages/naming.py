"""Label: a readable name per cluster from class-based TF-IDF keywords, plus its
size and the rows nearest its centroid."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from core.encoders.long_text import max_text_chars
from core.stages.base import StageResult, stage_result
from core.stages.cluster import NOISE, NOISE_NAME
from core.stages.dataset import load_texts
from core.stages.embed import load_embeddings
from core.stages.words import CJK, document_terms, script_of
from core.store.artifacts import stage_key
from core.store.workspace import SieveError, Workspace

NAME_POOL = 24  # terms beyond n_keywords a name may draw on when the one-fifth rule takes words away
NAMING_VERSION = 2  # 2: Unicode/CJK tokens, multilingual stop words, stems, the one-fifth rule


@dataclass(frozen=True)
class LabelParams:
    """How clusters are named: c-TF-IDF keywords per cluster (Grootendorst 2022, BERTopic) and
    the representative rows nearest each cluster's centroid."""
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
    """One cluster's name, size, keywords and representative rows (as stored in the label artifact)."""
    id: int
    name: str
    keywords: list[str]
    size: int
    representatives: list[int] = field(default_factory=list)  # row ids, nearest the centroid first

    def to_dict(self) -> dict:
        return asdict(self)


Term = tuple[str, str, float]  # (key: the stem counted, surface: the word shown, c-TF-IDF score)


def class_term_counts(texts: Sequence[str], labels: np.ndarray):
    """(class ids, keys, counts, surfaces): ``counts`` a CSR (n_classes, n_keys) float64 of
    each key's occurrences per class (tokens, stop words and stems of :mod:`core.stages.words`);
    ``surfaces[(class_pos, key_pos)]`` a Counter of the words as written."""
    import scipy.sparse as sp

    ids = sorted(set(int(x) for x in labels))
    where = {c: j for j, c in enumerate(ids)}
    vocab: dict[str, int] = {}
    rows, cols = [], []
    surfaces: dict[tuple[int, int], Counter] = {}
    for terms, c in zip(document_terms(texts), labels):
        j = where[int(c)]
        for key, surface in terms:
            k = vocab.setdefault(key, len(vocab))
            rows.append(j)
            cols.append(k)
            seen = surfaces.get((j, k))
            if seen is None:
                seen = surfaces[(j, k)] = Counter()
            seen[surface] += 1
    counts = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(ids), len(vocab)), dtype=np.float64)
    counts.sum_duplicates()
    return ids, list(vocab), counts, surfaces


def ctfidf_terms(texts: Sequence[str], labels: np.ndarray, n_terms: int) -> dict[int, list[Term]]:
    """Per label, its ``n_terms`` best terms by class-based TF-IDF (Grootendorst 2022, BERTopic's
    ``ClassTfidfTransformer``): tf of term t in class c (counts L1-normalised per class) times
    idf = log(1 + A / f_t), A the average number of terms per class and f_t the term's
    frequency over all classes.  So a word frequent across clusters is down-weighted.
    Ties are broken by key, so the result is deterministic."""
    ids, keys, counts, surfaces = class_term_counts(texts, labels)
    if not keys:
        return {c: [] for c in ids}
    totals = np.asarray(counts.sum(axis=1)).ravel()
    freq = np.asarray(counts.sum(axis=0)).ravel()
    idf = np.log1p(max(totals.mean(), 1.0) / np.where(freq == 0, 1, freq))
    scores = counts.multiply(1.0 / np.where(totals == 0, 1, totals)[:, None]).multiply(idf[None, :]).tocsr()
    key_arr = np.asarray(keys, dtype=object)
    out = {}
    for j, c in enumerate(ids):
        row = scores.getrow(j)
        order = np.lexsort((key_arr[row.indices].astype(str), -row.data))[:n_terms]
        out[c] = [(keys[k], surfaces[(j, k)].most_common(1)[0][0], float(v))
                  for k, v in zip(row.indices[order], row.data[order]) if v > 0]
    return out


def ctfidf_keywords(texts: Sequence[str], labels: np.ndarray, n_keywords: int) -> dict[int, list[str]]:
    """Top class-based TF-IDF words per label, each shown in its most frequent written form in
    that class (see :func:`ctfidf_terms`)."""
    return {c: [t[1] for t in terms] for c, terms in ctfidf_terms(texts, labels, n_keywords).items()}


def name_words(ranked: dict[int, list[Term]], n_words: int) -> dict[int, list[str]]:
    """Up to ``n_words`` name words per cluster, from its ranked c-TF-IDF terms, such that no
    word (by key, i.e. stem) is in more than a fifth of the names (at least one name may
    always use it).  Words are handed out round by round: in each round every cluster takes
    its best word still free; where more clusters want a word than may have it, those where
    it scores highest get it.  CJK bigrams that share a character with a word already in the
    name are skipped (咖啡 / 啡店)."""
    cap = max(1, int(len(ranked) / 5))
    used: Counter = Counter()
    chosen: dict[int, list[Term]] = {c: [] for c in ranked}
    nxt = dict.fromkeys(ranked, 0)
    for _ in range(n_words):
        waiting = set(ranked)
        while waiting:  # each pass gives the highest bid its word, so it ends
            bids = []
            for c in sorted(waiting):
                term = _next_term(ranked[c], nxt, c, chosen[c], used, cap)
                if term is None:
                    waiting.discard(c)
                else:
                    bids.append((-term[2], c, term))
            for _, c, term in sorted(bids, key=lambda b: (b[0], b[1])):
                if used[term[0]] < cap:
                    used[term[0]] += 1
                    chosen[c].append(term)
                    waiting.discard(c)
    return {c: [t[1] for t in sorted(ts, key=lambda t: -t[2])] for c, ts in chosen.items()}


def _next_term(terms: list[Term], nxt: dict, c: int, mine: list[Term], used: Counter, cap: int) -> Term | None:
    """Cluster c's best remaining term that is free, advancing its cursor past the others."""
    while nxt[c] < len(terms):
        t = terms[nxt[c]]
        taken = used[t[0]] >= cap or any(t[0] == m[0] or _cjk_overlap(t[1], m[1]) for m in mine)
        if not taken:
            return t
        nxt[c] += 1
    return None


def _cjk_overlap(a: str, b: str) -> bool:
    return script_of(a[0]) == CJK and script_of(b[0]) == CJK and bool(set(a) & set(b))


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
    ranked = ctfidf_terms([texts[i] for i in sample], labels[sample], params.n_keywords + NAME_POOL)
    names = name_words({c: t for c, t in ranked.items() if c != NOISE}, params.n_name_words)

    infos, seen = [], {}
    for c in sorted(set(labels.tolist()), key=lambda x: (x == NOISE, x)):
        members = np.nonzero(labels == c)[0]
        kws = [t[1] for t in ranked.get(int(c), [])[: params.n_keywords]]
        if c == NOISE:
            name = NOISE_NAME
        else:
            name = " / ".join(names.get(int(c), [])) or f"cluster {c}"
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name} ({seen[name]})"
        reps = members[representatives(vectors, members, params.n_representatives)]
        infos.append(ClusterInfo(int(c), name, kws, int(len(members)), [int(row_ids[r]) for r in reps]))
    return infos


def run_label(ws: Workspace, cluster_key: str, embed_key: str, params: LabelParams = LabelParams()) -> tuple[str, bool]:
    """Name the clusters of ``cluster_key`` from the texts and the vectors of ``embed_key``;
    returns (label artifact key, cached).  Raises SieveError when the dataset changed since."""
    key = stage_key("label", {"params": params, "naming": NAMING_VERSION}, cluster_key)
    if ws.has_artifact("label", key):
        return key, True
    arrays, _ = ws.load_artifact("cluster", cluster_key)
    row_ids, vectors = load_embeddings(ws, embed_key)
    text_ids, texts, _ = load_texts(ws)
    if not np.array_equal(np.asarray(row_ids), text_ids) or not np.array_equal(np.asarray(arrays["row_ids"]), text_ids):
        raise SieveError("the dataset changed since the embeddings were computed; re-run the map")
    cap = max_text_chars()  # a huge cell is named from its first characters, as it is embedded
    texts = [t if len(t) <= cap else t[:cap] for t in texts]
    infos = label_clusters(texts, np.asarray(arrays["labels"]), np.asarray(vectors), text_ids, params)
    ws.save_artifact("label", key, {}, {"parent": cluster_key, "params": params,
                                        "clusters": [i.to_dict() for i in infos]})
    return key, False


def load_labels(ws: Workspace, key: str) -> list[ClusterInfo]:
    """The clusters' :class:`ClusterInfo` list of the label artifact ``key``."""
    _, meta = ws.load_artifact("label", key)
    return [ClusterInfo(**d) for d in meta["clusters"]]


def run(ws: Workspace, inputs: tuple[str, str], params: LabelParams = LabelParams()) -> StageResult:
    """:func:`run_label` of ``inputs`` = (cluster key, embed key) as a StageResult."""
    cluster_key, embed_key = inputs
    key, cached = run_label(ws, cluster_key, embed_key, params)
    return stage_result(ws, "label", key, cached)
