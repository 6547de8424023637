"""Screenshots of the Temporal Web UI for the operator's guide, retaken against the running local stack.

Why: ``docs/operators.md`` shows operators what a payment looks like in the Temporal Web UI
(the filtered Workflows list, its columns and Saved Views, a payment's and a deposit's summary
and current details, the batch buttons). The pictures go stale
whenever the workflow's summaries or the UI change, so they are made by this script, not by
hand, and anyone can retake them.

How to retake them::

    make run                                   # in one terminal: the whole local stack
    .venv/bin/pip install -e '.[screenshots]'  # Playwright for Python (once)
    apt-get install chromium                   # a system Chromium (Playwright's own download is not used)
    .venv/bin/python scripts/screenshots.py    # [--ui http://localhost:8233] [--ingress http://127.0.0.1:8000]
                                               # [--api-key KEY] [--out docs/screenshots]

The script needs the stack to be running (it says so and exits 2 if the Web UI, Temporal or
the ingress cannot be reached). It seeds a handful of Alvys customer payments through the
project's own intake (the same code as ``starter.py`` and the ingress), each with a fresh
reference so that every run starts new workflows, waits until each has reached the state the
sandbox's demo data leads to (NeedsReview, AwaitingApproval, WaitingForPayable, Paid or
PartiallyPaid), posts the example lockbox file (``examples/lockbox.bai2``) to the running
ingress's ``POST /v1/remittances`` (a file posted again is the same deposits: nothing new),
waits until a deposit is Unapplied, and then drives a headless Chromium (``$CHROMIUM`` or
``chromium`` on the PATH) with Playwright.

The Web UI (2.54) keeps its list columns and its Saved Views in the browser's local storage
only (no server-side setting exists, see docs/operators.md "Setting up the Workflows list"):
the script puts both there before the UI's scripts run, exactly as the UI writes them when a
person clicks (keys and shapes read back from the UI after clicking):

* ``namespace-workflow-table-columns``: ``{"default": [{"label": "Status"}, ...]}``
  (:data:`LIST_COLUMNS`);
* ``saved-workflow-queries``: ``{"default": [{"id": "<ms timestamp>", "name": "Needs review",
  "query": "PaymentStatus = \"NeedsReview\"", "type": "user"}, ...]}`` (:data:`SAVED_VIEWS`).

The pictures:

* ``payments-needs-review.png``: the Workflows list filtered by ``PaymentStatus = "NeedsReview"``;
* ``payments-all.png``: every payment (``WorkflowType = "PaymentWorkflow"``) with the operator
  columns (:data:`LIST_COLUMNS`);
* ``payments-one-batch.png``: this run's payments (``PaymentReference STARTS_WITH "UI-..."``),
  one per state, Paid and PartiallyPaid included;
* ``payment-needs-review-details.png``: a NeedsReview payment's User Metadata tab: summary,
  details, current details (what it waits for, why, the vendor's answer, what you can do);
* ``payment-awaiting-approval.png``: the same for an AwaitingApproval payment;
* ``payment-approve-signal.png``: its Send a Signal dialog filled in for ``approve`` (not sent);
* ``columns.png``: the Configure Columns drawer with the operator columns in view;
* ``views-query.png``: a query typed in the query box (the ``</>`` icon) and run: an
  "Unsaved view" with its Save as New button;
* ``views-save-as-new.png``: the Save as New dialog filled in (not saved);
* ``views-menu.png``: the Saved Views menu with the operator views;
* ``views-needs-review.png``, ``views-awaiting-approval.png``, ``views-waiting-for-payable.png``,
  ``views-unapplied-deposits.png``: each view chosen from that menu;
  ``views-overpaid.png`` too when some payment is flagged Overpaid (the demo data gives one
  only once the sandbox has been paid for L-1001 before);
* ``deposit-unapplied-details.png``: an Unapplied deposit's User Metadata tab (what was applied
  where, what matched nothing and why, the candidates);
* ``batch-actions.png``: this run's payments selected in the list, with the UI's batch
  buttons (Request Cancellation, Reset, Terminate; none is clicked).

Waiting for vendor and Unreconciled have no picture: the first needs a vendor outage longer
than ``FREIGHTPAY_VENDOR_PATIENCE_SECONDS`` (1 h), the second a reconciliation discrepancy.

It is a tool for the docs, not part of the product: nothing imports it and ``make test`` does
not need it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import typer

from cli.stack import LOCAL_API_KEY
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
#: Columns of the Workflows list, as the UI stores them (``{"label": ...}``): Status and Workflow
#: ID of its defaults, plus the payments' and deposits' search attributes. Run ID, Type, Start,
#: End and DepositStatus are left out so that a list of payment ids fits 1440 pixels (the list
#: is sorted by start anyway; an UnappliedAmount above 0 says the deposit is not all applied). The summary cannot
#: be a column: the list (visibility) does not carry it; it is on each workflow's page.
LIST_COLUMNS = [
    {"label": "Status"},
    {"label": "Workflow ID"},
    {"label": "PaymentStatus"},
    {"label": "LoadNumber"},
    {"label": "PaymentAmount"},
    {"label": "PaymentFlags"},
    {"label": "UnappliedAmount"},
]
#: The operators' Saved Views: (name, query), one per exception state (docs/operators.md).
SAVED_VIEWS = (
    ("Needs review", 'PaymentStatus = "NeedsReview"'),
    ("Awaiting approval", 'PaymentStatus = "AwaitingApproval"'),
    ("Waiting for payable", 'PaymentStatus = "WaitingForPayable"'),
    ("Waiting for vendor", 'PaymentStatus = "WaitingForVendor"'),
    ("Unapplied deposits", 'WorkflowType = "DepositWorkflow" AND DepositStatus = "Unapplied"'),
    ("Overpaid", 'PaymentFlags = "Overpaid"'),
    ("Unreconciled", 'PaymentFlags = "Unreconciled"'),
)
UNAPPLIED_DEPOSITS = dict(SAVED_VIEWS)["Unapplied deposits"]
OVERPAID = dict(SAVED_VIEWS)["Overpaid"]
#: The bank file posted to the ingress: with the sandbox's demo data, one of its deposits (USD
#: 1,000.00, references in the text that do not add up) stays Unapplied.
REMITTANCE_FILE = ROOT / "examples" / "lockbox.bai2"
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
# that check ever covers loads too. L-1001 paid a second time ends Paid flagged Overpaid (the post's
# answer shows more paid than billed): what views-overpaid.png shows from the second run on.
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


def check_ingress(ingress: str) -> None:
    """Raise Unavailable unless freightpay's ingress answers ``/healthz``."""
    try:
        response = httpx.get(f"{ingress}/healthz", timeout=5)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise Unavailable(f"the ingress at {ingress} is not reachable ({exc})") from None


