"""The Alvys sandbox's controls (``/_sandbox/alvys/...``), as small helpers for tests."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx

CURRENCY = {"USD": 840, "CAD": 124, "MXN": 484}


def _ok(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise AssertionError(f"sandbox control failed: {response.status_code} {response.text}")
    return response


async def add_load(
    http: httpx.AsyncClient,
    number: str,
    *,
    status: str,
    billable: str,
    currency: str = "USD",
    po: str | None = None,
    invoice: str | None = None,
    customer: str | None = None,
) -> None:
    """Add a load; with ``customer`` (a customer's Id) it gets its own invoice of that customer
    (``invoice``, or ``INV-<number>``) with ``billable`` as its Total."""
    record: dict[str, object] = {
        "LoadNumber": number,
        "Status": status,
        "Billable": {"Amount": billable, "Currency": CURRENCY[currency]},
    }
    if po:
        record["PONumber"] = po
    if invoice:
        record["InvoiceNumber"] = invoice
    if customer:
        record["CustomerId"] = customer
    _ok(await http.post("/_sandbox/alvys/loads", json=record))


async def add_customer(
    http: httpx.AsyncClient,
    name: str,
    *,
    company_number: str | None = None,
    status: str = "Active",
    invoicing_name: str | None = None,
    invoicing_name_alias: str | None = None,
    customer_id: str | None = None,
) -> dict[str, Any]:
    """Add a customer; answers its CustomerResponse (``["Id"]`` is what loads and searches take)."""
    record: dict[str, object] = {
        "Name": name,
        "CompanyNumber": company_number or f"C-{uuid.uuid4().hex[:10]}",
        "Status": status,
    }
    if invoicing_name:
        record["InvoicingName"] = invoicing_name
    if invoicing_name_alias:
        record["InvoicingNameAlias"] = invoicing_name_alias
    if customer_id:
        record["Id"] = customer_id
    body: dict[str, Any] = _ok(await http.post("/_sandbox/alvys/customers", json=record)).json()
    return body


async def add_trip(
    http: httpx.AsyncClient,
    trip_id: str,
    *,
    load: str,
    status: str,
    payable: str,
    trip_number: str | None = None,
) -> None:
    if (await http.get(f"/_sandbox/alvys/loads/{load}")).status_code == 404:
        await add_load(http, load, status="Delivered", billable=payable)
    _ok(
        await http.post(
            "/_sandbox/alvys/trips",
            json={
                "Id": trip_id,
                "TripNumber": trip_number or f"TR-{trip_id}",
                "LoadNumber": load,
                "Status": status,
                "CarrierPayable": {"Amount": payable, "Currency": 840},
            },
        )
    )


async def set_load_status(http: httpx.AsyncClient, number: str, status: str) -> None:
    _ok(await http.post(f"/_sandbox/alvys/loads/{number}/status", json={"Status": status}))


async def trip_status(http: httpx.AsyncClient, trip_id: str) -> str:
    return str(_ok(await http.get(f"/_sandbox/alvys/trips/{trip_id}")).json()["Status"])


async def postings(http: httpx.AsyncClient, reference: str) -> list[tuple[str, str, Decimal]]:
    """What Alvys recorded under ``reference``: (kind, load or trip, amount), one row per payment."""
    rows = _ok(await http.get("/_sandbox/alvys/postings", params={"reference": reference})).json()
    return [
        (
            row["kind"],
            row["load_number"] if row["kind"] == "customer" else row["trip_id"],
            Decimal(row["amount"]),
        )
        for row in rows
    ]


async def request_counts(http: httpx.AsyncClient) -> dict[str, int]:
    return dict(_ok(await http.get("/_sandbox/alvys/requests")).json())


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Requests made between two readings, by endpoint, leaving out the token endpoint."""
    return {
        k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0) and k != "oauth/token"
    }
