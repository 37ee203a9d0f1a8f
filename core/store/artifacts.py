"""Artifacts on disk: stage keys (content hashes of params + parent + schema), atomic writes
(temp sibling, fsync, rename; stale temps of dead processes swept), checksums and sidecars.

A stage's key is ``stable_hash({"stage", "schema": SCHEMA_VERSION, "params", "parent"})``:
sha256 of canonical JSON, first 16 hex digits.  Writes never leave a half-written file: a
reader sees the old file or the new one.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import threading
import uuid
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from core.store.errors import SieveError

SCHEMA_VERSION = 1  # in every stage key and artifact sidecar; bumped when stored artifacts change meaning


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types: dataclasses as dicts, dict keys as sorted strings, tuples as
    lists, numpy scalars/arrays as numbers/lists, paths as strings."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def canonical_json(obj: Any) -> str:
    """Compact JSON of :func:`jsonable` ``obj`` with sorted keys (ASCII): the text stage keys hash."""
    return json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def stable_hash(*parts: Any, length: int = 16) -> str:
    """A short, stable hex digest of any JSON-able parts (dataclasses included)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(canonical_json(p).encode())
        h.update(b"\x00")
    return h.hexdigest()[:length]


def stage_key(stage: str, params: Any, parent: str | None) -> str:
    """The cache key of a stage: its params, its input's key and the schema version."""
    return stable_hash({"stage": stage, "schema": SCHEMA_VERSION, "params": params, "parent": parent})


def tmp_sibling(path: Path) -> Path:
    """A fresh temp name beside ``path`` (``.NAME.tmp-PID-xxxx``), after sweeping dead writers' temps."""
    sweep_stale_temps(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def pid_alive(pid: int) -> bool:
    """True if a process with id ``pid`` exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def sweep_stale_temps(path: Path | str) -> list[Path]:
    """Remove temp files/folders beside ``path`` left by writers that were killed.

    A temp name carries its writer's pid (``.NAME.tmp-PID-xxxx``); it is removed only
    when that process no longer exists, so a concurrent writer's file is never touched.
    Returns what was removed."""
    path = Path(path)
    removed: list[Path] = []
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.tmp-*"))
    except OSError:
        return removed
    for tmp in candidates:
        pid_text = tmp.name.rsplit(".tmp-", 1)[-1].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or pid_alive(int(pid_text)):
            continue
        try:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


def atomic_write(path: Path | str, write) -> Path:
    """Call ``write(fh)`` on a temp file beside ``path``, fsync it, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_sibling(path)
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp sibling, fsync, rename); returns ``path``."""
    return atomic_write(path, lambda fh: fh.write(data))


def read_json_file(path: Path | str, what: str):
    """The parsed JSON of a user-named file (any JSON value).

    Raises SieveError, one line naming ``what`` and the file, when it does not exist, is
    not valid UTF-8 JSON, or is nested too deeply to parse."""
    p = Path(path)
    if not p.is_file():
        raise SieveError(f"{what} {p} does not exist")
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SieveError(f"{what} {p} is not valid JSON: {exc}") from None
    except RecursionError:
        raise SieveError(f"{what} {p} is nested too deeply to parse") from None


def atomic_write_json(path: Path | str, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, (json.dumps(jsonable(obj), indent=2, sort_keys=True) + "\n").encode())


def atomic_save_npy(path: Path | str, arr: np.ndarray) -> Path:
    """Save ``arr`` as a .npy file (no pickles) at ``path`` atomically; returns ``path``."""
    return atomic_write(path, lambda fh: np.save(fh, arr, allow_pickle=False))


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_sibling(path)
    try:
        yield tmp
        if not tmp.exists():
            raise SieveError(f"nothing was written to {path}")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink()


RECOMPUTE = {"embed": "sieve map", "project": "sieve map", "cluster": "sieve map", "label": "sieve map",
             "tokens": "sieve select", "dedup": "sieve select", "textkeys": "sieve select"}


def corrupt(path: Path, stage: str, why: str) -> SieveError:
    """The one-line error for a damaged artifact file, offering to recompute its stage."""
    folder = path.parent
    cmd = RECOMPUTE.get(stage, "the stage")
    return SieveError(f"{path} is corrupt ({why}); delete {folder} and run `{cmd}` again to recompute "
                      f"the {stage} stage")


def file_sha256(path: Path | str) -> str:
    """The sha256 hex digest (64 characters) of a file's bytes (hardware-accelerated on most
    CPUs: ~0.3 s for 150 MB).  Raises OSError when the file cannot be read."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def file_checksum(path: Path | str) -> str:
    """``sha256:<hex>`` of a file's bytes (:func:`file_sha256` with its algorithm named)."""
    return "sha256:" + file_sha256(path)


_verified: dict[str, tuple] = {}  # path -> (size, mtime_ns, inode, checksum) already verified in this process

_verified_guard = threading.Lock()


def verify_file(path: Path | str, expected: str) -> bool:
    """True when ``path`` has checksum ``expected``.  Hashed once per process per file
    version (size, mtime and inode memoised), so reloading a large array costs nothing."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return False
    stamp = (st.st_size, st.st_mtime_ns, st.st_ino, expected)
    with _verified_guard:
        if _verified.get(str(path)) == stamp:
            return True
    ok = file_checksum(path) == expected
    if ok:
        with _verified_guard:
            _verified[str(path)] = stamp
    return ok


def sidecar_checksum(meta: dict) -> str:
    """``sha256:<hex>`` of a sidecar's canonical JSON without its own ``meta_checksum``."""
    body = {k: v for k, v in meta.items() if k != "meta_checksum"}
    return "sha256:" + hashlib.sha256(canonical_json(body).encode()).hexdigest()


def read_sidecar(path: Path, stage: str) -> dict:
    """An artifact's ``meta.json`` as a dict (its own checksum is checked by ``load_artifact``)."""
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        raise corrupt(path, stage, f"unreadable: {' '.join(str(exc).split())[:120]}") from exc
    return meta
