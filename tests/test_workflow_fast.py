"""The payment workflow's every branch in seconds: time-skipping test server, fake activities.

The real :class:`PaymentWorkflow` runs on Temporal's time-skipping test server against fake
activities registered under the real names (tests/support/fakes.py), which answer with
scripted facts: every post outcome, confirmation from the answer, a read-back or a callback,
the activity failing past its retries, every operator action in every parked state (as an
update and as a signal), Temporal's own cancellation, and the Overpaid flag. Waits of hours
(the 1 h step deadline, payable re-checks, the callback timeout) pass in moments.

Only public behaviour is looked at: the result, the ``status`` query, update answers and
refusals, the search attributes, the execution status, and what the fake vendor was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import TypedSearchAttributes
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment

from models.money import Money
from models.payment import TargetIds
from models.queues import VendorQueue, queue_name
from models.state import (
    ApproveInput,
    CancelInput,
    OperatorAction,
    OperatorInput,
    PaymentState,
    PaymentStatus,
    ResolveInput,
    RetryInput,
)
from models.steps import PostOutcome, PostRequest, Resolution, ResolveRequest
from tests.support.fakes import (
    FAST,
    GENUINE_PROOF,
    FakeVendor,
    Gate,
    PaymentHandle,
    Payments,
    callback,
    not_payable,
    payable,
    payments,
    post_not_found,
    read_back,
    recorded,
    rejected,
    resolved,
    time_skipping_environment,
    unavailable,
    unresolved,
    update,
)
from tests.support.instructions import carrier, customer, transportone, uid
from workflows.payment import PaymentWorkflow
from workflows.search_attributes import PAYMENT_FLAGS, PAYMENT_STATUS

#: How long a step's activity keeps retrying before the payment asks a person (the workflow's
#: step deadline: 1 h of workflow time), with a margin.
PAST_THE_STEP_DEADLINE = timedelta(hours=1, minutes=5)
#: What a payment may be doing right after an accepted approve or retry: working again.
WORKING = {PaymentStatus.VALIDATING, PaymentStatus.POSTING, PaymentStatus.CONFIRMING}
TEMPORAL = "Temporal (Request Cancellation)"


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_environment() as environment:
        yield environment


@pytest.fixture
async def pay(env: WorkflowEnvironment) -> AsyncIterator[Payments]:
    """A fresh task queue with fake workers; whatever is still running is ended afterwards."""
    async with payments(env) as harness:
        yield harness


async def indexed(handle: PaymentHandle) -> TypedSearchAttributes:
    return (await handle.describe()).typed_search_attributes


def load() -> str:
    return f"L-{uid()}"


# ---------------------------------------------------------------------- every post outcome


async def test_recorded_and_proven_by_the_answer_is_paid_with_one_vendor_call(pay: Payments) -> None:
    instruction = customer(load(), "382.53")
    pay.vendor.post.then(recorded("382.53", "382.53"))

    handle = await pay.start(instruction)
    result = await pay.result(handle)

    assert result.status is PaymentStatus.PAID and result.posted and result.flags == []
    assert result.total_paid == Money.of("382.53") and result.total_billable == Money.of("382.53")
    assert result.vendor_payment_id == "P-1"
    # One vendor call, on the customer-payments queue (its rate limit), with the business reference.
    assert [c.instruction.reference_number for c in pay.vendor.post.calls] == [instruction.reference_number]
    assert pay.vendor.post.queues == [queue_name(pay.task_queue, VendorQueue.ALVYS_CUSTOMER_PAYMENTS)]
    assert pay.vendor.confirm.calls == [] and pay.vendor.resolve.calls == []
    attributes = await indexed(handle)
    assert attributes.get(PAYMENT_STATUS) == "Paid" and attributes.get(PAYMENT_FLAGS) is None
    state = await pay.state(handle)
    assert [(s.name, s.outcome, s.attempts) for s in state.steps] == [("post", "recorded", 1)]


async def test_recorded_with_a_balance_left_is_partially_paid(pay: Payments) -> None:
    pay.vendor.post.then(recorded("100.00", "640.00"))

    result = await pay.result(await pay.start(customer(load(), "100.00")))

    assert result.status is PaymentStatus.PARTIALLY_PAID and result.posted
    assert "USD 100.00 of USD 640.00 paid" in result.message


async def test_a_carrier_payment_completing_the_trip_is_paid(pay: Payments) -> None:
    pay.vendor.post.then(recorded(target_status="Completed", fully_paid=True))

    result = await pay.result(await pay.start(carrier(f"T-{uid()}", "1200.00")))

    assert result.status is PaymentStatus.PAID and result.target_status == "Completed"
    assert pay.vendor.post.queues == [queue_name(pay.task_queue, VendorQueue.ALVYS_CARRIER_PAYMENTS)]


async def test_recorded_needing_a_read_back_that_confirms_it_is_paid(pay: Payments) -> None:
    pay.vendor.post.then(recorded(proof="read_back", vendor_payment_id="P-7"))
    pay.vendor.confirm.then(read_back("640.00", "640.00"))

    result = await pay.result(await pay.start(customer(load(), "640.00")))

    assert result.status is PaymentStatus.PAID and result.total_paid == Money.of("640.00")
    assert [c.post.vendor_payment_id for c in pay.vendor.confirm.calls] == ["P-7"]
    assert pay.vendor.confirm.queues == [queue_name(pay.task_queue, VendorQueue.ALVYS_READS)]


async def test_recorded_needing_a_read_back_that_does_not_find_it_needs_review(pay: Payments) -> None:
    pay.vendor.post.then(recorded(proof="read_back"))
    pay.vendor.confirm.then(read_back(confirmed=False, reason="no payment with this reference"))

    handle = await pay.start(customer(load(), "640.00"))
    state = await pay.wait_for(handle, PaymentStatus.NEEDS_REVIEW)

    assert state.posted
    assert "does not show it: no payment with this reference" in (state.reason or "")
    assert state.next_actions == ["retry", "resolve"]  # posted: no cancel


async def test_awaiting_a_callback_then_a_genuine_one_is_paid(pay: Payments) -> None:
    pay.vendor.post.then(recorded(proof="callback", vendor_payment_id="T1-9"))
    handle = await pay.start(transportone(f"INV-{uid()}", "5000.00"))
    state = await pay.wait_for(handle, PaymentStatus.CONFIRMING)
    assert "callback" in (state.waiting_for or "") and state.posted

    await handle.signal(
        PaymentWorkflow.vendor_callback, callback(applied="5000.00", total="5000.00", invoice_status="PAID")
    )
    result = await pay.result(handle)

    assert result.status is PaymentStatus.PAID and result.vendor_payment_id == "T1-9"
    assert result.total_paid == Money.of("5000.00", "INR")
    assert len(pay.vendor.verify.calls) == 1 and pay.vendor.verify.calls[0].workflow_id == handle.id
    assert pay.vendor.verify.queues == [pay.task_queue]  # a local activity, in the workflow's worker
    assert pay.vendor.post.queues == [queue_name(pay.task_queue, VendorQueue.TRANSPORTONE)]


async def test_a_callback_that_is_not_genuine_is_refused_and_the_wait_goes_on(pay: Payments) -> None:
    pay.vendor.post.then(recorded(proof="callback"))
    handle = await pay.start(transportone(f"INV-{uid()}", "5000.00"))
    await pay.wait_for(handle, PaymentStatus.CONFIRMING)

    await handle.signal(PaymentWorkflow.vendor_callback, callback(genuine=False))
    state = await wait_for_action(pay, handle, "vendor_callback")

    assert state.status is PaymentStatus.CONFIRMING and not state.actions[-1].accepted
    assert "nothing changed" in state.actions[-1].message
    await handle.signal(
        PaymentWorkflow.vendor_callback, callback(applied="2000.00", invoice_status="PARTIALLY_PAID")
    )
    result = await pay.result(handle)
    assert result.status is PaymentStatus.PARTIALLY_PAID
    assert [c.report.proof for c in pay.vendor.verify.calls] == ["0" * 64, GENUINE_PROOF]


async def test_a_genuine_callback_reporting_a_failure_needs_review(pay: Payments) -> None:
    pay.vendor.post.then(recorded(proof="callback"))
    handle = await pay.start(transportone(f"INV-{uid()}", "5000.00"))
    await pay.wait_for(handle, PaymentStatus.CONFIRMING)

    await handle.signal(
        PaymentWorkflow.vendor_callback, callback(success=False, invoice_status=None, message="bank refused")
    )
    state = await pay.wait_for(handle, PaymentStatus.NEEDS_REVIEW)

    assert state.posted and "bank refused" in (state.reason or "")


async def test_no_callback_in_time_needs_review(env: WorkflowEnvironment, pay: Payments) -> None:
    pay.vendor.post.then(recorded(proof="callback"))
    handle = await pay.start(transportone(f"INV-{uid()}", "5000.00"))
    await pay.wait_for(handle, PaymentStatus.CONFIRMING)

    await env.sleep(FAST.callback_timeout + timedelta(minutes=1))
    state = await pay.wait_for(handle, PaymentStatus.NEEDS_REVIEW)

    assert "no callback from TransportOne within 2 hours" in (state.reason or "")
    assert state.posted and pay.vendor.verify.calls == []


async def test_not_payable_waits_then_is_paid_once_the_load_is_payable(pay: Payments) -> None:
    pay.vendor.post.then(not_payable("Delivered"), recorded("640.00", "640.00"))
    pay.vendor.payable.then(payable(False), payable(True))
    handle = await pay.start(customer(load(), "640.00"))

    state = await pay.wait_for(handle, PaymentStatus.WAITING_FOR_PAYABLE)
    assert "is Delivered" in (state.reason or "") and not state.posted
    assert state.next_actions == ["retry", "cancel", "resolve"]
    result = await pay.result(handle)  # time skips the re-checks (every 10 minutes)

    assert result.status is PaymentStatus.PAID
    assert len(pay.vendor.post.calls) == 2 and len(pay.vendor.payable.calls) == 2
    assert set(pay.vendor.payable.queues) == {queue_name(pay.task_queue, VendorQueue.ALVYS_READS)}
    assert (await pay.state(handle)).payable_checks == 2


async def test_never_payable_needs_review_at_the_deadline(env: WorkflowEnvironment, pay: Payments) -> None:
    pay.vendor.post.then(not_payable("Dispatched"))
    pay.vendor.payable.then(payable(False, "Dispatched"))
    handle = await pay.start(customer(load(), "640.00"))
    await pay.wait_for(handle, PaymentStatus.WAITING_FOR_PAYABLE)

    await env.sleep(FAST.payable_deadline + timedelta(minutes=20))
    state = await pay.wait_for(handle, PaymentStatus.NEEDS_REVIEW)

    assert "was still Dispatched after 3 hours" in (state.reason or "")
    assert not state.posted and state.next_actions == ["retry", "cancel", "resolve"]
    assert len(pay.vendor.post.calls) == 1


@pytest.mark.parametrize(
    ("outcome", "text"),
    [
        (post_not_found(), "Alvys 404: Load not found"),
        (rejected("PaymentDate is in the future"), "Alvys 400"),
    ],
    ids=["not_found", "rejected"],
)
async def test_a_vendor_refusal_needs_review_and_posts_nothing(
    pay: Payments, outcome: PostOutcome, text: str
) -> None:
    pay.vendor.post.then(outcome)
    handle = await pay.start(customer(load(), "640.00"))

    state = await pay.wait_for(handle, PaymentStatus.NEEDS_REVIEW)

    assert "Alvys refused the payment" in (state.reason or "") and text in (state.reason or "")
    assert not state.posted and state.next_actions == ["retry", "cancel", "resolve"]
    assert state.last_vendor_answer is not None and state.last_vendor_answer.problem is not None


async def test_the_post_failing_past_its_retries_needs_review_and_cannot_be_cancelled(
    env: WorkflowEnvironment, pay: Payments
) -> None:
    pay.vendor.post.then(unavailable())
    handle = await pay.start(customer(load(), "640.00"))

    await env.sleep(PAST_THE_STEP_DEADLINE)
    state = await pay.wait_for(handle, PaymentStatus.NEEDS_REVIEW)

    assert "could not be reached" in (state.reason or "") and "Alvys 503" in (state.reason or "")
    assert len(pay.vendor.post.calls) > 10  # retried with backoff for the whole step deadline
    # Its answer never came: the vendor may have recorded it, so nothing may call it unposted.
    assert not state.posted and state.next_actions == ["retry", "resolve"]
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await update(handle, "cancel", CancelInput(reason="give up"))
    assert "a post was sent and the vendor may have recorded it" in str(refused.value.cause)

    pay.vendor.post.then(recorded("640.00", "640.00"))  # the vendor is back: the retry is idempotent
    await update(handle, "retry", RetryInput(reason="Alvys is back"))
    assert (await pay.result(handle)).status is PaymentStatus.PAID


async def test_a_read_failing_past_its_retries_needs_review_and_can_be_cancelled(
    env: WorkflowEnvironment, pay: Payments
) -> None:
    pay.vendor.resolve.then(unavailable())
    instruction = customer(load(), "640.00").model_copy(update={"ids": TargetIds(invoice_number="INV-1")})
    handle = await pay.start(instruction)

    await env.sleep(PAST_THE_STEP_DEADLINE)
    state = await pay.wait_for(handle, PaymentStatus.NEEDS_REVIEW)

    assert state.next_actions == ["retry", "cancel", "resolve"] and pay.vendor.post.calls == []


async def test_a_non_retryable_failure_needs_review_at_once(pay: Payments) -> None:
    pay.vendor.post.then(ApplicationError("this worker has no Alvys client", type="VendorConfigurationError"))
    handle = await pay.start(customer(load(), "640.00"))

    state = await pay.wait_for(handle, PaymentStatus.NEEDS_REVIEW)

    assert len(pay.vendor.post.calls) == 1 and "no Alvys client" in (state.reason or "")


async def test_a_target_is_resolved_before_posting(pay: Payments) -> None:
    number = load()
    pay.vendor.resolve.then(resolved(TargetIds(invoice_number="INV-5", load_number=number)))
    pay.vendor.post.then(recorded("300.00", "300.00"))
    instruction = customer("x", "300.00").model_copy(update={"ids": TargetIds(invoice_number="INV-5")})

    result = await pay.result(await pay.start(instruction))

    assert result.status is PaymentStatus.PAID
    assert [c.instruction.ids.load_number for c in pay.vendor.post.calls] == [number]
    assert pay.vendor.resolve.queues == [queue_name(pay.task_queue, VendorQueue.ALVYS_READS)]


async def test_an_unresolved_target_needs_review_and_a_corrected_retry_pays_it(pay: Payments) -> None:
    pay.vendor.resolve.then(unresolved(TargetIds(po_number="PO-1"), "two loads carry PO-1", ["L-1", "L-2"]))
    pay.vendor.post.then(recorded("300.00", "300.00"))
    instruction = customer("x", "300.00").model_copy(update={"ids": TargetIds(po_number="PO-1")})
    handle = await pay.start(instruction)
    state = await pay.wait_for(handle, PaymentStatus.NEEDS_REVIEW)
    assert "two loads carry PO-1" in (state.reason or "") and "Candidates: L-1, L-2" in (state.reason or "")

    await update(handle, "retry", RetryInput(load_number="L-2", reason="AR says L-2"))

    assert (await pay.result(handle)).status is PaymentStatus.PAID
    assert [c.instruction.ids.load_number for c in pay.vendor.post.calls] == ["L-2"]


async def test_more_than_the_remaining_balance_waits_for_approval(pay: Payments) -> None:
    pay.vendor.resolve.then(resolved(TargetIds(load_number="L-9"), remaining=Money.of("100.00")))
    instruction = customer("x", "300.00").model_copy(update={"ids": TargetIds(invoice_number="INV-9")})
    handle = await pay.start(instruction)

    state = await pay.wait_for(handle, PaymentStatus.AWAITING_APPROVAL)

    assert "more than the remaining balance of USD 100.00" in (state.reason or "")
    assert pay.vendor.post.calls == []


# ---------------------------------------------------------------------- every parked state and action


@dataclass(frozen=True)
class Parked:
    """A payment held in one status (waiting for a person, or for a vendor call that has not
    answered), with the vendor scripted so that an accepted approve or retry pays it."""

    status: PaymentStatus
    posted: bool
    park: Callable[[Payments], Awaitable[PaymentHandle]]


async def _awaiting_approval(pay: Payments) -> PaymentHandle:
    pay.vendor.post.then(recorded("11000.00", "11000.00"))
    return await pay.start(customer(load(), "11000.00"))


async def _waiting_for_payable(pay: Payments) -> PaymentHandle:
    pay.vendor.post.then(not_payable("Delivered"), recorded("640.00", "640.00"))
    pay.vendor.payable.then(payable(False))
    return await pay.start(customer(load(), "640.00"))


async def _needs_review_unposted(pay: Payments) -> PaymentHandle:
    pay.vendor.post.then(rejected(), recorded("640.00", "640.00"))
    return await pay.start(customer(load(), "640.00"))


async def _needs_review_posted(pay: Payments) -> PaymentHandle:
    pay.vendor.post.then(recorded(proof="read_back"))
    pay.vendor.confirm.then(read_back(confirmed=False, reason="not there yet"), read_back("640.00", "640.00"))
    return await pay.start(customer(load(), "640.00"))


async def _confirming(pay: Payments) -> PaymentHandle:
    pay.vendor.post.then(recorded(proof="callback"))
    return await pay.start(transportone(f"INV-{uid()}", "5000.00"))


async def _validating(pay: Payments) -> PaymentHandle:
    """Still finding the target: the vendor's read has not answered."""
    gate: Gate[ResolveRequest, Resolution] = Gate(resolved(TargetIds(load_number=load())))
    pay.vendor.resolve.then(gate)
    return await pay.start(
        customer("x", "640.00").model_copy(update={"ids": TargetIds(invoice_number="I-1")})
    )


