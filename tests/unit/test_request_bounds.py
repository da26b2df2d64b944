"""Every request body of contracts, payments and notifications is bounded: each free-text field
has a maximum length, each list a maximum size and each free object a maximum number of keys,
so bad input costs no more than its size (issue 16)."""
from __future__ import annotations

import importlib

import pytest

from shared.settings import Settings

SERVICES = ("contracts", "payments", "notifications")


def _openapi(service: str, tmp_path) -> dict:
    settings = Settings(service=service, environment="test", database_url=f"sqlite:///{tmp_path / 'x.db'}",
                        jwt_secret="x" * 32)
    return importlib.import_module(f"services.{service}.app").create(settings, start=False).openapi()


def _unbounded(schema: dict, components: dict, where: str, seen: frozenset = frozenset()) -> list[str]:
    """The places in a request schema that accept input of any size."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return [] if name in seen else _unbounded(components[name], components, where, seen | {name})
    found: list[str] = []
    if _is_decimal(schema):
        return found   # a Decimal is bounded by its digits (max_digits, decimal_places) and the body cap
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, ()):
            found += _unbounded(option, components, where, seen)
    kind = schema.get("type")
    # A pattern fixes a string's shape (keys, versions, decimals, times); free text needs a maximum.
    if kind == "string" and not {"maxLength", "enum", "const", "pattern"} & set(schema) \
            and schema.get("format") not in ("date", "date-time", "time"):
        found.append(where)
    if kind == "array":
        if "maxItems" not in schema:
            found.append(where + "[]")
        found += _unbounded(schema.get("items", {}), components, where + "/*", seen)
    if kind == "object":
        for name, prop in schema.get("properties", {}).items():
            found += _unbounded(prop, components, f"{where}/{name}", seen)
        extra = schema.get("additionalProperties")
        if extra not in (None, False) or not schema.get("properties"):
            if "maxProperties" not in schema:
                found.append(where + "{}")
            if isinstance(extra, dict):
                found += _unbounded(extra, components, where + "/*", seen)
    return found


def _is_decimal(schema: dict) -> bool:
    return sorted(o.get("type", "") for o in schema.get("anyOf", ())) in (["number", "string"],
                                                                          ["null", "number", "string"])


@pytest.mark.parametrize("service", SERVICES)
def test_every_request_field_has_a_maximum(service, tmp_path):
    spec = _openapi(service, tmp_path)
    components = spec.get("components", {}).get("schemas", {})
    unbounded = []
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                unbounded += _unbounded(media["schema"], components, f"{method.upper()} {path} ")
    assert unbounded == []
