"""``freightpay deposits list|show|apply|resolve``: the deposits of bank, lockbox and factor files.

Exit codes, as for ``freightpay payments``: 0 done; 1 refused by the deposit (the message
says why); 2 bad input; 3 Temporal unreachable; 4 no such deposit.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import Client, WorkflowUpdateFailedError

from cli.common import run_with_temporal, who
from intake.cash import deposit_state, deposit_view
from models.deposit import ApplyInput, DepositState, ResolveDepositInput
from workflows import search_attributes as sa
from workflows.deposit import DepositWorkflow

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Find deposits and steer their unapplied cash."
)
console = Console()
err = Console(stderr=True)
EXIT_REFUSED, EXIT_INPUT, EXIT_UNREACHABLE, EXIT_NOT_FOUND = 1, 2, 3, 4
_T = TypeVar("_T")
OPERATOR = typer.Option(None, "--operator", help="who acts (default: your user name)")
REASON = typer.Option(None, "--reason", help="why, for the record")


def _run(work: Callable[[Client], Awaitable[_T]]) -> _T:
    return run_with_temporal(work)


def _who(operator: str | None) -> str:
    return who(operator)


async def _state(client: Client, deposit_id: str) -> DepositState:
    state = await deposit_state(client, deposit_id)
    if state is None:
        err.print(f"[red]no deposit {deposit_id}[/]")
        raise typer.Exit(EXIT_NOT_FOUND)
    return state


@app.command("list")
def list_deposits(
    status: str | None = typer.Option(None, "--status", help="Applying, Applied, Unapplied, Resolved"),
    limit: int = typer.Option(50, "--limit", min=1, max=10000),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line"),
) -> None:
    """Deposits from Temporal visibility, newest first."""
    query = "WorkflowType = 'DepositWorkflow'"
    if status:
        query += f" AND DepositStatus = '{status.replace(chr(39), '')}'"

    async def work(client: Client) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        async for execution in client.list_workflows(query, limit=limit):
            attrs = execution.typed_search_attributes
            rows.append(
                {
                    "deposit_id": execution.id,
                    "status": attrs.get(sa.DEPOSIT_STATUS) or "",
                    "unapplied": attrs.get(sa.UNAPPLIED_AMOUNT),
                    "started": execution.start_time.isoformat() if execution.start_time else "",
                }
            )
        return rows

    rows = _run(work)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    table = Table(title=f"{len(rows)} deposit(s): {query}", title_justify="left")
    for column in ("deposit id", "status", "unapplied", "started"):
        table.add_column(column, overflow="fold")
    for row in rows:
        unapplied = row["unapplied"]
        table.add_row(
            str(row["deposit_id"]),
            str(row["status"]),
            f"{unapplied:,.2f}" if isinstance(unapplied, float) else "",
            str(row["started"])[:19],
        )
    console.print(table)


@app.command()
def show(
    deposit_id: str = typer.Argument(...),
    as_json: bool = typer.Option(
        False, "--json", help="the deposit as JSON (as GET /v1/remittances/{id} gives it)"
    ),
) -> None:
    """One deposit: what was applied where, what matched nothing, and why."""
    state = _run(lambda client: _state(client, deposit_id))
    if as_json:
        typer.echo(json.dumps(deposit_view(state)))
        return
    deposit = state.deposit
    console.print(f"[bold]{state.deposit_id}[/]  [bold cyan]{state.status.value}[/]")
    console.print(
        f"  {deposit.amount} ref {deposit.reference}" + (f" from {deposit.payer}" if deposit.payer else "")
        + f"; applied {state.applied}, unapplied {state.unapplied}"
    )  # fmt: skip
    table = Table(title="applications", title_justify="left")
    for column in ("reference", "load", "amount", "payment", "status", "why"):
        table.add_column(column, overflow="fold")
    for a in state.applications:
        table.add_row(
            a.reference, a.load_number or "", str(a.amount), a.workflow_id, a.payment_status, a.reason or ""
        )
    console.print(table)
    for u in state.unmatched:
        candidates = f" (candidates: {', '.join(u.candidates)})" if u.candidates else ""
        console.print(
            f"  unapplied {u.amount}{' for ' + u.reference if u.reference else ''}: {u.reason}{candidates}"
        )
    if state.resolution:
        console.print(f"  resolved: {state.resolution}")


@app.command()
def apply(
    deposit_id: str = typer.Argument(...),
    load_number: str | None = typer.Option(None, "--load-number"),
    invoice_number: str | None = typer.Option(None, "--invoice-number"),
    amount: str = typer.Option(..., "--amount", help="a decimal, in the deposit's currency"),
    reason: str | None = REASON,
    operator: str | None = OPERATOR,
) -> None:
    """Apply unapplied cash to a load or an invoice (starts its payment)."""
    if bool(load_number) == bool(invoice_number):
        err.print("[red]give exactly one of --load-number and --invoice-number[/]")
        raise typer.Exit(EXIT_INPUT)
    try:
        value = Decimal(amount)
    except InvalidOperation:
        err.print(f"[red]--amount {amount!r} is not a decimal number[/]")
        raise typer.Exit(EXIT_INPUT) from None
    payload = ApplyInput(
        load_number=load_number,
        invoice_number=invoice_number,
        amount=value,
        reason=reason,
        operator=_who(operator),
    )
    _act(deposit_id, lambda handle: handle.execute_update(DepositWorkflow.apply, payload))


@app.command()
def resolve(
    deposit_id: str = typer.Argument(...),
    reason: str | None = REASON,
    operator: str | None = OPERATOR,
) -> None:
    """The unapplied remainder was handled outside freightpay (refunded, kept on account)."""
    payload = ResolveDepositInput(reason=reason, operator=_who(operator))
    _act(deposit_id, lambda handle: handle.execute_update(DepositWorkflow.resolve, payload))


def _act(deposit_id: str, send: Callable[..., Awaitable[DepositState]]) -> None:
    async def work(client: Client) -> DepositState:
        await _state(client, deposit_id)  # 4 when there is no such deposit
        handle = client.get_workflow_handle_for(DepositWorkflow.run, deposit_id)
        try:
            return await send(handle)
        except WorkflowUpdateFailedError as exc:
            err.print(f"[red]refused:[/] {exc.cause}")
            raise typer.Exit(EXIT_REFUSED) from None

    state = _run(work)
    console.print(
        f"{state.deposit_id}: {state.status.value}; applied {state.applied}, unapplied {state.unapplied}"
    )
