"""Which task queue each vendor call runs on: how vendor rate limits hold across all workers.

Each rate-limited vendor endpoint gets its own activity task queue, and every worker polls it
with ``max_task_queue_activities_per_second`` set from the vendor's budget. Temporal enforces
that rate on the task queue itself, server-side, so the budget holds however many workers
run, on however many machines, and retries are paced by it too. Each activity makes at most
one call to any one endpoint, so activities per second on a queue bound calls per second on
its endpoint.

======================================  ==================================  ====================
queue (``{base}`` = FREIGHTPAY_TASK_QUEUE)  carries                             default budget
======================================  ==================================  ====================
``{base}``                              workflows, reading remittance files  none
``{base}-alvys-customer-payments``      POST invoices/customer-payments      10/min (published)
``{base}-alvys-carrier-payments``       POST invoices/carrier-payments       10/min (published)
``{base}-alvys-reads``                  GET invoices, loads/ and trips/search  5/min (the strictest
                                                                             read rule: GET invoices)
``{base}-transportone``                 TransportOne's payments              none published
======================================  ==================================  ====================
"""

from __future__ import annotations

from enum import StrEnum

from models.payment import Target


class VendorQueue(StrEnum):
    ALVYS_CUSTOMER_PAYMENTS = "alvys-customer-payments"
    ALVYS_CARRIER_PAYMENTS = "alvys-carrier-payments"
    ALVYS_READS = "alvys-reads"
    TRANSPORTONE = "transportone"


def vendor_queue(target: Target, writes: bool) -> VendorQueue:
    """The queue of a step's vendor call: the payment POST (``writes``) or a read."""
    if target is Target.TRANSPORTONE_PAYMENT:
        return VendorQueue.TRANSPORTONE
    if not writes:
        return VendorQueue.ALVYS_READS
    if target is Target.ALVYS_CUSTOMER_PAYMENT:
        return VendorQueue.ALVYS_CUSTOMER_PAYMENTS
    return VendorQueue.ALVYS_CARRIER_PAYMENTS


def queue_name(base: str, queue: VendorQueue) -> str:
    return f"{base}-{queue.value}"


def vendor_budgets(
    *, alvys_posts_per_minute: float, alvys_reads_per_minute: float, transportone_per_minute: float
) -> dict[VendorQueue, float]:
    """Requests per minute for each vendor queue (0: no limit), from the vendors' settings."""
    return {
        VendorQueue.ALVYS_CUSTOMER_PAYMENTS: alvys_posts_per_minute,
        VendorQueue.ALVYS_CARRIER_PAYMENTS: alvys_posts_per_minute,
        VendorQueue.ALVYS_READS: alvys_reads_per_minute,
        VendorQueue.TRANSPORTONE: transportone_per_minute,
    }


def inline_queues(budgets: dict[VendorQueue, float]) -> list[VendorQueue]:
    """The vendor queues without a budget: their steps run on the payment's own task queue
    (``PaymentPolicy.inline_queues``), where the worker takes them at once (eager dispatch)."""
    return [queue for queue, per_minute in budgets.items() if per_minute <= 0]
