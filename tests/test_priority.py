"""Files run below live deliveries (issue 13): a live payment does not wait behind a file.

On the real dev server, through the real intake: a 40-line remittance file is started with
:func:`intake.cash.start_file`; its lines' payments (the real ``PaymentWorkflow``\\ s, children of
the real ``RemittanceWorkflow``) run up to their vendor post. Live carrier payments then arrive
through :func:`intake.start.start_payment`, each *after* the file's work is queued, in the two
places a backlog builds:

1. the vendor queue (Alvys's 10 posts a minute): the file's 40 posts wait, nobody polling,
   then the first live payment's post joins them; a worker with one activity slot starts, and
   the fake ``post_payment`` (under the real name, tests/support/fakes.py) sees the live one
   among the first, not 41st;
2. the main queue (workflow tasks): the workflow tasks that follow the file's posts (each line
   recording its answer) wait, nobody polling, then a second live payment is started; a worker
   with one workflow-task slot starts, and the live payment's first workflow task runs before
   the file's lines' tasks.

Nothing is set in workflow code: the file's parent and the live payments are started at
``FILE`` and ``LIVE`` priority (models/priority.py), and the children, their activities and
their later workflow tasks inherit, which is checked on the server's own descriptions. With
both levels equal (priorities off) each live payment comes after the whole file.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.worker import Worker

from activities.remittance import RemittanceActivities
from intake.cash import parse_file, start_file
from intake.options import IntakeOptions
from intake.start import start_payment, start_payments
from models.deposit import FileFormat
from models.priority import FILE, LIVE, LIVE_BATCH_MAX, delivery_priority
from models.queues import VendorQueue, queue_name
from tests.support.fakes import FAST, FakeVendor, recorded
from tests.support.instructions import carrier
from tests.support.payments import uid
from workflows.payment import PaymentWorkflow
from workflows.remittance import RemittanceWorkflow

pytestmark = pytest.mark.slow

LINES = 40
#: Priority orders "close to priority order, although small deviations are possible" (the
#: SDK's ``Priority``): a live payment may be passed by this many of the file's lines, no more.
SLACK = 3


def remittance_csv(trips: Sequence[str]) -> bytes:
    rows = ["target,amount,currency,payment_date,reference,trip_id"]
    rows += [f"alvys-carrier-payment,{100 + i}.00,USD,2026-11-20,ACH-{t},{t}" for i, t in enumerate(trips)]
    return ("\n".join(rows) + "\n").encode()


async def until(what: str, check: Callable[[], Awaitable[bool]], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {seconds:.0f} s")
        await asyncio.sleep(0.25)


async def describe_all(client: Client, ids: Sequence[str]) -> list[WorkflowExecutionDescription]:
    return list(await asyncio.gather(*(client.get_workflow_handle(i).describe() for i in ids)))


def priority_key(description: WorkflowExecutionDescription) -> int:
    return description.raw_description.workflow_execution_info.priority.priority_key


async def pending_activities(client: Client, ids: Sequence[str]) -> list[list[str]] | None:
    """Each workflow's pending activity types (None: not every one exists yet)."""
    try:
        found = await describe_all(client, ids)
    except Exception:
        return None
    return [[a.activity_type.name for a in d.raw_description.pending_activities] for d in found]


async def posts_waiting(client: Client, ids: Sequence[str]) -> bool:
    return await pending_activities(client, ids) == [["post_payment"]] * len(ids)


async def posts_done(client: Client, ids: Sequence[str]) -> bool:
    return await pending_activities(client, ids) == [[]] * len(ids)


async def task_started_after(client: Client, workflow_id: str, event: EventType.ValueType | None) -> datetime:
    """When the payment's first workflow task after ``event`` (None: after its start) started."""
    seen = event is None
    async for e in client.get_workflow_handle(workflow_id).fetch_history_events():
        if seen and e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            return e.event_time.ToDatetime()
        seen = seen or e.event_type == event
    raise AssertionError(f"{workflow_id}: no workflow task started after {event}")


@contextlib.asynccontextmanager
async def main_worker(client: Client, task_queue: str, data_dir: Path, **options: Any) -> AsyncIterator[None]:
    """The workflows and the file reader on the main queue, with no cache, so never sticky: every
    workflow task goes through the queue (where priority orders it), as after a worker restart."""
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[RemittanceWorkflow, PaymentWorkflow],
        activities=[RemittanceActivities(data_dir).read_lines],
        max_cached_workflows=0,
        **options,
    ):
        yield


