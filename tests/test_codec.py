"""The optional AES-GCM payload codec (config/codec.py) and its codec server (ingress/codec.py).

The workflow round trip runs on a dev server of its own whose clients encrypt; its history is
then read by a client *without* the codec (as Temporal, its database or the Web UI without a
codec server see it), and through Temporal's own CLI pointed at the codec server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from config.codec import (
    ENV_KEYS,
    AesGcmCodec,
    CodecError,
    UnknownKeyError,
    codec_from_env,
    data_converter,
    parse_keys,
)
from ingress.codec import CodecServerSettings, codec_router
from models.money import Money
from models.payment import PaymentInstruction, Source, Target, TargetIds
from models.state import PaymentResult, PaymentStatus, RetryInput
from models.steps import CallbackReport, PaymentPolicy
from tests.conftest import venv_binary
from tests.support.servers import serve_app

KEY_2025 = os.urandom(32)
KEY_2024 = os.urandom(32)
TOKEN = "codec-test-token"
UI_ORIGIN = "http://localhost:8233"
SECRET_REFERENCE = "CHK-SECRET-7731"
SECRET_NOTE = "wire to acct 99887766"


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def codec_2025() -> AesGcmCodec:
    """The current setup: k2025 encrypts, k2024 still decrypts."""
    return AesGcmCodec([("k2025", KEY_2025), ("k2024", KEY_2024)])


def instruction(reference: str = SECRET_REFERENCE) -> PaymentInstruction:
    return PaymentInstruction(
        source=Source.ALVYS_CUSTOMER,
        business_key=f"L-1001-{reference}",
        target=Target.ALVYS_CUSTOMER_PAYMENT,
        ids=TargetIds(load_number="L-1001"),
        amount=Money.of("1234.50"),
        invoice_total=Money.of("2000.00"),
        payment_date=datetime(2026, 11, 20, tzinfo=UTC),
        method="Check",
        check_number=None,
        reference_number=reference,
        note=SECRET_NOTE,
    )


#: Every kind of value freightpay sends through Temporal: pydantic models with Decimal
#: (and Decimal-valued dicts, timedeltas, datetimes, optional fields), None, str.
VALUES: list[tuple[Any, type]] = [
    (instruction(), PaymentInstruction),
    (Money.of("0.001", "KWD"), Money),
    (Money.of("5000", "JPY"), Money),
    (PaymentPolicy(approval_thresholds={"USD": Decimal("10000.00"), "CAD": Decimal("13000")}), PaymentPolicy),
    (CallbackReport(success=True, applied_amount=Decimal("10.10"), total_amount=None), CallbackReport),
    (RetryInput(operator="ops", reason="fixed load", amount=Decimal("99.99"), currency="USD"), RetryInput),
    (
        PaymentResult(
            workflow_id="payment-alvys-customer-L-1001",
            status=PaymentStatus.PAID,
            message="paid",
            target="alvys-customer-payment",
            reference_number=SECRET_REFERENCE,
            amount=Money.of("1234.50"),
            total_paid=Money.of("2000.00"),
        ),
        PaymentResult,
    ),
    (None, type(None)),
    ("", str),
    ("päyment ✓ " + SECRET_NOTE, str),
]


# -- the codec ------------------------------------------------------------------------------


async def test_round_trip_of_every_payload_type() -> None:
    converter = data_converter(codec_2025())
    values = [v for v, _ in VALUES]
    payloads = await converter.encode(values)
    assert len(payloads) == len(values)
    for payload in payloads:
        assert payload.metadata["encoding"] == b"binary/encrypted"
        assert payload.metadata["encryption-key-id"] == b"k2025"
        assert SECRET_REFERENCE.encode() not in payload.SerializeToString()
        assert SECRET_NOTE.encode() not in payload.SerializeToString()
    back = await converter.decode(payloads, [t for _, t in VALUES])
    assert back == values
    # Exact: the Decimals keep their scale (1234.50 stays 1234.50, not 1234.5).
    assert str(back[0].amount.amount) == "1234.50"
    assert back[3].approval_thresholds == {"USD": Decimal("10000.00"), "CAD": Decimal("13000")}
    # Decrypted, a payload is byte for byte what the plain converter makes.
    plain = await pydantic_data_converter.encode(values)
    assert await codec_2025().decode(payloads) == plain


async def test_same_value_encrypts_differently_each_time() -> None:
    codec = codec_2025()
    (plain,) = await pydantic_data_converter.encode(["same"])
    first, second = await codec.encode([plain, plain])
    assert first.data != second.data  # a fresh nonce each time
    assert await codec.decode([first, second]) == [plain, plain]


async def test_key_rotation() -> None:
    old = AesGcmCodec([("k2024", KEY_2024)])
    new = codec_2025()
    value = instruction()
    from_last_year = await data_converter(old).encode([value])
    assert from_last_year[0].metadata["encryption-key-id"] == b"k2024"
    # The new list (new key first) still reads what the old key wrote ...
    assert await data_converter(new).decode(from_last_year, [PaymentInstruction]) == [value]
    # ... and writes with the new key, which the old list cannot read.
    this_year = await data_converter(new).encode([value])
    assert this_year[0].metadata["encryption-key-id"] == b"k2025"
    with pytest.raises(UnknownKeyError, match="'k2025'"):
        await data_converter(old).decode(this_year, [PaymentInstruction])


async def test_unknown_key_id_is_named() -> None:
    other = AesGcmCodec([("k2099", os.urandom(32))])
    encrypted = await other.encode(await pydantic_data_converter.encode(["x"]))
    with pytest.raises(UnknownKeyError) as raised:
        await codec_2025().decode(encrypted)
    assert raised.value.key_id == "k2099"
    assert "'k2099'" in str(raised.value) and "k2025, k2024" in str(raised.value)
    assert ENV_KEYS in str(raised.value)


async def test_tampered_ciphertext_is_rejected() -> None:
    codec = codec_2025()
    (encrypted,) = await codec.encode(await pydantic_data_converter.encode([instruction()]))
    for index in (0, 12, len(encrypted.data) // 2, len(encrypted.data) - 1):  # nonce, body, tag
        tampered = Payload()
        tampered.CopyFrom(encrypted)
        data = bytearray(encrypted.data)
        data[index] ^= 0x01
        tampered.data = bytes(data)
        with pytest.raises(CodecError, match="failed authentication"):
            await codec.decode([tampered])
    # The right ciphertext under another configured key's id fails too.
    relabelled = Payload()
    relabelled.CopyFrom(encrypted)
    relabelled.metadata["encryption-key-id"] = b"k2024"
    with pytest.raises(CodecError, match="failed authentication"):
        await codec.decode([relabelled])
    truncated = Payload(metadata=dict(encrypted.metadata), data=encrypted.data[:20])
    with pytest.raises(CodecError, match="too short"):
        await codec.decode([truncated])
    no_key_id = Payload(metadata={"encoding": b"binary/encrypted"}, data=encrypted.data)
    with pytest.raises(CodecError, match="encryption-key-id"):
        await codec.decode([no_key_id])


async def test_unencrypted_payloads_pass_through() -> None:
    plain = await pydantic_data_converter.encode([instruction(), None, "text"])
    assert await codec_2025().decode(plain) == plain
    # So histories written before encryption was turned on still read.
    back = await data_converter(codec_2025()).decode(plain, [PaymentInstruction, type(None), str])
    assert back == [instruction(), None, "text"]


def test_codec_from_env() -> None:
    assert codec_from_env({}) is None
    assert codec_from_env({ENV_KEYS: "  "}) is None
    codec = codec_from_env({ENV_KEYS: f"k2025:{b64(KEY_2025)}, k2024:{b64(KEY_2024)}"})
    assert codec is not None
    assert codec.key_ids == ["k2025", "k2024"] and codec.current_key_id == "k2025"
    assert data_converter(None) is pydantic_data_converter
    converter = data_converter(codec)
    assert converter.payload_codec is codec
    assert converter.payload_converter_class is pydantic_data_converter.payload_converter_class


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("k2025", "not 'key-id:base64-key'"),
        (":" + b64(KEY_2025), "not 'key-id:base64-key'"),
        ("k2025:not base64!!", "'k2025' is not valid base64"),
        (f"k2025:{b64(KEY_2025[:16])}", "'k2025' must be 32 bytes"),
        (f"k2025:{b64(KEY_2025)},k2025:{b64(KEY_2024)}", "'k2025' is given twice"),
        (",", "holds no key"),
    ],
)
def test_bad_keys_are_refused_without_showing_them(value: str, message: str) -> None:
    with pytest.raises(CodecError, match=message) as raised:
        codec_from_env({ENV_KEYS: value})
    for key in (KEY_2025, KEY_2024, KEY_2025[:16]):
        assert b64(key) not in str(raised.value)


def test_keys_never_show() -> None:
    codec = AesGcmCodec(parse_keys(f"k2025:{b64(KEY_2025)}"))
    assert repr(codec) == "AesGcmCodec(key_ids=['k2025'])"
    assert b64(KEY_2025) not in repr(codec) and b64(KEY_2025) not in str(vars(codec))


# -- a real workflow, on a dev server whose clients encrypt --------------------------------


@activity.defn(name="codec_test_describe")
async def describe(payment: PaymentInstruction, note: str | None) -> Money:
    assert note is None
    return payment.invoice_total or payment.amount


@workflow.defn(name="CodecTestWorkflow")
class CodecTestWorkflow:
    @workflow.run
    async def run(self, payment: PaymentInstruction, note: str | None) -> Money:
        return await workflow.execute_activity(
            describe, args=[payment, note], start_to_close_timeout=timedelta(seconds=10)
        )


@pytest.fixture(scope="module")
async def encrypted_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        data_converter=data_converter(codec_2025()),
        dev_server_log_level="error",
        ui=False,
    )
    async with env:
        yield env


@pytest.fixture
def codec_server() -> Iterator[str]:
    """A tiny app with only the codec router (the ingress's wiring is ingress/app.py's business)."""
    app = FastAPI()
    settings = CodecServerSettings(auth_token=SecretStr(TOKEN), cors_origins=(UI_ORIGIN,))
    app.include_router(codec_router(codec_2025(), settings))
    with serve_app(app) as url:
        yield url


async def test_workflow_history_is_encrypted(encrypted_env: WorkflowEnvironment, codec_server: str) -> None:
    client = encrypted_env.client
    queue = f"codec-{uuid.uuid4()}"
    workflow_id = f"codec-test-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[CodecTestWorkflow],
        activities=[describe],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        result = await asyncio.wait_for(
            client.execute_workflow(
                CodecTestWorkflow.run, args=[instruction(), None], id=workflow_id, task_queue=queue
            ),
            30,
        )
    assert result == Money.of("2000.00")

    # Read as Temporal stores it: a client without the codec.
    plain_client = Client(
        client.service_client, namespace=client.namespace, data_converter=pydantic_data_converter
    )
    history = await plain_client.get_workflow_handle(workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    completed = history.events[-1].workflow_execution_completed_event_attributes
    scheduled = [e.activity_task_scheduled_event_attributes for e in history.events if e.HasField("activity_task_scheduled_event_attributes")]  # fmt: skip
    finished = [e.activity_task_completed_event_attributes for e in history.events if e.HasField("activity_task_completed_event_attributes")]  # fmt: skip
    payloads = [
        *started.input.payloads,
        *completed.result.payloads,
        *scheduled[0].input.payloads,
        *finished[0].result.payloads,
    ]
    assert len(payloads) == 6  # two inputs each to the workflow and the activity, two results
    for payload in payloads:
        assert payload.metadata["encoding"] == b"binary/encrypted"
        assert payload.metadata["encryption-key-id"] == b"k2025"
    whole = b"".join(event.SerializeToString() for event in history.events)
    for plaintext in (SECRET_REFERENCE, SECRET_NOTE, "1234.50", "2000.00", "L-1001"):
        assert plaintext.encode() not in whole, plaintext
    # Without the keys the result cannot be read ...
    with pytest.raises(KeyError, match="Unknown payload encoding binary/encrypted"):
        await plain_client.get_workflow_handle(workflow_id, result_type=Money).result()
    # ... with them it can.
    assert await client.get_workflow_handle(workflow_id, result_type=Money).result() == result

    # Temporal's own CLI, pointed at the codec server, shows the decrypted input and result.
    target = client.service_client.config.target_host
    command = [venv_binary("temporal"), "workflow", "show", "--workflow-id", workflow_id, "--address", target]
    command += ["--codec-endpoint", f"{codec_server}/codec", "--output", "json"]
    shown = await asyncio.to_thread(
        subprocess.run,
        [*command, "--codec-auth", f"Bearer {TOKEN}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert shown.returncode == 0, shown.stderr
    encodings, data = shown_payloads(json.loads(shown.stdout))
    assert encodings == {"json/plain", "binary/null"}, encodings
    for plaintext in (SECRET_REFERENCE, SECRET_NOTE, "1234.50", "2000.00"):
        assert plaintext.encode() in data, plaintext
    # Without the token the codec server refuses, and the CLI has nothing decrypted to show.
    # (the CLI waits out its command timeout when the codec server answers 401)
    refused = await asyncio.to_thread(
        subprocess.run, [*command, "--command-timeout", "2s"], capture_output=True, text=True, timeout=30
    )
    assert refused.returncode != 0
    assert SECRET_REFERENCE not in refused.stdout


def shown_payloads(document: Any) -> tuple[set[str], bytes]:
    """The encodings and the data of every payload in the CLI's JSON output (proto JSON: base64)."""
    encodings: set[str] = set()
    data: list[bytes] = []
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "payloads" and isinstance(value, list):
                for payload in value:
                    encoding = payload.get("metadata", {}).get("encoding", "")
                    encodings.add(base64.b64decode(encoding).decode())
                    data.append(base64.b64decode(payload.get("data", "")))
            else:
                more_encodings, more_data = shown_payloads(value)
                encodings |= more_encodings
                data.append(more_data)
    elif isinstance(document, list):
        for item in document:
            more_encodings, more_data = shown_payloads(item)
            encodings |= more_encodings
            data.append(more_data)
    return encodings, b"\n".join(data)


