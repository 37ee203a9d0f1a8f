"""One confinement check for every path a user can type on a shared server.

Server mode is ``$SIEVE_DATA_DIR`` set: the data path, the reference (eval) set and a
model folder are then read only from inside that folder.  Files are written (exports,
manifests, map files, shard folders) only inside ``$SIEVE_EXPORT_DIR`` (default
``<workspace>/exports``).

The rules, for reads and writes alike: a path is relative to its folder; an absolute
path, ``~``, ``..`` and control characters (NUL, ANSI escapes) are refused before the
file system is touched, so nothing about files outside the folder is disclosed.  A
read never follows a symbolic link out of the folder, and a glob that reaches outside
fails with the same message as one that matches nothing.  A write never goes through
a symbolic link at all, never names the folder itself, and never replaces an existing
file unless the caller says so.  Error messages name only the path as typed, never
a file's contents.
"""

from __future__ import annotations

import glob as globlib
import os
import re
from pathlib import Path, PurePath

from core.store.workspace import SieveError

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
GLOB_CHARS = "*?["


def data_root() -> Path | None:
    """Server mode: ``$SIEVE_DATA_DIR`` (resolved), the only folder user paths may read; else None."""
    root = os.environ.get("SIEVE_DATA_DIR")
    return Path(root).expanduser().resolve() if root else None


def export_root(workspace_root: Path | str) -> Path:
    """Where the app may write: ``$SIEVE_EXPORT_DIR``, else ``<workspace>/exports`` (resolved)."""
    return Path(os.environ.get("SIEVE_EXPORT_DIR") or (Path(workspace_root) / "exports")).expanduser().resolve()


def plain_absolute(path: Path | str) -> Path:
    """``path`` made absolute and normalised (``~``, ``.``, ``..``) WITHOUT following symbolic
    links: a writer then replaces a planted link by a rename instead of writing through it."""
    return Path(os.path.abspath(os.path.expanduser(str(path))))


def shown(text: object) -> str:
    """``text`` with control characters (NUL, ANSI escapes, newlines) replaced by ``?``, for messages."""
    return _CONTROL.sub("?", str(text))


def relative_parts(raw: str, what: str, folder: str) -> PurePath:
    """``raw`` checked as a relative path: not empty, no control characters, not absolute,
    no ``~`` and no ``..``.  Raises SieveError naming ``what`` (e.g. "data path")."""
    raw = str(raw or "").strip()
    if not raw:
        raise SieveError(f"{what} is empty")
    if _CONTROL.search(raw):
        raise SieveError(f"{what} {shown(raw)!r} contains control characters")
    p = PurePath(raw)
    if p.is_absolute() or raw.startswith("~") or raw.startswith("\\"):
        raise SieveError(f"{what} {raw!r} must be relative to the {folder}, not absolute")
    if any(part == ".." for part in re.split(r"[\\/]", raw)):
        raise SieveError(f"{what} {raw!r} must not contain '..'")
    return p


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def confine_read(raw: str, root: Path | str, what: str = "data path", folder: str = "data folder") -> str:
    """``raw`` (a path or glob relative to ``root``) as an absolute path/pattern inside ``root``.

    Every file it names must resolve inside ``root``: a symbolic link out of the folder is
    refused, and a glob that reaches one fails exactly like a glob that matches nothing,
    so the files outside are not disclosed.  Raises SieveError."""
    rel = relative_parts(raw, what, folder)
    root = Path(root).expanduser().resolve()
    target = root / rel
    if any(ch in str(rel) for ch in GLOB_CHARS):
        matches = [Path(p) for p in globlib.glob(str(target), recursive=True)]
        files = [p for p in matches if p.is_file()]
        if not files or any(not _inside(p.resolve(), root) for p in matches):
            raise SieveError(f"{what} {str(raw).strip()!r}: no file inside the {folder} matches it "
                             "(files reached through links out of the folder are never read)")
        return str(target)
    if not _inside(target.resolve(), root):  # non-strict: the same answer whether the target exists or not
        raise SieveError(f"{what} {str(raw).strip()!r} leads outside the {folder}")
    return str(target)


def confine_write(raw: str, root: Path | str, what: str = "export path", folder: str = "export folder") -> Path:
    """``raw`` as an absolute path strictly inside ``root`` that no symbolic link leads through.

    Each existing component below ``root`` is checked with ``lstat``; the result is never
    ``root`` itself.  Raises SieveError."""
    rel = relative_parts(raw, what, folder)
    root = Path(root).expanduser().resolve()
    final = root / rel
    if final == root or not rel.parts or all(part in ("", ".") for part in rel.parts):
        raise SieveError(f"{what} {str(raw).strip()!r} names the {folder} itself; give a name inside it")
    check_no_links(final, root, what, folder)
    return final


def check_no_links(path: Path, root: Path, what: str = "export path", folder: str = "export folder") -> None:
    """Refuse ``path`` if it or any folder between ``root`` and it is a symbolic link."""
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            raise SieveError(f"{what} {str(path.relative_to(root))!r} goes through a symbolic link "
                             f"({current.name}); links are never written through in the {folder}")
        if not current.exists():
            return


def check_new_files(paths, *, overwrite: bool, what: str = "export") -> None:
    """Refuse to replace any of ``paths`` that exists, unless ``overwrite``; a symbolic link is
    refused either way (it would be written through).  Raises SieveError naming the file."""
    for p in paths:
        p = Path(p)
        if p.is_symlink():
            raise SieveError(f"{what}: {p.name} is a symbolic link; refusing to write through it")
        if p.exists() and not overwrite:
            raise SieveError(f"{what}: {p.name} already exists; choose another name or allow overwriting")


