"""Alvys webhooks: the signature, the ingress route, the event workflow, the sandbox's subscriptions.

What must hold (docs/vendors.md, "Alvys webhooks"): nothing unsigned but the activation request is
read; a delivery verifies only with a configured secret, within 300 s, over the exact body and
event id; a repeated event id is one workflow and a 2xx; Temporal down is a 503 so Alvys retries;
and a ``load.status.changed`` to a payable status makes a WaitingForPayable payment post at once,
not at its next timer. The sandbox side (subscriptions, handshake, signed deliveries, retries) is
checked here too, against the same verification code the ingress runs.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import SecretStr
from temporalio.client import Client
from typer.testing import CliRunner

from activities.alvys_events import waiting_query
from config.alvys_webhooks import (
    SignatureError,
    parse_header,
    secret_list,
    sign,
    signature_header,
    verify,
)
from config.settings import SANDBOX_ALVYS_WEBHOOK_SECRET, AlvysSettings, Settings
from ingress.alvys_webhooks import event_of
from ingress.app import create_app
from ingress.problems import Problem
from intake.start import payment_result, start_payment
from models.state import PaymentStatus
from models.steps import PaymentPolicy
from sandbox.alvys import AUDIENCE, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from sandbox.alvys_webhooks import DEMO_WEBHOOK_SECRET
from tests.support import alvys_sandbox as alvys
from tests.support.payments import customer, uid, wait_status
from tests.support.servers import free_port, serve_app
from vendors.alvys import AlvysClient
from workflows.alvys_events import AlvysEvent, AlvysEventResult, AlvysEventWorkflow, event_workflow_id

SECRET = SANDBOX_ALVYS_WEBHOOK_SECRET.encode()
ROUTE = "/v1/webhooks/alvys"
API = "/alvys/api/p/v1.0"
CONTROLS = "/_sandbox/alvys"


def envelope(event_type: str, record: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    kind = event_type.split(".")[0]
    return {
        "id": event_id or f"{uuid.uuid4().hex}-1",
        "type": event_type,
        "timestamp": "2026-12-01T10:00:00Z",
        "version": "v1",
        "data": {kind: record},
    }


def signed(
    body: dict[str, Any] | bytes,
    *,
    event_id: str | None = None,
    secret: bytes = SECRET,
    previous: bytes | None = None,
    at: float | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A delivery as Alvys sends it: the raw body and its headers."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    event_id = event_id or (body["id"] if isinstance(body, dict) else uuid.uuid4().hex)
    t = int(at if at is not None else time.time())
    event_type = json.loads(raw).get("type", "load.status.changed")
    headers = {
        "Content-Type": "application/json",
        "X-Alvys-Event": event_type,
        "X-Alvys-Event-Id": event_id,
        "X-Alvys-Timestamp": str(t),
        "X-Alvys-Attempt": "1",
        "X-Alvys-Signature": signature_header(secret, t, event_id, raw, previous=previous),
    }
    return raw, headers


async def deliver(http: httpx.AsyncClient, raw: bytes, headers: dict[str, str]) -> httpx.Response:
    return await http.post(ROUTE, content=raw, headers=headers)


async def workflow_ids(client: Client, workflow_id: str) -> list[str]:
    return [w.run_id async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")]


async def exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except Exception:
        return False
    return True


def assert_refused(answer: httpx.Response) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["title"] == "The Alvys signature does not verify"


# ----- the signature (pure) ---------------------------------------------------------------------


def test_a_signature_verifies_only_over_its_exact_content() -> None:
    body, now = b'{"type":"load.status.changed"}', 1_800_000_000
    header = signature_header(SECRET, now, "E-1", body)
    assert header == f"t={now},v1={sign(SECRET, now, 'E-1', body)}"
    assert verify([SECRET], header, "E-1", body, now=now + 300) == now
    assert verify([SECRET], header, "E-1", body, now=now - 300) == now
    for secrets, event_id, content, at in (
        ([b"another"], "E-1", body, now),  # wrong secret
        ([SECRET], "E-2", body, now),  # another event id
        ([SECRET], "E-1", body + b" ", now),  # one byte more
        ([SECRET], "E-1", body, now + 301),  # stale
        ([SECRET], "E-1", body, now - 301),  # from the future
        ([], "E-1", body, now),  # no secret configured
    ):
        with pytest.raises(SignatureError):
            verify(secrets, header, event_id, content, now=at)


def test_rotation_any_secret_and_either_scheme() -> None:
    body, now = b"{}", 1_800_000_000
    new, old = b"new-secret", b"old-secret"
    both = signature_header(new, now, "E", body, previous=old)
    assert both.count(",") == 2 and ",v0=" in both
    assert verify([old], both, "E", body, now=now) == now  # the receiver still holds only the old one
    assert verify([new], both, "E", body, now=now) == now
    only_old = signature_header(old, now, "E", body)
    assert verify(secret_list(SecretStr("new-secret, old-secret")), only_old, "E", body, now=now) == now
    assert secret_list(SecretStr(" a ,, b ")) == [b"a", b"b"] and secret_list(None) == []
    upper = f"t={now},v1={sign(new, now, 'E', body).upper()}"
    assert verify([new], upper, "E", body, now=now) == now


@pytest.mark.parametrize(
    "header",
    [None, "", "v1=abc", "t=,v1=abc", "t=12x,v1=abc", "t=1800000000", "t=1800000000,v2=abc", "garbage"],
)
def test_malformed_signature_headers_are_refused(header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify([SECRET], header, "E", b"{}", now=1_800_000_000)


def test_header_parts_in_any_order_and_unknown_schemes_ignored() -> None:
    assert parse_header("v1=AB, t=5 ,v9=zz,v0=cd") == (5, ["ab", "cd"])
    with pytest.raises(SignatureError):
        verify([SECRET], "t=1,v1=00", None, b"{}", now=1)  # no event id


def test_the_sandbox_signs_with_the_secret_freightpay_defaults_to() -> None:
    assert DEMO_WEBHOOK_SECRET == SANDBOX_ALVYS_WEBHOOK_SECRET
    assert Settings(alvys_raw=AlvysSettings()).alvys.webhook_secret == SecretStr(SANDBOX_ALVYS_WEBHOOK_SECRET)
    real = AlvysSettings(base_url="https://integrations.alvys.com")
    assert Settings(alvys_raw=real).alvys.webhook_secret is None  # no sandbox default for the real Alvys


# ----- what the workflow keeps of a body ---------------------------------------------------------


def test_only_ids_type_and_status_are_kept() -> None:
    load = {"LoadNumber": "L-1", "Status": "Invoiced", "CustomerName": "Mobix", "Stops": [{"City": "X"}]}
    event = event_of("E-1", json.dumps(envelope("load.status.changed", load)).encode())
    assert event == AlvysEvent(
        event_id="E-1", event_type="load.status.changed", load_number="L-1", status="Invoiced"
    )
    assert event.wakes_payments
    trip = {"Id": "T-1", "TripNumber": "TR-1", "LoadNumber": "L-1", "Status": "Delivered"}
    event = event_of("E-2", json.dumps(envelope("trip.status.changed", trip)).encode())
    assert (event.trip_id, event.load_number, event.status, event.wakes_payments) == (
        "T-1",
        "L-1",
        "Delivered",
        False,
    )
    flat = {"type": "load.status.changed", "data": {"loadNumber": "L-2", "status": "completed"}}
    assert event_of("E-3", json.dumps(flat).encode()).wakes_payments  # data itself, camelCase, any case
    for status in ("Delivered", "Paid", None):
        assert not AlvysEvent(
            event_id="E", event_type="load.status.changed", load_number="L", status=status
        ).wakes_payments
    for raw in (b"not json", b"[1]", b'{"data": {}}'):
        with pytest.raises(Problem):
            event_of("E", raw)


def test_the_event_workflow_id_follows_the_identity_rule() -> None:
    assert event_workflow_id("0f3a9c-1") == "alvys-event-0f3a9c-1"
    assert event_workflow_id("E/1") == "alvys-event-E~2F1" != event_workflow_id("E?1")
    assert waiting_query("L-'1") == (
        "WorkflowType = 'PaymentWorkflow' AND PaymentStatus = 'WaitingForPayable' AND LoadNumber = 'L-\\'1'"
    )


# ----- the ingress route -------------------------------------------------------------------------


async def test_the_activation_request_is_echoed_unsigned(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        ROUTE,
        json={"type": "webhook.verification", "challenge": "c-123"},
        headers={"X-Alvys-Event": "webhook.verification"},
    )
    assert answer.status_code == 200 and answer.json() == {"challenge": "c-123"}
    bad = await http.post(
        ROUTE, json={"type": "webhook.verification"}, headers={"X-Alvys-Event": "webhook.verification"}
    )
    assert bad.status_code == 400
    # Without the header it is a delivery like any other: unsigned, refused.
    assert_refused(await http.post(ROUTE, json={"type": "webhook.verification", "challenge": "c"}))


@pytest.mark.usefixtures("worker")
async def test_a_signed_delivery_is_accepted_and_recorded(http: httpx.AsyncClient, client: Client) -> None:
    body = envelope("trip.status.changed", {"Id": f"T-{uid()}", "LoadNumber": "L-1", "Status": "Delivered"})
    answer = await deliver(http, *signed(body))

    workflow_id = event_workflow_id(body["id"])
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"workflow_ids": [workflow_id]}
    handle = client.get_workflow_handle_for(AlvysEventWorkflow.run, workflow_id)
    result = await asyncio.wait_for(handle.result(), 30)
    assert result.outcome == "recorded" and result.event_type == "trip.status.changed"


async def test_refusals_change_nothing(http: httpx.AsyncClient, client: Client) -> None:
    """Wrong secret, stale, future, tampered body, another event id, no signature, no event id: 401."""
    body = envelope("load.status.changed", {"LoadNumber": f"L-{uid()}", "Status": "Invoiced"})
    raw, headers = signed(body)
    cases = [
        signed(body, secret=b"not-the-secret"),
        signed(body, at=time.time() - 360),
        signed(body, at=time.time() + 360),
        (raw.replace(b"Invoiced", b"Financed"), headers),
        (raw, {**headers, "X-Alvys-Event-Id": f"{uuid.uuid4().hex}-1"}),
        (raw, {k: v for k, v in headers.items() if k != "X-Alvys-Signature"}),
        (raw, {k: v for k, v in headers.items() if k != "X-Alvys-Event-Id"}),
        (raw, {**headers, "X-Alvys-Signature": "t=1,v1=00"}),
    ]
    for case_raw, case_headers in cases:
        assert_refused(await deliver(http, case_raw, case_headers))
    assert not await exists(client, event_workflow_id(body["id"]))


async def test_a_rotated_secret_list_verifies_old_and_new(client: Client, ingress_settings: Settings) -> None:
    rotated = ingress_settings.alvys_raw.model_copy(update={"webhook_secret": SecretStr("new-one,old-one")})
    settings = ingress_settings.model_copy(update={"alvys_raw": rotated})
    with serve_app(create_app(settings, client=client)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as session:
            old = envelope("trip.status.changed", {"Id": "T-OLD", "Status": "Covered"})
            new = envelope("trip.status.changed", {"Id": "T-NEW", "Status": "Covered"})
            both = envelope("trip.status.changed", {"Id": "T-BOTH", "Status": "Covered"})
            answers = [
                await deliver(session, *signed(old, secret=b"old-one")),
                await deliver(session, *signed(new, secret=b"new-one")),
                await deliver(session, *signed(both, secret=b"newer-still", previous=b"old-one")),
            ]
            sandbox_secret = await deliver(session, *signed(envelope("trip.status.changed", {"Id": "T-S"})))
    assert [a.status_code for a in answers] == [202, 202, 202], [a.text for a in answers]
    assert_refused(sandbox_secret)  # a configured list replaces the sandbox's default


@pytest.mark.usefixtures("worker")
async def test_a_replayed_event_id_is_one_workflow_and_always_2xx(
    http: httpx.AsyncClient, client: Client
) -> None:
    body = envelope("load.status.changed", {"LoadNumber": f"L-{uid()}", "Status": "Delivered"})
    workflow_id = event_workflow_id(body["id"])
    first = await asyncio.gather(*(deliver(http, *signed(body)) for _ in range(3)))  # concurrent attempts
    await asyncio.wait_for(client.get_workflow_handle(workflow_id).result(), 30)
    later = await deliver(http, *signed(body, at=time.time() + 60))  # a retry after it ended, signed anew

    for answer in (*first, later):
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"workflow_ids": [workflow_id]}
    assert len(await workflow_ids(client, workflow_id)) == 1


async def test_temporal_down_answers_503_after_verifying(
    ingress_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")
    body = envelope("load.status.changed", {"LoadNumber": "L-1", "Status": "Invoiced"})
    with serve_app(create_app(ingress_settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as session:
            unsigned = await session.post(ROUTE, json=body)
            answer = await deliver(session, *signed(body))
            echoed = await session.post(
                ROUTE,
                json={"type": "webhook.verification", "challenge": "c"},
                headers={"X-Alvys-Event": "webhook.verification"},
            )
    assert_refused(unsigned)  # the signature is checked before Temporal is asked
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert answer.json()["title"] == "Temporal is unavailable"
    assert echoed.status_code == 200  # activation needs no Temporal


# ----- the sandbox's subscriptions and deliveries ---------------------------------------------------


CREDENTIALS = {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET, "audience": AUDIENCE,
               "grant_type": "client_credentials"}  # fmt: skip


async def token(sandbox: httpx.AsyncClient) -> dict[str, str]:
    answer = await sandbox.post("/alvys/oauth/token", json=CREDENTIALS)
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def subscribe(sandbox: httpx.AsyncClient, url: str, events: list[str] | None = None) -> dict[str, Any]:
    body = {"Name": "test", "SubsidiaryId": "SUB-1", "Url": url, "Events": events or ["load.status.changed"]}
    answer = await sandbox.post(f"{API}/webhooks", json=body, headers=await token(sandbox))
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def unsubscribe(sandbox: httpx.AsyncClient, webhook_id: str) -> None:
    await sandbox.delete(f"{API}/webhooks/{webhook_id}", headers=await token(sandbox))


async def deliveries(sandbox: httpx.AsyncClient, **filters: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await sandbox.get(f"{CONTROLS}/webhook-deliveries", params=filters)).json()
    return rows


async def settled(sandbox: httpx.AsyncClient, seconds: float = 20, **filters: str) -> list[dict[str, Any]]:
    """The delivery attempts once no event is still being delivered."""
    deadline = time.monotonic() + seconds
    while True:
        answer = await sandbox.get(f"{CONTROLS}/webhook-deliveries", params=filters)
        if answer.headers["X-Pending"] == "0" or time.monotonic() > deadline:
            rows: list[dict[str, Any]] = answer.json()
            return rows
        await asyncio.sleep(0.1)


class Receiver:
    """A webhook receiver on loopback: answers the activation, then the statuses it is told to."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.seen: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.app = FastAPI()
        self.app.post("/hook")(self.hook)

    async def hook(self, request: Request) -> Response:
        raw = await request.body()
        if request.headers.get("x-alvys-event") == "webhook.verification":
            return JSONResponse({"challenge": json.loads(raw)["challenge"]})
        with self.lock:
            self.seen.append((dict(request.headers), raw))
            status = self.statuses.pop(0) if self.statuses else 200
        return Response(status_code=status)


