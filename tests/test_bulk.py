"""Bulk actions end to end: `freightpay payments retry|cancel --where ...` as a subprocess
against the dev server, the worker and the Alvys sandbox.

Payments park in NeedsReview on loads Alvys does not know yet; the loads are added afterwards,
so a bulk ``retry`` with no correction pays them. A Paid payment and one awaiting approval in
the same match set are refused, and counted so.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import typer
from rich.console import Console
from temporalio.client import Client

from cli import bulk, payments
from intake.start import payment_result, start_payment
from models.state import CancelInput, PaymentState, PaymentStatus
from tests.support import alvys_sandbox as alvys
from tests.support.payments import FAST, customer, uid, wait_status
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def freightpay(
    client: Client, task_queue: str, *args: str, address: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator's script runs it: no terminal on stdin."""
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": address or client.service_client.config.target_host,
        "FREIGHTPAY_TASK_QUEUE": task_queue,
        "COLUMNS": "250",
    }
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def cli(
    client: Client, task_queue: str, *args: str, address: str | None = None
) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(freightpay, client, task_queue, *args, address=address)


def last_line(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout.strip().splitlines()[-1]


async def visible(client: Client, where: str, expected: dict[str, str], seconds: float = 30) -> None:
    """Wait until visibility shows exactly ``expected`` (workflow id -> PaymentStatus) for the query."""
    deadline = time.monotonic() + seconds
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        seen = {m.workflow_id: m.status for m in await bulk.find(client, where)}
        if seen == expected:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"visibility shows {seen}, not {expected}")


async def parked(client: Client, task_queue: str, load: str, amount: str) -> str:
    """A payment on a load Alvys does not know (yet): it waits in NeedsReview."""
    wid = await start_payment(client, customer(load, amount), task_queue=task_queue, policy=FAST)
    await wait_status(client, wid, PaymentStatus.NEEDS_REVIEW)
    return wid


async def state(client: Client, workflow_id: str) -> PaymentState:
    answer: PaymentState = await client.get_workflow_handle(workflow_id).query(
        "status", result_type=PaymentState
    )
    return answer


