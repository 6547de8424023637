"""DepositWorkflow: one deposit from a bank, lockbox or factor file, applied to invoices exactly once.

The story (:meth:`DepositWorkflow.run`): look the deposit's references up at the vendor,
ask :mod:`models.matching` for a plan (explicit lines, else free text, else the payer's open
invoices by amount), start one ``PaymentWorkflow`` per application, and keep what matched
nothing as unapplied cash until a person ``apply``-s it or ``resolve``-s the deposit. Its id
is ``deposit-{source}-{key}`` (the deposit's own bank or trace reference), so the same file
twice, or the same deposit in two files, is one deposit.

Each payment's vendor idempotency reference is the deposit's check, trace or end-to-end id,
and its workflow id is ``payment-deposit-{load}-{reference}`` (Alvys is idempotent per load
and reference): one check paying several loads posts once per load, whatever is replayed,
retried or delivered twice. Money is exact at every moment: ``applied + unapplied`` is the
deposit's amount, and ``apply`` is refused beyond what is unapplied. Applied means a payment
records the cash: one that ends Cancelled or is closed by Temporal, or a key another payment
holds with other facts, gives the money back as unapplied (``APPLIED_IS_RECORDED_PATCH``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
    is_cancelled_exception,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.alerts import AlertActivities
    from activities.cash import CashActivities
    from models import identity, matching, texts
    from models.alerts import Alert, AlertEvent, alert_id, alert_text
    from models.deposit import (
        AppliedPayment,
        ApplyInput,
        DepositInput,
        DepositState,
        DepositStatus,
        FindCustomer,
        FindInvoice,
        FindLoads,
        Found,
        KnownTarget,
        OpenInvoicesRequest,
        ResolveDepositInput,
        UnmatchedCash,
    )
    from models.money import Money
    from models.payment import PaymentInstruction, Source, Target, TargetIds
    from models.queues import VendorQueue, queue_name
    from models.state import OperatorAction, PaymentResult, PaymentStatus
    from models.steps import PaymentInput, RepeatCheck
    from workflows import search_attributes
    from workflows.payment import PaymentWorkflow
    from workflows.remittance import compare_with_accepted

#: Reads cost the vendor's read budget: one request per activity, retried with backoff.
READ_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
READ_TIMEOUT = timedelta(seconds=30)
READ_DEADLINE = timedelta(hours=1)
#: A deposit counts as applied only money its payments record: a payment it could not start
#: (the key taken) is compared with the one accepted, and one that ends Cancelled or closed by
#: Temporal gives its cash back as unapplied. Histories from before replay as they ran.
APPLIED_IS_RECORDED_PATCH = "deposit-applied-is-recorded"
#: The most open invoices read for an amount-only match (pages of 100).
MAX_INVOICE_PAGES = 3
_R = TypeVar("_R")


def deposit_workflow_id(source: str, key: str) -> str:
    return identity.workflow_id("deposit", source, key)


@workflow.defn(name="DepositWorkflow")
class DepositWorkflow:
    """One deposit: applied to invoices by the rules, the rest unapplied until a person decides."""

    @workflow.init
    def __init__(self, input: DepositInput) -> None:
        self._input = input
        self._state = DepositState(
            deposit_id=workflow.info().workflow_id,
            status=DepositStatus.APPLYING,
            deposit=input.deposit,
            remittance_id=input.remittance_id,
        )
        self._payments: list[asyncio.Task[None]] = []
        self._resolved = False
        self._open_cache: list[KnownTarget] | None = None
        #: What the search attributes show (each upsert is an event and a billable action).
        self._indexed: tuple[str, float] | None = None
        self._unapplied_alerts = 0

    @property
    def _currency(self) -> str:
        return self._input.deposit.amount.currency

    @workflow.run
    async def run(self, input: DepositInput) -> DepositState:
        """The deposit's story. Temporal's cancellation (the UI's Request Cancellation) ends it
        Resolved, saying so, and the workflow Canceled: the payments it started are each their
        own workflow and go on (cancel those one by one if they must stop)."""
        try:
            return await self._story()
        except asyncio.CancelledError:
            self._resolved = True
            self._state.status = DepositStatus.RESOLVED
            self._state.resolution = (
                f"cancelled through Temporal with {self._state.unapplied} unapplied; "
                f"{len(self._state.applications)} payment(s) already started go on"
            )
            self._show()
            raise

    async def _story(self) -> DepositState:
        self._show()
        plan = await self._plan()
        self._state.strategy = plan.strategy.value if plan.strategy else None
        self._state.unmatched = list(plan.unmatched)
        for application in _one_per_load(plan.applications):
            self._pay(
                reference=application.reference,
                load_number=application.load_number,
                invoice_number=application.invoice_number,
                amount=application.amount,
                open_balance=application.open_balance,
                reason=application.reason,
                strategy=application.strategy.value,
            )
        self._show()
        # Unapplied cash waits, durably, for a person: apply it, or resolve the deposit. A payment
        # that ends without recording its cash gives it back (unapplied again), so the two
        # conditions hold together. (Before that could happen the first was never undone: one
        # condition waits as the two in turn did, and older histories replay unchanged.)
        await workflow.wait_condition(
            lambda: (
                (self._resolved or not self._state.unapplied.is_positive())
                and all(task.done() for task in self._payments)
            )
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._state.status = DepositStatus.RESOLVED if self._resolved else DepositStatus.APPLIED
        self._show()
        return self._state

    # ------------------------------------------------------------------ matching

    async def _plan(self) -> matching.Plan:
        deposit = self._input.deposit
        if deposit.lines:
            known = await self._look_up([line.reference for line in deposit.lines])
            return matching.explicit(deposit, known)
        references = matching.references_in_text(deposit.free_text)
        if references:
            plan = matching.free_text(deposit, await self._look_up(references))
            if plan.applications or not deposit.payer:
                return plan
        return matching.amount_only(deposit, await self._open_invoices())

    async def _look_up(self, references: list[str]) -> dict[str, KnownTarget]:
        """Each reference as a load number, then as a PO number, then as an invoice number.

        Loads and POs cost one batched search each; an invoice number costs one ``GET
        /invoices`` (published at 5 a minute) unless the payer's open invoices, read anyway,
        already name it.
        """
        known: dict[str, KnownTarget] = {}
        found = await self._read(
            CashActivities.find_loads, FindLoads(load_numbers=references, currency=self._currency)
        )
        known.update({t.reference: t for t in found})
        rest = [r for r in references if r not in known]
        if rest:
            found = await self._read(
                CashActivities.find_loads, FindLoads(po_numbers=rest, currency=self._currency)
            )
            known.update({t.reference: t for t in found})
        rest = [r for r in references if r not in known]
        if rest and self._input.deposit.payer:
            invoices = {t.invoice_number: t for t in await self._open_invoices() if t.invoice_number}
            known.update({r: invoices[r].model_copy(update={"reference": r}) for r in rest if r in invoices})
        for reference in [r for r in references if r not in known]:
            found = await self._read(
                CashActivities.find_invoice, FindInvoice(invoice_number=reference, currency=self._currency)
            )
            known.update({t.reference: t for t in found})
        return known

    async def _open_invoices(self) -> list[KnownTarget]:
        payer = self._input.deposit.payer
        if not payer:
            return []
        if self._open_cache is None:
            self._open_cache = []
            try:
                self._open_cache = await self._read_open_invoices(payer)
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise asyncio.CancelledError() from err
                workflow.logger.warning("Open invoices of %s could not be read: %s", payer, err.cause)
        return self._open_cache

    async def _read_open_invoices(self, payer: str) -> list[KnownTarget]:
        customer = await workflow.execute_activity_method(
            CashActivities.find_customer,
            FindCustomer(payer=payer),
            task_queue=self._reads_queue(),
            start_to_close_timeout=timedelta(minutes=5),
            schedule_to_close_timeout=READ_DEADLINE,
            retry_policy=READ_RETRY,
            summary=f"Find the Alvys customer {payer[:60]}",
        )
        invoices: list[KnownTarget] = []
        if customer.customer_id:
            for page in range(MAX_INVOICE_PAGES):
                batch = await workflow.execute_activity_method(
                    CashActivities.open_invoices,
                    OpenInvoicesRequest(customer_id=customer.customer_id, page=page, currency=self._currency),
                    task_queue=self._reads_queue(),
                    start_to_close_timeout=READ_TIMEOUT,
                    schedule_to_close_timeout=READ_DEADLINE,
                    retry_policy=READ_RETRY,
                    summary=f"Open invoices of {customer.name or payer} (page {page + 1})",
                )
                invoices.extend(batch.targets)
                if not batch.more:
                    break
        return invoices

    async def _read(
        self, method: Callable[[CashActivities, _R], Awaitable[Found]], request: _R
    ) -> list[KnownTarget]:
        try:
            found = await workflow.execute_activity_method(
                method,
                request,
                task_queue=self._reads_queue(),
                start_to_close_timeout=READ_TIMEOUT,
                schedule_to_close_timeout=READ_DEADLINE,
                retry_policy=READ_RETRY,
                summary="Look up the deposit's references",
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise asyncio.CancelledError() from err
            # The vendor could not be reached for an hour: nothing is guessed; the lines stay unapplied.
            workflow.logger.warning("Deposit lookup failed: %s", err.cause)
            return []
        return list(found.targets)

    def _reads_queue(self) -> str:
        return queue_name(workflow.info().task_queue, VendorQueue.ALVYS_READS)

    # ------------------------------------------------------------------ payments

    def _pay(
        self,
        *,
        reference: str,
        load_number: str | None,
        invoice_number: str | None,
        amount: Money,
        open_balance: Money | None,
        reason: str | None,
        strategy: str,
    ) -> AppliedPayment:
        """Start one payment for an application (a child that outlives nothing: ABANDON)."""
        deposit = self._input.deposit
        instruction = PaymentInstruction(
            source=Source.DEPOSIT,
            business_key=f"{load_number or invoice_number}-{deposit.reference}",
            source_event_id=f"{self._state.deposit_id} {reference}",
            target=Target.ALVYS_CUSTOMER_PAYMENT,
            ids=TargetIds(load_number=load_number, invoice_number=invoice_number),
            amount=amount,
            # What was open, where known: a payment over it waits for approval (models.rules).
            invoice_total=open_balance,
            payment_date=datetime.combine(deposit.value_date, datetime.min.time(), tzinfo=UTC)
            if deposit.value_date
            else workflow.now(),
            method=deposit.kind,
            check_number=deposit.reference,
            reference_number=deposit.reference,
            note=reason,
            deposit_id=self._state.deposit_id,
        )
        applied = AppliedPayment(
            reference=reference,
            load_number=load_number,
            invoice_number=invoice_number,
            amount=amount,
            workflow_id=instruction.workflow_id,
            reason=reason,
            strategy=strategy,
        )
        self._state.applications.append(applied)
        self._payments.append(asyncio.ensure_future(self._follow(instruction, applied)))
        return applied

    async def _follow(self, instruction: PaymentInstruction, applied: AppliedPayment) -> None:
        checked = workflow.patched(APPLIED_IS_RECORDED_PATCH)
        try:
            handle = await workflow.start_child_workflow(
                PaymentWorkflow.run,
                PaymentInput(instruction=instruction, policy=self._input.policy),
                id=instruction.workflow_id,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                parent_close_policy=ParentClosePolicy.ABANDON,
                search_attributes=search_attributes.typed(instruction, PaymentStatus.RECEIVED),
                static_summary=instruction.summary(),
                static_details=texts.static_details(instruction),
            )
        except WorkflowAlreadyStartedError:
            # Another deposit, a file or an operator's apply took this load and reference first.
            applied.payment_status = "AlreadyStarted"
            if checked:
                check = await self._accepted(instruction)
                self._unless_recorded(applied, check.status, check.fields, check.differences)
            self._show()
            return
        applied.payment_status = "Running"
        self._show()
        if not checked:
            result: PaymentResult = await handle
            applied.payment_status = result.status.value
            self._show()
            return
        try:
            applied.payment_status = (await handle).status.value
        except ChildWorkflowError:
            # Cancelled, terminated or timed out through Temporal: ask where it really ended
            # (Failed: an older worker's answer, which does not say).
            applied.payment_status = (await self._accepted(instruction)).status or "Failed"
        self._unless_recorded(applied, applied.payment_status)
        self._show()

    async def _accepted(self, instruction: PaymentInstruction) -> RepeatCheck:
        return await compare_with_accepted(
            instruction, f"Compare with the payment accepted as {instruction.workflow_id}"
        )

    def _unless_recorded(
        self,
        applied: AppliedPayment,
        status: str | None,
        fields: Sequence[str] = (),
        differences: Sequence[str] = (),
    ) -> None:
        """Money its payment does not record is unapplied again (:func:`models.matching.not_applied`)."""
        reason = matching.not_applied(applied.workflow_id, status, fields, differences)
        if reason is None:
            return
        self._state.applications = [a for a in self._state.applications if a is not applied]
        self._state.unmatched = [
            *self._state.unmatched,
            UnmatchedCash(reference=applied.reference, amount=applied.amount, reason=reason),
        ]
        workflow.logger.warning("Deposit %s: %s", self._state.deposit_id, reason)

    # ------------------------------------------------------------------ operators

    @workflow.query(
        name="state", description="The deposit: what was applied where, what matched nothing, why."
    )
    def state(self) -> DepositState:
        return self._state

    @workflow.update(name="apply", description="Apply unapplied cash to an invoice or a load.")
    async def apply(self, input: ApplyInput) -> DepositState:
        self._take_apply(input)
        return self._state

    @apply.validator
    def _validate_apply(self, input: ApplyInput) -> None:
        refusal = self._apply_refusal(input)
        if refusal:
            raise ApplicationError(refusal, type="ActionRefused", non_retryable=True)

    @workflow.signal(name="apply", description="Apply unapplied cash (the UI's Send a Signal).")
    def apply_signal(self, input: ApplyInput) -> None:
        refusal = self._apply_refusal(input)
        if refusal:
            self._record("apply", input.operator, input.reason, accepted=False, message=refusal)
            return
        self._take_apply(input)

    @workflow.update(name="resolve", description="The remainder was handled outside freightpay.")
    async def resolve(self, input: ResolveDepositInput | None = None) -> DepositState:
        self._take_resolve(input or ResolveDepositInput())
        return self._state

    @resolve.validator
    def _validate_resolve(self, input: ResolveDepositInput | None = None) -> None:
        refusal = self._resolve_refusal()
        if refusal:
            raise ApplicationError(refusal, type="ActionRefused", non_retryable=True)

    @workflow.signal(name="resolve", description="The remainder was handled outside freightpay.")
    def resolve_signal(self, input: ResolveDepositInput | None = None) -> None:
        input = input or ResolveDepositInput()
        refusal = self._resolve_refusal()
        if refusal:
            self._record("resolve", input.operator, input.reason, accepted=False, message=refusal)
            return
        self._take_resolve(input)

    def _apply_refusal(self, input: ApplyInput) -> str | None:
        if self._state.status is not DepositStatus.UNAPPLIED or self._resolved:
            return f"nothing to apply: the deposit is {self._state.status.value}"
        if bool(input.invoice_number) == bool(input.load_number):
            return "give exactly one of invoice_number or load_number"
        try:
            amount = Money(amount=input.amount, currency=self._currency)
        except ValueError as exc:
            return f"invalid amount: {exc}"
        if not amount.is_positive():
            return "amount must be greater than zero"
        unapplied = self._state.unapplied
        if amount > unapplied:
            return f"{amount} is more than the unapplied {unapplied}"
        target = input.load_number or input.invoice_number
        if any((a.load_number or a.invoice_number) == target for a in self._state.applications):
            return f"this deposit already pays {target}; one payment per load and reference"
        return None

    def _resolve_refusal(self) -> str | None:
        if self._state.status is not DepositStatus.UNAPPLIED or self._resolved:
            return f"nothing to resolve: the deposit is {self._state.status.value}"
        return None

    def _alert_unapplied(self) -> None:
        """``deposit.unapplied``: cash no rule could apply waits for a person (one alert per entry)."""
        self._unapplied_alerts += 1
        deposit_id = self._state.deposit_id
        reasons = "; ".join(u.reason for u in self._state.unmatched) or "unapplied cash"
        reason = f"{self._state.unapplied} unapplied of {self._input.deposit.amount}: {reasons}"
        workflow.start_activity_method(
            AlertActivities.send_alert,
            Alert(
                alert_id=alert_id(deposit_id, AlertEvent.DEPOSIT_UNAPPLIED, self._unapplied_alerts),
                event=AlertEvent.DEPOSIT_UNAPPLIED,
                workflow_id=deposit_id,
                status=DepositStatus.UNAPPLIED.value,
                reason=reason,
                text=alert_text(AlertEvent.DEPOSIT_UNAPPLIED, deposit_id, reason),
            ),
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=timedelta(days=1),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=10)
            ),
            summary="Alert: deposit.unapplied",
        )

    def _take_apply(self, input: ApplyInput) -> None:
        amount = Money(amount=input.amount, currency=self._currency)
        self._pay(
            reference=input.invoice_number or input.load_number or "",
            load_number=input.load_number,
            invoice_number=input.invoice_number,
            amount=amount,
            open_balance=None,
            reason=input.reason,
            strategy=matching.Strategy.OPERATOR.value,
        )
        self._state.unmatched = _take(self._state.unmatched, amount)
        self._record("apply", input.operator, input.reason, accepted=True, message=f"applied {amount}")
        self._show()

    def _take_resolve(self, input: ResolveDepositInput) -> None:
        self._resolved = True
        self._state.resolution = (
            f"{self._state.unapplied} handled outside freightpay by {input.operator or 'an operator'}: "
            f"{input.reason or 'no reason given'}"
        )
        self._record("resolve", input.operator, input.reason, accepted=True, message=self._state.resolution)
        self._show()

    def _record(
        self, action: str, operator: str | None, reason: str | None, *, accepted: bool, message: str
    ) -> None:
        self._state.actions.append(
            OperatorAction(
                action=action,
                at=workflow.now(),
                operator=operator,
                reason=reason,
                accepted=accepted,
                message=message,
            )
        )

    # ------------------------------------------------------------------ bookkeeping

    def _show(self) -> None:
        """The status (``Unapplied`` while cash waits for a person), its search attributes, the details."""
        state = self._state
        if state.status is not DepositStatus.RESOLVED and state.status is not DepositStatus.APPLIED:
            unapplied = state.unapplied.is_positive() and not self._resolved
            waiting = unapplied and state.strategy is not None
            state.status = DepositStatus.UNAPPLIED if waiting else DepositStatus.APPLYING
        indexed = (state.status.value, float(state.unapplied.amount))
        if (
            state.status is DepositStatus.UNAPPLIED
            and (self._indexed is None or self._indexed[0] != state.status.value)
            and self._input.policy.alerts
        ):
            self._alert_unapplied()
        if indexed != self._indexed:
            self._indexed = indexed
            workflow.upsert_search_attributes(
                [pair.key.value_set(pair.value) for pair in search_attributes.deposit_pairs(*indexed)]
            )
        workflow.set_current_details(details(state))


def _one_per_load(applications: list[matching.Application]) -> list[matching.Application]:
    """Applications on the same load merged into one (Alvys is idempotent per load and reference:
    two payments of one check on one load would be one), amounts added exactly."""
    merged: dict[str, matching.Application] = {}
    for application in applications:
        seen = merged.get(application.load_number)
        if seen is None:
            merged[application.load_number] = application
            continue
        reasons = "; ".join(r for r in (seen.reason, application.reason) if r) or None
        merged[application.load_number] = seen.model_copy(
            update={
                "reference": f"{seen.reference}+{application.reference}",
                "amount": seen.amount + application.amount,
                "open_balance": None,  # two invoices' balances on one load: not one open balance
                "reason": reasons,
            }
        )
    return list(merged.values())


def _take(unmatched: list[UnmatchedCash], amount: Money) -> list[UnmatchedCash]:
    """The unmatched cash after ``amount`` of it was applied (first items first), still exact."""
    left, kept = amount, []
    for item in unmatched:
        if left.is_positive():
            used = item.amount if item.amount <= left else left
            left = left - used
            if used == item.amount:
                continue
            item = item.model_copy(update={"amount": item.amount - used})
        kept.append(item)
    return kept


def details(state: DepositState) -> str:
    """The deposit's current details for the Web UI (markdown)."""
    deposit = state.deposit
    lines = [
        f"**{state.status.value}** · deposit {deposit.amount} ref `{deposit.reference}`"
        + (f" from {deposit.payer}" if deposit.payer else ""),
        f"- Applied {state.applied}, unapplied {state.unapplied}"
        + (f" (strategy: {state.strategy})" if state.strategy else ""),
    ]
    for a in state.applications:
        lines.append(
            f"- {a.amount} → load {a.load_number or '?'}"
            + (f" / invoice {a.invoice_number}" if a.invoice_number else "")
            + f": `{a.workflow_id}` {a.payment_status}"
            + (f" ({a.reason})" if a.reason else "")
        )
    for u in state.unmatched:
        lines.append(
            f"- Unapplied {u.amount}"
            + (f" for {u.reference}" if u.reference else "")
            + f": {u.reason}"
            + (f"; candidates: {', '.join(u.candidates)}" if u.candidates else "")
        )
    if state.resolution:
        lines.append(f"- Resolved: {state.resolution}")
    if state.status is DepositStatus.UNAPPLIED:
        lines.append(
            '- You can: `apply` (`{"load_number": "L-1", "amount": "10.00", "reason": "..."}`) or `resolve`'
        )
    return "\n".join(lines)
