"""Fixtures of the embedding backends' tests: a mix of short and long generated texts.  (The
encoders built once per session, ``fast_cache``/``onnx_encoder``/``static_encoder``, are in
tests/unit/conftest.py: unit/stages/test_embed.py uses them too.)
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def mixed_texts():
    """~300 texts: 200 short (~20 words) and 100 long (~200 words) generated prompts."""
    from sample_data.generate import generate_rows

    short = [t for t in generate_rows(210, seed=21).column("text").to_pylist() if t and t.strip()][:200]
    long_ = [t for t in generate_rows(105, seed=22, long_words=200).column("text").to_pylist() if t and t.strip()]
    return short + long_[:100]  # (empty texts are never embedded: ingest flags them)