async def seed_deposit(ingress: str, api_key: str, timeout: float) -> str | None:
    """Post the lockbox file through the ingress; the first of its deposits that is Unapplied.

    None (with a warning) when none is after ``timeout``: an operator may have applied or
    resolved it in this ``.data/temporal.db`` already (the same file again is the same deposits).
    """
    async with httpx.AsyncClient(timeout=30) as http:
        try:
            response = await http.post(
                f"{ingress}/v1/remittances",
                content=REMITTANCE_FILE.read_bytes(),
                headers={"X-API-Key": api_key},
            )
        except httpx.HTTPError as exc:
            raise Unavailable(f"the ingress at {ingress} is not reachable ({exc})") from None
    if response.status_code != 202:
        raise Unavailable(
            f"the ingress refused {REMITTANCE_FILE.name}: {response.status_code} {response.text}"
        )
    ids = response.json()["workflow_ids"]
    typer.echo(f"  {REMITTANCE_FILE.name}: {len(ids)} deposit(s), waiting for one to be Unapplied")
    client = await connect()
    query = f"{UNAPPLIED_DEPOSITS} AND (" + " OR ".join(f"WorkflowId = '{i}'" for i in ids) + ")"
    deadline = time.monotonic() + timeout
    while True:
        found = [execution.id async for execution in client.list_workflows(query)]
        if found:
            typer.echo(f"  {found[0]}: Unapplied")
            return found[0]
        if time.monotonic() > deadline:
            typer.echo(f"  no deposit of {REMITTANCE_FILE.name} is Unapplied: no deposit pictures", err=True)
            return None
        await asyncio.sleep(1)


async def first_match(query: str) -> str | None:
    """The id of the first workflow the visibility query matches, if any."""
    client = await connect()
    async for execution in client.list_workflows(query, limit=1):
        return execution.id
    return None


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
        policy=settings.policy(),
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


def saved_views(now_ms: int) -> dict[str, list[dict[str, str]]]:
    """:data:`SAVED_VIEWS` as the UI stores views made with Save as New (ids: ms timestamps)."""
    return {
        NAMESPACE: [
            {"id": str(now_ms + index), "name": name, "query": query, "type": "user"}
            for index, (name, query) in enumerate(SAVED_VIEWS)
        ]
    }


