"""The Alvys sandbox over real HTTP on loopback, checked against Alvys's published documents.

Why: the sandbox stands in for Alvys in every other test and in demos, so it must answer as Alvys
documents: error bodies and content types, idempotency, statuses, and success bodies that validate
against the OpenAPI schemas. Mutating tests create their own loads/trips (unique numbers) through
the controls, so they never depend on each other's order.
"""

from __future__ import annotations

import ast
import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from sandbox.alvys import AUDIENCE, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, AlvysEndpoint, problem_response
from sandbox.app import create_app
from tests.support.openapi import schema_errors, validate_against
from tests.support.servers import serve_app

API = "/alvys/api/p/v1.0"
CONTROLS = "/_sandbox/alvys"
CREDENTIALS = {
    "client_id": DEMO_CLIENT_ID,
    "client_secret": DEMO_CLIENT_SECRET,
    "audience": AUDIENCE,
    "grant_type": "client_credentials",
}
PAGED_LOADS = "Alvys.Helpers.PagedResponse1Alvys.Models.Loads.LoadResponse"
PAGED_TRIPS = "Alvys.Helpers.PagedResponse1Alvys.Models.Trips.TripResponse"
SEARCH = {"Page": 0, "PageSize": 50, "IncludeDeleted": False}


# ----- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app()


@pytest.fixture(scope="module")
def base_url(app: FastAPI) -> Iterator[str]:
    with serve_app(app) as url:
        yield url


@pytest.fixture(scope="module")
def http(base_url: str) -> Iterator[httpx.Client]:
    """No credentials: for the token endpoint, the controls, and 401 checks."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def api(base_url: str, http: httpx.Client) -> Iterator[httpx.Client]:
    """Authenticated with a demo token."""
    token = http.post("/alvys/oauth/token", json=CREDENTIALS).json()["access_token"]
    with httpx.Client(base_url=base_url, timeout=10, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def exact(response: httpx.Response) -> Any:
    """The JSON body with numbers as Decimal, to see amounts exactly as sent."""
    return json.loads(response.text, parse_float=Decimal)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def new_load(
    http: httpx.Client,
    *,
    status: str = "Invoiced",
    amount: str = "1000.00",
    currency: int = 840,
    po: str | None = None,
    invoice: bool = True,
) -> str:
    number = unique("L")
    record: dict[str, Any] = {
        "LoadNumber": number,
        "Status": status,
        "Billable": {"Amount": amount, "Currency": currency},
        "PONumber": po or unique("PO"),
    }
    if invoice:
        record["InvoiceNumber"] = f"INV-{number}"
    response = http.post(f"{CONTROLS}/loads", json=record)
    assert response.status_code == 201, response.text
    return number


def new_trip(
    http: httpx.Client, load_number: str, *, payable: str = "500.00", status: str = "Delivered"
) -> str:
    trip_id = unique("T")
    record = {
        "Id": trip_id,
        "TripNumber": f"TR-{trip_id}",
        "LoadNumber": load_number,
        "Status": status,
        "CarrierPayable": {"Amount": payable, "Currency": 840},
    }
    response = http.post(f"{CONTROLS}/trips", json=record)
    assert response.status_code == 201, response.text
    return trip_id


def customer_body(load: str, amount: Any, reference: Any, **extra: Any) -> dict[str, Any]:
    body = {
        "LoadNumber": load,
        "Amount": {"Amount": amount, "Currency": 840},
        "PaymentDate": "2026-07-20T10:00:00Z",
        "ReferenceNumber": reference,
    }
    return {**body, **extra}


def carrier_body(trip: str, amount: Any, reference: str, **extra: Any) -> dict[str, Any]:
    body = {
        "TripId": trip,
        "Amount": {"Amount": amount, "Currency": 840},
        "PaymentDate": "2026-07-21T09:30:00Z",
        "ReferenceNumber": reference,
        "PaymentMethod": "ACH",
    }
    return {**body, **extra}


def post_customer(api: httpx.Client, body: Any, **kwargs: Any) -> httpx.Response:
    return api.post(f"{API}/invoices/customer-payments", json=body, **kwargs)


def post_carrier(api: httpx.Client, body: Any, **kwargs: Any) -> httpx.Response:
    return api.post(f"{API}/invoices/carrier-payments", json=body, **kwargs)


def get_invoice(api: httpx.Client, **params: str) -> httpx.Response:
    return api.get(f"{API}/invoices", params=params)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """A .NET ProblemDetails of ``status`` with Alvys's content type; returns the body."""
    assert response.status_code == status, response.text
    expected = "application/problem+json" if status in (401, 403, 429) else "application/json"
    assert response.headers["content-type"].split(";")[0] == expected
    body: dict[str, Any] = response.json()
    assert body["Status"] == status
    assert body["Type"] and body["Title"]
    assert body["Instance"] == response.request.url.path
    validate_against("Microsoft.AspNetCore.Mvc.ProblemDetails", body)
    if status == 400 and "Errors" in body:
        validate_against("Microsoft.AspNetCore.Mvc.ValidationProblemDetails", body)
    return body


def errors_of(response: httpx.Response) -> dict[str, list[str]]:
    body = assert_problem(response, 400)
    errors: dict[str, list[str]] = body["Errors"]
    return errors


