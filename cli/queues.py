"""``freightpay queues limits [--apply]``: the vendor queues' rate limits as the server enforces them.

Shows, for each vendor queue (``models.queues``) of ``FREIGHTPAY_TASK_QUEUE``, the budget from
the environment (``ALVYS_REQUESTS_PER_MINUTE`` ...), the limit the server enforces and where it
comes from (``api``: set with ``--apply`` or ``temporal task-queue config set``; ``worker``: the
workers' ``max_task_queue_activities_per_second``; ``system``), and the queue's partitions.
``--apply`` sets each budgeted queue's limit on the server (``config.queue_limits``; Temporal
Server 1.29+), leaving queues already right alone. ``make run`` does the same for its stack.

Exit codes, as for the other commands: 0 done; 1 the server refused or lacks the API (the
message says what still keeps the budget); 3 Temporal unreachable.
"""

from __future__ import annotations

import asyncio

import typer
from temporalio.client import Client

from cli.common import EXIT_REFUSED, run_with_temporal
from config.queue_limits import QueueLimitReport, apply_queue_limits, describe_queue_limits
from config.settings import get_settings
from config.temporal import connect

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="The vendor task queues: their rate limits on the Temporal server.",
)


async def queue_limits(client: Client, *, apply: bool) -> QueueLimitReport:
    """Describe (or, with ``apply``, set) the limits of this environment's vendor queues."""
    from worker import RATE_MARGIN  # the workers' own margin

    settings = get_settings()
    action = apply_queue_limits if apply else describe_queue_limits
    return await action(client, settings.freightpay.task_queue, settings.vendor_budgets(), margin=RATE_MARGIN)


def apply_on(target_host: str) -> QueueLimitReport:
    """For ``make run`` (cli/stack.py): set the limits on the stack's server."""

    async def work() -> QueueLimitReport:
        return await queue_limits(await connect(target_host=target_host), apply=True)

    return asyncio.run(work())


@app.command()
def limits(
    apply: bool = typer.Option(False, "--apply", help="set each budgeted queue's limit on the server"),
) -> None:
    """Show the vendor queues' rate limits (budget, what the server enforces, partitions)."""
    report = run_with_temporal(lambda client: queue_limits(client, apply=apply))
    for line in report.lines():
        typer.echo(line)
    raise typer.Exit(0 if report.ok else EXIT_REFUSED)
