"""Texts over the model's token limit, and the cap on the size of one cell.

A transformer embedder reads at most ``max_seq_length`` tokens (all-MiniLM-L6-v2: 256,
special tokens included); sentence-transformers silently drops the rest, so two texts
that differ only after the limit get the same vector.  ``EmbedParams.long_text``:

- ``"truncate"`` (the default, and the meaning of a manifest without the field): the
  text is cut at the limit, as sentence-transformers does.  Before tokenising, the text
  is clipped to a prefix of whole words that still holds more than the limit's tokens
  (checked with the tokenizer), so a 50 MB cell is never tokenised whole; the vectors
  are the same as without the clip.
- ``"chunk"``: a text over the limit is split into windows of ``limit - specials``
  tokens that overlap by one eighth of a window (:data:`OVERLAP_FRACTION`), each window
  is embedded, and the text's vector is the mean of its windows' vectors weighted by
  their token counts, re-normalised (mean pooling over chunks, as in long-document
  retrieval: e.g. Chen et al. 2023, "Dense X Retrieval", and sentence-transformers'
  own advice for long inputs).  A text within the limit is one window, so its vector
  equals the truncate vector.

Every text is first capped at :data:`MAX_TEXT_CHARS` characters (``SIEVE_MAX_TEXT_CHARS``
overrides; default 100,000, about 25k tokens of English), the largest cell Sieve embeds:
longer cells are embedded from their first ``MAX_TEXT_CHARS`` characters and counted
(``n_over_cap``).  In chunk mode this bounds the windows per text (about 110 at the default).

The tokenizer is the model's fast ``tokenizer.json`` (Hugging Face ``tokenizers``),
loaded without truncation or padding; the limit comes from ``sentence_bert_config.json``
(``max_seq_length``), else ``tokenizer_config.json`` (``model_max_length``), else 512.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tokenizers import Tokenizer

from core.encoders.models import local_model_dir
from core.store.workspace import SieveError

LONG_TEXT_MODES = ("truncate", "chunk")
DEFAULT_MAX_TEXT_CHARS = 100_000
OVERLAP_FRACTION = 8  # windows overlap by 1/8 of their length
CLIP_CHARS_PER_TOKEN = 12  # first guess of the clip; grown until it holds enough tokens
COUNT_BATCH = 1024


def max_text_chars() -> int:
    """The cell cap in characters (``SIEVE_MAX_TEXT_CHARS``, default 100,000)."""
    raw = os.environ.get("SIEVE_MAX_TEXT_CHARS")
    if raw is None:
        return DEFAULT_MAX_TEXT_CHARS
    try:
        value = int(raw)
    except ValueError as exc:
        raise SieveError(f"SIEVE_MAX_TEXT_CHARS must be a whole number of characters, got {raw!r}") from exc
    if value < 1000:
        raise SieveError(f"SIEVE_MAX_TEXT_CHARS must be at least 1000, got {value}")
    return value


def check_mode(mode: str) -> str:
    """``mode`` if it is one of LONG_TEXT_MODES, else raises SieveError."""
    if mode not in LONG_TEXT_MODES:
        raise SieveError(f"long_text must be one of {LONG_TEXT_MODES}, got {mode!r}")
    return mode


@dataclass(frozen=True)
class TokenLimit:
    """A model's token limit and its tokenizer (no truncation, no padding)."""

    max_seq_length: int  # tokens per input, special tokens included
    n_special: int  # special tokens the model adds to one input ([CLS], [SEP]: 2)
    tokenizer: object  # tokenizers.Tokenizer

    @property
    def content(self) -> int:
        """Text tokens that fit in one input."""
        return max(1, self.max_seq_length - self.n_special)

    def n_tokens(self, texts: Sequence[str]) -> list[int]:
        enc = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in enc]


def _model_folder(model: str) -> Path | None:
    try:
        return local_model_dir(model)
    except SieveError:
        return None


def _configured_length(folder: Path) -> int:
    for name, key in (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length")):
        try:
            value = json.loads((folder / name).read_text()).get(key)
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, int) and 0 < value < 1_000_000:
            return value
    return 512


