"""The Alvys simulator's state and behaviour: :class:`AlvysSandbox`, the in-memory Alvys.

Why apart from the routers: tests and the fault hooks steer and read the state directly, with no
HTTP in between; the routers (:mod:`sandbox.alvys`) only parse requests and call it. Part of the
Alvys simulator (see :mod:`sandbox.alvys`).
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, get_args

from fastapi import Request
from fastapi.responses import Response

from sandbox.alvys_records import (
    AlvysOptions,
    CarrierPayment,
    Customer,
    CustomerPayment,
    Invoice,
    Load,
    PaymentIn,
    Trip,
)
from sandbox.alvys_webhooks import AlvysWebhooks
from sandbox.alvys_wire import (
    AUDIENCE,
    DEFAULT_CUSTOMER_STATUS,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    INVOICE_STATUSES,
    LOAD_STATUSES,
    PAYABLE_LOAD_STATUSES,
    SCOPES,
    TRIP_STATUSES,
    USD,
    ZERO,
    AlvysEndpoint,
    AlvysProblem,
    CustomerPaymentShape,
    InvoiceCase,
    camelize,
    canonical_status,
    currency_code,
    iso_utc,
    money_json,
    norm_status,
    parse_datetime,
    validation_problem,
)
from sandbox.wire import run_hooks

_ID_NAMESPACE = uuid.UUID("6f0c8a59-2b1e-4c55-9a53-a1e0d3a5c0de")
_EPOCH_DEFAULT = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)

Handler = Callable[[Request], Awaitable[Response]]
#: ``hook(endpoint_key, request, call_next) -> Response``: run before/after/instead of an endpoint.
EndpointHook = Callable[[str, Request, Callable[[], Awaitable[Response]]], Awaitable[Response]]


@dataclass
class _Token:
    expires_at: float
    scopes: frozenset[str]
    client_id: str


def _stable_id(kind: str, key: str) -> str:
    """Alvys-looking 32-hex id, the same on every reset so demo ids can be written down."""
    return uuid.uuid5(_ID_NAMESPACE, f"{kind}:{key}").hex


def _amount(value: Any, where: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{where}: bad amount {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"{where}: bad amount {value!r}")
    return amount


def _money_record(value: Any, where: str) -> tuple[Decimal, int]:
    if isinstance(value, Mapping):
        return _amount(value.get("Amount"), where), currency_code(value.get("Currency"))
    return _amount(value, where), USD


def _record_datetime(value: Any, default: datetime | None, where: str) -> datetime | None:
    if value is None:
        return default
    parsed = parse_datetime(str(value))
    if parsed is None:
        raise ValueError(f"{where}: bad date-time {value!r}")
    return parsed


def _check_keys(record: Mapping[str, Any], allowed: set[str], required: set[str], what: str) -> None:
    unknown = {k for k in record if k not in allowed and not k.startswith("_")}
    if unknown:
        raise ValueError(f"{what}: unknown fields {sorted(unknown)}; allowed: {sorted(allowed)}")
    missing = {k for k in required if record.get(k) in (None, "")}
    if missing:
        raise ValueError(f"{what}: missing fields {sorted(missing)}")


def _now() -> datetime:
    return datetime.now(UTC)


def _optional_text(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    return None if value is None or str(value).strip() == "" else str(value)


def _in_period(moment: datetime | None, period: Mapping[str, Any] | None) -> bool:
    """Whether ``moment`` lies in a request's ``Alvys.Models.Period`` (both ends included; no End: open)."""
    if not period:
        return True
    if moment is None:
        return False
    end = period.get("End")
    return bool(period["Start"] <= moment and (end is None or moment <= end))


