"""The types the workflows (core.workflows) take and return: engine names, progress
callbacks (:class:`Events`), Ray options, the Ray map handle, export targets and results."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Union

from .engines import ray as scale
from .engines.local import MapData, Progress, StageCallback

LOCAL = "local"
RAY = "ray"
ENGINES = (LOCAL, RAY)

Step = Callable[[str, Any], None]  # (step name, its result): "dataset", "embeddings", "map", "selection", ...


@dataclass(frozen=True)
class Events:
    """Where a workflow reports what it does; every field may be None.

    ``progress(stage, done, total, message)`` and ``on_stage(stage, 'start'|'done', info)``
    are :mod:`core.engines.local`'s callbacks; ``on_step(name, value)`` runs after each finished
    step with its result (see each workflow for the names it reports)."""

    progress: Progress | None = None
    on_stage: StageCallback | None = None
    on_step: Step | None = None

    def step(self, name: str, value: Any) -> None:
        """Report a finished step (nothing when no ``on_step`` is given)."""
        if self.on_step:
            self.on_step(name, value)


@dataclass(frozen=True)
class RayOptions:
    """How the Ray engine runs: the cluster ``address`` (None: RAY_ADDRESS, else a local
    Ray), actors (``workers``; None: one per GPU, else per CPU), row ids per shard (the unit
    of resume), the rows the UMAP/HDBSCAN fit sees and the seed of that sample."""

    address: str | None = None
    workers: int | None = None
    shard_rows: int = 50_000
    sample_size: int = 200_000
    sample_seed: int = 0
    backend: str = "auto"  # of the embedding; "auto" is decided by the cluster's GPUs

    def connect(self) -> None:
        """Connect to the Ray cluster at ``address`` (nothing without one: Ray starts on first use)."""
        if self.address:
            scale.connect(self.address)


@dataclass(frozen=True)
class ScaledMap:
    """A map made by the Ray engine: its folders of embedding and map shards."""
    embed_dir: Path
    map_dir: Path


MapHandle = Union[MapData, ScaledMap]


@dataclass(frozen=True)
class ExportTarget:
    """Where an export goes: ``path`` (a file; with the Ray engine a new or empty folder),
    ``fmt`` (parquet, jsonl, csv; None: the extension), the manifest path (None: path +
    ``.manifest.json``) and whether the other members of chosen duplicate groups go too."""

    path: Path | str
    fmt: str | None = None
    manifest_path: Path | str | None = None
    include_duplicates: bool = False

    def manifest_file(self) -> Path:
        """The manifest's path: the given one, else the data path + ``.manifest.json``."""
        return Path(self.manifest_path) if self.manifest_path else Path(str(self.path) + ".manifest.json")


@dataclass(frozen=True)
class Exported:
    """A written export: the data path (file or folder of shards), the manifest path, the
    manifest, the rows selected, duplicate rows exported beside them (None: not asked),
    and the files written (one, or the Parquet part files)."""

    path: Path
    manifest_path: Path
    manifest: dict
    n_rows: int
    n_duplicates: int | None = None
    files: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class RunResult:
    """What ``run`` made: the map handle, the selection (a ScaleSelection with Ray), the
    export, and the seconds from the end of the ingest (Ray: from the start)."""

    map: MapHandle
    selection: Any
    exported: Exported
    seconds: float
