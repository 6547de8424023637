"""The TransportOne client's own reading and writing of HTTP, against ``httpx.MockTransport``.

These tests pin down the exact bytes and headers the client sends, how it reads both the
published minimal answer and the sandbox's richer one, OS1 error bodies, Retry-After, and how
it caches and renews its token (same request id on the retry). Behaviour against a live server
is in ``test_transportone_e2e_client.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest

from models.money import Money
from vendors.transportone import (
    AUTH_PATH,
    PAYMENTS_PATH,
    REQUEST_ID_NAMESPACE,
    TransportOneClient,
    TransportOneError,
    TransportOnePayment,
    TransportOneProblem,
    TransportOneResponseError,
    callback_secret_matches,
    parse_callback,
    parse_retry_after,
    payment_date_ms,
)

BASE = "https://acme.sandbox.getos1.test"
SECRET = "s3cr3t-client-secret-value"
ACCESS_KEY = "access-key-that-is-secret"
TENANT = "acme"
REQUEST_ID = uuid.UUID("0b1d6a52-0a34-4c55-9a3e-7d7f8f2e6c11")
MINIMAL = {"success": True, "message": "payment recorded successfully"}

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeOS1:
    """Issues numbered tokens at the auth path and hands API requests to ``api``."""

    def __init__(self, api: Handler, *, expires_in: int | None = 86400, token_delay: float = 0.0) -> None:
        self.api = api
        self.expires_in = expires_in
        self.token_delay = token_delay
        self.token_requests: list[httpx.Request] = []
        self.api_requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == AUTH_PATH:
            self.token_requests.append(request)
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            data: dict[str, Any] = {"accessToken": f"tok-{len(self.token_requests)}"}
            if self.expires_in is not None:
                data["expiresIn"] = self.expires_in
            return httpx.Response(200, json={"success": True, "data": data})
        self.api_requests.append(request)
        answer = self.api(request)
        return await answer if isinstance(answer, Awaitable) else answer


def make_client(fake: FakeOS1, clock: Clock | None = None, **kwargs: Any) -> TransportOneClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    return TransportOneClient(
        http,
        base_url=kwargs.pop("base_url", BASE),
        client_id="freightpay-test",
        client_secret=SECRET,
        access_key=ACCESS_KEY,
        tenant_id=TENANT,
        clock=clock or Clock(),
        **kwargs,
    )


def answer(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    return lambda request: httpx.Response(status, json=payload, headers=headers)


def os1_error(status: int, message: str, headers: dict[str, str] | None = None) -> Handler:
    return answer({"success": False, "error": {"code": status, "message": message}}, status, headers)


def payment(**overrides: Any) -> TransportOnePayment:
    fields: dict[str, Any] = {
        "payment_id": "cqprpbik",
        "invoice_number": "INV2025040403",
        "payment_type": "cash",
        "total_amount": Money.of("208", "INR"),
        "applied_amount": Money.of("208", "INR"),
        "payment_date": datetime(2025, 9, 6, tzinfo=UTC),
        "reference_number": "UTR123456",
    }
    return TransportOnePayment(**(fields | overrides))


async def record(client: TransportOneClient, *payments: TransportOnePayment, **kwargs: Any) -> Any:
    return await client.record_payments(
        list(payments) or [payment()],
        request_id=kwargs.pop("request_id", REQUEST_ID),
        callback_url=kwargs.pop("callback_url", "https://hooks.example.test/t1"),
    )


# ---- requests: bytes, headers, dates ---------------------------------------------------------


async def test_request_bytes_and_headers() -> None:
    fake = FakeOS1(answer(MINIMAL))
    await record(make_client(fake))

    (request,) = fake.api_requests
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}{PAYMENTS_PATH}"
    assert request.content == (
        b'{"data":{"payments":[{"paymentId":"cqprpbik","invoiceNumber":"INV2025040403",'
        b'"paymentType":"cash","totalAmount":208.00,"paymentDate":1757116800000,'
        b'"appliedAmount":208.00,"referenceNumber":"UTR123456"}]},'
        b'"callback":{"url":"https://hooks.example.test/t1"}}'
    )
    assert request.headers["authorization"] == "Bearer tok-1"
    assert request.headers["x-coreos-access"] == ACCESS_KEY
    assert request.headers["x-coreos-tid"] == TENANT
    assert request.headers["x-coreos-request-id"] == str(REQUEST_ID)
    assert request.headers["content-type"] == "application/json"


async def test_exact_decimal_amounts_and_no_callback() -> None:
    fake = FakeOS1(answer(MINIMAL))
    big = payment(
        total_amount=Money.of("12345678901234.57", "USD"),
        applied_amount=Money.of("0.30", "USD"),
        payment_type="bank transfer",
    )
    await record(make_client(fake), big, callback_url=None)

    content = fake.api_requests[0].content
    assert b'"totalAmount":12345678901234.57' in content
    assert b'"appliedAmount":0.30' in content
    assert b'"paymentType":"bank transfer"' in content
    assert b"callback" not in content
    entry = json.loads(content, parse_float=Decimal)["data"]["payments"][0]
    assert entry["totalAmount"] == Decimal("12345678901234.57")


async def test_several_payments_in_one_call() -> None:
    fake = FakeOS1(answer(MINIMAL))
    await record(make_client(fake), payment(), payment(payment_id="second", invoice_number="INV-2"))
    entries = json.loads(fake.api_requests[0].content)["data"]["payments"]
    assert [e["paymentId"] for e in entries] == ["cqprpbik", "second"]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2025, 9, 6, tzinfo=UTC), 1757116800000),  # the OS1 payments page's sample
        (datetime(2025, 9, 6), 1757116800000),  # naive is UTC
        (datetime(2025, 9, 6, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))), 1757116800000),
        (datetime(2025, 9, 6, 0, 0, 0, 123999, tzinfo=UTC), 1757116800123),  # sub-ms floored
        (datetime(1970, 1, 1, tzinfo=UTC), 0),
    ],
)
def test_payment_date_ms(moment: datetime, expected: int) -> None:
    assert payment_date_ms(moment) == expected
    wire = payment(payment_date=moment).to_wire()
    assert wire["paymentDate"] == expected and type(wire["paymentDate"]) is int


def test_payment_model_checks() -> None:
    with pytest.raises(ValueError, match="same currency"):
        payment(applied_amount=Money.of("208", "USD"))
    with pytest.raises(ValueError):
        payment(payment_id="  ")
    with pytest.raises(ValueError):
        payment(extra_field="x")
    stripped = payment(invoice_number="  INV-9 ", reference_number=" UTR1 ")
    assert (stripped.invoice_number, stripped.reference_number) == ("INV-9", "UTR1")
    assert payment().to_wire()["totalAmount"] == Decimal("208.00")


async def test_no_payments_is_refused_before_any_call() -> None:
    fake = FakeOS1(answer(MINIMAL))
    with pytest.raises(ValueError):
        await make_client(fake).record_payments([], request_id=REQUEST_ID, callback_url=None)
    assert fake.token_requests == [] and fake.api_requests == []


def test_request_id_for_is_stable() -> None:
    key = "payment-transportone-INV2025040403-cqprpbik"
    first = TransportOneClient.request_id_for(key)
    assert first == TransportOneClient.request_id_for(key)
    assert first == TransportOneClient.request_id_for(f"  {key} ")
    assert first == uuid.uuid5(REQUEST_ID_NAMESPACE, key)
    # pinned: changing the namespace would re-key payments already posted
    assert first == uuid.UUID("ea6183e5-81ca-5976-aad9-cfc646c36e1b")
    assert first.version == 5
    assert TransportOneClient.request_id_for(key + "x") != first
    with pytest.raises(ValueError):
        TransportOneClient.request_id_for(" ")


# ---- answers ---------------------------------------------------------------------------------


async def test_minimal_published_answer() -> None:
    result = await record(make_client(FakeOS1(answer(MINIMAL))))
    assert result.success is True
    assert result.message == "payment recorded successfully"
    assert result.request_id == REQUEST_ID
    assert result.payments == [] and result.data is None
    assert result.find("cqprpbik") is None


async def test_answer_with_data() -> None:
    body = (
        b'{"success":true,"message":"payment recorded successfully","data":{"requestId":"x",'
        b'"payments":[{"paymentId":"cqprpbik","invoiceNumber":"INV2025040403","referenceNumber":"UTR123456",'
        b'"status":"RECORDED","appliedAmount":208.00,"totalAmount":208,"currency":"inr",'
        b'"invoiceTotal":208.00,"invoicePaidAmount":208.00,"invoiceBalance":0.00,'
        b'"invoiceStatus":"PAID","somethingNew":{"a":1}},'
        b'{"paymentId":7,"invoiceTotal":100.10,"invoicePaidAmount":0.1}]}}'
    )
    fake = FakeOS1(lambda request: httpx.Response(200, content=body))
    result = await record(make_client(fake))

    ours = result.find("cqprpbik")
    assert ours is not None
    assert ours.status == "RECORDED" and ours.invoice_status == "PAID" and ours.fully_paid is True
    assert ours.applied_amount == Decimal("208.00") and ours.invoice_balance == Decimal("0.00")
    assert ours.currency == "INR"
    assert ours.money(ours.invoice_paid_amount) == Money.of("208.00", "INR")
    other = result.payments[1]
    assert other.payment_id == "7" and other.invoice_status is None
    assert other.invoice_total == Decimal("100.10") and other.fully_paid is False
    assert other.money(other.invoice_total) is None  # no currency known
    assert result.data is not None and result.data["requestId"] == "x"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"<html>ok</html>", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"message": "payment recorded successfully"}', "success"),
        (b'{"success": "yes"}', "success"),
        (b'{"success": true, "data": []}', "data"),
        (b'{"success": true, "data": {"payments": {}}}', "data.payments"),
        (b'{"success": true, "data": {"payments": ["x"]}}', "data.payments[0]"),
        (b'{"success": true, "data": {"payments": [{"appliedAmount": "abc"}]}}', "appliedAmount"),
    ],
)
async def test_unreadable_success_answers(content: bytes, reason: str) -> None:
    fake = FakeOS1(lambda request: httpx.Response(200, content=content))
    with pytest.raises(TransportOneResponseError) as caught:
        await record(make_client(fake))
    assert caught.value.endpoint == "payments" and caught.value.status == 200
    assert reason in caught.value.reason
    assert isinstance(caught.value, TransportOneError)


# ---- errors ----------------------------------------------------------------------------------


async def test_bad_request_problem() -> None:
    message = "data.payments[0].appliedAmount: must be greater than zero"
    fake = FakeOS1(os1_error(400, message))
    with pytest.raises(TransportOneProblem) as caught:
        await record(make_client(fake))
    problem = caught.value
    assert (problem.status, problem.code, problem.message, problem.endpoint) == (
        400,
        400,
        message,
        "payments",
    )
    assert not (problem.is_not_found or problem.is_conflict or problem.is_auth_failure)
    assert problem.retry_after is None
    assert message in str(problem) and "400" in str(problem)


@pytest.mark.parametrize(
    ("status", "flag"),
    [
        (404, "is_not_found"),
        (409, "is_conflict"),
        (403, "is_auth_failure"),
    ],
)
async def test_problem_flags(status: int, flag: str) -> None:
    with pytest.raises(TransportOneProblem) as caught:
        await record(make_client(FakeOS1(os1_error(status, "nope"))))
    assert getattr(caught.value, flag) is True
    flags = {"is_not_found", "is_conflict", "is_auth_failure"} - {flag}
    assert not any(getattr(caught.value, other) for other in flags)


async def test_rate_limited_with_retry_after_seconds() -> None:
    fake = FakeOS1(os1_error(429, "too many requests", {"Retry-After": "30"}))
    with pytest.raises(TransportOneProblem) as caught:
        await record(make_client(fake))
    assert caught.value.effective_status == 429 and caught.value.retry_after == 30.0
    assert "retry after 30s" in str(caught.value)


async def test_retry_after_http_date_measured_from_date_header() -> None:
    headers = {"Retry-After": "Wed, 21 Oct 2026 07:28:45 GMT", "Date": "Wed, 21 Oct 2026 07:28:00 GMT"}
    with pytest.raises(TransportOneProblem) as caught:
        await record(make_client(FakeOS1(os1_error(503, "maintenance", headers))))
    assert caught.value.retry_after == 45.0


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after(" ") is None
    assert parse_retry_after("soon") is None and parse_retry_after("inf") is None
    now = datetime(2026, 10, 21, 7, 29, tzinfo=UTC)
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:45 GMT", now=now) == 0.0


async def test_non_json_and_html_errors() -> None:
    text = FakeOS1(lambda request: httpx.Response(502, text="upstream   timed\nout"))
    with pytest.raises(TransportOneProblem) as caught:
        await record(make_client(text))
    assert (caught.value.status, caught.value.code, caught.value.message) == (502, None, "upstream timed out")
    assert caught.value.effective_status == 502

    html = FakeOS1(
        lambda request: httpx.Response(
            503, text="<html><body>down</body></html>", headers={"Content-Type": "text/html"}
        )
    )
    with pytest.raises(TransportOneProblem) as caught:
        await record(make_client(html))
    assert caught.value.message == "Service Unavailable"

    empty = FakeOS1(lambda request: httpx.Response(500))
    with pytest.raises(TransportOneProblem) as caught:
        await record(make_client(empty))
    assert caught.value.message == "Internal Server Error"


async def test_other_error_shapes() -> None:
    fake = FakeOS1(answer({"success": False, "error": "invoice locked", "message": "ignored"}, 423))
    with pytest.raises(TransportOneProblem) as caught:
        await record(make_client(fake))
    assert (caught.value.status, caught.value.message) == (423, "invoice locked")

    fake = FakeOS1(answer({"success": False, "error": {"code": "E_DUP", "message": "dup"}}, 409))
    with pytest.raises(TransportOneProblem) as caught:
        await record(make_client(fake))
    assert caught.value.code == "E_DUP" and caught.value.is_conflict


async def test_success_false_in_a_2xx_is_a_problem() -> None:
    fake = FakeOS1(answer({"success": False, "error": {"code": 404, "message": "invoice not found"}}))
    with pytest.raises(TransportOneProblem) as caught:
        await record(make_client(fake))
    problem = caught.value
    assert (problem.status, problem.code, problem.effective_status) == (200, 404, 404)
    assert problem.is_not_found


async def test_transport_errors_propagate_unchanged() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(httpx.ConnectError):
        await record(make_client(FakeOS1(fail)))


# ---- token -----------------------------------------------------------------------------------


async def test_token_request_and_cache() -> None:
    clock = Clock()
    fake = FakeOS1(answer(MINIMAL), expires_in=3600)
    client = make_client(fake, clock)
    await record(client)
    await record(client)
    assert len(fake.token_requests) == 1

    (auth,) = fake.token_requests
    assert auth.method == "POST" and str(auth.url) == f"{BASE}{AUTH_PATH}"
    assert json.loads(auth.content) == {"clientId": "freightpay-test", "clientSecret": SECRET}
    assert uuid.UUID(auth.headers["x-coreos-request-id"])
    assert auth.headers["content-type"] == "application/json"
    assert "authorization" not in auth.headers

    clock.now += 3600 - 61  # expiresIn less the margin
    await record(client)
    assert len(fake.token_requests) == 1
    clock.now += 2
    await record(client)
    assert len(fake.token_requests) == 2
    assert fake.api_requests[-1].headers["authorization"] == "Bearer tok-2"


async def test_token_lifetime_without_expires_in() -> None:
    clock = Clock()
    fake = FakeOS1(answer(MINIMAL), expires_in=None)
    client = make_client(fake, clock, token_lifetime_seconds=100)
    await record(client)
    clock.now += 99
    await record(client)
    assert len(fake.token_requests) == 1
    clock.now += 1
    await record(client)
    assert len(fake.token_requests) == 2


async def test_concurrent_callers_share_one_token_fetch() -> None:
    fake = FakeOS1(answer(MINIMAL), token_delay=0.05)
    client = make_client(fake)
    await asyncio.gather(*(record(client, request_id=uuid.uuid4()) for _ in range(8)))
    assert len(fake.token_requests) == 1 and len(fake.api_requests) == 8


async def test_401_refreshes_once_with_the_same_request_id() -> None:
    def api(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer tok-1":
            return httpx.Response(
                401, json={"success": False, "error": {"code": 401, "message": "invalid access token"}}
            )
        return httpx.Response(200, json=MINIMAL)

    fake = FakeOS1(api)
    result = await record(make_client(fake))
    assert result.success
    assert len(fake.token_requests) == 2
    first, second = fake.api_requests
    assert second.headers["authorization"] == "Bearer tok-2"
    assert first.headers["x-coreos-request-id"] == second.headers["x-coreos-request-id"] == str(REQUEST_ID)
    assert first.content == second.content


async def test_second_401_is_raised() -> None:
    fake = FakeOS1(os1_error(401, "invalid x-coreos-access"))
    with pytest.raises(TransportOneProblem) as caught:
        await record(make_client(fake))
    assert caught.value.is_auth_failure and caught.value.endpoint == "payments"
    assert len(fake.api_requests) == 2 and len(fake.token_requests) == 2


async def test_auth_refused() -> None:
    def transport(request: httpx.Request) -> httpx.Response:
        body = {"success": False, "error": {"code": 401, "message": "invalid client credentials"}}
        return httpx.Response(401, json=body)

    http = httpx.AsyncClient(transport=httpx.MockTransport(transport))
    client = TransportOneClient(
        http, base_url=BASE, client_id="c", client_secret=SECRET, access_key=ACCESS_KEY, tenant_id=TENANT
    )
    with pytest.raises(TransportOneProblem) as caught:
        await record(client)
    assert caught.value.endpoint == "auth" and caught.value.is_auth_failure
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)


@pytest.mark.parametrize(
    "auth_body",
    [
        {"success": True, "data": {}},
        {"success": True},
        {"data": {"accessToken": "t"}},
        {"success": True, "data": {"accessToken": " "}},
    ],
)
async def test_unreadable_auth_answer(auth_body: dict[str, Any]) -> None:
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json=auth_body))
    )
    client = TransportOneClient(
        http, base_url=BASE, client_id="c", client_secret=SECRET, access_key=ACCESS_KEY, tenant_id=TENANT
    )
    with pytest.raises(TransportOneResponseError) as caught:
        await record(client)
    assert caught.value.endpoint == "auth"


async def test_no_secrets_in_repr_str_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeOS1(os1_error(401, "invalid access token"))
    client = make_client(fake, base_url=BASE + "/")
    with pytest.raises(TransportOneProblem) as caught:
        await record(client)
    texts = [repr(client), str(client), str(caught.value), repr(caught.value), caplog.text]
    for text in texts:
        for secret in (SECRET, ACCESS_KEY, "tok-1", "tok-2"):
            assert secret not in text
    assert repr(client) == f"TransportOneClient(base_url={BASE!r}, tenant_id={TENANT!r})"


# ---- callbacks -------------------------------------------------------------------------------


def test_parse_callback() -> None:
    body = (
        b'{"event":"billing.payment.recorded","eventId":"e-1","requestId":"r-1","tenantId":"t",'
        b'"success":true,"message":"payment recorded successfully","occurredAt":1757116800000,'
        b'"data":{"payments":[{"paymentId":"cqprpbik","invoiceNumber":"INV2025040403",'
        b'"appliedAmount":100.10,"invoiceTotal":208.00,"invoicePaidAmount":100.10,'
        b'"invoiceBalance":107.90,"invoiceStatus":"PARTIALLY_PAID","currency":"INR"}]}}'
    )
    callback = parse_callback(body)
    assert (callback.event, callback.event_id, callback.request_id) == (
        "billing.payment.recorded",
        "e-1",
        "r-1",
    )
    assert callback.success and callback.error_code is None
    ours = callback.find("cqprpbik")
    assert ours is not None and ours.fully_paid is False
    assert ours.applied_amount == Decimal("100.10") and ours.invoice_balance == Decimal("107.90")
    assert callback.raw["tenantId"] == "t"
    assert parse_callback(json.loads(body)).payments == callback.payments

    failed = parse_callback({"success": False, "error": {"code": 422, "message": "rejected"}})
    assert (failed.success, failed.error_code, failed.message, failed.payments) == (
        False,
        422,
        "rejected",
        [],
    )
    for bad in (b"nope", b"[]", b'{"event": "x"}'):
        with pytest.raises(ValueError):
            parse_callback(bad)


def test_callback_secret_matches() -> None:
    assert callback_secret_matches("sandbox-callback-secret", "sandbox-callback-secret")
    assert not callback_secret_matches("wrong", "sandbox-callback-secret")
    assert not callback_secret_matches(None, "sandbox-callback-secret")
    assert not callback_secret_matches("", "")
