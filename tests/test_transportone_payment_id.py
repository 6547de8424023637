"""The ``paymentId`` freightpay sends TransportOne: unique per payment, whatever route started it."""

from __future__ import annotations

from datetime import UTC, datetime

from activities.transportone import payment_of
from intake.remittance import parse_csv
from models.money import Money
from models.payment import PaymentInstruction, Source, Target, TargetIds

HEADER = "target,invoice_number,amount,currency,payment_date,reference\n"


def test_the_senders_own_payment_id_is_kept() -> None:
    instruction = PaymentInstruction(
        source=Source.TRANSPORTONE,
        business_key="INV-1-CQPRPBIK",
        source_event_id="CQPRPBIK",
        target=Target.TRANSPORTONE_PAYMENT,
        ids=TargetIds(invoice_number="INV-1"),
        amount=Money.of("208", "INR"),
        payment_date=datetime(2026, 9, 6, tzinfo=UTC),
        reference_number="UTR123456",
    )
    assert payment_of(instruction).payment_id == "CQPRPBIK"


def test_remittance_lines_at_the_same_place_in_two_files_are_two_payment_ids() -> None:
    """The first line of one file and of another are different payments: never one id ("line 2")."""
    one = parse_csv(HEADER + "transportone-payment,INV-7,10.00,INR,2026-12-01,UTR-A\n")
    two = parse_csv(HEADER + "transportone-payment,INV-7,10.00,INR,2026-12-01,UTR-B\n")
    assert one[0].source_event_id == two[0].source_event_id == "line 2"  # where it stood, for people
    ids = {payment_of(one[0]).payment_id, payment_of(two[0]).payment_id}
    assert ids == {one[0].business_key, two[0].business_key} and len(ids) == 2
