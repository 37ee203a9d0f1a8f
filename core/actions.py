"""Actions: what the pages and the CLI do that :mod:`core.workflows` does not offer in the
shape they need (yet): load a dataset with a progress bar, compute a map while saying when
it queues behind another session, apply cluster edits to a given map, load an encoder, and
start or wait for the background warm-up.

Each is the public entry point for its step; the functions it calls stay where they are.
Errors are :class:`core.store.workspace.SieveError` with a one-line message; nothing here prints.
"""

from __future__ import annotations

import os
from typing import Callable

from core import curate
from core.encoders.base import Encoder
from core.encoders.registry import load_encoder as registry_encoder
from core.engines import local
from core.engines.local import MapData, MapKeys, MapParams, Progress, StageCallback
from core.runtime import warmup
from core.stages import ingest as ingest_stage
from core.stages import prewarm
from core.stages.dataset import DatasetInfo
from core.stages.ingest import IngestParams
from core.store.workspace import Workspace

StepProgress = Callable[[int, int, str], None]  # (done, total, message)


def load_dataset(ws: Workspace, params: IngestParams, progress: StepProgress | None = None) -> tuple[DatasetInfo, bool]:
    """Load a dataset into the workspace (core.stages.ingest.ingest), reporting
    ``progress(done, total, message)``: (its info, whether it was already loaded).
    SieveError naming the file, column or parameter; a failure leaves the workspace as it was."""
    return ingest_stage.ingest(ws, params, progress=progress)


def compute_map(ws: Workspace, params: MapParams, *, encoder: Encoder | None = None,
                on_stage: StageCallback | None = None, progress: Progress | None = None,
                on_wait: Callable[[str], None] | None = None) -> MapKeys:
    """Embed -> project -> cluster -> label the current dataset on this machine, skipping
    cached stages (core.engines.local.build_map), and record it as the workspace's map:
    its keys (with seconds per stage and cache hits).  ``on_wait(holder)`` is called when
    another computation holds the workspace and this one queues behind it; the map's
    stored cluster edits apply.  SieveError for bad data or parameters; Cancelled when stopped."""
    return local.build_map(ws, params, encoder=encoder, on_stage=on_stage, progress=progress, on_wait=on_wait)


def edit_clusters(ws: Workspace, edits: list[dict], base: MapData | None = None, *,
                  append: bool = False) -> MapKeys:
    """Make ``edits`` (core.curate: rename, merge, split) the cluster edits of the map
    ``base`` (default: the workspace's latest map), replacing its earlier ones (``append``:
    after them), and make the result the workspace's current map.  Returns its keys
    (the base map's when no edit is left).  SieveError naming a bad edit; nothing is stored then."""
    keys, params = (base.keys, base.params) if base is not None else local.current_map(ws)
    if append:
        edits = curate.stored_edits(ws, keys.label) + list(edits)
    return local.curate_map(ws, keys, edits, params)


def load_encoder(model: str, device: str = "auto", normalize: bool = True, backend: str = "torch",
                 progress: StepProgress | None = None) -> Encoder:
    """The encoder of ``model`` on ``backend`` ("auto" resolved here; core.encoders.registry),
    reporting a one-time model preparation through ``progress(done, total, message)``.
    SieveError for an unknown backend or a model that cannot be loaded."""
    return registry_encoder(model, device=device, normalize=normalize, backend=backend, progress=progress)


def start_warmup() -> None:
    """Start, once per process and in a background thread, preparing the default model and
    compiling UMAP/HDBSCAN, so the first map does not wait for them (SIEVE_NO_WARMUP=1: not)."""
    if not os.environ.get("SIEVE_NO_WARMUP"):
        prewarm.start_background_warmup()


def wait_for_model(timeout: float | None = None) -> bool:
    """Block while the background warm-up prepares the default model (at most ``timeout``
    seconds; None: until done); True when that is done or no warm-up runs."""
    return warmup.wait_for_model(timeout)