def postings(http: httpx.Client, reference: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = http.get(f"{CONTROLS}/postings", params={"reference": reference}).json()
    return rows


# ----- auth ----------------------------------------------------------------------------------------


def test_token_from_json_and_form_bodies(http: httpx.Client) -> None:
    for response in (
        http.post("/alvys/oauth/token", json=CREDENTIALS),
        http.post("/alvys/oauth/token", data=CREDENTIALS),
    ):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 3600
        assert len(body["access_token"]) >= 32
        assert "invoice:update" in body["scope"].split()


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"client_secret": "wrong"}, 401),
        ({"client_id": "nobody"}, 401),
        ({"audience": "https://example.com/"}, 403),
        ({"grant_type": "password"}, 400),
        ({"client_secret": ""}, 400),
    ],
)
def test_token_refused(http: httpx.Client, change: dict[str, str], status: int) -> None:
    response = http.post("/alvys/oauth/token", json={**CREDENTIALS, **change})
    assert_problem(response, status)
    assert "access_token" not in response.json()


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer not-a-token", "Basic c2FuZGJveA=="])
def test_api_requires_a_valid_bearer_token(http: httpx.Client, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    calls = [
        http.post(f"{API}/invoices/customer-payments", json=customer_body("L-1001", 1, "X"), headers=headers),
        http.post(f"{API}/invoices/carrier-payments", json=carrier_body("T-1001", 1, "X"), headers=headers),
        http.get(f"{API}/invoices", params={"invoiceNumber": "INV-1001"}, headers=headers),
        http.post("/alvys/api/p/v2.0/loads/search", json=SEARCH, headers=headers),
        http.post(f"{API}/trips/search", json=SEARCH, headers=headers),
    ]
    for response in calls:
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert http.get(f"{CONTROLS}/postings", params={"reference": "X"}).json() == []


def test_payment_needs_the_invoice_update_scope(base_url: str, http: httpx.Client) -> None:
    token = http.post("/alvys/oauth/token", json={**CREDENTIALS, "scope": "invoice:read"}).json()[
        "access_token"
    ]
    headers = {"Authorization": f"Bearer {token}"}
    load = new_load(http)
    assert_problem(
        http.post(f"{API}/invoices/customer-payments", json=customer_body(load, 1, "R"), headers=headers), 403
    )
    assert (
        http.get(f"{API}/invoices", params={"invoiceNumber": f"INV-{load}"}, headers=headers).status_code
        == 200
    )


def test_tokens_expire_after_their_ttl() -> None:
    with serve_app(create_app(token_ttl_seconds=1)) as url, httpx.Client(base_url=url) as client:
        token = client.post("/alvys/oauth/token", json=CREDENTIALS).json()
        assert token["expires_in"] == 1
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert client.post(f"{API}/trips/search", json=SEARCH, headers=headers).status_code == 200
        time.sleep(1.2)
        response = client.post(f"{API}/trips/search", json=SEARCH, headers=headers)
        assert_problem(response, 401)
        assert "invalid_token" in response.headers["www-authenticate"]


def test_control_expires_every_token() -> None:
    with serve_app(create_app()) as url, httpx.Client(base_url=url) as client:
        headers = {
            "Authorization": f"Bearer {client.post('/alvys/oauth/token', json=CREDENTIALS).json()['access_token']}"
        }
        assert client.post(f"{API}/trips/search", json=SEARCH, headers=headers).status_code == 200
        assert client.post(f"{CONTROLS}/tokens/expire").json() == {"expired": 1}
        assert_problem(client.post(f"{API}/trips/search", json=SEARCH, headers=headers), 401)
        fresh = client.post("/alvys/oauth/token", json=CREDENTIALS).json()["access_token"]
        fresh_headers = {"Authorization": f"Bearer {fresh}"}
        assert client.post(f"{API}/trips/search", json=SEARCH, headers=fresh_headers).status_code == 200


# ----- versions and content types ---------------------------------------------------------------------


def test_versions(api: httpx.Client) -> None:
    assert api.post("/alvys/api/p/v1/trips/search", json=SEARCH).status_code == 200
    assert api.post("/alvys/api/p/v1.0/loads/search", json=SEARCH).status_code == 200
    assert api.post("/alvys/api/p/v2.0/loads/search", json=SEARCH).status_code == 200
    assert api.get("/alvys/api/p/v1/invoices", params={"invoiceNumber": "INV-1001"}).status_code == 200
    assert "version" in errors_of(api.post("/alvys/api/p/v3.0/loads/search", json=SEARCH))
    body = customer_body("L-NONE", 1, "R")
    assert "version" in errors_of(api.post("/alvys/api/p/v2.0/invoices/customer-payments", json=body))


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json-patch+json",
        "application/json",
        "text/json",
        "application/merge-patch+json",
        "application/json; charset=utf-8",
    ],
)
def test_json_bodies_accepted_under_every_listed_content_type(api: httpx.Client, content_type: str) -> None:
    headers = {"Content-Type": content_type}
    body = json.dumps(customer_body("L-DOES-NOT-EXIST", 1, "R"))
    assert_problem(api.post(f"{API}/invoices/customer-payments", content=body, headers=headers), 404)
    search = api.post(f"{API}/trips/search", content=json.dumps(SEARCH), headers=headers)
    assert search.status_code == 200, search.text


def test_other_content_types_are_refused(api: httpx.Client) -> None:
    body = json.dumps(customer_body("L-1001", 1, "R"))
    assert_problem(
        api.post(f"{API}/invoices/customer-payments", content=body, headers={"Content-Type": "text/plain"}),
        415,
    )
    assert_problem(api.post(f"{API}/trips/search", data={"Page": "0"}), 415)


def test_empty_and_malformed_bodies(api: httpx.Client) -> None:
    headers = {"Content-Type": "application/json"}
    assert "" in errors_of(api.post(f"{API}/invoices/customer-payments", content=b"", headers=headers))
    assert "$" in errors_of(api.post(f"{API}/invoices/customer-payments", content=b"{", headers=headers))
    nan = b'{"LoadNumber": "L-1001", "Amount": {"Amount": NaN}}'
    assert "$" in errors_of(api.post(f"{API}/invoices/customer-payments", content=nan, headers=headers))


