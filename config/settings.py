"""Settings from the environment, read with pydantic-settings.

Their names are fixed (docs/requirements.md#environment-variables). Unset vendor URLs mean
the local sandbox (``FREIGHTPAY_SANDBOX_URL``, default http://127.0.0.1:8701), with the
sandbox's demo credentials, so ``make run`` needs no configuration at all. Secrets are
``SecretStr``: they never print, and they are read by the worker's activities only; they
never enter a workflow input or history.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.alerts import check_url, parse_secret
from models.queues import VendorQueue, inline_queues, vendor_budgets
from models.steps import PaymentPolicy

DEFAULT_SANDBOX_URL = "http://127.0.0.1:8701"
SANDBOX_ALVYS_CLIENT_ID = "sandbox-client"
SANDBOX_ALVYS_CLIENT_SECRET = "sandbox-secret"
#: The signing secret of every webhook subscription the sandbox makes (sandbox/alvys_webhooks.py).
SANDBOX_ALVYS_WEBHOOK_SECRET = "sandbox-webhook-secret"


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FREIGHTPAY_SANDBOX_", extra="ignore")

    url: str = DEFAULT_SANDBOX_URL


class AlvysSettings(BaseSettings):
    """``ALVYS_*``: the Alvys API and its OAuth client credentials."""

    model_config = SettingsConfigDict(env_prefix="ALVYS_", extra="ignore")

    base_url: str | None = None
    auth_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    audience: str = "https://api.alvys.com/public/"
    api_version: str = "1.0"
    #: The budget kept for each rate-limited endpoint (the two payment POSTs); 0 means no limit.
    requests_per_minute: float = 10
    #: The budget for reads (GET invoices is published at 5/min, the searches at 10/min); 0: none.
    reads_per_minute: float = 5
    #: ``ALVYS_WEBHOOK_SECRET``: the subscription's signing secret(s), comma-separated during a
    #: rotation (any one verifies; config/alvys_webhooks.py). Unset: every webhook answers 401.
    webhook_secret: SecretStr | None = None

    def resolved(self, sandbox_url: str) -> AlvysSettings:
        """These settings with the sandbox filled in where the vendor URL is unset."""
        if self.base_url:
            return self
        base = f"{sandbox_url.rstrip('/')}/alvys"
        return self.model_copy(
            update={
                "base_url": base,
                "auth_url": self.auth_url or f"{base}/oauth/token",
                "client_id": self.client_id or SANDBOX_ALVYS_CLIENT_ID,
                "client_secret": self.client_secret or SecretStr(SANDBOX_ALVYS_CLIENT_SECRET),
                "webhook_secret": self.webhook_secret or SecretStr(SANDBOX_ALVYS_WEBHOOK_SECRET),
            }
        )


SANDBOX_T1_CLIENT_ID = "sandbox-t1-client"
SANDBOX_T1_CLIENT_SECRET = "sandbox-t1-secret"
SANDBOX_T1_ACCESS_KEY = "sandbox-t1-access"
SANDBOX_T1_TENANT = "sandbox-tenant"
SANDBOX_T1_CALLBACK_SECRET = "sandbox-callback-secret"


class TransportOneSettings(BaseSettings):
    """``TRANSPORTONE_*``: the tenant's API, credentials, and the secret its callbacks carry."""

    model_config = SettingsConfigDict(env_prefix="TRANSPORTONE_", extra="ignore")

    base_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    access_key: SecretStr | None = None
    tenant_id: str | None = None
    callback_secret: SecretStr | None = None
    #: None is published: 0 means no limit.
    requests_per_minute: float = 0

    def resolved(self, sandbox_url: str) -> TransportOneSettings:
        if self.base_url:
            return self
        return self.model_copy(
            update={
                "base_url": f"{sandbox_url.rstrip('/')}/transportone",
                "client_id": self.client_id or SANDBOX_T1_CLIENT_ID,
                "client_secret": self.client_secret or SecretStr(SANDBOX_T1_CLIENT_SECRET),
                "access_key": self.access_key or SecretStr(SANDBOX_T1_ACCESS_KEY),
                "tenant_id": self.tenant_id or SANDBOX_T1_TENANT,
                "callback_secret": self.callback_secret or SecretStr(SANDBOX_T1_CALLBACK_SECRET),
            }
        )


class MyCarrierSettings(BaseSettings):
    """``MYCARRIER_WEBHOOK_SECRET``: the value MyCarrier's subscription sends in ``X-Webhook-Secret``."""

    model_config = SettingsConfigDict(env_prefix="MYCARRIER_", extra="ignore")

    webhook_secret: SecretStr | None = None


