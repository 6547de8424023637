"""ReconcileWorkflow: a window's settled payments checked against the vendor; DiscrepancyWorkflow: one
payment that did not reconcile, open until a person resolves it.

The story (:meth:`ReconcileWorkflow.run`): take the window (the input's, else the 24 h before
the Schedule's action time or the run's start), page through the window's settled payments
(visibility), read their Alvys loads in batches (one ``POST loads/search`` per batch, on the
rate-limited reads queue), classify each payment (:func:`models.reconcile.check`), open a
``DiscrepancyWorkflow`` for each missing or differing one, write the report. The rules and the
words are in :mod:`models.reconcile`; this module only runs them.

A discrepancy's id is ``discrepancy-{payment workflow id}``, started with REJECT_DUPLICATE:
however many runs find the same payment (overlapping windows, a run repeated by hand), it is
opened once, and once a person resolved it, a later run does not reopen it (the report still
shows the payment as it is at the vendor).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.alerts import AlertActivities
    from activities.reconcile import ReconcileActivities
    from models import reconcile
    from models.alerts import Alert, AlertEvent, alert_id, alert_text
    from models.queues import VendorQueue, queue_name
    from models.reconcile import (
        CheckedPayment,
        DiscrepancyInput,
        DiscrepancyState,
        LoadsRequest,
        ReconcileInput,
        ReconcileProgress,
        ReconcileResult,
        ReportRequest,
        ResolveDiscrepancyInput,
        SettledPayment,
        SettledRequest,
        VendorLoad,
        Window,
    )
    from workflows import search_attributes as sa

#: Set by Temporal on every workflow a Schedule starts: the action's nominal time.
SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
#: A read that Alvys refuses (4xx) or answers unreadably is not retried: its payments are
#: reported unverifiable, and the reconciliation goes on.
READ_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["VendorConfigurationError", "VendorRefusedRead", "VendorUnreadable"],
)
READ_TIMEOUT = timedelta(seconds=30)
DEADLINE = timedelta(hours=1)
LIST_TIMEOUT = timedelta(minutes=2)


def discrepancy_attributes(row: CheckedPayment) -> TypedSearchAttributes:
    """``PaymentFlags=['Unreconciled']`` and the payment's own attributes, for the Web UI's filters."""
    pairs: list[SearchAttributePair] = [  # type: ignore[type-arg]
        SearchAttributePair(sa.PAYMENT_FLAGS, [reconcile.UNRECONCILED]),
        SearchAttributePair(sa.PAYMENT_TARGET, row.target),
        SearchAttributePair(sa.PAYMENT_REFERENCE, row.reference),
    ]
    if row.our_amount is not None:
        pairs.append(SearchAttributePair(sa.PAYMENT_AMOUNT, float(row.our_amount.amount)))
    for key, value in (
        (sa.LOAD_NUMBER, row.load_number),
        (sa.TRIP_ID, row.trip_id),
        (sa.INVOICE_NUMBER, row.invoice_number),
    ):
        if value:
            pairs.append(SearchAttributePair(key, value))
    return TypedSearchAttributes(pairs)


@workflow.defn(name="ReconcileWorkflow")
class ReconcileWorkflow:
    """One window's reconciliation; its result's one-line form is :meth:`ReconcileResult.line`."""

    def __init__(self) -> None:
        self._progress = ReconcileProgress()

    @workflow.run
    async def run(self, input: ReconcileInput) -> ReconcileResult:
        info = workflow.info()
        scheduled = info.typed_search_attributes.get(SCHEDULED_START)
        window = reconcile.window_of(input, scheduled or info.workflow_start_time)
        self._progress.window = window
        settle = window.until + timedelta(seconds=input.settle_seconds) - workflow.now()
        if settle > timedelta(0):
            self._show(f"waiting {settle.total_seconds():.0f} s for visibility to index the last payments")
            await workflow.sleep(settle)
        task_queue = input.task_queue or info.task_queue
        rows: list[CheckedPayment] = []
        opened: list[str] = []
        already: list[str] = []
        token: str | None = None
        while True:
            self._show("listing settled payments")
            page = await workflow.execute_activity_method(
                ReconcileActivities.list_settled_payments,
                SettledRequest(window=window, task_queue=task_queue, page_token=token),
                start_to_close_timeout=LIST_TIMEOUT,
                schedule_to_close_timeout=DEADLINE,
                summary=f"Settled payments {window.text()}",
            )
            checked = await self._check(page.payments, input.batch_size)
            rows.extend(checked)
            self._progress.counts.add(row.outcome for row in checked)
            found = [row for row in checked if row.outcome.is_discrepancy]
            self._show(f"opening {len(found)} discrepancies")
            opened_now = await asyncio.gather(*(self._open(row, window) for row in found))
            for row, new in zip(found, opened_now, strict=True):
                (opened if new else already).append(reconcile.discrepancy_id(row.workflow_id))
            token = page.next_page_token
            if not token:
                break
        self._show("writing the report")
        files = await workflow.execute_activity_method(
            ReconcileActivities.write_report,
            ReportRequest(
                window=window,
                reconciliation_id=info.workflow_id,
                query=reconcile.settled_query(window, task_queue),
                counts=self._progress.counts,
                rows=rows,
                reads=self._progress.reads,
                opened=opened,
                already=already,
            ),
            start_to_close_timeout=READ_TIMEOUT,
            schedule_to_close_timeout=DEADLINE,
            summary="Write the reconciliation report",
        )
        result = ReconcileResult(
            reconciliation_id=info.workflow_id,
            window=window,
            counts=self._progress.counts,
            report=files.csv,
            markdown=files.markdown,
            reads=self._progress.reads,
            opened=opened,
            already=already,
        )
        self._show(result.line(), phase="done")
        return result

    async def _check(self, payments: list[SettledPayment], batch_size: int) -> list[CheckedPayment]:
        """Each payment's outcome, after one ``loads/search`` per batch of load numbers."""
        batches = reconcile.load_batches(payments, batch_size)
        if batches:
            self._show(f"reading {sum(map(len, batches))} Alvys loads in {len(batches)} calls")
        loads: dict[str, VendorLoad] = {}
        errors: dict[str, str] = {}
        reads = await asyncio.gather(*(self._read(b) for b in batches))
        for batch, read in zip(batches, reads, strict=True):
            if isinstance(read, str):
                errors.update(dict.fromkeys(batch, read))
            else:
                loads.update({load.load_number: load for load in read})
        return [
            reconcile.check(p, loads, errors.get(p.load_number) if p.load_number else None) for p in payments
        ]

    async def _read(self, load_numbers: list[str]) -> list[VendorLoad] | str:
        """One batch's loads, or why Alvys could not be read."""
        self._progress.reads += 1
        try:
            read = await workflow.execute_activity_method(
                ReconcileActivities.read_loads,
                LoadsRequest(load_numbers=load_numbers),
                task_queue=queue_name(workflow.info().task_queue, VendorQueue.ALVYS_READS),
                start_to_close_timeout=READ_TIMEOUT,
                schedule_to_close_timeout=DEADLINE,
                retry_policy=READ_RETRY,
                summary=f"Alvys loads/search: {len(load_numbers)} loads",
            )
        except ActivityError as error:
            return str(error.cause or error)
        return read.loads

    async def _open(self, row: CheckedPayment, window: Window) -> bool:
        """Start the payment's DiscrepancyWorkflow; False when a run had already started it."""
        input = DiscrepancyInput(
            checked=row, reconciliation_id=workflow.info().workflow_id, window=window, found_at=workflow.now()
        )
        try:
            await workflow.start_child_workflow(
                DiscrepancyWorkflow.run,
                input,
                id=reconcile.discrepancy_id(row.workflow_id),
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                parent_close_policy=ParentClosePolicy.ABANDON,
                search_attributes=discrepancy_attributes(row),
                static_summary=reconcile.discrepancy_summary(row),
                static_details=reconcile.discrepancy_details(input),
            )
        except WorkflowAlreadyStartedError:
            return False
        # Alert once per discrepancy (a later run's start of the same id fails instead). Rare, so it
        # is always scheduled: the activity does nothing without FREIGHTPAY_ALERT_WEBHOOK_URL.
        discrepancy = reconcile.discrepancy_id(row.workflow_id)
        reason = reconcile.discrepancy_summary(row)
        workflow.start_activity_method(
            AlertActivities.send_alert,
            Alert(
                alert_id=alert_id(discrepancy, AlertEvent.RECONCILIATION_DISCREPANCY, 1),
                event=AlertEvent.RECONCILIATION_DISCREPANCY,
                workflow_id=discrepancy,
                status=row.outcome.value,
                reason=reason,
                text=alert_text(AlertEvent.RECONCILIATION_DISCREPANCY, discrepancy, reason),
            ),
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=timedelta(days=1),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=10)
            ),
            summary="Alert: reconciliation.discrepancy",
        )
        return True

    def _show(self, text: str, phase: str | None = None) -> None:
        self._progress.phase = phase or text
        c = self._progress.counts
        window = self._progress.window
        workflow.set_current_details(
            f"**{text}**\n\n- Window: {window.text() if window else '?'}\n"
            f"- So far: checked {c.checked}, matched {c.matched}, missing {c.missing}, differing "
            f"{c.differing}, unverifiable {c.unverifiable}; Alvys loads/search calls {self._progress.reads}"
        )

    @workflow.query(name="progress", description="Where the reconciliation is, and its counts so far.")
    def progress(self) -> ReconcileProgress:
        return self._progress


