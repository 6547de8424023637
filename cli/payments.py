"""``freightpay payments ...``: the operator's commands, over Temporal visibility, queries and updates.

Exit codes, for scripts: 0 done; 1 refused by the payment (the message says why); 2 bad
input; 3 Temporal unreachable; 4 no such payment; 5 refused by ``submit``: a repeat with other
facts (a payment with the same business key was already accepted with different facts; nothing
was started).

``approve|retry|cancel|resolve --where QUERY`` act on every payment the query matches, through
cli/bulk.py (the same updates; exit 1 some refused, 2 not confirmed or a query Temporal
refuses, 3 some failed).

``list`` and ``show`` give Temporal's own execution status (Running, Completed, Canceled,
Terminated, ...) beside the PaymentStatus: a payment terminated in Temporal keeps the
PaymentStatus it last had (no code runs at a termination), and a closed one offers no actions.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from cli import bulk
from cli.bulk import CLOSED_BY_TEMPORAL
from cli.common import run_with_temporal, who
from config.temporal import execution_status_label
from intake.start import PAYMENT_WORKFLOW
from models.state import (
    ActionAnswer,
    ApproveInput,
    CancelInput,
    OperatorInput,
    PaymentResult,
    PaymentState,
    PaymentStatus,
    ResolveInput,
    RetryInput,
)
from workflows import search_attributes as sa
from workflows.payment import PaymentWorkflow

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Find, inspect and steer payments.")
console = Console()
err = Console(stderr=True)

EXIT_REFUSED, EXIT_INPUT, EXIT_UNREACHABLE, EXIT_NOT_FOUND, EXIT_CONFLICT = 1, 2, 3, 4, 5
_T = TypeVar("_T")


def _run(work: Callable[[Client], Awaitable[_T]]) -> _T:
    return run_with_temporal(work)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def execution_status(status: WorkflowExecutionStatus | None) -> str:
    """Temporal's execution status for a person: ``Running``, ``Completed``, ``Terminated``, ..."""
    return execution_status_label(status) if status else ""


def visibility_query(
    status: str | None,
    load: str | None,
    source: str | None,
    trip: str | None = None,
    flag: str | None = None,
) -> str:
    """The List Filter for the options given (the same text works in the Web UI's filter box)."""
    parts = [f"WorkflowType = {_quote(PAYMENT_WORKFLOW)}"]
    if status:
        known = {s.value.lower(): s.value for s in PaymentStatus}
        if status.lower() not in known:
            err.print(f"[red]--status:[/] unknown status {status!r}; one of {', '.join(known.values())}")
            raise typer.Exit(EXIT_INPUT)
        parts.append(f"PaymentStatus = {_quote(known[status.lower()])}")
    if load:
        parts.append(f"LoadNumber = {_quote(load)}")
    if trip:
        parts.append(f"TripId = {_quote(trip)}")
    if source:
        parts.append(f"PaymentSource = {_quote(source)}")
    if flag:
        parts.append(f"{sa.PAYMENT_FLAGS.name} = {_quote(flag)}")
    return " AND ".join(parts)


def _row(execution: WorkflowExecution) -> dict[str, Any]:
    """One payment of the list, from its visibility record."""
    attrs = execution.typed_search_attributes
    return {
        "workflow_id": execution.id,
        "status": attrs.get(sa.PAYMENT_STATUS) or "",
        "execution_status": execution_status(execution.status),
        "source": attrs.get(sa.PAYMENT_SOURCE) or "",
        "target": attrs.get(sa.PAYMENT_TARGET) or "",
        "load": attrs.get(sa.LOAD_NUMBER) or "",
        "trip": attrs.get(sa.TRIP_ID) or "",
        "invoice": attrs.get(sa.INVOICE_NUMBER) or "",
        "reference": attrs.get(sa.PAYMENT_REFERENCE) or "",
        "amount": attrs.get(sa.PAYMENT_AMOUNT),
        "started": execution.start_time.isoformat() if execution.start_time else "",
        "flags": list(attrs.get(sa.PAYMENT_FLAGS) or []),
    }


