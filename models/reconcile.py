"""Reconciliation: what freightpay says was paid, against what the vendor recorded (issue 12, item 2).

The rules and the words of ``ReconcileWorkflow`` and ``DiscrepancyWorkflow``
(workflows/reconcile.py), as pure functions of their arguments: the window, the visibility
query, how each settled payment is classified, the report's CSV and markdown, and the texts
of a discrepancy. No Temporal, no HTTP, no clock.

What can be verified, per target (docs/vendors.md):

=========================  ======================================  ================================
target                     read                                    outcome
=========================  ======================================  ================================
Alvys customer payment     ``POST loads/search``, one call per     matched / missing / differing:
                           batch of load numbers (50 by default)   the load's ``Payments[]`` must
                                                                   hold our payment, with our amount
                                                                   and currency exactly
Alvys carrier payment      none                                    unverifiable: Alvys publishes no
                                                                   read of a trip's payments
                                                                   (``trips/search`` answers no
                                                                   ``CarrierPayments``)
TransportOne payment       none                                    unverifiable: OS1 publishes no
                                                                   read API at all
=========================  ======================================  ================================

How our payment is found on an Alvys load: the spec's ``LoadResponse.Payments[]`` items carry
``Id``, ``Amount`` and ``PaidAt`` only, **no reference**, so the key is Alvys's own payment
``Id``, which the customer-payments answer gave us (``vendor_payment_id`` in the payment's
result). Where a load's items do carry a reference (older answers), our reference matches
too. A payment whose result has no Alvys payment id (a terminated workflow, a resolution that
named none) can only be matched that way; otherwise it is unverifiable, never guessed from
amounts.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from models.money import Money
from models.payment import Target

#: The fixed id of the Temporal Schedule ``freightpay reconcile schedule`` creates.
SCHEDULE_ID = "freightpay-reconcile"
#: The ``PaymentFlags`` value of every open discrepancy (the Web UI filter ``PaymentFlags = 'Unreconciled'``).
UNRECONCILED = "Unreconciled"
#: The payment statuses that say "the vendor has it": the ones a reconciliation checks.
SETTLED_STATUSES = ("Paid", "PartiallyPaid", "ResolvedManually")
PAYMENT_WORKFLOW = "PaymentWorkflow"
DISCREPANCY_WORKFLOW = "DiscrepancyWorkflow"
DEFAULT_WINDOW = timedelta(hours=24)
#: Load numbers per ``POST loads/search`` (one rate-limited call each).
DEFAULT_BATCH = 50
#: Settled payments per visibility page (one ``list_settled_payments`` activity each).
PAGE_SIZE = 200
#: How many of a load's payments the vendor's view in a report or a discrepancy lists.
_VIEW_PAYMENTS = 10
CSV_COLUMNS = (
    "workflow_id",
    "target",
    "load",
    "reference",
    "our_amount",
    "vendor_amount",
    "outcome",
    "detail",
)


class Outcome(StrEnum):
    MATCHED = "matched"
    #: Our reference (Alvys payment id) is not at the vendor.
    MISSING = "missing"
    #: The vendor has it, with another amount or currency, or on another load.
    DIFFERING = "differing"
    #: The vendor publishes no read that could tell, or the read failed.
    UNVERIFIABLE = "unverifiable"

    @property
    def is_discrepancy(self) -> bool:
        return self in (Outcome.MISSING, Outcome.DIFFERING)


#: Why a target cannot be checked at all, in the report's words.
NO_READ = {
    Target.ALVYS_CARRIER_PAYMENT.value: (
        "Alvys publishes no read of a trip's carrier payments (trips/search answers no "
        "CarrierPayments); the carrier-payments answer was the only proof"
    ),
    Target.TRANSPORTONE_PAYMENT.value: (
        "TransportOne (OS1) publishes no read API; its callback was the only confirmation"
    ),
}


# --------------------------------------------------------------------------------------------
# The window and the query
# --------------------------------------------------------------------------------------------


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive time is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class ReconcileInput(BaseModel):
    """``ReconcileWorkflow``'s input; every field has a default (a Schedule sends ``{}``).

    ``since``/``until`` unset: the ``window`` before the run's scheduled time (from a Schedule)
    or its start time. ``task_queue`` unset: the payments of the reconciliation's own task queue,
    whose workers hold the vendor credentials that posted them (another deployment in the same
    namespace, a staging one, is not checked against this one's vendors). ``settle_seconds``:
    a window ending less than this long ago is waited for first, so visibility has indexed the
    payments that closed just before its end.
    """

    since: datetime | None = None
    until: datetime | None = None
    window: timedelta = DEFAULT_WINDOW
    task_queue: str | None = None
    batch_size: int = Field(default=DEFAULT_BATCH, ge=1, le=500)
    settle_seconds: int = Field(default=30, ge=0)


class Window(BaseModel):
    """Payments closed at or after ``since`` and before ``until`` (half-open: adjacent windows
    of a Schedule never count a payment twice)."""

    since: datetime
    until: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        self.since, self.until = utc(self.since), utc(self.until)
        if self.since >= self.until:
            raise ValueError(f"the window's start {self.since} is not before its end {self.until}")
        return self

    @property
    def stem(self) -> str:
        """``reconcile-2026-11-30T00-00Z-2026-12-01T00-00Z``: the run's id and its reports' name."""
        return f"reconcile-{stamp(self.since)}-{stamp(self.until)}"

    def text(self) -> str:
        return f"{_iso(self.since)} to {_iso(self.until)}"


def window_of(input: ReconcileInput, default_until: datetime) -> Window:
    """The window a run checks: as given, else ``input.window`` before ``default_until``."""
    until = utc(input.until) if input.until else utc(default_until)
    since = utc(input.since) if input.since else until - input.window
    return Window(since=since, until=until)


def stamp(moment: datetime) -> str:
    """A time for file names and workflow ids: ``2026-12-01T00-00Z`` (seconds only when set)."""
    moment = utc(moment)
    return moment.strftime("%Y-%m-%dT%H-%M-%SZ" if moment.second else "%Y-%m-%dT%H-%MZ")


def _iso(moment: datetime) -> str:
    return utc(moment).isoformat().replace("+00:00", "Z")


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "") + "'"


def settled_query(window: Window, task_queue: str | None) -> str:
    """The visibility List Filter of the payments a window checks."""
    statuses = ", ".join(_quoted(s) for s in SETTLED_STATUSES)
    query = (
        f"WorkflowType = {_quoted(PAYMENT_WORKFLOW)} AND PaymentStatus IN ({statuses})"
        f" AND CloseTime >= {_quoted(_iso(window.since))} AND CloseTime < {_quoted(_iso(window.until))}"
    )
    if task_queue:
        query += f" AND TaskQueue = {_quoted(task_queue)}"
    return query


# --------------------------------------------------------------------------------------------
# What freightpay says, what the vendor says
# --------------------------------------------------------------------------------------------


class SettledPayment(BaseModel):
    """One settled payment as freightpay has it: its result (or start input) and search attributes."""

    workflow_id: str
    target: str
    status: str
    reference: str
    amount: Money | None = None
    load_number: str | None = None
    trip_id: str | None = None
    invoice_number: str | None = None
    vendor_payment_id: str | None = None
    closed_at: datetime | None = None
    #: ``result`` (the workflow's result) or ``start input`` (a workflow that ended without one).
    facts_from: str = "result"


class SettledRequest(BaseModel):
    window: Window
    task_queue: str
    #: Visibility's next-page token, base64 (bytes do not travel well as JSON).
    page_token: str | None = None
    page_size: int = PAGE_SIZE


class SettledPage(BaseModel):
    payments: list[SettledPayment] = Field(default_factory=list)
    next_page_token: str | None = None


class VendorPayment(BaseModel):
    """A payment as the vendor lists it on a load."""

    id: str | None = None
    reference: str | None = None
    amount: Money | None = None

    def text(self) -> str:
        ref = f" ref {self.reference}" if self.reference else ""
        return f"{self.id or '?'} {self.amount or '?'}{ref}"


class VendorLoad(BaseModel):
    """A load as ``POST loads/search`` answers it, reduced to what a reconciliation compares."""

    load_number: str
    status: str | None = None
    total_paid: Money | None = None
    payments: list[VendorPayment] = Field(default_factory=list)

    def text(self) -> str:
        """The vendor's view, in one line: ``load L-1 Invoiced, TotalPaid USD 120.00, payments: ...``."""
        shown = "; ".join(p.text() for p in self.payments[:_VIEW_PAYMENTS])
        more = (
            f"; and {len(self.payments) - _VIEW_PAYMENTS} more" if len(self.payments) > _VIEW_PAYMENTS else ""
        )
        return (
            f"Alvys load {self.load_number} {self.status or '(no status)'}, "
            f"TotalPaid {self.total_paid or 'none'}, payments: {shown + more or 'none'}"
        )


class LoadsRequest(BaseModel):
    load_numbers: list[str]


class LoadsRead(BaseModel):
    loads: list[VendorLoad] = Field(default_factory=list)


def needs_load_read(payment: SettledPayment) -> bool:
    """Whether checking this payment needs its Alvys load read."""
    return payment.target == Target.ALVYS_CUSTOMER_PAYMENT.value and bool(payment.load_number)


def load_batches(payments: Iterable[SettledPayment], size: int) -> list[list[str]]:
    """The distinct load numbers to read, in batches of ``size`` (one ``loads/search`` call each)."""
    numbers = list(dict.fromkeys(p.load_number for p in payments if needs_load_read(p) and p.load_number))
    return [numbers[i : i + size] for i in range(0, len(numbers), size)]


# --------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------


class CheckedPayment(BaseModel):
    """One payment's outcome: a row of the report."""

    workflow_id: str
    target: str
    load_number: str | None = None
    trip_id: str | None = None
    invoice_number: str | None = None
    reference: str
    our_amount: Money | None = None
    vendor_amount: Money | None = None
    vendor_payment_id: str | None = None
    outcome: Outcome
    detail: str
    #: What the vendor answered about the target, for the person who looks.
    vendor_view: str = ""


def _same(a: Money | None, b: Money | None) -> bool:
    return a is not None and b is not None and a.currency == b.currency and a.amount == b.amount


def _find(
    payment: SettledPayment, loads: Mapping[str, VendorLoad]
) -> tuple[VendorLoad, VendorPayment] | None:
    """Our payment among the loads read: by Alvys's payment id, else by our reference where listed."""
    for load in loads.values():
        for item in load.payments:
            if payment.vendor_payment_id and item.id == payment.vendor_payment_id:
                return load, item
    for load in loads.values():
        for item in load.payments:
            if item.reference and item.reference.strip() == payment.reference.strip():
                return load, item
    return None


def check(
    payment: SettledPayment, loads: Mapping[str, VendorLoad], read_error: str | None = None
) -> CheckedPayment:
    """Classify one settled payment against the loads read (by load number) in its batch."""
    row = CheckedPayment(
        workflow_id=payment.workflow_id,
        target=payment.target,
        load_number=payment.load_number,
        trip_id=payment.trip_id,
        invoice_number=payment.invoice_number,
        reference=payment.reference,
        our_amount=payment.amount,
        vendor_payment_id=payment.vendor_payment_id,
        outcome=Outcome.UNVERIFIABLE,
        detail="",
    )

    def ends(outcome: Outcome, detail: str, **more: object) -> CheckedPayment:
        return row.model_copy(update={"outcome": outcome, "detail": detail, **more})

    if payment.target in NO_READ:
        return ends(Outcome.UNVERIFIABLE, NO_READ[payment.target])
    if payment.target != Target.ALVYS_CUSTOMER_PAYMENT.value:
        return ends(Outcome.UNVERIFIABLE, f"no reconciliation rule for target {payment.target}")
    if payment.amount is None:
        return ends(Outcome.UNVERIFIABLE, "neither the payment's result nor its start input could be read")
    if not payment.load_number:
        return ends(Outcome.UNVERIFIABLE, "the payment names no Alvys load")
    if read_error:
        return ends(Outcome.UNVERIFIABLE, f"Alvys could not be read: {read_error}")
    ours = loads.get(payment.load_number)
    found = _find(payment, loads)
    if found is None:
        if ours is None:
            return ends(Outcome.MISSING, f"Alvys does not know load {payment.load_number}")
        view = ours.text()
        if payment.vendor_payment_id is None and not any(p.reference for p in ours.payments):
            return ends(
                Outcome.UNVERIFIABLE,
                f"no Alvys payment id recorded ({payment.facts_from}), and Alvys lists the load's "
                "payments without references",
                vendor_view=view,
            )
        key = payment.vendor_payment_id or f"reference {payment.reference}"
        return ends(
            Outcome.MISSING,
            f"Alvys load {payment.load_number} lists no payment {key}",
            vendor_view=view,
        )
    load, item = found
    facts = {"vendor_amount": item.amount, "vendor_view": load.text(), "vendor_payment_id": item.id}
    problems = []
    if load.load_number != payment.load_number:
        problems.append(f"target: recorded on Alvys load {load.load_number}, ours is {payment.load_number}")
    if not _same(item.amount, payment.amount):
        problems.append(f"amount: ours {payment.amount}, Alvys {item.amount or 'none'}")
    if problems:
        return ends(Outcome.DIFFERING, f"Alvys payment {item.id}: " + "; ".join(problems), **facts)
    # A match keeps no vendor view: rows travel in the report's activity input, and only
    # discrepancies show the view.
    facts["vendor_view"] = ""
    return ends(
        Outcome.MATCHED, f"Alvys payment {item.id} on load {load.load_number}: {item.amount}", **facts
    )


# --------------------------------------------------------------------------------------------
# The result and the report
# --------------------------------------------------------------------------------------------


class Counts(BaseModel):
    checked: int = 0
    matched: int = 0
    missing: int = 0
    differing: int = 0
    unverifiable: int = 0

    def add(self, outcomes: Iterable[Outcome]) -> None:
        for outcome in outcomes:
            self.checked += 1
            setattr(self, outcome.value, getattr(self, outcome.value) + 1)


class ReportRequest(BaseModel):
    """What ``write_report`` writes: every row of the window, and what the run did."""

    window: Window
    reconciliation_id: str
    query: str
    counts: Counts
    rows: list[CheckedPayment]
    reads: int = 0
    opened: list[str] = Field(default_factory=list)
    already: list[str] = Field(default_factory=list)


class ReportFiles(BaseModel):
    csv: str
    markdown: str


class ReconcileProgress(BaseModel):
    """What the ``progress`` query answers while a reconciliation runs."""

    window: Window | None = None
    phase: str = "starting"
    counts: Counts = Field(default_factory=Counts)
    reads: int = 0


class ReconcileResult(BaseModel):
    """How a reconciliation ended; :meth:`line` is its one-line form."""

    reconciliation_id: str
    window: Window
    counts: Counts
    report: str
    markdown: str
    #: ``POST loads/search`` calls made.
    reads: int = 0
    #: Discrepancy workflows this run opened, and those an earlier run had already opened.
    opened: list[str] = Field(default_factory=list)
    already: list[str] = Field(default_factory=list)

    def line(self) -> str:
        c = self.counts
        return (
            f"reconcile: checked={c.checked} matched={c.matched} missing={c.missing} "
            f"differing={c.differing} unverifiable={c.unverifiable} report={self.report}"
        )

    def __str__(self) -> str:
        return self.line()


def _money_cell(money: Money | None) -> str:
    return f"{money.currency} {money.amount}" if money is not None else ""


def csv_text(rows: Sequence[CheckedPayment]) -> str:
    """The report's CSV: a header, then one row per payment (columns :data:`CSV_COLUMNS`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row.workflow_id,
                row.target,
                row.load_number or row.trip_id or row.invoice_number or "",
                row.reference,
                _money_cell(row.our_amount),
                _money_cell(row.vendor_amount),
                row.outcome.value,
                row.detail,
            ]
        )
    return out.getvalue()


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("|", "\\|").strip()


def markdown_text(request: ReportRequest, csv_name: str) -> str:
    """The report for people: the counts, each discrepancy with the vendor's view, what is unverifiable."""
    c = request.counts
    lines = [
        f"# Reconciliation {request.window.text()}",
        "",
        f"Run `{request.reconciliation_id}`; payments from `{request.query}`.",
        "",
        "| checked | matched | missing | differing | unverifiable | Alvys loads/search calls |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {c.checked} | {c.matched} | {c.missing} | {c.differing} | {c.unverifiable} | {request.reads} |",
        "",
        f"Every payment, one row each: [`{csv_name}`]({csv_name}).",
        "",
    ]
    discrepancies = [r for r in request.rows if r.outcome.is_discrepancy]
    lines += ["## Discrepancies", ""]
    if not discrepancies:
        lines += ["None.", ""]
    else:
        lines += [
            "Each is a `DiscrepancyWorkflow` (`discrepancy-{payment workflow id}`, Web UI filter "
            f"`PaymentFlags = '{UNRECONCILED}' AND ExecutionStatus = 'Running'`), closed by its "
            "`resolve` update or signal.",
            "",
            "| payment | outcome | ours | Alvys | what differs | Alvys's view |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| `{r.workflow_id}` | {r.outcome.value} | {_money_cell(r.our_amount)} | "
            f"{_money_cell(r.vendor_amount)} | {_cell(r.detail)} | {_cell(r.vendor_view)} |"
            for r in discrepancies
        ]
        lines.append("")
        if request.opened or request.already:
            lines += [
                f"Opened by this run: {len(request.opened)}; already opened by an earlier run: "
                f"{len(request.already)}.",
                "",
            ]
    unverifiable: dict[str, int] = {}
    for r in request.rows:
        if r.outcome is Outcome.UNVERIFIABLE:
            unverifiable[r.detail] = unverifiable.get(r.detail, 0) + 1
    lines += ["## Unverifiable", ""]
    if not unverifiable:
        lines += ["None.", ""]
    else:
        lines += ["| payments | why |", "|---:|---|"]
        lines += [f"| {n} | {_cell(why)} |" for why, n in sorted(unverifiable.items())]
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Discrepancies
# --------------------------------------------------------------------------------------------


def discrepancy_id(payment_workflow_id: str) -> str:
    """One discrepancy per payment, whichever run finds it: ``discrepancy-{payment workflow id}``."""
    return f"discrepancy-{payment_workflow_id}"


class DiscrepancyInput(BaseModel):
    checked: CheckedPayment
    reconciliation_id: str
    window: Window
    found_at: datetime


class ResolveDiscrepancyInput(BaseModel):
    """``resolve``: a person looked (fixed it in the vendor's UI, or accepted it) and closes it."""

    reason: str | None = None
    operator: str | None = None


class DiscrepancyState(BaseModel):
    discrepancy_id: str
    payment_workflow_id: str
    outcome: Outcome
    detail: str
    found_by: str
    resolved: bool = False
    resolved_at: datetime | None = None
    reason: str | None = None
    operator: str | None = None


def discrepancy_summary(checked: CheckedPayment) -> str:
    """The Web UI's one line: ``Unreconciled (missing): USD 120.00 on Alvys load L-1, ref CHK-1``."""
    where = f"Alvys load {checked.load_number}" if checked.load_number else checked.target
    return (
        f"Unreconciled ({checked.outcome.value}): {checked.our_amount} on {where}, ref {checked.reference}"[
            :200
        ]
    )


def discrepancy_details(input: DiscrepancyInput) -> str:
    """The Web UI's details: our facts, the vendor's view, how to close it (markdown)."""
    c = input.checked
    lines = [
        f"**{discrepancy_summary(c)}**",
        f"- Payment: `{c.workflow_id}` ({c.target})",
        f"- Outcome: **{c.outcome.value}**: {c.detail}",
        f"- Ours: {c.our_amount}, reference `{c.reference}`"
        + (f", Alvys payment id `{c.vendor_payment_id}`" if c.vendor_payment_id else ""),
        f"- Alvys: {c.vendor_amount if c.vendor_amount is not None else 'no such payment'}",
        f"- Alvys's view: {c.vendor_view or '(none)'}",
        f"- Found by `{input.reconciliation_id}` ({input.window.text()})",
        "",
        'Close it with the `resolve` update or signal: `{"reason": "...", "operator": "..."}` '
        "(Alvys has no API to change a recorded payment: fix it in Alvys's UI, then resolve).",
    ]
    return "\n".join(lines)
