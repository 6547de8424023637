"""Operators: approval, cancel, resolve, retry with corrections; refusals; the status query; signals."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from temporalio.client import Client, WorkflowUpdateFailedError

from intake.start import payment_result, start_payment
from models.money import Money
from models.payment import PaymentInstruction, Source, Target, TargetIds
from models.state import ActionAnswer, PaymentStatus, RetryInput
from models.steps import PaymentPolicy
from tests.support import alvys_sandbox as alvys
from tests.support.payments import FAST, customer, uid, wait_status

pytestmark = pytest.mark.usefixtures("worker")


async def update(client: Client, workflow_id: str, action: str, payload: object) -> ActionAnswer:
    handle = client.get_workflow_handle(workflow_id)
    answer: ActionAnswer = await handle.execute_update(action, payload, result_type=ActionAnswer)
    return answer


async def refusal(client: Client, workflow_id: str, action: str, payload: object) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await update(client, workflow_id, action, payload)
    return str(getattr(info.value.cause, "message", info.value.cause))


async def test_a_large_payment_waits_for_approval_then_is_paid(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="25000.00")
    instruction = customer(load, "25000.00")
    await start_payment(client, instruction, task_queue=task_queue, policy=FAST)

    state = await wait_status(client, instruction.workflow_id, PaymentStatus.AWAITING_APPROVAL)
    assert "at or over the approval threshold of USD 10,000" in (state.reason or "")
    assert state.next_actions == ["approve", "cancel", "resolve"]
    assert await alvys.postings(sandbox, instruction.reference_number) == []
    # retry does not fit a payment awaiting approval
    assert "cannot retry while the payment is AwaitingApproval" in await refusal(
        client, instruction.workflow_id, "retry", {}
    )

    answer = await update(
        client, instruction.workflow_id, "approve", {"operator": "dana", "reason": "checked"}
    )
    assert answer.status in (PaymentStatus.POSTING, PaymentStatus.CONFIRMING, PaymentStatus.PAID)

    result = await asyncio.wait_for(payment_result(client, instruction.workflow_id), 30)
    assert result.status is PaymentStatus.PAID
    final = await client.get_workflow_handle(instruction.workflow_id).query("status")
    assert final["actions"][-1]["operator"] == "dana" and final["actions"][-1]["reason"] == "checked"


async def test_cancel_before_posting_posts_nothing(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="12000.00")
    instruction = customer(load, "12000.00")
    await start_payment(client, instruction, task_queue=task_queue, policy=FAST)
    await wait_status(client, instruction.workflow_id, PaymentStatus.AWAITING_APPROVAL)

    answer = await update(client, instruction.workflow_id, "cancel", {"reason": "duplicate check"})

    assert answer.status is PaymentStatus.CANCELLED
    result = await payment_result(client, instruction.workflow_id)
    assert result.status is PaymentStatus.CANCELLED and not result.posted
    assert "duplicate check" in result.message
    assert await alvys.postings(sandbox, instruction.reference_number) == []


async def test_approve_is_refused_when_nothing_awaits_approval(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    instruction = customer(f"L-NOPE-{uid()}", "10.00")
    await start_payment(client, instruction, task_queue=task_queue, policy=FAST)
    await wait_status(client, instruction.workflow_id, PaymentStatus.NEEDS_REVIEW)

    message = await refusal(client, instruction.workflow_id, "approve", {})

    assert message == "nothing awaits approval: the payment is NeedsReview"
    assert "amount must be greater than zero" in await refusal(
        client, instruction.workflow_id, "retry", {"amount": "-5"}
    )
    answer = await update(client, instruction.workflow_id, "resolve", {"reason": "paid by hand in Alvys"})
    assert answer.status is PaymentStatus.RESOLVED_MANUALLY
    assert (await payment_result(client, instruction.workflow_id)).status is PaymentStatus.RESOLVED_MANUALLY


async def test_retry_with_a_corrected_load_number_pays_the_right_load(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    right = f"L-{uid()}"
    await alvys.add_load(sandbox, right, status="Invoiced", billable="75.00")
    instruction = customer(f"L-TYPO-{uid()}", "75.00")
    await start_payment(client, instruction, task_queue=task_queue, policy=FAST)
    await wait_status(client, instruction.workflow_id, PaymentStatus.NEEDS_REVIEW)

    answer = await update(
        client, instruction.workflow_id, "retry", RetryInput(load_number=right, operator="sam", reason="typo")
    )

    assert answer.status not in (PaymentStatus.NEEDS_REVIEW, PaymentStatus.CANCELLED)
    result = await asyncio.wait_for(payment_result(client, instruction.workflow_id), 30)
    assert result.status is PaymentStatus.PAID
    assert await alvys.postings(sandbox, instruction.reference_number) == [
        ("customer", right, Decimal("75.00"))
    ]
    # the search attributes follow the correction
    query = f"LoadNumber = '{right}' AND PaymentStatus = 'Paid'"
    for _ in range(50):
        if [w async for w in client.list_workflows(query)]:
            break
        await asyncio.sleep(0.2)
    assert [w.id async for w in client.list_workflows(query)] == [instruction.workflow_id]


async def test_signals_from_the_ui_work_and_misfits_are_recorded_as_refused(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="15000.00")
    instruction = customer(load, "15000.00")
    await start_payment(client, instruction, task_queue=task_queue, policy=FAST)
    await wait_status(client, instruction.workflow_id, PaymentStatus.AWAITING_APPROVAL)
    handle = client.get_workflow_handle(instruction.workflow_id)

    await handle.signal("resolve", {"reason": "x", "bogus": 1})  # a field the model ignores
    await handle.signal("retry", {})  # does not fit: recorded as refused
    await handle.signal("approve")  # no input at all, as the UI may send
    result = await asyncio.wait_for(payment_result(client, instruction.workflow_id), 30)

    # resolve came first and fits AwaitingApproval: it ends the payment by hand
    assert result.status is PaymentStatus.RESOLVED_MANUALLY
    state = await handle.query("status")
    outcomes = [(a["action"], a["accepted"]) for a in state["actions"]]
    assert ("resolve", True) in outcomes and ("retry", False) in outcomes


async def test_an_overpayment_against_the_invoice_balance_waits_for_approval(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    load, invoice = f"L-{uid()}", f"INV-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="100.00", invoice=invoice)
    ref = f"CHK-{uid()}"
    instruction = PaymentInstruction(
        source=Source.ALVYS_CUSTOMER,
        business_key=f"{invoice}-{ref}",
        target=Target.ALVYS_CUSTOMER_PAYMENT,
        ids=TargetIds(invoice_number=invoice),
        amount=Money.of("150.00"),
        payment_date=customer(load, "1").payment_date,
        reference_number=ref,
    )
    await start_payment(client, instruction, task_queue=task_queue, policy=FAST)

    state = await wait_status(client, instruction.workflow_id, PaymentStatus.AWAITING_APPROVAL)

    assert "more than the remaining balance of USD 100.00 (overpayment)" in (state.reason or "")
    assert state.instruction.ids.load_number == load  # resolved from the invoice
    await update(client, instruction.workflow_id, "approve", {})
    result = await asyncio.wait_for(payment_result(client, instruction.workflow_id), 30)
    assert result.status is PaymentStatus.PAID


async def test_the_status_query_tells_the_whole_story(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Dispatched", billable="20.00")
    instruction = customer(load, "20.00")
    policy = PaymentPolicy(payable_recheck_interval=timedelta(hours=1), payable_deadline=timedelta(days=14))
    await start_payment(client, instruction, task_queue=task_queue, policy=policy)

    state = await wait_status(client, instruction.workflow_id, PaymentStatus.WAITING_FOR_PAYABLE)
    assert (
        state.waiting_for and "to become Invoiced, Completed or Financed; next check at" in state.waiting_for
    )
    assert [s.name for s in state.steps] == ["post"] and state.steps[0].outcome == "not_payable"
    assert state.steps[0].attempts == 1
    assert state.last_vendor_answer and state.last_vendor_answer.problem
    assert state.last_vendor_answer.problem.status == 400
    assert state.next_actions == ["retry", "cancel", "resolve"]

    await alvys.set_load_status(sandbox, load, "Invoiced")
    answer = await update(client, instruction.workflow_id, "retry", {"reason": "load invoiced now"})
    assert answer.status is not PaymentStatus.WAITING_FOR_PAYABLE
    result = await asyncio.wait_for(payment_result(client, instruction.workflow_id), 30)
    assert result.status is PaymentStatus.PAID
