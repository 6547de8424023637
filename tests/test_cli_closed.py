"""`freightpay payments list|show` on payments Temporal itself closed: the execution status is
shown beside the PaymentStatus, and a closed payment offers no actions.

A termination runs no workflow code, so the PaymentStatus stays what it last was
(AwaitingApproval here); only Temporal's execution status says the payment is over.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from temporalio.client import Client

from cli.payments import visibility_query
from intake.start import payment_result, start_payment
from models.state import PaymentStatus
from tests.support import alvys_sandbox as alvys
from tests.support.cli import cli
from tests.support.payments import FAST, customer, uid, wait_status

pytestmark = pytest.mark.usefixtures("worker")


async def listed(client: Client, task_queue: str, load: str, execution_status: str) -> dict[str, object]:
    """The payment's ``list --json`` row, once visibility shows the execution status wanted."""
    row: dict[str, object] = {}
    for _ in range(50):
        done = await cli(client, task_queue, "payments", "list", "--load", load, "--json")
        assert done.returncode == 0, done.stderr
        rows = [json.loads(line) for line in done.stdout.splitlines()]
        if rows and rows[0]["execution_status"] == execution_status:
            (row,) = rows
            return row
        await asyncio.sleep(0.2)
    raise AssertionError(f"{load}: no row with execution_status {execution_status}: {rows}")


async def test_a_terminated_payment_shows_terminated_and_offers_nothing(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="11000.00")
    instruction = customer(load, "11000.00")
    wid = await start_payment(client, instruction, task_queue=task_queue, policy=FAST)
    await wait_status(client, wid, PaymentStatus.AWAITING_APPROVAL)

    running = await listed(client, task_queue, load, "Running")
    assert running["status"] == "AwaitingApproval" and running["flags"] == []
    shown = await cli(client, task_queue, "payments", "show", wid)
    assert "(Temporal: Running)" in shown.stdout and "you can: approve, cancel, resolve" in shown.stdout

    await client.get_workflow_handle(wid).terminate(reason="test: stopped in Temporal")

    row = await listed(client, task_queue, load, "Terminated")
    assert row["workflow_id"] == wid and row["status"] == "AwaitingApproval"  # as it last was
    table = await cli(client, task_queue, "payments", "list", "--load", load)
    assert "temporal" in table.stdout and "Terminated" in table.stdout

    shown = await cli(client, task_queue, "payments", "show", wid)
    assert shown.returncode == 0, shown.stderr
    assert "closed by Temporal: Terminated" in shown.stdout and "AwaitingApproval" in shown.stdout
    assert "you can" not in shown.stdout.lower()

    as_json = await cli(client, task_queue, "payments", "show", wid, "--json")
    state = json.loads(as_json.stdout)
    assert state["execution_status"] == "Terminated" and state["next_actions"] == []

    refused = await cli(client, task_queue, "payments", "approve", wid, "--reason", "too late")
    assert refused.returncode == 1
    assert "approve refused: the payment was closed by Temporal: Terminated" in refused.stderr


async def test_a_completed_payment_shows_completed_and_offers_nothing(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="30.00")
    wid = await start_payment(client, customer(load, "30.00"), task_queue=task_queue, policy=FAST)
    await client.get_workflow_handle(wid).result()

    row = await listed(client, task_queue, load, "Completed")
    assert row["status"] == "Paid"
    shown = await cli(client, task_queue, "payments", "show", wid)
    assert "Paid" in shown.stdout and "(Temporal: Completed)" in shown.stdout
    assert "closed by Temporal" not in shown.stdout and "you can" not in shown.stdout.lower()


async def test_list_filters_on_a_flag_and_shows_the_flags(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="30.00")
    first = await start_payment(client, customer(load, "30.00"), task_queue=task_queue, policy=FAST)
    assert (await payment_result(client, first)).status is PaymentStatus.PAID
    # the load is given, so no balance is read first: the post's answer shows it paid beyond billable
    extra = await start_payment(client, customer(load, "10.00"), task_queue=task_queue, policy=FAST)
    assert (await payment_result(client, extra)).flags == ["Overpaid"]

    row: dict[str, object] = {}
    for _ in range(50):
        done = await cli(
            client, task_queue, "payments", "list", "--load", load, "--flag", "Overpaid", "--json"
        )
        assert done.returncode == 0, done.stderr
        rows = [json.loads(line) for line in done.stdout.splitlines()]
        if rows:
            (row,) = rows
            break
        await asyncio.sleep(0.2)
    assert row["workflow_id"] == extra and row["flags"] == ["Overpaid"] and row["status"] == "Paid"
    everything = await cli(client, task_queue, "payments", "list", "--load", load, "--json")
    flags = {
        json.loads(line)["workflow_id"]: json.loads(line)["flags"] for line in everything.stdout.splitlines()
    }
    assert flags == {first: [], extra: ["Overpaid"]}


def test_list_filters_on_a_flag() -> None:
    query = visibility_query(None, "L-1", None, flag="overpayment")
    assert query == "WorkflowType = 'PaymentWorkflow' AND LoadNumber = 'L-1' AND PaymentFlags = 'overpayment'"
