"""Label: c-TF-IDF names from topic words, noise named 'unclustered', representatives near the centroid."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.stages.cluster import NOISE, NOISE_NAME
from core.stages.naming import LabelParams, ctfidf_keywords, label_clusters, representatives
from core.stages.words import tokenize
from tests.fakes import blobs_on_sphere

FILLER = ["please", "help", "question", "today", "quick"]
TOPIC_WORDS = {
    0: ["telescope", "nebula", "galaxy"],
    1: ["sourdough", "yeast", "oven"],
    2: ["bicycle", "derailleur", "pedal"],
}


def _docs(seed=0, per=30):
    """Docs of three topics: each mixes its topic words with filler shared by all topics."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for c, words in TOPIC_WORDS.items():
        for _ in range(per):
            parts = list(rng.choice(words, 3)) + list(rng.choice(FILLER, 4))
            rng.shuffle(parts)
            texts.append(" ".join(parts))
            labels.append(c)
    return texts, np.array(labels)


def test_ctfidf_keywords_are_the_topic_words():
    texts, labels = _docs()
    kws = ctfidf_keywords(texts, labels, n_keywords=3)
    for c, words in TOPIC_WORDS.items():
        assert set(kws[c]) == set(words)  # shared filler never outranks a topic's own words


def test_names_contain_topic_words_and_noise_is_unclustered():
    texts, labels = _docs()
    labels = labels.copy()
    labels[::10] = NOISE  # a few rows of each topic are noise
    vectors = np.random.default_rng(0).standard_normal((len(texts), 8)).astype(np.float32)
    row_ids = np.arange(len(texts)) + 1000
    infos = label_clusters(texts, labels, vectors, row_ids, LabelParams(n_keywords=5, n_name_words=2))
    assert [i.id for i in infos] == [0, 1, 2, NOISE]  # noise last
    by_id = {i.id: i for i in infos}
    assert by_id[NOISE].name == NOISE_NAME == "unclustered"
    for c, words in TOPIC_WORDS.items():
        name_words = by_id[c].name.split(" / ")
        assert len(name_words) == 2 and set(name_words) <= set(words)
        assert set(words) <= set(by_id[c].keywords)
        assert not set(by_id[c].keywords[:3]) & set(FILLER)
    assert sum(i.size for i in infos) == len(texts)
    assert by_id[NOISE].size == int((labels == NOISE).sum())
    for i in infos:  # representatives are row ids of the cluster's own rows
        members = set(row_ids[labels == i.id].tolist())
        assert set(i.representatives) <= members and len(i.representatives) == min(5, i.size)


def test_identical_clusters_share_no_name_word_and_empty_clusters_get_a_fallback():
    # issue 14 A6: with 3 named clusters a word may be in one name only (a fifth of 3 < 1),
    # so two identical clusters split their words instead of both being "alpha / beta"
    texts = ["alpha beta", "alpha beta", "alpha beta", "alpha beta", "the and of", "of the"]
    labels = np.array([0, 0, 1, 1, 2, 2])
    infos = label_clusters(texts, labels, np.eye(6, dtype=np.float32), np.arange(6))
    names = [i.name for i in infos]
    assert len(set(names)) == 3
    assert {names[0], names[1]} == {"alpha", "beta"}
    assert names[2] == "cluster 2"  # only stop words: a fallback name, not an empty one


def test_duplicate_names_are_made_unique():
    # 10 clusters: a word may be in 2 names, so two identical clusters can both be "alpha / beta"
    texts, labels = [], []
    for c in range(10):
        words = "alpha beta" if c < 2 else f"topic{c}x word{c}y"
        texts += [words] * 3
        labels += [c] * 3
    infos = label_clusters(texts, np.array(labels), np.eye(30, dtype=np.float32), np.arange(30),
                           LabelParams(n_name_words=2))
    names = [i.name for i in infos]
    assert len(set(names)) == 10
    assert names[0] == "alpha / beta" and names[1] == "alpha / beta (2)"


def test_representatives_are_nearest_the_centroid():
    # one cluster on the unit sphere: 5 rows hug the mean direction, 25 sit 0.5-1 rad away from it
    rng = np.random.default_rng(3)
    centre = np.array([1.0, 0, 0, 0])
    near = blobs_on_sphere([centre], [5], spread=0.01, seed=1)
    u = rng.standard_normal((24, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    u = np.concatenate([u, -u[:1]])  # keep the far rows roughly balanced around the centre
    theta = rng.uniform(0.5, 1.0, size=(25, 1))
    far = np.concatenate([np.cos(theta), np.sin(theta) * u], axis=1)
    vectors = np.concatenate([far[:12], near, far[12:]]).astype(np.float32)
    order = rng.permutation(30)
    vectors = vectors[order]
    near_pos = set(np.nonzero((order >= 12) & (order < 17))[0].tolist())
    members = np.arange(30)
    reps = representatives(vectors, members, 5)
    assert set(reps.tolist()) == near_pos
    # exact definition: the k smallest distances to the members' mean
    d = np.linalg.norm(vectors - vectors.mean(0), axis=1)
    assert reps.tolist() == np.argsort(d, kind="stable")[:5].tolist()
    infos = label_clusters(["x"] * 30, np.zeros(30, int), vectors, np.arange(30) * 2, LabelParams(n_representatives=3))
    assert infos[0].representatives == [int(2 * p) for p in np.argsort(d, kind="stable")[:3]]


def test_real_map_names_come_from_each_topics_vocabulary(sieve_real_map):
    """On the real-model map each cluster's name words are typical of the cluster's main topic."""
    m = sieve_real_map
    texts = m.table.column("text").to_pylist()
    topics = m.topics()
    labels = np.asarray(m.data.labels)
    # the tokenizer core.stages.naming uses
    docs_words = [{t.surface for t in tokenize(x)} for x in texts]
    checked = 0
    for info in m.data.clusters:
        if info.id == NOISE:
            assert info.name == NOISE_NAME
            continue
        members = labels == info.id
        main = max(set(topics[members]), key=lambda t: (topics[members] == t).sum())
        in_topic = topics == main
        assert info.keywords, info
        for w in info.name.split(" (")[0].split(" / "):
            share_in = np.mean([w in docs_words[i] for i in np.nonzero(in_topic)[0]])
            share_out = np.mean([w in docs_words[i] for i in np.nonzero(~in_topic)[0]])
            assert share_in > 3 * share_out, (info.name, w, main)
        checked += 1
    assert checked >= 10
    assert len({c.name for c in m.data.clusters}) == len(m.data.clusters)


# -- parameter validation --------------------------------------------------------------------

LABEL_BAD = {
    "n_keywords": [0, -1, 2.5, "8"],
    "n_name_words": [0, -2, 9, "3"],  # 9 > default n_keywords=8
    "n_representatives": [0, -1, 1.5],
    "max_docs_per_cluster": [0, -10, 100.0],
    "seed": [-1, "0"],
}


def test_label_bad_cases_cover_every_field():
    assert set(LABEL_BAD) == {f.name for f in dataclasses.fields(LabelParams)}


@pytest.mark.parametrize("field,value", [(f, v) for f, vs in LABEL_BAD.items() for v in vs])
def test_label_params_bad_value_names_the_field(field, value):
    with pytest.raises(ValueError) as exc:
        LabelParams(**{field: value})
    assert field in str(exc.value)