# -- the codec server over HTTP -------------------------------------------------------------


def as_json(payloads: list[Payload]) -> dict[str, Any]:
    return json_format.MessageToDict(Payloads(payloads=payloads))


def from_json(body: dict[str, Any]) -> list[Payload]:
    return list(json_format.ParseDict(body, Payloads()).payloads)


async def test_codec_server_decodes_what_the_codec_encoded(codec_server: str) -> None:
    values = [v for v, _ in VALUES]
    encrypted = await data_converter(codec_2025()).encode(values)
    body = as_json(encrypted)
    # The wire format is protobuf JSON: every metadata value and the data are base64.
    assert body["payloads"][0]["metadata"]["encoding"] == base64.b64encode(b"binary/encrypted").decode()
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Namespace": "default", "Origin": UI_ORIGIN}
    async with httpx.AsyncClient(base_url=codec_server, timeout=10) as http:
        answer = await http.post("/codec/decode", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["access-control-allow-origin"] == UI_ORIGIN
        decoded = from_json(answer.json())
        assert decoded == await pydantic_data_converter.encode(values)
        assert (
            pydantic_data_converter.payload_converter.from_payloads(decoded, [t for _, t in VALUES]) == values
        )

        # /encode then /decode: what the UI or CLI would send as a signal's input.
        plain = await pydantic_data_converter.encode([RetryInput(amount=Decimal("12.30"))])
        encoded = await http.post("/codec/encode", json=as_json(plain), headers=headers)
        assert encoded.status_code == 200, encoded.text
        assert from_json(encoded.json())[0].metadata["encryption-key-id"] == b"k2025"
        again = await http.post("/codec/decode", json=encoded.json(), headers=headers)
        assert from_json(again.json()) == plain

        # Payloads that are not ours pass through; an empty list answers an empty list.
        passed = await http.post("/codec/decode", json=as_json(plain), headers=headers)
        assert from_json(passed.json()) == plain
        empty = await http.post("/codec/decode", json={"payloads": []}, headers=headers)
        assert empty.json() == {"payloads": []}


async def test_codec_server_errors(codec_server: str) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Origin": UI_ORIGIN}
    foreign = await AesGcmCodec([("k1999", os.urandom(32))]).encode(
        await pydantic_data_converter.encode(["x"])
    )
    async with httpx.AsyncClient(base_url=codec_server, timeout=10) as http:
        unknown = await http.post("/codec/decode", json=as_json(foreign), headers=headers)
        assert unknown.status_code == 400
        assert unknown.headers["content-type"] == "application/problem+json"
        assert "'k1999'" in unknown.json()["detail"]
        assert unknown.headers["access-control-allow-origin"] == UI_ORIGIN
        for bad in (b"not json", b'{"payloads": "nope"}', b'{"payloads": [{"data": 5}]}', b"[]", b"", b"{}"):
            answer = await http.post(
                "/codec/decode", content=bad, headers={**headers, "Content-Type": "application/json"}
            )
            assert answer.status_code == 400, (bad, answer.text)


async def test_codec_server_needs_the_bearer_token(codec_server: str) -> None:
    encrypted = await codec_2025().encode(await pydantic_data_converter.encode([SECRET_REFERENCE]))
    async with httpx.AsyncClient(base_url=codec_server, timeout=10) as http:
        for path in ("/codec/decode", "/codec/encode"):
            for auth in (None, "Bearer wrong", TOKEN, f"Basic {TOKEN}", "Bearer"):
                headers = {"Authorization": auth} if auth else {}
                answer = await http.post(path, json=as_json(encrypted), headers=headers)
                assert answer.status_code == 401, (path, auth)
                assert answer.headers["www-authenticate"] == "Bearer"
                assert SECRET_REFERENCE not in answer.text
        ok = await http.post(
            "/codec/decode", json=as_json(encrypted), headers={"Authorization": f"bearer {TOKEN}"}
        )
        assert ok.status_code == 200


async def test_codec_server_cors_preflight(codec_server: str) -> None:
    request_headers = {
        "Origin": UI_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
    }
    async with httpx.AsyncClient(base_url=codec_server, timeout=10) as http:
        for path in ("/codec/decode", "/codec/encode"):
            answer = await http.options(path, headers=request_headers)  # no token: browsers send none
            assert answer.status_code == 204, answer.text
            assert answer.headers["access-control-allow-origin"] == UI_ORIGIN
            assert "POST" in answer.headers["access-control-allow-methods"]
            allowed = {h.strip() for h in answer.headers["access-control-allow-headers"].lower().split(",")}
            assert {"content-type", "x-namespace", "authorization"} <= allowed
            assert answer.headers["access-control-allow-credentials"] == "true"
            assert "Origin" in answer.headers["vary"]
        other = await http.options(
            "/codec/decode", headers={**request_headers, "Origin": "https://evil.example"}
        )
        assert other.status_code == 403
        assert "access-control-allow-origin" not in other.headers
        # A POST from another origin: no CORS header, so a browser does not hand the answer over.
        post = await http.post(
            "/codec/decode",
            json={"payloads": []},
            headers={"Origin": "https://evil.example", "Authorization": f"Bearer {TOKEN}"},
        )
        assert "access-control-allow-origin" not in post.headers


def test_codec_server_settings_from_env() -> None:
    default = CodecServerSettings.from_env({})
    assert default.auth_token is None
    assert default.cors_origins == ("http://localhost:8233", "http://127.0.0.1:8233")
    custom = CodecServerSettings.from_env(
        {
            "FREIGHTPAY_CODEC_AUTH": "t0k",
            "FREIGHTPAY_CODEC_CORS_ORIGINS": "https://cloud.temporal.io/, http://x:1",
        }
    )
    assert custom.auth_token is not None and custom.auth_token.get_secret_value() == "t0k"
    assert "t0k" not in repr(custom)
    assert custom.cors_origins == ("https://cloud.temporal.io", "http://x:1")
    assert custom.allows_origin("http://x:1") and not custom.allows_origin("http://x:2")
    assert not custom.allows_origin(None)
    assert CodecServerSettings(cors_origins=("*",)).allows_origin("http://anything")


def test_codec_routes_in_openapi() -> None:
    app = FastAPI()
    app.include_router(codec_router(codec_2025(), CodecServerSettings()))
    paths = app.openapi()["paths"]
    assert set(paths) == {"/codec/decode", "/codec/encode"}
    assert set(paths["/codec/decode"]) == {"post"}
    assert json.dumps(paths).count('"payloads"') >= 4
