"""core.encoders.onnx: "onnx-int8" (exported + per-channel int8 quantized locally) against the
exact torch fp32 path, with the real model and real ONNX Runtime.
"""

from __future__ import annotations

import numpy as np

from core.encoders import models as M
from core.stages.embed import embed_texts


def test_onnx_int8_agrees_with_fp32(onnx_encoder, sieve_real_encoder, mixed_texts):
    assert onnx_encoder.model_id == M.DEFAULT_MODEL_ID + "#onnx-int8"
    ref = embed_texts(mixed_texts, sieve_real_encoder, batch_size=32)
    got = embed_texts(mixed_texts, onnx_encoder, batch_size=32)
    assert got.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    cos = (ref * got).sum(axis=1)
    assert cos.mean() >= 0.98, cos.mean()
    assert cos.min() >= 0.9, cos.min()
    # long texts are truncated at max_seq_length like sentence-transformers, not at 128 tokens
    assert cos[200:].mean() >= 0.98, cos[200:].mean()
    # batch composition barely changes a text's vector (padding is masked out; only the
    # dynamic int8 activation scales depend on the batch)
    alone = onnx_encoder.embed(mixed_texts[:3])
    assert (alone * got[:3]).sum(axis=1).min() >= 0.99