@pytest.fixture
def fast_retries(sandbox_url: str) -> Iterator[None]:
    with httpx.Client(base_url=sandbox_url) as http:
        http.post(f"{CONTROLS}/webhook-options", json={"retry_delays_seconds": [0.05, 0.1, 0.15]})
        yield
        http.post(f"{CONTROLS}/webhook-options", json={"retry_delays_seconds": [10, 30, 60]})


@pytest.mark.usefixtures("fast_retries")
async def test_sandbox_deliveries_are_signed_retried_and_recorded(sandbox: httpx.AsyncClient) -> None:
    receiver = Receiver([503, 429, 500])  # three failures, then 200 on the 4th and last attempt
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Delivered", billable="10.00")
    with serve_app(receiver.app) as url:
        created = await subscribe(sandbox, f"{url}/hook")
        try:
            assert created["Secret"] == DEMO_WEBHOOK_SECRET and created["Status"] == "Active"
            await alvys.set_load_status(sandbox, load, "Invoiced")
            rows = await settled(sandbox, entity_id=load)
        finally:
            await unsubscribe(sandbox, created["Id"])

    assert [(r["attempt"], r["http_status"], r["will_retry"]) for r in rows] == [
        (1, 503, True), (2, 429, True), (3, 500, True), (4, 200, False)
    ]  # fmt: skip
    assert len({r["event_id"] for r in rows}) == 1 and rows[0]["event_id"].endswith("-1")
    assert len(receiver.seen) == 4
    for attempt, (headers, raw) in enumerate(receiver.seen, start=1):
        assert headers["x-alvys-event"] == "load.status.changed" and headers["x-alvys-attempt"] == str(
            attempt
        )
        assert headers["x-alvys-event-id"] == rows[0]["event_id"]
        verify([SECRET], headers["x-alvys-signature"], headers["x-alvys-event-id"], raw, now=time.time())
        assert raw == receiver.seen[0][1]  # the same bytes every time
    body = json.loads(receiver.seen[0][1])
    assert set(body) == {"id", "type", "timestamp", "version", "data"} and body["version"] == "v1"
    assert body["data"]["load"]["LoadNumber"] == load and body["data"]["load"]["Status"] == "Invoiced"
    assert body["data"]["load"] == (await sandbox.get(f"{CONTROLS}/loads/{load}")).json()


