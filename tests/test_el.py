"""Camunda EL conditions become sandbox Python, or are refused with a reason."""

from __future__ import annotations

import pytest

from flowrun.engine.el import translate
from flowrun.engine.sandbox import compile_expression, evaluate

TRANSLATED = [
    ("${approved}", "approved"),
    ("#{approved}", "approved"),
    ("${!approved}", "not approved"),
    ("${not approved}", "not approved"),
    ("${amount > 100}", "amount > 100"),
    ("${amount gt 100}", "amount > 100"),
    ("${amount ge 100 and amount le 200}", "(amount >= 100) and (amount <= 200)"),
    ("${amount lt 10 or amount >= 1000}", "(amount < 10) or (amount >= 1000)"),
    ("${amount > 100 && approved}", "(amount > 100) and approved"),
    ("${a || b && c}", "a or (b and c)"),
    ("${(a || b) && c}", "(a or b) and c"),
    ("${!(a || b)}", "not (a or b)"),
    ("${status == 'open'}", "status == 'open'"),
    ('${status eq "open"}', "status == 'open'"),
    ("${status ne 'it\\'s'}", 'status != "it\'s"'),
    ("${x == null}", "x is None"),
    ("${null != x}", "x is not None"),
    ("${true}", "True"),
    ("${false == done}", "False == done"),
    ("${empty comment}", "comment is None or comment == '' or comment == [] or comment == {}"),
    ("${not empty comment}", "not (comment is None or comment == '' or comment == [] or comment == {})"),
    ("${a < b < c}", "(a < b) < c"),
    ("${-a + 007 * 2.5e3}", "(-a) + (7 * 2.5e3)"),
    ("${total div 2 > .5}", "(total / 2) > .5"),
    ("${n mod 2 == 1}", "math.fmod(n, 2) == 1"),
    ("  ${ score <= 5 }  ", "score <= 5"),
]


@pytest.mark.parametrize(("el", "python"), TRANSLATED)
def test_translation(el, python):
    """The Python is what the EL means, and the sandbox compiles it."""
    assert translate(el) == python
    compile_expression(python)


EVALUATED = [
    ("${amount > 100 && approved}", {"amount": 150, "approved": True}, True),
    ("${amount > 100 && approved}", {"amount": 150, "approved": False}, False),
    ("${empty comment}", {"comment": None}, True),
    ("${empty comment}", {"comment": ""}, True),
    ("${empty comment}", {"comment": []}, True),
    ("${empty comment}", {"comment": {}}, True),
    ("${empty comment}", {"comment": 0}, False),
    ("${empty comment}", {"comment": "no"}, False),
    ("${-7 % 3 == -1}", {}, True),
    ("${1 < 2 < 3}", {}, True),
]


@pytest.mark.parametrize(("el", "data", "expected"), EVALUATED)
def test_translation_evaluates_like_el(el, data, expected):
    """EL's semantics, not Python's: empty is not falsiness, % keeps the dividend's sign, no chained compare."""
    assert evaluate(translate(el), data) == expected


REFUSED = [
    ('${execution.getVariable("x")}', "method calls such as execution.getVariable"),
    ("${order.total > 100}", "property access"),
    ("${items[0]}", "indexing"),
    ("${ok ? 'a' : 'b'}", "conditional operator"),
    ("${size(items) > 0}", r"function calls such as size\(...\)"),
    ("${fn:length(items)}", "conditional operator"),
    ("${a instanceof b}", "instanceof"),
    ("${x = 1}", "assignment"),
    ("Dear ${name}", "composite expression"),
    ("${a} and ${b}", r"several \$\{...\} parts"),
    ("${}", "empty"),
    ("${   }", "empty"),
    ("${(a && b}", "closing parenthesis"),
    ("${a &&}", "ends too early"),
    ("${a b}", "unexpected 'b'"),
    ("${'open}", "not closed"),
    ("${a & b}", "not understood"),
    ("${_secret}", "leading _"),
    ("${$x}", r"no \$"),
    ("${class == 1}", "Python keyword"),
    ("${a eq}", "ends too early"),
    ("approved", "composite expression"),
]


@pytest.mark.parametrize(("el", "reason"), REFUSED)
def test_refusal_says_why(el, reason):
    """What flowrun does not translate is refused, never guessed."""
    with pytest.raises(ValueError, match=reason):
        translate(el)
