"""Cash application reads at Alvys: loads, invoices and customers, turned into facts for a deposit.

Each activity makes one rate-limited request (it runs on the reads queue, whose rate
Temporal keeps across workers), except ``find_customer`` on a cold directory (below).

Alvys has no customer search by name: ``POST /customers/search`` pages through customers by
status, and ``GET /customers?companyNumber=`` finds one by number. So each worker keeps a
directory of customers matched by normalised name (upper case, punctuation and company
suffixes like INC, LLC, CO dropped), read whole when cold or older than
``FREIGHTPAY_CUSTOMER_DIRECTORY_SECONDS`` (default 1 h): ceil(customers / 100) calls, then
none. Payer names the bank prints differently are mapped by ``FREIGHTPAY_PAYER_ALIASES``
(``BANK NAME=Alvys customer name;...``).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping

from temporalio import activity

from activities.alvys import classified_read, load_remaining
from models.deposit import (
    CustomerMatch,
    FindCustomer,
    FindInvoice,
    FindLoads,
    Found,
    KnownTarget,
    OpenInvoicesRequest,
)
from vendors.alvys import AlvysClient, AlvysProblem

#: Statuses of invoices that still take money.
OPEN_INVOICE_STATUSES = ["AwaitingPayment", "Open", "Overdue"]
_SUFFIXES = {"INC", "LLC", "LTD", "CO", "CORP", "CORPORATION", "COMPANY", "THE", "LP", "LLP", "PLLC"}


def normalised(name: str) -> str:
    """A payer or customer name as the directory compares them: ``Acme Foods, Inc.`` → ``ACME FOODS``."""
    words = re.sub(r"[^A-Z0-9 ]+", " ", name.upper()).split()
    return " ".join(w for w in words if w not in _SUFFIXES)


def _page(numbers: list[str]) -> int:
    """One page that holds every asked number's load (one call; Alvys pages hold up to 500)."""
    return max(50, min(len(numbers) * 2, 500))


class CashActivities:
    """The reads a deposit needs, with the worker's customer directory."""

    def __init__(
        self,
        client: AlvysClient,
        *,
        aliases: Mapping[str, str] | None = None,
        directory_seconds: float = 3600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._aliases = {normalised(k): normalised(v) for k, v in (aliases or {}).items()}
        self._directory_seconds = directory_seconds
        self._clock = clock
        self._directory: dict[str, list[tuple[str, str]]] = {}
        self._directory_until = 0.0

    @activity.defn(name="find_loads")
    async def find_loads(self, request: FindLoads) -> Found:
        """Loads by load number or by PO number (one ``POST /loads/search``), with what is open on each."""
        if not request.load_numbers and not request.po_numbers:
            return Found()
        if request.load_numbers:
            loads = await classified_read(
                lambda: self._client.search_loads(load_numbers=request.load_numbers, max_pages=1)
            )
            by = {load.load_number: load for load in loads}
            wanted = request.load_numbers
        else:
            loads = await classified_read(
                lambda: self._client.search_loads(po_numbers=request.po_numbers, max_pages=1)
            )
            by = {}
            for load in loads:
                if load.po_number and load.po_number not in by:
                    by[load.po_number] = load
            wanted = request.po_numbers
        return Found(
            targets=[
                KnownTarget(
                    reference=ref, load_number=by[ref].load_number, open_balance=load_remaining(by[ref])
                )
                for ref in wanted
                if ref in by
            ]
        )

    @activity.defn(name="find_invoice")
    async def find_invoice(self, request: FindInvoice) -> Found:
        """One invoice by number (``GET /invoices``, 5 a minute); none when Alvys does not know it."""
        try:
            invoice = await classified_read(
                lambda: self._client.get_invoice(invoice_number=request.invoice_number)
            )
        except AlvysProblem as error:
            if error.status == 404:
                return Found()
            raise
        if len(invoice.load_numbers) != 1:
            return Found()  # an invoice over several loads: which one is paid is for a person to say
        return Found(
            targets=[
                KnownTarget(
                    reference=request.invoice_number,
                    load_number=invoice.load_numbers[0],
                    invoice_number=invoice.number or request.invoice_number,
                    open_balance=invoice.remaining_balance,
                )
            ]
        )

    @activity.defn(name="find_customer")
    async def find_customer(self, request: FindCustomer) -> CustomerMatch:
        """The payer's customer by normalised name (or alias), from the cached directory."""
        name = normalised(request.payer)
        name = self._aliases.get(name, name)
        if self._clock() >= self._directory_until:
            try:
                await self._read_directory()
            except AlvysProblem as error:
                if error.status >= 500 or error.status == 429:
                    raise
                # A refusal is a fact, not trouble to retry: the deposit's cash stays unapplied.
                return CustomerMatch(reason=f"Alvys refused the customer directory: {error}")
        matches = self._directory.get(name, [])
        if len(matches) == 1:
            return CustomerMatch(customer_id=matches[0][0], name=matches[0][1])
        if not matches:
            return CustomerMatch(reason=f"no Alvys customer is named {request.payer!r} (add an alias?)")
        return CustomerMatch(
            reason=f"several Alvys customers are named {request.payer!r}",
            candidates=[f"{customer_id} ({n})" for customer_id, n in matches],
        )

    async def _read_directory(self) -> None:
        directory: dict[str, list[tuple[str, str]]] = {}
        page = 0  # Alvys's pages are 0-based
        while True:
            batch = await classified_read(lambda n=page: self._client.search_customers(page=n, page_size=100))  # type: ignore[misc]
            for customer in batch.items:
                for label in {customer.name, customer.invoicing_name, customer.invoicing_name_alias} - {
                    None,
                    "",
                }:
                    entries = directory.setdefault(normalised(label or ""), [])
                    if (customer.id, customer.name) not in entries:
                        entries.append((customer.id, customer.name))
            if (page + 1) * 100 >= batch.total or not batch.items:
                break
            page += 1
            # Alvys blocks a caller for 3 minutes for two calls within a second (its default rule).
            await asyncio.sleep(1.1)
        self._directory = directory
        self._directory_until = self._clock() + self._directory_seconds

    @activity.defn(name="open_invoices")
    async def open_invoices(self, request: OpenInvoicesRequest) -> Found:
        """One page of the customer's open invoices (``POST /invoices/search`` by ``CustomerId``)."""
        try:
            page = await classified_read(
                lambda: self._client.search_invoices(
                    customer_id=request.customer_id,
                    statuses=OPEN_INVOICE_STATUSES,
                    page=request.page,
                    page_size=100,
                )
            )
        except AlvysProblem as error:
            if error.status >= 500 or error.status == 429:
                raise
            return Found()  # a refusal is a fact: nothing found
        targets = [
            KnownTarget(
                reference=invoice.number or invoice.id or "",
                load_number=invoice.load_numbers[0],
                invoice_number=invoice.number,
                open_balance=invoice.remaining_balance,
                customer_id=request.customer_id,
            )
            for invoice in page.items
            if len(invoice.load_numbers) == 1
            and invoice.remaining_balance is not None
            and invoice.remaining_balance.is_positive()
        ]
        return Found(targets=targets, more=(request.page + 1) * 100 < page.total)
