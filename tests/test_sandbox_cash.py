"""The Alvys sandbox's cash-application reads over real HTTP, and the client's methods for them.

``POST /customers/search``, ``GET /customers`` and ``POST /invoices/search`` as the OpenAPI document
publishes them (answers validated against its schemas), the same invoice figures as ``GET /invoices``
(a customer payment lowers ``RemainingBalance`` everywhere), request validation, request counts,
faults and the published rate limits; the customer control and loads added with a ``CustomerId``;
the demo data against the reference files of ``examples/``; and ``AlvysClient.search_customers``,
``get_customer`` and ``search_invoices`` against the sandbox.

The session's sandbox is shared with other tests, which may pay demo loads: balances and statuses
are checked on customers and loads each test adds for itself; the demo data is checked unpaid on
a fresh sandbox of its own.
"""

from __future__ import annotations

import csv
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.settings import AlvysSettings
from models.money import Money
from sandbox.alvys import AUDIENCE, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from sandbox.app import create_app
from sandbox.faults import FaultSettings, RateLimitSettings
from tests.support import alvys_sandbox as alvys
from tests.support.openapi import schema_errors, validate_against
from tests.support.servers import serve_app
from tests.test_sandbox_alvys import assert_problem, customer_body, exact
from vendors.alvys import AlvysClient, AlvysProblem, CustomerPayment

API = "/alvys/api/p/v1.0"
CREDENTIALS = {
    "client_id": DEMO_CLIENT_ID,
    "client_secret": DEMO_CLIENT_SECRET,
    "audience": AUDIENCE,
    "grant_type": "client_credentials",
}
PAGED_CUSTOMERS = "Alvys.Helpers.PagedResponse1Alvys.Models.Customers.CustomerResponse"
PAGED_INVOICES = "Alvys.Helpers.PagedResponse1Alvys.Models.Invoices.InvoiceResponse"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# ----- fixtures and helpers -----------------------------------------------------------------------


async def _token(http: httpx.AsyncClient) -> str:
    response = await http.post("/alvys/oauth/token", json=CREDENTIALS)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
