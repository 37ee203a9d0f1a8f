"""Seeded fake encoders and small data writers shared by the core tests.

Every fake implements the ``core.encoders.base.Encoder`` protocol (``model_id``, ``dim``,
``embed(texts) -> float32 (n, dim)``) and is *per-text deterministic*: a text's
vector depends only on the text (and the fake's seed), never on the batch it
arrived in, so cached, resumed and uninterrupted runs must agree bit for bit.
The exceptions say so: ``WrongDimEncoder`` breaks the protocol on purpose, and
``PrefetchingEncoder`` wraps a real encoder.  This is the only module that defines
fakes; no two share a name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pyarrow as pa

REPO_ROOT = Path(__file__).resolve().parent.parent
BOW_DIM = 48
SAMPLE_CSV = REPO_ROOT / "sample_data" / "prompts.csv"


def _text_seed(text: str, salt: int) -> int:
    return int.from_bytes(hashlib.md5(f"{salt}\x00{text}".encode()).digest()[:8], "little")


def _unit_rows(a: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return (a / np.where(n == 0, 1, n)).astype(np.float32)


class HashEncoder:
    """Each text -> a fixed pseudo-random unit vector (seeded by the text's md5).

    Records every call so tests can check what was (not) computed and in which batches.
    ``fail_after_calls``: raise ``RuntimeError`` on that many-th call (0-based count of
    calls already made), to simulate a crash in the middle of a run.
    """

    def __init__(self, dim: int = 16, seed: int = 0, model_id: str = "fake/hash-encoder",
                 fail_after_calls: int | None = None):
        self.dim = dim
        self.seed = seed
        self.model_id = model_id
        self.fail_after_calls = fail_after_calls
        self.calls: list[list[str]] = []

    # what was encoded, flattened
    @property
    def texts_seen(self) -> list[str]:
        return [t for call in self.calls for t in call]

    def vector(self, text: str) -> np.ndarray:
        rng = np.random.default_rng(_text_seed(text, self.seed))
        return self._finish(text, rng)

    def _finish(self, text: str, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal(self.dim).astype(np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.fail_after_calls is not None and len(self.calls) >= self.fail_after_calls:
            raise RuntimeError(f"simulated encoder crash after {len(self.calls)} calls")
        texts = list(texts)
        self.calls.append(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return _unit_rows(np.stack([self.vector(t) for t in texts]))


class TopicEncoder(HashEncoder):
    """Text -> fixed random direction of its topic + seeded per-text noise.

    The topic of a text is looked up in ``text_topics`` (e.g. from the generated
    table's ``topic`` column); failing that, the first of ``keywords`` that occurs in
    the text as a word.  Texts with no topic get pure noise.  With ``noise`` well
    below 1 the topics form tight, well separated clusters whose ids are known.
    """

    def __init__(self, text_topics: Mapping[str, str] | None = None, keywords: Sequence[str] = (),
                 dim: int = 24, noise: float = 0.15, seed: int = 0, model_id: str = "fake/topic-encoder",
                 fail_after_calls: int | None = None):
        super().__init__(dim=dim, seed=seed, model_id=model_id, fail_after_calls=fail_after_calls)
        self.text_topics = dict(text_topics or {})
        self.keywords = list(keywords)
        self.noise = noise
        self._dirs: dict[str, np.ndarray] = {}

    def direction(self, topic: str) -> np.ndarray:
        if topic not in self._dirs:
            rng = np.random.default_rng(_text_seed("topic:" + topic, self.seed))
            d = rng.standard_normal(self.dim)
            self._dirs[topic] = (d / np.linalg.norm(d)).astype(np.float32)
        return self._dirs[topic]

    def topic_of(self, text: str) -> str | None:
        if text in self.text_topics:
            return self.text_topics[text]
        words = set(re.findall(r"[a-z0-9_]+", text.lower()))
        for k in self.keywords:
            if k.lower() in words:
                return k
        return None

    def _finish(self, text: str, rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal(self.dim).astype(np.float32) / np.sqrt(self.dim)
        topic = self.topic_of(text)
        if topic is None:
            return noise
        return self.direction(topic) + self.noise * noise


# Words the generator uses in every topic ("Please help me ..."); BagOfWordsEncoder skips them.
BOW_STOP = set("""help with what please should explain from give write about need between some thank thanks when
advance detailed step using quick question that this keep brief after list bullet points best last year hello
could would your have there they their them then than into like make does much many more most very also just
only other which where while will were been being here know want make tell show short simple really""".split())



class BagOfWordsEncoder:
    """A deterministic bag-of-words encoder: each word adds a fixed random vector,
    so texts that share vocabulary (the generator's topics) land close together."""

    model_id = "test/hash-bow"
    dim = BOW_DIM

    def __init__(self):
        self._cache: dict[str, np.ndarray] = {}

    def _word(self, w: str) -> np.ndarray:
        v = self._cache.get(w)
        if v is None:
            seed = int.from_bytes(hashlib.md5(w.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).normal(size=self.dim).astype(np.float32)
            self._cache[w] = v
        return v

    def embed(self, texts):
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            words = [w for w in re.findall(r"[a-z]{4,}", t.lower()) if w not in BOW_STOP]
            for w in words:
                out[i] += self._word(w)
            n = np.linalg.norm(out[i])
            out[i] = out[i] / n if n else out[i]
        return out


class SlowEncoder(HashEncoder):
    """A :class:`HashEncoder` that sleeps ``delay`` seconds per call (a stage that runs long)."""

    def __init__(self, *args, delay: float = 0.05, **kwargs):
        super().__init__(*args, **kwargs)
        self.delay = delay

    def embed(self, texts):
        time.sleep(self.delay)
        return super().embed(texts)


class WrongDimEncoder(HashEncoder):
    """Returns vectors one wider than its declared ``dim`` (an encoder that breaks the protocol)."""

    def embed(self, texts):
        return np.zeros((len(texts), self.dim + 1), np.float32)


class PrefetchingEncoder:
    """Wraps a real encoder as a prefetching (GPU-style) one: ``tokenize`` + ``encode_tokenized``
    only; calling ``embed`` fails, so a test can check the prefetch loop is the one used."""

    prefetch = True

    def __init__(self, inner):
        self.inner, self.model_id, self.dim = inner, inner.model_id, inner.dim

    def tokenize(self, texts):
        return self.inner.tokenize(texts)

    def encode_tokenized(self, feats):
        return self.inner.encode_tokenized(feats)

    def embed(self, texts):
        raise AssertionError("the prefetch loop must not call embed")


# -- encoders for the Ray crash tests (picklable: the Ray workers import this module) ------


class CrashOnceEncoder(HashEncoder):
    """Kills its worker process (os._exit) the first time it sees ``trigger``."""

    def __init__(self, marker: str, trigger: str):
        super().__init__(dim=16, seed=5)
        self.marker, self.trigger = marker, trigger

    def embed(self, texts):
        if self.trigger in texts and not os.path.exists(self.marker):
            Path(self.marker).write_text("killed once")
            os._exit(1)
        return super().embed(texts)


class FailUntilEncoder(HashEncoder):
    """Raises on ``trigger`` until the file ``allow`` exists (a run that fails, then resumes)."""

    def __init__(self, allow: str, trigger: str):
        super().__init__(dim=16, seed=5)
        self.allow, self.trigger = allow, trigger

    def embed(self, texts):
        if self.trigger in texts and not os.path.exists(self.allow):
            raise RuntimeError("simulated failure of one shard")
        return super().embed(texts)


class EncoderFactory:
    """A picklable ``encoder_factory``: ``EncoderFactory(cls, *args)()`` is ``cls(*args)``."""

    def __init__(self, cls, *args):
        self.cls, self.args = cls, args

    def __call__(self):
        return self.cls(*self.args)


# -- data files ----------------------------------------------------------------------


def write_table(table: pa.Table, path: Path | str, fmt: str | None = None) -> Path:
    """Write ``table`` as csv, tsv, json (one array), jsonl or parquet (from the extension)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    elif fmt in ("csv", "tsv"):
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=True, delimiter="," if fmt == "csv" else "\t"))
    elif fmt == "json":
        path.write_text(json.dumps(table.to_pylist(), ensure_ascii=False))
    elif fmt == "jsonl":
        with open(path, "w", encoding="utf-8") as fh:
            for row in table.to_pylist():
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        raise ValueError(f"unknown format {fmt}")
    return path


def read_any(path: Path | str) -> pa.Table:
    """Read a file written by ``sieve export`` (parquet / jsonl / csv) as an Arrow table."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path)
    if ext == ".csv":
        import pyarrow.csv as pacsv

        return pacsv.read_csv(path)
    if ext in (".jsonl", ".json"):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return pa.Table.from_pylist(rows)
    raise ValueError(ext)


def blobs_on_sphere(centers: np.ndarray, sizes: Sequence[int], spread: float, seed: int = 0) -> np.ndarray:
    """Unit vectors scattered tightly (``spread``) around each of ``centers``."""
    rng = np.random.default_rng(seed)
    out = []
    for c, s in zip(centers, sizes):
        c = np.asarray(c, np.float64) / np.linalg.norm(c)
        out.append(c + spread * rng.standard_normal((s, len(c))))
    return _unit_rows(np.concatenate(out))


def query_table(ws, sql: str, params: list | None = None) -> pa.Table:
    """Run ``sql`` on a workspace's DuckDB file and return the rows as an Arrow table
    (through plain Python rows, so it does not depend on DuckDB's Arrow API)."""
    with ws.connect() as con:
        res = con.execute(sql, params or [])
        names = [d[0] for d in res.description]
        rows = res.fetchall()
    return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})


# -- the sieve command line ------------------------------------------------------------


def sieve_command() -> list[str]:
    """The installed ``sieve`` entry point of this interpreter's environment (or ``python -m core.cli``)."""
    import sys

    script = Path(sys.executable).parent / "sieve"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "core.cli"]


def sieve_env() -> dict:
    import os

    return dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO_ROOT))


