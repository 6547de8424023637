"""Fault injection and the vendors' published rate limits, as endpoint hooks of the sandbox.

Why: freightpay must survive what real vendors do (5xx, 429 with Retry-After, slow answers, dropped
connections, an answer lost after the payment was recorded, a token refused mid-run), and its
client-side limiter must keep to the limits the vendors publish. Both plug into each vendor's hook
chain (``AlvysSandbox.hooks``, ``TransportOneSandbox.hooks``) without touching the handlers. This
module is vendor-neutral: a :class:`VendorProfile` (built in ``sandbox/app.py``) gives the vendor's
endpoint keys, its error body (a function), its expired-token answer and who the caller is.

Faults (:class:`FaultSettings`; JSON ``{"seed": 7, "alvys": {...}, "transportone": {...}}``)
    Per vendor a :class:`VendorFaults`: the :class:`FaultRule` fields, ``include_token`` (default
    false: the token endpoint is left alone unless named in ``endpoints``) and ``endpoints``
    (``{endpoint_key: {partial FaultRule}}``: fields not given there are inherited from the vendor's
    level). The vendor-level rule and each endpoint entry are separate rules, each with its own
    ``only_first_n`` count. For each request to a targeted endpoint:

    1. a request carrying a token that an earlier ``token_expiry`` fault expired gets the vendor's
       401 "token expired" answer (an expired token stays expired; new tokens are fine);
    2. the rule's match count goes up; past ``only_first_n`` (when set) nothing happens;
    3. ``latency_ms`` (a number, or ``[min, max]`` drawn uniformly) is slept, in real time;
    4. ONE uniform draw picks at most one fault, in this order of the cumulative probabilities
       (their sum must be <= 1): ``reset_rate`` (drop the connection, handler not run),
       ``error_rate`` (``error_status``, default 503, handler not run), ``rate_429`` (429 with
       ``Retry-After: retry_after``, written as configured, not scaled; handler not run),
       ``token_expiry_rate`` (the request's bearer token expires now: 401; handler not run),
       ``commit_then_500_rate`` / ``commit_then_drop_rate`` (the handler runs, so the vendor
       records the payment, then its answer is replaced by a 500 / the connection is dropped).

    Answers use the vendor's own error body (Alvys ProblemDetails, OS1 ``{"success": false, ...}``)
    and carry ``X-Sandbox-Fault: <kind>`` (sandbox-only, so logs can tell a fault from a bug).
    The random generator is ``random.Random(seed)``; new settings and resets re-seed it, so a seed
    gives the same faults for the same request sequence. Controls (``/_sandbox/...``) never pass
    through the hooks, so faults never touch them.

    A drop reads the request to its end, then aborts the TCP connection before any byte of an
    answer: the client sees a transport error (httpx ``RemoteProtocolError``: "Server disconnected
    without sending a response"; reading first avoids a TCP RST, which httpx reports as a
    ``ReadError`` instead, so the symptom is always the same). It
    needs the server's transport, which :func:`capture_transport` finds on uvicorn's ``send``
    (``sandbox.app.SandboxApp`` calls it); under another server the fallback starts an answer
    that promises a body and never sends it, which the client also sees as a transport error.

Rate limits (:class:`RateLimitSettings`; JSON ``{"mode": "off"|"published", "time_scale": 1,
"vendors": {name: VendorRateLimits}}``; ``vendors`` replaces a vendor's published table)
    Alvys publishes (docs/vendors.md#alvys-rate-limits): every endpoint without its own rule, which
    includes both payment POSTs, 10 requests per minute with "burst 1 in the first second",
    exceeding blocks the caller for 3 minutes and answers 429 ``Retry-After: 60``; ``GET /invoices``
    5 per minute (3-minute block); the three searches (``invoices/search``, ``loads/search``,
    ``trips/search``) 10 per minute; global 10 requests/second per token and 50/second per
    organization. ``customers/search`` and ``GET /customers`` have no rule of their own, so the
    default (10 per minute, burst 1 a second) applies to them. TransportOne publishes none. The
    sandbox implements that as follows (:data:`ALVYS_PUBLISHED_LIMITS`):

    - The caller is the client credential the token was issued to (a new token does not give a new
      budget); the organization is the whole sandbox. The token endpoint is exempt (it is a
      separate auth service).
    - Every rule is a SLIDING LOG over the caller's ACCEPTED requests: a request is refused when the
      rule's log already holds ``limit`` requests in the last ``window_seconds``, or (rules with a
      ``burst``) ``burst`` requests in the last ``burst_window_seconds``. "Burst 1 in the first
      second" is read strictly: at most 1 request in ANY 1-second window, so two requests to a
      payment endpoint less than a second apart are a violation. A client that keeps under both in
      every sliding window also keeps under every fixed-window reading of the text.
    - Checks for a request, in order: the endpoint's rule (its own, else the default) for this
      caller; the per-caller global rule (10 per 1 s, over all the vendor's endpoints); the
      organization rule (50 per 1 s, all callers). The first refusal answers; a refused request is
      added to no log (only accepted requests count).
    - Refusing on a rule with ``block_seconds`` starts a block of that (caller, endpoint): every
      request to it is refused until the block ends, whatever the window says. Requests during a
      block do not extend it. Published table: 180 s blocks on every per-endpoint rule (stated for
      the default rule and ``GET /invoices``; assumed for the searches, which state none), no block
      on the global rules.
    - Every refusal answers 429 with the vendor's body (Alvys: ProblemDetails as
      ``application/problem+json``) and ``Retry-After: retry_after`` (60 for the endpoint rules,
      also during a block, as published: a caller that retries after 60 s while still blocked is
      refused again; 1 for the global rules, which Alvys does not publish), plus the sandbox-only
      header ``X-Sandbox-Rate-Limit: endpoint|burst|blocked|per_caller|per_organization``.
    - ``time_scale`` (default 1): vendor time runs that many times faster. Every window and block
      is divided by it (60: "10 per minute" is 10 per real second, the burst window 1/60 s, a
      block 3 s), and Retry-After values too, rounded up to whole seconds and at least 1 (60 s ->
      1 s at scale 60). Latency faults and the faults' own ``retry_after`` are not scaled.
    - Mode ``off`` (the default) lets everything through and counts nothing. Counters per endpoint
      (``accepted``, ``rejected_429``, ``blocks_started``, refusals by reason, ``blocked_until``)
      are read at ``GET /_sandbox/rate-limits``; ``POST /_sandbox/rate-limits/reset`` clears logs,
      blocks and counters.

Hook order in a vendor's chain: faults first (outermost: latency and drops happen "on the
network", before the vendor's gateway counts anything), then the rate limiter, then the handler.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.types import Receive, Scope, Send

#: ``hook(endpoint_key, request, call_next) -> Response``, as the vendor modules define it.
EndpointHook = Callable[[str, Request, Callable[[], Awaitable[Response]]], Awaitable[Response]]
#: ``error_response(request, status, message, headers)``: the vendor's error answer.
ErrorResponder = Callable[[Request, int, str, Mapping[str, str]], Response]

FAULT_HEADER = "X-Sandbox-Fault"
RATE_LIMIT_HEADER = "X-Sandbox-Rate-Limit"
#: Scope key under which :func:`capture_transport` leaves the server's transport.
TRANSPORT_SCOPE_KEY = "sandbox.transport"

# --------------------------------------------------------------------------------------------------
# Settings: faults
# --------------------------------------------------------------------------------------------------

Probability = Annotated[float, Field(ge=0, le=1)]

#: Fault kinds picked by the one draw, in the order of the cumulative probabilities.
FAULT_KINDS: tuple[tuple[str, str], ...] = (
    ("reset", "reset_rate"),
    ("error", "error_rate"),
    ("rate_429", "rate_429"),
    ("token_expiry", "token_expiry_rate"),
    ("commit_then_500", "commit_then_500_rate"),
    ("commit_then_drop", "commit_then_drop_rate"),
)


class FaultRule(BaseModel):
    """What to do to the requests one rule covers; every probability 0..1, their sum <= 1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_rate: Probability = 0.0
    error_status: int = Field(503, ge=500, le=599)
    rate_429: Probability = 0.0
    retry_after: int = Field(60, ge=0)
    latency_ms: float | tuple[float, float] = 0.0
    reset_rate: Probability = 0.0
    commit_then_500_rate: Probability = 0.0
    commit_then_drop_rate: Probability = 0.0
    token_expiry_rate: Probability = 0.0
    only_first_n: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        total = sum(float(getattr(self, name)) for _, name in FAULT_KINDS)
        if total > 1 + 1e-9:
            names = ", ".join(name for _, name in FAULT_KINDS)
            raise ValueError(f"the fault probabilities ({names}) add up to {total:g}, more than 1")
        low, high = self.latency_range()
        if low < 0 or high < low:
            raise ValueError("latency_ms must be >= 0, or [min, max] with 0 <= min <= max")
        return self

    def latency_range(self) -> tuple[float, float]:
        """``(min, max)`` latency in milliseconds."""
        if isinstance(self.latency_ms, tuple):
            return float(self.latency_ms[0]), float(self.latency_ms[1])
        return float(self.latency_ms), float(self.latency_ms)


