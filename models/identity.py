"""Business keys ↔ workflow ids: one rule, injective and reversible, for every route.

A payment's workflow id is ``payment-{source}-{key}``. The rule for the key part:

* a key made only of ``[A-Za-z0-9._-]`` is used exactly as it is (ingress systems and
  operators' saved filters depend on those ids, so they never change);
* any other character becomes ``~`` followed by the two upper-case hex digits of each of its
  UTF-8 bytes (``X/1`` → ``X~2F1``, ``X?1`` → ``X~3F1``, ``CHK 7`` → ``CHK~207``).

``~`` is not among the safe characters, so an escaped key can never equal a safe one, and
the escaping is undone byte for byte (a lone surrogate, which JSON can carry, is escaped
as its surrogate-pass bytes) (:func:`key_from_workflow_id`): distinct keys always
give distinct ids, and an id gives back its exact key. (The ids before this rule replaced
every unsafe character with ``_``, so ``X/1`` and ``X?1`` collided; only ids of keys that
had such a character are different now.) ``~`` needs no escaping in a URL path either.
"""

from __future__ import annotations

import re

SAFE = re.compile(r"[A-Za-z0-9._-]")
_ESCAPE = re.compile(r"~([0-9A-F]{2})")
#: Temporal's default limit for a workflow id is 1,000 bytes; keys are refused well before.
MAX_ID_LENGTH = 900


class BusinessKeyError(ValueError):
    """A business key that cannot make a workflow id (blank or too long)."""


def escape_key(key: str) -> str:
    """The key part of a workflow id for a business key (see the module's docstring)."""
    return "".join(
        ch if SAFE.fullmatch(ch) else "".join(f"~{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        for ch in key
    )


def unescape_key(escaped: str) -> str:
    """The exact business key an escaped key came from (the inverse of :func:`escape_key`)."""
    raw = bytearray()
    position = 0
    for match in _ESCAPE.finditer(escaped):
        raw += escaped[position : match.start()].encode()
        raw.append(int(match.group(1), 16))
        position = match.end()
    raw += escaped[position:].encode()
    return raw.decode("utf-8", "surrogatepass")


def workflow_id(kind: str, source: str, key: str) -> str:
    """``{kind}-{source}-{escaped key}``, e.g. ``payment-alvys-customer-L-1001-CHK~201001``."""
    if not key:
        raise BusinessKeyError("the business key must not be blank")
    built = f"{kind}-{source}-{escape_key(key)}"
    if len(built) > MAX_ID_LENGTH:
        raise BusinessKeyError(
            f"the business key is too long for a workflow id (at most {MAX_ID_LENGTH} characters)"
        )
    return built


def key_from_workflow_id(workflow_id: str, kind: str, source: str) -> str | None:
    """The business key of ``workflow_id`` if it is a ``{kind}-{source}-`` id, else None."""
    prefix = f"{kind}-{source}-"
    if not workflow_id.startswith(prefix):
        return None
    return unescape_key(workflow_id[len(prefix) :])
