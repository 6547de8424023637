"""The ingress: HTTP in, payment workflows started (FastAPI; OpenAPI at ``/docs``).

Every route authenticates (``X-API-Key`` for payment intake, ``X-Webhook-Secret`` for
MyCarrier, ``X-Alvys-Signature`` for Alvys's webhooks, ``x-tms-callback-secret`` for
TransportOne's callback; constant-time comparisons). A start is answered ``202
{"workflow_ids": [...]}`` only after Temporal accepted it; when Temporal cannot be reached
the answer is ``503`` with ``Retry-After``, so the sender retries and nothing is lost. Bad
input is a ``4xx application/problem+json`` naming each field and reason, and starts
nothing. The routes hold no payment rules: they hand the body to :mod:`intake`, exactly as
``starter.py`` does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client

from config.codec import codec_from_env
from config.settings import Settings, get_settings
from config.telemetry import TelemetrySettings, instrument_app, setup_tracing
from ingress import alvys_webhooks, callbacks, payments, remittances, status, webhooks
from ingress.callbacks import callback_reports
from ingress.codec import codec_router
from ingress.deps import Ingress
from ingress.payments import payment_view
from ingress.problems import Problem
from intake.errors import FieldProblem

__all__ = ["REQUEST_TIMEOUT", "callback_reports", "create_app", "payment_view"]

log = logging.getLogger("freightpay.ingress")
#: The most one request may take, reading its body included.
REQUEST_TIMEOUT = timedelta(seconds=30)


def create_app(settings: Settings | None = None, *, client: Client | None = None) -> FastAPI:
    """The ingress app; ``client`` is for tests (otherwise it connects from the environment)."""
    settings = settings or get_settings()
    setup_tracing(TelemetrySettings(), "freightpay-ingress")
    app = FastAPI(title="freightpay ingress", version="0.1.0", description=__doc__, lifespan=_lifespan)
    app.state.ingress = Ingress.build(settings, client)
    instrument_app(app)
    app.middleware("http")(_deadline)
    codec = codec_from_env()
    if codec is not None:  # the codec server exists only when payloads are encrypted
        app.include_router(codec_router(codec))
    app.exception_handler(Problem)(_problem)
    app.exception_handler(StarletteHTTPException)(_http)
    app.exception_handler(RequestValidationError)(_invalid)
    for module in (payments, webhooks, alvys_webhooks, remittances, callbacks, status):
        app.include_router(module.router)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    ingress: Ingress = app.state.ingress
    if not ingress.settings.freightpay.api_key_list():
        log.warning("FREIGHTPAY_API_KEYS is empty: every payment route will answer 401")
    yield


async def _deadline(request: Request, call_next: Any) -> Any:
    """No request holds a connection longer than REQUEST_TIMEOUT (a slow sender included)."""
    try:
        return await asyncio.wait_for(call_next(request), REQUEST_TIMEOUT.total_seconds())
    except TimeoutError:
        return Problem(
            408, "Request timeout", f"the request took longer than {REQUEST_TIMEOUT.total_seconds():g} s"
        ).response(request.url.path)


async def _problem(request: Request, exc: Problem) -> JSONResponse:
    return exc.response(request.url.path)


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return Problem(exc.status_code, str(exc.detail)).response(request.url.path)


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [FieldProblem(".".join(str(p) for p in e["loc"]), str(e["msg"])) for e in exc.errors()]
    return Problem(422, "The request is invalid", errors=errors).response(request.url.path)
