"""TransportOne sandbox helpers for the end-to-end tests: invoices, bodies, postings."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.payments import uid


async def add_invoice(sandbox: httpx.AsyncClient, number: str, total: str, currency: str = "INR") -> None:
    answer = await sandbox.post(
        "/_sandbox/transportone/invoices",
        json={"invoiceNumber": number, "total": total, "currency": currency},
    )
    assert answer.status_code == 201, answer.text


def body(invoice: str, payment_id: str, applied: float, total: float, **extra: Any) -> dict[str, Any]:
    payment = {"paymentId": payment_id, "invoiceNumber": invoice, "paymentType": "cash", "totalAmount": total,
               "paymentDate": 1757116800000, "appliedAmount": applied, "referenceNumber": f"UTR{uid()}", **extra}  # fmt: skip
    return {"data": {"payments": [payment]}, "callback": {"url": "https://webhook.site/ignored"}}


async def postings(sandbox: httpx.AsyncClient, invoice: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        await sandbox.get("/_sandbox/transportone/postings", params={"invoice": invoice})
    ).json()
    return rows
