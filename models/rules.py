"""The payment's rules, as pure functions beside the workflow: no Temporal, no I/O, no clock.

The workflow (workflows/payment.py) tells the story and asks these what the rules say:
which operator action fits which status (and, when it does not, why not, in words an operator
can act on), when a payment waits for approval, what a callback proves, and how a confirmed
posting ends. Keeping them here lets one parametrized unit test cover every status and action
(tests/test_rules.py), and keeps the workflow short enough to read as the payment's story.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from models.money import Money, MoneyError
from models.payment import PaymentInstruction
from models.state import OperatorInput, PaymentStatus, RetryInput
from models.steps import CallbackReport, Confirmation, PaymentPolicy
from models.texts import target_label


class Action(StrEnum):
    """What an operator can do to a payment (signals and updates of these names)."""

    APPROVE = "approve"
    RETRY = "retry"
    CANCEL = "cancel"
    RESOLVE = "resolve"


#: Which actions fit which status. Only the three statuses where a payment waits for a person
#: take actions: while it is working (Validating, Posting, Confirming) an action would race the
#: vendor call, and a final payment has nothing left to change.
ALLOWED: dict[PaymentStatus, frozenset[Action]] = {
    PaymentStatus.AWAITING_APPROVAL: frozenset({Action.APPROVE, Action.CANCEL, Action.RESOLVE}),
    PaymentStatus.WAITING_FOR_PAYABLE: frozenset({Action.RETRY, Action.CANCEL, Action.RESOLVE}),
    PaymentStatus.NEEDS_REVIEW: frozenset({Action.RETRY, Action.CANCEL, Action.RESOLVE}),
    # The vendor call goes on by itself: a retry would only repeat it; cancel (if nothing was
    # posted) and resolve (settled by hand) still end the payment.
    PaymentStatus.WAITING_FOR_VENDOR: frozenset({Action.CANCEL, Action.RESOLVE}),
}

POSTED_MESSAGE = "the payment was already posted to the vendor"


@dataclass(frozen=True)
class Situation:
    """What the rules need to know about a payment right now."""

    status: PaymentStatus
    instruction: PaymentInstruction
    posted: bool = False
    #: A post was sent and its answer never came: the vendor may have recorded it.
    post_in_doubt: bool = False
    #: The action being taken right now, if any (actions are taken one at a time).
    busy_with: str | None = None


def refusal(action: Action | str, situation: Situation, input: OperatorInput | None = None) -> str | None:
    """Why ``action`` does not fit the payment now, or None when it does."""
    action = Action(action)
    status = situation.status
    if situation.busy_with is not None:
        return f"another action ({situation.busy_with}) is being taken; try again in a moment"
    if action not in ALLOWED.get(status, frozenset()):
        if action is Action.APPROVE:
            return f"nothing awaits approval: the payment is {status.value}"
        if status.is_final:
            return f"cannot {action.value}: the payment is already {status.value}"
        return (
            f"cannot {action.value} while the payment is {status.value}; "
            "it will ask for a person (NeedsReview) if it needs one"
        )
    if action is Action.CANCEL:
        return cancel_refusal(situation)
    if isinstance(input, RetryInput):
        return retry_refusal(situation, input)
    return None


def cancel_refusal(situation: Situation) -> str | None:
    """Why the payment cannot be cancelled (by an operator or by Temporal), or None: nothing was posted."""
    if situation.status.is_final:
        return f"cannot cancel: the payment is already {situation.status.value}"
    if situation.posted:
        return f"cannot cancel: {POSTED_MESSAGE}; use resolve once it is settled there"
    if situation.post_in_doubt or situation.status in (PaymentStatus.POSTING, PaymentStatus.CONFIRMING):
        return (
            "cannot cancel: a post was sent and the vendor may have recorded it; "
            "check the vendor, then resolve, or retry (the post is idempotent)"
        )
    return None


def retry_refusal(situation: Situation, input: RetryInput) -> str | None:
    """Why these corrections cannot be retried: a posted payment keeps its target and amount."""
    instruction = situation.instruction
    if situation.posted and instruction.ids.merged(input.corrected_ids()) != instruction.ids:
        return (
            f"cannot change the target: {POSTED_MESSAGE} ({target_label(instruction)}); correct it in "
            f"{instruction.target.vendor}'s system, then resolve"
        )
    if input.amount is None:
        return None
    if situation.posted:
        return "cannot correct the amount: the payment was already posted with this reference"
    if input.amount <= 0:
        return "amount must be greater than zero"
    try:
        Money(amount=input.amount, currency=input.currency or instruction.amount.currency)
    except (ValueError, MoneyError) as exc:
        return f"invalid amount: {exc}"
    return None


def next_actions(situation: Situation) -> list[str]:
    """The actions that fit now, for the status query and the UI's current details."""
    return [a.value for a in Action if refusal(a, situation) is None]


