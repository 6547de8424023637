"""Bulk actions: ``freightpay payments retry|approve|cancel|resolve --where "<visibility query>"``.

The matches are listed first (from Temporal visibility, ANDed with ``WorkflowType =
'PaymentWorkflow'`` so deposits and files never match) and acted on only with ``--yes`` or
after a confirmation at a terminal.

Why updates, not signals: each payment gets the very update the one-payment commands send
(``send_update``, the same payload and the same validators), so a payment that does not fit
the action refuses it up front with the reason, and the command can count what was applied
and what was refused. A signal is accepted whether or not it fits, and its refusal is only
recorded in the payment's story, where nobody running a bulk action would see it.

Why a rate: each accepted action makes its payment call the vendor again (a retry validates
and posts), and Alvys allows about one request a second; a burst of hundreds of updates
would also crowd the workers' task queue in front of the payments already under way. The
updates are paced at ``--rate`` a second, with at most ``IN_FLIGHT`` waiting for an answer.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from config.temporal import execution_status_label
from intake.start import PAYMENT_WORKFLOW
from models.state import ActionAnswer, OperatorInput
from workflows import search_attributes as sa
from workflows.payment import PaymentWorkflow

console = Console()
err = Console(stderr=True)

#: The exit codes of cli.payments that a bulk action uses.
EXIT_REFUSED: Final = 1
EXIT_INPUT: Final = 2
EXIT_UNREACHABLE: Final = 3

DEFAULT_RATE: Final = 5.0
#: Updates waiting for their answer at once, whatever the rate.
IN_FLIGHT: Final = 8
#: How long one update may wait for its answer (a payment whose worker is down never answers).
UPDATE_TIMEOUT: Final = 60.0
#: Rows of the match table; the rest are counted.
SHOWN: Final = 20

#: Closed by Temporal itself, not by the payment's own code: the PaymentStatus is the last it had.
CLOSED_BY_TEMPORAL = frozenset(
    {
        WorkflowExecutionStatus.TERMINATED,
        WorkflowExecutionStatus.CANCELED,
        WorkflowExecutionStatus.TIMED_OUT,
        WorkflowExecutionStatus.FAILED,
    }
)

WHERE = typer.Option(
    None,
    "--where",
    help="act on every payment this visibility query matches (instead of WORKFLOW_ID), "
    "e.g. \"PaymentStatus = 'NeedsReview' AND LoadNumber STARTS_WITH 'L-10'\"",
)
DRY_RUN = typer.Option(False, "--dry-run", help="with --where: list the matches, act on none")
YES = typer.Option(False, "--yes", help="with --where: act without asking")
RATE = typer.Option(
    None, "--rate", min=0.1, max=100.0, help=f"with --where: updates a second (default {DEFAULT_RATE:g})"
)


class Refused(Exception):
    """The payment refused the action; the message says why."""


async def closed_refusal(client: Client, workflow_id: str) -> str:
    """Why a closed payment takes no action (from its description: no worker is needed)."""
    description = await client.get_workflow_handle(workflow_id).describe()
    status = description.typed_search_attributes.get(sa.PAYMENT_STATUS) or "closed"
    execution = description.status
    if execution in CLOSED_BY_TEMPORAL:
        return (
            f"the payment was closed by Temporal: {execution_status_label(execution)} "
            f"(its last status: {status})"
        )
    return f"the payment is already {status}"


async def send_update(client: Client, workflow_id: str, action: str, payload: OperatorInput) -> ActionAnswer:
    """The operator's update, as every command sends it; :class:`Refused` when the payment refuses.

    A failure that is not the payment's refusal (an update failed otherwise, Temporal's own
    errors, a payment that does not exist) is raised as it came.
    """
    handle = client.get_workflow_handle_for(PaymentWorkflow.run, workflow_id)
    try:
        # By name, not PaymentWorkflow.approve etc.: the SDK types an async update declared
        # with ``@workflow.update(name=...)`` as returning its coroutine, so mypy would take
        # the typed form's answer for a Coroutine rather than an ActionAnswer.
        answer: ActionAnswer = await handle.execute_update(action, payload, result_type=ActionAnswer)
        return answer
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == "ActionRefused":
            raise Refused(cause.message) from None
        raise
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND or "workflow execution already completed" in str(exc):
            raise Refused(await closed_refusal(client, workflow_id)) from None
        raise


def update_failure(exc: WorkflowUpdateFailedError) -> str:
    """An update's failure in words (its cause's message)."""
    cause = exc.cause
    return getattr(cause, "message", None) or str(cause or exc)


@dataclass(frozen=True)
class Match:
    """One payment the query matched, from its visibility record."""

    workflow_id: str
    status: str = ""
    amount: float | None = None
    load: str = ""
    trip: str = ""
    invoice: str = ""

    @classmethod
    def of(cls, execution: WorkflowExecution) -> Match:
        attrs = execution.typed_search_attributes
        return cls(
            workflow_id=execution.id,
            status=attrs.get(sa.PAYMENT_STATUS) or "",
            amount=attrs.get(sa.PAYMENT_AMOUNT),
            load=attrs.get(sa.LOAD_NUMBER) or "",
            trip=attrs.get(sa.TRIP_ID) or "",
            invoice=attrs.get(sa.INVOICE_NUMBER) or "",
        )


@dataclass
class Tally:
    """What a bulk action did: applied (accepted), refused (by the payment), failed (anything else)."""

    matched: int
    applied: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        """The last line a bulk command prints."""
        return (
            f"bulk: matched={self.matched} applied={self.applied} "
            f"refused={self.refused.total()} failed={self.failed.total()}"
        )

    def reasons(self) -> list[str]:
        """The refusals' and failures' reasons, grouped, most frequent first."""
        return [f"  refused {n}: {why}" for why, n in self.refused.most_common()] + [
            f"  failed {n}: {why}" for why, n in self.failed.most_common()
        ]

    def exit_code(self) -> int:
        if self.failed:
            return EXIT_UNREACHABLE
        return EXIT_REFUSED if self.refused else 0


def bulk_query(where: str) -> str:
    """The List Filter sent: the operator's query as given, for payments only."""
    return f"WorkflowType = '{PAYMENT_WORKFLOW}' AND ({where})"


