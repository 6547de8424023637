"""A deposit as banks, lockboxes and factors send it: one amount in, what it says it pays.

Every bank or factor file format (BAI2, X12 820, ISO 20022 camt.054, a factor's payment
report) is parsed into these, and everything after parsing (matching invoices, applying
the money, starting payments) works on them only, whatever the format.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from models.money import Money
from models.state import OperatorAction
from models.steps import PaymentPolicy


class FileFormat(StrEnum):
    """The ``?format=`` values of ``POST /v1/remittances`` and ``starter.py remittance --format``."""

    CSV = "csv"  # freightpay's own remittance CSV: one line, one payment with its target
    BAI2 = "bai2"
    X12_820 = "x12-820"
    CAMT054 = "camt054"
    APEX = "apex"  # a factor's payment report (Apex Capital's columns)


class Adjustment(BaseModel):
    """Why a line pays less (or more) than its invoice: an X12 ``ADX`` (amount and reason code)."""

    model_config = ConfigDict(frozen=True)

    amount: Money
    reason_code: str | None = None
    text: str | None = None


class RemittanceLine(BaseModel):
    """One invoice (or load) the payer says this deposit pays, with what it pays.

    ``reference`` is the number as the payer wrote it; it may be an invoice number or a load
    number (factor reports hold either), which the matching resolves.
    """

    model_config = ConfigDict(frozen=True)

    reference: str
    amount_paid: Money
    #: The invoice's total as the payer sees it, where the file says (X12 ``RMR04``, camt ``DuePyblAmt``).
    invoice_amount: Money | None = None
    adjustments: tuple[Adjustment, ...] = ()
    #: Where in the file it came from (``line 12``, ``RMR 3 of BPR 1``), for error messages.
    where: str = ""


class Deposit(BaseModel):
    """One credit to the company's account, and what it says it pays.

    ``key`` is the deposit's own bank or trace reference (BAI2 bank reference / customer
    reference, X12 ``TRN02``, camt ``AcctSvcrRef`` / ``EndToEndId``, the factor's check number),
    documented per format; with ``source`` it makes the deposit's workflow id, so the same
    deposit in two files is one deposit. ``lines`` are explicit references with amounts;
    ``free_text`` holds what the bank printed for a person (BAI2 ``88`` records, camt ``Ustrd``),
    searched for invoice, load and PO numbers; ``payer`` is the name the bank printed.
    """

    model_config = ConfigDict(frozen=True)

    source: str = Field(description="the format and sender, e.g. bai2, x12-820, camt054, apex")
    key: str
    amount: Money
    value_date: date | None = None
    payer: str | None = None
    #: The check, trace or end-to-end id: the vendor's idempotency reference for each application.
    reference: str
    lines: tuple[RemittanceLine, ...] = ()
    #: Adjustments of the whole deposit rather than of one line (an X12 ``ADX`` before any ``RMR``,
    #: e.g. a quick-pay fee): what the lines pay plus these is at most ``amount``.
    adjustments: tuple[Adjustment, ...] = ()
    free_text: str = ""
    #: The bank's type code and its meaning (BAI2 ``16`` type code: lockbox, ACH, wire ...).
    kind: str | None = None
    where: str = ""


# -- what the deposit's activities are asked and answer (the vendor's facts) -------------------


class KnownTarget(BaseModel):
    """What the vendor knows under a reference: the load a payment is posted to, and what is open."""

    model_config = ConfigDict(frozen=True)

    reference: str
    load_number: str
    invoice_number: str | None = None
    open_balance: Money | None = None
    customer_id: str | None = None


class FindLoads(BaseModel):
    """``find_loads``: one ``POST /loads/search`` by load numbers or by PO numbers (not both)."""

    load_numbers: list[str] = Field(default_factory=list)
    po_numbers: list[str] = Field(default_factory=list)
    currency: str = "USD"


class FindInvoice(BaseModel):
    """``find_invoice``: one ``GET /invoices?invoiceNumber=`` (5 a minute: the last resort)."""

    invoice_number: str
    currency: str = "USD"


class FindCustomer(BaseModel):
    """``find_customer``: the payer's Alvys customer, from the cached customer directory."""

    payer: str


class CustomerMatch(BaseModel):
    customer_id: str | None = None
    name: str | None = None
    #: Why there is none (no such name, several customers with it).
    reason: str | None = None
    candidates: list[str] = Field(default_factory=list)


class OpenInvoicesRequest(BaseModel):
    """``open_invoices``: one page of ``POST /invoices/search`` by ``CustomerId``, open ones only."""

    customer_id: str
    #: 0-based, as Alvys's paged searches are.
    page: int = 0
    currency: str = "USD"


class Found(BaseModel):
    """What a lookup found, by the reference it was asked for (a load, PO or invoice number)."""

    targets: list[KnownTarget] = Field(default_factory=list)
    #: For paged searches: whether another page follows.
    more: bool = False


# -- the deposit workflow's state, inputs and operator actions ----------------------------------


class DepositStatus(StrEnum):
    """The ``DepositStatus`` search attribute's values."""

    APPLYING = "Applying"
    APPLIED = "Applied"
    #: Cash no rule could apply waits for a person (``apply`` or ``resolve``).
    UNAPPLIED = "Unapplied"
    RESOLVED = "Resolved"


class DepositInput(BaseModel):
    """The deposit workflow's one input: the deposit, the payments' policy, the file it came in."""

    deposit: Deposit
    policy: PaymentPolicy = Field(default_factory=PaymentPolicy)
    remittance_id: str | None = None


class AppliedPayment(BaseModel):
    """One application and the payment workflow that records it."""

    reference: str
    load_number: str | None = None
    invoice_number: str | None = None
    amount: Money
    workflow_id: str
    payment_status: str = "Received"
    reason: str | None = None
    strategy: str


class UnmatchedCash(BaseModel):
    """Money of a deposit that matched nothing: it waits, unapplied, for a person."""

    model_config = ConfigDict(frozen=True)

    reference: str | None = None
    amount: Money
    reason: str
    candidates: list[str] = Field(default_factory=list)


class ApplyInput(BaseModel):
    """``apply``: put unapplied cash on an invoice or a load (refused beyond what is unapplied)."""

    invoice_number: str | None = None
    load_number: str | None = None
    amount: Decimal
    reason: str | None = None
    operator: str | None = None


class ResolveDepositInput(BaseModel):
    """``resolve``: the remainder was handled outside freightpay (refunded, kept on account)."""

    reason: str | None = None
    operator: str | None = None


class DepositState(BaseModel):
    """What the deposit's ``state`` query and its result tell."""

    deposit_id: str
    status: DepositStatus
    deposit: Deposit
    remittance_id: str | None = None
    strategy: str | None = None
    applications: list[AppliedPayment] = Field(default_factory=list)
    unmatched: list[UnmatchedCash] = Field(default_factory=list)
    actions: list[OperatorAction] = Field(default_factory=list)
    resolution: str | None = None

    @property
    def applied(self) -> Money:
        total = Money.of("0", self.deposit.amount.currency)
        for application in self.applications:
            total = total + application.amount
        return total

    @property
    def unapplied(self) -> Money:
        return self.deposit.amount - self.applied
