"""Money: exact Decimal amounts in ISO 4217 currencies, refused rather than rounded."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from temporalio.contrib.pydantic import pydantic_data_converter

from models.money import CURRENCIES, Money, MoneyError, currency_from_numeric, currency_to_numeric

currencies = st.sampled_from(sorted(CURRENCIES))


@given(currencies, st.integers(min_value=-(10**12), max_value=10**12))
def test_minor_units_round_trip(currency: str, minor: int) -> None:
    places = CURRENCIES[currency][1]
    money = Money(amount=Decimal(minor).scaleb(-places), currency=currency)
    assert money.minor == minor
    assert money.amount.as_tuple().exponent == -places


@given(currencies, st.integers(min_value=1, max_value=10**9), st.integers(min_value=1, max_value=9))
def test_more_decimals_than_the_currency_has_is_refused(currency: str, minor: int, extra: int) -> None:
    places = CURRENCIES[currency][1]
    amount = Decimal(minor).scaleb(-places) + Decimal(extra).scaleb(-places - 1)
    with pytest.raises(MoneyError, match=f"more decimals than {currency} allows"):
        Money.of(amount, currency)


@given(currencies)
def test_numeric_codes_round_trip(currency: str) -> None:
    assert currency_from_numeric(currency_to_numeric(currency)) == currency


def test_alvys_numeric_codes() -> None:
    assert (currency_to_numeric("USD"), currency_to_numeric("CAD"), currency_to_numeric("MXN")) == (
        840,
        124,
        484,
    )
    with pytest.raises(MoneyError, match="unknown ISO 4217 numeric currency code 999"):
        currency_from_numeric(999)


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999.99"), places=2))
def test_a_json_float_keeps_the_number_the_sender_wrote(amount: Decimal) -> None:
    # MyCarrier sends 382.53 as a JSON float; the shortest repr is exactly what it wrote.
    assert Money.of(float(amount), "USD").amount == amount


@given(currencies, st.integers(min_value=0, max_value=10**12))
def test_the_temporal_converter_carries_money_exactly(currency: str, minor: int) -> None:
    money = Money(amount=Decimal(minor).scaleb(-CURRENCIES[currency][1]), currency=currency)
    payloads = pydantic_data_converter.payload_converter.to_payloads([money])
    (back,) = pydantic_data_converter.payload_converter.from_payloads(payloads, [Money])
    assert back == money and isinstance(back.amount, Decimal)
    wire = json.loads(payloads[0].data)["amount"]
    assert re.fullmatch(r"-?\d+(\.\d+)?", wire), wire  # a plain decimal string, never float notation


def test_absurd_amounts_are_refused_not_crashed() -> None:
    with pytest.raises(MoneyError, match="too large"):
        Money.of("1e30", "USD")


def test_unknown_currency_and_non_numbers_are_refused() -> None:
    with pytest.raises(MoneyError, match="unknown ISO 4217 currency 'XYZ'"):
        Money.of(1, "XYZ")
    with pytest.raises(MoneyError, match="not a number"):
        Money.of("twelve", "USD")
    with pytest.raises(MoneyError, match="boolean"):
        Money.of(True, "USD")


def test_arithmetic_stays_in_one_currency() -> None:
    assert Money.of("0.10") + Money.of("0.20") == Money.of("0.30")
    with pytest.raises(MoneyError, match="cannot combine USD and CAD"):
        _ = Money.of(1) + Money.of(1, "CAD")
    assert str(Money.of("1234.5")) == "USD 1,234.50"
