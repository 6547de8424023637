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

* ``payments-needs-review.png``: the Workflows list filtered by ``PaymentStatus = "NeedsReview"``;
* ``payments-all.png``: every payment (``WorkflowType = "PaymentWorkflow"``), with the
  ``PaymentStatus``, ``LoadNumber`` and ``PaymentAmount`` columns added (set in the UI's
  local storage, as the column picker would);
* ``payments-one-batch.png``: this run's payments (``PaymentReference STARTS_WITH "UI-..."``),
  one per state, Paid and PartiallyPaid included;
* ``payment-needs-review-details.png``: a NeedsReview payment's User Metadata tab: summary,
  details, current details (what it waits for, why, the vendor's answer, what you can do);
* ``payment-awaiting-approval.png``: the same for an AwaitingApproval payment;
* ``payment-approve-signal.png``: its Send a Signal dialog filled in for ``approve`` (not sent).

It is a tool for the docs, not part of the product: nothing imports it and ``make test`` does
not need it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import typer

from config.settings import get_settings
from config.temporal import connect
from intake.parse import parse_body
from intake.start import PAYMENT_WORKFLOW, start_payments
from models.state import PaymentState, PaymentStatus

if TYPE_CHECKING:  # Playwright is an optional extra: imported only when the screenshots are taken
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent

NAMESPACE = "default"
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


class Unavailable(Exception):
    """Something the script needs is not there: the Web UI, Temporal, or Chromium."""


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
            "Amount": {"Amount": float(self.amount), "Currency": 840},
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
# The sandbox keeps every payment while it runs, so repeated runs pay L-1001 and L-1003 again: still
# Paid/PartiallyPaid today (overpayment is checked against an invoice's balance), AwaitingApproval if
# that check ever covers loads too.
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
    """Raise Unavailable unless the Temporal Web UI answers its settings endpoint."""
    try:
        response = httpx.get(f"{ui}/api/v1/settings", timeout=5)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise Unavailable(f"the Temporal Web UI at {ui} is not reachable ({exc})") from None


async def seed_payments(stamp: str, timeout: float) -> dict[str, PaymentStatus]:
    """Start the demo payments; wait until each settled and visibility shows it. Workflow id -> status."""
    settings = get_settings()
    try:
        client = await asyncio.wait_for(connect(), timeout=10)
    except (RuntimeError, TimeoutError) as exc:
        raise Unavailable(f"Temporal is not reachable ({exc})") from None
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
                raise TimeoutError(
                    f"{workflow_id} is still {state.status.value} after {timeout:.0f}s: is the worker "
                    "running, and started from the current code (restart `make run` after a pull)?"
                )
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


def settle(page: Page) -> None:
    """Let the page finish its requests; a running workflow's page polls, so never fully idle."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_load_state("networkidle", timeout=5_000)
    except PlaywrightTimeout:
        pass
    page.wait_for_timeout(1_000)  # fonts and transitions


def find_browser() -> str:
    """The system Chromium's path; Playwright for Python must be importable too."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise Unavailable("Playwright is not installed: .venv/bin/pip install -e '.[screenshots]'") from None
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise Unavailable("no Chromium found: apt-get install chromium (or set CHROMIUM=/path/to/it)")
    return chromium


def take_screenshots(
    ui: str, chromium: str, out: Path, stamp: str, states: dict[str, PaymentStatus]
) -> list[Path]:
    """Drive headless Chromium through the Web UI's pages; returns the files written."""
    from playwright.sync_api import sync_playwright

    needs_review = first_in(states, PaymentStatus.NEEDS_REVIEW)
    awaiting = first_in(states, PaymentStatus.AWAITING_APPROVAL)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def visible(page: Page, text: str) -> None:
        page.get_by_text(text, exact=False).locator("visible=true").first.wait_for(timeout=30_000)

    def save(page: Page, name: str, full_page: bool = False) -> None:
        settle(page)
        path = out / name
        page.screenshot(path=str(path), full_page=full_page)
        written.append(path)
        typer.echo(f"  {path}")

    def open_list(page: Page, query: str, wait_for: str) -> None:
        page.goto(workflows_url(ui, query), wait_until="domcontentloaded")
        visible(page, wait_for)

    def open_metadata(page: Page, workflow_id: str) -> None:
        page.goto(workflow_url(ui, workflow_id), wait_until="domcontentloaded")
        visible(page, workflow_id)
        # Summary, details and current details are on the User Metadata tab (2.54: not expanded elsewhere).
        page.get_by_role("tab", name="User Metadata").locator("visible=true").first.click()
        visible(page, "Current Details")
        # The UI renders each markdown text in its own iframe (summary, details, current details).
        frames = page.frame_locator("iframe")
        frames.first.get_by_text("payment").first.wait_for(timeout=30_000)
        frames.last.get_by_text("You can:").first.wait_for(timeout=30_000)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        # The UI keeps its table columns and the side bar's state in local storage: set them
        # before any of its scripts runs, so the list shows the payments' search attributes.
        columns = json.dumps({NAMESPACE: LIST_COLUMNS})
        context.add_init_script(
            f"window.localStorage.setItem('namespace-workflow-table-columns', {json.dumps(columns)});"
            "window.localStorage.setItem('navOpen', 'false');"
        )
        page = context.new_page()

        open_list(page, 'PaymentStatus = "NeedsReview"', needs_review)
        save(page, "payments-needs-review.png")
        open_list(page, f'WorkflowType = "{PAYMENT_WORKFLOW}"', awaiting)
        save(page, "payments-all.png")
        batch = f'WorkflowType = "{PAYMENT_WORKFLOW}" AND PaymentReference STARTS_WITH "UI-{stamp}"'
        open_list(page, batch, next(iter(states)))
        save(page, "payments-one-batch.png")

        open_metadata(page, needs_review)
        save(page, "payment-needs-review-details.png", full_page=True)
        open_metadata(page, awaiting)
        save(page, "payment-awaiting-approval.png", full_page=True)

        # Steering: the Send a Signal dialog filled in for `approve` (never submitted).
        page.get_by_role("button", name="More Actions").click()
        page.get_by_text("Send a Signal").locator("visible=true").first.click()
        page.get_by_test_id("signal-select-button").locator("visible=true").click()
        page.get_by_role("option", name="approve", exact=True).locator("visible=true").click()
        page.locator(".cm-content").locator("visible=true").first.fill(
            '{"reason": "checked with AR", "operator": "dana"}'
        )
        save(page, "payment-approve-signal.png")
        browser.close()
    return written


def first_in(states: dict[str, PaymentStatus], status: PaymentStatus) -> str:
    """The first seeded payment in ``status``; the demo data always gives one of each needed."""
    for workflow_id, state in states.items():
        if state is status:
            return workflow_id
    raise RuntimeError(f"no seeded payment reached {status.value}: has the sandbox's demo data changed?")


@app.command()
def main(
    ui: str = typer.Option("http://localhost:8233", "--ui", help="the Temporal Web UI's base URL"),
    out: Path = typer.Option(ROOT / "docs" / "screenshots", "--out", help="where the PNG files go"),
    timeout: float = typer.Option(
        300.0, "--timeout", help="seconds to wait for the payments to settle (Alvys calls are rate-limited)"
    ),
) -> None:
    """Seed demo payments in the running local stack and screenshot the Temporal Web UI."""
    ui = ui.rstrip("/")
    try:
        chromium = find_browser()
    except Unavailable as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    try:
        check_ui(ui)
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        typer.echo(f"seeding {len(SEEDS)} payments (references UI-{stamp}-N), waiting for each to settle:")
        states = asyncio.run(seed_payments(stamp, timeout))
    except Unavailable as exc:
        typer.echo(f"{exc}.\nThe local stack must be running: start it with `make run`.", err=True)
        raise typer.Exit(2) from None
    except TimeoutError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"screenshots into {out}:")
    take_screenshots(ui, chromium, out, stamp, states)


if __name__ == "__main__":
    app()
