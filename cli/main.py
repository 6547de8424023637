"""``freightpay``: run the local stack, a worker, the vendor sandbox."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from cli.alvys import app as alvys_app
from cli.deposits import app as deposits_app
from cli.payments import app as payments_app
from cli.queues import app as queues_app
from cli.reconcile import app as reconcile_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Durable freight payments on Temporal.")
app.add_typer(payments_app, name="payments")
app.add_typer(deposits_app, name="deposits")
app.add_typer(reconcile_app, name="reconcile")
app.add_typer(alvys_app, name="alvys")
app.add_typer(queues_app, name="queues")


@app.command()
def run() -> None:
    """The whole local stack: Temporal dev server + Web UI, vendor sandbox, a worker. Ctrl-C stops it."""
    from cli.stack import run_stack

    run_stack(Path.cwd())


@app.command()
def worker() -> None:
    """One worker, configured from the environment (same as ``python worker.py``)."""
    import worker as worker_module

    raise typer.Exit(asyncio.run(worker_module.main()))


sandbox_app = typer.Typer(add_completion=False, help="The vendor sandbox, and the MyCarrier webhook sender.")
app.add_typer(sandbox_app, name="sandbox")


@sandbox_app.callback(invoke_without_command=True)
def sandbox(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int = typer.Option(8701, help="port to listen on"),
    data: Path | None = typer.Option(
        None, help="demo data file (default: the bundled sandbox/data/demo.json)"
    ),
) -> None:
    """Serve the vendor sandbox: HTTP simulators of Alvys and TransportOne, faithful to their documents."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from sandbox.app import create_app

    uvicorn.run(create_app(data), host=host, port=port, log_level="warning")


@sandbox_app.command("send-mycarrier")
def send_mycarrier(
    file: Path | None = typer.Argument(
        None, help="an invoice.payment body (default: the vendor page's sample)"
    ),
    url: str = typer.Option("http://127.0.0.1:8000/v1/webhooks/mycarrier", help="the receiver"),
    secret: str = typer.Option(
        "local-dev-secret", envvar="MYCARRIER_WEBHOOK_SECRET", help="sent in X-Webhook-Secret"
    ),
    fresh: int = typer.Option(
        0, help="send this many new events (new payment ids) instead of the file as is"
    ),
) -> None:
    """Send MyCarrier invoice.payment webhooks to the ingress, as MyCarrier would."""
    from sandbox import mycarrier

    template = mycarrier.sample_event(file)
    events = [mycarrier.fresh_event(template) for _ in range(fresh)] if fresh else [template]
    failed = False
    for event in events:
        answer = mycarrier.send(url, secret, event)
        typer.echo(f"{answer.status_code} {answer.text}")
        failed = failed or answer.status_code >= 300
    raise typer.Exit(1 if failed else 0)


@app.command()
def ingress(
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
) -> None:
    """The HTTP ingress (webhooks, payment intake, callbacks, remittances); OpenAPI at /docs."""
    import uvicorn

    from ingress.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="info", timeout_keep_alive=5)


def main() -> None:
    """The ``freightpay`` console script."""
    from config.temporal import exit_process

    try:
        app()
    except SystemExit as done:
        exit_process(done.code)
    exit_process(0)


if __name__ == "__main__":
    main()
