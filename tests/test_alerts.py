"""Operator alerts: Standard Webhooks signatures, the alert model and texts, and ``send_alert``
over real HTTP to a receiver on loopback that checks every signature."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment

from activities.alerts import AlertActivities
from config.alerts import ENV_SECRET, ENV_URL, AlertConfigError, parse_secret, sign, verify
from config.settings import FreightpaySettings
from models.alerts import MAX_TEXT, Alert, AlertEvent, alert_id, alert_text
from tests.support.servers import free_port, serve_app

# -- the reference test vector ----------------------------------------------------------------

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SECRET = "whsec_" + base64.b64encode(b"freightpay-alerts-test-key-32by!").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"someone-else-s-key-of-32-bytes!!").decode()
#: The path of a Slack incoming webhook URL is its credential; it must show nowhere.
TOKEN = "Xq9tokenNEVERshown"


def vector_headers(
    signature: str = VECTOR_SIGNATURE, timestamp: str = str(VECTOR_TIMESTAMP)
) -> dict[str, str]:
    return {"webhook-id": VECTOR_ID, "webhook-timestamp": timestamp, "webhook-signature": signature}


def test_sign_matches_the_reference_test_vector() -> None:
    """The Standard Webhooks reference libraries' own test vector.

    From standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py
    (``test_sign_function``; the same secret, id, timestamp, payload and signature are in the
    other languages' tests there). spec/standard-webhooks.md itself gives the scheme
    (``{msg_id}.{timestamp}.{payload}``, HMAC-SHA256, ``v1,<base64>``, ``whsec_`` secrets) but
    no key with its signature, so this vector is what every implementation checks against.
    """
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_verify_accepts_the_reference_vector_within_tolerance_only() -> None:
    """The same vector (see above) through :func:`verify`, with the clock set around its timestamp."""
    assert verify(VECTOR_SECRET, vector_headers(), VECTOR_BODY, now=VECTOR_TIMESTAMP)
    assert verify(VECTOR_SECRET, vector_headers(), VECTOR_BODY, now=VECTOR_TIMESTAMP + 300)
    assert verify(VECTOR_SECRET, vector_headers(), VECTOR_BODY, now=VECTOR_TIMESTAMP - 300)
    assert not verify(VECTOR_SECRET, vector_headers(), VECTOR_BODY, now=VECTOR_TIMESTAMP + 301)  # stale
    assert not verify(VECTOR_SECRET, vector_headers(), VECTOR_BODY, now=VECTOR_TIMESTAMP - 301)  # future
    assert not verify(VECTOR_SECRET, vector_headers(), VECTOR_BODY)  # by the real clock: years stale
    assert verify(VECTOR_SECRET, vector_headers(), VECTOR_BODY, now=VECTOR_TIMESTAMP + 3600, tolerance=3600)


def test_verify_refuses_a_wrong_secret_a_tampered_body_id_or_timestamp() -> None:
    now = int(time.time())
    body = b'{"event":"payment.needs_review"}'
    good = {
        "webhook-id": "a-1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(SECRET, "a-1", now, body),
    }
    assert verify(SECRET, good, body)
    assert not verify(OTHER_SECRET, good, body)
    assert not verify(SECRET, good, body + b" ")
    assert not verify(SECRET, good, b'{"event":"payment.awaiting_approval"}')
    assert not verify(SECRET, {**good, "webhook-id": "a-2"}, body)
    assert not verify(SECRET, {**good, "webhook-timestamp": str(now + 1)}, body)


def test_verify_refuses_a_stale_timestamp_even_well_signed() -> None:
    then = int(time.time()) - 301
    body = b"{}"
    stale = {
        "webhook-id": "a-1",
        "webhook-timestamp": str(then),
        "webhook-signature": sign(SECRET, "a-1", then, body),
    }
    assert not verify(SECRET, stale, body)
    assert verify(SECRET, stale, body, tolerance=600)


def test_verify_reads_headers_case_insensitively_and_any_of_several_signatures() -> None:
    other = sign(OTHER_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
    rotated = vector_headers(signature=f"v1a,bm90LWVkMjU1MTk= {other} v1,not-base64!! {VECTOR_SIGNATURE}")
    assert verify(VECTOR_SECRET, rotated, VECTOR_BODY, now=VECTOR_TIMESTAMP)
    upper = {name.upper(): value for name, value in vector_headers().items()}
    assert verify(VECTOR_SECRET, upper, VECTOR_BODY, now=VECTOR_TIMESTAMP)
    assert not verify(VECTOR_SECRET, vector_headers(signature=other), VECTOR_BODY, now=VECTOR_TIMESTAMP)
    # v1's signature under another version identifier is not a v1 signature.
    wrong_version = VECTOR_SIGNATURE.replace("v1,", "v2,")
    assert not verify(
        VECTOR_SECRET, vector_headers(signature=wrong_version), VECTOR_BODY, now=VECTOR_TIMESTAMP
    )


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_verify_refuses_a_missing_header(missing: str) -> None:
    headers = {k: v for k, v in vector_headers().items() if k != missing}
    assert not verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TIMESTAMP)


@pytest.mark.parametrize(
    "timestamp",
    [
        "1614265330.0",
        "-1614265330",
        "",
        "soon",
        "\uff11\uff16\uff11\uff14\uff12\uff16\uff15\uff13\uff13\uff10",
    ],
)
def test_verify_refuses_a_timestamp_that_is_not_integer_seconds(timestamp: str) -> None:
    assert not verify(VECTOR_SECRET, vector_headers(timestamp=timestamp), VECTOR_BODY, now=VECTOR_TIMESTAMP)


def test_secret_format() -> None:
    assert parse_secret(VECTOR_SECRET) == base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert parse_secret(SECRET.rstrip("=") + "\n") == b"freightpay-alerts-test-key-32by!"  # padding optional
    for bad in (
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_not base64!",
        "whsec_" + base64.b64encode(b"short").decode(),
    ):
        with pytest.raises(AlertConfigError, match=ENV_SECRET) as raised:
            parse_secret(bad)
        assert bad not in str(raised.value)


# -- settings -----------------------------------------------------------------------------------


def test_settings_read_the_alert_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert FreightpaySettings().alert_webhook_url == ""
    assert FreightpaySettings().alert_webhook_secret is None
    monkeypatch.setenv(ENV_URL, f" https://hooks.example.test/services/{TOKEN} ")
    monkeypatch.setenv(ENV_SECRET, SECRET)
    settings = FreightpaySettings()
    assert settings.alert_webhook_url == f"https://hooks.example.test/services/{TOKEN}"
    assert settings.alert_webhook_secret is not None
    assert settings.alert_webhook_secret.get_secret_value() == SECRET
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        (ENV_SECRET, "hunter2-is-not-a-whsec"),
        (ENV_SECRET, "whsec_%%%%notbase64%%%%"),
        (ENV_SECRET, "whsec_" + base64.b64encode(b"too-short-a-key").decode()),
        (ENV_URL, f"hooks.example.test/services/{TOKEN}"),
    ],
)
def test_a_bad_alert_setting_is_an_error_naming_the_variable_not_the_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(AlertConfigError, match=variable) as raised:
        FreightpaySettings()
    assert value not in str(raised.value)
    assert not isinstance(raised.value, ValidationError)  # whose text would show the value


# -- the model and its texts ---------------------------------------------------------------------

WORKFLOW_ID = "payment-alvys-customer-L-1-CHK-1"


def an_alert(n: int = 1, **changes: str) -> Alert:
    event = AlertEvent.PAYMENT_NEEDS_REVIEW
    reason = "Alvys refused the payment: Alvys 400: Load is not invoiced"
    fields = {
        "alert_id": alert_id(WORKFLOW_ID, event, n),
        "event": event,
        "workflow_id": WORKFLOW_ID,
        "status": "NeedsReview",
        "reason": reason,
        "text": alert_text(event, WORKFLOW_ID, reason),
    }
    return Alert.model_validate({**fields, **changes})


def test_alert_ids_are_stable_dot_free_and_distinct() -> None:
    assert (
        alert_id(WORKFLOW_ID, AlertEvent.PAYMENT_NEEDS_REVIEW, 1) == f"{WORKFLOW_ID}:payment_needs_review:1"
    )
    assert (
        alert_id(WORKFLOW_ID, AlertEvent.PAYMENT_NEEDS_REVIEW, 2) == f"{WORKFLOW_ID}:payment_needs_review:2"
    )
    dotted = alert_id("payment-alvys-customer-L.1-CHK-1", AlertEvent.DEPOSIT_UNAPPLIED, 1)
    assert dotted == "payment-alvys-customer-L%2E1-CHK-1:deposit_unapplied:1"
    ids = {
        alert_id(w, e, n)
        for w in ("a.b", "a%2Eb", "a%252Eb", "a_b", "a-b")
        for e in AlertEvent
        for n in (1, 2, 12)
    }
    assert len(ids) == 5 * len(AlertEvent) * 3
    assert all("." not in i for i in ids)
    with pytest.raises(ValueError):
        alert_id(WORKFLOW_ID, AlertEvent.PAYMENT_NEEDS_REVIEW, 0)


@pytest.mark.parametrize("bad", ["", f"{WORKFLOW_ID}:payment.needs_review:1", "has space", "new\nline", "é"])
def test_an_alert_id_a_header_cannot_carry_or_with_a_dot_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        an_alert(alert_id=bad)


def test_the_body_is_compact_json_of_five_fields() -> None:
    alert = an_alert()
    body = alert.body()
    assert json.loads(body) == {
        "event": "payment.needs_review",
        "workflow_id": WORKFLOW_ID,
        "status": "NeedsReview",
        "reason": "Alvys refused the payment: Alvys 400: Load is not invoiced",
        "text": alert.text,
    }
    assert list(json.loads(body)) == ["event", "workflow_id", "status", "reason", "text"]
    assert body == json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()


def test_alert_text_is_one_slack_line() -> None:
    assert alert_text(AlertEvent.PAYMENT_NEEDS_REVIEW, WORKFLOW_ID, "Alvys refused the payment") == (
        f"freightpay: payment {WORKFLOW_ID} needs review: Alvys refused the payment"
    )
    assert alert_text(
        AlertEvent.PAYMENT_AWAITING_APPROVAL, WORKFLOW_ID, "", summary="USD 12000.00 to Alvys load L-1"
    ) == (f"freightpay: payment {WORKFLOW_ID} (USD 12000.00 to Alvys load L-1) awaits approval")
    assert alert_text(AlertEvent.PAYMENT_WAITING_FOR_VENDOR, WORKFLOW_ID, "Alvys 503 for an hour").startswith(
        f"freightpay: payment {WORKFLOW_ID} waits for the vendor: "
    )
    assert alert_text(AlertEvent.DEPOSIT_UNAPPLIED, "deposit-bank-D1", "USD 40.00 matched no invoice") == (
        "freightpay: deposit deposit-bank-D1 has unapplied cash: USD 40.00 matched no invoice"
    )
    assert alert_text(
        AlertEvent.RECONCILIATION_DISCREPANCY, "reconciliation-2026-11-20", "2 differ"
    ).startswith("freightpay: reconciliation reconciliation-2026-11-20 found a discrepancy: ")
    folded = alert_text(
        AlertEvent.PAYMENT_NEEDS_REVIEW, WORKFLOW_ID, "line one\n\tline two\r\n  <!channel> & <@U1>"
    )
    assert folded.endswith(": line one line two &lt;!channel&gt; &amp; &lt;@U1&gt;")
    assert "\n" not in folded and "\r" not in folded


def test_alert_text_is_cut_at_the_limit_never_inside_an_escape() -> None:
    head = len(alert_text(AlertEvent.PAYMENT_NEEDS_REVIEW, WORKFLOW_ID, "x"))
    for k in range(MAX_TEXT - head - 12, MAX_TEXT - head + 2):  # the cut falls at each place of "&amp;"
        text = alert_text(AlertEvent.PAYMENT_NEEDS_REVIEW, WORKFLOW_ID, "x" * k + "&" * 60)
        assert len(text) <= MAX_TEXT
        assert len(text) >= MAX_TEXT - 5
        assert text.endswith("…")
        assert text[:-1].count("&") == text[:-1].count("&amp;"), text[-12:]


# -- the activity over real HTTP ---------------------------------------------------------------


@dataclass
class Receiver:
    """A webhook receiver: answers with ``script`` (then 200), checks each signature, keeps each delivery."""

    secret: str = SECRET
    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    deliveries: list[dict[str, object]] = field(default_factory=list)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        self.deliveries.append(
            {
                "id": request.headers.get("webhook-id"),
                "timestamp": request.headers.get("webhook-timestamp"),
                "signed": "webhook-signature" in request.headers,
                "valid": verify(self.secret, request.headers, body),
                "content_type": request.headers.get("content-type"),
                "path_token": request.path_params["token"],
                "body": json.loads(body),
            }
        )
        status, headers, text = self.script.pop(0) if self.script else (200, {}, "ok")
        return PlainTextResponse(text, status_code=status, headers=headers)


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[tuple[Receiver, str]]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/services/{token}", receiver.hook, methods=["POST"])])
    with serve_app(app) as base:
        yield receiver, base


@pytest.fixture
def receiver(receiver_server: tuple[Receiver, str]) -> Receiver:
    receiver, _ = receiver_server
    receiver.script.clear()
    receiver.deliveries.clear()
    return receiver


@pytest.fixture
def hook_url(receiver_server: tuple[Receiver, str]) -> str:
    return f"{receiver_server[1]}/services/{TOKEN}"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def activities(
    http: httpx.AsyncClient, url: str, secret: str | None = SECRET, clock: Callable[[], float] = time.time
) -> AlertActivities:
    return AlertActivities(http, url=url, secret=SecretStr(secret) if secret else None, clock=clock)


async def send(acts: AlertActivities, alert: Alert) -> None:
    await ActivityEnvironment().run(acts.send_alert, alert)


async def test_an_alert_is_posted_signed_with_its_id(
    receiver: Receiver, hook_url: str, http: httpx.AsyncClient
) -> None:
    alert = an_alert()
    await send(activities(http, hook_url), alert)
    [delivery] = receiver.deliveries
    assert delivery["valid"] is True
    assert delivery["id"] == alert.alert_id == f"{WORKFLOW_ID}:payment_needs_review:1"
    assert abs(int(str(delivery["timestamp"])) - time.time()) < 60
    assert delivery["content_type"] == "application/json"
    assert delivery["body"] == json.loads(alert.body())
    assert delivery["path_token"] == TOKEN


async def test_a_500_then_200_is_a_retryable_error_then_success_with_the_same_id(
    receiver: Receiver, hook_url: str, http: httpx.AsyncClient
) -> None:
    receiver.script.append((500, {}, "boom"))
    ticks = iter([time.time() - 30, time.time()])
    acts = activities(http, hook_url, clock=lambda: next(ticks))
    alert = an_alert(n=2)
    with pytest.raises(ApplicationError) as raised:
        await send(acts, alert)
    assert raised.value.type == "AlertUnavailable"
    assert not raised.value.non_retryable
    assert raised.value.category is ApplicationErrorCategory.BENIGN
    assert "500" in raised.value.message
    await send(acts, alert)  # Temporal's retry: the same alert, the same activity
    first, second = receiver.deliveries
    assert first["id"] == second["id"] == alert.alert_id
    assert first["valid"] is True and second["valid"] is True
    assert first["timestamp"] != second["timestamp"]  # each attempt is stamped anew


@pytest.mark.parametrize("status", [408, 429, 502, 503])
async def test_busy_receivers_are_retried(
    receiver: Receiver, hook_url: str, http: httpx.AsyncClient, status: int
) -> None:
    receiver.script.append((status, {"Retry-After": "7"}, ""))
    with pytest.raises(ApplicationError) as raised:
        await send(activities(http, hook_url), an_alert())
    assert raised.value.type == "AlertUnavailable"
    assert not raised.value.non_retryable
    assert raised.value.category is ApplicationErrorCategory.BENIGN
    assert raised.value.next_retry_delay == timedelta(seconds=7)


@pytest.mark.parametrize("status", [400, 403, 404, 410, 302])
async def test_a_refusal_is_not_retried(
    receiver: Receiver, hook_url: str, http: httpx.AsyncClient, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    # A receiver's error page may echo the URL: its token must not reach the history or the log.
    receiver.script.append(
        (status, {"Location": "https://elsewhere.test/"}, f"no_service for /services/{TOKEN}")
    )
    with caplog.at_level(logging.WARNING), pytest.raises(ApplicationError) as raised:
        await send(activities(http, hook_url), an_alert())
    assert raised.value.type == "AlertRefused"
    assert raised.value.non_retryable
    assert f"HTTP {status}: no_service for" in raised.value.message
    assert TOKEN not in raised.value.message
    assert any("refused" in r.getMessage() for r in caplog.records)
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert len(receiver.deliveries) == 1


async def test_an_unreachable_receiver_is_retried(http: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{free_port()}/services/{TOKEN}"
    with pytest.raises(ApplicationError) as raised:
        await send(activities(http, url), an_alert())
    assert raised.value.type == "AlertUnavailable"
    assert not raised.value.non_retryable
    assert raised.value.category is ApplicationErrorCategory.BENIGN
    assert raised.value.__cause__ is None  # httpx's exception (and its request URL) stays out
    assert TOKEN not in raised.value.message


async def test_no_url_sends_nothing(
    receiver: Receiver, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="temporalio.activity"):
        await send(activities(http, ""), an_alert())
    assert receiver.deliveries == []
    assert any(r.levelno == logging.DEBUG and "not sent" in r.getMessage() for r in caplog.records)


async def test_without_a_secret_alerts_go_unsigned(
    receiver: Receiver, hook_url: str, http: httpx.AsyncClient
) -> None:
    alert = an_alert()
    await send(activities(http, hook_url, secret=None), alert)
    [delivery] = receiver.deliveries
    assert delivery["signed"] is False
    assert delivery["id"] == alert.alert_id
    assert delivery["body"] == json.loads(alert.body())


async def test_the_url_never_reaches_a_log_line(
    receiver: Receiver, hook_url: str, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        await send(activities(http, hook_url), an_alert())
    assert len(receiver.deliveries) == 1
    requests = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert requests and all(TOKEN not in line for line in requests)
    assert "http://127.0.0.1/…" in requests[0]
    assert all(TOKEN not in r.getMessage() and SECRET not in r.getMessage() for r in caplog.records)


async def test_a_bad_url_or_secret_stops_the_activities_at_construction(http: httpx.AsyncClient) -> None:
    with pytest.raises(AlertConfigError, match=ENV_URL):
        AlertActivities(http, url=f"ftp://hooks.example.test/{TOKEN}")
    with pytest.raises(AlertConfigError, match=ENV_SECRET):
        AlertActivities(http, url="https://hooks.example.test/x", secret=SecretStr("not-whsec"))
