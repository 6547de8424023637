"""Traces (OpenTelemetry) and Temporal SDK metrics (Prometheus), both off by default.

One payment is one trace (the shape observed, docs/observability.md)::

    POST /v1/payments/alvys/customer-payments          ingress request (SERVER)
      StartWorkflow:PaymentWorkflow                    the client's start (CLIENT)
        RunWorkflow:PaymentWorkflow                    a worker took it up (SERVER, no duration)
        StartActivity:post_payment                     the workflow scheduled a step (CLIENT)
          RunActivity:post_payment                     a worker ran it (SERVER)
            POST integrations.alvys.com/api/p/v1.0/invoices/customer-payments   the vendor call
        CompleteWorkflow:PaymentWorkflow               (INTERNAL, no duration)

Temporal carries the trace context in workflow and activity headers
(:class:`temporalio.contrib.opentelemetry.TracingInterceptor`), so the trace crosses
processes: the ingress, any worker, and steps run hours later. The workflow's spans hang off
the context it was started with (``StartWorkflow``), not off ``RunWorkflow``.

Settings (environment):

``FREIGHTPAY_TRACES``
    ``off`` (default), ``console`` (spans printed as JSON on stdout) or ``otlp`` (spans sent
    to an OpenTelemetry collector, Jaeger, Grafana Tempo ...; the exporter reads the standard
    ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``,
    ``OTEL_EXPORTER_OTLP_PROTOCOL`` = ``http/protobuf`` (default) or ``grpc``, and the
    ``..._TRACES_...`` variants). ``otlp`` needs ``opentelemetry-exporter-otlp`` installed.
    ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` are honoured too.
``FREIGHTPAY_METRICS_PORT``
    ``0`` (default): no metrics endpoint. Otherwise the Temporal SDK serves its metrics
    (``temporal_*``) for Prometheus at ``http://{FREIGHTPAY_METRICS_HOST}:{port}/metrics``.
``FREIGHTPAY_METRICS_HOST``
    The interface the metrics endpoint binds (default ``0.0.0.0``, so Prometheus can scrape
    it from elsewhere; ``127.0.0.1`` keeps it local).

Wiring (each a line or two; everything is a no-op while tracing is off)::

    telemetry = TelemetrySettings()
    setup_tracing(telemetry, "freightpay-worker")            # once per process, first
    client = await Client.connect(..., interceptors=client_interceptors(telemetry),
                                  runtime=runtime_with_metrics(telemetry))
    instrument_http_client(http)                             # the worker's vendor client
    instrument_app(app)                                      # the ingress's FastAPI app

The interceptor is set on the *client*: a ``Worker`` built from that client inherits it
(for workflows, activities and the client calls alike), so it must not be given to the
``Worker`` again. Workflow spans are made outside the workflow sandbox by the interceptor
itself and are not made again on replay; they have no duration (start = end), by design.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI
    from temporalio.client import Interceptor
    from temporalio.runtime import Runtime

log = logging.getLogger("freightpay.telemetry")

TraceMode = Literal["off", "console", "otlp"]
#: The instrumentation scope of the Temporal spans (StartWorkflow, RunWorkflow, RunActivity ...).
TEMPORAL_TRACER = "temporalio.contrib.opentelemetry"


class TelemetryError(RuntimeError):
    """Telemetry was asked for but cannot be set up (a missing package, a bad setting)."""


class TelemetrySettings(BaseSettings):
    """``FREIGHTPAY_TRACES``, ``FREIGHTPAY_METRICS_PORT``, ``FREIGHTPAY_METRICS_HOST``."""

    model_config = SettingsConfigDict(env_prefix="FREIGHTPAY_", extra="ignore")

    #: ``off`` | ``console`` | ``otlp``.
    traces: TraceMode = "off"
    #: The Prometheus endpoint's port; 0: no endpoint.
    metrics_port: int = Field(0, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"

    @field_validator("traces", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return "off" if value in ("", "none", "false", "0") else value
        return value

    @property
    def metrics_address(self) -> str | None:
        """``host:port`` of the metrics endpoint, or None when it is off."""
        return f"{self.metrics_host}:{self.metrics_port}" if self.metrics_port else None


# -- traces ----------------------------------------------------------------------------------

_provider: TracerProvider | None = None
_global_set = False


def tracing_enabled() -> bool:
    """Whether :func:`setup_tracing` turned tracing on in this process."""
    return _provider is not None


def tracer_provider() -> TracerProvider | None:
    """The process's tracer provider, once :func:`setup_tracing` made one."""
    return _provider


