"""The TransportOne (OS1 / CoreOS TMS) client: record freight invoice payments.

Wire contract, from OS1's payments page and other OS1 pages (docs/vendors.md#transportone-os1);
where OS1 publishes nothing, the choice made here is marked *(unpublished)* and the sandbox
(``sandbox/transportone.py``) answers the same way.

* **Hosts**: sandbox ``https://{tenantId}.sandbox.getos1.com``, production
  ``https://{tenantId}.logistax.io``; ``base_url`` is one of those (or the local sandbox).
* **Auth**: ``POST {base}/core/api/v1/aaa/auth/client-credentials`` with the header
  ``x-coreos-request-id`` (a fresh UUID per token request) and ``{"clientId", "clientSecret"}``;
  the answer is ``{"success": true, "data": {"accessToken": "...", "expiresIn": 86400}}``. The
  token lifetime is not published (24 h reported): ``expiresIn`` is believed when present (less
  a safety margin), else the token is kept ``token_lifetime_seconds`` (23 h). One fetch serves
  every concurrent caller (one ``asyncio.Lock``).
* **Every API call** carries ``Authorization: Bearer``, ``x-coreos-access`` (access key),
  ``x-coreos-tid`` (tenant id), ``x-coreos-request-id`` and ``Content-Type: application/json``.
  The request id is OS1's idempotency key: the caller passes it in, and must pass *the same id*
  when it retries the same payment. :meth:`TransportOneClient.request_id_for` derives it from a
  business key (uuid5 over a fixed namespace), so every retry, on every worker, sends the same id.
* **Payments**: ``POST {base}/tms/api/v1/billing/payments`` with
  ``{"data": {"payments": [{paymentId, invoiceNumber, paymentType, totalAmount, paymentDate,
  appliedAmount, referenceNumber}]}, "callback": {"url": ...}}``. ``paymentDate`` is an integer
  of milliseconds since the Unix epoch (a naive datetime is taken as UTC); the amounts are JSON
  numbers written from ``Decimal`` by :func:`vendors.jsonbody.dumps` (exact digits, never a
  float). The wire carries no currency: amounts are in the invoice's currency. ``paymentType``
  is documented as ``cash`` or ``dn`` (debit note); other OS1 pages show ``bank transfer``. The
  client sends what it is given (it does not second-guess the vendor's enum). ``callback`` is
  left out when there is no callback URL.
* **Success**: ``{"success": true, "message": "payment recorded successfully"}`` as published.
  A ``data`` object is optional *(unpublished)*; when it holds ``payments[]`` with per-payment
  figures (the sandbox sends ``status``, ``appliedAmount``, ``invoiceTotal``,
  ``invoicePaidAmount``, ``invoiceBalance``, ``invoiceStatus``, ``currency``), they are parsed
  into :class:`RecordedPaymentStatus`; unknown fields are ignored, and the raw ``data`` is kept.
* **Errors**: ``{"success": false, "error": {"code": 400, "message": "..."}}`` with the HTTP
  status equal to the code. Every non-2xx answer raises :class:`TransportOneProblem` (with the
  ``Retry-After`` header in seconds, when sent); a 2xx answer that says ``"success": false``
  raises it too (its ``code`` then decides what it means). A 2xx answer that cannot be read
  raises :class:`TransportOneResponseError`: the payment was most likely recorded. Transport
  errors (``httpx.TransportError``, timeouts) propagate unchanged. The activities
  (``activities/transportone.py``, ``classify``) decide what each means for a payment.
* **401**: on an API call, the token is dropped, a new one fetched, and the call sent once more
  with *the same* ``x-coreos-request-id`` (a 401 means OS1 processed nothing); a second 401 is
  raised.
* **Callbacks** *(body unpublished)*: OS1 calls ``callback.url`` with ``POST`` and may carry an
  ``x-tms-callback-secret`` header; it expects 200 or 202. :func:`parse_callback` reads the body
  the sandbox sends (documented in ``sandbox/transportone.py``) tolerantly, and
  :func:`callback_secret_matches` compares the secret in constant time.

What it deliberately does not do: retries (other than the one 401 refresh), rate limiting (OS1
publishes none), anything Temporal. Secrets (client secret, access key, token) never appear in
messages, reprs, exceptions or logs. The client holds no per-payment state and is safe to share
between concurrent activities of one worker.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models.money import Money, MoneyError, to_decimal
from vendors import jsonbody
from vendors.retry_after import http_date, parse_retry_after

__all__ = [
    "AUTH_PATH",
    "CALLBACK_SECRET_HEADER",
    "DOCUMENTED_PAYMENT_TYPES",
    "PAYMENTS_PATH",
    "REQUEST_ID_NAMESPACE",
    "RecordResult",
    "RecordedPaymentStatus",
    "TransportOneCallback",
    "TransportOneClient",
    "TransportOneError",
    "TransportOnePayment",
    "TransportOneProblem",
    "TransportOneResponseError",
    "callback_secret_matches",
    "parse_callback",
    "parse_retry_after",
    "payment_date_ms",
    "problem_from_response",
]

log = logging.getLogger(__name__)

AUTH_PATH = "/core/api/v1/aaa/auth/client-credentials"
PAYMENTS_PATH = "/tms/api/v1/billing/payments"

#: The header OS1 callbacks may carry for verification (compare with :func:`callback_secret_matches`).
CALLBACK_SECRET_HEADER = "x-tms-callback-secret"

#: ``paymentType`` values OS1 documents (``cash``, ``dn``) or shows elsewhere (``bank transfer``).
DOCUMENTED_PAYMENT_TYPES: frozenset[str] = frozenset({"cash", "dn", "bank transfer"})

#: Namespace of :meth:`TransportOneClient.request_id_for`. Fixed forever: changing it would give
#: a payment already posted a new idempotency key, and a retry would record it a second time.
REQUEST_ID_NAMESPACE = uuid.UUID("3f6d2b8e-5a41-5c0e-9b7d-0e1f72a4c9d1")

_JSON = "application/json"
_REQUEST_ID = "x-coreos-request-id"
_ACCESS = "x-coreos-access"
_TENANT = "x-coreos-tid"

#: Longest vendor text kept from a non-JSON error body: enough for a message, not a web page.
_MAX_TEXT_DETAIL = 500
#: Seconds before the announced expiry at which a token is replaced.
_TOKEN_MARGIN_SECONDS = 60.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class TransportOneError(Exception):
    """Base of every error this client raises itself (transport errors are httpx's own)."""


class TransportOneProblem(TransportOneError):
    """TransportOne refused a call: a non-2xx answer, or a 2xx whose body says ``success: false``.

    ``status`` is the HTTP status; ``code`` is OS1's ``error.code`` as sent (normally the same
    number; ``None`` when the body had none); ``message`` is ``error.message`` (or the text of a
    non-JSON body). ``endpoint`` is ``auth`` or ``payments``. ``retry_after`` is the
    ``Retry-After`` header in seconds, ``None`` when absent. The properties classify by
    :attr:`effective_status`: the HTTP status, or for a 2xx that says ``success: false`` the
    ``code`` of its body. Nothing of the request (least of all a secret or the token) is kept.
    """

    def __init__(
        self,
        *,
        status: int,
        endpoint: str,
        code: int | str | None = None,
        message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.endpoint = endpoint
        self.code = code
        self.message = message
        self.retry_after = retry_after
        super().__init__(self._text())

    def _text(self) -> str:
        text = f"TransportOne {self.endpoint} answered {self.status}"
        if self.code is not None and self.code != self.status:
            text += f" (code {self.code})"
        if self.message:
            text += f": {self.message}"
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:g}s)"
        return text

    def __repr__(self) -> str:
        return (
            f"TransportOneProblem(status={self.status}, endpoint={self.endpoint!r}, code={self.code!r}, "
            f"message={self.message!r}, retry_after={self.retry_after!r})"
        )

    @property
    def effective_status(self) -> int:
        """The status that says what happened: HTTP's, unless a 2xx carried an error code."""
        if 200 <= self.status < 300:
            code = _int_code(self.code)
            if code is not None and 400 <= code <= 599:
                return code
        return self.status

    @property
    def is_not_found(self) -> bool:
        """404: the invoice (or another record named in the request) is not known to TransportOne."""
        return self.effective_status == HTTPStatus.NOT_FOUND

    @property
    def is_auth_failure(self) -> bool:
        """401/403: credentials, access key or tenant are refused; retrying will not help."""
        return self.effective_status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN)

    @property
    def is_conflict(self) -> bool:
        """409: this ``x-coreos-request-id`` was already used with another body."""
        return self.effective_status == HTTPStatus.CONFLICT


