"""Vendor budgets on a task queue of several partitions, with the server's own queue rate limit.

Temporal Cloud and clusters give a task queue 4 partitions by default. freightpay sets each
vendor queue's limit on the server (``config.queue_limits``, ``UpdateTaskQueueConfig``, server
1.29+), and these tests show on a real dev server with 4 partitions what that does and does
not do:

* the limit is the server's: it is set once, read back as the effective limit (source
  ``api``), left alone when already right, and it wins over a worker asking for far more;
* the *rate* holds across the 4 partitions: over any stretch of the run no more activities
  start than the limit allows, plus the one-task burst each partition keeps;
* the *burst* does not: the server splits the limit among the partitions, each with its own
  limiter (temporalio/temporal ``service/matching/ratelimit_manager.go``), so several
  activities start at the same instant again and again, where one partition spaces them one
  interval apart. A vendor allowing one call a second (Alvys) sees that. Hence: one partition
  per vendor queue (docs/operators.md), with or without the API limit.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from config.queue_limits import QueueLimit, apply_queue_limits, describe_queue_limits
from models.queues import VendorQueue, queue_name
from tests.conftest import venv_binary
from worker import RATE_MARGIN

PARTITIONS = 4
#: The budget, as ``ALVYS_REQUESTS_PER_MINUTE`` would give it: 60 a minute, 0.98/s after the margin (worker.RATE_MARGIN).
PER_MINUTE = 60.0
RATE = PER_MINUTE * RATE_MARGIN / 60
#: Started at once; a 4-partition queue at ~1/s takes 10 to 25 s for them (uneven partitions).
ACTIVITIES = 12
#: What the worker asks for: the server's queue limit must win over it.
WORKER_RATE = 50.0
#: Slack for a loaded 2-core machine (a stalled worker may start a few queued tasks together).
TOLERANCE = 1


@dataclass
class Run:
    starts: list[float]  # seconds since the first start, sorted


@activity.defn(name="partition_probe")
async def partition_probe(n: int) -> float:
    return time.monotonic()


@workflow.defn(name="PartitionFanOut")
class PartitionFanOut:
    @workflow.run
    async def run(self, task_queue: str, count: int) -> list[float]:
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_activity(
                        partition_probe,
                        n,
                        task_queue=task_queue,
                        start_to_close_timeout=timedelta(seconds=60),
                    )
                    for n in range(count)
                )
            )
        )


@pytest.fixture(scope="module")
async def partitioned() -> AsyncIterator[Client]:
    """A dev server of its own whose task queues have 4 partitions, as on a cluster or Cloud."""
    values = (
        f"matching.numTaskqueueReadPartitions={PARTITIONS}",
        f"matching.numTaskqueueWritePartitions={PARTITIONS}",
    )
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        dev_server_log_level="error",
        ui=False,
        dev_server_extra_args=[arg for value in values for arg in ("--dynamic-config-value", value)],
    )
    async with env:
        yield env.client


def budgets(per_minute: float) -> dict[VendorQueue, float]:
    return {VendorQueue.ALVYS_CUSTOMER_PAYMENTS: per_minute, VendorQueue.TRANSPORTONE: 0}


async def effective(client: Client, base: str, per_minute: float) -> QueueLimit:
    """The budgeted queue as described once the partitions have its limit (they take it a moment
    after the update), or as it is after 5 s."""
    wanted = per_minute * RATE_MARGIN / 60
    for _ in range(50):
        shown = (await describe_queue_limits(client, base, budgets(per_minute), margin=RATE_MARGIN)).limits[0]
        if shown.effective_per_second == pytest.approx(wanted, rel=1e-3):
            break
        await asyncio.sleep(0.1)
    return shown


@pytest.mark.slow
async def test_the_limit_is_set_once_and_read_back(partitioned: Client) -> None:
    base = f"limits-{uuid.uuid4().hex[:8]}"
    first = await apply_queue_limits(partitioned, base, budgets(PER_MINUTE), margin=RATE_MARGIN)
    assert first.ok, first.problem
    paid, unbudgeted = first.limits
    assert first.updated == [paid.task_queue] == [queue_name(base, VendorQueue.ALVYS_CUSTOMER_PAYMENTS)]
    assert paid.holds and paid.partitions == PARTITIONS
    shown = await effective(partitioned, base, PER_MINUTE)
    assert shown.source == "api" and shown.effective_per_second == pytest.approx(RATE, rel=1e-3)
    assert "give this queue one partition" in paid.line()
    # A queue without a budget is not touched.
    assert unbudgeted.wanted_per_second is None and unbudgeted.source != "api"

    again = await apply_queue_limits(partitioned, base, budgets(PER_MINUTE), margin=RATE_MARGIN)
    assert again.ok and again.updated == [], "an applied limit is left alone"
    changed = await apply_queue_limits(partitioned, base, budgets(30), margin=RATE_MARGIN)
    assert changed.updated == [paid.task_queue] and changed.limits[0].holds
    # The partitions take the new rate a moment after the update.
    shown = await effective(partitioned, base, 30)
    assert shown.holds and shown.source == "api"
    assert shown.effective_per_second == pytest.approx(30 * RATE_MARGIN / 60, rel=1e-3)


@pytest.fixture(scope="module")
async def four_partition_run(partitioned: Client) -> Run:
    """12 activities started at once on a 4-partition queue limited by the server to RATE (0.98/s)."""
    base = f"fan-{uuid.uuid4().hex[:8]}"
    report = await apply_queue_limits(partitioned, base, budgets(PER_MINUTE), margin=RATE_MARGIN)
    assert report.ok and report.limits[0].holds, report.lines()
    vendor_queue = report.limits[0].task_queue
    assert (await effective(partitioned, base, PER_MINUTE)).source == "api"
    async with (
        Worker(
            partitioned,
            task_queue=base,
            workflows=[PartitionFanOut],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ),
        Worker(
            partitioned,
            task_queue=vendor_queue,
            activities=[partition_probe],
            max_task_queue_activities_per_second=WORKER_RATE,
            max_concurrent_activities=100,
        ),
    ):
        await asyncio.sleep(1)  # the pollers reach every partition
        starts: Sequence[float] = await partitioned.execute_workflow(
            PartitionFanOut.run,
            args=[vendor_queue, ACTIVITIES],
            id=f"fan-{uuid.uuid4()}",
            task_queue=base,
            execution_timeout=timedelta(seconds=120),
        )
        after = await describe_queue_limits(partitioned, base, budgets(PER_MINUTE), margin=RATE_MARGIN)
    assert after.limits[0].source == "api", "the worker's 50/s must not replace the server's limit"
    ordered = sorted(starts)
    return Run([t - ordered[0] for t in ordered])


@pytest.mark.slow
def test_on_four_partitions_the_rate_holds(four_partition_run: Run) -> None:
    """No stretch of the run holds more starts than the limit allows plus one burst per partition.

    The server's allowance on N partitions: each partition ``rate / N`` with a one-task burst, so
    at most ``rate * t + N + rate`` starts in ``t`` seconds. Without the server's limit (the
    worker's 50/s) all 12 start within a fraction of a second; at 4x the limit within ~3 s:
    both are caught.
    """
    starts = four_partition_run.starts
    assert len(starts) == ACTIVITIES
    allowance = PARTITIONS + RATE + TOLERANCE
    for i in range(len(starts)):
        for j in range(i + 1, len(starts)):
            count, seconds = j - i + 1, starts[j] - starts[i]
            assert count <= RATE * seconds + allowance, (
                f"{count} starts in {seconds:.2f}s at {RATE:.2f}/s on {PARTITIONS} partitions: {starts}"
            )
    assert starts[-1] >= (ACTIVITIES - allowance) / RATE


@pytest.mark.slow
def test_on_four_partitions_activities_still_start_together(four_partition_run: Run) -> None:
    """The failure mode the partitions bring, API limit or not: simultaneous starts after warm-up.

    On one partition at ~1/s starts are ~1 s apart once the first second has passed (its
    limiter's one-second burst only shortens the first gap); here two start within 0.25 s of
    each other later in the run, which a vendor allowing one call a second refuses.
    """
    starts = four_partition_run.starts
    together = [(a, b) for a, b in itertools.pairwise(starts) if a >= 2.0 and b - a < 0.25]
    assert together, f"no simultaneous starts after the first 2 s: {starts}"


class _Refusing:
    """A workflow service of a server older than 1.29: no task-queue configuration."""

    def __init__(self, status: RPCStatusCode) -> None:
        self.status = status

    async def describe_task_queue(self, request: Any) -> Any:
        from temporalio.api.workflowservice.v1 import DescribeTaskQueueResponse

        return DescribeTaskQueueResponse()

    async def list_task_queue_partitions(self, request: Any) -> Any:
        raise RPCError("unknown method", RPCStatusCode.UNIMPLEMENTED, b"")

    async def update_task_queue_config(self, request: Any) -> Any:
        raise RPCError("unknown method UpdateTaskQueueConfig", self.status, b"")


class _Client:
    namespace = "default"

    def __init__(self, status: RPCStatusCode) -> None:
        self.workflow_service = _Refusing(status)


@pytest.mark.parametrize(
    ("status", "says"),
    [(RPCStatusCode.UNIMPLEMENTED, ">= 1.29.0"), (RPCStatusCode.PERMISSION_DENIED, "not allowed")],
)
async def test_an_older_or_refusing_server_is_a_message_not_a_crash(status: RPCStatusCode, says: str) -> None:
    client: Any = _Client(status)
    report = await apply_queue_limits(client, "q", budgets(PER_MINUTE), margin=RATE_MARGIN)
    assert not report.ok and report.problem and says in report.problem
    assert "one partition" in report.problem and report.updated == []
    assert report.limits[0].source == "unknown" and report.limits[0].partitions is None
    assert report.lines()[-1] == report.problem
