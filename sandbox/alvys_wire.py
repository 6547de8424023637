"""Alvys on the wire: its published constants, its ProblemDetails errors, how it writes values.

Why a module of its own: every other part of the simulator (the request validator, the state,
the routers) speaks in these terms, and fault-injection hooks answer with :func:`problem_response`
exactly as the handlers do. Part of the Alvys simulator (see :mod:`sandbox.alvys`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from sandbox.wire import DecimalJSONResponse

# --------------------------------------------------------------------------------------------------
# Published constants
# --------------------------------------------------------------------------------------------------

DEMO_CLIENT_ID = "sandbox-client"
DEMO_CLIENT_SECRET = "sandbox-secret"
AUDIENCE = "https://api.alvys.com/public/"
#: Scopes the sandbox knows; only ``invoice:update`` is published (needed to write payments).
SCOPES: tuple[str, ...] = ("invoice:read", "invoice:update", "load:read", "trip:read")
WRITE_SCOPE = "invoice:update"

USD, CAD, MXN = 840, 124, 484
CURRENCY_CODES: Mapping[str, int] = {"USD": USD, "CAD": CAD, "MXN": MXN}

LOAD_STATUSES: tuple[str, ...] = (
    "In Review",
    "Open",
    "Quoted",
    "Reserved",
    "Covered",
    "Dispatched",
    "In Transit",
    "Delivered",
    "TONU",
    "Released",
    "Queued",
    "Invoiced",
    "Financed",
    "Completed",
    "Paid",
    "Cancelled",
)
TRIP_STATUSES: tuple[str, ...] = (
    "Open",
    "Reserved",
    "Covered",
    "Dispatched",
    "In Transit",
    "Delivered",
    "Invoiced",
    "Completed",
    "Quoted",
    "Released",
    "TONU",
    "Cancelled",
    "Queued",
    "Financed",
    "Paid",
    "In Review",
)
INVOICE_STATUSES: tuple[str, ...] = ("Draft", "AwaitingPayment", "Paid", "Open", "Overdue")
PAYABLE_LOAD_STATUSES: tuple[str, ...] = ("Invoiced", "Completed", "Financed")
#: Alvys publishes no list of customer statuses; the sandbox takes any text and defaults to this.
DEFAULT_CUSTOMER_STATUS = "Active"

V1: frozenset[str] = frozenset({"1.0", "1"})
V1_V2: frozenset[str] = V1 | {"2.0", "2"}

CustomerPaymentShape = Literal["current", "captured"]
InvoiceCase = Literal["pascal", "camel"]

#: Where every sum of amounts starts (two decimals, as Alvys writes money).
ZERO = Decimal("0.00")


class AlvysEndpoint(StrEnum):
    """Keys naming each simulated endpoint: for request counts, hooks, and (later) rate limits."""

    TOKEN = "oauth/token"
    CUSTOMER_PAYMENTS = "invoices/customer-payments"
    CARRIER_PAYMENTS = "invoices/carrier-payments"
    GET_INVOICE = "invoices"
    LOADS_SEARCH = "loads/search"
    TRIPS_SEARCH = "trips/search"
    INVOICES_SEARCH = "invoices/search"
    CUSTOMERS_SEARCH = "customers/search"
    GET_CUSTOMER = "customers"


# --------------------------------------------------------------------------------------------------
# ProblemDetails
# --------------------------------------------------------------------------------------------------


_PROBLEM_TYPES: Mapping[int, tuple[str, str]] = {
    400: ("https://tools.ietf.org/html/rfc9110#section-15.5.1", "Bad Request"),
    401: ("https://tools.ietf.org/html/rfc9110#section-15.5.2", "Unauthorized"),
    403: ("https://tools.ietf.org/html/rfc9110#section-15.5.4", "Forbidden"),
    404: ("https://tools.ietf.org/html/rfc9110#section-15.5.5", "Not Found"),
    409: ("https://tools.ietf.org/html/rfc9110#section-15.5.10", "Conflict"),
    415: ("https://tools.ietf.org/html/rfc9110#section-15.5.16", "Unsupported Media Type"),
    429: ("https://tools.ietf.org/html/rfc6585#section-4", "Too Many Requests"),
    500: (
        "https://tools.ietf.org/html/rfc9110#section-15.6.1",
        "An error occurred while processing your request.",
    ),
    502: ("https://tools.ietf.org/html/rfc9110#section-15.6.3", "Bad Gateway"),
    503: ("https://tools.ietf.org/html/rfc9110#section-15.6.4", "Service Unavailable"),
    504: ("https://tools.ietf.org/html/rfc9110#section-15.6.5", "Gateway Timeout"),
}
#: Alvys answers these as application/problem+json; every other status as application/json.
PROBLEM_JSON_STATUSES = frozenset({401, 403, 429})


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    errors: Mapping[str, list[str]] | None = None,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> DecimalJSONResponse:
    """A .NET ProblemDetails answer (ValidationProblemDetails when ``errors`` is given).

    Null members are left out, as ASP.NET does; ``traceId`` is the extension ASP.NET adds.
    Public so fault-injection hooks can answer 429/5xx exactly like the handlers do.
    """
    type_, title = _PROBLEM_TYPES.get(status, ("about:blank", "Error"))
    body: dict[str, Any] = {"Type": type_, "Title": title, "Status": status}
    if errors is not None:
        body["Title"] = "One or more validation errors occurred."
    if detail is not None:
        body["Detail"] = detail
    if instance is not None:
        body["Instance"] = instance
    if errors is not None:
        body["Errors"] = {key: list(messages) for key, messages in errors.items()}
    body.update(extensions or {})
    body["traceId"] = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"
    media_type = "application/problem+json" if status in PROBLEM_JSON_STATUSES else "application/json"
    return DecimalJSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=media_type)


class AlvysProblem(Exception):
    """Raised by handlers and state methods; :meth:`AlvysSandbox.dispatch` turns it into ProblemDetails."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        errors: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or str(status))
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.extensions = extensions

    def to_response(self, instance: str | None = None) -> DecimalJSONResponse:
        return problem_response(
            self.status,
            self.detail,
            errors=self.errors,
            instance=instance,
            headers=self.headers,
            extensions=self.extensions,
        )


