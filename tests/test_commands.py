"""The commands people run: the worker's start-up check, the MyCarrier sender, starter.py for every SOURCE."""

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
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from config.settings import Settings
from intake.start import payment_result
from models.state import PaymentStatus
from tests.conftest import MC_SECRET, venv_binary
from tests.support import alvys_sandbox as alvys
from tests.support.payments import uid

ROOT = Path(__file__).resolve().parent.parent


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


async def test_a_worker_names_the_missing_search_attributes_and_does_not_start() -> None:
    bare = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"), data_converter=pydantic_data_converter, ui=False
    )
    async with bare:
        address = bare.client.service_client.config.target_host
        done = await asyncio.to_thread(run, "worker.py", env={"TEMPORAL_ADDRESS": address}, timeout=60)
    assert done.returncode == 2
    assert "lacks the search attributes PaymentStatus (Keyword)" in done.stderr
    assert "PaymentAmount (Double)" in done.stderr


@pytest.mark.usefixtures("worker")
async def test_send_mycarrier_posts_fresh_sample_events_through_the_ingress(
    ingress_url: str, client: Client, sandbox: httpx.AsyncClient
) -> None:
    done = await asyncio.to_thread(
        run, "-m", "cli.main", "sandbox", "send-mycarrier", "--url", f"{ingress_url}/v1/webhooks/mycarrier",
        "--secret", MC_SECRET, "--fresh", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("202 ") for line in lines)
    for line in lines:
        (workflow_id,) = json.loads(line.removeprefix("202 "))["workflow_ids"]
        result = await asyncio.wait_for(payment_result(client, workflow_id), 30)
        assert result.status in (PaymentStatus.PAID, PaymentStatus.PARTIALLY_PAID)

    forged = await asyncio.to_thread(
        run, "-m", "cli.main", "sandbox", "send-mycarrier", "--url", f"{ingress_url}/v1/webhooks/mycarrier",
        "--secret", "wrong",
    )  # fmt: skip
    assert forged.returncode == 1 and forged.stdout.startswith("401 ")


@pytest.mark.usefixtures("worker")
async def test_starter_for_every_source(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient, tmp_path: Path
) -> None:
    env = {
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "FREIGHTPAY_TASK_QUEUE": settings.freightpay.task_queue,
        "FREIGHTPAY_DATA_DIR": settings.freightpay.data_dir,
    }
    load, ref = f"L-{uid()}", f"R-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="20.00")
    csv = tmp_path / "bank.csv"
    csv.write_text(
        "target,load_number,amount,currency,payment_date,reference\n"
        f"alvys-customer-payment,{load},5.00,USD,2026-11-20,{ref}-1\n"
        f"alvys-customer-payment,{load},15.00,USD,2026-11-20,{ref}-2\n"
    )
    invoice = f"INV{uid()}"
    await sandbox.post(
        "/_sandbox/transportone/invoices", json={"invoiceNumber": invoice, "total": "10", "currency": "INR"}
    )
    t1 = tmp_path / "t1.json"
    t1.write_text(json.dumps({"data": {"payments": [{"paymentId": f"P{uid()}", "invoiceNumber": invoice,
        "paymentType": "cash", "totalAmount": 10, "paymentDate": 1757116800000, "appliedAmount": 10,
        "referenceNumber": f"UTR{uid()}"}]}}))  # fmt: skip

    remitted = await asyncio.to_thread(run, "starter.py", "remittance", str(csv), "--wait", env=env)
    posted = await asyncio.to_thread(run, "starter.py", "transportone-payment", str(t1), env=env)

    assert remitted.returncode == 0, remitted.stderr
    ids, results = remitted.stdout.strip().splitlines()[:2], remitted.stdout.strip().splitlines()[2:]
    assert ids == [f"payment-remittance-{ref}-1", f"payment-remittance-{ref}-2"]
    # the lines run concurrently: whichever is recorded second completes the load
    assert sorted(json.loads(r)["status"] for r in results) == ["Paid", "PartiallyPaid"]
    assert "remittance file bank.csv: workflow remittance-" in remitted.stderr
    assert posted.returncode == 0, posted.stderr
    assert posted.stdout.strip().startswith(f"payment-transportone-{invoice}-P")
