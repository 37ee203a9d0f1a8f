"""Cluster names in any language (issue 12 kind 7) and name quality (issue 14 A6).

Unicode tokens (accented Latin, Cyrillic, Greek, Arabic, Hebrew, Devanagari), CJK
character bigrams, stopwords-iso stop words judged per document language, Snowball stems
(one name word per stem, shown in its most frequent form), BERTopic's c-TF-IDF weighting,
and the rule that no word is in more than a fifth of the names.  The data are built here.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.stages.cluster import NOISE
from core.stages.dataset import load_texts
from core.stages.naming import ctfidf_keywords, ctfidf_terms, label_clusters, name_words
from core.stages.words import CJK, document_terms, is_stop, script_of, stem, stop_lists, tokenize
from tests.conftest import _build_map
from tests.fakes import TopicEncoder

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


# -- tokens -------------------------------------------------------------------------------------


def test_tokens_keep_every_alphabet_and_split_cjk_into_bigrams():
    toks = lambda s: [t.surface for t in tokenize(s)]  # noqa: E731
    assert toks("Un café serré, l'homme d'affaires") == ["un", "café", "serré", "homme", "affaires"]
    assert toks("Die Stühle aus Eiche") == ["die", "stühle", "aus", "eiche"]
    assert toks("Мои карты не пришли") == ["мои", "карты", "не", "пришли"]
    assert toks("Η θάλασσα είναι ήρεμη") == ["θάλασσα", "είναι", "ήρεμη"]  # one-letter words are out
    assert toks("قهوة عربية في الصباح") == ["قهوة", "عربية", "في", "الصباح"]
    assert toks("שלום עולם") == ["שלום", "עולם"]
    assert toks("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]  # vowel signs (marks) stay inside the word
    assert toks("c++ e-mail the customer's 2024 x") == ["c++", "e-mail", "the", "customer"]  # digits/1-letter out
    assert toks("我在车站") == ["我在", "在车", "车站"]
    assert toks("東京の天気") == ["東京", "京の", "の天", "天気"]
    assert "です" not in toks("東京です")  # bigrams of Hiragana alone are grammar
    assert toks("Café\u0301") == toks("Café\u0301".replace("e\u0301", "é"))  # NFC: one form of é


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_tokens_are_words_of_the_text(text):
    norm = unicodedata.normalize("NFC", text).lower().replace("’", "'")
    for t in tokenize(text):
        assert t.surface in norm and len(t.surface) >= (1 if t.script == CJK else 2)
        assert not t.surface[0].isdigit()


def test_tokenize_never_raises_on_any_text():
    for s in ["", "   ", "\u200b\ufeff", "😀🎉", "1234 5678", "\x00\x01", "a" * 10_000, "ـ،"]:
        assert isinstance(tokenize(s), list)


# -- stop words, languages, stems ---------------------------------------------------------------


def test_stop_words_come_from_many_languages_and_are_judged_per_document():
    lists = stop_lists()
    assert {"en", "fr", "de", "ru", "ar", "el", "he", "zh", "ja"} <= set(lists)
    terms = document_terms(["le café de la gare et la voiture", "my car is red and fast",
                            "car la voiture est rouge", "der Tisch und die Lampe"])
    surfaces = [[s for _, s in t] for t in terms]
    assert surfaces[0] == ["café", "gare", "voiture"]
    assert "car" in surfaces[1] and "my" not in surfaces[1]  # 'car' is a content word in English ...
    assert "car" not in surfaces[2] and "voiture" in surfaces[2]  # ... and a stop word in French
    assert surfaces[3] == ["tisch", "lampe"]


def test_cjk_stop_bigrams():
    cjk = next(t for t in tokenize("的了") if t.script == CJK)
    assert is_stop(cjk, None)  # two stop characters
    assert not is_stop(next(t for t in tokenize("车站") if t.script == CJK), None)


def test_plural_and_singular_are_one_term_shown_in_their_most_frequent_form():
    texts = ["slow tables", "join tables", "tables index", "the table", "cafés noirs", "un café", "les cafés"]
    terms = document_terms(texts)
    keys = {s: k for t in terms for k, s in t}
    assert keys["tables"] == keys["table"] and keys["cafés"] == keys["café"]
    kws = ctfidf_keywords(texts, np.array([0, 0, 0, 0, 1, 1, 1]), 5)
    assert kws[0][0] == "tables" and "table" not in kws[0]  # 3 x tables, 1 x table: one word, shown as 'tables'
    assert kws[1][0] == "cafés" and "café" not in kws[1]
    assert stem("карты", "ru") == stem("карта", "ru") and stem("Tische".lower(), "de") == stem("tisch", "de")


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


# -- the one-fifth rule -------------------------------------------------------------------------


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


# -- clusters in many languages -----------------------------------------------------------------


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


def test_name_quality_bench_without_the_data_says_so(tmp_path, capsys):
    from bench import name_quality

    with pytest.raises(SystemExit) as exc:
        name_quality.main(["--data", str(tmp_path / "banking77.parquet"), "--cache", str(tmp_path / "c")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "banking77.parquet not found" in err and "Traceback" not in err
    assert not (tmp_path / "c").exists()  # nothing written


def test_name_quality_score_counts_label_words_by_stem():
    from bench.name_quality import score

    labels = np.array([0, 0, 1, 1, -1])
    true = np.array(["card_arrival", "card_arrival", "top_up_failed", "top_up_failed", "x"])
    s = score({0: "arrived / delivery", 1: "fee / the", -1: "unclustered"}, labels, true)
    assert s["clusters"] == 2 and s["label_word"] == 0.5 and s["stop_word"] == 0.5
