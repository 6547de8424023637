"""The operator rules (models/rules.py) over every status and action, and the other pure rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from models.money import Money
from models.payment import PaymentInstruction, Source, Target, TargetIds
from models.rules import (
    ALLOWED,
    OVERPAID,
    Action,
    Situation,
    approval_reasons,
    cancel_refusal,
    confirmation_from_callback,
    next_actions,
    refusal,
    settlement,
)
from models.state import PaymentStatus, RetryInput
from models.steps import CallbackReport, Confirmation, PaymentPolicy

INSTRUCTION = PaymentInstruction(
    source=Source.ALVYS_CUSTOMER,
    business_key="L-1-CHK-1",
    target=Target.ALVYS_CUSTOMER_PAYMENT,
    ids=TargetIds(load_number="L-1"),
    amount=Money.of("100.00", "USD"),
    payment_date=datetime(2026, 11, 20, tzinfo=UTC),
    reference_number="CHK-1",
)
#: Written out by hand, not derived from ALLOWED: the table the rules must match.
EXPECTED = {
    PaymentStatus.AWAITING_APPROVAL: {Action.APPROVE, Action.CANCEL, Action.RESOLVE},
    PaymentStatus.WAITING_FOR_PAYABLE: {Action.RETRY, Action.CANCEL, Action.RESOLVE},
    PaymentStatus.NEEDS_REVIEW: {Action.RETRY, Action.CANCEL, Action.RESOLVE},
    PaymentStatus.WAITING_FOR_VENDOR: {Action.CANCEL, Action.RESOLVE},
}
PARKED = set(EXPECTED)


def at(status: PaymentStatus, **facts: object) -> Situation:
    return Situation(status=status, instruction=INSTRUCTION, **facts)  # type: ignore[arg-type]


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("status", list(PaymentStatus))
def test_every_status_and_action(status: PaymentStatus, action: Action) -> None:
    why = refusal(action, at(status))
    fits = action in EXPECTED.get(status, set())
    assert (why is None) == fits, why
    if why is not None:
        # Every refusal says why in words an operator can act on, naming the status or the cause.
        assert status.value in why or "approval" in why
    assert (action.value in next_actions(at(status))) == fits


@pytest.mark.parametrize("status", sorted(PARKED))
def test_nothing_is_taken_while_another_action_is_being_taken(status: PaymentStatus) -> None:
    for action in ALLOWED[status]:
        assert "another action (retry)" in (refusal(action, at(status, busy_with="retry")) or "")


@pytest.mark.parametrize("status", [PaymentStatus.WAITING_FOR_PAYABLE, PaymentStatus.NEEDS_REVIEW])
def test_a_posted_or_doubtful_payment_cannot_be_cancelled(status: PaymentStatus) -> None:
    assert "already posted" in (refusal(Action.CANCEL, at(status, posted=True)) or "")
    assert "may have recorded it" in (refusal(Action.CANCEL, at(status, post_in_doubt=True)) or "")
    assert refusal(Action.CANCEL, at(status)) is None


def test_temporal_cancellation_follows_the_same_rule_in_every_status() -> None:
    for status in PaymentStatus:
        why = cancel_refusal(at(status))
        working = status in (PaymentStatus.POSTING, PaymentStatus.CONFIRMING)
        assert (why is None) == (not status.is_final and not working), (status, why)


def test_a_posted_payment_keeps_its_target_and_amount() -> None:
    posted = at(PaymentStatus.NEEDS_REVIEW, posted=True)
    retarget = refusal(Action.RETRY, posted, RetryInput(load_number="L-2"))
    assert retarget and "cannot change the target" in retarget and "resolve" in retarget
    assert refusal(Action.RETRY, posted, RetryInput(load_number="L-1")) is None  # the same target
    assert "amount" in (refusal(Action.RETRY, posted, RetryInput(amount=Decimal("5"))) or "")
    assert refusal(Action.RETRY, posted, RetryInput()) is None
    unposted = at(PaymentStatus.NEEDS_REVIEW)
    assert refusal(Action.RETRY, unposted, RetryInput(load_number="L-2", amount=Decimal("5.00"))) is None
    assert "greater than zero" in (refusal(Action.RETRY, unposted, RetryInput(amount=Decimal(0))) or "")
    assert "invalid amount" in (refusal(Action.RETRY, unposted, RetryInput(amount=Decimal("1.001"))) or "")


def test_approval_reasons() -> None:
    policy = PaymentPolicy(approval_thresholds={"USD": Decimal("100")})
    assert approval_reasons(INSTRUCTION, policy, None) == [
        "USD 100.00 is at or over the approval threshold of USD 100"
    ]
    relaxed = PaymentPolicy(approval_thresholds={})
    assert approval_reasons(INSTRUCTION, relaxed, Money.of("100.00", "USD")) == []
    (over,) = approval_reasons(INSTRUCTION, relaxed, Money.of("99.99", "USD"))
    assert "remaining balance of USD 99.99" in over
    with_total = INSTRUCTION.model_copy(update={"invoice_total": Money.of("50.00", "USD")})
    (total,) = approval_reasons(with_total, relaxed, None)
    assert "invoice total of USD 50.00" in total


def test_settlement_paid_partially_paid_and_overpaid() -> None:
    def confirmed(paid: str, billable: str) -> Confirmation:
        return Confirmation(
            confirmed=True,
            fully_paid=Decimal(paid) >= Decimal(billable),
            total_paid=Money.of(paid, "USD"),
            total_billable=Money.of(billable, "USD"),
        )

    assert settlement(confirmed("100.00", "100.00"), INSTRUCTION).status is PaymentStatus.PAID
    partial = settlement(confirmed("40.00", "100.00"), INSTRUCTION)
    assert partial.status is PaymentStatus.PARTIALLY_PAID and partial.flags == ()
    over = settlement(confirmed("130.00", "100.00"), INSTRUCTION)
    assert over.status is PaymentStatus.PAID and over.flags == (OVERPAID,)
    assert over.reason.endswith("overpaid by USD 30.00")


def test_a_callback_proves_with_the_payments_own_currency() -> None:
    report = CallbackReport(success=True, applied_amount=Decimal("60"), total_amount=Decimal("100"))
    confirmation = confirmation_from_callback(report, INSTRUCTION, "P-1")
    assert confirmation.total_paid == Money.of("60.00", "USD") and not confirmation.fully_paid
    paid = confirmation_from_callback(CallbackReport(success=True, invoice_status="PAID"), INSTRUCTION, None)
    assert paid.fully_paid and paid.total_paid == INSTRUCTION.amount
    failed = confirmation_from_callback(
        CallbackReport(success=False, invoice_status="PAID"), INSTRUCTION, None
    )
    assert not failed.confirmed and not failed.fully_paid


def test_post_outcomes_recorded_before_proof_read_the_same() -> None:
    from models.steps import PostOutcome, Proof

    def read(**old: object) -> Proof:
        return PostOutcome.model_validate({"outcome": "recorded", **old}).proof

    assert read(confirmed=True, awaiting_callback=False) is Proof.ANSWER
    assert read(confirmed=False, awaiting_callback=True) is Proof.CALLBACK
    assert read(confirmed=False, awaiting_callback=False) is Proof.READ_BACK
    assert read(proof="callback") is Proof.CALLBACK
    assert "confirmed" not in PostOutcome(outcome="recorded").model_dump()