class VendorFaults(FaultRule):
    """One vendor's faults: a rule for all its endpoints, and per-endpoint entries inheriting it."""

    include_token: bool = False
    endpoints: dict[str, FaultRule] = Field(default_factory=dict)

    def base_rule(self) -> FaultRule:
        return FaultRule.model_validate({name: getattr(self, name) for name in FaultRule.model_fields})

    def rule_for(self, endpoint: str) -> FaultRule:
        """The endpoint's entry with the fields it leaves unset taken from the vendor's level."""
        entry = self.endpoints[endpoint]
        merged = {name: getattr(self, name) for name in FaultRule.model_fields}
        merged.update({name: getattr(entry, name) for name in entry.model_fields_set})
        return FaultRule.model_validate(merged)

    def to_json(self) -> dict[str, Any]:
        out = self.model_dump(mode="json", exclude={"endpoints"})
        out["endpoints"] = {
            key: rule.model_dump(mode="json", exclude_unset=True) for key, rule in self.endpoints.items()
        }
        return out


class FaultSettings(BaseModel):
    """Every vendor's faults. JSON: ``{"seed": 7, "alvys": {...}}`` (or ``{"vendors": {...}}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int | None = None
    vendors: dict[str, VendorFaults] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _vendors_at_top_level(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "vendors" not in data:
            return {"seed": data.get("seed"), "vendors": {k: v for k, v in data.items() if k != "seed"}}
        return data

    @classmethod
    def parse(cls, text: str) -> FaultSettings:
        """From JSON text, or the path of a JSON file; empty text means no faults."""
        return cls.model_validate(_json_or_file(text, default={}))

    def to_json(self) -> dict[str, Any]:
        """The flat JSON form that :meth:`parse` and ``POST /_sandbox/faults`` accept."""
        out: dict[str, Any] = {"seed": self.seed}
        out.update({name: vendor.to_json() for name, vendor in self.vendors.items()})
        return out


# --------------------------------------------------------------------------------------------------
# Settings: rate limits
# --------------------------------------------------------------------------------------------------


class RateRule(BaseModel):
    """``limit`` accepted requests per ``window_seconds`` (and ``burst`` per ``burst_window_seconds``).

    Durations are in vendor seconds (divided by the time scale); refusing starts a block of
    ``block_seconds`` when it is > 0; refusals answer ``Retry-After: retry_after`` (scaled).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(ge=1)
    window_seconds: float = Field(60.0, gt=0)
    burst: int | None = Field(None, ge=1)
    burst_window_seconds: float = Field(1.0, gt=0)
    block_seconds: float = Field(0.0, ge=0)
    retry_after: float = Field(60.0, ge=0)

    @model_validator(mode="after")
    def _burst_inside_window(self) -> Self:
        if self.burst is not None and self.burst_window_seconds > self.window_seconds:
            raise ValueError("burst_window_seconds must not exceed window_seconds")
        return self