# ----- request validation agrees with the spec ----------------------------------------------------------

_CP = customer_body("L-DOES-NOT-EXIST", Decimal("10.50"), "REF-SCHEMA")
_CARRIER = carrier_body("T-DOES-NOT-EXIST", Decimal("10.50"), "REF-SCHEMA")


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


CUSTOMER_VARIANTS: list[tuple[str, Any]] = [
    ("valid", _CP),
    ("currency null", {**_CP, "Amount": {"Amount": 10, "Currency": None}}),
    ("currency omitted", {**_CP, "Amount": {"Amount": 10}}),
    (
        "optional members null",
        {**_CP, "InvoiceNumber": None, "PaymentMethod": None, "CheckNumber": None, "Note": None},
    ),
    (
        "optional members set",
        {**_CP, "InvoiceNumber": "I", "PaymentMethod": "Check", "CheckNumber": "1", "Note": "n"},
    ),
    ("MarkAsPaid", {**_CP, "MarkAsPaid": True}),
    ("unknown member", {**_CP, "Foo": "bar"}),
    ("unknown Money member", {**_CP, "Amount": {"Amount": 10, "Currency": 840, "Code": "USD"}}),
    ("amount as string", {**_CP, "Amount": {"Amount": "10.50", "Currency": 840}}),
    ("amount as bool", {**_CP, "Amount": {"Amount": True, "Currency": 840}}),
    ("amount missing", {**_CP, "Amount": {"Currency": 840}}),
    ("currency as string", {**_CP, "Amount": {"Amount": 10, "Currency": "840"}}),
    ("currency fractional", {**_CP, "Amount": {"Amount": 10, "Currency": 840.5}}),
    ("Amount null", {**_CP, "Amount": None}),
    ("Amount a number", {**_CP, "Amount": 10}),
    ("LoadNumber a number", {**_CP, "LoadNumber": 1001}),
    ("PaymentDate a number", {**_CP, "PaymentDate": 20260720}),
    ("PaymentDate not a date", {**_CP, "PaymentDate": "yesterday"}),
    ("ReferenceNumber null", {**_CP, "ReferenceNumber": None}),
    ("Note a number", {**_CP, "Note": 5}),
    ("body a list", [_CP]),
    *[
        (f"missing {key}", _without(_CP, key))
        for key in ("LoadNumber", "Amount", "PaymentDate", "ReferenceNumber")
    ],
]
CARRIER_VARIANTS: list[tuple[str, Any]] = [
    ("valid", _CARRIER),
    ("MarkAsPaid", {**_CARRIER, "MarkAsPaid": True}),
    ("InvoiceNumber is not a carrier member", {**_CARRIER, "InvoiceNumber": "I"}),
    ("TripId a number", {**_CARRIER, "TripId": 7}),
    ("CheckNumber null", {**_CARRIER, "CheckNumber": None}),
    *[
        (f"missing {key}", _without(_CARRIER, key))
        for key in ("TripId", "Amount", "PaymentDate", "ReferenceNumber")
    ],
]
SEARCH_VARIANTS: list[tuple[str, Any]] = [
    ("minimal", SEARCH),
    ("filters", {**SEARCH, "LoadNumbers": ["L-1"], "Status": ["Invoiced"]}),
    ("null filters", {**SEARCH, "LoadNumbers": None, "Status": None}),
    ("date range", {**SEARCH, "UpdatedAtRange": {"Start": "2026-01-01T00:00:00Z", "End": None}}),
    ("date range without Start", {**SEARCH, "UpdatedAtRange": {"End": "2026-01-01T00:00:00Z"}}),
    ("filter not a list", {**SEARCH, "LoadNumbers": "L-1"}),
    ("filter of numbers", {**SEARCH, "LoadNumbers": [1]}),
    ("unknown member", {**SEARCH, "Foo": 1}),
    ("IncludeDeleted a string", {**SEARCH, "IncludeDeleted": "false"}),
    *[(f"missing {key}", _without(SEARCH, key)) for key in ("Page", "PageSize", "IncludeDeleted")],
]


def _as_json(value: Any) -> Any:
    """What goes on the wire, as the validator sees it (Decimal -> JSON number -> float)."""
    return json.loads(json.dumps(value, default=float))


@pytest.mark.parametrize(("name", "body"), CUSTOMER_VARIANTS, ids=[n for n, _ in CUSTOMER_VARIANTS])
def test_customer_payment_validation_agrees_with_the_spec(api: httpx.Client, name: str, body: Any) -> None:
    wire = _as_json(body)
    spec_ok = not schema_errors("CustomerPaymentRequest", wire)
    response = post_customer(api, wire)
    assert response.status_code == (404 if spec_ok else 400), (name, response.text)
    assert_problem(response, response.status_code)


@pytest.mark.parametrize(("name", "body"), CARRIER_VARIANTS, ids=[n for n, _ in CARRIER_VARIANTS])
def test_carrier_payment_validation_agrees_with_the_spec(api: httpx.Client, name: str, body: Any) -> None:
    wire = _as_json(body)
    spec_ok = not schema_errors("CarrierPaymentRequest", wire)
    response = post_carrier(api, wire)
    assert response.status_code == (404 if spec_ok else 400), (name, response.text)


@pytest.mark.parametrize(("name", "body"), SEARCH_VARIANTS, ids=[n for n, _ in SEARCH_VARIANTS])
def test_search_validation_agrees_with_the_spec(api: httpx.Client, name: str, body: Any) -> None:
    for schema, path in (
        ("LoadSearchRequest", "/alvys/api/p/v2.0/loads/search"),
        ("TripSearchRequest", f"{API}/trips/search"),
    ):
        spec_ok = not schema_errors(schema, body)
        response = api.post(path, json=body)
        assert response.status_code == (200 if spec_ok else 400), (name, schema, response.text)


