"""JSON request bodies in which a ``Decimal`` is written with its exact digits.

Why not ``json.dumps``: it refuses ``Decimal``, and the usual workaround (``default=float``)
turns ``0.3`` into whatever the nearest binary fraction prints as and ``12345678901234567.89``
into ``1.2345678901234568e+16``. A payment amount must reach the vendor exactly as freightpay
holds it, so this module writes each ``Decimal`` as a JSON number from its own decimal text.

Every vendor request body goes through :func:`dumps` (Alvys now, TransportOne later).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["dumps"]

#: Beyond this exponent a number is written in E notation instead of spelling out its zeros
#: (still exact; JSON allows ``1E+40``). No amount of money gets near it.
_MAX_PLAIN_EXPONENT = 30


def dumps(obj: Any) -> bytes:
    """``obj`` as compact UTF-8 JSON; ``Decimal`` values become exact JSON numbers.

    Accepts what JSON can hold (``dict`` with ``str`` keys, ``list``/``tuple``, ``str``,
    ``int``, ``float``, ``bool``, ``None``) plus ``Decimal``. NaN and infinities are
    refused with ``ValueError``: no vendor's JSON parser accepts them; anything else with
    ``TypeError``, so a forgotten conversion (a ``datetime``, a model) fails loudly here
    rather than being guessed at.
    """
    parts: list[str] = []
    _write(obj, parts)
    return "".join(parts).encode("utf-8")


def _write(obj: Any, out: list[str]) -> None:
    """Append the JSON text of ``obj`` to ``out`` (one function per kind keeps each one small)."""
    if isinstance(obj, Decimal):
        out.append(decimal_text(obj))
    elif obj is None or isinstance(obj, bool | int | float | str):
        out.append(json.dumps(obj, ensure_ascii=False, allow_nan=False))
    elif isinstance(obj, Mapping):
        _write_object(obj, out)
    elif isinstance(obj, list | tuple):
        _write_array(obj, out)
    else:
        raise TypeError(f"cannot write a {type(obj).__name__} as JSON")


def _write_object(obj: Mapping[Any, Any], out: list[str]) -> None:
    out.append("{")
    for index, (key, value) in enumerate(obj.items()):
        if not isinstance(key, str):
            raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
        if index:
            out.append(",")
        out.append(json.dumps(key, ensure_ascii=False))
        out.append(":")
        _write(value, out)
    out.append("}")


def _write_array(items: list[Any] | tuple[Any, ...], out: list[str]) -> None:
    out.append("[")
    for index, item in enumerate(items):
        if index:
            out.append(",")
        _write(item, out)
    out.append("]")


def decimal_text(value: Decimal) -> str:
    """The exact JSON number text of a finite ``Decimal``: ``1234567.89``, ``0.30``, ``-5``.

    Plain notation where reasonable (``Decimal("1E+2")`` is written ``100``), because some
    parsers of money are stricter than the JSON grammar; trailing zeros are kept, since
    they are part of the value the caller wrote.
    """
    if not value.is_finite():
        raise ValueError(f"{value} cannot be written as a JSON number")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite decimals have an int exponent
    if abs(exponent) > _MAX_PLAIN_EXPONENT:
        return str(value).replace("e", "E")
    return format(value, "f")
