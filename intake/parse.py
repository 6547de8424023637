"""Which parser reads which source's body; the names are ``starter.py``'s SOURCE argument."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from intake import alvys
from intake.errors import FieldProblem, IntakeError
from models.payment import PaymentInstruction

#: JSON sources: one body (or a JSON array of bodies) → instructions.
_JSON_PARSERS: dict[str, Callable[[Any, str], PaymentInstruction]] = {
    "alvys-customer-payment": alvys.customer_payment,
    "alvys-carrier-payment": alvys.carrier_payment,
}

SOURCES = tuple(_JSON_PARSERS)


def load_json(raw: bytes | str) -> Any:
    """Parse JSON keeping every number exact (floats become Decimal, never binary floats)."""
    try:
        return json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntakeError([FieldProblem("body", f"is not valid JSON ({exc})")], "Malformed JSON") from None


def parse_body(source: str, raw: bytes | str) -> list[PaymentInstruction]:
    """A source's raw body → its payment instructions, validated whole: all or nothing."""
    if source not in _JSON_PARSERS:
        raise IntakeError([FieldProblem("source", f"unknown source {source!r}; one of {', '.join(SOURCES)}")])
    body = load_json(raw)
    parser = _JSON_PARSERS[source]
    if isinstance(body, list):
        if not body:
            raise IntakeError([FieldProblem("body", "is an empty list")])
        instructions: list[PaymentInstruction] = []
        problems: list[FieldProblem] = []
        for index, item in enumerate(body):
            try:
                instructions.append(parser(item, f"[{index}]."))
            except IntakeError as exc:
                problems.extend(exc.problems)
        if problems:
            raise IntakeError(problems)
        return instructions
    return [parser(body, "")]
