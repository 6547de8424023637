"""BAI2 cash management balance reports → one :class:`~models.deposit.Deposit` per credit ``16``.

The layout (BAI *Cash Management Balance Reporting Specifications*, version 2): ``01`` file
header, ``02`` group header (as-of date, currency), ``03`` account identifier (account number,
currency, summary amounts), ``16`` transaction detail (type code, amount, funds type with its
availability fields, bank reference, customer reference, text), ``88`` continuation of the
record before it, ``49`` account trailer, ``98`` group trailer, ``99`` file trailer; the
trailers carry control totals and record counts.

What a deposit is here: every ``16`` record whose type code the BAI2 code list marks as a
credit. Debits, non-monetary (``890``) and status codes are not deposits and are skipped.

=================  ===========================================================================
Deposit field      from
=================  ===========================================================================
``amount``         the ``16`` amount, in the currency's minor units (no decimal point): ``38253``
                   is USD 382.53, JPY 38253, KWD 38.253
currency           the ``03`` account currency, else the ``02`` group currency, else USD
``key``            the bank reference, else the customer reference, else ``h`` + 24 hex digits
                   of the SHA-256 of (account, currency, as-of date, type code, amount, text),
                   with ``-2``, ``-3`` ... for a second, third identical record: the same in
                   the next file that reports the same deposit
``reference``      the customer reference (the check number, for lockbox items), else the bank
                   reference, else the key
``value_date``     the ``02`` as-of date
``free_text``      the ``16`` text with the text of its ``88`` continuations, joined by spaces
                   (lockbox and ACH credits carry payer, invoice and load numbers only there)
``kind``           ``category: code description``, e.g. ``lockbox: 115 Lockbox Deposit``
``where``          ``line N`` of the ``16`` record
=================  ===========================================================================

Categories of the type codes mapped (:data:`CATEGORIES`; every other credit code is
``credit``): ``lockbox`` 115 Lockbox Deposit, 116 Item in Lockbox Deposit, 118 Lockbox
Adjustment Credit; ``ach`` 142 ACH Credit Received, 143 Item in ACH Deposit, 145 ACH
Concentration Credit, 164 Corporate Trade Payment Credit, 165 Preauthorized ACH Credit, 166 ACH
Settlement, 169 Miscellaneous ACH Credit; ``edi`` 121 EDI Transaction Credit, 122 EDIBANX Credit
Received; ``rtp`` 158 Real Time Payment Credit; ``wire`` 191 Individual Incoming Internal Money
Transfer, 195 Incoming Money Transfer, 206 Book Transfer Credit, 208 Individual International
Money Transfer Credit; ``deposit`` 173 Bank-Prepared Deposit, 174 Other Deposit, 175 Check
Deposit Package, 184 Draft Deposit, 187 Cash Letter Credit, 301 Commercial Deposit;
``freight`` 392 Freight Payment Credit; ``card`` 147 Individual Bank Card Deposit.

Refused, naming the line: a line that is not a BAI2 record, records out of order, a field that
is not a number where one must be, a type code not in the BAI2 list (banks' own codes
900-999 included: ask the bank for its list), a credit without an amount, an unknown currency,
and every ``49``/``98``/``99`` whose control total or record count (continuations included) or
account/group count disagrees with what the file holds.

The reader: the ``bai2`` package (ministryofjustice/bai2) reads the records, their order, the
funds-type availability fields, dates and the type-code list. Its own words are that it is not
production-ready, and on valid files it does misread the ``16`` text where ``88`` records
continue it: an empty text ended by ``/`` before an ``88`` comes back with a leading comma, and a
text ended by ``/`` and continued comes back joined by a comma. So the references and text are
re-read here from the record's physical rows, which the package keeps. The package's integrity
checks stop at the first problem and do not say where, so the control totals and counts are
checked here, over the package's parse, with line numbers.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from bai2.constants import FundsType, TypeCodeTransaction
from bai2.helpers import IteratorHelper
from bai2.parsers import Bai2FileParser

from intake.deposits import Problems, decode_text, money_of
from intake.errors import FieldProblem, IntakeError
from models.deposit import Deposit, FileFormat
from models.money import MoneyError, minor_units

RECORD_NAMES = {
    "01": "file header",
    "02": "group header",
    "03": "account identifier",
    "16": "transaction detail",
    "49": "account trailer",
    "88": "continuation",
    "98": "group trailer",
    "99": "file trailer",
}

CATEGORIES: dict[str, str] = {
    **dict.fromkeys(("110", "115", "116", "118"), "lockbox"),
    **dict.fromkeys(("142", "143", "145", "164", "165", "166", "169"), "ach"),
    **dict.fromkeys(("121", "122"), "edi"),
    "158": "rtp",
    **dict.fromkeys(("191", "195", "206", "208"), "wire"),
    **dict.fromkeys(("173", "174", "175", "184", "187", "301"), "deposit"),
    "392": "freight",
    "147": "card",
}


@dataclass(frozen=True)
class _Row:
    number: int  # the physical line number, 1-based
    text: str


class _TrackingIterator(IteratorHelper):  # type: ignore[misc]
    """The package's record iterator, counting the rows of the records already read."""

    def __init__(self, lines: list[str]) -> None:
        self.rows_before = 0
        super().__init__(iter(lines))

    def advance(self) -> None:
        previous = getattr(self, "current_record", None)
        super().advance()
        if previous is not None:
            self.rows_before += len(previous.rows)


