"""Case attributes of an event log: the scalar data fields of each case (survey answers, outcomes).

A case's attributes are the top-level fields of its instance's final data whose
values are scalars: ``str``, ``int``, ``float`` (finite) and ``bool``. Nested values
(lists, objects), ``None`` and flowrun's own bookkeeping (``imported_case_id``) are
left out, and so is a field named like an attribute the log already gives every case
(:data:`RESERVED`), so that no key is written twice.

Exports write them as XES trace attributes, CSV columns ``case:<field>`` (PM4Py's
name for a case attribute in a dataframe) and OCEL attributes of the case object;
:func:`parse_text` reads a CSV cell back to the type it was written as.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

#: A case attribute's value.
Scalar: TypeAlias = str | int | float | bool

#: Prefix of a case attribute's CSV column (PM4Py's convention).
CSV_PREFIX = "case:"
#: Attribute names every case already has in the logs; a data field of that name is not exported.
RESERVED = frozenset(
    {"concept:name", "case_id", "process", "variant", "pilot", "model_sha256", "imported_case_id", "business_key"}
)
#: The attribute that carries a case's business key (``flowrun start --key``); XES ``concept:name`` stays the id.
KEY_ATTRIBUTE = "business_key"
#: Longest number text read back as a number (as :func:`flowrun.forms.data.check_limits` allows).
MAX_DIGITS = 100

_INT = re.compile(r"[+-]?(0|[1-9]\d*)")
_LEADING_ZERO = re.compile(r"[+-]?0\d")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_BOOLS = {"true": True, "false": False}


@dataclass
class CaseData:
    """The attributes of the exported cases: the field names in first-seen order, and each case's values."""

    fields: list[str] = field(default_factory=list)
    values: dict[str, dict[str, Scalar]] = field(default_factory=dict)

    def of(self, case_id: object) -> Mapping[str, Scalar]:
        """The attributes of one case (empty when it has none)."""
        return self.values.get(str(case_id), {})

    def type_of(self, name: str) -> str:
        """The OCEL 2.0 type of field ``name`` over all cases: boolean, integer, float or string (mixed)."""
        kinds = {kind(v) for v in self.values_of(name)}
        if kinds <= {"integer"} and kinds:
            return "integer"
        if kinds <= {"integer", "float"} and kinds:
            return "float"
        return kinds.pop() if len(kinds) == 1 else "string"

    def values_of(self, name: str) -> Iterable[Scalar]:
        return (attrs[name] for attrs in self.values.values() if name in attrs)


def kind(value: Scalar) -> str:
    """The OCEL 2.0 / XES type of a scalar: boolean, integer, float or string."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    return "string"


def is_scalar(value: object) -> bool:
    """Whether ``value`` is exported as a case attribute (nested values, None and NaN are not)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int, bool))


def case_data(rows: Iterable[tuple[str, str, str | None]]) -> CaseData:
    """The case attributes from ``(case id, data JSON text, business key)`` rows (see the module docstring).

    A case's business key, when it has one, is its first attribute, :data:`KEY_ATTRIBUTE`.
    """
    out = CaseData()
    seen: dict[str, None] = {}
    for case_id, text, key in rows:
        try:
            data = json.loads(text) if text else {}
        except ValueError:  # the store writes JSON; a damaged row gives no attributes rather than no export
            data = {}
        if not isinstance(data, dict):
            continue
        kept: dict[str, Scalar] = {KEY_ATTRIBUTE: key} if key else {}
        kept.update((str(k), v) for k, v in data.items() if str(k) not in RESERVED and is_scalar(v))
        for name in kept:
            seen.setdefault(name, None)
        if kept:
            out.values[case_id] = kept
    out.fields = list(seen)
    return out


def csv_text(value: Scalar) -> str:
    """A case attribute as a CSV cell: booleans ``true``/``false``, numbers as Python writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if not isinstance(value, str) else value


def parse_text(text: str) -> Scalar | None:
    """A CSV cell read back to its type: ``true``/``false`` (any case) a bool, a whole number an int,
    a decimal number a float, else the text; an empty cell None (the case has no value).

    Numbers are read as :func:`flowrun.analysis.measures.numbers` reads them (``1``, ``-2.5``,
    ``1e3``), but ``yes``/``no`` stay text: they may be answers, not booleans. A whole number of
    more than :data:`MAX_DIGITS` digits, or with a leading zero (``007``, a postal code), stays
    text: it is an identifier.
    """
    text = text.strip()
    if not text:
        return None
    lower = text.lower()
    if lower in _BOOLS:
        return _BOOLS[lower]
    if _LEADING_ZERO.match(text):
        return text
    if _INT.fullmatch(text):
        return int(text) if len(text.lstrip("+-")) <= MAX_DIGITS else text
    if len(text) <= 2 * MAX_DIGITS and _FLOAT.fullmatch(text):
        number = float(text)
        return number if math.isfinite(number) else text
    return text
