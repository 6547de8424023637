"""The codec server: lets the Temporal Web UI (and CLI) show payloads that freightpay encrypted.

Temporal's codec server protocol: ``POST {endpoint}/decode`` and ``POST {endpoint}/encode``
with a JSON body ``{"payloads": [...]}`` (each ``Payload`` in protobuf JSON: metadata values
and data base64), headers ``Content-Type: application/json`` and ``X-Namespace``; the answer
has the same shape. Here the endpoint is ``{ingress}/codec``, mounted only when the codec is
configured (``FREIGHTPAY_CODEC_KEYS``, see :mod:`config.codec`). ``X-Namespace`` and query
parameters (the Web UI adds ``?preserveStorageRefs=true``) are ignored: one key list serves
every namespace. Point the dev server's Web UI at it with ``temporal server start-dev
--ui-codec-endpoint http://127.0.0.1:8000/codec``, or set it in the UI's codec settings
(the glasses icon), and the CLI with ``temporal workflow show --codec-endpoint ...``.

**It decrypts for whoever can reach it.** The Web UI calls it from the operator's browser,
so it cannot send the ingress's ``X-API-Key``; it is guarded instead by:

- ``FREIGHTPAY_CODEC_AUTH``: an optional bearer token; when set, every ``POST`` needs
  ``Authorization: Bearer <token>`` (the CLI: ``temporal --codec-endpoint URL --codec-auth
  "Bearer <token>"``). The Web UI sends an ``Authorization`` header only when "Pass the user
  access token" is on, and then it sends *its own login's* access token, and only to an
  ``https`` endpoint: a fixed token suits the CLI and a proxy that checks the UI's token,
  not a UI without login (the dev server's): leave it unset there and keep the ingress on
  loopback or behind a VPN.
- ``FREIGHTPAY_CODEC_CORS_ORIGINS``: the browser origins allowed to call it, comma-separated
  (default ``http://localhost:8233,http://127.0.0.1:8233``, the dev server's Web UI; ``*``
  allows any). CORS only stops other web pages in a browser from reading the answers; it
  is no protection against any other client.

Preflight (``OPTIONS``) needs no token: browsers never send one with it.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload, Payloads

from config.codec import AesGcmCodec, CodecError

log = logging.getLogger("freightpay.codec")

ENV_AUTH = "FREIGHTPAY_CODEC_AUTH"
ENV_CORS_ORIGINS = "FREIGHTPAY_CODEC_CORS_ORIGINS"
DEFAULT_CORS_ORIGINS = ("http://localhost:8233", "http://127.0.0.1:8233")
PREFIX = "/codec"
PROBLEM = "application/problem+json"
ALLOWED_HEADERS = "content-type, x-namespace, authorization"

_PAYLOADS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["payloads"],
    "properties": {
        "payloads": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "metadata": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "format": "byte"},
                    },
                    "data": {"type": "string", "format": "byte"},
                },
            },
        }
    },
}
_OPENAPI: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": _PAYLOADS_SCHEMA}}},
    "responses": {"200": {"description": "The payloads", "content": {"application/json": {"schema": _PAYLOADS_SCHEMA}}}},
}  # fmt: skip


@dataclass(frozen=True)
class CodecServerSettings:
    """Who may call the codec server: an optional bearer token, the browser origins allowed."""

    auth_token: SecretStr | None = None
    cors_origins: tuple[str, ...] = DEFAULT_CORS_ORIGINS
    #: Largest request body read (a page of history's payloads).
    max_body_bytes: int = 16 * 1_048_576

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> CodecServerSettings:
        token = environ.get(ENV_AUTH, "").strip()
        origins = cors_origins(environ.get(ENV_CORS_ORIGINS, ""))
        return cls(
            auth_token=SecretStr(token) if token else None, cors_origins=origins or DEFAULT_CORS_ORIGINS
        )

    def allows_origin(self, origin: str | None) -> bool:
        return bool(origin) and ("*" in self.cors_origins or origin in self.cors_origins)


def codec_router(codec: AesGcmCodec, settings: CodecServerSettings | None = None) -> APIRouter:
    """``POST /codec/decode`` and ``POST /codec/encode`` (with CORS preflight) for ``codec``.

    ``settings`` default to the environment (``FREIGHTPAY_CODEC_AUTH``,
    ``FREIGHTPAY_CODEC_CORS_ORIGINS``). CORS is answered here, for these routes only, so the
    rest of the ingress stays closed to browsers.
    """
    config = settings or CodecServerSettings.from_env()
    router = APIRouter(prefix=PREFIX, tags=["codec"])
    log.info(
        "codec server on %s/{decode,encode}: keys %s, bearer token %s, CORS origins %s",
        PREFIX,
        ", ".join(codec.key_ids),
        "required" if config.auth_token else "NOT required",
        ", ".join(config.cors_origins),
    )

    def cors(request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if not config.allows_origin(origin):
            return {"Vary": "Origin"}
        assert origin is not None
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }

    def problem(
        request: Request,
        status: int,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> JSONResponse:
        body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
        if detail:
            body["detail"] = detail
        body["instance"] = request.url.path
        return JSONResponse(
            body, status_code=status, media_type=PROBLEM, headers={**cors(request), **(headers or {})}
        )

    def authorized(request: Request) -> bool:
        if config.auth_token is None:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = config.auth_token.get_secret_value()
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())

    async def body_of(request: Request) -> bytes | None:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > config.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def apply(request: Request, decode: bool) -> Response:
        if not authorized(request):
            detail = f"send Authorization: Bearer <{ENV_AUTH}>"
            return problem(
                request, 401, "Missing or wrong codec bearer token", detail, {"WWW-Authenticate": "Bearer"}
            )
        raw = await body_of(request)
        if raw is None:
            return problem(request, 413, "Request body too large", f"at most {config.max_body_bytes:,} bytes")
        try:
            body = json.loads(raw)
            if not isinstance(body, dict) or not isinstance(body.get("payloads"), list):
                raise ValueError('expected an object with a "payloads" array')
            message = json_format.ParseDict(body, Payloads(), ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError, ValueError) as exc:
            return problem(request, 400, 'The body is not {"payloads": [...]} in protobuf JSON', str(exc))
        try:
            if decode:
                result: list[Payload] = await codec.decode(message.payloads)
            else:
                result = await codec.encode(message.payloads)
        except CodecError as exc:
            return problem(request, 400, "Cannot decode the payloads", str(exc))
        answer = json_format.MessageToDict(Payloads(payloads=result))
        answer.setdefault("payloads", [])
        return Response(json.dumps(answer), media_type="application/json", headers=cors(request))

    async def preflight(request: Request) -> Response:
        headers = cors(request)
        if "Access-Control-Allow-Origin" not in headers:
            return problem(request, 403, "Origin not allowed", f"add it to {ENV_CORS_ORIGINS}")
        headers |= {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
        }
        if request.headers.get("access-control-request-private-network") == "true":
            headers["Access-Control-Allow-Private-Network"] = "true"
        return Response(status_code=204, headers=headers)

    @router.post("/decode", openapi_extra=_OPENAPI, response_class=Response)
    async def decode(request: Request) -> Response:
        """Decrypt payloads (for the Web UI and ``temporal --codec-endpoint``); others pass through."""
        return await apply(request, decode=True)

    @router.post("/encode", openapi_extra=_OPENAPI, response_class=Response)
    async def encode(request: Request) -> Response:
        """Encrypt payloads with the current key (input typed into the Web UI or the CLI)."""
        return await apply(request, decode=False)

    for path in ("/decode", "/encode"):
        router.add_api_route(path, preflight, methods=["OPTIONS"], include_in_schema=False)
    return router


def cors_origins(value: Sequence[str] | str) -> tuple[str, ...]:
    """``a,b`` or a sequence → normalized origins (no trailing slash)."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(o.strip().rstrip("/") for o in items if o.strip())
