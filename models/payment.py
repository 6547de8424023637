"""The canonical payment instruction: one payment, whatever system it came from.

Every ingress body (an Alvys request body, a MyCarrier webhook, a TransportOne body, a
remittance line) is turned into one :class:`PaymentInstruction` per payment. The workflow
works on nothing else, so a new source never touches the workflow.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models import identity
from models.money import Money


class Source(StrEnum):
    """Where the payment came from; also the middle part of its workflow id."""

    ALVYS_CUSTOMER = "alvys-customer"
    ALVYS_CARRIER = "alvys-carrier"
    TRANSPORTONE = "transportone"
    MYCARRIER = "mycarrier"
    REMITTANCE = "remittance"
    #: A deposit's application (cash application: workflows/deposit.py).
    DEPOSIT = "deposit"


class Target(StrEnum):
    """Which vendor call records the payment."""

    ALVYS_CUSTOMER_PAYMENT = "alvys-customer-payment"
    ALVYS_CARRIER_PAYMENT = "alvys-carrier-payment"
    TRANSPORTONE_PAYMENT = "transportone-payment"

    @property
    def vendor(self) -> str:
        return "TransportOne" if self is Target.TRANSPORTONE_PAYMENT else "Alvys"


class TargetIds(BaseModel):
    """How the target record is found: given directly, or resolved from the others.

    Alvys customer payments need ``load_number`` (or ``invoice_number`` / ``po_number`` to
    resolve it); carrier payments need ``trip_id`` (or ``trip_number`` / ``load_number`` /
    ``po_number`` / ``bol_number`` to resolve it); TransportOne needs ``invoice_number``.
    """

    model_config = ConfigDict(frozen=True)

    load_number: str | None = None
    trip_id: str | None = None
    trip_number: str | None = None
    invoice_number: str | None = None
    po_number: str | None = None
    bol_number: str | None = None
    pro_number: str | None = None
    quote_reference: str | None = None

    def merged(self, other: TargetIds) -> TargetIds:
        """These ids with every id that ``other`` sets replacing ours (an operator's correction)."""
        return self.model_copy(update=other.model_dump(exclude_none=True))


def workflow_id_for(source: Source, key: str) -> str:
    """``payment-{source}-{key}``, the business id that makes repeated deliveries land on one workflow.

    The key is escaped by the one rule of :mod:`models.identity` (injective and reversible).
    """
    return identity.workflow_id("payment", source.value, key)


def business_key_of(workflow_id: str, source: Source) -> str | None:
    """The exact business key of a payment workflow id of ``source`` (None if it is not one)."""
    return identity.key_from_workflow_id(workflow_id, "payment", source.value)


def missing_ids(target: Target, ids: TargetIds) -> str | None:
    """Why ``ids`` cannot find a ``target`` record, or None when they can (given or resolvable)."""
    if target is Target.ALVYS_CUSTOMER_PAYMENT and not (
        ids.load_number or ids.invoice_number or ids.po_number or ids.quote_reference or ids.bol_number
    ):
        return "a customer payment needs a load number, an invoice number or a PO number"
    if target is Target.ALVYS_CARRIER_PAYMENT and not (
        ids.trip_id
        or ids.trip_number
        or ids.load_number
        or ids.po_number
        or ids.bol_number
        or ids.quote_reference
    ):
        return "a carrier payment needs a trip id, trip number, load number, PO or BOL number"
    if target is Target.TRANSPORTONE_PAYMENT and not ids.invoice_number:
        return "a TransportOne payment needs an invoice number"
    return None


#: A business key or reference longer than this is refused at intake (ids stay under Temporal's limit).
MAX_KEY_LENGTH = 200


def fingerprint_differences(accepted: dict[str, str], new: dict[str, str]) -> list[tuple[str, str, str]]:
    """Each field whose value differs: ``(field, accepted value, new value)``, in field order."""
    fields = list(accepted) + [f for f in new if f not in accepted]
    return [(f, accepted.get(f, ""), new.get(f, "")) for f in fields if accepted.get(f, "") != new.get(f, "")]


class PaymentInstruction(BaseModel):
    """One payment to record at one vendor.

    ``reference_number`` is the vendor idempotency key (Alvys ``ReferenceNumber``); it comes
    from the business event, never from a run or an attempt, so any number of retries,
    crashes and replays record the payment once. ``business_key`` is the part of the
    workflow id that identifies the source event (for Alvys ``{LoadNumber}-{Reference}``).
    """

    model_config = ConfigDict(frozen=True)

    source: Source
    business_key: str = Field(min_length=1)
    source_event_id: str | None = None
    target: Target
    ids: TargetIds = TargetIds()
    amount: Money
    #: What the payer's document says the whole invoice is, where it says (TransportOne
    #: ``totalAmount``); ``amount`` is what is applied.
    invoice_total: Money | None = None
    payment_date: datetime
    method: str | None = None
    check_number: str | None = None
    reference_number: str = Field(min_length=1)
    note: str | None = None
    #: The deposit workflow that applied this payment (``DepositId``), for cash application.
    deposit_id: str | None = None
    #: True when the source gave no currency and USD was assumed (Alvys ``Currency`` null or 0,
    #: MyCarrier's empty ``CurrencyIdentifier``).
    currency_defaulted: bool = False

    @field_validator("business_key", "reference_number")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if len(value) > MAX_KEY_LENGTH:
            raise ValueError(f"is too long (at most {MAX_KEY_LENGTH} characters)")
        return value.strip()

    def fingerprint(self) -> dict[str, str]:
        """What would be posted, canonically: a repeat with the same key must match it exactly.

        The fields that count: ``target``, each given target identifier (``ids.*``),
        ``amount`` and ``currency``, ``payment_date``, ``method``, ``check_number`` and
        ``reference_number``. Free text (``note``) and where the event came from
        (``source_event_id``) do not count: a sender may reword a note on a resend.
        """
        found = {
            "target": self.target.value,
            "amount": str(self.amount.amount),
            "currency": self.amount.currency,
            "payment_date": self.payment_date.astimezone(UTC).isoformat(),
            "method": self.method or "",
            "check_number": self.check_number or "",
            "reference_number": self.reference_number,
        }
        for name, value in self.ids.model_dump(exclude_none=True).items():
            found[f"ids.{name}"] = value
        return found

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.source, self.business_key)

    def problems(self) -> list[str]:
        """What makes this instruction impossible to post as it stands, in plain words."""
        found: list[str] = []
        if not self.amount.is_positive():
            found.append(f"amount must be greater than zero (got {self.amount})")
        missing = missing_ids(self.target, self.ids)
        if missing:
            found.append(missing)
        return found

    def needs_resolution(self) -> bool:
        """Whether the target record must be looked up before posting (costs vendor calls)."""
        if self.target is Target.ALVYS_CUSTOMER_PAYMENT:
            return not self.ids.load_number
        if self.target is Target.ALVYS_CARRIER_PAYMENT:
            return not self.ids.trip_id
        return False

    def summary(self) -> str:
        """One line for the Temporal UI: what, how much, where to, which reference."""
        what = {
            Target.ALVYS_CUSTOMER_PAYMENT: "Customer payment",
            Target.ALVYS_CARRIER_PAYMENT: "Carrier payment",
            Target.TRANSPORTONE_PAYMENT: "Invoice payment",
        }[self.target]
        if self.target is Target.ALVYS_CUSTOMER_PAYMENT:
            where = f"Alvys load {self.ids.load_number or '?'}"
        elif self.target is Target.ALVYS_CARRIER_PAYMENT:
            trip = self.ids.trip_id or self.ids.trip_number
            if trip:
                where = f"Alvys trip {trip}"
            elif self.ids.load_number:
                where = f"Alvys trip of load {self.ids.load_number}"
            else:
                shipment = self.ids.po_number or self.ids.quote_reference or self.ids.bol_number
                where = f"Alvys trip of PO {shipment}" if shipment else "Alvys trip (to be found)"
        else:
            where = f"TransportOne invoice {self.ids.invoice_number or '?'}"
        return f"{what} {self.amount} → {where}, ref {self.reference_number} (from {self.source.value})"