class TransportOneResponseError(TransportOneError):
    """TransportOne answered 2xx with a body this client cannot read (not JSON, wrong shape).

    For a payment POST this means the payment was most likely recorded: the caller must not
    treat it as a failure to post (and must retry only with the same request id).
    """

    def __init__(self, *, endpoint: str, status: int, reason: str) -> None:
        self.endpoint = endpoint
        self.status = status
        self.reason = reason
        super().__init__(f"TransportOne {endpoint} answered {status} with an unreadable body: {reason}")


def _int_code(code: Any) -> int | None:
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().isdigit():
        return int(code.strip())
    return None


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------


def payment_date_ms(value: datetime) -> int:
    """Milliseconds since the Unix epoch (UTC), as ``paymentDate`` wants; naive means UTC.

    Computed with integer arithmetic on timedeltas (no float), so a date keeps its exact
    millisecond; sub-millisecond digits are dropped (floored).
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _ONE_MS


class TransportOnePayment(BaseModel):
    """One payment to record against a freight invoice (one entry of ``data.payments``).

    ``total_amount`` is what the payer paid in total, ``applied_amount`` the part applied to
    this invoice; both in the invoice's currency (the wire has no currency field, so the two
    must share one). ``payment_id`` is the payer's own transaction id, ``reference_number`` the
    bank reference (UTR, transaction id).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    payment_id: str = Field(min_length=1)
    invoice_number: str = Field(min_length=1)
    payment_type: str = Field(default="cash", min_length=1)
    total_amount: Money
    applied_amount: Money
    payment_date: datetime
    reference_number: str = Field(min_length=1)

    @field_validator("payment_id", "invoice_number", "payment_type", "reference_number", mode="before")
    @classmethod
    def _strip_text(cls, value: Any) -> Any:
        """Identifiers are matched exactly by the TMS; stray whitespace from files is not theirs."""
        return value.strip() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_currency(self) -> TransportOnePayment:
        if self.total_amount.currency != self.applied_amount.currency:
            raise ValueError(
                f"total_amount ({self.total_amount.currency}) and applied_amount "
                f"({self.applied_amount.currency}) must be in the same currency"
            )
        return self

    def to_wire(self) -> dict[str, Any]:
        """The wire entry: camelCase, ``paymentDate`` in ms since the epoch, Decimal amounts."""
        return {
            "paymentId": self.payment_id,
            "invoiceNumber": self.invoice_number,
            "paymentType": self.payment_type,
            "totalAmount": self.total_amount.amount,
            "paymentDate": payment_date_ms(self.payment_date),
            "appliedAmount": self.applied_amount.amount,
            "referenceNumber": self.reference_number,
        }


