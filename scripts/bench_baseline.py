"""The bare-Temporal baseline of ``scripts/bench.py``, and the direct calls it shares with the floor.

Why a module of its own: Temporal's workflow sandbox re-imports a workflow's module for every
workflow run, so the baseline workflow lives in a module that imports nothing but the SDK and
the standard library (httpx is passed through), as a hand-written Temporal app would. The
benchmark runs it in a worker subprocess (``python scripts/bench.py --baseline-worker ...``).

What it does is exactly what a happy freightpay Alvys customer payment does on the wire: one
workflow, one activity, and in the activity one ``POST invoices/customer-payments`` with the same
body shape (``LoadNumber``, ``Amount {Amount, Currency}``, ``PaymentDate``, ``ReferenceNumber``)
and a bearer token fetched once and cached. :class:`AlvysCalls` is also what the "direct" floor of
the benchmark calls with plain asyncio, without Temporal.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import httpx

#: The sandbox's demo credentials (``config.settings`` uses the same ones).
CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"
AUDIENCE = "https://api.alvys.com/public/"


@dataclass
class BaselinePayment:
    """One customer payment: the load it is for, the amount (USD), the business reference."""

    load_number: str
    amount: float
    reference: str
    payment_date: str = "2026-11-20T00:00:00.000Z"


def http_client() -> httpx.AsyncClient:
    """Pooled like freightpay's worker client (``worker.vendor_http_client``), without tracing."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(20.0, connect=5.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": "freightpay-bench/0.1"},
    )


class AlvysCalls:
    """The token (fetched once, shared by concurrent callers) and the customer-payments POST."""

    def __init__(self, http: httpx.AsyncClient, sandbox_url: str) -> None:
        base = f"{sandbox_url.rstrip('/')}/alvys"
        self._http = http
        self._auth_url = f"{base}/oauth/token"
        self._payments_url = f"{base}/api/p/v1.0/invoices/customer-payments"
        self._token: str | None = None
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        if self._token is not None:
            return self._token
        async with self._lock:
            if self._token is None:
                body = {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "audience": AUDIENCE,
                    "grant_type": "client_credentials",
                }
                response = await self._http.post(self._auth_url, json=body)
                response.raise_for_status()
                self._token = str(response.json()["access_token"])
            return self._token

    async def post_customer_payment(self, payment: BaselinePayment) -> dict[str, Any]:
        """Record the payment on its load; raises on any non-2xx answer."""
        body = {
            "LoadNumber": payment.load_number,
            "Amount": {"Amount": payment.amount, "Currency": 840},
            "PaymentDate": payment.payment_date,
            "ReferenceNumber": payment.reference,
        }
        headers = {"Authorization": f"Bearer {await self.token()}", "Accept": "application/json"}
        response = await self._http.post(self._payments_url, json=body, headers=headers)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer


def paid(answer: dict[str, Any]) -> bool:
    """Whether Alvys's answer says the load is covered (``TotalPaid >= TotalBillable``), as Paid means."""
    try:
        return float(answer["TotalPaid"]["Amount"]) >= float(answer["TotalBillable"]["Amount"])
    except (KeyError, TypeError, ValueError):
        return False


class BaselineActivities:
    def __init__(self, calls: AlvysCalls) -> None:
        self._calls = calls

    @activity.defn(name="baseline_post_customer_payment")
    async def post(self, payment: BaselinePayment) -> dict[str, Any]:
        return await self._calls.post_customer_payment(payment)


@workflow.defn(name="BaselinePayment")
class BaselineWorkflow:
    """One workflow, one activity: the least Temporal needs to post a payment durably."""

    @workflow.run
    async def run(self, payment: BaselinePayment) -> dict[str, Any]:
        return await workflow.execute_activity_method(
            BaselineActivities.post, payment, start_to_close_timeout=timedelta(seconds=30)
        )


async def serve(address: str, task_queue: str, sandbox_url: str) -> None:
    """Run the baseline worker (SDK defaults) until the process is stopped."""
    from temporalio.client import Client
    from temporalio.worker import Worker

    client = await Client.connect(address)
    async with http_client() as http:
        activities = BaselineActivities(AlvysCalls(http, sandbox_url))
        worker = Worker(
            client, task_queue=task_queue, workflows=[BaselineWorkflow], activities=[activities.post]
        )
        async with worker:
            await asyncio.Event().wait()
