"""Alvys webhooks in the sandbox: the subscription API, the activation handshake, signed deliveries.

Why: freightpay's ``POST /v1/webhooks/alvys`` must be tested against what Alvys sends, the way
Alvys sends it (docs/vendors.md, "Alvys webhooks"; the ``Webhooks`` tag of the OpenAPI):

* **Subscriptions** (``/alvys/api/p/v1.0/webhooks``, a bearer token required, no scope):
  ``POST`` (``CreateWebhookRequest``: ``Name``, ``SubsidiaryId``, ``Url`` at most 2048
  characters, ``Events``; all required, nothing else allowed) answers ``201`` with the
  ``WebhookResponse``, its ``Secret`` in plaintext; ``GET`` pages them (``Page``, ``PageSize``,
  ``SubsidiaryId``); ``GET|DELETE /webhooks/{id}`` (``GET`` masks the secret; ``DELETE`` is a
  soft delete, ``204``; ``If-Match`` is not checked); ``POST /webhooks/{id}/reveal-secret``
  answers ``{"Secret"}``; ``POST /webhooks/{id}/rotate-secret`` makes a new secret (answered as
  ``{"Secret"}``) and signs with both until the next rotation; ``GET /webhooks/event-types``.
* **Activation**: before a subscription is created, the sandbox POSTs the unsigned
  ``{"type": "webhook.verification", "challenge": "..."}`` with ``X-Alvys-Event:
  webhook.verification`` to its ``Url``; unless the answer is ``200 {"challenge": "<the
  same>"}`` within 3 s, the create is a ``400`` (``Errors.Url``) and nothing is created.
* **Deliveries**: every load or trip write the sandbox makes emits ``{kind}.changed`` (event id
  ``{uuid}-0``) and, when its status changed, ``{kind}.status.changed`` (``{uuid}-1``), each
  delivered to every active subscription listing its type. A status change is any of them:
  ``POST /_sandbox/alvys/loads/{n}/status``, ``POST /_sandbox/alvys/trips/{id}/status``, a
  carrier payment that completes its trip; a customer payment is a ``load.changed``. The body:
  ``{"id", "type", "timestamp", "version": "v1", "data": {"load": <LoadResponse>}}`` (or
  ``"trip": <TripResponse>``), the full current record as the reads answer it, the same bytes on
  every attempt. Headers: ``X-Alvys-Event``, ``X-Alvys-Event-Id`` (the same on every attempt),
  ``X-Alvys-Timestamp``, ``X-Alvys-Attempt`` and ``X-Alvys-Signature: t={unix seconds},v1={hex}``
  (``,v0={hex}`` with the previous secret after a rotation), HMAC-SHA256 over
  ``{t}.{event id}.{raw body}``, signed afresh on each attempt.
* **Retries**: up to 4 attempts, 30 s timeout each, retried on 5xx, 408, 429, timeouts and
  connection errors (not on other 4xx), about 10 s, 30 s and 60 s apart
  (``POST /_sandbox/alvys/webhook-options {"retry_delays_seconds": [...]}`` shortens them for
  tests); a subscription is disabled after 10 consecutive failed events.

Sandbox choices where Alvys is silent: every subscription's first secret is
:data:`DEMO_WEBHOOK_SECRET` (freightpay's settings default to it when they point at the
sandbox, as for the other demo credentials); there is one subsidiary, so ``SubsidiaryId`` is
kept but every event goes to every subscription; ``POST /_sandbox/alvys/reset`` (and the app's
reset) deletes the subscriptions and the delivery log.

Every attempt is recorded: ``GET /_sandbox/alvys/webhook-deliveries`` (filters ``event_type``,
``entity_id``, ``webhook_id``), with the headers and body sent and the answer's status.
Deliveries run on a background thread of their own, never under the state's lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from sandbox.alvys_validation import _Field, _Schema, read_json_body, require_version, validate_body
from sandbox.alvys_wire import V1, AlvysProblem, iso_utc, validation_problem
from sandbox.wire import DecimalJSONResponse, dumps_exact

if TYPE_CHECKING:
    from sandbox.alvys_sim import AlvysSandbox

#: The secret every new subscription signs with (config/settings.py knows it as the sandbox's).
DEMO_WEBHOOK_SECRET = "sandbox-webhook-secret"
COMPANY_CODE = "FPDEMO"
#: The event types the sandbox emits (Alvys has more: tender and document events).
EVENT_TYPES: tuple[str, ...] = ("load.changed", "load.status.changed", "trip.changed", "trip.status.changed")
VERIFICATION = "webhook.verification"
MAX_ATTEMPTS = 4
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (10.0, 30.0, 60.0)
ATTEMPT_TIMEOUT_SECONDS = 30.0
VERIFY_TIMEOUT_SECONDS = 3.0
DISABLE_AFTER_FAILED_EVENTS = 10
MAX_URL_LENGTH = 2048
_RETRIED_STATUSES = frozenset({408, 429})

CREATE_WEBHOOK_REQUEST = _Schema(
    "Alvys.Models.Webhooks.CreateWebhookRequest",
    {
        "Name": _Field("string", required=True),
        "SubsidiaryId": _Field("string", required=True),
        "Url": _Field("string", required=True),
        "Events": _Field("strings", required=True),
    },
)


def sign(secret: str, timestamp: int, event_id: str, body: bytes) -> str:
    """HMAC-SHA256 over ``{t}.{event id}.{raw body}``, lowercase hex (as Alvys signs)."""
    content = f"{timestamp}.{event_id}.".encode() + body
    return hmac.new(secret.encode("utf-8"), content, hashlib.sha256).hexdigest()


@dataclass
class Subscription:
    id: str
    name: str
    subsidiary_id: str
    url: str
    events: list[str]
    secret: str
    created_at: datetime
    previous_secret: str | None = None
    status: str = "Active"
    consecutive_failures: int = 0
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
    updated_at: datetime | None = None
    last_triggered_at: datetime | None = None
    deleted: bool = False


@dataclass
class DeliveryAttempt:
    """One POST of one event to one subscription (``GET /_sandbox/alvys/webhook-deliveries``)."""

    id: str
    webhook_id: str
    event_id: str
    event_type: str
    entity_type: str
    entity_id: str
    attempt: int
    url: str
    timestamp: datetime
    headers: dict[str, str]
    body: str
    status: str = "Pending"
    http_status: int | None = None
    error: str | None = None
    duration_ms: int = 0
    will_retry: bool = False


@dataclass
class WebhookOptions:
    retry_delays_seconds: list[float] = field(default_factory=lambda: list(DEFAULT_RETRY_DELAYS))


class AlvysWebhooks:
    """The subscriptions, the delivery log, and the thread that delivers (see the module's docstring).

    :meth:`changed` is called by :class:`~sandbox.alvys_sim.AlvysSandbox` under its own lock;
    it only schedules deliveries, so it never waits on the network.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._subscriptions: dict[str, Subscription] = {}
        self._attempts: list[DeliveryAttempt] = []
        self.options = WebhookOptions()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending = 0

    def reset(self) -> None:
        """No subscriptions, no delivery log, default options (deliveries under way stop at their next try)."""
        with self._lock:
            self._subscriptions, self._attempts = {}, []
            self.options = WebhookOptions()

    # ----- the subscription API -----------------------------------------------------------------

    async def create(self, body: Any) -> dict[str, Any]:
        """Validate, run the activation handshake against the URL, then store: the WebhookResponse."""
        errors: dict[str, list[str]] = {}
        parsed = validate_body(body, CREATE_WEBHOOK_REQUEST, errors)
        url = parsed.get("Url")
        if isinstance(url, str):
            if len(url) > MAX_URL_LENGTH:
                errors.setdefault("Url", []).append(
                    f"The field Url must be a string with a maximum length of {MAX_URL_LENGTH}."
                )
            elif not url.startswith(("http://", "https://")):
                errors.setdefault("Url", []).append("The Url must be an absolute http or https URL.")
        events = parsed.get("Events")
        if isinstance(events, list):
            if not events:
                errors.setdefault("Events", []).append("At least one event type is required.")
            for event in events:
                if event not in EVENT_TYPES:
                    errors.setdefault("Events", []).append(f"Unknown event type '{event}'.")
        if errors:
            raise validation_problem(errors)
        assert isinstance(url, str) and isinstance(events, list)
        failure = await verify_endpoint(url)
        if failure is not None:
            raise validation_problem({"Url": [f"The endpoint did not pass verification: {failure}."]})
        now = datetime.now(UTC)
        subscription = Subscription(
            id=uuid.uuid4().hex,
            name=str(parsed["Name"]),
            subsidiary_id=str(parsed["SubsidiaryId"]),
            url=url,
            events=list(dict.fromkeys(events)),
            secret=DEMO_WEBHOOK_SECRET,
            created_at=now,
        )
        with self._lock:
            self._subscriptions[subscription.id] = subscription
            return self._dto(subscription, reveal=True)

    def page(self, *, page: int, page_size: int, subsidiary_id: str | None) -> dict[str, Any]:
        with self._lock:
            found = [
                s
                for s in self._subscriptions.values()
                if not s.deleted and (not subsidiary_id or s.subsidiary_id == subsidiary_id)
            ]
            items = [self._dto(s) for s in found[page * page_size : (page + 1) * page_size]]
            return {"Page": page, "PageSize": page_size, "Total": len(found), "Items": items}

    def get(self, webhook_id: str) -> dict[str, Any]:
        with self._lock:
            return self._dto(self._found(webhook_id))

    def delete(self, webhook_id: str) -> None:
        with self._lock:
            subscription = self._found(webhook_id)
            subscription.deleted = True
            subscription.updated_at = datetime.now(UTC)

    def reveal_secret(self, webhook_id: str) -> dict[str, Any]:
        with self._lock:
            return {"Secret": self._found(webhook_id).secret}

    def rotate_secret(self, webhook_id: str) -> dict[str, Any]:
        """A new secret signs ``v1``; the one before signs ``v0`` until the next rotation."""
        with self._lock:
            subscription = self._found(webhook_id)
            subscription.previous_secret = subscription.secret
            subscription.secret = f"whsec_{secrets.token_hex(24)}"
            subscription.updated_at = datetime.now(UTC)
            return {"Secret": subscription.secret}

    def _found(self, webhook_id: str) -> Subscription:
        subscription = self._subscriptions.get(webhook_id)
        if subscription is None or subscription.deleted:
            raise AlvysProblem(404, f"Webhook '{webhook_id}' was not found.")
        return subscription

    def _dto(self, s: Subscription, *, reveal: bool = False) -> dict[str, Any]:
        """WebhookResponse; the secret in plaintext only when created (reveal-secret shows it later)."""
        return {
            "Id": s.id,
            "CompanyCode": COMPANY_CODE,
            "SubsidiaryId": s.subsidiary_id,
            "Name": s.name,
            "Url": s.url,
            "Secret": s.secret if reveal else "********" + s.secret[-4:],
            "Events": list(s.events),
            "Status": s.status,
            "DisabledAt": iso_utc(s.disabled_at),
            "DisabledReason": s.disabled_reason,
            "ConsecutiveFailures": s.consecutive_failures,
            "CreatedAt": iso_utc(s.created_at),
            "CreatedBy": "sandbox",
            "UpdatedAt": iso_utc(s.updated_at),
            "UpdatedBy": "sandbox" if s.updated_at else None,
            "LastTriggeredAt": iso_utc(s.last_triggered_at),
        }

    # ----- events and deliveries --------------------------------------------------------------

    def changed(
        self, kind: str, entity_id: str, snapshot: Callable[[], dict[str, Any]], *, status_changed: bool
    ) -> list[str]:
        """A load or trip (``kind``) was written: deliver its events; returns the event ids sent.

        ``snapshot`` gives the record as the reads answer it; it is called only when some
        subscription listens, and at once, so the body is the record as this write left it.
        """
        with self._lock:
            listening = [s for s in self._subscriptions.values() if s.status == "Active" and not s.deleted]
            if not listening:
                return []
            base = uuid.uuid4().hex
            events = [(f"{kind}.changed", f"{base}-0")]
            if status_changed:
                events.append((f"{kind}.status.changed", f"{base}-1"))
            record: dict[str, Any] | None = None
            sent: list[str] = []
            for event_type, event_id in events:
                targets = [s for s in listening if event_type in s.events]
                if not targets:
                    continue
                record = record if record is not None else snapshot()
                envelope = {
                    "id": event_id,
                    "type": event_type,
                    "timestamp": iso_utc(datetime.fromtimestamp(self._clock(), UTC)),
                    "version": "v1",
                    "data": {kind: record},
                }
                body = dumps_exact(envelope).encode("utf-8")
                for subscription in targets:
                    self._schedule(subscription.id, event_id, event_type, kind, entity_id, body)
                sent.append(event_id)
            return sent

    def _schedule(
        self, webhook_id: str, event_id: str, event_type: str, kind: str, entity_id: str, body: bytes
    ) -> None:
        with self._lock:
            self._pending += 1
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="alvys-webhooks", daemon=True).start()
                self._loop = loop
            loop = self._loop
        asyncio.run_coroutine_threadsafe(
            self._deliver(webhook_id, event_id, event_type, kind, entity_id, body), loop
        )

    def pending(self) -> int:
        """Events still being delivered (their attempts and retries not all done)."""
        with self._lock:
            return self._pending

    async def _deliver(
        self, webhook_id: str, event_id: str, event_type: str, kind: str, entity_id: str, body: bytes
    ) -> None:
        try:
            delivered = False
            for attempt in range(1, MAX_ATTEMPTS + 1):
                with self._lock:
                    subscription = self._subscriptions.get(webhook_id)
                    if subscription is None or subscription.deleted or subscription.status != "Active":
                        return
                    url, secret, previous = (
                        subscription.url,
                        subscription.secret,
                        subscription.previous_secret,
                    )
                    delays = list(self.options.retry_delays_seconds) or [0.0]
                record = await self._attempt(
                    url, secret, previous, webhook_id, event_id, event_type, kind, entity_id, body, attempt
                )
                if record.status == "Succeeded":
                    delivered = True
                    break
                if not record.will_retry:
                    break
                await asyncio.sleep(delays[min(attempt - 1, len(delays) - 1)])
            self._settle(webhook_id, delivered)
        finally:
            with self._lock:
                self._pending -= 1

    async def _attempt(
        self,
        url: str,
        secret: str,
        previous: str | None,
        webhook_id: str,
        event_id: str,
        event_type: str,
        kind: str,
        entity_id: str,
        body: bytes,
        attempt: int,
    ) -> DeliveryAttempt:
        timestamp = int(self._clock())
        signature = f"t={timestamp},v1={sign(secret, timestamp, event_id, body)}"
        if previous is not None:
            signature += f",v0={sign(previous, timestamp, event_id, body)}"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Alvys-Webhooks/1.0",
            "X-Alvys-Event": event_type,
            "X-Alvys-Event-Id": event_id,
            "X-Alvys-Timestamp": str(timestamp),
            "X-Alvys-Attempt": str(attempt),
            "X-Alvys-Signature": signature,
        }
        record = DeliveryAttempt(
            id=uuid.uuid4().hex,
            webhook_id=webhook_id,
            event_id=event_id,
            event_type=event_type,
            entity_type=kind,
            entity_id=entity_id,
            attempt=attempt,
            url=url,
            timestamp=datetime.fromtimestamp(timestamp, UTC),
            headers=headers,
            body=body.decode("utf-8"),
        )
        started = time.monotonic()
        retry = False
        try:
            async with httpx.AsyncClient(timeout=ATTEMPT_TIMEOUT_SECONDS) as http:
                response = await http.post(url, content=body, headers=headers)
            record.http_status = response.status_code
            record.status = "Succeeded" if response.is_success else "Failed"
            retry = response.status_code in _RETRIED_STATUSES or response.status_code >= 500
        except httpx.TimeoutException:
            record.status, record.error, retry = "Failed", "timeout", True
        except httpx.HTTPError as exc:
            record.status, record.error, retry = "Failed", f"{type(exc).__name__}: {exc}", True
        record.duration_ms = int((time.monotonic() - started) * 1000)
        record.will_retry = record.status == "Failed" and retry and attempt < MAX_ATTEMPTS
        with self._lock:
            self._attempts.append(record)
        return record

    def _settle(self, webhook_id: str, delivered: bool) -> None:
        """An event's last attempt is done: count consecutive failed events, disable at 10."""
        with self._lock:
            subscription = self._subscriptions.get(webhook_id)
            if subscription is None:
                return
            now = datetime.now(UTC)
            if delivered:
                subscription.consecutive_failures = 0
                subscription.last_triggered_at = now
                return
            subscription.consecutive_failures += 1
            if subscription.consecutive_failures >= DISABLE_AFTER_FAILED_EVENTS:
                subscription.status = "Disabled"
                subscription.disabled_at = now
                subscription.disabled_reason = (
                    f"{subscription.consecutive_failures} consecutive events failed to deliver"
                )

    def deliveries(
        self, *, event_type: str | None = None, entity_id: str | None = None, webhook_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every attempt, in the order made (the filters given all apply)."""
        with self._lock:
            return [
                {
                    "id": a.id,
                    "webhook_id": a.webhook_id,
                    "event_id": a.event_id,
                    "event_type": a.event_type,
                    "entity_type": a.entity_type,
                    "entity_id": a.entity_id,
                    "attempt": a.attempt,
                    "url": a.url,
                    "timestamp": iso_utc(a.timestamp),
                    "status": a.status,
                    "http_status": a.http_status,
                    "error": a.error,
                    "duration_ms": a.duration_ms,
                    "will_retry": a.will_retry,
                    "headers": dict(a.headers),
                    "body": a.body,
                }
                for a in self._attempts
                if (event_type is None or a.event_type == event_type)
                and (entity_id is None or a.entity_id == entity_id)
                and (webhook_id is None or a.webhook_id == webhook_id)
            ]


async def verify_endpoint(url: str) -> str | None:
    """The activation handshake: None when ``url`` echoed the challenge in time, else why not."""
    challenge = secrets.token_urlsafe(24)
    try:
        async with httpx.AsyncClient(timeout=VERIFY_TIMEOUT_SECONDS) as http:
            response = await http.post(
                url,
                json={"type": VERIFICATION, "challenge": challenge},
                headers={"X-Alvys-Event": VERIFICATION, "User-Agent": "Alvys-Webhooks/1.0"},
            )
    except httpx.TimeoutException:
        return f"no answer within {VERIFY_TIMEOUT_SECONDS:g} s"
    except httpx.HTTPError as exc:
        return f"it could not be reached ({type(exc).__name__})"
    if response.status_code != 200:
        return f"it answered {response.status_code}, not 200"
    try:
        echoed = response.json().get("challenge")
    except (ValueError, AttributeError):
        echoed = None
    if echoed != challenge:
        return "it did not echo the challenge"
    return None


# --------------------------------------------------------------------------------------------------
# HTTP: the Webhooks API (under /alvys, beside the other endpoints) and the sandbox controls
# --------------------------------------------------------------------------------------------------


def alvys_webhooks_router(state: AlvysSandbox) -> APIRouter:
    """``/api/p/v{version}/webhooks...`` over ``state.webhooks`` (hooks run, as for every endpoint)."""
    router = APIRouter(tags=["Alvys (simulated)"])
    webhooks = state.webhooks
    base = "/api/p/v{version}/webhooks"

    def authorized(request: Request) -> None:
        require_version(request, V1)
        state.authorize(request.headers.get("authorization"))

    def page_params(request: Request) -> tuple[int, int]:
        try:
            page = int(request.query_params.get("Page") or 0)
            size = int(request.query_params.get("PageSize") or 50)
        except ValueError:
            raise validation_problem({"Page": ["Page and PageSize must be whole numbers."]}) from None
        if page < 0 or not 1 <= size <= 100:
            raise validation_problem({"PageSize": ["Page must be >= 0 and PageSize between 1 and 100."]})
        return page, size

    @router.post(base, status_code=201, summary="Create webhook subscription")
    async def create(request: Request) -> Response:
        async def handler(request: Request) -> Response:
            authorized(request)
            return DecimalJSONResponse(await webhooks.create(await read_json_body(request)), status_code=201)

        return await state.dispatch("webhooks", request, handler)

    @router.get(base, summary="List webhooks")
    async def list_webhooks(request: Request) -> Response:
        async def handler(request: Request) -> Response:
            authorized(request)
            page, size = page_params(request)
            subsidiary = request.query_params.get("SubsidiaryId")
            return DecimalJSONResponse(webhooks.page(page=page, page_size=size, subsidiary_id=subsidiary))

        return await state.dispatch("webhooks", request, handler)

    @router.get(f"{base}/event-types", summary="Get event types")
    async def event_types(request: Request) -> Response:
        async def handler(request: Request) -> Response:
            authorized(request)
            return DecimalJSONResponse(list(EVENT_TYPES))

        return await state.dispatch("webhooks", request, handler)

    @router.get(base + "/{webhook_id}", summary="Get webhook")
    async def get_webhook(request: Request, webhook_id: str) -> Response:
        async def handler(request: Request) -> Response:
            authorized(request)
            return DecimalJSONResponse(webhooks.get(webhook_id))

        return await state.dispatch("webhooks", request, handler)

    @router.delete(base + "/{webhook_id}", status_code=204, summary="Delete webhook")
    async def delete_webhook(request: Request, webhook_id: str) -> Response:
        async def handler(request: Request) -> Response:
            authorized(request)
            webhooks.delete(webhook_id)
            return Response(status_code=204)

        return await state.dispatch("webhooks", request, handler)

    @router.post(base + "/{webhook_id}/reveal-secret", summary="Reveal webhook secret")
    async def reveal_secret(request: Request, webhook_id: str) -> Response:
        async def handler(request: Request) -> Response:
            authorized(request)
            return DecimalJSONResponse(webhooks.reveal_secret(webhook_id))

        return await state.dispatch("webhooks", request, handler)

    @router.post(base + "/{webhook_id}/rotate-secret", summary="Rotate secret")
    async def rotate_secret(request: Request, webhook_id: str) -> Response:
        async def handler(request: Request) -> Response:
            authorized(request)
            return DecimalJSONResponse(webhooks.rotate_secret(webhook_id))

        return await state.dispatch("webhooks", request, handler)

    return router


class WebhookOptionsBody(BaseModel):
    """Body of ``POST /_sandbox/alvys/webhook-options``; omitted options are left as they are."""

    model_config = ConfigDict(extra="forbid")
    retry_delays_seconds: list[float] | None = Field(default=None, min_length=1)


def alvys_webhooks_controls_router(webhooks: AlvysWebhooks) -> APIRouter:
    """``/_sandbox/alvys/webhook-deliveries`` and ``/_sandbox/alvys/webhook-options``."""
    router = APIRouter(tags=["sandbox controls: Alvys"])

    @router.get("/webhook-deliveries")
    def deliveries(
        event_type: str | None = None, entity_id: str | None = None, webhook_id: str | None = None
    ) -> Response:
        """Every delivery attempt (headers, body, answer), oldest first; ``X-Pending`` events still under way."""
        rows = webhooks.deliveries(event_type=event_type, entity_id=entity_id, webhook_id=webhook_id)
        return DecimalJSONResponse(rows, headers={"X-Pending": str(webhooks.pending())})

    @router.get("/webhook-options")
    def get_options() -> Response:
        return DecimalJSONResponse(vars(webhooks.options))

    @router.post("/webhook-options")
    def set_options(body: WebhookOptionsBody) -> Response:
        if body.retry_delays_seconds is not None:
            if any(delay < 0 for delay in body.retry_delays_seconds):
                raise HTTPException(400, "retry delays must be >= 0")
            webhooks.options.retry_delays_seconds = list(body.retry_delays_seconds)
        return DecimalJSONResponse(vars(webhooks.options))

    return router