async def _posting(pay: Payments) -> PaymentHandle:
    """The post was sent and its answer has not come."""
    gate: Gate[PostRequest, PostOutcome] = Gate(recorded("640.00", "640.00"))
    pay.vendor.post.then(gate)
    return await pay.start(customer(load(), "640.00"))


PARKED = {
    "AwaitingApproval": Parked(PaymentStatus.AWAITING_APPROVAL, False, _awaiting_approval),
    "WaitingForPayable": Parked(PaymentStatus.WAITING_FOR_PAYABLE, False, _waiting_for_payable),
    "NeedsReview-unposted": Parked(PaymentStatus.NEEDS_REVIEW, False, _needs_review_unposted),
    "NeedsReview-posted": Parked(PaymentStatus.NEEDS_REVIEW, True, _needs_review_posted),
    # Working: every action refused (Confirming by callback can last hours).
    "Validating": Parked(PaymentStatus.VALIDATING, False, _validating),
    "Posting": Parked(PaymentStatus.POSTING, False, _posting),
    "Confirming": Parked(PaymentStatus.CONFIRMING, True, _confirming),
}


@dataclass(frozen=True)
class Refused:
    """The update is refused with exactly this text, and nothing changes."""

    text: str


def _working(refusal: str) -> Refused:
    return Refused(refusal + "; it will ask for a person (NeedsReview) if it needs one")