@app.command("list")
def list_payments(
    status: str | None = typer.Option(None, "--status", help="e.g. NeedsReview, AwaitingApproval, Paid"),
    load: str | None = typer.Option(None, "--load", help="Alvys load number"),
    trip: str | None = typer.Option(None, "--trip", help="Alvys trip id"),
    source: str | None = typer.Option(None, "--source", help="alvys-customer, alvys-carrier, mycarrier, ..."),
    flag: str | None = typer.Option(None, "--flag", help="payments carrying this flag (PaymentFlags)"),
    limit: int = typer.Option(50, "--limit", min=1, max=10000),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line instead of a table"),
) -> None:
    """List payments from Temporal visibility, newest first."""
    query = visibility_query(status, load, source, trip, flag)

    async def work(client: Client) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        try:
            async for execution in client.list_workflows(query, limit=limit):
                rows.append(_row(execution))
        except RPCError as exc:
            # e.g. a namespace without PaymentFlags registered
            if exc.status == RPCStatusCode.INVALID_ARGUMENT:
                err.print(f"[red]Temporal refused the filter[/] {query}: {exc.message}")
                raise typer.Exit(EXIT_INPUT) from None
            raise
        return rows

    rows = _run(work)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    table = Table(title=f"{len(rows)} payment(s): {query}", title_justify="left")
    for column in (
        "workflow id",
        "status",
        "temporal",
        "amount",
        "target",
        "load / trip / invoice",
        "reference",
        "started",
    ):
        table.add_column(column, overflow="fold")
    for row in rows:
        where = " / ".join(x for x in (row["load"], row["trip"], row["invoice"]) if x)
        amount = f"{row['amount']:,.2f}" if isinstance(row["amount"], float) else ""
        table.add_row(
            row["workflow_id"],
            row["status"],
            row["execution_status"],
            amount,
            row["target"],
            where,
            row["reference"],
            row["started"][:19],
        )
    console.print(table)


async def _state(client: Client, workflow_id: str) -> PaymentState:
    handle = client.get_workflow_handle_for(PaymentWorkflow.run, workflow_id)
    try:
        return await handle.query(PaymentWorkflow.status)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            err.print(f"[red]no payment {workflow_id}[/]")
            raise typer.Exit(EXIT_NOT_FOUND) from None
        raise


async def _execution(client: Client, workflow_id: str) -> WorkflowExecutionStatus | None:
    """Temporal's own status of the payment's workflow (Running, Completed, Terminated, ...)."""
    try:
        return (await client.get_workflow_handle_for(PaymentWorkflow.run, workflow_id).describe()).status
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            err.print(f"[red]no payment {workflow_id}[/]")
            raise typer.Exit(EXIT_NOT_FOUND) from None
        raise


def render(state: PaymentState, execution: WorkflowExecutionStatus | None = None) -> None:
    """The status query, for a person (with Temporal's execution status, when given)."""
    temporal = f"  (Temporal: {execution_status(execution)})" if execution else ""
    console.print(f"[bold]{state.workflow_id}[/]  [bold cyan]{state.status.value}[/]{temporal}")
    console.print(f"  {state.summary}")
    closed = execution is not None and execution != WorkflowExecutionStatus.RUNNING
    if execution in CLOSED_BY_TEMPORAL:
        console.print(
            f"  [bold red]closed by Temporal: {execution_status(execution)}[/] "
            f"(the payment status is the last it had; nothing more will happen to it)"
        )
    if state.waiting_for:
        console.print(f"  waiting for: {state.waiting_for}")
    if state.reason:
        console.print(f"  why: {state.reason}")
    if state.last_vendor_answer:
        console.print(
            f"  vendor's last answer ({state.last_vendor_answer.step}): {state.last_vendor_answer.text}"
        )
    if state.total_paid is not None and state.total_billable is not None:
        console.print(f"  paid {state.total_paid} of {state.total_billable}")
    if state.next_actions and not closed:
        console.print(f"  you can: {', '.join(state.next_actions)}")
    steps = Table(title="steps", title_justify="left")
    for column in ("step", "started", "finished", "outcome", "attempts"):
        steps.add_column(column)
    for step in state.steps:
        steps.add_row(
            step.name,
            f"{step.started_at:%Y-%m-%d %H:%M:%S}",
            f"{step.finished_at:%H:%M:%S}" if step.finished_at else "",
            step.outcome or "",
            str(step.attempts),
        )
    console.print(steps)
    if state.actions:
        actions = Table(title="operator actions", title_justify="left")
        for column in ("when", "action", "by", "reason", "accepted", "message"):
            actions.add_column(column, overflow="fold")
        for action in state.actions:
            actions.add_row(
                f"{action.at:%Y-%m-%d %H:%M:%S}",
                action.action,
                action.operator or "",
                action.reason or "",
                "yes" if action.accepted else "refused",
                action.message,
            )
        console.print(actions)


