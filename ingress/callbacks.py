"""TransportOne's payments callback (``x-tms-callback-secret``), relayed to the payments' workflows."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from temporalio.service import RPCError, RPCStatusCode

from config.relay import sign
from ingress.deps import START_TIMEOUT, GateDep, JsonBody, RelayKeysDep, require_callback_secret
from ingress.problems import PROBLEMS, Problem, refused, unavailable
from intake.errors import FieldProblem, IntakeError
from intake.parse import load_json
from intake.transportone import business_key
from models.payment import Source, workflow_id_for
from models.steps import CallbackReport
from workflows.payment import PaymentWorkflow

log = logging.getLogger("freightpay.ingress")
router = APIRouter(dependencies=[Depends(require_callback_secret)], tags=["callbacks"])

_DELIVERED = {
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
}


@router.post("/v1/callbacks/transportone", responses=_DELIVERED)
async def transportone_callback(
    raw: JsonBody, relay: RelayKeysDep, gate: GateDep, payment: str | None = None
) -> JSONResponse:
    """TransportOne's payments callback, relayed to the payment's workflow as the ``vendor_callback`` signal.

    ``payment`` (the query parameter of the callback URL freightpay gave TransportOne) names
    the payment's workflow; without it (payments posted before it was added) the workflow is
    found from ``{invoiceNumber}-{paymentId}``. Each report carries the relay proof
    (config/relay.py) the worker checks before the report counts.
    """
    try:
        reports = callback_reports(load_json(raw), payment)
    except IntakeError as exc:
        raise refused(exc) from None
    if not relay:
        raise Problem(503, "The callback relay has no key", "Set FREIGHTPAY_RELAY_KEYS (config/relay.py).")
    temporal = await gate.client()
    delivered: list[str] = []
    for workflow_id, report in reports:
        try:
            await temporal.get_workflow_handle_for(PaymentWorkflow.run, workflow_id).signal(
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


def _amount(entry: dict[str, Any], key: str) -> Decimal | None:
    value = entry.get(key)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return Decimal(str(value))
    return None


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
    for index, entry in enumerate(payments):
        if not isinstance(entry, dict) or not entry.get("paymentId") or not entry.get("invoiceNumber"):
            problems.append(FieldProblem(f"data.payments.{index}", "needs paymentId and invoiceNumber"))
            continue
        workflow_id = payment or workflow_id_for(
            Source.TRANSPORTONE, business_key(str(entry["invoiceNumber"]), str(entry["paymentId"]))
        )
        report = CallbackReport(
            success=bool(body.get("success", True)),
            applied_amount=_amount(entry, "appliedAmount"),
            total_amount=_amount(entry, "totalAmount"),
            invoice_status=entry.get("invoiceStatus"),
            message=body.get("message"),
        )
        found.append((workflow_id, report))
    if problems:
        raise IntakeError(problems)
    return found