def test_required_members_are_named_in_errors(api: httpx.Client) -> None:
    errors = errors_of(post_customer(api, {"Amount": {"Currency": 840}}))
    assert errors["LoadNumber"] == ["The LoadNumber field is required."]
    assert errors["ReferenceNumber"] == ["The ReferenceNumber field is required."]
    assert errors["PaymentDate"] == ["The PaymentDate field is required."]
    assert errors["Amount.Amount"] == ["The Amount field is required."]
    assert "Page" in errors_of(api.post(f"{API}/trips/search", json=_without(SEARCH, "Page")))


# ----- customer payments ----------------------------------------------------------------------------


def test_customer_payment_unknown_load_is_404(api: httpx.Client) -> None:
    body = assert_problem(post_customer(api, customer_body("L-NO-SUCH", 10, "R-404")), 404)
    assert "L-NO-SUCH" in body["Detail"]


@pytest.mark.parametrize("amount", [0, -5, Decimal("-0.01")])
def test_customer_payment_amount_must_be_positive(api: httpx.Client, amount: Any) -> None:
    errors = errors_of(post_customer(api, _as_json(customer_body("L-1001", amount, "R-ZERO"))))
    assert errors["Amount.Amount"] == ["Amount must be greater than zero."]


@pytest.mark.parametrize("reference", ["", "   ", None])
def test_customer_payment_reference_is_required(api: httpx.Client, reference: str | None) -> None:
    errors = errors_of(post_customer(api, customer_body("L-1001", 10, reference)))
    assert errors["ReferenceNumber"] == ["The ReferenceNumber field is required."]


def test_customer_payment_refused_unless_load_payable(api: httpx.Client, http: httpx.Client) -> None:
    errors = errors_of(post_customer(api, customer_body("L-1002", 10, unique("R"))))  # demo: Dispatched
    assert ["Load must be in one of: Invoiced, Completed, Financed."] in errors.values()
    for status in ("Delivered", "Paid", "Cancelled"):
        load = new_load(http, status=status)
        assert post_customer(api, customer_body(load, 10, "R")).status_code == 400
    for status in ("Invoiced", "Completed", "Financed"):
        load = new_load(http, status=status)
        assert post_customer(api, customer_body(load, 10, "R")).status_code == 200


def test_customer_payment_currency_must_match_the_load(api: httpx.Client, http: httpx.Client) -> None:
    errors = errors_of(post_customer(api, customer_body("L-1004", 10, unique("R"))))  # demo: CAD load
    assert "Amount.Currency" in errors
    cad = new_load(http, currency=124, amount="2500.00")
    body = customer_body(cad, 100, "R-CAD")
    body["Amount"]["Currency"] = 124
    response = post_customer(api, body)
    assert response.status_code == 200, response.text
    assert response.json()["TotalPaid"] == {"Amount": 100, "Currency": 124}
    assert "Amount.Currency" in errors_of(
        post_customer(api, {**body, "Amount": {"Amount": 1, "Currency": 484}, "ReferenceNumber": "R-MXN"})
    )


