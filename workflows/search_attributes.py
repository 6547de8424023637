"""The search attributes every payment carries (PRODUCT.md, fixed names), for the Web UI and CLI."""

from __future__ import annotations

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from models.payment import PaymentInstruction
from models.state import PaymentStatus

PAYMENT_STATUS = SearchAttributeKey.for_keyword("PaymentStatus")
PAYMENT_SOURCE = SearchAttributeKey.for_keyword("PaymentSource")
PAYMENT_TARGET = SearchAttributeKey.for_keyword("PaymentTarget")
LOAD_NUMBER = SearchAttributeKey.for_keyword("LoadNumber")
TRIP_ID = SearchAttributeKey.for_keyword("TripId")
INVOICE_NUMBER = SearchAttributeKey.for_keyword("InvoiceNumber")
PAYMENT_REFERENCE = SearchAttributeKey.for_keyword("PaymentReference")
PAYMENT_AMOUNT = SearchAttributeKey.for_float("PaymentAmount")

ALL_KEYS = (
    PAYMENT_STATUS,
    PAYMENT_SOURCE,
    PAYMENT_TARGET,
    LOAD_NUMBER,
    TRIP_ID,
    INVOICE_NUMBER,
    PAYMENT_REFERENCE,
    PAYMENT_AMOUNT,
)

#: Name -> Temporal type, for registering them (``temporal operator search-attribute create``).
DEFINITIONS: dict[str, str] = {
    key.name: ("Double" if key is PAYMENT_AMOUNT else "Keyword") for key in ALL_KEYS
}


def payment_pairs(instruction: PaymentInstruction, status: PaymentStatus) -> list[SearchAttributePair]:  # type: ignore[type-arg]
    """The attribute values describing a payment right now (ids unknown yet are left out)."""
    pairs: list[SearchAttributePair] = [  # type: ignore[type-arg]
        SearchAttributePair(PAYMENT_STATUS, status.value),
        SearchAttributePair(PAYMENT_SOURCE, instruction.source.value),
        SearchAttributePair(PAYMENT_TARGET, instruction.target.value),
        SearchAttributePair(PAYMENT_REFERENCE, instruction.reference_number),
        # A Double attribute, for filtering and sorting only; the exact amount is the Decimal.
        SearchAttributePair(PAYMENT_AMOUNT, float(instruction.amount.amount)),
    ]
    ids = instruction.ids
    for key, value in (
        (LOAD_NUMBER, ids.load_number),
        (TRIP_ID, ids.trip_id),
        (INVOICE_NUMBER, ids.invoice_number),
    ):
        if value:
            pairs.append(SearchAttributePair(key, value))
    return pairs


def typed(instruction: PaymentInstruction, status: PaymentStatus) -> TypedSearchAttributes:
    """The attributes a payment workflow is started with."""
    return TypedSearchAttributes(payment_pairs(instruction, status))


def updates(instruction: PaymentInstruction, status: PaymentStatus) -> list[SearchAttributeUpdate]:  # type: ignore[type-arg]
    """The same values as upserts, for every change of state or of the resolved ids."""
    return [pair.key.value_set(pair.value) for pair in payment_pairs(instruction, status)]