@functools.lru_cache(maxsize=8)
def model_limit(model: str) -> TokenLimit | None:
    """The token limit of ``model`` (a name or folder), or None when its fast tokenizer
    (``tokenizer.json``) is not available locally.  Never downloads."""
    folder = _model_folder(model)
    if folder is None or not (folder / "tokenizer.json").is_file():
        return None
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    n_special = len(tok.encode("", add_special_tokens=True).ids)
    return TokenLimit(_configured_length(folder), n_special, tok)


def cap(text: str, limit_chars: int) -> str:
    """``text`` cut to its first ``limit_chars`` characters (the cell cap)."""
    return text if len(text) <= limit_chars else text[:limit_chars]


def _prefix(text: str, k: int, lim: TokenLimit) -> tuple[str, int]:
    """(the first ``k`` characters cut back to a whitespace when there is one, the tokens
    it must hold): more than the limit, so a count sees the text is over; a word cut in
    two changes only its own tokens, hence the margin without a whitespace."""
    prefix = text[:k]
    cut = max(prefix.rfind(" "), prefix.rfind("\n"), prefix.rfind("\t"))
    if cut > k // 2:
        return prefix[:cut], lim.content + 1
    return prefix, lim.content + 16


def clip_for_limit(text: str, lim: TokenLimit) -> str:
    """A prefix of ``text`` (ending at a whitespace when there is one) whose tokens
    include the first ``lim.content`` tokens of the whole text, so truncating it gives
    what truncating the whole text gives.  ``text`` itself when it is short."""
    k = lim.content * CLIP_CHARS_PER_TOKEN
    while k < len(text):
        prefix, need = _prefix(text, k, lim)
        if lim.n_tokens([prefix])[0] >= need:
            return prefix
        k *= 4
    return text


def clip_many(texts: Sequence[str], lim: TokenLimit) -> list[str]:
    """:func:`clip_for_limit` of every text, with the first guess tokenised in one batch."""
    k = lim.content * CLIP_CHARS_PER_TOKEN
    out = list(texts)
    long_idx = [i for i, t in enumerate(out) if len(t) > k]
    if not long_idx:
        return out
    firsts = [_prefix(out[i], k, lim) for i in long_idx]
    counts = lim.n_tokens([p for p, _ in firsts])
    for i, (prefix, need), n in zip(long_idx, firsts, counts):
        out[i] = prefix if n >= need else clip_for_limit(out[i], lim)
    return out