@pytest.mark.parametrize("currency", [None, 0])
def test_customer_payment_null_or_zero_currency_means_usd(
    api: httpx.Client, http: httpx.Client, currency: int | None
) -> None:
    load = new_load(http)
    response = post_customer(
        api, {**customer_body(load, 5, "R"), "Amount": {"Amount": 5, "Currency": currency}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["TotalPaid"]["Currency"] == 840


def test_customer_payment_records_and_is_idempotent(api: httpx.Client, http: httpx.Client) -> None:
    load = new_load(http, amount="1000.00")
    first = post_customer(
        api, customer_body(load, 400, "CHK-1001", CheckNumber="1001", PaymentMethod="Check")
    )
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("application/json")
    body = first.json()
    validate_against("CustomerPaymentResponse", body)
    assert body["LoadNumber"] == load and body["Status"] == "Invoiced"
    assert exact(first)["TotalPaid"] == {"Amount": Decimal("400.00"), "Currency": 840}
    assert exact(first)["TotalBillable"] == {"Amount": Decimal("1000.00"), "Currency": 840}

    again = post_customer(
        api, customer_body(load, 400, "CHK-1001", CheckNumber="1001", PaymentMethod="Check")
    )
    assert again.status_code == 200
    assert again.json() == body  # same Id, same totals: nothing new recorded

    second = post_customer(api, customer_body(load, 600, "CHK-1002"))
    assert second.json()["Id"] != body["Id"]
    assert exact(second)["TotalPaid"]["Amount"] == Decimal("1000.00")

    rows = [
        row
        for row in http.get(f"{CONTROLS}/postings", params={"kind": "customer"}).json()
        if row["load_number"] == load
    ]
    assert [(r["reference"], r["amount"], r["currency"], r["post_count"]) for r in rows] == [
        ("CHK-1001", "400", 840, 2),
        ("CHK-1002", "600", 840, 1),
    ]
    assert rows[0]["id"] == body["Id"]

    # paidAt / totalPaid / payments[] on the load
    loads = api.post("/alvys/api/p/v2.0/loads/search", json={**SEARCH, "LoadNumbers": [load]})
    validate_against(PAGED_LOADS, loads.json())
    (item,) = exact(loads)["Items"]
    assert item["TotalPaid"] == {"Amount": Decimal("1000.00"), "Currency": 840}
    assert [p["Id"] for p in item["Payments"]] == [body["Id"], second.json()["Id"]]
    assert item["PaidAt"] is not None


def test_same_reference_on_another_load_is_another_payment(api: httpx.Client, http: httpx.Client) -> None:
    reference = unique("CHK")
    first, second = new_load(http), new_load(http)
    a = post_customer(api, customer_body(first, 10, reference)).json()
    b = post_customer(api, customer_body(second, 10, reference)).json()
    assert a["Id"] != b["Id"]
    assert len(postings(http, reference)) == 2


def test_repeat_is_answered_even_after_the_load_left_payable_status(
    api: httpx.Client, http: httpx.Client
) -> None:
    load = new_load(http)
    first = post_customer(api, customer_body(load, 10, "R-1")).json()
    assert http.post(f"{CONTROLS}/loads/{load}/status", json={"Status": "Paid"}).status_code == 200
    again = post_customer(api, customer_body(load, 10, "R-1"))
    assert again.status_code == 200
    assert again.json()["Id"] == first["Id"] and again.json()["Status"] == "Paid"
    assert post_customer(api, customer_body(load, 10, "R-2")).status_code == 400


def test_concurrent_repeats_record_one_payment(base_url: str, api: httpx.Client, http: httpx.Client) -> None:
    load = new_load(http)
    reference = unique("CHK")
    answers: list[dict[str, Any]] = []

    def post() -> None:
        with httpx.Client(base_url=base_url, headers=dict(api.headers), timeout=10) as client:
            answers.append(post_customer(client, customer_body(load, 25, reference)).json())

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({answer["Id"] for answer in answers}) == 1
    (row,) = postings(http, reference)
    assert row["post_count"] == 8


def test_amounts_are_exact_decimal_numbers(api: httpx.Client, http: httpx.Client) -> None:
    load = new_load(http, amount="1.00")
    headers = {"Content-Type": "application/json"}
    for amount, reference in (("0.1", "R-A"), ("0.2", "R-B")):
        raw = json.dumps(customer_body(load, 0, reference)).replace('"Amount": 0,', f'"Amount": {amount},')
        response = api.post(f"{API}/invoices/customer-payments", content=raw, headers=headers)
        assert response.status_code == 200, response.text
    assert '"TotalPaid":{"Amount":0.30,"Currency":840}' in response.text.replace(" ", "")
    assert exact(response)["TotalPaid"]["Amount"] == Decimal("0.30")


def test_captured_customer_payment_shape(api: httpx.Client, http: httpx.Client) -> None:
    load = new_load(http)
    assert http.post(f"{CONTROLS}/options", json={"customer_payment_shape": "captured"}).status_code == 200
    try:
        first = post_customer(
            api, customer_body(load, 100, "CHK-7", InvoiceNumber=f"INV-{load}", CheckNumber="7")
        )
        assert first.status_code == 200, first.text
        body = first.json()
        assert set(body) == {"LoadNumber", "Status", "CustomerPayments"}
        assert body["LoadNumber"] == load and body["Status"] == "Invoiced"
        (payment,) = body["CustomerPayments"]
        assert set(payment) == {
            "Id",
            "Amount",
            "PaymentDate",
            "ReferenceNumber",
            "InvoiceNumber",
            "PaymentMethod",
            "CheckNumber",
        }
        assert payment["Amount"] == {"Amount": 100, "Currency": 840}
        assert payment["ReferenceNumber"] == "CHK-7" and payment["InvoiceNumber"] == f"INV-{load}"
        validate_against("Alvys.Money", payment["Amount"])
        assert post_customer(api, customer_body(load, 100, "CHK-7")).json() == body  # idempotent here too
        second = post_customer(api, customer_body(load, 50, "CHK-8")).json()
        assert [p["ReferenceNumber"] for p in second["CustomerPayments"]] == ["CHK-7", "CHK-8"]
    finally:
        http.post(f"{CONTROLS}/options", json={"customer_payment_shape": "current"})
    validate_against("CustomerPaymentResponse", post_customer(api, customer_body(load, 1, "CHK-9")).json())


# ----- carrier payments -----------------------------------------------------------------------------


def test_carrier_payment_unknown_trip_is_404(api: httpx.Client) -> None:
    assert_problem(post_carrier(api, carrier_body("T-NO-SUCH", 10, "R")), 404)


@pytest.mark.parametrize("amount", [0, -1])
def test_carrier_payment_amount_must_be_positive(api: httpx.Client, amount: int) -> None:
    errors = errors_of(post_carrier(api, carrier_body("T-1001", amount, "R")))
    assert errors["Amount.Amount"] == ["Amount must be greater than zero."]


def test_seed_carrier_request_with_mark_as_paid_is_refused(api: httpx.Client) -> None:
    """The capture's example body still carries MarkAsPaid, removed 2026-07-13; the schema forbids it."""
    seed = {
        "TripId": "T-1001",
        "Amount": {"Amount": 382.53, "Currency": 840},
        "PaymentDate": "2026-03-16T13:48:19.920Z",
        "ReferenceNumber": "string",
        "PaymentMethod": "string",
        "CheckNumber": "string",
        "Note": "string",
        "MarkAsPaid": True,
    }
    assert "$.MarkAsPaid" in errors_of(post_carrier(api, seed))
    assert schema_errors("CarrierPaymentRequest", seed)


def test_trip_completes_once_payments_cover_the_payable(api: httpx.Client, http: httpx.Client) -> None:
    load = new_load(http)
    trip = new_trip(http, load, payable="500.00")

    partial = post_carrier(api, carrier_body(trip, 200, "ACH-1", CheckNumber=None))
    assert partial.status_code == 200, partial.text
    body = partial.json()
    validate_against("CarrierPaymentResponse", body)
    assert body["TripId"] == trip and body["TripNumber"] == f"TR-{trip}"
    assert body["Status"] == "Delivered"  # partial: unchanged
    (first,) = body["CarrierPayments"]
    assert first["ReferenceNumber"] == "ACH-1" and first["PaymentMethod"] == "ACH"
    assert first["PaymentDate"] == "2026-07-21T09:30:00Z"

    assert post_carrier(api, carrier_body(trip, 200, "ACH-1")).json() == body  # repeat: nothing new

    covering = post_carrier(api, carrier_body(trip, 300.0, "ACH-2"))
    body = covering.json()
    validate_against("CarrierPaymentResponse", body)
    assert body["Status"] == "Completed"
    assert [p["ReferenceNumber"] for p in body["CarrierPayments"]] == ["ACH-1", "ACH-2"]
    assert body["CarrierPayments"][0]["Id"] == first["Id"]

    trips = api.post(f"{API}/trips/search", json={**SEARCH, "TripNumbers": [f"TR-{trip}"]})
    validate_against(PAGED_TRIPS, trips.json())
    (item,) = trips.json()["Items"]
    assert item["Status"] == "Completed" and item["CarrierPaidAt"] is not None

    rows = [
        row
        for row in http.get(f"{CONTROLS}/postings", params={"kind": "carrier"}).json()
        if row["trip_id"] == trip
    ]
    assert [(r["reference"], r["amount"], r["post_count"], r["load_number"]) for r in rows] == [
        ("ACH-1", "200", 2, load),
        ("ACH-2", "300.0", 1, load),
    ]


def test_carrier_payment_currency_must_match_the_trip(api: httpx.Client) -> None:
    errors = errors_of(post_carrier(api, carrier_body("T-1004", 10, unique("R"))))  # demo: CAD trip
    assert "Amount.Currency" in errors


# ----- invoices --------------------------------------------------------------------------------------


def test_invoice_follows_the_payments_on_its_load(api: httpx.Client, http: httpx.Client) -> None:
    load = new_load(http, amount="1000.00", po="PO-INV-TEST")
    number = f"INV-{load}"
    before = get_invoice(api, invoiceNumber=number)
    assert before.status_code == 200, before.text
    body = before.json()
    validate_against("InvoiceResponse", body)
    assert body["Number"] == number and body["Status"] == "AwaitingPayment"
    assert exact(before)["RemainingBalance"]["Amount"] == Decimal("1000.00")
    assert body["Payments"] == [] and body["PaidDate"] is None
    assert body["Loads"][0]["LoadNumber"] == load and body["Loads"][0]["PONumber"] == "PO-INV-TEST"

    payment = post_customer(api, customer_body(load, 400, "CHK-1", CheckNumber="1")).json()
    partial = get_invoice(api, invoiceNumber=number)
    validate_against("InvoiceResponse", partial.json())
    values = exact(partial)
    assert values["Status"] == "AwaitingPayment"
    assert values["AmountPaid"]["Amount"] == Decimal("400.00")
    assert values["RemainingBalance"]["Amount"] == Decimal("600.00")
    assert [(p["Id"], p["PaymentReference"], p["CheckNumber"]) for p in values["Payments"]] == [
        (payment["Id"], "CHK-1", "1")
    ]

    post_customer(api, {**customer_body(load, 600, "CHK-2"), "PaymentDate": "2026-07-25T12:00:00Z"})
    paid = get_invoice(api, id=body["Id"])
    validate_against("InvoiceResponse", paid.json())
    values = exact(paid)
    assert values["Status"] == "Paid"
    assert values["PaidDate"] == "2026-07-25T12:00:00Z"
    assert values["AmountPaid"]["Amount"] == Decimal("1000.00")
    assert values["RemainingBalance"]["Amount"] == 0 and values["OverPaymentAmount"]["Amount"] == 0


def test_invoice_over_two_loads(api: httpx.Client) -> None:
    """Demo INV-3100 covers L-3101 and L-3102 (500.00 each)."""
    response = get_invoice(api, invoiceNumber="INV-3100")
    validate_against("InvoiceResponse", response.json())
    body = exact(response)
    assert body["Total"]["Amount"] == Decimal("1000.00")
    assert [load["LoadNumber"] for load in body["Loads"]] == ["L-3101", "L-3102"]
    assert {load["PONumber"] for load in body["Loads"]} == {"PO-3100"}


def test_invoice_errors(api: httpx.Client) -> None:
    assert_problem(get_invoice(api), 400)
    assert_problem(get_invoice(api, invoiceNumber=""), 400)
    assert_problem(get_invoice(api, invoiceNumber="INV-NOPE"), 404)
    assert_problem(get_invoice(api, id="0" * 32), 404)


def test_invoice_in_camel_case(api: httpx.Client, http: httpx.Client) -> None:
    load = new_load(http, po="PO-CAMEL")
    post_customer(api, customer_body(load, 10, "CHK-C"))
    assert http.post(f"{CONTROLS}/options", json={"invoice_case": "camel"}).json()["invoice_case"] == "camel"
    try:
        body = get_invoice(api, invoiceNumber=f"INV-{load}").json()
    finally:
        http.post(f"{CONTROLS}/options", json={"invoice_case": "pascal"})
    assert {
        "id",
        "number",
        "status",
        "total",
        "amountPaid",
        "remainingBalance",
        "overPaymentAmount",
        "loads",
        "payments",
    } <= set(body)
    assert not any(key[0].isupper() for key in body)
    assert body["loads"][0]["loadNumber"] == load and body["loads"][0]["poNumber"] == "PO-CAMEL"
    assert body["payments"][0]["paymentReference"] == "CHK-C"
    assert body["amountPaid"] == {"amount": 10, "currency": 840}
    assert "Id" in get_invoice(api, invoiceNumber=f"INV-{load}").json()


def test_demo_invoice_inv_1001(api: httpx.Client) -> None:
    body = exact(get_invoice(api, invoiceNumber="INV-1001"))
    assert body["Id"] == "15fd1695595a48a48163490e3f21ddd6"
    assert body["Total"] == {"Amount": Decimal("382.53"), "Currency": 840}
    assert body["Loads"][0]["LoadNumber"] == "L-1001" and body["Loads"][0]["PONumber"] == "26714518"
    assert get_invoice(api, id="15fd1695595a48a48163490e3f21ddd6").json()["Number"] == "INV-1001"


# ----- searches --------------------------------------------------------------------------------------


def search_loads(api: httpx.Client, **filters: Any) -> dict[str, Any]:
    response = api.post("/alvys/api/p/v2.0/loads/search", json={**SEARCH, **filters})
    assert response.status_code == 200, response.text
    validate_against(PAGED_LOADS, response.json())
    body: dict[str, Any] = exact(response)
    return body


def search_trips(api: httpx.Client, **filters: Any) -> dict[str, Any]:
    response = api.post(f"{API}/trips/search", json={**SEARCH, **filters})
    assert response.status_code == 200, response.text
    validate_against(PAGED_TRIPS, response.json())
    body: dict[str, Any] = exact(response)
    return body


def test_loads_search_by_po_resolves_the_mycarrier_sample(api: httpx.Client) -> None:
    body = search_loads(api, PONumbers=["26714518"])
    assert body["Total"] == 1
    (load,) = body["Items"]
    assert (load["LoadNumber"], load["Status"], load["PONumber"]) == ("L-1001", "Invoiced", "26714518")
    assert load["CustomerRate"] == {"Amount": Decimal("382.53"), "Currency": 840}
    assert load["InvoicedAmount"] == {"Amount": Decimal("382.53"), "Currency": 840}


def test_loads_search_filters(api: httpx.Client) -> None:
    assert [i["LoadNumber"] for i in search_loads(api, PONumbers=["PO-3100"])["Items"]] == [
        "L-3101",
        "L-3102",
    ]
    assert search_loads(api, PONumbers=["PO-9999"]) == {"Page": 0, "PageSize": 50, "Total": 0, "Items": []}
    assert [i["LoadNumber"] for i in search_loads(api, OrderNumbers=["ORD-1003"])["Items"]] == ["L-1003"]
    assert [i["LoadNumber"] for i in search_loads(api, LoadNumbers=["L-2001"])["Items"]] == ["L-2001"]
    dispatched = search_loads(api, Status=["Dispatched"])["Items"]
    assert "L-1002" in [i["LoadNumber"] for i in dispatched]
    assert {i["Status"] for i in dispatched} == {"Dispatched"}
    both = search_loads(api, LoadNumbers=["L-1001", "L-1002"], Status=["invoiced"])["Items"]
    assert [i["LoadNumber"] for i in both] == ["L-1001"]


def test_loads_search_pages(api: httpx.Client) -> None:
    pages = [search_loads(api, PONumbers=["PO-3100"], Page=page, PageSize=1) for page in (0, 1, 2)]
    assert [p["Total"] for p in pages] == [2, 2, 2]
    assert [[i["LoadNumber"] for i in p["Items"]] for p in pages] == [["L-3101"], ["L-3102"], []]
    assert "PageSize" in errors_of(api.post(f"{API}/trips/search", json={**SEARCH, "PageSize": 0}))
    assert "Page" in errors_of(api.post(f"{API}/trips/search", json={**SEARCH, "Page": -1}))


def test_trips_search_filters(api: httpx.Client) -> None:
    two = search_trips(api, LoadNumbers=["L-3001"])
    assert [(t["Id"], t["TripNumber"]) for t in two["Items"]] == [
        ("T-3001", "TR-3001"),
        ("T-3002", "TR-3002"),
    ]
    (trip,) = search_trips(api, TripNumbers=["TR-1001"])["Items"]
    assert (trip["Id"], trip["LoadNumber"], trip["Status"]) == ("T-1001", "L-1001", "Delivered")
    assert trip["Carrier"]["TotalPayable"] == {"Amount": Decimal("382.53"), "Currency": 840}
    dispatched = search_trips(api, Status=["Dispatched"])["Items"]
    assert "T-1002" in [t["Id"] for t in dispatched]
    assert {t["Status"] for t in dispatched} == {"Dispatched"}


def test_demo_data(api: httpx.Client) -> None:
    loads = {i["LoadNumber"]: i for i in search_loads(api, PageSize=100)["Items"]}
    expected = {
        "L-1001": ("Invoiced", "382.53", 840),
        "L-1002": ("Dispatched", "1450.00", 840),
        "L-1003": ("Completed", "1000.00", 840),
        "L-1004": ("Invoiced", "2500.00", 124),
        "L-1005": ("Financed", "750.00", 840),
        "L-2001": ("Invoiced", "25000.00", 840),
    }
    for number, (status, amount, currency) in expected.items():
        assert loads[number]["Status"] == status
        assert loads[number]["CustomerRate"] == {"Amount": Decimal(amount), "Currency": currency}
    trip_ids = [t["Id"] for t in search_trips(api, LoadNumbers=["L-1002"])["Items"]]
    assert trip_ids == ["T-1002"]


# ----- controls ------------------------------------------------------------------------------------


def test_status_controls(api: httpx.Client, http: httpx.Client) -> None:
    load = new_load(http, status="Dispatched")
    assert post_customer(api, customer_body(load, 10, "R")).status_code == 400
    assert (
        http.post(f"{CONTROLS}/loads/{load}/status", json={"Status": "invoiced"}).json()["Status"]
        == "Invoiced"
    )
    assert post_customer(api, customer_body(load, 10, "R")).status_code == 200

    trip = new_trip(http, load)
    assert (
        http.post(f"{CONTROLS}/trips/{trip}/status", json={"Status": "InTransit"}).json()["Status"]
        == "In Transit"
    )
    assert http.get(f"{CONTROLS}/trips/{trip}").json()["Status"] == "In Transit"
    assert http.post(f"{CONTROLS}/loads/{load}/status", json={"Status": "Bogus"}).status_code == 400
    assert http.post(f"{CONTROLS}/loads/L-NOPE/status", json={"Status": "Invoiced"}).status_code == 404
    assert http.post(f"{CONTROLS}/trips/T-NOPE/status", json={"Status": "Delivered"}).status_code == 404


def test_add_record_controls(http: httpx.Client) -> None:
    load = new_load(http)
    duplicate = {"LoadNumber": load, "Status": "Invoiced", "Billable": "1.00"}
    assert http.post(f"{CONTROLS}/loads", json=duplicate).status_code == 409
    assert (
        http.post(f"{CONTROLS}/loads", json={"LoadNumber": unique("L"), "Status": "Invoiced"}).status_code
        == 400
    )
    orphan = {
        "Id": unique("T"),
        "TripNumber": "X",
        "LoadNumber": "L-NOPE",
        "Status": "Open",
        "CarrierPayable": "1",
    }
    assert http.post(f"{CONTROLS}/trips", json=orphan).status_code == 400
    invoice = {"Number": unique("INV"), "LoadNumbers": [load]}
    assert http.post(f"{CONTROLS}/invoices", json=invoice).status_code == 201
    assert http.get(f"{CONTROLS}/loads/{load}").json()["LoadNumber"] == load


def test_request_counts(api: httpx.Client, http: httpx.Client) -> None:
    before = http.get(f"{CONTROLS}/requests").json()
    assert set(before) == {endpoint.value for endpoint in AlvysEndpoint}
    get_invoice(api, invoiceNumber="INV-1001")
    get_invoice(api, invoiceNumber="INV-NOPE")
    post_customer(api, customer_body("L-NOPE", 1, "R"))
    after = http.get(f"{CONTROLS}/requests").json()
    assert after["invoices"] - before["invoices"] == 2
    assert after["invoices/customer-payments"] - before["invoices/customer-payments"] == 1
    assert after["trips/search"] == before["trips/search"]


def test_options_control_validates(http: httpx.Client) -> None:
    assert http.post(f"{CONTROLS}/options", json={"invoice_case": "snake"}).status_code == 422
    assert http.post(f"{CONTROLS}/options", json={"nope": 1}).status_code == 422
    assert http.get(f"{CONTROLS}/options").json() == {
        "customer_payment_shape": "current",
        "invoice_case": "pascal",
        "token_ttl_seconds": 3600.0,
    }


def test_reset_returns_to_the_demo_data() -> None:
    app = create_app()
    with serve_app(app) as url, httpx.Client(base_url=url) as client:
        token = client.post("/alvys/oauth/token", json=CREDENTIALS).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        assert post_customer(client, customer_body("L-1001", 382.53, "CHK-R")).status_code == 200
        client.post(f"{CONTROLS}/options", json={"invoice_case": "camel"})
        client.post(f"{CONTROLS}/loads/L-1002/status", json={"Status": "Invoiced"})
        assert len(client.get(f"{CONTROLS}/postings").json()) == 1

        assert client.post("/_sandbox/reset").json() == {"reset": ["alvys", "transportone"]}
        assert client.get(f"{CONTROLS}/postings").json() == []
        assert client.get(f"{CONTROLS}/loads/L-1002").json()["Status"] == "Dispatched"
        invoice = get_invoice(client, invoiceNumber="INV-1001").json()  # token survived the reset
        assert invoice["Status"] == "AwaitingPayment" and invoice["Payments"] == []
        assert client.get(f"{CONTROLS}/requests").json()["invoices"] == 1
        assert app.state.alvys.options.invoice_case == "pascal"


def test_healthz(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok", "vendors": ["alvys", "transportone"]}


def test_hooks_can_answer_for_an_endpoint(app: FastAPI, api: httpx.Client, http: httpx.Client) -> None:
    """The extension point for fault injection: a hook answers 429 and the payment is never recorded."""
    seen: list[str] = []

    async def too_many(endpoint: str, request: Request, call_next: Any) -> Response:
        seen.append(endpoint)
        if endpoint == AlvysEndpoint.CUSTOMER_PAYMENTS:
            return problem_response(
                429, "Rate limit exceeded.", instance=request.url.path, headers={"Retry-After": "60"}
            )
        response: Response = await call_next()
        return response

    load = new_load(http)
    app.state.alvys.hooks.append(too_many)
    try:
        limited = post_customer(api, customer_body(load, 10, "R-429"))
        passed = get_invoice(api, invoiceNumber=f"INV-{load}")
    finally:
        app.state.alvys.hooks.remove(too_many)
    assert_problem(limited, 429)
    assert limited.headers["retry-after"] == "60"
    assert passed.status_code == 200
    assert seen == ["invoices/customer-payments", "invoices"]
    assert postings(http, "R-429") == []


def test_sandbox_imports_nothing_from_freightpay() -> None:
    allowed = set(sys.stdlib_module_names) | {
        "fastapi",
        "pydantic",
        "uvicorn",
        "starlette",
        "httpx",
        "sandbox",
    }
    for path in (Path(__file__).parents[1] / "sandbox").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
