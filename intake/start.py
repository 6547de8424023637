"""Starting payment workflows: one per instruction, idempotent on the business event.

The workflow id is the business id (``payment-{source}-{key}``). With the id-conflict
policy USE_EXISTING a repeated delivery while the payment runs lands on the running
workflow; with the id-reuse policy REJECT_DUPLICATE a payment that already ended is not
started again. Either way the caller gets the same workflow id back and nothing new starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from intake import files
from models.payment import PaymentInstruction
from models.state import PaymentResult, PaymentStatus
from models.steps import PaymentInput, PaymentPolicy, RemittanceInput
from workflows import search_attributes

#: The workflow type names (the ingress starts workflows by name, without importing workflow code).
PAYMENT_WORKFLOW = "PaymentWorkflow"
REMITTANCE_WORKFLOW = "RemittanceWorkflow"


def static_details(instruction: PaymentInstruction) -> str:
    """What the Temporal UI shows under the summary: the payment's facts, as markdown."""
    ids = ", ".join(f"{k} `{v}`" for k, v in instruction.ids.model_dump(exclude_none=True).items())
    lines = [
        f"**{instruction.summary()}**",
        f"- Source: {instruction.source.value} (event `{instruction.source_event_id or instruction.business_key}`)",
        f"- Target: {instruction.target.value} ({ids or 'to be resolved'})",
        f"- Amount: {instruction.amount}"
        + (" (currency not given: USD assumed)" if instruction.currency_defaulted else ""),
        f"- Reference (idempotency key): `{instruction.reference_number}`",
        f"- Payment date: {instruction.payment_date:%Y-%m-%d}",
    ]
    if instruction.method or instruction.check_number:
        lines.append(f"- Method: {instruction.method or '-'} {instruction.check_number or ''}".rstrip())
    return "\n".join(lines)


async def start_payment(
    client: Client,
    instruction: PaymentInstruction,
    *,
    task_queue: str,
    policy: PaymentPolicy,
    rpc_timeout: timedelta | None = None,
) -> str:
    """Start (or find) the payment's workflow; returns its workflow id."""
    try:
        await client.start_workflow(
            PAYMENT_WORKFLOW,
            PaymentInput(instruction=instruction, policy=policy),
            id=instruction.workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes.typed(instruction, PaymentStatus.RECEIVED),
            static_summary=instruction.summary(),
            static_details=static_details(instruction),
            rpc_timeout=rpc_timeout,
        )
    except WorkflowAlreadyStartedError:
        pass  # it already ran to its end: the same business event is not paid twice
    return instruction.workflow_id


async def start_payments(
    client: Client,
    instructions: Sequence[PaymentInstruction],
    *,
    task_queue: str,
    policy: PaymentPolicy,
    concurrency: int = 20,
    rpc_timeout: timedelta | None = None,
) -> list[str]:
    """Start every instruction (in order of the ids returned); all must be accepted by Temporal."""
    gate = asyncio.Semaphore(concurrency)

    async def one(instruction: PaymentInstruction) -> str:
        async with gate:
            return await start_payment(
                client, instruction, task_queue=task_queue, policy=policy, rpc_timeout=rpc_timeout
            )

    return list(await asyncio.gather(*(one(i) for i in instructions)))


async def payment_result(client: Client, workflow_id: str) -> PaymentResult:
    """Wait for a payment to end and return its result."""
    handle: WorkflowHandle[Any, PaymentResult] = client.get_workflow_handle(
        workflow_id, result_type=PaymentResult
    )
    return await handle.result()


async def start_remittance(
    client: Client,
    raw: bytes,
    instructions: Sequence[PaymentInstruction],
    *,
    file_name: str,
    task_queue: str,
    policy: PaymentPolicy,
    data_dir: str | Path,
    rpc_timeout: timedelta | None = None,
    batch_size: int = 200,
) -> tuple[str, list[str]]:
    """Store a validated remittance file and start its parent workflow.

    Returns the parent's id (``remittance-{sha256[:16]}``: the same file twice is one parent)
    and the payment workflow ids its lines will have, in file order.
    """
    file_id = files.store(data_dir, raw)
    parent_id = f"remittance-{file_id[:16]}"
    try:
        await client.start_workflow(
            REMITTANCE_WORKFLOW,
            RemittanceInput(
                file_id=file_id,
                file_name=file_name,
                total_lines=len(instructions),
                policy=policy,
                batch_size=batch_size,
            ),
            id=parent_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Remittance file {file_name}: {len(instructions)} payments",
            rpc_timeout=rpc_timeout,
        )
    except WorkflowAlreadyStartedError:
        pass
    return parent_id, [i.workflow_id for i in instructions]
