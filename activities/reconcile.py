"""The reconciliation's I/O: visibility, Alvys's loads, the report files (rules: models/reconcile.py).

==========================  ================  ==================================================
activity                    queue             what it does
==========================  ================  ==================================================
``list_settled_payments``   main              one visibility page of settled payments, each with
                                              the facts of its result (``handle.result()`` of a
                                              closed workflow: one history read of its close
                                              event), else of its start input
``read_loads``              Alvys reads       one ``POST loads/search`` for a batch of load
                                              numbers (the reads budget: one call per activity)
``write_report``            main              the CSV and the markdown under
                                              ``FREIGHTPAY_DATA_DIR/reconciliation/``
==========================  ================  ==================================================
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from datetime import timedelta
from pathlib import Path

from temporalio import activity
from temporalio.client import Client, WorkflowExecution, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.alvys import classified_read
from activities.pacing import Pacer
from models import reconcile
from models.money import Money
from models.queues import VendorQueue
from models.reconcile import (
    LoadsRead,
    LoadsRequest,
    ReportFiles,
    ReportRequest,
    SettledPage,
    SettledPayment,
    SettledRequest,
    VendorLoad,
    VendorPayment,
)
from models.state import PaymentResult
from vendors.alvys import AlvysClient, AlvysProblem, AlvysResponseError, Load
from workflows import search_attributes as sa

log = logging.getLogger(__name__)
#: Results read at once while listing a page (each one history read of a close event).
_CONCURRENT_READS = 20
_RPC_TIMEOUT = timedelta(seconds=10)


def _vendor_load(load: Load) -> VendorLoad:
    return VendorLoad(
        load_number=load.load_number,
        status=load.status,
        total_paid=load.total_paid,
        payments=[
            VendorPayment(id=p.id, reference=p.reference_number, amount=p.amount) for p in load.payments
        ],
    )


class ReconcileActivities:
    """Holds the worker's Alvys client, its pacer and where reports go."""

    def __init__(self, alvys: AlvysClient, data_dir: str | Path, pacer: Pacer | None = None) -> None:
        self._alvys = alvys
        self._directory = Path(data_dir) / "reconciliation"
        self._pacer = pacer or Pacer({})

    @activity.defn(name="list_settled_payments")
    async def list_settled_payments(self, request: SettledRequest) -> SettledPage:
        """One page of the window's settled payments (visibility), with their exact facts."""
        client = activity.client()
        query = reconcile.settled_query(request.window, request.task_queue)
        token = base64.b64decode(request.page_token) if request.page_token else None
        pages = client.list_workflows(query, page_size=request.page_size, next_page_token=token)
        await pages.fetch_next_page()
        limit = asyncio.Semaphore(_CONCURRENT_READS)

        async def facts(execution: WorkflowExecution) -> SettledPayment:
            async with limit:
                return await _settled(client, execution)

        payments = await asyncio.gather(*(facts(e) for e in pages.current_page or []))
        next_token = pages.next_page_token
        return SettledPage(
            payments=list(payments),
            next_page_token=base64.b64encode(next_token).decode() if next_token else None,
        )

    @activity.defn(name="read_loads")
    async def read_loads(self, request: LoadsRequest) -> LoadsRead:
        """The loads of a batch of load numbers: exactly one ``POST loads/search``."""
        numbers = request.load_numbers
        if not numbers:
            return LoadsRead()
        await self._pacer.wait(VendorQueue.ALVYS_READS.value)
        try:
            loads = await classified_read(
                lambda: self._alvys.search_loads(
                    load_numbers=numbers, page_size=max(50, min(len(numbers), 500)), max_pages=1
                )
            )
        # A 4xx that retrying will not change (429 and 5xx are retried in classified_read).
        except AlvysProblem as error:
            raise ApplicationError(str(error), type="VendorRefusedRead", non_retryable=True) from None
        except AlvysResponseError as error:
            raise ApplicationError(str(error), type="VendorUnreadable", non_retryable=True) from None
        return LoadsRead(loads=[_vendor_load(load) for load in loads if load.load_number in numbers])

    @activity.defn(name="write_report")
    async def write_report(self, request: ReportRequest) -> ReportFiles:
        """``reconcile-{since}-{until}.csv`` and ``.md``, written whole (a retry rewrites the same files)."""
        stem = request.window.stem
        csv_path = self._directory / f"{stem}.csv"
        md_path = self._directory / f"{stem}.md"
        csv_text = reconcile.csv_text(request.rows)
        md_text = reconcile.markdown_text(request, csv_path.name)

        def write() -> None:
            self._directory.mkdir(parents=True, exist_ok=True)
            for path, text in ((csv_path, csv_text), (md_path, md_text)):
                partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                partial.write_text(text, encoding="utf-8")
                partial.replace(path)  # readers never see half a report

        await asyncio.to_thread(write)
        return ReportFiles(csv=str(csv_path.resolve()), markdown=str(md_path.resolve()))


async def _settled(client: Client, execution: WorkflowExecution) -> SettledPayment:
    """A settled payment's facts: its result; for a workflow that ended without one (terminated
    after it was paid), its start input. Ids come from the search attributes (resolved ids too)."""
    from intake.start import accepted_instruction  # imports the payment workflow: only when needed

    attrs = execution.typed_search_attributes
    payment = SettledPayment(
        workflow_id=execution.id,
        target=attrs.get(sa.PAYMENT_TARGET) or "",
        status=attrs.get(sa.PAYMENT_STATUS) or "",
        reference=attrs.get(sa.PAYMENT_REFERENCE) or "",
        load_number=attrs.get(sa.LOAD_NUMBER),
        trip_id=attrs.get(sa.TRIP_ID),
        invoice_number=attrs.get(sa.INVOICE_NUMBER),
        closed_at=execution.close_time,
    )
    handle = client.get_workflow_handle(execution.id, run_id=execution.run_id, result_type=PaymentResult)
    try:
        result: PaymentResult = await handle.result(follow_runs=False, rpc_timeout=_RPC_TIMEOUT)
    except WorkflowFailureError:
        instruction = await accepted_instruction(client, execution.id, rpc_timeout=_RPC_TIMEOUT)
        if instruction is None:
            log.warning("settled payment %s has neither a result nor a start input", execution.id)
            return payment.model_copy(update={"facts_from": "none"})
        ids = instruction.ids
        return payment.model_copy(
            update={
                "facts_from": "start input",
                "target": payment.target or instruction.target.value,
                "reference": instruction.reference_number,
                "amount": instruction.amount,
                "load_number": payment.load_number or ids.load_number,
                "trip_id": payment.trip_id or ids.trip_id,
                "invoice_number": payment.invoice_number or ids.invoice_number,
            }
        )
    amount: Money = result.amount
    return payment.model_copy(
        update={
            "target": result.target,
            "status": result.status.value,
            "reference": result.reference_number,
            "amount": amount,
            "vendor_payment_id": result.vendor_payment_id,
        }
    )
