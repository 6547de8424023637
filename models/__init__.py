"""freightpay's domain models: what a payment is, independent of Temporal, HTTP and vendors.

Everything that crosses a workflow boundary (inputs, results, signals, updates, queries)
is one of these pydantic models, so the pydantic data converter can carry it exactly:
``Decimal`` travels as a string, never as a float.
"""

from models.money import CURRENCIES, Money, MoneyError, currency_from_numeric, currency_to_numeric
from models.payment import (
    PaymentInstruction,
    Source,
    Target,
    TargetIds,
    workflow_id_for,
)
from models.state import (
    ApproveInput,
    CancelInput,
    OperatorAction,
    PaymentResult,
    PaymentState,
    PaymentStatus,
    ResolveInput,
    RetryInput,
    StepRecord,
    VendorAnswer,
)

__all__ = [
    "CURRENCIES",
    "ApproveInput",
    "CancelInput",
    "Money",
    "MoneyError",
    "OperatorAction",
    "PaymentInstruction",
    "PaymentResult",
    "PaymentState",
    "PaymentStatus",
    "ResolveInput",
    "RetryInput",
    "Source",
    "StepRecord",
    "Target",
    "TargetIds",
    "VendorAnswer",
    "currency_from_numeric",
    "currency_to_numeric",
    "workflow_id_for",
]
