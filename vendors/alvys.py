"""The Alvys TMS public API client: payments, invoices, load and trip search.

Wire formats follow Alvys's published OpenAPI description (``vendor-specs/alvys-openapi.json``),
which is the authority where it and the captured documentation pages differ
(docs/vendors.md#alvys-captured-pages-and-the-current-contract).

What this module does, and why:

* **Requests** are built from frozen pydantic models (:class:`CustomerPayment`,
  :class:`CarrierPayment`) into the PascalCase bodies of the request schemas, written by
  :func:`vendors.jsonbody.dumps` so amounts keep their exact decimal digits. Optional fields
  that are ``None`` are left out, and nothing outside the schema is sent: the schemas forbid
  unknown fields, and ``MarkAsPaid`` in particular was removed from the API on 2026-07-13.
* **Responses** come in two spellings: the published PascalCase and the captured camelCase.
  Every key is normalised to camelCase the way .NET's camel-case naming policy does it
  (``PONumber`` -> ``poNumber``), then one tolerant model reads it. Unknown fields are
  ignored, so a vendor addition never breaks a payment that was already recorded.
* **Money** read from the wire is ``Money.of(to_decimal(amount), currency)``: JSON numbers are
  parsed as ``Decimal`` (never float), the currency may be an ISO numeric code, a numeric
  string, an alphabetic code, or null/0 (USD, the only currency Alvys defaults to).
* **Auth** is OAuth2 client credentials; the token is cached until shortly before it
  expires, fetched once for all concurrent callers, and refreshed once on a 401.
* **Errors**: every non-2xx answer raises :class:`AlvysProblem` with the vendor's own
  ProblemDetails; a 2xx answer that cannot be read raises :class:`AlvysResponseError`.
  Transport errors (``httpx.TransportError``, timeouts) propagate unchanged. The client
  classifies nothing: the activities do (``activities/alvys.py``, ``classify``), turning a
  problem into a fact (not payable, not found, rejected) or a retryable or non-retryable
  Temporal error. A transport error fails the activity attempt and is retried by the
  workflow's retry policy; a lost answer to a POST is settled by posting again with the same
  ``ReferenceNumber``, on which Alvys is idempotent.

What it deliberately does not do: retries (other than the one 401 refresh), rate limiting
(Alvys limits are per organisation, so they are kept across all workers by the caller),
and anything Temporal. The client holds no per-payment state and is safe to share between
concurrent activities of one worker.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from models.money import Money, MoneyError, currency_from_numeric, minor_units, to_decimal
from vendors import jsonbody
from vendors.retry_after import parse_retry_after

__all__ = [
    "CUSTOMER_PAYABLE_LOAD_STATUSES",
    "WEBHOOK_EVENTS",
    "AlvysClient",
    "AlvysError",
    "AlvysProblem",
    "AlvysResponseError",
    "CarrierPayment",
    "CarrierPaymentResult",
    "CustomerPayment",
    "CustomerPaymentResult",
    "Invoice",
    "Load",
    "RecordedPayment",
    "Trip",
    "WebhookSubscription",
    "camel_keys",
    "load_search_body",
    "parse_retry_after",
    "problem_from_response",
    "trip_search_body",
]

log = logging.getLogger(__name__)

#: Load statuses in which Alvys accepts a customer payment (anything else is a 400).
CUSTOMER_PAYABLE_LOAD_STATUSES: frozenset[str] = frozenset({"Invoiced", "Completed", "Financed"})

#: The webhook events freightpay subscribes to (``POST /webhooks``; ingress/alvys_webhooks.py).
WEBHOOK_EVENTS: tuple[str, ...] = ("load.status.changed", "trip.status.changed")

#: The one message text this client looks at (see :attr:`AlvysProblem.is_not_payable`).
_NOT_PAYABLE_TEXT = "load must be in one of"

#: The ``Content-Type`` of request bodies; the spec accepts json-patch+json, json and text/json.
_JSON = "application/json"

#: Longest vendor text kept from a non-JSON error body: enough for a message, not a web page.
_MAX_TEXT_DETAIL = 500

#: Pages fetched at most by one search: every page is a rate-limited call (10 per minute).
_DEFAULT_MAX_PAGES = 10

#: Token lifetime assumed when the auth server leaves out ``expires_in`` (Alvys publishes 3600).
_DEFAULT_TOKEN_SECONDS = 3600.0


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class AlvysError(Exception):
    """Base of every error this client raises itself (transport errors are httpx's own)."""


class AlvysProblem(AlvysError):
    """Alvys answered with a non-2xx status; carries its ProblemDetails as sent.

    ``endpoint`` is a short key (``token``, ``customer-payments``, ``carrier-payments``,
    ``invoices``, ``loads-search``, ``trips-search``) so callers and logs can tell calls apart
    without URLs. ``errors`` is the ValidationProblemDetails ``Errors`` map (field -> messages).
    ``retry_after`` is the ``Retry-After`` header in seconds (a 429's 60, or an HTTP-date
    turned into seconds), ``None`` when absent.

    Nothing of the request (least of all the secret or the token) is kept here.
    """

    def __init__(
        self,
        *,
        status: int,
        endpoint: str,
        title: str | None = None,
        detail: str | None = None,
        type: str | None = None,
        instance: str | None = None,
        errors: Mapping[str, list[str]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.endpoint = endpoint
        self.title = title
        self.detail = detail
        self.type = type
        self.instance = instance
        self.errors: dict[str, list[str]] = {key: list(value) for key, value in (errors or {}).items()}
        self.retry_after = retry_after
        super().__init__(self._message())

    def _message(self) -> str:
        text = f"Alvys {self.endpoint} answered {self.status}"
        if self.title:
            text += f" {self.title}"
        if self.detail and self.detail != self.title:
            text += f": {self.detail}"
        if self.errors:
            text += " [" + "; ".join(f"{k}: {' '.join(v)}" for k, v in self.errors.items()) + "]"
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:g}s)"
        return text

    def __repr__(self) -> str:
        return (
            f"AlvysProblem(status={self.status}, endpoint={self.endpoint!r}, title={self.title!r}, "
            f"detail={self.detail!r}, errors={self.errors!r}, retry_after={self.retry_after!r})"
        )

    @property
    def is_not_payable(self) -> bool:
        """The load is not (yet) in a payable status: Alvys's 400 "Load must be in one of: ...".

        Alvys asks clients not to depend on message texts, and this client otherwise does
        not. This is the one, deliberate exception: Alvys gives this refusal no code or field
        of its own, and telling "not payable yet" (wait and re-check, for days) from "bad
        request" (a person must look) is the difference between a payment that completes by
        itself and one that parks. It is only believed on a 400; if the text ever changes,
        the payment falls back to NeedsReview, which is safe.
        """
        if self.status != HTTPStatus.BAD_REQUEST:
            return False
        texts = [self.title or "", self.detail or ""]
        texts.extend(message for messages in self.errors.values() for message in messages)
        return any(_NOT_PAYABLE_TEXT in text.lower() for text in texts)

    @property
    def is_not_found(self) -> bool:
        """404: the load, trip or invoice does not exist (at least not under this identifier)."""
        return self.status == HTTPStatus.NOT_FOUND

    @property
    def is_auth_failure(self) -> bool:
        """401/403: credentials or scope (``invoice:update``) are wrong; retrying will not help."""
        return self.status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN)


