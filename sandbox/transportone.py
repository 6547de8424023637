"""TransportOne (OS1 / CoreOS TMS) simulator: client-credentials auth, billing payments, callbacks.

Why it exists: OS1 can't be reached from here, yet freightpay must be tested against its wire
behaviour. What OS1 publishes (its payments page and other OS1 pages, summarised in
docs/vendors.md#transportone-os1) is followed exactly; what it does not publish is decided
here, marked *(unpublished)*, and mirrored by the client (``vendors/transportone.py``). Like a
real vendor, this module imports nothing of the project: stdlib, fastapi, pydantic and httpx
only.

Mounted at ``/transportone`` (API) and ``/_sandbox/transportone`` (controls, not part of OS1).

Auth: ``POST /core/api/v1/aaa/auth/client-credentials``
    Header ``x-coreos-request-id`` (a UUID) and ``{"clientId", "clientSecret"}``; answers
    ``{"success": true, "data": {"accessToken": "...", "expiresIn": 86400}}`` (OS1 publishes no
    lifetime; 24 h is reported, and ``token_ttl_seconds`` changes it). Missing or non-UUID request
    id, non-JSON body, missing/non-string fields: 400. Wrong credentials: 401.

Payments: ``POST /tms/api/v1/billing/payments``
    Headers, checked in this order (the message names the header):

    ======================== =============================================== ======
    header                   check                                           status
    ======================== =============================================== ======
    ``Authorization``        ``Bearer <token>`` issued here, not expired     401
    ``x-coreos-access``      present and the access key                      401
    ``x-coreos-tid``         present (400), and the tenant id (401)          400/401
    ``x-coreos-request-id``  present and a UUID                              400
    ``Content-Type``         ``application/json``                            400
    ======================== =============================================== ======

    Body ``{"data": {"payments": [{paymentId, invoiceNumber, paymentType, totalAmount,
    paymentDate, appliedAmount, referenceNumber}]}, "callback": {"url": "..."}}`` (``callback``
    optional). 400 naming the field (``data.payments[0].appliedAmount: ...``; every error found,
    joined by ``; ``) for: a missing field, a wrong JSON type (amounts must be JSON numbers,
    identifiers strings), an empty identifier, an amount <= 0, ``appliedAmount`` >
    ``totalAmount``, ``paymentType`` not one of ``cash``, ``dn``, ``bank transfer`` (the
    documented two and the one other OS1 pages show; case-insensitive), ``paymentDate`` not a
    positive integer (ms since the epoch), the same ``paymentId`` twice in one request, an empty
    or over-long (> 100) ``payments`` list, a ``callback.url`` that is not http(s). Unknown fields
    are ignored. Then, against the invoices: an unknown ``invoiceNumber`` is 404 *(unpublished)*;
    an amount with more decimals than the invoice's currency, or an ``appliedAmount`` over the
    invoice's open balance (overpayment), is 400. A request is all or nothing.

    Errors are ``{"success": false, "error": {"code": <status>, "message": "..."}}`` with the HTTP
    status equal to the code, as published.

    Idempotency on ``x-coreos-request-id`` *(semantics unpublished)*: the same id with the same
    body (equal as JSON: key order and ``208`` vs ``208.00`` do not matter) answers exactly what
    the first success answered and records nothing again (each posting's ``post_count`` goes up);
    the same id with another body is 409. Only successes are remembered: a refused request
    changed nothing, so the same id may be sent again with a corrected body. The same
    ``paymentId`` under a *new* request id is recorded again, as a new posting: the request id is
    the idempotency key, which is why freightpay derives it from the business event.

    Success, as published, plus a ``data`` object *(unpublished; ``minimal_response`` drops it)*::

        {"success": true, "message": "payment recorded successfully",
         "data": {"requestId": "<uuid>", "payments": [<payment status>, ...]}}

    Invoices accumulate ``appliedAmount``; status ``OPEN`` -> ``PARTIALLY_PAID`` -> ``PAID``.

Callback *(body unpublished; this is the sandbox's design)*
    If the request has ``callback.url`` and callbacks are enabled, then after answering (an
    asyncio task, after ``callback_delay_seconds``, default 0.2 s) the sandbox POSTs JSON to the
    URL with ``Content-Type: application/json`` and ``x-tms-callback-secret: <secret>`` (left out
    when the secret is empty)::

        {"event": "billing.payment.recorded", "eventId": "<uuid, one per recorded request>",
         "requestId": "<the x-coreos-request-id>", "tenantId": "sandbox-tenant",
         "success": true, "message": "payment recorded successfully",
         "occurredAt": <ms since epoch>,
         "data": {"payments": [<payment status>, ...]}}

    where a *payment status* (in answers and callbacks alike; amounts are exact JSON numbers in
    the invoice's currency, the invoice figures as they stood right after that payment) is::

        {"paymentId", "invoiceNumber", "referenceNumber", "paymentType", "status": "RECORDED",
         "appliedAmount", "totalAmount", "currency", "invoiceTotal", "invoicePaidAmount",
         "invoiceBalance", "invoiceStatus": "PARTIALLY_PAID" | "PAID"}

    OS1 callbacks expect 200 or 202: any other answer, or a transport error, is retried up to
    ``callback_attempts`` (3) in all, ``callback_backoff_seconds`` (0.2 s) apart, doubling. Every
    attempt is recorded (``GET /_sandbox/transportone/callbacks``). A replay of a recorded request
    (same id, same body) sends the same callback body again when ``callback_on_replay`` (default
    on): its first delivery may have been lost, and receivers dedupe on ``eventId``.

Controls (``/_sandbox/transportone``): ``POST /invoices`` ``{invoiceNumber, total, currency}``
(201; 409 if it exists), ``GET /invoices/{number}``, ``GET /postings?reference=&invoice=
&request_id=&payment_id=`` (rows with amounts as strings and ``post_count``), ``GET /requests``
(counts per endpoint key), ``GET /callbacks?request_id=`` (every delivery attempt), ``GET|POST
/options`` (``callback_delay_seconds``, ``callback_enabled``, ``callback_secret``,
``callback_attempts``, ``callback_backoff_seconds``, ``token_ttl_seconds``,
``minimal_response``, ``callback_on_replay``), ``POST /tokens/expire``, ``POST /reset``.

Extension point: every API endpoint runs through :meth:`TransportOneSandbox.dispatch` under a
key of :class:`TransportOneEndpoint`; ``TransportOneSandbox.hooks`` is a chain of
``hook(endpoint, request, call_next) -> Response`` for fault injection (5xx, 429 with
Retry-After, latency, commit-then-drop); :func:`os1_error_response` answers like the handlers.

Demo data (``sandbox/data/transportone.json``; keys starting with ``_`` are comments; amounts
are strings or numbers, read as Decimal; currency an ISO 4217 alphabetic code, default INR as
on the payments page)::

    {"credentials": {"clientId", "clientSecret", "accessKey", "tenantId", "callbackSecret"},
     "invoices": [{"invoiceNumber": "INV2025040403", "total": "208.00", "currency": "INR"}]}

``credentials`` is optional (the demo values below are the defaults); constructor arguments
win over it. A combined data file with a ``"transportone"`` section is accepted too.
"""

