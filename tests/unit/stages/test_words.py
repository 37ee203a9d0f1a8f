"""core.stages.words (issue 12 kind 7): Unicode tokens (accented Latin, Cyrillic, Greek, Arabic,
Hebrew, Devanagari), CJK character bigrams, stopwords-iso stop words judged per document
language, and Snowball stems (one name word per stem, shown in its most frequent form).
"""

from __future__ import annotations

import unicodedata

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.stages.naming import ctfidf_keywords
from core.stages.words import CJK, document_terms, is_stop, stem, stop_lists, tokenize


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
