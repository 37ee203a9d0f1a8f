"""core.selection.tokens: token counts for token budgets (the packaged model's tokenizer, not the model)."""

from __future__ import annotations


def test_tokenizer_counts_with_the_models_tokenizer_and_words():
    from core.selection.tokens import count_tokens

    texts = ["hello world", "Tokenization isn't trivial!", "  three   short words "]
    assert count_tokens(texts, "words").tolist() == [2, 3, 3]
    counts = count_tokens(texts, "model")
    assert counts[0] == 2  # 'hello', 'world' (no [CLS]/[SEP])
    assert counts[1] > 3  # word pieces and punctuation
    long = count_tokens(["word " * 1000], "model")
    assert long[0] == 1000  # no truncation at the model's 256-token window
