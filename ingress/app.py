"""The ingress: HTTP in, payment workflows started (FastAPI; OpenAPI at ``/docs``).

Every route authenticates (``X-API-Key`` for payment intake, ``X-Webhook-Secret`` for
MyCarrier, ``x-tms-callback-secret`` for TransportOne's callback; constant-time
comparisons). A start is answered ``202 {"workflow_ids": [...]}`` only after Temporal
accepted it; when Temporal cannot be reached the answer is ``503`` with ``Retry-After``, so
the sender retries and nothing is lost. Bad input is a ``4xx application/problem+json``
naming each field and reason, and starts nothing. The routes hold no payment rules: they
hand the body to :mod:`intake`, exactly as ``starter.py`` does.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from config.codec import codec_from_env
from config.relay import relay_keys, sign
from config.settings import Settings, get_settings
from config.telemetry import TelemetrySettings, instrument_app, setup_tracing
from config.temporal import connect, execution_status_label
from ingress.codec import codec_router
from intake import alvys as alvys_intake
from intake import mycarrier as mycarrier_intake
from intake import transportone as transportone_intake
from intake.errors import FieldProblem, IntakeError, PaymentConflicts
from intake.options import IntakeOptions
from intake.parse import load_json, parse_body
from intake.start import start_payments, start_remittance
from models.payment import Source, workflow_id_for
from models.state import PaymentState
from models.steps import CallbackReport
from workflows.payment import PaymentWorkflow

log = logging.getLogger("freightpay.ingress")
PROBLEM = "application/problem+json"
START_TIMEOUT = timedelta(seconds=5)
#: The most one request may take, reading its body included.
REQUEST_TIMEOUT = timedelta(seconds=30)
RETRY_AFTER_SECONDS = 5


class Problem(Exception):
    """An HTTP problem (RFC 9457) to answer with; ``errors`` name fields and reasons."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        errors: list[FieldProblem] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(title)
        self.status, self.title, self.detail = status, title, detail
        self.errors = errors or []
        self.headers = headers or {}
        self.extra = extra or {}

    def response(self, instance: str) -> JSONResponse:
        body: dict[str, Any] = {"type": "about:blank", "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        body["instance"] = instance
        if self.errors:
            body["errors"] = [{"field": e.field, "reason": e.reason} for e in self.errors]
        body.update(self.extra)
        return JSONResponse(body, status_code=self.status, media_type=PROBLEM, headers=self.headers)


class TemporalGate:
    """The ingress's Temporal client, connected lazily so the ingress starts (and answers 503) without it."""

    def __init__(self, client: Client | None = None) -> None:
        self._client = client
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(connect(), START_TIMEOUT.total_seconds())
                except (RuntimeError, OSError, TimeoutError) as exc:
                    raise unavailable(exc) from None
            return self._client


def unavailable(exc: BaseException) -> Problem:
    log.warning("Temporal unavailable: %s", exc)
    return Problem(
        503,
        "Temporal is unavailable",
        "The payment was not accepted; nothing was started. Send it again later.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def conflict(exc: PaymentConflicts) -> Problem:
    """409: a repeat of accepted business keys with other facts; each differing field, both values."""
    errors = [
        FieldProblem(
            f"{c.where}.{d.field}" if c.where else d.field,
            f"differs from the payment accepted as {c.workflow_id}: accepted {d.accepted or '(none)'!r}, "
            f"this one {d.new or '(none)'!r}",
        )
        for c in exc.conflicts
        for d in c.differences
    ]
    return Problem(
        409,
        "A payment with this key was already accepted with other facts",
        "Nothing was started and nothing changed. A repeat must be the same payment; "
        "a different payment needs its own reference.",
        errors=errors,
        extra={
            "conflicts": [
                {
                    "workflow_id": c.workflow_id,
                    "where": c.where,
                    "differences": [
                        {"field": d.field, "accepted": d.accepted, "new": d.new} for d in c.differences
                    ],
                }
                for c in exc.conflicts
            ]
        },
    )


def _secret_matches(given: str | None, expected: SecretStr | None) -> bool:
    if not given or expected is None or not expected.get_secret_value():
        return False
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """The schema with every ``#/$defs/X`` reference replaced by its definition (OpenAPI has no ``$defs``)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {k: _inline(v, definitions) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


def _schema(model: Any) -> dict[str, Any]:
    schema = model.model_json_schema()
    inlined = _inline(schema, schema.get("$defs", {}))
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inlined}}}}


_PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}


def problem_doc(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM: {"schema": _PROBLEM_SCHEMA}}}


#: What every route may answer besides its success (RFC 9457 problems).
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: problem_doc("Malformed JSON"),
    401: problem_doc("Missing or wrong credentials"),
    409: problem_doc("A repeat of an accepted payment's key with other facts; nothing was started"),
    413: problem_doc("Request body too large"),
    422: problem_doc("Invalid input: each field and the reason; nothing was started"),
    503: problem_doc("Temporal is unavailable; send again after Retry-After"),
}
STARTED_EXAMPLE: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted by Temporal",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["workflow_ids"],
                    "properties": {
                        "workflow_ids": {"type": "array", "items": {"type": "string"}},
                        "remittance_workflow_id": {"type": "string"},
                    },
                },
                "example": {"workflow_ids": ["payment-alvys-customer-L-1001-CHK-1001"]},
            }
        },
    },
    **PROBLEMS,
}


def create_app(settings: Settings | None = None, *, client: Client | None = None) -> FastAPI:
    """The ingress app; ``client`` is for tests (otherwise it connects from the environment)."""
    settings = settings or get_settings()
    setup_tracing(TelemetrySettings(), "freightpay-ingress")
    gate = TemporalGate(client)
    options = IntakeOptions()
    queue = settings.freightpay.task_queue
    policy = settings.freightpay.policy()
    api_keys = [SecretStr(k) for k in settings.freightpay.api_key_list()]
    relay = relay_keys(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not api_keys:
            log.warning("FREIGHTPAY_API_KEYS is empty: every payment route will answer 401")
        yield

    app = FastAPI(
        title="freightpay ingress",
        version="0.1.0",
        description=__doc__,
        lifespan=lifespan,
    )
    instrument_app(app)

    @app.middleware("http")
    async def _deadline(request: Request, call_next: Any) -> Any:
        """No request holds a connection longer than REQUEST_TIMEOUT (a slow sender included)."""
        try:
            return await asyncio.wait_for(call_next(request), REQUEST_TIMEOUT.total_seconds())
        except TimeoutError:
            return Problem(
                408, "Request timeout", f"the request took longer than {REQUEST_TIMEOUT.total_seconds():g} s"
            ).response(request.url.path)

    codec = codec_from_env()
    if codec is not None:  # the codec server exists only when payloads are encrypted
        app.include_router(codec_router(codec))

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return exc.response(request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return Problem(exc.status_code, str(exc.detail)).response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [FieldProblem(".".join(str(p) for p in e["loc"]), str(e["msg"])) for e in exc.errors()]
        return Problem(422, "The request is invalid", errors=errors).response(request.url.path)

    # -- authentication --------------------------------------------------------------------

    def api_key(x_api_key: str | None = Header(None, description="One of FREIGHTPAY_API_KEYS")) -> None:
        if not any(_secret_matches(x_api_key, key) for key in api_keys):
            raise Problem(401, "Missing or wrong X-API-Key", headers={"WWW-Authenticate": "X-API-Key"})

    def mycarrier_secret(
        x_webhook_secret: str | None = Header(None, description="MYCARRIER_WEBHOOK_SECRET"),
    ) -> None:
        if not _secret_matches(x_webhook_secret, settings.mycarrier.webhook_secret):
            raise Problem(401, "Missing or wrong X-Webhook-Secret")

    def callback_secret(
        x_tms_callback_secret: str | None = Header(None, description="TRANSPORTONE_CALLBACK_SECRET"),
    ) -> None:
        if not _secret_matches(x_tms_callback_secret, settings.transportone.callback_secret):
            raise Problem(401, "Missing or wrong x-tms-callback-secret")

    # -- helpers ----------------------------------------------------------------------------

    async def body_of(request: Request, limit: int) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise Problem(413, "Request body too large", f"at most {limit:,} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Problem(413, "Request body too large", f"at most {limit:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def refused(exc: IntakeError) -> Problem:
        malformed = any(p.field == "body" and "not valid JSON" in p.reason for p in exc.problems)
        return Problem(400 if malformed else 422, exc.title, errors=exc.problems)

    async def start(source: str, request: Request) -> JSONResponse:
        raw = await body_of(request, settings.freightpay.max_json_bytes)
        try:
            instructions = parse_body(source, raw, options)
        except IntakeError as exc:
            raise refused(exc) from None
        temporal = await gate.client()
        try:
            ids = await start_payments(
                temporal, instructions, task_queue=queue, policy=policy, rpc_timeout=START_TIMEOUT
            )
        except PaymentConflicts as exc:
            raise conflict(exc) from None
        except (RPCError, RuntimeError, TimeoutError) as exc:
            raise unavailable(exc) from None
        return JSONResponse({"workflow_ids": ids}, status_code=202)

    # -- routes -----------------------------------------------------------------------------

    @app.post(
        "/v1/payments/alvys/customer-payments",
        status_code=202,
        dependencies=[Depends(api_key)],
        openapi_extra=_schema(alvys_intake.CustomerPaymentBody),
        responses=STARTED_EXAMPLE,
        tags=["payments"],
    )
    async def alvys_customer_payment(request: Request) -> JSONResponse:
        """An Alvys ``customer-payments`` body (or a JSON array of them): a customer payment on a load."""
        return await start("alvys-customer-payment", request)

    @app.post(
        "/v1/payments/alvys/carrier-payments",
        status_code=202,
        dependencies=[Depends(api_key)],
        openapi_extra=_schema(alvys_intake.CarrierPaymentBody),
        responses=STARTED_EXAMPLE,
        tags=["payments"],
    )
    async def alvys_carrier_payment(request: Request) -> JSONResponse:
        """An Alvys ``carrier-payments`` body (or a JSON array of them): a carrier payment on a trip."""
        return await start("alvys-carrier-payment", request)

    @app.post(
        "/v1/payments/transportone/billing-payments",
        status_code=202,
        dependencies=[Depends(api_key)],
        openapi_extra=_schema(transportone_intake.BillingPaymentsBody),
        responses=STARTED_EXAMPLE,
        tags=["payments"],
    )
    async def transportone_payment(request: Request) -> JSONResponse:
        """TransportOne's ``{"data": {"payments": [...]}}`` body from an ERP: one payment per entry."""
        return await start("transportone-payment", request)

    @app.post(
        "/v1/webhooks/mycarrier",
        status_code=202,
        dependencies=[Depends(mycarrier_secret)],
        openapi_extra=_schema(mycarrier_intake.InvoicePaymentEvent),
        responses=STARTED_EXAMPLE,
        tags=["webhooks"],
    )
    async def mycarrier_webhook(request: Request) -> JSONResponse:
        """MyCarrier's ``invoice.payment`` webhook: one payment per ``Payments[]`` entry."""
        return await start("mycarrier", request)

    @app.post(
        "/v1/remittances",
        status_code=202,
        dependencies=[Depends(api_key)],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        },
        responses=STARTED_EXAMPLE,
        tags=["payments"],
    )
    async def remittance(request: Request, name: str = "remittance.csv") -> JSONResponse:
        """A remittance CSV file (the body, ``text/csv``), validated whole; one payment per line."""
        raw = await body_of(request, settings.freightpay.max_file_bytes)
        try:
            instructions = parse_body("remittance", raw, options)
        except IntakeError as exc:
            raise Problem(422, exc.title, errors=exc.problems) from None
        temporal = await gate.client()
        try:
            parent, ids = await start_remittance(
                temporal,
                raw,
                instructions,
                file_name=name,
                task_queue=queue,
                policy=policy,
                data_dir=settings.freightpay.data_dir,
                rpc_timeout=START_TIMEOUT,
            )
        except PaymentConflicts as exc:
            raise conflict(exc) from None
        except (RPCError, RuntimeError, TimeoutError) as exc:
            raise unavailable(exc) from None
        return JSONResponse({"workflow_ids": ids, "remittance_workflow_id": parent}, status_code=202)

    @app.post(
        "/v1/callbacks/transportone",
        dependencies=[Depends(callback_secret)],
        responses={
            200: {
                "description": "Relayed to the payments' workflows",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"delivered": {"type": "array", "items": {"type": "string"}}},
                        }
                    }
                },
            },
            **PROBLEMS,
        },
        tags=["callbacks"],
    )
    async def transportone_callback(request: Request, payment: str | None = None) -> JSONResponse:
        """TransportOne's payments callback, relayed to the payment's workflow as the ``vendor_callback`` signal.

        ``payment`` (the query parameter of the callback URL freightpay gave TransportOne) names
        the payment's workflow; without it (payments posted before it was added) the workflow is
        found from ``{invoiceNumber}-{paymentId}``. Each report carries the relay proof
        (config/relay.py) the worker checks before the report counts.
        """
        raw = await body_of(request, settings.freightpay.max_json_bytes)
        try:
            reports = callback_reports(load_json(raw), payment)
        except IntakeError as exc:
            raise refused(exc) from None
        if not relay:
            raise Problem(
                503, "The callback relay has no key", "Set FREIGHTPAY_RELAY_KEYS (config/relay.py)."
            )
        temporal = await gate.client()
        delivered: list[str] = []
        for workflow_id, report in reports:
            try:
                await temporal.get_workflow_handle(workflow_id).signal(
                    PaymentWorkflow.vendor_callback,
                    sign(relay[0], workflow_id, report),
                    rpc_timeout=START_TIMEOUT,
                )
                delivered.append(workflow_id)
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    log.warning("TransportOne callback for unknown or finished payment %s", workflow_id)
                    continue
                raise unavailable(exc) from None
        return JSONResponse({"delivered": delivered}, status_code=200)

    @app.get(
        "/v1/payments/{workflow_id}",
        dependencies=[Depends(api_key)],
        responses={404: problem_doc("No such payment"), **PROBLEMS},
        tags=["payments"],
    )
    async def payment_status(workflow_id: str) -> JSONResponse:
        """A payment's full state (the workflow's ``status`` query)."""
        temporal = await gate.client()
        handle = temporal.get_workflow_handle(workflow_id)
        try:
            description = await handle.describe(rpc_timeout=START_TIMEOUT)
            state = await handle.query(PaymentWorkflow.status, rpc_timeout=START_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise Problem(404, f"No payment {workflow_id}") from None
            raise unavailable(exc) from None
        return JSONResponse(payment_view(state, description.status))

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness of the ingress itself (it answers even when Temporal is down)."""
        return {"status": "ok"}

    return app


def payment_view(state: PaymentState, execution: WorkflowExecutionStatus | None) -> dict[str, Any]:
    """The status query's answer with Temporal's own execution status beside ``status``.

    A closed workflow (completed, cancelled, terminated, timed out) takes no action, so none is
    offered; a terminated one (which no code can intercept) keeps the ``PaymentStatus`` it had,
    and ``execution_status`` says that Temporal closed it.
    """
    view = state.model_dump(mode="json")
    running = execution is None or execution == WorkflowExecutionStatus.RUNNING
    view["execution_status"] = execution_status_label(execution)
    if not running:
        view["next_actions"] = []
    return view


def callback_reports(body: Any, payment: str | None = None) -> list[tuple[str, CallbackReport]]:
    """TransportOne's callback body → (payment workflow id, report) pairs.

    ``payment`` is the workflow id the callback URL named (every report is for it); without
    it, each report's workflow id is derived from ``{invoiceNumber}-{paymentId}``.

    The body is not published by OS1; this reads the shape the sandbox sends (documented in
    sandbox/transportone.py): ``{"success", "data": {"payments": [{"paymentId",
    "invoiceNumber", "appliedAmount", "totalAmount", "invoiceStatus"}]}}``.
    """
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise IntakeError([FieldProblem("data", "is required")])
    payments = body["data"].get("payments")
    if not isinstance(payments, list) or not payments:
        raise IntakeError([FieldProblem("data.payments", "must be a non-empty list")])
    found: list[tuple[str, CallbackReport]] = []
    problems: list[FieldProblem] = []
    named = payment
    for index, entry in enumerate(payments):
        if not isinstance(entry, dict) or not entry.get("paymentId") or not entry.get("invoiceNumber"):
            problems.append(FieldProblem(f"data.payments.{index}", "needs paymentId and invoiceNumber"))
            continue

        def amount(key: str, item: dict[str, Any] = entry) -> Decimal | None:
            value = item.get(key)
            return (
                Decimal(str(value))
                if isinstance(value, int | float | Decimal) and not isinstance(value, bool)
                else None
            )

        workflow_id = named or workflow_id_for(
            Source.TRANSPORTONE, f"{entry['invoiceNumber']}-{entry['paymentId']}"
        )
        found.append(
            (
                workflow_id,
                CallbackReport(
                    success=bool(body.get("success", True)),
                    applied_amount=amount("appliedAmount"),
                    total_amount=amount("totalAmount"),
                    invoice_status=entry.get("invoiceStatus"),
                    message=body.get("message"),
                ),
            )
        )
    if problems:
        raise IntakeError(problems)
    return found
