"""Helpers shared by the real-browser tests (and ``bench/screenshots.py``): Debian's
Chromium, a fresh ``streamlit run app.py`` on a free port, and reading the page
(metrics, the map chart, Plotly's axes and selections).  The pytest fixtures built on
them (Chromium present, Playwright's launch and context arguments) are in conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.fakes import REPO_ROOT as REPO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1400, "height": 1000}
SHOTS = Path(os.environ.get("SIEVE_SHOTS", "/tmp/sieve-shots"))
GD = "document.querySelector('[data-testid=stPlotlyChart] .js-plotly-plot')"


# -- server and pages --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(env_extra: dict, log_name: str):
    """A fresh `streamlit run app.py` on a free port (env + ``env_extra``); yields its URL."""
    port = free_port()
    env = dict(os.environ, **env_extra)
    SHOTS.mkdir(parents=True, exist_ok=True)
    log = open(SHOTS / log_name, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError(f"streamlit did not start; see {log.name}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def open_app(browser, url: str, *, timeout: float = 60_000, accept_downloads: bool = False):
    """A new browser context (one Streamlit session) at ``url``, the app drawn; returns (context, page)."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=accept_downloads)
    page = context.new_page()
    page.set_default_timeout(timeout)
    page.goto(url)
    page.wait_for_selector("[data-testid=stApp]")
    return context, page


# -- reading the page ---------------------------------------------------------------------------


def shot(page, name: str, height: int = 1800) -> None:
    page.set_viewport_size({"width": 1400, "height": height})
    time.sleep(0.8)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


METRICS_JS = """() => Object.fromEntries([...document.querySelectorAll('[data-testid=stMetric]')].map(m => [
    (m.querySelector('[data-testid=stMetricLabel]') || m).innerText.trim(),
    (m.querySelector('[data-testid=stMetricValue]') || m).innerText.trim()]))"""


def metrics(page) -> dict[str, str]:
    """Every st.metric on the page, label -> value, read in one go (elements come and go during reruns)."""
    return page.evaluate(METRICS_JS)


def metric_value(page, label: str) -> str:
    """The value of the metric labelled ``label``, thousands separators removed."""
    found = metrics(page)
    if label not in found:
        raise AssertionError(f"no metric {label!r} in {found}")
    return found[label].replace(",", "")


def wait_metric(page, label: str, predicate, timeout: float = 30_000) -> str:
    """Wait until the metric labelled ``label`` exists and its value satisfies ``predicate``; return the value."""
    js = """([label]) => [...document.querySelectorAll('[data-testid=stMetricLabel]')]
              .some(e => e.innerText.trim() === label)"""
    page.wait_for_function(js, arg=[label], timeout=timeout)
    deadline = time.time() + timeout / 1000
    while True:
        try:
            v = metric_value(page, label)
            if predicate(v):
                return v
        except AssertionError:
            pass
        if time.time() > deadline:
            page.screenshot(path=str(SHOTS / f"failed-{label.replace(' ', '-')}.png"), full_page=True)
            alerts = page.evaluate("() => [...document.querySelectorAll('[data-testid=stAlert]')].map(e => e.innerText)")
            raise AssertionError(f"{label!r} never satisfied the condition; metrics {metrics(page)}; alerts {alerts}")
        time.sleep(0.2)


def goto(page, name: str) -> None:
    page.get_by_role("link", name=name).first.click()
    page.wait_for_function(f"() => document.querySelector('h1') && document.querySelector('h1').innerText.includes('{name}')")


def wait_chart(page) -> None:
    """Wait for the run to finish with exactly one map chart drawn (a reset chart replaces the old one)."""
    page.wait_for_selector("[data-testid=stPlotlyChart] .js-plotly-plot", timeout=60_000)
    page.wait_for_function(
        f"""() => {{ const app = document.querySelector('[data-testid=stApp]');
            if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
            const maps = [...document.querySelectorAll('[data-testid=stPlotlyChart]')]
                .filter(e => !e.closest('.st-key-sieve-summaries'));  // the small summary charts
            if (maps.length !== 1) return false;
            const gd = {GD}; return gd && gd._fullLayout && gd.querySelector('.nsewdrag'); }}""", timeout=60_000)


def to_px(page, x: float, y: float) -> tuple[float, float]:
    return tuple(page.evaluate(
        f"""([x, y]) => {{ const gd = {GD}; const r = gd.getBoundingClientRect(); const fl = gd._fullLayout;
            return [r.left + fl.xaxis._offset + fl.xaxis.d2p(x), r.top + fl.yaxis._offset + fl.yaxis.d2p(y)]; }}""",
        [x, y]))


def axis_ranges(page):
    r = page.evaluate(f"() => {{ const fl = {GD}._fullLayout; return [fl.xaxis.range, fl.yaxis.range]; }}")
    return r[0], r[1]


def drag_mode(page, mode: str) -> None:
    page.locator("[data-testid=stPlotlyChart]").first.hover()
    page.locator(f".modebar-btn[data-attr=dragmode][data-val={mode}]").first.click()


def plotly_selections(page) -> list[dict]:
    return page.evaluate(f"() => JSON.parse(JSON.stringify({GD}.layout.selections || []))")
