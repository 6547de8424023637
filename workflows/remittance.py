"""RemittanceWorkflow: one remittance file, one child PaymentWorkflow per line.

Children start in batches (``batch_size`` lines, at most ``concurrency`` at a time); after
each batch the workflow continues as new with the counts so far, so its history stays
bounded whatever the file's size. Each child is an ordinary payment (its id is the line's
business id), so operators steer it like any other; the file ends when every line's payment
has ended, with a summary by final state.

A line whose key is already taken when the file reaches it is compared with the payment
accepted under it (``compare_with_accepted``): the same facts (the same file sent twice, or
the same payment sent another way) is counted ``AlreadyStarted`` and not paid again; other
facts (another delivery took the key after this file was accepted, before its workflow
reached the line) is counted ``Conflict`` and listed with what differs, in the progress and
the details, for a person: never posted, never dropped. (Intake refuses a file whole for
every conflict it can see when the file arrives; this is the window it cannot see.)

A line's payment that an operator terminates (or that Temporal cancels or times out) is counted
as it really ended (``Terminated``, or its final status if it had one), and the file goes on to
its other lines (``CLOSED_LINE_PATCH``).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.remittance import RemittanceActivities
    from models.payment import PaymentInstruction
    from models.state import PaymentResult, PaymentStatus
    from models.steps import (
        LineConflict,
        PaymentInput,
        RemittanceBatchRequest,
        RemittanceInput,
        RemittanceProgress,
        RepeatCheck,
    )
    from workflows import search_attributes
    from workflows.payment import PaymentWorkflow

ALREADY_STARTED = "AlreadyStarted"
CONFLICT = "Conflict"
#: Patch: a line whose key is taken is compared with the accepted payment (before: counted as is).
COMPARE_PATCH = "remittance-compare-taken-keys"
#: A line's payment closed by Temporal (terminated, timed out, cancelled) is counted as it
#: ended; before, its ChildWorkflowError failed the file and its later lines never started.
CLOSED_LINE_PATCH = "remittance-line-closed-by-temporal"


async def compare_with_accepted(instruction: PaymentInstruction, summary: str) -> RepeatCheck:
    """The payment accepted under ``instruction``'s key, against it (one short activity; a
    file and a deposit ask it of a key they could not take, or of a payment closed by Temporal)."""
    return await workflow.execute_activity_method(
        RemittanceActivities.compare_with_accepted,
        instruction,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
        summary=summary,
    )


#: Worker Versioning: AUTO_UPGRADE (worker.deployment_config's default; not set on the
#: definition, which unversioned workers refuse).
#: A file's workflow waits for its lines' payments, which can
#: take as long as any payment; it continues as new after every batch and its changes are
#: patched and replay-tested like the payment's.
@workflow.defn(name="RemittanceWorkflow")
class RemittanceWorkflow:
    @workflow.init
    def __init__(self, input: RemittanceInput) -> None:
        self._input = input
        self._by_status: dict[str, int] = dict(input.by_status)
        self._started = input.next_line
        self._running: set[str] = set()
        self._conflicts: list[LineConflict] = list(input.conflicts)

    @workflow.run
    async def run(self, input: RemittanceInput) -> RemittanceProgress:
        start = input.next_line
        if start < input.total_lines:
            lines = await workflow.execute_activity_method(
                RemittanceActivities.read_lines,
                RemittanceBatchRequest(file_id=input.file_id, start=start, count=input.batch_size),
                start_to_close_timeout=timedelta(minutes=1),
                schedule_to_close_timeout=timedelta(hours=1),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
                summary=f"Read lines {start + 1}-{start + input.batch_size} of {input.file_name}",
            )
            workflow.set_current_details(self._details())
            gate = asyncio.Semaphore(input.concurrency)
            await asyncio.gather(*(self._pay(line, gate) for line in lines))
            next_line = start + len(lines)
            if next_line < input.total_lines and lines:
                workflow.continue_as_new(
                    input.model_copy(
                        update={
                            "next_line": next_line,
                            "by_status": self._by_status,
                            "conflicts": self._conflicts,
                        }
                    )
                )
        workflow.set_current_details(self._details())
        return self.progress()

    async def _pay(self, instruction: PaymentInstruction, gate: asyncio.Semaphore) -> None:
        async with gate:
            self._started += 1
            self._running.add(instruction.workflow_id)
            try:
                handle = await workflow.start_child_workflow(
                    PaymentWorkflow.run,
                    PaymentInput(instruction=instruction, policy=self._input.policy),
                    id=instruction.workflow_id,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    search_attributes=search_attributes.typed(instruction, PaymentStatus.RECEIVED),
                    static_summary=instruction.summary(),
                )
                result: PaymentResult = await handle
                status = result.status.value
            except WorkflowAlreadyStartedError:
                status = await self._taken(instruction)
            except ChildWorkflowError:
                # The line's payment was terminated, timed out or cancelled through Temporal: it is
                # counted as it ended, and the file goes on to its other lines.
                if not workflow.patched(CLOSED_LINE_PATCH):
                    raise
                status = await self._closed(instruction)
            self._running.discard(instruction.workflow_id)
            self._by_status[status] = self._by_status.get(status, 0) + 1

    async def _closed(self, instruction: PaymentInstruction) -> str:
        """How a line's payment that ended without a result really ended (``Terminated``, or
        ``Paid`` if it was terminated after posting: its status is the truth of what was posted)."""
        status = (await self._compare(instruction)).status or "Failed"  # Failed: an older worker's answer
        workflow.logger.warning(
            "Remittance line %s: %s ended %s", instruction.source_event_id, instruction.workflow_id, status
        )
        return status

    async def _compare(self, instruction: PaymentInstruction) -> RepeatCheck:
        return await compare_with_accepted(
            instruction,
            f"Compare {instruction.source_event_id} with the payment accepted as {instruction.workflow_id}",
        )

    async def _taken(self, instruction: PaymentInstruction) -> str:
        """A line whose key another delivery took: the same payment, or a recorded conflict."""
        if not workflow.patched(COMPARE_PATCH):
            return ALREADY_STARTED
        check = await self._compare(instruction)
        if not check.differences:
            return ALREADY_STARTED
        self._conflicts.append(
            LineConflict(
                line=instruction.source_event_id or instruction.business_key,
                workflow_id=instruction.workflow_id,
                differences=check.differences,
            )
        )
        workflow.logger.warning(
            "Remittance line %s conflicts with %s", instruction.source_event_id, instruction.workflow_id
        )
        return CONFLICT

    @workflow.query(name="progress")
    def progress(self) -> RemittanceProgress:
        return RemittanceProgress(
            file_name=self._input.file_name,
            total_lines=self._input.total_lines,
            started=self._started,
            finished=sum(self._by_status.values()),
            by_status=dict(sorted(self._by_status.items())),
            running=sorted(self._running)[:50],
            conflicts=list(self._conflicts[:100]),
        )

    def _details(self) -> str:
        progress = self.progress()
        counts = ", ".join(f"{k} {v}" for k, v in progress.by_status.items()) or "none yet"
        text = (
            f"**{progress.file_name}**: {progress.finished} of {progress.total_lines} payments ended "
            f"({counts}); {len(self._running)} running"
        )
        for conflict in self._conflicts[:20]:
            text += (
                f"\n- Conflict, {conflict.line}: {conflict.workflow_id} was accepted with other facts "
                f"({'; '.join(conflict.differences)}); not posted from this file"
            )
        return text
