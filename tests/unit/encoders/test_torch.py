"""core.encoders.torch: the prefetching (GPU) loop, run on the CPU, and the CUDA batch size."""

from __future__ import annotations

import numpy as np

from core.encoders import torch as T
from core.stages.embed import embed_texts
from tests.fakes import PrefetchingEncoder


def test_prefetch_loop_gives_the_same_vectors(sieve_real_encoder, mixed_texts):
    texts = mixed_texts[190:230]
    plain = embed_texts(texts, sieve_real_encoder, batch_size=8)
    pre = embed_texts(texts, PrefetchingEncoder(sieve_real_encoder), batch_size=8)
    np.testing.assert_allclose(pre, plain, atol=1e-5)
    assert T.effective_batch_size(64, "cuda") == T.CUDA_BATCH_SIZE
    assert T.effective_batch_size(64, "cpu") == 64 and T.effective_batch_size(32, "cuda") == 32
