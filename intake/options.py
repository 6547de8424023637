"""The intake's configurable choices (routing, currencies), read from the environment.

They are configuration, not payment rules: they say where a source's payments go when the
source does not say it itself.
"""

from __future__ import annotations

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.money import CURRENCIES
from models.payment import Target

MYCARRIER_ROUTES = (Target.ALVYS_CARRIER_PAYMENT.value, Target.ALVYS_CUSTOMER_PAYMENT.value)


class IntakeOptions(BaseSettings):
    """``MYCARRIER_ROUTE`` and ``TRANSPORTONE_CURRENCY``.

    * ``MYCARRIER_ROUTE``: where a MyCarrier ``invoice.payment`` is recorded.
      ``alvys-carrier-payment`` (default): a carrier payment on the trip of the shipment's
      load (found by PO, then quote reference, then BOL). ``alvys-customer-payment``: a
      customer payment on that load (for a broker whose customer paid through MyCarrier).
    * ``TRANSPORTONE_CURRENCY``: TransportOne's payment body carries no currency; its
      amounts are in the tenant's currency (INR in OS1's own examples).
    """

    model_config = SettingsConfigDict(extra="ignore")

    mycarrier_route: str = Target.ALVYS_CARRIER_PAYMENT.value
    transportone_currency: str = "INR"

    @field_validator("mycarrier_route")
    @classmethod
    def _known_route(cls, value: str) -> str:
        if value not in MYCARRIER_ROUTES:
            raise ValueError(f"MYCARRIER_ROUTE must be one of {', '.join(MYCARRIER_ROUTES)}")
        return value

    @field_validator("transportone_currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value.upper() not in CURRENCIES:
            raise ValueError(f"TRANSPORTONE_CURRENCY {value!r} is not a known ISO 4217 code")
        return value.upper()
