"""The MyCarrier side of the sandbox: a webhook sender, as MyCarrier's subscription would send.

MyCarrier publishes no signing scheme: a subscription carries custom headers of the
receiver's choice, so the sender puts the shared secret in ``X-Webhook-Secret``. By default
it sends the ``invoice.payment`` sample of the vendor's page
(docs/vendors.md#mycarrier-invoice-payment-webhook); ``fresh`` events
are that sample with new ``RecordId``, ``Payments[].Id`` and ``TransactionId``, i.e. new
payments for the same shipment.
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import httpx

SAMPLE = Path(__file__).parent / "data" / "mycarrier-invoice-payment.json"


def sample_event(path: Path | None = None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((path or SAMPLE).read_text())
    return data


def fresh_event(template: dict[str, Any]) -> dict[str, Any]:
    """The template as a new payment event: new record, payment and transaction ids."""
    event = copy.deepcopy(template)
    event["RecordId"] = str(uuid.uuid4())
    for payment in event.get("Payments", []):
        payment["Id"] = str(uuid.uuid4())
        payment["TransactionId"] = str(uuid.uuid4())
    return event


def send(url: str, secret: str, event: dict[str, Any], timeout: float = 30) -> httpx.Response:
    """POST one ``invoice.payment`` event to a receiver, as MyCarrier does."""
    return httpx.post(
        url,
        content=json.dumps(event).encode(),
        headers={
            "Content-Type": "application/json",
            "X-Webhook-Secret": secret,
            "User-Agent": "MyCarrier-Webhooks",
        },
        timeout=timeout,
    )
