"""Data for a form: typed text from the command line coerced, and values checked against the form.

The flat forms user tasks use are checked by :mod:`flowrun.forms.flat` without importing
jsonschema (which costs more than a whole ``flowrun do``); anything else goes to jsonschema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flowrun.errors import DataError
from flowrun.forms import flat, patterns, validator
from flowrun.models import Form


def coerce_value(text: str, kind: str) -> Any:
    """Turn typed text into a value of JSON Schema type ``kind``.

    Raises:
        ValueError: the text is not a value of that type.
    """
    t = text.strip()
    if kind == "integer":
        number = float(t)
        if not number.is_integer():
            raise ValueError(f"'{text}' is not a whole number")
        return int(number)
    if kind == "number":
        number = float(t)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(f"'{text}' is not a finite number")
        return int(number) if number.is_integer() and "." not in t and "e" not in t.lower() else number
    if kind == "boolean":
        low = t.lower()
        if low in ("true", "yes", "y", "1", "on"):
            return True
        if low in ("false", "no", "n", "0", "off"):
            return False
        raise ValueError(f"'{text}' is not yes or no")
    if kind in ("object", "array"):
        return json.loads(t)
    return text


def coerce(form: Form | None, raw: Mapping[str, str]) -> dict[str, Any]:
    """Coerce ``--data k=v`` text to the types the form asks for; unknown keys are parsed as JSON.

    Raises:
        DataError: a value does not fit its field's type.
    """
    by_name = {f.name: f for f in form.fields} if form else {}
    out: dict[str, Any] = {}
    problems = []
    for key, text in raw.items():
        spec = by_name.get(key)
        if spec is None:
            out[key] = _guess(text)
            continue
        try:
            out[key] = coerce_value(text, spec.type)
        except (ValueError, json.JSONDecodeError) as exc:
            problems.append(f"{key}: {exc}")
    if problems:
        raise DataError("the data does not fit the form:", problems)
    return out


def _guess(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def validate(form: Form | None, data: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """Check ``data`` against the form, filling in defaults; returns the data to submit.

    Raises:
        DataError: listing every field that is missing or wrong, with the fix.
    """
    if form is None:
        return dict(data)
    result = dict(data)
    for f in form.fields:
        if f.name not in result and f.has_default:
            result[f.name] = f.default
    problems = []
    for field_name, keyword, message in sorted(_schema_problems(form.schema, result), key=lambda p: p[0]):
        if keyword == "required":
            problems.append(f"{field_name}: required; give it with --data {field_name}=...")
        elif keyword == "additionalProperties":
            problems.append(f"{message}; the form has the fields {', '.join(x.name for x in form.fields)}")
        else:
            problems.append(f"{field_name or 'data'}: {message}")
    if problems:
        where = f" ({source})" if source else ""
        raise DataError(f"the data does not fit the form {form.title or form.source}{where}:", problems)
    return result


def _schema_problems(schema: Mapping[str, Any], data: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(field, keyword, message)`` for each problem: the flat fast path, else jsonschema."""
    if flat.is_flat(schema):
        return flat.problems(schema, data)
    out = []
    for err in _errors(validator.validator_of(schema), data):
        name = "/".join(str(p) for p in err.path)
        if err.validator == "required":
            name = str(err.message).split("'")[1] if "'" in err.message else err.message
        out.append((name, str(err.validator), err.message))
    return out


def check_field(form: Form, name: str, value: Any) -> list[str]:
    """Problems with one field's value (for re-asking at a prompt); empty when it fits."""
    prop = (form.schema.get("properties") or {}).get(name)
    if not isinstance(prop, Mapping):
        return []
    if flat.is_flat(form.schema):
        return [message for _, message in flat.field_problems(prop, value)]
    # The field's schema, checked as part of the whole form, so its $ref pointers still lead where they did.
    field = validator.validator_of(form.schema).evolve(schema=prop)
    return [err.message for err in _errors(field, value)]


def _errors(checker: Any, data: Any) -> list[Any]:
    """jsonschema's errors for ``data``; a schema that cannot be checked is a :class:`DataError`, not a crash."""
    from referencing.exceptions import Unresolvable

    try:
        return list(checker.iter_errors(data))
    except RecursionError:
        reason = "the data or the form is nested too deeply to check"
    except (Unresolvable, patterns.PatternError) as exc:
        reason = f"the form cannot be checked ({exc})"
    raise DataError(f"{reason}; simplify the data, or fix the form with 'flowrun validate'")
