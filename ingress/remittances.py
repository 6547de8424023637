"""Remittance files (``X-API-Key``): a CSV validated whole, one parent workflow, one payment per line."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from temporalio.service import RPCError

from ingress.deps import START_TIMEOUT, FileBody, StartsDep, require_api_key
from ingress.problems import STARTED_EXAMPLE, Problem, conflict, unavailable
from intake.errors import IntakeError, PaymentConflicts
from intake.parse import parse_body
from intake.start import start_remittance

router = APIRouter(dependencies=[Depends(require_api_key)], tags=["payments"])

_CSV_BODY = {"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}}


@router.post("/v1/remittances", status_code=202, openapi_extra=_CSV_BODY, responses=STARTED_EXAMPLE)
async def remittance(raw: FileBody, starts: StartsDep, name: str = "remittance.csv") -> JSONResponse:
    """A remittance CSV file (the body, ``text/csv``), validated whole; one payment per line."""
    try:
        instructions = parse_body("remittance", raw, starts.options)
    except IntakeError as exc:
        raise Problem(422, exc.title, errors=exc.problems) from None
    temporal = await starts.gate.client()
    try:
        parent, ids = await start_remittance(
            temporal,
            raw,
            instructions,
            file_name=name,
            task_queue=starts.task_queue,
            policy=starts.policy,
            data_dir=starts.data_dir,
            rpc_timeout=START_TIMEOUT,
        )
    except PaymentConflicts as exc:
        raise conflict(exc) from None
    except (RPCError, RuntimeError, TimeoutError) as exc:
        raise unavailable(exc) from None
    return JSONResponse({"workflow_ids": ids, "remittance_workflow_id": parent}, status_code=202)