def _record_label(rows: list[_Row], index: int) -> str:
    row = rows[min(index, len(rows) - 1)]
    code = row.text[:2]
    return f"line {row.number} ({code} {RECORD_NAMES.get(code, 'record')})"


_CODE_OF_NAME = {name.replace(" ", "_"): code for code, name in RECORD_NAMES.items()}


def _library_reason(exc: BaseException) -> str:
    """The package's exception, said for a person."""
    message = str(exc)
    if match := re.fullmatch(r"Expected ([\w.]+), got ([\w.]+) instead", message):
        expected, found = (m.removeprefix("RecordCode.") for m in match.groups())
        expected = _CODE_OF_NAME.get(expected, expected)
        found = _CODE_OF_NAME.get(found, found)
        return f"expected a {expected} {RECORD_NAMES.get(expected, 'record')} record here, found {found}"
    if match := re.fullmatch(r"Type code '(.*)' is not supported yet", message):
        return (
            f"type code {match.group(1)!r} is not in the BAI2 type code list "
            "(banks' own codes are not read; ask the bank for its list)"
        )
    if match := re.fullmatch(r"invalid literal for int\(\) with base 10: '(.*)'", message):
        return f"{match.group(1)!r} is not a whole number (BAI2 amounts are in minor units, no decimal point)"
    if match := re.fullmatch(r"'(.*)' is not a valid FundsType", message):
        return f"funds type {match.group(1)!r} is not one of {', '.join(f.value for f in FundsType)}"
    if match := re.fullmatch(r"time data '(.*)' does not match format '(.*)'", message):
        wanted = "a YYMMDD date" if "%y" in match.group(2) else "an HHMM time"
        return f"{match.group(1)!r} is not {wanted}"
    if isinstance(exc, IndexError):
        return "has fewer fields than its record type needs"
    if isinstance(exc, StopIteration | RuntimeError):
        return "the file ends before its 99 file trailer"
    if message == "Only BAI version 2 supported":
        return "the version number (01 record, last field) is not 2: only BAI2 is read"
    return message or type(exc).__name__


def _read(rows: list[_Row]) -> Any:
    """The package's parse of the rows, or an IntakeError naming the record it stopped at."""
    iterator: _TrackingIterator | None = None
    try:
        iterator = _TrackingIterator([row.text for row in rows])
        return Bai2FileParser(iterator, check_integrity=False).parse()
    except Exception as exc:
        before = iterator.rows_before if iterator is not None else 0
        current = getattr(iterator, "current_record", None)
        reason = _library_reason(exc)
        at_end = current is not None and before + len(current.rows) >= len(rows)
        if at_end and not rows[-1].text.startswith("99,") and not isinstance(exc, ValueError | IndexError):
            reason = "the file ends without its 99 file trailer"
        raise IntakeError(
            [FieldProblem(_record_label(rows, before), reason)],
            "The bai2 file is invalid; nothing was started",
        ) from None