class AlvysResponseError(AlvysError):
    """Alvys answered 2xx with a body this client cannot read (not JSON, wrong shape, bad money).

    For a payment POST this means the payment was most likely recorded: the caller must not
    treat it as a failure to post, but confirm by reading the payment back.
    """

    def __init__(self, *, endpoint: str, status: int, reason: str) -> None:
        self.endpoint = endpoint
        self.status = status
        self.reason = reason
        super().__init__(f"Alvys {endpoint} answered {status} with an unreadable body: {reason}")


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------


def _wire_date(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as the spec's examples write it.

    A naive datetime is taken as UTC (what Alvys stores) rather than refused: a payment
    date is informational, and a file's bare date must not stop a payment.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    spec = "milliseconds" if value.microsecond % 1000 == 0 else "microseconds"
    return value.isoformat(timespec=spec).replace("+00:00", "Z")


def _wire_money(money: Money) -> dict[str, Any]:
    """``Alvys.Money``: the exact Decimal amount and the ISO 4217 numeric currency."""
    return {"Amount": money.amount, "Currency": money.numeric_currency}


def _with_optionals(body: dict[str, Any], optionals: Mapping[str, str | None]) -> dict[str, Any]:
    """``body`` plus each optional field that has a value (None is left out, not sent as null)."""
    body.update({name: value for name, value in optionals.items() if value is not None})
    return body


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _strip_text(cls, value: Any) -> Any:
        """Identifiers are matched exactly by Alvys; stray whitespace from files is not theirs."""
        return value.strip() if isinstance(value, str) else value


class CustomerPayment(_Request):
    """A customer payment to record against a load (``POST invoices/customer-payments``).

    ``reference_number`` is Alvys's idempotency key (per load): the same reference again
    returns the original payment instead of a second one.
    """

    load_number: str = Field(min_length=1)
    amount: Money
    payment_date: datetime
    reference_number: str = Field(min_length=1)
    invoice_number: str | None = None
    payment_method: str | None = None
    check_number: str | None = None
    note: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The ``CustomerPaymentRequest`` body (PascalCase; Decimal amount for jsonbody)."""
        body: dict[str, Any] = {
            "LoadNumber": self.load_number,
            "Amount": _wire_money(self.amount),
            "PaymentDate": _wire_date(self.payment_date),
            "ReferenceNumber": self.reference_number,
        }
        return _with_optionals(
            body,
            {
                "InvoiceNumber": self.invoice_number,
                "PaymentMethod": self.payment_method,
                "CheckNumber": self.check_number,
                "Note": self.note,
            },
        )


class CarrierPayment(_Request):
    """A carrier payment to record against a trip (``POST invoices/carrier-payments``).

    Idempotent on ``reference_number``. There is no ``MarkAsPaid``: Alvys completes the trip
    itself once recorded payments cover the carrier payable.
    """

    trip_id: str = Field(min_length=1)
    amount: Money
    payment_date: datetime
    reference_number: str = Field(min_length=1)
    payment_method: str | None = None
    check_number: str | None = None
    note: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The ``CarrierPaymentRequest`` body (PascalCase; Decimal amount for jsonbody)."""
        body: dict[str, Any] = {
            "TripId": self.trip_id,
            "Amount": _wire_money(self.amount),
            "PaymentDate": _wire_date(self.payment_date),
            "ReferenceNumber": self.reference_number,
        }
        return _with_optionals(
            body,
            {"PaymentMethod": self.payment_method, "CheckNumber": self.check_number, "Note": self.note},
        )


def _string_list(values: str | Iterable[str] | None) -> list[str] | None:
    """A list of identifiers; a bare string is one identifier, not its characters."""
    if values is None:
        return None
    items = [values] if isinstance(values, str) else list(values)
    cleaned = [item.strip() for item in items if item and item.strip()]
    return cleaned or None


def _search_body(page: int, page_size: int, filters: Mapping[str, list[str] | None]) -> dict[str, Any]:
    """A search body with only the filters that are set; at least one must be.

    A search without filters would page through every load or trip of the organisation at
    10 calls a minute: that is always a bug in the caller, so it is refused here.
    """
    present = {name: value for name, value in filters.items() if value}
    if not present:
        raise ValueError(f"a search needs at least one of {', '.join(filters)}")
    if page < 0 or page_size < 1:
        raise ValueError("page must be >= 0 and page_size >= 1")
    return {"Page": page, "PageSize": page_size, "IncludeDeleted": False, **present}


def load_search_body(
    *,
    load_numbers: str | Iterable[str] | None = None,
    po_numbers: str | Iterable[str] | None = None,
    order_numbers: str | Iterable[str] | None = None,
    page: int = 0,
    page_size: int = 50,
) -> dict[str, Any]:
    """The ``LoadSearchRequest`` body (``Page`` is 0-based, as Alvys's paged endpoints are)."""
    filters = {
        "LoadNumbers": _string_list(load_numbers),
        "PONumbers": _string_list(po_numbers),
        "OrderNumbers": _string_list(order_numbers),
    }
    return _search_body(page, page_size, filters)


def trip_search_body(
    *,
    load_numbers: str | Iterable[str] | None = None,
    trip_numbers: str | Iterable[str] | None = None,
    page: int = 0,
    page_size: int = 50,
) -> dict[str, Any]:
    """The ``TripSearchRequest`` body (``Page`` is 0-based)."""
    filters = {"LoadNumbers": _string_list(load_numbers), "TripNumbers": _string_list(trip_numbers)}
    return _search_body(page, page_size, filters)


# --------------------------------------------------------------------------------------------
# Results (what callers get)
# --------------------------------------------------------------------------------------------


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class RecordedPayment(_Result):
    """One payment as Alvys lists it (on a load, a trip or an invoice)."""

    id: str | None = None
    amount: Money | None = None
    payment_date: datetime | None = None
    reference_number: str | None = None
    payment_method: str | None = None
    check_number: str | None = None
    invoice_number: str | None = None


def _find(payments: Iterable[RecordedPayment], reference: str) -> RecordedPayment | None:
    """The payment recorded under ``reference`` (Alvys's idempotency key), if any."""
    wanted = reference.strip()
    return next((p for p in payments if p.reference_number and p.reference_number.strip() == wanted), None)


class CustomerPaymentResult(_Result):
    """Alvys's answer to a customer payment, from either response shape.

    Current shape ``{Id, LoadNumber, Status, TotalPaid, TotalBillable}``: ``payment_id`` and
    the totals are set, ``payments`` is empty. Captured shape ``{LoadNumber, Status,
    CustomerPayments[]}``: ``payments`` is set, totals are ``None`` (the list alone does not
    say what is billable), and ``payment_id`` is that of the payment with our reference.
    """

    payment_id: str | None = None
    load_number: str
    load_status: str | None = None
    total_paid: Money | None = None
    total_billable: Money | None = None
    payments: list[RecordedPayment] = Field(default_factory=list)

    def find(self, reference: str) -> RecordedPayment | None:
        return _find(self.payments, reference)


class CarrierPaymentResult(_Result):
    """Alvys's answer to a carrier payment: the trip, its status, every payment recorded on it.

    ``trip_status`` turns ``Completed`` once payments cover the carrier payable.
    """

    trip_id: str
    trip_number: str | None = None
    trip_status: str | None = None
    payments: list[RecordedPayment] = Field(default_factory=list)

    def find(self, reference: str) -> RecordedPayment | None:
        """Our payment in the list: proof it was recorded, found by its reference number."""
        return _find(self.payments, reference)


class Invoice(_Result):
    """A customer invoice (``GET invoices``): totals, balance, its loads and payments."""

    id: str | None = None
    number: str | None = None
    status: str | None = None
    total: Money | None = None
    amount_paid: Money | None = None
    remaining_balance: Money | None = None
    load_numbers: list[str] = Field(default_factory=list)
    payment_references: list[str] = Field(default_factory=list)
    payments: list[RecordedPayment] = Field(default_factory=list)

    def find(self, reference: str) -> RecordedPayment | None:
        return _find(self.payments, reference)


class Customer(_Result):
    """A customer (``customers/search``, ``GET customers``): who an invoice's payer is at Alvys."""

    id: str
    name: str
    company_number: str | None = None
    status: str | None = None
    invoicing_name: str | None = None
    invoicing_name_alias: str | None = None


class CustomerPage(_Result):
    """One page of ``customers/search``; ``total`` counts every customer matching."""

    items: list[Customer] = Field(default_factory=list)
    total: int = 0


class InvoicePage(_Result):
    """One page of ``invoices/search``; ``total`` counts every invoice matching."""

    items: list[Invoice] = Field(default_factory=list)
    total: int = 0


class Load(_Result):
    """A load from ``loads/search``: identifiers, status and the customer-side money."""

    id: str | None = None
    load_number: str
    status: str | None = None
    po_number: str | None = None
    order_number: str | None = None
    customer_rate: Money | None = None
    invoiced_amount: Money | None = None
    total_paid: Money | None = None
    paid_at: datetime | None = None
    payments: list[RecordedPayment] = Field(default_factory=list)

    @property
    def accepts_customer_payments(self) -> bool:
        """Alvys takes customer payments only in Invoiced, Completed or Financed."""
        return self.status in CUSTOMER_PAYABLE_LOAD_STATUSES


class Trip(_Result):
    """A trip from ``trips/search``: identifiers, status and the carrier payable."""

    trip_id: str
    trip_number: str | None = None
    load_number: str | None = None
    order_number: str | None = None
    status: str | None = None
    carrier_payable: Money | None = None
    trip_value: Money | None = None
    carrier_paid_at: datetime | None = None
    carrier_pay_on_hold: bool | None = None


class WebhookSubscription(_Result):
    """A webhook subscription as ``POST /webhooks`` answers it; ``secret`` is its signing secret."""

    id: str
    name: str | None = None
    subsidiary_id: str | None = None
    url: str | None = None
    events: list[str] = Field(default_factory=list)
    status: str | None = None
    secret: SecretStr | None = None


# --------------------------------------------------------------------------------------------
# Wire models (what Alvys sends, after camel_keys)
# --------------------------------------------------------------------------------------------


def _dotnet_camel(key: str) -> str:
    """.NET's camel-case naming policy: ``LoadNumber`` -> ``loadNumber``, ``PONumber`` -> ``poNumber``.

    Lowering only the first letter would give ``pONumber``, which matches neither spelling;
    lowering the leading run of capitals (but not the capital that starts the next word) is
    exactly what produced the captured camelCase, so both spellings meet here. Idempotent.
    """
    chars = list(key)
    for index, char in enumerate(chars):
        if index == 1 and not char.isupper():
            break
        has_next = index + 1 < len(chars)
        if index > 0 and has_next and not chars[index + 1].isupper():
            if chars[index + 1] == " ":
                chars[index] = char.lower()
            break
        chars[index] = char.lower()
    return "".join(chars)


def camel_keys(value: Any) -> Any:
    """``value`` with every object key, at every depth, in camelCase (see :func:`_dotnet_camel`)."""
    if isinstance(value, dict):
        return {_dotnet_camel(str(key)): camel_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [camel_keys(item) for item in value]
    return value


def _as_utc(value: datetime | None) -> datetime | None:
    """.NET often writes UTC times without an offset; a naive time from Alvys is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class _Wire(BaseModel):
    """Tolerant reader: camelCase names, unknown fields ignored, everything optional-ish."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    @field_validator("*", mode="after")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        return _as_utc(value) if isinstance(value, datetime) else value


class _WireMoney(_Wire):
    amount: Any = None
    currency: Any = None


class _WirePayment(_Wire):
    id: str | None = None
    amount: _WireMoney | None = None
    payment_date: datetime | None = None
    paid_at: datetime | None = None
    reference_number: str | None = None
    payment_reference: str | None = None
    payment_method: str | None = None
    check_number: str | None = None
    invoice_number: str | None = None


class _WireCustomerPayment(_Wire):
    id: str | None = None
    load_number: str | None = None
    status: str | None = None
    total_paid: _WireMoney | None = None
    total_billable: _WireMoney | None = None
    customer_payments: list[_WirePayment] | None = None


class _WireCarrierPayment(_Wire):
    trip_id: str | None = None
    trip_number: str | None = None
    status: str | None = None
    carrier_payments: list[_WirePayment] | None = None


class _WireInvoiceLoad(_Wire):
    load_number: str | None = None


class _WireInvoice(_Wire):
    id: str | None = None
    number: str | None = None
    status: str | None = None
    total: _WireMoney | None = None
    amount_paid: _WireMoney | None = None
    remaining_balance: _WireMoney | None = None
    loads: list[_WireInvoiceLoad] | None = None
    payments: list[_WirePayment] | None = None


class _WireInvoicingInformation(_Wire):
    invoicing_name: str | None = None
    invoicing_name_alias: str | None = None


class _WireCustomer(_Wire):
    id: str
    name: str
    company_number: str | None = None
    status: str | None = None
    invoicing_information: _WireInvoicingInformation | None = None


class _WireLoad(_Wire):
    id: str | None = None
    load_number: str
    order_number: str | None = None
    po_number: str | None = None
    status: str | None = None
    customer_rate: _WireMoney | None = None
    invoiced_amount: _WireMoney | None = None
    total_paid: _WireMoney | None = None
    paid_at: datetime | None = None
    payments: list[_WirePayment] | None = None


class _WireTripCarrier(_Wire):
    total_payable: _WireMoney | None = None


class _WireTrip(_Wire):
    id: str
    trip_number: str | None = None
    load_number: str | None = None
    order_number: str | None = None
    status: str | None = None
    trip_value: _WireMoney | None = None
    carrier: _WireTripCarrier | None = None
    carrier_paid_at: datetime | None = None
    carrier_pay_on_hold: bool | None = None


class _WireWebhook(_Wire):
    id: str
    name: str | None = None
    subsidiary_id: str | None = None
    url: str | None = None
    events: list[str] | None = None
    status: str | None = None
    secret: str | None = None


class _WirePage(_Wire):
    total: int | None = None
    items: list[dict[str, Any]] = Field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Wire -> results
# --------------------------------------------------------------------------------------------


def _currency_code(value: Any) -> str:
    """An alphabetic ISO 4217 code from what Alvys writes: 840, "840", "USD", null or 0 (USD).

    ``Alvys.Money.Currency`` is a nullable numeric code, but the invoice pages show it as a
    string; both occur, so both are read. Null and 0 are Alvys's "not set", which is USD.
    """
    if value is None or isinstance(value, bool):
        return "USD"
    if isinstance(value, int | Decimal | float):
        number = int(value)
        return "USD" if number == 0 else currency_from_numeric(number)
    text = str(value).strip()
    if not text:
        return "USD"
    if text.isdigit():
        return _currency_code(int(text))
    return text.upper()


def _fit_minor_units(amount: Decimal, currency: str) -> Decimal:
    """``amount`` in the currency's minor units, forgiving only binary floating-point noise.

    Alvys computes money as .NET doubles, so a total can arrive as ``0.30000000000000004``.
    That is the double nearest to 0.30, not a different amount, and is rounded; anything
    further from a whole minor unit (``10.005``) is a real discrepancy and is refused.
    """
    quantum = Decimal(1).scaleb(-minor_units(currency))
    quantized = amount.quantize(quantum)
    # Relative to the amount (doubles carry ~16 digits), but never a visible part of a cent.
    tolerance = min(max(abs(amount), Decimal(1)) * Decimal("1e-12"), quantum / 100)
    if abs(quantized - amount) > tolerance:
        raise MoneyError(f"amount {amount} is not a whole number of {currency} minor units")
    return quantized


def _money(wire: _WireMoney | None) -> Money | None:
    """Money from an ``Alvys.Money`` object; ``None`` when the object or its amount is absent."""
    if wire is None or wire.amount is None:
        return None
    currency = _currency_code(wire.currency)
    return Money.of(_fit_minor_units(to_decimal(wire.amount), currency), currency)


def _payment(wire: _WirePayment) -> RecordedPayment:
    return RecordedPayment(
        id=wire.id,
        amount=_money(wire.amount),
        payment_date=wire.payment_date or wire.paid_at,
        reference_number=wire.reference_number or wire.payment_reference,
        payment_method=wire.payment_method,
        check_number=wire.check_number,
        invoice_number=wire.invoice_number,
    )


def _payments(wires: list[_WirePayment] | None) -> list[RecordedPayment]:
    return [_payment(wire) for wire in wires or []]


def _customer_result(wire: _WireCustomerPayment, request: CustomerPayment) -> CustomerPaymentResult:
    """One result from either shape; in the captured one, our payment is found by reference."""
    payments = _payments(wire.customer_payments)
    payment_id = wire.id
    if payment_id is None:
        ours = _find(payments, request.reference_number)
        payment_id = ours.id if ours else None
    return CustomerPaymentResult(
        payment_id=payment_id,
        load_number=wire.load_number or request.load_number,
        load_status=wire.status,
        total_paid=_money(wire.total_paid),
        total_billable=_money(wire.total_billable),
        payments=payments,
    )


def _carrier_result(wire: _WireCarrierPayment, request: CarrierPayment) -> CarrierPaymentResult:
    return CarrierPaymentResult(
        trip_id=wire.trip_id or request.trip_id,
        trip_number=wire.trip_number,
        trip_status=wire.status,
        payments=_payments(wire.carrier_payments),
    )


def _customer(wire: _WireCustomer) -> Customer:
    info = wire.invoicing_information
    return Customer(
        id=wire.id,
        name=wire.name,
        company_number=wire.company_number,
        status=wire.status,
        invoicing_name=info.invoicing_name if info else None,
        invoicing_name_alias=info.invoicing_name_alias if info else None,
    )


def _invoice(wire: _WireInvoice) -> Invoice:
    payments = _payments(wire.payments)
    return Invoice(
        id=wire.id,
        number=wire.number,
        status=wire.status,
        total=_money(wire.total),
        amount_paid=_money(wire.amount_paid),
        remaining_balance=_money(wire.remaining_balance),
        load_numbers=[load.load_number for load in wire.loads or [] if load.load_number],
        payment_references=[p.reference_number for p in payments if p.reference_number],
        payments=payments,
    )


def _load(wire: _WireLoad) -> Load:
    return Load(
        id=wire.id,
        load_number=wire.load_number,
        status=wire.status,
        po_number=wire.po_number,
        order_number=wire.order_number,
        customer_rate=_money(wire.customer_rate),
        invoiced_amount=_money(wire.invoiced_amount),
        total_paid=_money(wire.total_paid),
        paid_at=wire.paid_at,
        payments=_payments(wire.payments),
    )


def _trip(wire: _WireTrip) -> Trip:
    return Trip(
        trip_id=wire.id,
        trip_number=wire.trip_number,
        load_number=wire.load_number,
        order_number=wire.order_number,
        status=wire.status,
        carrier_payable=_money(wire.carrier.total_payable if wire.carrier else None),
        trip_value=_money(wire.trip_value),
        carrier_paid_at=wire.carrier_paid_at,
        carrier_pay_on_hold=wire.carrier_pay_on_hold,
    )


# --------------------------------------------------------------------------------------------
# HTTP answers -> data or errors
# --------------------------------------------------------------------------------------------


def _json(content: bytes) -> Any:
    """JSON with every non-integer number as an exact ``Decimal`` (never a float)."""
    return json.loads(content, parse_float=Decimal)


_W = TypeVar("_W", bound=_Wire)
_R = TypeVar("_R")


def _read(response: httpx.Response, endpoint: str, model: type[_W]) -> _W:
    """The 2xx body as ``model``, or :class:`AlvysResponseError` saying what is wrong with it."""
    try:
        data = _json(response.content)
    except ValueError:
        raise _unreadable(response, endpoint, "not JSON") from None
    if not isinstance(data, dict):
        raise _unreadable(response, endpoint, f"expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(camel_keys(data))
    except ValidationError as exc:
        raise _unreadable(response, endpoint, _validation_summary(exc)) from None


def _convert(response: httpx.Response, endpoint: str, convert: Callable[[], _R]) -> _R:
    """Run a wire-to-result conversion; money that is not money is an unreadable answer."""
    try:
        return convert()
    except (MoneyError, InvalidOperation, ValueError) as exc:
        raise _unreadable(response, endpoint, str(exc)) from None


def _item(
    response: httpx.Response,
    endpoint: str,
    item: dict[str, Any],
    model: type[_W],
    convert: Callable[[_W], _R],
) -> _R:
    """One search result item (already camelCased with its page) as a result model."""
    try:
        wire = model.model_validate(item)
    except ValidationError as exc:
        raise _unreadable(response, endpoint, _validation_summary(exc)) from None
    return _convert(response, endpoint, lambda: convert(wire))


def _validation_summary(exc: ValidationError) -> str:
    """Where and what, without the offending values (they may be anything the vendor sent)."""
    parts = [f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()[:5]]
    return "; ".join(parts)


def _unreadable(response: httpx.Response, endpoint: str, reason: str) -> AlvysResponseError:
    return AlvysResponseError(endpoint=endpoint, status=response.status_code, reason=reason)


def _response_date(response: httpx.Response) -> datetime | None:
    header = response.headers.get("Date")
    if not header:
        return None
    try:
        return email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None


def _problem_fields(response: httpx.Response) -> dict[str, Any]:
    """Title, detail, type, instance and errors from whatever error body Alvys sent.

    ProblemDetails in PascalCase or camelCase; the auth server's ``{error,
    error_description}``; a bare JSON string; or plain text (the captured pages show
    ``Load must be in one of: ...`` as a bare 400 body). HTML from a gateway is dropped.
    """
    try:
        data = _json(response.content) if response.content else None
    except ValueError:
        return {"detail": _text_detail(response)}
    if isinstance(data, str):
        return {"detail": data.strip() or None}
    if not isinstance(data, dict):
        return {}
    body = {_dotnet_camel(str(key)): value for key, value in data.items()}
    return {
        "title": _text(body.get("title")) or _text(body.get("error")),
        "detail": _text(body.get("detail")) or _text(body.get("error_description")),
        "type": _text(body.get("type")),
        "instance": _text(body.get("instance")),
        "errors": _errors(body.get("errors")),
    }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _text_detail(response: httpx.Response) -> str | None:
    if "html" in response.headers.get("Content-Type", "").lower():
        return None
    text = " ".join(response.text.split())
    return text[:_MAX_TEXT_DETAIL] or None


def _errors(value: Any) -> dict[str, list[str]]:
    """ValidationProblemDetails ``Errors`` (field -> messages), field names kept as sent."""
    if not isinstance(value, dict):
        return {}
    errors: dict[str, list[str]] = {}
    for name, messages in value.items():
        items = messages if isinstance(messages, list) else [messages]
        errors[str(name)] = [str(item) for item in items if item is not None]
    return errors


def problem_from_response(response: httpx.Response, endpoint: str) -> AlvysProblem:
    """The :class:`AlvysProblem` for a non-2xx answer (never raises while reading it)."""
    fields = _problem_fields(response)
    if not fields.get("title"):
        fields["title"] = response.reason_phrase or _status_phrase(response.status_code)
    retry_after = parse_retry_after(response.headers.get("Retry-After"), now=_response_date(response))
    return AlvysProblem(status=response.status_code, endpoint=endpoint, retry_after=retry_after, **fields)


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


def _token_lifetime(expires_in: Any, margin: float) -> float:
    """Seconds to keep a token: ``expires_in`` less the margin, or half of it if that is shorter.

    The margin keeps a token from expiring between the check and Alvys reading it; the
    half-life floor keeps a short-lived token useful instead of refetching on every call.
    """
    try:
        seconds = float(expires_in) if expires_in is not None else _DEFAULT_TOKEN_SECONDS
    except (TypeError, ValueError):
        seconds = _DEFAULT_TOKEN_SECONDS
    return seconds - margin if seconds > 2 * margin else seconds / 2


def _api_root(base_url: str, api_version: str) -> str:
    """``{base}/api/p/v{version}`` with the base's trailing slashes and a ``v`` prefix forgiven."""
    return f"{base_url.rstrip('/')}/api/p/v{api_version.strip().lstrip('vV')}"


class AlvysClient:
    """One per worker; wraps an injected httpx.AsyncClient.

    The ``httpx.AsyncClient`` is owned by the caller (timeouts, limits, tracing hooks are
    set there; closing it is the caller's job). Concurrent calls share one cached token.
    ``loads_api_version`` exists because Alvys's spec publishes the loads endpoints under
    version 2.0 while invoices and trips are 1.0. ``clock`` is injectable so token expiry
    can be tested without sleeping.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        auth_url: str,
        client_id: str,
        client_secret: str,
        audience: str = "https://api.alvys.com/public/",
        api_version: str = "1.0",
        token_margin_seconds: float = 60,
        loads_api_version: str = "2.0",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._api = _api_root(base_url, api_version)
        self._loads_api = _api_root(base_url, loads_api_version)
        self._auth_url = auth_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._audience = audience
        self._margin = token_margin_seconds
        self._clock = clock
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"AlvysClient(api={self._api!r}, client_id={self._client_id!r})"

    # ---- payments ----------------------------------------------------------------------

    async def record_customer_payment(self, payment: CustomerPayment) -> CustomerPaymentResult:
        """Record a customer payment on its load; the same reference again adds nothing.

        Raises :class:`AlvysProblem` (``is_not_payable`` for a load not yet Invoiced,
        Completed or Financed; ``is_not_found`` for an unknown load).
        """
        endpoint = "customer-payments"
        response = await self._send(
            endpoint, "POST", f"{self._api}/invoices/customer-payments", body=payment.to_wire()
        )
        wire = _read(response, endpoint, _WireCustomerPayment)
        return _convert(response, endpoint, lambda: _customer_result(wire, payment))

    async def record_carrier_payment(self, payment: CarrierPayment) -> CarrierPaymentResult:
        """Record a carrier payment on its trip; the same reference again adds nothing."""
        endpoint = "carrier-payments"
        response = await self._send(
            endpoint, "POST", f"{self._api}/invoices/carrier-payments", body=payment.to_wire()
        )
        wire = _read(response, endpoint, _WireCarrierPayment)
        return _convert(response, endpoint, lambda: _carrier_result(wire, payment))

    # ---- reads -------------------------------------------------------------------------

    async def get_invoice(
        self, *, invoice_id: str | None = None, invoice_number: str | None = None
    ) -> Invoice:
        """One invoice by its Alvys id or by its number (exactly one of the two)."""
        if (invoice_id is None) == (invoice_number is None):
            raise ValueError("give exactly one of invoice_id and invoice_number")
        params = {"id": invoice_id} if invoice_id is not None else {"invoiceNumber": str(invoice_number)}
        endpoint = "invoices"
        response = await self._send(endpoint, "GET", f"{self._api}/invoices", params=params)
        wire = _read(response, endpoint, _WireInvoice)
        return _convert(response, endpoint, lambda: _invoice(wire))

    async def search_loads(
        self,
        *,
        load_numbers: str | Iterable[str] | None = None,
        po_numbers: str | Iterable[str] | None = None,
        order_numbers: str | Iterable[str] | None = None,
        page_size: int = 50,
        max_pages: int = _DEFAULT_MAX_PAGES,
    ) -> list[Load]:
        """Loads matching any of the numbers given (at least one filter is required).

        Follows pages until ``Total`` items are read or ``max_pages`` calls were spent (each
        is rate-limited); a truncated result is logged.
        """

        def body(page: int) -> dict[str, Any]:
            return load_search_body(
                load_numbers=load_numbers,
                po_numbers=po_numbers,
                order_numbers=order_numbers,
                page=page,
                page_size=page_size,
            )

        url = f"{self._loads_api}/loads/search"
        return await self._search("loads-search", url, body, max_pages, _WireLoad, _load)

    async def search_customers(
        self, *, statuses: Iterable[str] | None = None, page: int = 0, page_size: int = 100
    ) -> CustomerPage:
        """One page (0-based) of customers, by status (Alvys has no search by name).

        ``Statuses`` is required by ``CustomerSearchRequest`` (null or missing is a 400), so it
        is always sent: no statuses is an empty list, which the sandbox reads as "any status"
        (Alvys does not publish what an empty list means).
        """
        endpoint = "customers-search"
        body: dict[str, Any] = {"Page": page, "PageSize": page_size, "Statuses": list(statuses or [])}
        response = await self._send(endpoint, "POST", f"{self._api}/customers/search", body=body)
        wire = _read(response, endpoint, _WirePage)
        items = [_item(response, endpoint, item, _WireCustomer, _customer) for item in wire.items]
        return CustomerPage(items=items, total=wire.total if wire.total is not None else len(items))

    async def get_customer(self, *, company_number: str) -> Customer:
        """One customer by its company number (``GET customers?companyNumber=``)."""
        endpoint = "customers"
        response = await self._send(
            endpoint, "GET", f"{self._api}/customers", params={"companyNumber": company_number}
        )
        wire = _read(response, endpoint, _WireCustomer)
        return _convert(response, endpoint, lambda: _customer(wire))

    async def search_invoices(
        self,
        *,
        customer_id: str | None = None,
        statuses: Iterable[str] | None = None,
        load_numbers: Iterable[str] | None = None,
        po_numbers: Iterable[str] | None = None,
        page: int = 0,
        page_size: int = 100,
    ) -> InvoicePage:
        """One page (0-based) of invoices by customer, status, loads or POs (at least one filter)."""
        endpoint = "invoices-search"
        filters: dict[str, Any] = {
            "CustomerId": customer_id,
            "Status": list(statuses) if statuses else None,
            "LoadNumbers": list(load_numbers) if load_numbers else None,
            "PONumbers": list(po_numbers) if po_numbers else None,
        }
        if not (customer_id or load_numbers or po_numbers):
            raise ValueError("an invoice search needs a customer, load numbers or PO numbers")
        body = {"Page": page, "PageSize": page_size, **{k: v for k, v in filters.items() if v}}
        response = await self._send(endpoint, "POST", f"{self._api}/invoices/search", body=body)
        wire = _read(response, endpoint, _WirePage)
        items = [_item(response, endpoint, item, _WireInvoice, _invoice) for item in wire.items]
        return InvoicePage(items=items, total=wire.total if wire.total is not None else len(items))

    async def search_trips(
        self,
        *,
        load_numbers: str | Iterable[str] | None = None,
        trip_numbers: str | Iterable[str] | None = None,
        page_size: int = 50,
        max_pages: int = _DEFAULT_MAX_PAGES,
    ) -> list[Trip]:
        """Trips matching any of the numbers given (at least one filter is required)."""

        def body(page: int) -> dict[str, Any]:
            return trip_search_body(
                load_numbers=load_numbers, trip_numbers=trip_numbers, page=page, page_size=page_size
            )

        url = f"{self._api}/trips/search"
        return await self._search("trips-search", url, body, max_pages, _WireTrip, _trip)

    # ---- webhooks ----------------------------------------------------------------------

    async def create_webhook(
        self, *, name: str, subsidiary_id: str, url: str, events: Iterable[str] = WEBHOOK_EVENTS
    ) -> WebhookSubscription:
        """Subscribe ``url`` to ``events`` of one subsidiary (``POST /webhooks``, CreateWebhookRequest).

        Alvys first sends the URL its unsigned activation request, which the receiver must
        echo; the answer carries the subscription's signing secret (kept as a SecretStr).
        """
        endpoint = "webhooks"
        body = {"Name": name, "SubsidiaryId": subsidiary_id, "Url": url, "Events": list(events)}
        response = await self._send(endpoint, "POST", f"{self._api}/webhooks", body=body)
        wire = _read(response, endpoint, _WireWebhook)
        return WebhookSubscription(
            id=wire.id,
            name=wire.name,
            subsidiary_id=wire.subsidiary_id,
            url=wire.url,
            events=list(wire.events or []),
            status=wire.status,
            secret=SecretStr(wire.secret) if wire.secret else None,
        )

    async def _search(
        self,
        endpoint: str,
        url: str,
        body: Callable[[int], dict[str, Any]],
        max_pages: int,
        model: type[_W],
        convert: Callable[[_W], _R],
    ) -> list[_R]:
        """Every item of every page (0-based) until ``Total`` is reached or ``max_pages`` are spent."""
        first_body = body(0)  # checks the filters before a rate-limited call is spent
        results: list[_R] = []
        for page in range(max(max_pages, 1)):
            response = await self._send(endpoint, "POST", url, body=first_body if page == 0 else body(page))
            wire = _read(response, endpoint, _WirePage)
            results.extend(_item(response, endpoint, item, model, convert) for item in wire.items)
            if not wire.items or wire.total is None or len(results) >= wire.total:
                return results
        log.warning("Alvys %s: stopped after %d pages; more results exist", endpoint, max_pages)
        return results

    # ---- HTTP and auth -----------------------------------------------------------------

    async def _send(
        self,
        endpoint: str,
        method: str,
        url: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One API call with a bearer token; on a 401 the token is renewed and the call made once more.

        A 401 on a cached token usually means the token was revoked or expired early, so one
        fresh token is worth a try; a second 401 means the credentials themselves are refused,
        and it is raised like any other problem. Re-sending a payment POST here is safe: a
        401 means Alvys did not process it (and payments are idempotent on the reference).
        """
        content = jsonbody.dumps(body) if body is not None else None
        headers = {"Accept": _JSON}
        if content is not None:
            headers["Content-Type"] = _JSON
        for attempt in (1, 2):
            token = await self._bearer()
            headers["Authorization"] = f"Bearer {token.value}"
            response = await self._http.request(method, url, content=content, params=params, headers=headers)
            log.debug("Alvys %s %s -> %d", endpoint, method, response.status_code)
            if response.status_code == HTTPStatus.UNAUTHORIZED and attempt == 1:
                await self._forget(token)
                continue
            if not response.is_success:
                raise problem_from_response(response, endpoint)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def refresh_token_ahead(self, ahead_seconds: float = 120) -> None:
        """Fetch a new token now if the cached one is missing or within ``ahead_seconds`` of its end.

        Why: a token fetched inline delays that one payment call by the fetch, so it reaches
        Alvys later than its place in the rate-limited queue, and the next call may then follow
        it closer than Alvys's "one per second" allows. A worker calls this periodically so
        payment calls always find a valid token.
        """
        async with self._token_lock:
            token = self._token
            if token is None or self._clock() >= token.valid_until - ahead_seconds:
                self._token = await self._fetch_token()

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
        """OAuth2 client credentials against the auth server; its errors become AlvysProblem."""
        endpoint = "token"
        body = {
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "audience": self._audience,
            "grant_type": "client_credentials",
        }
        started = self._clock()
        response = await self._http.post(
            self._auth_url, content=jsonbody.dumps(body), headers={"Content-Type": _JSON, "Accept": _JSON}
        )
        if not response.is_success:
            raise problem_from_response(response, endpoint)
        try:
            data = _json(response.content)
        except ValueError:
            raise _unreadable(response, endpoint, "not JSON") from None
        value = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(value, str) or not value:
            raise _unreadable(response, endpoint, "no access_token")
        lifetime = _token_lifetime(data.get("expires_in"), self._margin)
        log.info("Alvys token fetched for client %s; kept %.0f s", self._client_id, lifetime)
        return _Token(value=value, valid_until=started + lifetime)