@app.command()
def show(
    workflow_id: str,
    as_json: bool = typer.Option(False, "--json", help="the status query as JSON"),
) -> None:
    """One payment: state, what it waits for and why, steps, vendor answers, operator actions."""

    async def work(client: Client) -> tuple[PaymentState, WorkflowExecutionStatus | None]:
        execution = await _execution(client, workflow_id)
        return await _state(client, workflow_id), execution

    state, execution = _run(work)
    if execution is not None and execution != WorkflowExecutionStatus.RUNNING:
        state = state.model_copy(update={"next_actions": []})  # a closed workflow takes no action
    if as_json:
        shown = json.loads(state.model_dump_json())
        shown["execution_status"] = execution_status(execution)
        typer.echo(json.dumps(shown, indent=2))
    else:
        render(state, execution)


def _act(workflow_id: str, action: str, payload: OperatorInput) -> None:
    async def work(client: Client) -> ActionAnswer:
        await _state(client, workflow_id)  # a clear "no such payment" first
        try:
            return await bulk.send_update(client, workflow_id, action, payload)
        except bulk.Refused as refusal:
            err.print(f"[red]{action} refused:[/] {refusal}")
        except WorkflowUpdateFailedError as exc:
            err.print(f"[red]{action} refused:[/] {bulk.update_failure(exc)}")
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            err.print(f"[red]no payment {workflow_id}[/]")  # gone since the first look
            raise typer.Exit(EXIT_NOT_FOUND) from None
        raise typer.Exit(EXIT_REFUSED)

    answer = _run(work)
    console.print(f"{answer.workflow_id}: [bold cyan]{answer.status.value}[/]  {answer.message}")


def _take(
    action: str,
    payload: OperatorInput,
    workflow_id: str | None,
    where: str | None,
    dry_run: bool,
    yes: bool,
    rate: float | None,
) -> None:
    """One payment (WORKFLOW_ID), or every payment ``--where`` matches (cli/bulk.py)."""
    bulk.check_target(workflow_id, where, dry_run, yes, rate)
    if where is None:
        assert workflow_id is not None
        _act(workflow_id, action, payload)
        return

    async def work(client: Client) -> int:
        return await bulk.run(client, action, payload, where, dry_run=dry_run, yes=yes, rate=rate)

    raise typer.Exit(_run(work))


WORKFLOW_ID = typer.Argument(
    None, metavar="WORKFLOW_ID", help="the payment's workflow id (or --where QUERY)", show_default=False
)
OPERATOR = typer.Option(None, "--operator", help="who acts (default: your user name)")
REASON = typer.Option(None, "--reason", help="why, for the payment's record")


def _who(operator: str | None) -> str:
    return who(operator)


@app.command()
def approve(
    workflow_id: str | None = WORKFLOW_ID,
    reason: str | None = REASON,
    operator: str | None = OPERATOR,
    where: str | None = bulk.WHERE,
    dry_run: bool = bulk.DRY_RUN,
    yes: bool = bulk.YES,
    rate: float | None = bulk.RATE,
) -> None:
    """Let a payment that awaits approval be posted (or every payment --where matches)."""
    payload = ApproveInput(operator=_who(operator), reason=reason)
    _take("approve", payload, workflow_id, where, dry_run, yes, rate)


