"""The engine interface: embed, map, select and export over a map handle, and what each
engine can and cannot run, declared once.

A map handle is what an engine's :meth:`Engine.map` returns and its other steps take:
:class:`core.engines.local.MapData` (aligned in-memory arrays) for the local engine,
:class:`core.engines.ray.engine.ShardedMap` (folders of Parquet shards) for Ray.  Both
engines select into the same :class:`core.selection.Selection` and write the same typed
manifest (:class:`core.manifest.Manifest`).

What an engine runs is declared, not listed by hand: each pick method names its engines
(:class:`core.selection.picks.PickMethod`), and a :class:`core.selection.SelectParams` field
that only some engines honour says so in its metadata (``field(metadata={"engines": ("local",)})``,
binding only when the field differs from its default).  :func:`refusals` reads both.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Protocol

from core.engines.local import MapParams, Progress, StageCallback
from core.selection import REGISTRY, Selection, SelectParams
from core.stages.embed import EmbedParams
from core.store.workspace import SieveError, Workspace

Step = Callable[[str, Any], None]  # (step name, its result): "dataset", "embeddings", "map", "selection", ...


@dataclass(frozen=True)
class Events:
    """Where a workflow reports what it does; every field may be None.

    ``progress(stage, done, total, message)`` and ``on_stage(stage, 'start'|'done', info)``
    are :mod:`core.engines.local`'s callbacks; ``on_step(name, value)`` runs after each finished
    step with its result (see each workflow and engine for the names it reports);
    ``on_wait(holder)`` runs when the local engine's map queues behind another computation
    that holds the workspace (``holder``: what it computes)."""

    progress: Progress | None = None
    on_stage: StageCallback | None = None
    on_step: Step | None = None
    on_wait: Callable[[str], None] | None = None

    def step(self, name: str, value: Any) -> None:
        """Report a finished step (nothing when no ``on_step`` is given)."""
        if self.on_step:
            self.on_step(name, value)


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


def not_run_by(engine: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What ``engine`` does not run, as declared: (the SelectParams fields it honours only at
    their defaults, the pick methods it does not run), each in declaration order."""
    opts = tuple(f.name for f in fields(SelectParams)
                 if f.metadata.get("engines") is not None and engine not in f.metadata["engines"])
    return opts, tuple(name for name, m in REGISTRY.items() if engine not in m.engines)


def _default(f) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


class Unsupported(SieveError):
    """An option an engine cannot run: ``option`` (the SelectParams field, or ``pick``), its
    ``value``, the ``engine``'s name (``label``: as the message calls it) and the engines that
    run it (``allowed``).  The message names the field (``dedup='exact' is not supported by the
    Ray engine yet; use the local engine for it``); a front end can name its own control
    instead with :meth:`named` (the CLI: the flag as typed)."""

    def __init__(self, option: str, value: Any, engine: str, allowed: tuple[str, ...], label: str | None = None):
        self.option, self.value, self.engine, self.allowed = option, value, engine, tuple(allowed)
        self.label = label or engine
        super().__init__(self.named(f"{option}=", repr(value), self.label))

    def named(self, name: str, value: str, label: str | None = None) -> str:
        """The refusal with the option called ``name`` followed by ``value`` (e.g. ``--dedup``,
        ``exact``: ``--dedup exact is not supported by the ray engine yet; ...``); ``label``:
        the engine's name in it (default: its name, as ``--engine`` takes it).  A ``name``
        ending in ``=`` is joined to the value without a space."""
        head = name + value if name.endswith("=") else f"{name} {value}"
        return (f"{head} is not supported by the {label or self.engine} engine yet; "
                f"use the {' or '.join(self.allowed)} engine for it")

    def __reduce__(self):  # picklable (Ray ships exceptions between processes)
        return (Unsupported, (self.option, self.value, self.engine, self.allowed, self.label))


