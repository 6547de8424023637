"""Alvys TMS simulator: OAuth token, customer/carrier payments, invoices, loads/trips search.

Why it exists: Alvys can't be reached from here, yet freightpay must be tested against Alvys's real
wire behaviour. Everything the simulator says follows Alvys's published OpenAPI document (the
authority), then the vendor facts of docs/vendors.md (which also summarises the captured pages):
PascalCase bodies, .NET ProblemDetails errors, request schemas that forbid unknown fields, idempotency
per (load|trip, ReferenceNumber), payable load statuses, trips turning ``Completed`` once covered,
invoices following the payments on their loads.

Shapes that differ between the captures and the current contract are options, so clients can be
tested against both: ``customer_payment_shape`` ("current" ``{Id, LoadNumber, Status, TotalPaid,
TotalBillable}`` or "captured" ``{LoadNumber, Status, CustomerPayments[]}``) and ``invoice_case``
("pascal" as published, or "camel" as in the capture).

Money is ``Decimal`` end to end: request bodies are parsed with ``parse_float=Decimal`` and answers are
written by :class:`DecimalJSONResponse`, which prints a Decimal as its exact digits (a JSON number).

Extension point: every endpoint runs through :meth:`AlvysSandbox.dispatch` under a key from
:class:`AlvysEndpoint`; ``AlvysSandbox.hooks`` is a chain of middleware-like :data:`EndpointHook`
callables ``hook(endpoint, request, call_next) -> Response``. Fault injection (5xx, 429 with
Retry-After, latency, commit-then-drop) and rate limits plug in there without touching the handlers.

Demo data format (``sandbox/data/demo.json``, section ``"alvys"``; keys starting with ``_`` are
comments; amounts are strings or numbers, read as Decimal; currencies are ISO 4217 numeric codes or
"USD"/"CAD"/"MXN", default 840)::

    {"alvys": {
      "loads":    [{"LoadNumber": "L-1001", "Status": "Invoiced", "Billable": {"Amount": "382.53",
                    "Currency": 840}, "PONumber": "26714518", "OrderNumber": "ORD-1001",
                    "CustomerId": "...", "CustomerName": "...", "Id": "optional", "InvoiceNumber":
                    "optional shortcut: creates or joins that invoice", "IsDeleted": false}],
      "trips":    [{"Id": "T-1001", "TripNumber": "TR-1001", "LoadNumber": "L-1001",
                    "Status": "Delivered", "CarrierPayable": {"Amount": "382.53", "Currency": 840},
                    "CarrierId": "optional", "TripValue": "optional Money", "Miles": 0}],
      "invoices": [{"Id": "optional", "Number": "INV-1001", "LoadNumbers": ["L-1001"],
                    "Status": "AwaitingPayment", "InvoicedDate": "...", "DueDate": "..."}]}}

The same record shapes are accepted by the controls ``POST /_sandbox/alvys/loads|trips|invoices``.
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from sandbox.wire import DecimalJSONResponse, run_hooks

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

V1: frozenset[str] = frozenset({"1.0", "1"})
V1_V2: frozenset[str] = V1 | {"2.0", "2"}

CustomerPaymentShape = Literal["current", "captured"]
InvoiceCase = Literal["pascal", "camel"]

_ZERO = Decimal("0.00")
_ID_NAMESPACE = uuid.UUID("6f0c8a59-2b1e-4c55-9a53-a1e0d3a5c0de")
_EPOCH_DEFAULT = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)


class AlvysEndpoint(StrEnum):
    """Keys naming each simulated endpoint: for request counts, hooks, and (later) rate limits."""

    TOKEN = "oauth/token"
    CUSTOMER_PAYMENTS = "invoices/customer-payments"
    CARRIER_PAYMENTS = "invoices/carrier-payments"
    GET_INVOICE = "invoices"
    LOADS_SEARCH = "loads/search"
    TRIPS_SEARCH = "trips/search"


# --------------------------------------------------------------------------------------------------
# Wire helpers: exact-decimal JSON, ProblemDetails
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


def _validation_problem(errors: Mapping[str, list[str]]) -> AlvysProblem:
    return AlvysProblem(400, errors=errors)


def _iso(moment: datetime | None) -> str | None:
    """RFC 3339 UTC text as .NET writes a UTC DateTime (``Z`` suffix)."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def _parse_datetime(text: str) -> datetime | None:
    """ISO 8601 as System.Text.Json reads it: date or date-time, offset optional (naive = UTC)."""
    if len(text) < 10:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _money(amount: Decimal, currency: int) -> dict[str, Any]:
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


