"""Words for cluster names in any language: Unicode tokens, each document's language,
stop words and stems.

* Tokens: runs of Unicode letters and marks (``regex``'s ``\\p{L}\\p{M}``) of at least two
  characters, digits allowed after the first letter, inner ``'`` / ``-`` kept (``e-mail``),
  short elided prefixes dropped (``l'homme`` -> ``homme``) and a trailing ``+``/``#`` kept
  (``c++``).  Han, Hiragana and Katakana have no spaces between words, so their runs become
  overlapping character bigrams (the standard dictionary-free CJK indexing, as in Lucene's
  CJKBigramFilter); bigrams of Hiragana alone (Japanese grammar) are dropped.
* Language: per document and per script, the language whose stop-word list
  (stopwords-iso, 58 languages, shipped in the ``stopwordsiso`` wheel) matches most of the
  document's tokens in that script; ties and documents with no match go to the language
  that matches most across the whole corpus.  So ``car`` is a stop word in a French
  sentence and a content word in an English one.
* Stop words: the document language's stopwords-iso list.  A CJK bigram is a stop word when
  it is in the zh/ja list or both its characters are.
* Stems: the Snowball stemmer of that language (``snowballstemmer``, 30+ languages), so
  ``table``/``tables`` or ``карта``/``карты`` count as one term; other languages keep the
  lower-cased word.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Iterable, NamedTuple, Sequence

import regex
import snowballstemmer
import stopwordsiso

CJK = "cjk"
_CJK_CLASS = r"\p{Han}\p{Hiragana}\p{Katakana}" + "\u30fc"  # ー, the long-vowel mark
TOKEN_RE = regex.compile(
    rf"(?P<cjk>[{_CJK_CLASS}]+)"
    rf"|(?P<word>[[\p{{L}}\p{{M}}]--[{_CJK_CLASS}]][[\p{{L}}\p{{M}}\p{{N}}]--[{_CJK_CLASS}]]*"
    rf"(?:['’\-][[\p{{L}}\p{{M}}\p{{N}}]--[{_CJK_CLASS}]]+)*[+#]*)",
    regex.VERSION1,
)
HIRAGANA_RE = regex.compile(r"^\p{Hiragana}+$")
SCRIPTS = ("Latin", "Cyrillic", "Greek", "Arabic", "Hebrew", "Hangul", "Thai", "Devanagari", "Bengali", "Gujarati",
           "Armenian", "Georgian", "Ethiopic", "Tamil")
_SCRIPT_RE = {s: regex.compile(rf"\p{{Script={s}}}") for s in SCRIPTS}
_CJK_CHAR_RE = regex.compile(rf"[{_CJK_CLASS}]")

# ISO 639-1 (stopwords-iso) -> Snowball algorithm name (snowballstemmer.algorithms())
SNOWBALL = {"ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "cs": "czech", "da": "danish",
            "nl": "dutch", "en": "english", "eo": "esperanto", "et": "estonian", "fi": "finnish", "fr": "french",
            "de": "german", "el": "greek", "hi": "hindi", "hu": "hungarian", "id": "indonesian", "ga": "irish",
            "it": "italian", "lt": "lithuanian", "no": "norwegian", "fa": "persian", "pl": "polish",
            "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian", "st": "sesotho", "es": "spanish",
            "sv": "swedish", "ta": "tamil", "tr": "turkish"}
# the language a script's words are stemmed as when no stop word says otherwise
SCRIPT_DEFAULT = {"Latin": "en", "Cyrillic": "ru", "Greek": "el", "Arabic": "ar", "Hebrew": "he", CJK: "zh"}


@lru_cache(maxsize=65536)
def script_of(ch: str) -> str:
    """The Unicode script of one character: one of :data:`SCRIPTS`, ``"cjk"`` (Han, Hiragana,
    Katakana) or ``"other"``."""
    if _CJK_CHAR_RE.match(ch):
        return CJK
    for name, pat in _SCRIPT_RE.items():
        if pat.match(ch):
            return name
    return "other"


class Token(NamedTuple):
    """A word (or CJK run) and the script it is written in."""
    surface: str  # as shown in a name: lower-cased, NFC
    script: str  # script_of its first character


def tokenize(text: str) -> list[Token]:
    """Tokens of one text (see the module docstring), in order.  Never raises on any str."""
    out = []
    for cjk, word in TOKEN_RE.findall(unicodedata.normalize("NFC", text).lower()):
        if cjk:
            out.extend(_cjk_tokens(cjk))
        else:
            t = _word_token(word)
            if t is not None:
                out.append(t)
    return out


@lru_cache(maxsize=100_000)
def _cjk_tokens(run: str) -> tuple[Token, ...]:
    grams = [run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)]
    return tuple(Token(g, CJK) for g in grams if not HIRAGANA_RE.match(g))


@lru_cache(maxsize=200_000)
def _word_token(word: str) -> Token | None:
    w = word.replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    head, apo, tail = w.partition("'")
    if apo and len(head) <= 2:  # elision: l'homme, d'accord, qu'il
        w = tail
    return Token(w, script_of(w[0])) if len(w) >= 2 else None


@lru_cache(maxsize=1)
def stop_lists() -> dict[str, frozenset[str]]:
    """stopwords-iso lists by ISO 639-1 code, lower-cased and NFC (package ``stopwordsiso``)."""
    return {lang: frozenset(unicodedata.normalize("NFC", w).lower() for w in stopwordsiso.stopwords(lang))
            for lang in sorted(stopwordsiso.langs())}


@lru_cache(maxsize=1)
def _lang_script() -> dict[str, str]:
    """Each stop list's script: the script of most of its words' first letters."""
    return {lang: Counter(script_of(w[0]) for w in words if w).most_common(1)[0][0]
            for lang, words in stop_lists().items() if words}


@lru_cache(maxsize=1)
def _word_langs() -> dict[tuple[str, str], tuple[str, ...]]:
    """(word, script) -> the languages of that script whose stop list holds the word."""
    out: dict[tuple[str, str], list[str]] = {}
    scripts = _lang_script()
    for lang, words in stop_lists().items():
        for w in words:
            out.setdefault((w, scripts.get(lang, "other")), []).append(lang)
    return {k: tuple(v) for k, v in out.items()}


def _votes(tokens: Iterable[Token]) -> dict[str, Counter]:
    """Per script, how many tokens each language's stop list holds."""
    wl = _word_langs()
    votes: dict[str, Counter] = {}
    for t in tokens:
        langs = wl.get(t)
        if t.script not in votes:
            votes[t.script] = Counter()
        if langs:
            votes[t.script].update(langs)
    return votes


