"""core.encoders.long_text: texts over the model's token limit (issue 12 kind 4) and huge
cells (issue 15 item 12) -- the windows, the count, the clip and the cap -- with the real
packaged model's tokenizer (all-MiniLM-L6-v2, 256 tokens) on a few generated texts.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.encoders import long_text as lt
from core.store.workspace import SieveError
from tests.builders import WORDS, long_pair as _long_pair


def _hf_token_count(text: str) -> int:
    """Tokens with special tokens, by transformers' own tokenizer of the packaged model."""
    from transformers import AutoTokenizer

    from core.encoders.models import default_model_path

    tok = AutoTokenizer.from_pretrained(str(default_model_path()))
    return len(tok(text, truncation=False)["input_ids"])


def test_pair_really_differs_only_after_the_limit(limit):
    a, b = _long_pair()
    ta = limit.tokenizer.encode(a, add_special_tokens=False).ids
    tb = limit.tokenizer.encode(b, add_special_tokens=False).ids
    first_diff = next(i for i, (x, y) in enumerate(zip(ta, tb)) if x != y)
    assert first_diff > limit.content


def test_chunk_without_a_tokenizer_is_refused_by_name():
    with pytest.raises(SieveError, match="long_text='chunk'"):
        lt.prepare(["x " * 1000], "chunk", None)
    assert lt.prepare(["x " * 1000], "truncate", None).inputs == ["x " * 1000]


def test_windows_overlap_cover_the_text_and_fit_the_limit(limit):
    a, _ = _long_pair(n_words=900)
    parts, counts = lt.windows(a, limit)
    assert len(parts) >= 3
    assert all(c <= limit.content for c in counts)
    assert parts[0] == a[: len(parts[0])] and a.endswith(parts[-1])
    for p in parts:  # each window re-tokenises within the model's limit
        assert _hf_token_count(p) <= limit.max_seq_length + 2
    total = len(limit.tokenizer.encode(a, add_special_tokens=False).ids)
    assert sum(counts) >= total  # overlapping windows cover every token


def test_count_of_over_limit_texts_matches_the_tokenizer(limit):
    texts = [" ".join(["data"] * k) for k in (10, 254, 255, 256, 600)] + ["short", "é" * 300]
    want = sum(1 for t in texts if _hf_token_count(t) > 256)
    got = lt.count_long(texts, limit)
    assert got.n_over_limit == want == 3  # 255 and 256 and 600 words ("data" is one token)
    assert got.max_seq_length == 256 and got.n_over_cap == 0


def test_huge_cell_is_clipped_before_tokenising_and_capped(limit, monkeypatch):
    rng = np.random.default_rng(1)
    cell = " ".join(rng.choice(WORDS, 700_000))  # ~5.5 MB
    prep = lt.prepare([cell], "truncate", limit)
    assert len(prep.inputs[0]) < 20 * limit.content * lt.CLIP_CHARS_PER_TOKEN
    assert lt.count_long([cell], limit).n_over_cap == 1
    monkeypatch.setenv("SIEVE_MAX_TEXT_CHARS", "20000")
    prep = lt.prepare([cell], "chunk", limit)
    assert 1 < len(prep.inputs) <= 20000 // 4 // (limit.content - limit.content // lt.OVERLAP_FRACTION) + 2
    assert sum(len(p) for p in prep.inputs) < 2 * 20000
    monkeypatch.setenv("SIEVE_MAX_TEXT_CHARS", "12")
    with pytest.raises(SieveError, match="SIEVE_MAX_TEXT_CHARS"):
        lt.prepare([cell], "chunk", limit)
