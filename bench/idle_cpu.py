"""Idle CPU of a served app: the CPU the Streamlit server burns while nobody uses it.

    python -m bench.idle_cpu [--seconds 30] [--no-write]

Starts `streamlit run app.py` from the repository (whose `.venv` sits inside it, as after
`make app`), opens the Data page once in Debian chromium (a session is what starts
Streamlit's file watcher), closes the browser, lets the server settle, then reads the
server's CPU time (user + system, from /proc) over ``--seconds`` of wall time.  The
background numba warm-up is switched off (``SIEVE_NO_WARMUP=1``) so that only idle work is
counted.  Figures are in cores (CPU seconds per wall second).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux /proc; float, seconds)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def idle_cores(seconds: float, settle: float = 5.0, extra_args: tuple[str, ...] = ()) -> float:
    """Mean cores used by an idle `streamlit run app.py` over ``seconds`` (after one page view)."""
    from playwright.sync_api import sync_playwright

    port = _port()
    with tempfile.TemporaryDirectory() as ws:
        env = dict(os.environ, SIEVE_WORKSPACE=ws, HF_HUB_OFFLINE="1", SIEVE_NO_WARMUP="1")
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                                 "--server.address", "127.0.0.1", *extra_args],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("server did not start in 120 s")
                    time.sleep(0.1)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page()
                page.goto(url)
                page.get_by_role("heading", name="Data").first.wait_for(timeout=120_000)
                time.sleep(settle)
                c0, t0 = cpu_seconds(proc.pid), time.monotonic()
                time.sleep(seconds)
                used = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0)
                browser.close()
            return used
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.idle_cpu")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    from bench.common import RESULTS, machine, prepend

    shipped = idle_cores(args.seconds)
    watcher = idle_cores(args.seconds, extra_args=("--server.fileWatcherType", "auto"))
    venv = "inside the repository" if (ROOT / ".venv").is_dir() else "absent from the repository"
    text = (
        f"### Idle CPU of a served app, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
        f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f}.  `python -m bench.idle_cpu`: one "
        f"`streamlit run app.py` (the `.venv` {venv}), the Data page opened once in Chromium, then the "
        f"server's CPU over {args.seconds:.0f} s with nobody using it (background warm-up off).\n\n"
        "| settings | idle CPU, cores |\n|---|---:|\n"
        f"| shipped `.streamlit/config.toml` (file watcher off) | {shipped:.3f} |\n"
        f"| Streamlit's default file watcher (`--server.fileWatcherType auto`) | {watcher:.3f} |\n"
    )
    print(text)
    if not args.no_write:
        prepend(RESULTS, text)


if __name__ == "__main__":
    main()
