"""Alvys request bodies → payment instructions: the published examples, defaults, and clear refusals."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake.errors import IntakeError
from intake.parse import parse_body
from models.payment import Source, Target, workflow_id_for

CUSTOMER = {
    "LoadNumber": "L-1001",
    "Amount": {"Amount": 382.53, "Currency": 840},
    "PaymentDate": "2026-03-16T13:57:56.427Z",
    "ReferenceNumber": "CHK-1001",
    "InvoiceNumber": "INV-1001",
    "PaymentMethod": "Check",
    "CheckNumber": "1001",
    "Note": "lockbox",
}
CARRIER = {
    "TripId": "T-1001",
    "Amount": {"Amount": 382.53, "Currency": 840},
    "PaymentDate": "2026-03-16T13:48:19.920Z",
    "ReferenceNumber": "ACH-77",
    "PaymentMethod": "ACH",
}


def problems(source: str, body: object) -> list[str]:
    with pytest.raises(IntakeError) as info:
        parse_body(source, json.dumps(body))
    return [str(p) for p in info.value.problems]


def test_customer_body_becomes_one_instruction() -> None:
    (instruction,) = parse_body("alvys-customer-payment", json.dumps(CUSTOMER))
    assert instruction.source is Source.ALVYS_CUSTOMER
    assert instruction.target is Target.ALVYS_CUSTOMER_PAYMENT
    assert instruction.workflow_id == "payment-alvys-customer-L-1001-CHK-1001"
    assert instruction.amount.amount == Decimal("382.53") and instruction.amount.currency == "USD"
    assert instruction.ids.load_number == "L-1001" and instruction.ids.invoice_number == "INV-1001"
    assert instruction.reference_number == "CHK-1001"
    assert not instruction.currency_defaulted


def test_carrier_body_becomes_one_instruction_and_mark_as_paid_is_ignored() -> None:
    (instruction,) = parse_body("alvys-carrier-payment", json.dumps({**CARRIER, "MarkAsPaid": True}))
    assert instruction.workflow_id == "payment-alvys-carrier-T-1001-ACH-77"
    assert instruction.ids.trip_id == "T-1001"


@pytest.mark.parametrize("currency", [None, 0])
def test_null_or_zero_currency_means_usd_and_says_so(currency: int | None) -> None:
    body = {**CUSTOMER, "Amount": {"Amount": 10, "Currency": currency}}
    (instruction,) = parse_body("alvys-customer-payment", json.dumps(body))
    assert instruction.amount.currency == "USD" and instruction.currency_defaulted


def test_cad_by_numeric_code() -> None:
    body = {**CUSTOMER, "Amount": {"Amount": 2500, "Currency": 124}}
    (instruction,) = parse_body("alvys-customer-payment", json.dumps(body))
    assert str(instruction.amount) == "CAD 2,500.00"


def test_more_decimals_than_the_currency_is_refused_naming_the_field() -> None:
    body = {**CUSTOMER, "Amount": {"Amount": 10.001, "Currency": 840}}
    assert problems("alvys-customer-payment", body) == [
        "Amount.Amount: amount 10.001 has more decimals than USD allows (2)"
    ]


@given(st.decimals(min_value=Decimal("-1e12"), max_value=Decimal(0), places=2))
def test_amount_must_be_greater_than_zero(amount: Decimal) -> None:
    body = {**CUSTOMER, "Amount": {"Amount": float(amount), "Currency": 840}}  # a JSON number
    assert problems("alvys-customer-payment", body) == ["Amount.Amount: must be greater than zero"]


def test_missing_wrong_and_unknown_fields_are_each_named() -> None:
    body: dict[str, object] = {k: v for k, v in CUSTOMER.items() if k != "ReferenceNumber"}
    body["PaymentDate"] = "yesterday"
    body["Surprise"] = 1
    found = problems("alvys-customer-payment", body)
    assert "ReferenceNumber: is required" in found
    assert "Surprise: is not a known field" in found
    assert any(p.startswith("PaymentDate: ") for p in found)


def test_unknown_currency_code_is_refused() -> None:
    body = {**CUSTOMER, "Amount": {"Amount": 1, "Currency": 999}}
    assert problems("alvys-customer-payment", body) == [
        "Amount.Currency: unknown ISO 4217 numeric currency code 999"
    ]


def test_a_list_is_validated_whole_and_problems_name_the_item() -> None:
    bad = {**CARRIER, "Amount": {"Amount": -5, "Currency": 840}}
    assert problems("alvys-carrier-payment", [CARRIER, bad]) == [
        "[1].Amount.Amount: must be greater than zero"
    ]


def test_malformed_json_and_unknown_source() -> None:
    with pytest.raises(IntakeError, match="body: is not valid JSON"):
        parse_body("alvys-customer-payment", b"{not json")
    with pytest.raises(IntakeError, match="unknown source 'nope'"):
        parse_body("nope", b"{}")


def test_workflow_ids_escape_unsafe_characters_injectively() -> None:
    assert workflow_id_for(Source.REMITTANCE, "A/B 12#x") == "payment-remittance-A~2FB~2012~23x"
    assert workflow_id_for(Source.REMITTANCE, "A_B_12_x") == "payment-remittance-A_B_12_x"
