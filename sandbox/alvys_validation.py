"""Alvys's request validation: the spec's request schemas, checked with ASP.NET's messages and keys.

Why: freightpay's client must cope with the 400/415 answers Alvys really gives (ValidationProblemDetails
keyed by member name or JSON path, System.Text.Json's texts), so the simulator binds request bodies the
way ASP.NET model binding does, not the way FastAPI would. Part of the Alvys simulator (see
:mod:`sandbox.alvys`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import parse_qsl

from fastapi import Request

from sandbox.alvys_records import PaymentIn
from sandbox.alvys_wire import AlvysProblem, currency_code, parse_datetime, validation_problem


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
CUSTOMER_SEARCH_REQUEST = _Schema(
    "Alvys.Models.Loads.CustomerSearchRequest",
    {
        "Page": _Field("integer", required=True),
        "PageSize": _Field("integer", required=True),
        # Required and not nullable in the spec: null or missing is "The Statuses field is required.";
        # an empty list passes ([Required] only refuses null).
        "Statuses": _Field("strings", required=True),
        "CreatedDateRange": _OPT_PERIOD,
    },
)
INVOICE_SEARCH_REQUEST = _Schema(
    "Alvys.Models.Invoices.Request.InvoiceSearchRequest",
    {
        "Page": _Field("integer", required=True),
        "PageSize": _Field("integer", required=True),
        "InvoicedDateRange": _OPT_PERIOD,
        "InvoiceSentRange": _OPT_PERIOD,
        "PaidDateRange": _OPT_PERIOD,
        "Status": _OPT_STRS,
        "LoadNumbers": _OPT_STRS,
        "PONumbers": _OPT_STRS,
        "OrderNumbers": _OPT_STRS,
        "CustomerId": _OPT_STR,
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
        parsed = parse_datetime(value) if isinstance(value, str) else None
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
        raise validation_problem({"": ["A non-empty request body is required."]})
    try:
        return json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise validation_problem({"$": [f"The request body is not valid JSON: {exc}"]}) from exc


def require_version(request: Request, allowed: frozenset[str]) -> None:
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
# Request bodies of the endpoints
# --------------------------------------------------------------------------------------------------


async def token_form(request: Request) -> dict[str, str]:
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


def payment_in(body: Any, schema: _Schema, target: str) -> PaymentIn:
    """Validate a payment body: schema first, then 'Amount must be greater than zero.'."""
    errors: dict[str, list[str]] = {}
    parsed = validate_body(body, schema, errors)
    money = parsed.get("Amount") or {}
    amount = money.get("Amount")
    if isinstance(amount, Decimal) and amount <= 0:
        _add_error(errors, "Amount.Amount", "Amount must be greater than zero.")
    if errors or not isinstance(amount, Decimal):
        raise validation_problem(errors)
    return PaymentIn(
        target=parsed[target],
        amount=amount,
        currency=currency_code(money.get("Currency")),
        payment_date=parsed["PaymentDate"],
        reference=parsed["ReferenceNumber"],
        invoice_number=parsed.get("InvoiceNumber"),
        method=parsed.get("PaymentMethod"),
        check_number=parsed.get("CheckNumber"),
        note=parsed.get("Note"),
    )


def search_query(body: Any, schema: _Schema) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    parsed = validate_body(body, schema, errors)
    if isinstance(parsed.get("Page"), int) and parsed["Page"] < 0:
        _add_error(errors, "Page", "Page must be greater than or equal to 0.")
    if isinstance(parsed.get("PageSize"), int) and parsed["PageSize"] < 1:
        _add_error(errors, "PageSize", "PageSize must be greater than 0.")
    if errors:
        raise validation_problem(errors)
    return parsed
