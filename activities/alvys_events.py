"""The Alvys event workflow's one activity: which payments wait for a load to become payable.

Why an activity: it asks Temporal's visibility (a List Filter), which a workflow cannot do
itself. It runs on the main task queue, uses the worker's own Temporal client
(``activity.client()``) and no vendor: it costs no Alvys call.
"""

from __future__ import annotations

from temporalio import activity

#: The payment workflow's type name, for the List Filter (intake.start names it the same way).
PAYMENT_WORKFLOW = "PaymentWorkflow"
#: At most this many payments are woken by one event (one load rarely has more than a few).
MAX_WAITING = 1000


def quote(value: str) -> str:
    """A List Filter string literal: ``'...'`` with backslashes and quotes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def waiting_query(load_number: str) -> str:
    """The payments of ``load_number`` waiting for it to become payable."""
    return (
        f"WorkflowType = '{PAYMENT_WORKFLOW}' AND PaymentStatus = 'WaitingForPayable' "
        f"AND LoadNumber = {quote(load_number)}"
    )


@activity.defn(name="find_waiting_payments")
async def find_waiting_payments(load_number: str) -> list[str]:
    """Workflow ids of the running payments on ``load_number`` in WaitingForPayable.

    Visibility is eventually consistent: a payment that entered WaitingForPayable a moment ago
    may be missed; it then re-checks at its own timer, as it would have without the event.
    """
    found: list[str] = []
    query = waiting_query(load_number) + " AND ExecutionStatus = 'Running'"
    async for execution in activity.client().list_workflows(query, limit=MAX_WAITING):
        found.append(execution.id)
    return sorted(set(found))
