"""Fixtures of the unit tests in more than one folder (unit/encoders and unit/stages/test_embed.py):
the embedding backends' encoders, whose exported/distilled models are built once per session
in a Sieve cache dir, and the packaged model's token limit.
"""

from __future__ import annotations

import os

import pytest

from core.encoders import long_text as lt
from core.encoders import registry as R
from core.encoders.models import DEFAULT_MODEL


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


@pytest.fixture(scope="module")
def limit():
    """The packaged model's (all-MiniLM-L6-v2) token limit: 256 tokens, 2 of them special."""
    lim = lt.model_limit(DEFAULT_MODEL)
    assert lim is not None and lim.max_seq_length == 256 and lim.n_special == 2
    return lim
