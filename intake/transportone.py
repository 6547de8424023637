"""TransportOne payment bodies from an ERP → one instruction per ``data.payments[]`` entry.

The body is TransportOne's own (docs/vendors.md#transportone-record-payments):
``{"data": {"payments": [...]}}``; a ``callback`` given by the sender is ignored (freightpay
gives TransportOne its own callback URL). The workflow key is ``{invoiceNumber}-{paymentId}``.
``appliedAmount`` is what is paid against the invoice, ``totalAmount`` the payment's total;
``paymentDate`` is ms since the epoch. Amounts are in ``TRANSPORTONE_CURRENCY`` (the body has
no currency field); an optional ``currency`` per payment overrides it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from intake.errors import FieldProblem, IntakeError, problems_from
from intake.options import IntakeOptions
from models.money import Money, MoneyError
from models.payment import PaymentInstruction, Source, Target, TargetIds


class _Payment(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    paymentId: str = Field(min_length=1)
    invoiceNumber: str = Field(min_length=1)
    paymentType: Literal["cash", "dn", "bank transfer"]
    totalAmount: Decimal
    paymentDate: int = Field(gt=0)
    appliedAmount: Decimal
    referenceNumber: str = Field(min_length=1)
    currency: str | None = None

    @field_validator("totalAmount", "appliedAmount", "paymentDate", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise ValueError("must be a number")
        return value

    @model_validator(mode="after")
    def _applied_within_total(self) -> _Payment:
        if self.appliedAmount > self.totalAmount:
            raise ValueError("appliedAmount must not exceed totalAmount")
        return self


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payments: list[_Payment] = Field(min_length=1)


class BillingPaymentsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: _Data
    callback: dict[str, Any] | None = None


def business_key(invoice_number: str, payment_id: str) -> str:
    """A TransportOne payment's business key: ``{invoiceNumber}-{paymentId}`` (the workflow id's key)."""
    return f"{invoice_number}-{payment_id}"


def billing_payments(body: Any, options: IntakeOptions) -> list[PaymentInstruction]:
    if not isinstance(body, dict):
        raise IntakeError([FieldProblem("body", "must be a JSON object")])
    try:
        parsed = BillingPaymentsBody.model_validate(body)
    except ValidationError as exc:
        raise IntakeError(problems_from(exc)) from None
    instructions: list[PaymentInstruction] = []
    problems: list[FieldProblem] = []
    for index, payment in enumerate(parsed.data.payments):
        where = f"data.payments.{index}"
        currency = (payment.currency or options.transportone_currency).upper()
        try:
            applied = Money.of(payment.appliedAmount, currency)
            total = Money.of(payment.totalAmount, currency)
        except MoneyError as exc:
            problems.append(FieldProblem(f"{where}.appliedAmount", str(exc)))
            continue
        if not applied.is_positive():
            problems.append(FieldProblem(f"{where}.appliedAmount", "must be greater than zero"))
            continue
        instructions.append(
            PaymentInstruction(
                source=Source.TRANSPORTONE,
                business_key=business_key(payment.invoiceNumber, payment.paymentId),
                source_event_id=payment.paymentId,
                target=Target.TRANSPORTONE_PAYMENT,
                ids=TargetIds(invoice_number=payment.invoiceNumber),
                amount=applied,
                invoice_total=total,
                payment_date=datetime.fromtimestamp(payment.paymentDate / 1000, tz=UTC),
                method=payment.paymentType,
                reference_number=payment.referenceNumber,
            )
        )
    if problems:
        raise IntakeError(problems)
    return instructions