from __future__ import annotations

import asyncio
import copy
import json
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from sandbox.wire import DecimalJSONResponse, dumps_exact, run_hooks

# --------------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------------

DEMO_CLIENT_ID = "sandbox-t1-client"
DEMO_CLIENT_SECRET = "sandbox-t1-secret"
DEMO_ACCESS_KEY = "sandbox-t1-access"
DEMO_TENANT_ID = "sandbox-tenant"
DEMO_CALLBACK_SECRET = "sandbox-callback-secret"
DEFAULT_DATA_FILE = Path(__file__).parent / "data" / "transportone.json"

AUTH_PATH = "/core/api/v1/aaa/auth/client-credentials"
PAYMENTS_PATH = "/tms/api/v1/billing/payments"
CALLBACK_SECRET_HEADER = "x-tms-callback-secret"
CALLBACK_EVENT = "billing.payment.recorded"
SUCCESS_MESSAGE = "payment recorded successfully"

#: ``paymentType`` values accepted: documented ``cash``/``dn``, and ``bank transfer`` seen elsewhere.
PAYMENT_TYPES: tuple[str, ...] = ("cash", "dn", "bank transfer")
#: Payments in one request at most *(unpublished)*.
MAX_PAYMENTS_PER_REQUEST = 100
#: 9999-12-31T23:59:59.999Z in ms: a later ``paymentDate`` is not a date.
MAX_PAYMENT_DATE_MS = 253_402_300_799_999
#: Decimals of the currencies the sandbox knows (ISO 4217 minor units).
CURRENCY_DECIMALS: Mapping[str, int] = {
    "INR": 2,
    "USD": 2,
    "CAD": 2,
    "MXN": 2,
    "EUR": 2,
    "GBP": 2,
    "JPY": 0,
    "KWD": 3,
}
#: OS1 callbacks count as delivered on these statuses only.
CALLBACK_OK_STATUSES = frozenset({200, 202})


class TransportOneEndpoint(StrEnum):
    """Keys naming each simulated endpoint: for request counts, hooks and (later) rate limits."""

    AUTH = "auth/client-credentials"
    PAYMENTS = "billing/payments"


class InvoiceStatus(StrEnum):
    OPEN = "OPEN"
    PARTIALLY_PAID = "PARTIALLY_PAID"
    PAID = "PAID"


# --------------------------------------------------------------------------------------------------
# Wire helpers: exact-decimal JSON, OS1 error bodies
# --------------------------------------------------------------------------------------------------


def os1_error_response(
    status: int, message: str, *, headers: Mapping[str, str] | None = None
) -> DecimalJSONResponse:
    """OS1's error answer: ``{"success": false, "error": {"code": status, "message": ...}}``.

    Public so fault-injection hooks answer 429/5xx exactly as the handlers do.
    """
    body = {"success": False, "error": {"code": status, "message": message}}
    return DecimalJSONResponse(body, status_code=status, headers=dict(headers or {}))