def _camelize(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {_dotnet_camel(str(k)): _camelize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camelize(v) for v in value]
    return value


def _norm_status(status: str) -> str:
    return status.replace(" ", "").replace("_", "").lower()


def _canonical(status: str, allowed: Iterable[str], what: str) -> str:
    """The published spelling of ``status`` ("intransit" -> "In Transit"); ValueError if unknown."""
    for candidate in allowed:
        if _norm_status(candidate) == _norm_status(status):
            return candidate
    raise ValueError(f"unknown {what} status {status!r}; one of: {', '.join(allowed)}")


def _currency(value: Any) -> int:
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


# --------------------------------------------------------------------------------------------------
# Request validation, mirroring the spec's request schemas with ASP.NET's messages
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    kind: Literal["string", "number", "integer", "boolean", "datetime", "strings", "object"]
    required: bool = False
    nullable: bool = False
    schema: _Schema | None = None


@dataclass(frozen=True)
class _Schema:
    """A request schema of the spec: its .NET type name and its properties (additionalProperties false)."""

    name: str
    fields: Mapping[str, _Field]


_DOTNET_TYPES: Mapping[str, str] = {
    "string": "System.String",
    "number": "System.Decimal",
    "integer": "System.Int32",
    "boolean": "System.Boolean",
    "datetime": "System.DateTime",
    "strings": "System.Collections.Generic.List`1[System.String]",
}

_MONEY = _Schema(
    "Alvys.Money",
    {"Amount": _Field("number", required=True), "Currency": _Field("integer", nullable=True)},
)
_PERIOD = _Schema(
    "Alvys.Models.Period",
    {"Start": _Field("datetime", required=True), "End": _Field("datetime", nullable=True)},
)
_OPT_STR = _Field("string", nullable=True)
_OPT_STRS = _Field("strings", nullable=True)
_OPT_PERIOD = _Field("object", nullable=True, schema=_PERIOD)
_MONEY_FIELD = _Field("object", required=True, schema=_MONEY)

CUSTOMER_PAYMENT_REQUEST = _Schema(
    "Alvys.Models.Invoices.Request.CustomerPaymentRequest",
    {
        "LoadNumber": _Field("string", required=True),
        "Amount": _MONEY_FIELD,
        "PaymentDate": _Field("datetime", required=True),
        "ReferenceNumber": _Field("string", required=True),
        "InvoiceNumber": _OPT_STR,
        "PaymentMethod": _OPT_STR,
        "CheckNumber": _OPT_STR,
        "Note": _OPT_STR,
    },
)
CARRIER_PAYMENT_REQUEST = _Schema(
    "Alvys.Models.Invoices.Request.CarrierPaymentRequest",
    {
        "TripId": _Field("string", required=True),
        "Amount": _MONEY_FIELD,
        "PaymentDate": _Field("datetime", required=True),
        "ReferenceNumber": _Field("string", required=True),
        "PaymentMethod": _OPT_STR,
        "CheckNumber": _OPT_STR,
        "Note": _OPT_STR,
    },
)
LOAD_SEARCH_REQUEST = _Schema(
    "Alvys.Models.Loads.LoadSearchRequest",
    {
        "Page": _Field("integer", required=True),
        "PageSize": _Field("integer", required=True),
        "DateRange": _OPT_PERIOD,
        "Status": _OPT_STRS,
        "OrderNumbers": _OPT_STRS,
        "LoadNumbers": _OPT_STRS,
        "PONumbers": _OPT_STRS,
        "CustomerId": _OPT_STR,
        "UpdatedAtRange": _OPT_PERIOD,
        "UpdatedBy": _OPT_STR,
        "CustomerSalesAgentId": _OPT_STR,
        "IncludeDeleted": _Field("boolean", required=True),
    },
)
TRIP_SEARCH_REQUEST = _Schema(
    "Alvys.Models.Loads.TripSearchRequest",
    {
        "Page": _Field("integer", required=True),
        "PageSize": _Field("integer", required=True),
        "Status": _OPT_STRS,
        "LoadNumbers": _OPT_STRS,
        "TripNumbers": _OPT_STRS,
        "PickupDateRange": _OPT_PERIOD,
        "DeliveryDateRange": _OPT_PERIOD,
        "UpdatedAtRange": _OPT_PERIOD,
        "UpdatedBy": _OPT_STR,
        "IncludeDeleted": _Field("boolean", required=True),
    },
)


def _add_error(errors: dict[str, list[str]], key: str, message: str) -> None:
    errors.setdefault(key, []).append(message)


def _scalar(value: Any, kind: str) -> tuple[bool, Any]:
    """(ok, parsed) for one JSON value of a scalar or string-list kind."""
    if kind == "string":
        return isinstance(value, str), value
    if kind == "boolean":
        return isinstance(value, bool), value
    if kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31
        return ok, value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            return False, None
        return True, Decimal(value)
    if kind == "datetime":
        parsed = _parse_datetime(value) if isinstance(value, str) else None
        return parsed is not None, parsed
    if kind == "strings":
        ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
        return ok, value
    raise AssertionError(kind)


def validate_body(data: Any, schema: _Schema, errors: dict[str, list[str]], path: str = "") -> dict[str, Any]:
    """Check ``data`` against a request schema; fills ``errors`` the way ASP.NET keys them.

    Missing/null/blank required members: ``{"ReferenceNumber": ["The ReferenceNumber field is
    required."]}`` ([Required] semantics); wrong JSON types and unknown members: keyed by JSON path,
    with System.Text.Json's texts. Returns the parsed values (Decimal amounts, aware datetimes).
    """
    json_path = f"$.{path}" if path else "$"
    if not isinstance(data, dict):
        _add_error(
            errors, json_path, f"The JSON value could not be converted to {schema.name}. Path: {json_path}."
        )
        return {}
    for key in data:
        if key not in schema.fields:
            _add_error(
                errors,
                f"{json_path}.{key}",
                f"The JSON property '{key}' could not be mapped to any .NET member contained in type "
                f"'{schema.name}'.",
            )
    parsed: dict[str, Any] = {}
    for name, spec in schema.fields.items():
        member_path = f"{path}.{name}" if path else name
        value = data.get(name)
        if value is None:
            if spec.required:
                _add_error(errors, member_path, f"The {name} field is required.")
            elif name in data and not spec.nullable:
                type_name = _DOTNET_TYPES.get(spec.kind, spec.schema.name if spec.schema else "object")
                _add_error(
                    errors, f"$.{member_path}", f"The JSON value could not be converted to {type_name}."
                )
            parsed[name] = None
            continue
        if spec.kind == "object":
            assert spec.schema is not None
            parsed[name] = validate_body(value, spec.schema, errors, member_path)
            continue
        ok, result = _scalar(value, spec.kind)
        if not ok:
            _add_error(
                errors,
                f"$.{member_path}",
                f"The JSON value could not be converted to {_DOTNET_TYPES[spec.kind]}. Path: $.{member_path}.",
            )
        elif spec.kind == "string" and spec.required and not result.strip():
            _add_error(errors, member_path, f"The {name} field is required.")
        else:
            parsed[name] = result
    return parsed


_JSON_MEDIA_TYPES = frozenset({"application/json", "text/json", "application/json-patch+json"})


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _is_json_media(media_type: str) -> bool:
    """The request content types the spec lists: json-patch+json, json, text/json, application/*+json."""
    return media_type in _JSON_MEDIA_TYPES or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json_body(request: Request) -> Any:
    """The request's JSON body with numbers as Decimal; 415/400 ProblemDetails as ASP.NET answers."""
    media_type = _media_type(request)
    if not _is_json_media(media_type):
        raise AlvysProblem(415, f"Unsupported content type '{media_type or '(none)'}'.")
    raw = await request.body()
    if not raw.strip():
        raise _validation_problem({"": ["A non-empty request body is required."]})
    try:
        return json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _validation_problem({"$": [f"The request body is not valid JSON: {exc}"]}) from exc


def _require_version(request: Request, allowed: frozenset[str]) -> None:
    version = str(request.path_params.get("version", ""))
    if version not in allowed:
        raise AlvysProblem(
            400,
            f"The HTTP resource that matches the request URI '{request.url.path}' does not support "
            f"the API version '{version}'.",
            errors={"version": [f"Unsupported API version '{version}'."]},
            extensions={"Code": "UnsupportedApiVersion"},
        )


# --------------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------------


@dataclass
class CustomerPayment:
    id: str
    load_number: str
    reference: str
    amount: Decimal
    currency: int
    payment_date: datetime
    invoice_number: str | None
    method: str | None
    check_number: str | None
    note: str | None
    recorded_at: datetime
    post_count: int = 1


@dataclass
class CarrierPayment:
    id: str
    trip_id: str
    reference: str
    amount: Decimal
    currency: int
    payment_date: datetime
    method: str | None
    check_number: str | None
    note: str | None
    recorded_at: datetime
    post_count: int = 1


@dataclass
class Load:
    id: str
    load_number: str
    order_number: str
    po_number: str | None
    status: str
    customer_id: str
    customer_name: str
    billable: Decimal
    currency: int
    created_at: datetime
    invoice_number: str | None = None
    is_deleted: bool = False
    paid_at: datetime | None = None
    updated_at: datetime | None = None
    payments: list[CustomerPayment] = field(default_factory=list)

    def total_paid(self) -> Decimal:
        return sum((p.amount for p in self.payments), _ZERO)


@dataclass
class Trip:
    id: str
    trip_number: str
    load_number: str
    status: str
    carrier_id: str
    carrier_payable: Decimal
    currency: int
    trip_value: Decimal
    miles: Decimal
    is_deleted: bool = False
    carrier_paid_at: datetime | None = None
    updated_at: datetime | None = None
    payments: list[CarrierPayment] = field(default_factory=list)

    def total_paid(self) -> Decimal:
        return sum((p.amount for p in self.payments), _ZERO)


@dataclass
class Invoice:
    id: str
    number: str
    load_numbers: list[str]
    status: str
    created_date: datetime
    invoiced_date: datetime | None
    due_date: datetime | None
    type: str = "Standard"


@dataclass
class AlvysOptions:
    """Switches for tests and demos; changeable through ``POST /_sandbox/alvys/options``."""

    customer_payment_shape: CustomerPaymentShape = "current"
    invoice_case: InvoiceCase = "pascal"
    token_ttl_seconds: float = 3600.0


@dataclass
class _Token:
    expires_at: float
    scopes: frozenset[str]
    client_id: str


@dataclass(frozen=True)
class PaymentIn:
    """A validated payment request (customer or carrier): ``target`` is the LoadNumber or TripId."""

    target: str
    amount: Decimal
    currency: int
    payment_date: datetime
    reference: str
    invoice_number: str | None
    method: str | None
    check_number: str | None
    note: str | None


Handler = Callable[[Request], Awaitable[Response]]
#: ``hook(endpoint_key, request, call_next) -> Response``: run before/after/instead of an endpoint.
EndpointHook = Callable[[str, Request, Callable[[], Awaitable[Response]]], Awaitable[Response]]


def _stable_id(kind: str, key: str) -> str:
    """Alvys-looking 32-hex id, the same on every reset so demo ids can be written down."""
    return uuid.uuid5(_ID_NAMESPACE, f"{kind}:{key}").hex


def _amount(value: Any, where: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{where}: bad amount {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"{where}: bad amount {value!r}")
    return amount


def _money_record(value: Any, where: str) -> tuple[Decimal, int]:
    if isinstance(value, Mapping):
        return _amount(value.get("Amount"), where), _currency(value.get("Currency"))
    return _amount(value, where), USD


def _record_datetime(value: Any, default: datetime | None, where: str) -> datetime | None:
    if value is None:
        return default
    parsed = _parse_datetime(str(value))
    if parsed is None:
        raise ValueError(f"{where}: bad date-time {value!r}")
    return parsed


def _check_keys(record: Mapping[str, Any], allowed: set[str], required: set[str], what: str) -> None:
    unknown = {k for k in record if k not in allowed and not k.startswith("_")}
    if unknown:
        raise ValueError(f"{what}: unknown fields {sorted(unknown)}; allowed: {sorted(allowed)}")
    missing = {k for k in required if record.get(k) in (None, "")}
    if missing:
        raise ValueError(f"{what}: missing fields {sorted(missing)}")


def _now() -> datetime:
    return datetime.now(UTC)


class AlvysSandbox:
    """In-memory Alvys: loads, trips, invoices, recorded payments, tokens, options, request counts.

    Every public method takes the state lock (a threading lock: tests read and steer the state from
    their own thread while uvicorn serves from another), and no method awaits while holding it.
    """

    def __init__(
        self,
        document: Mapping[str, Any] | None = None,
        *,
        token_ttl_seconds: float = 3600,
        clients: Mapping[str, str] | None = None,
        audience: str = AUDIENCE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.RLock()
        self._document: dict[str, Any] = copy.deepcopy(dict(document or {}))
        self._default_ttl = float(token_ttl_seconds)
        self._clients = dict(clients or {DEMO_CLIENT_ID: DEMO_CLIENT_SECRET})
        self._audience = audience
        self._clock = clock
        self._tokens: dict[str, _Token] = {}
        #: Middleware-like chain run around every endpoint; kept across resets (it is wiring, not data).
        self.hooks: list[EndpointHook] = []
        self.options = AlvysOptions(token_ttl_seconds=self._default_ttl)
        self.loads: dict[str, Load] = {}
        self.trips: dict[str, Trip] = {}
        self.invoices: dict[str, Invoice] = {}
        self._postings: list[CustomerPayment | CarrierPayment] = []
        self._requests: dict[str, int] = {}
        self.reset()

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> AlvysSandbox:
        """Build from a data file: its ``"alvys"`` section, or the whole document if it has none."""
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(document.get("alvys", document), **kwargs)

    # ----- data ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the data the sandbox was built with; options and counters to defaults. Tokens stay."""
        with self._lock:
            self.options = AlvysOptions(token_ttl_seconds=self._default_ttl)
            self.loads, self.trips, self.invoices = {}, {}, {}
            self._postings, self._requests = [], {}
            for record in self._document.get("loads", []):
                self.add_load(record)
            for record in self._document.get("trips", []):
                self.add_trip(record)
            for record in self._document.get("invoices", []):
                self.add_invoice(record)

    def add_load(self, record: Mapping[str, Any]) -> Load:
        """Add a load from a data-file record; ValueError on bad records, KeyError on duplicates."""
        allowed = {
            "Id",
            "LoadNumber",
            "OrderNumber",
            "PONumber",
            "Status",
            "CustomerId",
            "CustomerName",
            "Billable",
            "InvoiceNumber",
            "CreatedAt",
            "IsDeleted",
        }
        _check_keys(record, allowed, {"LoadNumber", "Status", "Billable"}, "load")
        number = str(record["LoadNumber"])
        billable, currency = _money_record(record["Billable"], f"load {number}")
        load = Load(
            id=str(record.get("Id") or _stable_id("load", number)),
            load_number=number,
            order_number=str(record.get("OrderNumber") or number),
            po_number=record.get("PONumber"),
            status=_canonical(str(record["Status"]), LOAD_STATUSES, "load"),
            customer_id=str(record.get("CustomerId") or "CUST-DEMO"),
            customer_name=str(record.get("CustomerName") or "Demo Customer"),
            billable=billable,
            currency=currency,
            created_at=_record_datetime(record.get("CreatedAt"), _EPOCH_DEFAULT, number) or _EPOCH_DEFAULT,
            is_deleted=bool(record.get("IsDeleted", False)),
        )
        invoice_number = str(record["InvoiceNumber"]) if record.get("InvoiceNumber") else None
        with self._lock:
            if number in self.loads:
                raise KeyError(f"load {number} exists")
            existing = next((i for i in self.invoices.values() if i.number == invoice_number), None)
            if existing is not None and self.loads[existing.load_numbers[0]].currency != currency:
                raise ValueError(f"load {number}: invoice {invoice_number} is in another currency")
            self.loads[number] = load
            if existing is not None:
                existing.load_numbers.append(number)
                load.invoice_number = invoice_number
            elif invoice_number is not None:
                self.add_invoice({"Number": invoice_number, "LoadNumbers": [number]})
        return load

    def add_trip(self, record: Mapping[str, Any]) -> Trip:
        """Add a trip of an existing load; ValueError on bad records, KeyError on duplicates."""
        allowed = {
            "Id",
            "TripNumber",
            "LoadNumber",
            "Status",
            "CarrierPayable",
            "CarrierId",
            "TripValue",
            "Miles",
            "IsDeleted",
        }
        _check_keys(record, allowed, {"Id", "TripNumber", "LoadNumber", "Status", "CarrierPayable"}, "trip")
        trip_id = str(record["Id"])
        payable, currency = _money_record(record["CarrierPayable"], f"trip {trip_id}")
        with self._lock:
            load = self.loads.get(str(record["LoadNumber"]))
            if load is None:
                raise ValueError(f"trip {trip_id}: no load {record['LoadNumber']!r}")
            if trip_id in self.trips:
                raise KeyError(f"trip {trip_id} exists")
            value = record.get("TripValue")
            trip_value = _money_record(value, f"trip {trip_id}")[0] if value is not None else load.billable
            trip = Trip(
                id=trip_id,
                trip_number=str(record["TripNumber"]),
                load_number=load.load_number,
                status=_canonical(str(record["Status"]), TRIP_STATUSES, "trip"),
                carrier_id=str(record.get("CarrierId") or _stable_id("carrier", trip_id)),
                carrier_payable=payable,
                currency=currency,
                trip_value=trip_value,
                miles=_amount(record.get("Miles", 0), f"trip {trip_id}"),
                is_deleted=bool(record.get("IsDeleted", False)),
            )
            self.trips[trip_id] = trip
        return trip

    def add_invoice(self, record: Mapping[str, Any]) -> Invoice:
        """Add an invoice over existing loads (one currency); ValueError/KeyError as above."""
        allowed = {"Id", "Number", "LoadNumbers", "Status", "CreatedDate", "InvoicedDate", "DueDate", "Type"}
        _check_keys(record, allowed, {"Number", "LoadNumbers"}, "invoice")
        number = str(record["Number"])
        load_numbers = [str(n) for n in record["LoadNumbers"]]
        invoiced = _record_datetime(record.get("InvoicedDate"), _EPOCH_DEFAULT + timedelta(days=5), number)
        invoice = Invoice(
            id=str(record.get("Id") or _stable_id("invoice", number)),
            number=number,
            load_numbers=load_numbers,
            status=_canonical(str(record.get("Status") or "AwaitingPayment"), INVOICE_STATUSES, "invoice"),
            created_date=_record_datetime(record.get("CreatedDate"), invoiced, number) or _EPOCH_DEFAULT,
            invoiced_date=invoiced,
            due_date=_record_datetime(
                record.get("DueDate"), (invoiced or _EPOCH_DEFAULT) + timedelta(days=30), number
            ),
            type=str(record.get("Type") or "Standard"),
        )
        with self._lock:
            loads = [self.loads.get(n) for n in load_numbers]
            if not load_numbers or any(load is None for load in loads):
                raise ValueError(f"invoice {number}: unknown loads in {load_numbers}")
            if len({load.currency for load in loads if load}) > 1:
                raise ValueError(f"invoice {number}: loads in different currencies")
            if invoice.id in self.invoices or any(i.number == number for i in self.invoices.values()):
                raise KeyError(f"invoice {number} exists")
            self.invoices[invoice.id] = invoice
            for load in loads:
                if load is not None:
                    load.invoice_number = number
        return invoice

    def set_load_status(self, load_number: str, status: str) -> Load:
        with self._lock:
            load = self.loads[load_number]
            load.status = _canonical(status, LOAD_STATUSES, "load")
            load.updated_at = _now()
            return load

    def set_trip_status(self, trip_id: str, status: str) -> Trip:
        with self._lock:
            trip = self.trips[trip_id]
            trip.status = _canonical(status, TRIP_STATUSES, "trip")
            trip.updated_at = _now()
            return trip

    def set_options(
        self,
        *,
        customer_payment_shape: CustomerPaymentShape | None = None,
        invoice_case: InvoiceCase | None = None,
        token_ttl_seconds: float | None = None,
    ) -> AlvysOptions:
        with self._lock:
            if customer_payment_shape is not None:
                if customer_payment_shape not in get_args(CustomerPaymentShape):
                    raise ValueError(f"customer_payment_shape: {customer_payment_shape!r}")
                self.options.customer_payment_shape = customer_payment_shape
            if invoice_case is not None:
                if invoice_case not in get_args(InvoiceCase):
                    raise ValueError(f"invoice_case: {invoice_case!r}")
                self.options.invoice_case = invoice_case
            if token_ttl_seconds is not None:
                if token_ttl_seconds <= 0:
                    raise ValueError("token_ttl_seconds must be > 0")
                self.options.token_ttl_seconds = float(token_ttl_seconds)
            return copy.copy(self.options)

    # ----- tokens -------------------------------------------------------------------------------

    def issue_token(self, form: Mapping[str, str]) -> dict[str, Any]:
        """OAuth2 client-credentials grant, as auth.alvys.com answers it."""
        missing = [k for k in ("client_id", "client_secret", "audience", "grant_type") if not form.get(k)]
        if missing:
            raise AlvysProblem(
                400,
                f"Missing required parameter(s): {', '.join(missing)}.",
                errors={k: [f"The {k} field is required."] for k in missing},
                extensions={"error": "invalid_request"},
            )
        if form["grant_type"] != "client_credentials":
            raise AlvysProblem(
                400,
                f"Unsupported grant type: {form['grant_type']}.",
                errors={"grant_type": ["Only client_credentials is supported."]},
                extensions={"error": "unsupported_grant_type"},
            )
        with self._lock:
            if self._clients.get(form["client_id"]) != form["client_secret"]:
                raise AlvysProblem(
                    401,
                    "Unauthorized: wrong client credentials.",
                    extensions={"error": "access_denied", "error_description": "Unauthorized"},
                )
            if form["audience"] != self._audience:
                raise AlvysProblem(
                    403,
                    f"Service not found: {form['audience']}",
                    extensions={"error": "access_denied", "error_description": "Service not found"},
                )
            requested = set(form.get("scope", "").split()) if form.get("scope") else set(SCOPES)
            scopes = frozenset(s for s in SCOPES if s in requested)
            ttl = self.options.token_ttl_seconds
            token = secrets.token_urlsafe(32)
            now = self._clock()
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now}
            self._tokens[token] = _Token(expires_at=now + ttl, scopes=scopes, client_id=form["client_id"])
        expires_in = int(ttl) if float(ttl).is_integer() else ttl
        scope_text = " ".join(s for s in SCOPES if s in scopes)
        return {"access_token": token, "expires_in": expires_in, "token_type": "Bearer", "scope": scope_text}

    def authorize(self, authorization: str | None, scope: str | None = None) -> None:
        """401 unless a live bearer token is given; 403 if it lacks ``scope``."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AlvysProblem(
                401,
                "Authorization header with a Bearer token is required.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        with self._lock:
            found = self._tokens.get(token.strip())
            if found is None:
                raise AlvysProblem(
                    401,
                    "The access token is invalid.",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            if found.expires_at <= self._clock():
                raise AlvysProblem(
                    401,
                    "The access token expired.",
                    headers={
                        "WWW-Authenticate": 'Bearer error="invalid_token", error_description="The token expired"'
                    },
                )
            if scope is not None and scope not in found.scopes:
                raise AlvysProblem(403, f"The access token lacks the scope '{scope}'.")

    def expire_tokens(self) -> int:
        """Make every issued token expired now (clients must fetch a new one); returns how many."""
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = float("-inf")
            return len(self._tokens)

    # ----- payments -----------------------------------------------------------------------------

    def record_customer_payment(self, payment: PaymentIn) -> dict[str, Any]:
        """Apply a customer payment to a load: 404, idempotent repeat, payable status, currency."""
        with self._lock:
            load = self.loads.get(payment.target)
            if load is None or load.is_deleted:
                raise AlvysProblem(404, f"Load '{payment.target}' was not found.")
            existing = next((p for p in load.payments if p.reference == payment.reference), None)
            if existing is not None:
                existing.post_count += 1
                return self._customer_payment_body(load, existing)
            if load.status not in PAYABLE_LOAD_STATUSES:
                raise _validation_problem(
                    {"LoadNumber": [f"Load must be in one of: {', '.join(PAYABLE_LOAD_STATUSES)}."]}
                )
            if payment.currency != load.currency:
                raise _validation_problem(
                    {
                        "Amount.Currency": [
                            f"Currency {payment.currency} does not match the load's billing "
                            f"currency {load.currency}."
                        ]
                    }
                )
            now = _now()
            recorded = CustomerPayment(
                id=uuid.uuid4().hex,
                load_number=load.load_number,
                reference=payment.reference,
                amount=payment.amount,
                currency=load.currency,
                payment_date=payment.payment_date,
                invoice_number=payment.invoice_number,
                method=payment.method,
                check_number=payment.check_number,
                note=payment.note,
                recorded_at=now,
            )
            load.payments.append(recorded)
            load.paid_at = now
            load.updated_at = now
            self._postings.append(recorded)
            return self._customer_payment_body(load, recorded)

    def _customer_payment_body(self, load: Load, payment: CustomerPayment) -> dict[str, Any]:
        if self.options.customer_payment_shape == "captured":
            return {
                "LoadNumber": load.load_number,
                "Status": load.status,
                "CustomerPayments": [
                    {
                        "Id": p.id,
                        "Amount": _money(p.amount, p.currency),
                        "PaymentDate": _iso(p.payment_date),
                        "ReferenceNumber": p.reference,
                        "InvoiceNumber": p.invoice_number,
                        "PaymentMethod": p.method,
                        "CheckNumber": p.check_number,
                    }
                    for p in load.payments
                ],
            }
        return {
            "Id": payment.id,
            "LoadNumber": load.load_number,
            "Status": load.status,
            "TotalPaid": _money(load.total_paid(), load.currency),
            "TotalBillable": _money(load.billable, load.currency),
        }

    def record_carrier_payment(self, payment: PaymentIn) -> dict[str, Any]:
        """Apply a carrier payment to a trip; the trip turns Completed once payments cover the payable."""
        with self._lock:
            trip = self.trips.get(payment.target)
            if trip is None or trip.is_deleted:
                raise AlvysProblem(404, f"Trip '{payment.target}' was not found.")
            existing = next((p for p in trip.payments if p.reference == payment.reference), None)
            if existing is not None:
                existing.post_count += 1
                return self._carrier_payment_body(trip)
            if payment.currency != trip.currency:
                raise _validation_problem(
                    {
                        "Amount.Currency": [
                            f"Currency {payment.currency} does not match the trip's carrier "
                            f"currency {trip.currency}."
                        ]
                    }
                )
            now = _now()
            recorded = CarrierPayment(
                id=uuid.uuid4().hex,
                trip_id=trip.id,
                reference=payment.reference,
                amount=payment.amount,
                currency=trip.currency,
                payment_date=payment.payment_date,
                method=payment.method,
                check_number=payment.check_number,
                note=payment.note,
                recorded_at=now,
            )
            trip.payments.append(recorded)
            trip.updated_at = now
            if trip.status != "Completed" and trip.total_paid() >= trip.carrier_payable:
                trip.status = "Completed"
                trip.carrier_paid_at = now
            self._postings.append(recorded)
            return self._carrier_payment_body(trip)

    def _carrier_payment_body(self, trip: Trip) -> dict[str, Any]:
        return {
            "TripId": trip.id,
            "TripNumber": trip.trip_number,
            "Status": trip.status,
            "CarrierPayments": [
                {
                    "Id": p.id,
                    "Amount": _money(p.amount, p.currency),
                    "PaymentDate": _iso(p.payment_date),
                    "ReferenceNumber": p.reference,
                    "PaymentMethod": p.method,
                    "CheckNumber": p.check_number,
                }
                for p in trip.payments
            ],
        }

    # ----- reads --------------------------------------------------------------------------------

    def get_invoice(self, invoice_id: str | None, invoice_number: str | None) -> dict[str, Any]:
        """InvoiceResponse by id (preferred) or number, totals following the loads' payments."""
        if not invoice_id and not invoice_number:
            raise _validation_problem({"id": ["Either id or invoiceNumber is required."]})
        with self._lock:
            if invoice_id:
                invoice = self.invoices.get(invoice_id)
            else:
                invoice = next((i for i in self.invoices.values() if i.number == invoice_number), None)
            if invoice is None:
                raise AlvysProblem(404, f"Invoice '{invoice_id or invoice_number}' was not found.")
            body = self.invoice_dto(invoice)
            return _camelize(body) if self.options.invoice_case == "camel" else body

    def invoice_dto(self, invoice: Invoice) -> dict[str, Any]:
        with self._lock:
            loads = [self.loads[n] for n in invoice.load_numbers]
            currency = loads[0].currency
            total = sum((load.billable for load in loads), _ZERO)
            payments = sorted((p for load in loads for p in load.payments), key=lambda p: p.recorded_at)
            paid = sum((p.amount for p in payments), _ZERO)
            status, paid_date = invoice.status, None
            if total > 0 and paid >= total:
                status = "Paid"
                running = _ZERO
                for p in payments:
                    running += p.amount
                    if running >= total:
                        paid_date = p.payment_date
                        break
            customer = loads[0]
            return {
                "Id": invoice.id,
                "Number": invoice.number,
                "Type": invoice.type,
                "Status": status,
                "CreatedDate": _iso(invoice.created_date),
                "InvoicedDate": _iso(invoice.invoiced_date),
                "DueDate": _iso(invoice.due_date),
                "PaidDate": _iso(paid_date),
                "Total": _money(total, currency),
                "AmountPaid": _money(paid, currency),
                "RemainingBalance": _money(max(total - paid, _ZERO), currency),
                "OverPaymentAmount": _money(max(paid - total, _ZERO), currency),
                "IsSubmitted": invoice.status != "Draft",
                "LastSendDate": _iso(invoice.invoiced_date),
                "SupplementalInvoiceType": None,
                "Vendor": {
                    "Id": "VENDOR-DEMO",
                    "Name": "FreightPay Demo Logistics",
                    "RemitAddress": None,
                    "RemitEmail": "ar@example.com",
                    "RemitPhone": None,
                },
                "Customer": {
                    "Id": customer.customer_id,
                    "Name": customer.customer_name,
                    "EmailAddresses": [],
                    "PhoneNumbers": [],
                    "BillingAddress": None,
                    "ShippingAddress": None,
                },
                "LineItems": [
                    {
                        "Id": _stable_id("line", f"{invoice.number}:{load.load_number}"),
                        "Name": "Line Haul",
                        "Amount": _money(load.billable, load.currency),
                        "Rate": {"UnitOfMeasurement": "Flat", "Units": 1, "Rate": load.billable},
                        "LoadNumber": load.load_number,
                        "CustomerId": load.customer_id,
                        "Category": "Linehaul",
                    }
                    for load in loads
                ],
                "Loads": [
                    {
                        "Id": load.id,
                        "LoadNumber": load.load_number,
                        "SubsidiaryName": "FreightPay Demo Logistics",
                        "Source": "Manual",
                        "OrderNumber": load.order_number,
                        "PONumber": load.po_number,
                    }
                    for load in loads
                ],
                "Payments": [
                    {
                        "Id": p.id,
                        "PaymentDate": _iso(p.payment_date),
                        "Amount": _money(p.amount, p.currency),
                        "CheckNumber": p.check_number,
                        "PaymentReference": p.reference,
                    }
                    for p in payments
                ],
            }

    def load_dto(self, load: Load) -> dict[str, Any]:
        """LoadResponse: ids, numbers, status, money (CustomerRate = billable), payments once recorded."""
        with self._lock:
            invoiced = load.invoice_number is not None
            invoice = next((i for i in self.invoices.values() if i.number == load.invoice_number), None)
            references = [{"Name": "PO", "Value": load.po_number}] if load.po_number else []
            return {
                "Id": load.id,
                "LoadNumber": load.load_number,
                "OrderNumber": load.order_number,
                "PONumber": load.po_number,
                "CustomerId": load.customer_id,
                "CustomerName": load.customer_name,
                "Status": load.status,
                "LoadType": "TL",
                "CustomerType": ["Shipper"],
                "Stops": [],
                "InvoiceAs": "Company",
                "Linehaul": _money(load.billable, load.currency),
                "FuelSurcharge": _money(_ZERO, load.currency),
                "CustomerAccessorials": _money(_ZERO, load.currency),
                "CustomerRate": _money(load.billable, load.currency),
                "InvoicedAmount": _money(load.billable, load.currency) if invoiced else None,
                "InvoicedAt": _iso(invoice.invoiced_date) if invoice else None,
                "Notes": [],
                "CreatedAt": _iso(load.created_at),
                "CreatedBy": "sandbox",
                "References": references,
                "UpdatedAt": _iso(load.updated_at),
                "PaidAt": _iso(load.paid_at),
                "TotalPaid": _money(load.total_paid(), load.currency) if load.payments else None,
                "Payments": [
                    {"Id": p.id, "Amount": _money(p.amount, p.currency), "PaidAt": _iso(p.payment_date)}
                    for p in load.payments
                ]
                if load.payments
                else None,
                "IsDeleted": load.is_deleted,
            }

    def trip_dto(self, trip: Trip) -> dict[str, Any]:
        """TripResponse: carrier payable as Carrier.TotalPayable; TripValue is the load revenue share."""
        with self._lock:
            load = self.loads[trip.load_number]
            miles = {"Distance": {"Value": trip.miles, "UnitOfMeasure": "Miles"}}
            return {
                "Id": trip.id,
                "TripNumber": trip.trip_number,
                "Status": trip.status,
                "LoadNumber": trip.load_number,
                "OrderNumber": load.order_number,
                "Stops": [],
                "TotalMileage": miles,
                "EmptyMileage": {"Distance": {"Value": 0, "UnitOfMeasure": "Miles"}},
                "LoadedMileage": miles,
                "CarrierPaidAt": _iso(trip.carrier_paid_at),
                "TripValue": _money(trip.trip_value, load.currency),
                "CarrierPayOnHold": False,
                "Carrier": {
                    "Id": trip.carrier_id,
                    "CarrierInvoiceNumber": None,
                    "Rate": _money(trip.carrier_payable, trip.currency),
                    "Linehaul": _money(trip.carrier_payable, trip.currency),
                    "Accessorials": _money(_ZERO, trip.currency),
                    "TotalPayable": _money(trip.carrier_payable, trip.currency),
                },
                "UpdatedAt": _iso(trip.updated_at),
                "IsDeleted": trip.is_deleted,
            }

    def search_loads(self, query: Mapping[str, Any]) -> dict[str, Any]:
        """PagedResponse of loads; filters LoadNumbers, PONumbers, OrderNumbers, Status, CustomerId.

        Date-range and user filters are accepted and not applied (the demo data has no history).
        """
        with self._lock:
            statuses = {_norm_status(s) for s in query.get("Status") or []}
            found = [
                load
                for load in self.loads.values()
                if (query.get("IncludeDeleted") or not load.is_deleted)
                and (not query.get("LoadNumbers") or load.load_number in query["LoadNumbers"])
                and (not query.get("PONumbers") or load.po_number in query["PONumbers"])
                and (not query.get("OrderNumbers") or load.order_number in query["OrderNumbers"])
                and (not statuses or _norm_status(load.status) in statuses)
                and (not query.get("CustomerId") or load.customer_id == query["CustomerId"])
            ]
            return _page(query, [self.load_dto(load) for load in found])

    def search_trips(self, query: Mapping[str, Any]) -> dict[str, Any]:
        """PagedResponse of trips; filters LoadNumbers, TripNumbers, Status (date ranges not applied)."""
        with self._lock:
            statuses = {_norm_status(s) for s in query.get("Status") or []}
            found = [
                trip
                for trip in self.trips.values()
                if (query.get("IncludeDeleted") or not trip.is_deleted)
                and (not query.get("LoadNumbers") or trip.load_number in query["LoadNumbers"])
                and (not query.get("TripNumbers") or trip.trip_number in query["TripNumbers"])
                and (not statuses or _norm_status(trip.status) in statuses)
            ]
            return _page(query, [self.trip_dto(trip) for trip in found])

    # ----- observation (controls) ----------------------------------------------------------------

    def postings(self) -> list[dict[str, Any]]:
        """Every recorded payment, in recording order, with how many accepted POSTs carried it."""
        with self._lock:
            rows: list[dict[str, Any]] = []
            for p in self._postings:
                if isinstance(p, CustomerPayment):
                    kind, load_number, trip_id, trip_number = "customer", p.load_number, None, None
                else:
                    trip = self.trips[p.trip_id]
                    kind, load_number, trip_id, trip_number = (
                        "carrier",
                        trip.load_number,
                        trip.id,
                        trip.trip_number,
                    )
                rows.append(
                    {
                        "kind": kind,
                        "id": p.id,
                        "load_number": load_number,
                        "trip_id": trip_id,
                        "trip_number": trip_number,
                        "reference": p.reference,
                        "amount": str(p.amount),
                        "currency": p.currency,
                        "payment_date": _iso(p.payment_date),
                        "recorded_at": _iso(p.recorded_at),
                        "post_count": p.post_count,
                    }
                )
            return rows

    def count_request(self, endpoint: str) -> None:
        with self._lock:
            self._requests[endpoint] = self._requests.get(endpoint, 0) + 1

    def request_counts(self) -> dict[str, int]:
        """Requests received per endpoint key since the last reset (every answer, errors included)."""
        with self._lock:
            return {key.value: self._requests.get(key.value, 0) for key in AlvysEndpoint}

    # ----- the hook point -----------------------------------------------------------------------

    async def dispatch(self, endpoint: str, request: Request, handler: Handler) -> Response:
        """Count the request, then run ``hooks`` around ``handler``; AlvysProblem -> ProblemDetails."""
        self.count_request(endpoint)
        instance = request.url.path

        def answer(error: Exception) -> Response | None:
            return error.to_response(instance) if isinstance(error, AlvysProblem) else None

        return await run_hooks(tuple(self.hooks), endpoint, request, handler, answer)


def _page(query: Mapping[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """0-based Page of PageSize items, as Alvys pages its searches."""
    page, size = int(query["Page"]), int(query["PageSize"])
    return {
        "Page": page,
        "PageSize": size,
        "Total": len(items),
        "Items": items[page * size : (page + 1) * size],
    }


# --------------------------------------------------------------------------------------------------
# HTTP: the Alvys API (mounted at /alvys)
# --------------------------------------------------------------------------------------------------


async def _token_form(request: Request) -> dict[str, str]:
    """The token request's fields from a JSON or form body (auth.alvys.com takes both)."""
    raw = await request.body()
    media_type = _media_type(request)
    if media_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    if _is_json_media(media_type) or not media_type:
        try:
            data = json.loads(raw or b"{}")
        except ValueError as exc:
            raise AlvysProblem(400, "The request body is not valid JSON.", errors={"$": [str(exc)]}) from exc
        if isinstance(data, dict):
            return {str(k): v for k, v in data.items() if isinstance(v, str)}
    raise AlvysProblem(415, f"Unsupported content type '{media_type}'.")


def _payment_in(body: Any, schema: _Schema, target: str) -> PaymentIn:
    """Validate a payment body: schema first, then 'Amount must be greater than zero.'."""
    errors: dict[str, list[str]] = {}
    parsed = validate_body(body, schema, errors)
    money = parsed.get("Amount") or {}
    amount = money.get("Amount")
    if isinstance(amount, Decimal) and amount <= 0:
        _add_error(errors, "Amount.Amount", "Amount must be greater than zero.")
    if errors or not isinstance(amount, Decimal):
        raise _validation_problem(errors)
    return PaymentIn(
        target=parsed[target],
        amount=amount,
        currency=_currency(money.get("Currency")),
        payment_date=parsed["PaymentDate"],
        reference=parsed["ReferenceNumber"],
        invoice_number=parsed.get("InvoiceNumber"),
        method=parsed.get("PaymentMethod"),
        check_number=parsed.get("CheckNumber"),
        note=parsed.get("Note"),
    )


def _search_query(body: Any, schema: _Schema) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    parsed = validate_body(body, schema, errors)
    if isinstance(parsed.get("Page"), int) and parsed["Page"] < 0:
        _add_error(errors, "Page", "Page must be greater than or equal to 0.")
    if isinstance(parsed.get("PageSize"), int) and parsed["PageSize"] < 1:
        _add_error(errors, "PageSize", "PageSize must be greater than 0.")
    if errors:
        raise _validation_problem(errors)
    return parsed


def alvys_router(state: AlvysSandbox) -> APIRouter:
    """The Alvys endpoints over ``state``: token, payments, invoices, loads/trips search."""
    router = APIRouter(tags=["Alvys (simulated)"])

    def add(path: str, method: str, endpoint: AlvysEndpoint, handler: Handler, summary: str) -> None:
        async def route(request: Request) -> Response:
            return await state.dispatch(endpoint.value, request, handler)

        router.add_api_route(
            path,
            route,
            methods=[method],
            name=f"alvys:{endpoint.value}",
            summary=summary,
            response_class=DecimalJSONResponse,
        )

    async def token(request: Request) -> Response:
        body = state.issue_token(await _token_form(request))
        return DecimalJSONResponse(body, headers={"Cache-Control": "no-store"})

    async def customer_payments(request: Request) -> Response:
        _require_version(request, V1)
        state.authorize(request.headers.get("authorization"), WRITE_SCOPE)
        payment = _payment_in(await read_json_body(request), CUSTOMER_PAYMENT_REQUEST, "LoadNumber")
        return DecimalJSONResponse(state.record_customer_payment(payment))

    async def carrier_payments(request: Request) -> Response:
        _require_version(request, V1)
        state.authorize(request.headers.get("authorization"), WRITE_SCOPE)
        payment = _payment_in(await read_json_body(request), CARRIER_PAYMENT_REQUEST, "TripId")
        return DecimalJSONResponse(state.record_carrier_payment(payment))

    async def get_invoice(request: Request) -> Response:
        _require_version(request, V1)
        state.authorize(request.headers.get("authorization"))
        params = request.query_params
        return DecimalJSONResponse(state.get_invoice(params.get("id"), params.get("invoiceNumber")))

    async def loads_search(request: Request) -> Response:
        _require_version(request, V1_V2)
        state.authorize(request.headers.get("authorization"))
        query = _search_query(await read_json_body(request), LOAD_SEARCH_REQUEST)
        return DecimalJSONResponse(state.search_loads(query))

    async def trips_search(request: Request) -> Response:
        _require_version(request, V1)
        state.authorize(request.headers.get("authorization"))
        query = _search_query(await read_json_body(request), TRIP_SEARCH_REQUEST)
        return DecimalJSONResponse(state.search_trips(query))

    base = "/api/p/v{version}"
    add("/oauth/token", "POST", AlvysEndpoint.TOKEN, token, "OAuth2 client-credentials token")
    add(
        f"{base}/invoices/customer-payments",
        "POST",
        AlvysEndpoint.CUSTOMER_PAYMENTS,
        customer_payments,
        "Record customer payment",
    )
    add(
        f"{base}/invoices/carrier-payments",
        "POST",
        AlvysEndpoint.CARRIER_PAYMENTS,
        carrier_payments,
        "Record carrier payment",
    )
    add(f"{base}/invoices", "GET", AlvysEndpoint.GET_INVOICE, get_invoice, "Get invoice")
    add(f"{base}/loads/search", "POST", AlvysEndpoint.LOADS_SEARCH, loads_search, "Search loads")
    add(f"{base}/trips/search", "POST", AlvysEndpoint.TRIPS_SEARCH, trips_search, "Search trips")
    return router


# --------------------------------------------------------------------------------------------------
# HTTP: sandbox controls (mounted at /_sandbox/alvys; not part of Alvys)
# --------------------------------------------------------------------------------------------------


class StatusBody(BaseModel):
    """Body of the status controls: ``{"Status": "Invoiced"}`` (spaces/case forgiven)."""

    model_config = ConfigDict(extra="forbid")
    Status: str


class OptionsBody(BaseModel):
    """Body of ``POST /_sandbox/alvys/options``; omitted options are left as they are."""

    model_config = ConfigDict(extra="forbid")
    customer_payment_shape: CustomerPaymentShape | None = None
    invoice_case: InvoiceCase | None = None
    token_ttl_seconds: float | None = Field(default=None, gt=0)


def alvys_controls_router(state: AlvysSandbox) -> APIRouter:
    """Test/demo controls: steer statuses and options, add records, read what was posted."""
    router = APIRouter(tags=["sandbox controls: Alvys"])

    def _add(adder: Callable[[Mapping[str, Any]], Any], record: dict[str, Any]) -> Any:
        try:
            return adder(record)
        except KeyError as exc:
            raise HTTPException(409, str(exc.args[0])) from exc
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc

    @router.post("/loads/{load_number}/status")
    def set_load_status(load_number: str, body: StatusBody) -> Response:
        try:
            load = state.set_load_status(load_number, body.Status)
        except KeyError as exc:
            raise HTTPException(404, f"no load {load_number}") from exc
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        return DecimalJSONResponse(state.load_dto(load))

    @router.post("/trips/{trip_id}/status")
    def set_trip_status(trip_id: str, body: StatusBody) -> Response:
        try:
            trip = state.set_trip_status(trip_id, body.Status)
        except KeyError as exc:
            raise HTTPException(404, f"no trip {trip_id}") from exc
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        return DecimalJSONResponse(state.trip_dto(trip))

    @router.get("/loads/{load_number}")
    def get_load(load_number: str) -> Response:
        load = state.loads.get(load_number)
        if load is None:
            raise HTTPException(404, f"no load {load_number}")
        return DecimalJSONResponse(state.load_dto(load))

    @router.get("/trips/{trip_id}")
    def get_trip(trip_id: str) -> Response:
        trip = state.trips.get(trip_id)
        if trip is None:
            raise HTTPException(404, f"no trip {trip_id}")
        return DecimalJSONResponse(state.trip_dto(trip))

    @router.post("/loads", status_code=201)
    def add_load(record: dict[str, Any]) -> Response:
        load = _add(state.add_load, record)
        return DecimalJSONResponse(state.load_dto(load), status_code=201)

    @router.post("/trips", status_code=201)
    def add_trip(record: dict[str, Any]) -> Response:
        trip = _add(state.add_trip, record)
        return DecimalJSONResponse(state.trip_dto(trip), status_code=201)

    @router.post("/invoices", status_code=201)
    def add_invoice(record: dict[str, Any]) -> Response:
        invoice = _add(state.add_invoice, record)
        return DecimalJSONResponse(state.invoice_dto(invoice), status_code=201)

    @router.get("/postings")
    def postings(
        kind: Literal["customer", "carrier"] | None = None, reference: str | None = None
    ) -> Response:
        rows = [
            row
            for row in state.postings()
            if (kind is None or row["kind"] == kind) and (reference is None or row["reference"] == reference)
        ]
        return DecimalJSONResponse(rows)

    @router.get("/requests")
    def requests() -> Response:
        return DecimalJSONResponse(state.request_counts())

    @router.post("/tokens/expire")
    def expire_tokens() -> Response:
        return DecimalJSONResponse({"expired": state.expire_tokens()})

    @router.get("/options")
    def get_options() -> Response:
        return DecimalJSONResponse(vars(copy.copy(state.options)))

    @router.post("/options")
    def set_options(body: OptionsBody) -> Response:
        try:
            options = state.set_options(
                customer_payment_shape=body.customer_payment_shape,
                invoice_case=body.invoice_case,
                token_ttl_seconds=body.token_ttl_seconds,
            )
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        return DecimalJSONResponse(vars(options))

    @router.post("/reset")
    def reset() -> Response:
        state.reset()
        return DecimalJSONResponse({"reset": "alvys"})

    return router