@workflow.defn(name="DiscrepancyWorkflow")
class DiscrepancyWorkflow:
    """One payment that did not reconcile: open (``PaymentFlags = 'Unreconciled'``) until ``resolve``."""

    @workflow.init
    def __init__(self, input: DiscrepancyInput) -> None:
        self._state = DiscrepancyState(
            discrepancy_id=workflow.info().workflow_id,
            payment_workflow_id=input.checked.workflow_id,
            outcome=input.checked.outcome,
            detail=input.checked.detail,
            found_by=input.reconciliation_id,
        )

    @workflow.run
    async def run(self, input: DiscrepancyInput) -> DiscrepancyState:
        workflow.set_current_details(
            f"**Waiting for a person** to look at `{input.checked.workflow_id}`: {input.checked.detail}\n\n"
            'Then `resolve` (Send an Update or a Signal, input `{"reason": "...", "operator": "..."}`).'
        )
        await workflow.wait_condition(lambda: self._state.resolved)
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.set_current_details(
            f"**Resolved** by {self._state.operator or 'an operator'}: {self._state.reason or '(no reason given)'}"
        )
        return self._state

    def _take(self, input: ResolveDiscrepancyInput) -> None:
        self._state.resolved = True
        self._state.resolved_at = workflow.now()
        self._state.reason = input.reason
        self._state.operator = input.operator

    @workflow.query(name="state", description="The discrepancy, and who resolved it.")
    def state(self) -> DiscrepancyState:
        return self._state

    @workflow.signal(name="resolve", description="Close it: looked at, fixed or accepted.")
    def resolve_signal(self, input: ResolveDiscrepancyInput | None = None) -> None:
        if not self._state.resolved:
            self._take(input or ResolveDiscrepancyInput())

    @workflow.update(name="resolve", description="Close it; answers with the resolved discrepancy.")
    def resolve(self, input: ResolveDiscrepancyInput | None = None) -> DiscrepancyState:
        self._take(input or ResolveDiscrepancyInput())
        return self._state

    @resolve.validator
    def _validate_resolve(self, input: ResolveDiscrepancyInput | None = None) -> None:
        if self._state.resolved:
            raise ValueError(f"already resolved by {self._state.operator or 'an operator'}")
