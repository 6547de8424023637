"""Payments for the end-to-end tests: instructions, starting and waiting (real dev server and sandbox).

Shared by many test files; test files import helpers from here, never from each other.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from temporalio.client import Client

from intake.start import payment_result, start_payment
from models.money import Money
from models.payment import PaymentInstruction, Source, Target, TargetIds
from models.state import PaymentResult, PaymentState, PaymentStatus
from models.steps import PaymentPolicy


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


def uid() -> str:
    return uuid.uuid4().hex[:8].upper()


def customer(load: str, amount: str, ref: str | None = None, currency: str = "USD") -> PaymentInstruction:
    ref = ref or f"CHK-{uid()}"
    return PaymentInstruction(
        source=Source.ALVYS_CUSTOMER,
        business_key=f"{load}-{ref}",
        target=Target.ALVYS_CUSTOMER_PAYMENT,
        ids=TargetIds(load_number=load),
        amount=Money.of(amount, currency),
        payment_date=datetime(2026, 11, 20, tzinfo=UTC),
        method="Check",
        check_number="1001",
        reference_number=ref,
    )


def carrier(trip: str, amount: str, ref: str | None = None) -> PaymentInstruction:
    ref = ref or f"ACH-{uid()}"
    return PaymentInstruction(
        source=Source.ALVYS_CARRIER,
        business_key=f"{trip}-{ref}",
        target=Target.ALVYS_CARRIER_PAYMENT,
        ids=TargetIds(trip_id=trip),
        amount=Money.of(amount),
        payment_date=datetime(2026, 11, 20, tzinfo=UTC),
        method="ACH",
        reference_number=ref,
    )


async def run(
    client: Client, task_queue: str, instruction: PaymentInstruction, policy: PaymentPolicy = FAST
) -> PaymentResult:
    workflow_id = await start_payment(client, instruction, task_queue=task_queue, policy=policy)
    return await asyncio.wait_for(payment_result(client, workflow_id), 60)


async def wait_status(
    client: Client, workflow_id: str, status: PaymentStatus, seconds: float = 30
) -> PaymentState:
    handle = client.get_workflow_handle(workflow_id)
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        state: PaymentState = await handle.query("status", result_type=PaymentState)
        if state.status is status:
            return state
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{workflow_id} is {state.status}, not {status}: {state.reason}")
        await asyncio.sleep(0.2)
