"""Alvys TMS simulator: OAuth token, customer/carrier payments, invoices, customers, searches.

Why it exists: Alvys can't be reached from here, yet freightpay must be tested against Alvys's real
wire behaviour. Everything the simulator says follows Alvys's published OpenAPI document (the
authority), then the vendor facts of docs/vendors.md (which also summarises the captured pages):
PascalCase bodies, .NET ProblemDetails errors, request schemas that forbid unknown fields, idempotency
per (load|trip, ReferenceNumber), payable load statuses, trips turning ``Completed`` once covered,
invoices following the payments on their loads (``GET /invoices`` and ``POST /invoices/search``
answer the same InvoiceResponse: a customer payment lowers ``RemainingBalance`` in both, and the
invoice turns ``Paid`` once covered), customers (``POST /customers/search`` by ``Statuses``,
``GET /customers?companyNumber=|id=``) whose names the invoices carry.

Shapes that differ between the captures and the current contract are options, so clients can be
tested against both: ``customer_payment_shape`` ("current" ``{Id, LoadNumber, Status, TotalPaid,
TotalBillable}`` or "captured" ``{LoadNumber, Status, CustomerPayments[]}``) and ``invoice_case``
("pascal" as published, or "camel" as in the capture).

Money is ``Decimal`` end to end: request bodies are parsed with ``parse_float=Decimal`` and answers are
written by :class:`DecimalJSONResponse`, which prints a Decimal as its exact digits (a JSON number).

Extension point: every endpoint runs through :meth:`AlvysSandbox.dispatch` under a key from
:class:`AlvysEndpoint`; ``AlvysSandbox.hooks`` is a chain of middleware-like :data:`EndpointHook`
callables ``hook(endpoint, request, call_next) -> Response``. Fault injection (5xx, 429 with
Retry-After, latency, commit-then-drop) and rate limits plug in there without touching the handlers.

Demo data format (``sandbox/data/demo.json``, section ``"alvys"``; keys starting with ``_`` are
comments; amounts are strings or numbers, read as Decimal; currencies are ISO 4217 numeric codes or
"USD"/"CAD"/"MXN", default 840)::

    {"alvys": {
      "customers": [{"Id": "CUST-MOBIX", "Name": "Mobix Sourcing", "CompanyNumber": "CUST-MOBIX",
                    "Status": "Active", "InvoicingName": "MOBIX SOURCING", "InvoicingNameAlias":
                    "optional", "Type": "Shipper", "ExternalId": "optional", "DateCreated":
                    "optional", "PaymentTermsInDays": 30}],
      "loads":    [{"LoadNumber": "L-1001", "Status": "Invoiced", "Billable": {"Amount": "382.53",
                    "Currency": 840}, "PONumber": "26714518", "OrderNumber": "ORD-1001",
                    "CustomerId": "a customer's Id (then CustomerName is its Name)",
                    "CustomerName": "...", "Id": "optional", "InvoiceNumber":
                    "optional shortcut: creates or joins that invoice", "IsDeleted": false}],
      "trips":    [{"Id": "T-1001", "TripNumber": "TR-1001", "LoadNumber": "L-1001",
                    "Status": "Delivered", "CarrierPayable": {"Amount": "382.53", "Currency": 840},
                    "CarrierId": "optional", "TripValue": "optional Money", "Miles": 0}],
      "invoices": [{"Id": "optional", "Number": "INV-1001", "LoadNumbers": ["L-1001"],
                    "Status": "AwaitingPayment", "InvoicedDate": "...", "DueDate": "..."}]}}

The same record shapes are accepted by the controls ``POST /_sandbox/alvys/customers|loads|trips|
invoices``. A load posted there with a ``CustomerId`` must name a known customer and gets an invoice
of its own for that customer (its ``InvoiceNumber``, or ``INV-<LoadNumber>``; Total = Billable);
without a ``CustomerId`` a load is added as from the data file.

Layout, one job a module: :mod:`sandbox.alvys_wire` (published constants, ProblemDetails, values
as .NET writes them), :mod:`sandbox.alvys_validation` (request bodies checked as ASP.NET does),
:mod:`sandbox.alvys_records` (the state's records), :mod:`sandbox.alvys_sim` (:class:`AlvysSandbox`,
the state and its behaviour), :mod:`sandbox.alvys_webhooks` (webhook subscriptions and signed
deliveries of every load and trip change) and this module (the two routers). The names other code uses are
importable from here, as they always were.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from sandbox.alvys_sim import AlvysSandbox, EndpointHook, Handler
from sandbox.alvys_validation import (
    CARRIER_PAYMENT_REQUEST,
    CUSTOMER_PAYMENT_REQUEST,
    CUSTOMER_SEARCH_REQUEST,
    INVOICE_SEARCH_REQUEST,
    LOAD_SEARCH_REQUEST,
    TRIP_SEARCH_REQUEST,
    payment_in,
    read_json_body,
    require_version,
    search_query,
    token_form,
)
from sandbox.alvys_webhooks import alvys_webhooks_controls_router, alvys_webhooks_router
from sandbox.alvys_wire import (
    AUDIENCE,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    V1,
    V1_V2,
    WRITE_SCOPE,
    AlvysEndpoint,
    AlvysProblem,
    CustomerPaymentShape,
    InvoiceCase,
    problem_response,
)
from sandbox.wire import DecimalJSONResponse

#: What other code imports from here (sandbox.app, the tests, tests/histories/record.py) and the
#: extension point's names (hooks, problems), re-exported from the modules that now hold them.
__all__ = [
    "AUDIENCE",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "AlvysEndpoint",
    "AlvysProblem",
    "AlvysSandbox",
    "EndpointHook",
    "alvys_controls_router",
    "alvys_router",
    "problem_response",
]


# --------------------------------------------------------------------------------------------------
# HTTP: the Alvys API (mounted at /alvys)
# --------------------------------------------------------------------------------------------------


def alvys_router(state: AlvysSandbox) -> APIRouter:
    """The Alvys endpoints over ``state``: token, payments, invoices, customers, loads/trips search."""
    router = APIRouter(tags=["Alvys (simulated)"])

    def add(path: str, method: str, endpoint: AlvysEndpoint, handler: Handler, summary: str) -> None:
        async def route(request: Request) -> Response:
            return await state.dispatch(endpoint.value, request, handler)

        router.add_api_route(
            path,
            route,
            methods=[method],
            name=f"alvys:{endpoint.value}",
            summary=summary,
            response_class=DecimalJSONResponse,
        )

    async def token(request: Request) -> Response:
        body = state.issue_token(await token_form(request))
        return DecimalJSONResponse(body, headers={"Cache-Control": "no-store"})

    async def customer_payments(request: Request) -> Response:
        require_version(request, V1)
        state.authorize(request.headers.get("authorization"), WRITE_SCOPE)
        payment = payment_in(await read_json_body(request), CUSTOMER_PAYMENT_REQUEST, "LoadNumber")
        return DecimalJSONResponse(state.record_customer_payment(payment))

    async def carrier_payments(request: Request) -> Response:
        require_version(request, V1)
        state.authorize(request.headers.get("authorization"), WRITE_SCOPE)
        payment = payment_in(await read_json_body(request), CARRIER_PAYMENT_REQUEST, "TripId")
        return DecimalJSONResponse(state.record_carrier_payment(payment))

    async def get_invoice(request: Request) -> Response:
        require_version(request, V1)
        state.authorize(request.headers.get("authorization"))
        params = request.query_params
        return DecimalJSONResponse(state.get_invoice(params.get("id"), params.get("invoiceNumber")))

    async def loads_search(request: Request) -> Response:
        require_version(request, V1_V2)
        state.authorize(request.headers.get("authorization"))
        query = search_query(await read_json_body(request), LOAD_SEARCH_REQUEST)
        return DecimalJSONResponse(state.search_loads(query))

    async def trips_search(request: Request) -> Response:
        require_version(request, V1)
        state.authorize(request.headers.get("authorization"))
        query = search_query(await read_json_body(request), TRIP_SEARCH_REQUEST)
        return DecimalJSONResponse(state.search_trips(query))

    async def invoices_search(request: Request) -> Response:
        require_version(request, V1)
        state.authorize(request.headers.get("authorization"))
        query = search_query(await read_json_body(request), INVOICE_SEARCH_REQUEST)
        return DecimalJSONResponse(state.search_invoices(query))

    async def customers_search(request: Request) -> Response:
        require_version(request, V1)
        state.authorize(request.headers.get("authorization"))
        query = search_query(await read_json_body(request), CUSTOMER_SEARCH_REQUEST)
        return DecimalJSONResponse(state.search_customers(query))

    async def get_customer(request: Request) -> Response:
        require_version(request, V1)
        state.authorize(request.headers.get("authorization"))
        params = request.query_params
        return DecimalJSONResponse(state.get_customer(params.get("id"), params.get("companyNumber")))

    base = "/api/p/v{version}"
    add("/oauth/token", "POST", AlvysEndpoint.TOKEN, token, "OAuth2 client-credentials token")
    add(
        f"{base}/invoices/customer-payments",
        "POST",
        AlvysEndpoint.CUSTOMER_PAYMENTS,
        customer_payments,
        "Record customer payment",
    )
    add(
        f"{base}/invoices/carrier-payments",
        "POST",
        AlvysEndpoint.CARRIER_PAYMENTS,
        carrier_payments,
        "Record carrier payment",
    )
    add(f"{base}/invoices", "GET", AlvysEndpoint.GET_INVOICE, get_invoice, "Get invoice")
    add(f"{base}/invoices/search", "POST", AlvysEndpoint.INVOICES_SEARCH, invoices_search, "Search invoices")
    add(
        f"{base}/customers/search",
        "POST",
        AlvysEndpoint.CUSTOMERS_SEARCH,
        customers_search,
        "Search customers",
    )
    add(f"{base}/customers", "GET", AlvysEndpoint.GET_CUSTOMER, get_customer, "Get customer")
    add(f"{base}/loads/search", "POST", AlvysEndpoint.LOADS_SEARCH, loads_search, "Search loads")
    add(f"{base}/trips/search", "POST", AlvysEndpoint.TRIPS_SEARCH, trips_search, "Search trips")
    router.include_router(alvys_webhooks_router(state))  # subscriptions (sandbox/alvys_webhooks.py)
    return router


# --------------------------------------------------------------------------------------------------
# HTTP: sandbox controls (mounted at /_sandbox/alvys; not part of Alvys)
# --------------------------------------------------------------------------------------------------


class StatusBody(BaseModel):
    """Body of the status controls: ``{"Status": "Invoiced"}`` (spaces/case forgiven)."""

    model_config = ConfigDict(extra="forbid")
    Status: str


class AmountBody(BaseModel):
    """Body of ``POST /_sandbox/alvys/postings/{id}/amount``: the recorded payment's new amount."""

    model_config = ConfigDict(extra="forbid")
    Amount: Decimal = Field(gt=0)


