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


@dataclass(frozen=True)
class FieldDifference:
    """One field on which a repeat differs from the payment accepted under the same key."""

    field: str
    accepted: str
    new: str

    def __str__(self) -> str:
        return f"{self.field}: accepted {self.accepted or '(none)'!r}, this one {self.new or '(none)'!r}"


class PaymentConflict(ValueError):
    """A repeat of an accepted business key with other payment facts: refused, nothing changed.

    ``workflow_id`` is the payment already accepted under the key; ``differences`` name each
    field that differs, with the accepted value and the new one. ``where`` says which part of
    the input it was (``[1]``, ``line 7``), when the input held several payments.
    """

    def __init__(self, workflow_id: str, differences: Sequence[FieldDifference], where: str = "") -> None:
        self.workflow_id = workflow_id
        self.differences = list(differences)
        self.where = where
        fields = "; ".join(str(d) for d in self.differences)
        super().__init__(
            f"{where + ': ' if where else ''}{workflow_id} was already accepted with other facts ({fields})"
        )


class PaymentConflicts(ValueError):
    """Every conflicting repeat found in one delivery (a body, a file); nothing of it was started."""

    def __init__(self, conflicts: Sequence[PaymentConflict]) -> None:
        self.conflicts = list(conflicts)
        super().__init__("; ".join(str(c) for c in self.conflicts))
