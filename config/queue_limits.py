"""Vendor budgets as the server's own task-queue rate limit (``UpdateTaskQueueConfig``).

Why: freightpay keeps each vendor budget on that vendor's activity task queue
(``models.queues``). Until now the only source of the queue's rate was the worker option
``max_task_queue_activities_per_second``, which each poll carries to the server: the last
poller wins, so two workers (or two versions) with different settings make the limit flap,
and changing it means redeploying every worker. Temporal Server 1.29.0 added a per-queue
configuration, set through the API (``temporal task-queue config set --queue-rps-limit``),
persisted with the queue and overriding whatever the workers send. This module sets it from
the same budgets the workers use, and reads back what the server enforces.

What it does not change: the server divides a queue's limit, whichever its source (API,
worker or system), evenly among the queue's read partitions, and each partition keeps its own
limiter with a burst of one task at least (temporalio/temporal ``service/matching/
ratelimit_manager.go``). On a queue of 4 partitions a budget of 10 a minute is 4 limiters of
2.5 a minute each: the rate holds on average, but up to 4 tasks may start at once, where Alvys
allows one call per second. So a vendor queue still needs one partition; the API limit makes
the rate one setting on the server instead of one per worker. ``tests/test_partitions.py``
measures both, and docs/operators.md says what an operator sets.

Servers older than 1.29 answer ``UpdateTaskQueueConfig`` with UNIMPLEMENTED; the functions
here then say so and return, never raise: the workers' own limit still applies.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import RateLimitSource, TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import RateLimit, TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    ListTaskQueuePartitionsRequest,
    UpdateTaskQueueConfigRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from models.queues import VendorQueue, queue_name

log = logging.getLogger("freightpay.queue_limits")

#: The server version that has ``UpdateTaskQueueConfig`` (temporalio/temporal#8004, #8058).
MIN_SERVER_VERSION = "1.29.0"
#: Recorded with the limit on the server (``temporal task-queue config get`` shows it).
REASON = "freightpay vendor budget"
IDENTITY = "freightpay"
#: Two rates this close are the same (no update is sent): the server keeps a float32.
_SAME = 1e-6


@dataclass(frozen=True)
class QueueLimit:
    """One budgeted vendor queue: what freightpay wants and what the server says it enforces."""

    queue: VendorQueue
    task_queue: str
    #: The budget, requests per minute (as ``Settings.vendor_budgets``); 0: no budget.
    per_minute: float
    #: The limit freightpay sets: ``per_minute * margin / 60``; None without a budget.
    wanted_per_second: float | None
    #: The limit set through the API (None: none, or the server does not report it).
    api_per_second: float | None = None
    #: What the server enforces for the whole queue, and where it comes from
    #: (``api``, ``worker``, ``system``; ``unknown`` when the server does not say).
    effective_per_second: float | None = None
    source: str = "unknown"
    #: Read partitions of the activity queue (None: not known).
    partitions: int | None = None

    @property
    def holds(self) -> bool:
        """The server enforces at most the wanted rate, from the API setting."""
        return (
            self.wanted_per_second is not None
            and self.api_per_second is not None
            and math.isclose(self.api_per_second, self.wanted_per_second, rel_tol=_SAME, abs_tol=1e-9)
        )

    def line(self) -> str:
        """One status line: ``{queue}: budget 10/min -> 0.1583/s; server 0.1583/s (api), 1 partition``."""
        wanted = (
            "no budget"
            if self.wanted_per_second is None
            else f"budget {self.per_minute:g}/min -> {self.wanted_per_second:.4g}/s"
        )
        server = (
            "server: not reported"
            if self.effective_per_second is None
            else f"server {_rate(self.effective_per_second)} ({self.source})"
        )
        parts = (
            "" if self.partitions is None else f", {self.partitions} partition{'s' * (self.partitions != 1)}"
        )
        warning = ""
        if self.wanted_per_second is not None and self.partitions and self.partitions > 1:
            warning = (
                f"; WARNING: up to {self.partitions} tasks may start at once: give this queue one partition"
            )
        return f"{self.task_queue}: {wanted}; {server}{parts}{warning}"


@dataclass
class QueueLimitReport:
    """What :func:`apply_queue_limits` or :func:`describe_queue_limits` found and did."""

    limits: list[QueueLimit] = field(default_factory=list)
    #: Queues whose limit was set now (the others already had it, or have no budget).
    updated: list[str] = field(default_factory=list)
    #: Set when the server lacks task-queue configuration (older than 1.29) or refused.
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def lines(self) -> list[str]:
        out = [limit.line() for limit in self.limits]
        if self.updated:
            out.append("set now: " + ", ".join(self.updated))
        if self.problem:
            out.append(self.problem)
        return out


def wanted_per_second(per_minute: float, margin: float) -> float | None:
    """The queue limit for a budget: ``per_minute`` less the margin, per second (None: no budget)."""
    if per_minute <= 0:
        return None
    return per_minute * margin / 60


async def apply_queue_limits(
    client: Client,
    base: str,
    budgets: Mapping[VendorQueue, float],
    *,
    margin: float,
) -> QueueLimitReport:
    """Set the server's queue rate limit on each budgeted vendor queue (activity type); idempotent.

    A queue already at its limit is left alone (no update, its metadata unchanged); a queue
    without a budget is not touched (an operator's own limit on it, e.g. 0 to pause, stays).
    ``margin`` is ``worker.RATE_MARGIN``, so the server and the workers ask for the same rate.
    Never raises for the server's answer: a server without the API (older than 1.29), a
    refusal (permissions) or an unreachable server is :attr:`QueueLimitReport.problem`.
    """
    report = await describe_queue_limits(client, base, budgets, margin=margin)
    if report.problem:
        return report
    for index, limit in enumerate(report.limits):
        if limit.wanted_per_second is None or limit.holds:
            continue
        request = UpdateTaskQueueConfigRequest(
            namespace=client.namespace,
            identity=IDENTITY,
            task_queue=limit.task_queue,
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            update_queue_rate_limit=UpdateTaskQueueConfigRequest.RateLimitUpdate(
                rate_limit=RateLimit(requests_per_second=limit.wanted_per_second),
                reason=f"{REASON}: {limit.per_minute:g}/min x {margin:g}",
            ),
        )
        try:
            response = await client.workflow_service.update_task_queue_config(request)
        except Exception as exc:  # never the caller's crash: the workers' own limit still holds
            report.problem = _problem("set the queue rate limit", exc)
            log.warning("%s", report.problem)
            return report
        report.updated.append(limit.task_queue)
        # The config is the answer's; the effective rate reaches the partitions a moment later,
        # so a describe right now may still show the previous one.
        stored = response.config.queue_rate_limit
        api = stored.rate_limit.requests_per_second if stored.HasField("rate_limit") else None
        try:
            described = await _describe_one(client, limit)
        except Exception as exc:  # set, but not read back: say so, keep what was known
            report.problem = _problem("read the queue rate limit back", exc)
            described = limit
        report.limits[index] = dataclasses.replace(described, api_per_second=api)
    if report.updated:
        log.info("queue rate limits set on %s", ", ".join(report.updated))
    return report


async def describe_queue_limits(
    client: Client,
    base: str,
    budgets: Mapping[VendorQueue, float],
    *,
    margin: float,
) -> QueueLimitReport:
    """What the server enforces on each vendor queue (for a CLI or status line); never raises."""
    report = QueueLimitReport()
    for queue, per_minute in budgets.items():
        wanted = QueueLimit(
            queue=queue,
            task_queue=queue_name(base, queue),
            per_minute=per_minute,
            wanted_per_second=wanted_per_second(per_minute, margin),
        )
        try:
            report.limits.append(await _describe_one(client, wanted))
        except Exception as exc:
            report.limits.append(wanted)
            report.problem = report.problem or _problem("describe the task queue", exc)
    if report.problem:
        log.warning("%s", report.problem)
    return report


async def _describe_one(client: Client, limit: QueueLimit) -> QueueLimit:
    """``limit`` with what the server reports: its config, effective rate and partitions."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=limit.task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            report_config=True,
        )
    )
    api: float | None = None
    if response.HasField("config") and response.config.queue_rate_limit.HasField("rate_limit"):
        api = response.config.queue_rate_limit.rate_limit.requests_per_second
    effective: float | None = None
    source = "unknown"
    if response.HasField("effective_rate_limit"):
        reported = response.effective_rate_limit
        source = _SOURCES.get(reported.rate_limit_source, "unknown")
        if source != "unknown":
            effective = reported.requests_per_second
    return QueueLimit(
        queue=limit.queue,
        task_queue=limit.task_queue,
        per_minute=limit.per_minute,
        wanted_per_second=limit.wanted_per_second,
        api_per_second=api,
        effective_per_second=effective,
        source=source,
        partitions=await _partitions(client, limit.task_queue),
    )


