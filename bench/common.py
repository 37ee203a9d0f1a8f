"""Shared pieces of the benchmark harness: the machine's description, library versions,
running a command in a fresh process with its own wall/CPU/peak-RSS figures, medians,
and prepending a section to bench/RESULTS.md.  Standard library only at import time."""

from __future__ import annotations

import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
VERSIONED = ("numpy", "torch", "sentence-transformers", "transformers", "onnxruntime", "umap-learn", "pynndescent",
             "hdbscan", "fast-hdbscan", "numba", "scikit-learn", "duckdb", "pyarrow", "streamlit")


def machine() -> str:
    cores = os.cpu_count()
    try:
        mem_kb = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1])
        mem = f"{mem_kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration):
        mem = "RAM unknown"
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cores} cores ({cpu}), {mem}, {gpu()}, Python {platform.python_version()}, {platform.system()}"


def gpu() -> str:
    """The GPU's name, without importing torch (nvidia-smi), else 'no GPU'."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return "GPU " + "; ".join(x.strip() for x in out.stdout.strip().splitlines())
    except (OSError, subprocess.SubprocessError):
        pass
    return "no GPU"


def versions() -> str:
    from importlib import metadata

    parts = []
    for name in VERSIONED:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


def load() -> float:
    return os.getloadavg()[0]


@dataclass
class Proc:
    """One finished child process: its exit status, output and its own resource use."""

    cmd: list[str]
    rc: int
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float  # user + system CPU of the child (not its own children)
    peak_rss_mb: float
    timed_out: bool = False
    result: dict = field(default_factory=dict)  # the last JSON line of stdout, if any

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out

    def error(self) -> str:
        if self.timed_out:
            return f"timed out after {self.wall_s:.0f} s"
        lines = [x for x in self.stderr.strip().splitlines() if x.strip()]
        return f"exit {self.rc}: " + (lines[-1][:300] if lines else "(no message)")


def run_child(cmd: list[str], *, timeout: float | None = None, env: dict | None = None,
              cwd: Path = ROOT) -> Proc:
    """Run ``cmd`` in a fresh process; wall time, CPU time and peak RSS come from wait4,
    so they are the child's own.  Output goes through temporary files (no pipe deadlock)."""
    full_env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    full_env["PYTHONPATH"] = str(ROOT) + (os.pathsep + full_env["PYTHONPATH"] if full_env.get("PYTHONPATH") else "")
    if env:
        full_env.update(env)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=out, stderr=err, start_new_session=True)
        timed_out = False
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if timeout is not None and time.perf_counter() - t0 > timeout:
                timed_out = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # its own session: only this child and its children
                except ProcessLookupError:
                    pass
                pid, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    result = {}
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                result = json.loads(line)
                break
            except ValueError:
                pass
    return Proc(cmd, proc.returncode, stdout, stderr, round(wall, 2), round(ru.ru_utime + ru.ru_stime, 2),
                round(ru.ru_maxrss / 1024.0, 1), timed_out, result)


def py(module: str, *args, timeout: float | None = None, env: dict | None = None, python: str | None = None) -> Proc:
    return run_child([python or sys.executable, "-m", module, *map(str, args)], timeout=timeout, env=env)


def median(values) -> float:
    vals = [v for v in values if v is not None and v == v]
    return statistics.median(vals) if vals else float("nan")


def fmt(x, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "–"
    if isinstance(x, (int,)) and not isinstance(x, bool):
        return f"{x:,}"
    return f"{x:,.{digits}f}"


def prepend(path: Path, section: str) -> None:
    """Insert a '### ' section at the top of RESULTS.md, keeping every earlier run below it."""
    old = path.read_text() if path.exists() else "# Benchmark results\n\nNewest first; earlier runs are kept for comparison.\n"
    head, _, rest = old.partition("\n### ")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(head.rstrip() + "\n\n" + section.rstrip() + "\n" + ("\n### " + rest if rest else ""))
    os.replace(tmp, path)
