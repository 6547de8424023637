"""Vendor rate limits kept by construction: a burst of payments against the sandbox enforcing
Alvys's published limits (time-scaled) sees no 429 and no block.

The pacing is Temporal's: the post activities run on their own task queue, polled with
``max_task_queue_activities_per_second``, which the server enforces for every worker at once.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from config.settings import AlvysSettings, FreightpaySettings, SandboxSettings, Settings
from config.temporal import ONE_PARTITION
from intake.start import payment_result, start_payments
from models.money import Money
from models.payment import PaymentInstruction, Source, Target, TargetIds
from models.state import PaymentStatus
from models.steps import PaymentPolicy
from sandbox.app import create_app
from sandbox.faults import RateLimitSettings
from tests.conftest import venv_binary
from tests.support import alvys_sandbox as alvys
from tests.support.servers import serve_app
from workflows.search_attributes import ALL_KEYS

pytestmark = pytest.mark.slow

#: A vendor minute lasts 20 s. (Temporal's task-queue limiter allows a burst of ceil(rate) per
#: second; Alvys allows 1 request per second, so the test keeps the rate under 1 per second, as
#: the real budget of 10 per minute is.)
TIME_SCALE = 3
#: The budget freightpay keeps, in real requests per minute: Alvys's 10/min, time-scaled.
BUDGET = 10 * TIME_SCALE
#: Enough payments that some 20-second window is full: 12 at ~2.1 s apart span 23 s.
PAYMENTS = 12
#: The queue's rate is set by the worker's polls; give the first poll time to land.
WARM_UP = 3


async def test_a_burst_under_the_published_limit_sees_no_429(tmp_path: Path) -> None:

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        search_attributes=ALL_KEYS,
        data_converter=pydantic_data_converter,
        ui=False,
        dev_server_extra_args=[arg for pair in ONE_PARTITION for arg in ("--dynamic-config-value", pair)],
    )
    async with env:
        await burst(env.client, tmp_path)


async def burst(client: Client, tmp_path: Path) -> None:
    from worker import running_worker

    sandbox_app = create_app(rate_limits=RateLimitSettings(mode="published", time_scale=TIME_SCALE))
    task_queue = f"burst-{uuid.uuid4()}"
    with serve_app(sandbox_app) as url:
        settings = Settings(
            freightpay=FreightpaySettings(task_queue=task_queue, data_dir=str(tmp_path)),
            sandbox=SandboxSettings(url=url),
            alvys_raw=AlvysSettings(requests_per_minute=BUDGET, reads_per_minute=BUDGET / 2),
        )
        async with httpx.AsyncClient(base_url=url) as sandbox:
            load = f"L-BURST-{uuid.uuid4().hex[:6]}"
            await alvys.add_load(sandbox, load, status="Invoiced", billable="100000.00")
            payments = [
                PaymentInstruction(
                    source=Source.ALVYS_CUSTOMER, business_key=f"{load}-B{n}", target=Target.ALVYS_CUSTOMER_PAYMENT,
                    ids=TargetIds(load_number=load), amount=Money.of("1.00"),
                    payment_date=datetime(2026, 11, 20, tzinfo=UTC), reference_number=f"B{n}",
                )
                for n in range(PAYMENTS)
            ]  # fmt: skip
            async with running_worker(client, settings):
                await asyncio.sleep(WARM_UP)
                ids = await start_payments(client, payments, task_queue=task_queue, policy=PaymentPolicy())
                results = await asyncio.wait_for(
                    asyncio.gather(*(payment_result(client, i) for i in ids)), 120
                )
            limits: dict[str, Any] = (await sandbox.get("/_sandbox/rate-limits")).json()

    assert {r.status for r in results} == {PaymentStatus.PARTIALLY_PAID}
    posts = limits["vendors"]["alvys"]["endpoints"]["invoices/customer-payments"]
    assert posts["accepted"] == PAYMENTS
    assert posts["rejected_429"] == 0 and posts["blocks_started"] == 0, posts