class OS1Error(Exception):
    """Raised by handlers and state methods; :meth:`TransportOneSandbox.dispatch` answers it."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers

    def to_response(self) -> DecimalJSONResponse:
        return os1_error_response(self.status, self.message, headers=self.headers)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(raw: bytes) -> Any:
    """JSON with non-integer numbers as Decimal; NaN/Infinity refused. Raises ValueError."""
    return json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _json_body(request: Request) -> Any:
    if _media_type(request) != "application/json":
        raise OS1Error(400, "Content-Type header must be application/json")
    raw = await request.body()
    if not raw.strip():
        raise OS1Error(400, "request body is required")
    try:
        return _parse_json(raw)
    except (ValueError, UnicodeDecodeError):
        raise OS1Error(400, "request body is not valid JSON") from None


def _request_id(request: Request) -> str:
    """The ``x-coreos-request-id`` in canonical UUID form; 400 when missing or not a UUID."""
    value = request.headers.get("x-coreos-request-id", "").strip()
    if not value:
        raise OS1Error(400, "x-coreos-request-id header is required")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise OS1Error(400, "x-coreos-request-id header must be a UUID") from None


def _now() -> datetime:
    return datetime.now(UTC)


def _ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _amount(value: Any, where: str) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{where}: bad amount {value!r}")
    try:
        amount = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"{where}: bad amount {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"{where}: bad amount {value!r}")
    return amount


def _decimals(amount: Decimal) -> int:
    exponent = amount.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


# --------------------------------------------------------------------------------------------------
# Request validation
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentIn:
    """One validated payment of a request (amounts Decimal, ``payment_type`` canonical)."""

    index: int
    payment_id: str
    invoice_number: str
    payment_type: str
    total_amount: Decimal
    applied_amount: Decimal
    payment_date_ms: int
    reference_number: str


@dataclass(frozen=True)
class PaymentsIn:
    payments: tuple[PaymentIn, ...]
    callback_url: str | None


def _check_string(item: Mapping[str, Any], name: str, path: str, errors: list[str]) -> str | None:
    value = item.get(name)
    if value is None:
        errors.append(f"{path}.{name}: is required")
    elif not isinstance(value, str):
        errors.append(f"{path}.{name}: must be a string")
    elif not value.strip():
        errors.append(f"{path}.{name}: must not be empty")
    else:
        return value.strip()
    return None


def _check_amount(item: Mapping[str, Any], name: str, path: str, errors: list[str]) -> Decimal | None:
    value = item.get(name)
    if value is None:
        errors.append(f"{path}.{name}: is required")
    elif isinstance(value, bool) or not isinstance(value, int | Decimal):
        errors.append(f"{path}.{name}: must be a number")
    elif value <= 0:
        errors.append(f"{path}.{name}: must be greater than zero")
    else:
        return Decimal(value)
    return None


def _check_payment_type(item: Mapping[str, Any], path: str, errors: list[str]) -> str | None:
    value = _check_string(item, "paymentType", path, errors)
    if value is None:
        return None
    canonical = " ".join(value.lower().split())
    if canonical not in PAYMENT_TYPES:
        errors.append(f"{path}.paymentType: must be one of {', '.join(PAYMENT_TYPES)}")
        return None
    return canonical


def _check_payment_date(item: Mapping[str, Any], path: str, errors: list[str]) -> int | None:
    value = item.get("paymentDate")
    if value is None:
        errors.append(f"{path}.paymentDate: is required")
    elif isinstance(value, bool) or not isinstance(value, int):
        errors.append(f"{path}.paymentDate: must be an integer (ms since epoch)")
    elif not 0 < value <= MAX_PAYMENT_DATE_MS:
        errors.append(f"{path}.paymentDate: must be a positive ms-since-epoch timestamp")
    else:
        return value
    return None


def _check_payment(item: Any, index: int, errors: list[str]) -> PaymentIn | None:
    path = f"data.payments[{index}]"
    if not isinstance(item, dict):
        errors.append(f"{path}: must be an object")
        return None
    before = len(errors)
    payment_id = _check_string(item, "paymentId", path, errors)
    invoice_number = _check_string(item, "invoiceNumber", path, errors)
    payment_type = _check_payment_type(item, path, errors)
    total = _check_amount(item, "totalAmount", path, errors)
    payment_date = _check_payment_date(item, path, errors)
    applied = _check_amount(item, "appliedAmount", path, errors)
    reference = _check_string(item, "referenceNumber", path, errors)
    if total is not None and applied is not None and applied > total:
        errors.append(f"{path}.appliedAmount: must not exceed totalAmount")
    if len(errors) > before:
        return None
    assert payment_id and invoice_number and payment_type and reference
    assert total is not None and applied is not None and payment_date is not None
    return PaymentIn(index, payment_id, invoice_number, payment_type, total, applied, payment_date, reference)


def _check_callback(body: Mapping[str, Any], errors: list[str]) -> str | None:
    callback = body.get("callback")
    if callback is None:
        return None
    if not isinstance(callback, dict):
        errors.append("callback: must be an object")
        return None
    url = callback.get("url")
    if url is None:
        return None
    if not isinstance(url, str) or not url.strip().lower().startswith(("http://", "https://")):
        errors.append("callback.url: must be an http(s) URL")
        return None
    return url.strip()


def validate_payments_body(body: Any) -> PaymentsIn:
    """The payments request as documented; OS1Error 400 naming every wrong field."""
    if not isinstance(body, dict):
        raise OS1Error(400, "request body must be a JSON object")
    data = body.get("data")
    if not isinstance(data, dict):
        raise OS1Error(400, "data: is required and must be an object")
    items = data.get("payments")
    if not isinstance(items, list):
        raise OS1Error(400, "data.payments: is required and must be an array")
    if not items:
        raise OS1Error(400, "data.payments: must contain at least one payment")
    if len(items) > MAX_PAYMENTS_PER_REQUEST:
        raise OS1Error(400, f"data.payments: at most {MAX_PAYMENTS_PER_REQUEST} payments per request")
    errors: list[str] = []
    payments = [_check_payment(item, index, errors) for index, item in enumerate(items)]
    seen: set[str] = set()
    for payment in payments:
        if payment is None:
            continue
        if payment.payment_id in seen:
            errors.append(f"data.payments[{payment.index}].paymentId: duplicate in this request")
        seen.add(payment.payment_id)
    callback_url = _check_callback(body, errors)
    if errors:
        raise OS1Error(400, "; ".join(errors))
    return PaymentsIn(tuple(p for p in payments if p is not None), callback_url)


# --------------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------------


@dataclass
class Posting:
    """One recorded payment (one entry of one accepted request)."""

    request_id: str
    payment_id: str
    invoice_number: str
    payment_type: str
    reference_number: str
    total_amount: Decimal
    applied_amount: Decimal
    currency: str
    payment_date_ms: int
    recorded_at: datetime
    post_count: int = 1


@dataclass
class Invoice:
    number: str
    total: Decimal
    currency: str
    payments: list[Posting] = field(default_factory=list)

    def paid(self) -> Decimal:
        return sum((p.applied_amount for p in self.payments), Decimal(0))

    def balance(self) -> Decimal:
        return self.total - self.paid()

    def status(self) -> InvoiceStatus:
        paid = self.paid()
        if paid >= self.total:
            return InvoiceStatus.PAID
        return InvoiceStatus.PARTIALLY_PAID if paid > 0 else InvoiceStatus.OPEN

    def money(self, amount: Decimal) -> Decimal:
        """``amount`` written with the currency's decimals (208 INR -> 208.00)."""
        return amount.quantize(Decimal(1).scaleb(-CURRENCY_DECIMALS[self.currency]))


