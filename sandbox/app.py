"""The sandbox app: every simulated vendor under its own prefix, plus controls and a health check.

Why one app: the local stack runs one sandbox process, and a test starts one server for all vendors.
Each vendor is a :class:`SandboxVendor` (its state, its API router mounted at ``/{name}``, its
controls router mounted at ``/_sandbox/{name}``); TransportOne is at ``/transportone``. ``POST /_sandbox/reset`` resets them all.

Faults and rate limits (``sandbox/faults.py`` documents both, and the rate-limit algorithm): every
vendor's hook chain starts with the fault injector, then the rate limiter. Set them at start with
``create_app(faults=..., rate_limits=...)``, the ``python -m sandbox.app`` flags, or, when those are
not given, the environment (so ``freightpay sandbox`` under ``make run`` can be configured):

- ``SANDBOX_FAULTS``: fault settings as JSON (``{"seed": 7, "alvys": {"error_rate": 0.1}}``) or the
  path of a JSON file; unset: no faults.
- ``SANDBOX_RATE_LIMITS``: ``off`` (default), ``published``, or rate-limit settings as JSON / a file.
- ``SANDBOX_TIME_SCALE``: vendor time runs this many times faster (60: a minute lasts a second).

Change them at run time (controls, never subject to faults or limits):
``GET|POST /_sandbox/faults`` (POST replaces the fault settings; answers like GET),
``GET|POST /_sandbox/rate-limits`` (POST replaces the rate-limit settings, keeps counters and
blocks), ``POST /_sandbox/rate-limits/reset`` (clears logs, blocks and counters).
``POST /_sandbox/reset`` also restarts fault counts (and the seeded sequence) and clears
rate-limit state; the settings stay.

Run it: ``uvicorn --factory sandbox.app:create_app --port 8100`` or ``python -m sandbox.app``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fastapi import APIRouter, Body, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from sandbox.alvys import AlvysEndpoint, AlvysSandbox, alvys_controls_router, alvys_router, problem_response
from sandbox.faults import (
    ALVYS_PUBLISHED_LIMITS,
    EndpointHook,
    FaultInjector,
    FaultSettings,
    RateLimiter,
    RateLimitSettings,
    VendorProfile,
    bearer_token,
    capture_transport,
    token_digest,
)
from sandbox.transportone import (
    TransportOneEndpoint,
    TransportOneSandbox,
    os1_error_response,
    transportone_controls_router,
    transportone_router,
)

DEFAULT_DATA_FILE = Path(__file__).parent / "data" / "demo.json"
ENV_FAULTS = "SANDBOX_FAULTS"
ENV_RATE_LIMITS = "SANDBOX_RATE_LIMITS"
ENV_TIME_SCALE = "SANDBOX_TIME_SCALE"


class VendorState(Protocol):
    """What the app needs from a vendor's state: a way back to its demo data."""

    def reset(self) -> None: ...


@dataclass(frozen=True)
class SandboxVendor:
    """One simulated vendor: ``api`` is mounted at ``/{name}``, ``controls`` at ``/_sandbox/{name}``.

    ``profile`` and ``hooks`` (the vendor's hook chain) let faults and rate limits apply to it.
    """

    name: str
    state: VendorState
    api: APIRouter
    controls: APIRouter
    profile: VendorProfile | None = None
    hooks: list[EndpointHook] | None = None


