"""Task priority: files run below live deliveries on the shared task queues.

A 10,000-line remittance file or a big lockbox deposit shares the task queues (the main
queue's workflow tasks, each vendor queue's rate-limited calls) with single payments that
arrive live. Queues are first in, first out, so a MyCarrier webhook arriving behind a file
would wait for the whole file. Temporal's task priority (``priority_key``: 1 to 5, lower runs
first, 3 when unset) orders a queue's backlog instead:

* :data:`LIVE` (2): single deliveries: the payment routes and webhooks of the ingress (Alvys
  bodies, MyCarrier, TransportOne, Alvys events), ``starter.py`` and ``freightpay payments
  submit`` (intake's :func:`~intake.start.start_payment` default);
* :data:`FILE` (4): remittance files (the ``RemittanceWorkflow``) and bank, lockbox and
  factor files (each ``DepositWorkflow``); and other bulk work: a JSON array of more than
  :data:`LIVE_BATCH_MAX` payments sent to a payment route (an ERP's batch is a file by
  another name, :func:`delivery_priority`), and reconciliation runs (``freightpay reconcile
  run`` and its schedule: they read the vendor's budget that deposits and live payments share).

Only the workflows started from outside are given a priority. Their child ``PaymentWorkflow``\\ s,
their activities and their continue-as-new runs inherit it from Temporal itself, so the
workflow code sets none (nothing changes in recorded histories). Levels 1 and 5 are left free
(an operator's urgent retry, a backfill). Priority orders a backlog; it never pauses a file:
a file's lines still run whenever no live payment is waiting.

The server must honour it: Temporal 1.31 and later (the bundled dev server is 1.32) do by
default; 1.30 needs ``matching.useNewMatcher=true`` (README, "Cash application").
"""

from __future__ import annotations

from temporalio.common import Priority

#: Single deliveries (webhooks, the payment routes, the starter's single payments): first.
LIVE = Priority(priority_key=2)
#: Files (remittance CSV lines, lockbox and bank deposits): after whatever live payment waits.
FILE = Priority(priority_key=4)
#: The most payments one delivery (a JSON array) may hold and still count as live.
LIVE_BATCH_MAX = 10


def delivery_priority(payments: int) -> Priority:
    """A delivery of ``payments`` payments: live if it is a few, a file's priority if a batch."""
    return LIVE if payments <= LIVE_BATCH_MAX else FILE
