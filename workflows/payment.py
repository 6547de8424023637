"""PaymentWorkflow: one freight payment, received → validated → posted → confirmed → paid.

Read :meth:`PaymentWorkflow._story` and :meth:`PaymentWorkflow._attempt` as the payment's
story: each step returns what happened next (:class:`Next`), and the story matches on it.
The rules the steps ask (which operator action fits, when to wait for approval, what a
callback proves, how a posting ends) are pure functions in :mod:`models.rules`; the words
people read are in :mod:`models.texts`; everything the status query and the result tell is
one :class:`models.state.PaymentState`. The rest of this module wires the operators'
signals, updates and query to the story.

Why it can never post twice: the only vendor write is ``post_payment``, whose idempotency
key is the business reference carried in the instruction (never a run id or an attempt),
so a retried activity, a crashed worker, a replay or an operator's ``retry`` all repeat the
same idempotent request, and the vendor records the payment once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, RetryState, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.alerts import AlertActivities
    from activities.payments import PaymentActivities
    from activities.relay import RelayActivities
    from models import rules, texts
    from models.alerts import Alert, AlertEvent, alert_id, alert_text
    from models.money import Money
    from models.payment import PaymentInstruction, TargetIds
    from models.queues import queue_name, vendor_queue
    from models.rules import Action, Situation
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
        result_of,
    )
    from models.steps import (
        CallbackCheck,
        CallbackReport,
        Confirmation,
        ConfirmRequest,
        LoadPayable,
        PaymentInput,
        PostOutcome,
        PostOutcomeKind,
        PostRequest,
        Proof,
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
#: Waiting for a vendor that is down (WaitingForVendor): no deadline, a try every 10 minutes at most.
PATIENT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=30),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["VendorConfigurationError"],
)
#: One vendor request, including the token fetch and one 401 refresh.
CALL_TIMEOUT = timedelta(seconds=30)
#: How long a step keeps retrying before a person is asked to look (NeedsReview).
STEP_DEADLINE = timedelta(hours=1)
#: Patch: relayed vendor callbacks are checked for the ingress's proof (a local activity) before
#: they count. Histories recorded before it replay with the callback taken as it came.
RELAY_PROOF_PATCH = "callback-relay-proof"
#: Patch: the search attributes and the UI's details are written once per workflow task, with
#: the status the task ends in, instead of at every status the story passes through. A happy
#: payment's Validating and Confirming never outlived their task (no one could see them), yet
#: each cost a command, a history event, a visibility write and a billable Action. Histories
#: recorded before it replay with an upsert at each status, as they were written.
COALESCE_PATCH = "one-status-upsert-per-task"
#: The states whose every entry is an alert (with FREIGHTPAY_ALERT_WEBHOOK_URL set at the start).
ALERTS = {
    PaymentStatus.NEEDS_REVIEW: AlertEvent.PAYMENT_NEEDS_REVIEW,
    PaymentStatus.AWAITING_APPROVAL: AlertEvent.PAYMENT_AWAITING_APPROVAL,
    PaymentStatus.WAITING_FOR_VENDOR: AlertEvent.PAYMENT_WAITING_FOR_VENDOR,
}
#: Alerts are retried for a day; a payment that ends waits at most this long for its last ones.
ALERT_DEADLINE = timedelta(days=1)
ALERT_GRACE = timedelta(minutes=5)
ALERT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=10))
_I = TypeVar("_I")
_O = TypeVar("_O")


class Next(Enum):
    """What a step says happens next in the story."""

    #: Go on to the next step.
    GO = "go"
    #: The payment waits for a person (NeedsReview) until an action comes.
    ASK_A_PERSON = "ask a person"
    #: An operator's ``retry``: start again from validation.
    RESTART = "restart"
    #: The payment reached a final status.
    ENDED = "ended"


@dataclass
class _Pending:
    action: str
    input: OperatorInput


#: Worker Versioning: AUTO_UPGRADE (worker.deployment_config's default; not set on the
#: definition, which unversioned workers refuse).
#: A payment waits for days (WaitingForPayable, NeedsReview, AwaitingApproval): pinned, every deploy would have to keep the old workers for weeks and no
#: fix would reach a parked payment. Its code changes are guarded with ``workflow.patched`` and
#: proven by the replay tests over recorded histories, so a new version can take it over.
@workflow.defn(name="PaymentWorkflow")
class PaymentWorkflow:
    """One payment, from the business event to the vendor's record of it."""

    @workflow.init
    def __init__(self, input: PaymentInput) -> None:
        self._policy = input.policy
        #: The one state object: the status query and the result are derived from it.
        self._state = PaymentState(
            workflow_id=workflow.info().workflow_id,
            status=PaymentStatus.RECEIVED,
            summary=input.instruction.summary(),
            instruction=input.instruction,
        )
        # The story's own machinery, not part of what it tells.
        self._pending: _Pending | None = None
        self._approved = False
        self._payable_since: datetime | None = None
        #: Alerts sent (activities in flight) and how often each state was entered (their ids).
        self._alerts: list[asyncio.Future[None]] = []
        self._entries: dict[AlertEvent, int] = {}
        #: An Alvys event said the load became payable: re-check now instead of at the timer.
        self._woken = False
        #: Callbacks relayed to the payment, checked in order while it waits for one.
        self._callbacks: list[CallbackReport] = []
        #: What the search attributes show (each upsert is an event and a billable action);
        #: the start set them for Received.
        self._indexed: tuple[PaymentStatus, TargetIds, Money] = (
            PaymentStatus.RECEIVED,
            input.instruction.ids,
            input.instruction.amount,
        )
        #: COALESCE_PATCH: whether the story's status reaches Temporal once per workflow task
        #: (set at the start of run), and whether that write is already scheduled in this task.
        self._coalesce = False
        self._publish_scheduled: asyncio.Handle | None = None

    @property
    def _instruction(self) -> PaymentInstruction:
        return self._state.instruction

    # ------------------------------------------------------------------ the story

    @workflow.run
    async def run(self, input: PaymentInput) -> PaymentResult:
        """The story, shielded from Temporal's own cancellation, which is taken or refused like
        an operator's ``cancel``: a payment that posted nothing ends Cancelled (and the workflow
        Canceled); a posted one keeps its state and the refusal is recorded."""
        self._coalesce = workflow.patched(COALESCE_PATCH)
        self._enter(PaymentStatus.RECEIVED, reason=f"received from {self._instruction.source.value}")
        story = asyncio.ensure_future(self._story())
        while True:
            try:
                return await asyncio.shield(story)
            except asyncio.CancelledError:
                if story.cancelled():
                    # Only the worker cancels the story itself: it is evicting this run from its
                    # cache (which cancels every task). Let it go; a replay picks the story up.
                    raise
                if story.done() or not self._take_temporal_cancel():
                    continue
                story.cancel()
                try:
                    await story
                except BaseException as stopped:
                    # The story ends by the cancellation: a CancelledError, or the ActivityError of a
                    # vendor read that was cancelled under it; anything else is a real failure.
                    if not is_cancelled_exception(stopped):
                        raise
                self._pending = None
                self._enter(
                    PaymentStatus.CANCELLED,
                    reason="cancelled through Temporal (Request Cancellation); nothing was posted",
                )
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._publish()
                raise

    async def _story(self) -> PaymentResult:
        while True:
            match await self._attempt():
                case Next.ENDED:
                    break
                case Next.RESTART:
                    continue
                case Next.ASK_A_PERSON:
                    # NeedsReview: wait for a person, durably and for as long as it takes.
                    if await self._take_action(await self._wait_for_action(None)) is Next.ENDED:
                        break
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._alerts_sent()
        self._publish()  # the final status, before the result (it already is, once the story yielded)
        return result_of(self._state)

    async def _attempt(self) -> Next:
        """Validate, approve if needed, post, confirm, mark paid; stops where a person must act."""
        if (validated := await self._validate()) is not Next.GO:
            return validated
        if (approved := await self._approve_if_needed()) is not Next.GO:
            return approved
        posted = await self._post()
        if isinstance(posted, Next):
            return posted
        confirmation = await self._confirm(posted)
        if isinstance(confirmation, Next):
            return confirmation
        self._mark_paid(confirmation)
        return Next.ENDED

    async def _validate(self) -> Next:
        self._enter(PaymentStatus.VALIDATING, reason=_KEEP)
        problems = self._instruction.problems()
        if problems:
            return self._ask_a_person(texts.invalid(problems))
        if not self._instruction.needs_resolution():
            return Next.GO
        step = self._begin_step("resolve target")
        resolution = await self._call_vendor(
            PaymentActivities.resolve_target,
            ResolveRequest(instruction=self._instruction),
            summary=texts.resolve_summary(self._instruction),
        )
        if isinstance(resolution, Next):
            return resolution
        self._end_step(step, "found" if resolution.found else "not found", resolution.attempt)
        if resolution.problem is not None:
            self._note_vendor_answer("resolve target", resolution.problem.text(), resolution.problem)
        if not resolution.found:
            return self._ask_a_person(
                texts.not_found(resolution.reason, resolution.candidates), resolution.problem
            )
        self._state.instruction = self._instruction.model_copy(update={"ids": resolution.ids})
        self._state.remaining_balance = resolution.remaining_balance
        self._note_vendor_answer("resolve target", f"resolved to {texts.target_label(self._instruction)}")
        return Next.GO

    async def _approve_if_needed(self) -> Next:
        reasons = rules.approval_reasons(self._instruction, self._policy, self._state.remaining_balance)
        if not reasons or self._approved:
            return Next.GO
        self._enter(
            PaymentStatus.AWAITING_APPROVAL,
            waiting_for="an operator to approve (or cancel)",
            reason="; ".join(reasons),
        )
        return await self._take_action(await self._wait_for_action(None))

    async def _post(self) -> PostOutcome | Next:
        while True:
            self._enter(PaymentStatus.POSTING, reason=_KEEP)
            step = self._begin_step("post")
            self._state.post_in_doubt = True
            outcome = await self._call_vendor(
                PaymentActivities.post_payment,
                PostRequest(instruction=self._instruction),
                summary=texts.post_summary(self._instruction),
                writes=True,
            )
            if isinstance(outcome, Next):
                return outcome
            self._state.post_in_doubt = False
            self._end_step(step, outcome.outcome.value, outcome.attempt)
            if outcome.outcome is PostOutcomeKind.RECORDED:
                self._state.posted = True
                self._note_vendor_answer("post", texts.post_description(outcome))
                return outcome
            problem = outcome.problem
            self._note_vendor_answer("post", problem.text() if problem else outcome.outcome.value, problem)
            if outcome.outcome is not PostOutcomeKind.NOT_PAYABLE:
                return self._ask_a_person(
                    texts.refused_by_vendor(self._instruction, problem.text() if problem else None), problem
                )
            if (payable := await self._wait_until_payable(outcome)) is not Next.GO:
                return payable
            # The load's read may show less open than this payment: then it is held for approval.
            if (approved := await self._approve_if_needed()) is not Next.GO:
                return approved

    async def _wait_until_payable(self, refused: PostOutcome) -> Next:
        """A load not yet payable is re-checked on a durable timer, for days, not failed."""
        if self._payable_since is None:
            self._payable_since = workflow.now()
        deadline = self._payable_since + self._policy.payable_deadline
        status = refused.target_status or "not payable"
        label = texts.target_label(self._instruction)
        while True:
            left = deadline - workflow.now()
            if left <= timedelta(0):
                return self._ask_a_person(
                    texts.still_not_payable(self._instruction, status, self._policy.payable_deadline)
                )
            wait = min(self._policy.payable_recheck_interval, left)
            self._enter(
                PaymentStatus.WAITING_FOR_PAYABLE,
                waiting_for=f"{label} to become Invoiced, Completed or Financed; "
                f"next check at {(workflow.now() + wait):%Y-%m-%d %H:%M} UTC, "
                f"gives up at {deadline:%Y-%m-%d %H:%M} UTC",
                reason=f"{label} is {status}",
            )
            pending = await self._wait_for_action(wait, wakeable=True)
            if pending is not None and (taken := await self._take_action(pending)) is not Next.GO:
                return taken
            check = await self._call_vendor(
                PaymentActivities.check_payable,
                ResolveRequest(instruction=self._instruction),
                summary=texts.payable_summary(self._instruction),
            )
            if isinstance(check, Next):
                return check
            self._state.payable_checks += 1
            status = check.target_status or status
            if not check.found:
                return self._ask_a_person(f"{label} no longer exists at the vendor. Retry or cancel.")
            if check.payable:
                self._note_vendor_answer("check payable", f"{label} is {status}")
                if check.remaining_balance is not None:
                    self._state.remaining_balance = check.remaining_balance
                return Next.GO

    async def _confirm(self, posted: PostOutcome) -> Confirmation | Next:
        self._enter(PaymentStatus.CONFIRMING)
        confirmation: Confirmation | Next
        match posted.proof:
            case Proof.ANSWER:
                # The post's own answer proves it: no read-back, which would cost a rate-limited call.
                confirmation = Confirmation(
                    confirmed=True,
                    fully_paid=bool(posted.fully_paid),
                    target_status=posted.target_status,
                    total_paid=posted.total_paid,
                    total_billable=posted.total_billable,
                    vendor_payment_id=posted.vendor_payment_id,
                )
            case Proof.CALLBACK:
                confirmation = await self._confirm_by_callback(posted)
            case Proof.READ_BACK:
                confirmation = await self._read_back(posted)
        if isinstance(confirmation, Next):
            return confirmation
        self._record_confirmation(confirmation)
        if not confirmation.confirmed:
            return self._ask_a_person(texts.not_confirmed(self._instruction, confirmation.reason))
        return confirmation

    async def _read_back(self, posted: PostOutcome) -> Confirmation | Next:
        step = self._begin_step("confirm")
        read_back = await self._call_vendor(
            PaymentActivities.confirm_payment,
            ConfirmRequest(instruction=self._instruction, post=posted),
            summary=texts.read_back_summary(self._instruction),
        )
        if not isinstance(read_back, Next):
            self._end_step(step, "confirmed" if read_back.confirmed else "not confirmed", read_back.attempt)
        return read_back

    async def _confirm_by_callback(self, posted: PostOutcome) -> Confirmation | Next:
        self._enter(
            PaymentStatus.CONFIRMING,
            waiting_for=f"{self._instruction.target.vendor}'s callback, until "
            f"{(workflow.now() + self._policy.callback_timeout):%Y-%m-%d %H:%M} UTC",
        )
        report = await self._genuine_callback(workflow.now() + self._policy.callback_timeout)
        if report is None:
            return self._ask_a_person(texts.no_callback(self._instruction, self._policy.callback_timeout))
        self._note_vendor_answer(
            "callback",
            f"{'recorded' if report.success else 'failed'}: {report.invoice_status or report.message or ''}",
        )
        return rules.confirmation_from_callback(report, self._instruction, posted.vendor_payment_id)

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

    def _mark_paid(self, confirmation: Confirmation) -> None:
        settled = rules.settlement(confirmation, self._instruction)
        self._state.flags = list(settled.flags)
        self._enter(settled.status, reason=settled.reason)

    # ------------------------------------------------------------------ operators

    @workflow.query(name="status", description="The payment's whole story: state, steps, answers, actions.")
    def status(self) -> PaymentState:
        """The payment's full state: step history, vendor answers, operator actions."""
        return self._state.model_copy(
            update={
                "summary": self._instruction.summary(),
                "next_actions": rules.next_actions(self._situation()),
            }
        )

    @workflow.signal(
        name="vendor_callback",
        description="Internal: TransportOne's callback, relayed by the ingress with its proof. "
        "Not for operators: one sent by hand is recorded as refused and changes nothing.",
    )
    def vendor_callback(self, report: CallbackReport) -> None:
        """The vendor's callback about the posted payment (TransportOne), relayed by the ingress."""
        if self._state.status.is_final:
            self._refuse_callback(f"the payment is already {self._state.status.value}")
            return
        self._callbacks.append(report)

    @workflow.signal(
        name="load_payable",
        description="Internal: an Alvys event says the load became payable; the payment re-checks it "
        "now (a read) instead of at its next timer. It changes nothing by itself.",
    )
    def load_payable(self, event: LoadPayable | None = None) -> None:
        """Why no proof is needed: it only brings the re-check forward; the vendor's read decides."""
        if self._state.status is PaymentStatus.WAITING_FOR_PAYABLE:
            self._woken = True

    # Signals: fire-and-forget, so the Temporal UI can send them with an optional JSON body.
    # A signal that does not fit the state is recorded as refused and changes nothing.
    @workflow.signal(name="approve", description="Let a payment awaiting approval be posted.")
    def approve_signal(self, input: ApproveInput | None = None) -> None:
        self._accept_or_refuse("approve", input or ApproveInput())

    @workflow.signal(name="retry", description="Run again from validation, optionally with corrections.")
    def retry_signal(self, input: RetryInput | None = None) -> None:
        self._accept_or_refuse("retry", input or RetryInput())

    @workflow.signal(name="cancel", description="Stop a payment that posted nothing.")
    def cancel_signal(self, input: CancelInput | None = None) -> None:
        self._accept_or_refuse("cancel", input or CancelInput())

    @workflow.signal(name="resolve", description="It was settled by hand in the vendor's system.")
    def resolve_signal(self, input: ResolveInput | None = None) -> None:
        self._accept_or_refuse("resolve", input or ResolveInput())

    # Updates: the same actions for the CLI, refused up front by validators, answered
    # with the state the payment is in once the action has been taken.
    @workflow.update(name="approve", description="Approve; answers with the new state or why not.")
    async def approve(self, input: ApproveInput | None = None) -> ActionAnswer:
        return await self._run_update("approve", input or ApproveInput())

    @approve.validator
    def _validate_approve(self, input: ApproveInput | None = None) -> None:
        self._refuse_unless_allowed("approve", input)

    @workflow.update(name="retry", description="Retry (with corrections); answers with the new state.")
    async def retry(self, input: RetryInput | None = None) -> ActionAnswer:
        return await self._run_update("retry", input or RetryInput())

    @retry.validator
    def _validate_retry(self, input: RetryInput | None = None) -> None:
        self._refuse_unless_allowed("retry", input)

    @workflow.update(name="cancel", description="Cancel; answers with the new state or why not.")
    async def cancel(self, input: CancelInput | None = None) -> ActionAnswer:
        return await self._run_update("cancel", input or CancelInput())

    @cancel.validator
    def _validate_cancel(self, input: CancelInput | None = None) -> None:
        self._refuse_unless_allowed("cancel", input)

    @workflow.update(name="resolve", description="Resolved by hand; answers with the new state.")
    async def resolve(self, input: ResolveInput | None = None) -> ActionAnswer:
        return await self._run_update("resolve", input or ResolveInput())

    @resolve.validator
    def _validate_resolve(self, input: ResolveInput | None = None) -> None:
        self._refuse_unless_allowed("resolve", input)

    def _situation(self) -> Situation:
        return Situation(
            status=self._state.status,
            instruction=self._instruction,
            posted=self._state.posted,
            post_in_doubt=self._state.post_in_doubt,
            busy_with=self._pending.action if self._pending else None,
        )

    def _refuse_unless_allowed(self, action: str, input: OperatorInput | None) -> None:
        refusal = rules.refusal(action, self._situation(), input)
        if refusal is not None:
            raise ApplicationError(refusal, type="ActionRefused", non_retryable=True)

    def _accept_or_refuse(self, action: str, input: OperatorInput) -> bool:
        """Queue an action for the story to take, or record why it does not fit (it changes nothing)."""
        refusal = rules.refusal(action, self._situation(), input)
        if refusal is not None:
            self._record_action(action, input, accepted=False, message=refusal)
            workflow.logger.info("Refused %s on %s: %s", action, workflow.info().workflow_id, refusal)
            return False
        self._pending = _Pending(action, input)
        return True

    async def _run_update(self, action: str, input: OperatorInput) -> ActionAnswer:
        if not self._accept_or_refuse(action, input):
            # The state changed between validation and the handler: refuse as the validator would.
            self._refuse_unless_allowed(action, input)
        await workflow.wait_condition(lambda: self._pending is None)
        actions = self._state.actions
        return ActionAnswer(
            workflow_id=workflow.info().workflow_id,
            status=self._state.status,
            message=actions[-1].message if actions else "",
        )

    def _take_temporal_cancel(self) -> bool:
        """Whether a cancellation requested through Temporal can be taken now; recorded either way."""
        refusal = rules.cancel_refusal(self._situation())
        self._state.actions.append(
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
            self._show_details()
        return refusal is None

    async def _wait_for_action(self, timeout: timedelta | None, *, wakeable: bool = False) -> _Pending | None:
        """An operator's action, or None when ``timeout`` passed first (a durable timer) or, if
        ``wakeable``, a ``load_payable`` event came."""
        try:
            await workflow.wait_condition(
                lambda: self._pending is not None or (wakeable and self._woken), timeout=timeout
            )
        except TimeoutError:
            return None
        self._woken = False
        return self._pending

    async def _take_action(self, pending: _Pending | None) -> Next:
        """Apply an accepted action to the payment (the update that sent it then answers)."""
        if pending is None:
            return Next.GO
        action, input = pending.action, pending.input
        match Action(action):
            case Action.APPROVE:
                self._approved = True
                message, next_step = "approved; posting", Next.GO
                self._enter(PaymentStatus.POSTING, reason=f"approved by {input.operator or 'an operator'}")
            case Action.CANCEL:
                message, next_step = "cancelled; nothing was posted", Next.ENDED
                self._enter(PaymentStatus.CANCELLED, reason=f"cancelled: {input.reason or 'no reason given'}")
            case Action.RESOLVE:
                message, next_step = "marked as resolved by hand in the vendor's system", Next.ENDED
                if isinstance(input, ResolveInput) and input.vendor_payment_id:
                    self._state.vendor_payment_id = input.vendor_payment_id
                    message += f" (vendor payment {input.vendor_payment_id})"
                self._enter(
                    PaymentStatus.RESOLVED_MANUALLY,
                    reason=f"resolved by hand: {input.reason or 'no reason given'}",
                )
            case Action.RETRY:
                assert isinstance(input, RetryInput)
                message, next_step = self._apply_corrections(input), Next.RESTART
                self._payable_since = None
                self._enter(PaymentStatus.VALIDATING, reason=message)
        self._record_action(action, input, accepted=True, message=message)
        self._pending = None
        return next_step

    def _apply_corrections(self, input: RetryInput) -> str:
        if not input.has_corrections():
            return "retrying as it stands"
        update: dict[str, object] = {"ids": self._instruction.ids.merged(input.corrected_ids())}
        if input.amount is not None:
            update["amount"] = Money(
                amount=input.amount, currency=input.currency or self._instruction.amount.currency
            )
        self._state.instruction = self._instruction.model_copy(update=update)
        self._approved = False
        changed = ", ".join(
            f"{k}={v}"
            for k, v in input.model_dump(exclude_none=True).items()
            if k not in ("operator", "reason")
        )
        return f"retrying with {changed}"

    # ------------------------------------------------------------------ bookkeeping

    async def _call_vendor(
        self,
        method: Callable[[PaymentActivities, _I], Awaitable[_O]],
        arg: _I,
        *,
        summary: str,
        writes: bool = False,
    ) -> _O | Next:
        """Run one step's activity on its vendor's queue, or on the payment's own queue where that
        vendor has no budget (``PaymentPolicy.inline_queues``: eager dispatch, no hand-over).

        Trouble that outlasts the vendor patience makes the payment wait for the vendor
        (:meth:`_wait_for_vendor`); a refusal that retrying cannot cure asks a person.
        """
        own = workflow.info().task_queue
        vendor = vendor_queue(self._instruction.target, writes)
        queue = own if vendor in self._policy.inline_queues else queue_name(own, vendor)
        patience = self._policy.vendor_patience
        try:
            return await workflow.execute_activity_method(
                method,
                arg,
                task_queue=queue,
                start_to_close_timeout=CALL_TIMEOUT,
                schedule_to_close_timeout=patience or STEP_DEADLINE,
                retry_policy=VENDOR_RETRY,
                summary=summary[:200],
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise  # Temporal's cancellation of the story, not vendor trouble (see run)
            text = _vendor_trouble(err)
            self._note_vendor_answer(summary, text)
            # Out of time while still retryable (5xx, 429, timeouts, connection errors): an outage.
            outage = isinstance(err.cause, TimeoutError) or err.retry_state == RetryState.TIMEOUT
            if patience is None or not outage:
                return self._ask_a_person(texts.unreachable(self._instruction, text))
        return await self._wait_for_vendor(method, arg, queue=queue, summary=summary, patience=patience)

    async def _wait_for_vendor(
        self,
        method: Callable[[PaymentActivities, _I], Awaitable[_O]],
        arg: _I,
        *,
        queue: str,
        summary: str,
        patience: timedelta,
    ) -> _O | Next:
        """The vendor is down: wait for it (WaitingForVendor), trying with capped backoff, for as
        long as it takes; carry on when it answers. Cancel (nothing posted) and resolve still work."""
        step_status = self._state.status
        since = workflow.now() - patience
        vendor = self._instruction.target.vendor
        last = self._state.last_vendor_answer
        self._enter(
            PaymentStatus.WAITING_FOR_VENDOR,
            waiting_for=f"{vendor} to answer again (retrying every few minutes by itself)",
            reason=f"{vendor} unreachable or failing since {since:%Y-%m-%d %H:%M} UTC: "
            f"{texts.sentence(last.text if last else 'no answer')}",
        )
        call = workflow.start_activity_method(
            method,
            arg,
            task_queue=queue,
            start_to_close_timeout=CALL_TIMEOUT,
            retry_policy=PATIENT_RETRY,
            summary=f"(waiting for {vendor}) {summary}"[:200],
        )
        while True:
            await workflow.wait_condition(lambda: call.done() or self._pending is not None)
            if call.done():
                break
            if await self._take_action(self._pending) is Next.ENDED:
                call.cancel()
                return Next.ENDED
        try:
            answer = call.result()
        except ActivityError as err:
            text = str(err.cause) if err.cause is not None else str(err)
            self._note_vendor_answer(summary, text)
            return self._ask_a_person(texts.unreachable(self._instruction, text))
        self._note_vendor_answer(summary, f"{vendor} answered again")
        self._enter(step_status, reason=_KEEP)
        return answer

    def _enter(
        self, status: PaymentStatus, *, waiting_for: str | None = None, reason: str | object | None = None
    ) -> None:
        """Move the payment to ``status``: what it waits for, why (``_KEEP``: the reason it had),
        the search attributes where they changed, and the UI's current details."""
        entered = status is not self._state.status
        self._state.status = status
        self._state.waiting_for = waiting_for
        if reason is not _KEEP:
            self._state.reason = reason if isinstance(reason, str) else None
        if entered and status in ALERTS and self._policy.alerts:
            self._alert(ALERTS[status])
        if not self._coalesce:
            self._publish()
        elif self._publish_scheduled is None:
            # Once the story yields (it awaits an activity, a timer, a person, or ends), which is
            # still in this workflow task: so only the status the task ends in is written.
            self._publish_scheduled = asyncio.get_running_loop().call_soon(self._publish)

    def _publish(self) -> None:
        """Write the current status where people see it: the search attributes, if they changed
        (an upsert is an event and a billable Action), and the UI's current details."""
        if self._publish_scheduled is not None:
            self._publish_scheduled.cancel()
            self._publish_scheduled = None
        indexed = (self._state.status, self._instruction.ids, self._instruction.amount)
        if indexed != self._indexed:
            self._indexed = indexed
            workflow.upsert_search_attributes(
                search_attributes.updates(self._instruction, self._state.status, flags=self._state.flags)
            )
        self._show_details()

    def _alert(self, event: AlertEvent) -> None:
        """Tell the alert webhook, durably: an activity, retried for a day, one per entry (its id stays)."""
        n = self._entries[event] = self._entries.get(event, 0) + 1
        workflow_id = workflow.info().workflow_id
        reason = self._state.reason or ""
        alert = Alert(
            alert_id=alert_id(workflow_id, event, n),
            event=event,
            workflow_id=workflow_id,
            status=self._state.status.value,
            reason=reason,
            text=alert_text(event, workflow_id, reason, self._instruction.summary()),
        )
        self._alerts.append(
            workflow.start_activity_method(
                AlertActivities.send_alert,
                alert,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=ALERT_DEADLINE,
                retry_policy=ALERT_RETRY,
                summary=f"Alert: {event.value}",
            )
        )

    async def _alerts_sent(self) -> None:
        """Before the payment ends: its alerts delivered (or given up on after a short grace)."""
        if not self._alerts or all(a.done() for a in self._alerts):
            return
        try:
            await workflow.wait_condition(lambda: all(a.done() for a in self._alerts), timeout=ALERT_GRACE)
        except TimeoutError:
            workflow.logger.warning("Ending with alerts still undelivered")

    def _show_details(self) -> None:
        workflow.set_current_details(texts.current_details(self.status()))

    def _ask_a_person(self, reason: str, problem: VendorProblem | None = None) -> Next:
        last = self._state.last_vendor_answer
        if problem is not None and (last is None or last.problem is not problem):
            self._note_vendor_answer("vendor", problem.text(), problem)
        self._enter(
            PaymentStatus.NEEDS_REVIEW, waiting_for="a person: retry, resolve or cancel", reason=reason
        )
        return Next.ASK_A_PERSON

    def _note_vendor_answer(self, step: str, text: str, problem: VendorProblem | None = None) -> None:
        self._state.last_vendor_answer = VendorAnswer(
            at=workflow.now(), step=step, text=text, problem=problem
        )

    def _record_confirmation(self, confirmation: Confirmation) -> None:
        self._state.vendor_payment_id = confirmation.vendor_payment_id
        self._state.target_status = confirmation.target_status
        self._state.total_paid = confirmation.total_paid
        self._state.total_billable = confirmation.total_billable

    def _record_action(self, action: str, input: OperatorInput, *, accepted: bool, message: str) -> None:
        self._state.actions.append(
            OperatorAction(
                action=action,
                at=workflow.now(),
                operator=input.operator,
                reason=input.reason,
                accepted=accepted,
                message=message,
            )
        )

    def _refuse_callback(self, why: str) -> None:
        self._state.actions.append(
            OperatorAction(
                action="vendor_callback",
                at=workflow.now(),
                accepted=False,
                message=f"refused a vendor_callback: {why}; nothing changed",
            )
        )
        self._show_details()

    def _begin_step(self, name: str) -> StepRecord:
        record = StepRecord(name=name, started_at=workflow.now())
        self._state.steps.append(record)
        return record

    @staticmethod
    def _end_step(record: StepRecord, outcome: str, attempts: int) -> None:
        record.finished_at = workflow.now()
        record.outcome = outcome
        record.attempts = attempts


#: ``_enter(..., reason=_KEEP)``: the step keeps the reason the payment had (an operator's
#: "approved by dana" or "retrying with load_number=L-2" stays visible while it posts).
_KEEP: object = object()


def _vendor_trouble(err: BaseException) -> str:
    """The vendor's own last word inside an activity failure (the innermost cause), e.g. "Alvys
    customer-payments answered 503" rather than the server's "Not enough time to ... retry"."""
    inner: BaseException = err
    while True:
        deeper = getattr(inner, "cause", None) or inner.__cause__
        if deeper is None:
            break
        inner = deeper
    return str(inner)