@dataclass
class _Accepted:
    """What an accepted request left behind: for replays (same id) and 409s (same id, other body)."""

    body: Any
    answer: dict[str, Any]
    postings: list[Posting]
    callback: _CallbackJob | None


@dataclass(frozen=True)
class _CallbackJob:
    request_id: str
    event_id: str
    url: str
    body: dict[str, Any]


@dataclass
class CallbackAttempt:
    """One delivery attempt of a callback, as ``GET /_sandbox/transportone/callbacks`` lists it."""

    request_id: str
    event_id: str
    url: str
    attempt: int
    status_code: int | None
    error: str | None
    delivered: bool
    secret_sent: bool
    at: str
    body: dict[str, Any]


@dataclass
class TransportOneOptions:
    """Switches for tests and demos; changeable through ``POST /_sandbox/transportone/options``."""

    callback_enabled: bool = True
    callback_delay_seconds: float = 0.2
    callback_secret: str = DEMO_CALLBACK_SECRET
    callback_attempts: int = 3
    callback_backoff_seconds: float = 0.2
    callback_on_replay: bool = True
    token_ttl_seconds: float = 86400.0
    minimal_response: bool = False


Handler = Callable[[Request], Awaitable[Response]]
#: ``hook(endpoint_key, request, call_next) -> Response``: run before/after/instead of an endpoint.
EndpointHook = Callable[[str, Request, Callable[[], Awaitable[Response]]], Awaitable[Response]]


def _check_keys(record: Mapping[str, Any], allowed: set[str], required: set[str], what: str) -> None:
    unknown = {k for k in record if k not in allowed and not k.startswith("_")}
    if unknown:
        raise ValueError(f"{what}: unknown fields {sorted(unknown)}; allowed: {sorted(allowed)}")
    missing = {k for k in required if record.get(k) in (None, "")}
    if missing:
        raise ValueError(f"{what}: missing fields {sorted(missing)}")