#: (parked, action) → the status the payment ends in, or the refusal.
MATRIX: list[tuple[str, str, PaymentStatus | Refused]] = [
    ("AwaitingApproval", "approve", PaymentStatus.PAID),
    ("AwaitingApproval", "retry", _working("cannot retry while the payment is AwaitingApproval")),
    ("AwaitingApproval", "cancel", PaymentStatus.CANCELLED),
    ("AwaitingApproval", "resolve", PaymentStatus.RESOLVED_MANUALLY),
    ("WaitingForPayable", "approve", Refused("nothing awaits approval: the payment is WaitingForPayable")),
    ("WaitingForPayable", "retry", PaymentStatus.PAID),
    ("WaitingForPayable", "cancel", PaymentStatus.CANCELLED),
    ("WaitingForPayable", "resolve", PaymentStatus.RESOLVED_MANUALLY),
    ("NeedsReview-unposted", "approve", Refused("nothing awaits approval: the payment is NeedsReview")),
    ("NeedsReview-unposted", "retry", PaymentStatus.PAID),
    ("NeedsReview-unposted", "cancel", PaymentStatus.CANCELLED),
    ("NeedsReview-unposted", "resolve", PaymentStatus.RESOLVED_MANUALLY),
    ("NeedsReview-posted", "approve", Refused("nothing awaits approval: the payment is NeedsReview")),
    ("NeedsReview-posted", "retry", PaymentStatus.PAID),
    (
        "NeedsReview-posted",
        "cancel",
        Refused(
            "cannot cancel: the payment was already posted to the vendor; use resolve once it is settled there"
        ),
    ),
    ("NeedsReview-posted", "resolve", PaymentStatus.RESOLVED_MANUALLY),
    ("Validating", "approve", Refused("nothing awaits approval: the payment is Validating")),
    ("Validating", "retry", _working("cannot retry while the payment is Validating")),
    ("Validating", "cancel", _working("cannot cancel while the payment is Validating")),
    ("Validating", "resolve", _working("cannot resolve while the payment is Validating")),
    ("Posting", "approve", Refused("nothing awaits approval: the payment is Posting")),
    ("Posting", "retry", _working("cannot retry while the payment is Posting")),
    ("Posting", "cancel", _working("cannot cancel while the payment is Posting")),
    ("Posting", "resolve", _working("cannot resolve while the payment is Posting")),
    ("Confirming", "approve", Refused("nothing awaits approval: the payment is Confirming")),
    ("Confirming", "retry", _working("cannot retry while the payment is Confirming")),
    ("Confirming", "cancel", _working("cannot cancel while the payment is Confirming")),
    ("Confirming", "resolve", _working("cannot resolve while the payment is Confirming")),
]


