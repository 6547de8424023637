"""The chaos run: payments through a faulty sandbox while workers are killed and Temporal restarts.

``make chaos`` (or ``.venv/bin/python scripts/chaos.py --payments 300 --kills 10``) starts its
own Temporal dev server (SQLite file in a temporary folder), the vendor sandbox with faults
on (5xx, 429 with Retry-After, latency, connection resets, answers lost after the vendor
committed, expired tokens), and a worker; starts N payments (half Alvys customer payments,
half carrier payments, each on its own load or trip); kills the worker with SIGKILL at
random moments K times (restarting it each time) and restarts the Temporal server once,
keeping its SQLite file; waits for every payment to end or to ask for a person; then
counts, from the sandbox's own record, the postings per business key:

    chaos: started=300 paid=300 needs_review=0 other=0 lost=0 duplicated=0 kills=10 server_restarts=1

``lost`` is a payment that neither ended nor waits for a person, or ended Paid without the
vendor having it; ``duplicated`` is a business key the vendor recorded more than once. The
exit status is 1 unless both are 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.processes import ChildProcesses, dev_server_args, find_binary, free_port, wait_port  # noqa: E402
from config.temporal import ONE_PARTITION, connect  # noqa: E402
from intake.start import start_payments  # noqa: E402
from models.money import Money  # noqa: E402
from models.payment import PaymentInstruction, Source, Target, TargetIds  # noqa: E402
from models.state import PaymentStatus  # noqa: E402
from models.steps import PaymentPolicy  # noqa: E402
from workflows.search_attributes import DEFINITIONS, PAYMENT_STATUS  # noqa: E402

console = Console(soft_wrap=True)
app = typer.Typer(add_completion=False)

#: The faults: roughly one vendor call in four goes wrong in some way.
FAULTS = {
    "alvys": {
        "error_rate": 0.05,
        "rate_429": 0.03,
        "retry_after": 1,
        "latency_ms": [0, 40],
        "reset_rate": 0.03,
        "commit_then_500_rate": 0.05,
        "commit_then_drop_rate": 0.05,
        "token_expiry_rate": 0.02,
    }
}
SETTLED = {s.value for s in PaymentStatus if s.is_final} | {PaymentStatus.NEEDS_REVIEW.value}


def instructions(count: int, tag: str) -> list[PaymentInstruction]:
    found = []
    for n in range(count):
        ref = f"CHAOS-{tag}-{n}"
        if n % 2:
            ids, target, source, key = (
                TargetIds(trip_id=f"T-{ref}"),
                Target.ALVYS_CARRIER_PAYMENT,
                Source.ALVYS_CARRIER,
                f"T-{ref}-{ref}",
            )
        else:
            ids, target, source, key = (
                TargetIds(load_number=f"L-{ref}"),
                Target.ALVYS_CUSTOMER_PAYMENT,
                Source.ALVYS_CUSTOMER,
                f"L-{ref}-{ref}",
            )
        found.append(
            PaymentInstruction(
                source=source, business_key=key, target=target, ids=ids, amount=Money.of("100.00"),
                payment_date=datetime(2026, 11, 20, tzinfo=UTC), reference_number=ref,
            )
        )  # fmt: skip
    return found


async def seed(sandbox: httpx.AsyncClient, payments: list[PaymentInstruction]) -> None:
    """A load or trip per payment, payable, owing exactly the payment."""
    for p in payments:
        ref = p.reference_number
        load = {
            "LoadNumber": f"L-{ref}",
            "Status": "Invoiced",
            "Billable": {"Amount": "100.00", "Currency": 840},
        }
        (await sandbox.post("/_sandbox/alvys/loads", json=load)).raise_for_status()
        if p.target is Target.ALVYS_CARRIER_PAYMENT:
            trip = {"Id": f"T-{ref}", "TripNumber": f"TR-{ref}", "LoadNumber": f"L-{ref}", "Status": "Delivered",
                    "CarrierPayable": {"Amount": "100.00", "Currency": 840}}  # fmt: skip
            (await sandbox.post("/_sandbox/alvys/trips", json=trip)).raise_for_status()


async def statuses(client: Any, ids: list[str]) -> dict[str, str]:
    """Each payment's PaymentStatus, read from visibility ("missing" if Temporal has no such payment)."""
    found: dict[str, str] = {}
    async for execution in client.list_workflows("WorkflowType = 'PaymentWorkflow'"):
        found[execution.id] = execution.typed_search_attributes.get(PAYMENT_STATUS) or "Received"
    return {i: found.get(i, "missing") for i in ids}


@app.command()
def main(
    payments: int = typer.Option(300, help="how many payments"),
    kills: int = typer.Option(10, help="how many times the worker is killed with SIGKILL"),
    server_restarts: int = typer.Option(1, help="how many times the Temporal server is restarted"),
    timeout: float = typer.Option(900, help="seconds to wait for every payment to settle"),
    seed_value: int = typer.Option(7, "--seed", help="random seed for the kill moments and the faults"),
) -> None:
    """Run the chaos and print the counts; exit 1 unless lost and duplicated are 0."""
    code = asyncio.run(run(payments, kills, server_restarts, timeout, seed_value))
    raise typer.Exit(code)


