"""Alvys's webhooks (``POST /v1/webhooks/alvys``): verified, deduplicated, handed durably to Temporal.

In order, before anything else reads the body:

1. **Activation**: the unsigned request with ``X-Alvys-Event: webhook.verification`` and body
   ``{"type": "webhook.verification", "challenge": "..."}`` is answered at once with ``200
   {"challenge": "<the same>"}`` (Alvys wants it within 3 s). It changes nothing.
2. **Signature**: every other delivery must carry ``X-Alvys-Signature`` and ``X-Alvys-Event-Id``
   that verify against ``ALVYS_WEBHOOK_SECRET`` (config/alvys_webhooks.py: HMAC-SHA256 over
   ``{t}.{event id}.{raw body}``, any of the comma-separated secrets, constant time, ``t`` within
   300 s). Anything else is ``401 application/problem+json``; nothing is read or started.
3. **Hand-over**: the few facts the workflow needs (event id and type, load number or trip id,
   status; workflows/alvys_events.py) start ``AlvysEventWorkflow`` with the id
   ``alvys-event-{event id}`` (REJECT_DUPLICATE, USE_EXISTING). ``202 {"workflow_ids": [id]}``
   once Temporal accepted it, and the same answer for a repeat of an event id (Alvys delivers at
   least once), which starts nothing new. Temporal unreachable: ``503`` with ``Retry-After``, so
   Alvys retries (it retries 5xx, 408, 429 and timeouts, up to 4 attempts).

A signed body that is not a JSON object with a ``type`` is a ``400``/``422`` (Alvys does not retry
those). The body's shape: ``{"id", "type", "timestamp", "version", "data": {"load": {...}}}`` (or
``data.trip``); ``data`` holding the load itself is read too, and member names in either case.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from config.alvys_webhooks import SignatureError, secret_list, verify
from ingress.deps import START_TIMEOUT, GateDep, JsonBody, SettingsDep
from ingress.problems import PROBLEMS, RETRY_AFTER_SECONDS, Problem, json_body_doc
from intake.errors import FieldProblem
from models.identity import BusinessKeyError
from models.priority import LIVE
from workflows.alvys_events import AlvysEvent, AlvysEventWorkflow, event_workflow_id

log = logging.getLogger("freightpay.ingress")
router = APIRouter(tags=["webhooks"])

VERIFICATION = "webhook.verification"
#: The longest event id or type taken (Alvys's are short; a workflow id has a limit).
MAX_EVENT_ID = 200


class AlvysDelivery(BaseModel):
    """What Alvys POSTs: an event envelope, or the activation request (``type`` and ``challenge``)."""

    type: str
    id: str | None = None
    timestamp: str | None = None
    version: str | None = None
    #: ``{"load": <LoadResponse>}`` or ``{"trip": <TripResponse>}``: the whole current record.
    data: dict[str, Any] | None = None
    challenge: str | None = None


_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The activation request's challenge, echoed",
        "content": {"application/json": {"example": {"challenge": "3f9c..."}}},
    },
    202: {
        "description": "Accepted by Temporal (or a repeat of an accepted event id: nothing new)",
        "content": {"application/json": {"example": {"workflow_ids": ["alvys-event-0f3a9c-1"]}}},
    },
    **PROBLEMS,
}


@router.post(
    "/v1/webhooks/alvys", status_code=202, openapi_extra=json_body_doc(AlvysDelivery), responses=_ANSWERS
)
async def alvys_webhook(
    raw: JsonBody,
    settings: SettingsDep,
    gate: GateDep,
    x_alvys_event: str | None = Header(None, description="the event type; webhook.verification to activate"),
    x_alvys_event_id: str | None = Header(None, description="the event id, the same on every retry"),
    x_alvys_signature: str | None = Header(None, description="t={unix seconds},v1={hmac}[,v0={hmac}]"),
) -> JSONResponse:
    """An Alvys webhook delivery (``load.status.changed``, ``trip.status.changed``, ...) or its activation."""
    if (x_alvys_event or "").strip() == VERIFICATION:
        return JSONResponse({"challenge": _challenge(raw)}, status_code=200)
    try:
        verify(
            secret_list(settings.alvys.webhook_secret),
            x_alvys_signature,
            x_alvys_event_id,
            raw,
            now=time.time(),
        )
    except SignatureError as exc:
        log.warning("refused an Alvys webhook (event id %r): %s", (x_alvys_event_id or "")[:80], exc)
        raise Problem(401, "The Alvys signature does not verify", "Nothing was read or started.") from None
    event = event_of(x_alvys_event_id or "", raw)  # verify() refused a delivery without an id
    try:
        workflow_id = event_workflow_id(event.event_id)
    except BusinessKeyError as exc:
        raise Problem(
            422, "The event id cannot be kept", errors=[FieldProblem("X-Alvys-Event-Id", str(exc))]
        ) from None
    temporal = await gate.client()
    try:
        await temporal.start_workflow(
            AlvysEventWorkflow.run,
            event,
            id=workflow_id,
            task_queue=settings.freightpay.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=event.summary(),
            priority=LIVE,  # a live delivery, ahead of files' lines (models/priority.py)
            rpc_timeout=START_TIMEOUT,
        )
    except WorkflowAlreadyStartedError:
        log.info("Alvys event %s delivered again: already handled", event.event_id)
    except (RPCError, RuntimeError, TimeoutError) as exc:
        log.warning("Temporal unavailable for Alvys event %s: %s", event.event_id, exc)
        raise Problem(
            503,
            "Temporal is unavailable",
            "The event was not accepted; nothing was started. Alvys will deliver it again.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from None
    return JSONResponse({"workflow_ids": [workflow_id]}, status_code=202)


def _challenge(raw: bytes) -> str:
    """The activation request's challenge; 400 when the body is not one."""
    body = _json_object(raw)
    challenge = body.get("challenge")
    if body.get("type") != VERIFICATION or not isinstance(challenge, str) or not challenge:
        raise Problem(
            400,
            "Not a verification request",
            errors=[FieldProblem("challenge", "a webhook.verification body needs a challenge string")],
        )
    return challenge


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise Problem(
            400, "The body is not JSON", errors=[FieldProblem("body", "is not valid JSON")]
        ) from None
    if not isinstance(body, dict):
        raise Problem(
            422, "The body is not a JSON object", errors=[FieldProblem("body", "must be an object")]
        )
    return body


