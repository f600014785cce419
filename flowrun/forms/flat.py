"""A fast path for the flat JSON Schemas that user task forms are.

``flowrun do`` is a short process whose cost is mostly start-up; importing
jsonschema (with referencing, attrs and rpds) costs more than the whole step's
work. Forms are flat objects of scalar fields, so this module checks the
keywords such forms use, exactly as jsonschema does (booleans are not numbers,
``format`` is an annotation; both match ``pattern`` with RE2, :mod:`~flowrun.forms.patterns`).
Any schema using anything else is reported as not flat, and the caller falls back
to jsonschema. The test suite checks that both agree on generated data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowrun.forms import patterns

_TOP = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "type", "properties", "required",
     "additionalProperties", "examples", "default"}
)  # fmt: skip
_FIELD = frozenset(
    {"type", "title", "description", "enum", "default", "minimum", "maximum", "exclusiveMinimum",
     "exclusiveMaximum", "minLength", "maxLength", "pattern", "format", "readOnly", "examples", "$comment"}
)  # fmt: skip
_TYPES = frozenset({"string", "integer", "number", "boolean", "null"})
_DRAFTS = (
    "https://json-schema.org/draft/2020-12/schema",
    "https://json-schema.org/draft/2019-09/schema",
    "http://json-schema.org/draft-07/schema#",
    "http://json-schema.org/draft-07/schema",
)


def is_flat(schema: Mapping[str, Any]) -> bool:
    """True when ``schema`` uses only the keywords this module checks, with well-typed values."""
    if not set(schema) <= _TOP or schema.get("type", "object") != "object":
        return False
    if "$schema" in schema and schema["$schema"] not in _DRAFTS:
        return False
    if not isinstance(schema.get("additionalProperties", True), bool):
        return False
    required = schema.get("required", [])
    props = schema.get("properties", {})
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        return False
    if not isinstance(props, dict):
        return False
    return all(isinstance(p, dict) and _flat_field(p) for p in props.values())


def _flat_field(prop: Mapping[str, Any]) -> bool:
    if not set(prop) <= _FIELD:
        return False
    kinds = prop.get("type", "string")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if not kinds or not all(isinstance(k, str) and k in _TYPES for k in kinds):
        return False
    if "enum" in prop and not isinstance(prop["enum"], list):
        return False
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if key in prop and (isinstance(prop[key], bool) or not isinstance(prop[key], (int, float))):
            return False
    for key in ("minLength", "maxLength"):
        if key in prop and (isinstance(prop[key], bool) or not isinstance(prop[key], int) or prop[key] < 0):
            return False
    if "pattern" in prop and (not isinstance(prop["pattern"], str) or patterns.problem(prop["pattern"])):
        return False  # jsonschema's path reports the pattern RE2 refuses, naming the feature
    return True


def problems(schema: Mapping[str, Any], data: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(field, keyword, message)`` for each way ``data`` breaks a flat ``schema``."""
    out: list[tuple[str, str, str]] = []
    props: Mapping[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in data:
            out.append((name, "required", f"'{name}' is a required property"))
    if schema.get("additionalProperties", True) is False:
        extra = [k for k in data if k not in props]
        if extra:
            listed = ", ".join(repr(k) for k in extra)
            verb = "was" if len(extra) == 1 else "were"
            out.append(
                ("", "additionalProperties", f"Additional properties are not allowed ({listed} {verb} unexpected)")
            )
    for name, prop in props.items():
        if name in data:
            out += [(name, kw, msg) for kw, msg in field_problems(prop, data[name])]
    return out


def field_problems(prop: Mapping[str, Any], value: Any) -> list[tuple[str, str]]:
    """``(keyword, message)`` for each way ``value`` breaks one field's schema."""
    out: list[tuple[str, str]] = []
    kinds = prop.get("type")
    if kinds is not None:
        listed = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is_type(value, k) for k in listed):
            shown = repr(kinds) if isinstance(kinds, list) else f"'{kinds}'"
            out.append(("type", f"{value!r} is not of type {shown}"))
    if "enum" in prop and not any(_equal(value, c) for c in prop["enum"]):
        out.append(("enum", f"{value!r} is not one of {prop['enum']!r}"))
    if _is_number(value):
        if "minimum" in prop and value < prop["minimum"]:
            out.append(("minimum", f"{value!r} is less than the minimum of {prop['minimum']!r}"))
        if "maximum" in prop and value > prop["maximum"]:
            out.append(("maximum", f"{value!r} is greater than the maximum of {prop['maximum']!r}"))
        if "exclusiveMinimum" in prop and value <= prop["exclusiveMinimum"]:
            out.append(
                ("exclusiveMinimum", f"{value!r} is less than or equal to the minimum of {prop['exclusiveMinimum']!r}")
            )
        if "exclusiveMaximum" in prop and value >= prop["exclusiveMaximum"]:
            out.append(
                (
                    "exclusiveMaximum",
                    f"{value!r} is greater than or equal to the maximum of {prop['exclusiveMaximum']!r}",
                )
            )
    if isinstance(value, str):
        if "minLength" in prop and len(value) < prop["minLength"]:
            out.append(("minLength", f"{value!r} is too short"))
        if "maxLength" in prop and len(value) > prop["maxLength"]:
            out.append(("maxLength", f"{value!r} is too long"))
        if "pattern" in prop and not patterns.search(prop["pattern"], value):
            out.append(("pattern", f"{value!r} does not match {prop['pattern']!r}"))
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if kind == "number":
        return _is_number(value)
    if kind == "integer":
        return _is_number(value) and (isinstance(value, int) or float(value).is_integer())
    return False


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: ``True`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    return bool(a == b)
