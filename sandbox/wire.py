"""What every simulated vendor writes the same way: JSON with exact decimal amounts."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response


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


async def run_hooks(
    hooks: tuple[Callable[[str, Request, Callable[[], Awaitable[Response]]], Awaitable[Response]], ...],
    endpoint: str,
    request: Request,
    handler: Callable[[Request], Awaitable[Response]],
    answer_error: Callable[[Exception], Response | None],
) -> Response:
    """Run ``hooks`` (fault injection, rate limits) around ``handler``, outermost first.

    ``answer_error`` turns the vendor's own error into its answer, or returns None for any
    other exception, which then propagates.
    """

    async def run(index: int) -> Response:
        try:
            if index == len(hooks):
                return await handler(request)
            return await hooks[index](endpoint, request, lambda: run(index + 1))
        except Exception as error:
            answer = answer_error(error)
            if answer is None:
                raise
            return answer

    return await run(0)