def local_storage_script(now_ms: int, *, views: bool = True) -> str:
    """Set the UI's columns, Saved Views (unless not ``views``) and collapsed side bar before any
    of its scripts runs."""
    items: dict[str, Any] = {"namespace-workflow-table-columns": {NAMESPACE: LIST_COLUMNS}, "navOpen": False}
    if views:
        items["saved-workflow-queries"] = saved_views(now_ms)
    return "".join(
        f"window.localStorage.setItem({json.dumps(key)}, {json.dumps(json.dumps(value))});"
        for key, value in items.items()
    )


@dataclass(frozen=True)
class Seeded:
    """What the pictures show: this run's payments, and what the stack already had."""

    stamp: str
    states: dict[str, PaymentStatus]
    unapplied_deposit: str | None
    overpaid: str | None


def take_screenshots(ui: str, chromium: str, out: Path, seeded: Seeded) -> list[Path]:
    """Drive headless Chromium through the Web UI's pages; returns the files written."""
    from playwright.sync_api import sync_playwright

    states = seeded.states
    needs_review = first_in(states, PaymentStatus.NEEDS_REVIEW)
    awaiting = first_in(states, PaymentStatus.AWAITING_APPROVAL)
    waiting_for_payable = first_in(states, PaymentStatus.WAITING_FOR_PAYABLE)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def visible(page: Page, text: str) -> None:
        page.get_by_text(text, exact=False).locator("visible=true").first.wait_for(timeout=30_000)

    def save(page: Page, name: str, full_page: bool = False) -> None:
        settle(page)
        page.mouse.move(1000, 60)  # on the blank header: no row highlighted, no hover buttons
        path = out / name
        page.screenshot(path=str(path), full_page=full_page)
        written.append(path)
        typer.echo(f"  {path}")

    def open_list(page: Page, query: str, wait_for: str) -> None:
        page.goto(workflows_url(ui, query), wait_until="domcontentloaded")
        visible(page, wait_for)

    def open_view(page: Page, name: str, wait_for: str) -> None:
        """Choose a Saved View from the menu, as an operator does."""
        page.goto(f"{ui}/namespaces/{NAMESPACE}/workflows", wait_until="domcontentloaded")
        page.get_by_test_id("saved-views-button").click()
        page.get_by_role("menuitem", name=name, exact=True).locator("visible=true").first.click()
        page.get_by_test_id("saved-views-button").filter(has_text=name).wait_for(timeout=30_000)
        visible(page, wait_for)

    def open_metadata(page: Page, workflow_id: str, summary_text: str = "payment") -> None:
        page.goto(workflow_url(ui, workflow_id), wait_until="domcontentloaded")
        visible(page, workflow_id)
        # Summary, details and current details are on the User Metadata tab (2.54: not expanded elsewhere).
        page.get_by_role("tab", name="User Metadata").locator("visible=true").first.click()
        visible(page, "Current Details")
        # The UI renders each markdown text in its own iframe (summary, details, current details).
        frames = page.frame_locator("iframe")
        frames.first.get_by_text(summary_text).first.wait_for(timeout=30_000)
        frames.last.get_by_text("You can:").first.wait_for(timeout=30_000)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        # Before any of the UI's scripts runs on each page: the operator columns and Saved Views
        # (what Configure Columns and Save as New would have stored), the side bar collapsed.
        context.add_init_script(local_storage_script(int(time.time() * 1000)))
        page = context.new_page()

        open_list(page, 'PaymentStatus = "NeedsReview"', needs_review)
        save(page, "payments-needs-review.png")
        open_list(page, f'WorkflowType = "{PAYMENT_WORKFLOW}"', awaiting)
        save(page, "payments-all.png")
        batch = f'WorkflowType = "{PAYMENT_WORKFLOW}" AND PaymentReference STARTS_WITH "UI-{seeded.stamp}"'
        open_list(page, batch, next(iter(states)))
        save(page, "payments-one-batch.png")

        # The UI's batch actions: this run's payments selected (nothing is clicked but the boxes).
        for workflow_id in states:
            page.get_by_label(f"Select Workflow {workflow_id}", exact=True).check(force=True)
        page.get_by_test_id("bulk-terminate-button").wait_for(timeout=30_000)
        save(page, "batch-actions.png")

        # Columns: the Configure Columns drawer (the icon at the bottom right of the list).
        open_list(page, batch, next(iter(states)))
        page.get_by_test_id("workflows-summary-table-configuration-button").click()
        page.get_by_test_id("orderable-list-item-PaymentStatus").locator("visible=true").first.wait_for(
            timeout=30_000
        )
        save(page, "columns.png")

        # Creating a view, in a browser that has none yet (a query of a saved view shows that
        # view, not Save as New): the query typed in the query box, Save as New, named (not saved).
        fresh = browser.new_context(viewport={"width": 1440, "height": 900})
        fresh.add_init_script(local_storage_script(int(time.time() * 1000), views=False))
        first = fresh.new_page()
        first.goto(f"{ui}/namespaces/{NAMESPACE}/workflows", wait_until="domcontentloaded")
        first.get_by_test_id("toggle-manual-query").click()
        first.get_by_test_id("workflow-manual-search-input").fill('PaymentStatus = "NeedsReview"')
        first.get_by_test_id("workflow-manual-search-button").click()
        visible(first, needs_review)
        save(first, "views-query.png")
        first.get_by_test_id("create-view-button").click()
        first.get_by_test_id("workflow-save-view-modal-input").fill("Needs review")
        save(first, "views-save-as-new.png")
        fresh.close()

        # The Saved Views menu, then each view chosen from it.
        page.goto(f"{ui}/namespaces/{NAMESPACE}/workflows", wait_until="domcontentloaded")
        page.get_by_test_id("saved-views-button").click()
        page.get_by_role("menuitem", name="Needs review", exact=True).locator("visible=true").first.wait_for(
            timeout=30_000
        )
        save(page, "views-menu.png")
        open_view(page, "Needs review", needs_review)
        save(page, "views-needs-review.png")
        open_view(page, "Awaiting approval", awaiting)
        save(page, "views-awaiting-approval.png")
        open_view(page, "Waiting for payable", waiting_for_payable)
        save(page, "views-waiting-for-payable.png")
        if seeded.unapplied_deposit:
            open_view(page, "Unapplied deposits", seeded.unapplied_deposit)
            save(page, "views-unapplied-deposits.png")
        if seeded.overpaid:
            open_view(page, "Overpaid", seeded.overpaid)
            save(page, "views-overpaid.png")

        if seeded.unapplied_deposit:
            open_metadata(page, seeded.unapplied_deposit, summary_text="Deposit")
            save(page, "deposit-unapplied-details.png", full_page=True)

        open_metadata(page, needs_review)
        save(page, "payment-needs-review-details.png", full_page=True)
        open_metadata(page, awaiting)
        save(page, "payment-awaiting-approval.png", full_page=True)

        # Steering: the Send a Signal dialog filled in for `approve` (never submitted).
        page.get_by_role("button", name="More Actions").click()
        page.get_by_text("Send a Signal").locator("visible=true").first.click()
        page.get_by_test_id("signal-select-button").locator("visible=true").click()
        # Each option is the signal's name and its description ("approve Let a payment ...").
        page.get_by_role("option", name=re.compile(r"^approve\b")).locator("visible=true").click()
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
    ingress: str = typer.Option(
        "http://127.0.0.1:8000", "--ingress", help="freightpay's ingress (bank files)"
    ),
    api_key: str = typer.Option(
        "",
        "--api-key",
        help="the ingress's X-API-Key (default: the first of FREIGHTPAY_API_KEYS, else make run's local key)",
    ),
    out: Path = typer.Option(ROOT / "docs" / "screenshots", "--out", help="where the PNG files go"),
    timeout: float = typer.Option(
        300.0, "--timeout", help="seconds to wait for the payments to settle (Alvys calls are rate-limited)"
    ),
) -> None:
    """Seed demo payments and a bank file in the running local stack and screenshot the Temporal Web UI."""
    ui = ui.rstrip("/")
    ingress = ingress.rstrip("/")
    key = api_key or os.environ.get("FREIGHTPAY_API_KEYS", "").split(",")[0].strip() or LOCAL_API_KEY
    try:
        chromium = find_browser()
    except Unavailable as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    try:
        check_ui(ui)
        check_ingress(ingress)
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        typer.echo(f"seeding {len(SEEDS)} payments (references UI-{stamp}-N), waiting for each to settle:")
        states = asyncio.run(seed_payments(stamp, timeout))
        typer.echo(f"posting {REMITTANCE_FILE.name} to {ingress}/v1/remittances:")
        deposit = asyncio.run(seed_deposit(ingress, key, timeout))
        overpaid = asyncio.run(first_match(OVERPAID))
        if not overpaid:
            typer.echo("  no payment is flagged Overpaid yet: no views-overpaid.png", err=True)
    except Unavailable as exc:
        typer.echo(f"{exc}.\nThe local stack must be running: start it with `make run`.", err=True)
        raise typer.Exit(2) from None
    except TimeoutError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"screenshots into {out}:")
    take_screenshots(ui, chromium, out, Seeded(stamp, states, deposit, overpaid))


if __name__ == "__main__":
    app()
