"""The inputs and outputs of the payment's steps: what activities tell the workflow.

Activities turn vendor answers into these *facts*. A vendor refusal (a 4xx) is a fact,
not an exception: the workflow reads ``outcome`` and decides (wait, ask a person). Only
transient trouble (429, 5xx, timeouts) is raised, so Temporal retries it.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, model_validator

from models.money import Money
from models.payment import PaymentInstruction, TargetIds
from models.queues import VendorQueue
from models.state import VendorProblem


class PaymentPolicy(BaseModel):
    """The business rules a payment runs under, fixed at its start (so replays agree).

    ``approval_thresholds`` maps a currency to the amount at or above which an operator
    must approve; a currency without an entry needs no approval for its size.
    """

    approval_thresholds: dict[str, Decimal] = Field(default_factory=lambda: {"USD": Decimal("10000")})
    payable_recheck_interval: timedelta = timedelta(hours=1)
    payable_deadline: timedelta = timedelta(days=14)
    callback_timeout: timedelta = timedelta(hours=1)
    #: How long a step's vendor may be unreachable (or answer 5xx) before the payment shows
    #: ``WaitingForVendor``; it then keeps trying with capped backoff and carries on by itself.
    #: None (inputs recorded before it existed): NeedsReview after an hour, as those payments did.
    vendor_patience: timedelta | None = None
    #: Whether exception alerts are sent (``FREIGHTPAY_ALERT_WEBHOOK_URL`` set at the start).
    alerts: bool = False
    #: Vendor queues without a rate budget (``ALVYS_REQUESTS_PER_MINUTE=0``, TransportOne's
    #: default): their steps run on the payment's own task queue, so the worker that schedules
    #: the call takes it at once (eager activity dispatch) instead of the server handing it to
    #: another queue's poller, about 60 ms per step on an idle machine (docs/benchmarks.md). A
    #: queue with a budget keeps its own task queue: only there does the budget hold across
    #: workers. Fixed at the start from the starting process's settings; empty (inputs recorded
    #: before it existed): every step on its vendor queue, as those payments did.
    inline_queues: list[VendorQueue] = Field(default_factory=list)

    def needs_approval(self, amount: Money) -> bool:
        threshold = self.approval_thresholds.get(amount.currency)
        return threshold is not None and amount.amount >= threshold


class PaymentInput(BaseModel):
    """The payment workflow's one input."""

    instruction: PaymentInstruction
    policy: PaymentPolicy = PaymentPolicy()


class ResolveRequest(BaseModel):
    """Find the vendor record a payment is for, from whatever identifiers it came with."""

    instruction: PaymentInstruction


class Resolution(BaseModel):
    """The target record, or why it could not be found."""

    ids: TargetIds
    found: bool
    reason: str | None = None
    candidates: list[str] = Field(default_factory=list)
    target_status: str | None = None
    #: What is still open on the target, where the vendor tells it (for the overpayment check).
    remaining_balance: Money | None = None
    problem: VendorProblem | None = None
    attempt: int = 1


class PayableCheck(BaseModel):
    """Whether the target accepts payments now (Alvys loads: Invoiced, Completed or Financed)."""

    payable: bool
    target_status: str | None = None
    #: What is still open on the target, where the read tells it (for the overpayment check).
    remaining_balance: Money | None = None
    found: bool = True
    reason: str | None = None
    attempt: int = 1


class PostOutcomeKind(StrEnum):
    RECORDED = "recorded"
    NOT_PAYABLE = "not_payable"
    NOT_FOUND = "not_found"
    REJECTED = "rejected"


class PostRequest(BaseModel):
    """Record one payment at the vendor; ``instruction.reference_number`` is the idempotency key."""

    instruction: PaymentInstruction


class Proof(StrEnum):
    """How a recorded posting is proven to be at the vendor."""

    #: The post's own answer says enough (Alvys totals, our reference among a trip's payments):
    #: no read-back, which would cost a rate-limited call.
    ANSWER = "answer"
    #: The answer did not say enough (or could not be read): read the vendor's record back.
    READ_BACK = "read_back"
    #: The vendor confirms later by calling us back (TransportOne).
    CALLBACK = "callback"


