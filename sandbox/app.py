"""The sandbox app: every simulated vendor under its own prefix, plus controls and a health check.

Why one app: the local stack runs one sandbox process, and a test starts one server for all vendors.
Each vendor is a :class:`SandboxVendor` (its state, its API router mounted at ``/{name}``, its
controls router mounted at ``/_sandbox/{name}``); TransportOne is at ``/transportone``. ``POST /_sandbox/reset`` resets them all.

Run it: ``uvicorn --factory sandbox.app:create_app --port 8100`` or ``python -m sandbox.app``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from sandbox.alvys import AlvysSandbox, alvys_controls_router, alvys_router
from sandbox.transportone import TransportOneSandbox, transportone_controls_router, transportone_router

DEFAULT_DATA_FILE = Path(__file__).parent / "data" / "demo.json"


class VendorState(Protocol):
    """What the app needs from a vendor's state: a way back to its demo data."""

    def reset(self) -> None: ...


@dataclass(frozen=True)
class SandboxVendor:
    """One simulated vendor: ``api`` is mounted at ``/{name}``, ``controls`` at ``/_sandbox/{name}``."""

    name: str
    state: VendorState
    api: APIRouter
    controls: APIRouter


def load_data(data_file: str | Path | None = None) -> dict[str, Any]:
    """The demo data document: one section per vendor (``{"alvys": {...}, ...}``)."""
    path = Path(data_file) if data_file is not None else DEFAULT_DATA_FILE
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a JSON object with one section per vendor")
    return document


def build_vendors(
    document: Mapping[str, Any], *, token_ttl_seconds: int = 3600, data_file: str | Path | None = None
) -> list[SandboxVendor]:
    """Every simulated vendor, built from its section of the data document."""
    alvys = AlvysSandbox(document.get("alvys", {}), token_ttl_seconds=token_ttl_seconds)
    transportone = TransportOneSandbox.from_demo(data_file)
    return [
        SandboxVendor("alvys", alvys, alvys_router(alvys), alvys_controls_router(alvys)),
        SandboxVendor(
            "transportone",
            transportone,
            transportone_router(transportone),
            transportone_controls_router(transportone),
        ),
    ]


def create_app(data_file: str | Path | None = None, *, token_ttl_seconds: int = 3600) -> FastAPI:
    """The sandbox app; ``app.state.alvys`` is the AlvysSandbox, ``app.state.vendors`` all of them."""
    vendors = build_vendors(load_data(data_file), token_ttl_seconds=token_ttl_seconds, data_file=data_file)
    app = FastAPI(
        title="freightpay vendor sandbox",
        description="Simulated vendor APIs for local runs and tests; `/_sandbox/...` are test controls.",
    )
    app.state.vendors = {vendor.name: vendor for vendor in vendors}
    for vendor in vendors:
        setattr(app.state, vendor.name, vendor.state)
        app.include_router(vendor.api, prefix=f"/{vendor.name}")
        app.include_router(vendor.controls, prefix=f"/_sandbox/{vendor.name}")

    @app.post("/_sandbox/reset", tags=["sandbox controls"])
    def reset_all() -> JSONResponse:
        """Every vendor back to its demo data."""
        for vendor in vendors:
            vendor.state.reset()
        return JSONResponse({"reset": [vendor.name for vendor in vendors]})

    @app.get("/healthz", tags=["sandbox controls"])
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "vendors": [vendor.name for vendor in vendors]})

    return app


def main(argv: list[str] | None = None) -> None:
    """``python -m sandbox.app [--host H] [--port P] [--data FILE]``: serve the sandbox."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--data", default=None, help="data file (default: sandbox/data/demo.json)")
    parser.add_argument("--token-ttl", type=int, default=3600)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.data, token_ttl_seconds=args.token_ttl), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
