"""The Alvys client's own reading and writing of HTTP, against ``httpx.MockTransport``.

This is the one place HTTP is mocked: these tests pin down how the client parses both
response spellings, problem bodies, Retry-After and money, how it caches and renews its
token, and the exact bytes it sends. Behaviour against a live server is the sandbox's job.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from models.money import Money
from vendors import jsonbody
from vendors.alvys import (
    AlvysClient,
    AlvysError,
    AlvysProblem,
    AlvysResponseError,
    CarrierPayment,
    CustomerPayment,
    camel_keys,
    parse_retry_after,
)

BASE = "https://integrations.alvys.test"
AUTH = "https://auth.alvys.test/oauth/token"
SECRET = "s3cr3t-client-secret-value"
API = f"{BASE}/api/p/v1.0"

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeAlvys:
    """Issues numbered tokens at the auth URL and hands API requests to ``api``."""

    def __init__(self, api: Handler, *, expires_in: int = 3600, token_delay: float = 0.0) -> None:
        self.api = api
        self.expires_in = expires_in
        self.token_delay = token_delay
        self.token_requests: list[httpx.Request] = []
        self.api_requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == AUTH:
            self.token_requests.append(request)
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            token = f"tok-{len(self.token_requests)}"
            return httpx.Response(200, json={"access_token": token, "expires_in": self.expires_in})
        self.api_requests.append(request)
        answer = self.api(request)
        return await answer if isinstance(answer, Awaitable) else answer


def make_client(fake: FakeAlvys, clock: Clock | None = None, **kwargs: Any) -> AlvysClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    return AlvysClient(
        http,
        base_url=kwargs.pop("base_url", BASE),
        auth_url=AUTH,
        client_id="freightpay-test",
        client_secret=SECRET,
        clock=clock or Clock(),
        **kwargs,
    )


def answer(payload: Any, status: int = 200) -> Handler:
    return lambda request: httpx.Response(status, json=payload)


def customer_payment(**overrides: Any) -> CustomerPayment:
    fields: dict[str, Any] = {
        "load_number": "L-1001",
        "amount": Money.of("1500.00", "USD"),
        "payment_date": datetime(2026, 3, 16, 13, 57, 56, 427000, tzinfo=UTC),
        "reference_number": "CHK-88231",
    }
    return CustomerPayment(**(fields | overrides))


def carrier_payment(**overrides: Any) -> CarrierPayment:
    fields: dict[str, Any] = {
        "trip_id": "trip-7f3a",
        "amount": Money.of("980.50", "USD"),
        "payment_date": datetime(2026, 3, 16, 13, 48, 19, 920000, tzinfo=UTC),
        "reference_number": "ACH-5521",
    }
    return CarrierPayment(**(fields | overrides))


# ---- customer payments: both shapes ---------------------------------------------------------


async def test_customer_payment_current_shape() -> None:
    fake = FakeAlvys(
        answer(
            {
                "Id": "cp-91",
                "LoadNumber": "L-1001",
                "Status": "Invoiced",
                "TotalPaid": {"Amount": 1500.00, "Currency": 840},
                "TotalBillable": {"Amount": 2450.75, "Currency": 840},
            }
        )
    )
    result = await make_client(fake).record_customer_payment(customer_payment())

    assert result.payment_id == "cp-91"
    assert result.load_number == "L-1001"
    assert result.load_status == "Invoiced"
    assert result.total_paid == Money.of("1500.00", "USD")
    assert result.total_billable == Money.of("2450.75", "USD")
    assert result.payments == []
    assert str(fake.api_requests[0].url) == f"{API}/invoices/customer-payments"
    assert fake.api_requests[0].method == "POST"


@pytest.mark.parametrize("spelling", ["PascalCase", "camelCase"])
async def test_customer_payment_captured_shape(spelling: str) -> None:
    body: dict[str, Any] = {
        "LoadNumber": "L-1001",
        "Status": "Completed",
        "CustomerPayments": [
            {
                "Id": "cp-1",
                "Amount": {"Amount": 500, "Currency": 840},
                "CheckNumber": "1001",
                "InvoiceNumber": "INV-1",
                "PaymentDate": "2026-03-01T00:00:00Z",
                "PaymentMethod": "Check",
                "ReferenceNumber": "OLD-1",
            },
            {
                "Id": "cp-2",
                "Amount": {"Amount": 1500.00, "Currency": 840},
                "PaymentDate": "2026-03-16T13:57:56.4270000",
                "PaymentMethod": "ACH",
                "ReferenceNumber": "CHK-88231",
            },
        ],
    }
    fake = FakeAlvys(answer(camel_keys(body) if spelling == "camelCase" else body))
    result = await make_client(fake).record_customer_payment(customer_payment())

    assert result.load_status == "Completed"
    assert result.payment_id == "cp-2"  # the payment carrying our reference
    assert result.total_paid is None and result.total_billable is None
    assert [p.id for p in result.payments] == ["cp-1", "cp-2"]
    first, ours = result.payments
    assert first.invoice_number == "INV-1" and first.check_number == "1001"
    assert first.amount == Money.of("500.00", "USD")
    assert ours.payment_date == datetime(2026, 3, 16, 13, 57, 56, 427000, tzinfo=UTC)
    assert result.find("CHK-88231") == ours


# ---- carrier payments ---------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["PascalCase", "camelCase"])
async def test_carrier_payment_and_find(spelling: str) -> None:
    body: dict[str, Any] = {
        "TripId": "trip-7f3a",
        "TripNumber": "T-2201",
        "Status": "Completed",
        "CarrierPayments": [
            {
                "Id": "pay-1",
                "Amount": {"Amount": 980.5, "Currency": 840},
                "PaymentDate": "2026-03-16T13:48:19.924Z",
                "ReferenceNumber": "ACH-5521",
                "PaymentMethod": "ACH",
                "CheckNumber": None,
            }
        ],
    }
    fake = FakeAlvys(answer(camel_keys(body) if spelling == "camelCase" else body))
    result = await make_client(fake).record_carrier_payment(carrier_payment())

    assert (result.trip_id, result.trip_number, result.trip_status) == ("trip-7f3a", "T-2201", "Completed")
    found = result.find("ACH-5521")
    assert found is not None and found.id == "pay-1"
    assert found.amount == Money.of("980.50", "USD")
    assert found.payment_method == "ACH"
    assert result.find("NOT-THERE") is None
    assert str(fake.api_requests[0].url) == f"{API}/invoices/carrier-payments"


async def test_carrier_request_never_carries_mark_as_paid() -> None:
    fake = FakeAlvys(
        answer({"TripId": "trip-7f3a", "TripNumber": "T", "Status": "Open", "CarrierPayments": []})
    )
    await make_client(fake).record_carrier_payment(carrier_payment(note="n", check_number="1"))
    sent = json.loads(fake.api_requests[0].content)
    assert "MarkAsPaid" not in sent
    assert set(sent) == {"TripId", "Amount", "PaymentDate", "ReferenceNumber", "CheckNumber", "Note"}


# ---- invoices ------------------------------------------------------------------------------

PASCAL_INVOICE: dict[str, Any] = {
    "Id": "15fd1695595a48a48163490e3f21ddd6",
    "Number": "123456789",
    "Type": "Standard",
    "Status": "AwaitingPayment",
    "CreatedDate": "2026-03-01T10:00:00Z",
    "Total": {"Amount": 2450.75, "Currency": 840},
    "AmountPaid": {"Amount": 1500.0, "Currency": 840},
    "RemainingBalance": {"Amount": 950.75, "Currency": 840},
    "OverPaymentAmount": {"Amount": 0, "Currency": 840},
    "IsSubmitted": True,
    "Vendor": {"Id": "v1", "Name": "Acme Logistics"},
    "Customer": {"Id": "c1", "Name": "Shipper Inc"},
    "LineItems": [],
    "Loads": [{"Id": "ld-1", "LoadNumber": "L-1001", "SubsidiaryName": "Acme", "PONumber": "PO-77"}],
    "Payments": [
        {
            "Id": "ip-1",
            "PaymentDate": "2026-03-16T13:57:56.427Z",
            "Amount": {"Amount": 1500.0, "Currency": 840},
            "CheckNumber": "5521",
            "PaymentReference": "CHK-88231",
        }
    ],
}

#: The captured invoice page's spelling (docs/vendors.md#alvys-invoices): camelCase, and
#: currency as a string.
CAMEL_INVOICE: dict[str, Any] = {
    "id": "15fd1695595a48a48163490e3f21ddd6",
    "number": "123456789",
    "type": "Standard",
    "status": "Open",
    "createdDate": "2026-03-01T10:00:00Z",
    "invoicedDate": "2026-03-02T10:00:00Z",
    "dueDate": "2026-04-01T00:00:00Z",
    "paidDate": None,
    "total": {"amount": 2450.75, "currency": "USD"},
    "amountPaid": {"amount": 1500, "currency": "840"},
    "remainingBalance": {"amount": 950.75, "currency": None},
    "overPaymentAmount": {"amount": 0, "currency": "USD"},
    "isSubmitted": True,
    "lineItems": [
        {
            "id": "li-1",
            "name": "Linehaul",
            "amount": {"amount": 2450.75, "currency": "USD"},
            "rate": {"unitOfMeasurement": "miles", "units": 1000, "rate": 2.45075},
            "loadNumber": "L-1001",
        }
    ],
    "loads": [
        {"id": "ld-1", "loadNumber": "L-1001", "subsidiaryName": "Acme", "poNumber": "PO-77"},
        {"id": "ld-2", "loadNumber": "L-1002", "subsidiaryName": "Acme"},
    ],
    "payments": [
        {
            "id": "ip-1",
            "paymentDate": "2026-03-16T13:57:56.427Z",
            "amount": {"amount": 1500, "currency": "USD"},
            "checkNumber": "5521",
            "paymentReference": "CHK-88231",
        }
    ],
}


async def test_invoice_pascal_case_by_id() -> None:
    fake = FakeAlvys(answer(PASCAL_INVOICE))
    invoice = await make_client(fake).get_invoice(invoice_id="15fd1695595a48a48163490e3f21ddd6")

    request = fake.api_requests[0]
    assert request.method == "GET"
    assert request.url.path == "/api/p/v1.0/invoices"
    assert dict(request.url.params) == {"id": "15fd1695595a48a48163490e3f21ddd6"}
    assert invoice.number == "123456789"
    assert invoice.status == "AwaitingPayment"
    assert invoice.total == Money.of("2450.75", "USD")
    assert invoice.amount_paid == Money.of("1500.00", "USD")
    assert invoice.remaining_balance == Money.of("950.75", "USD")
    assert invoice.load_numbers == ["L-1001"]
    assert invoice.payment_references == ["CHK-88231"]
    assert invoice.payments[0].check_number == "5521"
    assert invoice.find("CHK-88231") is not None


async def test_invoice_camel_case_capture_with_string_currencies() -> None:
    fake = FakeAlvys(answer(CAMEL_INVOICE))
    invoice = await make_client(fake).get_invoice(invoice_number="123456789")

    assert dict(fake.api_requests[0].url.params) == {"invoiceNumber": "123456789"}
    assert invoice.id == "15fd1695595a48a48163490e3f21ddd6"
    assert invoice.total == Money.of("2450.75", "USD")  # "USD"
    assert invoice.amount_paid == Money.of("1500.00", "USD")  # "840"
    assert invoice.remaining_balance == Money.of("950.75", "USD")  # null
    assert invoice.load_numbers == ["L-1001", "L-1002"]
    assert invoice.payment_references == ["CHK-88231"]
    assert invoice.payments[0].amount == Money.of("1500.00", "USD")


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        (840, "USD"),
        ("840", "USD"),
        ("USD", "USD"),
        ("cad", "CAD"),
        (124, "CAD"),
        ("484", "MXN"),
        (None, "USD"),
        (0, "USD"),
    ],
)
async def test_money_currency_spellings(currency: Any, expected: str) -> None:
    body = dict(PASCAL_INVOICE, Total={"Amount": 10, "Currency": currency})
    invoice = await make_client(FakeAlvys(answer(body))).get_invoice(invoice_number="1")
    assert invoice.total == Money.of("10", expected)


async def test_get_invoice_needs_exactly_one_identifier() -> None:
    client = make_client(FakeAlvys(answer(PASCAL_INVOICE)))
    with pytest.raises(ValueError):
        await client.get_invoice()
    with pytest.raises(ValueError):
        await client.get_invoice(invoice_id="a", invoice_number="b")


# ---- money read exactly ----------------------------------------------------------------------


def raw_json_answer(text: str, status: int = 200) -> Handler:
    """An answer with the JSON text exactly as given (json= would round-trip it through floats)."""
    return lambda request: httpx.Response(
        status, content=text.encode(), headers={"Content-Type": "application/json"}
    )


async def test_money_is_read_from_the_json_text_not_a_float() -> None:
    text = (
        '{"Id":"x","LoadNumber":"L","Status":"Invoiced",'
        '"TotalPaid":{"Amount":987654321098765.43,"Currency":840},'
        '"TotalBillable":{"Amount":0.30000000000000004,"Currency":840}}'
    )
    result = await make_client(FakeAlvys(raw_json_answer(text))).record_customer_payment(customer_payment())
    # a float would have made this 987654321098765.4
    assert result.total_paid is not None and result.total_paid.amount == Decimal("987654321098765.43")
    # a .NET double's noise is rounded to the cent it stands for ...
    assert result.total_billable == Money.of("0.30", "USD")


async def test_money_off_the_minor_units_is_an_unreadable_answer() -> None:
    text = '{"Id":"x","LoadNumber":"L","Status":"Invoiced","TotalPaid":{"Amount":10.005,"Currency":840}}'
    with pytest.raises(AlvysResponseError) as info:
        await make_client(FakeAlvys(raw_json_answer(text))).record_customer_payment(customer_payment())
    # ... but a third decimal is a real discrepancy, and the payment was probably recorded
    assert info.value.status == 200 and info.value.endpoint == "customer-payments"


@pytest.mark.parametrize(
    "content", [b"", b"<html>ok</html>", b"[1, 2]", b'{"TotalPaid": {"Amount": "abc", "Currency": 840}}']
)
async def test_unreadable_success_bodies(content: bytes) -> None:
    fake = FakeAlvys(lambda request: httpx.Response(200, content=content))
    with pytest.raises(AlvysResponseError):
        await make_client(fake).record_customer_payment(customer_payment())


async def test_unknown_numeric_currency_is_unreadable() -> None:
    body = dict(PASCAL_INVOICE, Total={"Amount": 10, "Currency": 999})
    with pytest.raises(AlvysResponseError, match="999"):
        await make_client(FakeAlvys(answer(body))).get_invoice(invoice_number="1")


# ---- loads and trips -------------------------------------------------------------------------


def load_item(number: str, **extra: Any) -> dict[str, Any]:
    return {
        "Id": f"id-{number}",
        "LoadNumber": number,
        "OrderNumber": f"O-{number}",
        "PONumber": "PO-77",
        "Status": "Invoiced",
        "CustomerId": "c1",
        "CustomerType": [],
        "LoadType": "FTL",
        "InvoiceAs": "Acme",
        "Notes": [],
        "References": [],
        "Stops": [],
        "CreatedAt": "2026-03-01T00:00:00Z",
        "CreatedBy": "u1",
        **extra,
    }


async def test_search_loads_reads_items_and_follows_pages() -> None:
    pages = {
        0: {"Page": 0, "PageSize": 2, "Total": 3, "Items": [load_item("L-1"), load_item("L-2")]},
        1: {
            "Page": 1,
            "PageSize": 2,
            "Total": 3,
            "Items": [
                load_item(
                    "L-3",
                    CustomerRate={"Amount": 2450.75, "Currency": 840},
                    InvoicedAmount={"Amount": 2450.75, "Currency": 840},
                    TotalPaid={"Amount": 1000, "Currency": 840},
                    PaidAt="2026-03-10T00:00:00Z",
                    Payments=[{"Id": "p1", "Amount": {"Amount": 1000, "Currency": 840}, "PaidAt": None}],
                )
            ],
        },
    }
    fake = FakeAlvys(lambda request: httpx.Response(200, json=pages[json.loads(request.content)["Page"]]))
    loads = await make_client(fake).search_loads(po_numbers="PO-77", page_size=2)

    assert [load.load_number for load in loads] == ["L-1", "L-2", "L-3"]
    assert [json.loads(r.content)["Page"] for r in fake.api_requests] == [0, 1]
    # the spec publishes the loads endpoints under version 2.0
    assert str(fake.api_requests[0].url) == f"{BASE}/api/p/v2.0/loads/search"
    assert json.loads(fake.api_requests[0].content)["PONumbers"] == ["PO-77"]
    first, third = loads[0], loads[2]
    assert (first.id, first.po_number, first.order_number, first.status) == (
        "id-L-1",
        "PO-77",
        "O-L-1",
        "Invoiced",
    )
    assert first.accepts_customer_payments
    assert third.customer_rate == Money.of("2450.75", "USD")
    assert third.total_paid == Money.of("1000.00", "USD")
    assert third.payments[0].id == "p1"


async def test_search_stops_at_max_pages() -> None:
    page = {"Page": 0, "PageSize": 1, "Total": 99, "Items": [load_item("L-1")]}
    fake = FakeAlvys(answer(page))
    loads = await make_client(fake).search_loads(load_numbers=["L-1"], page_size=1, max_pages=2)
    assert len(loads) == 2 and len(fake.api_requests) == 2


async def test_search_without_filters_spends_no_call() -> None:
    fake = FakeAlvys(answer({}))
    with pytest.raises(ValueError):
        await make_client(fake).search_loads()
    with pytest.raises(ValueError):
        await make_client(fake).search_trips(load_numbers=[])
    assert fake.api_requests == [] and fake.token_requests == []


async def test_search_trips_reads_carrier_payable() -> None:
    trip = {
        "Id": "trip-7f3a",
        "TripNumber": "T-2201",
        "Status": "Delivered",
        "LoadNumber": "L-1001",
        "Stops": [],
        "CarrierPayOnHold": False,
        "TotalMileage": {"Distance": {"Value": 1, "Unit": "Miles"}},
        "EmptyMileage": {"Distance": {"Value": 0, "Unit": "Miles"}},
        "LoadedMileage": {"Distance": {"Value": 1, "Unit": "Miles"}},
        "TripValue": {"Amount": 1200, "Currency": 840},
        "Carrier": {
            "Id": "car-1",
            "Rate": {"Amount": 900, "Currency": 840},
            "Linehaul": {"Amount": 900, "Currency": 840},
            "Accessorials": {"Amount": 80.5, "Currency": 840},
            "TotalPayable": {"Amount": 980.5, "Currency": 840},
        },
    }
    fake = FakeAlvys(answer({"Page": 0, "PageSize": 50, "Total": 1, "Items": [camel_keys(trip)]}))
    trips = await make_client(fake).search_trips(load_numbers="L-1001")

    assert str(fake.api_requests[0].url) == f"{API}/trips/search"
    assert json.loads(fake.api_requests[0].content) == {
        "Page": 0,
        "PageSize": 50,
        "IncludeDeleted": False,
        "LoadNumbers": ["L-1001"],
    }
    (found,) = trips
    assert (found.trip_id, found.trip_number, found.load_number, found.status) == (
        "trip-7f3a",
        "T-2201",
        "L-1001",
        "Delivered",
    )
    assert found.carrier_payable == Money.of("980.50", "USD")
    assert found.trip_value == Money.of("1200.00", "USD")
    assert found.carrier_pay_on_hold is False


async def test_search_item_without_identifier_is_unreadable() -> None:
    fake = FakeAlvys(answer({"Page": 0, "PageSize": 50, "Total": 1, "Items": [{"Status": "Open"}]}))
    with pytest.raises(AlvysResponseError, match="trips-search"):
        await make_client(fake).search_trips(trip_numbers=["T-1"])


# ---- problems --------------------------------------------------------------------------------


async def test_problem_details_pascal_case_404() -> None:
    body = {
        "Type": "https://tools.ietf.org/html/rfc9110#section-15.5.5",
        "Title": "Not Found",
        "Status": 404,
        "Detail": "Load L-404 was not found.",
        "Instance": "/api/p/v1.0/invoices/customer-payments",
    }
    fake = FakeAlvys(answer(body, 404))
    with pytest.raises(AlvysProblem) as info:
        await make_client(fake).record_customer_payment(customer_payment(load_number="L-404"))
    problem = info.value
    assert (problem.status, problem.endpoint) == (404, "customer-payments")
    assert problem.title == "Not Found" and problem.detail == "Load L-404 was not found."
    assert problem.type == body["Type"] and problem.instance == body["Instance"]
    assert problem.is_not_found and problem.status == 404 and not problem.is_not_payable
    assert problem.errors == {} and problem.retry_after is None
    assert isinstance(problem, AlvysError)


async def test_validation_problem_details_camel_case() -> None:
    body = {
        "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
        "title": "One or more validation errors occurred.",
        "status": 400,
        "errors": {
            "ReferenceNumber": ["The ReferenceNumber field is required."],
            "Amount.Amount": ["Amount must be greater than zero."],
        },
    }
    fake = FakeAlvys(answer(body, 400))
    with pytest.raises(AlvysProblem) as info:
        await make_client(fake).record_customer_payment(customer_payment())
    problem = info.value
    assert problem.title == "One or more validation errors occurred."
    assert problem.errors == {
        "ReferenceNumber": ["The ReferenceNumber field is required."],
        "Amount.Amount": ["Amount must be greater than zero."],
    }
    assert not problem.is_not_payable and problem.status < 500
    assert "ReferenceNumber: The ReferenceNumber field is required." in str(problem)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(
            400,
            json={
                "Title": "Bad Request",
                "Status": 400,
                "Detail": "Load must be in one of: Invoiced, Completed, Financed.",
            },
        ),
        httpx.Response(
            400,
            json={
                "title": "Bad Request",
                "errors": {"LoadNumber": ["Load must be in one of: Invoiced, Completed, Financed."]},
            },
        ),
        httpx.Response(400, text="Load must be in one of: Invoiced, Completed, Financed."),
        httpx.Response(400, json="Load must be in one of: Invoiced, Completed, Financed."),
    ],
)
async def test_not_payable_is_recognised(response: httpx.Response) -> None:
    fake = FakeAlvys(lambda request: response)
    with pytest.raises(AlvysProblem) as info:
        await make_client(fake).record_customer_payment(customer_payment())
    assert info.value.is_not_payable


async def test_not_payable_only_on_a_400() -> None:
    fake = FakeAlvys(answer({"Title": "Conflict", "Detail": "Load must be in one of: Invoiced."}, 409))
    with pytest.raises(AlvysProblem) as info:
        await make_client(fake).record_customer_payment(customer_payment())
    assert info.value.status == 409 and not info.value.is_not_payable


async def test_non_json_error_body_takes_title_from_reason_phrase() -> None:
    html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    fake = FakeAlvys(lambda request: httpx.Response(502, text=html, headers={"Content-Type": "text/html"}))
    with pytest.raises(AlvysProblem) as info:
        await make_client(fake).record_carrier_payment(carrier_payment())
    problem = info.value
    assert (problem.status, problem.title, problem.detail) == (502, "Bad Gateway", None)
    assert problem.status >= 500 and problem.endpoint == "carrier-payments"


async def test_empty_error_body() -> None:
    fake = FakeAlvys(lambda request: httpx.Response(503))
    with pytest.raises(AlvysProblem) as info:
        await make_client(fake).get_invoice(invoice_id="x")
    assert (info.value.status, info.value.title, info.value.endpoint) == (
        503,
        "Service Unavailable",
        "invoices",
    )
    assert info.value.status >= 500 or info.value.status == 429


async def test_429_retry_after_seconds() -> None:
    body = {"Title": "Too Many Requests", "Status": 429}
    fake = FakeAlvys(
        lambda request: httpx.Response(
            429, json=body, headers={"Retry-After": "60", "Content-Type": "application/problem+json"}
        )
    )
    with pytest.raises(AlvysProblem) as info:
        await make_client(fake).search_loads(load_numbers=["L-1"])
    assert info.value.retry_after == 60.0 and info.value.status == 429
    assert info.value.endpoint == "loads-search"
    assert "retry after 60s" in str(info.value)


async def test_429_retry_after_http_date_is_measured_from_the_response_date() -> None:
    headers = {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT", "Date": "Wed, 21 Oct 2026 07:26:30 GMT"}
    fake = FakeAlvys(lambda request: httpx.Response(429, headers=headers))
    with pytest.raises(AlvysProblem) as info:
        await make_client(fake).search_trips(trip_numbers=["T-1"])
    assert info.value.retry_after == 90.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 1.5 ", 1.5),
        ("-5", 0.0),
        ("Wed, 21 Oct 2026 07:28:00 GMT", 30.0),
        ("Wed, 21 Oct 2026 07:00:00 GMT", 0.0),  # in the past
        ("soon", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2026, 10, 21, 7, 27, 30, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected


async def test_transport_errors_propagate_as_they_are() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(httpx.ConnectError):
        await make_client(FakeAlvys(refuse)).record_customer_payment(customer_payment())


# ---- auth --------------------------------------------------------------------------------------


def ok_invoice(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=PASCAL_INVOICE)


async def test_token_request_and_bearer_header() -> None:
    fake = FakeAlvys(ok_invoice)
    await make_client(fake).get_invoice(invoice_id="x")
    (token_request,) = fake.token_requests
    assert token_request.method == "POST"
    assert token_request.headers["Content-Type"] == "application/json"
    assert json.loads(token_request.content) == {
        "client_id": "freightpay-test",
        "client_secret": SECRET,
        "audience": "https://api.alvys.com/public/",
        "grant_type": "client_credentials",
    }
    assert fake.api_requests[0].headers["Authorization"] == "Bearer tok-1"


async def test_token_is_cached_across_calls() -> None:
    fake = FakeAlvys(ok_invoice)
    client = make_client(fake)
    for _ in range(3):
        await client.get_invoice(invoice_id="x")
    assert len(fake.token_requests) == 1
    assert {r.headers["Authorization"] for r in fake.api_requests} == {"Bearer tok-1"}


async def test_token_is_refreshed_after_expiry_minus_margin() -> None:
    clock = Clock()
    fake = FakeAlvys(ok_invoice, expires_in=3600)
    client = make_client(fake, clock, token_margin_seconds=60)

    await client.get_invoice(invoice_id="x")
    clock.now += 3539
    await client.get_invoice(invoice_id="x")
    assert len(fake.token_requests) == 1
    clock.now += 2  # 3541 s: inside the 60 s margin
    await client.get_invoice(invoice_id="x")
    assert len(fake.token_requests) == 2
    assert fake.api_requests[-1].headers["Authorization"] == "Bearer tok-2"


async def test_401_drops_the_token_and_retries_once() -> None:
    def api(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer tok-1":
            return httpx.Response(401, headers={"WWW-Authenticate": "Bearer"})
        return ok_invoice(request)

    fake = FakeAlvys(api)
    client = make_client(fake)
    invoice = await client.get_invoice(invoice_id="x")
    assert invoice.number == "123456789"
    assert len(fake.token_requests) == 2 and len(fake.api_requests) == 2
    await client.get_invoice(invoice_id="x")  # the new token is kept
    assert len(fake.token_requests) == 2


async def test_401_retry_resends_the_same_payment_body() -> None:
    def api(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer tok-1":
            return httpx.Response(401)
        return httpx.Response(200, json={"Id": "x", "LoadNumber": "L-1001", "Status": "Invoiced"})

    fake = FakeAlvys(api)
    await make_client(fake).record_customer_payment(customer_payment())
    first, second = fake.api_requests
    assert first.content == second.content


async def test_second_401_raises() -> None:
    body = {"Title": "Unauthorized", "Status": 401}
    fake = FakeAlvys(lambda request: httpx.Response(401, json=body))
    with pytest.raises(AlvysProblem) as info:
        await make_client(fake).get_invoice(invoice_id="x")
    assert info.value.status == 401 and info.value.is_auth_failure
    assert len(fake.token_requests) == 2 and len(fake.api_requests) == 2


async def test_concurrent_calls_fetch_one_token() -> None:
    fake = FakeAlvys(ok_invoice, token_delay=0.05)
    client = make_client(fake)
    await asyncio.gather(*(client.get_invoice(invoice_id=str(i)) for i in range(10)))
    assert len(fake.token_requests) == 1 and len(fake.api_requests) == 10


async def test_concurrent_401s_renew_the_token_once() -> None:
    def api(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer tok-1":
            return httpx.Response(401)
        return ok_invoice(request)

    fake = FakeAlvys(api, token_delay=0.01)
    client = make_client(fake)
    await asyncio.gather(*(client.get_invoice(invoice_id=str(i)) for i in range(5)))
    # all five are refused tok-1; the first to notice drops it, and one fetch serves them all
    assert len(fake.token_requests) == 2 and len(fake.api_requests) == 10


async def test_token_endpoint_refusal() -> None:
    def auth(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": "access_denied", "error_description": "Unauthorized"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(auth))
    client = AlvysClient(http, base_url=BASE, auth_url=AUTH, client_id="id", client_secret=SECRET)
    with pytest.raises(AlvysProblem) as info:
        await client.get_invoice(invoice_id="x")
    problem = info.value
    assert (problem.endpoint, problem.status, problem.title, problem.detail) == (
        "token",
        403,
        "access_denied",
        "Unauthorized",
    )
    assert problem.is_auth_failure


async def test_no_secret_or_token_in_errors_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeAlvys(lambda request: httpx.Response(401, json={"Title": "Unauthorized"}))
    client = make_client(fake)
    with pytest.raises(AlvysProblem) as info:
        await client.get_invoice(invoice_id="x")
    texts = [str(info.value), repr(info.value), repr(client), caplog.text]
    texts.append(repr(client._token))
    for text in texts:
        assert SECRET not in text
        assert "tok-1" not in text and "tok-2" not in text


# ---- exact request bytes -------------------------------------------------------------------------


def ok_customer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"Id": "x", "LoadNumber": "L-1001", "Status": "Invoiced"})


async def test_customer_payment_bytes_are_exact() -> None:
    fake = FakeAlvys(ok_customer)
    payment = customer_payment(
        amount=Money.of(Decimal("0.1") + Decimal("0.2"), "USD"), invoice_number="INV-1"
    )
    await make_client(fake).record_customer_payment(payment)
    request = fake.api_requests[0]
    assert request.headers["Content-Type"] == "application/json"
    assert request.content == (
        b'{"LoadNumber":"L-1001","Amount":{"Amount":0.30,"Currency":840},'
        b'"PaymentDate":"2026-03-16T13:57:56.427Z","ReferenceNumber":"CHK-88231","InvoiceNumber":"INV-1"}'
    )
    assert request.content == jsonbody.dumps(payment.to_wire())


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        ("1234567.89", "USD", b'"Amount":{"Amount":1234567.89,"Currency":840}'),
        ("0.01", "CAD", b'"Amount":{"Amount":0.01,"Currency":124}'),
        ("1500", "JPY", b'"Amount":{"Amount":1500,"Currency":392}'),
        ("99999999999999.99", "MXN", b'"Amount":{"Amount":99999999999999.99,"Currency":484}'),
        ("1E+3", "USD", b'"Amount":{"Amount":1000.00,"Currency":840}'),
    ],
)
async def test_carrier_amounts_are_sent_exactly(amount: str, currency: str, text: bytes) -> None:
    fake = FakeAlvys(answer({"TripId": "t", "TripNumber": "T", "Status": "Open", "CarrierPayments": []}))
    await make_client(fake).record_carrier_payment(
        carrier_payment(amount=Money.of(Decimal(amount), currency))
    )
    assert text in fake.api_requests[0].content


async def test_base_url_trailing_slash_and_version_prefix_are_normalised() -> None:
    fake = FakeAlvys(ok_customer)
    client = make_client(fake, base_url=BASE + "//", api_version="v1.0")
    await client.record_customer_payment(customer_payment())
    assert str(fake.api_requests[0].url) == f"{API}/invoices/customer-payments"
