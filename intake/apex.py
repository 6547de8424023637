"""A factor's payment report (Apex Capital's columns) → one :class:`~models.deposit.Deposit` per check.

The report is a CSV (UTF-8, comma-separated) whose header names the columns
``Check, PostDate, Debtor, Inv., Amount, Type`` (in any order, matched without regard to case or
surrounding spaces; ``Inv`` is taken for ``Inv.``; other columns are ignored). Each row is one
invoice a debtor's check paid:

===========  ==================================================================================
column       meaning
===========  ==================================================================================
Check        the check (or payment) number: the deposit's ``key`` and ``reference``
PostDate     the day the factor posted it, ``MM/DD/YYYY`` (``M/D/YYYY`` too): ``value_date``
Debtor       who paid (the broker or shipper): ``payer``
Inv.         the invoice number *or* the load number the factor knows the invoice by: a line's
             ``reference``; the matching resolves either
Amount       what this check paid on it, a decimal in USD (``$`` and thousands commas allowed),
             greater than zero
Type         the payment type as the factor reports it; the deposit's ``kind`` is
             ``factor: <types>``
===========  ==================================================================================

The rows of one check make one deposit: its amount is the sum of its rows (so the lines add
up to it exactly), each row a :class:`~models.deposit.RemittanceLine`. Rows of one check must
agree on PostDate and Debtor. Every problem is refused, naming ``line N, column C``. Apex
reports in US dollars; a negative or zero row (a chargeback, a reserve release) is not a
payment and is refused, so that a person decides on it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from intake.deposits import Problems, decode_text, money_of
from models.deposit import Deposit, FileFormat, RemittanceLine
from models.money import Money

COLUMNS = ("Check", "PostDate", "Debtor", "Inv.", "Amount", "Type")
ALIASES = {"inv": "Inv."}
CURRENCY = "USD"
MAX_LINES = 100_000
_AMOUNT = re.compile(r"^\$?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")


@dataclass
class _Check:
    number: str
    line: int
    post_date: date | None
    debtor: str
    lines: list[RemittanceLine] = field(default_factory=list)
    types: list[str] = field(default_factory=list)


def _amount(text: str, where: str, problems: Problems) -> Money | None:
    value = text.strip()
    if value.startswith(("-", "(")):
        problems.add(where, f"{text!r} is not greater than zero; a chargeback or reserve is not a payment")
        return None
    if not _AMOUNT.match(value):
        problems.add(where, f"{text!r} is not an amount (like 1250.00 or $1,250.00)")
        return None
    money = money_of(Decimal(value.lstrip("$").replace(",", "")), CURRENCY, where, problems)
    if money is not None and not money.is_positive():
        problems.add(where, "must be greater than zero")
        return None
    return money


def _date(text: str, where: str, problems: Problems) -> date | None:
    try:
        if not re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", text.strip()):
            raise ValueError
        return datetime.strptime(text.strip(), "%m/%d/%Y").date()
    except ValueError:
        problems.add(where, f"{text!r} is not a date (MM/DD/YYYY)")
        return None


def parse(raw: bytes) -> list[Deposit]:
    """A whole Apex payment report → one deposit per check, or an IntakeError listing every problem."""
    text = decode_text(raw, FileFormat.APEX)
    problems = Problems()
    reader = csv.reader(io.StringIO(text, newline=""))
    header_row = next(reader, None)
    if not header_row:
        problems.add("line 1", "is empty; the first line names the columns " + ", ".join(COLUMNS))
        problems.raise_if_any(FileFormat.APEX)
        return []
    names = [cell.strip() for cell in header_row]
    by_lower = {c.lower(): c for c in COLUMNS} | ALIASES
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        column = by_lower.get(name.lower())
        if column is not None and column not in index:
            index[column] = position
    for column in COLUMNS:
        if column not in index:
            problems.add("line 1", f"missing column {column!r}")
    problems.raise_if_any(FileFormat.APEX)

    checks: dict[str, _Check] = {}
    for number, row in enumerate(reader, 2):
        if number > MAX_LINES + 1:
            problems.add("file", f"has more than {MAX_LINES:,} lines; split it")
            break
        if not any(cell.strip() for cell in row):
            continue

        def cell(column: str, row: list[str] = row) -> str:
            position = index[column]
            return row[position].strip() if position < len(row) else ""

        def where(column: str, number: int = number) -> str:
            return f"line {number}, column {column}"

        missing = [column for column in COLUMNS if column != "Type" and not cell(column)]
        for column in missing:
            problems.add(where(column), "is required")
        if missing:
            continue
        amount = _amount(cell("Amount"), where("Amount"), problems)
        posted = _date(cell("PostDate"), where("PostDate"), problems)
        check_number, debtor = cell("Check"), cell("Debtor")
        check = checks.setdefault(check_number, _Check(check_number, number, posted, debtor))
        if check.line != number:
            if posted is not None and check.post_date is not None and posted != check.post_date:
                problems.add(
                    where("PostDate"),
                    f"check {check_number} was posted {check.post_date:%m/%d/%Y} on line {check.line}; "
                    "the rows of one check share a PostDate",
                )
            if debtor.casefold() != check.debtor.casefold():
                problems.add(
                    where("Debtor"),
                    f"check {check_number} is from {check.debtor!r} on line {check.line}; "
                    "a check comes from one debtor",
                )
        if amount is not None:
            check.lines.append(
                RemittanceLine(reference=cell("Inv."), amount_paid=amount, where=f"line {number}")
            )
        kind = cell("Type")
        if kind and kind not in check.types:
            check.types.append(kind)
    if not checks and not problems:
        problems.add("file", "has no payment rows")
    problems.raise_if_any(FileFormat.APEX)
    deposits: list[Deposit] = []
    for check in checks.values():
        total = sum((line.amount_paid.amount for line in check.lines), Decimal(0))
        deposits.append(
            Deposit(
                source=FileFormat.APEX.value,
                key=check.number,
                amount=Money.of(total, CURRENCY),
                value_date=check.post_date,
                payer=check.debtor,
                reference=check.number,
                lines=tuple(check.lines),
                kind=f"factor: {', '.join(check.types)}" if check.types else "factor",
                where=f"check {check.number} (line {check.line})",
            )
        )
    return deposits
