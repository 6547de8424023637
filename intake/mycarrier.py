"""MyCarrier ``invoice.payment`` webhooks → one payment instruction per ``Payments[]`` entry.

* The workflow key is ``Payments[].Id``; repeated deliveries of the same event land on the
  same workflows (MyCarrier publishes no retry schedule, so deliveries may repeat).
* The amount is ``Payments[].Amount``. ``TransactionFee`` and ``TechnologyFee`` are
  MyCarrier's own charges, not a short payment: they go into the note.
* An empty or null ``CurrencyIdentifier`` means USD (the instruction says it was assumed).
* Only ``Status: "Paid"`` is a payment; any other status is refused.
* The Alvys ``ReferenceNumber`` is the payment's ``TransactionId`` (else its ``Id``).
* The target record is found from the shipment: PO number, then ``QuoteReferenceNumber``,
  then ``CustomerBOLNumber`` (the PRO number is kept for people to read).
* Personal data stays out: addresses, names, e-mails and phone numbers are not carried into
  the instruction (nor into any workflow history).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from intake.errors import FieldProblem, IntakeError, problems_from
from intake.options import IntakeOptions
from models.money import Money, MoneyError
from models.payment import PaymentInstruction, Source, Target, TargetIds


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("must be a number")
    return value


class _Payment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    Id: str = Field(min_length=1)
    Amount: Decimal
    DateTime: datetime
    TransactionId: str | None = None
    TransactionFee: Decimal | None = None
    TechnologyFee: Decimal | None = None

    @field_validator("Amount", "TransactionFee", "TechnologyFee", mode="before")
    @classmethod
    def _numbers(cls, value: Any) -> Any:
        return value if value is None else _number(value)


class _Shipment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    PoNumber: str | None = None
    CustomerBOLNumber: str | None = None
    CarrierProNumber: str | None = None


class InvoicePaymentEvent(BaseModel):
    """The parts of the webhook a payment needs; everything else (and all personal data) is dropped."""

    model_config = ConfigDict(extra="ignore")

    RecordId: str = Field(min_length=1)
    Status: str
    InvoiceNumber: str | None = None
    CurrencyIdentifier: str | None = None
    QuoteReferenceNumber: str | None = None
    Shipment: _Shipment
    Payments: list[_Payment] = Field(min_length=1)


def _clean(value: str | None) -> str | None:
    return value.strip() or None if value else None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def invoice_payment(body: Any, options: IntakeOptions) -> list[PaymentInstruction]:
    """One webhook body → its payments (validated whole: any problem refuses them all)."""
    if not isinstance(body, dict):
        raise IntakeError([FieldProblem("body", "must be a JSON object")])
    try:
        event = InvoicePaymentEvent.model_validate(body)
    except ValidationError as exc:
        raise IntakeError(problems_from(exc)) from None
    if event.Status != "Paid":
        raise IntakeError(
            [FieldProblem("Status", f"only a Paid invoice is a payment (got {event.Status!r})")],
            "Not a payment",
        )
    currency = _clean(event.CurrencyIdentifier)
    defaulted = currency is None
    shipment = event.Shipment
    ids = TargetIds(
        po_number=_clean(shipment.PoNumber),
        quote_reference=_clean(event.QuoteReferenceNumber),
        bol_number=_clean(shipment.CustomerBOLNumber),
        pro_number=_clean(shipment.CarrierProNumber),
    )
    if not (ids.po_number or ids.quote_reference or ids.bol_number):
        raise IntakeError(
            [
                FieldProblem(
                    "Shipment.PoNumber", "is required (or QuoteReferenceNumber or Shipment.CustomerBOLNumber)"
                )
            ]
        )
    target = Target(options.mycarrier_route)
    instructions: list[PaymentInstruction] = []
    problems: list[FieldProblem] = []
    for index, payment in enumerate(event.Payments):
        where = f"Payments.{index}"
        try:
            amount = Money.of(payment.Amount, currency or "USD")
        except MoneyError as exc:
            field = "CurrencyIdentifier" if "currency" in str(exc) else f"{where}.Amount"
            problems.append(FieldProblem(field, str(exc)))
            continue
        if not amount.is_positive():
            problems.append(FieldProblem(f"{where}.Amount", "must be greater than zero"))
            continue
        fees = ", ".join(
            f"{name} {Money.of(fee.quantize(Decimal('0.01')), amount.currency)}"
            for name, fee in (
                ("transaction fee", payment.TransactionFee),
                ("technology fee", payment.TechnologyFee),
            )
            if fee
        )
        note = f"MyCarrier invoice {event.InvoiceNumber or '?'} paid (record {event.RecordId})"
        if fees:
            note += f"; MyCarrier's charges, not a short payment: {fees}"
        instructions.append(
            PaymentInstruction(
                source=Source.MYCARRIER,
                business_key=payment.Id,
                source_event_id=event.RecordId,
                target=target,
                ids=ids,
                amount=amount,
                payment_date=_utc(payment.DateTime),
                method="MyCarrier",
                reference_number=_clean(payment.TransactionId) or payment.Id,
                note=note,
                currency_defaulted=defaulted,
            )
        )
    if problems:
        raise IntakeError(problems)
    return instructions