class SandboxApp(FastAPI):
    """FastAPI that hands the connection's transport to the fault hooks (to drop connections)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            capture_transport(scope, send)
        await super().__call__(scope, receive, send)


def load_data(data_file: str | Path | None = None) -> dict[str, Any]:
    """The demo data document: one section per vendor (``{"alvys": {...}, ...}``)."""
    path = Path(data_file) if data_file is not None else DEFAULT_DATA_FILE
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a JSON object with one section per vendor")
    return document


# ----- vendor profiles: what faults and rate limits need to know of each vendor ---------------------


def alvys_profile(state: AlvysSandbox) -> VendorProfile:
    """Alvys: ProblemDetails errors; the caller is the client a token was issued to."""

    def error(request: Request, status: int, message: str, headers: Mapping[str, str]) -> Response:
        return problem_response(status, message, instance=request.url.path, headers=headers)

    def expired(request: Request) -> Response:
        # The same answer as AlvysSandbox.authorize gives for an expired token.
        return problem_response(
            401,
            "The access token expired.",
            instance=request.url.path,
            headers={
                "WWW-Authenticate": 'Bearer error="invalid_token", error_description="The token expired"'
            },
        )

    def caller(request: Request) -> str:
        token = bearer_token(request)
        if token is None:
            return "anonymous"
        issued = state._tokens.get(token)  # the sandbox's own record of whom it issued the token to
        return f"client:{issued.client_id}" if issued is not None else f"token:{token_digest(token)}"

    return VendorProfile(
        name="alvys",
        endpoints=tuple(key.value for key in AlvysEndpoint),
        token_endpoints=frozenset({AlvysEndpoint.TOKEN.value}),
        error_response=error,
        expired_token_response=expired,
        caller=caller,
        published_limits=ALVYS_PUBLISHED_LIMITS,
    )


def transportone_profile(state: TransportOneSandbox) -> VendorProfile:
    """TransportOne: OS1 error bodies; one credential set, so one caller; no published limits."""

    def error(request: Request, status: int, message: str, headers: Mapping[str, str]) -> Response:
        return os1_error_response(status, message, headers=headers)

    def expired(request: Request) -> Response:
        return os1_error_response(401, "access token expired")

    def caller(request: Request) -> str:
        token = bearer_token(request)
        return f"client:{state.client_id}" if token is not None else "anonymous"

    return VendorProfile(
        name="transportone",
        endpoints=tuple(key.value for key in TransportOneEndpoint),
        token_endpoints=frozenset({TransportOneEndpoint.AUTH.value}),
        error_response=error,
        expired_token_response=expired,
        caller=caller,
        published_limits=None,
    )


def build_vendors(
    document: Mapping[str, Any], *, token_ttl_seconds: int = 3600, data_file: str | Path | None = None
) -> list[SandboxVendor]:
    """Every simulated vendor, built from its section of the data document."""
    alvys = AlvysSandbox(document.get("alvys", {}), token_ttl_seconds=token_ttl_seconds)
    transportone = TransportOneSandbox.from_demo(data_file)
    return [
        SandboxVendor(
            "alvys",
            alvys,
            alvys_router(alvys),
            alvys_controls_router(alvys),
            alvys_profile(alvys),
            alvys.hooks,
        ),
        SandboxVendor(
            "transportone",
            transportone,
            transportone_router(transportone),
            transportone_controls_router(transportone),
            transportone_profile(transportone),
            transportone.hooks,
        ),
    ]


# ----- settings from the environment -------------------------------------------------------------


def fault_settings_from_env(
    environ: Mapping[str, str] | None = None, *, text: str | None = None
) -> FaultSettings:
    """``text`` (a flag's value) if given, else ``SANDBOX_FAULTS``; ValueError naming the source."""
    environ = os.environ if environ is None else environ
    source = text if text is not None else environ.get(ENV_FAULTS, "")
    try:
        return FaultSettings.parse(source)
    except ValueError as exc:
        raise ValueError(f"{'--faults' if text is not None else ENV_FAULTS}: {exc}") from exc


def rate_limit_settings_from_env(
    environ: Mapping[str, str] | None = None, *, mode: str | None = None, time_scale: float | None = None
) -> RateLimitSettings:
    """``mode``/``time_scale`` (flags' values) where given, else ``SANDBOX_RATE_LIMITS`` and
    ``SANDBOX_TIME_SCALE``; ValueError naming the source."""
    environ = os.environ if environ is None else environ
    scale = time_scale
    if scale is None and environ.get(ENV_TIME_SCALE, "").strip():
        try:
            scale = float(environ[ENV_TIME_SCALE])
        except ValueError:
            raise ValueError(f"{ENV_TIME_SCALE}: not a number: {environ[ENV_TIME_SCALE]!r}") from None
    source = mode if mode is not None else environ.get(ENV_RATE_LIMITS, "")
    try:
        return RateLimitSettings.parse(source, time_scale=scale)
    except ValueError as exc:
        names = "--rate-limits/--time-scale" if mode is not None else f"{ENV_RATE_LIMITS}/{ENV_TIME_SCALE}"
        raise ValueError(f"{names}: {exc}") from exc


def _apply_or_422(apply: Callable[[Any], None], body: Any) -> None:
    """Run ``apply(body)``; invalid settings answer 422 with what is wrong."""
    try:
        apply(body)
    except ValidationError as exc:
        detail = exc.errors(include_url=False, include_context=False, include_input=False)
        raise HTTPException(422, detail) from exc
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc


def controls_router(injector: FaultInjector, limiter: RateLimiter) -> APIRouter:
    """``/_sandbox/faults`` and ``/_sandbox/rate-limits`` (mounted at ``/_sandbox``)."""
    router = APIRouter(tags=["sandbox controls: faults and rate limits"])

    @router.get("/faults")
    def get_faults() -> JSONResponse:
        """The fault settings (the shape POST takes) and what was injected since they were set."""
        return JSONResponse(injector.snapshot())

    @router.post("/faults")
    def set_faults(body: dict[str, Any] = Body(...)) -> JSONResponse:
        """Replace the fault settings: ``{"seed": 7, "alvys": {"error_rate": 0.1, ...}}``; ``{}``: none."""

        def apply(data: Any) -> None:
            injector.configure(FaultSettings.model_validate(data))

        _apply_or_422(apply, body)
        return JSONResponse(injector.snapshot())

    @router.get("/rate-limits")
    def get_rate_limits() -> JSONResponse:
        """Settings, effective tables, and per endpoint: accepted, rejected_429, blocks, blocked_until."""
        return JSONResponse(limiter.snapshot())

    @router.post("/rate-limits")
    def set_rate_limits(body: dict[str, Any] = Body(...)) -> JSONResponse:
        """Replace the settings: ``{"mode": "published", "time_scale": 60}``; counters and blocks stay."""

        def apply(data: Any) -> None:
            limiter.configure(RateLimitSettings.model_validate(data))

        _apply_or_422(apply, body)
        return JSONResponse(limiter.snapshot())

    @router.post("/rate-limits/reset")
    def reset_rate_limits() -> JSONResponse:
        """Forget accepted requests, blocks and counters (settings stay)."""
        limiter.reset()
        return JSONResponse(limiter.snapshot())

    return router


def create_app(
    data_file: str | Path | None = None,
    *,
    token_ttl_seconds: int = 3600,
    faults: FaultSettings | None = None,
    rate_limits: RateLimitSettings | None = None,
    environ: Mapping[str, str] | None = None,
) -> FastAPI:
    """The sandbox app; ``app.state.alvys`` is the AlvysSandbox, ``app.state.vendors`` all of them.

    ``faults``/``rate_limits`` left None are read from ``environ`` (default ``os.environ``:
    ``SANDBOX_FAULTS``, ``SANDBOX_RATE_LIMITS``, ``SANDBOX_TIME_SCALE``); nothing set means no faults
    and no limits. ``app.state.faults`` is the FaultInjector, ``app.state.rate_limits`` the RateLimiter.
    """
    if faults is None:
        faults = fault_settings_from_env(environ)
    if rate_limits is None:
        rate_limits = rate_limit_settings_from_env(environ)
    vendors = build_vendors(load_data(data_file), token_ttl_seconds=token_ttl_seconds, data_file=data_file)
    profiles = [vendor.profile for vendor in vendors if vendor.profile is not None]
    injector = FaultInjector(profiles, faults)
    limiter = RateLimiter(profiles, rate_limits)
    app = SandboxApp(
        title="freightpay vendor sandbox",
        description="Simulated vendor APIs for local runs and tests; `/_sandbox/...` are test controls.",
    )
    app.state.vendors = {vendor.name: vendor for vendor in vendors}
    app.state.faults = injector
    app.state.rate_limits = limiter
    for vendor in vendors:
        setattr(app.state, vendor.name, vendor.state)
        if vendor.profile is not None and vendor.hooks is not None:
            vendor.hooks[:0] = [injector.hook(vendor.name), limiter.hook(vendor.name)]
        app.include_router(vendor.api, prefix=f"/{vendor.name}")
        app.include_router(vendor.controls, prefix=f"/_sandbox/{vendor.name}")
    app.include_router(controls_router(injector, limiter), prefix="/_sandbox")

    @app.post("/_sandbox/reset", tags=["sandbox controls"])
    def reset_all() -> JSONResponse:
        """Every vendor back to its demo data; fault counts and rate-limit state cleared (settings stay)."""
        for vendor in vendors:
            vendor.state.reset()
        injector.reset()
        limiter.reset()
        return JSONResponse({"reset": [vendor.name for vendor in vendors]})

    @app.get("/healthz", tags=["sandbox controls"])
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "vendors": [vendor.name for vendor in vendors]})

    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--data", default=None, help="data file (default: sandbox/data/demo.json)")
    parser.add_argument("--token-ttl", type=int, default=3600)
    parser.add_argument(
        "--faults", default=None, help=f"fault settings, JSON or a file (default: ${ENV_FAULTS})"
    )
    parser.add_argument(
        "--rate-limits",
        default=None,
        help=f"off, published, or JSON settings / a file (default: ${ENV_RATE_LIMITS}, else off)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=None,
        help=f"vendor time speed-up (default: ${ENV_TIME_SCALE}, else 1)",
    )
    return parser.parse_args(argv)


def app_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> FastAPI:
    """The app for parsed ``python -m sandbox.app`` arguments (flags win over the environment)."""
    return create_app(
        args.data,
        token_ttl_seconds=args.token_ttl,
        faults=fault_settings_from_env(environ, text=args.faults),
        rate_limits=rate_limit_settings_from_env(environ, mode=args.rate_limits, time_scale=args.time_scale),
        environ=environ,
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m sandbox.app [--host H] [--port P] [--data FILE] [--faults JSON] [--rate-limits
    off|published|JSON] [--time-scale N]``: serve the sandbox."""
    import uvicorn

    args = parse_args(argv)
    uvicorn.run(app_from_args(args), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
