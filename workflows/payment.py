"""PaymentWorkflow: one freight payment, received → validated → posted → confirmed → paid.

Read :meth:`PaymentWorkflow.run` and :meth:`PaymentWorkflow._process` as the story of a
payment; everything else is bookkeeping for operators (status, current details, search
attributes) and their actions (signals and updates named ``approve``, ``retry``,
``cancel`` and ``resolve``).

Why it can never post twice: the only vendor write is ``post_payment``, whose idempotency
key is the business reference carried in the instruction (never a run id or an attempt),
so a retried activity, a crashed worker, a replay or an operator's ``retry`` all repeat the
same idempotent request, and the vendor records the payment once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.payments import PaymentActivities
    from activities.relay import RelayActivities
    from models.money import Money
    from models.payment import PaymentInstruction, TargetIds
    from models.queues import queue_name, vendor_queue
    from models.state import (
        ActionAnswer,
        ApproveInput,
        CancelInput,
        OperatorAction,
        OperatorInput,
        PaymentResult,
        PaymentState,
        PaymentStatus,
        ResolveInput,
        RetryInput,
        StepRecord,
        VendorAnswer,
        VendorProblem,
    )
    from models.steps import (
        CallbackCheck,
        CallbackReport,
        Confirmation,
        ConfirmRequest,
        PaymentInput,
        PaymentPolicy,
        PostOutcome,
        PostOutcomeKind,
        PostRequest,
        ResolveRequest,
    )
    from workflows import search_attributes

#: Transient vendor trouble (5xx, timeouts, connection errors) is retried with capped
#: backoff; a 429 overrides the delay with the vendor's Retry-After (next_retry_delay).
VENDOR_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["VendorConfigurationError"],
)
#: One vendor request, including the token fetch and one 401 refresh.
CALL_TIMEOUT = timedelta(seconds=30)
#: How long a step keeps retrying before a person is asked to look (NeedsReview).
STEP_DEADLINE = timedelta(hours=1)
#: Patch: relayed vendor callbacks are checked for the ingress's proof (a local activity) before
#: they count. Histories recorded before it replay with the callback taken as it came.
RELAY_PROOF_PATCH = "callback-relay-proof"
#: The ``PaymentFlags`` value of a payment the vendor's totals show paid beyond what was billed.
OVERPAID = "Overpaid"

ACTIONS = ("approve", "retry", "cancel", "resolve")
_I = TypeVar("_I")
_O = TypeVar("_O")


@dataclass
class _Pending:
    action: str
    input: OperatorInput


@workflow.defn(name="PaymentWorkflow")
class PaymentWorkflow:
    """One payment, from the business event to the vendor's record of it."""

    @workflow.init
    def __init__(self, input: PaymentInput) -> None:
        self._instruction: PaymentInstruction = input.instruction
        self._policy: PaymentPolicy = input.policy
        self._status = PaymentStatus.RECEIVED
        self._waiting_for: str | None = None
        self._reason: str | None = None
        self._last_answer: VendorAnswer | None = None
        self._steps: list[StepRecord] = []
        self._actions: list[OperatorAction] = []
        self._pending: _Pending | None = None
        self._restart = False
        self._approved = False
        self._posted = False
        self._remaining_balance: Money | None = None
        self._confirmation: Confirmation | None = None
        #: Callbacks relayed to the payment, checked in order while it waits for one.
        self._callbacks: list[CallbackReport] = []
        #: A post was sent and its outcome is not known (its answer never came): the vendor may
        #: have recorded it, so nothing may say "nothing was posted".
        self._post_in_doubt = False
        self._flags: list[str] = []
        self._payable_checks = 0
        self._payable_since: datetime | None = None
        # What the search attributes show; the start set them for Received.
        self._indexed: tuple[PaymentStatus, TargetIds, Money] = (
            PaymentStatus.RECEIVED,
            input.instruction.ids,
            input.instruction.amount,
        )

    # ------------------------------------------------------------------ the story

    @workflow.run
    async def run(self, input: PaymentInput) -> PaymentResult:
        """The story, shielded from Temporal's own cancellation, which is taken or refused like
        an operator's ``cancel``: a payment that posted nothing ends Cancelled (and the workflow
        Canceled); a posted one keeps its state and the refusal is recorded."""
        self._set(PaymentStatus.RECEIVED, reason=f"received from {self._instruction.source.value}")
        story = asyncio.ensure_future(self._story())
        while True:
            try:
                return await asyncio.shield(story)
            except asyncio.CancelledError:
                if story.done() or not self._take_temporal_cancel():
                    continue
                story.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await story
                self._pending = None
                self._set(
                    PaymentStatus.CANCELLED,
                    reason="cancelled through Temporal (Request Cancellation); nothing was posted",
                )
                await workflow.wait_condition(workflow.all_handlers_finished)
                raise

    def _take_temporal_cancel(self) -> bool:
        """Whether a cancellation requested through Temporal can be taken now; recorded either way."""
        refusal = self._cancel_refusal()
        self._actions.append(
            OperatorAction(
                action="cancel",
                at=workflow.now(),
                operator="Temporal (Request Cancellation)",
                accepted=refusal is None,
                message=refusal or "cancelled; nothing was posted",
            )
        )
        if refusal is not None:
            workflow.logger.info(
                "Refused Temporal's cancellation of %s: %s", workflow.info().workflow_id, refusal
            )
            workflow.set_current_details(self._details())
        return refusal is None

    def _cancel_refusal(self) -> str | None:
        """Why the payment cannot be cancelled now (None: it can; nothing was or may have been posted)."""
        if self._status.is_final:
            return f"cannot cancel: the payment is already {self._status.value}"
        if self._posted:
            return (
                "cannot cancel: the payment was already posted to the vendor; "
                "use resolve once it is settled there"
            )
        if self._post_in_doubt or self._status in (PaymentStatus.POSTING, PaymentStatus.CONFIRMING):
            return (
                "cannot cancel: a post was sent and the vendor may have recorded it; "
                "check the vendor, then resolve, or retry (the post is idempotent)"
            )
        return None

    async def _story(self) -> PaymentResult:
        while not self._status.is_final:
            await self._process()
            if self._status.is_final:
                break
            if self._restart:
                self._restart = False
                continue
            # NeedsReview: wait for a person, durably and for as long as it takes.
            await self._take_action(await self._wait_for_action(None))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._result()

    async def _process(self) -> None:
        """Validate, approve if needed, post, confirm, mark paid; stops early to wait for a person."""
        if not await self._validate():
            return
        if not await self._approval():
            return
        posted = await self._post()
        if posted is None:
            return
        confirmation = await self._confirm(posted)
        if confirmation is None:
            return
        self._mark_paid(confirmation)

    async def _validate(self) -> bool:
        self._set(PaymentStatus.VALIDATING)
        problems = self._instruction.problems()
        if problems:
            self._needs_review(_sentence("; ".join(problems)) + ". Retry with corrections, or cancel.")
            return False
        if not self._instruction.needs_resolution():
            return True
        step = self._begin_step("resolve target")
        resolution = await self._activity(
            PaymentActivities.resolve_target,
            ResolveRequest(instruction=self._instruction),
            summary=f"Find the {self._instruction.target.vendor} record for ref "
            f"{self._instruction.reference_number}",
        )
        if resolution is None:
            return False
        self._end_step(step, "found" if resolution.found else "not found", resolution.attempt)
        if resolution.problem is not None:
            self._vendor_answer("resolve target", resolution.problem.text(), resolution.problem)
        if not resolution.found:
            candidates = f" Candidates: {', '.join(resolution.candidates)}." if resolution.candidates else ""
            self._needs_review(
                f"{_sentence(resolution.reason or 'target not found')}.{candidates}", resolution.problem
            )
            return False
        self._instruction = self._instruction.model_copy(update={"ids": resolution.ids})
        self._remaining_balance = resolution.remaining_balance
        self._vendor_answer("resolve target", f"resolved to {self._target_label()}")
        return True

    async def _approval(self) -> bool:
        reasons = []
        amount = self._instruction.amount
        if self._policy.needs_approval(amount):
            threshold = self._policy.approval_thresholds[amount.currency]
            reasons.append(
                f"{amount} is at or over the approval threshold of {amount.currency} {threshold:,}"
            )
        remaining = self._remaining_balance
        if remaining is not None and remaining.currency == amount.currency and amount > remaining:
            reasons.append(f"{amount} is more than the remaining balance of {remaining} (overpayment)")
        total = self._instruction.invoice_total
        if total is not None and total.currency == amount.currency and amount > total:
            reasons.append(
                f"{amount} is more than the invoice total of {total} the sender gave (overpayment)"
            )
        if not reasons or self._approved:
            return True
        self._set(
            PaymentStatus.AWAITING_APPROVAL,
            waiting_for="an operator to approve (or cancel)",
            reason="; ".join(reasons),
        )
        await self._take_action(await self._wait_for_action(None))
        return self._approved and not self._status.is_final and not self._restart

    async def _post(self) -> PostOutcome | None:
        while True:
            self._set(PaymentStatus.POSTING)
            step = self._begin_step("post")
            self._post_in_doubt = True
            outcome = await self._activity(
                PaymentActivities.post_payment,
                PostRequest(instruction=self._instruction),
                summary=f"Post {self._instruction.amount} to {self._target_label()}, "
                f"ref {self._instruction.reference_number}",
                writes=True,
            )
            if outcome is None:
                return None
            self._post_in_doubt = False
            self._end_step(step, outcome.outcome.value, outcome.attempt)
            if outcome.outcome is PostOutcomeKind.RECORDED:
                self._posted = True
                self._vendor_answer("post", self._describe_post(outcome))
                return outcome
            problem = outcome.problem
            self._vendor_answer("post", problem.text() if problem else outcome.outcome.value, problem)
            if outcome.outcome is PostOutcomeKind.NOT_PAYABLE:
                if not await self._wait_until_payable(outcome):
                    return None
                if not await self._approval():
                    return None  # the load's read showed less open than this payment: held
                continue
            self._needs_review(
                f"{self._instruction.target.vendor} refused the payment"
                f"{': ' + _sentence(problem.text()) if problem else ''}. Retry with corrections, resolve or cancel.",
                problem,
            )
            return None

    async def _wait_until_payable(self, refused: PostOutcome) -> bool:
        """A load not yet payable is re-checked on a durable timer, for days, not failed."""
        now = workflow.now()
        if self._payable_since is None:
            self._payable_since = now
        deadline = self._payable_since + self._policy.payable_deadline
        status = refused.target_status or "not payable"
        while True:
            left = deadline - workflow.now()
            if left <= timedelta(0):
                self._needs_review(
                    f"{self._target_label()} was still {status} after "
                    f"{_human(self._policy.payable_deadline)}. Retry once it is payable, resolve or cancel."
                )
                return False
            wait = min(self._policy.payable_recheck_interval, left)
            self._set(
                PaymentStatus.WAITING_FOR_PAYABLE,
                waiting_for=f"{self._target_label()} to become Invoiced, Completed or Financed; "
                f"next check at {(workflow.now() + wait):%Y-%m-%d %H:%M} UTC, "
                f"gives up at {deadline:%Y-%m-%d %H:%M} UTC",
                reason=f"{self._target_label()} is {status}",
            )
            pending = await self._wait_for_action(wait)
            if pending is not None:
                await self._take_action(pending)
                if self._status.is_final or self._restart:
                    return False
            check = await self._activity(
                PaymentActivities.check_payable,
                ResolveRequest(instruction=self._instruction),
                summary=f"Is {self._target_label()} payable yet?",
            )
            if check is None:
                return False
            self._payable_checks += 1
            status = check.target_status or status
            if not check.found:
                self._needs_review(f"{self._target_label()} no longer exists at the vendor. Retry or cancel.")
                return False
            if check.payable:
                self._vendor_answer("check payable", f"{self._target_label()} is {status}")
                if check.remaining_balance is not None:
                    self._remaining_balance = check.remaining_balance
                return True

    async def _confirm(self, posted: PostOutcome) -> Confirmation | None:
        self._set(PaymentStatus.CONFIRMING)
        confirmation: Confirmation | None
        if posted.confirmed:
            # The post's own answer proves it: no read-back, which would cost a rate-limited call.
            confirmation = Confirmation(
                confirmed=True,
                fully_paid=bool(posted.fully_paid),
                target_status=posted.target_status,
                total_paid=posted.total_paid,
                total_billable=posted.total_billable,
                vendor_payment_id=posted.vendor_payment_id,
            )
        elif posted.awaiting_callback:
            confirmation = await self._confirm_by_callback(posted)
        else:
            step = self._begin_step("confirm")
            read_back = await self._activity(
                PaymentActivities.confirm_payment,
                ConfirmRequest(instruction=self._instruction, post=posted),
                summary=f"Read back ref {self._instruction.reference_number} from {self._target_label()}",
            )
            if read_back is not None:
                self._end_step(
                    step, "confirmed" if read_back.confirmed else "not confirmed", read_back.attempt
                )
            confirmation = read_back
        if confirmation is None:
            return None
        self._confirmation = confirmation
        if not confirmation.confirmed:
            self._needs_review(
                f"the post was answered but {self._instruction.target.vendor} does not show it: "
                f"{_sentence(confirmation.reason or 'no record of the reference')}. "
                "Check the vendor, then resolve or retry."
            )
            return None
        return confirmation

    async def _confirm_by_callback(self, posted: PostOutcome) -> Confirmation | None:
        self._set(
            PaymentStatus.CONFIRMING,
            waiting_for=f"{self._instruction.target.vendor}'s callback, until "
            f"{(workflow.now() + self._policy.callback_timeout):%Y-%m-%d %H:%M} UTC",
        )
        report = await self._genuine_callback(workflow.now() + self._policy.callback_timeout)
        if report is None:
            self._needs_review(
                f"no callback from {self._instruction.target.vendor} within "
                f"{_human(self._policy.callback_timeout)}. Check the vendor, then resolve or retry."
            )
            return None
        currency = self._instruction.amount.currency
        applied = Money(amount=report.applied_amount, currency=currency) if report.applied_amount else None
        total = Money(amount=report.total_amount, currency=currency) if report.total_amount else None
        applied = applied or self._instruction.amount
        total = total or self._instruction.invoice_total or applied
        if report.invoice_status:
            fully_paid = report.invoice_status.upper() == "PAID"
        else:
            fully_paid = applied >= total
        self._vendor_answer(
            "callback",
            f"{'recorded' if report.success else 'failed'}: {report.invoice_status or report.message or ''}",
        )
        return Confirmation(
            confirmed=report.success,
            fully_paid=report.success and fully_paid,
            target_status=report.invoice_status,
            total_paid=applied,
            total_billable=total,
            vendor_payment_id=posted.vendor_payment_id,
            reason=report.message,
        )

    async def _genuine_callback(self, deadline: datetime) -> CallbackReport | None:
        """The first relayed callback that carries the ingress's proof, or None at ``deadline``.

        A report without a valid proof (a ``vendor_callback`` sent by hand from the Web UI or
        the CLI) is recorded as refused and changes nothing; the wait goes on.
        """
        while True:
            left = deadline - workflow.now()
            if left <= timedelta(0):
                return None
            try:
                await workflow.wait_condition(lambda: bool(self._callbacks), timeout=left)
            except TimeoutError:
                return None
            report = self._callbacks.pop(0)
            if not workflow.patched(RELAY_PROOF_PATCH):
                return report
            verdict = await workflow.execute_local_activity_method(
                RelayActivities.verify_callback,
                CallbackCheck(workflow_id=workflow.info().workflow_id, report=report),
                start_to_close_timeout=timedelta(seconds=10),
                summary="Check the ingress's proof on a vendor callback",
            )
            if verdict.genuine:
                return report
            self._refuse_callback(
                "it carries no valid proof that it came through the ingress's callback route"
            )

    def _refuse_callback(self, why: str) -> None:
        self._actions.append(
            OperatorAction(
                action="vendor_callback",
                at=workflow.now(),
                accepted=False,
                message=f"refused a vendor_callback: {why}; nothing changed",
            )
        )
        workflow.set_current_details(self._details())

    def _mark_paid(self, confirmation: Confirmation) -> None:
        status = PaymentStatus.PAID if confirmation.fully_paid else PaymentStatus.PARTIALLY_PAID
        totals = ""
        paid, billable = confirmation.total_paid, confirmation.total_billable
        if (
            paid is not None
            and billable is not None
            and paid.currency == billable.currency
            and paid > billable
        ):
            # Known only from the post's answer: the payment stands, flagged for a person to look at.
            self._flags.append(OVERPAID)
            totals = f": {paid} of {billable} paid, overpaid by {paid - billable}"
        elif confirmation.total_paid is not None and confirmation.total_billable is not None:
            totals = f": {confirmation.total_paid} of {confirmation.total_billable} paid"
        elif confirmation.target_status:
            totals = f": {self._target_label()} is {confirmation.target_status}"
        self._set(status, reason=f"recorded by {self._instruction.target.vendor}{totals}")

    # ------------------------------------------------------------------ operators

    @workflow.query(name="status")
    def status(self) -> PaymentState:
        """The payment's full state: step history, vendor answers, operator actions."""
        return PaymentState(
            workflow_id=workflow.info().workflow_id,
            status=self._status,
            summary=self._instruction.summary(),
            instruction=self._instruction,
            waiting_for=self._waiting_for,
            reason=self._reason,
            next_actions=self._next_actions(),
            last_vendor_answer=self._last_answer,
            vendor_payment_id=self._confirmation.vendor_payment_id if self._confirmation else None,
            target_status=self._confirmation.target_status if self._confirmation else None,
            total_paid=self._confirmation.total_paid if self._confirmation else None,
            total_billable=self._confirmation.total_billable if self._confirmation else None,
            posted=self._posted,
            steps=self._steps,
            actions=self._actions,
            payable_checks=self._payable_checks,
            flags=list(self._flags),
        )

    @workflow.signal(
        name="vendor_callback",
        description="Internal: TransportOne's callback, relayed by the ingress with its proof. "
        "Not for operators: one sent by hand is recorded as refused and changes nothing.",
    )
    def vendor_callback(self, report: CallbackReport) -> None:
        """The vendor's callback about the posted payment (TransportOne), relayed by the ingress."""
        if self._status.is_final:
            self._refuse_callback(f"the payment is already {self._status.value}")
            return
        self._callbacks.append(report)

    # Signals: fire-and-forget, so the Temporal UI can send them with an optional JSON body.
    # A signal that does not fit the state is recorded as refused and changes nothing.
    @workflow.signal(name="approve")
    def approve_signal(self, input: ApproveInput | None = None) -> None:
        self._receive("approve", input or ApproveInput())

    @workflow.signal(name="retry")
    def retry_signal(self, input: RetryInput | None = None) -> None:
        self._receive("retry", input or RetryInput())

    @workflow.signal(name="cancel")
    def cancel_signal(self, input: CancelInput | None = None) -> None:
        self._receive("cancel", input or CancelInput())

    @workflow.signal(name="resolve")
    def resolve_signal(self, input: ResolveInput | None = None) -> None:
        self._receive("resolve", input or ResolveInput())

    # Updates: the same actions for the CLI, refused up front by validators, answered
    # with the state the payment is in once the action has been taken.
    @workflow.update(name="approve")
    async def approve(self, input: ApproveInput | None = None) -> ActionAnswer:
        return await self._answer("approve", input or ApproveInput())

    @approve.validator
    def _validate_approve(self, input: ApproveInput | None = None) -> None:
        self._refuse_unless_allowed("approve", input)

    @workflow.update(name="retry")
    async def retry(self, input: RetryInput | None = None) -> ActionAnswer:
        return await self._answer("retry", input or RetryInput())

    @retry.validator
    def _validate_retry(self, input: RetryInput | None = None) -> None:
        self._refuse_unless_allowed("retry", input)

    @workflow.update(name="cancel")
    async def cancel(self, input: CancelInput | None = None) -> ActionAnswer:
        return await self._answer("cancel", input or CancelInput())

    @cancel.validator
    def _validate_cancel(self, input: CancelInput | None = None) -> None:
        self._refuse_unless_allowed("cancel", input)

    @workflow.update(name="resolve")
    async def resolve(self, input: ResolveInput | None = None) -> ActionAnswer:
        return await self._answer("resolve", input or ResolveInput())

    @resolve.validator
    def _validate_resolve(self, input: ResolveInput | None = None) -> None:
        self._refuse_unless_allowed("resolve", input)

    def _refusal(self, action: str, input: OperatorInput | None) -> str | None:
        """Why ``action`` does not fit the payment now, or None when it does."""
        status = self._status
        if self._pending is not None:
            return f"another action ({self._pending.action}) is being taken; try again in a moment"
        allowed = {
            PaymentStatus.AWAITING_APPROVAL: {"approve", "cancel", "resolve"},
            PaymentStatus.WAITING_FOR_PAYABLE: {"retry", "cancel", "resolve"},
            PaymentStatus.NEEDS_REVIEW: {"retry", "cancel", "resolve"},
        }.get(status, set())
        if action not in allowed:
            if action == "approve":
                return f"nothing awaits approval: the payment is {status.value}"
            if status.is_final:
                return f"cannot {action}: the payment is already {status.value}"
            return (
                f"cannot {action} while the payment is {status.value}; "
                "it will ask for a person (NeedsReview) if it needs one"
            )
        if action == "cancel" and self._posted:
            return (
                "cannot cancel: the payment was already posted to the vendor; "
                "use resolve once it is settled there"
            )
        if isinstance(input, RetryInput) and self._posted and self._changes_ids(input):
            return (
                "cannot change the target: the payment was already posted to "
                f"{self._target_label()}; correct it in {self._instruction.target.vendor}'s system, "
                "then resolve"
            )
        if action == "cancel" and self._post_in_doubt:
            return (
                "cannot cancel: a post was sent and the vendor may have recorded it; "
                "check the vendor, then resolve, or retry (the post is idempotent)"
            )
        if isinstance(input, RetryInput) and input.amount is not None:
            if self._posted:
                return "cannot correct the amount: the payment was already posted with this reference"
            if input.amount <= 0:
                return "amount must be greater than zero"
            try:
                Money(amount=input.amount, currency=input.currency or self._instruction.amount.currency)
            except ValueError as exc:
                return f"invalid amount: {exc}"
        return None

    def _changes_ids(self, input: RetryInput) -> bool:
        ids = self._instruction.ids
        return ids.merged(input.corrected_ids()) != ids

    def _refuse_unless_allowed(self, action: str, input: OperatorInput | None) -> None:
        refusal = self._refusal(action, input)
        if refusal is not None:
            raise ApplicationError(refusal, type="ActionRefused", non_retryable=True)

    def _receive(self, action: str, input: OperatorInput) -> bool:
        refusal = self._refusal(action, input)
        if refusal is not None:
            self._actions.append(
                OperatorAction(
                    action=action,
                    at=workflow.now(),
                    operator=input.operator,
                    reason=input.reason,
                    accepted=False,
                    message=refusal,
                )
            )
            workflow.logger.info("Refused %s on %s: %s", action, workflow.info().workflow_id, refusal)
            return False
        self._pending = _Pending(action, input)
        return True

    async def _answer(self, action: str, input: OperatorInput) -> ActionAnswer:
        if not self._receive(action, input):
            # The state changed between validation and the handler: refuse as the validator would.
            self._refuse_unless_allowed(action, input)
        await workflow.wait_condition(lambda: self._pending is None)
        return ActionAnswer(
            workflow_id=workflow.info().workflow_id,
            status=self._status,
            message=self._actions[-1].message if self._actions else "",
        )

    async def _wait_for_action(self, timeout: timedelta | None) -> _Pending | None:
        """An operator's action, or None when ``timeout`` passed first (a durable timer)."""
        try:
            await workflow.wait_condition(lambda: self._pending is not None, timeout=timeout)
        except TimeoutError:
            return None
        return self._pending

    async def _take_action(self, pending: _Pending | None) -> None:
        """Apply an accepted action to the payment; the update that sent it then answers."""
        if pending is None:
            return
        action, input = pending.action, pending.input
        message = ""
        if action == "approve":
            self._approved = True
            message = "approved; posting"
            self._set(PaymentStatus.POSTING, reason=f"approved by {input.operator or 'an operator'}")
        elif action == "cancel":
            message = "cancelled; nothing was posted"
            self._set(PaymentStatus.CANCELLED, reason=f"cancelled: {input.reason or 'no reason given'}")
        elif action == "resolve":
            message = "marked as resolved by hand in the vendor's system"
            self._set(
                PaymentStatus.RESOLVED_MANUALLY,
                reason=f"resolved by hand: {input.reason or 'no reason given'}",
            )
        elif action == "retry":
            assert isinstance(input, RetryInput)
            message = self._apply_corrections(input)
            self._restart = True
            self._payable_since = None
            self._set(PaymentStatus.VALIDATING, reason=message)
        self._actions.append(
            OperatorAction(
                action=action,
                at=workflow.now(),
                operator=input.operator,
                reason=input.reason,
                accepted=True,
                message=message,
            )
        )
        self._pending = None

    def _apply_corrections(self, input: RetryInput) -> str:
        if not input.has_corrections():
            return "retrying as it stands"
        update: dict[str, object] = {"ids": self._instruction.ids.merged(input.corrected_ids())}
        if input.amount is not None:
            update["amount"] = Money(
                amount=input.amount, currency=input.currency or self._instruction.amount.currency
            )
        self._instruction = self._instruction.model_copy(update=update)
        self._approved = False
        changed = ", ".join(
            f"{k}={v}"
            for k, v in input.model_dump(exclude_none=True).items()
            if k not in ("operator", "reason")
        )
        return f"retrying with {changed}"

    # ------------------------------------------------------------------ bookkeeping

    async def _activity(
        self,
        method: Callable[[PaymentActivities, _I], Awaitable[_O]],
        arg: _I,
        *,
        summary: str,
        writes: bool = False,
    ) -> _O | None:
        """Run one step's activity on its vendor's queue; trouble that outlasts the retries asks a person."""
        queue = queue_name(workflow.info().task_queue, vendor_queue(self._instruction.target, writes))
        try:
            return await workflow.execute_activity_method(
                method,
                arg,
                task_queue=queue,
                start_to_close_timeout=CALL_TIMEOUT,
                schedule_to_close_timeout=STEP_DEADLINE,
                retry_policy=VENDOR_RETRY,
                summary=summary[:200],
            )
        except ActivityError as err:
            cause = err.cause
            text = str(cause) if cause is not None else str(err)
            self._vendor_answer(summary, text)
            self._needs_review(
                f"{self._instruction.target.vendor} could not be reached or refused service ({_sentence(text)}). "
                "Retry when it is back, or resolve."
            )
            return None

    def _set(
        self, status: PaymentStatus, *, waiting_for: str | None = None, reason: str | None = None
    ) -> None:
        self._status = status
        self._waiting_for = waiting_for
        if reason is not None or status not in (PaymentStatus.VALIDATING, PaymentStatus.POSTING):
            self._reason = reason
        # Upsert only what changed (each upsert is an event and a billable action).
        indexed = (status, self._instruction.ids, self._instruction.amount)
        if indexed != self._indexed:
            self._indexed = indexed
            workflow.upsert_search_attributes(
                search_attributes.updates(self._instruction, status, flags=self._flags)
            )
        workflow.set_current_details(self._details())

    def _needs_review(self, reason: str, problem: VendorProblem | None = None) -> None:
        if problem is not None and (self._last_answer is None or self._last_answer.problem is not problem):
            self._vendor_answer("vendor", problem.text(), problem)
        self._set(PaymentStatus.NEEDS_REVIEW, waiting_for="a person: retry, resolve or cancel", reason=reason)

    def _vendor_answer(self, step: str, text: str, problem: VendorProblem | None = None) -> None:
        self._last_answer = VendorAnswer(at=workflow.now(), step=step, text=text, problem=problem)

    def _begin_step(self, name: str) -> StepRecord:
        record = StepRecord(name=name, started_at=workflow.now())
        self._steps.append(record)
        return record

    def _end_step(self, record: StepRecord, outcome: str, attempts: int) -> None:
        record.finished_at = workflow.now()
        record.outcome = outcome
        record.attempts = attempts

    def _target_label(self) -> str:
        ids = self._instruction.ids
        vendor = self._instruction.target.vendor
        if self._instruction.target.value == "alvys-customer-payment":
            return f"{vendor} load {ids.load_number or ids.invoice_number or ids.po_number}"
        if self._instruction.target.value == "alvys-carrier-payment":
            return f"{vendor} trip {ids.trip_id or ids.trip_number or ids.load_number or ids.po_number}"
        return f"{vendor} invoice {ids.invoice_number}"

    def _next_actions(self) -> list[str]:
        return [a for a in ACTIONS if self._refusal(a, None) is None]

    def _describe_post(self, outcome: PostOutcome) -> str:
        parts = [f"recorded as {outcome.vendor_payment_id or 'a payment'}"]
        if outcome.total_paid is not None and outcome.total_billable is not None:
            parts.append(f"{outcome.total_paid} of {outcome.total_billable} paid")
        if outcome.target_status:
            parts.append(f"status {outcome.target_status}")
        return ", ".join(parts)

    def _details(self) -> str:
        """Current details for the Temporal UI (markdown): state, wait, vendor's last word, next steps."""
        lines = [f"**{self._status.value}** · {self._instruction.summary()}"]
        if self._waiting_for:
            lines.append(f"- Waiting for: {self._waiting_for}")
        if self._reason:
            lines.append(f"- Why: {self._reason}")
        if self._last_answer is not None:
            lines.append(f"- Vendor's last answer ({self._last_answer.step}): {self._last_answer.text}")
        actions = self._next_actions()
        if actions:
            lines.append(
                "- You can: "
                + ", ".join(f"`{a}`" for a in actions)
                + ' (Send a Signal or Send an Update, input `{}` or e.g. `{"reason": "..."}`)'
            )
        return "\n".join(lines)

    def _result(self) -> PaymentResult:
        confirmation = self._confirmation
        return PaymentResult(
            workflow_id=workflow.info().workflow_id,
            status=self._status,
            message=self._reason or self._status.value,
            target=self._instruction.target.value,
            reference_number=self._instruction.reference_number,
            amount=self._instruction.amount,
            vendor_payment_id=confirmation.vendor_payment_id if confirmation else None,
            target_status=confirmation.target_status if confirmation else None,
            total_paid=confirmation.total_paid if confirmation else None,
            total_billable=confirmation.total_billable if confirmation else None,
            currency_defaulted=self._instruction.currency_defaulted,
            posted=self._posted,
            flags=list(self._flags),
        )


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0 and seconds >= 86400:
        return f"{seconds // 86400} days"
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600} hours"
    if seconds >= 60:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"


def _sentence(text: str) -> str:
    """``text`` without its closing period, so that the caller's own period is the only one."""
    return text.rstrip().rstrip(".")
