"""First paint of the app: seconds from `streamlit run app.py` to the first page drawn
in a real browser (Debian chromium through Playwright).

    python -m bench.first_paint [--repeats 3] [--no-write]

Each repeat starts a fresh server process on a fresh workspace.  Two figures:
`server` (until /_stcore/health answers) and `first paint` (until the Data page's
title and the sidebar navigation are visible).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
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


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(browser) -> tuple[float, float]:
    port = _port()
    with tempfile.TemporaryDirectory() as ws:
        env = dict(os.environ, SIEVE_WORKSPACE=ws, HF_HUB_OFFLINE="1")
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.address",
             "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            while True:
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                        break
                except OSError:
                    time.sleep(0.02)
                if time.perf_counter() - t0 > 120:
                    raise SystemExit("server did not start in 120 s")
            t_server = time.perf_counter() - t0
            page = browser.new_page()
            page.goto(url)
            page.get_by_role("heading", name="Data").first.wait_for(timeout=120_000)
            page.locator("[data-testid=stSidebarNav]").wait_for(timeout=120_000)
            t_paint = time.perf_counter() - t0
            page.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return t_server, t_paint


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.first_paint")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--json", action="store_true", help="also print the medians as one JSON line (for the harness)")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from bench.common import RESULTS, machine, prepend

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        runs = [one_run(browser) for _ in range(args.repeats)]
        browser.close()
    servers, paints = [r[0] for r in runs], [r[1] for r in runs]
    load = os.getloadavg()[0]
    text = (
        f"### App first paint, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
        f"Machine: {machine()}; load average {load:.1f}.  {args.repeats} fresh `streamlit run app.py` processes; "
        "time from launch until the health endpoint answers, and until Chromium shows the Data page "
        "(title and navigation).\n\n"
        "| measure | median s | all runs s |\n|---|---:|---|\n"
        f"| server ready | {statistics.median(servers):.2f} | {', '.join(f'{x:.2f}' for x in servers)} |\n"
        f"| first paint | {statistics.median(paints):.2f} | {', '.join(f'{x:.2f}' for x in paints)} |\n"
    )
    print(text)
    if args.json:
        import json

        print(json.dumps({"server_s": statistics.median(servers), "first_paint_s": statistics.median(paints),
                          "runs": runs, "load": load}))
    if not args.no_write:
        prepend(RESULTS, text)


if __name__ == "__main__":
    main()
