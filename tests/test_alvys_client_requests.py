"""Every request body the Alvys client builds, validated against Alvys's published OpenAPI schemas.

The spec is the authority for the wire (docs/vendors.md#how-to-read-this-file); its request
schemas forbid unknown fields, so these tests also prove that nothing extra (``MarkAsPaid``
above all) is sent. The bodies validated are the bytes :func:`vendors.jsonbody.dumps` writes,
read back as a server would read them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.money import CURRENCIES, Money
from tests.support.openapi import validate_against
from vendors import jsonbody
from vendors.alvys import CarrierPayment, CustomerPayment, load_search_body, trip_search_body

CUSTOMER_REQUEST = "Alvys.Models.Invoices.Request.CustomerPaymentRequest"
CARRIER_REQUEST = "Alvys.Models.Invoices.Request.CarrierPaymentRequest"
LOAD_SEARCH = "Alvys.Models.Loads.LoadSearchRequest"
TRIP_SEARCH = "Alvys.Models.Loads.TripSearchRequest"

WHEN = datetime(2026, 3, 16, 13, 57, 56, 427000, tzinfo=UTC)


def on_the_wire(body: dict[str, Any]) -> Any:
    """The body as Alvys receives it: the exact bytes the client sends, parsed as JSON."""
    return json.loads(jsonbody.dumps(body))


def customer(**overrides: Any) -> CustomerPayment:
    fields: dict[str, Any] = {
        "load_number": "L-1001",
        "amount": Money.of("1500.00", "USD"),
        "payment_date": WHEN,
        "reference_number": "CHK-88231",
    }
    return CustomerPayment(**(fields | overrides))


def carrier(**overrides: Any) -> CarrierPayment:
    fields: dict[str, Any] = {
        "trip_id": "trip-7f3a",
        "amount": Money.of("980.50", "USD"),
        "payment_date": WHEN,
        "reference_number": "ACH-5521",
    }
    return CarrierPayment(**(fields | overrides))


# ---- payment bodies ---------------------------------------------------------------------------


def test_customer_payment_with_every_optional_field() -> None:
    payment = customer(invoice_number="INV-1", payment_method="Check", check_number="5521", note="lockbox 3")
    wire = on_the_wire(payment.to_wire())
    validate_against(CUSTOMER_REQUEST, wire)
    assert wire == {
        "LoadNumber": "L-1001",
        "Amount": {"Amount": 1500.0, "Currency": 840},
        "PaymentDate": "2026-03-16T13:57:56.427Z",
        "ReferenceNumber": "CHK-88231",
        "InvoiceNumber": "INV-1",
        "PaymentMethod": "Check",
        "CheckNumber": "5521",
        "Note": "lockbox 3",
    }


def test_customer_payment_with_no_optional_field() -> None:
    wire = on_the_wire(customer().to_wire())
    validate_against(CUSTOMER_REQUEST, wire)
    assert set(wire) == {"LoadNumber", "Amount", "PaymentDate", "ReferenceNumber"}  # None is left out


def test_carrier_payment_with_every_optional_field() -> None:
    payment = carrier(payment_method="ACH", check_number="0", note="factoring advance")
    wire = on_the_wire(payment.to_wire())
    validate_against(CARRIER_REQUEST, wire)
    assert "MarkAsPaid" not in wire
    assert wire == {
        "TripId": "trip-7f3a",
        "Amount": {"Amount": 980.5, "Currency": 840},
        "PaymentDate": "2026-03-16T13:57:56.427Z",
        "ReferenceNumber": "ACH-5521",
        "PaymentMethod": "ACH",
        "CheckNumber": "0",
        "Note": "factoring advance",
    }


def test_carrier_payment_with_no_optional_field() -> None:
    wire = on_the_wire(carrier().to_wire())
    validate_against(CARRIER_REQUEST, wire)
    assert set(wire) == {"TripId", "Amount", "PaymentDate", "ReferenceNumber"}


def test_the_schemas_refuse_mark_as_paid() -> None:
    """The validation above means something: the spec itself rejects the removed field."""
    wire = on_the_wire(carrier().to_wire()) | {"MarkAsPaid": True}
    with pytest.raises(jsonschema.ValidationError, match="MarkAsPaid"):
        validate_against(CARRIER_REQUEST, wire)


def test_request_models_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        CarrierPayment(
            trip_id="t",
            amount=Money.of("1", "USD"),
            payment_date=WHEN,
            reference_number="r",
            mark_as_paid=True,  # type: ignore[call-arg]
        )


@pytest.mark.parametrize("blank", ["", "   "])
def test_request_models_refuse_blank_identifiers(blank: str) -> None:
    with pytest.raises(ValidationError):
        customer(load_number=blank)
    with pytest.raises(ValidationError):
        carrier(reference_number=blank)


def test_identifiers_are_stripped() -> None:
    wire = customer(load_number=" L-1001 ", reference_number="CHK-1\n").to_wire()
    assert (wire["LoadNumber"], wire["ReferenceNumber"]) == ("L-1001", "CHK-1")


@pytest.mark.parametrize(
    ("when", "text"),
    [
        (WHEN, "2026-03-16T13:57:56.427Z"),
        (datetime(2026, 3, 16, 8, 0, tzinfo=timezone(timedelta(hours=-5))), "2026-03-16T13:00:00.000Z"),
        (datetime(2026, 3, 16, 13, 0), "2026-03-16T13:00:00.000Z"),  # naive: taken as UTC
        (datetime(2026, 3, 16, 13, 0, 0, 123456, tzinfo=UTC), "2026-03-16T13:00:00.123456Z"),
    ],
)
def test_payment_date_is_iso_8601_utc(when: datetime, text: str) -> None:
    wire = on_the_wire(customer(payment_date=when).to_wire())
    validate_against(CUSTOMER_REQUEST, wire)
    assert wire["PaymentDate"] == text


optional_text = st.none() | st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s and s != "")


@st.composite
def money(draw: st.DrawFn) -> Money:
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    places = CURRENCIES[currency][1]
    minor = draw(st.integers(min_value=1, max_value=10 ** (15 + places) - 1))  # Money's ceiling: 10**15
    return Money.of(Decimal(minor).scaleb(-places), currency)


@settings(max_examples=200, deadline=None)
@given(amount=money(), invoice=optional_text, method=optional_text, check=optional_text, note=optional_text)
def test_any_customer_payment_body_fits_the_schema_and_keeps_its_amount(
    amount: Money, invoice: str | None, method: str | None, check: str | None, note: str | None
) -> None:
    payment = customer(
        amount=amount, invoice_number=invoice, payment_method=method, check_number=check, note=note
    )
    raw = jsonbody.dumps(payment.to_wire())
    validate_against(CUSTOMER_REQUEST, json.loads(raw))
    exact = json.loads(raw, parse_float=Decimal)["Amount"]
    assert Decimal(exact["Amount"]) == amount.amount
    assert exact["Currency"] == amount.numeric_currency


@settings(max_examples=100, deadline=None)
@given(amount=money(), method=optional_text, check=optional_text, note=optional_text)
def test_any_carrier_payment_body_fits_the_schema(
    amount: Money, method: str | None, check: str | None, note: str | None
) -> None:
    payment = carrier(amount=amount, payment_method=method, check_number=check, note=note)
    validate_against(CARRIER_REQUEST, on_the_wire(payment.to_wire()))


# ---- search bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters",
    [
        {"load_numbers": ["L-1001"]},
        {"po_numbers": "PO-77"},
        {"order_numbers": ("O-1", "O-2")},
        {"load_numbers": ["L-1"], "po_numbers": ["PO-1"], "order_numbers": ["O-1"]},
    ],
)
def test_load_search_bodies(filters: dict[str, Any]) -> None:
    wire = on_the_wire(load_search_body(**filters, page=2, page_size=25))
    validate_against(LOAD_SEARCH, wire)
    assert (wire["Page"], wire["PageSize"], wire["IncludeDeleted"]) == (2, 25, False)
    names = {"load_numbers": "LoadNumbers", "po_numbers": "PONumbers", "order_numbers": "OrderNumbers"}
    for key, value in filters.items():
        assert wire[names[key]] == ([value] if isinstance(value, str) else list(value))
    assert set(wire) == {"Page", "PageSize", "IncludeDeleted", *(names[key] for key in filters)}


@pytest.mark.parametrize(
    "filters",
    [
        {"load_numbers": "L-1001"},
        {"trip_numbers": ["T-1", "T-2"]},
        {"load_numbers": ["L-1"], "trip_numbers": ["T-1"]},
    ],
)
def test_trip_search_bodies(filters: dict[str, Any]) -> None:
    wire = on_the_wire(trip_search_body(**filters))
    validate_against(TRIP_SEARCH, wire)
    assert (wire["Page"], wire["PageSize"], wire["IncludeDeleted"]) == (0, 50, False)


@pytest.mark.parametrize("build", [load_search_body, trip_search_body])
def test_searches_need_a_filter(build: Any) -> None:
    with pytest.raises(ValueError):
        build()
    with pytest.raises(ValueError):
        build(load_numbers=["", "  "])


# ---- jsonbody --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.1") + Decimal("0.2"), b"0.3"),
        (Decimal("1234567.89"), b"1234567.89"),
        (Decimal("12345678901234567.89"), b"12345678901234567.89"),
        (Decimal("1500.00"), b"1500.00"),
        (Decimal("-0.01"), b"-0.01"),
        (Decimal("1E+2"), b"100"),
        (Decimal("1E+40"), b"1E+40"),
    ],
)
def test_jsonbody_writes_decimals_exactly(value: Decimal, text: bytes) -> None:
    assert jsonbody.dumps(value) == text
    assert json.loads(jsonbody.dumps({"a": [value]}), parse_float=Decimal)["a"][0] == value


def test_jsonbody_writes_plain_json_like_json() -> None:
    obj: dict[str, Any] = {"s": 'é "q"\n', "n": None, "t": True, "i": 3, "f": 1.5, "l": [1, (2, 3)], "o": {}}
    assert json.loads(jsonbody.dumps(obj)) == json.loads(json.dumps(obj))
    assert jsonbody.dumps({"é": 1}) == '{"é":1}'.encode()


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), float("nan")])
def test_jsonbody_refuses_non_finite_numbers(bad: Any) -> None:
    with pytest.raises(ValueError):
        jsonbody.dumps({"a": bad})


@pytest.mark.parametrize("bad", [WHEN, {1: "x"}, {"a": {1, 2}}, Money.of("1", "USD")])
def test_jsonbody_refuses_what_json_cannot_hold(bad: Any) -> None:
    with pytest.raises(TypeError):
        jsonbody.dumps(bad)
