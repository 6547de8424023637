"""A deposit as banks, lockboxes and factors send it: one amount in, what it says it pays.

Every bank or factor file format (BAI2, X12 820, ISO 20022 camt.054, a factor's payment
report) is parsed into these, and everything after parsing (matching invoices, applying
the money, starting payments) works on them only, whatever the format.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from models.money import Money


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
    free_text: str = ""
    #: The bank's type code and its meaning (BAI2 ``16`` type code: lockbox, ACH, wire ...).
    kind: str | None = None
    where: str = ""
