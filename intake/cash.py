"""Bank, lockbox and factor files in: one ``DepositWorkflow`` per deposit, and what became of them.

Shared by the ingress (``POST /v1/remittances``, ``GET /v1/remittances/{id}``) and
``starter.py remittance FILE --format``. A file is parsed whole (intake/deposits.py) before
anything starts; then each deposit starts its workflow, ``deposit-{source}-{key}``, with the
id-reuse policy REJECT_DUPLICATE and the conflict policy USE_EXISTING: the same file twice,
or the same deposit in two files, is one deposit. Deposits run at :data:`models.priority.FILE`
priority (their payments and activities inherit it), below live deliveries. The file's
``remittance_id`` is ``remittance-{sha256[:16]}`` of its bytes; a small manifest under
``FREIGHTPAY_DATA_DIR/remittances/`` names its format and deposits, so the file's view can be
read back later (the deposits themselves are in Temporal).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from intake import files
from intake.deposits import detect_format, parse_deposits
from intake.errors import FieldProblem, IntakeError
from intake.options import IntakeOptions
from intake.parse import parse_body
from intake.start import start_remittance
from models.deposit import Deposit, DepositInput, DepositState, DepositStatus, FileFormat
from models.payment import PaymentInstruction
from models.priority import FILE
from models.steps import PaymentPolicy
from workflows import search_attributes
from workflows.deposit import DepositWorkflow, deposit_workflow_id
from workflows.remittance import RemittanceWorkflow


def remittance_id_of(raw: bytes) -> str:
    return f"remittance-{files.file_id_of(raw)[:16]}"


def _manifest_path(data_dir: str | Path, remittance_id: str) -> Path:
    if not remittance_id.startswith("remittance-") or not remittance_id[11:].isalnum():
        raise ValueError(f"bad remittance id {remittance_id!r}")
    return Path(data_dir) / "remittances" / f"{remittance_id}.json"


def _write_manifest(data_dir: str | Path, remittance_id: str, manifest: dict[str, Any]) -> None:
    path = _manifest_path(data_dir, remittance_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".manifest-")
    with os.fdopen(fd, "w") as out:
        json.dump(manifest, out)
    os.replace(tmp, path)


def read_manifest(data_dir: str | Path, remittance_id: str) -> dict[str, Any] | None:
    try:
        path = _manifest_path(data_dir, remittance_id)
    except ValueError:
        return None
    if not path.exists():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


async def start_deposits(
    client: Client,
    raw: bytes,
    deposits: Sequence[Deposit],
    *,
    file_format: FileFormat,
    file_name: str,
    task_queue: str,
    policy: PaymentPolicy,
    data_dir: str | Path,
    rpc_timeout: timedelta | None = None,
) -> tuple[str, list[dict[str, str]]]:
    """Start (or find) each deposit's workflow; returns the file's id and its deposits' summary."""
    remittance_id = remittance_id_of(raw)
    summary = [
        {
            "deposit_id": deposit_workflow_id(d.source, d.key),
            "amount": str(d.amount.amount),
            "currency": d.amount.currency,
        }
        for d in deposits
    ]
    gate = asyncio.Semaphore(20)

    async def one(deposit: Deposit, deposit_id: str) -> None:
        async with gate:
            try:
                await client.start_workflow(
                    DepositWorkflow.run,
                    DepositInput(deposit=deposit, policy=policy, remittance_id=remittance_id),
                    id=deposit_id,
                    task_queue=task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=TypedSearchAttributes(
                        [
                            SearchAttributePair(
                                search_attributes.DEPOSIT_STATUS, DepositStatus.APPLYING.value
                            ),
                            SearchAttributePair(
                                search_attributes.UNAPPLIED_AMOUNT, float(deposit.amount.amount)
                            ),
                        ]
                    ),
                    static_summary=f"Deposit {deposit.amount} ref {deposit.reference}"
                    + (f" from {deposit.payer}" if deposit.payer else "")
                    + f" ({deposit.source})",
                    priority=FILE,  # a file's deposit: below live deliveries; its payments inherit it
                    rpc_timeout=rpc_timeout,
                )
            except WorkflowAlreadyStartedError:
                pass  # the same deposit again (this file twice, or another file): one deposit

    await asyncio.gather(*(one(d, s["deposit_id"]) for d, s in zip(deposits, summary, strict=True)))
    _write_manifest(
        data_dir,
        remittance_id,
        {
            "remittance_id": remittance_id,
            "format": file_format.value,
            "file_name": file_name,
            "deposits": summary,
        },
    )
    return remittance_id, summary


def file_format_of(raw: bytes, given: str | None) -> FileFormat:
    """The format named (``?format=``, ``--format``), else the one the content shows."""
    if given is None:
        return detect_format(raw)
    try:
        return FileFormat(given)
    except ValueError:
        formats = ", ".join(f.value for f in FileFormat)
        raise IntakeError(
            [FieldProblem("format", f"{given!r} is not one of {formats}")], "Unknown file format"
        ) from None


