"""Each benchmark size runs in a fresh process, so that its peak RSS is its own."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run_child(script: str, arguments: list[str]) -> dict[str, Any]:
    """Run ``script`` with ``arguments`` in a new interpreter; the JSON object it
    prints on its last line."""
    out = subprocess.run(
        [sys.executable, script, *arguments], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
