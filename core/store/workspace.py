"""The workspace: one folder holding a DuckDB file (the dataset and small tables)
and content-addressed artifacts (arrays + a JSON sidecar) for each pipeline stage.

Every artifact lives in ``artifacts/<stage>/<key>/`` where ``key`` is a hash of the
stage's parameters, the key of its input and ``SCHEMA_VERSION`` (:mod:`core.store.artifacts`).  An artifact
folder is built under a temporary name and renamed into place, so it either exists whole
or not at all; ``meta.json`` inside it names the parent artifact (lineage).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable

import duckdb
import numpy as np

from core.store import artifacts
from core.store.artifacts import (corrupt, file_checksum, jsonable, read_sidecar, sidecar_checksum, tmp_sibling,
                                  verify_file)
from core.store.errors import SieveError
from core.store.sql import quote_ident

DB_NAME = "sieve.duckdb"
DEFAULT_WORKSPACE = ".sieve"
DATASET_TABLE = "dataset"  # the current dataset (core.stages.ingest writes it)


class WorkspaceBusy(SieveError):
    """Another process holds the workspace's write lock."""


def cache_root() -> Path:
    """Sieve's per-user cache folder (exported models, the preview model, numba's code):
    ``$SIEVE_CACHE_DIR`` or ``~/.cache/sieve``."""
    return Path(os.environ.get("SIEVE_CACHE_DIR") or (Path.home() / ".cache" / "sieve")).expanduser()


_held = threading.local()  # per-thread re-entrancy count of workspace locks
_connect_locks: dict[str, threading.RLock] = {}
_process_locks: dict[str, threading.Lock] = {}
_connect_locks_guard = threading.Lock()


def _process_lock(root: Path) -> threading.Lock:
    """One write lock per workspace per process: app sessions (threads) queue on it
    without a timeout, before the cross-process ``flock``."""
    with _connect_locks_guard:
        return _process_locks.setdefault(str(root), threading.Lock())


def _connect_lock(root: Path) -> threading.RLock:
    """One re-entrant lock per workspace per process: DuckDB refuses two threads
    attaching the same file at the same moment ("Unique file handle conflict")."""
    with _connect_locks_guard:
        return _connect_locks.setdefault(str(root), threading.RLock())


