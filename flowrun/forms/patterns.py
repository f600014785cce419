"""Regular expressions from forms, matched by RE2 in time linear in the text.

Python's ``re`` backtracks: a form ``pattern`` such as ``^(a+)+$`` takes longer than
the age of the universe on a 40-character answer. Every pattern a form holds (the
JSON Schema ``pattern`` and ``patternProperties`` keywords, in flat forms and in
jsonschema alike) is compiled by RE2 instead, whose matching never backtracks. RE2
lacks backreferences, lookaround, atomic groups and possessive quantifiers (the
features that need backtracking) and repetition counts above 1000; a pattern using
them is refused when the form is read, naming the feature, so it never reaches an
answer.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

#: RE2's messages for what it refuses -> the feature, as a designer knows it.
_FEATURES = (
    (re.compile(r"invalid escape sequence: \\[1-9]"), "a backreference (\\1 ...)"),
    (re.compile(r"invalid escape sequence: \\k"), "a named backreference (\\k<name>)"),
    (re.compile(r"invalid perl operator: \(\?<?="), "a lookahead or lookbehind ((?=...), (?<=...))"),
    (re.compile(r"invalid perl operator: \(\?<?!"), "a negative lookahead or lookbehind ((?!...), (?<!...))"),
    (re.compile(r"invalid perl operator: \(\?>"), "an atomic group ((?>...))"),
    (re.compile(r"bad repetition operator: [*+?}]\+"), "a possessive quantifier (++, *+, ?+)"),
    (re.compile(r"invalid repetition size"), "a repetition count above 1000 ({n} with n > 1000)"),
    (re.compile(r"pattern too large"), "a pattern too large to check quickly"),
)


class PatternError(ValueError):
    """A pattern RE2 cannot compile; the message names the feature and the fix."""


def search(pattern: str, text: str) -> bool:
    """True when ``pattern`` matches somewhere in ``text`` (JSON Schema's ``pattern``), in linear time.

    Raises:
        PatternError: the pattern uses a feature RE2 lacks.
    """
    return compiled(pattern).search(text) is not None


def problem(pattern: str) -> str | None:
    """Why RE2 refuses ``pattern`` (with the fix), or None when it compiles."""
    try:
        compiled(pattern)
    except PatternError as exc:
        return str(exc)
    return None


@lru_cache(maxsize=512)
def compiled(pattern: str) -> Any:
    """``pattern`` compiled by RE2 (cached: a form's patterns are checked on every answer).

    Raises:
        PatternError: the pattern uses a feature RE2 lacks, or is not a regular expression.
    """
    import re2  # type: ignore[import-untyped] # imported on first use: most forms have no pattern, and `flowrun do` is start-up bound

    options = re2.Options()
    options.log_errors = False  # RE2 would print its own message to stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else ""
        detail = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        feature = next((name for rx, name in _FEATURES if rx.search(detail)), None)
        if feature is None:
            raise PatternError(
                f"the pattern {pattern!r} is not a regular expression flowrun can use ({detail})"
            ) from None
        raise PatternError(
            f"the pattern {pattern!r} uses {feature}, which flowrun does not support because checking it "
            "can take exponential time; rewrite it without that feature"
        ) from None