class PostOutcome(BaseModel):
    """What the vendor answered to the post, as facts."""

    outcome: PostOutcomeKind
    problem: VendorProblem | None = None
    vendor_payment_id: str | None = None
    target_status: str | None = None
    total_paid: Money | None = None
    total_billable: Money | None = None
    #: How this posting is proven (meaningful when ``outcome`` is RECORDED).
    proof: Proof = Proof.READ_BACK
    #: What the answer itself says about the whole target, where it says (Proof.ANSWER).
    fully_paid: bool | None = None
    attempt: int = 1

    @model_validator(mode="before")
    @classmethod
    def _from_recorded_history(cls, data: Any) -> Any:
        """Histories recorded before ``proof`` said it with two booleans: read them the same."""
        if (
            isinstance(data, dict)
            and "proof" not in data
            and ("confirmed" in data or "awaiting_callback" in data)
        ):
            data = dict(data)
            confirmed, callback = data.pop("confirmed", False), data.pop("awaiting_callback", False)
            data["proof"] = Proof.ANSWER if confirmed else Proof.CALLBACK if callback else Proof.READ_BACK
        return data


class ConfirmRequest(BaseModel):
    instruction: PaymentInstruction
    post: PostOutcome


class Confirmation(BaseModel):
    """Proof (or not) that the vendor recorded the payment, and whether the target is fully paid."""

    confirmed: bool
    fully_paid: bool = False
    target_status: str | None = None
    total_paid: Money | None = None
    total_billable: Money | None = None
    vendor_payment_id: str | None = None
    reason: str | None = None
    attempt: int = 1


class CallbackReport(BaseModel):
    """A vendor's callback about a posted payment (TransportOne), relayed to the workflow as a signal.

    Amounts are bare decimals: the callback carries no currency, the payment knows its own.
    """

    success: bool
    applied_amount: Decimal | None = None
    total_amount: Decimal | None = None
    #: The vendor's word on the whole invoice (TransportOne ``PAID`` / ``PARTIALLY_PAID``).
    invoice_status: str | None = None
    message: str | None = None
    #: The ingress's proof that the report came through its authenticated callback route
    #: (an HMAC, checked by the worker; config/relay.py). A report without a valid one is refused.
    proof: str | None = None


class LoadPayable(BaseModel):
    """``load_payable``: an Alvys event (``load.status.changed``) says a load became payable."""

    load_number: str | None = None
    status: str | None = None
    event_id: str | None = None


class CallbackCheck(BaseModel):
    """``verify_callback``: is ``report`` a genuine relay for the payment ``workflow_id``?"""

    workflow_id: str
    report: CallbackReport


class CallbackVerdict(BaseModel):
    genuine: bool


class LineConflict(BaseModel):
    """A file's line whose key was accepted with other facts: recorded, never posted, never dropped."""

    line: str
    workflow_id: str
    differences: list[str]


class RemittanceInput(BaseModel):
    """A remittance file's parent workflow: the file by reference (a claim check), not its lines.

    The lines stay out of the history (a 10,000-line file would not fit in one payload);
    an activity reads them a batch at a time from the stored file ``file_id``. Continue-as-new
    carries ``next_line`` and the counts so far, so each run's history stays bounded.
    """

    file_id: str
    file_name: str
    total_lines: int
    policy: PaymentPolicy = PaymentPolicy()
    batch_size: int = 200
    concurrency: int = 50
    next_line: int = 0
    by_status: dict[str, int] = Field(default_factory=dict)
    conflicts: list[LineConflict] = Field(default_factory=list)


class RemittanceBatchRequest(BaseModel):
    file_id: str
    start: int
    count: int


class RemittanceProgress(BaseModel):
    """What the ``progress`` query and the final result tell: lines done, and their final states."""

    file_name: str
    total_lines: int
    started: int
    finished: int
    by_status: dict[str, int]
    running: list[str] = Field(default_factory=list)
    #: Lines refused as conflicting repeats (``Conflict`` in ``by_status``), with what differs.
    conflicts: list[LineConflict] = Field(default_factory=list)


#: ``RepeatCheck.status`` when no payment has the key (removed after its retention period).
NOT_FOUND = "NotFound"


class RepeatCheck(BaseModel):
    """A line against the payment accepted under its key: each differing field, or none.

    ``fields`` names the differing fields (``amount``, ``ids.load_number``, ...), in the order
    of ``differences``. ``status`` is where the accepted payment is: its ``PaymentStatus``, or
    how Temporal closed it (``Terminated``, ``TimedOut``, ``Failed``) when that ended it before
    a final status, or :data:`NOT_FOUND`. Both were added after ``differences``: an older
    worker's answer has neither (empty ``fields``, ``status`` None), which readers take as
    "not known" and keep their older behaviour (:func:`models.matching.not_applied`).
    """

    differences: list[str] = Field(default_factory=list)
    fields: list[str] = Field(default_factory=list)
    status: str | None = None
