"""The example bank, lockbox and factor files through the ingress, as a `make run` user posts them.

Each file is posted to ``POST /v1/remittances`` (the format detected from the content), and
``GET /v1/remittances/{id}`` then tells per deposit what was applied where and what matched
nothing. The sandbox is reset to its demo data first: the examples pay its demo invoices.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.deposit import DepositStatus
from tests.conftest import API_KEY
from tests.support import alvys_sandbox as alvys

pytestmark = pytest.mark.usefixtures("worker")
EXAMPLES = Path(__file__).parents[1] / "examples"
KEY = {"X-API-Key": API_KEY}
SETTLED = {"Paid", "PartiallyPaid", "AwaitingApproval", "NeedsReview", "WaitingForPayable", "AlreadyStarted"}


async def post_file(http: httpx.AsyncClient, name: str, **params: str) -> dict[str, Any]:
    answer = await http.post(
        "/v1/remittances", content=(EXAMPLES / name).read_bytes(), headers=KEY, params=params
    )
    assert answer.status_code == 202, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def settled(http: httpx.AsyncClient, remittance_id: str, seconds: float = 90) -> dict[str, Any]:
    """The file's view once no deposit is still applying and every payment ended or parked."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        view: dict[str, Any] = (await http.get(f"/v1/remittances/{remittance_id}", headers=KEY)).json()
        deposits = view.get("deposits", [])
        if deposits and all(
            # Applying: its payments still run; they may be parked for a person (approval, say).
            (d["status"] != DepositStatus.APPLYING.value or d["applications"])
            and all(a["payment_status"] in SETTLED for a in d["applications"])
            for d in deposits
        ):
            return view
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{remittance_id} never settled: {view}")
        await asyncio.sleep(0.3)


@pytest.fixture
async def demo(sandbox: httpx.AsyncClient) -> None:
    assert (await sandbox.post("/_sandbox/reset")).status_code == 200


def exact(deposit: dict[str, Any]) -> bool:
    return Decimal(deposit["applied"]) + Decimal(deposit["unapplied"]) == Decimal(deposit["amount"])


@pytest.mark.usefixtures("demo")
async def test_the_820_example_short_pay_and_unapplied_line(
    http: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    answer = await post_file(http, "remittance-820.x12")
    assert answer["format"] == "x12-820" and len(answer["deposits"]) == 2
    view = await settled(http, answer["remittance_id"])
    ach = next(d for d in view["deposits"] if d["amount"] == "1157.53")
    assert all(exact(d) for d in view["deposits"])
    by_ref = {a["reference"]: a for a in ach["applications"]}
    assert by_ref["INV-1001"]["amount"] == "382.53" and by_ref["INV-1001"]["payment_status"] == "Paid"
    assert (
        by_ref["INV-1003"]["amount"] == "650.00" and by_ref["INV-1003"]["payment_status"] == "PartiallyPaid"
    )
    assert "adjustment" in (by_ref["INV-1003"]["reason"] or "")
    assert ach["unapplied"] == "125.00" and ach["status"] == "Unapplied"
    assert [u["reference"] for u in ach["unmatched"]] == ["INV-7777"]
    # The same file again is the same deposits: nothing new is posted.
    again = await post_file(http, "remittance-820.x12")
    assert [d["deposit_id"] for d in again["deposits"]] == [d["deposit_id"] for d in answer["deposits"]]
    rows = await alvys.postings(sandbox, "ACH260710000777")
    assert sorted(amount for _, _, amount in rows) == [Decimal("382.53"), Decimal("650.00")]


@pytest.mark.usefixtures("demo")
@pytest.mark.parametrize("name", ["lockbox.bai2", "notification.camt054.xml", "apex-payment-report.csv"])
async def test_each_example_file_applies_exactly(http: httpx.AsyncClient, name: str) -> None:
    answer = await post_file(http, name)
    view = await settled(http, answer["remittance_id"])
    assert view["format"] == answer["format"] and len(view["deposits"]) == len(answer["deposits"])
    assert all(exact(d) for d in view["deposits"])
    assert any(d["applications"] for d in view["deposits"])  # every example applies something
