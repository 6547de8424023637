"""``python starter.py SOURCE FILE [--wait]``: start the payments in FILE, print their workflow ids.

SOURCE is one of ``alvys-customer-payment``, ``alvys-carrier-payment`` (FILE holds Alvys's own
request body, docs/vendors.md#alvys-customer-payments, or a JSON array of them),
``transportone-payment`` (TransportOne's ``{"data": {"payments": [...]}}`` body, e.g.
examples/transportone-payment.json), ``mycarrier`` (an ``invoice.payment`` webhook body),
``remittance`` (freightpay's CSV, see intake/remittance.py, or a bank, lockbox or factor file:
BAI2, X12 820, camt.054, an Apex report, detected from the content or given with ``--format``;
one deposit workflow each, and with ``--wait`` one JSON line per deposit). One workflow id per line. It uses the same
intake, and the same size limits, as the HTTP ingress: a JSON body of at most
``max_json_bytes`` (1 MiB), a remittance file of at most ``max_file_bytes`` (20 MiB), checked
before the file is read.

With ``--wait``, then one JSON line per payment, in the same order: its result when it ends
(``PaymentResult``); or, when it parks waiting for a person (AwaitingApproval, NeedsReview,
WaitingForPayable), ``{"workflow_id", "status", "waiting_for", "reason"}`` and the next payment
is waited for (steer it with ``freightpay payments ...``); or, when Temporal closed it without a
result (cancelled, terminated, timed out), ``{"workflow_id", "status", "execution_status"}``
with its last PaymentStatus.

Exit codes: 0 started (and, with ``--wait``, each payment reported, however it ended);
2 bad input: what is wrong, field by field, or a file over the size limit, and nothing was
started; 3 Temporal unreachable (or it refused the request); 5 refused: a repeat with other
facts (a payment with the same business key was already accepted with different facts; one
``conflict: ...`` line per payment, and nothing was started).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from datetime import timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError

from config.settings import get_settings
from config.temporal import connect, execution_status_label
from intake.cash import deposit_state, deposit_view, file_format_of, start_file
from intake.deposits import parse_deposits
from intake.errors import IntakeError, PaymentConflicts
from intake.options import IntakeOptions
from intake.parse import SOURCES, parse_body
from intake.start import start_payments, start_remittance
from models.deposit import Deposit, DepositStatus, FileFormat
from models.payment import PaymentInstruction
from models.state import PaymentStatus
from workflows import search_attributes as sa
from workflows.payment import PaymentWorkflow
from workflows.remittance import RemittanceWorkflow

app = typer.Typer(add_completion=False, help=__doc__)

EXIT_INPUT, EXIT_UNREACHABLE, EXIT_CONFLICT = 2, 3, 5

#: The states in which a payment waits for a person: ``--wait`` reports them and goes on.
PARKED = frozenset(
    s
    for s in PaymentStatus
    if s.value in {"AwaitingApproval", "NeedsReview", "WaitingForPayable", "WaitingForVendor"}
)
#: How often ``--wait`` asks a running payment for its ``status``.
POLL_SECONDS = 0.5
_QUERY_TIMEOUT = timedelta(seconds=5)
RUNNING = WorkflowExecutionStatus.RUNNING


async def _run_deposits(
    file: Path, raw: bytes, file_format: FileFormat, deposits: list[Deposit], wait: bool
) -> None:
    """A bank, lockbox or factor file: one deposit workflow each; with ``--wait``, each deposit as JSON."""
    settings = get_settings()
    client = await connect()
    answer = await start_file(
        client, raw, file_format, deposits, file_name=file.name, task_queue=settings.freightpay.task_queue,
        policy=settings.policy(), data_dir=settings.freightpay.data_dir,
    )  # fmt: skip
    print(
        f"remittance file {file.name} ({file_format.value}): {answer['remittance_id']}",
        file=sys.stderr,
        flush=True,
    )
    for deposit in answer["deposits"]:
        print(deposit["deposit_id"], flush=True)
    if wait:
        for deposit in answer["deposits"]:
            print(json.dumps(await settled_deposit(client, deposit["deposit_id"])), flush=True)


async def settled_deposit(
    client: Client, deposit_id: str, poll_seconds: float = POLL_SECONDS
) -> dict[str, object]:
    """The deposit once it has applied what it could and its payments ended or parked for a person."""
    while True:
        with contextlib.suppress(RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
            state = await deposit_state(client, deposit_id, rpc_timeout=_QUERY_TIMEOUT)
            if state is not None and state.status is not DepositStatus.APPLYING:
                waiting = [a for a in state.applications if a.payment_status in ("Received", "Running")]
                if not waiting or await _all_parked_or_done(client, [a.workflow_id for a in waiting]):
                    return deposit_view(state)
        await asyncio.sleep(poll_seconds)


async def _all_parked_or_done(client: Client, workflow_ids: list[str]) -> bool:
    for workflow_id in workflow_ids:
        handle = client.get_workflow_handle_for(PaymentWorkflow.run, workflow_id)
        state = await handle.query(PaymentWorkflow.status, rpc_timeout=_QUERY_TIMEOUT)
        if not (state.status.is_final or state.status in PARKED):
            return False
    return True


async def _run(
    source: str, file: Path, raw: bytes, instructions: list[PaymentInstruction], wait: bool
) -> None:
    settings = get_settings()
    client = await connect()
    queue, policy = settings.freightpay.task_queue, settings.policy()
    if source == "remittance":
        parent, ids = await start_remittance(
            client, raw, instructions, file_name=file.name, task_queue=queue, policy=policy,
            data_dir=settings.freightpay.data_dir,
        )  # fmt: skip
        print(f"remittance file {file.name}: workflow {parent}", file=sys.stderr, flush=True)
    else:
        ids = await start_payments(client, instructions, task_queue=queue, policy=policy)
    for workflow_id in ids:
        print(workflow_id, flush=True)
    if wait:
        if source == "remittance":
            # Lines become payments as the file's workflow reaches them: wait for it first.
            await _follow_remittance(client, parent, len(ids))
        for workflow_id in ids:
            print(await outcome(client, workflow_id), flush=True)


async def outcome(client: Client, workflow_id: str, poll_seconds: float = POLL_SECONDS) -> str:
    """One JSON line for a payment: its result, where it parked for a person, or how Temporal closed it."""
    handle = client.get_workflow_handle_for(PaymentWorkflow.run, workflow_id)
    done = asyncio.ensure_future(handle.result())
    try:
        while True:
            finished, _ = await asyncio.wait([done], timeout=poll_seconds)
            if finished:
                break
            # Not picked up by a worker yet, or closing right now: ask again at the next poll.
            with contextlib.suppress(RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
                state = await handle.query(PaymentWorkflow.status, rpc_timeout=_QUERY_TIMEOUT)
                # A closed workflow answers queries too (a terminated one with its last state).
                if state.status in PARKED and (await handle.describe()).status == RUNNING:
                    return json.dumps(
                        {
                            "workflow_id": workflow_id,
                            "status": state.status.value,
                            "waiting_for": state.waiting_for,
                            "reason": state.reason,
                        }
                    )
        result = done.result()
    except WorkflowFailureError:
        # Cancelled, terminated or timed out by Temporal: no result; say how, and the last state.
        description = await handle.describe()
        return json.dumps(
            {
                "workflow_id": workflow_id,
                "status": description.typed_search_attributes.get(sa.PAYMENT_STATUS),
                "execution_status": execution_status_label(description.status),
            }
        )
    finally:
        done.cancel()  # only if we moved on while it still runs
    return result.model_dump_json()


async def _follow_remittance(client: Client, workflow_id: str, total: int) -> None:
    """Wait for a remittance file's workflow, with a progress bar (on stderr) from its ``progress`` query."""
    handle = client.get_workflow_handle_for(RemittanceWorkflow.run, workflow_id)
    done = asyncio.ensure_future(handle.result())
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("payments ended", total=total)
        while not done.done():
            with contextlib.suppress(RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
                state = await handle.query(RemittanceWorkflow.progress)
                progress.update(task, completed=state.finished)
            await asyncio.wait([done], timeout=0.5)
    try:
        done.result()
    except WorkflowFailureError as exc:
        print(f"remittance workflow {workflow_id} ended without a result: {exc}", file=sys.stderr, flush=True)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _size_problem(source: str, file: Path) -> str | None:
    """Why FILE is too big to be read (the ingress's limits), or None."""
    limits = get_settings().freightpay
    limit, kind = (
        (limits.max_file_bytes, "a remittance file")
        if source == "remittance"
        else (limits.max_json_bytes, "a JSON body")
    )
    size = file.stat().st_size
    if size <= limit:
        return None
    return f"{file}: {size:,} bytes is over the limit of {limit:,} bytes for {kind}; nothing was started"


def conflict_lines(conflicts: PaymentConflicts) -> list[str]:
    """One ``conflict: ...`` line per payment refused as a repeat with other facts."""
    return [
        f"conflict: {c.where + ': ' if c.where else ''}{c.workflow_id} already accepted with other facts: "
        + "; ".join(str(d) for d in c.differences)
        for c in conflicts.conflicts
    ]


@app.command()
def main(
    source: str = typer.Argument(..., help=f"one of: {', '.join(SOURCES)}"),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    wait: bool = typer.Option(False, "--wait", help="wait for each payment to end (or park) and report it"),
    file_format: str | None = typer.Option(
        None,
        "--format",
        help="remittance only: csv, bai2, x12-820, camt054, apex (default: from the content)",
    ),
) -> None:
    """Start the payments in FILE."""
    too_big = _size_problem(source, file)
    if too_big:
        typer.echo(too_big, err=True)
        raise typer.Exit(EXIT_INPUT)
    try:
        raw = file.read_bytes()
        fmt = file_format_of(raw, file_format) if source == "remittance" else FileFormat.CSV
        if fmt is not FileFormat.CSV:
            deposits = parse_deposits(raw, fmt)
            asyncio.run(_run_deposits(file, raw, fmt, deposits, wait))
            return
        instructions = parse_body(source, raw, IntakeOptions())
        asyncio.run(_run(source, file, raw, instructions, wait))
    except IntakeError as exc:
        typer.echo(f"{file}: {exc.title}; nothing was started:", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(EXIT_INPUT) from None
    except PaymentConflicts as exc:
        for line in conflict_lines(exc):
            typer.echo(line, err=True)
        typer.echo(f"{file}: refused: a repeat with other facts; nothing was started", err=True)
        raise typer.Exit(EXIT_CONFLICT) from None
    except RPCError as exc:
        typer.echo(f"Temporal refused the request ({exc.status.name}): {_one_line(exc.message)}", err=True)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except typer.Exit:
        raise
    except RuntimeError as exc:  # the SDK's "Failed client connect: ..." and other transport trouble
        typer.echo(f"cannot reach Temporal: {_one_line(exc)}", err=True)
        raise typer.Exit(EXIT_UNREACHABLE) from None


if __name__ == "__main__":
    from config.temporal import exit_process

    try:
        app()
    except SystemExit as done:
        exit_process(done.code)
    exit_process(0)
