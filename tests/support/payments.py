"""Payments for the end-to-end tests: instructions, starting and waiting (real dev server and sandbox).

Shared by many test files; test files import helpers from here, never from each other.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import Client

from intake.start import payment_result, start_payment
from models.payment import PaymentInstruction
from models.state import PaymentResult, PaymentState, PaymentStatus
from models.steps import PaymentPolicy
from tests.support.instructions import carrier, customer, uid

__all__ = ["FAST", "carrier", "customer", "exists", "run", "uid", "wait_status"]


async def exists(client: Client, workflow_id: str) -> bool:
    """Whether Temporal has a workflow of this id (running or closed)."""
    from temporalio.service import RPCError

    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return False
    return True


FAST = PaymentPolicy(
    payable_recheck_interval=timedelta(seconds=1),
    payable_deadline=timedelta(seconds=30),
)


async def run(
    client: Client, task_queue: str, instruction: PaymentInstruction, policy: PaymentPolicy = FAST
) -> PaymentResult:
    workflow_id = await start_payment(client, instruction, task_queue=task_queue, policy=policy)
    return await asyncio.wait_for(payment_result(client, workflow_id), 60)


async def wait_status(
    client: Client, workflow_id: str, status: PaymentStatus, seconds: float = 30
) -> PaymentState:
    """The payment's state once it is ``status``; a payment not started yet (a child its parent
    is about to start) is waited for too."""
    from temporalio.service import RPCError, RPCStatusCode

    handle = client.get_workflow_handle(workflow_id)
    deadline = asyncio.get_running_loop().time() + seconds
    state: PaymentState | None = None
    while True:
        try:
            state = await handle.query("status", result_type=PaymentState)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        if state is not None and state.status is status:
            return state
        if asyncio.get_running_loop().time() > deadline:
            seen = f"{state.status}: {state.reason}" if state else "not started"
            raise AssertionError(f"{workflow_id} is {seen}, not {status}")
        await asyncio.sleep(0.2)
