"""Reading a stored remittance file, a batch of lines at a time, for its parent workflow."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from intake.files import stored_path
from intake.remittance import parse_line_range
from models.payment import PaymentInstruction
from models.steps import NOT_FOUND, RemittanceBatchRequest, RepeatCheck


class RemittanceActivities:
    """Holds where files are stored (``FREIGHTPAY_DATA_DIR``: shared storage when workers are many)."""

    def __init__(self, data_dir: str | Path) -> None:
        self._data_dir = Path(data_dir)

    @activity.defn(name="read_remittance_lines")
    async def read_lines(self, request: RemittanceBatchRequest) -> list[PaymentInstruction]:
        path = stored_path(self._data_dir, request.file_id)
        try:
            raw = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise ApplicationError(
                f"remittance file {request.file_id} is not in {self._data_dir}/remittances "
                "(is FREIGHTPAY_DATA_DIR shared by the ingress and every worker?)",
                type="RemittanceFileMissing",
            ) from None
        return parse_line_range(raw, request.start, request.count)

    @activity.defn(name="compare_with_accepted")
    async def compare_with_accepted(self, instruction: PaymentInstruction) -> RepeatCheck:
        """How a line differs from the payment already accepted under its key (empty: the same).

        For a line whose key was taken after the file was accepted (by another delivery, in
        the window before the file's workflow reached the line): the file then records it
        as a conflict instead of dropping it. A deposit asks it too, for a payment it could not
        start or that ended without a result: it counts as applied only money that is recorded
        (:func:`models.matching.not_applied`).
        """
        from intake.start import accepted_status, repeat_conflict

        client = activity.client()
        conflict = await repeat_conflict(client, instruction)
        differences = conflict.differences if conflict else []
        return RepeatCheck(
            differences=[str(d) for d in differences],
            fields=[d.field for d in differences],
            status=await accepted_status(client, instruction.workflow_id) or NOT_FOUND,
        )