#: Each action's input, with who and why.
INPUTS: dict[str, OperatorInput] = {
    "approve": ApproveInput(operator="dana", reason="checked with AR"),
    "retry": RetryInput(operator="dana", reason="try again"),
    "cancel": CancelInput(operator="dana", reason="duplicate"),
    "resolve": ResolveInput(operator="dana", reason="keyed in by hand", vendor_payment_id="P-9"),
}


@pytest.mark.parametrize(("parked", "action", "expected"), MATRIX, ids=[f"{p}-{a}" for p, a, _ in MATRIX])
async def test_each_action_in_each_parked_state(
    pay: Payments, parked: str, action: str, expected: PaymentStatus | Refused
) -> None:
    where = PARKED[parked]
    handle = await where.park(pay)
    before = await pay.wait_for(handle, where.status)
    assert before.posted is where.posted
    assert (action in before.next_actions) is isinstance(expected, PaymentStatus)

    if isinstance(expected, Refused):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await update(handle, action, INPUTS[action])
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.message == expected.text
        after = await pay.state(handle)
        assert after.status is where.status and after.actions == before.actions  # nothing changed
        return

    answer = await update(handle, action, INPUTS[action])
    if action in ("approve", "retry"):
        assert answer.status in WORKING | {expected}  # working again; then it ends
    else:
        assert answer.status is expected
    result = await pay.result(handle)
    assert result.status is expected and result.posted is (where.posted or expected is PaymentStatus.PAID)
    taken = (await pay.state(handle)).actions[-1]
    assert (taken.action, taken.accepted, taken.operator) == (action, True, "dana")
    assert (await indexed(handle)).get(PAYMENT_STATUS) == expected.value