def _member(record: dict[str, Any], name: str) -> str | None:
    """A text member in either case (``LoadNumber`` or ``loadNumber``), None when absent or blank."""
    lowered = {str(key).lower(): value for key, value in record.items()}
    value = lowered.get(name.lower())
    if value is None or isinstance(value, dict | list) or not str(value).strip():
        return None
    return str(value).strip()[:MAX_EVENT_ID]


def event_of(event_id: str, raw: bytes) -> AlvysEvent:
    """The facts of a verified delivery the workflow keeps (the rest of the body stays here)."""
    body = _json_object(raw)
    event_type = body.get("type")
    if not isinstance(event_type, str) or not event_type.strip():
        raise Problem(422, "The event has no type", errors=[FieldProblem("type", "is required")])
    event_type = event_type.strip()[:MAX_EVENT_ID]
    data = body.get("data")
    data = data if isinstance(data, dict) else {}
    kind = event_type.split(".", 1)[0].lower()  # load.status.changed -> load
    nested = data.get(kind) if kind in ("load", "trip") else None
    record: dict[str, Any] = nested if isinstance(nested, dict) else data
    return AlvysEvent(
        event_id=event_id,
        event_type=event_type,
        load_number=_member(record, "LoadNumber"),
        trip_id=_member(record, "Id") if kind == "trip" else None,
        status=_member(record, "Status"),
    )