class FreightpaySettings(BaseSettings):
    """``FREIGHTPAY_*``: the task queue, the ingress and the payment policy."""

    model_config = SettingsConfigDict(env_prefix="FREIGHTPAY_", extra="ignore")

    task_queue: str = "freight-payments"
    api_keys: str = ""
    public_url: str = "http://127.0.0.1:8000"
    #: ``USD=10000,CAD=13000``: amounts at or over these wait for an operator's approval.
    approval_thresholds: str = "USD=10000"
    payable_recheck_seconds: float = 3600
    payable_deadline_seconds: float = 14 * 24 * 3600
    callback_timeout_seconds: float = 3600
    #: ``FREIGHTPAY_VENDOR_PATIENCE_SECONDS``: a vendor unreachable this long → WaitingForVendor.
    vendor_patience_seconds: float = 3600
    data_dir: str = ".data"
    #: ``FREIGHTPAY_WORKFLOW_CACHE``: workflows a worker keeps in its sticky cache. The SDK's
    #: default (1,000) kept every parked payment in memory, about 230 KB each: 358 MB with
    #: 10,000 parked. A parked payment needs no cached workflow (a signal or update after
    #: eviction replays its short history, a dozen events); a few hundred covers the payments in
    #: flight at once (a file's 50 lines, the live deliveries) with room to spare.
    workflow_cache: int = Field(300, ge=0)
    #: ``FREIGHTPAY_WORKFLOW_TASK_SLOTS``: workflow tasks a worker runs at once (the SDK's
    #: default: 100). Fewer slots leave the backlog on the server, where Temporal orders it by
    #: priority (live deliveries before files); more only queue inside the worker, first come
    #: first served, where a live payment waits behind the file's tasks (docs/benchmarks.md).
    workflow_task_slots: int | None = Field(None, ge=2)
    #: ``FREIGHTPAY_ACTIVITY_SLOTS``: activities the worker runs at once on the main queue (the
    #: vendor steps without a budget, taken eagerly while a slot is free; the SDK's default: 100).
    activity_slots: int | None = Field(None, ge=1)
    #: Largest request bodies the ingress reads (JSON, and CSV remittance files).
    max_json_bytes: int = 1_048_576
    max_file_bytes: int = 20 * 1_048_576
    #: Cash application: payer names the bank prints differently (``BANK NAME=Alvys name;...``)
    #: and how long a worker keeps its Alvys customer directory (activities/cash.py).
    payer_aliases: str = ""
    customer_directory_seconds: float = 3600
    #: Worker Versioning (worker.deployment_config): both set, or neither (unversioned workers).
    deployment_name: str = ""
    build_id: str = ""
    #: ``FREIGHTPAY_RELAY_KEYS``: keys proving a callback came through the ingress (config/relay.py).
    relay_keys: SecretStr | None = None
    #: Operator alerts (activities/alerts.py): POSTed here when set, signed with the
    #: ``whsec_<base64>`` secret (Standard Webhooks, config/alerts.py) when that is set too.
    alert_webhook_url: str = ""
    alert_webhook_secret: SecretStr | None = None

    @field_validator("alert_webhook_url")
    @classmethod
    def _alert_url(cls, value: str) -> str:
        return check_url(value)  # AlertConfigError names the variable, never shows the value

    @field_validator("alert_webhook_secret")
    @classmethod
    def _alert_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parse_secret(value.get_secret_value())  # AlertConfigError, not ValueError: see config/alerts.py
        return SecretStr(value.get_secret_value().strip())

    def policy(self) -> PaymentPolicy:
        thresholds: dict[str, Decimal] = {}
        for part in filter(None, (p.strip() for p in self.approval_thresholds.split(","))):
            currency, _, amount = part.partition("=")
            thresholds[currency.strip().upper()] = Decimal(amount.strip())
        return PaymentPolicy(
            approval_thresholds=thresholds,
            payable_recheck_interval=timedelta(seconds=self.payable_recheck_seconds),
            payable_deadline=timedelta(seconds=self.payable_deadline_seconds),
            callback_timeout=timedelta(seconds=self.callback_timeout_seconds),
            vendor_patience=timedelta(seconds=self.vendor_patience_seconds),
            alerts=bool(self.alert_webhook_url),
        )

    def payer_alias_map(self) -> dict[str, str]:
        pairs = (p.partition("=") for p in self.payer_aliases.split(";") if "=" in p)
        return {bank.strip(): name.strip() for bank, _, name in pairs if bank.strip() and name.strip()}

    def api_key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]


class Settings(BaseSettings):
    """All of freightpay's settings."""

    model_config = SettingsConfigDict(extra="ignore")

    freightpay: FreightpaySettings = Field(default_factory=FreightpaySettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    alvys_raw: AlvysSettings = Field(default_factory=AlvysSettings)
    transportone_raw: TransportOneSettings = Field(default_factory=TransportOneSettings)
    mycarrier: MyCarrierSettings = Field(default_factory=MyCarrierSettings)

    @property
    def alvys(self) -> AlvysSettings:
        return self.alvys_raw.resolved(self.sandbox.url)

    @property
    def transportone(self) -> TransportOneSettings:
        return self.transportone_raw.resolved(self.sandbox.url)

    def vendor_budgets(self) -> dict[VendorQueue, float]:
        """Requests per minute for each vendor queue (0: no limit)."""
        return vendor_budgets(
            alvys_posts_per_minute=self.alvys.requests_per_minute,
            alvys_reads_per_minute=self.alvys.reads_per_minute,
            transportone_per_minute=self.transportone.requests_per_minute,
        )

    def policy(self) -> PaymentPolicy:
        """The rules new payments start under: ``FreightpaySettings.policy`` plus the vendor
        queues without a budget, whose steps run on the payment's own queue
        (``PaymentPolicy.inline_queues``). Every process that starts payments (ingress,
        starter, CLI) and every worker must read the same vendor budgets, as they do from one
        environment; a worker given a budget for an inline queue still paces its own calls."""
        policy = self.freightpay.policy()
        policy.inline_queues = inline_queues(self.vendor_budgets())
        return policy


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
