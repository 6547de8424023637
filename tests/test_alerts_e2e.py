"""Alerts end to end: a payment entering NeedsReview posts one signed alert per entry to a receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.client import Client

from config.alerts import verify
from config.settings import Settings
from intake.start import start_payment
from models.state import PaymentStatus, ResolveInput, RetryInput
from models.steps import PaymentPolicy
from tests.support.payments import customer, uid, wait_status
from tests.support.servers import serve_app
from worker import running_worker

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def received() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def hook(request: Request) -> Response:
        body = await request.body()
        seen.append({"valid": verify(SECRET, dict(request.headers), body), "id": request.headers["webhook-id"],
                     **json.loads(body)})  # fmt: skip
        return Response(status_code=204)

    with serve_app(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as url:
        yield f"{url}/hook", seen


async def test_each_entry_into_needs_review_is_one_signed_alert(
    client: Client, settings: Settings, received: tuple[str, list[dict[str, Any]]]
) -> None:
    url, seen = received
    freightpay = settings.freightpay.model_copy(
        update={"alert_webhook_url": url, "alert_webhook_secret": SecretStr(SECRET)}
    )
    alerting = settings.model_copy(update={"freightpay": freightpay})
    assert alerting.freightpay.policy().alerts
    instruction = customer(f"L-MISSING-{uid()}", "10.00")
    async with running_worker(client, alerting):
        await start_payment(
            client, instruction, task_queue=settings.freightpay.task_queue, policy=PaymentPolicy(alerts=True)
        )
        await wait_status(client, instruction.workflow_id, PaymentStatus.NEEDS_REVIEW)
        handle = client.get_workflow_handle(instruction.workflow_id)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.1)
        await handle.execute_update("retry", RetryInput(reason="try again"))
        await wait_status(client, instruction.workflow_id, PaymentStatus.NEEDS_REVIEW)
        for _ in range(100):
            if len(seen) >= 2:
                break
            await asyncio.sleep(0.1)
        await handle.execute_update("resolve", ResolveInput(reason="keyed by hand"))
        await asyncio.wait_for(handle.result(), 30)

    assert [a["event"] for a in seen] == ["payment.needs_review", "payment.needs_review"]
    assert all(a["valid"] for a in seen)
    assert [a["id"].rsplit(":", 1)[1] for a in seen] == ["1", "2"]  # one id per entry, stable across retries
    assert seen[0]["workflow_id"] == instruction.workflow_id and "needs review" in seen[0]["text"]


@pytest.mark.usefixtures("worker")
async def test_without_an_alert_url_no_alert_activity_is_scheduled(
    client: Client, settings: Settings
) -> None:
    assert not settings.freightpay.policy().alerts
    instruction = customer(f"L-MISSING-{uid()}", "10.00")
    await start_payment(
        client, instruction, task_queue=settings.freightpay.task_queue, policy=settings.freightpay.policy()
    )
    await wait_status(client, instruction.workflow_id, PaymentStatus.NEEDS_REVIEW)
    history = await client.get_workflow_handle(instruction.workflow_id).fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled and "send_alert" not in scheduled
