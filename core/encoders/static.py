"""The "static" (preview) embedding backend: a static token-vector model distilled
locally from the sentence-transformers model, with no download.

Distillation (once per model, cached): every vocabulary token is run through the
transformer as a one-token sentence (``[CLS] token [SEP]``), pooled the way the
model pools, and the resulting table is centred and rotated by PCA (keeping
``PCA_DIMS`` components) and weighted by the token's Zipf rank (``log(1 + rank)``;
WordPiece/BPE vocabularies list frequent tokens first, so frequent, less
informative tokens count less).  The table (float16 ``.npy``) and a ``meta.json``
are written to ``<cache>/static/<name>-<hash>/`` atomically (temp dir, then rename).

Inference is plain numpy: tokenize with the fast tokenizer (no padding, no
truncation), sum the tokens' rows, normalise.  It is a preview: much faster and
coarser than the transformer; :data:`PREVIEW_QUALITY` holds what was measured.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from tokenizers import Tokenizer

from core.encoders.base import Progress
from core.encoders.cache import (META_FILE, artifact_dir, build_atomically, export_versions, fast_tokenizer_json,
                                 load_sentence_transformer, st_parts, verify_dir)
from core.encoders.models import local_model_dir, model_id
from core.store.workspace import SieveError

BACKEND = "static"
DISTILL_VERSION = 1
PCA_DIMS = 256
DISTILL_BATCH = 512
TABLE_FILE = "vectors.npy"
TOKENIZER_FILE = "tokenizer.json"

# Measured (tests/unit/encoders/test_static.py re-checks the ARI): HDBSCAN clusters of the static
# preview vs the torch fp32 pipeline's clusters on sample_data/prompts.csv (3,000 rows,
# default map params with seeded exact UMAP); texts/s vs one fp32 SentenceTransformer.encode
# on ~20-word and ~200-word generated prompts (python -m bench, quiet 2-core CPU, 2026-11-21).
PREVIEW_QUALITY = {
    "ari_vs_fp32": 0.74,
    "speedup_short": 47.0,
    "speedup_long": 54.0,
    "measured_on": "sample_data/prompts.csv (3,000 rows), exact UMAP; speed on a quiet 2-core CPU",
}
PREVIEW_FLOOR = 0.65  # the test's floor for that ARI


def distill_static(model: str = "all-MiniLM-L6-v2", *, progress: Progress | None = None) -> Path:
    """The folder of the distilled static model (built once, then cached)."""
    mdir = local_model_dir(model)
    options = {"distill_version": DISTILL_VERSION, "pca_dims": PCA_DIMS, "weighting": "log1p-rank",
               "versions": export_versions()}
    final = artifact_dir("static", model, options, model_dir=mdir)
    if verify_dir(final, [TABLE_FILE, TOKENIZER_FILE]) is not None:
        return final

    def build(tmp: Path) -> dict:
        if progress is not None:
            progress(0, 1, "distilling the static preview model (one time): loading")
        st = load_sentence_transformer(mdir)
        transformer, mode, max_len, tokenizer = st_parts(st)
        table = token_vectors(transformer.auto_model, tokenizer, mode, progress=progress)
        table = pca_weighted(table, PCA_DIMS)
        np.save(tmp / TABLE_FILE, table.astype(np.float16), allow_pickle=False)
        tok_json = json.loads(fast_tokenizer_json(tokenizer, max_len))
        tok_json["truncation"] = None  # a static model has no length limit
        (tmp / TOKENIZER_FILE).write_text(json.dumps(tok_json))
        return {"model_id": model_id(model), "dim": int(table.shape[1]), "vocab": int(table.shape[0]),
                "pooling": mode, "options": options}

    build_atomically(final, [TABLE_FILE, TOKENIZER_FILE], build)
    return final


def token_vectors(hf_model, tokenizer, mode: str, *, progress: Progress | None = None,
                  batch: int = DISTILL_BATCH, limit: int | None = None) -> np.ndarray:
    """(vocab, hidden) float32: each token as a one-token sentence, pooled like the model."""
    import torch

    # the packaged tokenizer.json may pad to a fixed length: use a copy without padding
    backend = Tokenizer.from_str(fast_tokenizer_json(tokenizer, 512))
    vocab = int(backend.get_vocab_size(with_added_tokens=True))
    if limit is not None:
        vocab = min(vocab, int(limit))
    frame = backend.encode("", add_special_tokens=True).ids  # e.g. [CLS, SEP]
    pos = max(1, len(frame) - 1) if frame else 0  # insert the token before the final special token
    width = len(frame) + 1
    hf_model = hf_model.eval()
    uses_tt = "token_type_ids" in __import__("inspect").signature(hf_model.forward).parameters
    out = None
    t0 = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, vocab, batch):
            ids_t = torch.arange(start, min(start + batch, vocab), dtype=torch.long)
            n = len(ids_t)
            ids = torch.tensor(frame[:pos] + [0] + frame[pos:], dtype=torch.long).repeat(n, 1)
            ids[:, pos] = ids_t
            mask = torch.ones((n, width), dtype=torch.long)
            kw = {"token_type_ids": torch.zeros_like(ids)} if uses_tt else {}
            h = hf_model(input_ids=ids, attention_mask=mask, **kw)[0]
            vec = h[:, 0] if mode == "cls" else h.mean(1)
            if out is None:
                out = np.empty((vocab, vec.shape[1]), dtype=np.float32)
            out[start : start + n] = vec.float().numpy()
            if progress is not None and time.perf_counter() - t0 > 1.0:
                progress(start + n, vocab, "distilling the static preview model (one time)")
    if out is None:
        raise SieveError("the model's tokenizer has an empty vocabulary")
    return out


def pca_weighted(table: np.ndarray, dims: int) -> np.ndarray:
    """Centre, rotate onto the top ``dims`` principal axes, and weight row ``r`` by log(1 + r)."""
    x = table.astype(np.float64)
    x -= x.mean(axis=0, keepdims=True)
    dims = int(min(dims, x.shape[1], x.shape[0]))
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    y = x @ vt[:dims].T
    rank = np.arange(1, len(y) + 1, dtype=np.float64)
    y *= np.log1p(rank)[:, None]
    return y.astype(np.float32)


class StaticEncoder:
    """The :class:`core.encoders.base.Encoder` of the "static" backend (plain numpy)."""

    backend = BACKEND
    max_seq_length = None  # no token limit: every token of the (capped) text is read

    def __init__(self, model: str = "all-MiniLM-L6-v2", normalize: bool = True, *,
                 progress: Progress | None = None, path: Path | None = None):
        self.path = Path(path) if path is not None else distill_static(model, progress=progress)
        meta = json.loads((self.path / META_FILE).read_text())
        self.model_id = f"{meta['model_id']}#{BACKEND}"
        self.table = np.load(self.path / TABLE_FILE, allow_pickle=False).astype(np.float32)
        self.dim = int(self.table.shape[1])
        self.normalize = normalize
        self.device = "cpu"
        self.tokenizer = Tokenizer.from_file(str(self.path / TOKENIZER_FILE))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        enc = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        lens = np.fromiter((len(e.ids) for e in enc), dtype=np.int64, count=n)
        ids = np.fromiter((i for e in enc for i in e.ids), dtype=np.int64, count=int(lens.sum()))
        ids = np.where(ids < len(self.table), ids, 0)  # tokens added after distillation
        nonempty = lens > 0
        if ids.size:
            starts = np.concatenate(([0], np.cumsum(lens)[:-1]))[nonempty]
            out[nonempty] = np.add.reduceat(self.table[ids], starts, axis=0)
            out[nonempty] /= lens[nonempty, None]
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out /= np.where(norms == 0, 1, norms)
        return out

