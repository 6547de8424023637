"""What every simulated vendor writes the same way: JSON with exact decimal amounts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from fastapi.responses import JSONResponse


def dumps_exact(value: Any) -> str:
    """JSON text where a Decimal is written as its exact digits, so 382.53 never becomes 382.52999."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a JSON number: {value}")
        return format(value, "f")
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps_exact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps_exact(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


class DecimalJSONResponse(JSONResponse):
    """JSONResponse that renders Decimal amounts as exact JSON numbers (see :func:`dumps_exact`)."""

    def render(self, content: Any) -> bytes:
        return dumps_exact(content).encode("utf-8")
