"""The ingress's own health (no credentials)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness of the ingress itself (it answers even when Temporal is down)."""
    return {"status": "ok"}
