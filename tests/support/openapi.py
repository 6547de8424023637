"""Validate JSON instances against schemas of Alvys's published OpenAPI 3.0 document.

Why: the OpenAPI file is the authority for Alvys wire formats, so the sandbox's answers and the
client's requests are checked against it, not against our own reading of it. OpenAPI 3.0 is not
JSON Schema: ``nullable: true`` is converted to a ``null`` alternative, ``discriminator`` and friends
are dropped, and the result is validated as JSON Schema 2020-12 with ``$ref`` resolved inside the spec.
``format: date-time`` is asserted as RFC 3339 (what a .NET UTC DateTime writes); int32/int64 ranges too.

The spec is looked up at ``$ALVYS_OPENAPI_SPEC``, then ``<repo>/vendor-specs/alvys-openapi.json``,
then ``../shared/vendor-specs/alvys-openapi.json`` beside the repo.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC_ENV = "ALVYS_OPENAPI_SPEC"
_REPO = Path(__file__).resolve().parents[2]
_CANDIDATES = (
    _REPO / "vendor-specs" / "alvys-openapi.json",
    _REPO.parent / "shared" / "vendor-specs" / "alvys-openapi.json",
)
_SPEC_URI = "urn:freightpay:alvys-openapi"
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "propertyNames", "additionalItems")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_OPENAPI_ONLY = ("nullable", "discriminator", "xml", "externalDocs", "example")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
)


def spec_path() -> Path:
    """Where the Alvys OpenAPI document is; FileNotFoundError saying where it was looked for."""
    configured = os.environ.get(SPEC_ENV)
    candidates = (Path(configured),) if configured else _CANDIDATES
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"Alvys OpenAPI spec not found; looked at {[str(c) for c in candidates]}")


@functools.cache
def spec() -> dict[str, Any]:
    """The raw OpenAPI document."""
    document: dict[str, Any] = json.loads(spec_path().read_text(encoding="utf-8"))
    return document


def to_json_schema(schema: Any) -> Any:
    """One OpenAPI 3.0 schema object as JSON Schema 2020-12 (recursively)."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _OPENAPI_ONLY:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_ONE and isinstance(value, dict):
            out[key] = to_json_schema(value)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [to_json_schema(sub) for sub in value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            if value and bound in schema:
                out[key] = schema[bound]
        else:
            out[key] = value
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        bound = "minimum" if key == "exclusiveMinimum" else "maximum"
        if schema.get(key) is True:
            out.pop(bound, None)
    if schema.get("nullable") is True:
        composite = any(k in out for k in (*_SCHEMA_LISTS, "$ref"))
        if isinstance(out.get("type"), str) and not composite:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _registry() -> Registry[Any]:
    schemas = spec()["components"]["schemas"]
    converted = {"components": {"schemas": {name: to_json_schema(s) for name, s in schemas.items()}}}
    registry: Registry[Any] = Registry().with_resource(_SPEC_URI, DRAFT202012.create_resource(converted))
    return registry


def _is_rfc3339(value: object) -> bool:
    return not isinstance(value, str) or bool(_RFC3339.match(value))


def _in_range(bits: int) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        return not isinstance(value, int) or -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)

    return check


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checks("date-time")(_is_rfc3339)
    checker.checks("int32")(_in_range(32))
    checker.checks("int64")(_in_range(64))
    return checker


def schema_name(name: str) -> str:
    """The full component name for ``name``: exact, or the one ending in ``.{name}``.

    Paged lists are named in full (``Alvys.Helpers.PagedResponse1Alvys.Models.Loads.LoadResponse``)
    or by their tail (``PagedResponse1Alvys.Models.Loads.LoadResponse``).
    """
    schemas: dict[str, Any] = spec()["components"]["schemas"]
    if name in schemas:
        return name
    matches = [full for full in schemas if full.endswith(f".{name}")]
    if len(matches) > 1 and "PagedResponse" not in name:  # "InvoiceResponse" is not its paged list
        matches = [full for full in matches if ".PagedResponse" not in full]
    if len(matches) != 1:
        raise KeyError(f"schema {name!r}: {'ambiguous: ' + str(matches) if matches else 'not in the spec'}")
    return str(matches[0])


@functools.cache
def _validator(full_name: str) -> Draft202012Validator:
    ref = {"$ref": f"{_SPEC_URI}#/components/schemas/{full_name}"}
    return Draft202012Validator(ref, registry=_registry(), format_checker=_format_checker())


def schema_errors(name: str, instance: Any) -> list[str]:
    """Every way ``instance`` breaks the named schema, as ``path: message`` lines (empty if valid)."""
    validator = _validator(schema_name(name))
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{e.json_path}: {e.message}" for e in errors]


def validate_against(schema_name: str, instance: Any) -> None:
    """Raise ``jsonschema.ValidationError`` listing every mismatch of ``instance`` with the schema.

    ``schema_name`` is a component of the spec, full (``Alvys.Models.Invoices.InvoiceResponse``) or
    by its unique last part (``InvoiceResponse``).
    """
    problems = schema_errors(schema_name, instance)
    if problems:
        raise jsonschema.ValidationError(f"not a valid {schema_name}:\n  " + "\n  ".join(problems))
