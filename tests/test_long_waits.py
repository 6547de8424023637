"""Waits of days, on Temporal's time-skipping test server: a load payable after 3 days, or never."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from config.settings import AlvysSettings, FreightpaySettings, SandboxSettings, Settings
from config.temporal import indexed_value_type
from intake.start import start_payment
from models.state import PaymentState, PaymentStatus
from models.steps import PaymentPolicy
from tests.conftest import venv_binary
from tests.support import alvys_sandbox as alvys
from tests.support.payments import customer, uid
from workflows.search_attributes import DEFINITIONS

DEFAULTS = PaymentPolicy()  # re-check every hour, give up after 14 days


@pytest.fixture(scope="module")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    async with env:
        # The Java test server has AddSearchAttributes but not ListSearchAttributes.
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={name: indexed_value_type(kind) for name, kind in DEFINITIONS.items()},
            )
        )
        yield env


@pytest.fixture
async def skipping_worker(skipping_env: WorkflowEnvironment, sandbox_url: str) -> AsyncIterator[str]:
    from worker import running_worker

    task_queue = f"skip-{uuid.uuid4()}"
    settings = Settings(
        freightpay=FreightpaySettings(task_queue=task_queue),
        sandbox=SandboxSettings(url=sandbox_url),
        alvys_raw=AlvysSettings(requests_per_minute=0, reads_per_minute=0),
    )
    async with running_worker(skipping_env.client, settings):
        yield task_queue


async def state_of(env: WorkflowEnvironment, workflow_id: str) -> PaymentState:
    state: PaymentState = await env.client.get_workflow_handle(workflow_id).query(
        "status", result_type=PaymentState
    )
    return state


async def test_a_load_payable_after_three_days_is_paid(
    skipping_env: WorkflowEnvironment, skipping_worker: str, sandbox: httpx.AsyncClient
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Delivered", billable="640.00")
    instruction = customer(load, "640.00")
    await start_payment(skipping_env.client, instruction, task_queue=skipping_worker, policy=DEFAULTS)

    await skipping_env.sleep(timedelta(days=3))
    state = await state_of(skipping_env, instruction.workflow_id)
    assert state.status is PaymentStatus.WAITING_FOR_PAYABLE
    assert state.payable_checks >= 70  # hourly for three days
    await alvys.set_load_status(sandbox, load, "Invoiced")
    await skipping_env.sleep(timedelta(hours=1, minutes=1))

    state = await state_of(skipping_env, instruction.workflow_id)
    assert state.status is PaymentStatus.PAID
    assert len(await alvys.postings(sandbox, instruction.reference_number)) == 1


async def test_a_load_never_payable_needs_review_after_fourteen_days(
    skipping_env: WorkflowEnvironment, skipping_worker: str, sandbox: httpx.AsyncClient
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Dispatched", billable="640.00")
    instruction = customer(load, "640.00")
    await start_payment(skipping_env.client, instruction, task_queue=skipping_worker, policy=DEFAULTS)

    await skipping_env.sleep(timedelta(days=13, hours=23))
    assert (await state_of(skipping_env, instruction.workflow_id)).status is PaymentStatus.WAITING_FOR_PAYABLE
    await skipping_env.sleep(timedelta(hours=2))

    state = await state_of(skipping_env, instruction.workflow_id)
    assert state.status is PaymentStatus.NEEDS_REVIEW
    assert "was still Dispatched after 14 days" in (state.reason or "")
    assert await alvys.postings(sandbox, instruction.reference_number) == []
    await skipping_env.client.get_workflow_handle(instruction.workflow_id).signal("cancel", {})