def payments_body(payments: Sequence[TransportOnePayment], callback_url: str | None) -> dict[str, Any]:
    """The whole ``billing/payments`` body; ``callback`` only when there is a URL."""
    body: dict[str, Any] = {"data": {"payments": [payment.to_wire() for payment in payments]}}
    if callback_url:
        body["callback"] = {"url": callback_url}
    return body


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class RecordedPaymentStatus(_Result):
    """What TransportOne says about one payment, where its answer (or callback) says anything.

    Every field is optional: OS1 publishes none of them. Amounts are exact Decimals in the
    invoice's currency (``currency`` when the vendor names it).
    """

    payment_id: str | None = None
    invoice_number: str | None = None
    reference_number: str | None = None
    payment_type: str | None = None
    status: str | None = None
    applied_amount: Decimal | None = None
    total_amount: Decimal | None = None
    invoice_total: Decimal | None = None
    invoice_paid_amount: Decimal | None = None
    invoice_balance: Decimal | None = None
    invoice_status: str | None = None
    currency: str | None = None

    @property
    def fully_paid(self) -> bool | None:
        """Whether the invoice is paid in full: from ``invoiceStatus``, else from the totals."""
        if self.invoice_status:
            return self.invoice_status.strip().upper().replace(" ", "_") == "PAID"
        if self.invoice_total is not None and self.invoice_paid_amount is not None:
            return self.invoice_paid_amount >= self.invoice_total
        return None

    def money(self, amount: Decimal | None, currency: str | None = None) -> Money | None:
        """``amount`` (one of this status's fields) as Money in ``currency`` or the vendor's own."""
        code = currency or self.currency
        if amount is None or not code:
            return None
        return Money.of(amount, code)