def start_sieve(*args):
    """Start ``sieve ARGS`` from the repository root; returns the Popen (stdout/stderr piped as text)."""
    import subprocess

    return subprocess.Popen(sieve_command() + [str(a) for a in args], cwd=REPO_ROOT, env=sieve_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_sieve(*args, timeout: float = 600):
    """Run ``sieve ARGS`` to completion; returns a CompletedProcess."""
    import subprocess

    proc = start_sieve(*args)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def params_with_a_local_only_field() -> type:
    """A SelectParams subclass with one more field, ``fancy`` (str, default ``"off"``), declared
    local-only (``metadata={"engines": ("local",)}``): patched in as
    ``core.engines.base.SelectParams`` it shows that a declaration is all an engine's refusals
    read.  core is imported here, not at module load (Ray workers import this module)."""
    import dataclasses

    from core.selection import SelectParams

    @dataclasses.dataclass
    class Extended(SelectParams):
        fancy: str = dataclasses.field(default="off", metadata={"engines": ("local",)})

    return Extended


def build_topic_map(root: Path) -> tuple:
    """(Workspace, table) of a real map under ``root``: 200 generated rows of known topics
    (sample_data.generate, seed 3, no mess) embedded with the packaged model (torch fp32,
    CPU), UMAP n_neighbors 10 seed 1, HDBSCAN min_cluster_size 6.  Row ids follow the
    table's row order; its ``topic`` column is the ground truth."""
    import pyarrow.parquet as pq

    from core.engines.local import MapParams, build_map
    from core.stages.cluster import ClusterParams
    from core.stages.dataset import TextSpec
    from core.stages.embed import EmbedParams
    from core.stages.ingest import IngestParams, ingest
    from core.stages.project import ProjectParams
    from core.store.workspace import Workspace
    from sample_data.generate import generate_rows

    table = generate_rows(200, seed=3, mess=False)
    pq.write_table(table, root / "rows.parquet")
    ws = Workspace(root / "ws")
    ingest(ws, IngestParams(str(root / "rows.parquet"), TextSpec(column="text")))
    # auto_rule 1, assign_noise None: the map these tests were written against (before issue 16)
    build_map(ws, MapParams(EmbedParams(backend="torch", device="cpu"), ProjectParams(n_neighbors=10, seed=1),
                            ClusterParams(min_cluster_size=6, auto_rule=1, assign_noise=None)))
    return ws, table
