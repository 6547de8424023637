"""ANSI X12 820 payment order / remittance advice → one :class:`~models.deposit.Deposit` per ``BPR``.

Why a reader of its own: no Python package reads a commercial 820. ``pyx12`` validates HIPAA
implementations only (it finds no map for a plain ``004010`` 820, and against the HIPAA premium
payment guide ``004010X061A1`` it refuses ``ENT``, ``RMR*IV`` and ``N1*PR*...*91``), and
``badx12`` (last release 2018) does not import on Python 3.10+ and pins ``click==7.0``, which
conflicts with typer. The envelope and the handful of segments read here fit in this module.

Separators come from the fixed-width ``ISA`` (106 characters): the element separator is
character 4 (index 3), the component separator character 105 (ISA16, index 104), the segment
terminator character 106 (index 105). Line breaks after the terminator are allowed.

=================  ===========================================================================
Deposit field      from
=================  ===========================================================================
``amount``         ``BPR02`` (the total paid), in ``CUR02`` if a ``CUR`` says, else USD
``key``            ``TRN02``, the trace number (check or EFT trace) that ties remittance to funds
``reference``      ``TRN02``
``value_date``     ``BPR16`` (CCYYMMDD), if present
``payer``          ``N102`` of ``N1*PR``
``lines``          one per ``RMR``: ``RMR02`` reference (invoice number, whatever the ``RMR01``
                   qualifier), ``RMR04`` amount paid, ``RMR05`` invoice amount; each ``ADX`` after
                   it is an :class:`~models.deposit.Adjustment` (``ADX01`` amount as written,
                   ``ADX02`` reason code, ``ADX04`` text); an ``RMR06`` discount becomes an
                   adjustment of minus the discount, reason ``RMR06``
``adjustments``    each ``ADX`` before any ``RMR``: an adjustment of the whole payment (a quick-pay
                   fee, say), so the ``RMR04`` amounts plus these come to at most ``BPR02``
``free_text``      the ``NTE02`` notes and ``REF01 REF02`` references (a ``REF*BM`` bill of
                   lading after an ``RMR``, say), in file order
``kind``           ``category: BPR04 BPR05`` (``ach: ACH CTX``, ``check: CHK``, ``wire: FWT``),
                   ``remittance only`` when ``BPR01`` is ``I``
``where``          ``ST <control number>, segment N (BPR)``
=================  ===========================================================================

A ``BPR03`` of ``D`` (a debit) is not a deposit and is skipped. Refused, naming the segment
(counted from ``ISA`` = 1) and element: an ``ISA`` that is not 106 characters with 16 element
separators, separators that are not distinct, a transaction set that is not an 820, envelopes
out of order, ``SE01`` segment counts, ``GE01``/``IEA01`` counts and control numbers that
disagree, a missing ``BPR02``/``TRN02``/``RMR02``/``RMR04``/``ADX01``, amounts that are not
decimals or do not fit the currency, bad dates, unknown currencies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from intake.deposits import Problems, decimal_of, decode_text, money_of
from intake.errors import FieldProblem, IntakeError
from models.deposit import Adjustment, Deposit, FileFormat, RemittanceLine
from models.money import CURRENCIES, Money

ISA_LENGTH = 106
METHODS = {
    "ACH": "ach",
    "CHK": "check",
    "FWT": "wire",
    "SWT": "wire",
    "BKW": "wire",
    "BOP": "bank's option",
    "NON": "no payment",
}


@dataclass
class _Segment:
    number: int
    id: str
    elements: list[str]

    def label(self, position: int | None = None) -> str:
        where = f"segment {self.number} ({self.id})"
        return f"{where}, {self.id}{position:02d}" if position is not None else where

    def get(self, position: int) -> str:
        return self.elements[position].strip() if position < len(self.elements) else ""


@dataclass
class _Amount:
    value: Decimal
    where: str


@dataclass
class _Line:
    segment: _Segment
    reference: str
    paid: _Amount | None
    invoice: _Amount | None
    adjustments: list[tuple[_Amount, str | None, str | None]] = field(default_factory=list)


@dataclass
class _Transaction:
    start: _Segment
    control: str
    segments: int = 1
    bpr: _Segment | None = None
    amount: _Amount | None = None
    debit: bool = False
    remittance_only: bool = False
    method: str = ""
    value_date: date | None = None
    trace: str = ""
    currency: str = "USD"
    currency_where: str = ""
    payer: str | None = None
    lines: list[_Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    entity_adjustments: list[tuple[_Amount, str | None, str | None]] = field(default_factory=list)


def _separators(text: str) -> tuple[str, str, str]:
    """(element, component, segment) separators from the ISA, or an IntakeError saying why not."""

    def refuse(reason: str) -> IntakeError:
        return IntakeError(
            [FieldProblem("segment 1 (ISA)", reason)], "The x12-820 file is invalid; nothing was started"
        )

    if not text.startswith("ISA"):
        raise refuse("an X12 interchange begins with ISA")
    if len(text) < ISA_LENGTH:
        raise refuse(f"is {len(text)} characters; an ISA is {ISA_LENGTH}")
    element = text[3]
    if element.isalnum() or element == " ":
        raise refuse(f"character 4 ({element!r}) cannot be the element separator")
    separators = [i for i, c in enumerate(text[: ISA_LENGTH + 40]) if c == element][:16]
    if len(separators) < 16:
        raise refuse(f"has {len(separators)} element separators {element!r}; an ISA has 16")
    if separators[15] != ISA_LENGTH - 3:
        raise refuse(
            f"its ISA16 begins at character {separators[15] + 2}, not {ISA_LENGTH - 1}: an ISA is "
            f"{ISA_LENGTH} characters, each field fixed-width (is a field too long or short?)"
        )
    component, terminator = text[104], text[105]
    if len({element, component, terminator}) != 3 or component.isalnum() or terminator.isalnum():
        raise refuse(
            f"the element {element!r}, component {component!r} (ISA16) and segment {terminator!r} "
            "separators must be three different non-alphanumeric characters"
        )
    return element, component, terminator


def _segments(text: str, element: str, terminator: str) -> list[_Segment]:
    segments: list[_Segment] = []
    blank = "".join(c for c in "\r\n\t " if c != element)  # line breaks after a terminator
    for raw in text.split(terminator):
        body = raw.strip(blank)
        if not body:
            continue
        elements = body.split(element)
        segments.append(_Segment(len(segments) + 1, elements[0].strip(), elements))
    return segments


def _date(value: str, where: str, problems: Problems) -> date | None:
    try:
        if len(value) != 8 or not value.isdigit():
            raise ValueError
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        problems.add(where, f"{value!r} is not a CCYYMMDD date")
        return None


class _Reader:
    def __init__(self, component: str, problems: Problems) -> None:
        self.component = component
        self.problems = problems

    def simple(self, segment: _Segment, position: int, required: bool = False) -> str:
        value = segment.get(position)
        if required and not value:
            self.problems.add(segment.label(position), "is required")
        if self.component in value:
            self.problems.add(
                segment.label(position),
                f"holds the component separator {self.component!r} (ISA16); it is a simple element",
            )
        return value

    def amount(self, segment: _Segment, position: int, required: bool = False) -> _Amount | None:
        value = self.simple(segment, position, required)
        if not value:
            return None
        number = decimal_of(value, segment.label(position), self.problems)
        return _Amount(number, segment.label(position)) if number is not None else None


def _deposit(tx: _Transaction, problems: Problems) -> Deposit | None:
    if tx.bpr is None:
        problems.add(tx.start.label(), f"transaction set {tx.control} has no BPR (the payment)")
        return None
    if not tx.trace:
        problems.add(
            tx.start.label(), f"transaction set {tx.control} has no TRN02 (the trace number, its key)"
        )
    if tx.amount is None or not tx.trace:
        return None

    if tx.currency not in CURRENCIES:
        problems.add(tx.currency_where, f"unknown ISO 4217 currency {tx.currency!r}")
        return None

    def money(amount: _Amount) -> Money | None:
        return money_of(amount.value, tx.currency, amount.where, problems)

    total = money(tx.amount)
    lines: list[RemittanceLine] = []
    for line in tx.lines:
        paid = money(line.paid) if line.paid else None
        invoice = money(line.invoice) if line.invoice else None
        adjustments = []
        for amount, reason, text in line.adjustments:
            adjusted = money(amount)
            if adjusted is not None:
                adjustments.append(Adjustment(amount=adjusted, reason_code=reason, text=text))
        if paid is not None:
            lines.append(
                RemittanceLine(
                    reference=line.reference,
                    amount_paid=paid,
                    invoice_amount=invoice,
                    adjustments=tuple(adjustments),
                    where=f"ST {tx.control}, {line.segment.label()}",
                )
            )
    if total is None:
        return None
    entity = []
    for amount, reason, text in tx.entity_adjustments:
        adjusted = money(amount)
        if adjusted is not None:
            entity.append(Adjustment(amount=adjusted, reason_code=reason, text=text))
    category = "remittance only" if tx.remittance_only else METHODS.get(tx.method.split(" ")[0], "payment")
    kind = f"{category}: {tx.method}" if tx.method else category
    return Deposit(
        source=FileFormat.X12_820.value,
        key=tx.trace,
        amount=total,
        value_date=tx.value_date,
        payer=tx.payer,
        reference=tx.trace,
        lines=tuple(lines),
        adjustments=tuple(entity),
        free_text=" ".join(tx.notes),
        kind=kind,
        where=f"ST {tx.control}, {tx.bpr.label()}",
    )


def parse(raw: bytes) -> list[Deposit]:
    """A whole X12 interchange of 820s → its deposits, or an IntakeError listing every problem."""
    text = decode_text(raw, FileFormat.X12_820).lstrip()
    element, component, terminator = _separators(text)
    problems = Problems()
    read = _Reader(component, problems)
    segments = _segments(text, element, terminator)

    deposits: list[Deposit] = []
    isa = segments[0]
    groups = 0
    group: _Segment | None = None
    sets_in_group = 0
    tx: _Transaction | None = None
    closed = False
    for segment in segments[1:]:
        sid = segment.id
        if closed:
            problems.add(segment.label(), "follows the IEA; an interchange ends there")
            break
        if tx is not None:
            tx.segments += 1
        if sid == "GS":
            if group is not None or tx is not None:
                problems.add(segment.label(), "a GS before the GE of the previous group")
            group, sets_in_group = segment, 0
            groups += 1
        elif sid == "GE":
            if group is None or tx is not None:
                problems.add(segment.label(), "a GE outside a functional group, or before the SE")
            else:
                _count(read, segment, 1, sets_in_group, "transaction sets in the group")
                _control(read, segment, 2, group, 6)
            group = None
        elif sid == "IEA":
            if group is not None:
                problems.add(segment.label(), "an IEA before the GE of the last group")
            _count(read, segment, 1, groups, "functional groups in the interchange")
            _control(read, segment, 2, isa, 13)
            closed = True
        elif sid == "ST":
            if group is None or tx is not None:
                problems.add(segment.label(), "an ST outside a functional group, or before the previous SE")
            if read.simple(segment, 1) != "820":
                problems.add(segment.label(1), f"is {segment.get(1)!r}; this reader takes 820s only")
            tx = _Transaction(segment, read.simple(segment, 2, required=True))
            sets_in_group += 1
        elif sid == "SE":
            if tx is None:
                problems.add(segment.label(), "an SE without its ST")
                continue
            _count(read, segment, 1, tx.segments, "segments in the transaction set (ST and SE included)")
            _control(read, segment, 2, tx.start, 2)
            if not tx.debit:
                deposit = _deposit(tx, problems)
                if deposit is not None:
                    deposits.append(deposit)
            tx = None
        elif tx is None:
            problems.add(segment.label(), "is outside a transaction set (ST ... SE)")
        else:
            _body(read, tx, segment)
    if not closed:
        problems.add(f"segment {len(segments)}", "the interchange ends without its IEA")
    elif tx is not None:
        problems.add(tx.start.label(), "the transaction set has no SE")
    problems.raise_if_any(FileFormat.X12_820)
    return deposits


def _count(read: _Reader, segment: _Segment, position: int, found: int, what: str) -> None:
    stated = read.simple(segment, position, required=True)
    if stated and (not stated.isdigit() or int(stated) != found):
        read.problems.add(segment.label(position), f"says {stated}, the file holds {found} {what}")


def _control(read: _Reader, segment: _Segment, position: int, header: _Segment, header_position: int) -> None:
    stated = read.simple(segment, position, required=True)
    opened = header.get(header_position)
    if stated and stated.lstrip("0") != opened.lstrip("0"):
        read.problems.add(
            segment.label(position),
            f"control number {stated!r} differs from {header.label(header_position)}'s {opened!r}",
        )


def _body(read: _Reader, tx: _Transaction, segment: _Segment) -> None:
    sid, problems = segment.id, read.problems
    if sid == "BPR":
        if tx.bpr is not None:
            problems.add(segment.label(), "a second BPR in one transaction set")
            return
        tx.bpr = segment
        handling = read.simple(segment, 1)
        tx.remittance_only = handling == "I"
        tx.amount = read.amount(segment, 2, required=True)
        flag = read.simple(segment, 3)
        if flag not in ("", "C", "D"):
            problems.add(segment.label(3), f"{flag!r} is not C (credit) or D (debit)")
        tx.debit = flag == "D"
        tx.method = " ".join(v for v in (read.simple(segment, 4), read.simple(segment, 5)) if v)
        when = read.simple(segment, 16)
        if when:
            tx.value_date = _date(when, segment.label(16), problems)
    elif sid == "TRN" and not tx.trace:
        tx.trace = read.simple(segment, 2, required=True)
    elif sid == "CUR":
        tx.currency = read.simple(segment, 2, required=True).upper() or "USD"
        tx.currency_where = segment.label(2)
    elif sid == "N1" and read.simple(segment, 1) == "PR":
        tx.payer = read.simple(segment, 2) or None
    elif sid == "RMR":
        tx.lines.append(
            _Line(
                segment,
                read.simple(segment, 2, required=True),
                read.amount(segment, 4, required=True),
                read.amount(segment, 5),
            )
        )
        discount = read.amount(segment, 6)
        if discount is not None and discount.value:
            tx.lines[-1].adjustments.append((_Amount(-discount.value, discount.where), "RMR06", "discount"))
    elif sid == "ADX":
        amount = read.amount(segment, 1, required=True)
        reason = read.simple(segment, 2) or None
        note = read.simple(segment, 4) or None
        if amount is None:
            return
        if tx.lines:
            tx.lines[-1].adjustments.append((amount, reason, note))
        else:
            tx.entity_adjustments.append((amount, reason, note))
    elif sid == "REF":
        reference = " ".join(v for v in (read.simple(segment, 1), read.simple(segment, 2)) if v)
        if reference:
            tx.notes.append(reference)
    elif sid == "NTE":
        note = read.simple(segment, 2)
        if note:
            tx.notes.append(note)
