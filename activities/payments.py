"""The payment activities the workflow calls, routed to the vendor that records the payment.

The workflow knows four names: ``resolve_target``, ``check_payable``, ``post_payment`` and
``confirm_payment``. Which vendor serves them is the instruction's ``target``; the vendor
modules (``activities.alvys``, ...) do the talking and the classifying of answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.pacing import Pacer
from models.payment import PaymentInstruction
from models.queues import vendor_queue
from models.steps import (
    Confirmation,
    ConfirmRequest,
    PayableCheck,
    PostOutcome,
    PostRequest,
    Resolution,
    ResolveRequest,
)


class VendorSteps(Protocol):
    """What a vendor module provides for each step of a payment."""

    async def resolve_target(self, request: ResolveRequest) -> Resolution: ...

    async def check_payable(self, request: ResolveRequest) -> PayableCheck: ...

    async def post_payment(self, request: PostRequest) -> PostOutcome: ...

    async def confirm_payment(self, request: ConfirmRequest) -> Confirmation: ...


class PaymentActivities:
    """Activities as methods of one object that holds the vendor clients (one per worker)."""

    def __init__(self, vendors: Mapping[str, VendorSteps], pacer: Pacer | None = None) -> None:
        self._vendors = dict(vendors)
        self._pacer = pacer or Pacer({})

    async def _paced(self, instruction: PaymentInstruction, *, writes: bool = False) -> VendorSteps:
        """The vendor's steps, once this worker's pacing of the call's vendor queue allows a call.

        Paced by the vendor queue the call belongs to, not the task queue it arrived on: a step
        run on the payment's own queue (``PaymentPolicy.inline_queues``, a vendor without a
        budget) is still paced here if this worker was given a budget for it after all.
        """
        await self._pacer.wait(vendor_queue(instruction.target, writes).value)
        return self._vendor(instruction)

    def _vendor(self, instruction: PaymentInstruction) -> VendorSteps:
        name = instruction.target.vendor
        try:
            return self._vendors[name]
        except KeyError:
            raise ApplicationError(
                f"this worker has no {name} client configured",
                type="VendorConfigurationError",
                non_retryable=True,
            ) from None

    @activity.defn(name="resolve_target")
    async def resolve_target(self, request: ResolveRequest) -> Resolution:
        """Find the vendor record (load, trip, invoice) the payment is for."""
        result = await (await self._paced(request.instruction)).resolve_target(request)
        return result.model_copy(update={"attempt": activity.info().attempt})

    @activity.defn(name="check_payable")
    async def check_payable(self, request: ResolveRequest) -> PayableCheck:
        """Read whether the target accepts payments yet (a WaitingForPayable re-check)."""
        result = await (await self._paced(request.instruction)).check_payable(request)
        return result.model_copy(update={"attempt": activity.info().attempt})

    @activity.defn(name="post_payment")
    async def post_payment(self, request: PostRequest) -> PostOutcome:
        """Record the payment: the one vendor write, idempotent on the business reference."""
        result = await (await self._paced(request.instruction, writes=True)).post_payment(request)
        return result.model_copy(update={"attempt": activity.info().attempt})

    @activity.defn(name="confirm_payment")
    async def confirm_payment(self, request: ConfirmRequest) -> Confirmation:
        """Read the payment back where the post's own answer did not prove it."""
        result = await (await self._paced(request.instruction)).confirm_payment(request)
        return result.model_copy(update={"attempt": activity.info().attempt})

    def all(self) -> list[Callable[..., Any]]:
        """The activity callables, for a worker."""
        return [self.resolve_target, self.check_payable, self.post_payment, self.confirm_payment]
