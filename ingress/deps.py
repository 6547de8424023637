"""What the ingress's routes depend on, as FastAPI dependencies.

:func:`ingress.app.create_app` builds one :class:`Ingress` (the settings, the lazily connected
Temporal client, the intake options, the payment policy) and keeps it as ``app.state.ingress``.
Routes reach it only through the dependencies here (``get_settings``, ``get_gate``, ...), and
everything else (the API keys, the relay keys, the size limits, the task queue) is read from
``get_settings``, so a test can replace any one of them with ``app.dependency_overrides``.

The checks (``require_*``) authenticate with constant-time comparisons and raise a
:class:`~ingress.problems.Problem` 401; the body readers refuse a body over its size limit with
a 413 before reading more of it.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, cast

from fastapi import Depends, Header, Request
from pydantic import SecretStr
from temporalio.client import Client

from config.relay import relay_keys
from config.settings import Settings
from config.temporal import connect
from ingress.problems import Problem, unavailable
from intake.options import IntakeOptions
from models.steps import PaymentPolicy

#: The most one call to Temporal (connecting included) may take.
START_TIMEOUT = timedelta(seconds=5)


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


@dataclass(frozen=True)
class Ingress:
    """What the routes share, built once per app: the settings, Temporal, the intake options, the policy."""

    settings: Settings
    gate: TemporalGate
    options: IntakeOptions
    policy: PaymentPolicy

    @classmethod
    def build(cls, settings: Settings, client: Client | None = None) -> Ingress:
        return cls(settings, TemporalGate(client), IntakeOptions(), settings.policy())


def get_ingress(request: Request) -> Ingress:
    return cast(Ingress, request.app.state.ingress)


IngressDep = Annotated[Ingress, Depends(get_ingress)]


def get_settings(ingress: IngressDep) -> Settings:
    return ingress.settings


def get_gate(ingress: IngressDep) -> TemporalGate:
    return ingress.gate


def get_options(ingress: IngressDep) -> IntakeOptions:
    return ingress.options


def get_policy(ingress: IngressDep) -> PaymentPolicy:
    return ingress.policy


SettingsDep = Annotated[Settings, Depends(get_settings)]
GateDep = Annotated[TemporalGate, Depends(get_gate)]
OptionsDep = Annotated[IntakeOptions, Depends(get_options)]
PolicyDep = Annotated[PaymentPolicy, Depends(get_policy)]


def get_relay_keys(settings: SettingsDep) -> list[bytes]:
    """The keys that sign relayed callbacks (the first signs; config/relay.py); empty: none set."""
    return relay_keys(settings)


RelayKeysDep = Annotated[list[bytes], Depends(get_relay_keys)]


@dataclass(frozen=True)
class Starts:
    """What a route needs to turn a body into started workflows."""

    options: IntakeOptions
    gate: TemporalGate
    task_queue: str
    policy: PaymentPolicy
    data_dir: str


def get_starts(settings: SettingsDep, gate: GateDep, options: OptionsDep, policy: PolicyDep) -> Starts:
    return Starts(options, gate, settings.freightpay.task_queue, policy, settings.freightpay.data_dir)


StartsDep = Annotated[Starts, Depends(get_starts)]


# -- authentication ------------------------------------------------------------------------


def _secret_matches(given: str | None, expected: SecretStr | None) -> bool:
    if not given or expected is None or not expected.get_secret_value():
        return False
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


def require_api_key(
    settings: SettingsDep,
    x_api_key: str | None = Header(None, description="One of FREIGHTPAY_API_KEYS"),
) -> None:
    keys = settings.freightpay.api_key_list()
    if not any(_secret_matches(x_api_key, SecretStr(key)) for key in keys):
        raise Problem(401, "Missing or wrong X-API-Key", headers={"WWW-Authenticate": "X-API-Key"})


def require_mycarrier_secret(
    settings: SettingsDep,
    x_webhook_secret: str | None = Header(None, description="MYCARRIER_WEBHOOK_SECRET"),
) -> None:
    if not _secret_matches(x_webhook_secret, settings.mycarrier.webhook_secret):
        raise Problem(401, "Missing or wrong X-Webhook-Secret")


def require_callback_secret(
    settings: SettingsDep,
    x_tms_callback_secret: str | None = Header(None, description="TRANSPORTONE_CALLBACK_SECRET"),
) -> None:
    if not _secret_matches(x_tms_callback_secret, settings.transportone.callback_secret):
        raise Problem(401, "Missing or wrong x-tms-callback-secret")


# -- bodies --------------------------------------------------------------------------------


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused (413) as soon as it is known to be over ``limit`` bytes."""
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


async def json_body(request: Request, settings: SettingsDep) -> bytes:
    """A JSON body, raw (the intake parses it): at most ``max_json_bytes``."""
    return await read_body(request, settings.freightpay.max_json_bytes)


async def file_body(request: Request, settings: SettingsDep) -> bytes:
    """A file sent as the body (a remittance CSV): at most ``max_file_bytes``."""
    return await read_body(request, settings.freightpay.max_file_bytes)


JsonBody = Annotated[bytes, Depends(json_body)]
FileBody = Annotated[bytes, Depends(file_body)]
