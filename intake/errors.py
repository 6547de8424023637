"""Input errors that name the field and the reason, for a 4xx problem or a CLI message."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with the input: where (a dotted field path, maybe with a line) and why."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class IntakeError(ValueError):
    """The input cannot become payments; nothing was started. Carries every problem found."""

    def __init__(self, problems: Sequence[FieldProblem], title: str = "The payment input is invalid") -> None:
        self.problems = list(problems)
        self.title = title
        super().__init__(f"{title}: " + "; ".join(str(p) for p in self.problems))


def _loc(loc: Iterable[object], prefix: str) -> str:
    parts = [str(p) for p in loc if not str(p).startswith("function-")]
    path = ".".join(parts)
    return f"{prefix}.{path}" if prefix and path else (prefix or path or "body")


def problems_from(exc: ValidationError, prefix: str = "") -> list[FieldProblem]:
    """pydantic's errors as field problems, with messages a sender can act on."""
    found: list[FieldProblem] = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is required"
        elif error["type"] == "extra_forbidden":
            message = "is not a known field"
        found.append(FieldProblem(_loc(error["loc"], prefix), message))
    return found
