"""The small chaos run (issue 5): 50 payments, 3 worker kills, a server restart: nothing lost, nothing doubled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_small_chaos_run_loses_nothing_and_doubles_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/chaos.py", "--payments", "50", "--kills", "3", "--timeout", "600"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    line = next((x for x in done.stdout.splitlines() if x.startswith("chaos: started=")), "")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    fields = dict(part.split("=") for part in line.removeprefix("chaos: ").split())
    assert fields["started"] == "50" and fields["lost"] == "0" and fields["duplicated"] == "0"
    assert fields["kills"] == "3" and fields["server_restarts"] == "1"
