"""The search attributes every payment carries, for the Web UI and CLI.

Their names and types are fixed: docs/requirements.md#search-attributes.
"""

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
#: Facts beside the status a person should see (``Overpaid``; later ``Unreconciled``, ...).
PAYMENT_FLAGS = SearchAttributeKey.for_keyword_list("PaymentFlags")
#: Cash application: a deposit's state and its unapplied cash; each payment names its deposit.
DEPOSIT_STATUS = SearchAttributeKey.for_keyword("DepositStatus")
UNAPPLIED_AMOUNT = SearchAttributeKey.for_float("UnappliedAmount")
DEPOSIT_ID = SearchAttributeKey.for_keyword("DepositId")

ALL_KEYS = (
    PAYMENT_STATUS,
    PAYMENT_SOURCE,
    PAYMENT_TARGET,
    LOAD_NUMBER,
    TRIP_ID,
    INVOICE_NUMBER,
    PAYMENT_REFERENCE,
    PAYMENT_AMOUNT,
    PAYMENT_FLAGS,
    DEPOSIT_STATUS,
    UNAPPLIED_AMOUNT,
    DEPOSIT_ID,
)

#: Name -> Temporal type, for registering them (``temporal operator search-attribute create``).
DEFINITIONS: dict[str, str] = {
    key.name: {
        PAYMENT_AMOUNT.name: "Double",
        UNAPPLIED_AMOUNT.name: "Double",
        PAYMENT_FLAGS.name: "KeywordList",
    }.get(key.name, "Keyword")
    for key in ALL_KEYS
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
        (DEPOSIT_ID, instruction.deposit_id),
    ):
        if value:
            pairs.append(SearchAttributePair(key, value))
    return pairs


def typed(instruction: PaymentInstruction, status: PaymentStatus) -> TypedSearchAttributes:
    """The attributes a payment workflow is started with."""
    return TypedSearchAttributes(payment_pairs(instruction, status))


def updates(
    instruction: PaymentInstruction, status: PaymentStatus, flags: list[str] | None = None
) -> list[SearchAttributeUpdate]:  # type: ignore[type-arg]
    """The same values as upserts, for every change of state or of the resolved ids.

    ``flags`` (``PaymentFlags``) are set only once there are any, so the upserts of payments
    without flags are exactly what they were before the attribute existed.
    """
    found = [pair.key.value_set(pair.value) for pair in payment_pairs(instruction, status)]
    if flags:
        found.append(PAYMENT_FLAGS.value_set(list(flags)))
    return found


def deposit_pairs(status: str, unapplied: float) -> list[SearchAttributePair]:  # type: ignore[type-arg]
    """A deposit's attributes: its ``DepositStatus`` and ``UnappliedAmount`` (a Double, for filters)."""
    return [SearchAttributePair(DEPOSIT_STATUS, status), SearchAttributePair(UNAPPLIED_AMOUNT, unapplied)]