def parse_file(
    raw: bytes, file_format: FileFormat, options: IntakeOptions
) -> list[PaymentInstruction] | list[Deposit]:
    """The whole file validated: payment instructions (freightpay's CSV) or deposits (the rest)."""
    if file_format is FileFormat.CSV:
        return parse_body("remittance", raw, options)
    return parse_deposits(raw, file_format)


async def start_file(
    client: Client,
    raw: bytes,
    file_format: FileFormat,
    parsed: list[PaymentInstruction] | list[Deposit],
    *,
    file_name: str,
    task_queue: str,
    policy: PaymentPolicy,
    data_dir: str | Path,
    rpc_timeout: timedelta | None = None,
) -> dict[str, Any]:
    """Start what a validated file holds; the answer ``POST /v1/remittances`` gives (202)."""
    if file_format is FileFormat.CSV:
        instructions = [i for i in parsed if isinstance(i, PaymentInstruction)]
        parent, ids = await start_remittance(
            client, raw, instructions, file_name=file_name, task_queue=task_queue, policy=policy,
            data_dir=data_dir, rpc_timeout=rpc_timeout,
        )  # fmt: skip
        return {
            "workflow_ids": ids,
            "remittance_workflow_id": parent,
            "remittance_id": parent,
            "format": file_format.value,
            "deposits": [],
        }
    deposits = [d for d in parsed if isinstance(d, Deposit)]
    remittance_id, summary = await start_deposits(
        client, raw, deposits, file_format=file_format, file_name=file_name, task_queue=task_queue,
        policy=policy, data_dir=data_dir, rpc_timeout=rpc_timeout,
    )  # fmt: skip
    return {
        "workflow_ids": [d["deposit_id"] for d in summary],
        "remittance_id": remittance_id,
        "format": file_format.value,
        "deposits": summary,
    }


def deposit_view(state: DepositState) -> dict[str, Any]:
    """One deposit as ``GET /v1/remittances/{id}`` and ``starter.py --wait`` tell it (decimal strings)."""
    return {
        "deposit_id": state.deposit_id,
        "amount": str(state.deposit.amount.amount),
        "currency": state.deposit.amount.currency,
        "applied": str(state.applied.amount),
        "unapplied": str(state.unapplied.amount),
        "status": state.status.value,
        "applications": [
            {
                "reference": a.reference,
                "load_number": a.load_number,
                "amount": str(a.amount.amount),
                "workflow_id": a.workflow_id,
                "payment_status": a.payment_status,
                "reason": a.reason,
            }
            for a in state.applications
        ],
        "unmatched": [
            {
                "reference": u.reference,
                "amount": str(u.amount.amount),
                "reason": u.reason,
                "candidates": u.candidates,
            }
            for u in state.unmatched
        ],
    }


async def live(client: Client, view: dict[str, Any], rpc_timeout: timedelta | None = None) -> dict[str, Any]:
    """The view with each running payment's current ``PaymentStatus`` (the deposit learns only the end)."""
    for application in view["applications"]:
        if application["payment_status"] in ("Received", "Running"):
            with contextlib.suppress(RPCError):
                described = await client.get_workflow_handle(application["workflow_id"]).describe(
                    rpc_timeout=rpc_timeout
                )
                status = described.typed_search_attributes.get(search_attributes.PAYMENT_STATUS)
                application["payment_status"] = status or application["payment_status"]
    return view


async def deposit_state(
    client: Client, deposit_id: str, *, rpc_timeout: timedelta | None = None
) -> DepositState | None:
    """The deposit's ``state`` query (None: no such deposit)."""
    try:
        return await client.get_workflow_handle_for(DepositWorkflow.run, deposit_id).query(
            DepositWorkflow.state, rpc_timeout=rpc_timeout
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def remittance_view(
    client: Client, remittance_id: str, data_dir: str | Path, *, rpc_timeout: timedelta | None = None
) -> dict[str, Any] | None:
    """``{"remittance_id", "format", "deposits": [...]}`` for a file (None: unknown file).

    A CSV file has no deposits: its parent workflow's progress is given, under the same id.
    """
    manifest = read_manifest(data_dir, remittance_id)
    if manifest is None:
        try:
            progress = await client.get_workflow_handle_for(RemittanceWorkflow.run, remittance_id).query(
                RemittanceWorkflow.progress, rpc_timeout=rpc_timeout
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        return {
            "remittance_id": remittance_id,
            "format": FileFormat.CSV.value,
            "deposits": [],
            "progress": progress.model_dump(mode="json"),
        }
    deposits = []
    for entry in manifest["deposits"]:
        state = await deposit_state(client, entry["deposit_id"], rpc_timeout=rpc_timeout)
        deposits.append(
            await live(client, deposit_view(state), rpc_timeout) if state else {**entry, "status": "Unknown"}
        )
    return {"remittance_id": remittance_id, "format": manifest["format"], "deposits": deposits}
