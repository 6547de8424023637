"""Cash application end to end: DepositWorkflow on the dev server, real HTTP to the Alvys sandbox."""

from __future__ import annotations

import asyncio
import secrets
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client, WorkflowUpdateFailedError

from config.settings import Settings
from intake.cash import start_deposits
from models.deposit import (
    Adjustment,
    ApplyInput,
    Deposit,
    DepositState,
    DepositStatus,
    FileFormat,
    RemittanceLine,
)
from models.money import Money
from models.state import PaymentStatus
from models.steps import PaymentPolicy
from tests.support import alvys_sandbox as alvys
from tests.support.payments import uid, wait_status
from workflows.deposit import DepositWorkflow

pytestmark = pytest.mark.usefixtures("worker")


def digits() -> str:
    """Six random decimal digits."""
    return f"{secrets.randbelow(10**6):06d}"


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


async def start(
    client: Client, settings: Settings, *deposits: Deposit, raw: bytes | None = None
) -> list[str]:
    _, summary = await start_deposits(
        client,
        raw or uid().encode(),
        deposits,
        file_format=FileFormat.X12_820,
        file_name="test.x12",
        task_queue=settings.freightpay.task_queue,
        policy=PaymentPolicy(),
        data_dir=settings.freightpay.data_dir,
    )
    return [s["deposit_id"] for s in summary]


async def until(client: Client, deposit_id: str, status: DepositStatus, seconds: float = 60) -> DepositState:
    handle = client.get_workflow_handle_for(DepositWorkflow.run, deposit_id)
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        state = await handle.query(DepositWorkflow.state)
        settled = all(a.payment_status not in ("Received", "Running") for a in state.applications)
        if state.status is status and settled:
            return state
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{deposit_id} is {state.status}: {state}")
        await asyncio.sleep(0.2)


async def test_explicit_lines_short_pay_and_an_unknown_line_then_apply(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient, tmp_path: Path
) -> None:
    a, b, trace = f"L-{uid()}", f"L-{uid()}", f"TRN-{uid()}"
    await alvys.add_load(sandbox, a, status="Invoiced", billable="100.00")
    await alvys.add_load(sandbox, b, status="Invoiced", billable="50.00")
    deposit = Deposit(
        source="x12-820",
        key=trace,
        amount=usd("175.00"),
        reference=trace,
        payer="ACME",
        lines=(
            RemittanceLine(reference=a, amount_paid=usd("100.00"), invoice_amount=usd("100.00")),
            RemittanceLine(
                reference=b,
                amount_paid=usd("45.00"),
                invoice_amount=usd("50.00"),
                adjustments=(Adjustment(amount=usd("5.00"), reason_code="CS"),),
            ),
            RemittanceLine(reference=f"NOPE-{uid()}", amount_paid=usd("30.00")),
        ),
    )
    (deposit_id,) = await start(client, settings, deposit)
    assert deposit_id == f"deposit-x12-820-{trace}"

    state = await until(client, deposit_id, DepositStatus.UNAPPLIED)

    assert state.applied == usd("145.00") and state.unapplied == usd("30.00")
    by_load = {x.load_number: x for x in state.applications}
    assert by_load[a].payment_status == "Paid" and by_load[b].payment_status == "PartiallyPaid"
    assert by_load[b].reason == "adjustment CS USD 5.00"
    assert next(u.reason for u in state.unmatched).startswith("no invoice or load NOPE-")
    assert sorted(await alvys.postings(sandbox, trace)) == sorted(
        [
            ("customer", a, Decimal("100.00")),
            ("customer", b, Decimal("45.00")),
        ]
    )

    handle = client.get_workflow_handle_for(DepositWorkflow.run, deposit_id)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            "apply", ApplyInput(load_number=b, amount=Decimal("31.00")), result_type=DepositState
        )
    assert "more than the unapplied USD 30.00" in str(refused.value.cause)
    c = f"L-{uid()}"
    await alvys.add_load(sandbox, c, status="Invoiced", billable="30.00")
    await handle.execute_update(
        "apply", ApplyInput(load_number=c, amount=Decimal("30.00"), operator="t"), result_type=DepositState
    )
    done = await asyncio.wait_for(handle.result(), 60)
    assert done.status is DepositStatus.APPLIED and done.unapplied == usd("0.00")
    assert done.applied + done.unapplied == deposit.amount


