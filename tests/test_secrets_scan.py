"""No secret in any workflow history or log line of the whole test session.

Runs last (tests/conftest.py orders it so). It pays through both vendors first, so there is
always something to scan, then exports the history of every workflow the session's Temporal
server holds and every log line the session wrote, and looks for each configured secret and
each access token the sandbox issued.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from config.settings import (
    SANDBOX_ALVYS_CLIENT_SECRET,
    SANDBOX_ALVYS_WEBHOOK_SECRET,
    SANDBOX_T1_ACCESS_KEY,
    SANDBOX_T1_CALLBACK_SECRET,
    SANDBOX_T1_CLIENT_SECRET,
)
from intake.start import payment_result
from models.state import PaymentStatus
from tests.conftest import API_KEY, MC_SECRET
from tests.support import alvys_sandbox as alvys
from tests.support.payments import uid

pytestmark = pytest.mark.usefixtures("worker")


async def histories(client: Client) -> list[str]:
    gate = asyncio.Semaphore(20)

    async def one(workflow_id: str, run_id: str) -> str:
        async with gate:
            history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
            return history.to_json()

    executions = [(w.id, w.run_id) async for w in client.list_workflows("")]
    return list(await asyncio.gather(*(one(w, r) for w, r in executions)))


async def test_no_secret_in_any_history_or_log(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient, sandbox_app: Any, captured_logs: Any
) -> None:
    load, ref = f"L-{uid()}", f"S-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="1.00")
    paid = await http.post(
        "/v1/payments/alvys/customer-payments", headers={"X-API-Key": API_KEY},
        json={"LoadNumber": load, "Amount": {"Amount": 1, "Currency": 840}, "PaymentDate": "2026-11-20T00:00:00Z",
              "ReferenceNumber": ref},
    )  # fmt: skip
    invoice = f"INV{uid()}"
    await sandbox.post("/_sandbox/transportone/invoices", json={"invoiceNumber": invoice, "total": "5"})
    t1 = await http.post(
        "/v1/payments/transportone/billing-payments", headers={"X-API-Key": API_KEY},
        json={"data": {"payments": [{"paymentId": f"P{uid()}", "invoiceNumber": invoice, "paymentType": "cash",
              "totalAmount": 5, "paymentDate": 1757116800000, "appliedAmount": 5, "referenceNumber": "UTR1"}]}},
    )  # fmt: skip
    for answer in (paid, t1):
        (workflow_id,) = answer.json()["workflow_ids"]
        assert (await asyncio.wait_for(payment_result(client, workflow_id), 30)).status is PaymentStatus.PAID

    secrets = {
        "Alvys client secret": SANDBOX_ALVYS_CLIENT_SECRET,
        "TransportOne client secret": SANDBOX_T1_CLIENT_SECRET,
        "TransportOne access key": SANDBOX_T1_ACCESS_KEY,
        "TransportOne callback secret": SANDBOX_T1_CALLBACK_SECRET,
        "Alvys webhook secret": SANDBOX_ALVYS_WEBHOOK_SECRET,
        "ingress API key": API_KEY,
        "MyCarrier webhook secret": MC_SECRET,
    }
    tokens = [t for t in sandbox_app.state.issued_tokens if t]
    assert tokens, "the sandbox issued tokens during the session"
    secrets.update({f"access token #{i}": token for i, token in enumerate(tokens)})

    exported = await histories(client)
    logs = "\n".join(captured_logs.lines)
    assert len(exported) >= 2 and logs
    for name, secret in secrets.items():
        leaks = [h for h in exported if secret in h]
        assert not leaks, (
            f"{name} found in {len(leaks)} workflow histories: {json.loads(leaks[0])['events'][0]}"
        )
        assert secret not in logs, f"{name} found in the logs"
