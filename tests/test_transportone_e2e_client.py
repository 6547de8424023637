"""The TransportOne client against the TransportOne sandbox, over real HTTP on loopback.

Why: the client's unit tests pin its bytes against mocks; these prove the two sides agree on the
wire (auth, headers, exact amounts, idempotency, error classification, the callback body and
secret) the way freightpay's activities and ingress will use them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from models.money import Money
from sandbox.transportone import (
    DEMO_ACCESS_KEY,
    DEMO_CALLBACK_SECRET,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    TransportOneSandbox,
)
from tests.support.servers import serve_app
from tests.test_sandbox_transportone import CallbackReceiver, sandbox_app, unique, wait_for
from vendors.transportone import (
    CALLBACK_SECRET_HEADER,
    TransportOneClient,
    TransportOnePayment,
    TransportOneProblem,
    callback_secret_matches,
    parse_callback,
)

CONTROLS = "/_sandbox/transportone"


@pytest.fixture(scope="module")
def state() -> TransportOneSandbox:
    return TransportOneSandbox.from_demo(None, callback_delay_seconds=0.05, callback_backoff_seconds=0.05)


@pytest.fixture(scope="module")
def base_url(state: TransportOneSandbox) -> Iterator[str]:
    with serve_app(sandbox_app(state)) as url:
        yield url


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver()
    with serve_app(receiver.app()) as url:
        receiver.base_url = url
        yield receiver


@pytest.fixture
async def controls(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{base_url}{CONTROLS}", timeout=10) as http:
        yield http
        await http.post("/options", json={"minimal_response": False})


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def make_client(http: httpx.AsyncClient, base_url: str, **overrides: Any) -> TransportOneClient:
    settings: dict[str, Any] = {
        "base_url": f"{base_url}/transportone",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "access_key": DEMO_ACCESS_KEY,
        "tenant_id": DEMO_TENANT_ID,
    }
    return TransportOneClient(http, **(settings | overrides))


@pytest.fixture
def client(http: httpx.AsyncClient, base_url: str) -> TransportOneClient:
    return make_client(http, base_url)


async def new_invoice(controls: httpx.AsyncClient, total: str, currency: str = "USD") -> str:
    number = unique("INV")
    response = await controls.post(
        "/invoices", json={"invoiceNumber": number, "total": total, "currency": currency}
    )
    assert response.status_code == 201, response.text
    return number


def payment(invoice: str, applied: str, currency: str = "USD", **overrides: Any) -> TransportOnePayment:
    fields: dict[str, Any] = {
        "payment_id": unique("pay"),
        "invoice_number": invoice,
        "payment_type": "cash",
        "total_amount": Money.of(applied, currency),
        "applied_amount": Money.of(applied, currency),
        "payment_date": datetime(2026, 7, 20, 10, 0, tzinfo=UTC),
        "reference_number": unique("UTR"),
    }
    return TransportOnePayment(**(fields | overrides))


async def counts(controls: httpx.AsyncClient) -> dict[str, int]:
    result: dict[str, int] = (await controls.get("/requests")).json()
    return result


async def test_record_and_callback(
    client: TransportOneClient, controls: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    number = await new_invoice(controls, "1500.00")
    name = unique("cb")
    first = payment(number, "1000.10")
    request_id = TransportOneClient.request_id_for(f"payment-transportone-{number}-{first.payment_id}")

    result = await client.record_payments([first], request_id=request_id, callback_url=receiver.url(name))
    assert result.success and result.message == "payment recorded successfully"
    assert result.request_id == request_id
    ours = result.find(first.payment_id)
    assert ours is not None and ours.status == "RECORDED"
    assert ours.applied_amount == Decimal("1000.10") and ours.invoice_balance == Decimal("499.90")
    assert ours.invoice_status == "PARTIALLY_PAID" and ours.fully_paid is False
    assert ours.money(ours.invoice_paid_amount) == Money.of("1000.10", "USD")

    (delivery,) = await asyncio.to_thread(wait_for, lambda: receiver.of(name))
    assert callback_secret_matches(delivery.headers.get(CALLBACK_SECRET_HEADER), DEMO_CALLBACK_SECRET)
    callback = parse_callback(delivery.body)
    assert callback.success and callback.request_id == str(request_id)
    assert callback.event == "billing.payment.recorded"
    assert callback.find(first.payment_id) == ours

    (row,) = (await controls.get("/postings", params={"reference": first.reference_number})).json()
    assert row["applied_amount"] == "1000.10" and row["request_id"] == str(request_id)
    assert row["payment_date_iso"] == "2026-07-20T10:00:00.000Z"

    rest = payment(number, "499.90", payment_type="bank transfer")
    done = await client.record_payments([rest], request_id=uuid.uuid4(), callback_url=None)
    status = done.find(rest.payment_id)
    assert status is not None and status.fully_paid is True
    assert (await controls.get(f"/invoices/{number}")).json()["status"] == "PAID"


async def test_the_seed_invoice_in_inr(client: TransportOneClient, controls: httpx.AsyncClient) -> None:
    number = await new_invoice(controls, "208.00", "INR")
    result = await client.record_payments(
        [payment(number, "208", "INR")], request_id=uuid.uuid4(), callback_url=None
    )
    assert result.payments[0].currency == "INR" and result.payments[0].fully_paid is True


async def test_retry_with_the_same_request_id_records_once(
    client: TransportOneClient, controls: httpx.AsyncClient
) -> None:
    number = await new_invoice(controls, "980.00")
    item = payment(number, "980.00")
    request_id = TransportOneClient.request_id_for(f"{number}-{item.payment_id}")
    answers = await asyncio.gather(
        *(client.record_payments([item], request_id=request_id, callback_url=None) for _ in range(5))
    )
    assert len({a.model_dump_json() for a in answers}) == 1
    (row,) = (await controls.get("/postings", params={"invoice": number})).json()
    assert row["post_count"] == 5
    assert (await controls.get(f"/invoices/{number}")).json()["paidAmount"] == "980.00"


async def test_same_request_id_other_payment_is_a_conflict(
    client: TransportOneClient, controls: httpx.AsyncClient
) -> None:
    number = await new_invoice(controls, "500.00")
    request_id = uuid.uuid4()
    await client.record_payments([payment(number, "100.00")], request_id=request_id, callback_url=None)
    with pytest.raises(TransportOneProblem) as caught:
        await client.record_payments([payment(number, "200.00")], request_id=request_id, callback_url=None)
    assert caught.value.is_conflict and caught.value.status == 409


async def test_refusals_are_classified(client: TransportOneClient, controls: httpx.AsyncClient) -> None:
    with pytest.raises(TransportOneProblem) as caught:
        await client.record_payments(
            [payment("INV-NOT-THERE", "1.00")], request_id=uuid.uuid4(), callback_url=None
        )
    assert caught.value.is_not_found and caught.value.message == "invoice not found: INV-NOT-THERE"

    number = await new_invoice(controls, "100.00")
    with pytest.raises(TransportOneProblem) as caught:
        await client.record_payments(
            [payment(number, "10.00", payment_type="wire")], request_id=uuid.uuid4(), callback_url=None
        )
    assert caught.value.status == 400 and "data.payments[0].paymentType" in (caught.value.message or "")

    overpaid = payment(number, "100.01")
    with pytest.raises(TransportOneProblem) as caught:
        await client.record_payments([overpaid], request_id=uuid.uuid4(), callback_url=None)
    assert caught.value.status == 400 and "exceeds the open balance" in str(caught.value)


async def test_expired_token_is_renewed_once(client: TransportOneClient, controls: httpx.AsyncClient) -> None:
    number = await new_invoice(controls, "300.00")
    await client.record_payments([payment(number, "100.00")], request_id=uuid.uuid4(), callback_url=None)
    before = await counts(controls)
    await controls.post("/tokens/expire")
    await client.record_payments([payment(number, "100.00")], request_id=uuid.uuid4(), callback_url=None)
    after = await counts(controls)
    assert after["auth/client-credentials"] - before["auth/client-credentials"] == 1
    assert after["billing/payments"] - before["billing/payments"] == 2  # the 401, then the retry
    assert len((await controls.get("/postings", params={"invoice": number})).json()) == 2


async def test_wrong_credentials(http: httpx.AsyncClient, base_url: str, controls: httpx.AsyncClient) -> None:
    bad_secret = make_client(http, base_url, client_secret="nope")
    with pytest.raises(TransportOneProblem) as caught:
        await bad_secret.record_payments(
            [payment("INV-T1-1001", "1.00")], request_id=uuid.uuid4(), callback_url=None
        )
    assert caught.value.endpoint == "auth" and caught.value.is_auth_failure
    assert "nope" not in str(caught.value)

    before = await counts(controls)
    bad_key = make_client(http, base_url, access_key="wrong-key")
    with pytest.raises(TransportOneProblem) as caught:
        await bad_key.record_payments(
            [payment("INV-T1-1001", "1.00")], request_id=uuid.uuid4(), callback_url=None
        )
    assert caught.value.endpoint == "payments" and caught.value.is_auth_failure
    assert caught.value.message == "invalid x-coreos-access"
    after = await counts(controls)
    assert after["billing/payments"] - before["billing/payments"] == 2  # refreshed once, then raised
    assert after["auth/client-credentials"] - before["auth/client-credentials"] == 2


async def test_minimal_answer(client: TransportOneClient, controls: httpx.AsyncClient) -> None:
    await controls.post("/options", json={"minimal_response": True})
    number = await new_invoice(controls, "50.00")
    result = await client.record_payments(
        [payment(number, "50.00")], request_id=uuid.uuid4(), callback_url=None
    )
    assert result.success and result.payments == [] and result.data is None
