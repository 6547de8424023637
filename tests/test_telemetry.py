"""Traces and metrics (config/telemetry.py): one trace per payment, SDK metrics for Prometheus.

The trace tests run real HTTP servers on loopback and a real worker on the session's dev
server; spans go to an in-memory exporter. No timing is asserted: waits are bounded polls.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import httpx
    import pytest
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind
    from temporalio.client import Client
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from config import telemetry
    from config.settings import Settings
    from config.telemetry import (
        TelemetryError,
        TelemetrySettings,
        client_interceptors,
        instrument_app,
        instrument_http_client,
        runtime_with_metrics,
        setup_tracing,
        shutdown_tracing,
    )
    from tests.support.servers import free_port, serve_app


def alvys_customer_payment() -> dict[str, Any]:
    """The example body (read when called: the workflow sandbox re-imports this module)."""
    example = Path(__file__).resolve().parent.parent / "examples" / "alvys-customer-payment.json"
    body: dict[str, Any] = json.loads(example.read_text())
    return body


# -- a tiny workflow whose activity calls a "vendor" over HTTP -------------------------------


class VendorCalls:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http, self.base_url = http, base_url

    @activity.defn(name="fetch_load")
    async def fetch_load(self, number: str) -> dict[str, Any]:
        response = await self.http.get(f"{self.base_url}/loads/{number}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


@workflow.defn(name="TelemetryProbe")
class TelemetryProbe:
    @workflow.run
    async def run(self, number: str) -> dict[str, Any]:
        return await workflow.execute_activity_method(
            VendorCalls.fetch_load, number, start_to_close_timeout=timedelta(seconds=30)
        )


@activity.defn(name="greet")
async def greet(name: str) -> str:
    return f"hello {name}"


@workflow.defn(name="MetricsProbe")
class MetricsProbe:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(greet, name, start_to_close_timeout=timedelta(seconds=30))


def vendor_app() -> FastAPI:
    app = FastAPI()

    @app.get("/loads/{number}")
    async def load(number: str) -> dict[str, Any]:
        return {"LoadNumber": number, "Status": "Invoiced"}

    return app


def ingress_app(client: Client, task_queue: str) -> FastAPI:
    app = FastAPI()

    @app.post("/start/{number}", status_code=202)
    async def start(number: str) -> dict[str, str]:
        handle = await client.start_workflow(
            TelemetryProbe.run, number, id=f"probe-{number}", task_queue=task_queue
        )
        return {"workflow_id": handle.id}

    return app


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test, into memory; off again afterwards."""
    exporter = InMemorySpanExporter()
    assert setup_tracing(TelemetrySettings(), "freightpay-test", exporter=exporter) is not None
    try:
        yield exporter
    finally:
        shutdown_tracing()


async def wait_for_spans(
    exporter: InMemorySpanExporter, done: Callable[[list[ReadableSpan]], bool], seconds: float = 20
) -> list[ReadableSpan]:
    """The finished spans, once ``done`` says they are all there (or the deadline passed)."""
    deadline = time.monotonic() + seconds
    while True:
        finished = list(exporter.get_finished_spans())
        if done(finished) or time.monotonic() > deadline:
            return finished
        await asyncio.sleep(0.05)


def one(spans: list[ReadableSpan], name: str, trace_id: int | None = None) -> ReadableSpan:
    found = [s for s in spans if s.name == name and (trace_id is None or s.context.trace_id == trace_id)]
    assert len(found) == 1, f"{name}: {len(found)} spans among {sorted({s.name for s in spans})}"
    return found[0]


def assert_child(child: ReadableSpan, parent: ReadableSpan) -> None:
    assert child.parent is not None, f"{child.name} has no parent"
    assert child.context.trace_id == parent.context.trace_id, f"{child.name} is in another trace"
    assert child.parent.span_id == parent.context.span_id, f"{child.name}'s parent is not {parent.name}"


def tree(spans: list[ReadableSpan]) -> str:
    """The spans as an indented tree (printed by the tests: ``pytest -s`` shows it)."""
    ids = {s.context.span_id for s in spans}
    children: dict[int | None, list[ReadableSpan]] = {}
    for s in sorted(spans, key=lambda s: s.start_time or 0):
        parent = s.parent.span_id if s.parent and s.parent.span_id in ids else None
        children.setdefault(parent, []).append(s)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for s in children.get(parent, []):
            lines.append(f"{'  ' * depth}{s.name}  [{s.kind.name}]")
            walk(s.context.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)


def traced_client(client: Client) -> Client:
    """The session's client with the tracing interceptors (a worker built from it inherits them)."""
    interceptors = client_interceptors(TelemetrySettings())
    assert interceptors, "tracing is on: the TracingInterceptor is expected"
    config = client.config()
    config["interceptors"] = interceptors
    return Client(**config)


# -- traces ----------------------------------------------------------------------------------


