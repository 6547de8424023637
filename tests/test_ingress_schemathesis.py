"""Schemathesis against the ingress's own OpenAPI description, over real HTTP.

Every operation gets generated requests, valid and invalid (schemathesis's examples, coverage
and fuzzing phases, about 25 examples each), sent with the right credentials to an ingress
served by uvicorn and backed by the session's real Temporal dev server. The checks:

- ``not_a_server_error``: no 5xx, whatever the input;
- ``response_schema_conformance``: an answer matches its schema wherever one is declared;
- ``negative_data_rejection``: input the schema forbids is refused with a 4xx.

Starts that pass intake answer 202 only after Temporal accepted them; no worker runs, so the
workflows just wait on this test's own task queue. Explicit examples (with fresh references,
so no other test's workflow id is taken) make sure the 202 path is exercised too.

What schemathesis found in the ingress (dangling schema references, undocumented problem
answers, Unix-time dates, booleans as currencies) was fixed; the tests at the bottom keep
each finding fixed.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance
from temporalio.client import Client

from config.settings import SANDBOX_T1_CALLBACK_SECRET, Settings
from ingress.app import create_app
from tests.conftest import API_KEY, MC_SECRET
from tests.support.servers import serve_app

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CHECKS: list[schemathesis.CheckFunction] = [
    not_a_server_error,
    response_schema_conformance,
    negative_data_rejection,
]
#: The ingress_settings fixture's credentials (TransportOne's callback secret: the sandbox's).
CREDENTIALS = {"x-api-key": API_KEY, "x-webhook-secret": MC_SECRET, "x-tms-callback-secret": SANDBOX_T1_CALLBACK_SECRET}  # fmt: skip


def unique(prefix: str) -> str:
    return f"{prefix}-ST{uuid.uuid4().hex[:10].upper()}"


def sample_bodies() -> dict[str, Any]:
    """A valid body per intake route (the repository's examples), with references never used before."""
    customer = json.loads((EXAMPLES / "alvys-customer-payment.json").read_text())
    customer["ReferenceNumber"] = unique("CHK")
    carrier = json.loads((EXAMPLES / "alvys-carrier-payment.json").read_text())
    carrier["ReferenceNumber"] = unique("ACH")
    mycarrier = json.loads((EXAMPLES / "mycarrier-invoice-payment.json").read_text())
    for payment in mycarrier["Payments"]:
        payment["Id"] = str(uuid.uuid4())
    transportone = {
        "data": {
            "payments": [
                {"paymentId": unique("P"), "invoiceNumber": "INV-T1-1001", "paymentType": "cash",
                 "totalAmount": 208, "appliedAmount": 208, "paymentDate": 1757116800000,
                 "referenceNumber": unique("UTR")},
            ]
        }
    }  # fmt: skip
    remittance = (
        "target,amount,currency,payment_date,reference,load_number\n"
        f"alvys-customer-payment,125.00,USD,2026-11-20,{unique('RMT')},L-1001\n"
    )
    return {
        "/v1/payments/alvys/customer-payments": customer,
        "/v1/payments/alvys/carrier-payments": carrier,
        "/v1/webhooks/mycarrier": mycarrier,
        "/v1/payments/transportone/billing-payments": transportone,
        "/v1/remittances": remittance,
    }


def with_examples(document: dict[str, Any], bodies: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(document)
    for path, body in bodies.items():
        for content in document["paths"][path]["post"]["requestBody"]["content"].values():
            content["examples"] = {"sample": {"value": body}}
    return document


def ingress_openapi() -> dict[str, Any]:
    """The description the ingress serves at /openapi.json (it does not depend on the settings)."""
    return create_app(Settings()).openapi()


schema = schemathesis.openapi.from_dict(with_examples(ingress_openapi(), sample_bodies()))
# The credentials are configured, not generated, so schemathesis knows every request carries them.
schema.config.update(headers=CREDENTIALS)


@pytest.fixture
def ingress(client: Client, ingress_settings: Settings) -> Iterator[str]:
    """The ingress over real HTTP, starting workflows on the session's dev server."""
    callback = ingress_settings.transportone.callback_secret
    assert callback is not None and callback.get_secret_value() == CREDENTIALS["x-tms-callback-secret"]
    with serve_app(create_app(ingress_settings, client=client)) as url:
        yield url


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_ingress_schemathesis(case: schemathesis.Case[Any], ingress: str) -> None:
    response = case.call_and_validate(base_url=ingress, checks=CHECKS, timeout=15)
    # The configured credentials are there: no answer is a 401 (which would hide every route).
    assert response.status_code != 401 or case.path == "/v1/webhooks/alvys", response.text
    if response.status_code == 202:
        ids = response.json()["workflow_ids"]
        assert ids and all(i.startswith("payment-") for i in ids)


def test_the_examples_are_accepted(ingress: str) -> None:
    """The explicit examples do reach Temporal (so the 202 path above is exercised)."""
    with httpx.Client(base_url=ingress, headers=CREDENTIALS, timeout=15) as http:
        for path, body in sample_bodies().items():
            if isinstance(body, str):
                answer = http.post(path, content=body, headers={"Content-Type": "text/csv"})
            else:
                answer = http.post(path, json=body)
            assert answer.status_code == 202, (path, answer.text)


# -- findings, fixed: each stays fixed -------------------------------------------------------


def test_request_body_references_resolve() -> None:
    loaded = schemathesis.openapi.from_dict(ingress_openapi())
    assert list(loaded.iter_schema_warnings()) == []


def test_problem_answers_are_documented() -> None:
    document = ingress_openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path == "/healthz":
                continue
            responses = operation["responses"]
            for status in ("401", "422"):
                assert status in responses, (method, path, status)
                assert "application/problem+json" in responses[status].get("content", {}), (
                    method,
                    path,
                    status,
                )


def alvys_body(route: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = sample_bodies()[f"/v1/payments/alvys/{route}"]
    return {**body, **changes}


@pytest.mark.parametrize(
    ("route", "body", "why"),
    [
        pytest.param(
            "customer-payments", alvys_body("customer-payments", PaymentDate=0), "a number is not a date-time",
        ),
        pytest.param(
            "carrier-payments", alvys_body("carrier-payments", PaymentDate="1000000000"), "nor is a numeric string",
        ),
        pytest.param(
            "customer-payments", alvys_body("customer-payments", Amount={"Amount": 382.53, "Currency": False}), "bool",
        ),
        pytest.param(
            "carrier-payments", alvys_body("carrier-payments", MarkAsPaid="yes"), "not a boolean",
        ),
    ],
)  # fmt: skip
def test_schema_violating_alvys_bodies_are_refused(
    route: str, body: dict[str, Any], why: str, ingress: str
) -> None:
    with httpx.Client(base_url=ingress, headers=CREDENTIALS, timeout=15) as http:
        answer = http.post(f"/v1/payments/alvys/{route}", json=body)
    assert answer.status_code == 422, (why, answer.status_code, answer.text)
