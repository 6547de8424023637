"""Cash application: which invoices a deposit pays, and how much of it is left unapplied.

Pure rules (no I/O): the deposit workflow looks the references up at the vendor (facts:
:class:`KnownTarget`) and asks these functions for a :class:`Plan`. Three strategies, in
order, the first that applies wins:

1. **explicit** references with amounts (X12 820 ``RMR``, camt.054 structured remittance, a
   factor's report): each line as stated, on the invoice or load it names; a line naming
   nothing the vendor knows stays unapplied, with the reason;
2. **free text** (BAI2 ``88``, camt.054 ``Ustrd``): the invoice, load and PO numbers found in
   the text that the vendor knows; applied only when the deposit equals the sum of their open
   balances exactly, each paid in full;
3. **amount only**: the payer's open invoices, one to five of them summing exactly to the
   deposit; applied only when exactly one such set exists.

Whatever is not applied is unapplied cash on the deposit, never guessed. The money is exact
at every moment: the applications and the unapplied amount always add up to the deposit.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from models.deposit import Deposit, KnownTarget, RemittanceLine
from models.deposit import UnmatchedCash as Unmatched
from models.money import Money
from models.steps import NOT_FOUND

#: At most this many invoices are combined to explain an amount-only deposit.
MAX_SET_SIZE = 5
#: Beyond this many open invoices the amount-only search is not tried (C(n, 5) grows fast).
MAX_CANDIDATES = 40

__all__ = ["Application", "KnownTarget", "Plan", "Strategy", "Unmatched", "plan_for"]


class Strategy(StrEnum):
    EXPLICIT = "explicit"
    FREE_TEXT = "free_text"
    AMOUNT_ONLY = "amount_only"
    OPERATOR = "operator"


class Application(BaseModel):
    """Money of the deposit applied to one load (one payment)."""

    model_config = ConfigDict(frozen=True)

    reference: str
    load_number: str
    invoice_number: str | None = None
    amount: Money
    #: What was open before this payment, where known (more than it: held for approval).
    open_balance: Money | None = None
    #: Why it pays less than is open (the 820 ``ADX`` code and amount, or "short pay").
    reason: str | None = None
    strategy: Strategy


class Plan(BaseModel):
    """How a deposit's amount is split: ``applied + unapplied == deposit.amount``, exactly."""

    applications: list[Application] = Field(default_factory=list)
    unmatched: list[Unmatched] = Field(default_factory=list)
    strategy: Strategy | None = None

    def applied(self, currency: str) -> Money:
        return _sum([a.amount for a in self.applications], currency)

    def unapplied(self, currency: str) -> Money:
        return _sum([u.amount for u in self.unmatched], currency)


def _sum(amounts: Sequence[Money], currency: str) -> Money:
    total = Money.of("0", currency)
    for amount in amounts:
        total = total + amount
    return total


#: Tokens that could be invoice, load or PO numbers: 3 to 31 letters, digits and dashes.
#: :func:`references_in_text` keeps those with at least 3 digits, so words ("THANK", "ACH")
#: and short codes never cost a vendor read.
_TOKEN = re.compile(r"(?<![A-Za-z0-9-])([A-Za-z0-9][A-Za-z0-9-]{2,30})(?![A-Za-z0-9-])")


#: Dates written with dashes (``2026-12-01``, ``12-01-2026``): a bank's value date, not a reference.
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}-\d{1,2}-\d{2,4}")


def references_in_text(text: str) -> list[str]:
    """Candidate invoice, load and PO numbers in a bank's free text, in order, without repeats."""
    found = [m.group(1).strip("-") for m in _TOKEN.finditer(text or "")]
    return list(
        dict.fromkeys(t for t in found if sum(c.isdigit() for c in t) >= 3 and not _DATE.fullmatch(t))
    )


def _short_pay(line: RemittanceLine, open_balance: Money | None) -> str | None:
    if line.adjustments:
        return "; ".join(
            f"adjustment {a.reason_code or '?'} {a.amount}" + (f" ({a.text})" if a.text else "")
            for a in line.adjustments
        )
    if open_balance is not None and line.amount_paid < open_balance:
        return f"short pay: {line.amount_paid} of {open_balance} open"
    if line.invoice_amount is not None and line.amount_paid < line.invoice_amount:
        return f"short pay: {line.amount_paid} of the invoice's {line.invoice_amount}"
    return None


