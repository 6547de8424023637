"""ERP → TransportOne over the ingress: the documented headers, the callback confirms, retries keep the request id."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from temporalio.client import Client

from intake.start import payment_result
from models.state import PaymentStatus
from tests.conftest import API_KEY
from tests.support.payments import exists, uid, wait_status
from tests.support.transportone import add_invoice, body, postings

pytestmark = pytest.mark.usefixtures("worker")


async def test_a_full_payment_is_confirmed_by_the_callback(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient
) -> None:
    invoice, payment_id = f"INV{uid()}", f"P{uid()}"
    await add_invoice(sandbox, invoice, "208.00")

    answer = await http.post(
        "/v1/payments/transportone/billing-payments", json=body(invoice, payment_id, 208, 208),
        headers={"X-API-Key": API_KEY},
    )  # fmt: skip

    assert answer.status_code == 202, answer.text
    assert answer.json() == {"workflow_ids": [f"payment-transportone-{invoice}-{payment_id}"]}
    result = await asyncio.wait_for(payment_result(client, answer.json()["workflow_ids"][0]), 30)
    assert result.status is PaymentStatus.PAID
    assert str(result.total_paid) == "INR 208.00" and result.target_status == "PAID"
    (row,) = await postings(sandbox, invoice)
    assert row["payment_id"] == payment_id and row["applied_amount"] == "208.00"
    callbacks = (await sandbox.get("/_sandbox/transportone/callbacks")).json()
    assert any(
        c["request_id"] == row["request_id"] and c["delivered"] and c["secret_sent"] for c in callbacks
    )


async def test_a_partial_payment_is_partially_paid(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient
) -> None:
    invoice = f"INV{uid()}"
    await add_invoice(sandbox, invoice, "1500.00", "USD")

    answer = await http.post(
        "/v1/payments/transportone/billing-payments",
        json=body(invoice, f"P{uid()}", 500, 500, currency="USD"),
        headers={"X-API-Key": API_KEY},
    )

    result = await asyncio.wait_for(payment_result(client, answer.json()["workflow_ids"][0]), 30)
    assert result.status is PaymentStatus.PARTIALLY_PAID and result.target_status == "PARTIALLY_PAID"


async def test_a_lost_answer_is_retried_with_the_same_request_id_and_posted_once(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient, sandbox_app: Any
) -> None:
    invoice = f"INV{uid()}"
    await add_invoice(sandbox, invoice, "300.00")
    seen: list[str] = []
    state = sandbox_app.state.transportone

    async def commit_then_fail_once(endpoint: str, request: Request, call_next: Any) -> Response:
        response: Response = await call_next()
        if endpoint == "billing/payments" and invoice.encode() in await request.body():
            seen.append(request.headers["x-coreos-request-id"])
            if len(seen) == 1:
                return Response(status_code=502, content=b"bad gateway")  # committed, answer lost
        return response

    state.hooks.append(commit_then_fail_once)
    try:
        answer = await http.post(
            "/v1/payments/transportone/billing-payments", json=body(invoice, f"P{uid()}", 300, 300),
            headers={"X-API-Key": API_KEY},
        )  # fmt: skip
        result = await asyncio.wait_for(payment_result(client, answer.json()["workflow_ids"][0]), 60)
    finally:
        state.hooks.remove(commit_then_fail_once)

    assert result.status is PaymentStatus.PAID
    assert len(seen) == 2 and seen[0] == seen[1]
    (row,) = await postings(sandbox, invoice)
    assert row["post_count"] == 2


async def test_no_callback_in_time_needs_review(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient, task_queue: str
) -> None:
    invoice = f"INV{uid()}"
    await add_invoice(sandbox, invoice, "50.00")
    await sandbox.post("/_sandbox/transportone/options", json={"callback_enabled": False})
    try:
        from datetime import timedelta

        from intake.options import IntakeOptions
        from intake.start import start_payment
        from intake.transportone import billing_payments
        from models.steps import PaymentPolicy

        (instruction,) = billing_payments(body(invoice, f"P{uid()}", 50, 50), IntakeOptions())
        policy = PaymentPolicy(callback_timeout=timedelta(seconds=2))
        await start_payment(client, instruction, task_queue=task_queue, policy=policy)
        state = await wait_status(client, instruction.workflow_id, PaymentStatus.NEEDS_REVIEW)
    finally:
        await sandbox.post("/_sandbox/transportone/options", json={"callback_enabled": True})
    assert "no callback from TransportOne within 2 seconds" in (state.reason or "")
    assert state.posted


async def test_a_forged_callback_is_refused(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        "/v1/callbacks/transportone",
        json={"data": {"payments": []}},
        headers={"x-tms-callback-secret": "nope"},
    )
    assert answer.status_code == 401


async def test_unknown_invoice_needs_review_and_bad_bodies_start_nothing(
    http: httpx.AsyncClient, client: Client
) -> None:
    answer = await http.post(
        "/v1/payments/transportone/billing-payments", json=body(f"NOPE{uid()}", f"P{uid()}", 5, 5),
        headers={"X-API-Key": API_KEY},
    )  # fmt: skip
    state = await wait_status(client, answer.json()["workflow_ids"][0], PaymentStatus.NEEDS_REVIEW)
    assert state.last_vendor_answer and "404" in state.last_vendor_answer.text

    bad = body("INV1", f"P{uid()}", 10, 5)
    bad["data"]["payments"][0]["paymentType"] = "card"
    refused = await http.post(
        "/v1/payments/transportone/billing-payments", json=bad, headers={"X-API-Key": API_KEY}
    )
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json()["errors"]} == {"data.payments.0.paymentType"}
    bad["data"]["payments"][0]["paymentType"] = "dn"
    refused = await http.post(
        "/v1/payments/transportone/billing-payments", json=bad, headers={"X-API-Key": API_KEY}
    )
    assert refused.json()["errors"] == [
        {"field": "data.payments.0", "reason": "appliedAmount must not exceed totalAmount"}
    ]
    assert not await exists(client, f"payment-transportone-INV1-{bad['data']['payments'][0]['paymentId']}")
