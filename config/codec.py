"""Optional end-to-end encryption of Temporal payloads (AES-256-GCM), off by default.

With ``FREIGHTPAY_CODEC_KEYS`` set, every payload a freightpay client or worker sends to
Temporal (workflow and activity inputs and results, signals, queries, updates, memos) is
encrypted before it leaves the process; Temporal, its database and anyone reading the
history without the keys see only ``binary/encrypted`` payloads. Search attributes are
never encoded by a codec: they stay readable (and filterable) in the Web UI.

Keys::

    FREIGHTPAY_CODEC_KEYS="k2025:<base64 of 32 bytes>,k2024:<base64 of 32 bytes>"

The first key encrypts; every listed key decrypts (rotation: put the new key first, keep
the old ones for as long as histories encrypted with them are read). A key is made with
``python -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode())"``.
Workers, clients, the ingress and the codec server must share the list.

Format (the one of Temporal's encryption samples in Python, Go and TypeScript, so their
codec servers can read it): the whole ``Payload`` proto is serialized and encrypted; the
new payload's data is ``nonce (12 random bytes) || ciphertext+tag``, its metadata
``encoding: binary/encrypted`` and ``encryption-key-id: <key id>``. No associated data.

Keys are never logged: the codec's ``repr`` names key ids only.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

ENV_KEYS = "FREIGHTPAY_CODEC_KEYS"
ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32


class CodecError(ValueError):
    """A payload that cannot be decrypted (or a key list that cannot be used)."""


class UnknownKeyError(CodecError):
    """A payload encrypted with a key id this codec does not hold."""

    def __init__(self, key_id: str, known: Sequence[str]) -> None:
        super().__init__(
            f"payload was encrypted with key id {key_id!r}, which is not among the configured keys "
            f"({', '.join(known)}); add it to {ENV_KEYS}"
        )
        self.key_id = key_id


class AesGcmCodec(PayloadCodec):
    """Encrypts each payload whole with AES-256-GCM; decrypts with the key its metadata names."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        """``keys``: (key id, 32-byte key) pairs; the first encrypts, all decrypt."""
        if not keys:
            raise CodecError("at least one key is needed")
        self._ciphers: dict[str, AESGCM] = {}
        for key_id, key in keys:
            if not key_id or key_id != key_id.strip() or any(c in key_id for c in ",:"):
                raise CodecError(f"bad key id {key_id!r}: non-empty, no spaces around, no ',' or ':'")
            if key_id in self._ciphers:
                raise CodecError(f"key id {key_id!r} is given twice")
            if len(key) != KEY_BYTES:
                raise CodecError(f"key {key_id!r} must be {KEY_BYTES} bytes (AES-256), not {len(key)}")
            self._ciphers[key_id] = AESGCM(key)
        self.current_key_id = keys[0][0]

    @property
    def key_ids(self) -> list[str]:
        """The configured key ids, the current (encrypting) one first."""
        return list(self._ciphers)

    def __repr__(self) -> str:
        return f"AesGcmCodec(key_ids={self.key_ids!r})"

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.current_key_id].encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: self.current_key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        """The original payload; one that is not ``binary/encrypted`` is returned as it is."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_id = payload.metadata.get(KEY_ID_METADATA)
        if raw_id is None:
            raise CodecError(f"encrypted payload has no {KEY_ID_METADATA} metadata")
        key_id = raw_id.decode("utf-8", errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyError(key_id, self.key_ids)
        if len(payload.data) < NONCE_BYTES + TAG_BYTES:
            raise CodecError(f"encrypted payload (key id {key_id!r}) is too short")
        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], None)
        except InvalidTag:
            raise CodecError(
                f"encrypted payload (key id {key_id!r}) failed authentication: tampered, or another key "
                "with the same id"
            ) from None
        try:
            return Payload.FromString(plain)
        except DecodeError as exc:
            raise CodecError(f"decrypted payload (key id {key_id!r}) is not a Payload: {exc}") from None


def parse_keys(value: str) -> list[tuple[str, bytes]]:
    """``id:base64,id:base64`` → (id, key) pairs; errors name the key id, never the key."""
    keys: list[tuple[str, bytes]] = []
    for index, part in enumerate(p.strip() for p in value.split(",")):
        if not part:
            continue
        key_id, sep, encoded = part.partition(":")
        key_id = key_id.strip()
        if not sep or not key_id:
            raise CodecError(f"{ENV_KEYS}: entry {index + 1} is not 'key-id:base64-key'")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise CodecError(f"{ENV_KEYS}: key {key_id!r} is not valid base64") from None
        keys.append((key_id, key))
    if not keys:
        raise CodecError(f"{ENV_KEYS} is set but holds no key")
    return keys


def codec_from_env(environ: Mapping[str, str] = os.environ) -> AesGcmCodec | None:
    """The codec from ``FREIGHTPAY_CODEC_KEYS``, or None when it is unset or blank (no encryption)."""
    value = environ.get(ENV_KEYS, "").strip()
    if not value:
        return None
    return AesGcmCodec(parse_keys(value))


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """freightpay's pydantic data converter, with ``codec`` when one is configured."""
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)
