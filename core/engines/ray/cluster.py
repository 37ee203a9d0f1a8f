"""Ray session: start or join a cluster, size the worker pool, run shard jobs on an actor pool.

Ray is imported lazily (``sieve[ray]``); importing this module does not need it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from core.encoders.registry import resolve_backend
from core.store.workspace import SieveError


def connect(address: str | None = None, *, num_cpus: int | None = None, num_gpus: int | None = None,
            object_store_memory: int | None = None, env: dict[str, str] | None = None) -> None:
    """Start or join a Ray cluster (no-op when this process is already connected).

    ``address``: ``"auto"``, ``"ray://host:10001"`` or ``"host:6379"`` for an existing
    cluster (``RAY_ADDRESS`` also works); None starts a local instance with
    ``num_cpus``/``num_gpus``/``object_store_memory``.  The workers inherit
    ``HF_HUB_OFFLINE`` and ``env``."""
    ray = import_ray()
    if ray.is_initialized():
        return
    env_vars = {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "TOKENIZERS_PARALLELISM": "false",
                "RAY_TQDM_PATCH_PRINT": "0"}
    env_vars.update(env or {})
    kw: dict[str, Any] = dict(include_dashboard=False, runtime_env={"env_vars": env_vars},
                              logging_level="WARNING", log_to_driver=False)
    if address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address or os.environ["RAY_ADDRESS"], **kw)
    else:
        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, object_store_memory=object_store_memory, **kw)
    _quiet_data()


def _quiet_data() -> None:
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    if hasattr(ctx, "print_on_execution_start"):
        ctx.print_on_execution_start = False


def import_ray():
    """The ``ray`` module (imported here, lazily); SieveError when Ray is not installed."""
    # Ray's progress bars replace builtins.print with a Python function, after which numba
    # can no longer compile any code that prints (pynndescent, umap): keep print as it is.
    os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SieveError("the Ray engine needs Ray: pip install 'sieve[ray]'") from exc
    return ray


def require_ray():
    """The ``ray`` module, connected (a local instance is started when none is) and quiet."""
    ray = import_ray()
    if not ray.is_initialized():
        connect()
    _quiet_data()
    return ray


def plan_workers(workers: int | None, device: str = "auto", threads: int = 1) -> tuple[int, float, float]:
    """(actors, GPUs per actor, CPUs per actor) sized from ``ray.available_resources()``:
    one actor per GPU when ``device`` allows GPUs and the cluster has some, else one per
    ``threads`` CPUs (``workers`` overrides the count).  SieveError for ``device='cuda'``
    on a cluster without GPUs."""
    ray = require_ray()
    res = ray.available_resources()
    gpus = int(res.get("GPU", 0))
    cpus = max(1, int(res.get("CPU", 1)))
    if device == "cuda" and gpus == 0:
        raise SieveError("device='cuda' was asked for but the Ray cluster has no GPU")
    if device in ("auto", "cuda") and gpus > 0:
        return (workers or gpus), 1.0, 1.0
    return (workers or max(1, cpus // threads)), 0.0, float(threads)


def resolve_cluster_backend(device: str = "auto", *, local: bool = False) -> str:
    """What backend "auto" means for the workers: torch when they get GPUs (the cluster
    has some and ``device`` allows them), else onnx-int8 where onnxruntime is installed
    (the local CPU default), else torch."""
    if local:
        return resolve_backend("auto", device)
    if device in ("auto", "cuda"):
        ray = require_ray()
        if int(ray.available_resources().get("GPU", 0)) > 0:
            return "torch"
    return resolve_backend("auto", "cpu")


def run_shard_jobs(worker_cls, items: list[dict], ctor_kwargs: dict, *, workers: int = 1, cpus: float = 1.0,
                   gpus: float = 0.0, local: bool = False) -> list[dict]:
    """Run ``worker_cls`` (a Ray Data callable class taking ``{"input": [...], "output": [...]}``
    batches) over ``items``, one shard per batch: on a Ray actor pool of ``workers`` actors,
    or (``local=True``) in this process with one instance, which needs no Ray.  Returns one
    dict per finished shard."""
    if not items:
        return []
    if local:
        worker = worker_cls(**ctor_kwargs)
        out = []
        for it in items:
            res = worker({"input": np.asarray([it["input"]]), "output": np.asarray([it["output"]])})
            out.extend({k: v[i] for k, v in res.items()} for i in range(len(res["output"])))
        return out
    ray = require_ray()
    return ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        worker_cls, batch_size=1, compute=ray.data.ActorPoolStrategy(size=max(1, min(workers, len(items)))),
        num_cpus=cpus, num_gpus=gpus or None, fn_constructor_kwargs=ctor_kwargs,
    ).take_all()
