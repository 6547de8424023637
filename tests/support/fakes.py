"""The fast workflow test layer: Temporal's time-skipping test server and scripted fake activities.

In the style of temporalio/samples-python: one time-skipping environment (the
``temporal-test-server`` binary from the virtualenv, never a download), a fresh task queue
per test, and fake activities registered under the real names (``resolve_target``,
``check_payable``, ``post_payment`` and ``confirm_payment`` on every vendor queue, and
``verify_callback`` on the main queue, where the workflow runs it as a local activity), so
the real :class:`~workflows.payment.PaymentWorkflow` runs against scripted *facts* with no
HTTP and no vendor sandbox.

A :class:`Script` holds an activity's answers in order; each call takes the next one, and
the last one repeats. An answer is a fact (a ``models.steps`` model), an exception to raise
(an :class:`~temporalio.exceptions.ApplicationError` is retried by Temporal unless it is
non-retryable), or an async callable of the request (a :class:`Gate` holds the call until
the test releases it). A call with nothing scripted fails non-retryably, so an unexpected
vendor call shows as a NeedsReview naming the activity.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeAlias, TypeVar

from pydantic import BaseModel
from temporalio import activity
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from config.temporal import indexed_value_type
from models.money import Money
from models.payment import PaymentInstruction, TargetIds
from models.queues import VendorQueue, queue_name
from models.state import (
    ActionAnswer,
    OperatorInput,
    PaymentResult,
    PaymentState,
    PaymentStatus,
    VendorProblem,
)
from models.steps import (
    CallbackCheck,
    CallbackReport,
    CallbackVerdict,
    Confirmation,
    ConfirmRequest,
    PayableCheck,
    PaymentInput,
    PaymentPolicy,
    PostOutcome,
    PostOutcomeKind,
    PostRequest,
    Resolution,
    ResolveRequest,
)
from workflows import search_attributes
from workflows.payment import PaymentWorkflow

#: Short waits, so that time skipping passes them in moments (the step deadline stays 1 h).
FAST = PaymentPolicy(
    approval_thresholds={"USD": Decimal("10000")},
    payable_recheck_interval=timedelta(minutes=10),
    payable_deadline=timedelta(hours=3),
    callback_timeout=timedelta(hours=2),
)
#: The proof the fake ``verify_callback`` takes as genuine (the real one checks an HMAC).
GENUINE_PROOF = "fake-relay-proof"

_Req = TypeVar("_Req", bound=BaseModel)
_Fact = TypeVar("_Fact", bound=BaseModel)
#: A scripted answer: an async callable of the request, a fact, or an exception to raise.
Answer: TypeAlias = Callable[[_Req], Awaitable[_Fact]] | _Fact | BaseException


def venv_binary(name: str) -> str:
    """A binary installed beside this Python (the virtualenv's bin/), never a download."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed; run `make install`")
    return found


# ---------------------------------------------------------------------- the environment


@contextlib.asynccontextmanager
async def time_skipping_environment() -> AsyncIterator[WorkflowEnvironment]:
    """The Java time-skipping test server from the virtualenv, with freightpay's search attributes."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    async with env:
        # The Java test server has AddSearchAttributes but not ListSearchAttributes.
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    name: indexed_value_type(kind) for name, kind in search_attributes.DEFINITIONS.items()
                },
            )
        )
        yield env


# ---------------------------------------------------------------------- scripted activities


class Script(Generic[_Req, _Fact]):
    """One activity's scripted answers, in order (the last repeats), and the calls it received."""

    def __init__(self, name: str, *answers: Answer[_Req, _Fact]) -> None:
        self.name = name
        self._answers: list[Answer[_Req, _Fact]] = list(answers)
        self.calls: list[_Req] = []
        #: The task queue of each call: which vendor queue (rate limit) served it.
        self.queues: list[str] = []

    def then(self, *answers: Answer[_Req, _Fact]) -> Script[_Req, _Fact]:
        """Add answers after those already scripted."""
        self._answers.extend(answers)
        return self

    async def answer(self, request: _Req) -> _Fact:
        self.calls.append(request)
        self.queues.append(activity.info().task_queue)
        if not self._answers:
            raise ApplicationError(
                f"fake {self.name}: no answer scripted", type="UnscriptedCall", non_retryable=True
            )
        scripted = self._answers[min(len(self.calls), len(self._answers)) - 1]
        if isinstance(scripted, BaseException):
            raise scripted
        if isinstance(scripted, BaseModel):
            return scripted
        return await scripted(request)


class Gate(Generic[_Req, _Fact]):
    """An answer that holds the call until :meth:`release` (a vendor still answering)."""

    def __init__(self, answer: _Fact) -> None:
        self._answer = answer
        self.entered = asyncio.Event()
        self._open = asyncio.Event()

    def release(self) -> None:
        self._open.set()

    async def __call__(self, request: _Req) -> _Fact:
        self.entered.set()
        await self._open.wait()
        return self._answer


def _genuine_by_proof(check: CallbackCheck) -> Awaitable[CallbackVerdict]:
    async def verdict() -> CallbackVerdict:
        return CallbackVerdict(genuine=check.report.proof == GENUINE_PROOF)

    return verdict()


class FakeVendor:
    """Fake activities under the real names, each answering from its :class:`Script`."""

    def __init__(self) -> None:
        self.resolve: Script[ResolveRequest, Resolution] = Script("resolve_target")
        self.payable: Script[ResolveRequest, PayableCheck] = Script("check_payable")
        self.post: Script[PostRequest, PostOutcome] = Script("post_payment")
        self.confirm: Script[ConfirmRequest, Confirmation] = Script("confirm_payment")
        #: Genuine when the report carries :data:`GENUINE_PROOF`, unless scripted otherwise.
        self.verify: Script[CallbackCheck, CallbackVerdict] = Script("verify_callback", _genuine_by_proof)

    @activity.defn(name="resolve_target")
    async def resolve_target(self, request: ResolveRequest) -> Resolution:
        return _attempted(await self.resolve.answer(request))

    @activity.defn(name="check_payable")
    async def check_payable(self, request: ResolveRequest) -> PayableCheck:
        return _attempted(await self.payable.answer(request))

    @activity.defn(name="post_payment")
    async def post_payment(self, request: PostRequest) -> PostOutcome:
        return _attempted(await self.post.answer(request))

    @activity.defn(name="confirm_payment")
    async def confirm_payment(self, request: ConfirmRequest) -> Confirmation:
        return _attempted(await self.confirm.answer(request))

    @activity.defn(name="verify_callback")
    async def verify_callback(self, check: CallbackCheck) -> CallbackVerdict:
        return await self.verify.answer(check)

    def vendor_activities(self) -> list[Callable[..., Any]]:
        return [self.resolve_target, self.check_payable, self.post_payment, self.confirm_payment]


def _attempted(fact: _Fact) -> _Fact:
    """The fact with the activity's attempt, as the real activities report it."""
    if "attempt" in type(fact).model_fields:
        return fact.model_copy(update={"attempt": activity.info().attempt})
    return fact


@contextlib.asynccontextmanager
async def fake_workers(
    client: Client, task_queue: str, vendor: FakeVendor, *, max_cached_workflows: int = 300
) -> AsyncIterator[None]:
    """Workers as worker.py runs them, with the fakes: the workflow, ``verify_callback`` and the
    vendor activities (for steps run inline) on the main queue, with worker.py's workflow runner
    and cache size; the vendor activities on each vendor queue."""
    from worker import workflow_runner

    workers = [
        Worker(
            client,
            task_queue=task_queue,
            workflows=[PaymentWorkflow],
            activities=[vendor.verify_callback, *vendor.vendor_activities()],
            workflow_runner=workflow_runner(),
            max_cached_workflows=max_cached_workflows,
        ),
        *(
            Worker(client, task_queue=queue_name(task_queue, queue), activities=vendor.vendor_activities())
            for queue in VendorQueue
        ),
    ]
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        yield


# ---------------------------------------------------------------------- payments


PaymentHandle = WorkflowHandle[PaymentWorkflow, PaymentResult]


class Payments:
    """Starts payments on this test's task queue and follows them; ends what is left at the end."""

    def __init__(self, env: WorkflowEnvironment, task_queue: str, vendor: FakeVendor) -> None:
        self.env = env
        self.client = env.client
        self.task_queue = task_queue
        self.vendor = vendor
        self._started: list[str] = []

    async def start(self, instruction: PaymentInstruction, policy: PaymentPolicy = FAST) -> PaymentHandle:
        handle = await self.client.start_workflow(
            PaymentWorkflow.run,
            PaymentInput(instruction=instruction, policy=policy),
            id=instruction.workflow_id,
            task_queue=self.task_queue,
            search_attributes=search_attributes.typed(instruction, PaymentStatus.RECEIVED),
            static_summary=instruction.summary(),
        )
        self._started.append(handle.id)
        return handle

    def handle(self, workflow_id: str) -> PaymentHandle:
        return self.client.get_workflow_handle_for(PaymentWorkflow.run, workflow_id)

    async def state(self, handle: PaymentHandle) -> PaymentState:
        return await handle.query(PaymentWorkflow.status)

    async def wait_for(
        self, handle: PaymentHandle, status: PaymentStatus, seconds: float = 15
    ) -> PaymentState:
        """The payment's state once it is ``status`` (polled; time is not skipped meanwhile)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            try:
                state = await self.state(handle)
            except RPCError:
                state = None  # the first workflow task has not run yet
            if state is not None and state.status is status:
                return state
            if loop.time() > deadline:
                now = f"{state.status}: {state.reason}" if state else "not answering queries"
                raise AssertionError(f"{handle.id} is {now}, not {status}")
            await asyncio.sleep(0.05)

    async def result(self, handle: PaymentHandle, seconds: float = 30) -> PaymentResult:
        """The payment's result (time skips while it is awaited), or a failure instead of a hang."""
        return await asyncio.wait_for(handle.result(), seconds)

    async def until(self, what: str, predicate: Callable[[], Awaitable[bool]], seconds: float = 15) -> None:
        """Poll ``predicate`` until it holds (time is not skipped meanwhile)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not await predicate():
            if loop.time() > deadline:
                raise AssertionError(f"never happened: {what}")
            await asyncio.sleep(0.05)

    async def end_all(self) -> None:
        """Terminate every payment of the test still running, so no timer outlives it."""
        for workflow_id in self._started:
            handle = self.client.get_workflow_handle(workflow_id)
            with contextlib.suppress(RPCError):
                if (await handle.describe()).status is WorkflowExecutionStatus.RUNNING:
                    await handle.terminate("end of test")


async def update(handle: PaymentHandle, action: str, input: OperatorInput) -> ActionAnswer:
    """An operator's action as the CLI sends it: the update of that name, answered or refused.

    By name: the SDK's typed form (``PaymentWorkflow.approve``) does not type-check for updates
    whose input is optional.
    """
    answer: ActionAnswer = await handle.execute_update(action, input, result_type=ActionAnswer)
    return answer


@contextlib.asynccontextmanager
async def payments(
    env: WorkflowEnvironment, vendor: FakeVendor | None = None, *, max_cached_workflows: int = 300
) -> AsyncIterator[Payments]:
    """A fresh task queue with fake workers, for one test."""
    task_queue = f"fast-{uuid.uuid4()}"
    vendor = vendor or FakeVendor()
    async with fake_workers(env.client, task_queue, vendor, max_cached_workflows=max_cached_workflows):
        harness = Payments(env, task_queue, vendor)
        try:
            yield harness
        finally:
            await harness.end_all()


# ---------------------------------------------------------------------- facts


def problem(status: int, title: str, detail: str | None = None, vendor: str = "Alvys") -> VendorProblem:
    return VendorProblem(vendor=vendor, status=status, title=title, detail=detail)


def recorded(
    paid: str | None = None,
    billable: str | None = None,
    *,
    proof: str = "answer",
    currency: str = "USD",
    fully_paid: bool | None = None,
    target_status: str | None = None,
    vendor_payment_id: str = "P-1",
) -> PostOutcome:
    """The vendor recorded the post, proven by its ``"answer"`` (Alvys's totals), to be proven by a
    ``"read_back"``, or by the vendor's ``"callback"`` (TransportOne).

    Built for whichever spelling :class:`PostOutcome` has: one ``proof`` field, or the two
    booleans ``confirmed`` / ``awaiting_callback`` of the histories recorded before it.
    """
    total_paid = Money.of(paid, currency) if paid is not None else None
    total_billable = Money.of(billable, currency) if billable is not None else None
    if fully_paid is None and total_paid is not None and total_billable is not None:
        fully_paid = total_paid >= total_billable
    if proof not in ("answer", "read_back", "callback"):
        raise ValueError(f"unknown proof {proof!r}")
    fact: dict[str, Any] = {
        "outcome": PostOutcomeKind.RECORDED,
        "vendor_payment_id": vendor_payment_id,
        "target_status": target_status,
        "total_paid": total_paid,
        "total_billable": total_billable,
        "fully_paid": fully_paid,
    }
    if "proof" in PostOutcome.model_fields:
        fact["proof"] = proof
    else:
        fact.update(confirmed=proof == "answer", awaiting_callback=proof == "callback")
    return PostOutcome.model_validate(fact)


def not_payable(target_status: str = "Delivered") -> PostOutcome:
    return PostOutcome(
        outcome=PostOutcomeKind.NOT_PAYABLE,
        target_status=target_status,
        problem=problem(400, "Load is not payable", f"Load status is {target_status}"),
    )


def post_not_found() -> PostOutcome:
    return PostOutcome(outcome=PostOutcomeKind.NOT_FOUND, problem=problem(404, "Load not found"))


def rejected(detail: str = "PaymentDate is in the future") -> PostOutcome:
    return PostOutcome(outcome=PostOutcomeKind.REJECTED, problem=problem(400, "Validation failed", detail))


def read_back(
    paid: str | None = None,
    billable: str | None = None,
    *,
    currency: str = "USD",
    confirmed: bool = True,
    fully_paid: bool | None = None,
    target_status: str | None = None,
    reason: str | None = None,
) -> Confirmation:
    """What ``confirm_payment`` read back (``confirmed=False``: the reference is not there)."""
    total_paid = Money.of(paid, currency) if paid is not None else None
    total_billable = Money.of(billable, currency) if billable is not None else None
    if fully_paid is None:
        fully_paid = bool(
            total_paid is not None and total_billable is not None and total_paid >= total_billable
        )
    return Confirmation(
        confirmed=confirmed,
        fully_paid=confirmed and fully_paid,
        target_status=target_status,
        total_paid=total_paid,
        total_billable=total_billable,
        vendor_payment_id="P-1" if confirmed else None,
        reason=reason,
    )


def payable(yes: bool, target_status: str | None = None) -> PayableCheck:
    return PayableCheck(payable=yes, target_status=target_status or ("Invoiced" if yes else "Delivered"))


def resolved(ids: TargetIds, remaining: Money | None = None) -> Resolution:
    return Resolution(ids=ids, found=True, remaining_balance=remaining)


def unresolved(ids: TargetIds, reason: str, candidates: Sequence[str] = ()) -> Resolution:
    return Resolution(ids=ids, found=False, reason=reason, candidates=list(candidates))


def unavailable() -> ApplicationError:
    """Transient vendor trouble, retried by Temporal (as activities/alvys.py raises a 503)."""
    return ApplicationError("Alvys 503: Service Unavailable", type="VendorUnavailable")


def callback(
    *,
    success: bool = True,
    applied: str | None = None,
    total: str | None = None,
    invoice_status: str | None = "PAID",
    genuine: bool = True,
    message: str | None = None,
) -> CallbackReport:
    """A TransportOne callback as the ingress relays it (with the proof the fake takes) or forged."""
    return CallbackReport(
        success=success,
        applied_amount=Decimal(applied) if applied is not None else None,
        total_amount=Decimal(total) if total is not None else None,
        invoice_status=invoice_status,
        message=message,
        proof=GENUINE_PROOF if genuine else "0" * 64,
    )
