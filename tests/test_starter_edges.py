"""starter.py (and ``freightpay payments submit``) at its edges: size limits, Temporal trouble,
string amounts, conflicting repeats, and ``--wait`` on payments that park or are terminated.

Each runs the real command as a subprocess against the session's dev server, a real worker
and the sandbox; none may print a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowFailureError

from config.settings import FreightpaySettings, Settings
from intake.errors import FieldDifference, IntakeError, PaymentConflict, PaymentConflicts
from intake.parse import parse_body
from starter import conflict_lines
from tests.support import alvys_sandbox as alvys
from tests.support.payments import uid
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
LIMITS = FreightpaySettings()


def customer_body(load: str, ref: str, amount: Any = 382.53) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((ROOT / "examples" / "alvys-customer-payment.json").read_text())
    body.update(LoadNumber=load, ReferenceNumber=ref)
    del body["InvoiceNumber"]  # the load is given: nothing to resolve
    body["Amount"] = {"Amount": amount, "Currency": 840}
    return body


def env_for(client: Client, settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "FREIGHTPAY_TASK_QUEUE": settings.freightpay.task_queue,
        "FREIGHTPAY_DATA_DIR": settings.freightpay.data_dir,
        "COLUMNS": "200",
        **extra,
    }


async def starter(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "starter.py", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


async def submit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli.main", "payments", "submit", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def write(path: Path, body: Any) -> Path:
    path.write_text(json.dumps(body))
    return path


async def count_payments(client: Client, task_queue: str) -> int:
    return len([e async for e in client.list_workflows(f"TaskQueue = '{task_queue}'")])


# -- size limits: refused before anything is read, in one line ---------------------------------


async def test_a_json_body_over_the_limit_is_refused_in_one_line(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    big = tmp_path / "big.json"
    padding = LIMITS.max_json_bytes * 5  # 5 MB: today a gRPC "message larger than max" traceback
    big.write_text(json.dumps({**customer_body("L-1", "R-1"), "Note": "x" * padding}))
    size = big.stat().st_size
    env = env_for(client, settings)

    for done in (
        await starter(env, "alvys-customer-payment", str(big)),
        await submit(env, "alvys-customer-payment", str(big), "--wait"),
    ):
        assert done.returncode == 2, done.stderr
        assert done.stdout == "" and "Traceback" not in done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert str(big) in line and f"{size:,} bytes" in line and f"{LIMITS.max_json_bytes:,} bytes" in line
        assert "nothing was started" in line
    assert await count_payments(client, settings.freightpay.task_queue) == 0


async def test_a_remittance_file_over_the_limit_is_refused_by_its_size_alone(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    csv = tmp_path / "huge.csv"
    with csv.open("wb") as handle:  # sparse: its size says too big; its content is never read
        handle.truncate(LIMITS.max_file_bytes + 1)

    done = await starter(env_for(client, settings), "remittance", str(csv))

    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert f"{LIMITS.max_file_bytes + 1:,} bytes" in line and f"{LIMITS.max_file_bytes:,} bytes" in line
    assert str(csv) in line and "nothing was started" in line


async def test_a_json_body_at_the_limit_is_read(client: Client, settings: Settings, tmp_path: Path) -> None:
    file = tmp_path / "padded.json"
    text = json.dumps(customer_body("L-1", "R-1"))  # no PaymentDate problem: only the size matters
    file.write_text(text[:-1] + " " * (LIMITS.max_json_bytes - len(text)) + "}")
    assert file.stat().st_size == LIMITS.max_json_bytes

    done = await starter(env_for(client, settings), "mycarrier", str(file))  # not a MyCarrier body

    assert done.returncode == 2 and "over the limit" not in done.stderr  # read and parsed
    assert "nothing was started" in done.stderr and "Traceback" not in done.stderr


# -- Temporal trouble: one line, exit 3 ----------------------------------------------------------


async def test_temporal_refusing_the_start_is_one_line_and_exit_3(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    file = write(tmp_path / "p.json", customer_body(f"L-{uid()}", f"CHK-{uid()}"))

    done = await starter(env_for(client, settings, TEMPORAL_NAMESPACE="no-such-namespace"),
                         "alvys-customer-payment", str(file))  # fmt: skip

    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("Temporal refused the request (NOT_FOUND)") and "no-such-namespace" in line


async def test_temporal_unreachable_is_one_line_and_exit_3(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    file = write(tmp_path / "p.json", customer_body(f"L-{uid()}", f"CHK-{uid()}"))

    done = await starter(env_for(client, settings, TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}"),
                         "alvys-customer-payment", str(file))  # fmt: skip

    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("cannot reach Temporal: ")


# -- Alvys amounts must be JSON numbers, as on the TransportOne route ---------------------------


def test_a_string_amount_is_refused_on_the_alvys_routes() -> None:
    for source in ("alvys-customer-payment", "alvys-carrier-payment"):
        body = {
            "LoadNumber": "L-1001",
            "TripId": "T-1001",
            "Amount": {"Amount": "50.00", "Currency": 840},
            "PaymentDate": "2026-11-20T15:00:00Z",
            "ReferenceNumber": "CHK-1",
        }
        if source == "alvys-customer-payment":
            del body["TripId"]
        else:
            del body["LoadNumber"]
        with pytest.raises(IntakeError) as info:
            parse_body(source, json.dumps(body))
        assert [str(p) for p in info.value.problems] == ["Amount.Amount: must be a number, not a string"]
    # the number itself is read exactly
    (instruction,) = parse_body("alvys-customer-payment", json.dumps(customer_body("L-1", "R", 50.1)))
    assert str(instruction.amount) == "USD 50.10"


async def test_starter_refuses_a_string_amount_naming_the_field(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    file = write(tmp_path / "p.json", customer_body(f"L-{uid()}", f"CHK-{uid()}", amount="50.00"))

    done = await starter(env_for(client, settings), "alvys-customer-payment", str(file))

    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert "nothing was started" in done.stderr
    assert "  Amount.Amount: must be a number, not a string" in done.stderr.splitlines()


# -- conflicting repeats: one line per payment, exit 5 -------------------------------------------


def test_conflict_lines_name_where_the_payment_and_each_difference() -> None:
    conflicts = PaymentConflicts(
        [
            PaymentConflict(
                "payment-alvys-customer-L-1-R",
                [FieldDifference("amount", "382.53", "400.00"), FieldDifference("method", "Check", "")],
                "[1]",
            ),
            PaymentConflict(
                "payment-alvys-customer-L-2-R", [FieldDifference("ids.load_number", "L-2", "L-3")]
            ),
        ]
    )
    assert conflict_lines(conflicts) == [
        "conflict: [1]: payment-alvys-customer-L-1-R already accepted with other facts: "
        "amount: accepted '382.53', this one '400.00'; method: accepted 'Check', this one '(none)'",
        "conflict: payment-alvys-customer-L-2-R already accepted with other facts: "
        "ids.load_number: accepted 'L-2', this one 'L-3'",
    ]


@pytest.mark.usefixtures("worker")
async def test_a_repeat_with_another_amount_is_refused_with_exit_5(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient, tmp_path: Path
) -> None:
    load, ref = f"L-{uid()}", f"CHK-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="382.53")
    env = env_for(client, settings)
    first = await starter(
        env, "alvys-customer-payment", str(write(tmp_path / "a.json", customer_body(load, ref)))
    )
    assert first.returncode == 0, first.stderr
    workflow_id = first.stdout.strip()
    other = write(tmp_path / "b.json", customer_body(load, ref, amount=400))
    fresh_ref = f"CHK-{uid()}"
    both = write(tmp_path / "c.json", [customer_body(load, fresh_ref), customer_body(load, ref, amount=400)])

    for done in (
        await starter(env, "alvys-customer-payment", str(other)),
        await submit(env, "alvys-customer-payment", str(other), "--wait"),
    ):
        assert done.returncode == 5, done.stdout + done.stderr
        assert done.stdout == "" and "Traceback" not in done.stderr
        conflict, summary = done.stderr.strip().splitlines()
        assert conflict == (
            f"conflict: {workflow_id} already accepted with other facts: amount: accepted '382.53', this one '400.00'"
        )
        assert summary == f"{other}: refused: a repeat with other facts; nothing was started"

    # in a list, the line says which item; the other, new payment is not started either
    listed = await starter(env, "alvys-customer-payment", str(both))
    assert listed.returncode == 5, listed.stdout + listed.stderr
    assert listed.stderr.startswith(
        f"conflict: [1]: {workflow_id} already accepted with other facts: amount:"
    )
    assert await count_payments(client, settings.freightpay.task_queue) == 1


# -- --wait: a payment that parks for a person, or is terminated, does not hang it ---------------


@pytest.mark.usefixtures("worker")
async def test_wait_reports_parked_payments_and_goes_on(
    client: Client, settings: Settings, sandbox: httpx.AsyncClient, tmp_path: Path
) -> None:
    big_load, load, ref = f"L-{uid()}", f"L-{uid()}", f"CHK-{uid()}"
    await alvys.add_load(sandbox, big_load, status="Invoiced", billable="25000.00")
    await alvys.add_load(sandbox, load, status="Invoiced", billable="382.53")
    file = write(
        tmp_path / "three.json",
        [
            customer_body(big_load, ref, amount=25000),  # over the approval threshold
            customer_body(f"L-NOPE-{uid()}", ref),  # no such load: NeedsReview
            customer_body(load, ref),  # paid
        ],
    )

    done = await starter(env_for(client, settings), "alvys-customer-payment", str(file), "--wait", timeout=60)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    ids, reports = lines[:3], [json.loads(line) for line in lines[3:]]
    assert [r["workflow_id"] for r in reports] == ids
    approval, review, paid = reports
    assert set(approval) == {"workflow_id", "status", "waiting_for", "reason"}
    assert approval["status"] == "AwaitingApproval" and approval["waiting_for"] and approval["reason"]
    assert review["status"] == "NeedsReview" and review["reason"]
    assert paid["status"] == "Paid" and paid["amount"]  # a PaymentResult, as before


@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize(
    ("close", "status", "execution_status"),
    [
        # no workflow code runs at a termination: the PaymentStatus stays as it last was
        ("terminate", "AwaitingApproval", "Terminated"),
        # Temporal's cancellation is taken like an operator's cancel (nothing was posted)
        ("cancel", "Cancelled", "Canceled"),
    ],
)
async def test_wait_reports_a_payment_closed_by_temporal_from_its_description(
    close: str,
    status: str,
    execution_status: str,
    client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="25000.00")
    file = write(tmp_path / "big.json", customer_body(load, f"CHK-{uid()}", amount=25000))
    env = env_for(client, settings)
    parked = await starter(env, "alvys-customer-payment", str(file), "--wait", timeout=60)
    assert parked.returncode == 0, parked.stderr
    workflow_id, report = parked.stdout.strip().splitlines()
    assert json.loads(report)["status"] == "AwaitingApproval"

    handle = client.get_workflow_handle(workflow_id)
    if close == "terminate":
        await handle.terminate(reason="test: closed by an operator in Temporal")
    else:
        await handle.cancel()
    with pytest.raises(WorkflowFailureError):  # closed before starter.py looks
        await handle.result()
    again = await starter(env, "alvys-customer-payment", str(file), "--wait", timeout=60)

    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines() == [
        workflow_id,
        json.dumps({"workflow_id": workflow_id, "status": status, "execution_status": execution_status}),
    ]
    assert "Traceback" not in again.stderr


# -- the TransportOne example ---------------------------------------------------------------------


async def test_the_transportone_example_is_valid_and_its_invoice_is_in_the_sandbox(
    sandbox: httpx.AsyncClient,
) -> None:
    raw = (ROOT / "examples" / "transportone-payment.json").read_bytes()
    (instruction,) = parse_body("transportone-payment", raw)
    invoice = instruction.ids.invoice_number
    assert invoice
    answer = await sandbox.get(f"/_sandbox/transportone/invoices/{invoice}")
    assert answer.status_code == 200, answer.text
    known = answer.json()
    assert known["currency"] == instruction.amount.currency  # TRANSPORTONE_CURRENCY's default, INR
    assert Decimal(known["total"]) >= instruction.amount.amount
