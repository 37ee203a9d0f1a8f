"""Label (core.stages.naming): c-TF-IDF names from topic words (BERTopic weighting), noise named
'unclustered', representatives near the centroid, no word in more than a fifth of the names, and
clusters in many languages named in their own language (issue 12 kind 7)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from core.stages.cluster import NOISE, NOISE_NAME
from core.stages.dataset import load_texts
from core.stages.naming import LabelParams, ctfidf_keywords, ctfidf_terms, label_clusters, name_words, representatives
from core.stages.words import CJK, script_of, stem, tokenize
from tests.conftest import _build_map
from tests.fakes import TopicEncoder, blobs_on_sphere


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


# per language: (content words of its topic, some of its stop words, script of its words)
LANGS = {
    "fr": ("café cafés croissant croissants matin serré noir terrasse expresso boulangerie".split(),
           "le la les du de et un une est pour avec dans très".split(), "Latin"),
    "de": ("Tisch Tische Stuhl Stühle Holz Schreiner Werkstatt Lampe Eiche Hobel".split(),
           "der die das und ist mit ein eine für nicht auf im sehr".split(), "Latin"),
    "ru": ("карта карты карту банк банка кошелёк платёж платежи перевод счёт".split(),
           "и в не на я что с это как по очень".split(), "Cyrillic"),
    "ar": ("المطر الشمس الطقس الرياح الغيوم السماء العاصفة الثلج".split(),
           "في من على إلى عن مع هذا التي".split(), "Arabic"),
    "el": ("θάλασσα παραλία κύματα ήλιος νησί βάρκα λιμάνι άμμος".split(),
           "το και η ο σε με για".split(), "Greek"),
    "he": ("ספר ספרים ספרייה קריאה סופר מדף עמוד כריכה".split(),
           "של את על זה הוא עם".split(), "Hebrew"),
    "zh": ("火车 车站 车票 旅行 出发 铁路 列车 站台".split(), "的 了 是 在 我 很".split(), CJK),
    "ja": ("天気 台風 気温 予報 曇り 晴れ 梅雨 雷雨".split(), "は が の に を で".split(), CJK),
    "en": ("bicycle bicycles pedal pedals derailleur chain wheel wheels saddle spoke".split(),
           "the a is of and to with very".split(), "Latin"),
}


MIXED = ("phone battery charger screen 手机 电池 充电器 屏幕".split(), "the is 的 了".split())


def _rows(per: int = 30, seed: int = 0) -> tuple[list[str], list[str]]:
    """``per`` rows per language (3 topic words + 3 stop words, shuffled) and a mixed
    English/Chinese cluster; returns (texts, language of each row)."""
    rng = np.random.default_rng(seed)
    texts, langs = [], []
    groups = {k: (v[0], v[1]) for k, v in LANGS.items()} | {"mixed": MIXED}
    for lang, (content, stops) in groups.items():
        for i in range(per):
            parts = list(rng.choice(content, 3, replace=False)) + list(rng.choice(stops, 3, replace=False))
            rng.shuffle(parts)
            cjk = lang in ("zh", "ja")
            texts.append(("" if cjk else " ").join(parts) + ("" if cjk else f" {'.!?'[i % 3]}"))
            langs.append(lang)
    return texts, langs


def _check_names(infos, texts: list[str], langs: list[str], labels: np.ndarray) -> dict[str, str]:
    """Every named cluster's name words occur in its rows, are of its language (script and
    topic vocabulary), are no stop words, and no two share a stem; returns lang -> name."""
    out = {}
    for info in infos:
        if info.id == NOISE:
            continue
        members = np.nonzero(labels == info.id)[0]
        lang = max(set(langs[i] for i in members), key=lambda x: sum(langs[i] == x for i in members))
        words = info.name.split(" (")[0].split(" / ")
        assert words and info.name != f"cluster {info.id}", (lang, info.name)
        surfaces = {t.surface for i in members for t in tokenize(texts[i])}
        content, stops = (LANGS[lang][0], LANGS[lang][1]) if lang in LANGS else MIXED
        for w in words:
            assert w in surfaces, (lang, info.name, w)  # the word occurs in the cluster's rows
            assert w not in {s.lower() for s in stops}, (lang, info.name, w)
            if lang in ("zh", "ja"):
                assert all(script_of(ch) == CJK for ch in w) and any(w in c for c in content), (info.name, w)
            elif lang in LANGS:
                assert script_of(w[0]) == LANGS[lang][2] and w in {c.lower() for c in content}, (lang, info.name, w)
            else:
                assert any(w in c for c in content), (info.name, w)
        stems = [stem(w, lang if lang in ("fr", "de", "ru", "ar", "el", "en") else None) for w in words]
        assert len(set(stems)) == len(stems), (lang, info.name)  # table/tables never both
        out[lang] = info.name
    return out


def test_ctfidf_is_bertopic_weighting():
    # tf per class (L1-normalised counts) x log(1 + A / f_t), A = mean terms per class
    texts = ["apple apple pear", "apple kiwi", "plum plum plum fig"]
    labels = np.array([0, 0, 1])
    terms = ctfidf_terms(texts, labels, 10)
    counts = {0: {"appl": 3, "pear": 1, "kiwi": 1}, 1: {"plum": 3, "fig": 1}}
    totals = {c: sum(v.values()) for c, v in counts.items()}
    a = np.mean(list(totals.values()))
    freq = {k: sum(v.get(k, 0) for v in counts.values()) for k in ("appl", "pear", "kiwi", "plum", "fig")}
    for c, got in terms.items():
        for key, _surface, score in got:
            assert score == pytest.approx(counts[c][key] / totals[c] * np.log1p(a / freq[key]))


def test_no_word_in_more_than_a_fifth_of_the_names():
    # 20 clusters all rank 'common' first: at most 4 names may carry it, those where it scores highest
    ranked = {c: [("common", "common", 1.0 + c / 100), (f"own{c}", f"own{c}", 0.5), (f"more{c}", f"more{c}", 0.4)]
              for c in range(20)}
    names = name_words(ranked, 2)
    with_common = sorted(c for c, ws in names.items() if "common" in ws)
    assert with_common == [16, 17, 18, 19]
    assert all(len(ws) == 2 for ws in names.values())  # the others fill up with their own words
    assert names[0] == ["own0", "more0"] and names[19] == ["common", "own19"]


def test_one_fifth_rule_holds_on_names_from_text():
    rng = np.random.default_rng(1)
    texts, labels = [], []
    for c in range(12):  # 'account' is in every cluster's rows
        for _ in range(10):
            texts.append(f"account topic{c}a topic{c}b {rng.choice(['foo', 'bar'])}{c}")
            labels.append(c)
    infos = label_clusters(texts, np.array(labels), np.eye(120, dtype=np.float32), np.arange(120))
    names = [i.name.split(" (")[0].split(" / ") for i in infos]
    assert max(sum(w in n for n in names) for w in {w for n in names for w in n}) <= max(1, 12 // 5)


def test_each_language_cluster_is_named_in_its_own_language():
    texts, langs = _rows()
    order = sorted(set(langs))
    labels = np.array([order.index(x) for x in langs])
    vectors = np.random.default_rng(0).standard_normal((len(texts), 8)).astype(np.float32)
    infos = label_clusters(texts, labels, vectors, np.arange(len(texts)))
    names = _check_names(infos, texts, langs, labels)
    assert set(names) == set(LANGS) | {"mixed"}


def test_cafe_in_every_row_is_a_keyword():
    # shared/cases 09: 'café' (in every row) must be among the cluster's keywords
    texts = ["Un café noir", "Un café serré", "Le café du matin"] + ["a bicycle wheel", "the bicycle chain",
                                                                      "pedal the bicycle"]
    infos = label_clusters(texts, np.array([0, 0, 0, 1, 1, 1]), np.eye(6, dtype=np.float32), np.arange(6))
    assert infos[0].keywords[0] == "café" and infos[0].name.startswith("café")
    assert infos[1].keywords[0] == "bicycle"


def test_mixed_language_map_names_each_cluster_in_its_language(tmp_path):
    """The whole pipeline (CSV ingest -> embed -> UMAP -> HDBSCAN -> label) on a dataset of
    nine languages plus an English/Chinese cluster; a fake encoder puts each language's rows
    in one direction, so HDBSCAN finds the languages."""
    texts, langs = _rows(per=40, seed=3)
    enc = TopicEncoder(dict(zip(texts, langs)), noise=0.1)
    m = _build_map(tmp_path, pa.table({"text": texts, "lang": langs}), enc)
    data = m.data
    row_ids, row_texts, _ = load_texts(m.ws)
    assert np.array_equal(row_ids, data.row_ids) and sorted(row_texts) == sorted(texts)
    row_langs = [dict(zip(texts, langs))[t] for t in row_texts]
    names = _check_names(data.clusters, row_texts, row_langs, np.asarray(data.labels))
    assert len(names) >= 8, names
    for i in data.clusters:  # noise named, every name unique
        assert i.name
    assert len({i.name for i in data.clusters}) == len(data.clusters)