async def _partitions(client: Client, task_queue: str) -> int | None:
    """How many activity partitions the server lists for the queue (None: it does not say)."""
    try:
        response = await client.workflow_service.list_task_queue_partitions(
            ListTaskQueuePartitionsRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            )
        )
    except RPCError:
        return None
    return len(response.activity_task_queue_partitions) or None


_SOURCES = {
    RateLimitSource.RATE_LIMIT_SOURCE_API: "api",
    RateLimitSource.RATE_LIMIT_SOURCE_WORKER: "worker",
    RateLimitSource.RATE_LIMIT_SOURCE_SYSTEM: "system",
}


def _rate(per_second: float) -> str:
    if math.isinf(per_second) or per_second >= 1e6:
        return "unlimited"
    return f"{per_second:.4g}/s"


def _problem(doing: str, exc: Exception) -> str:
    """One line for the operator: what failed, why, and what still keeps the budget."""
    fallback = (
        "the workers' max_task_queue_activities_per_second still applies; keep vendor queues at one partition"
    )
    if isinstance(exc, RPCError):
        if exc.status == RPCStatusCode.UNIMPLEMENTED:
            return (
                f"this Temporal server cannot {doing} (task-queue configuration needs Temporal Server "
                f">= {MIN_SERVER_VERSION}); {fallback}"
            )
        if exc.status == RPCStatusCode.PERMISSION_DENIED:
            return f"not allowed to {doing} ({exc.message}); ask for the namespace admin role or run `temporal task-queue config set` as one; {fallback}"
        return f"could not {doing}: {exc.status.name if exc.status else 'error'} {exc.message}; {fallback}"
    return f"could not {doing}: {type(exc).__name__}: {exc}; {fallback}"