class RecordResult(_Result):
    """TransportOne's answer to ``billing/payments``.

    ``success`` and ``message`` are the published fields. ``payments`` holds per-payment
    figures where the answer's ``data.payments[]`` gives them (empty for the minimal published
    answer); ``data`` is the answer's ``data`` object as sent (numbers as Decimal), or ``None``.
    ``request_id`` is the ``x-coreos-request-id`` the payments were sent with.
    """

    success: bool
    message: str | None = None
    request_id: uuid.UUID
    payments: list[RecordedPaymentStatus] = Field(default_factory=list)
    data: dict[str, Any] | None = None

    def find(self, payment_id: str) -> RecordedPaymentStatus | None:
        """The status of the payment with ``payment_id``, if the answer listed it."""
        wanted = payment_id.strip()
        return next((p for p in self.payments if p.payment_id and p.payment_id.strip() == wanted), None)


class TransportOneCallback(_Result):
    """A callback from TransportOne about recorded payments (see the sandbox for the body).

    ``success`` is ``False`` when the TMS reports the payments as not recorded; ``error_code``
    and ``message`` then say why. ``raw`` is the whole body as sent (numbers as Decimal).
    """

    event: str | None = None
    event_id: str | None = None
    request_id: str | None = None
    success: bool
    message: str | None = None
    error_code: int | str | None = None
    payments: list[RecordedPaymentStatus] = Field(default_factory=list)
    raw: dict[str, Any] = Field(default_factory=dict)

    def find(self, payment_id: str) -> RecordedPaymentStatus | None:
        wanted = payment_id.strip()
        return next((p for p in self.payments if p.payment_id and p.payment_id.strip() == wanted), None)


# --------------------------------------------------------------------------------------------
# Wire -> results
# --------------------------------------------------------------------------------------------


