"""The Alvys client against the Alvys sandbox over real HTTP: errors, token refresh, both shapes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from config.settings import AlvysSettings
from models.money import Money
from tests.support import alvys_sandbox as alvys
from tests.support.payments import uid
from vendors.alvys import AlvysClient, AlvysProblem, CarrierPayment, CustomerPayment


@pytest.fixture
async def client(sandbox_url: str) -> AsyncIterator[AlvysClient]:
    settings = AlvysSettings().resolved(sandbox_url)
    async with httpx.AsyncClient(timeout=10) as http:
        yield AlvysClient(
            http,
            base_url=settings.base_url or "",
            auth_url=settings.auth_url or "",
            client_id=settings.client_id or "",
            client_secret=settings.client_secret.get_secret_value() if settings.client_secret else "",
        )


def payment(load: str, amount: str, ref: str | None = None) -> CustomerPayment:
    return CustomerPayment(
        load_number=load,
        amount=Money.of(amount),
        payment_date=datetime(2026, 11, 20, tzinfo=UTC),
        reference_number=ref or f"R-{uid()}",
        payment_method="Check",
    )


async def test_customer_payment_current_and_captured_shapes(
    client: AlvysClient, sandbox: httpx.AsyncClient
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="100.00")
    first = await client.record_customer_payment(payment(load, "40.00"))
    assert (
        first.payment_id
        and first.total_paid == Money.of("40.00")
        and first.total_billable == Money.of("100.00")
    )

    await sandbox.post("/_sandbox/alvys/options", json={"customer_payment_shape": "captured"})
    try:
        ref = f"R-{uid()}"
        second = await client.record_customer_payment(payment(load, "60.00", ref))
    finally:
        await sandbox.post("/_sandbox/alvys/options", json={"customer_payment_shape": "current"})
    assert second.total_paid is None and second.find(ref) is not None
    assert second.find(ref).amount == Money.of("60.00")  # type: ignore[union-attr]


async def test_the_same_reference_twice_is_one_payment(
    client: AlvysClient, sandbox: httpx.AsyncClient
) -> None:
    load, ref = f"L-{uid()}", f"R-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="100.00")
    one = await client.record_customer_payment(payment(load, "10.00", ref))
    two = await client.record_customer_payment(payment(load, "10.00", ref))
    assert one.payment_id == two.payment_id and two.total_paid == Money.of("10.00")


async def test_documented_errors_become_typed_problems(
    client: AlvysClient, sandbox: httpx.AsyncClient
) -> None:
    with pytest.raises(AlvysProblem) as unknown:
        await client.record_customer_payment(payment(f"L-NOPE-{uid()}", "1.00"))
    assert unknown.value.is_not_found and unknown.value.status == 404

    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Dispatched", billable="100.00")
    with pytest.raises(AlvysProblem) as dispatched:
        await client.record_customer_payment(payment(load, "1.00"))
    assert dispatched.value.is_not_payable and dispatched.value.status == 400

    trip = f"T-{uid()}"
    await alvys.add_trip(sandbox, trip, load=f"L-{uid()}", status="Delivered", payable="10.00")
    with pytest.raises(AlvysProblem) as zero:
        await client.record_carrier_payment(
            CarrierPayment(
                trip_id=trip,
                amount=Money.of("0.00"),
                payment_date=datetime(2026, 1, 1, tzinfo=UTC),
                reference_number="Z-1",
            )
        )
    assert zero.value.status == 400 and "Amount must be greater than zero." in str(zero.value)


async def test_an_expired_token_is_refreshed_once(client: AlvysClient, sandbox: httpx.AsyncClient) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="100.00")
    await client.record_customer_payment(payment(load, "1.00"))
    before = (await alvys.request_counts(sandbox))["oauth/token"]
    await sandbox.post("/_sandbox/alvys/tokens/expire")

    await client.record_customer_payment(payment(load, "1.00"))

    assert (await alvys.request_counts(sandbox))["oauth/token"] == before + 1


async def test_invoice_in_both_cases_and_searches(client: AlvysClient, sandbox: httpx.AsyncClient) -> None:
    load, invoice, po = f"L-{uid()}", f"INV-{uid()}", f"PO-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="80.00", invoice=invoice, po=po)
    ref = f"R-{uid()}"
    await client.record_customer_payment(payment(load, "30.00", ref))

    pascal = await client.get_invoice(invoice_number=invoice)
    await sandbox.post("/_sandbox/alvys/options", json={"invoice_case": "camel"})
    try:
        camel = await client.get_invoice(invoice_number=invoice)
    finally:
        await sandbox.post("/_sandbox/alvys/options", json={"invoice_case": "pascal"})
    for read in (pascal, camel):
        assert read.remaining_balance == Money.of("50.00") and read.load_numbers == [load]
        assert read.find(ref) is not None
    (found,) = await client.search_loads(po_numbers=[po])
    assert found.load_number == load and found.status == "Invoiced"
