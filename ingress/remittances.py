"""Remittance files (``X-API-Key``): freightpay's CSV, or a bank, lockbox or factor file of deposits.

``POST /v1/remittances[?format=csv|bai2|x12-820|camt054|apex]``: the format is detected from
the content unless given. A file is validated whole before anything starts. freightpay's CSV
starts one parent workflow with one payment per line (as before); any other format starts one
``DepositWorkflow`` per deposit. ``GET /v1/remittances/{remittance_id}`` tells what became of
a file's deposits.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from temporalio.service import RPCError

from ingress.deps import START_TIMEOUT, FileBody, GateDep, SettingsDep, StartsDep, require_api_key
from ingress.problems import PROBLEMS, STARTED_EXAMPLE, Problem, conflict, problem_doc, unavailable
from intake.cash import file_format_of, parse_file, remittance_view, start_file
from intake.errors import IntakeError, PaymentConflicts

router = APIRouter(dependencies=[Depends(require_api_key)], tags=["payments"])

_FILE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
            "application/xml": {"schema": {"type": "string"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post("/v1/remittances", status_code=202, openapi_extra=_FILE_BODY, responses=STARTED_EXAMPLE)
async def remittance(
    raw: FileBody, starts: StartsDep, name: str = "remittance.csv", format: str | None = None
) -> JSONResponse:
    """A remittance file (the body), validated whole: payments per CSV line, or one deposit each."""
    try:
        file_format = file_format_of(raw, format)
        parsed = parse_file(raw, file_format, starts.options)
    except IntakeError as exc:
        raise Problem(422, exc.title, errors=exc.problems) from None
    temporal = await starts.gate.client()
    try:
        body = await start_file(
            temporal,
            raw,
            file_format,
            parsed,
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
    return JSONResponse(body, status_code=202)


@router.get(
    "/v1/remittances/{remittance_id}",
    responses={404: problem_doc("No such remittance file"), **PROBLEMS},
)
async def remittance_status(remittance_id: str, settings: SettingsDep, gate: GateDep) -> JSONResponse:
    """A file's deposits: applied, unapplied, each application's payment and what matched nothing."""
    temporal = await gate.client()
    try:
        view = await remittance_view(
            temporal, remittance_id, settings.freightpay.data_dir, rpc_timeout=START_TIMEOUT
        )
    except RPCError as exc:
        raise unavailable(exc) from None
    if view is None:
        raise Problem(404, f"No remittance file {remittance_id}")
    return JSONResponse(view)