@app.command()
def cancel(
    workflow_id: str | None = WORKFLOW_ID,
    reason: str | None = REASON,
    operator: str | None = OPERATOR,
    where: str | None = bulk.WHERE,
    dry_run: bool = bulk.DRY_RUN,
    yes: bool = bulk.YES,
    rate: float | None = bulk.RATE,
) -> None:
    """Stop a payment that has not been posted (or every payment --where matches)."""
    payload = CancelInput(operator=_who(operator), reason=reason)
    _take("cancel", payload, workflow_id, where, dry_run, yes, rate)


@app.command()
def resolve(
    workflow_id: str | None = WORKFLOW_ID,
    reason: str | None = REASON,
    operator: str | None = OPERATOR,
    vendor_payment_id: str | None = typer.Option(
        None, "--vendor-payment-id", help="the id the vendor gave it"
    ),
    where: str | None = bulk.WHERE,
    dry_run: bool = bulk.DRY_RUN,
    yes: bool = bulk.YES,
    rate: float | None = bulk.RATE,
) -> None:
    """End a payment that was settled by hand in the vendor's system (or every --where match)."""
    payload = ResolveInput(operator=_who(operator), reason=reason, vendor_payment_id=vendor_payment_id)
    _take("resolve", payload, workflow_id, where, dry_run, yes, rate)


@app.command()
def retry(
    workflow_id: str | None = WORKFLOW_ID,
    reason: str | None = REASON,
    operator: str | None = OPERATOR,
    load_number: str | None = typer.Option(None, "--load-number", help="corrected Alvys load number"),
    trip_id: str | None = typer.Option(None, "--trip-id", help="corrected Alvys trip id"),
    trip_number: str | None = typer.Option(None, "--trip-number", help="corrected Alvys trip number"),
    invoice_number: str | None = typer.Option(None, "--invoice-number", help="corrected invoice number"),
    amount: str | None = typer.Option(None, "--amount", help="corrected amount (only before posting)"),
    currency: str | None = typer.Option(None, "--currency", help="ISO 4217 code of the corrected amount"),
    where: str | None = bulk.WHERE,
    dry_run: bool = bulk.DRY_RUN,
    yes: bool = bulk.YES,
    rate: float | None = bulk.RATE,
) -> None:
    """Run a payment again from validation, optionally with corrected identifiers or amount.

    With --where, every match is retried, each with the same corrections (if any are given).
    """
    value: Decimal | None = None
    if amount is not None:
        try:
            value = Decimal(amount)
        except InvalidOperation:
            err.print(f"[red]--amount:[/] {amount!r} is not a number")
            raise typer.Exit(EXIT_INPUT) from None
    payload = RetryInput(
        operator=_who(operator),
        reason=reason,
        load_number=load_number,
        trip_id=trip_id,
        trip_number=trip_number,
        invoice_number=invoice_number,
        amount=value,
        currency=currency,
    )
    _take("retry", payload, workflow_id, where, dry_run, yes, rate)


@app.command()
def result(workflow_id: str) -> None:
    """Wait for a payment to end and print its result as JSON."""

    async def work(client: Client) -> PaymentResult:
        await _state(client, workflow_id)
        return await client.get_workflow_handle_for(PaymentWorkflow.run, workflow_id).result()

    typer.echo(_run(work).model_dump_json())


@app.command()
def submit(
    source: str = typer.Argument(
        ..., help="as for starter.py: alvys-customer-payment, alvys-carrier-payment, ..."
    ),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    wait: bool = typer.Option(False, "--wait", help="wait for each payment and print its result"),
    file_format: str | None = typer.Option(None, "--format", help="remittance only: csv, bai2, x12-820, ..."),
) -> None:
    """Start the payments in FILE (the same intake as starter.py and the ingress)."""
    import starter

    starter.main(source, file, wait, file_format)
