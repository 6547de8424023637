"""Cash application rules (models/matching.py): the three strategies, and exact money always."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from models.deposit import Adjustment, Deposit, RemittanceLine
from models.matching import (
    KnownTarget,
    Plan,
    Strategy,
    amount_only,
    exact_sets,
    explicit,
    free_text,
    not_applied,
    plan_for,
    references_in_text,
)
from models.money import Money
from models.steps import NOT_FOUND


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def deposit(
    amount: str, lines: tuple[RemittanceLine, ...] = (), text: str = "", payer: str | None = None
) -> Deposit:
    return Deposit(
        source="x12-820",
        key="TRN-1",
        amount=usd(amount),
        reference="TRN-1",
        lines=lines,
        free_text=text,
        payer=payer,
    )


def target(ref: str, load: str, open_: str | None) -> KnownTarget:
    return KnownTarget(
        reference=ref, load_number=load, invoice_number=ref, open_balance=usd(open_) if open_ else None
    )


def exact(plan: Plan, d: Deposit) -> bool:
    return plan.applied("USD") + plan.unapplied("USD") == d.amount


def test_explicit_lines_short_pay_and_unknown_reference() -> None:
    lines = (
        RemittanceLine(reference="INV-1", amount_paid=usd("100.00"), invoice_amount=usd("100.00")),
        RemittanceLine(
            reference="INV-2",
            amount_paid=usd("45.00"),
            invoice_amount=usd("50.00"),
            adjustments=(Adjustment(amount=usd("5.00"), reason_code="CS"),),
        ),
        RemittanceLine(reference="INV-404", amount_paid=usd("30.00")),
    )
    d = deposit("175.00", lines)
    plan = explicit(d, {"INV-1": target("INV-1", "L-1", "100.00"), "INV-2": target("INV-2", "L-2", "50.00")})
    assert [(a.load_number, a.amount) for a in plan.applications] == [
        ("L-1", usd("100.00")),
        ("L-2", usd("45.00")),
    ]
    assert plan.applications[1].reason == "adjustment CS USD 5.00"
    assert [(u.reference, u.amount) for u in plan.unmatched] == [("INV-404", usd("30.00"))]
    assert exact(plan, d)


def test_a_short_pay_without_adjustment_says_so() -> None:
    d = deposit("40.00", (RemittanceLine(reference="INV-1", amount_paid=usd("40.00")),))
    (application,) = explicit(d, {"INV-1": target("INV-1", "L-1", "100.00")}).applications
    assert application.reason == "short pay: USD 40.00 of USD 100.00 open"


def test_lines_adding_up_to_more_than_the_deposit_never_overdraw_it() -> None:
    lines = tuple(RemittanceLine(reference=f"INV-{i}", amount_paid=usd("60.00")) for i in range(3))
    d = deposit("100.00", lines)
    plan = explicit(d, {f"INV-{i}": target(f"INV-{i}", f"L-{i}", "60.00") for i in range(3)})
    assert plan.applied("USD") == usd("60.00") and exact(plan, d)


def test_free_text_applies_only_an_exact_sum() -> None:
    d = deposit("150.00", text="PMT FOR INV 10021 AND LOAD L-77123 THANKS")
    assert references_in_text(d.free_text) == ["10021", "L-77123"]
    known = {"10021": target("10021", "L-1", "100.00"), "L-77123": target("L-77123", "L-77123", "50.00")}
    plan = free_text(d, known)
    assert plan.strategy is Strategy.FREE_TEXT and plan.applied("USD") == usd("150.00") and not plan.unmatched
    short = free_text(deposit("140.00", text=d.free_text), known)
    assert not short.applications and short.unapplied("USD") == usd("140.00")
    assert short.unmatched[0].candidates  # the references found are named for the person


def test_free_text_references_need_three_digits() -> None:
    """Words and short codes are not references (each candidate may cost a vendor read)."""
    text = "ACH PMT L-ABCDEF1A L-AB12CDEF INV-123 REF 99 THANK YOU 2026-12-01 12-01-2026 L-77123 l-77123"
    assert references_in_text(text) == ["INV-123", "L-77123", "l-77123"]  # dates are not references


def test_amount_only_needs_exactly_one_set() -> None:
    invoices = [
        target(f"INV-{i}", f"L-{i}", amount)
        for i, amount in enumerate(["100.00", "250.00", "75.50", "30.00"])
    ]
    one = amount_only(deposit("325.50", payer="ACME"), invoices)  # 250.00 + 75.50
    assert sorted(a.reference for a in one.applications) == ["INV-1", "INV-2"]
    ambiguous = amount_only(deposit("130.00", payer="ACME"), [*invoices, target("INV-9", "L-9", "130.00")])
    assert not ambiguous.applications and "several sets" in ambiguous.unmatched[0].reason
    assert len(ambiguous.unmatched[0].candidates) == 2
    none = amount_only(deposit("1.00", payer="ACME"), invoices)
    assert not none.applications and none.unapplied("USD") == usd("1.00")


def test_the_first_strategy_that_applies_wins() -> None:
    lines = (RemittanceLine(reference="INV-1", amount_paid=usd("10.00")),)
    assert (
        plan_for(deposit("10.00", lines), {"INV-1": target("INV-1", "L-1", "10.00")}, []).strategy
        is Strategy.EXPLICIT
    )
    by_amount = plan_for(deposit("10.00", text="NO NUMBERS HERE"), {}, [target("INV-1", "L-1", "10.00")])
    assert by_amount.strategy is Strategy.AMOUNT_ONLY and by_amount.applications


amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)


@settings(max_examples=300, deadline=None)
@given(
    total=amounts,
    paid=st.lists(amounts, max_size=8),
    known=st.lists(st.booleans(), max_size=8),
    opens=st.lists(st.one_of(st.none(), amounts), max_size=8),
)
def test_applied_plus_unapplied_is_the_deposit_exactly(
    total: Decimal, paid: list[Decimal], known: list[bool], opens: list[Decimal | None]
) -> None:
    lines = tuple(RemittanceLine(reference=f"R{i}", amount_paid=usd(str(p))) for i, p in enumerate(paid))
    targets = {
        f"R{i}": target(f"R{i}", f"L{i}", str(opens[i]) if i < len(opens) and opens[i] is not None else None)
        for i in range(len(paid))
        if i < len(known) and known[i]
    }
    invoices = [target(f"I{i}", f"L{i}", str(o)) for i, o in enumerate(opens) if o is not None]
    for d in (
        deposit(str(total), lines),
        deposit(str(total), text=" ".join(f"R{i}00" for i in range(len(paid)))),
    ):
        plan = plan_for(d, targets, invoices)
        assert exact(plan, d), plan
        assert all(a.amount.is_positive() for a in plan.applications)
        assert all(u.amount.is_positive() for u in plan.unmatched)


@settings(max_examples=100, deadline=None)
@given(st.lists(amounts, min_size=1, max_size=7), st.data())
def test_exact_sets_sum_exactly(balances: list[Decimal], data: st.DataObject) -> None:
    invoices = [target(f"I{i}", f"L{i}", str(b)) for i, b in enumerate(balances)]
    chosen = data.draw(st.lists(st.sampled_from(invoices), min_size=1, max_size=5, unique=True))
    wanted = sum((c.open_balance.amount for c in chosen if c.open_balance), Decimal(0))
    sets = exact_sets(usd(str(wanted)), invoices)
    assert sets  # the chosen set (or another with the same sum) is found
    for found in sets:
        assert sum((c.open_balance.amount for c in found if c.open_balance), Decimal(0)) == wanted


def test_applied_means_a_payment_records_the_cash() -> None:
    wid = "payment-deposit-L-1-CHK-1"
    for recorded in (
        "Paid",
        "PartiallyPaid",
        "ResolvedManually",
        "AwaitingApproval",
        "Posting",
        "NeedsReview",
    ):
        assert not_applied(wid, recorded) is None
    assert not_applied(wid, "Cancelled") == f"{wid} ended Cancelled: nothing was posted for this cash"
    for closed in ("Terminated", "TimedOut", "Failed"):
        assert f"ended {closed} before a final status" in (not_applied(wid, closed) or "")
    assert "is not found" in (not_applied(wid, NOT_FOUND) or "")
    # An older worker's answer (no status, differences without field names) changes nothing.
    assert not_applied(wid, None) is None and not_applied(wid, None, [], ["amount: ..."]) is None
    # Another amount (or target) under the key is another application; a reworded date is not.
    taken = not_applied(
        wid, "Paid", ["amount", "payment_date"], ["amount: accepted '100', this one '90'", "d"]
    )
    assert (
        taken
        == f"{wid} was accepted with other facts (amount: accepted '100', this one '90'); not applied twice"
    )
    assert not_applied(wid, "Paid", ["payment_date", "method"], ["d", "m"]) is None
    assert not_applied(wid, "Paid", ["ids.invoice_number"], ["i"]) is not None
