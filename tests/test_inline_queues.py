"""Which vendor steps run on the payment's own queue: exactly the vendor queues without a budget,
from the same settings the workers read (config.settings.Settings.policy)."""

from __future__ import annotations

from config.settings import AlvysSettings, Settings, TransportOneSettings
from models.queues import VendorQueue


def test_the_published_budgets_keep_alvys_on_its_queues_and_transportone_inline() -> None:
    settings = Settings(alvys_raw=AlvysSettings(), transportone_raw=TransportOneSettings())
    assert settings.policy().inline_queues == [VendorQueue.TRANSPORTONE]


def test_no_alvys_budget_runs_every_step_inline() -> None:
    settings = Settings(alvys_raw=AlvysSettings(requests_per_minute=0, reads_per_minute=0))
    assert set(settings.policy().inline_queues) == set(VendorQueue)


def test_a_read_budget_alone_keeps_the_reads_on_their_queue() -> None:
    settings = Settings(alvys_raw=AlvysSettings(requests_per_minute=0, reads_per_minute=5))
    assert VendorQueue.ALVYS_READS not in settings.policy().inline_queues
    assert VendorQueue.ALVYS_CUSTOMER_PAYMENTS in settings.policy().inline_queues