@pytest.mark.usefixtures("fast_retries")
async def test_sandbox_gives_up_after_4_attempts_and_never_retries_a_400(sandbox: httpx.AsyncClient) -> None:
    failing, refusing = Receiver([500] * 10), Receiver([400])
    trip, load = f"T-{uid()}", f"L-{uid()}"
    await alvys.add_trip(sandbox, trip, load=load, status="Dispatched", payable="5.00")
    with serve_app(failing.app) as failing_url, serve_app(refusing.app) as refusing_url:
        hooks = [
            await subscribe(sandbox, f"{failing_url}/hook", ["trip.status.changed"]),
            await subscribe(sandbox, f"{refusing_url}/hook", ["trip.status.changed", "load.status.changed"]),
        ]
        try:
            await sandbox.post(f"{CONTROLS}/trips/{trip}/status", json={"Status": "Delivered"})
            rows = await settled(sandbox, entity_id=trip)
        finally:
            for hook in hooks:
                await unsubscribe(sandbox, hook["Id"])
    by_hook = {h["Id"]: [r["http_status"] for r in rows if r["webhook_id"] == h["Id"]] for h in hooks}
    assert by_hook == {hooks[0]["Id"]: [500] * 4, hooks[1]["Id"]: [400]}
    body = json.loads(rows[0]["body"])
    assert body["type"] == "trip.status.changed" and body["data"]["trip"]["Id"] == trip


