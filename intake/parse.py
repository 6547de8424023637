"""Which parser reads which source's body; the names are ``starter.py``'s SOURCE argument."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from intake import alvys, mycarrier, remittance, transportone
from intake.errors import FieldProblem, IntakeError
from intake.options import IntakeOptions
from models.payment import PaymentInstruction

_JsonParser = Callable[[Any, IntakeOptions], list[PaymentInstruction]]


def _each(parse_one: Callable[[Any, str], PaymentInstruction]) -> _JsonParser:
    """A parser of one Alvys body that also takes a JSON array of them (validated whole)."""

    def parse(body: Any, options: IntakeOptions) -> list[PaymentInstruction]:
        if not isinstance(body, list):
            return [parse_one(body, "")]
        if not body:
            raise IntakeError([FieldProblem("body", "is an empty list")])
        instructions: list[PaymentInstruction] = []
        problems: list[FieldProblem] = []
        for index, item in enumerate(body):
            try:
                instructions.append(parse_one(item, f"[{index}]."))
            except IntakeError as exc:
                problems.extend(exc.problems)
        if problems:
            raise IntakeError(problems)
        return instructions

    return parse


#: JSON sources: SOURCE name -> parser of the parsed JSON body.
JSON_SOURCES: dict[str, _JsonParser] = {
    "alvys-customer-payment": _each(alvys.customer_payment),
    "alvys-carrier-payment": _each(alvys.carrier_payment),
    "transportone-payment": transportone.billing_payments,
    "mycarrier": mycarrier.invoice_payment,
}
SOURCES = (*JSON_SOURCES, "remittance")


def load_json(raw: bytes | str) -> Any:
    """Parse JSON keeping every number exact (floats become Decimal, never binary floats)."""
    try:
        return json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntakeError([FieldProblem("body", f"is not valid JSON ({exc})")], "Malformed JSON") from None


def parse_body(
    source: str, raw: bytes | str, options: IntakeOptions | None = None
) -> list[PaymentInstruction]:
    """A source's raw body → its payment instructions, validated whole: all or nothing."""
    options = options or IntakeOptions()
    if source == "remittance":
        return remittance.parse_csv(raw)
    if source not in JSON_SOURCES:
        raise IntakeError([FieldProblem("source", f"unknown source {source!r}; one of {', '.join(SOURCES)}")])
    return JSON_SOURCES[source](load_json(raw), options)
