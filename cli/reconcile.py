"""``freightpay reconcile schedule|run``: settled payments checked against the vendors.

``schedule`` creates (or updates) the Temporal Schedule ``freightpay-reconcile``, which runs
``ReconcileWorkflow`` on the main task queue every ``--every`` (default 24 h), each run over
the interval before its action time. ``run`` starts one reconciliation now; with ``--wait`` it
prints the result's one-line form last. ``make run`` creates the schedule when it is missing
(:func:`ensure_schedule`).

Exit codes, as for ``freightpay payments``: 0 done; 2 bad input; 3 Temporal unreachable.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import typer
from rich.console import Console
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
)
from temporalio.common import WorkflowIDConflictPolicy

from cli.common import run_with_temporal
from config.settings import get_settings
from config.temporal import connect
from models import reconcile
from models.priority import FILE
from models.reconcile import ReconcileInput, ReconcileResult, Window
from workflows.reconcile import ReconcileWorkflow

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Check settled payments against the vendors: a daily Schedule, or one run now.",
)
console = Console()
err = Console(stderr=True)
EXIT_INPUT, EXIT_UNREACHABLE = 2, 3
_T = TypeVar("_T")
_DURATION = re.compile(r"(\d+)([dhms])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
#: Missed actions (Temporal down, the schedule paused) are caught up for this long.
CATCHUP = timedelta(days=7)


def _run(work: Callable[[Client], Awaitable[_T]]) -> _T:
    return run_with_temporal(work)


def parse_every(text: str) -> timedelta:
    """``24h``, ``12h``, ``1d``, ``90m``, ``1h30m``: the schedule's interval (at least a minute)."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"{text!r} is not a duration like 24h, 12h, 1d, 90m")
    every = timedelta(**{_UNITS[u]: int(n) for n, u in parts})
    if every < timedelta(minutes=1):
        raise ValueError(f"{text!r} is shorter than a minute")
    return every


def parse_time(text: str, option: str) -> datetime:
    """An ISO 8601 time (``2026-12-01``, ``2026-12-01T00:00Z``); without an offset, UTC."""
    try:
        return reconcile.utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise ValueError(f"{option} {text!r} is not an ISO 8601 time (e.g. 2026-12-01T00:00Z)") from None


def reconcile_schedule(task_queue: str, every: timedelta) -> Schedule:
    """The schedule: ``ReconcileWorkflow`` every ``every``, each run over the ``every`` before it."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReconcileWorkflow.run,
            ReconcileInput(window=every),
            id=reconcile.SCHEDULE_ID,  # Temporal appends the action time to each run's id
            task_queue=task_queue,
            static_summary="Reconciliation of the settled payments against the vendors",
            priority=FILE,  # bulk work, behind live payments (models/priority.py)
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP),
    )


async def ensure_schedule(
    client: Client, task_queue: str, every: timedelta = reconcile.DEFAULT_WINDOW, *, replace: bool = False
) -> str:
    """Create the schedule; when it exists, update it (``replace``) or leave it. Says which."""
    schedule = reconcile_schedule(task_queue, every)
    try:
        await client.create_schedule(reconcile.SCHEDULE_ID, schedule)
        return "created"
    except ScheduleAlreadyRunningError:
        if not replace:
            return "kept"
    await client.get_schedule_handle(reconcile.SCHEDULE_ID).update(
        lambda _: ScheduleUpdate(schedule=schedule)
    )
    return "updated"


def ensure_schedule_on(target_host: str) -> str:
    """For ``make run`` (cli/stack.py): the schedule on the stack's server, left as it is if it exists."""

    async def work() -> str:
        client = await connect(target_host=target_host)
        return await ensure_schedule(client, get_settings().freightpay.task_queue)

    return asyncio.run(work())


@app.command()
def schedule(
    every: str = typer.Option("24h", "--every", help="the interval: 24h, 12h, 1d, 90m, ..."),
) -> None:
    """Create or update the Schedule freightpay-reconcile (runs on the main task queue)."""
    try:
        interval = parse_every(every)
    except ValueError as exc:
        err.print(f"[red]--every:[/] {exc}")
        raise typer.Exit(EXIT_INPUT) from None
    task_queue = get_settings().freightpay.task_queue
    done = _run(lambda client: ensure_schedule(client, task_queue, interval, replace=True))
    console.print(
        f"schedule {reconcile.SCHEDULE_ID} {done}: ReconcileWorkflow every {every} on task queue {task_queue}"
    )


@app.command()
def run(
    since: str | None = typer.Option(None, "--since", help="ISO time (default: 24 h before --until)"),
    until: str | None = typer.Option(None, "--until", help="ISO time (default: now)"),
    wait: bool = typer.Option(False, "--wait", help="wait for the result and print its one-line form"),
) -> None:
    """Start one reconciliation now; prints its workflow id (and, with --wait, the result last)."""
    try:
        end = parse_time(until, "--until") if until else datetime.now(UTC).replace(microsecond=0)
        start = parse_time(since, "--since") if since else end - reconcile.DEFAULT_WINDOW
        window = Window(since=start, until=end)
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(EXIT_INPUT) from None
    task_queue = get_settings().freightpay.task_queue

    async def work(client: Client) -> ReconcileResult | None:
        handle = await client.start_workflow(
            ReconcileWorkflow.run,
            ReconcileInput(since=window.since, until=window.until),
            id=window.stem,
            task_queue=task_queue,
            # The same window again while it runs: that run (a finished one is run again).
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"Reconciliation {window.text()}",
            priority=FILE,  # bulk work, behind live payments (models/priority.py)
        )
        typer.echo(handle.id)
        return await handle.result() if wait else None

    result = _run(work)
    if result is not None:
        typer.echo(result.line())