class VendorRateLimits(BaseModel):
    """A vendor's table: ``endpoints`` rules (``null``: unlimited), else ``default``; ``exempt``
    endpoints are not limited at all; ``per_caller``/``per_organization`` span every endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: RateRule | None = None
    endpoints: dict[str, RateRule | None] = Field(default_factory=dict)
    exempt: tuple[str, ...] = ()
    per_caller: RateRule | None = None
    per_organization: RateRule | None = None

    def rule_for(self, endpoint: str) -> RateRule | None:
        if endpoint in self.endpoints:
            return self.endpoints[endpoint]
        return self.default


RateLimitMode = Literal["off", "published"]


class RateLimitSettings(BaseModel):
    """``mode`` off (default) or published; ``time_scale``; ``vendors`` replaces published tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: RateLimitMode = "off"
    time_scale: float = Field(1.0, gt=0)
    vendors: dict[str, VendorRateLimits] = Field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, *, time_scale: float | None = None) -> RateLimitSettings:
        """``off``, ``published``, JSON text or a JSON file's path; ``time_scale`` wins if given."""
        stripped = text.strip()
        if stripped.lower() in ("", "off", "published"):
            data: dict[str, Any] = {"mode": stripped.lower() or "off"}
        else:
            loaded = _json_or_file(stripped, default={})
            if not isinstance(loaded, dict):
                raise ValueError("rate-limit settings must be off, published, or a JSON object")
            data = dict(loaded)
        if time_scale is not None:
            data["time_scale"] = time_scale
        return cls.model_validate(data)


