"""The payment lifecycle end to end: real dev server, real worker, real HTTP to the Alvys sandbox."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from temporalio.client import Client

from intake.start import payment_result, start_payment, start_payments
from models.money import Money
from models.state import PaymentStatus
from models.steps import PaymentPolicy
from tests.support import alvys_sandbox as alvys
from tests.support.payments import FAST, carrier, customer, run, uid, wait_status

pytestmark = pytest.mark.usefixtures("worker")


async def test_customer_payment_is_paid_from_the_posts_own_answer(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="382.53")
    before = await alvys.request_counts(sandbox)
    instruction = customer(load, "382.53")

    result = await run(client, task_queue, instruction)

    assert result.status is PaymentStatus.PAID
    assert result.total_paid == Money.of("382.53") and result.total_billable == Money.of("382.53")
    assert result.posted and result.vendor_payment_id
    assert await alvys.postings(sandbox, instruction.reference_number) == [
        ("customer", load, Decimal("382.53"))
    ]
    after = await alvys.request_counts(sandbox)
    # One vendor call: the post. No read-back, no search.
    assert alvys.delta(before, after) == {"invoices/customer-payments": 1}


async def test_carrier_payment_is_paid_and_the_trip_completed(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    trip = f"T-{uid()}"
    await alvys.add_trip(sandbox, trip, load=f"L-{uid()}", status="Delivered", payable="1200.00")
    instruction = carrier(trip, "1200.00")

    result = await run(client, task_queue, instruction)

    assert result.status is PaymentStatus.PAID
    assert result.target_status == "Completed"
    assert await alvys.trip_status(sandbox, trip) == "Completed"
    assert await alvys.postings(sandbox, instruction.reference_number) == [
        ("carrier", trip, Decimal("1200.00"))
    ]


async def test_partial_payment_is_partially_paid(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Completed", billable="1000.00")

    result = await run(client, task_queue, customer(load, "400.00"))

    assert result.status is PaymentStatus.PARTIALLY_PAID
    assert result.total_paid == Money.of("400.00") and result.total_billable == Money.of("1000.00")
    assert "400.00 of USD 1,000.00 paid" in result.message


async def test_a_partial_carrier_payment_leaves_the_trip_open(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    trip = f"T-{uid()}"
    await alvys.add_trip(sandbox, trip, load=f"L-{uid()}", status="Delivered", payable="1200.00")

    result = await run(client, task_queue, carrier(trip, "200.00"))

    assert result.status is PaymentStatus.PARTIALLY_PAID
    assert await alvys.trip_status(sandbox, trip) == "Delivered"


async def test_a_duplicate_start_posts_once(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="500.00")
    instruction = customer(load, "500.00")

    ids = await start_payments(client, [instruction] * 5, task_queue=task_queue, policy=FAST)
    assert set(ids) == {instruction.workflow_id}
    first = await payment_result(client, instruction.workflow_id)
    # Delivered again after it ended: the same id comes back and nothing starts.
    again = await start_payment(client, instruction, task_queue=task_queue, policy=FAST)

    assert again == instruction.workflow_id and first.status is PaymentStatus.PAID
    assert len(await alvys.postings(sandbox, instruction.reference_number)) == 1
    runs = [w async for w in client.list_workflows(f"WorkflowId = '{instruction.workflow_id}'")]
    assert len(runs) == 1


async def test_unknown_load_needs_review_with_the_vendors_reason(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    instruction = customer(f"L-NOPE-{uid()}", "10.00")
    await start_payment(client, instruction, task_queue=task_queue, policy=FAST)

    state = await wait_status(client, instruction.workflow_id, PaymentStatus.NEEDS_REVIEW)

    assert state.last_vendor_answer is not None and state.last_vendor_answer.problem is not None
    assert state.last_vendor_answer.problem.status == 404
    assert "Alvys refused the payment" in (state.reason or "")
    assert state.next_actions == ["retry", "cancel", "resolve"]
    assert await alvys.postings(sandbox, instruction.reference_number) == []
    await client.get_workflow_handle(instruction.workflow_id).signal("cancel", {"reason": "test over"})


async def test_a_load_not_yet_payable_waits_then_is_paid(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Dispatched", billable="250.00")
    instruction = customer(load, "250.00")
    await start_payment(client, instruction, task_queue=task_queue, policy=FAST)

    state = await wait_status(client, instruction.workflow_id, PaymentStatus.WAITING_FOR_PAYABLE)
    assert "Dispatched" in (state.reason or "") or "not payable" in (state.reason or "")
    assert state.last_vendor_answer and "Load must be in one of" in state.last_vendor_answer.text
    await alvys.set_load_status(sandbox, load, "Invoiced")

    result = await asyncio.wait_for(payment_result(client, instruction.workflow_id), 30)
    assert result.status is PaymentStatus.PAID
    assert len(await alvys.postings(sandbox, instruction.reference_number)) == 1


async def test_a_load_never_payable_needs_review_at_the_deadline(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Dispatched", billable="250.00")
    instruction = customer(load, "250.00")
    policy = PaymentPolicy(
        payable_recheck_interval=timedelta(seconds=1), payable_deadline=timedelta(seconds=3)
    )
    await start_payment(client, instruction, task_queue=task_queue, policy=policy)

    state = await wait_status(client, instruction.workflow_id, PaymentStatus.NEEDS_REVIEW, seconds=30)

    assert "after 3 seconds" in (state.reason or "")
    assert state.payable_checks >= 1
    await client.get_workflow_handle(instruction.workflow_id).signal("cancel", {})


async def test_payments_are_found_by_search_attributes(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="99.99")
    instruction = customer(load, "99.99")
    await run(client, task_queue, instruction)

    query = f"PaymentStatus = 'Paid' AND LoadNumber = '{load}' AND PaymentSource = 'alvys-customer'"
    for _ in range(50):  # visibility is eventually consistent
        found = [w.id async for w in client.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.2)
    assert found == [instruction.workflow_id]
    (listed,) = [w async for w in client.list_workflows(f"WorkflowId = '{instruction.workflow_id}'")]
    attributes = listed.typed_search_attributes
    from workflows import search_attributes as sa

    assert attributes.get(sa.PAYMENT_REFERENCE) == instruction.reference_number
    assert attributes.get(sa.PAYMENT_AMOUNT) == pytest.approx(99.99)
    assert attributes.get(sa.PAYMENT_TARGET) == "alvys-customer-payment"
