"""The encoder registry: backend name -> encoder class, and which backend "auto" means here.

Adding a backend: a module in ``core/encoders/`` with a class implementing
:class:`core.encoders.base.Encoder`, one entry in :data:`ENCODERS` and its name in
``core.encoders.base.BACKENDS``."""

from __future__ import annotations

import importlib.util

from core.encoders.base import BACKENDS, Encoder, Progress
from core.encoders.models import DEFAULT_MODEL
from core.encoders.onnx import ONNX_QUALITY, OnnxInt8Encoder
from core.encoders.static import PREVIEW_QUALITY, StaticEncoder
from core.encoders.torch import SentenceTransformerEncoder, cpu_only_torch, pick_device
from core.store.workspace import SieveError

# backend name -> encoder class, built as cls(model, normalize=..., progress=...) ("torch": device too)
ENCODERS = {"torch": SentenceTransformerEncoder, "onnx-int8": OnnxInt8Encoder, "static": StaticEncoder}


def onnxruntime_available() -> bool:
    """True when onnxruntime can be imported (checked without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def resolve_backend(backend: str = "auto", device: str = "auto") -> str:
    """The backend that ``backend`` means on this machine ("auto": onnx-int8 on the CPU
    when onnxruntime is importable, else torch; torch on CUDA/MPS)."""
    if backend not in BACKENDS:
        raise SieveError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    if not onnxruntime_available():
        return "torch"
    if device == "auto":
        device = "cpu" if cpu_only_torch() else pick_device("auto")
    return "onnx-int8" if device == "cpu" else "torch"


def backend_caption(backend: str) -> str:
    """One line for the UI: what ``backend`` is, with its measured speed and agreement."""
    q, p = ONNX_QUALITY, PREVIEW_QUALITY
    onnx = (f"onnx-int8: int8 ONNX Runtime on the CPU, about {q['speedup_short']:.1f}x fp32 on short texts "
            f"({q['speedup_long']:.1f}x on long ones), median cosine {q['median_cosine']:.3f} to fp32, "
            f"cluster ARI {q['ari_vs_fp32']:.2f}")
    static = (f"static (preview): distilled token vectors, about {p['speedup_short']:.0f}x fp32 on short texts; "
              f"clusters agree with fp32 at ARI {p['ari_vs_fp32']:.2f}; use it to look around, then recompute")
    torch = "torch: sentence-transformers as is, exact fp32 on the CPU (fp16 on CUDA), the reference"
    lines = {"auto": f"auto: onnx-int8 on the CPU when onnxruntime is installed, else torch; on a GPU torch. {onnx}",
             "torch": torch, "onnx-int8": onnx, "static": static}
    if backend == "torch":
        return torch
    return lines.get(backend, "") + f" (measured on {q['measured_on']})"


def load_encoder(model: str = DEFAULT_MODEL, device: str = "auto", normalize: bool = True, backend: str = "torch",
                 *, params=None, progress: Progress | None = None) -> Encoder:
    """The encoder of ``backend`` ("auto" is resolved here), or of ``params`` (any object with
    ``model``, ``device``, ``normalize`` and ``backend``, e.g. ``core.stages.embed.EmbedParams``).

    ``backend`` defaults to "torch" so that existing callers keep sentence-transformers.
    Raises SieveError for an unknown backend or a model that cannot be loaded."""
    if params is not None:
        model, device, normalize, backend = params.model, params.device, params.normalize, params.backend
    backend = resolve_backend(backend, device)
    if backend == "torch":
        return SentenceTransformerEncoder(model, device=device, normalize=normalize)
    return ENCODERS[backend](model, normalize=normalize, progress=progress)
