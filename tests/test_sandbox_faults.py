"""Fault injection and published rate limits in the sandbox, over real HTTP on loopback.

Why: freightpay's retries, idempotency and client-side limiter are only as good as the failures
they are tested against. Each fault is checked as a client sees it (status, headers, the vendor's
body, a transport error for a drop), the "answer lost after commit" cases really record the payment,
controls are never affected, and Alvys's published limits hold at a time scale that runs a "10 per
minute" limit in about a second. Every test builds its own app (fresh state, no order dependence).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sandbox.alvys import AlvysEndpoint
from sandbox.app import app_from_args, create_app, parse_args
from sandbox.faults import (
    ALVYS_PUBLISHED_LIMITS,
    FaultSettings,
    RateLimitSettings,
    scaled_retry_after,
)
from sandbox.transportone import DEMO_CLIENT_ID as T1_CLIENT_ID
from sandbox.transportone import DEMO_CLIENT_SECRET as T1_CLIENT_SECRET
from tests.support.servers import serve_app
from tests.test_sandbox_alvys import (
    CREDENTIALS,
    SEARCH,
    assert_problem,
    customer_body,
    new_load,
    post_customer,
)
from tests.test_sandbox_transportone import AUTH as T1_AUTH
from tests.test_sandbox_transportone import assert_os1_error, body_of, entry, new_invoice
from tests.test_sandbox_transportone import post as t1_post

API = "/alvys/api/p/v1.0"
PUBLISHED_60 = {"mode": "published", "time_scale": 60}


# ----- helpers ------------------------------------------------------------------------------------


@dataclass
class Sandbox:
    app: FastAPI
    http: httpx.Client

    def alvys_token(self) -> str:
        response = self.http.post("/alvys/oauth/token", json=CREDENTIALS)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def alvys(self, token: str | None = None) -> httpx.Client:
        """A client of the same server carrying an Alvys bearer token (a new one if not given)."""
        headers = {"Authorization": f"Bearer {token or self.alvys_token()}"}
        return httpx.Client(base_url=str(self.http.base_url), timeout=10, headers=headers)

    def t1_token(self) -> str:
        response = self.http.post(
            T1_AUTH,
            json={"clientId": T1_CLIENT_ID, "clientSecret": T1_CLIENT_SECRET},
            headers={"x-coreos-request-id": str(uuid.uuid4())},
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["data"]["accessToken"]
        return token

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self.http.get("/_sandbox/faults").json()
        return result

    def limits(self, vendor: str = "alvys") -> dict[str, Any]:
        result: dict[str, Any] = self.http.get("/_sandbox/rate-limits").json()["vendors"][vendor]["endpoints"]
        return result


@contextlib.contextmanager
def running(
    faults: dict[str, Any] | None = None, rate_limits: dict[str, Any] | None = None
) -> Iterator[Sandbox]:
    """A fresh sandbox app served on loopback with these settings (the environment is ignored)."""
    app = create_app(
        faults=FaultSettings.model_validate(faults or {}),
        rate_limits=RateLimitSettings.model_validate(rate_limits or {}),
        environ={},
    )
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield Sandbox(app, http)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def invoice_of(api: httpx.Client, load: str) -> httpx.Response:
    return api.get(f"{API}/invoices", params={"invoiceNumber": f"INV-{load}"})


def alvys_postings(http: httpx.Client, reference: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = http.get("/_sandbox/alvys/postings", params={"reference": reference}).json()
    return rows


def t1_postings(http: httpx.Client, reference: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = http.get(
        "/_sandbox/transportone/postings", params={"reference": reference}
    ).json()
    return rows


# ----- faults: each kind as the client sees it ------------------------------------------------------


def test_error_fault_answers_5xx_without_running_the_handler() -> None:
    with running({"alvys": {"error_rate": 1}}) as sandbox, sandbox.alvys() as api:
        load, reference = new_load(sandbox.http), unique("R")
        response = post_customer(api, customer_body(load, 10, reference))
        body = assert_problem(response, 503)
        assert response.headers["x-sandbox-fault"] == "error"
        assert body["Title"] == "Service Unavailable"
        assert alvys_postings(sandbox.http, reference) == []
        # the vendor still counts the request it received
        assert sandbox.http.get("/_sandbox/alvys/requests").json()["invoices/customer-payments"] == 1
        assert sandbox.faults()["injected"]["alvys"] == {"invoices/customer-payments": {"error": 1}}


def test_error_fault_with_another_status_uses_the_transportone_body() -> None:
    with running({"transportone": {"error_rate": 1, "error_status": 502}}) as sandbox:
        token, invoice = sandbox.t1_token(), new_invoice(sandbox.http)
        payment = entry(invoice)
        response = t1_post(sandbox.http, token, body_of(payment))
        assert_os1_error(response, 502, "Bad Gateway")
        assert t1_postings(sandbox.http, payment["referenceNumber"]) == []


def test_rate_429_fault_per_vendor() -> None:
    faults = {"alvys": {"rate_429": 1, "retry_after": 7}, "transportone": {"rate_429": 1, "retry_after": 3}}
    with running(faults) as sandbox, sandbox.alvys() as api:
        alvys = invoice_of(api, new_load(sandbox.http))
        assert_problem(alvys, 429)  # application/problem+json, ProblemDetails
        assert alvys.headers["retry-after"] == "7"
        assert alvys.headers["x-sandbox-fault"] == "rate_429"

        t1 = t1_post(sandbox.http, sandbox.t1_token(), body_of(entry(new_invoice(sandbox.http))))
        assert_os1_error(t1, 429)
        assert t1.headers["retry-after"] == "3"


def test_fixed_and_ranged_latency_is_real_time() -> None:
    faults = {
        "alvys": {"latency_ms": 300},
        "transportone": {"latency_ms": [100, 150], "include_token": True},
    }
    with running(faults) as sandbox, sandbox.alvys() as api:
        load = new_load(sandbox.http)
        started = time.monotonic()
        assert invoice_of(api, load).status_code == 200
        assert time.monotonic() - started >= 0.3

        started = time.monotonic()
        sandbox.t1_token()
        assert 0.1 <= time.monotonic() - started < 2
        injected = sandbox.faults()["injected"]
        assert injected["alvys"]["invoices"] == {"latency": 1}
        assert injected["transportone"]["auth/client-credentials"] == {"latency": 1}


def test_reset_drops_the_connection_before_the_handler_runs() -> None:
    with running({"alvys": {"reset_rate": 1}, "transportone": {"reset_rate": 1}}) as sandbox:
        with sandbox.alvys() as api:
            load, reference = new_load(sandbox.http), unique("R")
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                post_customer(api, customer_body(load, 10, reference))
        assert alvys_postings(sandbox.http, reference) == []

        payment = entry(new_invoice(sandbox.http))
        with pytest.raises(httpx.RemoteProtocolError):
            t1_post(sandbox.http, sandbox.t1_token(), body_of(payment))
        assert t1_postings(sandbox.http, payment["referenceNumber"]) == []
        # the client reconnects by itself: the next request on the same client is answered
        assert sandbox.http.get("/healthz").status_code == 200


def test_drop_without_the_transport_still_fails_the_client() -> None:
    """Mounted under another app, uvicorn's transport is out of reach: the fallback starts an answer
    and never finishes it, which the client also sees as a transport error."""
    inner = create_app(faults=FaultSettings.model_validate({"alvys": {"reset_rate": 1}}), environ={})
    outer = FastAPI()
    outer.mount("/", inner)
    with serve_app(outer) as url, httpx.Client(base_url=url, timeout=10) as http:
        token = http.post("/alvys/oauth/token", json=CREDENTIALS).json()["access_token"]
        with pytest.raises(httpx.RemoteProtocolError):
            http.get(
                f"{API}/invoices",
                params={"invoiceNumber": "INV-1001"},
                headers={"Authorization": f"Bearer {token}"},
            )


def test_commit_then_500_records_the_payment_the_client_saw_fail() -> None:
    faults = {"alvys": {"commit_then_500_rate": 1, "only_first_n": 1}}
    with running(faults) as sandbox, sandbox.alvys() as api:
        load, reference = new_load(sandbox.http), unique("R")
        failed = post_customer(api, customer_body(load, 10, reference))
        assert_problem(failed, 500)
        assert failed.headers["x-sandbox-fault"] == "commit_then_500"
        [posting] = alvys_postings(sandbox.http, reference)
        assert posting["amount"] == "10" and posting["post_count"] == 1

        retried = post_customer(api, customer_body(load, 10, reference))  # past only_first_n
        assert retried.status_code == 200, retried.text
        [posting] = alvys_postings(sandbox.http, reference)
        assert posting["post_count"] == 2  # idempotent: recorded once, posted twice


def test_commit_then_drop_records_the_payment_and_drops_the_answer() -> None:
    faults = {
        "alvys": {
            "endpoints": {"invoices/customer-payments": {"commit_then_drop_rate": 1, "only_first_n": 1}}
        },
        "transportone": {"commit_then_drop_rate": 1, "only_first_n": 1},
    }
    with running(faults) as sandbox, sandbox.alvys() as api:
        load, reference = new_load(sandbox.http), unique("R")
        with pytest.raises(httpx.RemoteProtocolError):
            post_customer(api, customer_body(load, 10, reference))
        assert len(alvys_postings(sandbox.http, reference)) == 1

        token, payment, request_id = sandbox.t1_token(), entry(new_invoice(sandbox.http)), str(uuid.uuid4())
        with pytest.raises(httpx.TransportError):
            t1_post(sandbox.http, token, body_of(payment), request_id)
        [recorded] = t1_postings(sandbox.http, payment["referenceNumber"])
        replay = t1_post(sandbox.http, token, body_of(payment), request_id)
        assert replay.status_code == 200, replay.text  # the same request id: the recorded answer
        [recorded] = t1_postings(sandbox.http, payment["referenceNumber"])
        assert recorded["post_count"] == 2
        injected = sandbox.faults()["injected"]
        assert injected["alvys"] == {"invoices/customer-payments": {"commit_then_drop": 1}}
        assert injected["transportone"] == {"billing/payments": {"commit_then_drop": 1}}


def test_token_expiry_refuses_the_token_until_the_client_refreshes() -> None:
    faults = {"alvys": {"token_expiry_rate": 1, "only_first_n": 1}, "transportone": {"token_expiry_rate": 1}}
    with running(faults) as sandbox:
        load = new_load(sandbox.http)
        with sandbox.alvys() as api:
            expired = invoice_of(api, load)
            body = assert_problem(expired, 401)
            assert body["Detail"] == "The access token expired."
            assert "invalid_token" in expired.headers["www-authenticate"]
            again = invoice_of(api, load)  # an expired token stays expired
            assert_problem(again, 401)
            assert again.headers["x-sandbox-fault"] == "token_refused"
        with sandbox.alvys() as refreshed:
            assert invoice_of(refreshed, load).status_code == 200

        token = sandbox.t1_token()
        assert_os1_error(
            t1_post(sandbox.http, token, body_of(entry(new_invoice(sandbox.http)))), 401, "expired"
        )
        assert sandbox.faults()["expired_tokens"] == {"alvys": 1, "transportone": 1}


def test_only_first_n_then_the_endpoint_works() -> None:
    with running({"alvys": {"error_rate": 1, "only_first_n": 2}}) as sandbox, sandbox.alvys() as api:
        load = new_load(sandbox.http)
        statuses = [invoice_of(api, load).status_code for _ in range(4)]
        assert statuses == [503, 503, 200, 200]
        assert sandbox.faults()["matched"] == {"alvys": {"*": 4}}


def test_token_endpoints_are_spared_unless_included() -> None:
    with running({"alvys": {"error_rate": 1}, "transportone": {"error_rate": 1}}) as sandbox:
        sandbox.alvys_token()
        sandbox.t1_token()
    with running({"alvys": {"error_rate": 1, "include_token": True}}) as sandbox:
        assert_problem(sandbox.http.post("/alvys/oauth/token", json=CREDENTIALS), 503)
    with running({"transportone": {"endpoints": {"auth/client-credentials": {"rate_429": 1}}}}) as sandbox:
        response = sandbox.http.post(
            T1_AUTH,
            json={"clientId": T1_CLIENT_ID, "clientSecret": T1_CLIENT_SECRET},
            headers={"x-coreos-request-id": str(uuid.uuid4())},
        )
        assert_os1_error(response, 429)


def test_endpoint_entries_inherit_the_vendor_level() -> None:
    faults = {"alvys": {"latency_ms": 200, "endpoints": {"invoices": {"error_rate": 1}}}}
    with running(faults) as sandbox, sandbox.alvys() as api:
        load = new_load(sandbox.http)
        started = time.monotonic()
        assert_problem(invoice_of(api, load), 503)
        assert api.post(f"{API}/loads/search", json=SEARCH).status_code == 200
        assert time.monotonic() - started >= 0.4  # both waited 200 ms
        settings = sandbox.faults()["settings"]
        assert settings["alvys"]["endpoints"] == {"invoices": {"error_rate": 1.0}}
        assert settings["alvys"]["latency_ms"] == 200.0


def test_a_seed_makes_faults_reproducible() -> None:
    faults = {"seed": 42, "alvys": {"error_rate": 0.5}}

    def statuses(sandbox: Sandbox, api: httpx.Client, load: str) -> list[int]:
        return [invoice_of(api, load).status_code for _ in range(20)]

    with running(faults) as sandbox, sandbox.alvys() as api:
        load = new_load(sandbox.http)
        first = statuses(sandbox, api, load)
        assert sandbox.http.post("/_sandbox/reset").status_code == 200  # re-seeds, keeps settings
        load = new_load(sandbox.http)
        assert statuses(sandbox, api, load) == first
    with running(faults) as sandbox, sandbox.alvys() as api:
        assert statuses(sandbox, api, new_load(sandbox.http)) == first
    assert set(first) == {200, 503}


def test_faults_never_touch_the_controls() -> None:
    faults = {
        "alvys": {"error_rate": 1, "include_token": True},
        "transportone": {"reset_rate": 1, "include_token": True},
    }
    with running(faults) as sandbox:
        http = sandbox.http
        for path in (
            "/healthz",
            "/_sandbox/faults",
            "/_sandbox/rate-limits",
            "/_sandbox/alvys/postings",
            "/_sandbox/alvys/requests",
            "/_sandbox/transportone/postings",
            "/_sandbox/transportone/options",
        ):
            assert http.get(path).status_code == 200, path
        assert (
            http.post(
                "/_sandbox/alvys/loads",
                json={"LoadNumber": unique("L"), "Status": "Invoiced", "Billable": "1.00"},
            ).status_code
            == 201
        )
        assert http.post("/_sandbox/alvys/tokens/expire").status_code == 200
        assert http.post("/_sandbox/reset").status_code == 200
        assert sandbox.faults()["injected"] == {}


def test_faults_change_at_run_time_through_the_controls() -> None:
    with running() as sandbox, sandbox.alvys() as api:
        load = new_load(sandbox.http)
        assert invoice_of(api, load).status_code == 200
        changed = sandbox.http.post("/_sandbox/faults", json={"seed": 3, "alvys": {"error_rate": 1}})
        assert changed.status_code == 200
        assert changed.json()["settings"]["alvys"]["error_rate"] == 1.0
        assert changed.json()["settings"]["seed"] == 3
        assert_problem(invoice_of(api, load), 503)
        assert sandbox.http.post("/_sandbox/faults", json={}).json()["settings"] == {"seed": None}
        assert invoice_of(api, load).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"alvys": {"error_rate": 2}},
        {"alvys": {"error_rate": 0.6, "rate_429": 0.6}},
        {"alvys": {"bogus": 1}},
        {"alvys": {"error_status": 404}},
        {"alvys": {"latency_ms": [200, 100]}},
        {"alvys": {"endpoints": {"nope": {"error_rate": 1}}}},
        {"alvys": {"latency_ms": 10, "endpoints": {"invoices": {"error_rate": 0.7, "reset_rate": 0.7}}}},
        {"mycarrier": {"error_rate": 1}},
    ],
)
def test_invalid_fault_settings_are_refused_and_change_nothing(body: dict[str, Any]) -> None:
    with running({"alvys": {"latency_ms": 1}}) as sandbox:
        response = sandbox.http.post("/_sandbox/faults", json=body)
        assert response.status_code == 422, response.text
        assert sandbox.faults()["settings"]["alvys"]["latency_ms"] == 1.0


# ----- rate limits ---------------------------------------------------------------------------------


def test_published_payment_limit_at_time_scale_60() -> None:
    """10 accepted, then 429 Retry-After 1 (60 s scaled) and a 3 s block (180 s scaled), then accepted."""
    with running(rate_limits=PUBLISHED_60) as sandbox, sandbox.alvys() as api:
        load = new_load(sandbox.http)
        first = time.monotonic()
        for _ in range(10):
            response = post_customer(api, customer_body(load, 1, unique("R")))
            assert response.status_code == 200, response.text
            time.sleep(0.02)  # more than the burst window (1 s / 60)
        started = time.monotonic()
        assert started - first < 0.9, "too slow to fit 11 requests in the scaled minute (1 s)"
        refused = post_customer(api, customer_body(load, 1, "R-11"))
        blocked_at = time.monotonic()
        assert_problem(refused, 429)
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["x-sandbox-rate-limit"] == "endpoint"
        assert alvys_postings(sandbox.http, "R-11") == []
        assert invoice_of(api, load).status_code == 200  # the block is per endpoint

        time.sleep(max(0.0, started + 1.3 - time.monotonic()))  # the window alone would admit it now
        blocked = post_customer(api, customer_body(load, 1, "R-12"))
        assert_problem(blocked, 429)
        assert blocked.headers["x-sandbox-rate-limit"] == "blocked"
        assert blocked.headers["retry-after"] == "1"
        during = sandbox.limits()["invoices/customer-payments"]
        assert during["blocked_until"] is not None
        assert 0 < during["blocked_seconds_left"] <= 3
        assert during["blocked_callers"].keys() == {"client:sandbox-client"}

        time.sleep(max(0.0, blocked_at + 3.1 - time.monotonic()))
        assert post_customer(api, customer_body(load, 1, "R-13")).status_code == 200
        after = sandbox.limits()["invoices/customer-payments"]
        assert after["accepted"] == 11
        assert after["rejected_429"] == 2
        assert after["blocks_started"] == 1
        assert after["rejected_by"] == {"endpoint": 1, "blocked": 1}
        assert after["blocked_until"] is None


def test_burst_of_one_per_second_blocks_the_caller() -> None:
    with running(rate_limits={"mode": "published"}) as sandbox, sandbox.alvys() as api:
        load = new_load(sandbox.http)
        assert post_customer(api, customer_body(load, 1, unique("R"))).status_code == 200
        refused = post_customer(api, customer_body(load, 1, unique("R")))
        assert_problem(refused, 429)
        assert refused.headers["retry-after"] == "60"
        assert refused.headers["x-sandbox-rate-limit"] == "burst"
        stats = sandbox.limits()["invoices/customer-payments"]
        assert stats["blocks_started"] == 1 and 170 < stats["blocked_seconds_left"] <= 180

        reset = sandbox.http.post("/_sandbox/rate-limits/reset")
        assert reset.json()["vendors"]["alvys"]["endpoints"]["invoices/customer-payments"]["accepted"] == 0
        assert post_customer(api, customer_body(load, 1, unique("R"))).status_code == 200


def test_get_invoices_at_five_per_minute_per_credential() -> None:
    """Five per (scaled) minute, shared by every token of the same client credential."""
    with running(rate_limits=PUBLISHED_60) as sandbox, sandbox.alvys() as first, sandbox.alvys() as second:
        load = new_load(sandbox.http)
        statuses = [invoice_of(first, load).status_code for _ in range(3)]
        statuses += [invoice_of(second, load).status_code for _ in range(3)]
        assert statuses == [200] * 5 + [429]
        assert sandbox.limits()["invoices"]["blocks_started"] == 1


def test_global_ten_per_second_per_caller_spans_endpoints() -> None:
    with running(rate_limits={"mode": "published"}) as sandbox, sandbox.alvys() as api:
        load = new_load(sandbox.http)
        started = time.monotonic()
        for path in ("loads/search", "trips/search"):
            for _ in range(5):
                assert api.post(f"{API}/{path}", json=SEARCH).status_code == 200
        refused = invoice_of(api, load)
        assert time.monotonic() - started < 1, "too slow to test a per-second limit"
        assert_problem(refused, 429)
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["x-sandbox-rate-limit"] == "per_caller"
        assert sandbox.limits()["invoices"]["blocks_started"] == 0
        time.sleep(1.05)
        assert invoice_of(api, load).status_code == 200  # no block on the global rule


def test_token_endpoint_is_exempt_and_transportone_unlimited() -> None:
    with running(rate_limits=PUBLISHED_60) as sandbox:
        for _ in range(15):
            sandbox.alvys_token()
        token = sandbox.t1_token()
        invoice = new_invoice(sandbox.http, total="100000.00")
        for _ in range(30):
            response = t1_post(sandbox.http, token, body_of(entry(invoice, totalAmount=1, appliedAmount=1)))
            assert response.status_code == 200, response.text
        t1 = sandbox.limits("transportone")
        assert t1["billing/payments"]["accepted"] == 30 and t1["billing/payments"]["rejected_429"] == 0
        assert sandbox.limits()["oauth/token"]["rejected_429"] == 0
        assert sandbox.http.get("/_sandbox/rate-limits").json()["vendors"]["transportone"]["limits"] is None


def test_rate_limits_change_at_run_time() -> None:
    with running() as sandbox, sandbox.alvys() as api:
        load = new_load(sandbox.http)
        assert [invoice_of(api, load).status_code for _ in range(8)] == [200] * 8  # off by default
        assert sandbox.limits()["invoices"]["accepted"] == 0  # off counts nothing

        on = sandbox.http.post("/_sandbox/rate-limits", json=PUBLISHED_60).json()
        assert on["settings"] == {"mode": "published", "time_scale": 60.0, "vendors": {}}
        assert on["vendors"]["alvys"]["limits"]["endpoints"]["invoices"]["limit"] == 5
        assert [invoice_of(api, load).status_code for _ in range(6)] == [200] * 5 + [429]

        sandbox.http.post("/_sandbox/rate-limits", json={"mode": "off"})
        assert invoice_of(api, load).status_code == 200
        assert sandbox.http.post("/_sandbox/rate-limits", json={"mode": "sometimes"}).status_code == 422
        bad_table = {"mode": "published", "vendors": {"alvys": {"endpoints": {"nope": None}}}}
        assert sandbox.http.post("/_sandbox/rate-limits", json=bad_table).status_code == 422
        assert sandbox.http.post("/_sandbox/rate-limits", json={"time_scale": 0}).status_code == 422

        sandbox.http.post("/_sandbox/rate-limits", json=PUBLISHED_60)
        assert invoice_of(api, load).status_code == 429  # the block survived the settings changes
        assert sandbox.http.post("/_sandbox/reset").status_code == 200  # clears blocks too
        assert invoice_of(api, new_load(sandbox.http)).status_code == 200


def test_a_custom_table_limits_transportone_with_its_error_body() -> None:
    limits = {"mode": "published", "time_scale": 60, "vendors": {"transportone": {"default": {"limit": 2}}}}
    with running(rate_limits=limits) as sandbox:
        token, invoice = sandbox.t1_token(), new_invoice(sandbox.http)
        answers = [
            t1_post(sandbox.http, token, body_of(entry(invoice, totalAmount=1, appliedAmount=1)))
            for _ in range(3)
        ]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert_os1_error(answers[2], 429, "Rate limit")
        assert answers[2].headers["retry-after"] == "1"


def test_faults_come_before_the_limiter() -> None:
    """A dropped request never reached the vendor's gateway: it uses none of the budget."""
    faults = {"alvys": {"endpoints": {"invoices": {"reset_rate": 1, "only_first_n": 3}}}}
    with running(faults, PUBLISHED_60) as sandbox, sandbox.alvys() as api:
        load = new_load(sandbox.http)
        for _ in range(3):
            with pytest.raises(httpx.TransportError):
                invoice_of(api, load)
        assert [invoice_of(api, load).status_code for _ in range(6)] == [200] * 5 + [429]


