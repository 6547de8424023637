"""Vendor outages in the fast layer: WaitingForVendor past the patience, then carrying on by itself.

Its own module (and time-skipping server): an outage keeps an activity retrying for hours of
workflow time, which is best skipped without other tests' workflows in the same server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from models.payment import TargetIds
from models.state import CancelInput, PaymentStatus
from tests.support.fakes import (
    FAST,
    Payments,
    payments,
    recorded,
    time_skipping_environment,
    unavailable,
    update,
)
from tests.support.instructions import customer, uid

PAST_THE_STEP_DEADLINE = timedelta(hours=1, minutes=5)


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_environment() as environment:
        yield environment


@pytest.fixture
async def pay(env: WorkflowEnvironment) -> AsyncIterator[Payments]:
    async with payments(env) as harness:
        yield harness


def load() -> str:
    return f"L-{uid()}"


PATIENT = FAST.model_copy(update={"vendor_patience": timedelta(minutes=30)})


async def test_an_outage_longer_than_the_patience_waits_for_the_vendor_then_pays_with_no_person(
    env: WorkflowEnvironment, pay: Payments
) -> None:
    pay.vendor.post.then(unavailable())
    handle = await pay.start(customer(load(), "640.00"), PATIENT)

    await env.sleep(timedelta(minutes=35))
    state = await pay.wait_for(handle, PaymentStatus.WAITING_FOR_VENDOR)

    assert "unreachable or failing since" in (state.reason or "") and "Alvys 503" in (state.reason or "")
    # The post was sent and its answer never came: it may be recorded, so only resolve is offered.
    assert state.next_actions == ["resolve"] and not state.posted
    pay.vendor.post.then(recorded("640.00", "640.00"))  # the vendor is back
    await env.sleep(timedelta(minutes=15))
    result = await pay.result(handle)
    assert result.status is PaymentStatus.PAID
    assert not any(a.action in ("retry", "resolve") for a in (await pay.state(handle)).actions)


async def test_a_read_outage_waits_for_the_vendor_and_can_be_cancelled(
    env: WorkflowEnvironment, pay: Payments
) -> None:
    pay.vendor.resolve.then(unavailable())
    instruction = customer(load(), "640.00").model_copy(update={"ids": TargetIds(invoice_number="INV-1")})
    handle = await pay.start(instruction, PATIENT)

    await env.sleep(timedelta(minutes=35))
    state = await pay.wait_for(handle, PaymentStatus.WAITING_FOR_VENDOR)
    assert state.next_actions == ["cancel", "resolve"]

    answer = await update(handle, "cancel", CancelInput(reason="the customer withdrew it"))
    assert answer.status is PaymentStatus.CANCELLED
    assert (await pay.result(handle)).status is PaymentStatus.CANCELLED and pay.vendor.post.calls == []


async def test_without_a_patience_an_outage_still_asks_a_person_as_recorded_payments_did(
    env: WorkflowEnvironment, pay: Payments
) -> None:
    pay.vendor.post.then(unavailable())
    handle = await pay.start(customer(load(), "640.00"), FAST.model_copy(update={"vendor_patience": None}))
    await env.sleep(PAST_THE_STEP_DEADLINE)
    await pay.wait_for(handle, PaymentStatus.NEEDS_REVIEW)
