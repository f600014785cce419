"""Translate simple Camunda (JUEL) expressions such as ``${amount > 100 && approved}`` into Python.

Camunda diagrams write conditions and timer values in the Java Unified
Expression Language; flowrun evaluates Python in :mod:`flowrun.engine.sandbox`.
:func:`translate` accepts the part of the language that conditions use every
day and refuses the rest with a reason (:class:`ValueError`):

* literals: ``'text'``, ``"text"``, ``42``, ``1.5``, ``true``, ``false``, ``null``;
* variables by name (``approved``), parentheses;
* ``== != < > <= >=`` and ``eq ne lt gt le ge``; ``x == null`` becomes ``x is None``;
* ``&& || !`` and ``and or not``;
* ``empty x`` (true for null, ``''``, an empty list or map);
* ``+ - * /`` (``div``) and ``%`` (``mod``, with Java's sign rule).

Refused: property access and method calls (``execution.getVariable('x')``),
indexing (``a[0]``), the ternary ``?:``, ``instanceof``, lambdas and
composite text such as ``Hello ${name}``. Values are compared as they are
stored: EL's coercions (``'5' == 5`` is true in EL) do not happen in Python.

The translation is a tokenizer and a recursive-descent parser; nothing is
evaluated. Every binary result is parenthesised, so EL's precedence is kept
and Python's chained comparisons (``a < b < c``) never arise.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

__all__ = ["translate"]


@dataclass(frozen=True)
class _Token:
    kind: str  # "num", "str", "name", "op" or "end"
    text: str
    pos: int


@dataclass(frozen=True)
class _Py:
    """Python source for part of the expression; ``compound`` parts need parentheses inside others."""

    text: str
    compound: bool = False

    def inner(self) -> str:
        return f"({self.text})" if self.compound else self.text


_NUMBER = re.compile(r"(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_NAME = re.compile(r"[^\W\d][\w$]*|\$[\w$]*")
_OPERATORS = ("==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "+", "-", "*", "/", "%", "(", ")")
_REFUSED_CHARS = {
    ".": "property access and method calls such as execution.getVariable('x') are not supported (name the variable)",
    "[": "indexing with [...] is not supported",
    "?": "the conditional operator ?: is not supported",
    ":": "the conditional operator ?: is not supported",
    ",": "function calls are not supported",
    "=": "assignment is not supported (compare with ==)",
    "{": "nested braces are not supported",
    "}": "several ${...} parts in one expression are not supported",
    ";": "several statements are not supported",
}

#: EL word operators and the symbol they stand for.
_WORD_OPERATORS = {
    "and": "&&",
    "or": "||",
    "not": "!",
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "gt": ">",
    "le": "<=",
    "ge": ">=",
    "div": "/",
    "mod": "%",
    "empty": "empty",
}
_LITERALS = {"true": "True", "false": "False", "null": "None"}
_PYTHON_OPERATORS = {"&&": "and", "||": "or"}

#: Binary operators from the loosest to the tightest binding.
_LEVELS: tuple[tuple[str, ...], ...] = (
    ("||",),
    ("&&",),
    ("==", "!="),
    ("<", ">", "<=", ">="),
    ("+", "-"),
    ("*", "/", "%"),
)


def translate(expression: str) -> str:
    """Translate one EL expression (``${...}`` or ``#{...}``) into an equivalent Python expression.

    Args:
        expression: the text of the condition or value, with its ``${`` and ``}``.

    Returns:
        Python source for :func:`flowrun.engine.sandbox.compile_expression`.

    Raises:
        ValueError: the expression uses EL that flowrun does not translate; the message says what.
    """
    text = expression.strip()
    if not (text.startswith(("${", "#{")) and text.endswith("}")):
        raise ValueError("text around ${...} (a composite expression) is not supported")
    parser = _Parser(_tokenize(text[2:-1]))
    result = parser.binary(0)
    parser.expect_end()
    return result.text


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(source):
        if source[pos].isspace():
            pos += 1
            continue
        token, pos = _read_token(source, pos)
        tokens.append(token)
    if not tokens:
        raise ValueError("the expression is empty")
    tokens.append(_Token("end", "", len(source)))
    return tokens


def _read_token(source: str, pos: int) -> tuple[_Token, int]:
    """The token at ``pos`` and the position after it."""
    char = source[pos]
    if char in "'\"":
        return _read_string(source, pos)
    number = _NUMBER.match(source, pos)
    if number and (char.isdigit() or char == "."):
        return _Token("num", number.group(0), pos), number.end()
    name = _NAME.match(source, pos)
    if name:
        return _Token("name", name.group(0), pos), name.end()
    for op in _OPERATORS:
        if source.startswith(op, pos):
            return _Token("op", op, pos), pos + len(op)
    if char in _REFUSED_CHARS:
        raise ValueError(_REFUSED_CHARS[char])
    raise ValueError(f"the character {char!r} is not understood")


def _read_string(source: str, start: int) -> tuple[_Token, int]:
    """The EL string literal at ``start``; ``\\'``, ``\\"`` and ``\\\\`` are its escapes."""
    quote = source[start]
    out: list[str] = []
    pos = start + 1
    while pos < len(source):
        char = source[pos]
        if char == "\\" and source[pos + 1 : pos + 2] in ("'", '"', "\\"):
            out.append(source[pos + 1])
            pos += 2
        elif char == quote:
            return _Token("str", "".join(out), start), pos + 1
        else:
            out.append(char)
            pos += 1
    raise ValueError("a string is not closed (a quote is missing)")


class _Parser:
    """Recursive descent over EL's precedence levels."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> str:
        """The current token as an operator symbol (word operators mapped), or else its kind."""
        token = self.tokens[self.index]
        if token.kind == "op":
            return token.text
        if token.kind == "name" and token.text in _WORD_OPERATORS:
            return _WORD_OPERATORS[token.text]
        return token.kind

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect_end(self) -> None:
        token = self.tokens[self.index]
        if token.text == "instanceof":
            raise ValueError("the operator 'instanceof' is not supported")
        if token.kind != "end":
            raise ValueError(f"unexpected {token.text!r} after the end of the expression")

    def binary(self, level: int) -> _Py:
        """Parse operators of ``_LEVELS[level]`` and tighter."""
        if level == len(_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek() in _LEVELS[level]:
            op = self.peek()
            self.take()
            left = _combine(op, left, self.binary(level + 1))
        return left

    def unary(self) -> _Py:
        op = self.peek()
        if op not in ("!", "-", "empty"):
            return self.primary()
        self.take()
        operand = self.unary().inner()
        if op == "!":
            return _Py(f"not {operand}", compound=True)
        if op == "-":
            return _Py(f"-{operand}", compound=True)
        return _Py(f"{operand} is None or {operand} == '' or {operand} == [] or {operand} == {{}}", compound=True)

    def primary(self) -> _Py:
        token = self.take()
        if token.kind == "num":
            return _Py(_number(token.text))
        if token.kind == "str":
            return _Py(repr(token.text))
        if token.kind == "name":
            return _Py(self.name(token.text))
        if token.text == "(":
            inner = self.binary(0)
            if self.take().text != ")":
                raise ValueError("a closing parenthesis is missing")
            return inner
        if token.kind == "end":
            raise ValueError("the expression ends too early")
        raise ValueError(f"unexpected {token.text!r}")

    def name(self, name: str) -> str:
        if name in _LITERALS:
            return _LITERALS[name]
        if name in _WORD_OPERATORS or name == "instanceof":
            raise ValueError(f"the operator {name!r} is not supported here")
        if self.peek() == "(":
            raise ValueError(f"function calls such as {name}(...) are not supported")
        if "$" in name or name.startswith("_"):
            raise ValueError(f"the name {name!r} cannot be used (no $ or leading _ in variable names)")
        if keyword.iskeyword(name):
            raise ValueError(f"the variable name {name!r} is a Python keyword; rename the variable")
        return name


def _combine(op: str, left: _Py, right: _Py) -> _Py:
    if op in ("==", "!=") and "None" in (left.text, right.text):
        subject = (right if left.text == "None" else left).inner()
        return _Py(f"{subject} is None" if op == "==" else f"{subject} is not None", compound=True)
    if op == "%":
        return _Py(f"math.fmod({left.text}, {right.text})")  # Java's remainder keeps the sign of the dividend
    return _Py(f"{left.inner()} {_PYTHON_OPERATORS.get(op, op)} {right.inner()}", compound=True)


def _number(text: str) -> str:
    if text.isdigit():
        return str(int(text))  # EL allows leading zeros (007); Python does not
    return text