def _minute_rule(limit: int, **extra: Any) -> RateRule:
    return RateRule(limit=limit, window_seconds=60, block_seconds=180, retry_after=60, **extra)


#: Alvys's published limits (docs/vendors.md#alvys-rate-limits), keyed by the sandbox's Alvys
#: endpoint keys. ``GET /loads`` and ``GET /trips`` (5 per minute) are not simulated endpoints,
#: so they have no entry. ``customers/search`` and ``customers`` (GET) are published under no rule
#: of their own: the default rule (with its burst of 1 a second) is theirs, as for the payments.
ALVYS_PUBLISHED_LIMITS = VendorRateLimits(
    default=_minute_rule(10, burst=1, burst_window_seconds=1),
    endpoints={
        "invoices": _minute_rule(5),
        "invoices/search": _minute_rule(10),
        "loads/search": _minute_rule(10),
        "trips/search": _minute_rule(10),
    },
    exempt=("oauth/token",),
    per_caller=RateRule(limit=10, window_seconds=1, retry_after=1),
    per_organization=RateRule(limit=50, window_seconds=1, retry_after=1),
)


def scaled_retry_after(seconds: float, time_scale: float) -> int:
    """A Retry-After in whole real seconds: ``seconds / time_scale`` rounded up, at least 1 (0 stays 0)."""
    if seconds <= 0:
        return 0
    return max(1, math.ceil(seconds / time_scale - 1e-9))


def _json_or_file(text: str, *, default: Any) -> Any:
    stripped = text.strip()
    if not stripped:
        return default
    if stripped[0] not in "{[":
        path = Path(stripped.removeprefix("@"))
        if not path.is_file():
            raise ValueError(f"neither JSON nor a file: {stripped[:80]!r}")
        stripped = path.read_text(encoding="utf-8")
    try:
        return json.loads(stripped)
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from exc


