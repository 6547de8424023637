"""Bank, lockbox and factor files → deposits: BAI2, X12 820, camt.054, Apex's payment report.

The files are written from each standard's published layout (BAI2 version 2, X12 004010 820,
ISO 20022 camt.054, Apex's columns); ``examples/`` holds one of each, with load and invoice
numbers the Alvys sandbox demo data knows (L-1001.., INV-1001..) and one that nothing knows.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from bai2 import bai2 as bai2_library
from hypothesis import given, settings
from hypothesis import strategies as st

from intake import bai2, camt054, x12_820
from intake.deposits import check_deposits, detect_format, parse_deposits
from intake.errors import IntakeError
from models.deposit import Deposit, FileFormat
from models.money import CURRENCIES, Money

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def refused(raw: bytes, fmt: FileFormat | None = None) -> list[str]:
    """The problems of a refused file, each ``where: why``."""
    with pytest.raises(IntakeError) as caught:
        parse_deposits(raw, fmt)
    return [str(problem) for problem in caught.value.problems]


# -- BAI2 -----------------------------------------------------------------------------------------


def bai2_file(
    accounts: list[tuple[str, list[list[str]]]],
    group_currency: str = "USD",
    opening: int = 100000,
) -> str:
    """A BAI2 file with right control totals and record counts: (03 currency, [16 with its 88s])."""
    out = [
        "01,BANKID,FREIGHTPAY,260710,0600,1,80,,2/",
        f"02,FREIGHTPAY,BANKID,1,260709,2400,{group_currency},2/",
    ]
    group_total, group_records = 0, 2
    for number, (currency, details) in enumerate(accounts):
        records = [f"03,44321876{number:02d},{currency},010,+{opening},,/"]
        total = opening
        for detail in details:
            records += detail
            total += int(detail[0].split(",")[2])
        records.append(f"49,{total},{len(records) + 1}/")
        out += records
        group_total += total
        group_records += len(records)
    out.append(f"98,{group_total},{len(accounts)},{group_records}/")
    out.append(f"99,{group_total},1,{len(out) + 1}/")
    return "\n".join(out) + "\n"


def replace_line(text: str, starts: str, new: str) -> bytes:
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(starts))
    lines[index] = new
    return ("\n".join(lines) + "\n").encode()


def test_bai2_lockbox_example() -> None:
    deposits = parse_deposits(example("lockbox.bai2"))
    assert [(d.key, d.reference, d.amount) for d in deposits] == [
        ("260709100101", "10045", usd("382.53")),
        ("260709100102", "20417", usd("600.00")),
        ("260709200301", "260709200301", usd("750.00")),
        ("FW260709-8841", "FW260709-8841", usd("25000.00")),
        (deposits[4].key, deposits[4].key, usd("1000.00")),
        ("260709200302", "ACH0709-77", usd("3000.00")),
        ("260709100201", "30077", Money.of("2500.00", "CAD")),
    ]
    assert re.fullmatch(r"h[0-9a-f]{24}", deposits[4].key)  # a branch deposit without references
    first = deposits[0]
    assert first.free_text == "LOCKBOX 4410 CHECK 10045 MOBIX SOURCING INV INV-1001 LOAD L-1001 PO 26714518"
    assert first.kind == "lockbox: 115 Lockbox Deposit"
    assert first.where == "line 4 (16 transaction detail)"
    assert str(first.value_date) == "2026-07-09"
    assert deposits[1].free_text == "LOCKBOX 4410 CHECK 20417 MOBIX SOURCING INV-1003 PARTIAL PAYMENT"
    assert deposits[2].kind == "ach: 165 Preauthorized ACH Credit"
    assert deposits[3].kind == "wire: 195 Incoming Money Transfer"
    assert deposits[4].kind == "deposit: 301 Commercial Deposit"
    assert deposits[5].kind == "ach: 169 Miscellaneous ACH Credit"  # value-dated: V, date, time
    assert all(d.source == "bai2" and not d.lines for d in deposits)
    # the 475 check paid (a debit) is not a deposit
    assert "4417" not in {d.reference for d in deposits}


def test_bai2_88_continuations_carry_the_text_and_even_the_references() -> None:
    text = bai2_file(
        [
            (
                "USD",
                [
                    ["16,115,10000,0,BR1,CR1,LOCKBOX 4410", "88,INV-1001", "88,L-1001, PO 26714518"],
                    ["16,142,20000,0/", "88,BR2,CR2,ACH CREDIT MOBIX"],
                    ["16,142,30000,0,BR3/", "88,CR3/", "88,TEXT ON ITS OWN ROW"],
                ],
            )
        ]
    )
    deposits = parse_deposits(text.encode(), FileFormat.BAI2)
    assert [(d.key, d.reference, d.free_text) for d in deposits] == [
        ("BR1", "CR1", "LOCKBOX 4410 INV-1001 L-1001, PO 26714518"),
        ("BR2", "CR2", "ACH CREDIT MOBIX"),
        ("BR3", "CR3", "TEXT ON ITS OWN ROW"),
    ]


def test_bai2_library_misreads_an_empty_text_before_its_88_continuation() -> None:
    """``16,...,CR1,/`` (text empty, delimited) then ``88,text``: the package reads ``,text``."""
    text = bai2_file([("USD", [["16,165,75000,1,BR1,CR1,/", "88,ACH CCD MOBIX SOURCING INV-1005 L-1005"]])])
    library = bai2_library.parse_from_string(text).children[0].children[0].children[0]
    assert library.text == ",ACH CCD MOBIX SOURCING INV-1005 L-1005"  # the package's misreading
    (deposit,) = parse_deposits(text.encode(), FileFormat.BAI2)
    assert deposit.free_text == "ACH CCD MOBIX SOURCING INV-1005 L-1005"


def test_bai2_library_misreads_a_slash_ended_text_continued_on_88() -> None:
    """``...,WIRE FROM BIG BOX/`` then ``88,OBI INV-2001/``: the package joins the parts with a comma."""
    text = bai2_file(
        [("USD", [["16,195,2500000,0,,FW1,WIRE FROM BIG BOX RETAIL/", "88,OBI INV-2001 PO-2001/"]])]
    )
    library = bai2_library.parse_from_string(text).children[0].children[0].children[0]
    assert library.text == "WIRE FROM BIG BOX RETAIL,OBI INV-2001 PO-2001"  # the package's misreading
    (deposit,) = parse_deposits(text.encode(), FileFormat.BAI2)
    assert deposit.free_text == "WIRE FROM BIG BOX RETAIL OBI INV-2001 PO-2001"
    assert deposit.key == "FW1"  # no bank reference: the customer reference


def test_bai2_amounts_are_in_each_currencys_minor_units() -> None:
    text = bai2_file(
        [
            ("JPY", [["16,115,38253,0,BRJ,,YEN"]]),
            ("KWD", [["16,115,38253,0,BRK,,DINAR"]]),
            ("", [["16,115,38253,0,BRG,,GROUP CURRENCY"]]),
        ],
        group_currency="CAD",
    )
    deposits = parse_deposits(text.encode())
    assert [d.amount for d in deposits] == [
        Money.of("38253", "JPY"),
        Money.of("38.253", "KWD"),
        Money.of("382.53", "CAD"),
    ]


def test_bai2_hash_key_is_stable_and_tells_identical_records_apart() -> None:
    details = [["16,301,50000,0,,,BRANCH DEPOSIT"], ["16,301,50000,0,,,BRANCH DEPOSIT"]]
    first = parse_deposits(bai2_file([("USD", details)]).encode())
    again = parse_deposits(bai2_file([("USD", details)], opening=900000).encode())  # another day's balances
    assert [d.key for d in first] == [d.key for d in again]
    assert first[1].key == first[0].key + "-2"


def test_bai2_wrong_account_total_is_refused_naming_the_trailer() -> None:
    text = bai2_file([("USD", [["16,115,38253,0,BR1,CR1,LOCKBOX"]])])
    problems = refused(replace_line(text, "49,", "49,138252,3/"))
    assert problems == [
        "line 5 (49 account trailer), account control total: says 138252, the file holds 138253",
        "line 6 (98 group trailer), group control total: says 138253, the file holds 138252",
    ]


def test_bai2_record_counts_include_continuations() -> None:
    text = bai2_file([("USD", [["16,115,38253,0,BR1,CR1,LOCKBOX", "88,INV-1001"]])])
    problems = refused(replace_line(text, "49,", "49,138253,3/"))
    assert problems == ["line 6 (49 account trailer), number of records: says 3, the file holds 4"]
    problems = refused(replace_line(text, "99,", "99,138253,1,7/"))
    assert problems == ["line 8 (99 file trailer), number of records: says 7, the file holds 8"]
    problems = refused(replace_line(text, "98,", "98,138253,2,6/"))
    assert problems == ["line 7 (98 group trailer), number of accounts: says 2, the file holds 1"]


def test_bai2_bad_records_are_refused_naming_the_line() -> None:
    good = bai2_file([("USD", [["16,115,38253,0,BR1,CR1,LOCKBOX"]])])
    cases = {
        "16,115,382.53,0,BR1,CR1,LOCKBOX": "line 4 (16 transaction detail): '382.53' is not a whole number",
        "16,999,38253,0,BR1,CR1,LOCKBOX": "line 4 (16 transaction detail): type code '999' is not in the BAI2",
        "16,115,38253,Q,BR1,CR1,LOCKBOX": "line 4 (16 transaction detail): funds type 'Q' is not one of",
        "16,115,,0,BR1,CR1,LOCKBOX": "line 4 (16 transaction detail), amount: is required",
        "X6,115,38253,0,BR1,CR1,LOCKBOX": "line 4: 'X6,115,38253,0,BR1,C' is not a BAI2 record",
        "49,138253,3/": "line 5 (49 account trailer): expected a 03 account identifier record here, found 49",
    }
    for line, problem in cases.items():
        found = refused(replace_line(good, "16,", line))
        assert any(p.startswith(problem) for p in found), (line, found)
    unknown = refused(replace_line(good, "03,", "03,4432187600,XYZ,010,+100000,,/"))
    assert unknown == ["line 3 (03 account identifier), currency: unknown ISO 4217 currency 'XYZ'"]
    cut = refused("\n".join(good.splitlines()[:-1]).encode(), FileFormat.BAI2)
    assert cut == ["line 6 (98 group trailer): the file ends without its 99 file trailer"]
    extra = refused((good + "16,115,100,0,BR9,,AFTER THE END\n").encode(), FileFormat.BAI2)
    assert extra == ["line 8: follows the 99 file trailer; a file ends there"]


def test_bai2_the_same_bank_reference_twice_is_refused() -> None:
    text = bai2_file([("USD", [["16,115,100,0,BR1,,A"], ["16,115,200,0,BR1,,B"]])])
    assert refused(text.encode()) == [
        "line 5 (16 transaction detail): repeats the key 'BR1' of line 4 (16 transaction detail); "
        "one deposit cannot be in a file twice"
    ]


_REF = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-", min_size=1, max_size=12)
_TEXT = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -.#", max_size=60)


@st.composite
def random_deposits(draw: st.DrawFn) -> tuple[str, list[tuple[int, str, str, str]]]:
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    count = draw(st.integers(min_value=1, max_value=8))
    banks = draw(st.lists(_REF, min_size=count, max_size=count, unique=True))
    deposits = []
    for bank in banks:
        minor = draw(st.integers(min_value=1, max_value=10**12))
        code = draw(st.sampled_from(["115", "142", "165", "166", "195", "301", "399"]))
        deposits.append((minor, code, bank, " ".join(draw(_TEXT).split())))
    return currency, deposits


@given(
    random_deposits(),
    st.integers(min_value=5, max_value=40),
    st.lists(st.sampled_from(["after-references", "on-the-16", "after-empty-text"]), min_size=8, max_size=8),
)
@settings(max_examples=150, deadline=None)
def test_bai2_written_from_random_deposits_parses_back_to_the_same_amounts(
    drawn: tuple[str, list[tuple[int, str, str, str]]], width: int, layouts: list[str]
) -> None:
    currency, wanted = drawn
    details = []
    for (minor, code, bank, text), layout in zip(wanted, layouts, strict=False):
        words = text.split()
        chunks: list[str] = []
        while words:  # the text in chunks of about ``width`` characters, broken between words
            row: list[str] = []
            while words and (not row or len(" ".join([*row, words[0]])) <= width):
                row.append(words.pop(0))
            chunks.append(" ".join(row))
        head = f"16,{code},{minor},0,{bank},"
        if layout == "on-the-16" and chunks:
            rows = [head + "," + chunks.pop(0)]
        elif layout == "after-empty-text":
            rows = [head + ",/"]  # the layout the bai2 package misreads
        else:
            rows = [head + "/"]
        details.append(rows + ["88," + chunk for chunk in chunks])
    deposits = parse_deposits(bai2_file([(currency, details)]).encode())
    places = CURRENCIES[currency][1]
    assert [(d.amount, d.key, d.free_text) for d in deposits] == [
        (Money(amount=Decimal(minor).scaleb(-places), currency=currency), bank, text)
        for minor, _, bank, text in wanted
    ]
    assert all(d.amount.minor == minor for d, (minor, *_) in zip(deposits, wanted, strict=True))


# -- X12 820 --------------------------------------------------------------------------------------


def x12(segments: list[str], element: str = "*", component: str = ">", terminator: str = "~\n") -> bytes:
    """An interchange of one group around ``segments`` (each ST..SE), with the counts filled in."""
    isa = [
        "ISA", "00", " " * 10, "00", " " * 10, "ZZ", "MOBIXSOURCING".ljust(15), "ZZ",
        "FREIGHTPAY".ljust(15), "260710", "1200", "U", "00401", "000000777", "0", "P", component,
    ]  # fmt: skip
    header = element.join(isa)
    assert len(header) == 105
    body, sets, count = [], 0, 0
    for segment in segments:
        if segment.startswith("ST*"):
            sets, count = sets + 1, 0
        count += 1
        body.append(segment.replace("SE*#", f"SE*{count}"))
    body = ["GS*RA*MOBIX*FREIGHTPAY*20260710*1200*77*X*004010", *body, f"GE*{sets}*77", "IEA*1*000000777"]
    text = header + terminator[0] + "".join(s.replace("*", element) + terminator for s in body)
    return text.encode()


PAYMENT = [
    "ST*820*0001",
    "BPR*C*1157.53*C*ACH*CTX*01*071000013*DA*123456789*1512345678**01*031100209*DA*987654321*20260710",
    "TRN*1*ACH777*1512345678",
    "N1*PR*MOBIX SOURCING*91*CUST-MOBIX",
    "ENT*1",
    "RMR*IV*INV-1001*PI*382.53*382.53",
    "RMR*IV*INV-1003*PI*650.00*1000.00",
    "ADX*-350.00*01*CR*DISPUTED DETENTION",
    "RMR*IV*INV-7777*PI*125.00*125.00",
    "SE*#*0001",
]


def test_x12_820_example() -> None:
    deposits = parse_deposits(example("remittance-820.x12"))
    assert [(d.key, d.reference, d.amount, d.payer, d.kind) for d in deposits] == [
        ("ACH260710000777", "ACH260710000777", usd("1157.53"), "MOBIX SOURCING", "ach: ACH CTX"),
        ("10552", "10552", usd("3000.00"), "MOBIX SOURCING", "check: CHK"),
    ]
    payment = deposits[0]
    assert str(payment.value_date) == "2026-07-10"
    assert [(line.reference, line.amount_paid, line.invoice_amount) for line in payment.lines] == [
        ("INV-1001", usd("382.53"), usd("382.53")),
        ("INV-1003", usd("650.00"), usd("1000.00")),
        ("INV-7777", usd("125.00"), usd("125.00")),  # an invoice nobody knows: matching leaves it unapplied
    ]
    (short_pay,) = payment.lines[1].adjustments
    assert (short_pay.amount, short_pay.reason_code, short_pay.text) == (
        usd("-350.00"),
        "01",
        "DISPUTED DETENTION",
    )
    assert payment.lines[1].where == "ST 0001, segment 11 (RMR)"
    assert deposits[1].free_text == "BM L-3001"  # the REF*BM after the RMR


@pytest.mark.parametrize(
    ("element", "component", "terminator"),
    [("*", ">", "~\n"), ("|", "^", "\n"), ("^", ":", "'"), ("\x1d", "\x1f", "\x1e\r\n")],
    ids=["default", "pipe-newline", "caret-quote", "control-characters"],
)
def test_x12_820_separators_come_from_the_isa(element: str, component: str, terminator: str) -> None:
    (deposit,) = parse_deposits(x12(PAYMENT, element, component, terminator))
    assert deposit.key == "ACH777"
    assert [line.amount_paid for line in deposit.lines] == [usd("382.53"), usd("650.00"), usd("125.00")]
    assert deposit.lines[1].adjustments[0].amount == usd("-350.00")


def test_x12_820_component_separator_inside_an_element_is_refused() -> None:
    segments = [s.replace("INV-7777", "INV^7777") for s in PAYMENT]
    assert refused(x12(segments, "|", "^", "\n")) == [
        "segment 11 (RMR), RMR02: holds the component separator '^' (ISA16); it is a simple element"
    ]


def test_x12_820_wrong_se_count_is_refused_naming_the_segment() -> None:
    segments = [s.replace("SE*#", "SE*9") for s in PAYMENT]
    assert refused(x12(segments)) == [
        "segment 12 (SE), SE01: says 9, the file holds 10 segments in the transaction set (ST and SE included)"
    ]


def test_x12_820_bad_elements_are_refused_naming_them() -> None:
    def problems_with(old: str, new: str) -> list[str]:
        return refused(x12([s.replace(old, new) if s.startswith(old[:3]) else s for s in PAYMENT]))

    assert problems_with("RMR*IV*INV-1001*PI*382.53", "RMR*IV*INV-1001*PI*382,53") == [
        "segment 8 (RMR), RMR04: '382,53' is not a decimal amount"
    ]
    assert problems_with("RMR*IV*INV-1001*PI*382.53", "RMR*IV*INV-1001*PI*382.531") == [
        "segment 8 (RMR), RMR04: amount 382.531 has more decimals than USD allows (2)"
    ]
    assert problems_with("RMR*IV*INV-1001", "RMR*IV*") == ["segment 8 (RMR), RMR02: is required"]
    assert problems_with("TRN*1*ACH777", "TRN*1*") == [
        "segment 5 (TRN), TRN02: is required",
        "segment 3 (ST): transaction set 0001 has no TRN02 (the trace number, its key)",
    ]
    assert problems_with("BPR*C*1157.53", "BPR*C*") == ["segment 4 (BPR), BPR02: is required"]
    assert problems_with("ADX*-350.00", "ADX*") == ["segment 10 (ADX), ADX01: is required"]
    assert problems_with("ST*820", "ST*810") == [
        "segment 3 (ST), ST01: is '810'; this reader takes 820s only"
    ]
    dated = problems_with("BPR*C*1157.53", PAYMENT[1].replace("20260710", "20261310"))
    assert dated == ["segment 4 (BPR), BPR16: '20261310' is not a CCYYMMDD date"]


def test_x12_820_unknown_currency_is_refused() -> None:
    segments = [*PAYMENT[:3], "CUR*PR*XYZ", *PAYMENT[3:]]
    assert refused(x12(segments)) == ["segment 6 (CUR), CUR02: unknown ISO 4217 currency 'XYZ'"]
    canadian = [*PAYMENT[:3], "CUR*PR*CAD", *PAYMENT[3:]]
    (deposit,) = parse_deposits(x12(canadian))
    assert deposit.amount == Money.of("1157.53", "CAD")
    assert deposit.lines[0].amount_paid == Money.of("382.53", "CAD")


def test_x12_820_lines_paying_more_than_the_bpr_are_refused() -> None:
    segments = [s.replace("BPR*C*1157.53", "BPR*C*1000.00") for s in PAYMENT]
    assert refused(x12(segments)) == [
        "ST 0001, segment 4 (BPR): its lines pay USD 1,157.53, more than the deposit's USD 1,000.00"
    ]


def test_x12_820_an_adx_before_any_rmr_adjusts_the_whole_payment() -> None:
    segments = [*PAYMENT[:5], "ADX*-23.15*QP**QUICK PAY FEE 2%", *PAYMENT[5:]]
    segments = [s.replace("BPR*C*1157.53", "BPR*C*1134.38") for s in segments]
    (deposit,) = parse_deposits(x12(segments))
    (fee,) = deposit.adjustments
    assert (fee.amount, fee.reason_code, fee.text) == (usd("-23.15"), "QP", "QUICK PAY FEE 2%")
    assert sum(line.amount_paid.amount for line in deposit.lines) + fee.amount.amount == deposit.amount.amount


def test_x12_820_envelope_problems_are_refused() -> None:
    good = x12(PAYMENT).decode()
    assert refused(good.replace("GE*1*77", "GE*2*77").encode()) == [
        "segment 13 (GE), GE01: says 2, the file holds 1 transaction sets in the group"
    ]
    assert refused(good.replace("IEA*1*000000777", "IEA*1*000000778").encode()) == [
        "segment 14 (IEA), IEA02: control number '000000778' differs from segment 1 (ISA), ISA13's '000000777'"
    ]
    assert refused(good.replace("SE*10*0001", "SE*10*0002").encode()) == [
        "segment 12 (SE), SE02: control number '0002' differs from segment 3 (ST), ST02's '0001'"
    ]
    assert refused(good.replace("MOBIXSOURCING  ", "MOBIXSOURCING ").encode()) == [
        "segment 1 (ISA): its ISA16 begins at character 104, not 105: an ISA is 106 characters, each field "
        "fixed-width (is a field too long or short?)"
    ]
    assert refused(good[: good.index("IEA")].encode()) == ["segment 13: the interchange ends without its IEA"]


def test_x12_820_a_debit_is_not_a_deposit() -> None:
    assert parse_deposits(x12([s.replace("BPR*C*1157.53*C", "BPR*C*1157.53*D") for s in PAYMENT])) == []


# -- camt.054 -------------------------------------------------------------------------------------


def test_camt054_example() -> None:
    deposits = parse_deposits(example("notification.camt054.xml"))
    assert [(d.key, d.amount, d.payer) for d in deposits] == [
        ("MOBIX-PMT-7781", usd("382.53"), "Mobix Sourcing"),
        ("MOBIX-PMT-7782", usd("1000.00"), "Mobix Sourcing"),
        ("FW260709-3001", usd("3000.00"), "Mobix Sourcing"),  # EndToEndId NOTPROVIDED: Refs/AcctSvcrRef
        ("BOA260709-000454", usd("25000.00"), None),  # an entry without TxDtls: its AcctSvcrRef
    ]
    structured = deposits[1]
    assert [(line.reference, line.amount_paid, line.invoice_amount) for line in structured.lines] == [
        ("INV-1003", usd("400.00"), usd("1000.00")),
        ("INV-1005", usd("600.00"), usd("750.00")),
    ]
    assert structured.lines[0].where == "Ntfctn[1]/Ntry[1]/NtryDtls[1]/TxDtls[2]/RmtInf[1]/Strd[1]"
    unstructured = deposits[2]
    assert (unstructured.lines, unstructured.free_text) == ((), "INV-3001 L-3001 PO-3001 LINEHAUL")
    assert deposits[3].free_text == "WIRE FROM BIG BOX RETAIL OBI INV-2001 PO-2001"
    assert [d.kind for d in deposits] == [
        "ach: PMNT/RCDT/ACDT",
        "ach: PMNT/RCDT/ACDT",
        "wire: PMNT/RCDT/DMCT",
        "wire: BAI 195",
    ]
    assert all(str(d.value_date) == "2026-07-09" for d in deposits)
    # the DBIT fee and the pending credit are not deposits
    assert not {"BOA260709-000453", "BOA260709-000455"} & {d.key for d in deposits}


CAMT_V2 = """<?xml version="1.0"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02">
 <BkToCstmrDbtCdtNtfctn>
  <GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-07-09T18:00:00</CreDtTm></GrpHdr>
  <Ntfctn><Id>N1</Id><CreDtTm>2026-07-09T18:00:00</CreDtTm><Acct><Id><IBAN>US00TEST</IBAN></Id></Acct>
   <Ntry>
    <Amt Ccy="USD">{entry}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
    <BookgDt><DtTm>2026-07-09T10:00:00</DtTm></BookgDt><AcctSvcrRef>E1</AcctSvcrRef>
    <NtryDtls><TxDtls>
     <Refs><EndToEndId>E2E-1</EndToEndId></Refs>
     <AmtDtls><TxAmt><Amt Ccy="USD">{tx}</Amt></TxAmt></AmtDtls>
     <RltdPties><Dbtr><Nm>Big Box Retail</Nm></Dbtr></RltdPties>
     <RmtInf>
      <Ustrd>PAYMENT FOR L-2001</Ustrd>
      <Strd><RfrdDocInf><Nb>INV-2001</Nb></RfrdDocInf>
       <RfrdDocAmt><DuePyblAmt Ccy="USD">{tx}</DuePyblAmt></RfrdDocAmt></Strd>
     </RmtInf>
    </TxDtls></NtryDtls>
   </Ntry>
  </Ntfctn>
 </BkToCstmrDbtCdtNtfctn>
