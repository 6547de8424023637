"""``verify_callback``: the worker's check of the ingress's proof on a relayed vendor callback.

A local activity, so the check costs no task-queue round trip; it runs in the worker, which
holds the relay keys (config/relay.py), and its verdict is recorded in the history, so a
replay never needs the key and a rotated key never changes a recorded outcome.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio import activity

from config.relay import verify
from models.steps import CallbackCheck, CallbackVerdict


class RelayActivities:
    def __init__(self, keys: Sequence[bytes]) -> None:
        self._keys = list(keys)

    @activity.defn(name="verify_callback")
    async def verify_callback(self, check: CallbackCheck) -> CallbackVerdict:
        """Whether the report carries a valid proof for this payment."""
        genuine = verify(self._keys, check.workflow_id, check.report)
        if not genuine:
            activity.logger.warning("Refused a vendor_callback without a valid relay proof")
        return CallbackVerdict(genuine=genuine)