async def test_a_refused_signal_is_recorded_and_an_accepted_one_is_taken(pay: Payments) -> None:
    handle = await _waiting_for_payable(pay)
    await pay.wait_for(handle, PaymentStatus.WAITING_FOR_PAYABLE)

    # By name, as the Web UI's "Send a Signal" sends it.
    await handle.signal("approve", ApproveInput(operator="dana", reason="looks fine"))
    state = await wait_for_action(pay, handle, "approve")

    assert state.status is PaymentStatus.WAITING_FOR_PAYABLE
    refused = state.actions[-1]
    assert (refused.accepted, refused.operator, refused.reason) == (False, "dana", "looks fine")
    assert refused.message == "nothing awaits approval: the payment is WaitingForPayable"

    await handle.signal("cancel", CancelInput(operator="dana", reason="duplicate"))
    result = await pay.result(handle)
    assert result.status is PaymentStatus.CANCELLED and "duplicate" in result.message
    assert [(a.action, a.accepted) for a in (await pay.state(handle)).actions] == [
        ("approve", False),
        ("cancel", True),
    ]


@pytest.mark.parametrize(
    ("parked", "correction", "text"),
    [
        ("NeedsReview-posted", RetryInput(load_number="L-OTHER"), "cannot change the target"),
        ("NeedsReview-posted", RetryInput(amount=Decimal("1.00")), "cannot correct the amount"),
        ("NeedsReview-unposted", RetryInput(amount=Decimal("0")), "amount must be greater than zero"),
        ("NeedsReview-unposted", RetryInput(amount=Decimal("1.001")), "invalid amount"),
    ],
    ids=["posted-target", "posted-amount", "zero-amount", "too-many-decimals"],
)
async def test_a_retry_with_corrections_that_do_not_fit_is_refused(
    pay: Payments, parked: str, correction: RetryInput, text: str
) -> None:
    where = PARKED[parked]
    handle = await where.park(pay)
    await pay.wait_for(handle, where.status)

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await update(handle, "retry", correction)

    assert text in str(refused.value.cause)
    assert (await pay.state(handle)).status is PaymentStatus.NEEDS_REVIEW