def validation_problem(errors: Mapping[str, list[str]]) -> AlvysProblem:
    """A 400 ValidationProblemDetails with ``errors`` keyed as ASP.NET keys them."""
    return AlvysProblem(400, errors=errors)


# --------------------------------------------------------------------------------------------------
# Values as .NET writes and reads them
# --------------------------------------------------------------------------------------------------


def iso_utc(moment: datetime | None) -> str | None:
    """RFC 3339 UTC text as .NET writes a UTC DateTime (``Z`` suffix)."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def parse_datetime(text: str) -> datetime | None:
    """ISO 8601 as System.Text.Json reads it: date or date-time, offset optional (naive = UTC)."""
    if len(text) < 10:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def money_json(amount: Decimal, currency: int) -> dict[str, Any]:
    """A Money object of the wire: ``{"Amount": ..., "Currency": <ISO 4217 numeric>}``."""
    return {"Amount": amount, "Currency": currency}


def _dotnet_camel(name: str) -> str:
    """System.Text.Json's camelCase policy: ``PONumber`` -> ``poNumber``, ``Id`` -> ``id``."""
    chars = list(name)
    for i, char in enumerate(chars):
        if i == 1 and not char.isupper():
            break
        if i > 0 and i + 1 < len(chars) and not chars[i + 1].isupper():
            break
        chars[i] = char.lower()
    return "".join(chars)


def camelize(value: Any) -> Any:
    """``value`` with every key in System.Text.Json's camelCase (the captured invoice shape)."""
    if isinstance(value, Mapping):
        return {_dotnet_camel(str(k)): camelize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camelize(v) for v in value]
    return value


def norm_status(status: str) -> str:
    """A status without spaces, underscores and case, to compare spellings ("In Transit" = "intransit")."""
    return status.replace(" ", "").replace("_", "").lower()


def canonical_status(status: str, allowed: Iterable[str], what: str) -> str:
    """The published spelling of ``status`` ("intransit" -> "In Transit"); ValueError if unknown."""
    for candidate in allowed:
        if norm_status(candidate) == norm_status(status):
            return candidate
    raise ValueError(f"unknown {what} status {status!r}; one of: {', '.join(allowed)}")


def currency_code(value: Any) -> int:
    """ISO 4217 numeric code; null and 0 mean USD (as Alvys treats them)."""
    if value is None or value == 0 or value == "":
        return USD
    if isinstance(value, str):
        if value.upper() in CURRENCY_CODES:
            return CURRENCY_CODES[value.upper()]
        if value.isdigit():
            return int(value)
        raise ValueError(f"unknown currency {value!r}")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"bad currency {value!r}")