class OptionsBody(BaseModel):
    """Body of ``POST /_sandbox/alvys/options``; omitted options are left as they are."""

    model_config = ConfigDict(extra="forbid")
    customer_payment_shape: CustomerPaymentShape | None = None
    invoice_case: InvoiceCase | None = None
    token_ttl_seconds: float | None = Field(default=None, gt=0)


def alvys_controls_router(state: AlvysSandbox) -> APIRouter:
    """Test/demo controls: steer statuses and options, add records, read what was posted."""
    router = APIRouter(tags=["sandbox controls: Alvys"])

    def _add(adder: Callable[[Mapping[str, Any]], Any], record: dict[str, Any]) -> Any:
        try:
            return adder(record)
        except KeyError as exc:
            raise HTTPException(409, str(exc.args[0])) from exc
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc

    @router.post("/loads/{load_number}/status")
    def set_load_status(load_number: str, body: StatusBody) -> Response:
        try:
            load = state.set_load_status(load_number, body.Status)
        except KeyError as exc:
            raise HTTPException(404, f"no load {load_number}") from exc
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        return DecimalJSONResponse(state.load_dto(load))

    @router.post("/trips/{trip_id}/status")
    def set_trip_status(trip_id: str, body: StatusBody) -> Response:
        try:
            trip = state.set_trip_status(trip_id, body.Status)
        except KeyError as exc:
            raise HTTPException(404, f"no trip {trip_id}") from exc
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        return DecimalJSONResponse(state.trip_dto(trip))

    @router.get("/loads/{load_number}")
    def get_load(load_number: str) -> Response:
        load = state.loads.get(load_number)
        if load is None:
            raise HTTPException(404, f"no load {load_number}")
        return DecimalJSONResponse(state.load_dto(load))

    @router.get("/trips/{trip_id}")
    def get_trip(trip_id: str) -> Response:
        trip = state.trips.get(trip_id)
        if trip is None:
            raise HTTPException(404, f"no trip {trip_id}")
        return DecimalJSONResponse(state.trip_dto(trip))

    @router.post("/customers", status_code=201)
    def add_customer(record: dict[str, Any]) -> Response:
        customer = _add(state.add_customer, record)
        return DecimalJSONResponse(state.customer_dto(customer), status_code=201)

    @router.post("/loads", status_code=201)
    def add_load(record: dict[str, Any]) -> Response:
        load = _add(lambda r: state.add_load(r, customer_invoice=True), record)
        return DecimalJSONResponse(state.load_dto(load), status_code=201)

    @router.post("/trips", status_code=201)
    def add_trip(record: dict[str, Any]) -> Response:
        trip = _add(state.add_trip, record)
        return DecimalJSONResponse(state.trip_dto(trip), status_code=201)

    @router.post("/invoices", status_code=201)
    def add_invoice(record: dict[str, Any]) -> Response:
        invoice = _add(state.add_invoice, record)
        return DecimalJSONResponse(state.invoice_dto(invoice), status_code=201)

    @router.get("/postings")
    def postings(
        kind: Literal["customer", "carrier"] | None = None, reference: str | None = None
    ) -> Response:
        rows = [
            row
            for row in state.postings()
            if (kind is None or row["kind"] == kind) and (reference is None or row["reference"] == reference)
        ]
        return DecimalJSONResponse(rows)

    @router.delete("/postings/{payment_id}")
    def lose_posting(payment_id: str) -> Response:
        """Drift: Alvys loses the recorded payment ``payment_id`` (for reconciliation tests)."""
        try:
            return DecimalJSONResponse(state.lose_posting(payment_id))
        except KeyError as exc:
            raise HTTPException(404, f"no recorded payment {payment_id}") from exc

    @router.post("/postings/{payment_id}/amount")
    def set_posting_amount(payment_id: str, body: AmountBody) -> Response:
        """Drift: the recorded payment's amount changes at Alvys: ``{"Amount": 90.00}``."""
        try:
            return DecimalJSONResponse(state.set_posting_amount(payment_id, body.Amount))
        except KeyError as exc:
            raise HTTPException(404, f"no recorded payment {payment_id}") from exc
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc

    @router.get("/requests")
    def requests() -> Response:
        return DecimalJSONResponse(state.request_counts())

    @router.post("/tokens/expire")
    def expire_tokens() -> Response:
        return DecimalJSONResponse({"expired": state.expire_tokens()})

    @router.get("/options")
    def get_options() -> Response:
        return DecimalJSONResponse(vars(copy.copy(state.options)))

    @router.post("/options")
    def set_options(body: OptionsBody) -> Response:
        try:
            options = state.set_options(
                customer_payment_shape=body.customer_payment_shape,
                invoice_case=body.invoice_case,
                token_ttl_seconds=body.token_ttl_seconds,
            )
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        return DecimalJSONResponse(vars(options))

    @router.post("/reset")
    def reset() -> Response:
        state.reset()
        return DecimalJSONResponse({"reset": "alvys"})

    router.include_router(alvys_webhooks_controls_router(state.webhooks))  # deliveries, options
    return router
