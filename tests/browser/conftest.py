"""Fixtures of every real-browser test (Debian Chromium driven by Playwright; see
tests/browser/helpers.py for the server and page helpers the test files import).

Each test file still sets ``pytestmark = [pytest.mark.browser, pytest.mark.slow]``, so that
``-m "not browser"`` deselects it.  Without /usr/bin/chromium these tests fail, they never skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS, VIEWPORT


@pytest.fixture(scope="module", autouse=True)
def _chromium_present():
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make browser-deps` (apt chromium) first"


@pytest.fixture(scope="session")
def browser_type_launch_args():
    """pytest-playwright's launch arguments: Debian's chromium, never Playwright's own download."""
    return {"executable_path": CHROMIUM, "args": list(CHROMIUM_ARGS)}


@pytest.fixture(scope="session")
def browser_context_args():
    return {"viewport": dict(VIEWPORT), "accept_downloads": True}