async def test_live_payments_started_behind_a_files_lines_are_dispatched_before_them(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    vendor = FakeVendor()
    vendor.post.then(recorded(target_status="Completed", fully_paid=True))
    raw = remittance_csv([f"T-{uid()}" for _ in range(LINES)])

    # The file, through the real intake; its 40 payments run up to their post, which waits.
    answer = await start_file(
        client, raw, FileFormat.CSV, parse_file(raw, FileFormat.CSV, IntakeOptions()),
        file_name="big.csv", task_queue=task_queue, policy=FAST, data_dir=data_dir,
    )  # fmt: skip
    lines: list[str] = answer["workflow_ids"]
    async with main_worker(client, task_queue, data_dir):
        await until("all the file's posts waiting", lambda: posts_waiting(client, lines))
        # Then a live delivery: its post joins the vendor queue behind the file's 40.
        first = await start_payment(
            client, carrier(f"T-{uid()}", "75.00"), task_queue=task_queue, policy=FAST
        )
        await until("the live post waiting", lambda: posts_waiting(client, [first]))

    # The priorities as the server recorded them: the file's parent and the live payment as
    # started, each line's payment inheriting the parent's, each waiting post its payment's.
    parent = await client.get_workflow_handle(answer["remittance_workflow_id"]).describe()
    children = await describe_all(client, lines)
    (live,) = await describe_all(client, [first])
    assert priority_key(parent) == FILE.priority_key
    assert [priority_key(c) for c in children] == [FILE.priority_key] * LINES
    assert priority_key(live) == LIVE.priority_key
    # An activity's own priority stays unset (0: inherit from its workflow).
    assert {d.raw_description.pending_activities[0].priority.priority_key for d in [*children, live]} == {0}

    # 1. The vendor queue: one slot, so the fake post sees the backlog in dispatch order.
    posts = queue_name(task_queue, VendorQueue.ALVYS_CARRIER_PAYMENTS)
    async with Worker(
        client, task_queue=posts, activities=[vendor.post_payment], max_concurrent_activities=1
    ):
        await until("every post made", lambda: posts_done(client, [*lines, first]))
        order = [c.instruction.workflow_id for c in vendor.post.calls]
        assert sorted(order) == sorted([*lines, first])
        assert order.index(first) <= SLACK, (
            f"the live post was dispatched {order.index(first) + 1}th of {len(order)}"
        )

        # 2. The main queue: the workflow tasks after the file's posts wait (no main worker);
        # a second live delivery's first workflow task is queued behind them.
        second = await start_payment(
            client, carrier(f"T-{uid()}", "76.00"), task_queue=task_queue, policy=FAST
        )
        async with main_worker(client, task_queue, data_dir, max_concurrent_workflow_tasks=1):
            everyone = [*lines, first, second]
            results = (client.get_workflow_handle_for(PaymentWorkflow.run, i).result() for i in everyone)
            await asyncio.wait_for(asyncio.gather(*results), timeout=180)
            await client.get_workflow_handle_for(
                RemittanceWorkflow.run, answer["remittance_workflow_id"]
            ).result()

    live_started = await task_started_after(client, second, None)
    posted = EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
    lines_started = await asyncio.gather(*(task_started_after(client, i, posted) for i in lines))
    ahead = sum(started < live_started for started in lines_started)
    assert ahead <= SLACK, f"{ahead} of the file's {LINES} workflow tasks ran before the live payment's first"


def test_a_delivery_of_a_few_is_live_and_a_batch_is_a_file() -> None:
    assert delivery_priority(1) == delivery_priority(LIVE_BATCH_MAX) == LIVE
    assert delivery_priority(LIVE_BATCH_MAX + 1) == FILE


async def test_a_batch_sent_to_a_payment_route_runs_at_a_files_priority(
    client: Client, task_queue: str
) -> None:
    """An ERP's JSON array of many payments is bulk work: it does not jump ahead of live ones."""
    few = [carrier(f"T-{uid()}", "10.00") for _ in range(2)]
    batch = [carrier(f"T-{uid()}", "10.00") for _ in range(LIVE_BATCH_MAX + 1)]
    few_ids = await start_payments(client, few, task_queue=task_queue, policy=FAST)
    batch_ids = await start_payments(client, batch, task_queue=task_queue, policy=FAST)
    assert {priority_key(d) for d in await describe_all(client, few_ids)} == {LIVE.priority_key}
    assert {priority_key(d) for d in await describe_all(client, batch_ids)} == {FILE.priority_key}
    for workflow_id in few_ids + batch_ids:  # no worker polls this queue: end them here
        await client.get_workflow_handle(workflow_id).terminate("test over")