async def test_sandbox_subscription_api(sandbox: httpx.AsyncClient) -> None:
    auth = await token(sandbox)
    assert (await sandbox.get(f"{API}/webhooks")).status_code == 401
    dead = f"http://127.0.0.1:{free_port()}/hook"
    refused = await sandbox.post(
        f"{API}/webhooks",
        headers=auth,
        json={"Name": "x", "SubsidiaryId": "S", "Url": dead, "Events": ["load.status.changed"]},
    )
    assert refused.status_code == 400 and "Url" in refused.json()["Errors"]  # the handshake failed
    invalid = await sandbox.post(
        f"{API}/webhooks", headers=auth, json={"Name": "x", "Url": dead, "Events": ["x"], "Extra": 1}
    )
    assert invalid.status_code == 400 and {"SubsidiaryId", "$.Extra", "Events"} <= set(
        invalid.json()["Errors"]
    )

    receiver = Receiver([])
    with serve_app(receiver.app) as url:
        created = await subscribe(sandbox, f"{url}/hook")
    webhook = f"{API}/webhooks/{created['Id']}"
    listed = (await sandbox.get(f"{API}/webhooks", headers=auth, params={"SubsidiaryId": "SUB-1"})).json()
    assert created["Id"] in [item["Id"] for item in listed["Items"]]
    shown = (await sandbox.get(webhook, headers=auth)).json()
    assert shown["Url"] == f"{url}/hook" and DEMO_WEBHOOK_SECRET not in json.dumps(shown)  # masked
    assert (await sandbox.post(f"{webhook}/reveal-secret", headers=auth)).json() == {
        "Secret": DEMO_WEBHOOK_SECRET
    }
    assert (await sandbox.delete(webhook, headers=auth)).status_code == 204
    assert (await sandbox.get(webhook, headers=auth)).status_code == 404


