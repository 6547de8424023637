"""``freightpay``: run the local stack, a worker, the vendor sandbox."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from cli.payments import app as payments_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Durable freight payments on Temporal.")
app.add_typer(payments_app, name="payments")


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


@app.command()
def sandbox(
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int = typer.Option(8701, help="port to listen on"),
    data: Path | None = typer.Option(
        None, help="demo data file (default: the bundled sandbox/data/demo.json)"
    ),
) -> None:
    """The vendor sandbox: HTTP simulators of Alvys (and more), faithful to their documents."""
    import uvicorn

    from sandbox.app import create_app

    uvicorn.run(create_app(data), host=host, port=port, log_level="warning")


@app.command()
def ingress(
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
) -> None:
    """The HTTP ingress (webhooks, payment intake, callbacks, remittances); OpenAPI at /docs."""
    import uvicorn

    from ingress.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="info", timeout_keep_alive=5)


if __name__ == "__main__":
    app()
