"""The ``freightpay`` console script as a subprocess against the test's dev server and task queue."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from temporalio.client import Client

ROOT = Path(__file__).resolve().parents[2]


def freightpay(client: Client, task_queue: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "FREIGHTPAY_TASK_QUEUE": task_queue,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def cli(client: Client, task_queue: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(freightpay, client, task_queue, *args)
