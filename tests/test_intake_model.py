"""A model-based test of intake: random delivery sequences against the real dev server and sandbox.

Hypothesis draws sequences of deliveries: Alvys customer payments through the ingress and
through the starter's path (``parse_body`` + ``start_payments``, what ``starter.py`` runs),
and remittance files mixing Alvys and TransportOne lines. Keys come from a small alphabet on
purpose, so sequences are full of exact repeats, conflicting repeats (another amount, another
load), and references differing only in punctuation and case (``R/1``, ``R?1``, ``R_1``,
``r1``). A plain dictionary is the model: key → the facts first accepted.

Invariants, checked after every sequence:
* a delivery whose every payment is new or an exact repeat is accepted (202 / the same ids);
  one with a conflicting repeat is refused (409 / ``PaymentConflicts``) and starts nothing;
* every accepted distinct payment ends posted exactly once at the vendor, with exactly its
  amount, on exactly its load or invoice; nothing accepted is missing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.client import Client

from intake.errors import PaymentConflicts
from intake.parse import parse_body
from intake.start import payment_result, start_payments
from models.state import PaymentStatus
from models.steps import PaymentPolicy
from tests.conftest import API_KEY
from tests.support import alvys_sandbox as alvys
from tests.support.payments import exists, uid
from tests.support.transportone import add_invoice, postings

pytestmark = [pytest.mark.usefixtures("worker"), pytest.mark.slow]
_T = TypeVar("_T")

#: References that differ only in punctuation and case: each must be its own payment.
REFS = ("R1", "R/1", "R?1", "R_1", "r1", "R 1")
AMOUNTS = ("10.00", "20.00", "35.50")


@dataclass(frozen=True)
class Direct:
    """One Alvys customer payment, through the ingress or the starter's path."""

    via: str  # "ingress" | "starter"
    load: int
    ref: str
    amount: str


@dataclass(frozen=True)
class Line:
    target: str  # "alvys" | "transportone"
    where: int  # load index or invoice index
    ref: str
    amount: str


@dataclass(frozen=True)
class File:
    lines: tuple[Line, ...]


directs = st.builds(
    Direct,
    via=st.sampled_from(("ingress", "starter")),
    load=st.integers(0, 1),
    ref=st.sampled_from(REFS),
    amount=st.sampled_from(AMOUNTS),
)
lines = st.builds(
    Line,
    target=st.sampled_from(("alvys", "transportone")),
    where=st.integers(0, 1),
    ref=st.sampled_from(REFS),
    amount=st.sampled_from(AMOUNTS),
)
files = st.builds(File, lines=st.lists(lines, min_size=1, max_size=3).map(tuple))
deliveries = st.lists(st.one_of(directs, directs, files), min_size=1, max_size=6)


class World:
    """One sequence's loads, invoices and model, with unique names so sequences never meet."""

    def __init__(self) -> None:
        tag = uid()
        self.loads = [f"L-M{tag}-{i}" for i in range(2)]
        self.invoices = [f"INV-M{tag}-{i}" for i in range(2)]
        # Direct and file references are prefixed apart: Alvys itself is idempotent per
        # (load, ReferenceNumber), whatever freightpay route a payment came by.
        self.direct_prefix, self.file_prefix = f"A{tag}-", f"F{tag}-"
        #: key → (target, load or invoice, amount): what was first accepted under it.
        self.model: dict[tuple[str, ...], tuple[str, str, str]] = {}
        self.accepted_ids: dict[tuple[str, ...], str] = {}

    def direct_body(self, d: Direct) -> dict[str, Any]:
        return {
            "LoadNumber": self.loads[d.load],
            "ReferenceNumber": self.direct_prefix + d.ref,
            "Amount": {"Amount": float(d.amount), "Currency": 840},
            "PaymentDate": "2026-11-20T15:00:00Z",
        }

    def csv(self, f: File) -> str:
        rows = ["target,amount,currency,payment_date,reference,load_number,invoice_number"]
        for line in f.lines:
            ref = self.file_prefix + line.ref
            if line.target == "alvys":
                rows.append(
                    f"alvys-customer-payment,{line.amount},USD,2026-11-20,{ref},{self.loads[line.where]},"
                )
            else:
                rows.append(
                    f"transportone-payment,{line.amount},USD,2026-11-20,{ref},,{self.invoices[line.where]}"
                )
        return "\n".join(rows) + "\n"

    def facts(self, line: Line) -> tuple[str, str, str]:
        where = self.loads[line.where] if line.target == "alvys" else self.invoices[line.where]
        return (line.target, where, line.amount)


