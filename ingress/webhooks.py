"""Vendors' webhooks: MyCarrier's ``invoice.payment`` (``X-Webhook-Secret``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from ingress.deps import JsonBody, StartsDep, require_mycarrier_secret
from ingress.payments import accept
from ingress.problems import STARTED_EXAMPLE, json_body_doc
from intake import mycarrier as mycarrier_intake

router = APIRouter(dependencies=[Depends(require_mycarrier_secret)], tags=["webhooks"])


@router.post(
    "/v1/webhooks/mycarrier",
    status_code=202,
    openapi_extra=json_body_doc(mycarrier_intake.InvoicePaymentEvent),
    responses=STARTED_EXAMPLE,
)
async def mycarrier_webhook(raw: JsonBody, starts: StartsDep) -> JSONResponse:
    """MyCarrier's ``invoice.payment`` webhook: one payment per ``Payments[]`` entry."""
    return await accept("mycarrier", raw, starts)