async def test_a_retry_with_an_amount_correction_posts_the_corrected_amount(pay: Payments) -> None:
    handle = await _needs_review_unposted(pay)
    await pay.wait_for(handle, PaymentStatus.NEEDS_REVIEW)

    await update(handle, "retry", RetryInput(amount=Decimal("600.00"), reason="short paid"))

    result = await pay.result(handle)
    assert result.status is PaymentStatus.PAID and result.amount == Money.of("600.00")
    assert [c.instruction.amount for c in pay.vendor.post.calls] == [Money.of("640.00"), Money.of("600.00")]


async def test_a_callback_that_comes_before_the_posts_answer_is_kept(pay: Payments) -> None:
    gate: Gate[PostRequest, PostOutcome] = Gate(recorded(proof="callback"))
    pay.vendor.post.then(gate)
    handle = await pay.start(transportone(f"INV-{uid()}", "5000.00"))
    await gate.entered.wait()

    await handle.signal(PaymentWorkflow.vendor_callback, callback(applied="5000.00", total="5000.00"))
    await wait_for_signal(pay, handle)
    gate.release()

    assert (await pay.result(handle)).status is PaymentStatus.PAID


async def test_resolve_keeps_the_vendor_payment_id_the_operator_gave(pay: Payments) -> None:
    handle = await _needs_review_unposted(pay)
    await pay.wait_for(handle, PaymentStatus.NEEDS_REVIEW)

    await update(handle, "resolve", ResolveInput(reason="keyed in Alvys", vendor_payment_id="P-KEYED-9"))

    result = await pay.result(handle)
    state = await pay.state(handle)
    assert result.status is PaymentStatus.RESOLVED_MANUALLY
    told = [result.vendor_payment_id, state.vendor_payment_id, result.message]
    told += [a.message for a in state.actions] + [a.reason for a in state.actions]
    assert any("P-KEYED-9" in (text or "") for text in told)


async def test_a_genuine_callback_with_an_amount_the_currency_cannot_hold_does_not_wedge_the_payment(
    pay: Payments,
) -> None:
    pay.vendor.post.then(recorded(proof="callback"))
    handle = await pay.start(transportone(f"INV-{uid()}", "5000.00"))
    await pay.wait_for(handle, PaymentStatus.CONFIRMING)

    await handle.signal(PaymentWorkflow.vendor_callback, callback(applied="5000.005", total="5000.005"))

    async def moved_on() -> bool:
        # A query of a payment whose workflow task keeps failing does not answer: that fails too.
        state = await asyncio.wait_for(pay.state(handle), 2)
        refused = any(a.action == "vendor_callback" for a in state.actions)
        return state.status is not PaymentStatus.CONFIRMING or refused

    await pay.until("the payment takes, refuses or asks a person about the callback", moved_on, seconds=3)