def approval_reasons(
    instruction: PaymentInstruction, policy: PaymentPolicy, remaining: Money | None
) -> list[str]:
    """Why the payment must wait for an operator's approval (empty: it need not).

    At or over the approval threshold; or more than what is open on the target where that is
    known before posting: the vendor's remaining balance (an invoice or a load read) or the
    invoice total the sender gave. An overpayment known only from the post's answer is flagged
    instead (:func:`settlement`).
    """
    amount = instruction.amount
    reasons = []
    if policy.needs_approval(amount):
        threshold = policy.approval_thresholds[amount.currency]
        reasons.append(f"{amount} is at or over the approval threshold of {amount.currency} {threshold:,}")
    if remaining is not None and remaining.currency == amount.currency and amount > remaining:
        reasons.append(f"{amount} is more than the remaining balance of {remaining} (overpayment)")
    total = instruction.invoice_total
    if total is not None and total.currency == amount.currency and amount > total:
        reasons.append(f"{amount} is more than the invoice total of {total} the sender gave (overpayment)")
    return reasons


def confirmation_from_callback(
    report: CallbackReport, instruction: PaymentInstruction, vendor_payment_id: str | None
) -> Confirmation:
    """What a (genuine) vendor callback proves. Its amounts carry no currency: the payment's own."""
    currency = instruction.amount.currency
    try:
        applied = Money(amount=report.applied_amount, currency=currency) if report.applied_amount else None
        total = Money(amount=report.total_amount, currency=currency) if report.total_amount else None
    except ValueError as exc:  # MoneyError and pydantic's ValidationError are ValueErrors
        # An amount the payment's currency cannot hold proves nothing: a person must look.
        return Confirmation(
            confirmed=False,
            vendor_payment_id=vendor_payment_id,
            reason=f"the callback's amounts do not fit {currency} ({str(exc).splitlines()[0]})",
        )
    applied = applied or instruction.amount
    total = total or instruction.invoice_total or applied
    fully_paid = report.invoice_status.upper() == "PAID" if report.invoice_status else applied >= total
    return Confirmation(
        confirmed=report.success,
        fully_paid=report.success and fully_paid,
        target_status=report.invoice_status,
        total_paid=applied,
        total_billable=total,
        vendor_payment_id=vendor_payment_id,
        reason=report.message,
    )


#: The ``PaymentFlags`` value of a payment whose vendor totals show more paid than billed.
OVERPAID = "Overpaid"


@dataclass(frozen=True)
class Settlement:
    """How a confirmed posting ends: Paid or PartiallyPaid, with its flags and its reason."""

    status: PaymentStatus
    flags: tuple[str, ...]
    reason: str


def settlement(confirmation: Confirmation, instruction: PaymentInstruction) -> Settlement:
    """Paid when the vendor's totals say the target is covered, else PartiallyPaid.

    Paid beyond what was billed (``TotalPaid > TotalBillable``, known only from the answer) stays
    Paid, flagged ``Overpaid`` for a person to look at.
    """
    status = PaymentStatus.PAID if confirmation.fully_paid else PaymentStatus.PARTIALLY_PAID
    paid, billable = confirmation.total_paid, confirmation.total_billable
    flags: tuple[str, ...] = ()
    totals = ""
    if paid is not None and billable is not None:
        totals = f": {paid} of {billable} paid"
        if paid.currency == billable.currency and paid > billable:
            flags = (OVERPAID,)
            totals += f", overpaid by {paid - billable}"
    elif confirmation.target_status:
        totals = f": {target_label(instruction)} is {confirmation.target_status}"
    return Settlement(status, flags, f"recorded by {instruction.target.vendor}{totals}")
