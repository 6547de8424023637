"""Standard Webhooks signatures for freightpay's operator alerts (``FREIGHTPAY_ALERT_WEBHOOK_*``).

Each alert is POSTed with the three headers of the Standard Webhooks specification
(https://github.com/standard-webhooks/standard-webhooks, spec/standard-webhooks.md):

* ``webhook-id``: the alert's id, the same on every retry (the receiver's idempotency key);
* ``webhook-timestamp``: the attempt's time, integer unix seconds (new on each attempt);
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, keyed with
  the base64-decoded part of the ``whsec_<base64>`` secret.

:func:`sign` is what the activity uses; :func:`verify` is for the tests and for anyone writing a
receiver (constant-time, rejects timestamps more than ``tolerance`` seconds off). Nothing here
reads the settings (config/settings.py validates its values with :func:`parse_secret` and
:func:`check_url`), so every function is a pure function of its arguments and a clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

ENV_URL = "FREIGHTPAY_ALERT_WEBHOOK_URL"
ENV_SECRET = "FREIGHTPAY_ALERT_WEBHOOK_SECRET"
SECRET_PREFIX = "whsec_"
#: The spec's symmetric signing secret: "Random. At least 24 bytes".
MIN_SECRET_BYTES = 24
#: The spec's identifier of a symmetric (HMAC-SHA256) signature.
VERSION = "v1"
#: How far from now a ``webhook-timestamp`` may be (the reference libraries use 5 minutes).
DEFAULT_TOLERANCE = 300

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"


class AlertConfigError(RuntimeError):
    """A bad ``FREIGHTPAY_ALERT_WEBHOOK_*`` value. The message names the variable, never its value.

    Not a ``ValueError`` on purpose: raised from a settings validator, a ``ValueError`` would become
    a pydantic ``ValidationError``, whose text shows the input, i.e. the secret.
    """


def parse_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (padding optional, as the reference libraries)."""
    value = secret.strip()
    if not value.startswith(SECRET_PREFIX):
        raise AlertConfigError(f"{ENV_SECRET} must be 'whsec_' followed by the base64 of the key")
    encoded = value[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise AlertConfigError(f"{ENV_SECRET}: the part after 'whsec_' is not valid base64") from None
    if len(key) < MIN_SECRET_BYTES:
        raise AlertConfigError(
            f"{ENV_SECRET}: the key is {len(key)} bytes; Standard Webhooks asks for at least {MIN_SECRET_BYTES}"
        )
    return key


def check_url(url: str) -> str:
    """The webhook URL, stripped; an absolute ``http(s)://`` URL or empty (alerts off)."""
    value = url.strip()
    if value and not value.lower().startswith(("https://", "http://")):
        raise AlertConfigError(f"{ENV_URL} must be an absolute http:// or https:// URL (or empty)")
    return value


def signed_content(msg_id: str, timestamp: int | str, body: bytes) -> bytes:
    """What is signed: ``{msg_id}.{timestamp}.{body}``, the body as the exact bytes sent."""
    return f"{msg_id}.{timestamp}.".encode() + body


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256>``."""
    digest = hmac.new(parse_secret(secret), signed_content(msg_id, timestamp, body), hashlib.sha256).digest()
    return f"{VERSION},{base64.b64encode(digest).decode('ascii')}"


def webhook_headers(secret: str | None, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt (no signature when there is no secret)."""
    out = {HEADER_ID: msg_id, HEADER_TIMESTAMP: str(timestamp)}
    if secret:
        out[HEADER_SIGNATURE] = sign(secret, msg_id, timestamp, body)
    return out


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """Whether ``body`` with these headers was signed with ``secret``, within ``tolerance`` seconds.

    Header names are matched case-insensitively; ``webhook-signature`` may hold several
    space-separated signatures (a key rotation), of which one ``v1`` must match (compared in
    constant time). A missing header, a timestamp that is not an integer or is more than
    ``tolerance`` seconds before or after ``now`` (default: the clock) gives False.
    """
    key = parse_secret(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get(HEADER_ID, "")
    stamp = lowered.get(HEADER_TIMESTAMP, "").strip()
    signatures = lowered.get(HEADER_SIGNATURE, "")
    if not (msg_id and stamp and signatures) or not stamp.isdigit() or not stamp.isascii():
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance:
        return False
    # The timestamp as sent: it is the header's text that was signed.
    expected = hmac.new(key, signed_content(msg_id, stamp, body), hashlib.sha256).digest()
    found = False
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        if version != VERSION:
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        # No early exit: every v1 entry is compared, each in constant time.
        found = hmac.compare_digest(expected, given) or found
    return found
