"""Token counts for token budgets.

``tokenizer='model'``: the embedding model's own tokenizer (``tokenizer.json`` of the
local model folder through the fast ``tokenizers`` library, else transformers'
AutoTokenizer), counting the text's tokens without special tokens and without
truncation.  ``tokenizer='words'``: whitespace-separated words (no model needed).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from core.encoders.models import model_id, resolve_model
from core.store.workspace import SieveError

TOKENIZERS = ("model", "words")
WORDS_ID = "words:v1"
_LOCK = threading.Lock()


def count_words(texts: Sequence[str]) -> np.ndarray:
    """Whitespace-separated words per text, (n,) int64."""
    return np.fromiter((len(str(t or "").split()) for t in texts), dtype=np.int64, count=len(texts))


@functools.lru_cache(maxsize=4)
def _load(path: str):
    p = Path(path)
    tj = p / "tokenizer.json"
    if tj.is_file():
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tj))
        tok.no_truncation()
        tok.no_padding()
        return ("fast", tok)
    try:
        from transformers import AutoTokenizer

        return ("auto", AutoTokenizer.from_pretrained(path))
    except Exception as exc:  # transformers raises many kinds
        raise SieveError(f"tokenizer='model': no tokenizer could be loaded from {path} "
                         f"({type(exc).__name__}); use tokenizer='words'") from exc


def tokenizer_id(tokenizer: str, model: str) -> str:
    """The cache key of a tokenizer: 'words:v1', or 'model:' + the model's id (core.encoders.models.model_id)."""
    if tokenizer == "words":
        return WORDS_ID
    return f"model:{model_id(model)}"


def count_tokens(texts: Sequence[str], tokenizer: str = "model", model: str = "all-MiniLM-L6-v2",
                 batch: int = 4096) -> np.ndarray:
    """Tokens per text, (n,) int64, without special tokens and without truncation.  Raises
    SieveError for an unknown tokenizer or a model whose tokenizer is not available offline."""
    if tokenizer not in TOKENIZERS:
        raise SieveError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")
    if tokenizer == "words":
        return count_words(texts)
    path = resolve_model(model)
    if not Path(path).is_dir():
        raise SieveError(f"tokenizer='model': model {model!r} is not a local folder, so its tokenizer is not "
                         "available offline; use tokenizer='words'")
    with _LOCK:
        kind, tok = _load(path)
    out = np.empty(len(texts), dtype=np.int64)
    for s in range(0, len(texts), batch):
        part = [str(t or "") for t in texts[s : s + batch]]
        if kind == "fast":
            enc = tok.encode_batch(part, add_special_tokens=False)
            out[s : s + len(part)] = [len(e.ids) for e in enc]
        else:
            ids = tok(part, add_special_tokens=False, truncation=False)["input_ids"]
            out[s : s + len(part)] = [len(x) for x in ids]
    return out