# --------------------------------------------------------------------------------------------------
# What a vendor gives: its profile
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VendorProfile:
    """A vendor as the hooks see it (built by ``sandbox/app.py`` from the vendor's module)."""

    name: str
    #: Every endpoint key of the vendor (its ``...Endpoint`` enum values).
    endpoints: tuple[str, ...]
    #: Endpoints that issue tokens: left alone by faults unless asked for.
    token_endpoints: frozenset[str]
    #: The vendor's error answer, e.g. ``problem_response`` / ``os1_error_response``.
    error_response: ErrorResponder
    #: The vendor's 401 for an expired token.
    expired_token_response: Callable[[Request], Response]
    #: Who is calling, for rate limits: the client credential behind the token.
    caller: Callable[[Request], str]
    #: The vendor's published limits (None: it publishes none).
    published_limits: VendorRateLimits | None = None


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def token_digest(token: str) -> str:
    """A short, stable name for a token (never the token itself in readouts)."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------------------------------
# Dropping a connection
# --------------------------------------------------------------------------------------------------


def capture_transport(scope: Scope, send: Send) -> None:
    """Leave the server's transport in ``scope`` when ``send`` is uvicorn's (a bound method of its
    request cycle, which holds the transport); call at the app's entry, before any middleware."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None and callable(getattr(transport, "abort", None)):
        scope[TRANSPORT_SCOPE_KEY] = transport


class DroppedConnection(Response):
    """Not an answer: aborts the connection so the client sees a transport error.

    With the transport captured, it is aborted before any byte is written. Otherwise the fallback
    starts a response promising one byte of body and ends without it, so the server closes the
    connection mid-answer (uvicorn logs "ASGI callable returned without completing response.").
    """

    def __init__(self) -> None:
        super().__init__(content=b"", status_code=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = scope.get(TRANSPORT_SCOPE_KEY)
        if transport is not None:
            transport.abort()
            await asyncio.sleep(0)  # the server sees the connection lost; its sends become no-ops
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]})


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error"


# --------------------------------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    rule: FaultRule
    latency_seconds: float
    kind: str | None


