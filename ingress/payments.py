"""Payment intake routes (``X-API-Key``): a body in, one payment workflow per payment, and a payment's state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from config.temporal import execution_status_label
from ingress.deps import START_TIMEOUT, GateDep, JsonBody, Starts, StartsDep, require_api_key
from ingress.problems import (
    PROBLEMS,
    STARTED_EXAMPLE,
    Problem,
    conflict,
    json_body_doc,
    problem_doc,
    refused,
    unavailable,
)
from intake import alvys as alvys_intake
from intake import transportone as transportone_intake
from intake.errors import IntakeError, PaymentConflicts
from intake.parse import parse_body
from intake.start import start_payments
from models.state import PaymentState
from workflows.payment import PaymentWorkflow

router = APIRouter(dependencies=[Depends(require_api_key)], tags=["payments"])


async def accept(source: str, raw: bytes, starts: Starts) -> JSONResponse:
    """Parse a JSON body of ``source`` and start its payments: 202 once Temporal accepted every one."""
    try:
        instructions = parse_body(source, raw, starts.options)
    except IntakeError as exc:
        raise refused(exc) from None
    temporal = await starts.gate.client()
    try:
        ids = await start_payments(
            temporal,
            instructions,
            task_queue=starts.task_queue,
            policy=starts.policy,
            rpc_timeout=START_TIMEOUT,
        )
    except PaymentConflicts as exc:
        raise conflict(exc) from None
    except (RPCError, RuntimeError, TimeoutError) as exc:
        raise unavailable(exc) from None
    return JSONResponse({"workflow_ids": ids}, status_code=202)


@router.post(
    "/v1/payments/alvys/customer-payments",
    status_code=202,
    openapi_extra=json_body_doc(alvys_intake.CustomerPaymentBody),
    responses=STARTED_EXAMPLE,
)
async def alvys_customer_payment(raw: JsonBody, starts: StartsDep) -> JSONResponse:
    """An Alvys ``customer-payments`` body (or a JSON array of them): a customer payment on a load."""
    return await accept("alvys-customer-payment", raw, starts)


@router.post(
    "/v1/payments/alvys/carrier-payments",
    status_code=202,
    openapi_extra=json_body_doc(alvys_intake.CarrierPaymentBody),
    responses=STARTED_EXAMPLE,
)
async def alvys_carrier_payment(raw: JsonBody, starts: StartsDep) -> JSONResponse:
    """An Alvys ``carrier-payments`` body (or a JSON array of them): a carrier payment on a trip."""
    return await accept("alvys-carrier-payment", raw, starts)


@router.post(
    "/v1/payments/transportone/billing-payments",
    status_code=202,
    openapi_extra=json_body_doc(transportone_intake.BillingPaymentsBody),
    responses=STARTED_EXAMPLE,
)
async def transportone_payment(raw: JsonBody, starts: StartsDep) -> JSONResponse:
    """TransportOne's ``{"data": {"payments": [...]}}`` body from an ERP: one payment per entry."""
    return await accept("transportone-payment", raw, starts)


@router.get("/v1/payments/{workflow_id}", responses={404: problem_doc("No such payment"), **PROBLEMS})
async def payment_status(workflow_id: str, gate: GateDep) -> JSONResponse:
    """A payment's full state (the workflow's ``status`` query)."""
    temporal = await gate.client()
    handle = temporal.get_workflow_handle_for(PaymentWorkflow.run, workflow_id)
    try:
        description = await handle.describe(rpc_timeout=START_TIMEOUT)
        state = await handle.query(PaymentWorkflow.status, rpc_timeout=START_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise Problem(404, f"No payment {workflow_id}") from None
        raise unavailable(exc) from None
    return JSONResponse(payment_view(state, description.status))


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