async def test_free_text_references_adding_up_are_paid_in_full(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    # Free text names references by their digits (models.matching.references_in_text): these
    # load numbers have them whatever uid() draws (8 hex characters can hold fewer than 3 digits).
    a, b, ref = f"L-{uid()}-{digits()}", f"L-{uid()}-{digits()}", f"BNK{uid()}"
    await alvys.add_load(sandbox, a, status="Invoiced", billable="120.00")
    await alvys.add_load(sandbox, b, status="Invoiced", billable="80.50")
    deposit = Deposit(
        source="bai2",
        key=ref,
        amount=usd("200.50"),
        reference=ref,
        free_text=f"PAYMENT LOADS {a} AND {b} THANK YOU",
    )
    (deposit_id,) = await start(client, settings, deposit)
    done = await asyncio.wait_for(
        client.get_workflow_handle_for(DepositWorkflow.run, deposit_id).result(), 60
    )
    assert done.status is DepositStatus.APPLIED and done.strategy == "free_text"
    assert sorted((x.load_number, x.amount) for x in done.applications) == sorted(
        [(a, usd("120.00")), (b, usd("80.50"))]
    )


async def test_the_same_deposit_in_two_files_posts_once(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    a, trace = f"L-{uid()}", f"TRN-{uid()}"
    await alvys.add_load(sandbox, a, status="Invoiced", billable="60.00")
    deposit = Deposit(
        source="x12-820",
        key=trace,
        amount=usd("60.00"),
        reference=trace,
        lines=(RemittanceLine(reference=a, amount_paid=usd("60.00")),),
    )
    first = await start(client, settings, deposit, raw=b"file one")
    second = await start(client, settings, deposit, raw=b"file two")
    again = await start(client, settings, deposit, raw=b"file one")
    assert first == second == again
    done = await asyncio.wait_for(client.get_workflow_handle_for(DepositWorkflow.run, first[0]).result(), 60)
    assert done.status is DepositStatus.APPLIED
    assert await alvys.postings(sandbox, trace) == [("customer", a, Decimal("60.00"))]


async def test_resolve_ends_a_deposit_with_unapplied_cash(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    ref = f"BNK{uid()}"
    deposit = Deposit(
        source="bai2", key=ref, amount=usd("99.99"), reference=ref, free_text="NOTHING TO SEE 1234567"
    )
    (deposit_id,) = await start(client, settings, deposit)
    state = await until(client, deposit_id, DepositStatus.UNAPPLIED)
    assert state.unapplied == usd("99.99") and not state.applications
    handle = client.get_workflow_handle_for(DepositWorkflow.run, deposit_id)
    from models.deposit import ResolveDepositInput

    await handle.execute_update(
        "resolve", ResolveDepositInput(reason="refunded", operator="t"), result_type=DepositState
    )
    done = await asyncio.wait_for(handle.result(), 30)
    assert done.status is DepositStatus.RESOLVED and "refunded" in (done.resolution or "")


async def test_amount_only_applies_the_one_exact_set_and_leaves_an_ambiguous_one_unapplied(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    """The payer's open invoices by amount alone: applied only when exactly one set of 1..5 fits."""
    tag = uid()
    payer = f"Payer {tag} Inc."
    customer = await alvys.add_customer(sandbox, payer)
    loads = {
        amount: f"L-{tag}-{i}" for i, amount in enumerate(["100.00", "250.00", "75.50", "30.00", "105.50"])
    }
    for amount, load in loads.items():
        await alvys.add_load(sandbox, load, status="Invoiced", billable=amount, customer=customer["Id"])

    def by_amount(amount: str, key: str) -> Deposit:
        # The bank prints the payer's name its own way: upper case, without "Inc.".
        return Deposit(source="camt054", key=key, amount=usd(amount), reference=key, payer=f"PAYER {tag}")

    one, ambiguous = by_amount("325.50", f"E2E-{tag}-1"), by_amount("355.50", f"E2E-{tag}-2")
    (one_id, ambiguous_id) = await start(client, settings, one, ambiguous)

    done = await asyncio.wait_for(client.get_workflow_handle_for(DepositWorkflow.run, one_id).result(), 60)
    assert done.strategy == "amount_only" and done.status is DepositStatus.APPLIED
    assert sorted(a.load_number or "" for a in done.applications) == sorted([loads["250.00"], loads["75.50"]])
    unsure = await until(client, ambiguous_id, DepositStatus.UNAPPLIED)
    assert not unsure.applications and unsure.unapplied == usd("355.50")
    (why,) = unsure.unmatched
    assert "several sets" in why.reason and len(why.candidates) >= 2  # 250 + 105.50, 250 + 75.50 + 30


async def test_temporal_cancellation_of_a_deposit_ends_it_resolved_saying_so(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    ref = f"BNK{uid()}"
    deposit = Deposit(source="bai2", key=ref, amount=usd("12.34"), reference=ref, free_text="NOTHING 7654321")
    (deposit_id,) = await start(client, settings, deposit)
    await until(client, deposit_id, DepositStatus.UNAPPLIED)
    handle = client.get_workflow_handle(deposit_id)

    await handle.cancel()  # the Web UI's Request Cancellation

    from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), 30)
    described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.CANCELED
    from workflows.search_attributes import DEPOSIT_STATUS

    assert described.typed_search_attributes.get(DEPOSIT_STATUS) == "Resolved"


# ---------------------------------------------------------------- applied means recorded


def over_the_open_balance(load: str, trace: str, amount: str = "120.00") -> Deposit:
    """A line paying more than is open on the load: its payment waits for approval."""
    return Deposit(
        source="x12-820",
        key=trace,
        amount=usd(amount),
        reference=trace,
        lines=(RemittanceLine(reference=load, amount_paid=usd(amount)),),
    )


async def test_a_payment_cancelled_by_an_operator_gives_its_cash_back_unapplied(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    """Never a false Applied: the deposit's money comes back when its payment ends posting nothing."""
    from models.state import CancelInput

    a, trace = f"L-{uid()}", f"TRN-{uid()}"
    await alvys.add_load(sandbox, a, status="Invoiced", billable="100.00")
    (deposit_id,) = await start(client, settings, over_the_open_balance(a, trace))
    payment = f"payment-deposit-{a}-{trace}"
    await wait_status(client, payment, PaymentStatus.AWAITING_APPROVAL)

    await client.get_workflow_handle(payment).execute_update("cancel", CancelInput(reason="not ours"))

    state = await until(client, deposit_id, DepositStatus.UNAPPLIED)
    assert not state.applications and state.unapplied == usd("120.00")
    (why,) = state.unmatched
    assert (
        why.amount == usd("120.00")
        and why.reason == f"{payment} ended Cancelled: nothing was posted for this cash"
    )
    assert state.applied + state.unapplied == state.deposit.amount
    assert await alvys.postings(sandbox, trace) == []
    handle = client.get_workflow_handle_for(DepositWorkflow.run, deposit_id)
    from models.deposit import ResolveDepositInput

    await handle.execute_update(
        "resolve", ResolveDepositInput(reason="returned to payer"), result_type=DepositState
    )
    done = await asyncio.wait_for(handle.result(), 30)
    assert done.status is DepositStatus.RESOLVED


async def test_a_payment_terminated_through_temporal_gives_its_cash_back_unapplied(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    a, trace = f"L-{uid()}", f"TRN-{uid()}"
    await alvys.add_load(sandbox, a, status="Invoiced", billable="100.00")
    (deposit_id,) = await start(client, settings, over_the_open_balance(a, trace, "150.00"))
    payment = f"payment-deposit-{a}-{trace}"
    await wait_status(client, payment, PaymentStatus.AWAITING_APPROVAL)

    await client.get_workflow_handle(payment).terminate(reason="test")

    state = await until(client, deposit_id, DepositStatus.UNAPPLIED)
    assert not state.applications and state.unapplied == usd("150.00")
    assert state.unmatched[0].reason.startswith(f"{payment} ended Terminated before a final status")


async def test_a_key_another_deposit_took_with_another_amount_is_not_applied_twice(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    """The bank's deposit and the payer's 820 name one check: the same load and reference."""
    a, b, trace = f"L-{uid()}", f"L-{uid()}", f"CHK-{uid()}"
    await alvys.add_load(sandbox, a, status="Invoiced", billable="100.00")
    await alvys.add_load(sandbox, b, status="Invoiced", billable="40.00")
    first = Deposit(
        source="x12-820",
        key=trace,
        amount=usd("100.00"),
        reference=trace,
        lines=(RemittanceLine(reference=a, amount_paid=usd("100.00")),),
    )
    (first_id,) = await start(client, settings, first)
    assert (
        await asyncio.wait_for(client.get_workflow_handle_for(DepositWorkflow.run, first_id).result(), 60)
    ).status is DepositStatus.APPLIED

    # The same check in a camt.054, split otherwise: 90 on a (taken, with 100), 40 on b.
    second = Deposit(
        source="camt054",
        key=trace,
        amount=usd("130.00"),
        reference=trace,
        lines=(
            RemittanceLine(reference=a, amount_paid=usd("90.00")),
            RemittanceLine(reference=b, amount_paid=usd("40.00")),
        ),
    )
    (second_id,) = await start(client, settings, second)
    state = await until(client, second_id, DepositStatus.UNAPPLIED)
    assert [(x.load_number, x.amount, x.payment_status) for x in state.applications] == [
        (b, usd("40.00"), "Paid")
    ]
    (why,) = state.unmatched
    payment = f"payment-deposit-{a}-{trace}"
    assert why.amount == usd("90.00") and why.reason.startswith(
        f"{payment} was accepted with other facts (amount:"
    )
    assert state.applied + state.unapplied == second.amount
    assert sorted(await alvys.postings(sandbox, trace)) == sorted(
        [("customer", a, Decimal("100.00")), ("customer", b, Decimal("40.00"))]
    )


async def test_a_key_another_deposit_took_with_the_same_facts_is_that_payment(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient
) -> None:
    a, trace = f"L-{uid()}", f"CHK-{uid()}"
    await alvys.add_load(sandbox, a, status="Invoiced", billable="75.00")

    def deposit(source: str) -> Deposit:
        line = RemittanceLine(reference=a, amount_paid=usd("75.00"))
        return Deposit(source=source, key=trace, amount=usd("75.00"), reference=trace, lines=(line,))

    (first_id,) = await start(client, settings, deposit("x12-820"))
    await asyncio.wait_for(client.get_workflow_handle_for(DepositWorkflow.run, first_id).result(), 60)
    (second_id,) = await start(client, settings, deposit("camt054"))
    done = await asyncio.wait_for(client.get_workflow_handle_for(DepositWorkflow.run, second_id).result(), 60)
    assert done.status is DepositStatus.APPLIED and not done.unmatched
    assert [x.payment_status for x in done.applications] == ["AlreadyStarted"]
    assert await alvys.postings(sandbox, trace) == [("customer", a, Decimal("75.00"))]