async def wait_for_signal(pay: Payments, handle: PaymentHandle) -> None:
    """Until the payment's history holds a signal (it was delivered, whatever it did with it)."""

    async def signalled() -> bool:
        events = [e async for e in handle.fetch_history_events()]
        return any(e.HasField("workflow_execution_signaled_event_attributes") for e in events)

    await pay.until(f"{handle.id} receives a signal", signalled)


async def wait_for_action(pay: Payments, handle: PaymentHandle, action: str) -> PaymentState:
    """The payment's state once it recorded an action named ``action`` (a signal has no answer)."""

    async def recorded_it() -> bool:
        return any(a.action == action for a in (await pay.state(handle)).actions)

    await pay.until(f"{handle.id} records a {action}", recorded_it)
    return await pay.state(handle)


# ---------------------------------------------------------------------- Temporal's cancellation


@pytest.mark.parametrize("parked", ["AwaitingApproval", "WaitingForPayable", "NeedsReview-unposted"])
async def test_temporal_cancellation_is_taken_when_nothing_was_posted(pay: Payments, parked: str) -> None:
    where = PARKED[parked]
    handle = await where.park(pay)
    await pay.wait_for(handle, where.status)
    posts = len(pay.vendor.post.calls)

    await handle.cancel()

    with pytest.raises(WorkflowFailureError) as failed:
        await pay.result(handle)
    assert isinstance(failed.value.cause, CancelledError)
    assert (await handle.describe()).status is WorkflowExecutionStatus.CANCELED
    assert (await indexed(handle)).get(PAYMENT_STATUS) == "Cancelled"
    state = await pay.state(handle)
    assert state.status is PaymentStatus.CANCELLED and not state.posted
    assert _last(state.actions) == ("cancel", True, TEMPORAL)
    assert len(pay.vendor.post.calls) == posts


CANCEL_DURING_A_READ = (
    "Temporal's cancellation while a vendor read (resolve_target, check_payable) is in flight: the "
    "story's cancellation reaches the activity, whose ActivityError(cause=CancelledError) the "
    "workflow's vendor-call wrapper takes for vendor trouble, so the payment records the cancel as "
    "accepted but parks in NeedsReview ('could not be reached ... (Cancelled)') and keeps running"
)


async def _cancel_during_a_read(pay: Payments) -> PaymentHandle:
    handle = await _validating(pay)

    async def reading() -> bool:
        return bool(pay.vendor.resolve.calls)

    await pay.until("the target is being resolved", reading)
    await handle.cancel()
    return handle


async def test_temporal_cancellation_is_taken_while_a_read_is_in_flight(pay: Payments) -> None:
    handle = await _cancel_during_a_read(pay)

    with pytest.raises(WorkflowFailureError) as failed:
        await pay.result(handle, seconds=3)

    assert isinstance(failed.value.cause, CancelledError)
    state = await pay.state(handle)
    assert state.status is PaymentStatus.CANCELLED and not state.posted
    assert _last(state.actions) == ("cancel", True, TEMPORAL)


async def test_a_payment_posted_after_temporal_cancellation_is_never_ended_cancelled(pay: Payments) -> None:
    handle = await _cancel_during_a_read(pay)
    await wait_for_action(pay, handle, "cancel")
    pay.vendor.resolve.then(resolved(TargetIds(load_number=load())))
    pay.vendor.post.then(recorded("640.00", "640.00"))

    with contextlib.suppress(asyncio.TimeoutError, WorkflowFailureError):
        await pay.result(handle, seconds=2)  # fixed: it ended Cancelled here, nothing posted
    if (await handle.describe()).status is WorkflowExecutionStatus.RUNNING:
        await update(handle, "retry", RetryInput(reason="the vendor is back"))  # what an operator would do
        with contextlib.suppress(WorkflowFailureError):
            await pay.result(handle)

    state = await pay.state(handle)
    assert not (state.posted and state.status is PaymentStatus.CANCELLED)
    assert state.posted is bool(pay.vendor.post.calls)
    if state.posted:
        assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED


async def test_temporal_cancellation_is_refused_once_posted(pay: Payments) -> None:
    handle = await _needs_review_posted(pay)
    await pay.wait_for(handle, PaymentStatus.NEEDS_REVIEW)

    await handle.cancel()
    state = await wait_for_action(pay, handle, "cancel")

    assert state.status is PaymentStatus.NEEDS_REVIEW and state.posted
    assert _last(state.actions) == ("cancel", False, TEMPORAL)
    assert "already posted" in state.actions[-1].message
    assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
    assert (await indexed(handle)).get(PAYMENT_STATUS) == "NeedsReview"
    # It still takes a person's action and ends as a payment, not as a cancelled workflow.
    await update(handle, "resolve", ResolveInput(reason="settled in Alvys"))
    result = await pay.result(handle)
    assert result.status is PaymentStatus.RESOLVED_MANUALLY
    assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED


async def test_temporal_cancellation_is_refused_while_a_post_is_in_flight(pay: Payments) -> None:
    gate: Gate[PostRequest, PostOutcome] = Gate(recorded("640.00", "640.00"))
    pay.vendor.post.then(gate)
    handle = await pay.start(customer(load(), "640.00"))
    await gate.entered.wait()

    await handle.cancel()
    state = await wait_for_action(pay, handle, "cancel")

    assert state.status is PaymentStatus.POSTING
    assert _last(state.actions) == ("cancel", False, TEMPORAL)
    assert "the vendor may have recorded it" in state.actions[-1].message
    gate.release()
    assert (await pay.result(handle)).status is PaymentStatus.PAID


def _last(actions: list[OperatorAction]) -> tuple[str, bool, str | None]:
    last = actions[-1]
    return last.action, last.accepted, last.operator


# ---------------------------------------------------------------------- the Overpaid flag


async def _overpaid_by_the_answer(pay: Payments) -> PaymentHandle:
    pay.vendor.post.then(recorded("700.00", "640.00"))
    return await pay.start(customer(load(), "700.00"))


async def _overpaid_by_a_read_back(pay: Payments) -> PaymentHandle:
    pay.vendor.post.then(recorded(proof="read_back"))
    pay.vendor.confirm.then(read_back("700.00", "640.00"))
    return await pay.start(customer(load(), "700.00"))


async def _overpaid_by_a_callback(pay: Payments) -> PaymentHandle:
    pay.vendor.post.then(recorded(proof="callback"))
    handle = await pay.start(transportone(f"INV-{uid()}", "700.00"))
    await pay.wait_for(handle, PaymentStatus.CONFIRMING)
    await handle.signal(
        PaymentWorkflow.vendor_callback, callback(applied="700.00", total="640.00", invoice_status="PAID")
    )
    return handle


@pytest.mark.parametrize(
    ("start", "currency"),
    [(_overpaid_by_the_answer, "USD"), (_overpaid_by_a_read_back, "USD"), (_overpaid_by_a_callback, "INR")],
    ids=["answer", "read_back", "callback"],
)
async def test_paid_beyond_what_was_billed_is_paid_and_flagged_overpaid(
    pay: Payments, start: Callable[[Payments], Awaitable[PaymentHandle]], currency: str
) -> None:
    handle = await start(pay)

    result = await pay.result(handle)

    assert result.status is PaymentStatus.PAID and result.flags == ["Overpaid"]
    assert f"overpaid by {currency} 60.00" in result.message
    assert (await pay.state(handle)).flags == ["Overpaid"]
    attributes = await indexed(handle)
    assert attributes.get(PAYMENT_FLAGS) == ["Overpaid"] and attributes.get(PAYMENT_STATUS) == "Paid"


async def test_parked_payments_evicted_from_a_small_cache_still_answer_and_end(
    env: WorkflowEnvironment,
) -> None:
    """A worker keeps only a few workflows cached (worker.py: FREIGHTPAY_WORKFLOW_CACHE); parked
    payments beyond that are evicted and replayed when asked. Eviction cancels every task of a
    run, which the story's shield against Temporal's cancellation must let through (it once
    looped on it forever, wedging the worker): each payment, posted or not, still answers its
    status query and ends when an operator acts."""
    vendor = FakeVendor()
    vendor.post.then(rejected(), rejected(), rejected(), recorded(proof="read_back"))
    vendor.confirm.then(read_back(confirmed=False, reason="not there yet"))
    async with payments(env, vendor, max_cached_workflows=2) as pay:
        handles = [await pay.start(customer(load(), "640.00")) for _ in range(6)]
        for handle in handles:
            await pay.wait_for(handle, PaymentStatus.NEEDS_REVIEW, seconds=30)
        for _ in range(2):  # every query of an evicted payment replays it and evicts another
            for handle in handles:
                assert (await asyncio.wait_for(pay.state(handle), 30)).status is PaymentStatus.NEEDS_REVIEW
        for handle in handles:
            # The signal: on the time-skipping server an update sent to a run being evicted and
            # replayed may be lost ("update not found"); the UI's signal is durable.
            await handle.signal("resolve", ResolveInput(reason="settled by hand"))
        for handle in handles:
            assert (await asyncio.wait_for(handle.result(), 30)).status is PaymentStatus.RESOLVED_MANUALLY
