"""Payment instructions for tests, one builder per route (no server needed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from models.money import Money
from models.payment import PaymentInstruction, Source, Target, TargetIds


def uid() -> str:
    return uuid.uuid4().hex[:8].upper()


def customer(load: str, amount: str, ref: str | None = None, currency: str = "USD") -> PaymentInstruction:
    """An Alvys customer payment on ``load`` ."""
    ref = ref or f"CHK-{uid()}"
    return PaymentInstruction(
        source=Source.ALVYS_CUSTOMER,
        business_key=f"{load}-{ref}",
        target=Target.ALVYS_CUSTOMER_PAYMENT,
        ids=TargetIds(load_number=load),
        amount=Money.of(amount, currency),
        payment_date=datetime(2026, 11, 20, tzinfo=UTC),
        method="Check",
        check_number="1001",
        reference_number=ref,
    )


def carrier(trip: str, amount: str, ref: str | None = None) -> PaymentInstruction:
    """An Alvys carrier payment on ``trip``."""
    ref = ref or f"ACH-{uid()}"
    return PaymentInstruction(
        source=Source.ALVYS_CARRIER,
        business_key=f"{trip}-{ref}",
        target=Target.ALVYS_CARRIER_PAYMENT,
        ids=TargetIds(trip_id=trip),
        amount=Money.of(amount),
        payment_date=datetime(2026, 11, 20, tzinfo=UTC),
        method="ACH",
        reference_number=ref,
    )


def transportone(invoice: str, amount: str, ref: str | None = None) -> PaymentInstruction:
    """A TransportOne invoice payment (INR, the tenant's currency), confirmed by callback."""
    ref = ref or f"UTR-{uid()}"
    return PaymentInstruction(
        source=Source.TRANSPORTONE,
        business_key=f"{invoice}-{ref}",
        source_event_id=ref,
        target=Target.TRANSPORTONE_PAYMENT,
        ids=TargetIds(invoice_number=invoice),
        amount=Money.of(amount, "INR"),
        payment_date=datetime(2026, 11, 20, tzinfo=UTC),
        reference_number=ref,
    )
