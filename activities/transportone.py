"""TransportOne steps: the invoice is given, the post is idempotent, the callback confirms.

Classification of TransportOne answers (one place, like :mod:`activities.alvys`):

=========================  ==================================================================
TransportOne answer        what the payment does
=========================  ==================================================================
2xx ``success: true``      recorded; confirmation waits for TransportOne's callback
404                        ``not_found`` (unknown invoice): NeedsReview with the message
other 4xx (400/409/422..)  ``rejected``: NeedsReview; a 409 means this request id was used
                           with another body (someone changed the payment after posting)
401/403                    the client refreshed the token once already: NeedsReview, fix the
                           credentials (``VendorConfigurationError``)
429                        retried after ``Retry-After``
408, 5xx, timeouts, resets retried with capped backoff; every retry carries the same
                           ``x-coreos-request-id`` (uuid5 of the business key), so
                           TransportOne records the payment once
2xx but unreadable         treated as recorded; the callback still decides
=========================  ==================================================================

``paymentType``: the instruction's method when it is one TransportOne knows (``cash``,
``dn``, ``bank transfer``), else ``cash`` (money received, as opposed to a debit note).

``paymentId`` ("unique transaction or reference id") is the sender's own payment id where the
payment came from TransportOne's own payload, else the payment's business key (a remittance
file's ``reference``): never where in a file a line stood (``line 5`` of every file would be
one id).
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from models.payment import PaymentInstruction, Source
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
from vendors.transportone import (
    TransportOneClient,
    TransportOnePayment,
    TransportOneProblem,
    TransportOneResponseError,
)

VENDOR = "TransportOne"
PAYMENT_TYPES = ("cash", "dn", "bank transfer")
DEFAULT_RETRY_AFTER = timedelta(seconds=30)


def classify(error: TransportOneProblem) -> PostOutcomeKind:
    """A non-2xx answer → the payment's next move; raises for what Temporal should retry."""
    status = error.effective_status
    if status == 429:
        delay = timedelta(seconds=error.retry_after) if error.retry_after else DEFAULT_RETRY_AFTER
        raise ApplicationError(
            f"TransportOne rate limit: waiting {delay.total_seconds():g}s",
            type="VendorRateLimited",
            next_retry_delay=delay,
            # Expected trouble the retry policy handles: logged at DEBUG, no failure metric.
            category=ApplicationErrorCategory.BENIGN,
        )
    if status >= 500 or status == 408:
        raise ApplicationError(str(error), type="VendorUnavailable", category=ApplicationErrorCategory.BENIGN)
    if error.is_auth_failure:
        raise ApplicationError(str(error), type="VendorConfigurationError", non_retryable=True)
    if error.is_not_found:
        return PostOutcomeKind.NOT_FOUND
    return PostOutcomeKind.REJECTED


def callback_url_for(base: str | None, workflow_id: str) -> str | None:
    """The callback URL for one payment: it names the payment's workflow (``?payment=``), so the
    ingress relays the callback to it whatever route started it (a remittance line included)."""
    if not base:
        return None
    return f"{base}{'&' if '?' in base else '?'}{urlencode({'payment': workflow_id})}"


def payment_of(instruction: PaymentInstruction) -> TransportOnePayment:
    """The payment TransportOne records for ``instruction`` (see the module's ``paymentId``)."""
    method = (instruction.method or "").strip().lower()
    own_id = instruction.source is Source.TRANSPORTONE and instruction.source_event_id
    return TransportOnePayment(
        payment_id=own_id or instruction.business_key,
        invoice_number=instruction.ids.invoice_number or "",
        payment_type=method if method in PAYMENT_TYPES else "cash",
        total_amount=instruction.invoice_total or instruction.amount,
        applied_amount=instruction.amount,
        payment_date=instruction.payment_date,
        reference_number=instruction.reference_number,
    )


class TransportOneSteps:
    """The TransportOne side of each payment step."""

    def __init__(self, client: TransportOneClient, callback_url: str | None) -> None:
        self._client = client
        self._callback_url = callback_url

    async def resolve_target(self, request: ResolveRequest) -> Resolution:
        return Resolution(ids=request.instruction.ids, found=bool(request.instruction.ids.invoice_number))

    async def check_payable(self, request: ResolveRequest) -> PayableCheck:
        return PayableCheck(payable=True)

    async def post_payment(self, request: PostRequest) -> PostOutcome:
        instruction = request.instruction
        payment = payment_of(instruction)
        # The payment's own workflow id (not one re-derived from the instruction): the request id
        # must never change for a payment in flight, and the callback must find this workflow.
        workflow_id = activity.info().workflow_id or instruction.workflow_id
        try:
            await self._client.record_payments(
                [payment],
                request_id=TransportOneClient.request_id_for(workflow_id),
                callback_url=callback_url_for(self._callback_url, workflow_id),
            )
        except TransportOneResponseError:
            pass  # a 2xx we could not read: recorded as far as we can tell; the callback decides
        except TransportOneProblem as error:
            kind = classify(error)
            problem = VendorProblem(vendor=VENDOR, status=error.effective_status, title=error.message)
            return PostOutcome(outcome=kind, problem=problem)
        return PostOutcome(
            outcome=PostOutcomeKind.RECORDED,
            vendor_payment_id=payment.payment_id,
            proof=Proof.CALLBACK,
        )

    async def confirm_payment(self, request: ConfirmRequest) -> Confirmation:
        # TransportOne publishes no read of a payment: its callback is the confirmation.
        return Confirmation(confirmed=False, reason="TransportOne confirms by callback only")
