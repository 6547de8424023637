"""Reconciliation end to end: real dev server, real worker, the Alvys sandbox made to drift.

Three customer payments and a carrier payment are paid; the sandbox loses one recorded payment
and changes another's amount; a reconciliation over the window finds exactly that, opens one
DiscrepancyWorkflow per discrepancy (once, however many runs find it), writes the report, and
costs one ``POST loads/search`` for the three loads.
"""

from __future__ import annotations

import asyncio
import csv
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    WorkflowExecutionStatus,
)
from temporalio.service import RPCError

from cli.reconcile import ensure_schedule, parse_every
from models import reconcile
from models.money import Money
from models.priority import FILE
from models.reconcile import (
    CheckedPayment,
    Outcome,
    ReconcileInput,
    ReconcileProgress,
    ReconcileResult,
    ResolveDiscrepancyInput,
    SettledPayment,
    VendorLoad,
    VendorPayment,
    Window,
)
from models.state import PaymentStatus
from tests.support import alvys_sandbox as alvys
from tests.support.cli import cli
from tests.support.payments import carrier, customer, run, uid
from workflows import search_attributes as sa
from workflows.reconcile import DiscrepancyWorkflow, ReconcileWorkflow

CUSTOMER = "alvys-customer-payment"


# ------------------------------------------------------------------------------ the rules


def settled(**fields: object) -> SettledPayment:
    values: dict[str, object] = {
        "workflow_id": "payment-alvys-customer-L-1-CHK-1",
        "target": CUSTOMER,
        "status": "Paid",
        "reference": "CHK-1",
        "amount": Money.of("120.00"),
        "load_number": "L-1",
        "vendor_payment_id": "p1",
    }
    values.update(fields)
    return SettledPayment.model_validate(values)


def load(number: str, *payments: VendorPayment) -> VendorLoad:
    return VendorLoad(load_number=number, status="Invoiced", payments=list(payments))


def test_check_rules() -> None:
    ours = VendorPayment(id="p1", amount=Money.of("120.00"))
    assert reconcile.check(settled(), {"L-1": load("L-1", ours)}).outcome is Outcome.MATCHED
    short = reconcile.check(settled(), {"L-1": load("L-1", VendorPayment(id="p1", amount=Money.of("90.00")))})
    assert short.outcome is Outcome.DIFFERING and "ours USD 120.00, Alvys USD 90.00" in short.detail
    cad = reconcile.check(
        settled(), {"L-1": load("L-1", VendorPayment(id="p1", amount=Money.of("120.00", "CAD")))}
    )
    assert cad.outcome is Outcome.DIFFERING
    elsewhere = reconcile.check(settled(), {"L-1": load("L-1"), "L-2": load("L-2", ours)})
    assert elsewhere.outcome is Outcome.DIFFERING and "recorded on Alvys load L-2" in elsewhere.detail
    gone = reconcile.check(settled(), {"L-1": load("L-1", VendorPayment(id="p9", amount=Money.of("5.00")))})
    assert gone.outcome is Outcome.MISSING and "lists no payment p1" in gone.detail
    assert "p9 USD 5.00" in gone.vendor_view
    assert reconcile.check(settled(), {}).outcome is Outcome.MISSING  # the load itself is gone
    # no Alvys payment id: by reference where Alvys lists one, else unverifiable (never by amount)
    by_ref = VendorPayment(id="p1", reference="CHK-1", amount=Money.of("120.00"))
    assert (
        reconcile.check(settled(vendor_payment_id=None), {"L-1": load("L-1", by_ref)}).outcome
        is Outcome.MATCHED
    )
    blind = reconcile.check(settled(vendor_payment_id=None), {"L-1": load("L-1", ours)})
    assert blind.outcome is Outcome.UNVERIFIABLE
    failed = reconcile.check(settled(), {}, read_error="Alvys 400")
    assert failed.outcome is Outcome.UNVERIFIABLE and "could not be read: Alvys 400" in failed.detail
    for target in ("alvys-carrier-payment", "transportone-payment"):
        row = reconcile.check(settled(target=target, load_number=None), {})
        assert row.outcome is Outcome.UNVERIFIABLE and "publishes no read" in row.detail


def test_window_query_and_line() -> None:
    until = datetime(2026, 12, 1, tzinfo=UTC)
    window = reconcile.window_of(ReconcileInput(), until)
    assert window.since == datetime(2026, 11, 30, tzinfo=UTC)
    assert window.stem == "reconcile-2026-11-30T00-00Z-2026-12-01T00-00Z"
    assert reconcile.window_of(ReconcileInput(window=timedelta(hours=12)), until).since.hour == 12
    assert reconcile.stamp(datetime(2026, 12, 1, 8, 5, 7)) == "2026-12-01T08-05-07Z"
    with pytest.raises(ValueError):
        Window(since=until, until=until)
    assert reconcile.settled_query(window, "q") == (
        "WorkflowType = 'PaymentWorkflow' AND PaymentStatus IN ('Paid', 'PartiallyPaid', 'ResolvedManually')"
        " AND CloseTime >= '2026-11-30T00:00:00Z' AND CloseTime < '2026-12-01T00:00:00Z' AND TaskQueue = 'q'"
    )
    counts = reconcile.Counts()
    counts.add([Outcome.MATCHED, Outcome.MISSING, Outcome.UNVERIFIABLE])
    result = ReconcileResult(
        reconciliation_id="r", window=window, counts=counts, report="/r.csv", markdown="/r.md"
    )
    assert result.line() == (
        "reconcile: checked=3 matched=1 missing=1 differing=0 unverifiable=1 report=/r.csv"
    )
    assert [parse_every(t) for t in ("24h", "1d", "1h30m")] == [
        timedelta(hours=24), timedelta(days=1), timedelta(minutes=90)
    ]  # fmt: skip
    with pytest.raises(ValueError):
        parse_every("soon")


