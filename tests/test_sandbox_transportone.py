"""The TransportOne sandbox over real HTTP on loopback, checked against OS1's published page.

Why: the sandbox stands in for OS1 in every other test and in demos, so it must answer as OS1
documents (headers, body fields, error bodies, idempotency on ``x-coreos-request-id``), and
where OS1 publishes nothing (404 for an unknown invoice, the callback body, retries of the
callback) as ``sandbox/transportone.py`` documents. Mutating tests add their own invoices
(unique numbers) through the controls, so they never depend on each other's order. Callbacks go
to a small FastAPI receiver served on loopback too.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from sandbox.transportone import (
    DEMO_ACCESS_KEY,
    DEMO_CALLBACK_SECRET,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    TransportOneSandbox,
    os1_error_response,
    transportone_controls_router,
    transportone_router,
)
from tests.support.servers import serve_app
from vendors.jsonbody import dumps

AUTH = "/transportone/core/api/v1/aaa/auth/client-credentials"
PAYMENTS = "/transportone/tms/api/v1/billing/payments"
CONTROLS = "/_sandbox/transportone"
CREDENTIALS = {"clientId": DEMO_CLIENT_ID, "clientSecret": DEMO_CLIENT_SECRET}
#: The OS1 payments page's sample body, verbatim (but for the callback URL);
#: see docs/vendors.md#transportone-record-payments.
SEED_BODY = (
    '{ "data": { "payments": [ { "paymentId": "cqprpbik", "invoiceNumber": "INV2025040403", '
    '"paymentType": "cash", "totalAmount": 208, "paymentDate": 1757116800000, "appliedAmount": 208, '
    '"referenceNumber": "UTR123456" } ] }, "callback": { "url": "https://webhook.site/your-endpoint" } }'
)


# ----- a callback receiver ------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    name: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body, parse_float=Decimal)


class CallbackReceiver:
    """Receives callbacks at ``POST /callbacks/{name}``; answers planned statuses, then 200."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._plans: dict[str, list[int]] = {}
        self.base_url = ""

    def plan(self, name: str, *statuses: int) -> None:
        with self._lock:
            self._plans[name] = list(statuses)

    def url(self, name: str) -> str:
        return f"{self.base_url}/callbacks/{name}"

    def of(self, name: str) -> list[Received]:
        with self._lock:
            return [r for r in self._received if r.name == name]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/callbacks/{name}")
        async def receive(name: str, request: Request) -> Response:
            body = await request.body()
            with self._lock:
                self._received.append(Received(name, dict(request.headers), body))
                plan = self._plans.get(name)
                status = plan.pop(0) if plan else 200
            return Response(status_code=status)

        return app


