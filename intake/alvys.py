"""Alvys request bodies (the payment platform / ERP route) → payment instructions.

The bodies are Alvys's own ``customer-payments`` and ``carrier-payments`` requests
(docs/vendors.md#alvys-customer-payments, docs/vendors.md#alvys-carrier-payments), so a
payment platform can send what it would send Alvys.
Choices, beyond Alvys's schema:

* ``Amount.Currency`` null or 0 means USD; the instruction (and the result) say so.
* ``MarkAsPaid`` in a carrier body is accepted and ignored: Alvys removed it on 2026-07-13
  and ignores it too. Any other unknown field is refused, as Alvys refuses it.
* A customer payment may give ``InvoiceNumber`` instead of ``LoadNumber`` (the load is then
  resolved from the invoice); a carrier payment may give ``TripNumber`` or ``LoadNumber``
  instead of ``TripId`` (the trip is then resolved).
* ``PaymentDate`` must be an ISO 8601 date-time string (Alvys's ``format: date-time``); one
  without a time zone is taken as UTC. Numbers (Unix time) are refused.
* ``Amount.Currency`` must be an integer (the ISO 4217 numeric code), not a string or a boolean.
* ``Amount.Amount`` must be a JSON number (Alvys's ``type: number``), as on the TransportOne
  route: ``"50.00"`` as a string is refused (``must be a number, not a string``), and so is a
  boolean. The number is read exactly (never a binary float).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from intake.errors import FieldProblem, IntakeError, problems_from
from models.money import Money, MoneyError, currency_from_numeric
from models.payment import PaymentInstruction, Source, Target, TargetIds


class _AlvysMoney(BaseModel):
    model_config = ConfigDict(extra="forbid")

    Amount: Decimal
    Currency: int | None = Field(default=None, strict=True)

    @field_validator("Amount", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("must be a number, not a string")
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise ValueError("must be a number")
        return value


def _date_time(value: Any) -> Any:
    """Alvys's ``PaymentDate`` is an ISO 8601 date-time string; numbers (Unix time) are refused."""
    if not isinstance(value, str) or "T" not in value.upper():
        raise ValueError("must be an ISO 8601 date-time string, e.g. 2026-11-20T15:00:00Z")
    return value


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    Amount: _AlvysMoney
    PaymentDate: Annotated[datetime, BeforeValidator(_date_time)]
    ReferenceNumber: str = Field(min_length=1)
    PaymentMethod: str | None = None
    CheckNumber: str | None = None
    Note: str | None = None


class CustomerPaymentBody(_Common):
    LoadNumber: str | None = Field(default=None, min_length=1)
    InvoiceNumber: str | None = None


class CarrierPaymentBody(_Common):
    TripId: str | None = Field(default=None, min_length=1)
    TripNumber: str | None = None
    LoadNumber: str | None = None
    MarkAsPaid: bool | None = Field(
        default=None, strict=True
    )  # removed by Alvys on 2026-07-13: accepted, ignored


def _money(amount: _AlvysMoney, prefix: str) -> tuple[Money, bool]:
    defaulted = amount.Currency in (None, 0)
    try:
        currency = "USD" if defaulted else currency_from_numeric(int(amount.Currency or 0))
    except MoneyError as exc:
        raise IntakeError([FieldProblem(f"{prefix}Amount.Currency", str(exc))]) from None
    try:
        money = Money.of(amount.Amount, currency)
    except MoneyError as exc:
        raise IntakeError([FieldProblem(f"{prefix}Amount.Amount", str(exc))]) from None
    if not money.is_positive():
        raise IntakeError([FieldProblem(f"{prefix}Amount.Amount", "must be greater than zero")])
    return money, defaulted


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _validate(model: type[BaseModel], body: Any, prefix: str) -> Any:
    if not isinstance(body, dict):
        raise IntakeError([FieldProblem(prefix.rstrip(".") or "body", "must be a JSON object")])
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise IntakeError(problems_from(exc, prefix.rstrip("."))) from None


def customer_payment(body: Any, prefix: str = "") -> PaymentInstruction:
    """One Alvys ``customer-payments`` body → one instruction (workflow key ``{LoadNumber}-{Reference}``)."""
    parsed: CustomerPaymentBody = _validate(CustomerPaymentBody, body, prefix)
    if not (parsed.LoadNumber or parsed.InvoiceNumber):
        raise IntakeError([FieldProblem(f"{prefix}LoadNumber", "is required (or give InvoiceNumber)")])
    money, defaulted = _money(parsed.Amount, prefix)
    return PaymentInstruction(
        source=Source.ALVYS_CUSTOMER,
        business_key=f"{parsed.LoadNumber or parsed.InvoiceNumber}-{parsed.ReferenceNumber}",
        target=Target.ALVYS_CUSTOMER_PAYMENT,
        ids=TargetIds(load_number=parsed.LoadNumber, invoice_number=parsed.InvoiceNumber),
        amount=money,
        payment_date=_utc(parsed.PaymentDate),
        method=parsed.PaymentMethod,
        check_number=parsed.CheckNumber,
        reference_number=parsed.ReferenceNumber,
        note=parsed.Note,
        currency_defaulted=defaulted,
    )


def carrier_payment(body: Any, prefix: str = "") -> PaymentInstruction:
    """One Alvys ``carrier-payments`` body → one instruction (workflow key ``{TripId}-{Reference}``)."""
    parsed: CarrierPaymentBody = _validate(CarrierPaymentBody, body, prefix)
    trip = parsed.TripId or parsed.TripNumber or parsed.LoadNumber
    if not trip:
        raise IntakeError([FieldProblem(f"{prefix}TripId", "is required (or give TripNumber or LoadNumber)")])
    money, defaulted = _money(parsed.Amount, prefix)
    return PaymentInstruction(
        source=Source.ALVYS_CARRIER,
        business_key=f"{trip}-{parsed.ReferenceNumber}",
        target=Target.ALVYS_CARRIER_PAYMENT,
        ids=TargetIds(trip_id=parsed.TripId, trip_number=parsed.TripNumber, load_number=parsed.LoadNumber),
        amount=money,
        payment_date=_utc(parsed.PaymentDate),
        method=parsed.PaymentMethod,
        check_number=parsed.CheckNumber,
        reference_number=parsed.ReferenceNumber,
        note=parsed.Note,
        currency_defaulted=defaulted,
    )
