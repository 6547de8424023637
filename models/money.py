"""Money: an exact ``Decimal`` amount in an ISO 4217 currency.

Why a model of its own: every vendor speaks money differently (Alvys a JSON number with
an ISO 4217 *numeric* currency code, MyCarrier a float with an often empty currency,
TransportOne a bare number). Inside freightpay there is exactly one form: a ``Decimal``
quantized to the currency's minor units and the ISO 4217 alphabetic code. Conversions
happen at the edges, and an amount that does not fit the currency (``10.001 USD``)
is refused rather than rounded, because rounding someone's payment is a decision a
person must make.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

#: ISO 4217 alphabetic code -> (numeric code, minor units). The three Alvys documents
#: name first; the rest are the currencies freight payments are seen in.
CURRENCIES: dict[str, tuple[int, int]] = {
    "USD": (840, 2),
    "CAD": (124, 2),
    "MXN": (484, 2),
    "EUR": (978, 2),
    "GBP": (826, 2),
    "INR": (356, 2),
    "JPY": (392, 0),
    "KWD": (414, 3),
}
#: No freight payment comes near a quadrillion; larger inputs are typos or attacks.
MAX_AMOUNT = Decimal(10) ** 15
_BY_NUMERIC: dict[int, str] = {numeric: alpha for alpha, (numeric, _) in CURRENCIES.items()}


class MoneyError(ValueError):
    """An amount or currency that cannot be money; the message says which and why."""


def currency_from_numeric(code: int) -> str:
    """The alphabetic ISO 4217 code for a numeric one (Alvys's ``Currency``)."""
    try:
        return _BY_NUMERIC[code]
    except KeyError:
        raise MoneyError(f"unknown ISO 4217 numeric currency code {code}") from None


def currency_to_numeric(currency: str) -> int:
    """The numeric ISO 4217 code Alvys expects for an alphabetic one."""
    try:
        return CURRENCIES[currency][0]
    except KeyError:
        raise MoneyError(f"unknown ISO 4217 currency {currency!r}") from None


def minor_units(currency: str) -> int:
    """How many decimals the currency has (2 for USD, 0 for JPY)."""
    try:
        return CURRENCIES[currency][1]
    except KeyError:
        raise MoneyError(f"unknown ISO 4217 currency {currency!r}") from None


def to_decimal(value: Any) -> Decimal:
    """An exact Decimal from a JSON value.

    Floats are converted through their shortest ``repr`` (``382.53`` stays ``382.53``),
    which is the number the sender wrote in its JSON; bools and non-finite values are refused.
    """
    if isinstance(value, bool):
        raise MoneyError("amount must be a number, not a boolean")
    if isinstance(value, float):
        value = repr(value)
    try:
        result = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        raise MoneyError(f"amount {value!r} is not a number") from None
    if not result.is_finite():
        raise MoneyError(f"amount {value!r} is not a finite number")
    return result


class Money(BaseModel):
    """An exact amount of one currency; immutable and always in the currency's minor units."""

    model_config = ConfigDict(frozen=True)

    amount: Decimal
    currency: str = "USD"

    @field_validator("currency", mode="before")
    @classmethod
    def _known_currency(cls, value: Any) -> str:
        code = str(value).strip().upper()
        if code not in CURRENCIES:
            raise ValueError(f"unknown ISO 4217 currency {value!r}")
        return code

    @field_validator("amount", mode="before")
    @classmethod
    def _exact_amount(cls, value: Any) -> Decimal:
        try:
            return to_decimal(value)
        except MoneyError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _fits_minor_units(self) -> Money:
        places = minor_units(self.currency)
        if abs(self.amount) >= MAX_AMOUNT:
            raise ValueError(
                f"amount {self.amount} is too large (at most {MAX_AMOUNT - 1:,} {self.currency})"
            )
        quantum = Decimal(1).scaleb(-places)
        quantized = self.amount.quantize(quantum)
        if quantized != self.amount:
            raise ValueError(f"amount {self.amount} has more decimals than {self.currency} allows ({places})")
        object.__setattr__(self, "amount", quantized)
        return self

    @classmethod
    def of(cls, amount: Any, currency: str = "USD") -> Money:
        """Build Money, raising :class:`MoneyError` (a ``ValueError``) with a plain message."""
        from pydantic import ValidationError

        try:
            return cls(amount=amount, currency=currency)
        except ValidationError as exc:
            raise MoneyError(
                "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
            ) from None

    @property
    def numeric_currency(self) -> int:
        return currency_to_numeric(self.currency)

    @property
    def minor(self) -> int:
        """The amount in minor units (cents), as an integer."""
        return int(self.amount.scaleb(minor_units(self.currency)))

    def is_positive(self) -> bool:
        return self.amount > 0

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def __str__(self) -> str:
        return f"{self.currency} {self.amount:,}"
