"""Numba start-up costs: an on-disk compile cache and a background warm-up.

UMAP, pynndescent and fast-hdbscan are compiled by numba the first time they run in a
process (20-60 s on a small machine).  Two things cut that down:

* :func:`configure_numba_cache` points ``NUMBA_CACHE_DIR`` at a Sieve cache folder
  (``$SIEVE_CACHE_DIR/numba``, default ``~/.cache/sieve/numba``) unless the user set it,
  and :func:`enable_disk_cache` turns numba's disk cache on for umap-learn's compiled
  functions (umap-learn caches almost none itself; pynndescent caches some of its own), so a
  new process loads machine code from disk instead of compiling it again.
* :func:`start_warmup` runs the stages' warm-up tasks (:mod:`core.stages.prewarm`) in a
  daemon thread: first the default model's int8 ONNX export
  (``prepare_default_model``; one time per cache dir, ~15-30 s), so a new user's
  first *Compute map* does not pay it while they read the Data page; it then compiles
  the UMAP/HDBSCAN paths on a tiny array once
  per process, in a daemon thread (the app starts it on first page load), then
  pynndescent's kernels, which no disk cache can keep (``warm_knn``).  The project
  and cluster stages call :func:`wait_for_warmup` first, so they never compile the same
  code concurrently with it.

Importing this module sets the cache folder; it imports nothing heavy.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import threading
import warnings
from typing import Callable

from core.store.workspace import cache_root

_lock = threading.Lock()
_start_lock = threading.Lock()
_thread: threading.Thread | None = None
_done = threading.Event()  # the UMAP/HDBSCAN part of the background warm-up finished
_knn_done = threading.Event()  # its pynndescent part finished
_model_done = threading.Event()  # its model part (the one-time int8 ONNX export) finished
_error: BaseException | None = None
_cache_enabled: set[str] = set()

UMAP_MODULES = ("umap.utils", "umap.distances", "umap.sparse", "umap.umap_", "umap.layouts", "umap.spectral")


def configure_numba_cache() -> str | None:
    """Set ``NUMBA_CACHE_DIR`` to ``<cache_root()>/numba`` unless already set; returns it.
    If numba is already imported its configuration is reloaded so the folder applies."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    path = cache_root() / "numba"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # read-only home: numba falls back to its own places
    os.environ["NUMBA_CACHE_DIR"] = str(path)
    if "numba" in sys.modules:
        try:
            from numba.core import config

            config.reload_config()
        except Exception:  # pragma: no cover - numba internals
            pass
    return str(path)


def enable_disk_cache(modules=UMAP_MODULES) -> int:
    """Turn on numba's disk cache for the not-yet-cached jitted functions of ``modules``
    (imported here).  Returns how many functions it enabled."""
    if os.environ.get("SIEVE_NUMBA_DISK_CACHE", "1") == "0":
        return 0
    configure_numba_cache()
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    count = 0
    with _lock:
        for name in modules:
            if name in _cache_enabled:
                continue
            try:
                mod = importlib.import_module(name)
            except ImportError:
                continue
            for obj in list(vars(mod).values()):
                if isinstance(obj, Dispatcher) and isinstance(getattr(obj, "_cache", None), NullCache) \
                        and obj.__module__ == name:
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            obj.enable_caching()
                            _separate_cache_files(obj)
                        count += 1
                    except Exception:  # e.g. a function numba cannot cache: it just compiles
                        pass
            _cache_enabled.add(name)
    return count


def _separate_cache_files(dispatcher) -> None:
    """Numba's cache index is keyed by signature only, not by options such as
    ``parallel``: umap-learn wraps one Python function in a serial and a parallel
    dispatcher, which would then load each other's machine code.  Give each set of
    options its own cache files."""
    from numba.core.caching import IndexDataCacheFile

    cache = dispatcher._cache
    opts = repr(sorted((str(k), repr(v)) for k, v in dispatcher.targetoptions.items()))
    opts += repr(sorted((str(k), repr(v)) for k, v in (getattr(dispatcher, "locals", None) or {}).items()))
    suffix = hashlib.sha256(opts.encode()).hexdigest()[:10]
    cache._cache_file = IndexDataCacheFile(
        cache_path=cache._cache_path, filename_base=f"{cache._impl.filename_base}-{suffix}",
        source_stamp=cache._impl.locator.get_source_stamp())


def _run(prepare_model: Callable[[], object], compile_map: Callable[[], object],
         compile_knn: Callable[[], object]) -> None:
    """The background warm-up: the default model's one-time preparation first (the
    first map needs it first), then the map's numba code (every map needs it), then
    pynndescent (only maps above the exact-kNN size wait for it)."""
    global _error
    for task, done in ((prepare_model, _model_done), (compile_map, _done), (compile_knn, _knn_done)):
        try:
            task()
        except BaseException as exc:  # noqa: BLE001 - a failed warm-up only costs speed; the stage reports
            _error = exc
        finally:
            done.set()


def start_warmup(prepare_model: Callable[[], object], compile_map: Callable[[], object],
                 compile_knn: Callable[[], object]) -> threading.Thread:
    """Run the three warm-up tasks once per process, in that order, in a daemon thread
    (idempotent: later calls return the same thread and ignore their arguments).  The
    stages pass their own tasks (:mod:`core.stages.prewarm`), so this module imports none."""
    global _thread
    with _start_lock:  # not _lock: enable_disk_cache holds that while umap imports (and compiles)
        if _thread is None:
            _thread = threading.Thread(target=_run, args=(prepare_model, compile_map, compile_knn),
                                       name="sieve-warmup", daemon=True)
            _thread.start()
        return _thread


def wait_for_warmup(timeout: float | None = None, *, knn: bool = False) -> bool:
    """Block while a background warm-up runs (not from inside it): its UMAP/HDBSCAN part,
    and with ``knn`` its pynndescent part too.  True if what was waited for is done."""
    t = _thread
    if t is None or threading.current_thread() is t:
        return True
    if not _done.wait(timeout):
        return False
    return _knn_done.wait(timeout) if knn else True


def warmup_state() -> dict:
    """What the background warm-up has finished: {"started", "model", "compiled", "knn"}
    (bools), so a UI can say what a first map is waiting for."""
    return {"started": _thread is not None, "model": _model_done.is_set(), "compiled": _done.is_set(),
            "knn": _knn_done.is_set()}


def wait_for_model(timeout: float | None = None) -> bool:
    """Block while the background warm-up prepares the default model (not from inside
    it); True when that part is done or no warm-up runs."""
    t = _thread
    if t is None or threading.current_thread() is t:
        return True
    return _model_done.wait(timeout)


def warmup_error() -> BaseException | None:
    """The exception a background warm-up task raised (the last one), or None."""
    return _error


configure_numba_cache()
