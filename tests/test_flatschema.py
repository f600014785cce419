"""The fast form checker agrees with jsonschema on every flat form it accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowrun import app
from flowrun.forms import flat, validator

FORMS = sorted((app.example_dir() / "forms").glob("*.json"))

SYNTHETIC = {
    "type": "object",
    "properties": {
        "n": {"type": "integer", "minimum": 1, "maximum": 5},
        "x": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10.5},
        "s": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[a-c]+$"},
        "e": {"enum": [1, "one", True, None]},
        "b": {"type": ["boolean", "null"]},
    },
    "required": ["n", "s"],
    "additionalProperties": False,
}

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    st.floats(-3, 12, allow_nan=False),
    st.sampled_from(["", "a", "ab", "abcd", "abcde", "zz", "one", "phone", "billing", "refund", "high"]),
    st.text(max_size=6),
)


def _reference(schema: dict[str, Any], data: dict[str, Any]) -> list[tuple[str, str]]:
    errors = validator.validator_of(schema).iter_errors(data)  # jsonschema as flowrun runs it (RE2 patterns)
    return sorted(
        ("/".join(map(str, e.path)) if e.validator != "required" else e.message.split("'")[1], e.validator)
        for e in errors
    )


def _fast(schema: dict[str, Any], data: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((name, keyword) for name, keyword, _ in flat.problems(schema, data))


@pytest.mark.parametrize("path", FORMS, ids=lambda p: p.name)
def test_shipped_forms_are_flat(path):
    """Every shipped form takes the fast path."""
    assert flat.is_flat(json.loads(path.read_text()))


@pytest.mark.parametrize("schema", [*(json.loads(p.read_text()) for p in FORMS), SYNTHETIC])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_fast_path_agrees_with_jsonschema(schema, data):
    """Same fields, same failing keywords, for random data."""
    names = [*schema["properties"], "unexpected"]
    keys = data.draw(st.lists(st.sampled_from(names), unique=True))
    values = {k: data.draw(VALUES) for k in keys}
    assert _fast(schema, values) == _reference(schema, values)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "array"}}},
        {"type": "object", "properties": {"a": {"$ref": "#/x"}}},
        {"type": "object", "properties": {"a": {"type": "string", "minLength": "3"}}},
        {"type": "object", "properties": {"a": {"type": "string"}}, "allOf": []},
        {"type": "object", "properties": {"a": {"pattern": "("}}},
        {"type": "object", "properties": {"a": {"pattern": "(a)\\1"}}},  # RE2 has no backreferences
    ],
)
def test_anything_else_falls_back_to_jsonschema(schema):
    """Schemas beyond flat forms (or malformed ones) are left to jsonschema."""
    assert not flat.is_flat(schema)
