"""The operator CLI end to end: `freightpay payments ...` as a subprocess against the dev server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from intake.start import payment_result, start_payment
from models.state import PaymentStatus
from tests.support import alvys_sandbox as alvys
from tests.support.cli import ROOT, cli
from tests.support.payments import FAST, customer, uid, wait_status

pytestmark = pytest.mark.usefixtures("worker")


async def test_list_show_refuse_approve(client: Client, task_queue: str, sandbox: httpx.AsyncClient) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="11000.00")
    instruction = customer(load, "11000.00")
    await start_payment(client, instruction, task_queue=task_queue, policy=FAST)
    await wait_status(client, instruction.workflow_id, PaymentStatus.AWAITING_APPROVAL)
    wid = instruction.workflow_id

    for _ in range(50):
        listed = await cli(
            client, task_queue, "payments", "list", "--status", "awaitingapproval", "--load", load, "--json"
        )
        if listed.stdout.strip():
            break
        await asyncio.sleep(0.2)
    assert listed.returncode == 0, listed.stderr
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["workflow_id"] == wid and row["status"] == "AwaitingApproval" and row["amount"] == 11000.0

    table = await cli(client, task_queue, "payments", "list", "--load", load)
    assert wid in table.stdout and "AwaitingApproval" in table.stdout

    shown = await cli(client, task_queue, "payments", "show", wid)
    assert shown.returncode == 0
    assert "AwaitingApproval" in shown.stdout and "you can: approve, cancel, resolve" in shown.stdout

    refused = await cli(client, task_queue, "payments", "retry", wid, "--reason", "why not")
    assert refused.returncode == 1
    assert "retry refused: cannot retry while the payment is AwaitingApproval" in refused.stderr

    approved = await cli(client, task_queue, "payments", "approve", wid, "--operator", "ci", "--reason", "ok")
    assert approved.returncode == 0, approved.stderr
    assert wid in approved.stdout and "approved" in approved.stdout
    assert (await payment_result(client, wid)).status is PaymentStatus.PAID

    again = await cli(client, task_queue, "payments", "cancel", wid)
    assert again.returncode == 1 and "the payment is already Paid" in again.stderr
    shown = await cli(client, task_queue, "payments", "show", wid, "--json")
    assert json.loads(shown.stdout)["actions"][0]["operator"] == "ci"


async def test_retry_with_a_corrected_load_from_the_cli(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    right = f"L-{uid()}"
    await alvys.add_load(sandbox, right, status="Invoiced", billable="30.00")
    instruction = customer(f"L-TYPO-{uid()}", "30.00")
    await start_payment(client, instruction, task_queue=task_queue, policy=FAST)
    await wait_status(client, instruction.workflow_id, PaymentStatus.NEEDS_REVIEW)

    done = await cli(client, task_queue, "payments", "retry", instruction.workflow_id, "--load-number", right)

    assert done.returncode == 0, done.stderr
    assert (await payment_result(client, instruction.workflow_id)).status is PaymentStatus.PAID


async def test_cli_errors_have_exit_codes(client: Client, task_queue: str) -> None:
    missing = await cli(client, task_queue, "payments", "cancel", "payment-alvys-customer-NOPE")
    assert missing.returncode == 4 and "no payment payment-alvys-customer-NOPE" in missing.stderr
    bad = await cli(client, task_queue, "payments", "list", "--status", "Bogus")
    assert bad.returncode == 2 and "unknown status 'Bogus'" in bad.stderr


async def test_submit_and_starter_share_the_intake(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient, tmp_path: Path
) -> None:
    load, ref = f"L-{uid()}", f"CHK-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="382.53")
    body = json.loads((ROOT / "examples" / "alvys-customer-payment.json").read_text())
    body.update(LoadNumber=load, ReferenceNumber=ref)
    file = tmp_path / "payment.json"
    file.write_text(json.dumps(body))

    started = await cli(
        client, task_queue, "payments", "submit", "alvys-customer-payment", str(file), "--wait"
    )

    assert started.returncode == 0, started.stderr
    workflow_id, result_line = started.stdout.strip().splitlines()
    assert workflow_id == f"payment-alvys-customer-{load}-{ref}"
    assert json.loads(result_line)["status"] == "Paid"
    # the same file through starter.py: the same workflow, nothing new posted
    env = {**os.environ, "TEMPORAL_ADDRESS": client.service_client.config.target_host,
           "FREIGHTPAY_TASK_QUEUE": task_queue}  # fmt: skip
    again = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "starter.py", "alvys-customer-payment", str(file)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.stdout.strip() == workflow_id
    assert len(await alvys.postings(sandbox, ref)) == 1


async def test_starter_refuses_bad_input_naming_the_field(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    file = tmp_path / "bad.json"
    file.write_text(json.dumps({"LoadNumber": "L-1", "Amount": {"Amount": 1.005, "Currency": 840}}))
    env = {**os.environ, "TEMPORAL_ADDRESS": client.service_client.config.target_host}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "starter.py", "alvys-customer-payment", str(file)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert "nothing was started" in done.stderr
    assert "PaymentDate: is required" in done.stderr and "ReferenceNumber: is required" in done.stderr
    assert "Traceback" not in done.stderr