async def run(count: int, kills: int, restarts: int, timeout: float, seed_value: int) -> int:
    rng = random.Random(seed_value)
    folder = Path(tempfile.mkdtemp(prefix="freightpay-chaos-"))
    temporal_port, sandbox_port = free_port(), free_port()
    server = dev_server_args(
        find_binary("temporal") or "temporal",
        temporal_port,
        headless=True,
        db_file=folder / "temporal.db",
        log_level="error",
        search_attributes=DEFINITIONS,
        dynamic_config=ONE_PARTITION,
    )
    sandbox_env = {"SANDBOX_FAULTS": json.dumps({"seed": seed_value, **FAULTS})}
    worker_env = {
        "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "FREIGHTPAY_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
        "FREIGHTPAY_TASK_QUEUE": "chaos",
        "FREIGHTPAY_DATA_DIR": str(folder),
        "ALVYS_REQUESTS_PER_MINUTE": "0",
        "ALVYS_READS_PER_MINUTE": "0",
    }
    # Each child its own process group, its log in the run's folder; a stop waits 30 s, then SIGKILL.
    procs = ChildProcesses(folder, ROOT, grace=30, kill_grace=None)
    console.print(
        f"chaos: {count} payments, {kills} worker kills, {restarts} server restart(s); logs in {folder}"
    )
    killed = restarted = 0
    try:
        procs.start("temporal", server, {})
        procs.start(
            "sandbox", [sys.executable, "-m", "cli.main", "sandbox", "--port", str(sandbox_port)], sandbox_env
        )
        wait_port(temporal_port)
        wait_port(sandbox_port)
        procs.start("worker", [sys.executable, "worker.py"], worker_env)
        os.environ["TEMPORAL_ADDRESS"] = worker_env["TEMPORAL_ADDRESS"]
        tag = datetime.now(UTC).strftime("%H%M%S")
        todo = instructions(count, tag)
        ids = [i.workflow_id for i in todo]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sandbox_port}", timeout=30) as sandbox:
            await seed(sandbox, todo)
            client = await connect()
            await start_payments(client, todo, task_queue="chaos", policy=PaymentPolicy(), concurrency=50)
            kill_times = sorted(rng.uniform(1, max(5.0, count / 15)) for _ in range(kills))
            restart_times = sorted(rng.uniform(2, max(6.0, count / 15)) for _ in range(restarts))
            began = time.monotonic()
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=console, transient=True) as progress:
                task = progress.add_task("settled", total=count)
                by_id: dict[str, str] = {}
                counts: Counter[str] = Counter()
                while True:
                    elapsed = time.monotonic() - began
                    if kill_times and elapsed >= kill_times[0]:
                        kill_times.pop(0)
                        procs.stop("worker", signal.SIGKILL)
                        killed += 1
                        procs.start("worker", [sys.executable, "worker.py"], worker_env)
                    if restart_times and elapsed >= restart_times[0]:
                        restart_times.pop(0)
                        procs.stop("temporal", signal.SIGTERM)
                        procs.start("temporal", server, {})
                        wait_port(temporal_port)
                        restarted += 1
                    try:
                        by_id = await statuses(client, ids)
                        counts = Counter(by_id.values())
                    except Exception as exc:
                        progress.console.print(f"(visibility not reachable: {type(exc).__name__})")
                        await asyncio.sleep(1)
                        continue
                    settled = sum(n for s, n in counts.items() if s in SETTLED)
                    progress.update(task, completed=settled)
                    if settled == count and not kill_times and not restart_times:
                        break
                    if elapsed > timeout:
                        break
                    await asyncio.sleep(1)
            postings = (await sandbox.get("/_sandbox/alvys/postings")).json()
    finally:
        procs.stop_all(newest_first=False)  # in start order, as the chaos run always stopped them
    per_key = Counter(row["reference"] for row in postings if row["reference"].startswith(f"CHAOS-{tag}-"))
    duplicated = sum(1 for n in per_key.values() if n > 1)
    paid_without_posting = sum(
        1 for i in todo if by_id.get(i.workflow_id) == "Paid" and per_key.get(i.reference_number, 0) == 0
    )
    settled_count = sum(n for s, n in counts.items() if s in SETTLED)
    lost = (count - settled_count) + paid_without_posting
    table = Table(title="chaos run")
    table.add_column("PaymentStatus")
    table.add_column("payments", justify="right")
    for status_name, n in sorted(counts.items()):
        table.add_row(status_name, str(n))
    console.print(table)
    retried = sum(row["post_count"] - 1 for row in postings if row["reference"] in per_key)
    console.print(
        f"vendor postings: {sum(per_key.values())} distinct, {retried} repeated requests absorbed by idempotency"
    )
    line = (
        f"chaos: started={count} paid={counts.get('Paid', 0)} partially_paid={counts.get('PartiallyPaid', 0)} "
        f"needs_review={counts.get('NeedsReview', 0)} other={count - settled_count} lost={lost} "
        f"duplicated={duplicated} kills={killed} server_restarts={restarted}"
    )
    console.print(line)
    if lost == 0 and duplicated == 0:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if lost == 0 and duplicated == 0 else 1


if __name__ == "__main__":
    app()