class FaultInjector:
    """Applies :class:`FaultSettings` to the vendors' endpoints; its :meth:`hook` goes in their chains.

    Thread-safe (a lock, never held across an await): tests and controls change the settings from
    other threads while uvicorn serves.
    """

    def __init__(self, profiles: Iterable[VendorProfile], settings: FaultSettings | None = None) -> None:
        self._lock = threading.Lock()
        self._profiles = {profile.name: profile for profile in profiles}
        self._settings = FaultSettings()
        #: vendor -> endpoint -> (rule name: "*" or the endpoint, effective rule)
        self._rules: dict[str, dict[str, tuple[str, FaultRule]]] = {}
        self._matched: dict[str, dict[str, int]] = {}
        self._injected: dict[str, dict[str, dict[str, int]]] = {}
        self._expired: dict[str, set[str]] = {name: set() for name in self._profiles}
        self._random = random.Random()
        self.configure(settings or FaultSettings())

    @property
    def settings(self) -> FaultSettings:
        with self._lock:
            return self._settings

    def configure(self, settings: FaultSettings) -> None:
        """Replace the settings (ValueError naming what is wrong); restarts counts and the seed."""
        rules = self._compile(settings)
        with self._lock:
            self._settings, self._rules = settings, rules
            self._reset_locked()

    def reset(self) -> None:
        """Counts, ``only_first_n`` progress and the random sequence back to their start."""
        with self._lock:
            self._reset_locked()

    def _reset_locked(self) -> None:
        self._random.seed(self._settings.seed)
        self._matched, self._injected = {}, {}

    def _compile(self, settings: FaultSettings) -> dict[str, dict[str, tuple[str, FaultRule]]]:
        compiled: dict[str, dict[str, tuple[str, FaultRule]]] = {}
        for name, vendor in settings.vendors.items():
            profile = self._profiles.get(name)
            if profile is None:
                raise ValueError(f"unknown vendor {name!r}; one of: {', '.join(self._profiles)}")
            unknown = sorted(set(vendor.endpoints) - set(profile.endpoints))
            if unknown:
                raise ValueError(
                    f"{name}: unknown endpoints {unknown}; one of: {', '.join(profile.endpoints)}"
                )
            base = vendor.base_rule()
            table: dict[str, tuple[str, FaultRule]] = {}
            for endpoint in profile.endpoints:
                if endpoint in vendor.endpoints:
                    try:
                        table[endpoint] = (endpoint, vendor.rule_for(endpoint))
                    except ValueError as exc:
                        raise ValueError(f"{name}.endpoints[{endpoint!r}]: {exc}") from exc
                elif endpoint not in profile.token_endpoints or vendor.include_token:
                    table[endpoint] = ("*", base)
            compiled[name] = table
        return compiled

    def _plan(self, vendor: str, endpoint: str) -> _Plan | None:
        with self._lock:
            found = self._rules.get(vendor, {}).get(endpoint)
            if found is None:
                return None
            rule_name, rule = found
            counts = self._matched.setdefault(vendor, {})
            counts[rule_name] = seen = counts.get(rule_name, 0) + 1
            if rule.only_first_n is not None and seen > rule.only_first_n:
                return None
            low, high = rule.latency_range()
            latency = low if low == high else self._random.uniform(low, high)
            kind: str | None = None
            if any(getattr(rule, name) for _, name in FAULT_KINDS):
                draw, cumulative = self._random.random(), 0.0
                for candidate, name in FAULT_KINDS:
                    cumulative += float(getattr(rule, name))
                    if draw < cumulative:
                        kind = candidate
                        break
            return _Plan(rule, latency / 1000.0, kind)

    def _count(self, vendor: str, endpoint: str, kind: str) -> None:
        with self._lock:
            kinds = self._injected.setdefault(vendor, {}).setdefault(endpoint, {})
            kinds[kind] = kinds.get(kind, 0) + 1

    def _is_expired(self, vendor: str, token: str) -> bool:
        with self._lock:
            return token in self._expired.get(vendor, set())

    def _expire(self, vendor: str, token: str) -> None:
        with self._lock:
            self._expired.setdefault(vendor, set()).add(token)

    def hook(self, vendor: str) -> EndpointHook:
        """The hook for ``vendor``'s chain (put it first: faults happen before the vendor counts)."""
        profile = self._profiles[vendor]

        def marked(response: Response, kind: str) -> Response:
            response.headers[FAULT_HEADER] = kind
            return response

        async def fault_hook(
            endpoint: str, request: Request, call_next: Callable[[], Awaitable[Response]]
        ) -> Response:
            token = bearer_token(request)
            if endpoint not in profile.token_endpoints and token and self._is_expired(vendor, token):
                self._count(vendor, endpoint, "token_refused")
                return marked(profile.expired_token_response(request), "token_refused")
            plan = self._plan(vendor, endpoint)
            if plan is None:
                return await call_next()
            if plan.latency_seconds > 0:
                self._count(vendor, endpoint, "latency")
                await asyncio.sleep(plan.latency_seconds)
            kind = plan.kind
            if kind is None or (kind == "token_expiry" and token is None):
                return await call_next()
            self._count(vendor, endpoint, kind)
            if kind == "reset":
                await request.body()  # read it all: an abort with unread bytes would be a TCP RST
                return DroppedConnection()
            if kind == "error":
                status = plan.rule.error_status
                return marked(profile.error_response(request, status, _phrase(status), {}), kind)
            if kind == "rate_429":
                retry_after = str(plan.rule.retry_after)
                message = f"Rate limit is exceeded. Try again in {retry_after} seconds."
                return marked(
                    profile.error_response(request, 429, message, {"Retry-After": retry_after}), kind
                )
            if kind == "token_expiry":
                assert token is not None
                self._expire(vendor, token)
                return marked(profile.expired_token_response(request), kind)
            await call_next()  # commit: the vendor does its work, and its answer is lost
            if kind == "commit_then_500":
                return marked(profile.error_response(request, 500, _phrase(500), {}), kind)
            await request.body()  # the handler may have refused before reading it (see "reset")
            return DroppedConnection()

        return fault_hook

    def snapshot(self) -> dict[str, Any]:
        """``{"settings", "matched": {vendor: {rule: n}}, "injected": {vendor: {endpoint: {kind: n}}},
        "expired_tokens": {vendor: n}}``."""
        with self._lock:
            return {
                "settings": self._settings.to_json(),
                "matched": {vendor: dict(counts) for vendor, counts in self._matched.items()},
                "injected": {
                    vendor: {endpoint: dict(kinds) for endpoint, kinds in endpoints.items()}
                    for vendor, endpoints in self._injected.items()
                },
                "expired_tokens": {vendor: len(tokens) for vendor, tokens in self._expired.items()},
            }


