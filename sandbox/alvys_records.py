"""The Alvys simulator's records: customers, payments, loads, trips, invoices, options, a validated payment.

Plain data: :class:`sandbox.alvys_sim.AlvysSandbox` holds them under its lock and writes them out
as Alvys's response bodies. Part of the Alvys simulator (see :mod:`sandbox.alvys`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sandbox.alvys_wire import ZERO, CustomerPaymentShape, InvoiceCase


@dataclass
class Customer:
    """A customer (the payer of its loads' invoices); ``invoicing_name`` is the name it is billed as."""

    id: str
    name: str
    company_number: str
    status: str
    type: str
    created_at: datetime
    invoicing_name: str | None = None
    invoicing_name_alias: str | None = None
    external_id: str | None = None
    payment_terms_days: int | None = None


@dataclass
class CustomerPayment:
    id: str
    load_number: str
    reference: str
    amount: Decimal
    currency: int
    payment_date: datetime
    invoice_number: str | None
    method: str | None
    check_number: str | None
    note: str | None
    recorded_at: datetime
    post_count: int = 1


@dataclass
class CarrierPayment:
    id: str
    trip_id: str
    reference: str
    amount: Decimal
    currency: int
    payment_date: datetime
    method: str | None
    check_number: str | None
    note: str | None
    recorded_at: datetime
    post_count: int = 1


@dataclass
class Load:
    id: str
    load_number: str
    order_number: str
    po_number: str | None
    status: str
    customer_id: str
    customer_name: str
    billable: Decimal
    currency: int
    created_at: datetime
    invoice_number: str | None = None
    is_deleted: bool = False
    paid_at: datetime | None = None
    updated_at: datetime | None = None
    payments: list[CustomerPayment] = field(default_factory=list)

    def total_paid(self) -> Decimal:
        return sum((p.amount for p in self.payments), ZERO)


@dataclass
class Trip:
    id: str
    trip_number: str
    load_number: str
    status: str
    carrier_id: str
    carrier_payable: Decimal
    currency: int
    trip_value: Decimal
    miles: Decimal
    is_deleted: bool = False
    carrier_paid_at: datetime | None = None
    updated_at: datetime | None = None
    payments: list[CarrierPayment] = field(default_factory=list)

    def total_paid(self) -> Decimal:
        return sum((p.amount for p in self.payments), ZERO)


@dataclass
class Invoice:
    id: str
    number: str
    load_numbers: list[str]
    status: str
    created_date: datetime
    invoiced_date: datetime | None
    due_date: datetime | None
    type: str = "Standard"


@dataclass
class AlvysOptions:
    """Switches for tests and demos; changeable through ``POST /_sandbox/alvys/options``."""

    customer_payment_shape: CustomerPaymentShape = "current"
    invoice_case: InvoiceCase = "pascal"
    token_ttl_seconds: float = 3600.0


@dataclass(frozen=True)
class PaymentIn:
    """A validated payment request (customer or carrier): ``target`` is the LoadNumber or TripId."""

    target: str
    amount: Decimal
    currency: int
    payment_date: datetime
    reference: str
    invoice_number: str | None
    method: str | None
    check_number: str | None
    note: str | None