def test_scaled_retry_after() -> None:
    assert scaled_retry_after(60, 1) == 60
    assert scaled_retry_after(60, 60) == 1
    assert scaled_retry_after(60, 120) == 1  # at least a second
    assert scaled_retry_after(180, 60) == 3
    assert scaled_retry_after(60, 7) == 9  # rounded up
    assert scaled_retry_after(0, 60) == 0


def test_published_table_names_real_alvys_endpoints() -> None:
    keys = {key.value for key in AlvysEndpoint}
    assert set(ALVYS_PUBLISHED_LIMITS.endpoints) | set(ALVYS_PUBLISHED_LIMITS.exempt) <= keys
    default = ALVYS_PUBLISHED_LIMITS.default
    assert default is not None and (default.limit, default.burst, default.block_seconds) == (10, 1, 180)


# ----- configuration: environment and flags -------------------------------------------------------


def test_environment_configures_the_app_when_arguments_are_absent() -> None:
    environ = {
        "SANDBOX_FAULTS": '{"seed": 5, "alvys": {"error_rate": 0.1}}',
        "SANDBOX_RATE_LIMITS": "published",
        "SANDBOX_TIME_SCALE": "60",
    }
    app = create_app(environ=environ)
    assert app.state.faults.settings.seed == 5
    assert app.state.faults.settings.vendors["alvys"].error_rate == 0.1
    assert app.state.rate_limits.settings.mode == "published"
    assert app.state.rate_limits.settings.time_scale == 60

    explicit = create_app(faults=FaultSettings(), rate_limits=RateLimitSettings(), environ=environ)
    assert explicit.state.faults.settings.vendors == {}
    assert explicit.state.rate_limits.settings.mode == "off"

    nothing = create_app(environ={})
    assert nothing.state.faults.settings == FaultSettings()
    assert nothing.state.rate_limits.settings == RateLimitSettings()

    as_json = create_app(environ={"SANDBOX_RATE_LIMITS": '{"mode": "published", "time_scale": 30}'})
    assert as_json.state.rate_limits.settings.time_scale == 30


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SANDBOX_FAULTS": '{"alvys": {"error_rate": 3}}'}, "SANDBOX_FAULTS"),
        ({"SANDBOX_FAULTS": "not json"}, "SANDBOX_FAULTS"),
        ({"SANDBOX_RATE_LIMITS": "sometimes"}, "SANDBOX_RATE_LIMITS"),
        ({"SANDBOX_TIME_SCALE": "fast"}, "SANDBOX_TIME_SCALE"),
        ({"SANDBOX_TIME_SCALE": "-1"}, "SANDBOX_TIME_SCALE"),
    ],
)
def test_bad_environment_fails_at_start(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        create_app(environ=environ)


def test_flags_win_over_the_environment(tmp_path: Any) -> None:
    faults_file = tmp_path / "faults.json"
    faults_file.write_text('{"transportone": {"rate_429": 1}}', encoding="utf-8")
    environ = {"SANDBOX_FAULTS": '{"alvys": {"error_rate": 1}}', "SANDBOX_TIME_SCALE": "10"}
    args = parse_args(["--faults", str(faults_file), "--rate-limits", "published"])
    app = app_from_args(args, environ)
    assert set(app.state.faults.settings.vendors) == {"transportone"}
    assert app.state.rate_limits.settings.mode == "published"
    assert app.state.rate_limits.settings.time_scale == 10  # not given as a flag: from the environment

    app = app_from_args(parse_args(["--time-scale", "60"]), environ)
    assert app.state.faults.settings.vendors["alvys"].error_rate == 1
    assert app.state.rate_limits.settings.time_scale == 60
    assert app.state.rate_limits.settings.mode == "off"
