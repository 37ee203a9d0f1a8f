"""What every map stage returns when it runs: one result type for embed, project, cluster and naming.

Each of those stages exposes ``run(ws, inputs, params) -> StageResult``: ``inputs`` is the key of
the artifact it reads (embed: None, it reads the current dataset; naming: (cluster key, embed
key)), and the result names the artifact it wrote or found.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.store.artifacts import read_sidecar
from core.store.workspace import Workspace


@dataclass(frozen=True)
class StageResult:
    """One stage's outcome: its artifact ``key`` (16 hex digits), whether that artifact was
    already ``cached`` (nothing computed), and its sidecar ``meta`` (``parent`` key, params,
    notes...; see :meth:`core.store.workspace.Workspace.save_artifact`)."""

    stage: str
    key: str
    cached: bool
    meta: dict = field(default_factory=dict)

    @property
    def parent(self) -> str | None:
        """The key of the artifact this one was computed from."""
        return self.meta.get("parent")


def stage_result(ws: Workspace, stage: str, key: str, cached: bool) -> StageResult:
    """The :class:`StageResult` of the artifact ``stage``/``key`` (its sidecar read and checked;
    raises SieveError when it is missing or damaged)."""
    meta = read_sidecar(ws.artifact_dir(stage, key) / "meta.json", stage)
    return StageResult(stage, key, bool(cached), meta)