@pytest.mark.usefixtures("worker")
async def test_bulk_retry_pays_the_parked_and_counts_the_refused(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    prefix = f"L-BULK-{uid()}"
    amounts = {f"{prefix}-1": "30.00", f"{prefix}-2": "40.00", f"{prefix}-3": "400.00"}
    waiting = {load: await parked(client, task_queue, load, amount) for load, amount in amounts.items()}
    await alvys.add_load(sandbox, f"{prefix}-PAID", status="Invoiced", billable="30.00")
    paid = await start_payment(
        client, customer(f"{prefix}-PAID", "30.00"), task_queue=task_queue, policy=FAST
    )
    assert (await payment_result(client, paid)).status is PaymentStatus.PAID
    await alvys.add_load(sandbox, f"{prefix}-BIG", status="Invoiced", billable="11000.00")
    big = await start_payment(
        client, customer(f"{prefix}-BIG", "11000.00"), task_queue=task_queue, policy=FAST
    )
    await wait_status(client, big, PaymentStatus.AWAITING_APPROVAL)
    where = f"LoadNumber STARTS_WITH '{prefix}'"
    await visible(
        client,
        where,
        {**dict.fromkeys(waiting.values(), "NeedsReview"), paid: "Paid", big: "AwaitingApproval"},
    )

    dry = await cli(client, task_queue, "payments", "retry", "--where", where, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert last_line(dry) == "bulk: matched=5 applied=0 refused=0 failed=0"
    assert (
        "5 payment(s) match" in dry.stdout and f"WorkflowType = 'PaymentWorkflow' AND ({where})" in dry.stdout
    )
    for wid in [*waiting.values(), paid, big]:
        assert wid in dry.stdout
    assert "NeedsReview" in dry.stdout and "11,000.00" in dry.stdout and f"{prefix}-BIG" in dry.stdout

    unconfirmed = await cli(client, task_queue, "payments", "retry", "--where", where)
    assert unconfirmed.returncode == 2, unconfirmed.stderr
    assert "no terminal to confirm at; pass --yes" in unconfirmed.stderr
    assert last_line(unconfirmed) == "bulk: matched=5 applied=0 refused=0 failed=0"
    for wid in waiting.values():  # neither acted on anything
        parked_state = await state(client, wid)
        assert parked_state.status is PaymentStatus.NEEDS_REVIEW and parked_state.actions == []

    # The loads arrive in Alvys: a retry with no correction now pays them.
    await alvys.add_load(sandbox, f"{prefix}-1", status="Invoiced", billable="30.00")
    await alvys.add_load(sandbox, f"{prefix}-2", status="Invoiced", billable="40.00")
    await alvys.add_load(sandbox, f"{prefix}-3", status="Completed", billable="1000.00")
    done = await cli(
        client, task_queue, "payments", "retry", "--where", where,
        "--yes", "--operator", "ci", "--reason", "loads arrived", "--rate", "20",
    )  # fmt: skip

    assert done.returncode == 1, done.stderr  # some were refused
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "bulk: matched=5 applied=3 refused=2 failed=0"
    assert sorted(lines[-3:-1]) == [
        "  refused 1: cannot retry while the payment is AwaitingApproval; "
        "it will ask for a person (NeedsReview) if it needs one",
        "  refused 1: the payment is already Paid",
    ]
    results = {load: await payment_result(client, wid) for load, wid in waiting.items()}
    assert {load: r.status for load, r in results.items()} == {
        f"{prefix}-1": PaymentStatus.PAID,
        f"{prefix}-2": PaymentStatus.PAID,
        f"{prefix}-3": PaymentStatus.PARTIALLY_PAID,
    }
    for wid in waiting.values():
        (action,) = (await state(client, wid)).actions
        assert (action.action, action.operator, action.reason, action.accepted) == (
            "retry",
            "ci",
            "loads arrived",
            True,
        )
    assert (await state(client, big)).status is PaymentStatus.AWAITING_APPROVAL  # refused: unchanged
    await client.get_workflow_handle(big).signal("cancel", {"reason": "test over"})


@pytest.mark.usefixtures("worker")
async def test_bulk_cancel_takes_only_what_the_query_matches(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient
) -> None:
    prefix = f"L-BULK-{uid()}"
    first = await parked(client, task_queue, f"{prefix}-1", "10.00")
    second = await parked(client, task_queue, f"{prefix}-2", "20.00")
    await alvys.add_load(sandbox, f"{prefix}-PAID", status="Invoiced", billable="30.00")
    paid = await start_payment(
        client, customer(f"{prefix}-PAID", "30.00"), task_queue=task_queue, policy=FAST
    )
    assert (await payment_result(client, paid)).status is PaymentStatus.PAID
    where = f"PaymentStatus = 'NeedsReview' AND LoadNumber STARTS_WITH '{prefix}'"
    await visible(client, where, {first: "NeedsReview", second: "NeedsReview"})

    done = await cli(client, task_queue, "payments", "cancel", "--where", where, "--yes", "--reason", "dupes")

    assert done.returncode == 0, done.stderr
    assert last_line(done) == "bulk: matched=2 applied=2 refused=0 failed=0"
    assert paid not in done.stdout
    for wid in (first, second):
        result = await payment_result(client, wid)
        assert result.status is PaymentStatus.CANCELLED and "dupes" in result.message


@pytest.mark.usefixtures("worker")
async def test_bulk_input_errors_and_an_unreachable_temporal(client: Client, task_queue: str) -> None:
    bad = await cli(client, task_queue, "payments", "retry", "--where", "LoadNumber = ", "--yes")
    assert bad.returncode == 2 and bad.stdout == ""
    (line,) = bad.stderr.strip().splitlines()
    assert line.startswith("Temporal refused the query WorkflowType = 'PaymentWorkflow' AND (LoadNumber = )")

    both = await cli(client, task_queue, "payments", "cancel", "payment-x", "--where", "LoadNumber = 'x'")
    assert both.returncode == 2 and "not both" in both.stderr
    neither = await cli(client, task_queue, "payments", "approve")
    assert neither.returncode == 2 and "give a WORKFLOW_ID, or --where" in neither.stderr
    stray = await cli(client, task_queue, "payments", "resolve", "payment-x", "--yes")
    assert stray.returncode == 2 and "go with --where" in stray.stderr

    # only payments ever match: the query is ANDed with WorkflowType = 'PaymentWorkflow'
    others = await cli(
        client, task_queue, "payments", "cancel", "--where", "WorkflowType != 'PaymentWorkflow'"
    )
    assert others.returncode == 0, others.stderr
    assert last_line(others) == "bulk: matched=0 applied=0 refused=0 failed=0"

    down = await cli(
        client,
        task_queue,
        "payments",
        "retry",
        "--where",
        "LoadNumber = 'x'",
        address=f"127.0.0.1:{free_port()}",
    )
    assert down.returncode == 3 and "cannot reach Temporal" in down.stderr


async def test_what_cannot_be_sent_is_failed_and_paced(client: Client) -> None:
    missing = [bulk.Match(workflow_id=f"payment-alvys-customer-NOPE-{uid()}") for _ in range(4)]
    started = time.monotonic()

    tally = await bulk.apply(client, missing, "cancel", CancelInput(operator="ci"), rate=10)

    assert time.monotonic() - started >= 0.3  # 4 updates at 10 a second: 0.3 s at least
    assert tally.line() == "bulk: matched=4 applied=0 refused=0 failed=4"
    assert tally.reasons() == ["  failed 4: no such payment"] and tally.exit_code() == 3


async def test_the_pacer_spaces_the_tokens() -> None:
    pacer = bulk.Pacer(rate=20)
    started = time.monotonic()
    for _ in range(5):
        await pacer.wait()
    assert 0.18 <= time.monotonic() - started < 1.0  # the first at once, then one every 50 ms


def test_the_table_shows_twenty_and_counts_the_rest() -> None:
    matches = [bulk.Match(f"payment-{n:02}", "NeedsReview", 1234.5, f"L-{n}") for n in range(25)]
    out = Console(record=True, width=200)
    out.print(bulk.match_table("the query", matches))
    text = out.export_text()
    assert "25 payment(s) match: the query" in text and "and 5 more" in text
    assert "payment-19" in text and "payment-20" not in text and "1,234.50" in text


def test_exit_codes_follow_the_worst_outcome() -> None:
    assert bulk.Tally(matched=2, applied=2).exit_code() == 0
    refused = bulk.Tally(matched=2, applied=1)
    refused.refused["no"] += 1
    assert refused.exit_code() == payments.EXIT_REFUSED == 1
    refused.failed["down"] += 1
    assert refused.exit_code() == payments.EXIT_UNREACHABLE == 3
    assert (bulk.EXIT_REFUSED, bulk.EXIT_INPUT, bulk.EXIT_UNREACHABLE) == (
        payments.EXIT_REFUSED,
        payments.EXIT_INPUT,
        payments.EXIT_UNREACHABLE,
    )


class _Terminal:
    def isatty(self) -> bool:
        return True


@pytest.mark.usefixtures("worker")
async def test_at_a_terminal_it_asks_first(
    client: Client, task_queue: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wid = await parked(client, task_queue, f"L-BULK-{uid()}", "10.00")
    where = f"WorkflowId = '{wid}'"
    await visible(client, where, {wid: "NeedsReview"})
    answers: list[str] = []
    monkeypatch.setattr(sys, "stdin", _Terminal())

    def confirm(text: str, *, default: bool, err: bool) -> bool:
        answers.append(text)
        return len(answers) > 1  # no, then yes

    monkeypatch.setattr(typer, "confirm", confirm)

    declined = await bulk.run(client, "cancel", CancelInput(operator="ci"), where)
    assert declined == 0 and (await state(client, wid)).actions == []
    assert capsys.readouterr().out.strip().splitlines()[-1] == "bulk: matched=1 applied=0 refused=0 failed=0"
    accepted = await bulk.run(client, "cancel", CancelInput(operator="ci"), where)
    assert accepted == 0 and answers == ["cancel 1 payment(s)?"] * 2
    assert capsys.readouterr().out.strip().splitlines()[-1] == "bulk: matched=1 applied=1 refused=0 failed=0"
    assert (await payment_result(client, wid)).status is PaymentStatus.CANCELLED