async def api(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The session's sandbox with a demo bearer token, for the Alvys API."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as http:
        http.headers["Authorization"] = f"Bearer {await _token(http)}"
        yield http


@pytest.fixture
async def client(sandbox_url: str) -> AsyncIterator[AlvysClient]:
    """freightpay's Alvys client against the session's sandbox, as tests/test_alvys_client_e2e.py builds it."""
    settings = AlvysSettings().resolved(sandbox_url)
    async with httpx.AsyncClient(timeout=10) as http:
        yield AlvysClient(
            http,
            base_url=settings.base_url or "",
            auth_url=settings.auth_url or "",
            client_id=settings.client_id or "",
            client_secret=settings.client_secret.get_secret_value() if settings.client_secret else "",
        )


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    """A sandbox of this module's own, serving the demo data as shipped (nobody pays it)."""
    with serve_app(create_app(environ={})) as url:
        yield url


@pytest.fixture
async def demo(demo_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=demo_url, timeout=10) as http:
        http.headers["Authorization"] = f"Bearer {await _token(http)}"
        yield http


async def search_customers(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await api.post(f"{API}/customers/search", json={"Page": 0, "PageSize": 50, **body})
    assert response.status_code == 200, response.text
    validate_against(PAGED_CUSTOMERS, response.json())
    result: dict[str, Any] = exact(response)
    return result


async def search_invoices(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await api.post(f"{API}/invoices/search", json={"Page": 0, "PageSize": 50, **body})
    assert response.status_code == 200, response.text
    validate_against(PAGED_INVOICES, response.json())
    result: dict[str, Any] = exact(response)
    return result


async def get_invoice(api: httpx.AsyncClient, number: str) -> dict[str, Any]:
    response = await api.get(f"{API}/invoices", params={"invoiceNumber": number})
    assert response.status_code == 200, response.text
    validate_against("InvoiceResponse", response.json())
    result: dict[str, Any] = exact(response)
    return result


async def new_customer(sandbox: httpx.AsyncClient, *, status: str = "Active", **extra: Any) -> dict[str, Any]:
    return await alvys.add_customer(sandbox, unique("Customer"), status=status, **extra)


def money(amount: str) -> dict[str, Any]:
    return {"Amount": Decimal(amount), "Currency": 840}


def numbers(page: dict[str, Any]) -> list[str]:
    return [str(item["Number"]) for item in page["Items"]]


# ----- customers -----------------------------------------------------------------------------------


async def test_demo_customers_are_the_payers_of_the_examples(demo: httpx.AsyncClient) -> None:
    page = await search_customers(demo, Statuses=[], PageSize=100)
    by_id = {c["Id"]: c for c in page["Items"]}
    assert page["Total"] == len(page["Items"]) == 6
    mobix = by_id["CUST-MOBIX"]
    assert (mobix["Name"], mobix["CompanyNumber"], mobix["Status"]) == (
        "Mobix Sourcing",
        "CUST-MOBIX",
        "Active",
    )
    assert mobix["InvoicingInformation"]["InvoicingName"] == "MOBIX SOURCING"
    assert mobix["InvoicingInformation"]["InvoicingNameAlias"] == "MOBIX"
    names = {c["Name"]: c["InvoicingInformation"]["InvoicingName"] for c in page["Items"]}
    assert names == {
        "Mobix Sourcing": "MOBIX SOURCING",
        "Big Box Retail": "BIG BOX RETAIL",
        "Maple Freight Canada": "MAPLE FREIGHT CANADA",
        "Acme Foods Inc.": "ACME FOODS",
        "Blue Ridge Produce LLC": "BLUE RIDGE PRODUCE",
        "Great Lakes Steel": "GREAT LAKES STEEL CORP",
    }
    inactive = await search_customers(demo, Statuses=["Inactive"])
    assert [c["Name"] for c in inactive["Items"]] == ["Great Lakes Steel"] and inactive["Total"] == 1
    # Statuses compare with spaces and case forgiven; an empty list is every status.
    assert (await search_customers(demo, Statuses=["ACTIVE", "in active"]))["Total"] == 6


async def test_customers_search_pages_with_a_total(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    status = unique("Status")
    added = [(await new_customer(sandbox, status=status))["Id"] for _ in range(5)]
    pages = [await search_customers(api, Statuses=[status], Page=n, PageSize=2) for n in range(4)]
    assert [p["Total"] for p in pages] == [5, 5, 5, 5]
    assert [(p["Page"], p["PageSize"]) for p in pages] == [(0, 2), (1, 2), (2, 2), (3, 2)]
    assert [[c["Id"] for c in p["Items"]] for p in pages] == [added[0:2], added[2:4], added[4:], []]
    assert (await search_customers(api, Statuses=[unique("Status")])) == {
        "Page": 0,
        "PageSize": 50,
        "Total": 0,
        "Items": [],
    }


async def test_customers_search_by_created_date(demo: httpx.AsyncClient) -> None:
    in_2025 = {"Start": "2025-01-01T00:00:00Z", "End": "2025-12-31T23:59:59Z"}
    page = await search_customers(demo, Statuses=[], CreatedDateRange=in_2025)
    assert [c["Name"] for c in page["Items"]] == [
        "Acme Foods Inc.",
        "Blue Ridge Produce LLC",
        "Great Lakes Steel",
    ]
    since = await search_customers(demo, Statuses=[], CreatedDateRange={"Start": "2025-08-18", "End": None})
    assert [c["Name"] for c in since["Items"]] == ["Great Lakes Steel"]


async def test_get_customer_by_company_number_or_id(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    number = unique("C")
    added = await new_customer(
        sandbox, company_number=number, invoicing_name="THE PAYER", invoicing_name_alias="PAYER CO"
    )
    validate_against("CustomerResponse", added)
    by_number = await api.get(f"{API}/customers", params={"companyNumber": number})
    assert by_number.status_code == 200, by_number.text
    validate_against("CustomerResponse", by_number.json())
    assert by_number.json() == added
    assert by_number.json()["InvoicingInformation"]["InvoicingNameAlias"] == "PAYER CO"
    by_id = await api.get(f"{API}/customers", params={"id": added["Id"]})
    assert by_id.json()["CompanyNumber"] == number
    demo = (await api.get(f"{API}/customers", params={"companyNumber": "CUST-MOBIX"})).json()
    assert (demo["Id"], demo["Name"]) == ("CUST-MOBIX", "Mobix Sourcing")

    unknown = assert_problem(await api.get(f"{API}/customers", params={"companyNumber": "C-NOPE"}), 404)
    assert unknown["Detail"] == "Customer 'C-NOPE' was not found."
    assert_problem(await api.get(f"{API}/customers", params={"id": "0" * 32}), 404)
    assert_problem(await api.get(f"{API}/customers"), 400)
    assert_problem(await api.get(f"{API}/customers", params={"companyNumber": ""}), 400)


# ----- invoices ------------------------------------------------------------------------------------


async def test_invoices_search_filters(demo: httpx.AsyncClient) -> None:
    mobix = await search_invoices(demo, CustomerId="CUST-MOBIX")
    assert numbers(mobix) == ["INV-1001", "INV-1003", "INV-1005", "INV-3001", "INV-3100"]
    assert mobix["Total"] == 5
    assert {i["Customer"]["Name"] for i in mobix["Items"]} == {"Mobix Sourcing"}
    inv_1001 = mobix["Items"][0]
    assert inv_1001 == await get_invoice(demo, "INV-1001")  # the same answer as GET /invoices
    assert numbers(await search_invoices(demo, LoadNumbers=["L-3102"])) == ["INV-3100"]
    assert numbers(await search_invoices(demo, PONumbers=["PO-2001", "26714518"])) == ["INV-1001", "INV-2001"]
    assert numbers(await search_invoices(demo, OrderNumbers=["ORD-1004"])) == ["INV-1004"]
    assert numbers(await search_invoices(demo, CustomerId="CUST-MOBIX", LoadNumbers=["L-2001"])) == []
    assert numbers(
        await search_invoices(demo, CustomerId="CUST-MOBIX", Status=["awaiting payment"])
    ) == numbers(mobix)
    assert numbers(await search_invoices(demo, CustomerId="CUST-MOBIX", Status=["Paid"])) == []
    assert numbers(await search_invoices(demo, Status=["PartiallyPaid"])) == []  # not a published status
    june_20 = {"Start": "2026-06-20T00:00:00Z", "End": "2026-06-21T00:00:00Z"}
    assert numbers(await search_invoices(demo, InvoicedDateRange=june_20)) == [
        "INV-4001",
        "INV-4002",
        "INV-4101",
        "INV-4201",
    ]
    assert numbers(await search_invoices(demo, InvoiceSentRange=june_20)) == numbers(
        await search_invoices(demo, InvoicedDateRange=june_20)
    )
    acme = (await demo.get(f"{API}/customers", params={"companyNumber": "C-4000"})).json()
    acme_invoices = await search_invoices(demo, CustomerId=acme["Id"])
    assert [(i["Number"], i["Total"]) for i in acme_invoices["Items"]] == [
        ("INV-4001", money("1250.00")),
        ("INV-4002", money("815.40")),
    ]
    everything = await search_invoices(demo, PageSize=100)
    assert everything["Total"] == 11 and len(everything["Items"]) == 11


async def test_invoices_search_pages(api: httpx.AsyncClient, sandbox: httpx.AsyncClient) -> None:
    customer = (await new_customer(sandbox))["Id"]
    loads = [unique("L") for _ in range(3)]
    for number in loads:
        await alvys.add_load(sandbox, number, status="Invoiced", billable="100.00", customer=customer)
    pages = [await search_invoices(api, CustomerId=customer, Page=n, PageSize=2) for n in range(3)]
    assert [p["Total"] for p in pages] == [3, 3, 3]
    assert [numbers(p) for p in pages] == [[f"INV-{loads[0]}", f"INV-{loads[1]}"], [f"INV-{loads[2]}"], []]


async def test_a_customer_payment_lowers_the_balance_in_every_read(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    customer = await new_customer(sandbox)
    load, po = unique("L"), unique("PO")
    await alvys.add_load(sandbox, load, status="Invoiced", billable="1000.00", po=po, customer=customer["Id"])
    invoice_number = f"INV-{load}"

    async def reads() -> list[dict[str, Any]]:
        """The invoice from GET /invoices, and from invoices/search by customer, by load and by PO."""
        found = [await get_invoice(api, invoice_number)]
        for body in ({"CustomerId": customer["Id"]}, {"LoadNumbers": [load]}, {"PONumbers": [po]}):
            (item,) = (await search_invoices(api, **body))["Items"]
            found.append(item)
        return found

    before = await reads()
    assert all(r == before[0] for r in before)
    assert before[0]["Customer"]["Id"] == customer["Id"] and before[0]["Customer"]["Name"] == customer["Name"]
    assert before[0]["Total"] == before[0]["RemainingBalance"] == money("1000.00")
    assert before[0]["Status"] == "AwaitingPayment" and before[0]["Payments"] == []

    paid = await api.post(f"{API}/invoices/customer-payments", json=customer_body(load, 400, "CHK-P1"))
    assert paid.status_code == 200, paid.text
    partial = await reads()
    assert all(r == partial[0] for r in partial)
    assert partial[0]["Status"] == "AwaitingPayment"  # Alvys publishes no "partly paid" status
    assert partial[0]["AmountPaid"] == money("400.00")
    assert partial[0]["RemainingBalance"] == money("600.00")
    assert [p["PaymentReference"] for p in partial[0]["Payments"]] == ["CHK-P1"]
    (load_item,) = (
        await api.post(
            "/alvys/api/p/v2.0/loads/search",
            json={"Page": 0, "PageSize": 5, "IncludeDeleted": False, "LoadNumbers": [load]},
        )
    ).json()["Items"]
    assert Decimal(str(load_item["TotalPaid"]["Amount"])) == Decimal("400.00")

    rest = {**customer_body(load, 600, "CHK-P2"), "PaymentDate": "2026-07-25T12:00:00Z"}
    assert (await api.post(f"{API}/invoices/customer-payments", json=rest)).status_code == 200
    settled = await reads()
    assert all(r == settled[0] for r in settled)
    assert settled[0]["Status"] == "Paid" and settled[0]["PaidDate"] == "2026-07-25T12:00:00Z"
    assert settled[0]["RemainingBalance"] == money("0.00")
    assert numbers(await search_invoices(api, CustomerId=customer["Id"], Status=["Paid"])) == [invoice_number]
    assert numbers(await search_invoices(api, CustomerId=customer["Id"], Status=["AwaitingPayment"])) == []
    july_25 = {"Start": "2026-07-25T00:00:00Z", "End": "2026-07-26T00:00:00Z"}
    assert numbers(await search_invoices(api, CustomerId=customer["Id"], PaidDateRange=july_25)) == [
        invoice_number
    ]


# ----- request validation ----------------------------------------------------------------------------

CUSTOMER_SEARCH = {"Page": 0, "PageSize": 10, "Statuses": ["Active"]}
INVOICE_SEARCH = {"Page": 0, "PageSize": 10, "CustomerId": "CUST-MOBIX"}
CUSTOMER_VARIANTS: list[tuple[str, Any]] = [
    ("valid", CUSTOMER_SEARCH),
    ("empty Statuses", {**CUSTOMER_SEARCH, "Statuses": []}),
    ("date range", {**CUSTOMER_SEARCH, "CreatedDateRange": {"Start": "2025-01-01T00:00:00Z"}}),
    ("date range null", {**CUSTOMER_SEARCH, "CreatedDateRange": None}),
    ("Statuses missing", {"Page": 0, "PageSize": 10}),
    ("Statuses null", {**CUSTOMER_SEARCH, "Statuses": None}),
    ("Statuses a string", {**CUSTOMER_SEARCH, "Statuses": "Active"}),
    ("Page missing", {"PageSize": 10, "Statuses": []}),
    ("Page a string", {**CUSTOMER_SEARCH, "Page": "0"}),
    ("a name filter", {**CUSTOMER_SEARCH, "Name": "Mobix"}),
    ("date range without Start", {**CUSTOMER_SEARCH, "CreatedDateRange": {"End": "2025-01-01T00:00:00Z"}}),
    ("body a list", [CUSTOMER_SEARCH]),
]
INVOICE_VARIANTS: list[tuple[str, Any]] = [
    ("valid", INVOICE_SEARCH),
    ("no filters", {"Page": 0, "PageSize": 10}),
    ("every filter", {**INVOICE_SEARCH, "Status": ["Paid"], "LoadNumbers": ["L-1"], "PONumbers": ["P"]}),
    ("null filters", {**INVOICE_SEARCH, "Status": None, "LoadNumbers": None, "CustomerId": None}),
    ("paid range", {**INVOICE_SEARCH, "PaidDateRange": {"Start": "2026-01-01T00:00:00Z", "End": None}}),
    ("an invoice-number filter", {**INVOICE_SEARCH, "InvoiceNumbers": ["INV-1001"]}),
    ("Statuses is the customer search's", {**INVOICE_SEARCH, "Statuses": ["Paid"]}),
    ("CustomerId a number", {**INVOICE_SEARCH, "CustomerId": 7}),
    ("LoadNumbers a string", {**INVOICE_SEARCH, "LoadNumbers": "L-1001"}),
    ("PageSize missing", {"Page": 0}),
    ("date range not a date", {**INVOICE_SEARCH, "InvoicedDateRange": {"Start": "June"}}),
]


@pytest.mark.parametrize(("name", "body"), CUSTOMER_VARIANTS, ids=[n for n, _ in CUSTOMER_VARIANTS])
async def test_customer_search_validation_agrees_with_the_spec(
    api: httpx.AsyncClient, name: str, body: Any
) -> None:
    spec_ok = not schema_errors("CustomerSearchRequest", body)
    response = await api.post(f"{API}/customers/search", json=body)
    assert response.status_code == (200 if spec_ok else 400), (name, response.text)
    if not spec_ok:
        assert_problem(response, 400)


@pytest.mark.parametrize(("name", "body"), INVOICE_VARIANTS, ids=[n for n, _ in INVOICE_VARIANTS])
async def test_invoice_search_validation_agrees_with_the_spec(
    api: httpx.AsyncClient, name: str, body: Any
) -> None:
    spec_ok = not schema_errors("InvoiceSearchRequest", body)
    response = await api.post(f"{API}/invoices/search", json=body)
    assert response.status_code == (200 if spec_ok else 400), (name, response.text)
    if not spec_ok:
        assert_problem(response, 400)


async def test_bad_bodies_are_asp_net_validation_problems(api: httpx.AsyncClient) -> None:
    missing = assert_problem(await api.post(f"{API}/customers/search", json={"Page": 0, "PageSize": 1}), 400)
    assert missing["Title"] == "One or more validation errors occurred."
    assert missing["Errors"] == {"Statuses": ["The Statuses field is required."]}
    unknown = assert_problem(await api.post(f"{API}/invoices/search", json={**INVOICE_SEARCH, "Foo": 1}), 400)
    assert unknown["Errors"] == {
        "$.Foo": [
            "The JSON property 'Foo' could not be mapped to any .NET member contained in type "
            "'Alvys.Models.Invoices.Request.InvoiceSearchRequest'."
        ]
    }
    negative = await api.post(f"{API}/invoices/search", json={**INVOICE_SEARCH, "Page": -1, "PageSize": 0})
    assert set(assert_problem(negative, 400)["Errors"]) == {"Page", "PageSize"}
    headers = {"Content-Type": "application/json"}
    empty = await api.post(f"{API}/customers/search", content=b"", headers=headers)
    assert "" in assert_problem(empty, 400)["Errors"]
    assert (
        "$"
        in assert_problem(await api.post(f"{API}/invoices/search", content=b"{", headers=headers), 400)[
            "Errors"
        ]
    )
    assert_problem(
        await api.post(f"{API}/invoices/search", content=b"{}", headers={"Content-Type": "text/plain"}), 415
    )
    wrong_version = await api.post("/alvys/api/p/v2.0/customers/search", json=CUSTOMER_SEARCH)
    assert "version" in assert_problem(wrong_version, 400)["Errors"]


async def test_the_reads_need_a_bearer_token(sandbox: httpx.AsyncClient) -> None:
    for response in (
        await sandbox.post(f"{API}/customers/search", json=CUSTOMER_SEARCH),
        await sandbox.get(f"{API}/customers", params={"companyNumber": "CUST-MOBIX"}),
        await sandbox.post(f"{API}/invoices/search", json=INVOICE_SEARCH),
    ):
        assert_problem(response, 401)


# ----- controls --------------------------------------------------------------------------------------


async def test_customer_control(sandbox: httpx.AsyncClient) -> None:
    number = unique("C")
    first = await sandbox.post("/_sandbox/alvys/customers", json={"Name": "Payer", "CompanyNumber": number})
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["Status"] == "Active" and len(body["Id"]) == 32
    assert body["InvoicingInformation"]["InvoicingName"] is None
    again = await sandbox.post("/_sandbox/alvys/customers", json={"Name": "Other", "CompanyNumber": number})
    assert again.status_code == 409
    same_id = {"Id": body["Id"], "Name": "Other", "CompanyNumber": unique("C")}
    assert (await sandbox.post("/_sandbox/alvys/customers", json=same_id)).status_code == 409
    assert (
        await sandbox.post("/_sandbox/alvys/customers", json={"CompanyNumber": unique("C")})
    ).status_code == 400
    unknown_field = {"Name": "X", "CompanyNumber": unique("C"), "Email": "x@example.com"}
    assert (await sandbox.post("/_sandbox/alvys/customers", json=unknown_field)).status_code == 400


async def test_loads_control_with_a_customer(api: httpx.AsyncClient, sandbox: httpx.AsyncClient) -> None:
    customer = await new_customer(sandbox)
    other = await new_customer(sandbox)
    load = unique("L")
    await alvys.add_load(sandbox, load, status="Invoiced", billable="250.00", customer=customer["Id"])
    invoice = await get_invoice(api, f"INV-{load}")
    assert invoice["Total"] == money("250.00")
    assert invoice["Customer"]["Id"] == customer["Id"] and invoice["Customer"]["Name"] == customer["Name"]
    loaded = (await sandbox.get(f"/_sandbox/alvys/loads/{load}")).json()
    assert (loaded["CustomerId"], loaded["CustomerName"]) == (customer["Id"], customer["Name"])

    named = unique("L")
    await alvys.add_load(
        sandbox, named, status="Invoiced", billable="5.00", invoice=f"B-{named}", customer=other["Id"]
    )
    assert numbers(await search_invoices(api, CustomerId=other["Id"])) == [f"B-{named}"]

    def record(**extra: Any) -> dict[str, Any]:
        return {"LoadNumber": unique("L"), "Status": "Invoiced", "Billable": "1.00", **extra}

    refused = [
        record(CustomerId="CUST-NOBODY"),  # not a known customer
        record(CustomerId=customer["Id"], CustomerName="Someone Else"),
        record(CustomerId=other["Id"], InvoiceNumber=f"INV-{load}"),  # another customer's invoice
    ]
    for body in refused:
        response = await sandbox.post("/_sandbox/alvys/loads", json=body)
        assert response.status_code == 400, (body, response.text)

    plain = unique("L")  # no CustomerId: as before, no invoice unless one is named
    await alvys.add_load(sandbox, plain, status="Invoiced", billable="1.00")
    assert_problem(await api.get(f"{API}/invoices", params={"invoiceNumber": f"INV-{plain}"}), 404)


# ----- request counts, faults, rate limits -------------------------------------------------------------


async def test_requests_are_counted_per_endpoint(api: httpx.AsyncClient, sandbox: httpx.AsyncClient) -> None:
    before = await alvys.request_counts(sandbox)
    assert {"customers/search", "customers", "invoices/search"} <= set(before)
    await api.post(f"{API}/customers/search", json=CUSTOMER_SEARCH)
    await api.post(f"{API}/customers/search", json={"Page": 0})  # a 400 is counted too
    await api.get(f"{API}/customers", params={"companyNumber": "C-NOPE"})
    await api.post(f"{API}/invoices/search", json=INVOICE_SEARCH)
    after = await alvys.request_counts(sandbox)
    assert alvys.delta(before, after) == {"customers/search": 2, "customers": 1, "invoices/search": 1}


def _sync_token(http: httpx.Client) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {http.post('/alvys/oauth/token', json=CREDENTIALS).json()['access_token']}"
    }


def test_fault_hooks_reach_the_new_endpoints() -> None:
    faults = {"alvys": {"endpoints": {"invoices/search": {"error_rate": 1}, "customers": {"rate_429": 1}}}}
    app = create_app(faults=FaultSettings.model_validate(faults), rate_limits=RateLimitSettings(), environ={})
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        headers = _sync_token(http)
        failed = http.post(f"{API}/invoices/search", json=INVOICE_SEARCH, headers=headers)
        assert_problem(failed, 503)
        assert failed.headers["x-sandbox-fault"] == "error"
        limited = http.get(f"{API}/customers", params={"companyNumber": "CUST-MOBIX"}, headers=headers)
        assert_problem(limited, 429)
        assert limited.headers["retry-after"] == "60"
        assert http.post(f"{API}/customers/search", json=CUSTOMER_SEARCH, headers=headers).status_code == 200
        injected = http.get("/_sandbox/faults").json()["injected"]["alvys"]
        assert injected == {"invoices/search": {"error": 1}, "customers": {"rate_429": 1}}


def _published(endpoint: str, call: Any) -> list[httpx.Response]:
    """Eleven quick calls of one endpoint against a sandbox enforcing Alvys's published limits."""
    app = create_app(faults=FaultSettings(), rate_limits=RateLimitSettings(mode="published"), environ={})
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        headers = _sync_token(http)
        answers = [call(http, headers) for _ in range(11)]
        table = http.get("/_sandbox/rate-limits").json()["vendors"]["alvys"]
        assert table["endpoints"][endpoint]["accepted"] == len([a for a in answers if a.status_code == 200])
        return answers


def test_invoices_search_is_limited_to_ten_a_minute() -> None:
    answers = _published(
        "invoices/search", lambda http, h: http.post(f"{API}/invoices/search", json=INVOICE_SEARCH, headers=h)
    )
    assert [a.status_code for a in answers] == [200] * 10 + [429]
    assert answers[-1].headers["x-sandbox-rate-limit"] == "endpoint"
    assert answers[-1].headers["retry-after"] == "60"


@pytest.mark.parametrize("endpoint", ["customers/search", "customers"])
def test_customer_reads_fall_under_the_default_rule(endpoint: str) -> None:
    """Published under no rule of their own: 10 a minute with a burst of 1 a second, as the payments."""

    def call(http: httpx.Client, headers: dict[str, str]) -> httpx.Response:
        if endpoint == "customers":
            return http.get(f"{API}/customers", params={"companyNumber": "CUST-MOBIX"}, headers=headers)
        return http.post(f"{API}/customers/search", json=CUSTOMER_SEARCH, headers=headers)

    answers = _published(endpoint, call)
    assert [a.status_code for a in answers[:2]] == [200, 429]
    assert answers[1].headers["x-sandbox-rate-limit"] == "burst"
    assert {a.headers.get("x-sandbox-rate-limit") for a in answers[2:]} == {"blocked"}


# ----- the example files resolve in the demo data ---------------------------------------------------------

_REFERENCE = re.compile(r"\b(?:INV|L|PO)-\d+\b|(?<=PO )\d+\b")


async def _demo_index(
    demo: httpx.AsyncClient,
) -> tuple[dict[str, dict[str, Any]], dict[str, set[str]], dict[str, Money]]:
    """Invoices by number; the loads each invoice, load or PO number names; each load's total."""
    invoices = {i["Number"]: i for i in (await search_invoices(demo, PageSize=100))["Items"]}
    loads: dict[str, set[str]] = {}
    totals: dict[str, Money] = {}
    for invoice in invoices.values():
        loads[invoice["Number"]] = {load["LoadNumber"] for load in invoice["Loads"]}
        for load in invoice["Loads"]:
            loads.setdefault(load["LoadNumber"], set()).add(load["LoadNumber"])
            loads.setdefault(load["PONumber"], set()).add(load["LoadNumber"])
        for line in invoice["LineItems"]:
            currency = {840: "USD", 124: "CAD"}[line["Amount"]["Currency"]]
            totals[line["LoadNumber"]] = Money.of(line["Amount"]["Amount"], currency)
    return invoices, loads, totals


def _text_total(text: str, loads: dict[str, set[str]], totals: dict[str, Money]) -> Money | None:
    """What the loads named in ``text`` are open for (nothing is paid in the demo sandbox)."""
    named = set().union(*(loads.get(ref, set()) for ref in _REFERENCE.findall(text)))
    if not named:
        return None
    amounts = [totals[n] for n in sorted(named)]
    return Money.of(sum((a.amount for a in amounts), Decimal(0)), amounts[0].currency)


async def test_example_files_resolve_in_the_demo_data(demo: httpx.AsyncClient) -> None:
    invoices, loads, totals = await _demo_index(demo)
    customers = (await search_customers(demo, Statuses=[], PageSize=100))["Items"]
    names = {c["Name"].upper() for c in customers}
    names |= {
        c["InvoicingInformation"][k] for c in customers for k in ("InvoicingName", "InvoicingNameAlias")
    }
    names.discard(None)

    # X12 820: each RMR's invoice amount is the invoice's total; INV-7777 is meant to match nothing.
    x12 = (EXAMPLES / "remittance-820.x12").read_text()
    remitted = re.findall(r"RMR\*IV\*([^*~]+)\*PI\*([\d.]+)\*([\d.]+)", x12)
    assert [r for r, _, _ in remitted] == ["INV-1001", "INV-1003", "INV-7777", "INV-3001"]
    for reference, _paid, invoice_amount in remitted:
        if reference == "INV-7777":
            assert reference not in invoices and reference not in loads
        else:
            assert invoices[reference]["Total"]["Amount"] == Decimal(invoice_amount), reference
    assert set(re.findall(r"N1\*PR\*([^*~]+)", x12)) <= names
    (code,) = set(re.findall(r"N1\*PR\*[^*~]+\*91\*([^*~]+)", x12))
    payer = (await demo.get(f"{API}/customers", params={"companyNumber": code})).json()
    assert payer["Id"] == "CUST-MOBIX"

    # camt.054: each structured reference's due amount is the invoice's total; booked free texts add up.
    ns = {"c": "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"}
    camt = ET.parse(EXAMPLES / "notification.camt054.xml").getroot()
    structured = camt.findall(".//c:Strd", ns)
    assert len(structured) == 3
    for strd in structured:
        reference = strd.findtext("c:RfrdDocInf/c:Nb", namespaces=ns) or ""
        due = strd.findtext("c:RfrdDocAmt/c:DuePyblAmt", namespaces=ns) or ""
        assert invoices[reference]["Total"]["Amount"] == Decimal(due), reference
    for entry in camt.findall(".//c:Ntry", ns):
        booked = entry.findtext("c:Sts/c:Cd", namespaces=ns) == "BOOK"
        credit = entry.findtext("c:CdtDbtInd", namespaces=ns) == "CRDT"
        text = entry.findtext(".//c:Ustrd", namespaces=ns) or entry.findtext("c:AddtlNtryInf", namespaces=ns)
        if booked and credit and text and not entry.findall(".//c:Strd", ns):
            amount = Money.of(entry.findtext("c:Amt", namespaces=ns) or "", "USD")
            assert _text_total(text, loads, totals) == amount, text
    assert {n.text.upper() for n in camt.findall(".//c:Dbtr/c:Pty/c:Nm", ns) if n.text} <= names

    # BAI2: the numbers in each credit's text (16 and 88 records) are open for the 16 amount, except
    # the one the payer marks as a part payment.
    records: list[tuple[str, Money, str]] = []
    currency = "USD"
    for line in (EXAMPLES / "lockbox.bai2").read_text().splitlines():
        fields = line.rstrip("/").split(",")
        if fields[0] == "03":
            currency = fields[2]
        elif fields[0] == "16" and int(fields[1]) < 400:  # credits
            records.append((fields[1], Money.of(Decimal(fields[2]) / 100, currency), line))
        elif fields[0] == "88" and records:
            type_code, amount, text = records[-1]
            records[-1] = (type_code, amount, f"{text} {line[3:]}")
    assert len(records) == 7
    for _type_code, amount, text in records:
        if "PARTIAL PAYMENT" in text:
            assert _text_total(text, loads, totals) == Money.of("1000.00", "USD")  # INV-1003, paid 600.00
        else:
            assert _text_total(text, loads, totals) == amount, text
    assert {"MOBIX SOURCING", "BIG BOX RETAIL", "MAPLE FREIGHT CANADA", "MOBIX"} <= names

    # Apex: every Inv. is an invoice or a load number, paid at most its total; every Debtor a customer.
    with (EXAMPLES / "apex-payment-report.csv").open(newline="") as report:
        rows = list(csv.DictReader(report))
    for row in rows:
        named = loads[row["Inv."]]
        total = sum((totals[n].amount for n in named), Decimal(0))
        assert Decimal(row["Amount"].replace(",", "")) <= total, row
        assert row["Debtor"].upper() in names
    assert {r["Inv."] for r in rows} == {"INV-1001", "L-1005", "INV-2001", "L-3101", "L-3102"}


# ----- the client ----------------------------------------------------------------------------------


async def test_client_searches_and_gets_customers(client: AlvysClient, sandbox: httpx.AsyncClient) -> None:
    status = unique("Status")
    added = [
        await new_customer(sandbox, status=status, invoicing_name=f"PAYER {n}", invoicing_name_alias=f"P{n}")
        for n in range(3)
    ]
    first = await client.search_customers(statuses=[status], page=0, page_size=2)
    second = await client.search_customers(statuses=[status], page=1, page_size=2)
    assert first.total == second.total == 3
    assert [c.id for c in (*first.items, *second.items)] == [c["Id"] for c in added]
    one = first.items[0]
    assert (one.name, one.company_number, one.status) == (added[0]["Name"], added[0]["CompanyNumber"], status)
    assert (one.invoicing_name, one.invoicing_name_alias) == ("PAYER 0", "P0")

    everyone = await client.search_customers(page_size=100)  # no statuses: every customer
    assert {"CUST-MOBIX", "CUST-BIGBOX", "CUST-MAPLE"} <= {c.id for c in everyone.items}
    assert everyone.total >= 6

    mobix = await client.get_customer(company_number="CUST-MOBIX")
    assert (mobix.id, mobix.name, mobix.invoicing_name) == ("CUST-MOBIX", "Mobix Sourcing", "MOBIX SOURCING")
    with pytest.raises(AlvysProblem) as unknown:
        await client.get_customer(company_number=unique("C"))
    assert unknown.value.is_not_found and unknown.value.endpoint == "customers"


async def test_client_searches_invoices_and_sees_payments(
    client: AlvysClient, sandbox: httpx.AsyncClient
) -> None:
    customer = (await new_customer(sandbox))["Id"]
    loads, po = [unique("L"), unique("L")], unique("PO")
    await alvys.add_load(sandbox, loads[0], status="Invoiced", billable="300.00", po=po, customer=customer)
    await alvys.add_load(sandbox, loads[1], status="Invoiced", billable="45.50", customer=customer)

    page = await client.search_invoices(customer_id=customer)
    assert page.total == 2
    assert [(i.number, i.remaining_balance) for i in page.items] == [
        (f"INV-{loads[0]}", Money.of("300.00")),
        (f"INV-{loads[1]}", Money.of("45.50")),
    ]
    assert page.items[0].load_numbers == [loads[0]] and page.items[0].status == "AwaitingPayment"
    assert [i.number for i in (await client.search_invoices(po_numbers=[po])).items] == [f"INV-{loads[0]}"]
    by_load = await client.search_invoices(load_numbers=[loads[1]])
    assert [i.number for i in by_load.items] == [f"INV-{loads[1]}"]
    paged = await client.search_invoices(customer_id=customer, page=1, page_size=1)
    assert paged.total == 2 and [i.number for i in paged.items] == [f"INV-{loads[1]}"]
    with pytest.raises(ValueError):
        await client.search_invoices(statuses=["AwaitingPayment"])

    reference = unique("CHK")
    await client.record_customer_payment(
        CustomerPayment(
            load_number=loads[0],
            amount=Money.of("100.00"),
            payment_date=datetime(2026, 7, 20, tzinfo=UTC),
            reference_number=reference,
        )
    )
    after = await client.search_invoices(customer_id=customer, statuses=["AwaitingPayment"])
    paid_one = after.items[0]
    assert paid_one.remaining_balance == Money.of("200.00") and paid_one.amount_paid == Money.of("100.00")
    assert paid_one.find(reference) is not None and paid_one.payment_references == [reference]
    assert (await client.get_invoice(invoice_number=f"INV-{loads[0]}")).remaining_balance == Money.of(
        "200.00"
    )
    assert (await client.search_invoices(customer_id=customer, statuses=["Paid"])).total == 0