async def find(client: Client, where: str) -> list[Match]:
    """Every payment the query matches, newest first, once each (visibility may list a run twice)."""
    matches: dict[str, Match] = {}
    async for execution in client.list_workflows(bulk_query(where)):
        matches.setdefault(execution.id, Match.of(execution))
    return list(matches.values())


def match_table(query: str, matches: list[Match], shown: int = SHOWN) -> Table:
    """The matches for a person: the first ``shown`` rows, then how many more."""
    table = Table(title=f"{len(matches)} payment(s) match: {query}", title_justify="left")
    for column in ("workflow id", "status", "amount", "load / trip / invoice"):
        table.add_column(column, overflow="fold")
    for match in matches[:shown]:
        where = " / ".join(x for x in (match.load, match.trip, match.invoice) if x)
        amount = f"{match.amount:,.2f}" if match.amount is not None else ""
        table.add_row(match.workflow_id, match.status, amount, where)
    if len(matches) > shown:
        table.caption = f"and {len(matches) - shown} more"
        table.caption_justify = "left"
    return table


class Pacer:
    """Token pacing: one token every ``1 / rate`` seconds, the first at once, no bursts."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = asyncio.get_running_loop().time()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


async def _one(client: Client, match: Match, action: str, payload: OperatorInput, tally: Tally) -> None:
    try:
        await asyncio.wait_for(send_update(client, match.workflow_id, action, payload), UPDATE_TIMEOUT)
        tally.applied += 1
    except Refused as refusal:
        tally.refused[str(refusal)] += 1
    except WorkflowUpdateFailedError as exc:
        tally.failed[f"{action} failed: {update_failure(exc)}"] += 1
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            tally.failed["no such payment"] += 1
        else:
            tally.failed[f"Temporal: {exc.message or exc.status}"] += 1
    except TimeoutError:
        tally.failed[
            f"no answer within {UPDATE_TIMEOUT:g}s (is a worker running?); it may still be taken"
        ] += 1
    except Exception as exc:
        tally.failed[f"{type(exc).__name__}: {exc}"] += 1


async def apply(
    client: Client,
    matches: Iterable[Match],
    action: str,
    payload: OperatorInput,
    *,
    rate: float = DEFAULT_RATE,
    in_flight: int = IN_FLIGHT,
    progress: Progress | None = None,
) -> Tally:
    """Send ``action`` with ``payload`` to every match at ``rate`` a second, ``in_flight`` at most at once."""
    todo = list(matches)
    tally = Tally(matched=len(todo))
    pacer = Pacer(rate)
    task = progress.add_task(action, total=len(todo)) if progress else None
    pending: Iterator[Match] = iter(todo)

    async def sender() -> None:
        for match in pending:  # one shared iterator: each match is taken by one sender
            await pacer.wait()
            await _one(client, match, action, payload, tally)
            if progress is not None and task is not None:
                progress.advance(task)

    await asyncio.gather(*(sender() for _ in range(max(1, min(in_flight, len(todo))))))
    return tally


def progress_bar() -> Progress:
    """The progress bar, on stderr (stdout keeps the table and the counts)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    )