# ----- end to end: the sandbox's event wakes a waiting payment -------------------------------------------


@pytest.mark.usefixtures("worker")
async def test_load_status_event_makes_a_waiting_payment_post_at_once(
    client: Client, task_queue: str, sandbox: httpx.AsyncClient, ingress_url: str, settings: Settings
) -> None:
    load = f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Delivered", billable="250.00")
    instruction = customer(load, "250.00")
    hour = PaymentPolicy(payable_recheck_interval=timedelta(hours=1), payable_deadline=timedelta(days=2))
    await start_payment(client, instruction, task_queue=task_queue, policy=hour)
    await wait_status(client, instruction.workflow_id, PaymentStatus.WAITING_FOR_PAYABLE)
    for _ in range(100):  # visibility is eventually consistent: the event finds it only once indexed
        if [w.id async for w in client.list_workflows(waiting_query(load))]:
            break
        await asyncio.sleep(0.1)

    async with httpx.AsyncClient(timeout=30) as http:
        alvys_api = AlvysClient(
            http,
            base_url=settings.alvys.base_url or "",
            auth_url=settings.alvys.auth_url or "",
            client_id=settings.alvys.client_id or "",
            client_secret=DEMO_CLIENT_SECRET,
        )
        subscription = await alvys_api.create_webhook(
            name="freightpay test", subsidiary_id="SUB-1", url=f"{ingress_url}{ROUTE}"
        )
    try:
        assert (
            subscription.secret is not None and subscription.secret.get_secret_value() == DEMO_WEBHOOK_SECRET
        )
        assert subscription.events == ["load.status.changed", "trip.status.changed"]
        started = time.monotonic()
        await alvys.set_load_status(sandbox, load, "Invoiced")
        result = await asyncio.wait_for(payment_result(client, instruction.workflow_id), 20)
        took = time.monotonic() - started
        rows = await settled(sandbox, entity_id=load, event_type="load.status.changed")
    finally:
        await unsubscribe(sandbox, subscription.id)

    assert result.status is PaymentStatus.PAID and took < 15  # the timer would have taken an hour
    assert len(await alvys.postings(sandbox, instruction.reference_number)) == 1
    assert [(r["attempt"], r["http_status"]) for r in rows] == [(1, 202)]
    event = client.get_workflow_handle_for(AlvysEventWorkflow.run, event_workflow_id(rows[0]["event_id"]))
    outcome: AlvysEventResult = await event.result()
    assert outcome.outcome == "woke" and outcome.woken == [instruction.workflow_id]
    assert (outcome.load_number, outcome.status) == (load, "Invoiced")
    history = (await event.fetch_history()).to_json()
    assert "CustomerName" not in history and "Stops" not in history  # the body stays at the ingress


def test_cli_subscribe_prints_the_id_and_where_the_secret_goes(
    ingress_url: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.main import app
    from config.settings import get_settings

    monkeypatch.setenv("FREIGHTPAY_SANDBOX_URL", sandbox_url)
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(
            app, ["alvys", "subscribe", "--url", f"{ingress_url}{ROUTE}", "--subsidiary", "SUB-1"]
        )
        refused = CliRunner().invoke(
            app, ["alvys", "subscribe", "--url", f"http://127.0.0.1:{free_port()}/x", "--subsidiary", "SUB-1"]
        )
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    webhook_id = done.output.split()[1]
    assert "load.status.changed, trip.status.changed" in done.output
    assert "already in ALVYS_WEBHOOK_SECRET" in done.output and DEMO_WEBHOOK_SECRET not in done.output
    assert refused.exit_code == 1 and "refused" in refused.output
    with httpx.Client(base_url=sandbox_url) as http:
        answer = http.post("/alvys/oauth/token", json=CREDENTIALS)
        auth = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        assert http.get(f"{API}/webhooks/{webhook_id}", headers=auth).json()["Status"] == "Active"
        assert http.delete(f"{API}/webhooks/{webhook_id}", headers=auth).status_code == 204
