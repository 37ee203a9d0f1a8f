"""core.runtime.warmup: the numba cache folder and the background warm-up."""

from __future__ import annotations

from core.runtime import warmup
from core.stages.prewarm import start_background_warmup


def test_numba_cache_dir_respects_the_user_and_warmup_is_idempotent(tmp_path, monkeypatch):
    from numba.core import config

    try:
        monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
        assert warmup.configure_numba_cache() == str(tmp_path / "mine")
        monkeypatch.delenv("NUMBA_CACHE_DIR")
        monkeypatch.setenv("SIEVE_CACHE_DIR", str(tmp_path / "sieve"))
        assert warmup.configure_numba_cache() == str(tmp_path / "sieve" / "numba")
        assert (tmp_path / "sieve" / "numba").is_dir() and config.CACHE_DIR == str(tmp_path / "sieve" / "numba")
    finally:
        monkeypatch.undo()
        config.reload_config()

    t1 = start_background_warmup()
    t2 = start_background_warmup()
    assert t1 is t2 and t1.daemon and t1.name == "sieve-warmup"
    assert warmup.wait_for_warmup(timeout=600, knn=True)
    assert warmup.warmup_error() is None and not t1.is_alive()
    # the pynndescent kernels (kNN above EXACT_KNN_MAX_ROWS rows) were compiled too
    from pynndescent import pynndescent_

    assert pynndescent_.process_candidates.signatures and pynndescent_.init_rp_tree.signatures
    assert start_background_warmup() is t1  # still once per process
    assert warmup.enable_disk_cache() == 0  # already enabled for every umap module
