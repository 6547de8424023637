"""Remittance files (CSV) from a bank or factor → one payment instruction per line.

The format (UTF-8, comma-separated, a header line naming the columns, in any order):

================  ========  ==============================================================
column            required  meaning
================  ========  ==============================================================
target            yes       ``alvys-customer-payment``, ``alvys-carrier-payment`` or
                            ``transportone-payment``
amount            yes       decimal, ``.`` as separator, no thousands separator, > 0
currency          yes       ISO 4217 code (USD, CAD, MXN, ...)
payment_date      yes       ``YYYY-MM-DD`` or ISO 8601 date-time (no zone = UTC)
reference         yes       the payment's reference (check number, ACH trace, UTR); the
                            vendor's idempotency key and the workflow key, so unique per file
load_number       *         Alvys load (customer payments; or to find a carrier's trip)
trip_id           *         Alvys trip id (carrier payments)
trip_number       *         Alvys trip number (carrier payments, resolved to the trip id)
invoice_number    *         Alvys invoice (customer payments) or TransportOne invoice
po_number         *         a PO number to find the load by
invoice_total     no        TransportOne: the payment's total, if more than ``amount``
method            no        Check, ACH, Wire, cash, dn, ...
check_number      no
note              no
================  ========  ==============================================================

(*) each line needs the identifiers its target needs. The whole file is validated before
anything starts; every problem is reported as ``line N, column C: reason``.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

from intake.errors import FieldProblem, IntakeError
from models.money import Money, MoneyError, to_decimal
from models.payment import PaymentInstruction, Source, Target, TargetIds, missing_ids

REQUIRED = ("target", "amount", "currency", "payment_date", "reference")
IDENTIFIERS = ("load_number", "trip_id", "trip_number", "invoice_number", "po_number")
OPTIONAL = ("invoice_total", "method", "check_number", "note")
COLUMNS = REQUIRED + IDENTIFIERS + OPTIONAL
MAX_LINES = 100_000


def _date(text: str) -> datetime:
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD or ISO 8601)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _line(number: int, row: dict[str, str]) -> PaymentInstruction:
    def value(column: str) -> str | None:
        text = (row.get(column) or "").strip()
        return text or None

    problems: list[FieldProblem] = []

    def problem(column: str, reason: str) -> None:
        problems.append(FieldProblem(f"line {number}, column {column}", reason))

    for column in REQUIRED:
        if value(column) is None:
            problem(column, "is required")
    target: Target | None = None
    if value("target"):
        try:
            target = Target(value("target") or "")
        except ValueError:
            problem("target", f"{value('target')!r} is not one of {', '.join(t.value for t in Target)}")
    amount: Money | None = None
    if value("amount") and value("currency"):
        try:
            amount = Money.of(to_decimal(value("amount")), value("currency") or "")
            if not amount.is_positive():
                problem("amount", "must be greater than zero")
        except MoneyError as exc:
            problem("currency" if "currency" in str(exc) else "amount", str(exc))
    total: Money | None = None
    if value("invoice_total") and amount is not None:
        try:
            total = Money.of(to_decimal(value("invoice_total")), amount.currency)
        except MoneyError as exc:
            problem("invoice_total", str(exc))
    when: datetime | None = None
    if value("payment_date"):
        try:
            when = _date(value("payment_date") or "")
        except ValueError as exc:
            problem("payment_date", str(exc))
    ids = TargetIds(**{column: value(column) for column in IDENTIFIERS})
    if target is not None:
        missing = missing_ids(target, ids)
        if missing:
            problem("load_number/trip_id/invoice_number", missing)
    if problems or target is None or amount is None or when is None:
        raise IntakeError(problems)
    return PaymentInstruction(
        source=Source.REMITTANCE,
        business_key=value("reference") or "",
        source_event_id=f"line {number}",
        target=target,
        ids=ids,
        amount=amount,
        invoice_total=total,
        payment_date=when,
        method=value("method"),
        check_number=value("check_number"),
        reference_number=value("reference") or "",
        note=value("note"),
    )


def parse_csv(raw: bytes | str) -> list[PaymentInstruction]:
    """A whole remittance file → its instructions, or an :class:`IntakeError` listing every problem."""
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise IntakeError(
            [FieldProblem("file", f"is not UTF-8 text ({exc.reason} at byte {exc.start})")]
        ) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    if not header:
        raise IntakeError([FieldProblem("file", "is empty; the first line must name the columns")])
    reader.fieldnames = header
    problems = [FieldProblem("line 1", f"unknown column {h!r}") for h in header if h not in COLUMNS]
    problems += [FieldProblem("line 1", f"missing column {c!r}") for c in REQUIRED if c not in header]
    if problems:
        raise IntakeError(problems, "The remittance file's header is invalid")
    instructions: list[PaymentInstruction] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(reader):
        number = index + 2  # line 1 is the header
        if number > MAX_LINES + 1:
            problems.append(FieldProblem("file", f"has more than {MAX_LINES:,} lines; split it"))
            break
        if None in row:
            problems.append(FieldProblem(f"line {number}", "has more fields than the header"))
            continue
        if not any((v or "").strip() for v in row.values()):
            continue  # blank line
        try:
            instruction = _line(number, row)
        except IntakeError as exc:
            problems.extend(exc.problems)
            continue
        first = seen.setdefault(instruction.reference_number, number)
        if first != number:
            problems.append(
                FieldProblem(
                    f"line {number}, column reference",
                    f"repeats line {first}'s reference; references must be unique",
                )
            )
            continue
        instructions.append(instruction)
    if problems:
        raise IntakeError(problems, "The remittance file is invalid; nothing was started")
    if not instructions:
        raise IntakeError([FieldProblem("file", "has no payment lines")])
    return instructions


def parse_line_range(raw: bytes | str, start: int, count: int) -> list[PaymentInstruction]:
    """Payment lines ``start`` .. ``start + count`` (0-based, blank lines skipped) of a file that
    was validated whole at intake; only those lines are parsed."""
    text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    reader = csv.DictReader(io.StringIO(text, newline=""))
    reader.fieldnames = [h.strip() for h in reader.fieldnames or []]
    found: list[PaymentInstruction] = []
    index = -1
    for position, row in enumerate(reader):
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        index += 1
        if index < start:
            continue
        if index >= start + count:
            break
        found.append(_line(position + 2, row))
    return found