def _json(content: bytes) -> Any:
    """JSON with every non-integer number as an exact ``Decimal`` (never a float)."""
    return json.loads(content, parse_float=Decimal)


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _identifier(value: Any) -> str | None:
    """An identifier the vendor may write as a string or a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return str(value)
    return _text(value)


def _amount(value: Any, name: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        return None
    try:
        return to_decimal(value)
    except MoneyError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _status_entry(item: Mapping[str, Any]) -> RecordedPaymentStatus:
    """One ``payments[]`` entry of an answer or a callback; unknown fields are ignored."""
    return RecordedPaymentStatus(
        payment_id=_identifier(item.get("paymentId")),
        invoice_number=_identifier(item.get("invoiceNumber")),
        reference_number=_identifier(item.get("referenceNumber")),
        payment_type=_text(item.get("paymentType")),
        status=_text(item.get("status")),
        applied_amount=_amount(item.get("appliedAmount"), "appliedAmount"),
        total_amount=_amount(item.get("totalAmount"), "totalAmount"),
        invoice_total=_amount(item.get("invoiceTotal"), "invoiceTotal"),
        invoice_paid_amount=_amount(item.get("invoicePaidAmount"), "invoicePaidAmount"),
        invoice_balance=_amount(item.get("invoiceBalance"), "invoiceBalance"),
        invoice_status=_text(item.get("invoiceStatus")),
        currency=(_text(item.get("currency")) or "").upper() or None,
    )


def _statuses(data: Any) -> list[RecordedPaymentStatus]:
    """``data.payments[]`` as statuses; a ``data`` without that list has none. Raises ValueError."""
    if not isinstance(data, Mapping):
        return []
    items = data.get("payments")
    if items is None:
        return []
    if not isinstance(items, list):
        raise ValueError("data.payments is not a list")
    statuses: list[RecordedPaymentStatus] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValueError(f"data.payments[{index}] is not an object")
        try:
            statuses.append(_status_entry(item))
        except ValueError as exc:
            raise ValueError(f"data.payments[{index}].{exc}") from None
    return statuses


def _unreadable(response: httpx.Response, endpoint: str, reason: str) -> TransportOneResponseError:
    return TransportOneResponseError(endpoint=endpoint, status=response.status_code, reason=reason)


def _validation_summary(exc: ValidationError) -> str:
    """Where and what, without the offending values (they may be anything the vendor sent)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])


def _success_body(response: httpx.Response, endpoint: str) -> dict[str, Any]:
    """The 2xx body as a JSON object that says ``success: true``; raises otherwise.

    ``success: false`` in a 2xx is OS1 refusing the call in the body only: a problem, like a
    non-2xx. A body without a boolean ``success`` is unreadable: nothing says it succeeded.
    """
    try:
        data = _json(response.content)
    except ValueError:
        raise _unreadable(response, endpoint, "not JSON") from None
    if not isinstance(data, dict):
        raise _unreadable(response, endpoint, f"expected a JSON object, got {type(data).__name__}")
    success = data.get("success")
    if success is False:
        raise problem_from_response(response, endpoint)
    if success is not True:
        raise _unreadable(response, endpoint, "no boolean 'success'")
    return data


def _record_result(response: httpx.Response, request_id: uuid.UUID) -> RecordResult:
    endpoint = "payments"
    body = _success_body(response, endpoint)
    data = body.get("data")
    if data is not None and not isinstance(data, dict):
        raise _unreadable(response, endpoint, "'data' is not an object")
    try:
        statuses = _statuses(data)
        return RecordResult(
            success=True,
            message=_text(body.get("message")),
            request_id=request_id,
            payments=statuses,
            data=data,
        )
    except ValidationError as exc:
        raise _unreadable(response, endpoint, _validation_summary(exc)) from None
    except ValueError as exc:
        raise _unreadable(response, endpoint, str(exc)) from None