def on_loop(loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run_coroutine_threadsafe(work, loop).result(timeout=120)


async def deliver(
    world: World, delivery: Direct | File, http: httpx.AsyncClient, client: Client, queue: str
) -> None:
    """Deliver one, check the answer against the model, and update the model."""
    if isinstance(delivery, Direct):
        key: tuple[str, ...] = ("direct", world.loads[delivery.load], delivery.ref)
        facts = ("alvys", world.loads[delivery.load], delivery.amount)
        expected_ok = key not in world.model or world.model[key] == facts
        raw = json.dumps(world.direct_body(delivery))
        if delivery.via == "ingress":
            answer = await http.post(
                "/v1/payments/alvys/customer-payments",
                content=raw,
                headers={"X-API-Key": API_KEY, "Content-Type": "application/json"},
            )
            accepted = answer.status_code == 202
            assert answer.status_code in (202, 409), answer.text
            ids = answer.json()["workflow_ids"] if accepted else []
        else:
            try:
                ids = await start_payments(
                    client,
                    parse_body("alvys-customer-payment", raw),
                    task_queue=queue,
                    policy=PaymentPolicy(),
                )
                accepted = True
            except PaymentConflicts:
                accepted, ids = False, []
        assert accepted == expected_ok, (delivery, world.model.get(key))
        if accepted:
            assert world.accepted_ids.setdefault(key, ids[0]) == ids[0]  # a repeat: the same payment
            world.model.setdefault(key, facts)
        return
    keys: list[tuple[str, ...]] = [("file", line.ref) for line in delivery.lines]
    duplicated = len(set(keys)) != len(keys)
    conflicting = any(
        k in world.model and world.model[k] != world.facts(line)
        for k, line in zip(keys, delivery.lines, strict=True)
    )
    answer = await http.post(
        "/v1/remittances",
        content=world.csv(delivery),
        headers={"X-API-Key": API_KEY, "Content-Type": "text/csv"},
    )
    if duplicated:
        assert answer.status_code == 422, answer.text  # a file repeating a reference is refused whole
        return
    if conflicting:
        assert answer.status_code == 409, answer.text
        assert all(c["where"].startswith("line ") for c in answer.json()["conflicts"])
        return
    assert answer.status_code == 202, (answer.text, delivery, world.model)
    for key, line, workflow_id in zip(keys, delivery.lines, answer.json()["workflow_ids"], strict=True):
        assert world.accepted_ids.setdefault(key, workflow_id) == workflow_id
        world.model.setdefault(key, world.facts(line))
        # A key is taken when the file's workflow starts its line; until then intake cannot see
        # it (that window is tested on its own: test_edges, a line whose key was taken later).
        for _ in range(200):
            if await exists(client, workflow_id):
                break
            await asyncio.sleep(0.05)


async def settle(world: World, client: Client, sandbox: httpx.AsyncClient) -> None:
    """Every accepted payment ended posted, exactly once, with exactly its facts."""
    for key, workflow_id in world.accepted_ids.items():
        for _ in range(200):  # a file's lines start as its workflow reaches them
            if await exists(client, workflow_id):
                break
            await asyncio.sleep(0.05)
        result = await asyncio.wait_for(payment_result(client, workflow_id), 60)
        assert result.status in (PaymentStatus.PAID, PaymentStatus.PARTIALLY_PAID), (key, result)
    for key, (target, where, amount) in world.model.items():
        ref = (world.direct_prefix if key[0] == "direct" else world.file_prefix) + key[-1]
        if target == "alvys":
            rows = [r for r in await alvys.postings(sandbox, ref) if r[1] == where]
            assert rows == [("customer", where, Decimal(amount))], (key, rows)
        else:
            recorded = [r for r in await postings(sandbox, where) if r["reference_number"] == ref]
            assert [Decimal(r["applied_amount"]) for r in recorded] == [Decimal(amount)], (key, recorded)


async def test_random_deliveries_post_each_accepted_payment_exactly_once(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient, task_queue: str
) -> None:
    loop = asyncio.get_running_loop()

    @settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(deliveries)
    def sequence(steps: list[Direct | File]) -> None:
        world = World()
        for load in world.loads:
            on_loop(loop, alvys.add_load(sandbox, load, status="Invoiced", billable="100000.00"))
        for invoice in world.invoices:
            on_loop(loop, add_invoice(sandbox, invoice, "100000.00", "USD"))
        for step in steps:
            on_loop(loop, deliver(world, step, http, client, task_queue))
        on_loop(loop, settle(world, client, sandbox))

    await asyncio.to_thread(sequence)
