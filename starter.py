"""``python starter.py SOURCE FILE [--wait]``: start the payments in FILE, print their workflow ids.

SOURCE is one of ``alvys-customer-payment``, ``alvys-carrier-payment`` (FILE holds the Alvys
request body of seeds/, or a JSON array of them), ``transportone-payment`` (TransportOne's
``{"data": {"payments": [...]}}`` body), ``mycarrier`` (an ``invoice.payment`` webhook body),
``remittance`` (a CSV file; see intake/remittance.py). One workflow id per line; with
``--wait``, then one JSON result per line. It uses the same intake as the HTTP ingress. Bad input
prints what is wrong, field by field, starts nothing, and exits 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from temporalio.client import Client
from temporalio.service import RPCError

from config.settings import get_settings
from config.temporal import connect
from intake.errors import IntakeError
from intake.options import IntakeOptions
from intake.parse import SOURCES, parse_body
from intake.start import payment_result, start_payments, start_remittance
from models.payment import PaymentInstruction
from models.steps import RemittanceProgress

app = typer.Typer(add_completion=False, help=__doc__)


async def _run(
    source: str, file: Path, raw: bytes, instructions: list[PaymentInstruction], wait: bool
) -> None:
    settings = get_settings()
    client = await connect()
    queue, policy = settings.freightpay.task_queue, settings.freightpay.policy()
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
            result = await payment_result(client, workflow_id)
            print(result.model_dump_json(), flush=True)


async def _follow_remittance(client: Client, workflow_id: str, total: int) -> None:
    """Wait for a remittance file's workflow, with a progress bar (on stderr) from its ``progress`` query."""
    handle = client.get_workflow_handle(workflow_id)
    done = asyncio.ensure_future(handle.result())
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("payments ended", total=total)
        while not done.done():
            with contextlib.suppress(RPCError):
                state = await handle.query("progress", result_type=RemittanceProgress)
                progress.update(task, completed=state.finished)
            await asyncio.wait([done], timeout=0.5)
    done.result()


@app.command()
def main(
    source: str = typer.Argument(..., help=f"one of: {', '.join(SOURCES)}"),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    wait: bool = typer.Option(False, "--wait", help="wait for each payment to end and print its result"),
) -> None:
    """Start the payments in FILE."""
    try:
        raw = file.read_bytes()
        instructions = parse_body(source, raw, IntakeOptions())
        asyncio.run(_run(source, file, raw, instructions, wait))
    except IntakeError as exc:
        typer.echo(f"{file}: {exc.title}; nothing was started:", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(2) from None
    except RuntimeError as exc:
        if "connect" in str(exc).lower():
            typer.echo(f"cannot reach Temporal: {exc}", err=True)
            raise typer.Exit(3) from None
        raise


if __name__ == "__main__":
    from config.temporal import exit_process

    try:
        app()
    except SystemExit as done:
        exit_process(done.code)
    exit_process(0)
