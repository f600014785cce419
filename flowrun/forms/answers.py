"""Answers typed at a prompt: read by the field's own type, choices by number or prefix, rules in words.

An operator answering a form field types text. :func:`read_answer` turns it into the
field's value by the type the form gives the field (never by the type of its
default), and a choice can be typed as listed, by its number in the list, or by the
start of its name, case-blind. When the text is no valid answer,
:class:`AnswerError` says what a valid one is, always in one style made by
:func:`field_rule` ("Amount disputed must be a number of at least 0"): no Python
exception text, no regular expression, no list repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowrun.errors import DataError
from flowrun.forms.data import check_field, coerce_value
from flowrun.models import Form, FormField

_KINDS = {
    "integer": "a whole number",
    "number": "a number",
    "boolean": "yes or no",
    "object": "a JSON object",
    "array": "a JSON list",
}


class AnswerError(ValueError):
    """Typed text is no valid answer to a field; the message is the field's rule (see :func:`field_rule`)."""


def field_rule(form: Form, field: FormField) -> str:
    """What a valid answer to ``field`` is, in words, starting with the field's label.

    Examples: "Amount must be a number between 0 and 10000", "Severity must be one of
    1 low, 2 medium, 3 high (its number or the start of its name)", "Description must
    be text of at least 5 characters".
    """
    prop = _prop(form, field)
    if field.choices:
        listed = ", ".join(f"{n} {c}" for n, c in enumerate(field.choices, 1))
        return f"{field.label} must be one of {listed} (its number or the start of its name)"
    kind = _KINDS.get(field.type, "text")
    if field.type in ("integer", "number"):
        return f"{field.label} must be {kind}{_range(prop)}"
    if field.type == "string":
        return f"{field.label} must be text{_length(prop)}{_format(prop)}"
    return f"{field.label} must be {kind}"


def read_answer(form: Form, field: FormField, text: str) -> Any:
    """The value of ``field`` that ``text`` stands for.

    Raises:
        AnswerError: ``text`` is no valid answer; the message is :func:`field_rule`.
        DataError: the form itself cannot be checked (a broken ``$ref`` or pattern).
    """
    if field.choices:
        return _choice(form, field, text)
    try:
        value = coerce_value(text, field.type)
    except (ValueError, DataError):  # json.JSONDecodeError is a ValueError
        raise AnswerError(field_rule(form, field)) from None
    if check_field(form, field.name, value):
        raise AnswerError(field_rule(form, field))
    return value


def shown(value: Any) -> str:
    """A value as the operator typed or would type it (booleans as yes/no, no quotes)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _choice(form: Form, field: FormField, text: str) -> Any:
    choices = field.choices or ()
    typed = text.strip().casefold()
    exact = [c for c in choices if shown(c).casefold() == typed]
    if exact:
        return exact[0]
    if typed.isascii() and typed.isdigit() and 1 <= int(typed) <= len(choices):
        return choices[int(typed) - 1]
    starting = [c for c in choices if typed and shown(c).casefold().startswith(typed)]
    if len(starting) == 1:
        return starting[0]
    raise AnswerError(field_rule(form, field))


def _prop(form: Form, field: FormField) -> Mapping[str, Any]:
    prop = (form.schema.get("properties") or {}).get(field.name)
    return prop if isinstance(prop, Mapping) else {}


def _number(prop: Mapping[str, Any], key: str) -> str | None:
    value = prop.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return f"{value:g}"


def _range(prop: Mapping[str, Any]) -> str:
    lo, hi = _number(prop, "minimum"), _number(prop, "maximum")
    above, below = _number(prop, "exclusiveMinimum"), _number(prop, "exclusiveMaximum")
    if lo is not None and hi is not None:
        return f" between {lo} and {hi}"
    parts = []
    if lo is not None:
        parts.append(f"of at least {lo}")
    if above is not None:
        parts.append(f"greater than {above}")
    if hi is not None:
        parts.append(f"of at most {hi}")
    if below is not None:
        parts.append(f"less than {below}")
    return (" " + " and ".join(parts)) if parts else ""


def _length(prop: Mapping[str, Any]) -> str:
    lo, hi = _number(prop, "minLength"), _number(prop, "maxLength")
    if lo is not None and hi is not None:
        return f" of {lo} to {hi} characters"
    if lo is not None:
        return f" of at least {lo} character{'s' if lo != '1' else ''}"
    if hi is not None:
        return f" of at most {hi} characters"
    return ""


def _format(prop: Mapping[str, Any]) -> str:
    # A regular expression means nothing to an operator; the field's description (shown above
    # the prompt) is where a form says what the format is.
    return " in the format the description gives" if "pattern" in prop else ""