# --------------------------------------------------------------------------------------------------
# Rate limits
# --------------------------------------------------------------------------------------------------


@dataclass
class _Stats:
    accepted: int = 0
    rejected_429: int = 0
    blocks_started: int = 0
    rejected_by: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Refusal:
    reason: str
    retry_after: int


#: (vendor, caller or "*", endpoint key or "*")
_Key = tuple[str, str, str]


class RateLimiter:
    """Applies :class:`RateLimitSettings` (see the module docstring for the algorithm).

    Time is ``clock()`` (monotonic seconds); thread-safe like :class:`FaultInjector`.
    """

    def __init__(
        self,
        profiles: Iterable[VendorProfile],
        settings: RateLimitSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self._profiles = {profile.name: profile for profile in profiles}
        self._clock, self._wall_clock = clock, wall_clock
        self._settings = RateLimitSettings()
        self._tables: dict[str, VendorRateLimits] = {}
        self._logs: dict[_Key, deque[float]] = {}
        self._blocks: dict[_Key, float] = {}
        self._stats: dict[tuple[str, str], _Stats] = {}
        self.configure(settings or RateLimitSettings())

    @property
    def settings(self) -> RateLimitSettings:
        with self._lock:
            return self._settings

    def configure(self, settings: RateLimitSettings) -> None:
        """Replace the settings (ValueError naming what is wrong); logs, blocks and counters stay."""
        tables: dict[str, VendorRateLimits] = {}
        for name in settings.vendors:
            if name not in self._profiles:
                raise ValueError(f"unknown vendor {name!r}; one of: {', '.join(self._profiles)}")
        for name, profile in self._profiles.items():
            table = settings.vendors.get(name, profile.published_limits)
            if table is None:
                continue
            unknown = sorted((set(table.endpoints) | set(table.exempt)) - set(profile.endpoints))
            if unknown:
                raise ValueError(
                    f"{name}: unknown endpoints {unknown}; one of: {', '.join(profile.endpoints)}"
                )
            tables[name] = table
        with self._lock:
            self._settings, self._tables = settings, tables

    def reset(self) -> None:
        """Forget every accepted request, block and counter."""
        with self._lock:
            self._logs, self._blocks, self._stats = {}, {}, {}

    def check(self, vendor: str, endpoint: str, caller: str) -> _Refusal | None:
        """Admit (None, and count the request) or refuse one request."""
        with self._lock:
            if self._settings.mode == "off":
                return None
            scale = self._settings.time_scale
            now = self._clock()
            stats = self._stats.setdefault((vendor, endpoint), _Stats())
            table = self._tables.get(vendor)
            checks: list[tuple[str, _Key, RateRule]] = []
            if table is not None and endpoint not in table.exempt:
                rule = table.rule_for(endpoint)
                if rule is not None:
                    checks.append(("endpoint", (vendor, caller, endpoint), rule))
                if table.per_caller is not None:
                    checks.append(("per_caller", (vendor, caller, "*"), table.per_caller))
                if table.per_organization is not None:
                    checks.append(("per_organization", (vendor, "*", "*"), table.per_organization))
            for reason, key, rule in checks:
                refusal = self._refusal_locked(reason, key, rule, now, scale, stats)
                if refusal is not None:
                    stats.rejected_429 += 1
                    stats.rejected_by[refusal.reason] = stats.rejected_by.get(refusal.reason, 0) + 1
                    return refusal
            for _, key, _ in checks:
                self._logs.setdefault(key, deque()).append(now)
            stats.accepted += 1
            return None

    def _refusal_locked(
        self, reason: str, key: _Key, rule: RateRule, now: float, scale: float, stats: _Stats
    ) -> _Refusal | None:
        retry_after = scaled_retry_after(rule.retry_after, scale)
        until = self._blocks.get(key)
        if until is not None:
            if until > now:
                return _Refusal("blocked" if reason == "endpoint" else f"{reason}_blocked", retry_after)
            del self._blocks[key]
        log = self._logs.setdefault(key, deque())
        while log and log[0] <= now - rule.window_seconds / scale:
            log.popleft()
        if len(log) >= rule.limit:
            refused = reason
        elif (
            rule.burst is not None
            and sum(1 for t in log if t > now - rule.burst_window_seconds / scale) >= rule.burst
        ):
            refused = "burst" if reason == "endpoint" else reason
        else:
            return None
        if rule.block_seconds > 0:
            self._blocks[key] = now + rule.block_seconds / scale
            stats.blocks_started += 1
        return _Refusal(refused, retry_after)

    def hook(self, vendor: str) -> EndpointHook:
        """The hook for ``vendor``'s chain (after the fault hook)."""
        profile = self._profiles[vendor]

        async def rate_limit_hook(
            endpoint: str, request: Request, call_next: Callable[[], Awaitable[Response]]
        ) -> Response:
            if self.settings.mode == "off":
                return await call_next()
            refusal = self.check(vendor, endpoint, profile.caller(request))
            if refusal is None:
                return await call_next()
            seconds = refusal.retry_after
            message = f"Rate limit is exceeded. Try again in {seconds} seconds."
            response = profile.error_response(request, 429, message, {"Retry-After": str(seconds)})
            response.headers[RATE_LIMIT_HEADER] = refusal.reason
            return response

        return rate_limit_hook

    def _iso(self, until: float, now: float) -> str:
        moment = datetime.fromtimestamp(self._wall_clock() + (until - now), UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def snapshot(self) -> dict[str, Any]:
        """Settings, effective tables and, per vendor and endpoint, ``accepted``, ``rejected_429``,
        ``blocks_started``, ``rejected_by``, ``blocked_until`` (ISO, the latest over callers, or
        null), ``blocked_seconds_left`` (real seconds) and ``blocked_callers`` ({caller: seconds})."""
        with self._lock:
            now = self._clock()
            vendors: dict[str, Any] = {}
            for name, profile in self._profiles.items():
                endpoints: dict[str, Any] = {}
                for endpoint in (*profile.endpoints, "*"):
                    blocked = {
                        caller: round(until - now, 3)
                        for (vendor, caller, key), until in self._blocks.items()
                        if vendor == name and key == endpoint and until > now
                    }
                    stats = self._stats.get((name, endpoint), _Stats())
                    if endpoint == "*" and not blocked:
                        continue
                    left = max(blocked.values(), default=None)
                    endpoints[endpoint] = {
                        "accepted": stats.accepted,
                        "rejected_429": stats.rejected_429,
                        "blocks_started": stats.blocks_started,
                        "rejected_by": dict(stats.rejected_by),
                        "blocked_until": None if left is None else self._iso(now + left, now),
                        "blocked_seconds_left": left,
                        "blocked_callers": blocked,
                    }
                table = self._tables.get(name)
                vendors[name] = {
                    "limits": None if table is None else table.model_dump(mode="json"),
                    "endpoints": endpoints,
                }
            return {"settings": self._settings.model_dump(mode="json"), "vendors": vendors}