def explicit(deposit: Deposit, known: dict[str, KnownTarget]) -> Plan:
    """Each line as stated; lines naming nothing known, and any remainder, stay unapplied."""
    currency = deposit.amount.currency
    plan = Plan(strategy=Strategy.EXPLICIT)
    for line in deposit.lines:
        target = known.get(line.reference)
        if line.amount_paid.currency != currency:
            plan.unmatched.append(
                Unmatched(
                    reference=line.reference,
                    amount=line.amount_paid,
                    reason="in another currency than the deposit",
                )
            )
        elif target is None:
            plan.unmatched.append(
                Unmatched(
                    reference=line.reference,
                    amount=line.amount_paid,
                    reason=f"no invoice or load {line.reference} at the vendor",
                )
            )
        elif not line.amount_paid.is_positive():
            continue
        else:
            plan.applications.append(
                Application(
                    reference=line.reference,
                    load_number=target.load_number,
                    invoice_number=target.invoice_number,
                    amount=line.amount_paid,
                    open_balance=target.open_balance,
                    reason=_short_pay(line, target.open_balance),
                    strategy=Strategy.EXPLICIT,
                )
            )
    return _with_remainder(deposit, plan, "the deposit is more than its lines add up to")


def free_text(deposit: Deposit, known: dict[str, KnownTarget]) -> Plan:
    """The known references found in the text, each paid in full, when they add up exactly."""
    currency = deposit.amount.currency
    targets = list({t.load_number: t for t in known.values()}.values())
    if targets and all(t.open_balance is not None and t.open_balance.currency == currency for t in targets):
        total = _sum([t.open_balance for t in targets if t.open_balance is not None], currency)
        if total == deposit.amount:
            return Plan(
                strategy=Strategy.FREE_TEXT,
                applications=[
                    Application(
                        reference=t.reference,
                        load_number=t.load_number,
                        invoice_number=t.invoice_number,
                        amount=t.open_balance,
                        open_balance=t.open_balance,
                        strategy=Strategy.FREE_TEXT,
                    )
                    for t in targets
                ],
            )
    candidates = [f"{t.reference} (open {t.open_balance})" for t in targets]
    reason = (
        "the references in the text do not add up to the deposit"
        if targets
        else "no reference in the text is known to the vendor"
    )
    return Plan(
        strategy=Strategy.FREE_TEXT,
        unmatched=[Unmatched(amount=deposit.amount, reason=reason, candidates=candidates)],
    )


def exact_sets(
    amount: Money, invoices: Sequence[KnownTarget], max_size: int = MAX_SET_SIZE
) -> list[tuple[KnownTarget, ...]]:
    """Every set of 1..``max_size`` open invoices whose balances add up to ``amount`` exactly."""
    usable = [
        i for i in invoices if i.open_balance is not None and i.open_balance.currency == amount.currency
    ]
    usable = [i for i in usable if i.open_balance is not None and i.open_balance.is_positive()]
    found: list[tuple[KnownTarget, ...]] = []
    for size in range(1, min(max_size, len(usable)) + 1):
        for combo in itertools.combinations(usable, size):
            if _sum([c.open_balance for c in combo if c.open_balance is not None], amount.currency) == amount:
                found.append(combo)
                if len(found) > 1:
                    return found  # ambiguous already: no need to find them all
    return found


def amount_only(deposit: Deposit, open_invoices: Sequence[KnownTarget]) -> Plan:
    """The payer's open invoices that explain the amount exactly, only when one set does."""
    if not open_invoices:
        reason = (
            f"no open invoices found for payer {deposit.payer!r}"
            if deposit.payer
            else "no payer and no references"
        )
        return Plan(
            strategy=Strategy.AMOUNT_ONLY, unmatched=[Unmatched(amount=deposit.amount, reason=reason)]
        )
    if len(open_invoices) > MAX_CANDIDATES:
        return Plan(
            strategy=Strategy.AMOUNT_ONLY,
            unmatched=[
                Unmatched(
                    amount=deposit.amount,
                    reason=f"the payer has {len(open_invoices)} open invoices; too many to match by amount alone",
                )
            ],
        )
    sets = exact_sets(deposit.amount, open_invoices)
    if len(sets) == 1:
        return Plan(
            strategy=Strategy.AMOUNT_ONLY,
            applications=[
                Application(
                    reference=t.invoice_number or t.reference,
                    load_number=t.load_number,
                    invoice_number=t.invoice_number,
                    amount=t.open_balance,
                    open_balance=t.open_balance,
                    strategy=Strategy.AMOUNT_ONLY,
                )
                for t in sets[0]
            ],
        )
    if sets:
        candidates = [
            " + ".join(f"{t.invoice_number or t.reference} ({t.open_balance})" for t in s) for s in sets
        ]
        reason = "several sets of open invoices add up to the deposit"
    else:
        candidates = [f"{t.invoice_number or t.reference} ({t.open_balance})" for t in open_invoices[:10]]
        reason = "no set of up to five open invoices adds up to the deposit"
    return Plan(
        strategy=Strategy.AMOUNT_ONLY,
        unmatched=[Unmatched(amount=deposit.amount, reason=reason, candidates=candidates)],
    )