def test_csv_has_one_row_per_payment() -> None:
    row = CheckedPayment(
        workflow_id="w", target=CUSTOMER, load_number="L-1", reference="CHK, 1",
        our_amount=Money.of("1200.00"), outcome=Outcome.MISSING, detail='no "p1"',
    )  # fmt: skip
    parsed = list(csv.DictReader(reconcile.csv_text([row]).splitlines()))
    assert parsed == [
        {
            "workflow_id": "w", "target": CUSTOMER, "load": "L-1", "reference": "CHK, 1",
            "our_amount": "USD 1200.00", "vendor_amount": "", "outcome": "missing", "detail": 'no "p1"',
        }
    ]  # fmt: skip


# ------------------------------------------------------------------------------ end to end


async def _visible(client: Client, query: str, count: int, seconds: float = 30) -> None:
    """Visibility lags a little behind the workflows: wait until ``query`` counts ``count``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while (found := (await client.count_workflows(query)).count) != count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{found} workflows, not {count}, for {query}")
        await asyncio.sleep(0.2)


async def _posting_id(sandbox: httpx.AsyncClient, reference: str) -> str:
    (row,) = (await sandbox.get("/_sandbox/alvys/postings", params={"reference": reference})).json()
    return str(row["id"])


@pytest.mark.usefixtures("worker")
async def test_reconciliation_finds_lost_and_changed_payments(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    loads = [f"L-{uid()}" for _ in range(3)]
    for number in loads:
        await alvys.add_load(sandbox, number, status="Invoiced", billable="120.00")
    trip = f"T-{uid()}"
    await alvys.add_trip(sandbox, trip, load=f"L-{uid()}", status="Delivered", payable="80.00")
    payments = [customer(number, "120.00") for number in loads]
    results = [await run(client, task_queue, p) for p in [*payments, carrier(trip, "80.00")]]
    assert [r.status for r in results] == [PaymentStatus.PAID] * 4
    kept, lost, changed = payments

    # the drift: Alvys loses one recorded payment and shows another with a different amount
    lost_id, changed_id = [await _posting_id(sandbox, p.reference_number) for p in (lost, changed)]
    assert (await sandbox.delete(f"/_sandbox/alvys/postings/{lost_id}")).status_code == 200
    assert (await sandbox.delete(f"/_sandbox/alvys/postings/{lost_id}")).status_code == 404
    amended = await sandbox.post(f"/_sandbox/alvys/postings/{changed_id}/amount", json={"Amount": 90.00})
    assert amended.status_code == 200 and Decimal(amended.json()["amount"]) == Decimal("90.00")
    refused = await sandbox.post(f"/_sandbox/alvys/postings/{changed_id}/amount", json={"Amount": -1})
    assert refused.status_code == 422
    assert await alvys.postings(sandbox, lost.reference_number) == []

    until = datetime.now(UTC) + timedelta(seconds=1)
    window = Window(since=since, until=until)
    await _visible(client, reconcile.settled_query(window, task_queue), 4)
    before = await alvys.request_counts(sandbox)

    result = await client.execute_workflow(
        ReconcileWorkflow.run,
        ReconcileInput(since=since, until=until, settle_seconds=0),
        id=f"reconcile-test-{uuid.uuid4()}",
        task_queue=task_queue,
    )

    report = Path(result.report)
    assert result.line() == (
        f"reconcile: checked=4 matched=1 missing=1 differing=1 unverifiable=1 report={report}"
    )
    assert report.name == f"{window.stem}.csv" and report.parent.name == "reconciliation"
    # the read cost: one loads/search for the three loads, nothing for the carrier payment
    assert alvys.delta(before, await alvys.request_counts(sandbox)) == {"loads/search": 1}
    assert result.reads == 1
    rows = {
        row["workflow_id"]: row
        for row in csv.DictReader((await asyncio.to_thread(report.read_text)).splitlines())
    }
    assert len(rows) == 4
    assert rows[kept.workflow_id]["outcome"] == "matched"
    assert rows[lost.workflow_id]["outcome"] == "missing"
    assert rows[changed.workflow_id] | {"detail": ""} == {
        "workflow_id": changed.workflow_id, "target": CUSTOMER, "load": changed.ids.load_number,
        "reference": changed.reference_number, "our_amount": "USD 120.00", "vendor_amount": "USD 90.00",
        "outcome": "differing", "detail": "",
    }  # fmt: skip
    carrier_row = next(r for r in rows.values() if r["target"] == "alvys-carrier-payment")
    assert carrier_row["outcome"] == "unverifiable" and carrier_row["load"] == trip
    markdown = await asyncio.to_thread(Path(result.markdown).read_text)
    assert "## Discrepancies" in markdown and lost.workflow_id in markdown

    # one DiscrepancyWorkflow each, findable by the flag in the Web UI
    expected = {reconcile.discrepancy_id(p.workflow_id) for p in (lost, changed)}
    assert set(result.opened) == expected and result.already == []
    query = (
        "WorkflowType = 'DiscrepancyWorkflow' AND PaymentFlags = 'Unreconciled' AND "
        f"LoadNumber IN ({', '.join(repr(n) for n in loads)}) AND ExecutionStatus = 'Running'"
    )
    await _visible(client, query, 2)
    found = {e.id: e async for e in client.list_workflows(query)}
    assert set(found) == expected
    attrs = found[reconcile.discrepancy_id(changed.workflow_id)].typed_search_attributes
    assert attrs.get(sa.PAYMENT_REFERENCE) == changed.reference_number
    assert attrs.get(sa.PAYMENT_AMOUNT) == 120.0 and attrs.get(sa.LOAD_NUMBER) == changed.ids.load_number

    # a second run over the same window, from the CLI: the same counts, nothing duplicated
    again = await cli(
        client,
        task_queue,
        "reconcile",
        "run",
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat(),
        "--wait",
    )
    assert again.returncode == 0, again.stderr
    run_id, line = again.stdout.strip().splitlines()
    assert run_id == window.stem
    assert line == result.line()
    second = await client.get_workflow_handle_for(ReconcileWorkflow.run, run_id).result()
    assert second.opened == [] and set(second.already) == expected
    assert (await client.count_workflows(query.replace(" AND ExecutionStatus = 'Running'", ""))).count == 2

    # an operator closes them: one by the update, one by the signal
    by_update = client.get_workflow_handle_for(
        DiscrepancyWorkflow.run, reconcile.discrepancy_id(lost.workflow_id)
    )
    state = await by_update.execute_update(
        DiscrepancyWorkflow.resolve, ResolveDiscrepancyInput(reason="re-entered in Alvys", operator="ci")
    )
    assert state.resolved and state.operator == "ci" and state.outcome is Outcome.MISSING
    assert (await by_update.result()).reason == "re-entered in Alvys"
    assert (await by_update.describe()).status is WorkflowExecutionStatus.COMPLETED
    by_signal = client.get_workflow_handle_for(
        DiscrepancyWorkflow.run, reconcile.discrepancy_id(changed.workflow_id)
    )
    await by_signal.signal(DiscrepancyWorkflow.resolve_signal, ResolveDiscrepancyInput(operator="ci"))
    assert (await by_signal.result()).resolved
    await _visible(client, query, 0)


@pytest.mark.usefixtures("worker")
async def test_schedule_is_created_updated_and_runs_over_its_interval(
    client: Client, task_queue: str
) -> None:
    schedule = client.get_schedule_handle(reconcile.SCHEDULE_ID)
    try:
        made = await cli(client, task_queue, "reconcile", "schedule", "--every", "12h")
        assert made.returncode == 0, made.stderr
        assert f"schedule {reconcile.SCHEDULE_ID} created" in made.stdout
        described = await schedule.describe()
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == "ReconcileWorkflow" and action.task_queue == task_queue
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(hours=12)]

        updated = await cli(client, task_queue, "reconcile", "schedule", "--every", "24h")
        assert updated.returncode == 0 and "updated" in updated.stdout
        assert await ensure_schedule(client, task_queue, timedelta(hours=6)) == "kept"  # what make run does
        described = await schedule.describe()
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(hours=24)]
        bad = await cli(client, task_queue, "reconcile", "schedule", "--every", "soon")
        assert bad.returncode == 2

        # a run the schedule starts takes the 24 h before its action time as its window
        await schedule.trigger()
        query = f"WorkflowType = 'ReconcileWorkflow' AND TaskQueue = '{task_queue}'"
        await _visible(client, query, 1)
        (execution,) = [e async for e in client.list_workflows(query)]
        assert execution.id.startswith(f"{reconcile.SCHEDULE_ID}-")
        handle = client.get_workflow_handle(execution.id)
        progress = ReconcileProgress()
        for _ in range(100):  # answered once its first workflow task ran
            progress = await handle.query(ReconcileWorkflow.progress)
            if progress.window is not None:
                break
            await asyncio.sleep(0.1)
        assert progress.window is not None
        assert progress.window.until - progress.window.since == timedelta(hours=24)
        assert abs(progress.window.until - datetime.now(UTC)) < timedelta(minutes=1)
        # bulk work: behind live payments on the shared queues (models/priority.py)
        info = (await handle.describe()).raw_description.workflow_execution_info
        assert info.priority.priority_key == FILE.priority_key
        await handle.terminate("test over")
    finally:
        try:
            await schedule.delete()
        except RPCError:
            pass