def otlp_span_exporter() -> SpanExporter:
    """The OTLP span exporter for ``OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`` (``http/protobuf`` default).

    It reads its endpoint, headers, timeout and certificates from the standard
    ``OTEL_EXPORTER_OTLP_*`` variables itself.
    """
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    modules = {
        "grpc": "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
        "http/protobuf": "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "http": "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    }
    if protocol not in modules:
        raise TelemetryError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: use http/protobuf or grpc"
        )
    try:
        exporter_class = importlib.import_module(modules[protocol]).OTLPSpanExporter
    except ImportError:
        package = "opentelemetry-exporter-otlp-proto-" + ("grpc" if protocol == "grpc" else "http")
        raise TelemetryError(
            f"FREIGHTPAY_TRACES=otlp (protocol {protocol}) needs the OTLP exporter, which is not "
            f"installed: `.venv/bin/pip install {package}` (or `opentelemetry-exporter-otlp` for "
            "both protocols), or set FREIGHTPAY_TRACES=console or off."
        ) from None
    exporter: SpanExporter = exporter_class()
    return exporter


def setup_tracing(
    settings: TelemetrySettings | None,
    service_name: str,
    *,
    exporter: SpanExporter | None = None,
) -> TracerProvider | None:
    """Turn tracing on for this process as the settings say; the provider, or None when off.

    The first provider made is also set as OpenTelemetry's global one (which can be set only
    once per process). Called again while tracing is on, it returns the same provider (adding
    ``exporter`` to it when one is given). ``exporter`` (for tests: an ``InMemorySpanExporter``)
    takes the place of the one ``FREIGHTPAY_TRACES`` names, and turns tracing on even when the
    settings say ``off``; its spans are exported as each one ends.
    """
    global _provider, _global_set
    settings = settings or TelemetrySettings()
    if _provider is not None:
        if exporter is not None:
            _provider.add_span_processor(SimpleSpanProcessor(exporter))
        return _provider
    if exporter is None and settings.traces == "off":
        return None
    processor: SimpleSpanProcessor | BatchSpanProcessor
    if exporter is not None:
        processor = SimpleSpanProcessor(exporter)
    elif settings.traces == "console":
        processor = SimpleSpanProcessor(ConsoleSpanExporter())
    else:
        processor = BatchSpanProcessor(otlp_span_exporter())
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(processor)
    _provider = provider
    if not _global_set:
        # Other libraries' spans (and opentelemetry.trace.get_tracer()) use the global provider.
        trace.set_tracer_provider(provider)
        _global_set = True
    log.info(
        "tracing on: service %s, spans to %s", name, type(exporter).__name__ if exporter else settings.traces
    )
    return provider


def shutdown_tracing() -> None:
    """Flush and stop the provider; tracing is off again (instrumentation done stays inert).

    Processes need not call it (the provider flushes at exit); tests do, so later tests see
    tracing off. A later :func:`setup_tracing` makes a new provider, used by everything set up
    after it (not as the global one, which OpenTelemetry lets be set only once).
    """
    global _provider
    provider, _provider = _provider, None
    if provider is not None:
        provider.shutdown()


def _tracer_for(scope: str, provider: TracerProvider | None) -> trace.Tracer | None:
    return provider.get_tracer(scope) if provider is not None else None


