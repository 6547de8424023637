"""AlvysEventWorkflow: one Alvys webhook event, handed over durably by the ingress, then acted on.

Why a workflow per event: the ingress answers Alvys only once Temporal holds the event, so a
crash after the answer loses nothing, and the workflow id is the event's own id, so Temporal
itself drops a repeat (Alvys delivers at least once, up to 4 attempts, in no order):

* the id is ``alvys-event-{event id}`` (:func:`event_workflow_id`; the event id escaped by the one
  rule of :mod:`models.identity`, so ``E/1`` is ``alvys-event-E~2F1``);
* it is started with the id-reuse policy REJECT_DUPLICATE and the conflict policy USE_EXISTING:
  a repeat while it runs joins it, a repeat after it ended is refused by Temporal, and the
  ingress answers both 2xx, so Alvys stops retrying and nothing happens twice.

What it does (thin on purpose): a ``load.status.changed`` whose load is now payable for customer
payments (Invoiced, Completed, Financed: ``vendors.alvys.CUSTOMER_PAYABLE_LOAD_STATUSES``) finds
the payments of that load in WaitingForPayable (the activity ``find_waiting_payments``, a
visibility query) and sends each the ``load_payable`` signal through an external workflow handle
(durable, no client needed). That signal only brings the payment's own re-check forward: the
payment reads the load and decides, so a late, repeated or out-of-order event can never make a
payment post early. Every other event (``trip.status.changed``, a status that is not payable,
event types added later) is recorded in the result and ends.

Only what it needs enters the history: the event id and type, the load number (or trip id) and
the status. The rest of Alvys's body (the whole load: customer, stops, notes) stays at the ingress.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel, ConfigDict
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.alvys_events import find_waiting_payments
    from models.identity import workflow_id
    from models.steps import LoadPayable
    from vendors.alvys import CUSTOMER_PAYABLE_LOAD_STATUSES
    from workflows.payment import PaymentWorkflow

LOAD_STATUS_CHANGED = "load.status.changed"
TRIP_STATUS_CHANGED = "trip.status.changed"
#: How long the event keeps asking visibility before it gives up (the payments' timers remain).
FIND_DEADLINE = timedelta(hours=1)
_PAYABLE = {status.replace(" ", "").lower() for status in CUSTOMER_PAYABLE_LOAD_STATUSES}


def event_workflow_id(event_id: str) -> str:
    """``alvys-event-{event id}``, the key escaped by :func:`models.identity.workflow_id`."""
    return workflow_id("alvys", "event", event_id)


def is_payable(status: str | None) -> bool:
    """Whether a load in ``status`` takes customer payments (spaces and case forgiven)."""
    return bool(status) and str(status).replace(" ", "").lower() in _PAYABLE


class AlvysEvent(BaseModel):
    """What the history keeps of one delivery: ids, type, and the status it reports."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    event_type: str
    load_number: str | None = None
    trip_id: str | None = None
    status: str | None = None

    @property
    def wakes_payments(self) -> bool:
        """A load turned payable: its waiting payments should re-check now."""
        return self.event_type == LOAD_STATUS_CHANGED and bool(self.load_number) and is_payable(self.status)

    def summary(self) -> str:
        """One line for the Web UI."""
        what = f"load {self.load_number}" if self.load_number else f"trip {self.trip_id or '?'}"
        return f"Alvys {self.event_type}: {what} {self.status or ''}".strip()


class AlvysEventResult(BaseModel):
    """What the event did: ``woke`` (payments signalled), ``recorded`` (nothing to do) or ``gave_up``."""

    event_id: str
    event_type: str
    outcome: str
    load_number: str | None = None
    status: str | None = None
    #: Payments sent ``load_payable``.
    woken: list[str] = []
    #: Payments found waiting that could not be signalled (they ended meanwhile).
    missed: list[str] = []


@workflow.defn(name="AlvysEventWorkflow")
class AlvysEventWorkflow:
    """One Alvys webhook event (see the module's docstring)."""

    @workflow.run
    async def run(self, event: AlvysEvent) -> AlvysEventResult:
        result = AlvysEventResult(
            event_id=event.event_id,
            event_type=event.event_type,
            outcome="recorded",
            load_number=event.load_number,
            status=event.status,
        )
        if not event.wakes_payments or event.load_number is None:
            workflow.logger.info("Alvys event %s recorded: %s", event.event_id, event.summary())
            return result
        try:
            waiting = await workflow.execute_activity(
                find_waiting_payments,
                event.load_number,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=FIND_DEADLINE,
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            )
        except ActivityError:
            workflow.logger.warning(
                "Alvys event %s: could not list the payments waiting for load %s; they re-check on their timers",
                event.event_id,
                event.load_number,
            )
            return result.model_copy(update={"outcome": "gave_up"})
        wake = LoadPayable(load_number=event.load_number, status=event.status, event_id=event.event_id)
        signalled = await asyncio.gather(*(self._wake(payment, wake) for payment in waiting))
        woken = [payment for payment, ok in zip(waiting, signalled, strict=True) if ok]
        missed = [payment for payment, ok in zip(waiting, signalled, strict=True) if not ok]
        return result.model_copy(update={"outcome": "woke", "woken": woken, "missed": missed})

    async def _wake(self, payment_id: str, wake: LoadPayable) -> bool:
        handle = workflow.get_external_workflow_handle_for(PaymentWorkflow.run, payment_id)
        try:
            await handle.signal(PaymentWorkflow.load_payable, wake)
        except FailureError:  # it ended between the query and the signal: nothing to wake
            return False
        return True
