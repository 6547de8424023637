"""The identity rule (models/identity.py): injective, reversible, and today's ids for safe keys."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from models.identity import escape_key, key_from_workflow_id, unescape_key, workflow_id
from models.payment import Source, business_key_of, workflow_id_for

SAFE_ALPHABET = string.ascii_letters + string.digits + "._-"
safe_keys = st.text(alphabet=SAFE_ALPHABET, min_size=1, max_size=40)
#: Keys as senders write them: punctuation, spaces, case, accents, emoji, the escape character itself.
any_keys = st.text(
    alphabet=st.one_of(st.sampled_from(SAFE_ALPHABET + "/?#% ~_:&=+'\"\\"), st.characters()),
    min_size=1,
    max_size=40,
)


@given(safe_keys)
def test_a_safe_key_keeps_exactly_todays_id(key: str) -> None:
    assert workflow_id_for(Source.ALVYS_CUSTOMER, key) == f"payment-alvys-customer-{key}"


@given(any_keys, any_keys)
def test_distinct_keys_never_share_an_id(a: str, b: str) -> None:
    if a != b:
        assert escape_key(a) != escape_key(b)


@given(any_keys)
def test_an_id_gives_back_its_exact_key(key: str) -> None:
    assert unescape_key(escape_key(key)) == key
    wid = workflow_id_for(Source.REMITTANCE, key)
    assert business_key_of(wid, Source.REMITTANCE) == key
    assert business_key_of(wid, Source.MYCARRIER) is None


def test_the_collisions_the_old_rule_had_are_gone() -> None:
    ids = {workflow_id("payment", "alvys-customer", k) for k in ("X/1", "X?1", "X_1", "X 1", "x/1")}
    assert len(ids) == 5
    assert "payment-alvys-customer-X_1" in ids  # the safe key keeps its id
    assert key_from_workflow_id("payment-alvys-customer-X~2F1", "payment", "alvys-customer") == "X/1"