class Workspace:
    """A folder with ``sieve.duckdb`` and ``artifacts/``.  Cheap to construct."""

    def __init__(self, root: Path | str = DEFAULT_WORKSPACE, *, lock_timeout: float | None = None):
        self.root = Path(root).expanduser().resolve()
        if lock_timeout is None:
            lock_timeout = float(os.environ.get("SIEVE_LOCK_TIMEOUT", "30"))
        self.lock_timeout = lock_timeout
        if self.root.exists() and not self.root.is_dir():
            raise SieveError(f"workspace path {self.root} exists and is not a folder")

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    # -- the write lock ----------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, what: str = "a stage", on_wait: Callable[[str], None] | None = None):
        """Hold the workspace's write lock (a ``flock`` on ``.lock``) for a block.

        Re-entrant within a thread.  Another thread of this process (another app session)
        queues for as long as the holder runs: it is this same live process, so waiting
        cannot hang on a dead holder.  Another process waits up to ``lock_timeout`` seconds,
        then gets :class:`WorkspaceBusy`.  ``on_wait(holder)`` is called once when the
        caller has to wait, with what the holder is doing (e.g. "pid 12 is running the map
        since 15:40:02 UTC"), so a UI can show the work as queued.
        """
        counts = getattr(_held, "counts", None)
        if counts is None:
            counts = _held.counts = {}
        key = str(self.root)
        if counts.get(key):
            counts[key] += 1
            try:
                yield
            finally:
                counts[key] -= 1
            return
        plock = _process_lock(self.root)
        if not plock.acquire(blocking=False):
            if on_wait is not None:
                on_wait(self._holder())
            plock.acquire()  # a session of this same process: queue behind it
        try:
            with self._flock(what, on_wait):
                counts[key] = 1
                try:
                    yield
                finally:
                    counts[key] = 0
        finally:
            plock.release()

    def _holder(self) -> str:
        try:
            return (self.root / ".lock").read_text().strip() or "another computation"
        except OSError:
            return "another computation"

    @contextlib.contextmanager
    def _flock(self, what: str, on_wait: Callable[[str], None] | None):
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            fh = open(self.root / ".lock", "a+")
        except OSError as exc:
            raise SieveError(f"workspace {self.root} is not writable ({exc.strerror}: {exc.filename}); "
                             "use a workspace folder you can write to") from exc
        deadline = time.monotonic() + self.lock_timeout
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    fh.seek(0)
                    holder = fh.read().strip() or "another process"
                    if time.monotonic() >= deadline:
                        raise WorkspaceBusy(
                            f"workspace {self.root} is busy ({holder}) and stayed busy for "
                            f"{self.lock_timeout:.0f} s; try {what} again when it is done"
                        ) from None
                    if on_wait is not None and not told:
                        on_wait(holder)
                        told = True
                    time.sleep(0.1)
            fh.seek(0)
            fh.truncate()
            since = time.strftime("%H:%M:%S UTC", time.gmtime())
            fh.write(f"pid {os.getpid()} is running {what} since {since}")
            fh.flush()
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        finally:
            fh.close()

    # -- DuckDB ---------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self, *, read_only: bool = False):
        """Open the workspace database for the duration of a block.

        DuckDB allows one writing process per file.  A second process waits up to
        ``lock_timeout`` seconds, then gets a clear :class:`WorkspaceBusy`.  Threads of
        one process (app sessions) take turns.
        """
        with _connect_lock(self.root):
            with self._open(read_only) as con:
                yield con

    @contextlib.contextmanager
    def _open(self, read_only: bool):
        self.root.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                con = duckdb.connect(str(self.db_path), read_only=read_only and self.db_path.exists())
                break
            except duckdb.Error as exc:
                if not _lock_conflict(exc):
                    raise database_error(self.db_path, exc) from exc
                if time.monotonic() >= deadline:  # another process holds DuckDB's file lock
                    raise WorkspaceBusy(
                        f"workspace {self.root} is in use by another process and stayed locked for "
                        f"{self.lock_timeout:.0f} s; wait for it to finish or use another --workspace"
                    ) from exc
                time.sleep(0.2)
        try:
            try:
                _ensure_meta_table(con, read_only, self.root)
            except duckdb.Error as exc:
                raise database_error(self.db_path, exc) from exc
            yield con
        finally:
            con.close()

    def get_meta(self, key: str, default: Any = None) -> Any:
        if not self.db_path.exists():
            return default
        with self.connect() as con:
            rows = con.execute("SELECT value FROM sieve_meta WHERE key = ?", [key]).fetchall()
        row = rows[0] if rows else None
        return default if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any, con=None) -> None:
        payload = json.dumps(jsonable(value), sort_keys=True)
        sql = "INSERT OR REPLACE INTO sieve_meta(key, value) VALUES (?, ?)"
        if con is not None:
            con.execute(sql, [key, payload])
            return
        with self.connect() as c:
            c.execute(sql, [key, payload])

    # -- artifacts ------------------------------------------------------------
    def artifact_dir(self, stage: str, key: str) -> Path:
        return self.artifacts / stage / key

    def has_artifact(self, stage: str, key: str) -> bool:
        return (self.artifact_dir(stage, key) / "meta.json").is_file()

    def save_artifact(self, stage: str, key: str, arrays: dict[str, np.ndarray], meta: dict) -> Path:
        """Write arrays and a sidecar atomically as one folder."""
        final = self.artifact_dir(stage, key)
        if final.exists() and not (final / "meta.json").is_file():
            shutil.rmtree(final, ignore_errors=True)  # a folder without its sidecar is not an artifact
        tmp = tmp_sibling(final)
        tmp.mkdir(parents=True)
        try:
            for name, arr in arrays.items():
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
            sidecar = jsonable({
                "stage": stage,
                "key": key,
                "schema": artifacts.SCHEMA_VERSION,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "arrays": {n: {"shape": list(a.shape), "dtype": str(a.dtype)} for n, a in arrays.items()},
                **meta,
                "checksums": {f"{n}.npy": file_checksum(tmp / f"{n}.npy") for n in arrays},
            })
            sidecar["meta_checksum"] = sidecar_checksum(sidecar)
            (tmp / "meta.json").write_text(json.dumps(sidecar, indent=2, sort_keys=True))
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / "meta.json").is_file():
                    raise
                # Another process stored the same key first; keys name content, so keep theirs.
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final

    def load_artifact(self, stage: str, key: str, *, mmap: bool = True) -> tuple[dict[str, np.ndarray], dict]:
        """An artifact's arrays and sidecar, after checking them against the checksums the
        sidecar carries (:func:`verify_file`; artifacts written before checksums existed
        are checked for shape and dtype only).  A corrupt or truncated file raises
        :class:`SieveError` naming it and saying how to recompute the stage."""
        d = self.artifact_dir(stage, key)
        meta_path = d / "meta.json"
        if not meta_path.is_file():
            raise SieveError(f"no {stage} result with key {key} in workspace {self.root}; run that stage first")
        meta = read_sidecar(meta_path, stage)
        if meta.get("schema") != artifacts.SCHEMA_VERSION:
            raise SieveError(
                f"{stage} artifact {key} was written by schema {meta.get('schema')}, expected {artifacts.SCHEMA_VERSION}; "
                "it will be recomputed"
            )
        if "meta_checksum" in meta and sidecar_checksum(meta) != meta["meta_checksum"]:
            raise corrupt(meta_path, stage, "checksum mismatch")
        sums = meta.get("checksums") or {}
        arrays = {}
        for name, spec in (meta.get("arrays") or {}).items():
            path = d / f"{name}.npy"
            if f"{name}.npy" in sums and not verify_file(path, sums[f"{name}.npy"]):
                raise corrupt(path, stage, "checksum mismatch")
            try:
                arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
            except (OSError, ValueError, EOFError) as exc:
                raise corrupt(path, stage, f"unreadable: {exc}") from exc
            if list(arr.shape) != list(spec.get("shape", arr.shape)) or str(arr.dtype) != spec.get("dtype", str(arr.dtype)):
                raise corrupt(path, stage, f"shape {arr.shape} {arr.dtype}, expected {tuple(spec['shape'])} {spec['dtype']}")
            arrays[name] = arr
        return arrays, meta


