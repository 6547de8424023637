"""A payment's state as the workflow keeps it, the operators' inputs, and the final result."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from models.money import Money
from models.payment import PaymentInstruction, TargetIds


class PaymentStatus(StrEnum):
    """The ``PaymentStatus`` search attribute's values (fixed: docs/requirements.md#payment-status-values)."""

    RECEIVED = "Received"
    VALIDATING = "Validating"
    AWAITING_APPROVAL = "AwaitingApproval"
    WAITING_FOR_PAYABLE = "WaitingForPayable"
    #: The vendor has been unreachable (or answering 5xx) longer than the patience; it keeps
    #: trying by itself. Operators may still cancel (nothing posted) or resolve.
    WAITING_FOR_VENDOR = "WaitingForVendor"
    POSTING = "Posting"
    CONFIRMING = "Confirming"
    PAID = "Paid"
    PARTIALLY_PAID = "PartiallyPaid"
    NEEDS_REVIEW = "NeedsReview"
    CANCELLED = "Cancelled"
    RESOLVED_MANUALLY = "ResolvedManually"
    FAILED = "Failed"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = {
    PaymentStatus.PAID,
    PaymentStatus.PARTIALLY_PAID,
    PaymentStatus.CANCELLED,
    PaymentStatus.RESOLVED_MANUALLY,
    PaymentStatus.FAILED,
}


class VendorProblem(BaseModel):
    """A vendor's own account of why it refused a request (Alvys ProblemDetails, OS1 error body)."""

    vendor: str
    status: int
    title: str | None = None
    detail: str | None = None
    errors: dict[str, list[str]] = Field(default_factory=dict)

    def text(self) -> str:
        parts = [f"{self.vendor} {self.status}"]
        if self.title:
            parts.append(self.title)
        if self.detail and self.detail != self.title:
            parts.append(self.detail)
        for field, messages in self.errors.items():
            parts.append(f"{field}: {' '.join(messages)}")
        return ": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if len(parts) > 2 else "")


class VendorAnswer(BaseModel):
    """The last thing a vendor told us about this payment, for the status query and the UI."""

    at: datetime
    step: str
    text: str
    problem: VendorProblem | None = None


class StepRecord(BaseModel):
    """One step of the payment's story: when it ran, how it ended, how many activity attempts."""

    name: str
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str | None = None
    attempts: int = 0


class OperatorInput(BaseModel):
    """What every operator action may carry: who did it and why."""

    operator: str | None = None
    reason: str | None = None


class ApproveInput(OperatorInput):
    """``approve``: let a payment waiting for approval go on to be posted."""


class CancelInput(OperatorInput):
    """``cancel``: stop a payment that has not been posted; nothing is recorded at the vendor."""


class ResolveInput(OperatorInput):
    """``resolve``: the payment was handled by hand in the vendor's UI; end it as ResolvedManually."""

    vendor_payment_id: str | None = None


class RetryInput(OperatorInput):
    """``retry``: run the payment again from validation, optionally with corrections.

    Flat fields, so an operator can type ``{"load_number": "L-1002"}`` into the Temporal UI.
    The reference number is not correctable: it is the idempotency key of the business event.
    """

    load_number: str | None = None
    trip_id: str | None = None
    trip_number: str | None = None
    invoice_number: str | None = None
    amount: Decimal | None = None
    currency: str | None = None

    def corrected_ids(self) -> TargetIds:
        return TargetIds(
            load_number=self.load_number,
            trip_id=self.trip_id,
            trip_number=self.trip_number,
            invoice_number=self.invoice_number,
        )

    def has_corrections(self) -> bool:
        return any(
            v is not None
            for v in (self.load_number, self.trip_id, self.trip_number, self.invoice_number, self.amount)
        )


class OperatorAction(BaseModel):
    """An operator's action as the payment remembers it."""

    action: str
    at: datetime
    operator: str | None = None
    reason: str | None = None
    accepted: bool = True
    message: str = ""


class ActionAnswer(BaseModel):
    """What an update answers: the payment's state right after the action."""

    workflow_id: str
    status: PaymentStatus
    message: str


class PaymentState(BaseModel):
    """Everything the ``status`` query tells: where the payment is, what it waits for and why."""

    workflow_id: str
    status: PaymentStatus
    summary: str
    instruction: PaymentInstruction
    waiting_for: str | None = None
    reason: str | None = None
    next_actions: list[str] = Field(default_factory=list)
    last_vendor_answer: VendorAnswer | None = None
    vendor_payment_id: str | None = None
    target_status: str | None = None
    total_paid: Money | None = None
    total_billable: Money | None = None
    posted: bool = False
    #: A post was sent and its answer never came: the vendor may have recorded it.
    post_in_doubt: bool = False
    #: What is open on the target, where a vendor read told it before posting.
    remaining_balance: Money | None = None
    steps: list[StepRecord] = Field(default_factory=list)
    actions: list[OperatorAction] = Field(default_factory=list)
    payable_checks: int = 0
    #: ``PaymentFlags``: facts a person should see beside the status (``Overpaid``).
    flags: list[str] = Field(default_factory=list)


class PaymentResult(BaseModel):
    """How the payment ended: the workflow's result (derived from its :class:`PaymentState`)."""

    workflow_id: str
    status: PaymentStatus
    message: str
    target: str
    reference_number: str
    amount: Money
    vendor_payment_id: str | None = None
    target_status: str | None = None
    total_paid: Money | None = None
    total_billable: Money | None = None
    currency_defaulted: bool = False
    posted: bool = False
    flags: list[str] = Field(default_factory=list)


def result_of(state: PaymentState) -> PaymentResult:
    """The workflow's result, from the one state object the status query also answers from."""
    return PaymentResult(
        workflow_id=state.workflow_id,
        status=state.status,
        message=state.reason or state.status.value,
        target=state.instruction.target.value,
        reference_number=state.instruction.reference_number,
        amount=state.instruction.amount,
        vendor_payment_id=state.vendor_payment_id,
        target_status=state.target_status,
        total_paid=state.total_paid,
        total_billable=state.total_billable,
        currency_defaulted=state.instruction.currency_defaulted,
        posted=state.posted,
        flags=list(state.flags),
    )
