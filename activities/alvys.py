"""Alvys steps: resolve the load or trip, check it is payable, post, confirm.

This module turns Alvys answers into workflow facts (``models.steps``) and typed errors.
The classification, in one place (:func:`classify`):

=========================  ==================================================================
Alvys answer               what the payment does
=========================  ==================================================================
2xx                        a fact (recorded, found, payable ...)
400 "Load must be in ..."  ``not_payable``: WaitingForPayable, re-checked on a durable timer
404                        ``not_found``: NeedsReview with Alvys's problem details
other 4xx (400/409/422..)  ``rejected``: NeedsReview with Alvys's problem details, not retried
401/403                    the client refreshed the token once already; not retried here
                           (``VendorConfigurationError``): NeedsReview, fix the credentials
429                        retried after ``Retry-After`` (``next_retry_delay``; 60 s if absent)
408, 5xx, timeouts, resets retried with capped backoff (the workflow's retry policy)
2xx but unreadable         treated as recorded-but-unproven: confirmed by a read-back
lost answer                the retry re-posts with the same ``ReferenceNumber``; Alvys is
                           idempotent on it, so the payment is recorded once
=========================  ==================================================================
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from models.money import Money
from models.payment import PaymentInstruction, Target, TargetIds
from models.state import VendorProblem
from models.steps import (
    Confirmation,
    ConfirmRequest,
    PayableCheck,
    PostOutcome,
    PostOutcomeKind,
    PostRequest,
    Proof,
    Resolution,
    ResolveRequest,
)
from vendors.alvys import (
    AlvysClient,
    AlvysProblem,
    AlvysResponseError,
    CarrierPayment,
    CustomerPayment,
    Load,
    Trip,
)

_T = TypeVar("_T")
VENDOR = "Alvys"
#: When Alvys sends a 429 without Retry-After: its published block lasts 3 minutes, answers say 60 s.
DEFAULT_RETRY_AFTER = timedelta(seconds=60)


def problem_of(error: AlvysProblem) -> VendorProblem:
    return VendorProblem(
        vendor=VENDOR, status=error.status, title=error.title, detail=error.detail, errors=error.errors
    )


def classify(error: AlvysProblem) -> PostOutcomeKind:
    """A non-2xx Alvys answer → the payment's next move; raises for what Temporal should retry."""
    if error.status == 429:
        delay = timedelta(seconds=error.retry_after) if error.retry_after else DEFAULT_RETRY_AFTER
        raise ApplicationError(
            f"Alvys rate limit on {error.endpoint}: waiting {delay.total_seconds():g}s as it asks",
            type="VendorRateLimited",
            next_retry_delay=delay,
            # Expected trouble the retry policy handles: logged at DEBUG, no failure metric.
            category=ApplicationErrorCategory.BENIGN,
        )
    if error.status >= 500 or error.status == 408:
        raise ApplicationError(str(error), type="VendorUnavailable", category=ApplicationErrorCategory.BENIGN)
    if error.is_auth_failure:
        raise ApplicationError(str(error), type="VendorConfigurationError", non_retryable=True)
    if error.is_not_payable:
        return PostOutcomeKind.NOT_PAYABLE
    if error.is_not_found:
        return PostOutcomeKind.NOT_FOUND
    return PostOutcomeKind.REJECTED


async def classified_read(call: Callable[[], Awaitable[_T]]) -> _T:
    """A read call; every non-2xx is classified, and a 4xx on a read is raised as a fact-less error."""
    try:
        return await call()
    except AlvysProblem as error:
        classify(error)  # raises for 429/5xx/401/403
        raise


def load_remaining(load: Load) -> Money | None:
    """What is still open on a load, where its read tells it: invoiced (else the customer rate)
    less what was paid; None when the read gives no billable amount."""
    billable = load.invoiced_amount or load.customer_rate
    if billable is None:
        return None
    paid = load.total_paid
    if paid is None or paid.currency != billable.currency:
        return billable
    return billable - paid