async def test_one_trace_from_the_ingress_request_to_the_vendor_call(
    client: Client, task_queue: str, spans: InMemorySpanExporter
) -> None:
    traced = traced_client(client)
    vendor = vendor_app()
    instrument_app(vendor)  # so the vendor's side shows the propagated traceparent
    ingress = ingress_app(traced, task_queue)
    instrument_app(ingress)
    number = f"L-{uuid.uuid4().hex[:8]}"

    async with httpx.AsyncClient(timeout=10) as http:
        instrument_http_client(http)
        with serve_app(vendor) as vendor_url, serve_app(ingress) as ingress_url:
            calls = VendorCalls(http, vendor_url)
            worker = Worker(
                traced, task_queue=task_queue, workflows=[TelemetryProbe], activities=[calls.fetch_load]
            )
            async with worker, httpx.AsyncClient(timeout=30) as caller:
                answer = await caller.post(f"{ingress_url}/start/{number}")
                assert answer.status_code == 202, answer.text
                workflow_id = answer.json()["workflow_id"]
                result = await traced.get_workflow_handle(workflow_id).result()
                assert result == {"LoadNumber": number, "Status": "Invoiced"}

            http_name = f"GET 127.0.0.1/loads/{number}"  # method, host and path
            names = (
                "POST /start/{number}",
                "StartWorkflow:TelemetryProbe",
                "RunWorkflow:TelemetryProbe",
                "StartActivity:fetch_load",
                "RunActivity:fetch_load",
                http_name,
                "GET /loads/{number}",
                "CompleteWorkflow:TelemetryProbe",
            )
            finished = await wait_for_spans(spans, lambda got: set(names) <= {s.name for s in got})

    request = one(finished, "POST /start/{number}")
    trace_id = request.context.trace_id
    in_trace = [s for s in finished if s.context.trace_id == trace_id]
    assert {s.name for s in in_trace} >= set(names), sorted(s.name for s in in_trace)
    assert request.parent is None and request.kind is SpanKind.SERVER

    start = one(in_trace, "StartWorkflow:TelemetryProbe")
    run = one(in_trace, "RunWorkflow:TelemetryProbe")
    start_activity = one(in_trace, "StartActivity:fetch_load")
    run_activity = one(in_trace, "RunActivity:fetch_load")
    vendor_call = one(in_trace, http_name)
    vendor_side = one(in_trace, "GET /loads/{number}")
    complete = one(in_trace, "CompleteWorkflow:TelemetryProbe")

    assert_child(start, request)  # the client call made inside the request handler
    assert_child(run, start)  # the worker picked the workflow up under the start's context
    # The TracingInterceptor's workflow spans are made outside the sandbox and ended at once;
    # what the workflow schedules hangs off the context the workflow was started with.
    assert_child(start_activity, start)
    assert_child(complete, start)
    assert_child(run_activity, start_activity)  # across the task queue, through the headers
    assert_child(vendor_call, run_activity)  # the vendor HTTP call inside the activity
    assert_child(vendor_side, vendor_call)  # traceparent went out with the request
    assert vendor_call.kind is SpanKind.CLIENT
    assert run_activity.attributes is not None
    assert run_activity.attributes["temporalWorkflowID"] == workflow_id
    assert start.attributes is not None and start.attributes["temporalWorkflowID"] == workflow_id


