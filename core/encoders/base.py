"""The encoder interface every embedding backend implements, and the names shared by all of them."""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np

DEVICES = ("auto", "cpu", "cuda", "mps")
BACKENDS = ("auto", "torch", "onnx-int8", "static")
Progress = Callable[[int, int, str], None]  # (done, total, message)


class Encoder(Protocol):
    """A text encoder: ``embed(texts)`` returns an (n, dim) float32 array, row i the
    vector of ``texts[i]`` (unit length when the encoder normalizes).  ``model_id`` names
    the vectors (the cache and the manifest key them by it); ``dim`` is their width.

    Backends (:mod:`core.encoders.registry`): "torch" (:mod:`core.encoders.torch`),
    "onnx-int8" (:mod:`core.encoders.onnx`), "static" (:mod:`core.encoders.static`)."""

    model_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:  # (n, dim) float32
        ...