class AlvysSteps:
    """The Alvys side of each payment step, around one shared :class:`AlvysClient`."""

    def __init__(
        self, client: AlvysClient, *, cache_seconds: float = 900, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._resolved: dict[tuple[str, TargetIds], tuple[float, Resolution]] = {}

    # -- validate: find the record ------------------------------------------------------

    async def resolve_target(self, request: ResolveRequest) -> Resolution:
        """The target record; a shipment (PO, BOL, ...) resolved in the last 15 minutes costs no call.

        Why a cache: a MyCarrier event with several ``Payments[]`` is several payments on one
        shipment, and each lookup spends the scarce loads/trips search budget (10 per minute).
        Only a found, unambiguous target is remembered, per worker process.
        """
        instruction = request.instruction
        key = (instruction.target.value, instruction.ids)
        cached = self._resolved.get(key)
        if cached is not None and self._clock() < cached[0]:
            return cached[1]
        if instruction.target is Target.ALVYS_CUSTOMER_PAYMENT:
            resolution = await self._resolve_load(instruction)
        else:
            resolution = await self._resolve_trip(instruction)
        if resolution.found and resolution.remaining_balance is None:
            # (a balance changes with every payment: resolutions that carry one are not kept)
            self._resolved[key] = (self._clock() + self._cache_seconds, resolution)
        return resolution

    async def _resolve_load(self, instruction: PaymentInstruction) -> Resolution:
        ids = instruction.ids
        if ids.load_number:
            return Resolution(ids=ids, found=True)
        if ids.invoice_number:
            try:
                invoice = await classified_read(
                    lambda: self._client.get_invoice(invoice_number=ids.invoice_number)
                )
            except AlvysProblem as error:
                return Resolution(
                    ids=ids,
                    found=False,
                    reason=f"invoice {ids.invoice_number} not found in Alvys",
                    problem=problem_of(error),
                )
            if len(invoice.load_numbers) != 1:
                return Resolution(
                    ids=ids,
                    found=False,
                    reason=f"invoice {ids.invoice_number} covers {len(invoice.load_numbers)} loads; "
                    "say which load this payment is for",
                    candidates=invoice.load_numbers,
                )
            return Resolution(
                ids=ids.model_copy(update={"load_number": invoice.load_numbers[0]}),
                found=True,
                remaining_balance=invoice.remaining_balance,
                target_status=invoice.status,
            )
        loads = await self._loads_by_po(instruction)
        if len(loads) != 1:
            return self._not_one("load", f"PO {ids.po_number}", [x.load_number for x in loads], ids)
        return Resolution(
            ids=ids.model_copy(update={"load_number": loads[0].load_number}),
            found=True,
            target_status=loads[0].status,
            remaining_balance=load_remaining(loads[0]),
        )

    async def _resolve_trip(self, instruction: PaymentInstruction) -> Resolution:
        ids = instruction.ids
        if ids.trip_id:
            return Resolution(ids=ids, found=True)
        trips: list[Trip]
        if ids.trip_number:
            trips = await classified_read(
                lambda: self._client.search_trips(trip_numbers=[ids.trip_number or ""])
            )
            where = f"trip number {ids.trip_number}"
        else:
            load_numbers = (
                [ids.load_number]
                if ids.load_number
                else [x.load_number for x in await self._loads_by_po(instruction)]
            )
            where = f"load {ids.load_number}" if ids.load_number else self._po_label(instruction)
            if len(load_numbers) != 1:
                return self._not_one("load", where, load_numbers, ids)
            trips = await classified_read(lambda: self._client.search_trips(load_numbers=load_numbers))
            if not ids.load_number:
                where = f"load {load_numbers[0]} (of {where})"
            ids = ids.model_copy(update={"load_number": load_numbers[0]})
        if len(trips) != 1:
            return self._not_one("trip", where, [f"{t.trip_id} ({t.trip_number})" for t in trips], ids)
        trip = trips[0]
        return Resolution(
            ids=ids.model_copy(update={"trip_id": trip.trip_id, "trip_number": trip.trip_number}),
            found=True,
            target_status=trip.status,
        )

    async def _loads_by_po(self, instruction: PaymentInstruction) -> list[Load]:
        """Loads whose PO is the shipment's PO, quote reference or BOL: one search, one call.

        One call (the search takes a list) keeps this activity at one request per endpoint,
        which is what the rate-limited task queues count on (``models.queues``).
        """
        ids = instruction.ids
        numbers = list(dict.fromkeys(n for n in (ids.po_number, ids.quote_reference, ids.bol_number) if n))
        if not numbers:
            return []
        loads = await classified_read(lambda: self._client.search_loads(po_numbers=numbers))
        # Prefer matches on the PO itself, then the quote reference, then the BOL.
        for number in numbers:
            preferred = [x for x in loads if x.po_number == number]
            if preferred:
                return preferred
        return loads

    @staticmethod
    def _po_label(instruction: PaymentInstruction) -> str:
        ids = instruction.ids
        return f"PO {ids.po_number or ids.quote_reference or ids.bol_number}"

    @staticmethod
    def _not_one(kind: str, where: str, candidates: list[str], ids: TargetIds) -> Resolution:
        reason = f"no {kind} found for {where}" if not candidates else f"several {kind}s match {where}"
        return Resolution(ids=ids, found=False, reason=reason, candidates=candidates)

    # -- waiting: is the load payable yet ------------------------------------------------

    async def check_payable(self, request: ResolveRequest) -> PayableCheck:
        ids = request.instruction.ids
        if request.instruction.target is not Target.ALVYS_CUSTOMER_PAYMENT or not ids.load_number:
            return PayableCheck(payable=True)
        loads = await classified_read(lambda: self._client.search_loads(load_numbers=[ids.load_number or ""]))
        load = next((x for x in loads if x.load_number == ids.load_number), None)
        if load is None:
            return PayableCheck(payable=False, found=False, reason=f"load {ids.load_number} not found")
        return PayableCheck(
            payable=load.accepts_customer_payments,
            target_status=load.status,
            remaining_balance=load_remaining(load),
        )

    # -- post: the one write --------------------------------------------------------------

    async def post_payment(self, request: PostRequest) -> PostOutcome:
        instruction = request.instruction
        try:
            if instruction.target is Target.ALVYS_CUSTOMER_PAYMENT:
                return await self._post_customer(instruction)
            return await self._post_carrier(instruction)
        except AlvysResponseError:
            # Alvys answered 2xx (so it most likely recorded the payment) but the answer could
            # not be read: not a failure, an unproven success. Confirm by reading it back.
            return PostOutcome(outcome=PostOutcomeKind.RECORDED, proof=Proof.READ_BACK)
        except AlvysProblem as error:
            kind = classify(error)
            status = None
            if kind is PostOutcomeKind.NOT_PAYABLE:
                status = "not payable"
            return PostOutcome(outcome=kind, problem=problem_of(error), target_status=status)

    async def _post_customer(self, instruction: PaymentInstruction) -> PostOutcome:
        answer = await self._client.record_customer_payment(
            CustomerPayment(
                load_number=instruction.ids.load_number or "",
                amount=instruction.amount,
                payment_date=instruction.payment_date,
                reference_number=instruction.reference_number,
                invoice_number=instruction.ids.invoice_number,
                payment_method=instruction.method,
                check_number=instruction.check_number,
                note=instruction.note,
            )
        )
        ours = answer.find(instruction.reference_number)
        has_totals = answer.total_paid is not None and answer.total_billable is not None
        return PostOutcome(
            outcome=PostOutcomeKind.RECORDED,
            vendor_payment_id=answer.payment_id or (ours.id if ours else None),
            target_status=answer.load_status,
            total_paid=answer.total_paid,
            total_billable=answer.total_billable,
            # The current response carries the totals: that is the confirmation, no GET needed.
            proof=Proof.ANSWER if has_totals else Proof.READ_BACK,
            fully_paid=_covers(answer.total_paid, answer.total_billable) if has_totals else None,
        )

    async def _post_carrier(self, instruction: PaymentInstruction) -> PostOutcome:
        answer = await self._client.record_carrier_payment(
            CarrierPayment(
                trip_id=instruction.ids.trip_id or "",
                amount=instruction.amount,
                payment_date=instruction.payment_date,
                reference_number=instruction.reference_number,
                payment_method=instruction.method,
                check_number=instruction.check_number,
                note=instruction.note,
            )
        )
        ours = answer.find(instruction.reference_number)
        return PostOutcome(
            outcome=PostOutcomeKind.RECORDED,
            vendor_payment_id=ours.id if ours else None,
            target_status=answer.trip_status,
            # Our reference among the trip's CarrierPayments proves it; Completed means covered.
            proof=Proof.ANSWER if ours is not None else Proof.READ_BACK,
            fully_paid=answer.trip_status == "Completed",
        )

    # -- confirm: read back where the post's answer did not say enough -------------------

    async def confirm_payment(self, request: ConfirmRequest) -> Confirmation:
        instruction, post = request.instruction, request.post
        reference = instruction.reference_number
        if instruction.target is Target.ALVYS_CARRIER_PAYMENT:
            # Alvys publishes no read of a trip's payments: the post's answer was the proof,
            # and it did not list ours. A person must look (the post itself is idempotent).
            return Confirmation(
                confirmed=False,
                target_status=post.target_status,
                reason=f"Alvys's answer did not list reference {reference} among the trip's payments",
            )
        if instruction.ids.invoice_number:
            invoice = await classified_read(
                lambda: self._client.get_invoice(invoice_number=instruction.ids.invoice_number)
            )
            ours = invoice.find(reference)
            confirmed = ours is not None or reference in invoice.payment_references
            return Confirmation(
                confirmed=confirmed,
                fully_paid=invoice.remaining_balance is not None and invoice.remaining_balance.amount <= 0,
                target_status=invoice.status,
                total_paid=invoice.amount_paid,
                total_billable=invoice.total,
                vendor_payment_id=post.vendor_payment_id or (ours.id if ours else None),
                reason=None if confirmed else f"invoice {invoice.number} does not list reference {reference}",
            )
        loads = await classified_read(
            lambda: self._client.search_loads(load_numbers=[instruction.ids.load_number or ""])
        )
        load = next((x for x in loads if x.load_number == instruction.ids.load_number), None)
        if load is None:
            return Confirmation(confirmed=False, reason=f"load {instruction.ids.load_number} not found")
        ours = next((p for p in load.payments if p.reference_number == reference), None)
        billable = load.invoiced_amount or load.customer_rate
        return Confirmation(
            confirmed=ours is not None or post.vendor_payment_id is not None,
            fully_paid=_covers(load.total_paid, billable),
            target_status=load.status,
            total_paid=load.total_paid,
            total_billable=billable,
            vendor_payment_id=post.vendor_payment_id or (ours.id if ours else None),
            reason=None if ours or post.vendor_payment_id else f"load does not list reference {reference}",
        )


def _covers(paid: Money | None, billable: Money | None) -> bool:
    """Alvys's rule for a paid load: TotalPaid >= TotalBillable."""
    if paid is None or billable is None or paid.currency != billable.currency:
        return False
    return paid.amount >= billable.amount