def parse_callback(content: bytes | str | Mapping[str, Any]) -> TransportOneCallback:
    """A TransportOne callback body (raw bytes, text or already-parsed JSON) as a model.

    Tolerant like the answers: camelCase names, unknown fields ignored, amounts as Decimal.
    Raises ``ValueError`` when the body is not a JSON object or has no boolean ``success``.
    """
    if isinstance(content, Mapping):
        data: Any = dict(content)
    else:
        try:
            data = json.loads(content, parse_float=Decimal)
        except ValueError:
            raise ValueError("callback body is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("callback body is not a JSON object")
    success = data.get("success")
    if not isinstance(success, bool):
        raise ValueError("callback body has no boolean 'success'")
    error = data.get("error")
    error_code: int | str | None = None
    message = _text(data.get("message"))
    if isinstance(error, Mapping):
        code = error.get("code")
        error_code = code if isinstance(code, int | str) and not isinstance(code, bool) else None
        message = _text(error.get("message")) or message
    try:
        payments = _statuses(data.get("data"))
    except ValidationError as exc:
        raise ValueError(_validation_summary(exc)) from None
    return TransportOneCallback(
        event=_text(data.get("event")),
        event_id=_identifier(data.get("eventId")),
        request_id=_identifier(data.get("requestId")),
        success=success,
        message=message,
        error_code=error_code,
        payments=payments,
        raw=data,
    )


def callback_secret_matches(received: str | None, expected: str) -> bool:
    """Whether a callback's ``x-tms-callback-secret`` is ``expected`` (constant-time compare)."""
    if received is None or not expected:
        return False
    return hmac.compare_digest(received.encode("utf-8"), expected.encode("utf-8"))


# --------------------------------------------------------------------------------------------
# Errors from answers
# --------------------------------------------------------------------------------------------


def _text_detail(response: httpx.Response) -> str | None:
    """A short plain-text error body; HTML from a gateway says nothing useful and is dropped."""
    if "html" in response.headers.get("Content-Type", "").lower():
        return None
    text = " ".join(response.text.split())
    return text[:_MAX_TEXT_DETAIL] or None


def _problem_fields(response: httpx.Response) -> tuple[int | str | None, str | None]:
    """(code, message) from OS1's error body, or from whatever else came (never raises)."""
    try:
        data = _json(response.content) if response.content else None
    except ValueError:
        return None, _text_detail(response)
    if isinstance(data, str):
        return None, _text(data)
    if not isinstance(data, dict):
        return None, None
    error = data.get("error")
    if isinstance(error, Mapping):
        code = error.get("code")
        message = _text(error.get("message")) or _text(data.get("message"))
        return (code if isinstance(code, int | str) and not isinstance(code, bool) else None), message
    return None, _text(error) or _text(data.get("message"))


def problem_from_response(response: httpx.Response, endpoint: str) -> TransportOneProblem:
    """The :class:`TransportOneProblem` for a refusal (never raises while reading it)."""
    code, message = _problem_fields(response)
    if message is None and not response.is_success:
        message = response.reason_phrase or _status_phrase(response.status_code)
    retry_after = parse_retry_after(
        response.headers.get("Retry-After"), now=http_date(response.headers.get("Date"))
    )
    return TransportOneProblem(
        status=response.status_code, endpoint=endpoint, code=code, message=message, retry_after=retry_after
    )


def _status_phrase(status: int) -> str | None:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    valid_until: float


def _token_seconds(expires_in: Any, default: float) -> float:
    """How long to keep a token: ``expiresIn`` less a margin (or half of a short one), else ``default``."""
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float | Decimal | str):
        return default
    try:
        seconds = float(expires_in)
    except ValueError:
        return default
    if not seconds > 0 or seconds == float("inf"):
        return default
    return seconds - _TOKEN_MARGIN_SECONDS if seconds > 2 * _TOKEN_MARGIN_SECONDS else seconds / 2