class AlvysSandbox:
    """In-memory Alvys: customers, loads, trips, invoices, recorded payments, tokens, options, counts.

    Every public method takes the state lock (a threading lock: tests read and steer the state from
    their own thread while uvicorn serves from another), and no method awaits while holding it.
    """

    def __init__(
        self,
        document: Mapping[str, Any] | None = None,
        *,
        token_ttl_seconds: float = 3600,
        clients: Mapping[str, str] | None = None,
        audience: str = AUDIENCE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.RLock()
        self._document: dict[str, Any] = copy.deepcopy(dict(document or {}))
        self._default_ttl = float(token_ttl_seconds)
        self._clients = dict(clients or {DEMO_CLIENT_ID: DEMO_CLIENT_SECRET})
        self._audience = audience
        self._clock = clock
        self._tokens: dict[str, _Token] = {}
        #: Middleware-like chain run around every endpoint; kept across resets (it is wiring, not data).
        self.hooks: list[EndpointHook] = []
        self.options = AlvysOptions(token_ttl_seconds=self._default_ttl)
        self.customers: dict[str, Customer] = {}
        self.loads: dict[str, Load] = {}
        self.trips: dict[str, Trip] = {}
        self.invoices: dict[str, Invoice] = {}
        self._postings: list[CustomerPayment | CarrierPayment] = []
        self._requests: dict[str, int] = {}
        #: Subscriptions and signed deliveries of every load and trip change (sandbox/alvys_webhooks.py).
        self.webhooks = AlvysWebhooks()
        self.reset()

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> AlvysSandbox:
        """Build from a data file: its ``"alvys"`` section, or the whole document if it has none."""
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(document.get("alvys", document), **kwargs)

    # ----- data ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the data the sandbox was built with; options and counters to defaults. Tokens stay."""
        with self._lock:
            self.options = AlvysOptions(token_ttl_seconds=self._default_ttl)
            self.customers, self.loads, self.trips, self.invoices = {}, {}, {}, {}
            self._postings, self._requests = [], {}
            self.webhooks.reset()
            for record in self._document.get("customers", []):
                self.add_customer(record)
            for record in self._document.get("loads", []):
                self.add_load(record)
            for record in self._document.get("trips", []):
                self.add_trip(record)
            for record in self._document.get("invoices", []):
                self.add_invoice(record)

    def add_customer(self, record: Mapping[str, Any]) -> Customer:
        """Add a customer from a data-file record; ValueError on bad records, KeyError on duplicates.

        ``Id`` defaults to a stable id made from the ``CompanyNumber``; ``Status`` to "Active"
        (Alvys publishes no list of customer statuses: any text is kept as given).
        """
        allowed = {
            "Id",
            "Name",
            "CompanyNumber",
            "Status",
            "Type",
            "InvoicingName",
            "InvoicingNameAlias",
            "ExternalId",
            "DateCreated",
            "PaymentTermsInDays",
        }
        _check_keys(record, allowed, {"Name", "CompanyNumber"}, "customer")
        number = str(record["CompanyNumber"]).strip()
        terms = record.get("PaymentTermsInDays", 30)
        if terms is not None and (isinstance(terms, bool) or not isinstance(terms, int) or terms < 0):
            raise ValueError(f"customer {number}: PaymentTermsInDays must be a whole number of days")
        customer = Customer(
            id=str(record.get("Id") or _stable_id("customer", number)),
            name=str(record["Name"]).strip(),
            company_number=number,
            status=str(record.get("Status") or DEFAULT_CUSTOMER_STATUS).strip(),
            type=str(record.get("Type") or "Shipper"),
            created_at=_record_datetime(record.get("DateCreated"), _EPOCH_DEFAULT, number) or _EPOCH_DEFAULT,
            invoicing_name=_optional_text(record, "InvoicingName"),
            invoicing_name_alias=_optional_text(record, "InvoicingNameAlias"),
            external_id=_optional_text(record, "ExternalId"),
            payment_terms_days=terms,
        )
        if not customer.name or not number:
            raise ValueError("customer: Name and CompanyNumber must not be blank")
        with self._lock:
            if customer.id in self.customers:
                raise KeyError(f"customer {customer.id} exists")
            if any(c.company_number == number for c in self.customers.values()):
                raise KeyError(f"a customer with CompanyNumber {number} exists")
            self.customers[customer.id] = customer
        return customer

    def add_load(self, record: Mapping[str, Any], *, customer_invoice: bool = False) -> Load:
        """Add a load from a data-file record; ValueError on bad records, KeyError on duplicates.

        A ``CustomerId`` naming a known customer gives the load that customer's name (a different
        ``CustomerName`` is refused). With ``customer_invoice`` (the ``POST /_sandbox/alvys/loads``
        control) a ``CustomerId`` must name a known customer, and the load gets its own invoice of
        that customer: ``InvoiceNumber``, or ``INV-<LoadNumber>`` when none is given.
        """
        allowed = {
            "Id",
            "LoadNumber",
            "OrderNumber",
            "PONumber",
            "Status",
            "CustomerId",
            "CustomerName",
            "Billable",
            "InvoiceNumber",
            "CreatedAt",
            "IsDeleted",
        }
        _check_keys(record, allowed, {"LoadNumber", "Status", "Billable"}, "load")
        number = str(record["LoadNumber"])
        billable, currency = _money_record(record["Billable"], f"load {number}")
        customer_id = _optional_text(record, "CustomerId")
        invoice_number = str(record["InvoiceNumber"]) if record.get("InvoiceNumber") else None
        with self._lock:
            customer = self.customers.get(customer_id) if customer_id else None
            customer_name = _optional_text(record, "CustomerName")
            if customer is not None and customer_name is not None and customer_name != customer.name:
                raise ValueError(
                    f"load {number}: CustomerName {customer_name!r} is not the name of customer "
                    f"{customer_id} ({customer.name!r})"
                )
            if customer_invoice and customer_id is not None:
                if customer is None:
                    raise ValueError(
                        f"load {number}: no customer {customer_id!r} (add it with POST /_sandbox/alvys/customers)"
                    )
                invoice_number = invoice_number or f"INV-{number}"
            load = Load(
                id=str(record.get("Id") or _stable_id("load", number)),
                load_number=number,
                order_number=str(record.get("OrderNumber") or number),
                po_number=record.get("PONumber"),
                status=canonical_status(str(record["Status"]), LOAD_STATUSES, "load"),
                customer_id=customer_id or "CUST-DEMO",
                customer_name=customer.name if customer else customer_name or "Demo Customer",
                billable=billable,
                currency=currency,
                created_at=_record_datetime(record.get("CreatedAt"), _EPOCH_DEFAULT, number)
                or _EPOCH_DEFAULT,
                is_deleted=bool(record.get("IsDeleted", False)),
            )
            if number in self.loads:
                raise KeyError(f"load {number} exists")
            existing = next((i for i in self.invoices.values() if i.number == invoice_number), None)
            if existing is not None:
                first = self.loads[existing.load_numbers[0]]
                if first.currency != currency:
                    raise ValueError(f"load {number}: invoice {invoice_number} is in another currency")
                if first.customer_id != load.customer_id:
                    raise ValueError(f"load {number}: invoice {invoice_number} is another customer's")
            self.loads[number] = load
            if existing is not None:
                existing.load_numbers.append(number)
                load.invoice_number = invoice_number
            elif invoice_number is not None:
                self.add_invoice({"Number": invoice_number, "LoadNumbers": [number]})
        return load

    def add_trip(self, record: Mapping[str, Any]) -> Trip:
        """Add a trip of an existing load; ValueError on bad records, KeyError on duplicates."""
        allowed = {
            "Id",
            "TripNumber",
            "LoadNumber",
            "Status",
            "CarrierPayable",
            "CarrierId",
            "TripValue",
            "Miles",
            "IsDeleted",
        }
        _check_keys(record, allowed, {"Id", "TripNumber", "LoadNumber", "Status", "CarrierPayable"}, "trip")
        trip_id = str(record["Id"])
        payable, currency = _money_record(record["CarrierPayable"], f"trip {trip_id}")
        with self._lock:
            load = self.loads.get(str(record["LoadNumber"]))
            if load is None:
                raise ValueError(f"trip {trip_id}: no load {record['LoadNumber']!r}")
            if trip_id in self.trips:
                raise KeyError(f"trip {trip_id} exists")
            value = record.get("TripValue")
            trip_value = _money_record(value, f"trip {trip_id}")[0] if value is not None else load.billable
            trip = Trip(
                id=trip_id,
                trip_number=str(record["TripNumber"]),
                load_number=load.load_number,
                status=canonical_status(str(record["Status"]), TRIP_STATUSES, "trip"),
                carrier_id=str(record.get("CarrierId") or _stable_id("carrier", trip_id)),
                carrier_payable=payable,
                currency=currency,
                trip_value=trip_value,
                miles=_amount(record.get("Miles", 0), f"trip {trip_id}"),
                is_deleted=bool(record.get("IsDeleted", False)),
            )
            self.trips[trip_id] = trip
        return trip

    def add_invoice(self, record: Mapping[str, Any]) -> Invoice:
        """Add an invoice over existing loads (one currency); ValueError/KeyError as above."""
        allowed = {"Id", "Number", "LoadNumbers", "Status", "CreatedDate", "InvoicedDate", "DueDate", "Type"}
        _check_keys(record, allowed, {"Number", "LoadNumbers"}, "invoice")
        number = str(record["Number"])
        load_numbers = [str(n) for n in record["LoadNumbers"]]
        invoiced = _record_datetime(record.get("InvoicedDate"), _EPOCH_DEFAULT + timedelta(days=5), number)
        invoice = Invoice(
            id=str(record.get("Id") or _stable_id("invoice", number)),
            number=number,
            load_numbers=load_numbers,
            status=canonical_status(
                str(record.get("Status") or "AwaitingPayment"), INVOICE_STATUSES, "invoice"
            ),
            created_date=_record_datetime(record.get("CreatedDate"), invoiced, number) or _EPOCH_DEFAULT,
            invoiced_date=invoiced,
            due_date=_record_datetime(
                record.get("DueDate"), (invoiced or _EPOCH_DEFAULT) + timedelta(days=30), number
            ),
            type=str(record.get("Type") or "Standard"),
        )
        with self._lock:
            loads = [self.loads.get(n) for n in load_numbers]
            if not load_numbers or any(load is None for load in loads):
                raise ValueError(f"invoice {number}: unknown loads in {load_numbers}")
            if len({load.currency for load in loads if load}) > 1:
                raise ValueError(f"invoice {number}: loads in different currencies")
            if len({load.customer_id for load in loads if load}) > 1:
                raise ValueError(f"invoice {number}: loads of different customers")
            if invoice.id in self.invoices or any(i.number == number for i in self.invoices.values()):
                raise KeyError(f"invoice {number} exists")
            self.invoices[invoice.id] = invoice
            for load in loads:
                if load is not None:
                    load.invoice_number = number
        return invoice

    def set_load_status(self, load_number: str, status: str) -> Load:
        with self._lock:
            load = self.loads[load_number]
            before, load.status = load.status, canonical_status(status, LOAD_STATUSES, "load")
            load.updated_at = _now()
            if load.status != before:
                self.webhooks.changed(
                    "load", load.load_number, lambda: self.load_dto(load), status_changed=True
                )
            return load

    def set_trip_status(self, trip_id: str, status: str) -> Trip:
        with self._lock:
            trip = self.trips[trip_id]
            before, trip.status = trip.status, canonical_status(status, TRIP_STATUSES, "trip")
            trip.updated_at = _now()
            if trip.status != before:
                self.webhooks.changed("trip", trip.id, lambda: self.trip_dto(trip), status_changed=True)
            return trip

    def set_options(
        self,
        *,
        customer_payment_shape: CustomerPaymentShape | None = None,
        invoice_case: InvoiceCase | None = None,
        token_ttl_seconds: float | None = None,
    ) -> AlvysOptions:
        with self._lock:
            if customer_payment_shape is not None:
                if customer_payment_shape not in get_args(CustomerPaymentShape):
                    raise ValueError(f"customer_payment_shape: {customer_payment_shape!r}")
                self.options.customer_payment_shape = customer_payment_shape
            if invoice_case is not None:
                if invoice_case not in get_args(InvoiceCase):
                    raise ValueError(f"invoice_case: {invoice_case!r}")
                self.options.invoice_case = invoice_case
            if token_ttl_seconds is not None:
                if token_ttl_seconds <= 0:
                    raise ValueError("token_ttl_seconds must be > 0")
                self.options.token_ttl_seconds = float(token_ttl_seconds)
            return copy.copy(self.options)

    # ----- tokens -------------------------------------------------------------------------------

    def issue_token(self, form: Mapping[str, str]) -> dict[str, Any]:
        """OAuth2 client-credentials grant, as auth.alvys.com answers it."""
        missing = [k for k in ("client_id", "client_secret", "audience", "grant_type") if not form.get(k)]
        if missing:
            raise AlvysProblem(
                400,
                f"Missing required parameter(s): {', '.join(missing)}.",
                errors={k: [f"The {k} field is required."] for k in missing},
                extensions={"error": "invalid_request"},
            )
        if form["grant_type"] != "client_credentials":
            raise AlvysProblem(
                400,
                f"Unsupported grant type: {form['grant_type']}.",
                errors={"grant_type": ["Only client_credentials is supported."]},
                extensions={"error": "unsupported_grant_type"},
            )
        with self._lock:
            if self._clients.get(form["client_id"]) != form["client_secret"]:
                raise AlvysProblem(
                    401,
                    "Unauthorized: wrong client credentials.",
                    extensions={"error": "access_denied", "error_description": "Unauthorized"},
                )
            if form["audience"] != self._audience:
                raise AlvysProblem(
                    403,
                    f"Service not found: {form['audience']}",
                    extensions={"error": "access_denied", "error_description": "Service not found"},
                )
            requested = set(form.get("scope", "").split()) if form.get("scope") else set(SCOPES)
            scopes = frozenset(s for s in SCOPES if s in requested)
            ttl = self.options.token_ttl_seconds
            token = secrets.token_urlsafe(32)
            now = self._clock()
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now}
            self._tokens[token] = _Token(expires_at=now + ttl, scopes=scopes, client_id=form["client_id"])
        expires_in = int(ttl) if float(ttl).is_integer() else ttl
        scope_text = " ".join(s for s in SCOPES if s in scopes)
        return {"access_token": token, "expires_in": expires_in, "token_type": "Bearer", "scope": scope_text}

    def authorize(self, authorization: str | None, scope: str | None = None) -> None:
        """401 unless a live bearer token is given; 403 if it lacks ``scope``."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AlvysProblem(
                401,
                "Authorization header with a Bearer token is required.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        with self._lock:
            found = self._tokens.get(token.strip())
            if found is None:
                raise AlvysProblem(
                    401,
                    "The access token is invalid.",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            if found.expires_at <= self._clock():
                raise AlvysProblem(
                    401,
                    "The access token expired.",
                    headers={
                        "WWW-Authenticate": 'Bearer error="invalid_token", error_description="The token expired"'
                    },
                )
            if scope is not None and scope not in found.scopes:
                raise AlvysProblem(403, f"The access token lacks the scope '{scope}'.")

    def expire_tokens(self) -> int:
        """Make every issued token expired now (clients must fetch a new one); returns how many."""
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = float("-inf")
            return len(self._tokens)

    # ----- payments -----------------------------------------------------------------------------

    def record_customer_payment(self, payment: PaymentIn) -> dict[str, Any]:
        """Apply a customer payment to a load: 404, idempotent repeat, payable status, currency."""
        with self._lock:
            load = self.loads.get(payment.target)
            if load is None or load.is_deleted:
                raise AlvysProblem(404, f"Load '{payment.target}' was not found.")
            existing = next((p for p in load.payments if p.reference == payment.reference), None)
            if existing is not None:
                existing.post_count += 1
                return self._customer_payment_body(load, existing)
            if load.status not in PAYABLE_LOAD_STATUSES:
                raise validation_problem(
                    {"LoadNumber": [f"Load must be in one of: {', '.join(PAYABLE_LOAD_STATUSES)}."]}
                )
            if payment.currency != load.currency:
                raise validation_problem(
                    {
                        "Amount.Currency": [
                            f"Currency {payment.currency} does not match the load's billing "
                            f"currency {load.currency}."
                        ]
                    }
                )
            now = _now()
            recorded = CustomerPayment(
                id=uuid.uuid4().hex,
                load_number=load.load_number,
                reference=payment.reference,
                amount=payment.amount,
                currency=load.currency,
                payment_date=payment.payment_date,
                invoice_number=payment.invoice_number,
                method=payment.method,
                check_number=payment.check_number,
                note=payment.note,
                recorded_at=now,
            )
            load.payments.append(recorded)
            load.paid_at = now
            load.updated_at = now
            self._postings.append(recorded)
            self.webhooks.changed("load", load.load_number, lambda: self.load_dto(load), status_changed=False)
            return self._customer_payment_body(load, recorded)

    def _customer_payment_body(self, load: Load, payment: CustomerPayment) -> dict[str, Any]:
        if self.options.customer_payment_shape == "captured":
            return {
                "LoadNumber": load.load_number,
                "Status": load.status,
                "CustomerPayments": [
                    {
                        "Id": p.id,
                        "Amount": money_json(p.amount, p.currency),
                        "PaymentDate": iso_utc(p.payment_date),
                        "ReferenceNumber": p.reference,
                        "InvoiceNumber": p.invoice_number,
                        "PaymentMethod": p.method,
                        "CheckNumber": p.check_number,
                    }
                    for p in load.payments
                ],
            }
        return {
            "Id": payment.id,
            "LoadNumber": load.load_number,
            "Status": load.status,
            "TotalPaid": money_json(load.total_paid(), load.currency),
            "TotalBillable": money_json(load.billable, load.currency),
        }

    def record_carrier_payment(self, payment: PaymentIn) -> dict[str, Any]:
        """Apply a carrier payment to a trip; the trip turns Completed once payments cover the payable."""
        with self._lock:
            trip = self.trips.get(payment.target)
            if trip is None or trip.is_deleted:
                raise AlvysProblem(404, f"Trip '{payment.target}' was not found.")
            existing = next((p for p in trip.payments if p.reference == payment.reference), None)
            if existing is not None:
                existing.post_count += 1
                return self._carrier_payment_body(trip)
            if payment.currency != trip.currency:
                raise validation_problem(
                    {
                        "Amount.Currency": [
                            f"Currency {payment.currency} does not match the trip's carrier "
                            f"currency {trip.currency}."
                        ]
                    }
                )
            now = _now()
            recorded = CarrierPayment(
                id=uuid.uuid4().hex,
                trip_id=trip.id,
                reference=payment.reference,
                amount=payment.amount,
                currency=trip.currency,
                payment_date=payment.payment_date,
                method=payment.method,
                check_number=payment.check_number,
                note=payment.note,
                recorded_at=now,
            )
            trip.payments.append(recorded)
            trip.updated_at = now
            completed = trip.status != "Completed" and trip.total_paid() >= trip.carrier_payable
            if completed:
                trip.status = "Completed"
                trip.carrier_paid_at = now
            self._postings.append(recorded)
            self.webhooks.changed("trip", trip.id, lambda: self.trip_dto(trip), status_changed=completed)
            return self._carrier_payment_body(trip)

    def _carrier_payment_body(self, trip: Trip) -> dict[str, Any]:
        return {
            "TripId": trip.id,
            "TripNumber": trip.trip_number,
            "Status": trip.status,
            "CarrierPayments": [
                {
                    "Id": p.id,
                    "Amount": money_json(p.amount, p.currency),
                    "PaymentDate": iso_utc(p.payment_date),
                    "ReferenceNumber": p.reference,
                    "PaymentMethod": p.method,
                    "CheckNumber": p.check_number,
                }
                for p in trip.payments
            ],
        }

    # ----- reads --------------------------------------------------------------------------------

    def get_invoice(self, invoice_id: str | None, invoice_number: str | None) -> dict[str, Any]:
        """InvoiceResponse by id (preferred) or number, totals following the loads' payments."""
        if not invoice_id and not invoice_number:
            raise validation_problem({"id": ["Either id or invoiceNumber is required."]})
        with self._lock:
            if invoice_id:
                invoice = self.invoices.get(invoice_id)
            else:
                invoice = next((i for i in self.invoices.values() if i.number == invoice_number), None)
            if invoice is None:
                raise AlvysProblem(404, f"Invoice '{invoice_id or invoice_number}' was not found.")
            body = self.invoice_dto(invoice)
            return camelize(body) if self.options.invoice_case == "camel" else body

    def _invoice_payments(self, invoice: Invoice) -> list[CustomerPayment]:
        loads = [self.loads[n] for n in invoice.load_numbers]
        return sorted((p for load in loads for p in load.payments), key=lambda p: p.recorded_at)

    def _invoice_status(self, invoice: Invoice) -> tuple[str, datetime | None]:
        """(Status, PaidDate): "Paid" from the payment that covered the total, else the stored status.

        The one place an invoice's status is worked out, so every read (GET /invoices,
        POST /invoices/search, its Status filter) tells the same. A part payment leaves the
        status as it is (Alvys publishes no "partly paid" status; RemainingBalance says it).
        """
        with self._lock:
            total = sum((self.loads[n].billable for n in invoice.load_numbers), ZERO)
            running = ZERO
            for p in self._invoice_payments(invoice):
                running += p.amount
                if total > 0 and running >= total:
                    return "Paid", p.payment_date
            return invoice.status, None

    def invoice_customer(self, invoice: Invoice) -> tuple[str, str]:
        """(Id, Name) of the invoice's customer: its loads' customer, named as the customer record says."""
        with self._lock:
            load = self.loads[invoice.load_numbers[0]]
            customer = self.customers.get(load.customer_id)
            return load.customer_id, customer.name if customer else load.customer_name

    def invoice_dto(self, invoice: Invoice) -> dict[str, Any]:
        """InvoiceResponse, the same for GET /invoices and POST /invoices/search."""
        with self._lock:
            loads = [self.loads[n] for n in invoice.load_numbers]
            currency = loads[0].currency
            total = sum((load.billable for load in loads), ZERO)
            payments = self._invoice_payments(invoice)
            paid = sum((p.amount for p in payments), ZERO)
            status, paid_date = self._invoice_status(invoice)
            customer_id, customer_name = self.invoice_customer(invoice)
            return {
                "Id": invoice.id,
                "Number": invoice.number,
                "Type": invoice.type,
                "Status": status,
                "CreatedDate": iso_utc(invoice.created_date),
                "InvoicedDate": iso_utc(invoice.invoiced_date),
                "DueDate": iso_utc(invoice.due_date),
                "PaidDate": iso_utc(paid_date),
                "Total": money_json(total, currency),
                "AmountPaid": money_json(paid, currency),
                "RemainingBalance": money_json(max(total - paid, ZERO), currency),
                "OverPaymentAmount": money_json(max(paid - total, ZERO), currency),
                "IsSubmitted": invoice.status != "Draft",
                "LastSendDate": iso_utc(invoice.invoiced_date),
                "SupplementalInvoiceType": None,
                "Vendor": {
                    "Id": "VENDOR-DEMO",
                    "Name": "FreightPay Demo Logistics",
                    "RemitAddress": None,
                    "RemitEmail": "ar@example.com",
                    "RemitPhone": None,
                },
                "Customer": {
                    "Id": customer_id,
                    "Name": customer_name,
                    "EmailAddresses": [],
                    "PhoneNumbers": [],
                    "BillingAddress": None,
                    "ShippingAddress": None,
                },
                "LineItems": [
                    {
                        "Id": _stable_id("line", f"{invoice.number}:{load.load_number}"),
                        "Name": "Line Haul",
                        "Amount": money_json(load.billable, load.currency),
                        "Rate": {"UnitOfMeasurement": "Flat", "Units": 1, "Rate": load.billable},
                        "LoadNumber": load.load_number,
                        "CustomerId": load.customer_id,
                        "Category": "Linehaul",
                    }
                    for load in loads
                ],
                "Loads": [
                    {
                        "Id": load.id,
                        "LoadNumber": load.load_number,
                        "SubsidiaryName": "FreightPay Demo Logistics",
                        "Source": "Manual",
                        "OrderNumber": load.order_number,
                        "PONumber": load.po_number,
                    }
                    for load in loads
                ],
                "Payments": [
                    {
                        "Id": p.id,
                        "PaymentDate": iso_utc(p.payment_date),
                        "Amount": money_json(p.amount, p.currency),
                        "CheckNumber": p.check_number,
                        "PaymentReference": p.reference,
                    }
                    for p in payments
                ],
            }

    def load_dto(self, load: Load) -> dict[str, Any]:
        """LoadResponse: ids, numbers, status, money (CustomerRate = billable), payments once recorded."""
        with self._lock:
            invoiced = load.invoice_number is not None
            invoice = next((i for i in self.invoices.values() if i.number == load.invoice_number), None)
            references = [{"Name": "PO", "Value": load.po_number}] if load.po_number else []
            return {
                "Id": load.id,
                "LoadNumber": load.load_number,
                "OrderNumber": load.order_number,
                "PONumber": load.po_number,
                "CustomerId": load.customer_id,
                "CustomerName": load.customer_name,
                "Status": load.status,
                "LoadType": "TL",
                "CustomerType": ["Shipper"],
                "Stops": [],
                "InvoiceAs": "Company",
                "Linehaul": money_json(load.billable, load.currency),
                "FuelSurcharge": money_json(ZERO, load.currency),
                "CustomerAccessorials": money_json(ZERO, load.currency),
                "CustomerRate": money_json(load.billable, load.currency),
                "InvoicedAmount": money_json(load.billable, load.currency) if invoiced else None,
                "InvoicedAt": iso_utc(invoice.invoiced_date) if invoice else None,
                "Notes": [],
                "CreatedAt": iso_utc(load.created_at),
                "CreatedBy": "sandbox",
                "References": references,
                "UpdatedAt": iso_utc(load.updated_at),
                "PaidAt": iso_utc(load.paid_at),
                "TotalPaid": money_json(load.total_paid(), load.currency) if load.payments else None,
                "Payments": [
                    {
                        "Id": p.id,
                        "Amount": money_json(p.amount, p.currency),
                        "PaidAt": iso_utc(p.payment_date),
                    }
                    for p in load.payments
                ]
                if load.payments
                else None,
                "IsDeleted": load.is_deleted,
            }

    def trip_dto(self, trip: Trip) -> dict[str, Any]:
        """TripResponse: carrier payable as Carrier.TotalPayable; TripValue is the load revenue share."""
        with self._lock:
            load = self.loads[trip.load_number]
            miles = {"Distance": {"Value": trip.miles, "UnitOfMeasure": "Miles"}}
            return {
                "Id": trip.id,
                "TripNumber": trip.trip_number,
                "Status": trip.status,
                "LoadNumber": trip.load_number,
                "OrderNumber": load.order_number,
                "Stops": [],
                "TotalMileage": miles,
                "EmptyMileage": {"Distance": {"Value": 0, "UnitOfMeasure": "Miles"}},
                "LoadedMileage": miles,
                "CarrierPaidAt": iso_utc(trip.carrier_paid_at),
                "TripValue": money_json(trip.trip_value, load.currency),
                "CarrierPayOnHold": False,
                "Carrier": {
                    "Id": trip.carrier_id,
                    "CarrierInvoiceNumber": None,
                    "Rate": money_json(trip.carrier_payable, trip.currency),
                    "Linehaul": money_json(trip.carrier_payable, trip.currency),
                    "Accessorials": money_json(ZERO, trip.currency),
                    "TotalPayable": money_json(trip.carrier_payable, trip.currency),
                },
                "UpdatedAt": iso_utc(trip.updated_at),
                "IsDeleted": trip.is_deleted,
            }

    def search_loads(self, query: Mapping[str, Any]) -> dict[str, Any]:
        """PagedResponse of loads; filters LoadNumbers, PONumbers, OrderNumbers, Status, CustomerId.

        Date-range and user filters are accepted and not applied (the demo data has no history).
        """
        with self._lock:
            statuses = {norm_status(s) for s in query.get("Status") or []}
            found = [
                load
                for load in self.loads.values()
                if (query.get("IncludeDeleted") or not load.is_deleted)
                and (not query.get("LoadNumbers") or load.load_number in query["LoadNumbers"])
                and (not query.get("PONumbers") or load.po_number in query["PONumbers"])
                and (not query.get("OrderNumbers") or load.order_number in query["OrderNumbers"])
                and (not statuses or norm_status(load.status) in statuses)
                and (not query.get("CustomerId") or load.customer_id == query["CustomerId"])
            ]
            return _page(query, [self.load_dto(load) for load in found])

    def search_invoices(self, query: Mapping[str, Any]) -> dict[str, Any]:
        """PagedResponse of invoices (InvoiceResponse as GET /invoices answers them).

        Filters, all of those given at once: ``CustomerId``; ``Status`` (the status the invoice
        answers with, spaces and case forgiven; unknown statuses match nothing); ``LoadNumbers``,
        ``PONumbers``, ``OrderNumbers`` (an invoice matches if one of its loads does);
        ``InvoicedDateRange`` (InvoicedDate), ``InvoiceSentRange`` (LastSendDate, which the
        sandbox sets to the invoiced date), ``PaidDateRange`` (PaidDate), each with both ends
        included. No invoice-number filter: Alvys publishes none. Invoices in the order added.
        """
        with self._lock:
            statuses = {norm_status(s) for s in query.get("Status") or []}
            found: list[Invoice] = []
            for invoice in self.invoices.values():
                loads = [self.loads[n] for n in invoice.load_numbers]
                status, paid_date = self._invoice_status(invoice)
                if (
                    (not query.get("CustomerId") or self.invoice_customer(invoice)[0] == query["CustomerId"])
                    and (not statuses or norm_status(status) in statuses)
                    and (
                        not query.get("LoadNumbers")
                        or any(ld.load_number in query["LoadNumbers"] for ld in loads)
                    )
                    and (
                        not query.get("PONumbers") or any(ld.po_number in query["PONumbers"] for ld in loads)
                    )
                    and (
                        not query.get("OrderNumbers")
                        or any(ld.order_number in query["OrderNumbers"] for ld in loads)
                    )
                    and _in_period(invoice.invoiced_date, query.get("InvoicedDateRange"))
                    and _in_period(invoice.invoiced_date, query.get("InvoiceSentRange"))
                    and _in_period(paid_date, query.get("PaidDateRange"))
                ):
                    found.append(invoice)
            return _page(query, [self.invoice_dto(invoice) for invoice in found])

    def customer_dto(self, customer: Customer) -> dict[str, Any]:
        """CustomerResponse: the required members always present (empty lists where there is nothing)."""
        return {
            "Id": customer.id,
            "Name": customer.name,
            "CompanyNumber": customer.company_number,
            "Type": customer.type,
            "Status": customer.status,
            "BillingAddress": None,
            "Email": [],
            "Phone": [],
            "Fax": None,
            "DateCreated": iso_utc(customer.created_at),
            "InvoicingInformation": {
                "Address": None,
                "EmailAddresses": [],
                "PhoneNumber": None,
                "InvoicingName": customer.invoicing_name,
                "InvoicingNameAlias": customer.invoicing_name_alias,
                "PaymentType": None,
                "PaymentTermsInDays": customer.payment_terms_days,
            },
            "ExternalId": customer.external_id,
            "Contacts": [],
            "SalesAgentId": None,
            "Notes": [],
        }

    def get_customer(self, customer_id: str | None, company_number: str | None) -> dict[str, Any]:
        """CustomerResponse by id (preferred) or company number; 400 without either, 404 if unknown."""
        if not customer_id and not company_number:
            raise validation_problem({"id": ["Either id or companyNumber is required."]})
        with self._lock:
            if customer_id:
                customer = self.customers.get(customer_id)
            else:
                customer = next(
                    (c for c in self.customers.values() if c.company_number == company_number), None
                )
            if customer is None:
                raise AlvysProblem(404, f"Customer '{customer_id or company_number}' was not found.")
            return self.customer_dto(customer)

    def search_customers(self, query: Mapping[str, Any]) -> dict[str, Any]:
        """PagedResponse of customers by ``Statuses`` and ``CreatedDateRange`` (DateCreated, ends included).

        ``Statuses`` is required by the spec; what an empty list means is not published: the
        sandbox reads it as "any status". Statuses compare with spaces and case forgiven. There is
        no name filter (Alvys has none). Customers in the order added.
        """
        with self._lock:
            statuses = {norm_status(s) for s in query.get("Statuses") or []}
            found = [
                customer
                for customer in self.customers.values()
                if (not statuses or norm_status(customer.status) in statuses)
                and _in_period(customer.created_at, query.get("CreatedDateRange"))
            ]
            return _page(query, [self.customer_dto(customer) for customer in found])

    def search_trips(self, query: Mapping[str, Any]) -> dict[str, Any]:
        """PagedResponse of trips; filters LoadNumbers, TripNumbers, Status (date ranges not applied)."""
        with self._lock:
            statuses = {norm_status(s) for s in query.get("Status") or []}
            found = [
                trip
                for trip in self.trips.values()
                if (query.get("IncludeDeleted") or not trip.is_deleted)
                and (not query.get("LoadNumbers") or trip.load_number in query["LoadNumbers"])
                and (not query.get("TripNumbers") or trip.trip_number in query["TripNumbers"])
                and (not statuses or norm_status(trip.status) in statuses)
            ]
            return _page(query, [self.trip_dto(trip) for trip in found])

    # ----- observation (controls) ----------------------------------------------------------------

    def postings(self) -> list[dict[str, Any]]:
        """Every recorded payment, in recording order, with how many accepted POSTs carried it."""
        with self._lock:
            rows: list[dict[str, Any]] = []
            for p in self._postings:
                if isinstance(p, CustomerPayment):
                    kind, load_number, trip_id, trip_number = "customer", p.load_number, None, None
                else:
                    trip = self.trips[p.trip_id]
                    kind, load_number, trip_id, trip_number = (
                        "carrier",
                        trip.load_number,
                        trip.id,
                        trip.trip_number,
                    )
                rows.append(
                    {
                        "kind": kind,
                        "id": p.id,
                        "load_number": load_number,
                        "trip_id": trip_id,
                        "trip_number": trip_number,
                        "reference": p.reference,
                        "amount": str(p.amount),
                        "currency": p.currency,
                        "payment_date": iso_utc(p.payment_date),
                        "recorded_at": iso_utc(p.recorded_at),
                        "post_count": p.post_count,
                    }
                )
            return rows

    def _posting(self, payment_id: str) -> CustomerPayment | CarrierPayment:
        found = next((p for p in self._postings if p.id == payment_id), None)
        if found is None:
            raise KeyError(payment_id)
        return found

    def lose_posting(self, payment_id: str) -> dict[str, Any]:
        """Drift for reconciliation tests: Alvys "loses" a recorded payment (its load or trip no
        longer lists it, nor do the postings). Silent, as such a loss would be: no webhook.
        A later POST with the same reference records it again. KeyError if there is none."""
        with self._lock:
            payment = self._posting(payment_id)
            row = next(r for r in self.postings() if r["id"] == payment_id)
            if isinstance(payment, CustomerPayment):
                load = self.loads[payment.load_number]
                load.payments = [p for p in load.payments if p.id != payment_id]
                load.paid_at = max((p.recorded_at for p in load.payments), default=None)
            else:
                trip = self.trips[payment.trip_id]
                trip.payments = [p for p in trip.payments if p.id != payment_id]
            self._postings = [p for p in self._postings if p.id != payment_id]
            return row

    def set_posting_amount(self, payment_id: str, amount: Any) -> dict[str, Any]:
        """Drift for reconciliation tests: a recorded payment's amount changes at Alvys (as a
        person editing it in Alvys's UI would); totals follow. KeyError if there is none."""
        with self._lock:
            payment = self._posting(payment_id)
            payment.amount = _amount(amount, "Amount")
            return next(r for r in self.postings() if r["id"] == payment_id)

    def count_request(self, endpoint: str) -> None:
        with self._lock:
            self._requests[endpoint] = self._requests.get(endpoint, 0) + 1

    def request_counts(self) -> dict[str, int]:
        """Requests received per endpoint key since the last reset (every answer, errors included)."""
        with self._lock:
            return {key.value: self._requests.get(key.value, 0) for key in AlvysEndpoint}

    # ----- the hook point -----------------------------------------------------------------------

    async def dispatch(self, endpoint: str, request: Request, handler: Handler) -> Response:
        """Count the request, then run ``hooks`` around ``handler``; AlvysProblem -> ProblemDetails."""
        self.count_request(endpoint)
        instance = request.url.path

        def answer(error: Exception) -> Response | None:
            return error.to_response(instance) if isinstance(error, AlvysProblem) else None

        return await run_hooks(tuple(self.hooks), endpoint, request, handler, answer)


def _page(query: Mapping[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """0-based Page of PageSize items, as Alvys pages its searches."""
    page, size = int(query["Page"]), int(query["PageSize"])
    return {
        "Page": page,
        "PageSize": size,
        "Total": len(items),
        "Items": items[page * size : (page + 1) * size],
    }
