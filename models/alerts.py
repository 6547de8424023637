"""Operator alerts: what a workflow sends when a person is needed (issue 12, item 5).

A payment entering NeedsReview, AwaitingApproval or WaitingForVendor, a deposit leaving cash
unapplied, or a reconciliation finding a discrepancy becomes one :class:`Alert`, which the
``send_alert`` activity (activities/alerts.py) POSTs as JSON to ``FREIGHTPAY_ALERT_WEBHOOK_URL``,
signed per Standard Webhooks. Everything here is a pure function of its arguments, so a workflow
builds its alerts deterministically; the URL and the secret never come near it.

The alert's id is its ``webhook-id`` header: the same on every retry of the activity, so a
receiver that keeps the ids it has seen handles each alert once. :func:`alert_id` derives it
from the workflow id, the event and the count of entries into that state.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, Field

#: The longest ``text`` :func:`alert_text` makes (one Slack line, readable in a notification).
MAX_TEXT = 300
_SPACES = re.compile(r"\s+")
#: Visible ASCII without ``.``: the Standard Webhooks spec wants no ``.`` in a message id (the
#: signed content is ``{id}.{timestamp}.{body}``), and the id travels in an HTTP header.
ALERT_ID_PATTERN = r"^[!-\-/-~]+$"


class AlertEvent(StrEnum):
    """The ``event`` of an alert's body."""

    PAYMENT_NEEDS_REVIEW = "payment.needs_review"
    PAYMENT_AWAITING_APPROVAL = "payment.awaiting_approval"
    PAYMENT_WAITING_FOR_VENDOR = "payment.waiting_for_vendor"
    DEPOSIT_UNAPPLIED = "deposit.unapplied"
    RECONCILIATION_DISCREPANCY = "reconciliation.discrepancy"

    @property
    def subject(self) -> str:
        """What the alert is about: ``payment``, ``deposit`` or ``reconciliation``."""
        return self.value.partition(".")[0]


#: How each event reads in the one-line text, after "freightpay: payment <id>".
_PHRASES = {
    AlertEvent.PAYMENT_NEEDS_REVIEW: "needs review",
    AlertEvent.PAYMENT_AWAITING_APPROVAL: "awaits approval",
    AlertEvent.PAYMENT_WAITING_FOR_VENDOR: "waits for the vendor",
    AlertEvent.DEPOSIT_UNAPPLIED: "has unapplied cash",
    AlertEvent.RECONCILIATION_DISCREPANCY: "found a discrepancy",
}


class Alert(BaseModel):
    """One alert, as the workflow gives it to ``send_alert``.

    ``alert_id`` (build it with :func:`alert_id`) is sent as ``webhook-id``, not in the body; the
    body is the other five fields (:meth:`body`).
    """

    alert_id: str = Field(pattern=ALERT_ID_PATTERN)
    event: AlertEvent
    workflow_id: str
    status: str
    reason: str = ""
    text: str

    def body(self) -> bytes:
        """The exact bytes POSTed and signed: compact JSON, UTF-8, keys in a fixed order."""
        return self.model_dump_json(include={"event", "workflow_id", "status", "reason", "text"}).encode()


def _escape_id_part(value: str) -> str:
    # Injective: ``%`` first, then ``.``, so no two workflow ids give one alert id.
    return value.replace("%", "%25").replace(".", "%2E")


def alert_id(workflow_id: str, event: AlertEvent, n: int) -> str:
    """The idempotency id of the ``n``-th entry (1, 2, ...) of ``workflow_id`` into ``event``'s state.

    ``{workflow_id}:{event with _ for .}:{n}``, with any ``.`` of the workflow id written ``%2E``
    (and ``%`` as ``%25``): ``payment-alvys-customer-L-1-CHK-1:payment_needs_review:1``.
    """
    if n < 1:
        raise ValueError(f"an alert's entry count starts at 1, not {n}")
    return f"{_escape_id_part(workflow_id)}:{event.value.replace('.', '_')}:{n}"


def _slack_escape(text: str) -> str:
    # Slack's control characters (api.slack.com/reference/surfaces/formatting#escaping): a
    # vendor's "<!channel>" in a reason is shown as typed, never a mention or a link.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _one_line(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def alert_text(event: AlertEvent, workflow_id: str, reason: str, summary: str | None = None) -> str:
    """The one line a person reads (Slack's ``text``), at most :data:`MAX_TEXT` characters.

    ``freightpay: payment payment-alvys-customer-L-1-CHK-1 (Alvys load L-1, USD 120.00) needs
    review: Alvys 400: ...``. Whitespace (new lines included) is folded to single spaces, Slack's
    ``&``, ``<`` and ``>`` are escaped, and a long line is cut with "…" (never inside an escape).
    """
    head = f"freightpay: {event.subject} {_one_line(workflow_id)}"
    if summary and _one_line(summary):
        head += f" ({_one_line(summary)})"
    line = f"{head} {_PHRASES[event]}"
    if _one_line(reason):
        line += f": {_one_line(reason)}"
    escaped = _slack_escape(line)
    if len(escaped) <= MAX_TEXT:
        return escaped
    cut = escaped[: MAX_TEXT - 1]
    amp = cut.rfind("&", len(cut) - 5)
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut.rstrip() + "…"
