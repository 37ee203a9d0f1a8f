"""The "torch" backend: sentence-transformers as is (exact fp32 on the CPU, fp16 on CUDA).

torch and sentence-transformers are imported only when an encoder is built or a device picked."""

from __future__ import annotations

import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Sequence

import numpy as np

from core.encoders.models import DEFAULT_MODEL, model_id, resolve_model
from core.store.workspace import SieveError

DEFAULT_BATCH_SIZE = 64

CUDA_BATCH_SIZE = 256  # used on CUDA when batch_size was left at its default


def cpu_only_torch() -> bool:
    """True when the installed torch is a CPU build on a non-Apple machine (known
    without importing torch, which takes seconds)."""
    if "torch" in sys.modules:
        return False  # already imported: ask it
    try:
        return "+cpu" in version("torch") and sys.platform != "darwin"
    except Exception:  # noqa: BLE001
        return False


def effective_batch_size(batch_size: int, device: str) -> int:
    """Large batches on CUDA when the user left ``batch_size`` at its default."""
    return CUDA_BATCH_SIZE if device == "cuda" and batch_size == DEFAULT_BATCH_SIZE else batch_size


def pick_device(preference: str = "auto") -> str:
    """The torch device to use: ``preference`` checked ("cuda", "mps", "cpu"), or for "auto"
    CUDA, then MPS, then the CPU.  Raises SieveError when the asked device is not available."""
    import torch

    if preference == "cuda" and not torch.cuda.is_available():
        raise SieveError("device='cuda' was asked for but no CUDA GPU is available")
    if preference == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SieveError("device='mps' was asked for but Apple MPS is not available")
    if preference != "auto":
        return preference
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class SentenceTransformerEncoder:
    """sentence-transformers behind the :class:`Encoder` protocol; fp16 on CUDA.

    Besides ``encode`` it offers ``tokenize`` + ``encode_tokenized`` so that
    :func:`embed_texts` can tokenize the next batch while the GPU computes this one."""

    backend = "torch"

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "auto", normalize: bool = True):
        from sentence_transformers import SentenceTransformer

        self.model_id = model_id(model)
        self.device = pick_device(device)
        path = resolve_model(model)
        if not Path(path).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            self._model = SentenceTransformer(path, device=self.device)
        except Exception as exc:  # many exception types come from hub/transformers
            raise SieveError(
                f"model {model!r} could not be loaded ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                "give a local sentence-transformers folder or a model already in the Hugging Face cache"
            ) from exc
        if self.device == "cuda":
            self._model.half()
        self.normalize = normalize
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.max_seq_length = int(getattr(self._model, "max_seq_length", 0) or 512)

    @property
    def prefetch(self) -> bool:
        return self.device == "cuda"  # on the CPU a second busy thread only slows things down

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = self._model.encode(
            list(texts),
            batch_size=max(1, len(texts)),
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)

    def tokenize(self, texts: Sequence[str]):
        return self._model.tokenize(list(texts))  # CPU tensors, padded to the batch's longest

    def encode_tokenized(self, features) -> np.ndarray:
        import torch

        with torch.inference_mode():
            feats = {k: (v.to(self.device, non_blocking=True) if hasattr(v, "to") else v) for k, v in features.items()}
            emb = self._model.forward(feats)["sentence_embedding"].float()
            if self.normalize:
                emb = torch.nn.functional.normalize(emb, p=2, dim=1)
            return emb.cpu().numpy().astype(np.float32, copy=False)