def check_target(
    workflow_id: str | None, where: str | None, dry_run: bool, yes: bool, rate: float | None
) -> None:
    """Exactly one of WORKFLOW_ID and ``--where``; the bulk options only with ``--where``."""
    if workflow_id is not None and where is not None:
        err.print("[red]give a WORKFLOW_ID or --where, not both[/]")
        raise typer.Exit(EXIT_INPUT)
    if workflow_id is None and where is None:
        err.print("[red]give a WORKFLOW_ID, or --where QUERY for every payment it matches[/]")
        raise typer.Exit(EXIT_INPUT)
    if where is not None and not where.strip():
        err.print("[red]--where:[/] the query is empty")
        raise typer.Exit(EXIT_INPUT)
    if where is None and (dry_run or yes or rate is not None):
        err.print("[red]--dry-run, --yes and --rate go with --where[/]")
        raise typer.Exit(EXIT_INPUT)


def _finish(tally: Tally) -> int:
    for line in tally.reasons():
        typer.echo(line)
    typer.echo(tally.line())
    return tally.exit_code()


async def run(
    client: Client,
    action: str,
    payload: OperatorInput,
    where: str,
    *,
    dry_run: bool = False,
    yes: bool = False,
    rate: float | None = None,
) -> int:
    """The bulk command: list the matches, ask (or not), act; answers the exit code."""
    query = bulk_query(where)
    try:
        matches = await find(client, where)
    except RPCError as exc:
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:
            err.print(f"Temporal refused the query {query}: {exc.message}", markup=False, highlight=False)
            return EXIT_INPUT
        err.print(f"Temporal could not list the matches: {exc.message}", markup=False, highlight=False)
        return EXIT_UNREACHABLE
    console.print(match_table(query, matches))
    nothing = Tally(matched=len(matches))
    if not matches or dry_run:
        return _finish(nothing)
    if not yes:
        if not sys.stdin.isatty():
            err.print(f"not acting on {len(matches)} payment(s): no terminal to confirm at; pass --yes")
            _finish(nothing)
            return EXIT_INPUT
        if not typer.confirm(f"{action} {len(matches)} payment(s)?", default=False, err=True):
            err.print("nothing was done")
            return _finish(nothing)
    with progress_bar() as progress:
        tally = await apply(client, matches, action, payload, rate=rate or DEFAULT_RATE, progress=progress)
    return _finish(tally)
