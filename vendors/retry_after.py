"""``Retry-After``, read the same way for every vendor (RFC 9110: delta-seconds or an HTTP-date)."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime


def http_date(text: str | None) -> datetime | None:
    """An HTTP-date (``Date``, ``Retry-After``) as an aware datetime, or None when unreadable."""
    if not text:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP-date.

    An HTTP-date is measured from ``now`` (the answer's own ``Date`` header where the caller
    has it, which cancels clock skew between the vendor and this machine); a date in the past
    is 0. Anything unreadable is ``None``: the caller falls back to its own backoff.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        when = http_date(text)
        if when is None:
            return None
        reference = now or datetime.now(UTC)
        if reference.tzinfo is None:
            reference = reference.replace(tzinfo=UTC)
        return max((when - reference).total_seconds(), 0.0)
    return max(seconds, 0.0) if seconds == seconds and seconds != float("inf") else None
