"""ISO 20022 camt.054 debit/credit notifications → one :class:`~models.deposit.Deposit` per credit.

Any camt.054 version (``camt.054.001.02`` to ``.001.13`` and later): elements are matched by
their local name, whatever the namespace, and the places where versions differ are read both
ways (``Sts`` as text or ``Sts/Cd``; ``Dbtr/Nm`` or ``Dbtr/Pty/Nm``; ``TxDtls/Amt`` or
``TxDtls/AmtDtls/TxAmt/Amt``). The notification may be wrapped (a business application header
envelope): the first ``BkToCstmrDbtCdtNtfctn`` in the document is read.

The file is UTF-8, as ISO 20022 requires. XML is parsed with ``defusedxml`` (``forbid_dtd=True``): a DTD, entity declarations and
external references are refused, so entity expansion ("billion laughs") and external entity
reads cannot happen; a camt.054 never needs a DTD.

Deposits: each ``Ntry`` with ``CdtDbtInd`` ``CRDT``, status ``BOOK`` (or none given) and no
``RvslInd`` true. Entries that are debits, pending (``PDNG``), informational (``INFO``) or
reversals are skipped (the booked credit comes in a later notification or the statement, with
the same ``AcctSvcrRef``, so as the same deposit). An entry with ``NtryDtls/TxDtls`` gives one
deposit per credit ``TxDtls``; their amounts must add up to the entry's ``Amt`` (debit
``TxDtls`` subtracted), in its currency. An entry without ``TxDtls`` is one deposit.

=================  ===========================================================================
Deposit field      from
=================  ===========================================================================
``amount``         ``Amt`` with its ``Ccy`` (the entry's, or the transaction's; a single
                   ``TxDtls`` without an amount takes the entry's)
``key``            entry: ``AcctSvcrRef``, else ``NtryRef``, else ``h`` + 24 hex digits of a
                   SHA-256 of the entry; transaction: ``Refs/EndToEndId`` (unless
                   ``NOTPROVIDED``), else ``Refs/AcctSvcrRef``, ``Refs/TxId``, ``Refs/InstrId``,
                   else the entry's key with ``/n`` (its n-th transaction)
``reference``      the key (the end-to-end id is the payer's reference)
``value_date``     ``ValDt`` (``Dt`` or the date of ``DtTm``), else ``BookgDt``
``payer``          ``RltdPties/Dbtr/Nm`` (or ``Dbtr/Pty/Nm``)
``lines``          each ``RmtInf/Strd`` with one ``RfrdDocInf/Nb`` (or else a
                   ``CdtrRefInf/Ref``) and an amount: ``RfrdDocAmt/RmtdAmt`` paid (else
                   ``DuePyblAmt``), ``DuePyblAmt`` the invoice amount
``free_text``      ``RmtInf/Ustrd``, ``AddtlTxInf``, ``AddtlNtryInf``, ``AddtlRmtInf``, and the
                   numbers of a ``Strd`` that cannot be a line (no amount, or several documents
                   sharing one amount)
``kind``           ``category: Domn/Fmly/SubFmly`` from ``BkTxCd`` (``ach: PMNT/RCDT/ACDT``), or
                   the BAI2 category of a proprietary BAI code (``lockbox: BAI 115``)
``where``          the element's path, ``Ntfctn[1]/Ntry[2]/NtryDtls[1]/TxDtls[1]``
=================  ===========================================================================

Refused, naming the element by its path: XML that is not well formed or has a DTD, a file
without ``BkToCstmrDbtCdtNtfctn``, an ``Amt`` that is not a decimal or lacks ``Ccy``, an unknown
currency, a ``CdtDbtInd`` that is neither ``CRDT`` nor ``DBIT``, transaction amounts that do not
add up to their entry, several ``TxDtls`` where one has no amount, dates that are not ISO dates.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from intake.bai2 import CATEGORIES as BAI2_CATEGORIES
from intake.deposits import Problems, decode_text, money_of
from intake.errors import FieldProblem, IntakeError
from models.deposit import Deposit, FileFormat, RemittanceLine
from models.money import Money

TITLE = "The camt054 file is invalid; nothing was started"
_AMOUNT = re.compile(r"^\d+(\.\d+)?$")
FAMILIES = {"LBOX": "lockbox", "RCHQ": "check", "RRCT": "credit"}
SUBFAMILIES = {"ACDT": "ach", "DMCT": "wire", "XBCT": "wire", "ESCT": "transfer", "BOOK": "transfer"}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class _Node:
    """An element with its path (``Ntry[2]/Amt``), found by local names."""

    def __init__(self, element: Element, path: str) -> None:
        self.element = element
        self.path = path

    def children(self, name: str) -> Iterator[_Node]:
        index = 0
        for child in self.element:
            if isinstance(child.tag, str) and _local(child.tag) == name:
                index += 1
                yield _Node(child, f"{self.path}/{name}[{index}]" if self.path else f"{name}[{index}]")

    def find(self, *names: str) -> _Node | None:
        """The first element at the path, named by the path without indexes (``Ntry[2]/Amt``)."""
        node: _Node | None = self
        for name in names:
            node = next(node.children(name), None) if node is not None else None
        if node is None:
            return None
        return _Node(node.element, "/".join((self.path, *names)) if self.path else "/".join(names))

    def text(self, *names: str) -> str:
        node = self.find(*names)
        return (node.element.text or "").strip() if node is not None else ""

    def all(self, *names: str) -> list[_Node]:
        """Every element at the path (each step may repeat)."""
        nodes = [self]
        for name in names:
            nodes = [child for node in nodes for child in node.children(name)]
        return nodes


def _amount(node: _Node | None, problems: Problems) -> Money | None:
    if node is None:
        return None
    text = (node.element.text or "").strip()
    currency = (node.element.get("Ccy") or "").strip()
    if not currency:
        problems.add(node.path, "has no Ccy (currency) attribute")
        return None
    if not _AMOUNT.match(text):
        problems.add(node.path, f"{text!r} is not an amount (digits, '.' and decimals, no sign)")
        return None
    return money_of(Decimal(text), currency, node.path, problems)


def _date(node: _Node, problems: Problems) -> date | None:
    for name, length in (("Dt", 10), ("DtTm", 10)):
        value = node.text(name)
        if value:
            try:
                return date.fromisoformat(value[:length])
            except ValueError:
                problems.add(f"{node.path}/{name}", f"{value!r} is not an ISO 8601 date")
                return None
    return None


def _kind(entry: _Node, tx: _Node | None) -> str:
    for node in (tx, entry):
        if node is None:
            continue
        code = node.find("BkTxCd")
        if code is None:
            continue
        domain = code.text("Domn", "Cd")
        family = code.text("Domn", "Fmly", "Cd")
        sub = code.text("Domn", "Fmly", "SubFmlyCd")
        if domain:
            category = SUBFAMILIES.get(sub) or FAMILIES.get(family) or "credit"
            return f"{category}: {'/'.join(v for v in (domain, family, sub) if v)}"
        proprietary = code.text("Prtry", "Cd")
        if proprietary:
            issuer = code.text("Prtry", "Issr")
            if issuer.upper() == "BAI":
                return f"{BAI2_CATEGORIES.get(proprietary, 'credit')}: BAI {proprietary}"
            return f"credit: {issuer + ' ' if issuer else ''}{proprietary}"
    return "credit"


def _status(entry: _Node) -> str:
    status = entry.find("Sts")
    if status is None:
        return ""
    return (status.text("Cd") or status.text("Prtry") or (status.element.text or "")).strip().upper()


def _remittance(tx: _Node, currency: str, problems: Problems) -> tuple[list[RemittanceLine], list[str]]:
    """The lines of the structured remittance and the free text of the rest."""
    lines: list[RemittanceLine] = []
    texts: list[str] = [node.element.text.strip() for node in tx.all("RmtInf", "Ustrd") if node.element.text]
    for strd in tx.all("RmtInf", "Strd"):
        numbers = [doc.text("Nb") for doc in strd.all("RfrdDocInf") if doc.text("Nb")]
        if not numbers and strd.text("CdtrRefInf", "Ref"):
            numbers = [strd.text("CdtrRefInf", "Ref")]
        due = _amount(strd.find("RfrdDocAmt", "DuePyblAmt"), problems)
        remitted = _amount(strd.find("RfrdDocAmt", "RmtdAmt"), problems)
        paid = remitted or due
        texts += [node.element.text.strip() for node in strd.all("AddtlRmtInf") if node.element.text]
        if len(numbers) == 1 and paid is not None:
            lines.append(
                RemittanceLine(
                    reference=numbers[0],
                    amount_paid=paid,
                    invoice_amount=due,
                    where=strd.path,
                )
            )
        elif numbers:
            texts.append(" ".join(numbers) + (f" ({paid})" if paid is not None else ""))
    return lines, texts


def _hash(parts: list[str]) -> str:
    return "h" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def _entry_deposits(entry: _Node, account: str, problems: Problems) -> list[Deposit]:
    indicator = entry.text("CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        problems.add(f"{entry.path}/CdtDbtInd", f"{indicator!r} is not CRDT or DBIT")
        return []
    reversal = entry.text("RvslInd").lower() in ("true", "1")
    if indicator == "DBIT" or reversal or _status(entry) not in ("", "BOOK"):
        return []
    amount_node = entry.find("Amt")
    if amount_node is None:
        problems.add(entry.path, "has no Amt")
        return []
    entry_amount = _amount(amount_node, problems)
    when: date | None = None
    for name in ("ValDt", "BookgDt"):
        node = entry.find(name)
        if node is not None and when is None:
            when = _date(node, problems)
    entry_key = entry.text("AcctSvcrRef") or entry.text("NtryRef")
    entry_text = entry.text("AddtlNtryInf")
    if not entry_key:
        raw_amount = (amount_node.element.text or "").strip()
        entry_key = _hash(
            [account, raw_amount, amount_node.element.get("Ccy") or "", str(when or ""), entry_text]
        )
    if entry_amount is None:
        return []
    txs = entry.all("NtryDtls", "TxDtls")
    if not txs:
        return [
            Deposit(
                source=FileFormat.CAMT054.value,
                key=entry_key,
                amount=entry_amount,
                value_date=when,
                reference=entry_key,
                free_text=entry_text,
                kind=_kind(entry, None),
                where=entry.path,
            )
        ]
    deposits: list[Deposit] = []
    total = Decimal(0)
    complete = True
    for index, tx in enumerate(txs, 1):
        tx_amount_node = tx.find("Amt") or tx.find("AmtDtls", "TxAmt", "Amt")
        if tx_amount_node is None:
            if len(txs) > 1:
                problems.add(tx.path, "has no Amt, and its entry has several transactions")
                complete = False
                continue
            tx_amount: Money | None = entry_amount
        else:
            tx_amount = _amount(tx_amount_node, problems)
        if tx_amount is None:
            complete = False
            continue
        if tx_amount.currency != entry_amount.currency:
            problems.add(
                tx_amount_node.path if tx_amount_node else tx.path,
                f"is in {tx_amount.currency}, its entry in {entry_amount.currency}",
            )
            complete = False
            continue
        tx_indicator = tx.text("CdtDbtInd") or "CRDT"
        if tx_indicator not in ("CRDT", "DBIT"):
            problems.add(f"{tx.path}/CdtDbtInd", f"{tx_indicator!r} is not CRDT or DBIT")
            complete = False
            continue
        if tx_indicator == "DBIT":
            total -= tx_amount.amount
            continue
        total += tx_amount.amount
        end_to_end = tx.text("Refs", "EndToEndId")
        if end_to_end.upper() == "NOTPROVIDED":
            end_to_end = ""
        key = (
            end_to_end
            or tx.text("Refs", "AcctSvcrRef")
            or tx.text("Refs", "TxId")
            or tx.text("Refs", "InstrId")
            or f"{entry_key}/{index}"
        )
        payer = tx.text("RltdPties", "Dbtr", "Nm") or tx.text("RltdPties", "Dbtr", "Pty", "Nm")
        lines, texts = _remittance(tx, tx_amount.currency, problems)
        texts += [tx.text("AddtlTxInf"), entry_text]
        deposits.append(
            Deposit(
                source=FileFormat.CAMT054.value,
                key=key,
                amount=tx_amount,
                value_date=when,
                payer=payer or None,
                reference=key,
                lines=tuple(lines),
                free_text=" ".join(" ".join(t.split()) for t in texts if t),
                kind=_kind(entry, tx),
                where=tx.path,
            )
        )
    if complete and total != entry_amount.amount:
        problems.add(
            amount_node.path,
            f"the entry is {entry_amount}, its transactions (TxDtls/Amt) add up to "
            f"{entry_amount.currency} {total:,}",
        )
    return deposits


def _parse_xml(raw: bytes) -> Any:
    try:
        return SafeET.fromstring(raw, forbid_dtd=True)
    except DefusedXmlException as exc:
        reason = f"is refused: {type(exc).__name__} (a DTD, entity or external reference)"
    except ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        reason = f"is not well-formed XML (line {line}, column {column}: {exc.msg if hasattr(exc, 'msg') else exc})"
    raise IntakeError([FieldProblem("file", reason)], TITLE)


def parse(raw: bytes) -> list[Deposit]:
    """A whole camt.054 → its credit deposits, or an IntakeError listing every problem."""
    decode_text(raw, FileFormat.CAMT054)  # size and encoding problems, said plainly
    root = _parse_xml(raw)
    notification = next(
        (el for el in root.iter() if isinstance(el.tag, str) and _local(el.tag) == "BkToCstmrDbtCdtNtfctn"),
        None,
    )
    if notification is None:
        raise IntakeError(
            [FieldProblem("file", "is XML but not a camt.054: it has no BkToCstmrDbtCdtNtfctn")], TITLE
        )
    problems = Problems()
    deposits: list[Deposit] = []
    for ntfctn in _Node(notification, "").children("Ntfctn"):
        account = ntfctn.text("Acct", "Id", "IBAN") or ntfctn.text("Acct", "Id", "Othr", "Id")
        for entry in ntfctn.children("Ntry"):
            deposits += _entry_deposits(entry, account, problems)
    problems.raise_if_any(FileFormat.CAMT054)
    return deposits
