"""Starting payment workflows: one per instruction, idempotent on the business event.

The workflow id is the business id (``payment-{source}-{key}``, :mod:`models.identity`).
A repeat is either the same payment or a refusal, never a silent drop:

* the start asks Temporal for a new workflow with the id-conflict policy FAIL and the
  id-reuse policy REJECT_DUPLICATE, so a second start of a key, running or ended, is
  refused by Temporal itself (atomically: two concurrent deliveries cannot both start);
* a refused start reads what the accepted payment was started with (its first history
  event, the workflow's own input: strongly consistent, whatever started it, a route, a
  remittance file or an older version of freightpay) and compares the canonical
  fingerprints (:meth:`PaymentInstruction.fingerprint`). The same facts: the caller gets the
  same workflow id back and nothing new starts. Other facts: :class:`PaymentConflicts`
  naming each differing field, and nothing changes.

A delivery of several payments (a JSON array, a file) is checked whole before any start,
so a conflicting line refuses it whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import Priority, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from intake import files
from intake.errors import FieldDifference, PaymentConflict, PaymentConflicts
from models import texts
from models.payment import PaymentInstruction, fingerprint_differences
from models.priority import FILE, LIVE, delivery_priority
from models.state import PaymentResult, PaymentStatus
from models.steps import PaymentInput, PaymentPolicy, RemittanceInput
from workflows import search_attributes
from workflows.payment import PaymentWorkflow
from workflows.remittance import RemittanceWorkflow

#: The payment workflow's type name, for visibility List Filters (``WorkflowType = '...'``);
#: workflows are started, queried and signalled by their typed methods, never by this name.
PAYMENT_WORKFLOW = "PaymentWorkflow"


async def accepted_instruction(
    client: Client, workflow_id: str, *, rpc_timeout: timedelta | None = None
) -> PaymentInstruction | None:
    """The instruction the payment ``workflow_id`` was started with, or None if there is none."""
    handle = client.get_workflow_handle_for(PaymentWorkflow.run, workflow_id)
    try:
        async for event in handle.fetch_history_events(page_size=1, rpc_timeout=rpc_timeout):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            if not payloads:
                return None
            decoded = await client.data_converter.decode(payloads, [PaymentInput])
            started = decoded[0]
            return started.instruction if isinstance(started, PaymentInput) else None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return None


_FINAL_STATUSES = frozenset(s.value for s in PaymentStatus if s.is_final)
#: How Temporal closed a workflow that ended without a final PaymentStatus.
_CLOSED = {
    WorkflowExecutionStatus.TERMINATED: "Terminated",
    WorkflowExecutionStatus.TIMED_OUT: "TimedOut",
    WorkflowExecutionStatus.FAILED: "Failed",
    WorkflowExecutionStatus.CANCELED: PaymentStatus.CANCELLED.value,
}


async def accepted_status(
    client: Client, workflow_id: str, *, rpc_timeout: timedelta | None = None
) -> str | None:
    """Where the payment ``workflow_id`` is: its final ``PaymentStatus``; else, if Temporal closed
    it (terminated, timed out, cancelled, failed), how; else its current ``PaymentStatus``. None:
    no such payment.

    A payment terminated after it was paid shows ``Paid`` (its status search attribute is the
    truth of what was posted); one terminated while posting shows ``Terminated``.
    """
    try:
        described = await client.get_workflow_handle(workflow_id).describe(rpc_timeout=rpc_timeout)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    shown = described.typed_search_attributes.get(search_attributes.PAYMENT_STATUS)
    if shown in _FINAL_STATUSES:
        return shown
    closed = _CLOSED.get(described.status) if described.status else None
    return closed or shown


async def repeat_conflict(
    client: Client,
    instruction: PaymentInstruction,
    *,
    where: str = "",
    rpc_timeout: timedelta | None = None,
) -> PaymentConflict | None:
    """How ``instruction`` differs from the payment already accepted under its key (None: it does not)."""
    accepted = await accepted_instruction(client, instruction.workflow_id, rpc_timeout=rpc_timeout)
    if accepted is None:
        return None
    differences = fingerprint_differences(accepted.fingerprint(), instruction.fingerprint())
    if not differences:
        return None
    return PaymentConflict(
        instruction.workflow_id, [FieldDifference(f, old, new) for f, old, new in differences], where
    )


async def start_payment(
    client: Client,
    instruction: PaymentInstruction,
    *,
    task_queue: str,
    policy: PaymentPolicy,
    rpc_timeout: timedelta | None = None,
    where: str = "",
    priority: Priority = LIVE,
) -> str:
    """Start the payment's workflow, or find the same payment; returns its workflow id.

    ``priority``: a live delivery by default, ahead of files' lines (:mod:`models.priority`).
    Raises :class:`PaymentConflicts` when the key was accepted with other facts.
    """
    try:
        await client.start_workflow(
            PaymentWorkflow.run,
            PaymentInput(instruction=instruction, policy=policy),
            id=instruction.workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes.typed(instruction, PaymentStatus.RECEIVED),
            static_summary=instruction.summary(),
            static_details=texts.static_details(instruction),
            priority=priority,
            rpc_timeout=rpc_timeout,
        )
    except WorkflowAlreadyStartedError:
        # The key was accepted before (running or ended): the same payment, or a refusal.
        conflict = await repeat_conflict(client, instruction, where=where, rpc_timeout=rpc_timeout)
        if conflict is not None:
            raise PaymentConflicts([conflict]) from None
    return instruction.workflow_id


async def check_repeats(
    client: Client,
    instructions: Sequence[PaymentInstruction],
    *,
    where: Sequence[str] | None = None,
    concurrency: int = 20,
    rpc_timeout: timedelta | None = None,
) -> None:
    """Raise :class:`PaymentConflicts` if any instruction repeats an accepted key with other facts."""
    gate = asyncio.Semaphore(concurrency)
    places = list(where) if where is not None else [f"[{i}]" for i in range(len(instructions))]

    async def one(instruction: PaymentInstruction, place: str) -> PaymentConflict | None:
        async with gate:
            return await repeat_conflict(client, instruction, where=place, rpc_timeout=rpc_timeout)

    found = await asyncio.gather(*(one(i, p) for i, p in zip(instructions, places, strict=True)))
    conflicts = [c for c in found if c is not None]
    if conflicts:
        raise PaymentConflicts(conflicts)


async def start_payments(
    client: Client,
    instructions: Sequence[PaymentInstruction],
    *,
    task_queue: str,
    policy: PaymentPolicy,
    concurrency: int = 20,
    rpc_timeout: timedelta | None = None,
    priority: Priority | None = None,
) -> list[str]:
    """Start every instruction (in order of the ids returned); all must be accepted by Temporal.

    Several instructions are checked for conflicting repeats first, so a conflict starts none.
    ``priority``: by default a few are live, a batch runs at a file's priority
    (:func:`models.priority.delivery_priority`).
    """
    priority = priority or delivery_priority(len(instructions))
    places = [f"[{i}]" for i in range(len(instructions))] if len(instructions) > 1 else [""]
    if len(instructions) > 1:
        await check_repeats(client, instructions, where=places, rpc_timeout=rpc_timeout)
    gate = asyncio.Semaphore(concurrency)

    async def one(instruction: PaymentInstruction, place: str) -> str:
        async with gate:
            return await start_payment(
                client,
                instruction,
                task_queue=task_queue,
                policy=policy,
                rpc_timeout=rpc_timeout,
                where=place,
                priority=priority,
            )

    results = await asyncio.gather(
        *(one(i, p) for i, p in zip(instructions, places, strict=True)), return_exceptions=True
    )
    conflicts = [c for r in results if isinstance(r, PaymentConflicts) for c in r.conflicts]
    if conflicts:
        raise PaymentConflicts(conflicts)
    for outcome in results:
        if isinstance(outcome, BaseException):
            raise outcome
    return [r for r in results if isinstance(r, str)]


async def payment_result(client: Client, workflow_id: str) -> PaymentResult:
    """Wait for a payment to end and return its result."""
    return await client.get_workflow_handle_for(PaymentWorkflow.run, workflow_id).result()


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
    batch_size: int = 500,
) -> tuple[str, list[str]]:
    """Store a validated remittance file and start its parent workflow.

    Returns the parent's id (``remittance-{sha256[:16]}``: the same file twice is one parent)
    and the payment workflow ids its lines will have, in file order. A file with a line that
    repeats an accepted payment's key with other facts is refused whole
    (:class:`PaymentConflicts`, each naming its line) before anything is stored or started.
    The parent, and so every line's payment, runs at :data:`~models.priority.FILE` priority,
    below live deliveries.
    """
    file_id = files.file_id_of(raw)
    parent_id = f"remittance-{file_id[:16]}"
    ids = [i.workflow_id for i in instructions]
    try:
        await client.get_workflow_handle_for(RemittanceWorkflow.run, parent_id).describe(
            rpc_timeout=rpc_timeout
        )
        return parent_id, ids  # the same file again: one parent, nothing new
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    await check_repeats(
        client,
        instructions,
        where=[i.source_event_id or i.business_key for i in instructions],
        concurrency=50,
        rpc_timeout=rpc_timeout,
    )
    files.store(data_dir, raw)
    try:
        await client.start_workflow(
            RemittanceWorkflow.run,
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
            priority=FILE,  # its children (the lines' payments) and activities inherit it
            rpc_timeout=rpc_timeout,
        )
    except WorkflowAlreadyStartedError:
        pass
    return parent_id, ids