def _tail_fields(contents: list[str], before_text: int) -> tuple[list[str], str]:
    """A ``16`` record's fields before its text, and its text, from its physical rows.

    Fields are comma-separated; a ``/`` ends a row's fields; an ``88`` goes on with the next
    field, or with the text once the text has begun. The text is the rest of the record after
    ``before_text`` fields, commas included; its continued parts are joined by one space.
    """
    fields: list[str] = []
    text_parts: list[str] = []
    in_text = False
    for content in contents:
        body = content[:-1] if content.endswith("/") else content
        if in_text:
            text_parts.append(body.strip())
            continue
        remaining = before_text - len(fields)
        parts = body.split(",", remaining) if remaining else [body]
        if len(parts) > remaining:
            fields += parts[:remaining]
            text_parts.append(parts[remaining].strip())
            in_text = True
        else:
            fields += parts
    fields += [""] * (before_text - len(fields))
    return fields, " ".join(" ".join(part.split()) for part in text_parts if part.strip())


def _availability_fields(detail: Any) -> int:
    funds = detail.funds_type
    if funds == FundsType.distributed_availability_simple:
        return 3
    if funds == FundsType.value_dated:
        return 2
    if funds == FundsType.distributed_availability:
        return 1 + 2 * len(detail.availability or {})
    return 0


class _Positions:
    """The first line of each record of the package's parse: the rows are read in order."""

    def __init__(self, rows: list[_Row]) -> None:
        self.rows = rows
        self.offset = 0
        self.lines: dict[int, int] = {}

    def visit(self, model: Any) -> None:
        self.lines[id(model)] = self.rows[self.offset].number
        self.offset += len(model.rows)

    def label(self, model: Any, code: str, field: str = "") -> str:
        where = f"line {self.lines[id(model)]} ({code} {RECORD_NAMES[code]})"
        return f"{where}, {field}" if field else where


def _walk(tree: Any, positions: _Positions) -> None:
    positions.visit(tree.header)
    for group in tree.children:
        positions.visit(group.header)
        for account in group.children:
            positions.visit(account.header)
            for detail in account.children:
                positions.visit(detail)
            positions.visit(account.trailer)
        positions.visit(group.trailer)
    positions.visit(tree.trailer)


def _check(
    positions: _Positions,
    trailer: Any,
    code: str,
    field: str,
    stated: int | None,
    found: int,
    problems: Problems,
) -> None:
    if stated is None:
        problems.add(positions.label(trailer, code, field), "is required")
    elif stated != found:
        problems.add(positions.label(trailer, code, field), f"says {stated}, the file holds {found}")


def _check_totals(tree: Any, positions: _Positions, problems: Problems) -> None:
    """Every control total, record count and account/group count against what the file holds."""
    file_records = len(tree.header.rows) + len(tree.trailer.rows)
    file_total = 0
    for group in tree.children:
        group_records = len(group.header.rows) + len(group.trailer.rows)
        group_total = 0
        for account in group.children:
            header, trailer = account.header, account.trailer
            total = sum(item.amount or 0 for item in header.summary_items)
            total += sum(detail.amount or 0 for detail in account.children)
            records = len(header.rows) + len(trailer.rows) + sum(len(d.rows) for d in account.children)
            _check(
                positions,
                trailer,
                "49",
                "account control total",
                trailer.account_control_total,
                total,
                problems,
            )
            _check(
                positions, trailer, "49", "number of records", trailer.number_of_records, records, problems
            )
            group_records += records
            group_total += trailer.account_control_total or 0
        gt = group.trailer
        _check(positions, gt, "98", "group control total", gt.group_control_total, group_total, problems)
        _check(
            positions, gt, "98", "number of accounts", gt.number_of_accounts, len(group.children), problems
        )
        _check(positions, gt, "98", "number of records", gt.number_of_records, group_records, problems)
        file_records += group_records
        file_total += gt.group_control_total or 0
    ft = tree.trailer
    _check(positions, ft, "99", "file control total", ft.file_control_total, file_total, problems)
    _check(positions, ft, "99", "number of groups", ft.number_of_groups, len(tree.children), problems)
    _check(positions, ft, "99", "number of records", ft.number_of_records, file_records, problems)


