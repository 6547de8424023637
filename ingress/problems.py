"""The ingress's answers to what goes wrong: RFC 9457 problems, and their OpenAPI documentation."""

from __future__ import annotations

import logging
from typing import Any

from fastapi.responses import JSONResponse

from intake.errors import FieldProblem, IntakeError, PaymentConflicts
from models.payment import Source, workflow_id_for

log = logging.getLogger("freightpay.ingress")
PROBLEM = "application/problem+json"
RETRY_AFTER_SECONDS = 5


class Problem(Exception):
    """An HTTP problem (RFC 9457) to answer with; ``errors`` name fields and reasons."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        errors: list[FieldProblem] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(title)
        self.status, self.title, self.detail = status, title, detail
        self.errors = errors or []
        self.headers = headers or {}
        self.extra = extra or {}

    def response(self, instance: str) -> JSONResponse:
        body: dict[str, Any] = {"type": "about:blank", "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        body["instance"] = instance
        if self.errors:
            body["errors"] = [{"field": e.field, "reason": e.reason} for e in self.errors]
        body.update(self.extra)
        return JSONResponse(body, status_code=self.status, media_type=PROBLEM, headers=self.headers)


def unavailable(exc: BaseException) -> Problem:
    """503 with ``Retry-After``: Temporal could not be reached, nothing was started."""
    log.warning("Temporal unavailable: %s", exc)
    return Problem(
        503,
        "Temporal is unavailable",
        "The payment was not accepted; nothing was started. Send it again later.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def refused(exc: IntakeError) -> Problem:
    """The intake refused a JSON body: 400 when it is not JSON at all, 422 otherwise."""
    malformed = any(p.field == "body" and "not valid JSON" in p.reason for p in exc.problems)
    return Problem(400 if malformed else 422, exc.title, errors=exc.problems)


def conflict(exc: PaymentConflicts) -> Problem:
    """409: a repeat of accepted business keys with other facts; each differing field, both values."""
    errors = [
        FieldProblem(
            f"{c.where}.{d.field}" if c.where else d.field,
            f"differs from the payment accepted as {c.workflow_id}: accepted {d.accepted or '(none)'!r}, "
            f"this one {d.new or '(none)'!r}",
        )
        for c in exc.conflicts
        for d in c.differences
    ]
    return Problem(
        409,
        "A payment with this key was already accepted with other facts",
        "Nothing was started and nothing changed. A repeat must be the same payment; "
        "a different payment needs its own reference.",
        errors=errors,
        extra={
            "conflicts": [
                {
                    "workflow_id": c.workflow_id,
                    "where": c.where,
                    "differences": [
                        {"field": d.field, "accepted": d.accepted, "new": d.new} for d in c.differences
                    ],
                }
                for c in exc.conflicts
            ]
        },
    )


# -- OpenAPI documentation ---------------------------------------------------------------------


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """The schema with every ``#/$defs/X`` reference replaced by its definition (OpenAPI has no ``$defs``)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {k: _inline(v, definitions) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


def json_body_doc(model: Any) -> dict[str, Any]:
    """``openapi_extra`` documenting a route's JSON body as ``model`` (the route reads it itself)."""
    schema = model.model_json_schema()
    inlined = _inline(schema, schema.get("$defs", {}))
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inlined}}}}


_PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}


def problem_doc(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM: {"schema": _PROBLEM_SCHEMA}}}


#: What every route may answer besides its success (RFC 9457 problems).
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: problem_doc("Malformed JSON"),
    401: problem_doc("Missing or wrong credentials"),
    409: problem_doc("A repeat of an accepted payment's key with other facts; nothing was started"),
    413: problem_doc("Request body too large"),
    422: problem_doc("Invalid input: each field and the reason; nothing was started"),
    503: problem_doc("Temporal is unavailable; send again after Retry-After"),
}
#: A route that starts workflows: its 202 answer, and the problems.
STARTED_EXAMPLE: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted by Temporal",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["workflow_ids"],
                    "properties": {
                        "workflow_ids": {"type": "array", "items": {"type": "string"}},
                        "remittance_workflow_id": {"type": "string"},
                    },
                },
                "example": {"workflow_ids": [workflow_id_for(Source.ALVYS_CUSTOMER, "L-1001-CHK-1001")]},
            }
        },
    },
    **PROBLEMS,
}