def windows(text: str, lim: TokenLimit) -> tuple[list[str], list[int]]:
    """(window texts, their token counts) of ``text``: one window when it fits, else
    windows of ``lim.content`` tokens overlapping by 1/OVERLAP_FRACTION, each starting at
    the first token of a word, cut from the text by the tokens' character offsets."""
    enc = lim.tokenizer.encode(text, add_special_tokens=False)
    n = len(enc.ids)
    if n <= lim.content:
        return [text], [max(n, 1)]
    size = lim.content
    stride = max(1, size - max(1, size // OVERLAP_FRACTION))
    offsets, words = enc.offsets, enc.word_ids
    out, counts = [], []
    start = 0
    while True:
        end = min(n, start + size)
        out.append(text[offsets[start][0] : offsets[end - 1][1]])
        counts.append(end - start)
        if end >= n:
            return out, counts
        nxt = start + stride
        while nxt > start + 1 and words[nxt] is not None and words[nxt] == words[nxt - 1]:
            nxt -= 1  # start at a word's first token
        start = nxt


@dataclass
class Prepared:
    """What to send to the encoder for ``n`` texts: ``inputs`` (strings), the text each
    input belongs to (``owner``, int64) and its weight (token count, float64)."""

    inputs: list[str]
    owner: np.ndarray
    weights: np.ndarray
    n: int

    def pool(self, vectors: np.ndarray, normalize: bool) -> np.ndarray:
        """(n, d) float32: the weighted mean of each text's input vectors, re-normalised."""
        if len(self.inputs) == self.n:
            return np.ascontiguousarray(vectors, dtype=np.float32)
        out = np.zeros((self.n, vectors.shape[1]), dtype=np.float64)
        np.add.at(out, self.owner, vectors.astype(np.float64) * self.weights[:, None])
        out /= np.bincount(self.owner, weights=self.weights, minlength=self.n)[:, None]
        if normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out /= np.where(norms == 0, 1, norms)
        return out.astype(np.float32)


def prepare(texts: Sequence[str], mode: str, lim: TokenLimit | None, *, limited: bool = True) -> Prepared:
    """The encoder inputs for ``texts`` under ``mode``.  Every text is capped at
    :func:`max_text_chars`; ``limited=False`` (an encoder without a token limit, such as
    the static preview) keeps the rest of the text; ``lim`` None (no tokenizer) allows
    only ``truncate``.  Raises SieveError for chunk without a tokenizer."""
    check_mode(mode)
    cap_chars = max_text_chars()
    capped = [cap(t, cap_chars) for t in texts]
    n = len(capped)
    if not limited or (lim is None and mode == "truncate"):
        return Prepared(capped, np.arange(n, dtype=np.int64), np.ones(n), n)
    if lim is None:
        raise SieveError("long_text='chunk' needs the model's fast tokenizer (tokenizer.json in its folder), "
                         "which this model does not have locally; use long_text='truncate'")
    if mode == "truncate":
        return Prepared(clip_many(capped, lim), np.arange(n, dtype=np.int64), np.ones(n), n)
    inputs, owner, weights = [], [], []
    for i, t in enumerate(capped):
        parts, counts = windows(t, lim) if len(t.encode("utf-8")) > lim.content else ([t], [1])
        inputs.extend(parts)
        owner.extend([i] * len(parts))
        weights.extend(counts)
    return Prepared(inputs, np.asarray(owner, dtype=np.int64), np.asarray(weights, dtype=np.float64), n)


@dataclass
class LongTextCount:
    """How many texts exceed the model's limit (``n_over_limit``) and the cell cap
    (``n_over_cap``), of ``n_texts``; ``max_seq_length`` None when no tokenizer was found."""

    n_texts: int
    n_over_limit: int | None
    n_over_cap: int
    max_seq_length: int | None
    max_text_chars: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def message(self, mode: str | None = None, choice: str = "--long-text chunk") -> str | None:
        """One line for the user, or None when every text fits.  ``mode``: what was done
        (None: not embedded yet); ``choice``: how the user picks chunking where they are."""
        parts = []
        if self.n_over_limit:
            what = {"truncate": f"only their first tokens are embedded ({choice} embeds every window)",
                    "chunk": "each is embedded as overlapping windows, mean-pooled",
                    None: f"they are truncated unless you choose {choice}"}[mode]
            parts.append(f"{self.n_over_limit:,} of {self.n_texts:,} texts exceed the model's limit of "
                         f"{self.max_seq_length} tokens; {what}")
        if self.n_over_cap:
            parts.append(f"{self.n_over_cap:,} text(s) are longer than {self.max_text_chars:,} characters "
                         "(SIEVE_MAX_TEXT_CHARS) and are embedded from their first "
                         f"{self.max_text_chars:,} characters only")
        return "; ".join(parts) or None


def count_long(texts: Sequence[str], lim: TokenLimit | None) -> LongTextCount:
    """Count texts over ``lim`` (tokens, by the model's tokenizer) and over the cell cap.

    A text of at most ``lim.content`` UTF-8 bytes cannot exceed the limit (every token
    covers at least one byte), so only longer texts are tokenised, each clipped first."""
    cap_chars = max_text_chars()
    n_cap = sum(1 for t in texts if len(t) > cap_chars)
    if lim is None:
        return LongTextCount(len(texts), None, n_cap, None, cap_chars)
    candidates = [t for t in texts if len(t) > lim.content // 4 and len(t.encode("utf-8")) > lim.content]
    over = 0
    for s in range(0, len(candidates), COUNT_BATCH):
        part = clip_many([cap(t, cap_chars) for t in candidates[s : s + COUNT_BATCH]], lim)
        over += sum(1 for k in lim.n_tokens(part) if k > lim.content)
    return LongTextCount(len(texts), over, n_cap, lim.max_seq_length, cap_chars)


