"""Proof that a vendor's callback came through the ingress's authenticated route.

The ingress checks TransportOne's ``x-tms-callback-secret`` and relays each report to its
payment as the ``vendor_callback`` signal. Anyone with access to Temporal (the Web UI's
"Send a Signal", ``temporal workflow signal``) could send that signal too, so the ingress
adds a proof: an HMAC-SHA256, with a relay key that only the ingress and the workers hold,
over the payment's workflow id and the canonical JSON of the report. The worker checks it in
a local activity (``verify_callback``): the key never enters workflow code, inputs or
histories, only the proof and the verdict do, and a key rotation cannot change how a
recorded history replays.

Keys: ``FREIGHTPAY_RELAY_KEYS`` (comma-separated; the first signs, every one verifies, so a
rotation needs no downtime). Unset, one key is derived from ``TRANSPORTONE_CALLBACK_SECRET``
(which the ingress and the workers both have), so the local stack needs no configuration.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence

from config.settings import Settings
from models.steps import CallbackReport

_DERIVATION = b"freightpay callback relay v1"


def relay_keys(settings: Settings) -> list[bytes]:
    """The relay keys from the settings (see the module docstring); empty when none can be had."""
    configured = settings.freightpay.relay_keys.get_secret_value() if settings.freightpay.relay_keys else ""
    keys = [k.strip().encode() for k in configured.split(",") if k.strip()]
    if keys:
        return keys
    secret = settings.transportone.callback_secret
    if secret is None or not secret.get_secret_value():
        return []
    return [hmac.new(secret.get_secret_value().encode(), _DERIVATION, hashlib.sha256).digest()]


def _message(workflow_id: str, report: CallbackReport) -> bytes:
    body = report.model_dump(mode="json", exclude={"proof"})
    return json.dumps(
        {"workflow_id": workflow_id, "report": body}, sort_keys=True, separators=(",", ":")
    ).encode()


def sign(key: bytes, workflow_id: str, report: CallbackReport) -> CallbackReport:
    """The report with its proof, for the payment ``workflow_id``."""
    proof = hmac.new(key, _message(workflow_id, report), hashlib.sha256).hexdigest()
    return report.model_copy(update={"proof": proof})


def verify(keys: Sequence[bytes], workflow_id: str, report: CallbackReport) -> bool:
    """Whether the report's proof was made with one of ``keys`` for ``workflow_id`` (constant time)."""
    if not report.proof:
        return False
    message = _message(workflow_id, report)
    return any(
        hmac.compare_digest(hmac.new(key, message, hashlib.sha256).hexdigest(), report.proof) for key in keys
    )