def unsupported_options(params: SelectParams, engine: str, label: str | None = None) -> list[Unsupported]:
    """Each option of ``params`` that ``engine`` cannot run, as an :class:`Unsupported`: each
    field set away from its default whose metadata ``engines`` does not list ``engine`` (in
    field order), then a pick whose :class:`~core.selection.picks.PickMethod` does not.
    ``label``: the engine's name in the messages (default ``engine``).  [] when it runs them all."""
    out = []
    for f in fields(params):
        allowed = f.metadata.get("engines")
        value = getattr(params, f.name)
        if allowed is not None and engine not in allowed and value != _default(f):
            out.append(Unsupported(f.name, value, engine, allowed, label))
    method = REGISTRY.get(params.pick)
    if method is not None and engine not in method.engines:
        out.append(Unsupported("pick", params.pick, engine, method.engines, label))
    return out


def refusals(params: SelectParams, engine: str, label: str | None = None) -> list[str]:
    """One line per option of ``params`` that ``engine`` cannot run, each naming the option
    (``dedup='exact' is not supported by the Ray engine yet; use the local engine for it``),
    in the order of :func:`unsupported_options`.  [] when it runs them all."""
    return [str(u) for u in unsupported_options(params, engine, label)]


def check_supported(params: SelectParams, engine: str, label: str | None = None) -> None:
    """Raise the first of :func:`unsupported_options` (an :class:`Unsupported`, a SieveError);
    nothing when ``engine`` runs ``params``."""
    problems = unsupported_options(params, engine, label)
    if problems:
        raise problems[0]


class Engine(Protocol):
    """One way to compute a map and pick a subset from it.  Every method raises
    :class:`core.store.workspace.SieveError` (one line naming the parameter or file) on bad
    input; the ``check*`` methods run before any work."""

    name: str
    keeps_selection: bool  # whether `select` is remembered as the workspace's selection (`sieve export`)

    def unsupported(self, params: SelectParams) -> list[str]:
        """One line per option of ``params`` this engine cannot run (:func:`refusals`)."""

    def check(self, params: SelectParams) -> None:
        """SieveError naming the first option of ``params`` this engine cannot run."""

    def check_target(self, target: ExportTarget) -> None:
        """SieveError on an output this engine cannot write (format, include_duplicates...)."""

    def check_run(self, map_params: MapParams, sel_params: SelectParams, target: ExportTarget,
                  edits_path: Path | str | None) -> ExportTarget:
        """Refuse, before any work, what a whole ``run`` cannot do; returns the target to write."""

    def embed(self, ws: Workspace, params: EmbedParams, events: Events = Events()) -> Any:
        """Embed the workspace's current dataset (cached per content key)."""

    def map(self, ws: Workspace, params: MapParams, *, edits: list[dict] | None = None,
            events: Events = Events()) -> Any:
        """Embed, project, cluster and name the current dataset; returns the map handle
        (and reports the engine's map step(s) through ``events``)."""

    def map_embeddings(self, ws: Workspace, params: MapParams, events: Events = Events()) -> Any:
        """Map the embeddings the workspace holds (from :meth:`embed`) without embedding again."""

    def current_map(self, ws: Workspace) -> Any:
        """The workspace's latest map handle of this engine; SieveError when there is none."""

    def select(self, ws: Workspace, handle: Any, params: SelectParams) -> Selection:
        """Pick the subset of the map ``handle`` under ``params``' budget."""

    def report(self, handle: Any, selection: Selection, params: SelectParams, *,
               max_vector_rows: int | None = None) -> Any:
        """The selection's metrics beside random subsets (the vector metrics only up to
        ``max_vector_rows`` chosen rows), or None when the engine has none."""

    def export(self, ws: Workspace, handle: Any, selection: Selection, params: SelectParams, target: ExportTarget,
               *, metrics: Any = None) -> Exported:
        """Write the chosen rows to ``target`` and their manifest beside them, never leaving a
        mismatched pair."""

    def reproduce(self, ws: Workspace, manifest: dict, manifest_path: Path | str, target: ExportTarget, *,
                  data: str | None = None, events: Events = Events()) -> Exported:
        """Rebuild the subset of ``manifest`` (written by this engine) and export it; SieveError
        when the row ids differ."""