def _section(document: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The TransportOne part of a data document: its ``transportone`` section, or itself."""
    section = document.get("transportone")
    if isinstance(section, Mapping):
        return section
    if "invoices" in document or "credentials" in document:
        return document
    return None


class TransportOneSandbox:
    """In-memory OS1 tenant: invoices, postings, tokens, idempotency records, callbacks, counts.

    Every public method takes the state lock (a threading lock: tests read and steer the state
    from their own thread while uvicorn serves from another), and no method awaits while
    holding it. Callbacks run as asyncio tasks on the serving loop; :meth:`reset` abandons
    pending ones.
    """

    def __init__(
        self,
        document: Mapping[str, Any] | None = None,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        access_key: str | None = None,
        tenant_id: str | None = None,
        callback_secret: str | None = None,
        callback_delay_seconds: float = 0.2,
        callback_attempts: int = 3,
        callback_backoff_seconds: float = 0.2,
        callback_timeout_seconds: float = 5.0,
        token_ttl_seconds: float = 86400.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.RLock()
        self._document: dict[str, Any] = copy.deepcopy(dict(document or {}))
        credentials = self._document.get("credentials") or {}
        if not isinstance(credentials, Mapping):
            raise ValueError("credentials must be an object")
        self.client_id = client_id or str(credentials.get("clientId") or DEMO_CLIENT_ID)
        self._client_secret = client_secret or str(credentials.get("clientSecret") or DEMO_CLIENT_SECRET)
        self._access_key = access_key or str(credentials.get("accessKey") or DEMO_ACCESS_KEY)
        self.tenant_id = tenant_id or str(credentials.get("tenantId") or DEMO_TENANT_ID)
        secret = callback_secret if callback_secret is not None else credentials.get("callbackSecret")
        self._defaults = TransportOneOptions(
            callback_delay_seconds=float(callback_delay_seconds),
            callback_secret=str(secret if secret is not None else DEMO_CALLBACK_SECRET),
            callback_attempts=int(callback_attempts),
            callback_backoff_seconds=float(callback_backoff_seconds),
            token_ttl_seconds=float(token_ttl_seconds),
        )
        self._validate_options(self._defaults)
        self._callback_timeout = float(callback_timeout_seconds)
        self._clock = clock
        self._tokens: dict[str, float] = {}
        #: Middleware-like chain run around every endpoint; kept across resets (wiring, not data).
        self.hooks: list[EndpointHook] = []
        self.options = copy.copy(self._defaults)
        self.invoices: dict[str, Invoice] = {}
        self._postings: list[Posting] = []
        self._accepted: dict[str, _Accepted] = {}
        self._requests: dict[str, int] = {}
        self._callbacks: list[CallbackAttempt] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._generation = 0
        self.reset()

    def __repr__(self) -> str:
        return f"TransportOneSandbox(tenant_id={self.tenant_id!r}, invoices={len(self.invoices)})"

    @classmethod
    def from_demo(cls, data_file: str | Path | None = None, **kwargs: Any) -> TransportOneSandbox:
        """Build from a data file: its ``transportone`` section, or the whole file if it is one.

        ``None`` means ``sandbox/data/transportone.json``. A data file without TransportOne data
        (a combined file with other vendors only) also falls back to that demo file, so one
        ``--data`` argument can serve every vendor.
        """
        section: Mapping[str, Any] | None = None
        if data_file is not None:
            document = json.loads(Path(data_file).read_text(encoding="utf-8"))
            if not isinstance(document, dict):
                raise ValueError(f"{data_file}: expected a JSON object")
            section = _section(document)
        if section is None:
            document = json.loads(DEFAULT_DATA_FILE.read_text(encoding="utf-8"))
            section = _section(document) or {}
        return cls(section, **kwargs)

    # ----- data -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the demo data; options, counters, postings, idempotency records and callbacks
        cleared; pending callbacks abandoned. Tokens stay valid (as Alvys's sandbox does)."""
        with self._lock:
            self._generation += 1
            self.options = copy.copy(self._defaults)
            self.invoices = {}
            self._postings, self._accepted, self._requests, self._callbacks = [], {}, {}, []
            for record in self._document.get("invoices", []):
                self.add_invoice(record)

    def add_invoice(self, record: Mapping[str, Any]) -> Invoice:
        """Add an invoice ``{invoiceNumber, total, currency}``; ValueError if bad, KeyError if it exists."""
        _check_keys(record, {"invoiceNumber", "total", "currency"}, {"invoiceNumber", "total"}, "invoice")
        number = str(record["invoiceNumber"]).strip()
        if not number:
            raise ValueError("invoice: empty invoiceNumber")
        currency = str(record.get("currency") or "INR").strip().upper()
        if currency not in CURRENCY_DECIMALS:
            raise ValueError(f"invoice {number}: unknown currency {currency!r}")
        total = _amount(record["total"], f"invoice {number}")
        if total <= 0:
            raise ValueError(f"invoice {number}: total must be greater than zero")
        invoice = Invoice(number=number, total=total, currency=currency)
        if _decimals(total) > CURRENCY_DECIMALS[currency]:
            raise ValueError(f"invoice {number}: total has more decimals than {currency} allows")
        invoice.total = invoice.money(total)
        with self._lock:
            if number in self.invoices:
                raise KeyError(f"invoice {number} exists")
            self.invoices[number] = invoice
        return invoice

    def invoice_dto(self, invoice: Invoice) -> dict[str, Any]:
        """An invoice for the controls: amounts as strings, its postings."""
        with self._lock:
            return {
                "invoiceNumber": invoice.number,
                "total": str(invoice.total),
                "currency": invoice.currency,
                "paidAmount": str(invoice.money(invoice.paid())),
                "balance": str(invoice.money(invoice.balance())),
                "status": invoice.status().value,
                "payments": [self._posting_row(p) for p in invoice.payments],
            }

    def set_options(self, **changes: Any) -> TransportOneOptions:
        """Change options (``None`` leaves one as it is); ValueError on bad values."""
        with self._lock:
            updated = copy.copy(self.options)
            for name, value in changes.items():
                if not hasattr(updated, name):
                    raise ValueError(f"unknown option {name!r}")
                if value is not None:
                    setattr(updated, name, value)
            self._validate_options(updated)
            self.options = updated
            return copy.copy(updated)

    @staticmethod
    def _validate_options(options: TransportOneOptions) -> None:
        if options.callback_delay_seconds < 0 or options.callback_backoff_seconds < 0:
            raise ValueError("callback delays must be >= 0")
        if options.callback_attempts < 1:
            raise ValueError("callback_attempts must be >= 1")
        if options.token_ttl_seconds <= 0:
            raise ValueError("token_ttl_seconds must be > 0")

    # ----- tokens and headers -----------------------------------------------------------------

    def issue_token(self, body: Any) -> dict[str, Any]:
        """Client-credentials grant: 400 for a malformed body, 401 for wrong credentials."""
        if not isinstance(body, dict):
            raise OS1Error(400, "request body must be a JSON object")
        for name in ("clientId", "clientSecret"):
            value = body.get(name)
            if value is None:
                raise OS1Error(400, f"{name}: is required")
            if not isinstance(value, str) or not value:
                raise OS1Error(400, f"{name}: must be a non-empty string")
        with self._lock:
            if body["clientId"] != self.client_id or not secrets.compare_digest(
                body["clientSecret"].encode(), self._client_secret.encode()
            ):
                raise OS1Error(401, "invalid client credentials")
            ttl = self.options.token_ttl_seconds
            now = self._clock()
            self._tokens = {k: expiry for k, expiry in self._tokens.items() if expiry > now}
            token = secrets.token_urlsafe(32)
            self._tokens[token] = now + ttl
        return {
            "success": True,
            "data": {"accessToken": token, "expiresIn": int(ttl) if ttl.is_integer() else ttl},
        }

    def check_api_headers(self, request: Request) -> str:
        """Every header OS1 requires on an API call; returns the canonical request id."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise OS1Error(401, "Authorization header with a Bearer token is required")
        with self._lock:
            expiry = self._tokens.get(token.strip())
            if expiry is None:
                raise OS1Error(401, "invalid access token")
            if expiry <= self._clock():
                raise OS1Error(401, "access token expired")
        access = request.headers.get("x-coreos-access")
        if not access:
            raise OS1Error(401, "x-coreos-access header is required")
        if not secrets.compare_digest(access.encode(), self._access_key.encode()):
            raise OS1Error(401, "invalid x-coreos-access")
        tenant = request.headers.get("x-coreos-tid")
        if not tenant:
            raise OS1Error(400, "x-coreos-tid header is required")
        if tenant != self.tenant_id:
            raise OS1Error(401, "x-coreos-tid does not match the credentials")
        return _request_id(request)

    def expire_tokens(self) -> int:
        """Make every issued token expired now (clients must fetch a new one); returns how many."""
        with self._lock:
            for token in self._tokens:
                self._tokens[token] = float("-inf")
            return len(self._tokens)

    # ----- payments ---------------------------------------------------------------------------

    def record_payments(self, request_id: str, body: Any) -> tuple[dict[str, Any], _CallbackJob | None]:
        """Replay, refuse (409/400/404) or record a payments request; all or nothing.

        Returns the answer and the callback to deliver (if any). Atomic under the lock, so two
        identical requests in flight at once still record once.
        """
        with self._lock:
            accepted = self._accepted.get(request_id)
            if accepted is not None:
                if accepted.body != body:
                    raise OS1Error(
                        409,
                        f"x-coreos-request-id {request_id} was already used with a different request body",
                    )
                for posting in accepted.postings:
                    posting.post_count += 1
                replay = accepted.callback if self.options.callback_on_replay else None
                return copy.deepcopy(accepted.answer), replay
            request = validate_payments_body(body)
            invoices = self._invoices_of(request)
            now = _now()
            postings = [self._posting(request_id, payment, invoices, now) for payment in request.payments]
            statuses: list[dict[str, Any]] = []
            for posting in postings:
                invoice = invoices[posting.invoice_number]
                invoice.payments.append(posting)
                self._postings.append(posting)
                statuses.append(self._status(posting, invoice))
            answer: dict[str, Any] = {"success": True, "message": SUCCESS_MESSAGE}
            if not self.options.minimal_response:
                answer["data"] = {"requestId": request_id, "payments": statuses}
            job = None
            if request.callback_url:
                event_id = str(uuid.uuid4())
                callback_body = {
                    "event": CALLBACK_EVENT,
                    "eventId": event_id,
                    "requestId": request_id,
                    "tenantId": self.tenant_id,
                    "success": True,
                    "message": SUCCESS_MESSAGE,
                    "occurredAt": _ms(now),
                    "data": {"payments": copy.deepcopy(statuses)},
                }
                job = _CallbackJob(request_id, event_id, request.callback_url, callback_body)
            self._accepted[request_id] = _Accepted(copy.deepcopy(body), copy.deepcopy(answer), postings, job)
            return answer, job

    def _invoices_of(self, request: PaymentsIn) -> dict[str, Invoice]:
        """The request's invoices (404 if any is unknown), after its amount checks (400)."""
        unknown = sorted(
            {p.invoice_number for p in request.payments if p.invoice_number not in self.invoices}
        )
        if unknown:
            raise OS1Error(404, f"invoice not found: {', '.join(unknown)}")
        invoices = {p.invoice_number: self.invoices[p.invoice_number] for p in request.payments}
        errors: list[str] = []
        applied: dict[str, Decimal] = {}
        for payment in request.payments:
            invoice = invoices[payment.invoice_number]
            path = f"data.payments[{payment.index}]"
            places = CURRENCY_DECIMALS[invoice.currency]
            for name, amount in (
                ("totalAmount", payment.total_amount),
                ("appliedAmount", payment.applied_amount),
            ):
                if _decimals(amount) > places:
                    errors.append(f"{path}.{name}: more than {places} decimals for {invoice.currency}")
            running = applied.get(invoice.number, Decimal(0)) + payment.applied_amount
            applied[invoice.number] = running
            if running > invoice.balance():
                errors.append(
                    f"{path}.appliedAmount: exceeds the open balance {invoice.money(invoice.balance())} "
                    f"{invoice.currency} of invoice {invoice.number}"
                )
        if errors:
            raise OS1Error(400, "; ".join(errors))
        return invoices

    @staticmethod
    def _posting(
        request_id: str, payment: PaymentIn, invoices: Mapping[str, Invoice], now: datetime
    ) -> Posting:
        invoice = invoices[payment.invoice_number]
        return Posting(
            request_id=request_id,
            payment_id=payment.payment_id,
            invoice_number=invoice.number,
            payment_type=payment.payment_type,
            reference_number=payment.reference_number,
            total_amount=invoice.money(payment.total_amount),
            applied_amount=invoice.money(payment.applied_amount),
            currency=invoice.currency,
            payment_date_ms=payment.payment_date_ms,
            recorded_at=now,
        )

    @staticmethod
    def _status(posting: Posting, invoice: Invoice) -> dict[str, Any]:
        """A payment status (answer and callback), with the invoice as it stands right now."""
        return {
            "paymentId": posting.payment_id,
            "invoiceNumber": posting.invoice_number,
            "referenceNumber": posting.reference_number,
            "paymentType": posting.payment_type,
            "status": "RECORDED",
            "appliedAmount": posting.applied_amount,
            "totalAmount": posting.total_amount,
            "currency": invoice.currency,
            "invoiceTotal": invoice.total,
            "invoicePaidAmount": invoice.money(invoice.paid()),
            "invoiceBalance": invoice.money(invoice.balance()),
            "invoiceStatus": invoice.status().value,
        }

    # ----- callbacks --------------------------------------------------------------------------

    def schedule_callback(self, job: _CallbackJob) -> None:
        """Deliver ``job`` from an asyncio task on the running loop (after the configured delay)."""
        with self._lock:
            if not self.options.callback_enabled:
                return
            generation = self._generation
        task = asyncio.get_running_loop().create_task(self._deliver(job, generation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, job: _CallbackJob, generation: int) -> None:
        """POST the callback until it answers 200/202 or the attempts are spent; record each try."""
        with self._lock:
            options = copy.copy(self.options)
        await asyncio.sleep(options.callback_delay_seconds)
        content = dumps_exact(job.body).encode("utf-8")
        async with httpx.AsyncClient(timeout=self._callback_timeout, trust_env=False) as http:
            for attempt in range(1, options.callback_attempts + 1):
                with self._lock:
                    if generation != self._generation:
                        return
                    secret = self.options.callback_secret
                headers = {"Content-Type": "application/json", "User-Agent": "os1-sandbox-callback/1"}
                if secret:
                    headers[CALLBACK_SECRET_HEADER] = secret
                status: int | None = None
                error: str | None = None
                try:
                    response = await http.post(job.url, content=content, headers=headers)
                    status = response.status_code
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                delivered = status in CALLBACK_OK_STATUSES
                with self._lock:
                    if generation != self._generation:
                        return
                    self._callbacks.append(
                        CallbackAttempt(
                            request_id=job.request_id,
                            event_id=job.event_id,
                            url=job.url,
                            attempt=attempt,
                            status_code=status,
                            error=error,
                            delivered=delivered,
                            secret_sent=bool(secret),
                            at=_iso(_now()),
                            body=copy.deepcopy(job.body),
                        )
                    )
                if delivered:
                    return
                if attempt < options.callback_attempts:
                    await asyncio.sleep(options.callback_backoff_seconds * 2 ** (attempt - 1))

    def callbacks(self, request_id: str | None = None) -> list[dict[str, Any]]:
        """Every callback delivery attempt, oldest first (optionally of one request id)."""
        with self._lock:
            return [
                asdict(attempt)
                for attempt in self._callbacks
                if request_id is None or attempt.request_id == request_id
            ]

    # ----- observation (controls) -------------------------------------------------------------

    @staticmethod
    def _posting_row(posting: Posting) -> dict[str, Any]:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=posting.payment_date_ms)
        return {
            "request_id": posting.request_id,
            "payment_id": posting.payment_id,
            "invoice_number": posting.invoice_number,
            "payment_type": posting.payment_type,
            "reference_number": posting.reference_number,
            "total_amount": str(posting.total_amount),
            "applied_amount": str(posting.applied_amount),
            "currency": posting.currency,
            "payment_date": posting.payment_date_ms,
            "payment_date_iso": _iso(moment),
            "recorded_at": _iso(posting.recorded_at),
            "post_count": posting.post_count,
        }

    def postings(
        self,
        *,
        reference: str | None = None,
        invoice: str | None = None,
        request_id: str | None = None,
        payment_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every recorded payment, in recording order, filtered by any of the given fields."""
        with self._lock:
            return [
                self._posting_row(p)
                for p in self._postings
                if (reference is None or p.reference_number == reference)
                and (invoice is None or p.invoice_number == invoice)
                and (request_id is None or p.request_id == request_id)
                and (payment_id is None or p.payment_id == payment_id)
            ]

    def count_request(self, endpoint: str) -> None:
        with self._lock:
            self._requests[endpoint] = self._requests.get(endpoint, 0) + 1

    def request_counts(self) -> dict[str, int]:
        """Requests received per endpoint key since the last reset (every answer, errors included)."""
        with self._lock:
            return {key.value: self._requests.get(key.value, 0) for key in TransportOneEndpoint}

    # ----- the hook point ---------------------------------------------------------------------

    async def dispatch(self, endpoint: str, request: Request, handler: Handler) -> Response:
        """Count the request, then run ``hooks`` around ``handler``; OS1Error -> OS1 error body."""
        self.count_request(endpoint)

        def answer(error: Exception) -> Response | None:
            return error.to_response() if isinstance(error, OS1Error) else None

        return await run_hooks(tuple(self.hooks), endpoint, request, handler, answer)


# --------------------------------------------------------------------------------------------------
# HTTP: the OS1 API (mounted at /transportone)
# --------------------------------------------------------------------------------------------------


def transportone_router(state: TransportOneSandbox) -> APIRouter:
    """The OS1 endpoints over ``state``: client-credentials auth and billing payments."""
    router = APIRouter(tags=["TransportOne (simulated)"])

    def add(path: str, endpoint: TransportOneEndpoint, handler: Handler, summary: str) -> None:
        async def route(request: Request) -> Response:
            return await state.dispatch(endpoint.value, request, handler)

        router.add_api_route(
            path,
            route,
            methods=["POST"],
            name=f"transportone:{endpoint.value}",
            summary=summary,
            response_class=DecimalJSONResponse,
        )

    async def auth(request: Request) -> Response:
        _request_id(request)
        body = state.issue_token(await _json_body(request))
        return DecimalJSONResponse(body, headers={"Cache-Control": "no-store"})

    async def payments(request: Request) -> Response:
        request_id = state.check_api_headers(request)
        answer, job = state.record_payments(request_id, await _json_body(request))
        if job is not None:
            state.schedule_callback(job)
        return DecimalJSONResponse(answer)

    add(AUTH_PATH, TransportOneEndpoint.AUTH, auth, "Client-credentials access token")
    add(PAYMENTS_PATH, TransportOneEndpoint.PAYMENTS, payments, "Update freight invoice payment status")
    return router


# --------------------------------------------------------------------------------------------------
# HTTP: sandbox controls (mounted at /_sandbox/transportone; not part of OS1)
# --------------------------------------------------------------------------------------------------


class InvoiceBody(BaseModel):
    """Body of ``POST /_sandbox/transportone/invoices``; amounts as strings or numbers."""

    model_config = ConfigDict(extra="forbid")
    invoiceNumber: str = Field(min_length=1)
    total: Decimal | int | str
    currency: str = "INR"


class OptionsBody(BaseModel):
    """Body of ``POST /_sandbox/transportone/options``; omitted options are left as they are."""

    model_config = ConfigDict(extra="forbid")
    callback_enabled: bool | None = None
    callback_delay_seconds: float | None = Field(default=None, ge=0)
    callback_secret: str | None = None
    callback_attempts: int | None = Field(default=None, ge=1)
    callback_backoff_seconds: float | None = Field(default=None, ge=0)
    callback_on_replay: bool | None = None
    token_ttl_seconds: float | None = Field(default=None, gt=0)
    minimal_response: bool | None = None


def transportone_controls_router(state: TransportOneSandbox) -> APIRouter:
    """Test/demo controls: add and read invoices, read postings, counts and callbacks, options."""
    router = APIRouter(tags=["sandbox controls: TransportOne"])

    @router.post("/invoices", status_code=201)
    def add_invoice(body: InvoiceBody) -> Response:
        try:
            invoice = state.add_invoice({k: str(v) for k, v in body.model_dump().items()})
        except KeyError as exc:
            raise HTTPException(409, str(exc.args[0])) from exc
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        return DecimalJSONResponse(state.invoice_dto(invoice), status_code=201)

    @router.get("/invoices/{invoice_number}")
    def get_invoice(invoice_number: str) -> Response:
        invoice = state.invoices.get(invoice_number)
        if invoice is None:
            raise HTTPException(404, f"no invoice {invoice_number}")
        return DecimalJSONResponse(state.invoice_dto(invoice))

    @router.get("/postings")
    def postings(
        reference: str | None = None,
        invoice: str | None = None,
        request_id: str | None = None,
        payment_id: str | None = None,
    ) -> Response:
        rows = state.postings(
            reference=reference, invoice=invoice, request_id=request_id, payment_id=payment_id
        )
        return DecimalJSONResponse(rows)

    @router.get("/requests")
    def requests() -> Response:
        return DecimalJSONResponse(state.request_counts())

    @router.get("/callbacks")
    def callbacks(request_id: str | None = None) -> Response:
        return DecimalJSONResponse(state.callbacks(request_id))

    @router.post("/tokens/expire")
    def expire_tokens() -> Response:
        return DecimalJSONResponse({"expired": state.expire_tokens()})

    @router.get("/options")
    def get_options() -> Response:
        return DecimalJSONResponse(asdict(state.options))

    @router.post("/options")
    def set_options(body: OptionsBody) -> Response:
        try:
            options = state.set_options(**body.model_dump())
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        return DecimalJSONResponse(asdict(options))

    @router.post("/reset")
    def reset() -> Response:
        state.reset()
        return DecimalJSONResponse({"reset": "transportone"})

    return router