def wait_for(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll ``check`` until it returns something truthy (or fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


# ----- fixtures and helpers -----------------------------------------------------------------------


def sandbox_app(state: TransportOneSandbox) -> FastAPI:
    """The sandbox app as the lead mounts it."""
    app = FastAPI()
    app.include_router(transportone_router(state), prefix="/transportone")
    app.include_router(transportone_controls_router(state), prefix="/_sandbox/transportone")
    app.state.transportone = state
    return app


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


@pytest.fixture(scope="module")
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


@pytest.fixture
def token(http: httpx.Client) -> str:
    """A fresh token per test (one test expires every token issued so far)."""
    response = http.post(AUTH, json=CREDENTIALS, headers={"x-coreos-request-id": str(uuid.uuid4())})
    assert response.status_code == 200, response.text
    value: str = response.json()["data"]["accessToken"]
    return value


@pytest.fixture(autouse=True)
def default_options(http: httpx.Client) -> Iterator[None]:
    yield
    http.post(
        f"{CONTROLS}/options",
        json={
            "callback_enabled": True,
            "callback_secret": DEMO_CALLBACK_SECRET,
            "callback_attempts": 3,
            "callback_on_replay": True,
            "minimal_response": False,
            "callback_delay_seconds": 0.05,
        },
    ).raise_for_status()


def exact(response: httpx.Response) -> Any:
    return json.loads(response.text, parse_float=Decimal)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def new_invoice(http: httpx.Client, total: str = "1000.00", currency: str = "USD") -> str:
    number = unique("INV")
    response = http.post(
        f"{CONTROLS}/invoices", json={"invoiceNumber": number, "total": total, "currency": currency}
    )
    assert response.status_code == 201, response.text
    return number


def entry(invoice: str, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "paymentId": unique("pay"),
        "invoiceNumber": invoice,
        "paymentType": "cash",
        "totalAmount": Decimal("100.00"),
        "paymentDate": 1757116800000,
        "appliedAmount": Decimal("100.00"),
        "referenceNumber": unique("UTR"),
    }
    return {**fields, **overrides}


def body_of(*entries: dict[str, Any], callback: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"data": {"payments": list(entries)}}
    if callback:
        body["callback"] = {"url": callback}
    return body


def headers(token: str, request_id: str | None = None, **overrides: str | None) -> dict[str, str]:
    values: dict[str, str | None] = {
        "Authorization": f"Bearer {token}",
        "x-coreos-access": DEMO_ACCESS_KEY,
        "x-coreos-tid": DEMO_TENANT_ID,
        "x-coreos-request-id": request_id or str(uuid.uuid4()),
        "Content-Type": "application/json",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def post(
    http: httpx.Client, token: str, body: Any, request_id: str | None = None, **header_overrides: str | None
) -> httpx.Response:
    content = body if isinstance(body, bytes | str) else dumps(body)
    return http.post(PAYMENTS, content=content, headers=headers(token, request_id, **header_overrides))


def assert_os1_error(response: httpx.Response, status: int, *fragments: str) -> str:
    """An OS1 error body of ``status`` whose message contains every fragment; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == status
    message: str = body["error"]["message"]
    for fragment in fragments:
        assert fragment in message, message
    return message


def invoice(http: httpx.Client, number: str) -> dict[str, Any]:
    response = http.get(f"{CONTROLS}/invoices/{number}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def postings(http: httpx.Client, **params: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = http.get(f"{CONTROLS}/postings", params=params).json()
    return rows


# ----- auth ---------------------------------------------------------------------------------------


def test_auth_answers_a_token(http: httpx.Client) -> None:
    response = http.post(AUTH, json=CREDENTIALS, headers={"x-coreos-request-id": str(uuid.uuid4())})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["data"]["expiresIn"] == 86400
    assert len(body["data"]["accessToken"]) >= 32


@pytest.mark.parametrize(
    ("kwargs", "status", "fragment"),
    [
        ({"json": {**CREDENTIALS, "clientSecret": "wrong"}}, 401, "invalid client credentials"),
        ({"json": {**CREDENTIALS, "clientId": "other"}}, 401, "invalid client credentials"),
        ({"json": {"clientId": DEMO_CLIENT_ID}}, 400, "clientSecret"),
        ({"json": {**CREDENTIALS, "clientId": 5}}, 400, "clientId"),
        ({"json": ["x"]}, 400, "JSON object"),
        ({"content": b"{nope", "headers": {"Content-Type": "application/json"}}, 400, "not valid JSON"),
        ({"data": CREDENTIALS}, 400, "Content-Type"),
    ],
)
def test_auth_refusals(http: httpx.Client, kwargs: dict[str, Any], status: int, fragment: str) -> None:
    extra = kwargs.pop("headers", {})
    response = http.post(AUTH, headers={"x-coreos-request-id": str(uuid.uuid4()), **extra}, **kwargs)
    assert_os1_error(response, status, fragment)


@pytest.mark.parametrize(("value", "fragment"), [(None, "is required"), ("not-a-uuid", "must be a UUID")])
def test_auth_needs_a_request_id(http: httpx.Client, value: str | None, fragment: str) -> None:
    extra = {"x-coreos-request-id": value} if value else {}
    response = http.post(AUTH, json=CREDENTIALS, headers=extra)
    assert_os1_error(response, 400, "x-coreos-request-id", fragment)


# ----- headers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "status", "fragment"),
    [
        ({"Authorization": None}, 401, "Authorization"),
        ({"Authorization": "Basic abc"}, 401, "Authorization"),
        ({"Authorization": "Bearer not-a-token"}, 401, "invalid access token"),
        ({"x-coreos-access": None}, 401, "x-coreos-access header is required"),
        ({"x-coreos-access": "wrong"}, 401, "invalid x-coreos-access"),
        ({"x-coreos-tid": None}, 400, "x-coreos-tid header is required"),
        ({"x-coreos-tid": "other-tenant"}, 401, "x-coreos-tid"),
        ({"x-coreos-request-id": None}, 400, "x-coreos-request-id header is required"),
        ({"x-coreos-request-id": "12345"}, 400, "x-coreos-request-id header must be a UUID"),
        ({"Content-Type": "text/plain"}, 400, "Content-Type"),
    ],
)
def test_every_header_is_checked(
    http: httpx.Client, token: str, overrides: dict[str, str | None], status: int, fragment: str
) -> None:
    number = new_invoice(http)
    response = post(http, token, body_of(entry(number)), **overrides)
    assert_os1_error(response, status, fragment)
    assert postings(http, invoice=number) == []


def test_expired_tokens_are_refused(http: httpx.Client) -> None:
    fresh = http.post(AUTH, json=CREDENTIALS, headers={"x-coreos-request-id": str(uuid.uuid4())}).json()
    old = fresh["data"]["accessToken"]
    assert http.post(f"{CONTROLS}/tokens/expire").json()["expired"] >= 1
    number = new_invoice(http)
    assert_os1_error(post(http, old, body_of(entry(number))), 401, "expired")


# ----- body ---------------------------------------------------------------------------------------


FIELDS = (
    "paymentId",
    "invoiceNumber",
    "paymentType",
    "totalAmount",
    "paymentDate",
    "appliedAmount",
    "referenceNumber",
)


@pytest.mark.parametrize("name", FIELDS)
def test_missing_field(http: httpx.Client, token: str, name: str) -> None:
    item = entry(new_invoice(http))
    del item[name]
    assert_os1_error(post(http, token, body_of(item)), 400, f"data.payments[0].{name}: is required")


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("paymentId", 123, "must be a string"),
        ("paymentId", "  ", "must not be empty"),
        ("invoiceNumber", ["INV"], "must be a string"),
        ("referenceNumber", "", "must not be empty"),
        ("totalAmount", "208", "must be a number"),
        ("totalAmount", True, "must be a number"),
        ("totalAmount", Decimal("-1.00"), "must be greater than zero"),
        ("appliedAmount", 0, "must be greater than zero"),
        ("appliedAmount", Decimal("100.01"), "must not exceed totalAmount"),
        ("paymentType", "cheque", "must be one of cash, dn, bank transfer"),
        ("paymentType", 1, "must be a string"),
        ("paymentDate", "2025-09-06", "must be an integer"),
        ("paymentDate", Decimal("1757116800000.5"), "must be an integer"),
        ("paymentDate", -5, "must be a positive"),
        ("paymentDate", 10**20, "must be a positive"),
    ],
)
def test_bad_field(http: httpx.Client, token: str, name: str, value: Any, fragment: str) -> None:
    number = new_invoice(http)
    response = post(http, token, body_of(entry(number, **{name: value})))
    assert_os1_error(response, 400, f"data.payments[0].{name}: {fragment}")
    assert postings(http, invoice=number) == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([], "JSON object"),
        ({}, "data: is required"),
        ({"data": {}}, "data.payments: is required"),
        ({"data": {"payments": []}}, "at least one payment"),
        ({"data": {"payments": ["x"]}}, "data.payments[0]: must be an object"),
        ({"data": {"payments": [{}] * 101}}, "at most 100"),
    ],
)
def test_bad_body_shape(http: httpx.Client, token: str, body: Any, fragment: str) -> None:
    assert_os1_error(post(http, token, body), 400, fragment)


def test_not_json(http: httpx.Client, token: str) -> None:
    assert_os1_error(post(http, token, b"{nope"), 400, "not valid JSON")
    assert_os1_error(post(http, token, b'{"a": NaN}'), 400, "not valid JSON")


def test_every_error_is_named_and_nothing_is_recorded(http: httpx.Client, token: str) -> None:
    number = new_invoice(http)
    good = entry(number)
    bad = entry(number, paymentType="wire", appliedAmount=Decimal("0"))
    dup = entry(number, paymentId=good["paymentId"])
    response = post(http, token, body_of(good, bad, dup, callback="ftp://x"))
    message = assert_os1_error(response, 400)
    assert "data.payments[1].paymentType" in message and "data.payments[1].appliedAmount" in message
    assert "data.payments[2].paymentId: duplicate" in message and "callback.url" in message
    assert postings(http, invoice=number) == []


@pytest.mark.parametrize("payment_type", ["cash", "dn", "bank transfer", "Bank  Transfer", "CASH"])
def test_payment_types(http: httpx.Client, token: str, payment_type: str) -> None:
    number = new_invoice(http)
    response = post(http, token, body_of(entry(number, paymentType=payment_type)))
    assert response.status_code == 200, response.text
    (row,) = postings(http, invoice=number)
    assert row["payment_type"] == " ".join(payment_type.lower().split())


def test_unknown_invoice_is_404(http: httpx.Client, token: str) -> None:
    known = new_invoice(http)
    response = post(http, token, body_of(entry(known), entry("INV-NOPE-1")))
    assert_os1_error(response, 404, "invoice not found: INV-NOPE-1")
    assert postings(http, invoice=known) == []  # all or nothing


def test_overpayment_and_decimals_are_refused(http: httpx.Client, token: str) -> None:
    number = new_invoice(http, total="150.00")
    over = entry(number, totalAmount=Decimal("200.00"), appliedAmount=Decimal("150.01"))
    assert_os1_error(
        post(http, token, body_of(over)), 400, "appliedAmount: exceeds the open balance 150.00 USD"
    )
    two = [entry(number, appliedAmount=Decimal("100.00")), entry(number, appliedAmount=Decimal("50.01"))]
    assert_os1_error(post(http, token, body_of(*two)), 400, "data.payments[1].appliedAmount: exceeds")
    cents = entry(number, totalAmount=Decimal("10.001"), appliedAmount=Decimal("10.001"))
    message = assert_os1_error(post(http, token, body_of(cents)), 400, "more than 2 decimals for USD")
    assert "totalAmount" in message and "appliedAmount" in message
    assert postings(http, invoice=number) == []


# ----- recording, statuses, idempotency -----------------------------------------------------------


def test_seed_sample_body(http: httpx.Client, token: str) -> None:
    assert http.post(f"{CONTROLS}/reset").json() == {"reset": "transportone"}
    assert invoice(http, "INV2025040403")["status"] == "OPEN"
    response = post(http, token, SEED_BODY.replace("webhook.site", "127.0.0.1:9"))
    assert response.status_code == 200, response.text
    body = exact(response)
    assert body["success"] is True and body["message"] == "payment recorded successfully"
    (status,) = body["data"]["payments"]
    assert status["paymentId"] == "cqprpbik" and status["invoiceStatus"] == "PAID"
    assert '"appliedAmount":208.00' in response.text and '"invoiceBalance":0.00' in response.text
    assert invoice(http, "INV2025040403")["status"] == "PAID"
    (row,) = postings(http, reference="UTR123456")
    assert row["applied_amount"] == "208.00" and row["total_amount"] == "208.00"
    assert row["currency"] == "INR" and row["payment_date_iso"] == "2025-09-06T00:00:00.000Z"


def test_status_progression(http: httpx.Client, token: str) -> None:
    number = new_invoice(http, total="1500.00")
    assert invoice(http, number) | {"payments": []} == {
        "invoiceNumber": number,
        "total": "1500.00",
        "currency": "USD",
        "paidAmount": "0.00",
        "balance": "1500.00",
        "status": "OPEN",
        "payments": [],
    }
    first = post(
        http, token, body_of(entry(number, totalAmount=Decimal("2000.00"), appliedAmount=Decimal("500.5")))
    )
    assert first.status_code == 200, first.text
    (status,) = exact(first)["data"]["payments"]
    assert status["invoiceStatus"] == "PARTIALLY_PAID"
    assert status["appliedAmount"] == Decimal("500.50") and status["invoicePaidAmount"] == Decimal("500.50")
    assert status["invoiceBalance"] == Decimal("999.50") and status["status"] == "RECORDED"
    assert invoice(http, number)["status"] == "PARTIALLY_PAID"

    second = post(
        http, token, body_of(entry(number, totalAmount=Decimal("999.50"), appliedAmount=Decimal("999.50")))
    )
    assert second.status_code == 200, second.text
    assert exact(second)["data"]["payments"][0]["invoiceStatus"] == "PAID"
    after = invoice(http, number)
    assert (after["status"], after["paidAmount"], after["balance"]) == ("PAID", "1500.00", "0.00")
    assert [p["applied_amount"] for p in after["payments"]] == ["500.50", "999.50"]


def test_same_request_id_same_body_is_replayed(http: httpx.Client, token: str) -> None:
    number = new_invoice(http)
    request_id = str(uuid.uuid4())
    body = body_of(entry(number))
    first = post(http, token, body, request_id)
    assert first.status_code == 200, first.text
    # the same JSON written differently (key order, 100 vs 100.00) is the same body
    item = body["data"]["payments"][0]
    reordered = {"data": {"payments": [{**dict(reversed(list(item.items()))), "totalAmount": 100}]}}
    again = post(http, token, reordered, request_id.upper())
    assert again.status_code == 200, again.text
    assert again.content == first.content
    (row,) = postings(http, invoice=number)
    assert row["post_count"] == 2 and row["request_id"] == request_id
    assert invoice(http, number)["paidAmount"] == "100.00"


def test_same_request_id_other_body_is_409(http: httpx.Client, token: str) -> None:
    number = new_invoice(http)
    request_id = str(uuid.uuid4())
    item = entry(number)
    assert post(http, token, body_of(item), request_id).status_code == 200
    other = post(http, token, body_of({**item, "appliedAmount": Decimal("50.00")}), request_id)
    assert_os1_error(other, 409, request_id, "different request body")
    invalid = post(http, token, {"data": {}}, request_id)
    assert_os1_error(invalid, 409)
    (row,) = postings(http, invoice=number)
    assert row["post_count"] == 1


def test_a_refused_request_id_can_be_used_again(http: httpx.Client, token: str) -> None:
    number = new_invoice(http)
    request_id = str(uuid.uuid4())
    assert_os1_error(post(http, token, body_of(entry(number, paymentType="wire")), request_id), 400)
    assert_os1_error(post(http, token, body_of(entry("INV-NOPE-2")), request_id), 404)
    assert post(http, token, body_of(entry(number)), request_id).status_code == 200


def test_a_new_request_id_records_again(http: httpx.Client, token: str) -> None:
    number = new_invoice(http)
    item = entry(number)
    assert post(http, token, body_of(item)).status_code == 200
    assert post(http, token, body_of(item)).status_code == 200
    assert [row["post_count"] for row in postings(http, payment_id=item["paymentId"])] == [1, 1]
    assert invoice(http, number)["paidAmount"] == "200.00"


def test_minimal_response_option(http: httpx.Client, token: str) -> None:
    http.post(f"{CONTROLS}/options", json={"minimal_response": True}).raise_for_status()
    response = post(http, token, body_of(entry(new_invoice(http))))
    assert response.status_code == 200 and response.json() == {
        "success": True,
        "message": "payment recorded successfully",
    }


def test_request_counts(http: httpx.Client, token: str) -> None:
    before = http.get(f"{CONTROLS}/requests").json()
    post(http, token, body_of(entry(new_invoice(http))))
    post(http, token, {}, **{"x-coreos-tid": None})
    http.post(AUTH, json=CREDENTIALS, headers={"x-coreos-request-id": str(uuid.uuid4())})
    after = http.get(f"{CONTROLS}/requests").json()
    assert after["billing/payments"] == before["billing/payments"] + 2
    assert after["auth/client-credentials"] == before["auth/client-credentials"] + 1


def test_hooks_run_around_endpoints(http: httpx.Client, token: str, state: TransportOneSandbox) -> None:
    async def unavailable(endpoint: str, request: Request, call_next: Any) -> Response:
        if endpoint == "billing/payments":
            return os1_error_response(503, "maintenance", headers={"Retry-After": "7"})
        response: Response = await call_next()
        return response

    state.hooks.append(unavailable)
    try:
        number = new_invoice(http)
        response = post(http, token, body_of(entry(number)))
        assert_os1_error(response, 503, "maintenance")
        assert response.headers["retry-after"] == "7"
        assert postings(http, invoice=number) == []
    finally:
        state.hooks.remove(unavailable)


# ----- callbacks ----------------------------------------------------------------------------------


def attempts(http: httpx.Client, request_id: str, count: int) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        rows: list[dict[str, Any]] = http.get(
            f"{CONTROLS}/callbacks", params={"request_id": request_id}
        ).json()
        return rows if len(rows) >= count else None

    result: list[dict[str, Any]] = wait_for(check)
    return result


def test_callback_is_delivered_with_the_secret(
    http: httpx.Client, token: str, receiver: CallbackReceiver
) -> None:
    number = new_invoice(http, total="980.00")
    name = unique("cb")
    request_id = str(uuid.uuid4())
    item = entry(number, totalAmount=Decimal("980.00"), appliedAmount=Decimal("980.00"))
    response = post(http, token, body_of(item, callback=receiver.url(name)), request_id)
    assert response.status_code == 200, response.text

    (delivery,) = wait_for(lambda: receiver.of(name))
    assert delivery.headers["x-tms-callback-secret"] == DEMO_CALLBACK_SECRET
    assert delivery.headers["content-type"] == "application/json"
    callback = delivery.json()
    assert callback["event"] == "billing.payment.recorded"
    assert callback["requestId"] == request_id and callback["tenantId"] == DEMO_TENANT_ID
    assert callback["success"] is True and isinstance(callback["occurredAt"], int)
    uuid.UUID(callback["eventId"])
    (status,) = callback["data"]["payments"]
    assert status == {
        "paymentId": item["paymentId"],
        "invoiceNumber": number,
        "referenceNumber": item["referenceNumber"],
        "paymentType": "cash",
        "status": "RECORDED",
        "appliedAmount": Decimal("980.00"),
        "totalAmount": Decimal("980.00"),
        "currency": "USD",
        "invoiceTotal": Decimal("980.00"),
        "invoicePaidAmount": Decimal("980.00"),
        "invoiceBalance": Decimal("0.00"),
        "invoiceStatus": "PAID",
    }
    assert b'"appliedAmount":980.00' in delivery.body
    (attempt,) = attempts(http, request_id, 1)
    assert attempt["delivered"] is True and attempt["status_code"] == 200 and attempt["attempt"] == 1
    assert attempt["secret_sent"] is True and attempt["url"] == receiver.url(name)


def test_callback_is_retried_until_200_or_202(
    http: httpx.Client, token: str, receiver: CallbackReceiver
) -> None:
    name = unique("cb")
    receiver.plan(name, 500, 503, 202)
    request_id = str(uuid.uuid4())
    post(
        http, token, body_of(entry(new_invoice(http)), callback=receiver.url(name)), request_id
    ).raise_for_status()
    rows = attempts(http, request_id, 3)
    assert [(r["attempt"], r["status_code"], r["delivered"]) for r in rows] == [
        (1, 500, False),
        (2, 503, False),
        (3, 202, True),
    ]
    bodies = {r.body for r in receiver.of(name)}
    assert len(bodies) == 1  # the same body on every attempt


def test_callback_gives_up_after_the_attempts(
    http: httpx.Client, token: str, receiver: CallbackReceiver
) -> None:
    name = unique("cb")
    receiver.plan(name, 500, 500, 500, 500)
    request_id = str(uuid.uuid4())
    post(
        http, token, body_of(entry(new_invoice(http)), callback=receiver.url(name)), request_id
    ).raise_for_status()
    rows = attempts(http, request_id, 3)
    time.sleep(0.5)
    rows = http.get(f"{CONTROLS}/callbacks", params={"request_id": request_id}).json()
    assert [(r["status_code"], r["delivered"]) for r in rows] == [(500, False)] * 3
    assert len(receiver.of(name)) == 3


def test_callback_transport_errors_are_recorded(http: httpx.Client, token: str) -> None:
    http.post(f"{CONTROLS}/options", json={"callback_attempts": 2}).raise_for_status()
    request_id = str(uuid.uuid4())
    body = body_of(entry(new_invoice(http)), callback="http://127.0.0.1:9/nothing-listens")
    post(http, token, body, request_id).raise_for_status()
    rows = attempts(http, request_id, 2)
    assert all(r["status_code"] is None and r["error"] and not r["delivered"] for r in rows)


def test_callback_options(http: httpx.Client, token: str, receiver: CallbackReceiver) -> None:
    http.post(f"{CONTROLS}/options", json={"callback_enabled": False}).raise_for_status()
    off = unique("cb")
    post(http, token, body_of(entry(new_invoice(http)), callback=receiver.url(off))).raise_for_status()

    options = http.post(
        f"{CONTROLS}/options", json={"callback_enabled": True, "callback_secret": "rotated"}
    ).json()
    assert options["callback_secret"] == "rotated" and options["callback_enabled"] is True
    on = unique("cb")
    post(http, token, body_of(entry(new_invoice(http)), callback=receiver.url(on))).raise_for_status()
    (delivery,) = wait_for(lambda: receiver.of(on))
    assert delivery.headers["x-tms-callback-secret"] == "rotated"

    http.post(f"{CONTROLS}/options", json={"callback_secret": ""}).raise_for_status()
    bare = unique("cb")
    post(http, token, body_of(entry(new_invoice(http)), callback=receiver.url(bare))).raise_for_status()
    (delivery,) = wait_for(lambda: receiver.of(bare))
    assert "x-tms-callback-secret" not in delivery.headers
    assert receiver.of(off) == []
    assert_bad = http.post(f"{CONTROLS}/options", json={"callback_attempts": 0})
    assert assert_bad.status_code == 422


def test_replay_resends_the_same_callback(http: httpx.Client, token: str, receiver: CallbackReceiver) -> None:
    name = unique("cb")
    request_id = str(uuid.uuid4())
    body = body_of(entry(new_invoice(http)), callback=receiver.url(name))
    post(http, token, body, request_id).raise_for_status()
    wait_for(lambda: receiver.of(name))
    post(http, token, body, request_id).raise_for_status()
    first, second = wait_for(lambda: receiver.of(name) if len(receiver.of(name)) == 2 else None)
    assert first.body == second.body

    http.post(f"{CONTROLS}/options", json={"callback_on_replay": False}).raise_for_status()
    post(http, token, body, request_id).raise_for_status()
    time.sleep(0.3)
    assert len(receiver.of(name)) == 2


# ----- controls and construction ------------------------------------------------------------------


def test_invoice_controls(http: httpx.Client) -> None:
    number = new_invoice(http, total="25", currency="inr")
    assert invoice(http, number)["total"] == "25.00" and invoice(http, number)["currency"] == "INR"
    again = http.post(f"{CONTROLS}/invoices", json={"invoiceNumber": number, "total": "1"})
    assert again.status_code == 409
    for bad in (
        {"invoiceNumber": unique("INV"), "total": "1", "currency": "XXX"},
        {"invoiceNumber": unique("INV"), "total": "-1"},
        {"invoiceNumber": unique("INV"), "total": "1.001", "currency": "USD"},
        {"invoiceNumber": unique("INV"), "total": "abc"},
    ):
        assert http.post(f"{CONTROLS}/invoices", json=bad).status_code == 400, bad
    assert http.get(f"{CONTROLS}/invoices/NOPE").status_code == 404
    assert http.get(f"{CONTROLS}/options").json()["callback_attempts"] == 3


def test_from_demo_files(tmp_path: Path) -> None:
    demo = TransportOneSandbox.from_demo()
    assert demo.invoices["INV2025040403"].total == Decimal("208.00")
    assert demo.invoices["INV-T1-1001"].currency == "USD" and demo.tenant_id == DEMO_TENANT_ID
    assert {"INV-T1-1002", "INV2025040404"} <= set(demo.invoices)

    other_vendors = tmp_path / "combined.json"
    other_vendors.write_text(json.dumps({"alvys": {"loads": []}}))
    assert set(TransportOneSandbox.from_demo(other_vendors).invoices) == set(demo.invoices)

    own = tmp_path / "own.json"
    section = {
        "credentials": {"tenantId": "acme", "callbackSecret": "s"},
        "invoices": [{"invoiceNumber": "X-1", "total": 10, "currency": "JPY"}],
    }
    own.write_text(json.dumps({"alvys": {}, "transportone": section}))
    built = TransportOneSandbox.from_demo(own, tenant_id="override")
    assert set(built.invoices) == {"X-1"} and built.tenant_id == "override"
    assert built.options.callback_secret == "s"
    own.write_text(json.dumps(section))
    assert set(TransportOneSandbox.from_demo(own).invoices) == {"X-1"}
    assert "secret" not in repr(built).lower()


def test_reset_restores_demo_data() -> None:
    state = TransportOneSandbox({"invoices": [{"invoiceNumber": "A", "total": "5.00", "currency": "USD"}]})
    state.add_invoice({"invoiceNumber": "B", "total": "1"})
    state.set_options(callback_enabled=False)
    answer, _ = state.record_payments(
        str(uuid.uuid4()), {"data": {"payments": [entry("A", totalAmount=5, appliedAmount=Decimal("5.00"))]}}
    )
    assert answer["data"]["payments"][0]["invoiceStatus"] == "PAID"
    state.reset()
    assert set(state.invoices) == {"A"} and state.invoices["A"].status().value == "OPEN"
    assert state.postings() == [] and state.options.callback_enabled is True