def _with_remainder(deposit: Deposit, plan: Plan, reason: str) -> Plan:
    """The plan with whatever the deposit has beyond its lines as unapplied cash.

    Lines adding up to more than the deposit cannot all be applied: the lines are kept as they
    are only while they fit, the rest become unapplied (never a negative remainder).
    """
    currency = deposit.amount.currency
    room = deposit.amount
    fitting: list[Application] = []
    for application in plan.applications:
        if application.amount <= room:
            fitting.append(application)
            room = room - application.amount
        else:
            plan.unmatched.append(
                Unmatched(
                    reference=application.reference,
                    amount=application.amount,
                    reason="the lines add up to more than the deposit",
                )
            )
    plan.applications = fitting
    unapplied = plan.unapplied(currency)
    # Unmatched lines are money the payer said it sent: they count against the deposit too.
    remainder = room - unapplied if unapplied <= room else None
    if remainder is None:
        # Lines that matched nothing add up to more than is left: keep only what is left.
        plan.unmatched = _trim(plan.unmatched, room)
    elif remainder.is_positive():
        plan.unmatched.append(Unmatched(amount=remainder, reason=reason))
    return plan


def _trim(unmatched: list[Unmatched], room: Money) -> list[Unmatched]:
    kept: list[Unmatched] = []
    for item in unmatched:
        if not room.is_positive():
            break
        amount = item.amount if item.amount <= room else room
        kept.append(item.model_copy(update={"amount": amount}))
        room = room - amount
    return kept


def plan_for(deposit: Deposit, known: dict[str, KnownTarget], open_invoices: Sequence[KnownTarget]) -> Plan:
    """The first strategy that applies: explicit lines, else free text, else amount only."""
    if deposit.lines:
        return explicit(deposit, known)
    if references_in_text(deposit.free_text):
        plan = free_text(deposit, known)
        if plan.applications or not open_invoices:
            return plan
    return amount_only(deposit, open_invoices)


#: How a payment ends without its cash being recorded: cancelled (nothing was posted), or
#: closed by Temporal (terminated, timed out, failed) before it reached a final status.
NOT_RECORDED = frozenset({"Cancelled", "Failed", "Terminated", "TimedOut"})
#: The facts an application is: a payment accepted under its key with other values of these
#: is another application, whatever its note, date or method say.
APPLICATION_FIELDS = frozenset({"target", "amount", "currency"})


def not_applied(
    workflow_id: str,
    status: str | None,
    fields: Sequence[str] = (),
    differences: Sequence[str] = (),
) -> str | None:
    """Why a deposit's money given to the payment ``workflow_id`` is not applied, or None if it is.

    A deposit counts as applied only money a payment records: not money whose key another,
    different payment holds (``fields`` and ``differences`` compare it with the one accepted),
    not a payment that ended ``Cancelled`` or was closed by Temporal before a final status,
    and not a payment freightpay can no longer find (``status`` :data:`~models.steps.NOT_FOUND`;
    None is an older worker's answer, which says nothing). That money is unapplied cash again, for
    a person to ``apply`` elsewhere or ``resolve``.
    """
    # An older worker's answer names no fields and no status: nothing is known beyond what the
    # deposit saw, so it counts as before (``strict=False``: its differences have no fields).
    other = [
        d
        for f, d in zip(fields, differences, strict=False)
        if f in APPLICATION_FIELDS or f.startswith("ids.")
    ]
    if other:
        return f"{workflow_id} was accepted with other facts ({'; '.join(other)}); not applied twice"
    if status == NOT_FOUND:
        return f"{workflow_id} is not found (removed after its retention?): nothing is known to be recorded"
    if status == "Cancelled":
        return f"{workflow_id} ended Cancelled: nothing was posted for this cash"
    if status in NOT_RECORDED:
        return (
            f"{workflow_id} ended {status} before a final status: nothing is known to be recorded "
            "(look at the load in Alvys, then apply or resolve)"
        )
    return None