class TransportOneClient:
    """One per worker; wraps an injected ``httpx.AsyncClient`` (owned and closed by the caller).

    ``base_url`` is the tenant's host (``https://{tenantId}.logistax.io``) or the sandbox's
    ``/transportone`` prefix. ``clock`` is injectable so token expiry can be tested without
    sleeping; ``token_lifetime_seconds`` is how long a token is kept when the auth answer has
    no ``expiresIn``.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        access_key: str,
        tenant_id: str,
        clock: Callable[[], float] = time.monotonic,
        token_lifetime_seconds: float = 23 * 3600,
    ) -> None:
        if token_lifetime_seconds <= 0:
            raise ValueError("token_lifetime_seconds must be > 0")
        self._http = http
        self._base = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._access_key = access_key
        self._tenant_id = tenant_id
        self._clock = clock
        self._token_lifetime = float(token_lifetime_seconds)
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"TransportOneClient(base_url={self._base!r}, tenant_id={self._tenant_id!r})"

    @staticmethod
    def request_id_for(business_key: str) -> uuid.UUID:
        """The ``x-coreos-request-id`` of a payment: uuid5 of ``business_key`` in a fixed namespace.

        The same business key gives the same id on every retry, on every worker, in every
        process, forever; so a retried or replayed post is recognised by OS1 as the same one.
        """
        key = business_key.strip()
        if not key:
            raise ValueError("business_key must not be empty")
        return uuid.uuid5(REQUEST_ID_NAMESPACE, key)

    # ---- payments ----------------------------------------------------------------------

    async def record_payments(
        self,
        payments: Sequence[TransportOnePayment],
        *,
        request_id: uuid.UUID,
        callback_url: str | None,
    ) -> RecordResult:
        """Record ``payments`` (one call, one ``x-coreos-request-id``); idempotent on ``request_id``.

        Sending the same payments again with the same ``request_id`` records nothing twice;
        the same id with other payments is refused (409, :attr:`TransportOneProblem.is_conflict`).
        Raises :class:`TransportOneProblem` (``is_not_found`` for an unknown invoice) or
        :class:`TransportOneResponseError`; transport errors propagate.
        """
        if not payments:
            raise ValueError("record_payments needs at least one payment")
        content = jsonbody.dumps(payments_body(payments, callback_url))
        response = await self._send("payments", f"{self._base}{PAYMENTS_PATH}", content, request_id)
        return _record_result(response, request_id)

    # ---- HTTP and auth -----------------------------------------------------------------

    async def _send(self, endpoint: str, url: str, content: bytes, request_id: uuid.UUID) -> httpx.Response:
        """One API POST with the OS1 headers; on a 401 a new token and one more try, same request id.

        A 401 means OS1 processed nothing, so re-sending is safe; and it goes out with the same
        ``x-coreos-request-id``, so even a 401 sent after processing could not record twice.
        """
        headers = {
            "Content-Type": _JSON,
            "Accept": _JSON,
            _ACCESS: self._access_key,
            _TENANT: self._tenant_id,
            _REQUEST_ID: str(request_id),
        }
        for attempt in (1, 2):
            token = await self._bearer()
            headers["Authorization"] = f"Bearer {token.value}"
            response = await self._http.post(url, content=content, headers=headers)
            log.debug("TransportOne %s (request %s) -> %d", endpoint, request_id, response.status_code)
            if response.status_code == HTTPStatus.UNAUTHORIZED and attempt == 1:
                await self._forget(token)
                continue
            if not response.is_success:
                raise problem_from_response(response, endpoint)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def _bearer(self) -> _Token:
        """The cached token, or a fresh one; concurrent callers wait for one fetch, not one each."""
        token = self._token
        if token is not None and self._clock() < token.valid_until:
            return token
        async with self._token_lock:
            token = self._token
            if token is None or self._clock() >= token.valid_until:
                token = await self._fetch_token()
                self._token = token
            return token

    async def _forget(self, token: _Token) -> None:
        """Drop ``token`` unless another caller already replaced it (then theirs is fresh)."""
        async with self._token_lock:
            if self._token is token:
                self._token = None

    async def _fetch_token(self) -> _Token:
        """Client credentials against OS1's auth endpoint; its refusals become TransportOneProblem."""
        endpoint = "auth"
        body = {"clientId": self._client_id, "clientSecret": self._client_secret}
        headers = {"Content-Type": _JSON, "Accept": _JSON, _REQUEST_ID: str(uuid.uuid4())}
        started = self._clock()
        response = await self._http.post(
            f"{self._base}{AUTH_PATH}", content=jsonbody.dumps(body), headers=headers
        )
        if not response.is_success:
            raise problem_from_response(response, endpoint)
        answer = _success_body(response, endpoint)
        data = answer.get("data")
        value = data.get("accessToken") if isinstance(data, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise _unreadable(response, endpoint, "no data.accessToken")
        expires_in = data.get("expiresIn") if isinstance(data, dict) else None
        lifetime = _token_seconds(expires_in, self._token_lifetime)
        log.info("TransportOne token fetched for tenant %s; kept %.0f s", self._tenant_id, lifetime)
        return _Token(value=value.strip(), valid_until=started + lifetime)