@lru_cache(maxsize=1)
def _cjk_stops() -> frozenset[str]:
    lists = stop_lists()
    return lists.get("zh", frozenset()) | lists.get("ja", frozenset())


def is_stop(t: Token, lang: str | None) -> bool:
    """Whether a token is a stop word of ``lang`` (ISO 639-1); CJK tokens: of the zh/ja lists,
    or a bigram of two stop characters."""
    if t.script == CJK:
        cjk = _cjk_stops()
        return t.surface in cjk or (len(t.surface) == 2 and all(ch in cjk for ch in t.surface))
    return lang is not None and t.surface in stop_lists().get(lang, ())


@lru_cache(maxsize=8)
def _stemmer(lang: str):
    return snowballstemmer.stemmer(SNOWBALL[lang])


@lru_cache(maxsize=200_000)
def stem(word: str, lang: str | None) -> str:
    """``word``'s Snowball stem in ``lang`` (ISO 639-1), or the word itself when Snowball has
    no stemmer for that language.  CJK bigrams are their own stems."""
    if lang not in SNOWBALL:
        return word
    return _stemmer(lang).stemWord(word) or word


def document_terms(texts: Sequence[str]) -> list[list[tuple[str, str]]]:
    """Per text, its content terms as ``(key, surface)`` pairs: ``key`` the stem that counts in
    c-TF-IDF, ``surface`` the lower-cased word as written.  Stop words are gone.

    Each text's language (per script) is the one whose stop words it uses most; ties and
    texts without stop words go to the corpus's most used language of that script.  Stop
    words are judged per text; a word's stem is taken in the language most of its
    occurrences are in, so one word has one key across the corpus."""
    tokens = [tokenize(t) for t in texts]
    doc_votes = [_votes(ts) for ts in tokens]
    corpus: dict[str, Counter] = {}
    for v in doc_votes:
        for script, c in v.items():
            top = max(c.values(), default=0)
            corpus.setdefault(script, Counter()).update({lang: 1 for lang in c if c[lang] == top})
    kept: list[list[Token]] = []
    word_lang: dict[Token, Counter] = {}
    for ts, votes in zip(tokens, doc_votes):
        langs = {script: _pick(votes.get(script), corpus.get(script), script) for script in votes}
        keep = [t for t in ts if not is_stop(t, langs[t.script])]
        for t in keep:
            c = word_lang.get(t)
            if c is None:
                c = word_lang[t] = Counter()
            c[langs[t.script]] += 1
        kept.append(keep)
    key = {t: t.surface if t.script == CJK else stem(t.surface, c.most_common(1)[0][0]) for t, c in word_lang.items()}
    return [[(key[t], t.surface) for t in ts] for ts in kept]


def _pick(doc: Counter | None, corpus: Counter | None, script: str) -> str | None:
    """The document's language for one script: most stop-word hits, then the corpus's choice."""
    corpus = corpus or Counter()
    default = SCRIPT_DEFAULT.get(script)
    if doc:
        return max(sorted(doc), key=lambda lang: (doc[lang], corpus[lang], lang == default))
    if corpus:
        return max(sorted(corpus), key=lambda lang: (corpus[lang], lang == default))
    return default
