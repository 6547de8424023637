"""Screenshots of the Temporal Web UI for the operator's guide, retaken against the running local stack.

Why: ``docs/operators.md`` shows operators what a payment looks like in the Temporal Web UI
(the filtered Workflows list, a payment's summary and current details). The pictures go stale
whenever the workflow's summaries or the UI change, so they are made by this script, not by
hand, and anyone can retake them.

How to retake them::

    make run                                   # in one terminal: the whole local stack
    .venv/bin/pip install -e '.[screenshots]'  # Playwright for Python (once)
    apt-get install chromium                   # a system Chromium (Playwright's own download is not used)
    .venv/bin/python scripts/screenshots.py    # [--ui http://localhost:8233] [--out docs/screenshots]

The script needs the stack to be running (it says so and exits 2 if the Web UI or Temporal
cannot be reached). It seeds a handful of Alvys customer payments through the project's own
intake (the same code as ``starter.py`` and the ingress), each with a fresh reference so that
every run starts new workflows, waits until each has reached the state the sandbox's demo data
leads to (NeedsReview, AwaitingApproval, WaitingForPayable, Paid or PartiallyPaid), and then
drives a headless Chromium (``$CHROMIUM`` or ``chromium`` on the PATH) with Playwright:

* ``payments-needs-review.png``: the Workflows list filtered by ``PaymentStatus="NeedsReview"``;
* ``payments-all.png``: every payment (``WorkflowType="PaymentWorkflow"``) with the
  ``PaymentStatus``, ``LoadNumber`` and ``PaymentAmount`` columns added;
* ``payment-needs-review-details.png``: a NeedsReview payment's page, summary and details;
* ``payment-awaiting-approval.png``: an AwaitingApproval payment's page.

It is a tool for the docs, not part of the product: nothing imports it and ``make test`` does
not need it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import typer

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a file: make the project's packages importable
    sys.path.insert(0, str(ROOT))

from config.settings import get_settings  # noqa: E402
from config.temporal import connect  # noqa: E402
from intake.parse import parse_body  # noqa: E402
from intake.start import PAYMENT_WORKFLOW, start_payments  # noqa: E402
from models.state import PaymentState, PaymentStatus  # noqa: E402

NAMESPACE = "default"
VIEWPORT = {"width": 1440, "height": 900}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
#: Columns of the Workflows list: the UI's defaults (minus Run ID) plus payment search attributes.
LIST_COLUMNS = [
    {"label": "Status", "pinned": True},
    {"label": "Workflow ID", "pinned": True},
    {"label": "PaymentStatus", "pinned": False},
    {"label": "LoadNumber", "pinned": False},
    {"label": "PaymentAmount", "pinned": False},
    {"label": "Start", "pinned": False},
]
#: States in which a payment is still working (the script waits until a payment leaves them).
WORKING = {PaymentStatus.RECEIVED, PaymentStatus.VALIDATING, PaymentStatus.POSTING, PaymentStatus.CONFIRMING}

app = typer.Typer(add_completion=False, help=__doc__)


class StackNotRunning(Exception):
    """The Web UI or Temporal cannot be reached."""


@dataclass(frozen=True)
class Seed:
    """One demo payment: an Alvys customer-payments body and the states the demo data leads it to."""

    name: str
    load_number: str | None
    invoice_number: str | None
    amount: str
    expected: frozenset[PaymentStatus]

    def body(self, reference: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Amount": {"Amount": self.amount, "Currency": 840},
            "PaymentDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ReferenceNumber": reference,
            "PaymentMethod": "Check",
            "Note": f"screenshot demo: {self.name}",
        }
        if self.load_number:
            body["LoadNumber"] = self.load_number
        if self.invoice_number:
            body["InvoiceNumber"] = self.invoice_number
        return body


# sandbox/data/demo.json: L-1001 Invoiced USD 382.53, L-1002 Dispatched, L-1003 Completed USD 1,000,
# L-2001 Invoiced USD 25,000 (over the USD 10,000 approval threshold); L-9999 and INV-9999 do not exist.
# Paid/PartiallyPaid seeds may end AwaitingApproval (overpayment) once earlier runs covered the load.
SEEDS = (
    Seed("unknown load", "L-9999", None, "150.00", frozenset({PaymentStatus.NEEDS_REVIEW})),
    Seed("unknown invoice", None, "INV-9999", "420.00", frozenset({PaymentStatus.NEEDS_REVIEW})),
    Seed("large payment", "L-2001", None, "25000.00", frozenset({PaymentStatus.AWAITING_APPROVAL})),
    Seed("load not invoiced yet", "L-1002", None, "1450.00", frozenset({PaymentStatus.WAITING_FOR_PAYABLE})),
    Seed(
        "part of a load",
        "L-1003",
        None,
        "100.00",
        frozenset({PaymentStatus.PARTIALLY_PAID, PaymentStatus.PAID, PaymentStatus.AWAITING_APPROVAL}),
    ),
    Seed(
        "whole load",
        "L-1001",
        None,
        "382.53",
        frozenset({PaymentStatus.PAID, PaymentStatus.PARTIALLY_PAID, PaymentStatus.AWAITING_APPROVAL}),
    ),
)


def check_ui(ui: str) -> None:
    """Raise StackNotRunning unless the Temporal Web UI answers its settings endpoint."""
    try:
        response = httpx.get(f"{ui}/api/v1/settings", timeout=5)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise StackNotRunning(f"the Temporal Web UI at {ui} is not reachable ({exc})") from None


async def seed_payments(stamp: str, timeout: float) -> dict[str, PaymentStatus]:
    """Start the demo payments; wait until each settled and visibility shows it. Workflow id -> status."""
    settings = get_settings()
    try:
        client = await asyncio.wait_for(connect(), timeout=10)
    except (RuntimeError, TimeoutError) as exc:
        raise StackNotRunning(f"Temporal is not reachable ({exc})") from None
    instructions = [
        instruction
        for index, seed in enumerate(SEEDS, start=1)
        for instruction in parse_body("alvys-customer-payment", json.dumps(seed.body(f"UI-{stamp}-{index}")))
    ]
    ids = await start_payments(
        client,
        instructions,
        task_queue=settings.freightpay.task_queue,
        policy=settings.freightpay.policy(),
    )
    deadline = time.monotonic() + timeout
    states: dict[str, PaymentStatus] = {}
    for workflow_id, seed in zip(ids, SEEDS, strict=True):
        while True:
            state = await client.get_workflow_handle(workflow_id).query("status", result_type=PaymentState)
            if state.status not in WORKING:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{workflow_id} is still {state.status.value}: is the worker running?")
            await asyncio.sleep(0.5)
        states[workflow_id] = state.status
        mark = "" if state.status in seed.expected else "  (not what the demo data should give)"
        typer.echo(f"  {workflow_id}: {state.status.value}{mark}")
    # The list pages read visibility, which follows the workflows' search attributes a little later.
    query = " OR ".join(f"WorkflowId = '{workflow_id}'" for workflow_id in ids)
    while True:
        seen = {
            execution.id: (execution.search_attributes.get("PaymentStatus") or [None])[0]
            async for execution in client.list_workflows(query)
        }
        if all(seen.get(workflow_id) == status.value for workflow_id, status in states.items()):
            return states
        if time.monotonic() > deadline:
            raise TimeoutError(f"visibility does not show the payments' states yet: {seen}")
        await asyncio.sleep(0.5)


def workflows_url(ui: str, query: str) -> str:
    """The Workflows list of the namespace, filtered by a List Filter (the UI's ``query`` parameter)."""
    return f"{ui}/namespaces/{NAMESPACE}/workflows?query={quote(query, safe='')}"


def workflow_url(ui: str, workflow_id: str) -> str:
    return f"{ui}/namespaces/{NAMESPACE}/workflows/{quote(workflow_id, safe='')}"


def take_screenshots(ui: str, out: Path, states: dict[str, PaymentStatus]) -> list[Path]:
    """Drive headless Chromium through the four pages; returns the files written."""
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        typer.echo("no Chromium found: apt-get install chromium (or set CHROMIUM=/path/to/it)", err=True)
        raise typer.Exit(2)
    needs_review = next(w for w, s in states.items() if s is PaymentStatus.NEEDS_REVIEW)
    awaiting = next(w for w, s in states.items() if s is PaymentStatus.AWAITING_APPROVAL)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        # The UI keeps its table columns in local storage; set them before any page script runs.
        columns = json.dumps({NAMESPACE: LIST_COLUMNS})
        context.add_init_script(
            f"window.localStorage.setItem('namespace-workflow-table-columns', {json.dumps(columns)});"
        )
        page = context.new_page()

        def shot(url: str, wait_for_text: str, name: str, full_page: bool = False) -> None:
            page.goto(url)
            page.wait_for_load_state("networkidle")
            page.get_by_text(wait_for_text).first.wait_for(state="visible", timeout=30_000)
            page.wait_for_load_state("networkidle")
            path = out / name
            page.screenshot(path=str(path), full_page=full_page)
            written.append(path)
            typer.echo(f"  {path}")

        shot(
            workflows_url(ui, 'PaymentStatus="NeedsReview"'),
            needs_review,
            "payments-needs-review.png",
        )
        shot(workflows_url(ui, f'WorkflowType="{PAYMENT_WORKFLOW}"'), awaiting, "payments-all.png")
        shot(workflow_url(ui, needs_review), needs_review, "payment-needs-review-details.png", True)
        shot(workflow_url(ui, awaiting), awaiting, "payment-awaiting-approval.png", True)
        browser.close()
    return written


@app.command()
def main(
    ui: str = typer.Option("http://localhost:8233", "--ui", help="the Temporal Web UI's base URL"),
    out: Path = typer.Option(ROOT / "docs" / "screenshots", "--out", help="where the PNG files go"),
    timeout: float = typer.Option(60.0, "--timeout", help="seconds to wait for the payments to settle"),
) -> None:
    """Seed demo payments in the running local stack and screenshot the Temporal Web UI."""
    ui = ui.rstrip("/")
    try:
        check_ui(ui)
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        typer.echo(f"seeding {len(SEEDS)} payments (references UI-{stamp}-N):")
        states = asyncio.run(seed_payments(stamp, timeout))
    except StackNotRunning as exc:
        typer.echo(f"{exc}.\nThe local stack must be running: start it with `make run`.", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"screenshots into {out}:")
    take_screenshots(ui, out, states)


if __name__ == "__main__":
    app()