def client_interceptors(settings: TelemetrySettings | None = None) -> list[Interceptor]:
    """The Temporal client interceptors for tracing: ``[TracingInterceptor]`` when tracing is on.

    On when :func:`setup_tracing` turned it on in this process, or when the settings ask for
    traces (then spans go to OpenTelemetry's global provider, a no-op until one is set).
    Give them to the *client* (``Client.connect(interceptors=...)``): workers built from it
    inherit them.
    """
    settings = settings or TelemetrySettings()
    if not tracing_enabled() and settings.traces == "off":
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(_tracer_for(TEMPORAL_TRACER, _provider))]


async def _name_vendor_span(span: trace.Span, request: Any) -> None:
    """``POST integrations.alvys.com/api/p/v1/invoices/customer-payments``: which vendor, which call.

    The instrumentation names client spans by the method alone; the vendors' paths carry no
    identifiers (those are in query strings and bodies, which are not recorded), so the
    name stays low-cardinality.
    """
    url = request.url
    host = getattr(url, "host", "")
    path = getattr(url, "path", "")
    if host and span.is_recording():
        method = request.method.decode() if isinstance(request.method, bytes) else str(request.method)
        span.update_name(f"{method} {host}{path}")


def instrument_http_client(http: httpx.AsyncClient, *, provider: TracerProvider | None = None) -> None:
    """One client span per request ``http`` sends, a child of the current (activity) span.

    The request also carries the W3C ``traceparent`` header. No-op while tracing is off, and
    for a client already instrumented. Request and response bodies and headers are never
    recorded.
    """
    provider = provider or _provider
    if provider is None or getattr(http, "_is_instrumented_by_opentelemetry", False):
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(http, tracer_provider=provider, request_hook=_name_vendor_span)


def instrument_app(app: FastAPI, *, provider: TracerProvider | None = None) -> None:
    """A server span per ingress request (named ``POST /v1/...``, by route), parent of what it starts.

    Call it on the app before it serves. ``/healthz`` is not traced; the ASGI
    ``http receive`` / ``http send`` sub-spans are left out. No-op while tracing is off, and for
    an app already instrumented.
    """
    provider = provider or _provider
    if provider is None or getattr(app, "_is_instrumented_by_opentelemetry", False):
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls="/healthz",
        exclude_spans=["receive", "send"],
    )


# -- metrics ---------------------------------------------------------------------------------

_runtimes: dict[str, Runtime] = {}

#: Histogram buckets (milliseconds, the SDK's unit) for how long an activity waits in its queue.
#: The vendor queues are rate-limited on purpose (Alvys: 10 payments a minute), so waits of
#: minutes are normal under load; the SDK's default buckets jump from 100 s to 1000 s.
ACTIVITY_QUEUE_WAIT_BUCKETS_MS: tuple[float, ...] = (
    100, 500, 1_000, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000, 7_200_000,
)  # fmt: skip


def runtime_with_metrics(settings: TelemetrySettings | None = None) -> Runtime | None:
    """A Temporal runtime serving the SDK's metrics for Prometheus; None when the port is 0.

    Metric names are the SDK's (``temporal_*``), durations in milliseconds (the SDK's default),
    with finer buckets for ``temporal_activity_schedule_to_start_latency`` (see
    :data:`ACTIVITY_QUEUE_WAIT_BUCKETS_MS`).

    Pass it to ``Client.connect(runtime=...)``: every worker built from that client reports
    through it. One runtime per address per process (a second call returns the same one).
    When the address cannot be bound, this logs an error and returns None: the process runs
    on without metrics (alert on the scrape target being down).
    """
    settings = settings or TelemetrySettings()
    address = settings.metrics_address
    if address is None:
        return None
    if address in _runtimes:
        return _runtimes[address]
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    try:
        runtime = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=address,
                    histogram_bucket_overrides={
                        "activity_schedule_to_start_latency": ACTIVITY_QUEUE_WAIT_BUCKETS_MS
                    },
                )
            )
        )
    except ValueError as exc:
        log.error("no metrics endpoint on %s: %s", address, exc)
        return None
    _runtimes[address] = runtime
    log.info("Temporal SDK metrics on http://%s/metrics", address)
    return runtime