def _hash_key(parts: list[str], seen: dict[str, int]) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]
    seen[digest] = seen.get(digest, 0) + 1
    return f"h{digest}" + (f"-{seen[digest]}" if seen[digest] > 1 else "")


def parse(raw: bytes) -> list[Deposit]:
    """A whole BAI2 file → its credit deposits, or an IntakeError listing every problem."""
    text = decode_text(raw, FileFormat.BAI2)
    problems = Problems()
    rows = [_Row(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not rows:
        problems.add("file", "is empty")
    for row in rows:
        if row.text[:2] not in RECORD_NAMES or row.text[2:3] != ",":
            problems.add(
                f"line {row.number}",
                f"{row.text[:20]!r} is not a BAI2 record (a record code "
                f"{', '.join(RECORD_NAMES)} and a comma)",
            )
    if rows and rows[0].text.startswith(("88,", "16,", "03,", "02,")):
        problems.add(f"line {rows[0].number}", "a BAI2 file begins with its 01 file header")
    problems.raise_if_any(FileFormat.BAI2)

    tree = _read(rows)
    positions = _Positions(rows)
    _walk(tree, positions)
    if positions.offset < len(rows):
        problems.add(
            f"line {rows[positions.offset].number}", "follows the 99 file trailer; a file ends there"
        )
    _check_totals(tree, positions, problems)

    deposits: list[Deposit] = []
    seen_hashes: dict[str, int] = {}
    for group in tree.children:
        as_of: date | None = group.header.as_of_date
        for account in group.children:
            currency = (account.header.currency or group.header.currency or "USD").strip().upper()
            try:
                places = minor_units(currency)
            except MoneyError as exc:
                code = "03" if account.header.currency else "02"
                where = positions.label(account.header if code == "03" else group.header, code, "currency")
                problems.add(where, str(exc))
                continue
            for detail in account.children:
                type_code = detail.type_code
                if type_code.transaction != TypeCodeTransaction.credit:
                    continue
                where = positions.label(detail, "16")
                if detail.amount is None:
                    problems.add(f"{where}, amount", "is required")
                    continue
                if detail.amount < 0:
                    problems.add(f"{where}, amount", "a detail amount has no sign")
                    continue
                head = 3 + _availability_fields(detail)
                fields, free_text = _tail_fields([content for _, content in detail.rows], head + 2)
                bank_ref, customer_ref = fields[head].strip(), fields[head + 1].strip()
                amount = money_of(
                    Decimal(detail.amount).scaleb(-places), currency, f"{where}, amount", problems
                )
                if amount is None:
                    continue
                key = bank_ref or customer_ref
                if not key:
                    key = _hash_key(
                        [
                            account.header.customer_account_number or "",
                            currency,
                            as_of.isoformat() if as_of else "",
                            type_code.code,
                            str(detail.amount),
                            free_text,
                        ],
                        seen_hashes,
                    )
                deposits.append(
                    Deposit(
                        source=FileFormat.BAI2.value,
                        key=key,
                        amount=amount,
                        value_date=as_of,
                        reference=customer_ref or bank_ref or key,
                        free_text=free_text,
                        kind=f"{CATEGORIES.get(type_code.code, 'credit')}: {type_code.code} {type_code.description}",
                        where=where,
                    )
                )
    problems.raise_if_any(FileFormat.BAI2)
    return deposits