async def test_a_real_payment_through_the_ingress_is_one_trace(
    client: Client,
    settings: Settings,
    sandbox: httpx.AsyncClient,
    spans: InMemorySpanExporter,
    ingress_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The payment workflow and its vendor calls in one trace, as they would be with tracing on."""
    import worker as worker_module
    from ingress.app import create_app
    from tests.conftest import API_KEY
    from tests.support import alvys_sandbox as alvys

    made = worker_module.vendor_http_client

    def instrumented() -> httpx.AsyncClient:
        http = made()
        instrument_http_client(http)  # idempotent: a no-op if worker.py already does it
        return http

    monkeypatch.setattr(worker_module, "vendor_http_client", instrumented)
    traced = traced_client(client)
    ingress_settings = settings.model_copy(
        update={"freightpay": settings.freightpay.model_copy(update={"api_keys": API_KEY})}
    )
    app = create_app(ingress_settings, client=traced)
    instrument_app(app)  # idempotent: a no-op if create_app already does it
    uid = uuid.uuid4().hex[:8].upper()
    load, ref = f"L-{uid}", f"CHK-{uid}"
    await alvys.add_load(sandbox, load, status="Invoiced", billable="382.53")
    body = {**alvys_customer_payment(), "LoadNumber": load, "ReferenceNumber": ref}

    async with worker_module.running_worker(traced, settings):
        with serve_app(app, port=ingress_port) as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                answer = await http.post(
                    "/v1/payments/alvys/customer-payments", json=body, headers={"X-API-Key": API_KEY}
                )
            assert answer.status_code == 202, answer.text
            workflow_id = answer.json()["workflow_ids"][0]
            await asyncio.wait_for(traced.get_workflow_handle(workflow_id).result(), 60)
            finished = await wait_for_spans(
                spans,
                lambda got: (
                    any(s.name == "POST /v1/payments/alvys/customer-payments" for s in got)
                    and any(s.name == "CompleteWorkflow:PaymentWorkflow" for s in got)
                ),
            )

    request = one(finished, "POST /v1/payments/alvys/customer-payments")
    in_trace = [s for s in finished if s.context.trace_id == request.context.trace_id]
    print(f"\none payment's trace:\n{tree(in_trace)}")
    by_id = {s.context.span_id: s for s in in_trace}
    start = one(in_trace, "StartWorkflow:PaymentWorkflow")
    assert_child(start, request)
    assert_child(one(in_trace, "RunWorkflow:PaymentWorkflow"), start)
    run_activities = [s for s in in_trace if s.name.startswith("RunActivity:")]
    assert run_activities, sorted(s.name for s in in_trace)
    vendor_calls = [s for s in in_trace if s.kind is SpanKind.CLIENT and s.name.startswith(("GET ", "POST "))]
    assert any(s.name.endswith("/invoices/customer-payments") for s in vendor_calls), sorted(
        s.name for s in in_trace
    )
    for call in vendor_calls:
        assert call.parent is not None
        assert by_id[call.parent.span_id].name.startswith("RunActivity:"), call.name


async def test_tracing_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FREIGHTPAY_TRACES", raising=False)
    settings = TelemetrySettings()
    assert settings.traces == "off" and settings.metrics_port == 0
    assert setup_tracing(settings, "freightpay-test") is None
    assert client_interceptors(settings) == []
    assert runtime_with_metrics(settings) is None
    async with httpx.AsyncClient() as http:
        instrument_http_client(http)  # a no-op
        assert not getattr(http, "_is_instrumented_by_opentelemetry", False)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FREIGHTPAY_TRACES", " Console ")
    monkeypatch.setenv("FREIGHTPAY_METRICS_PORT", "9464")
    settings = TelemetrySettings()
    assert settings.traces == "console"
    assert settings.metrics_address == "0.0.0.0:9464"
    assert [type(i).__name__ for i in client_interceptors(settings)] == ["TracingInterceptor"]
    monkeypatch.setenv("FREIGHTPAY_TRACES", "jaeger")
    with pytest.raises(ValueError):
        TelemetrySettings()


def test_otlp_without_its_exporter_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    try:
        installed = importlib.util.find_spec("opentelemetry.exporter.otlp.proto.http") is not None
    except ModuleNotFoundError:
        installed = False
    if installed:
        pytest.skip("the OTLP exporter is installed here")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", raising=False)
    with pytest.raises(TelemetryError, match="pip install opentelemetry-exporter-otlp-proto-http"):
        setup_tracing(TelemetrySettings(traces="otlp"), "freightpay-test")
    assert not telemetry.tracing_enabled()


# -- metrics ---------------------------------------------------------------------------------


async def test_sdk_metrics_on_the_prometheus_endpoint(temporal_env: WorkflowEnvironment) -> None:
    port = free_port()
    runtime = runtime_with_metrics(TelemetrySettings(metrics_port=port, metrics_host="127.0.0.1"))
    assert runtime is not None
    assert runtime_with_metrics(TelemetrySettings(metrics_port=port, metrics_host="127.0.0.1")) is runtime
    session = temporal_env.client
    client = await Client.connect(
        session.service_client.config.target_host, namespace=session.namespace, runtime=runtime
    )
    task_queue = f"metrics-{uuid.uuid4()}"
    async with Worker(client, task_queue=task_queue, workflows=[MetricsProbe], activities=[greet]):
        result = await client.execute_workflow(
            MetricsProbe.run, "prometheus", id=f"metrics-{uuid.uuid4()}", task_queue=task_queue
        )
    assert result == "hello prometheus"

    text = ""
    async with httpx.AsyncClient(timeout=5) as http:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            if "temporal_workflow_completed" in text:
                break
            await asyncio.sleep(0.1)
    lines = text.splitlines()
    assert any(line.startswith("temporal_workflow_completed{") for line in lines), text[:2000]
    assert any(line.startswith("temporal_request{") for line in lines), text[:2000]
    assert any(
        line.startswith("temporal_workflow_task_schedule_to_start_latency_bucket{") for line in lines
    ), text[:2000]
    assert any(f'task_queue="{task_queue}"' in line for line in lines)
    # The finer buckets for waits in the (rate-limited) vendor queues: 10 minutes is one.
    assert any(
        line.startswith("temporal_activity_schedule_to_start_latency_bucket{") and 'le="600000"' in line
        for line in lines
    ), text[:2000]


def test_a_taken_metrics_port_does_not_stop_the_process() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert runtime_with_metrics(TelemetrySettings(metrics_port=port, metrics_host="127.0.0.1")) is None
