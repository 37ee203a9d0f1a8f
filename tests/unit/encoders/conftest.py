"""Fixtures of the embedding backends' tests: the exported/distilled models are built once
per session in a temporary SIEVE_CACHE_DIR, and a mix of short and long generated texts.
"""

from __future__ import annotations

import os

import pytest

from core.encoders import registry as R


@pytest.fixture(scope="session")
def fast_cache(tmp_path_factory):
    """A private Sieve cache dir for the session (the export/distillation happen once),
    unless SIEVE_CACHE_DIR is set (then the models built there are reused)."""
    old = os.environ.get("SIEVE_CACHE_DIR")
    os.environ["SIEVE_CACHE_DIR"] = old or str(tmp_path_factory.mktemp("sieve-cache"))
    yield os.environ["SIEVE_CACHE_DIR"]
    if old is None:
        os.environ.pop("SIEVE_CACHE_DIR", None)
    else:
        os.environ["SIEVE_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def onnx_encoder(fast_cache):
    return R.load_encoder(backend="onnx-int8")


@pytest.fixture(scope="session")
def static_encoder(fast_cache):
    return R.load_encoder(backend="static")


@pytest.fixture(scope="session")
def mixed_texts():
    """~300 texts: 200 short (~20 words) and 100 long (~200 words) generated prompts."""
    from sample_data.generate import generate_rows

    short = [t for t in generate_rows(210, seed=21).column("text").to_pylist() if t and t.strip()][:200]
    long_ = [t for t in generate_rows(105, seed=22, long_words=200).column("text").to_pylist() if t and t.strip()]
    return short + long_[:100]  # (empty texts are never embedded: ingest flags them)
