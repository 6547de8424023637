"""Every HTTP status 400-599 a vendor can answer, classified as the tables in activities/ say.

The post activity runs for real (ActivityEnvironment) against the sandbox over HTTP, with a
sandbox hook answering each status in the vendor's own error format.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment

from config.settings import Settings
from models.money import Money
from models.payment import PaymentInstruction, Source, Target, TargetIds
from models.steps import PostOutcome, PostOutcomeKind, PostRequest
from sandbox.alvys import problem_response
from sandbox.transportone import os1_error_response
from worker import payment_activities

ALVYS = PaymentInstruction(
    source=Source.ALVYS_CUSTOMER, business_key="L-1001-CLASSIFY", target=Target.ALVYS_CUSTOMER_PAYMENT,
    ids=TargetIds(load_number="L-1001"), amount=Money.of("1.00"), payment_date=datetime(2026, 1, 1, tzinfo=UTC),
    reference_number="CLASSIFY",
)  # fmt: skip
TRANSPORTONE = PaymentInstruction(
    source=Source.TRANSPORTONE, business_key="INV2025040403-CLASSIFY", source_event_id="CLASSIFY",
    target=Target.TRANSPORTONE_PAYMENT, ids=TargetIds(invoice_number="INV2025040403"),
    amount=Money.of("1.00", "INR"), payment_date=datetime(2026, 1, 1, tzinfo=UTC), reference_number="UTR-C",
)  # fmt: skip


def expected(status: int) -> tuple[str, bool]:
    """The table: (what happens, whether Temporal retries it)."""
    if status == 429:
        return "VendorRateLimited", True
    if status >= 500 or status == 408:
        return "VendorUnavailable", True
    if status in (401, 403):
        return "VendorConfigurationError", False
    if status == 404:
        return PostOutcomeKind.NOT_FOUND.value, False
    return PostOutcomeKind.REJECTED.value, False


@pytest.fixture
async def activities(settings: Settings) -> AsyncIterator[Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield payment_activities(settings, http)


async def classify(activities: Any, instruction: PaymentInstruction) -> tuple[str, bool, timedelta | None]:
    try:
        outcome: PostOutcome = await ActivityEnvironment().run(
            activities.post_payment, PostRequest(instruction=instruction)
        )
    except ApplicationError as error:
        # Expected vendor trouble that the retry policy handles is benign: DEBUG logs, no failure metric.
        assert (error.category is ApplicationErrorCategory.BENIGN) == (not error.non_retryable), error
        return error.type or "", not error.non_retryable, error.next_retry_delay
    return outcome.outcome.value, False, None


@pytest.mark.parametrize("vendor", ["alvys", "transportone"])
async def test_every_status_from_400_to_599(vendor: str, activities: Any, sandbox_app: Any) -> None:
    state = getattr(sandbox_app.state, vendor)
    answer: dict[str, int] = {}

    async def hook(endpoint: str, request: Request, call_next: Any) -> Response:
        status = answer["status"]
        if endpoint in ("oauth/token", "auth/client-credentials"):
            token: Response = await call_next()  # tokens always work
            return token
        headers = {"Retry-After": "17"} if status == 429 else {}
        if vendor == "alvys":
            return problem_response(status, f"injected {status}", headers=headers)
        return os1_error_response(status, f"injected {status}", headers=headers)

    state.hooks.append(hook)
    instruction = ALVYS if vendor == "alvys" else TRANSPORTONE
    try:
        found = {}
        for status in range(400, 600):
            answer["status"] = status
            found[status] = await classify(activities, instruction)
    finally:
        state.hooks.remove(hook)

    for status, (kind, retried, delay) in found.items():
        assert (kind, retried) == expected(status), f"{vendor} {status}: {kind} retried={retried}"
        if status == 429:
            assert delay == timedelta(seconds=17), "a 429 waits exactly as long as Retry-After says"


async def test_alvys_not_payable_is_its_own_outcome(activities: Any, sandbox: httpx.AsyncClient) -> None:
    from tests.support import alvys_sandbox as alvys

    await alvys.add_load(sandbox, "L-CLASSIFY-DISPATCHED", status="Dispatched", billable="1.00")
    instruction = ALVYS.model_copy(update={"ids": TargetIds(load_number="L-CLASSIFY-DISPATCHED")})
    assert await classify(activities, instruction) == ("not_payable", False, None)


async def test_connection_errors_are_retried(settings: Settings) -> None:
    from tests.support.servers import free_port

    dead = settings.model_copy(
        update={"sandbox": settings.sandbox.model_copy(update={"url": f"http://127.0.0.1:{free_port()}"})}
    )
    async with httpx.AsyncClient(timeout=2) as http:
        activities = payment_activities(dead, http)
        with pytest.raises(httpx.ConnectError):
            await ActivityEnvironment().run(activities.post_payment, PostRequest(instruction=ALVYS))
