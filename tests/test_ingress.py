"""The ingress over real HTTP: every route to a started payment, refusals that start nothing, 503."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from config.settings import Settings
from ingress.app import create_app
from intake.start import payment_result
from models.state import PaymentStatus
from tests.conftest import API_KEY, MC_SECRET
from tests.support import alvys_sandbox as alvys
from tests.support.payments import exists, uid
from tests.support.servers import free_port, serve_app

pytestmark = pytest.mark.usefixtures("worker")
ROOT = Path(__file__).resolve().parent.parent
SEED = json.loads((ROOT / "examples" / "mycarrier-invoice-payment.json").read_text())


def mycarrier_event(po: str, amount: float = 382.53) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(SEED)
    event["RecordId"] = str(uuid.uuid4())
    event["Shipment"]["PoNumber"] = po
    event["QuoteReferenceNumber"] = po
    event["Payments"][0].update(Id=str(uuid.uuid4()), TransactionId=str(uuid.uuid4()), Amount=amount)
    return event


async def test_alvys_customer_payment_route(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient
) -> None:
    load, ref = f"L-{uid()}", f"CHK-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="382.53")
    body = {**json.loads((ROOT / "examples" / "alvys-customer-payment.json").read_text()), "LoadNumber": load,
            "ReferenceNumber": ref}  # fmt: skip

    answer = await http.post(
        "/v1/payments/alvys/customer-payments", json=body, headers={"X-API-Key": API_KEY}
    )

    assert answer.status_code == 202, answer.text
    assert answer.json() == {"workflow_ids": [f"payment-alvys-customer-{load}-{ref}"]}
    result = await asyncio.wait_for(payment_result(client, answer.json()["workflow_ids"][0]), 30)
    assert result.status is PaymentStatus.PAID
    status = await http.get(f"/v1/payments/{result.workflow_id}", headers={"X-API-Key": API_KEY})
    assert status.status_code == 200 and status.json()["status"] == "Paid"


async def test_alvys_carrier_payment_route(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient
) -> None:
    trip = f"T-{uid()}"
    await alvys.add_trip(sandbox, trip, load=f"L-{uid()}", status="Delivered", payable="900.00")
    body = {"TripId": trip, "Amount": {"Amount": 900, "Currency": 840}, "PaymentDate": "2026-11-20T00:00:00Z",
            "ReferenceNumber": f"ACH-{uid()}", "MarkAsPaid": True}  # fmt: skip

    answer = await http.post("/v1/payments/alvys/carrier-payments", json=body, headers={"X-API-Key": API_KEY})

    assert answer.status_code == 202, answer.text
    result = await asyncio.wait_for(payment_result(client, answer.json()["workflow_ids"][0]), 30)
    assert result.status is PaymentStatus.PAID and result.target_status == "Completed"


async def test_the_seed_mycarrier_sample_pays_the_resolved_trip_once(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient
) -> None:
    # Demo data: PO 26714518 is load L-1001, whose one trip is T-1001.
    answer = await http.post("/v1/webhooks/mycarrier", json=SEED, headers={"X-Webhook-Secret": MC_SECRET})

    assert answer.status_code == 202, answer.text
    (workflow_id,) = answer.json()["workflow_ids"]
    assert workflow_id == "payment-mycarrier-1d3959ab-c520-4801-a9a8-5e7be3e88f41"
    result = await asyncio.wait_for(payment_result(client, workflow_id), 30)
    assert result.status is PaymentStatus.PAID
    rows = await alvys.postings(sandbox, "fcf3fcec-f89a-4158-b683-c0e7defdc782")
    assert [(kind, trip, str(amount)) for kind, trip, amount in rows] == [("carrier", "T-1001", "382.53")]
    state = await client.get_workflow_handle(workflow_id).query("status")
    assert state["instruction"]["ids"]["trip_id"] == "T-1001"
    assert "transaction fee USD 3.83" in state["instruction"]["note"]
    assert "ShipperInfo" not in json.dumps(state) and "MALOUF" not in json.dumps(state)


async def test_the_same_webhook_five_times_at_once_is_one_payment(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient
) -> None:
    po, load, trip = f"PO-{uid()}", f"L-{uid()}", f"T-{uid()}"
    await alvys.add_load(sandbox, load, status="Delivered", billable="382.53", po=po)
    await alvys.add_trip(sandbox, trip, load=load, status="Delivered", payable="382.53")
    event = mycarrier_event(po)

    answers = await asyncio.gather(
        *(
            http.post("/v1/webhooks/mycarrier", json=event, headers={"X-Webhook-Secret": MC_SECRET})
            for _ in range(5)
        )
    )

    assert {a.status_code for a in answers} == {202}
    assert len({json.dumps(a.json()) for a in answers}) == 1
    (workflow_id,) = answers[0].json()["workflow_ids"]
    assert (await asyncio.wait_for(payment_result(client, workflow_id), 30)).status is PaymentStatus.PAID
    assert len(await alvys.postings(sandbox, event["Payments"][0]["TransactionId"])) == 1
    runs = [w async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    assert len(runs) == 1


async def test_ambiguous_trips_need_review_listing_the_candidates(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient
) -> None:
    po, load = f"PO-{uid()}", f"L-{uid()}"
    await alvys.add_load(sandbox, load, status="Delivered", billable="100.00", po=po)
    await alvys.add_trip(sandbox, f"T-{uid()}", load=load, status="Delivered", payable="50.00")
    await alvys.add_trip(sandbox, f"T-{uid()}", load=load, status="Delivered", payable="50.00")

    answer = await http.post(
        "/v1/webhooks/mycarrier", json=mycarrier_event(po, 100.0), headers={"X-Webhook-Secret": MC_SECRET}
    )

    from tests.support.payments import wait_status

    state = await wait_status(client, answer.json()["workflow_ids"][0], PaymentStatus.NEEDS_REVIEW)
    assert f"several trips match load {load}" in (state.reason or "") and "Candidates: T-" in (
        state.reason or ""
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"X-Webhook-Secret": "forged"}, 401), ({"X-Webhook-Secret": MC_SECRET.upper()}, 401)],
)
async def test_a_forged_or_missing_secret_is_refused(
    http: httpx.AsyncClient, client: Client, headers: dict[str, str], status: int
) -> None:
    event = mycarrier_event("PO-X")
    answer = await http.post("/v1/webhooks/mycarrier", json=event, headers=headers)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert not await exists(client, f"payment-mycarrier-{event['Payments'][0]['Id']}")


async def test_wrong_api_key_is_refused(http: httpx.AsyncClient) -> None:
    answer = await http.post("/v1/payments/alvys/customer-payments", json={}, headers={"X-API-Key": "nope"})
    assert answer.status_code == 401 and answer.json()["title"] == "Missing or wrong X-API-Key"


def _errors(answer: httpx.Response) -> dict[str, str]:
    assert answer.headers["content-type"] == "application/problem+json", answer.text
    return {e["field"]: e["reason"] for e in answer.json()["errors"]}


async def test_bad_webhooks_name_the_fields_and_start_nothing(
    http: httpx.AsyncClient, client: Client
) -> None:
    headers = {"X-Webhook-Secret": MC_SECRET, "Content-Type": "application/json"}
    malformed = await http.post("/v1/webhooks/mycarrier", content=b'{"RecordId": ', headers=headers)
    assert malformed.status_code == 400 and "body" in _errors(malformed)

    event = mycarrier_event("PO-Y")
    del event["Payments"][0]["DateTime"]
    event["Payments"][0]["Amount"] = "lots"
    wrong = await http.post("/v1/webhooks/mycarrier", json=event, headers=headers)
    assert wrong.status_code == 422
    assert _errors(wrong) == {"Payments.0.DateTime": "is required", "Payments.0.Amount": "must be a number"}

    negative = mycarrier_event("PO-Y", -1.0)
    answer = await http.post("/v1/webhooks/mycarrier", json=negative, headers=headers)
    assert answer.status_code == 422 and _errors(answer) == {"Payments.0.Amount": "must be greater than zero"}

    approved = {**mycarrier_event("PO-Y"), "Status": "Approved"}
    answer = await http.post("/v1/webhooks/mycarrier", json=approved, headers=headers)
    assert answer.status_code == 422 and "only a Paid invoice is a payment" in _errors(answer)["Status"]

    for body in (event, negative, approved):
        assert not await exists(client, f"payment-mycarrier-{body['Payments'][0]['Id']}")


async def test_bad_alvys_body_names_the_fields(http: httpx.AsyncClient) -> None:
    body = {"LoadNumber": "L-1", "Amount": {"Amount": 10.001, "Currency": 840}, "PaymentDate": "2026-01-01",
            "ReferenceNumber": "R-1", "MarkAsPaid": True}  # fmt: skip
    answer = await http.post(
        "/v1/payments/alvys/customer-payments", json=body, headers={"X-API-Key": API_KEY}
    )
    assert answer.status_code == 422
    assert _errors(answer) == {
        "MarkAsPaid": "is not a known field",
        "PaymentDate": "must be an ISO 8601 date-time string, e.g. 2026-11-20T15:00:00Z",
    }


async def test_an_oversized_body_is_refused(http: httpx.AsyncClient, ingress_settings: Settings) -> None:
    big = b"[" + b" " * (ingress_settings.freightpay.max_json_bytes + 10) + b"]"
    answer = await http.post(
        "/v1/payments/alvys/customer-payments", content=big, headers={"X-API-Key": API_KEY}
    )
    assert answer.status_code == 413


async def test_temporal_down_answers_503_and_starts_nothing(
    ingress_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")
    with serve_app(create_app(ingress_settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as session:
            answer = await session.post(
                "/v1/webhooks/mycarrier",
                json=mycarrier_event("PO-Z"),
                headers={"X-Webhook-Secret": MC_SECRET},
            )
            health = await session.get("/healthz")
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert answer.json()["title"] == "Temporal is unavailable"
    assert health.status_code == 200


def remittance_csv(rows: list[str]) -> bytes:
    header = (
        "target,load_number,trip_id,invoice_number,amount,currency,payment_date,reference,method,check_number"
    )
    return ("\n".join([header, *rows]) + "\n").encode()


async def test_a_remittance_file_with_one_bad_line_is_refused_whole(
    http: httpx.AsyncClient, client: Client
) -> None:
    ref = f"R-{uid()}"
    body = remittance_csv(
        [
            f"alvys-customer-payment,L-1001,,,10.00,USD,2026-11-20,{ref}-1,Check,1",
            f"alvys-customer-payment,L-1001,,,ten,USD,2026-11-20,{ref}-2,Check,2",
            f"alvys-carrier-payment,,,,5.00,USD,20/11/2026,{ref}-3,ACH,",
        ]
    )
    answer = await http.post(
        "/v1/remittances", content=body, headers={"X-API-Key": API_KEY, "Content-Type": "text/csv"}
    )

    assert answer.status_code == 422
    errors = _errors(answer)
    assert errors["line 3, column amount"] == "amount 'ten' is not a number"
    assert "is not a date" in errors["line 4, column payment_date"]
    assert "a carrier payment needs a trip id" in errors["line 4, column load_number/trip_id/invoice_number"]
    assert not await exists(client, f"payment-remittance-{ref}-1")


async def test_a_remittance_file_pays_every_line(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient
) -> None:
    load, trip = f"L-{uid()}", f"T-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="30.00")
    await alvys.add_trip(sandbox, trip, load=f"L-{uid()}", status="Delivered", payable="20.00")
    ref = f"R-{uid()}"
    body = remittance_csv(
        [
            f"alvys-customer-payment,{load},,,10.00,USD,2026-11-20,{ref}-1,Check,1",
            "",
            f"alvys-customer-payment,{load},,,20.00,USD,2026-11-20T10:00:00Z,{ref}-2,Check,2",
            f"alvys-carrier-payment,,{trip},,20.00,USD,2026-11-20,{ref}-3,ACH,",
        ]
    )
    answer = await http.post("/v1/remittances?name=bank.csv", content=body, headers={"X-API-Key": API_KEY})
    assert answer.status_code == 202, answer.text
    assert answer.json()["workflow_ids"] == [f"payment-remittance-{ref}-{n}" for n in (1, 2, 3)]
    parent = client.get_workflow_handle(answer.json()["remittance_workflow_id"])

    summary = await asyncio.wait_for(parent.result(), 60)

    assert summary["total_lines"] == 3 and summary["finished"] == 3
    assert summary["by_status"] == {"PartiallyPaid": 1, "Paid": 2}
    again = await http.post("/v1/remittances?name=bank.csv", content=body, headers={"X-API-Key": API_KEY})
    assert again.json() == answer.json()  # the same file is the same parent; nothing new


@pytest.mark.slow
async def test_a_remittance_file_of_a_thousand_lines_completes(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient
) -> None:
    load, trip, ref = f"L-{uid()}", f"T-{uid()}", f"R-{uid()}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="100000.00")
    await alvys.add_trip(sandbox, trip, load=f"L-{uid()}", status="Delivered", payable="100000.00")
    rows = [
        f"alvys-customer-payment,{load},,,10.00,USD,2026-11-20,{ref}-{n},ACH,"
        if n % 2
        else f"alvys-carrier-payment,,{trip},,10.00,USD,2026-11-20,{ref}-{n},ACH,"
        for n in range(1000)
    ]
    answer = await http.post(
        "/v1/remittances?name=big.csv", content=remittance_csv(rows), headers={"X-API-Key": API_KEY}
    )
    assert answer.status_code == 202, answer.text
    parent = client.get_workflow_handle(answer.json()["remittance_workflow_id"])

    summary = await asyncio.wait_for(parent.result(), 240)

    assert summary["finished"] == 1000 and summary["by_status"] == {"PartiallyPaid": 1000}
    progress_runs = [w async for w in client.list_workflows(f"WorkflowId = '{parent.id}'")]
    assert len(progress_runs) == 2  # one run per batch of 500: continue-as-new keeps each history bounded
    history = await parent.fetch_history()
    assert len(history.events) < 5000  # 500 children (three events each) and their parent's tasks
    postings = (await sandbox.get("/_sandbox/alvys/postings")).json()
    assert len([p for p in postings if p["reference"].startswith(f"{ref}-")]) == 1000


async def test_a_shipment_seen_before_costs_no_lookup(
    http: httpx.AsyncClient, client: Client, sandbox: httpx.AsyncClient
) -> None:
    po, load, trip = f"PO-{uid()}", f"L-{uid()}", f"T-{uid()}"
    await alvys.add_load(sandbox, load, status="Delivered", billable="300.00", po=po)
    await alvys.add_trip(sandbox, trip, load=load, status="Delivered", payable="300.00")
    event = mycarrier_event(po, 100.0)
    second = copy.deepcopy(event["Payments"][0])
    second.update(Id=str(uuid.uuid4()), TransactionId=str(uuid.uuid4()), Amount=200.0)
    event["Payments"].append(second)
    before = await alvys.request_counts(sandbox)

    answer = await http.post("/v1/webhooks/mycarrier", json=event, headers={"X-Webhook-Secret": MC_SECRET})
    first_id, second_id = answer.json()["workflow_ids"]
    first = await asyncio.wait_for(payment_result(client, first_id), 30)
    # the second payment of the same shipment, once the first has resolved it
    last = await asyncio.wait_for(payment_result(client, second_id), 30)

    assert {first.status, last.status} <= {PaymentStatus.PAID, PaymentStatus.PARTIALLY_PAID}
    calls = alvys.delta(before, await alvys.request_counts(sandbox))
    assert calls["invoices/carrier-payments"] == 2
    # both payments start at once, so each may look the shipment up; a later one never does
    assert calls["loads/search"] <= 2 and calls["trips/search"] <= 2
    third = mycarrier_event(po, 0.5)
    before = await alvys.request_counts(sandbox)
    again = await http.post("/v1/webhooks/mycarrier", json=third, headers={"X-Webhook-Secret": MC_SECRET})
    await asyncio.wait_for(payment_result(client, again.json()["workflow_ids"][0]), 30)
    assert alvys.delta(before, await alvys.request_counts(sandbox)) == {"invoices/carrier-payments": 1}


async def test_a_slow_sender_is_cut_off(http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    import ingress.app

    monkeypatch.setattr(ingress.app, "REQUEST_TIMEOUT", timedelta(seconds=1))

    async def trickle() -> Any:
        yield b'{"LoadNumber": '
        await asyncio.sleep(3)
        yield b'"L-1"}'

    try:
        answer = await http.post(
            "/v1/payments/alvys/customer-payments", content=trickle(), headers={"X-API-Key": API_KEY}
        )
    except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
        return  # the server answered 408 and closed while the sender was still trickling
    assert answer.status_code == 408 and answer.json()["title"] == "Request timeout"
