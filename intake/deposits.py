"""Bank, lockbox and factor files → :class:`~models.deposit.Deposit`\\ s, through one path.

:func:`detect_format` tells the format from the content; :func:`parse_deposits` hands the
bytes to the format's reader (``intake/bai2.py``, ``intake/x12_820.py``,
``intake/camt054.py``, ``intake/apex.py``), then checks every deposit the same way whatever
the format (:func:`check_deposits`): a positive amount in a known currency, a key and a
reference, keys unique in the file, lines and adjustments in the deposit's currency, and the
money invariant (what the lines say they pay, with the deposit's own adjustments, adds up to
at most the deposit). A file with any
problem is refused whole: :class:`~intake.errors.IntakeError` lists every problem, each naming
where (line, segment, element) and why.

A file with no credits (a BAI2 day of debits only, a camt.054 of debits) is valid and gives
an empty list; the caller decides what that means.

freightpay's own remittance CSV (:data:`FileFormat.CSV`) holds payment instructions, not
deposits: it is read by :func:`intake.remittance.parse_csv`, and :func:`parse_deposits`
refuses it with a message that says so.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from decimal import Decimal

from intake.errors import FieldProblem, IntakeError
from models.deposit import Deposit, FileFormat
from models.money import Money, MoneyError

#: No bank file of one company's deposits comes near this; larger inputs are mistakes or attacks.
MAX_FILE_BYTES = 50 * 1024 * 1024


class Problems:
    """Every problem found in one file, each with where and why; raised whole at the end."""

    def __init__(self) -> None:
        self.found: list[FieldProblem] = []

    def add(self, where: str, reason: str) -> None:
        self.found.append(FieldProblem(where, reason))

    def __bool__(self) -> bool:
        return bool(self.found)

    def raise_if_any(self, fmt: FileFormat | str) -> None:
        if self.found:
            raise IntakeError(self.found, f"The {fmt} file is invalid; nothing was started")


def decode_text(raw: bytes, fmt: FileFormat | str) -> str:
    """The file as text (UTF-8, a byte-order mark dropped), or an IntakeError naming the bad byte."""
    if len(raw) > MAX_FILE_BYTES:
        raise IntakeError(
            [FieldProblem("file", f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; split it")],
            f"The {fmt} file is invalid; nothing was started",
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IntakeError(
            [FieldProblem("file", f"is not UTF-8 text ({exc.reason} at byte {exc.start})")],
            f"The {fmt} file is invalid; nothing was started",
        ) from None


def money_of(amount: Decimal | int | str, currency: str, where: str, problems: Problems) -> Money | None:
    """Money, or None with the reason added to ``problems`` (unknown currency, too many decimals)."""
    try:
        return Money.of(amount, currency)
    except MoneyError as exc:
        problems.add(where, str(exc))
        return None


_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def decimal_of(text: str, where: str, problems: Problems) -> Decimal | None:
    """A plain decimal (``-350.00``, ``1157.5``, ``.5``); no exponent, no thousands separator."""
    value = text.strip()
    if not _DECIMAL.match(value):
        problems.add(where, f"{text!r} is not a decimal amount")
        return None
    return Decimal(value)


def detect_format(raw: bytes) -> FileFormat:
    """Which format a file is in, from its content alone.

    ``ISA`` first → X12 820; a ``01,`` file header → BAI2; XML naming the camt.054 namespace or
    holding ``BkToCstmrDbtCdtNtfctn`` → camt.054; a CSV whose header names ``Check`` and
    ``Inv.`` → Apex's payment report; anything else → freightpay's remittance CSV (whose own
    reader then says what is wrong with it).
    """
    head = raw[:65536].removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"ISA"):
        return FileFormat.X12_820
    if head.startswith(b"01,"):
        return FileFormat.BAI2
    if head.startswith(b"<"):
        if b"camt.054" in head or b"BkToCstmrDbtCdtNtfctn" in head:
            return FileFormat.CAMT054
        return FileFormat.CSV
    first_line = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    try:
        header = {cell.strip().lower() for cell in next(csv.reader(io.StringIO(first_line)), [])}
    except csv.Error:
        return FileFormat.CSV
    if "check" in header and ("inv." in header or "inv" in header):
        return FileFormat.APEX
    return FileFormat.CSV


def _readers() -> dict[FileFormat, Callable[[bytes], list[Deposit]]]:
    # Imported here: each reader uses this module's helpers.
    from intake import apex, bai2, camt054, x12_820

    return {
        FileFormat.BAI2: bai2.parse,
        FileFormat.X12_820: x12_820.parse,
        FileFormat.CAMT054: camt054.parse,
        FileFormat.APEX: apex.parse,
    }


def parse_deposits(raw: bytes, fmt: FileFormat | None = None) -> list[Deposit]:
    """A whole bank, lockbox or factor file → its deposits, or an IntakeError listing every problem.

    ``fmt`` None means :func:`detect_format`. Whatever the format, the deposits then pass the same
    checks (:func:`check_deposits`).
    """
    fmt = detect_format(raw) if fmt is None else FileFormat(fmt)
    if fmt is FileFormat.CSV:
        raise IntakeError(
            [
                FieldProblem(
                    "format",
                    "is freightpay's remittance CSV (payment instructions, not deposits); "
                    "it is read by intake.remittance.parse_csv",
                )
            ],
            "The file is not a bank, lockbox or factor file",
        )
    deposits = _readers()[fmt](raw)
    check_deposits(deposits, fmt)
    return deposits


def check_deposits(deposits: list[Deposit], fmt: FileFormat | str) -> None:
    """The checks every deposit passes, whatever its format; raises an IntakeError listing all."""
    problems = Problems()
    seen: dict[str, str] = {}
    for deposit in deposits:
        where = deposit.where or f"deposit {deposit.key}"
        if not deposit.amount.is_positive():
            problems.add(where, f"the deposit's amount {deposit.amount} is not greater than zero")
        if not deposit.key.strip():
            problems.add(where, "has no key (bank or trace reference)")
        if not deposit.reference.strip():
            problems.add(where, "has no reference")
        first = seen.setdefault(deposit.key, where)
        if first != where:
            problems.add(
                where,
                f"repeats the key {deposit.key!r} of {first}; one deposit cannot be in a file twice",
            )
        total = Decimal(0)
        currencies_ok = True
        for line in deposit.lines:
            line_where = line.where or where
            amounts = [("amount paid", line.amount_paid)]
            if line.invoice_amount is not None:
                amounts.append(("invoice amount", line.invoice_amount))
            amounts += [("adjustment", adjustment.amount) for adjustment in line.adjustments]
            for name, amount in amounts:
                if amount.currency != deposit.amount.currency:
                    currencies_ok = False
                    problems.add(
                        line_where,
                        f"the {name} is in {amount.currency}, the deposit in {deposit.amount.currency}",
                    )
            if not line.reference.strip():
                problems.add(line_where, "has no reference (invoice or load number)")
            total += line.amount_paid.amount
        for adjustment in deposit.adjustments:
            if adjustment.amount.currency != deposit.amount.currency:
                currencies_ok = False
                problems.add(
                    where,
                    f"an adjustment is in {adjustment.amount.currency}, the deposit in {deposit.amount.currency}",
                )
            total += adjustment.amount.amount
        if currencies_ok and deposit.lines and total > deposit.amount.amount:
            problems.add(
                where,
                f"its lines {'with its adjustments ' if deposit.adjustments else ''}pay "
                f"{deposit.amount.currency} {total:,}, more than the deposit's {deposit.amount}",
            )
    problems.raise_if_any(fmt)
