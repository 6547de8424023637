"""Alvys webhook signatures: verify a delivery before anything reads it (pure; no HTTP, no Temporal).

Alvys signs every delivery but its activation request (docs/vendors.md, "Alvys webhooks"):

* ``X-Alvys-Signature: t={unix seconds},v1={sig}``, plus ``v0={sig}`` made with the previous
  secret while a subscription's secret is being rotated;
* ``sig`` is HMAC-SHA256, keyed with the subscription's secret (its UTF-8 bytes), over
  ``{t}.{X-Alvys-Event-Id}.{raw body}``, written as lowercase hex;
* a delivery is genuine when one of its signatures matches one of the secrets we hold
  (``ALVYS_WEBHOOK_SECRET``, comma-separated: during a rotation hold the new and the old one),
  compared in constant time, and ``|now - t| <= 300`` seconds (so a captured delivery cannot be
  replayed later; Alvys signs each attempt afresh, so a retry is never stale).

:func:`verify` raises :class:`SignatureError` naming what is wrong (for logs, never for the
sender: the ingress answers every failure with the same 401). :func:`signature_header` builds the
header, for tests and for anything that plays Alvys.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

from pydantic import SecretStr

#: The most a delivery's ``t`` may differ from our clock (Alvys: "reject when more than 5 minutes").
TOLERANCE_SECONDS = 300
#: The signature schemes read: ``v1`` (the current secret) and ``v0`` (the previous one).
SCHEMES = ("v1", "v0")


class SignatureError(ValueError):
    """The delivery is not proven to come from Alvys; ``str()`` says why (no secret in it)."""


def secret_list(value: SecretStr | str | None) -> list[bytes]:
    """The secrets of ``ALVYS_WEBHOOK_SECRET`` (comma-separated, blanks dropped) as HMAC keys."""
    if value is None:
        return []
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    return [part.strip().encode("utf-8") for part in text.split(",") if part.strip()]


def signed_content(timestamp: int, event_id: str, body: bytes) -> bytes:
    """What Alvys signs: ``{t}.{event id}.{raw body}``."""
    return f"{timestamp}.{event_id}.".encode() + body


def sign(secret: bytes, timestamp: int, event_id: str, body: bytes) -> str:
    """One signature: HMAC-SHA256 of :func:`signed_content`, lowercase hex."""
    return hmac.new(secret, signed_content(timestamp, event_id, body), hashlib.sha256).hexdigest()


def signature_header(
    secret: bytes, timestamp: int, event_id: str, body: bytes, *, previous: bytes | None = None
) -> str:
    """``t={t},v1={sig}`` (``,v0={sig}`` too when a ``previous`` secret is given), as Alvys sends it."""
    header = f"t={timestamp},v1={sign(secret, timestamp, event_id, body)}"
    if previous is not None:
        header += f",v0={sign(previous, timestamp, event_id, body)}"
    return header


def parse_header(header: str) -> tuple[int, list[str]]:
    """``(t, signatures)`` of an ``X-Alvys-Signature`` header; SignatureError if it is not one.

    Parts are ``key=value`` separated by commas; unknown keys are ignored (a scheme added later
    must not break verification), ``t`` must be a whole number and at least one of ``v1``/``v0``
    must be present.
    """
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "t":
            if not value.isdigit():
                raise SignatureError("the signature's t is not a unix time in seconds")
            timestamp = int(value)
        elif key in SCHEMES and value:
            signatures.append(value.lower())
    if timestamp is None:
        raise SignatureError("the signature header has no t")
    if not signatures:
        raise SignatureError("the signature header has no v1 (or v0) signature")
    return timestamp, signatures


def verify(
    secrets: Sequence[bytes],
    header: str | None,
    event_id: str | None,
    body: bytes,
    *,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> int:
    """Check a delivery; returns its signed ``t``. Raises :class:`SignatureError` when it does not verify.

    Every (signature, secret) pair is compared with :func:`hmac.compare_digest`, all of them, so
    the time taken does not tell which secret or which signature came close.
    """
    if not secrets:
        raise SignatureError("no webhook secret is configured (ALVYS_WEBHOOK_SECRET)")
    if not header:
        raise SignatureError("no X-Alvys-Signature header")
    if not event_id:
        raise SignatureError("no X-Alvys-Event-Id header")
    timestamp, signatures = parse_header(header)
    if abs(now - timestamp) > tolerance:
        raise SignatureError(
            f"the signature's t is {now - timestamp:+.0f} s from now (at most {tolerance:g})"
        )
    if not _any_matches(signatures, (sign(secret, timestamp, event_id, body) for secret in secrets)):
        raise SignatureError("no signature matches a configured secret")
    return timestamp


def _any_matches(given: Sequence[str], expected: Iterable[str]) -> bool:
    matched = False
    for candidate in expected:
        for signature in given:
            matched |= hmac.compare_digest(signature.encode(), candidate.encode())
    return matched
