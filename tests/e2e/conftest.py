"""The browser the end-to-end tests run: Debian's headless Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def chromium() -> Path:
    """Chromium's path; the test is skipped without it, except on CI, where it fails."""
    if not CHROMIUM.is_file():
        reason = f"Chromium is not installed at {CHROMIUM} (Debian package: chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the browser test")
        pytest.skip(reason)
    return CHROMIUM