</Document>
"""


@pytest.mark.parametrize(
    "namespace",
    [
        'xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"',
        'xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.13"',
        'xmlns:c="urn:iso:std:iso:20022:tech:xsd:camt.054.001.04"',
        "",
    ],
    ids=["v02", "v13", "prefixed", "none"],
)
def test_camt054_any_version_and_namespace(namespace: str) -> None:
    xml = CAMT_V2.format(entry="25000.00", tx="25000.00").replace(
        'xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"', namespace
    )
    if namespace.startswith("xmlns:c"):
        xml = re.sub(r"<(/?)(?=[A-Z])", r"<\1c:", xml)
    raw = xml.encode()
    assert detect_format(raw) is FileFormat.CAMT054
    (deposit,) = parse_deposits(raw)
    assert (deposit.key, deposit.amount, deposit.payer) == ("E2E-1", usd("25000.00"), "Big Box Retail")
    assert [(line.reference, line.amount_paid, line.invoice_amount) for line in deposit.lines] == [
        ("INV-2001", usd("25000.00"), usd("25000.00"))  # no RmtdAmt: the DuePyblAmt is what is paid
    ]
    assert deposit.free_text == "PAYMENT FOR L-2001"
    assert str(deposit.value_date) == "2026-07-09"  # BookgDt/DtTm, no ValDt


def test_camt054_refusals_name_the_element() -> None:
    assert refused(CAMT_V2.format(entry="25000.00", tx="24000.00").encode()) == [
        "Ntfctn[1]/Ntry[1]/Amt: the entry is USD 25,000.00, its transactions (TxDtls/Amt) add up to USD 24,000.00",
    ]
    assert refused(CAMT_V2.format(entry="25,000.00", tx="25000.00").encode()) == [
        "Ntfctn[1]/Ntry[1]/Amt: '25,000.00' is not an amount (digits, '.' and decimals, no sign)"
    ]
    bad_currency = CAMT_V2.format(entry="25000.00", tx="25000.00").replace(
        '<Amt Ccy="USD">', '<Amt Ccy="XYZ">', 1
    )
    assert refused(bad_currency.encode()) == ["Ntfctn[1]/Ntry[1]/Amt: unknown ISO 4217 currency 'XYZ'"]
    no_ccy = CAMT_V2.format(entry="25000.00", tx="25000.00").replace('<Amt Ccy="USD">', "<Amt>", 1)
    assert refused(no_ccy.encode()) == ["Ntfctn[1]/Ntry[1]/Amt: has no Ccy (currency) attribute"]
    assert refused(b"<Document><Other/></Document>", FileFormat.CAMT054) == [
        "file: is XML but not a camt.054: it has no BkToCstmrDbtCdtNtfctn"
    ]
    assert refused(b"<Document><BkToCstmrDbtCdtNtfctn>", FileFormat.CAMT054)[0].startswith(
        "file: is not well-formed XML (line 1"
    )


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
        '<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE d SYSTEM "http://example.invalid/camt.dtd">',
    ],
    ids=["entity-expansion", "external-entity", "external-dtd"],
)
def test_camt054_xml_with_a_dtd_is_refused(doctype: str) -> None:
    xml = CAMT_V2.format(entry="1.00", tx="1.00").replace(
        '<?xml version="1.0"?>', '<?xml version="1.0"?>' + doctype
    )
    (problem,) = refused(xml.replace("E2E-1", "&b;").encode(), FileFormat.CAMT054)
    assert problem.startswith("file: is refused:")


# -- Apex -----------------------------------------------------------------------------------------


def test_apex_example() -> None:
    deposits = parse_deposits(example("apex-payment-report.csv"))
    assert [(d.key, d.reference, d.amount, d.payer, d.kind) for d in deposits] == [
        ("88123", "88123", usd("1132.53"), "Mobix Sourcing", "factor: Check"),
        ("88124", "88124", usd("25000.00"), "Big Box Retail", "factor: ACH"),
        ("88125", "88125", usd("750.00"), "Mobix Sourcing", "factor: Check"),
    ]
    assert [[(line.reference, line.amount_paid) for line in d.lines] for d in deposits] == [
        [("INV-1001", usd("382.53")), ("L-1005", usd("750.00"))],  # an invoice and a load number
        [("INV-2001", usd("25000.00"))],
        [("L-3101", usd("500.00")), ("L-3102", usd("250.00"))],
    ]
    assert [d.lines[0].where for d in deposits] == ["line 2", "line 4", "line 5"]
    assert str(deposits[2].value_date) == "2026-07-10"


def test_apex_refusals_name_line_and_column() -> None:
    header = "Check,PostDate,Debtor,Inv.,Amount,Type\n"
    rows = {
        "88123,2026-07-09,Mobix Sourcing,INV-1001,382.53,Check": "line 2, column PostDate: '2026-07-09' is not a date (MM/DD/YYYY)",
        "88123,07/09/2026,Mobix Sourcing,INV-1001,-382.53,Check": "line 2, column Amount: '-382.53' is not greater than zero",
        "88123,07/09/2026,Mobix Sourcing,INV-1001,382.531,Check": "line 2, column Amount: amount 382.531 has more decimals",
        "88123,07/09/2026,Mobix Sourcing,,382.53,Check": "line 2, column Inv.: is required",
        "88123,07/09/2026,Mobix Sourcing,INV-1001,abc,Check": "line 2, column Amount: 'abc' is not an amount",
    }
    for row, problem in rows.items():
        found = refused((header + row + "\n").encode(), FileFormat.APEX)
        assert found[0].startswith(problem), (row, found)
    assert refused(b"Check,PostDate,Debtor,Inv.,Type\n1,07/09/2026,X,INV-1,Check\n", FileFormat.APEX) == [
        "line 1: missing column 'Amount'"
    ]
    two_debtors = (
        header
        + "88123,07/09/2026,Mobix Sourcing,INV-1001,1.00,Check\n88123,07/09/2026,Big Box,INV-2001,1.00,Check\n"
    )
    assert refused(two_debtors.encode()) == [
        "line 3, column Debtor: check 88123 is from 'Mobix Sourcing' on line 2; a check comes from one debtor"
    ]


def test_apex_columns_in_any_order_with_dollar_amounts() -> None:
    raw = b' Inv , Amount ,Check,Type,Debtor,PostDate,Note\nL-1001,"$1,382.53",5,ACH,Mobix,7/9/2026,x\n'
    (deposit,) = parse_deposits(raw)
    assert (deposit.key, deposit.amount, deposit.lines[0].reference) == ("5", usd("1382.53"), "L-1001")


# -- detection, the one path, the money invariant ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("lockbox.bai2", FileFormat.BAI2),
        ("remittance-820.x12", FileFormat.X12_820),
        ("notification.camt054.xml", FileFormat.CAMT054),
        ("apex-payment-report.csv", FileFormat.APEX),
    ],
)
def test_detect_format_from_content(name: str, fmt: FileFormat) -> None:
    raw = example(name)
    assert detect_format(raw) is fmt
    assert detect_format(b"\xef\xbb\xbf\r\n" + raw) is fmt  # a byte-order mark and blank lines first


def test_refusals_say_nothing_was_started() -> None:
    with pytest.raises(IntakeError) as caught:
        parse_deposits(b"01,BANK/\n", FileFormat.BAI2)
    assert caught.value.title == "The bai2 file is invalid; nothing was started"


def test_detect_format_falls_back_to_freightpays_csv() -> None:
    remittance = (
        b"target,amount,currency,payment_date,reference\nalvys-customer-payment,1,USD,2026-07-09,R1\n"
    )
    assert detect_format(remittance) is FileFormat.CSV
    assert detect_format(b"<invoice/>") is FileFormat.CSV
    assert (
        detect_format(b"Buy,Inv,Debtor,Amount,Advance,InvDate\n") is FileFormat.CSV
    )  # Apex's purchase report
    assert refused(remittance) == [
        "format: is freightpay's remittance CSV (payment instructions, not deposits); "
        "it is read by intake.remittance.parse_csv"
    ]


def test_the_detected_and_the_named_format_read_alike() -> None:
    for name, fmt in [("lockbox.bai2", FileFormat.BAI2), ("remittance-820.x12", FileFormat.X12_820)]:
        assert parse_deposits(example(name), fmt) == parse_deposits(example(name))


@pytest.mark.parametrize(
    "name", ["lockbox.bai2", "remittance-820.x12", "notification.camt054.xml", "apex-payment-report.csv"]
)
def test_money_invariant_of_every_example_deposit(name: str) -> None:
    deposits = parse_deposits(example(name))
    assert deposits
    for deposit in deposits:
        assert isinstance(deposit.amount.amount, Decimal) and deposit.amount.is_positive()
        assert deposit.amount.amount.as_tuple().exponent == -CURRENCIES[deposit.amount.currency][1]
        paid = sum((line.amount_paid.amount for line in deposit.lines), Decimal(0))
        adjusted = paid + sum((a.amount.amount for a in deposit.adjustments), Decimal(0))
        assert adjusted <= deposit.amount.amount
        if deposit.source == "apex":
            assert paid == deposit.amount.amount  # the check is the sum of its rows
        for line in deposit.lines:
            assert line.amount_paid.currency == deposit.amount.currency
            if line.invoice_amount is not None and line.adjustments:
                # the ADX explains the short pay: invoice + adjustments = paid
                total = line.invoice_amount.amount + sum(a.amount.amount for a in line.adjustments)
                assert total == line.amount_paid.amount


def test_one_path_checks_every_format_alike() -> None:
    deposit = Deposit(source="apex", key="1", amount=usd("10.00"), reference="1", where="check 1")
    check_deposits([deposit], FileFormat.APEX)
    overpaid = deposit.model_copy(
        update={"lines": (*deposit.lines, *parse_deposits(example("apex-payment-report.csv"))[0].lines)}
    )
    with pytest.raises(
        IntakeError, match=r"check 1: its lines pay USD 1,132.53, more than the deposit's USD 10.00"
    ):
        check_deposits([overpaid], FileFormat.APEX)
    foreign = deposit.model_copy(update={"amount": Money.of("10.00", "CAD"), "lines": overpaid.lines[:1]})
    with pytest.raises(IntakeError, match="the amount paid is in USD, the deposit in CAD"):
        check_deposits([foreign], FileFormat.APEX)


def test_a_non_utf8_file_is_refused() -> None:
    assert refused(b"01,BANK,\xff\xfe/\n", FileFormat.BAI2) == [
        "file: is not UTF-8 text (invalid start byte at byte 8)"
    ]
    assert bai2 and x12_820 and camt054  # each format is its own module
