"""Issue 9's defects, one end-to-end test each: what a real sender or operator reaches on day one.

Each was written to fail on the code before the fix: a conflicting repeat vanished, two
references collided on one id, a remittance line's TransportOne callback was dropped, a
hand-typed ``vendor_callback`` marked a payment Paid, Temporal's cancellation left
NeedsReview behind, an overpayment with ``LoadNumber`` ended Paid silently, and a retry could
retarget a posted payment.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import CancelledError

from intake.options import IntakeOptions
from intake.start import payment_result, start_payment
from intake.transportone import billing_payments
from models.state import ActionAnswer, PaymentState, PaymentStatus, RetryInput
from models.steps import CallbackReport, PaymentPolicy
from tests.conftest import API_KEY
from tests.support import alvys_sandbox as alvys
from tests.support.payments import exists, uid, wait_status
from tests.support.transportone import add_invoice, body
from workflows import search_attributes as sa
from workflows.payment import PaymentWorkflow

pytestmark = pytest.mark.usefixtures("worker")
KEY = {"X-API-Key": API_KEY}


def customer_body(load: str, ref: str, amount: str, **extra: Any) -> dict[str, Any]:
    return {
        "LoadNumber": load,
        "ReferenceNumber": ref,
        "Amount": {"Amount": Decimal(amount), "Currency": 840},
        "PaymentDate": "2026-11-20T15:00:00Z",
        "PaymentMethod": "Check",
        "CheckNumber": "1001",
        **extra,
    }


async def post_json(http: httpx.AsyncClient, path: str, payload: Any) -> httpx.Response:
    import json

    text = json.dumps(payload, default=lambda d: float(d) if isinstance(d, Decimal) else str(d))
    return await http.post(path, content=text, headers={**KEY, "Content-Type": "application/json"})


@pytest.fixture
async def no_callbacks(sandbox: httpx.AsyncClient) -> AsyncIterator[None]:
    await sandbox.post("/_sandbox/transportone/options", json={"callback_enabled": False})
    try:
        yield
    finally:
        await sandbox.post("/_sandbox/transportone/options", json={"callback_enabled": True})


async def test_a_repeat_with_another_amount_is_refused_naming_the_field(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient
) -> None:
    load, ref = f"L-{uid()}", f"CHK-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="500.00")
    path = "/v1/payments/alvys/customer-payments"

    first = await post_json(http, path, customer_body(load, ref, "50.00"))
    again = await post_json(http, path, customer_body(load, ref, "50.00", Note="resent, reworded"))
    other = await post_json(http, path, customer_body(load, ref, "75.00"))

    assert first.status_code == 202 and again.status_code == 202, (first.text, again.text)
    assert again.json() == first.json()
    assert other.status_code == 409, other.text
    assert other.headers["content-type"].startswith("application/problem+json")
    (conflict,) = other.json()["conflicts"]
    assert conflict["workflow_id"] == first.json()["workflow_ids"][0]
    assert conflict["differences"] == [{"field": "amount", "accepted": "50.00", "new": "75.00"}]
    assert any(e["field"] == "amount" and "'50.00'" in e["reason"] for e in other.json()["errors"])
    result = await asyncio.wait_for(payment_result(client, conflict["workflow_id"]), 30)
    assert result.status is PaymentStatus.PARTIALLY_PAID
    # The same holds after the payment ended; and nothing but the 50.00 was ever posted.
    late = await post_json(http, path, customer_body(load, ref, "75.00"))
    assert late.status_code == 409
    assert await alvys.postings(sandbox, ref) == [("customer", load, Decimal("50.00"))]


async def test_references_differing_in_punctuation_are_two_payments(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient
) -> None:
    load, tag = f"L-{uid()}", uid()
    await alvys.add_load(sandbox, load, status="Invoiced", billable="500.00")
    path = "/v1/payments/alvys/customer-payments"
    slash = await post_json(http, path, customer_body(load, f"X{tag}/1", "10.00"))
    question = await post_json(http, path, customer_body(load, f"X{tag}?1", "20.00"))

    (a,), (b,) = slash.json()["workflow_ids"], question.json()["workflow_ids"]
    assert a != b
    for workflow_id in (a, b):
        result = await asyncio.wait_for(payment_result(client, workflow_id), 30)
        assert result.status is PaymentStatus.PARTIALLY_PAID
    assert await alvys.postings(sandbox, f"X{tag}/1") == [("customer", load, Decimal("10.00"))]
    assert await alvys.postings(sandbox, f"X{tag}?1") == [("customer", load, Decimal("20.00"))]


async def test_a_remittance_lines_transportone_callback_reaches_it(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient
) -> None:
    invoice, ref = f"INV{uid()}", f"UTR{uid()}"
    await add_invoice(sandbox, invoice, "80.00", "USD")
    csv = (
        "target,amount,currency,payment_date,reference,invoice_number\n"
        f"transportone-payment,80.00,USD,2026-11-20,{ref},{invoice}\n"
    )
    answer = await http.post("/v1/remittances", content=csv, headers={**KEY, "Content-Type": "text/csv"})
    assert answer.status_code == 202, answer.text
    (workflow_id,) = answer.json()["workflow_ids"]
    assert workflow_id == f"payment-remittance-{ref}"
    for _ in range(100):  # the file's workflow starts its lines' payments
        if await exists(client, workflow_id):
            break
        await asyncio.sleep(0.1)
    result = await asyncio.wait_for(payment_result(client, workflow_id), 30)
    assert result.status is PaymentStatus.PAID and result.target_status == "PAID"


async def test_a_hand_sent_vendor_callback_is_refused_and_changes_nothing(
    client: Client, sandbox: httpx.AsyncClient, task_queue: str, no_callbacks: None
) -> None:
    invoice = f"INV{uid()}"
    await add_invoice(sandbox, invoice, "50.00")
    (instruction,) = billing_payments(body(invoice, f"P{uid()}", 50, 50), IntakeOptions())
    await start_payment(client, instruction, task_queue=task_queue, policy=PaymentPolicy())
    await wait_status(client, instruction.workflow_id, PaymentStatus.CONFIRMING)
    handle = client.get_workflow_handle_for(PaymentWorkflow.run, instruction.workflow_id)

    # What an operator would type in "Send a Signal": with no proof, and with a made-up one.
    await handle.signal(PaymentWorkflow.vendor_callback, CallbackReport(success=True, invoice_status="PAID"))
    await handle.signal(
        PaymentWorkflow.vendor_callback, CallbackReport(success=True, invoice_status="PAID", proof="0" * 64)
    )

    async def refusals() -> list[str]:
        state = await handle.query(PaymentWorkflow.status)
        return [a.message for a in state.actions if a.action == "vendor_callback" and not a.accepted]

    for _ in range(50):
        if len(await refusals()) == 2:
            break
        await asyncio.sleep(0.1)
    assert len(await refusals()) == 2
    state: PaymentState = await handle.query(PaymentWorkflow.status)
    assert state.status is PaymentStatus.CONFIRMING and state.total_paid is None


async def test_temporal_cancellation_of_a_payment_in_review_ends_it_cancelled(
    client: Client, sandbox: httpx.AsyncClient, task_queue: str, http: httpx.AsyncClient
) -> None:
    from tests.support.payments import customer

    instruction = customer(f"L-MISSING-{uid()}", "10.00")
    await start_payment(client, instruction, task_queue=task_queue, policy=PaymentPolicy())
    await wait_status(client, instruction.workflow_id, PaymentStatus.NEEDS_REVIEW)
    handle = client.get_workflow_handle(instruction.workflow_id)

    await handle.cancel()  # what the UI's "Request Cancellation" and `temporal workflow cancel` do

    with pytest.raises(WorkflowFailureError) as failure:
        await asyncio.wait_for(handle.result(), 30)
    assert isinstance(failure.value.cause, CancelledError)
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.CANCELED
    assert description.typed_search_attributes.get(sa.PAYMENT_STATUS) == "Cancelled"
    view = (await http.get(f"/v1/payments/{instruction.workflow_id}", headers=KEY)).json()
    assert view["status"] == "Cancelled" and view["execution_status"] == "Canceled"
    assert view["next_actions"] == []
    assert any(a["action"] == "cancel" and a["accepted"] for a in view["actions"])


async def test_temporal_cancellation_of_a_posted_payment_is_refused_and_recorded(
    client: Client, sandbox: httpx.AsyncClient, task_queue: str, no_callbacks: None
) -> None:
    invoice = f"INV{uid()}"
    await add_invoice(sandbox, invoice, "50.00")
    (instruction,) = billing_payments(body(invoice, f"P{uid()}", 50, 50), IntakeOptions())
    await start_payment(client, instruction, task_queue=task_queue, policy=PaymentPolicy())
    await wait_status(client, instruction.workflow_id, PaymentStatus.CONFIRMING)
    handle = client.get_workflow_handle_for(PaymentWorkflow.run, instruction.workflow_id)

    await handle.cancel()

    for _ in range(50):
        state = await handle.query(PaymentWorkflow.status)
        if any(a.action == "cancel" for a in state.actions):
            break
        await asyncio.sleep(0.1)
    (refusal,) = [a for a in state.actions if a.action == "cancel"]
    assert not refusal.accepted and "already posted" in refusal.message
    assert state.status is PaymentStatus.CONFIRMING
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    await handle.terminate("test cleanup")


async def test_an_overpayment_on_a_given_load_ends_paid_flagged_overpaid(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient
) -> None:
    load, ref = f"L-{uid()}", f"CHK-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="750.00")
    answer = await post_json(
        http, "/v1/payments/alvys/customer-payments", customer_body(load, ref, "3000.00")
    )
    (workflow_id,) = answer.json()["workflow_ids"]

    result = await asyncio.wait_for(payment_result(client, workflow_id), 30)

    assert result.status is PaymentStatus.PAID and result.flags == ["Overpaid"]
    assert "overpaid by USD 2,250.00" in result.message
    flagged = [
        w.id
        async for w in client.list_workflows(f"PaymentFlags = 'Overpaid' AND WorkflowId = '{workflow_id}'")
    ]
    for _ in range(50):  # visibility is eventually consistent
        if flagged:
            break
        await asyncio.sleep(0.1)
        flagged = [
            w.id
            async for w in client.list_workflows(
                f"PaymentFlags = 'Overpaid' AND WorkflowId = '{workflow_id}'"
            )
        ]
    assert flagged == [workflow_id]


async def test_an_overpayment_over_the_senders_invoice_total_waits_for_approval(
    client: Client, sandbox: httpx.AsyncClient, task_queue: str
) -> None:
    from intake.remittance import parse_csv

    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="750.00")
    (instruction,) = parse_csv(
        "target,amount,currency,payment_date,reference,load_number,invoice_total\n"
        f"alvys-customer-payment,3000.00,USD,2026-11-20,CHK-{uid()},{load},750.00\n"
    )
    await start_payment(client, instruction, task_queue=task_queue, policy=PaymentPolicy())
    state = await wait_status(client, instruction.workflow_id, PaymentStatus.AWAITING_APPROVAL)
    assert "more than the invoice total of USD 750.00" in (state.reason or "")
    assert not state.posted
    await client.get_workflow_handle(instruction.workflow_id).terminate("test cleanup")


async def test_a_posted_payment_cannot_be_retargeted_by_retry(
    client: Client, sandbox: httpx.AsyncClient, task_queue: str, no_callbacks: None
) -> None:
    invoice = f"INV{uid()}"
    await add_invoice(sandbox, invoice, "50.00")
    (instruction,) = billing_payments(body(invoice, f"P{uid()}", 50, 50), IntakeOptions())
    policy = PaymentPolicy(callback_timeout=timedelta(seconds=1))
    await start_payment(client, instruction, task_queue=task_queue, policy=policy)
    await wait_status(client, instruction.workflow_id, PaymentStatus.NEEDS_REVIEW)
    handle = client.get_workflow_handle_for(PaymentWorkflow.run, instruction.workflow_id)

    from temporalio.client import WorkflowUpdateFailedError

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("retry", RetryInput(invoice_number="INV-OTHER"), result_type=ActionAnswer)
    assert "cannot change the target" in str(refused.value.cause)
    assert "resolve" in str(refused.value.cause)
    # A retry as it stands (the same idempotent post) is still allowed.
    answer = await handle.execute_update("retry", RetryInput(), result_type=ActionAnswer)
    assert answer.status is not PaymentStatus.NEEDS_REVIEW or "retry" in answer.message
    await handle.terminate("test cleanup")


async def test_a_terminated_payment_shows_temporals_status_and_offers_nothing(
    client: Client, sandbox: httpx.AsyncClient, task_queue: str, http: httpx.AsyncClient
) -> None:
    from tests.support.payments import customer

    instruction = customer(f"L-MISSING-{uid()}", "10.00")
    await start_payment(client, instruction, task_queue=task_queue, policy=PaymentPolicy())
    await wait_status(client, instruction.workflow_id, PaymentStatus.NEEDS_REVIEW)
    await client.get_workflow_handle(instruction.workflow_id).terminate("operator pulled the plug")

    view = (await http.get(f"/v1/payments/{instruction.workflow_id}", headers=KEY)).json()

    assert view["status"] == "NeedsReview" and view["execution_status"] == "Terminated"
    assert view["next_actions"] == []


async def test_a_line_whose_key_was_taken_after_the_file_was_accepted_is_a_recorded_conflict(
    client: Client, sandbox: httpx.AsyncClient, task_queue: str, settings: Any
) -> None:
    """The window intake cannot see: another delivery takes a line's key before the file's
    workflow reaches it. The line is not posted and not dropped: the file records a Conflict."""
    from intake import files
    from intake.remittance import parse_csv
    from models.steps import RemittanceInput, RemittanceProgress
    from tests.support.payments import customer

    load, ref, same = f"L-{uid()}", f"CHK-{uid()}", f"CHK-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="500.00")
    raw = (
        "target,amount,currency,payment_date,reference,load_number\n"
        f"alvys-customer-payment,20.00,USD,2026-11-20,{ref},{load}\n"
        f"alvys-customer-payment,30.00,USD,2026-11-20,{same},{load}\n"
    ).encode()
    lines = parse_csv(raw)
    # Another delivery takes the first line's key with another amount, and the second's with the same facts.
    taken = lines[0].model_copy(update={"amount": customer(load, "25.00").amount})
    await start_payment(client, taken, task_queue=task_queue, policy=PaymentPolicy())
    await start_payment(client, lines[1], task_queue=task_queue, policy=PaymentPolicy())
    file_id = files.store(settings.freightpay.data_dir, raw)
    progress: RemittanceProgress = await client.execute_workflow(
        "RemittanceWorkflow",
        RemittanceInput(file_id=file_id, file_name="late.csv", total_lines=2),
        id=f"remittance-test-{uid()}",
        task_queue=task_queue,
        result_type=RemittanceProgress,
    )

    assert progress.by_status == {"AlreadyStarted": 1, "Conflict": 1}
    (conflict,) = progress.conflicts
    assert conflict.line == "line 2" and conflict.workflow_id == lines[0].workflow_id
    assert conflict.differences == ["amount: accepted '25.00', this one '20.00'"]
    assert await alvys.postings(sandbox, ref) == [("customer", load, Decimal("25.00"))]


async def test_a_line_payment_terminated_through_temporal_does_not_stop_the_file(
    client: Client, sandbox: httpx.AsyncClient, task_queue: str, settings: Any
) -> None:
    """An operator terminates one line's payment (the Web UI's Terminate) while it waits for a
    person: the file goes on to its other lines and counts that one ``Terminated``; nothing lost."""
    from intake import files
    from intake.remittance import parse_csv
    from models.steps import RemittanceInput, RemittanceProgress

    load, stuck = f"L-{uid()}", f"L-MISSING-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="500.00")
    raw = (
        "target,amount,currency,payment_date,reference,load_number\n"
        f"alvys-customer-payment,20.00,USD,2026-11-20,CHK-{uid()},{stuck}\n"
        f"alvys-customer-payment,30.00,USD,2026-11-20,CHK-{uid()},{load}\n"
        f"alvys-customer-payment,40.00,USD,2026-11-20,CHK-{uid()},{load}\n"
    ).encode()
    lines = parse_csv(raw)
    file_id = files.store(settings.freightpay.data_dir, raw)
    # One line per batch: the file's later lines start only after the first one's payment ended.
    handle = await client.start_workflow(
        "RemittanceWorkflow",
        RemittanceInput(file_id=file_id, file_name="stuck.csv", total_lines=3, batch_size=1),
        id=f"remittance-test-{uid()}",
        task_queue=task_queue,
        result_type=RemittanceProgress,
    )
    await wait_status(client, lines[0].workflow_id, PaymentStatus.NEEDS_REVIEW)
    await client.get_workflow_handle(lines[0].workflow_id).terminate("pulled by an operator")

    progress: RemittanceProgress = await asyncio.wait_for(handle.result(), 60)
    assert progress.by_status == {"Terminated": 1, "PartiallyPaid": 2}  # 30 and 40 of 500
    for line, amount in ((lines[1], "30.00"), (lines[2], "40.00")):
        assert await alvys.postings(sandbox, line.reference_number) == [("customer", load, Decimal(amount))]