def _lock_conflict(exc: BaseException) -> bool:
    """DuckDB's "another process has this file open" error (and only that one)."""
    return "conflicting lock" in str(exc).lower()


_DAMAGE = ("not a valid duckdb", "corrupt", "could not read enough bytes", "checksum", "truncated")


def is_damage(exc: BaseException) -> bool:
    """True for DuckDB errors that mean the database file itself is damaged."""
    low = str(exc).lower()
    return any(k in low for k in _DAMAGE)


def database_error(db_path: Path, exc: BaseException) -> SieveError:
    """One line for a workspace database DuckDB cannot use: damaged, not DuckDB, not writable."""
    text = " ".join(str(exc).split())
    low = text.lower()
    if "permission denied" in low or "read-only" in low or "read only" in low:
        why = "is not writable (read-only file or folder); use a workspace folder you can write to"
    elif db_path.is_file() and db_path.stat().st_size == 0:
        why = "is empty (0 bytes); delete it and run `sieve ingest` again"
    elif is_damage(exc):
        why = "is damaged (truncated or not a DuckDB file); move it away and run `sieve ingest` again"
    else:
        why = f"cannot be used ({text[:200]})"
    return SieveError(f"workspace database {db_path} {why}")


DERIVED_META = ("dataset", "map", "selection")
DERIVED_TABLES = ("dataset", "embed_cache")


def _ensure_meta_table(con, read_only: bool, root: Path | None = None) -> None:
    """Create the meta table, and check the workspace's schema version.

    A workspace written by an older schema is migrated by dropping what it derived
    (dataset table, embedding index, stage pointers and artifacts), so it is rebuilt
    rather than misread; one written by a newer Sieve is refused.
    """
    if read_only:
        return
    con.execute("CREATE TABLE IF NOT EXISTS sieve_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    rows = con.execute("SELECT value FROM sieve_meta WHERE key = 'schema_version'").fetchall()
    row = rows[0] if rows else None
    found = json.loads(row[0]) if row else None
    if found == artifacts.SCHEMA_VERSION:
        return
    if found is None:
        has_data = con.execute("SELECT count(*) FROM sieve_meta").fetchall()[0][0] > 0
        found = 0 if has_data else artifacts.SCHEMA_VERSION
    if isinstance(found, int) and found > artifacts.SCHEMA_VERSION:
        raise SieveError(
            f"workspace {root} was written by a newer Sieve (schema {found}, this one reads {artifacts.SCHEMA_VERSION}); "
            "upgrade Sieve or use another --workspace"
        )
    if found != artifacts.SCHEMA_VERSION:
        con.execute("BEGIN TRANSACTION")
        for t in DERIVED_TABLES:
            con.execute(f"DROP TABLE IF EXISTS {quote_ident(t)}")
        con.execute(f"DELETE FROM sieve_meta WHERE key IN ({', '.join('?' * len(DERIVED_META))})", list(DERIVED_META))
        con.execute("COMMIT")
        if root is not None:
            shutil.rmtree(root / "artifacts", ignore_errors=True)
            shutil.rmtree(root / "cache", ignore_errors=True)
    con.execute("INSERT OR REPLACE INTO sieve_meta(key, value) VALUES ('schema_version', ?)", [json.dumps(artifacts.SCHEMA_VERSION)])


def fetch_arrow(con, sql: str, params: list | None = None):
    """Run a query and return its rows as a pyarrow Table, without DuckDB 2's extra copy."""
    rel = con.sql(sql, params=params) if params else con.sql(sql)
    fetch = getattr(rel, "to_arrow_table", None) or getattr(rel, "arrow")
    return fetch()
