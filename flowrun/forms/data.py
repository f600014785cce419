"""Data for a form: typed text from the command line coerced, and values checked against the form.

The flat forms user tasks use are checked by :mod:`flowrun.forms.flat` without importing
jsonschema (which costs more than a whole ``flowrun do``); anything else goes to jsonschema.

Data from outside (``--data``, ``--data-file``, a ``send`` payload) is held to the limits
of :func:`check_limits` before anything else reads it: later steps (JSON, deep copies,
the serializer) recurse and convert numbers to text, and would fail deep inside.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flowrun.errors import DataError
from flowrun.forms import flat, patterns, validator
from flowrun.models import Form

#: Deepest nesting of lists and objects within one field's value.
MAX_DEPTH = 100
#: Most digits of a whole number (a longer one is an identifier: give it as text).
MAX_DIGITS = 100
_MAX_INT = 10**MAX_DIGITS


def check_limits(data: Any, source: str) -> None:
    """Refuse data nested deeper than :data:`MAX_DEPTH` or holding a number of more than :data:`MAX_DIGITS` digits.

    Walks the data without recursion, so even a value too deep for Python's own
    recursion is reported, naming the field.

    Raises:
        DataError: naming ``source``, the field and the limit.
    """
    stack: list[tuple[Any, int, str]] = [(data, 0, "")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, (dict, list, tuple)):
            if depth > MAX_DEPTH:
                field = path.split(".")[0].split("[")[0] or "the data"
                raise DataError(
                    f"{source}: the value of '{field}' is nested more than {MAX_DEPTH} levels deep, the limit; "
                    "flatten it"
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                where = f"{path}[{key}]" if not isinstance(value, dict) else f"{path}.{key}" if path else str(key)
                stack.append((item, depth + 1, where))
        elif isinstance(value, int) and not isinstance(value, bool) and not -_MAX_INT < value < _MAX_INT:
            raise DataError(
                f"{source}: {f'the number at {path}' if path else 'the number'} has more than {MAX_DIGITS} "
                "digits, the limit; give it as text (in quotes)"
            )


def parse_json(text: str, source: str) -> Any:
    """``json.loads`` held to :func:`check_limits`.

    Raises:
        json.JSONDecodeError: the text is not JSON.
        DataError: it is JSON beyond the limits (too deep, too many digits).
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise DataError(
            f"{source}: the value is nested more than {MAX_DEPTH} levels deep, the limit; flatten it"
        ) from None
    except ValueError:  # Python refuses to convert integers of thousands of digits
        raise DataError(
            f"{source}: the value holds a number of more than {MAX_DIGITS} digits, the limit; give it as text"
        ) from None
    check_limits(value, source)
    return value


def _shown(text: str) -> str:
    """``text`` for a message: quoted, and cut short when long."""
    return repr(text) if len(text) <= 40 else repr(text[:30]) + f"... ({len(text)} characters)"


def coerce_value(text: str, kind: str) -> Any:
    """Turn typed text into a value of JSON Schema type ``kind``.

    Raises:
        ValueError: the text is not a value of that type.
    """
    t = text.strip()
    if kind in ("integer", "number") and len(t.lstrip("+-").lstrip("0")) > MAX_DIGITS:
        raise ValueError(f"{_shown(text)} has more than {MAX_DIGITS} digits, the limit; give it as text")
    if kind == "integer":
        try:
            return int(t)  # exact: a float would round whole numbers above 2**53
        except ValueError:
            number = _float(text, t)
        if not number.is_integer():
            raise ValueError(f"{_shown(text)} is not a whole number")
        return int(number)
    if kind == "number":
        number = _float(text, t)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(f"{_shown(text)} is not a finite number")
        if "." not in t and "e" not in t.lower():
            return int(t)
        return number
    if kind == "boolean":
        low = t.lower()
        if low in ("true", "yes", "y", "1", "on"):
            return True
        if low in ("false", "no", "n", "0", "off"):
            return False
        raise ValueError(f"{_shown(text)} is not yes or no")
    if kind in ("object", "array"):
        return parse_json(t, "the value")
    return text


def _float(text: str, stripped: str) -> float:
    try:
        return float(stripped)
    except ValueError:
        raise ValueError(f"{_shown(text)} is not a number") from None


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
            out[key] = _guess(key, text)
            continue
        try:
            out[key] = coerce_value(text, spec.type)
        except DataError as exc:
            problems.append(f"{key}: {exc.message.removeprefix('the value: ')}")
        except ValueError as exc:  # json.JSONDecodeError too
            problems.append(f"{key}: {exc}")
    if problems:
        raise DataError("the data does not fit the form:", problems)
    check_limits(out, "--data")
    return out


def _guess(key: str, text: str) -> Any:
    try:
        return parse_json(text, f"--data {key}")
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
