"""jsonschema for forms: schemas checked before use, validators that fetch nothing and match with RE2.

Forms that are not flat (:mod:`flowrun.forms.flat`) are checked by jsonschema. Left to its
defaults, jsonschema would retrieve a ``$ref`` to ``file://`` or ``http://`` (any file of the
machine, or the network), recurse without end on a ``$ref`` that leads back to itself, and match
``pattern`` with Python's backtracking ``re``. Here:

* :func:`check` refuses, when a form is read, a schema that is not valid JSON Schema, a ``$ref``
  that is not a pointer into the form itself (``#/$defs/address``), a pointer that leads nowhere,
  a ``$id`` below the top level (it would move where pointers lead), a cycle of references that
  reads no data on the way, and a pattern RE2 refuses (:mod:`~flowrun.forms.patterns`);
* :func:`validator_of` gives a validator whose registry refuses every retrieval and whose
  ``pattern``, ``patternProperties`` and ``additionalProperties`` match with RE2.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from flowrun.errors import FormError
from flowrun.forms import patterns

_REFS = ("$ref", "$dynamicRef", "$recursiveRef")
#: Keywords whose values are data, not schemas: nothing under them is a reference or a pattern.
_DATA = frozenset({"default", "examples", "enum", "const"})
#: Keywords that map names (of fields, definitions) to subschemas.
_NAMED = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"})
#: Keywords that apply subschemas to the same value (a cycle through them alone never ends).
_SAME_VALUE_LISTS = ("allOf", "anyOf", "oneOf")
_SAME_VALUE_ONE = ("not", "if", "then", "else")


def validator_of(schema: Mapping[str, Any]) -> Any:
    """A jsonschema validator for ``schema`` that retrieves nothing and matches patterns with RE2."""
    from jsonschema.validators import Draft202012Validator, validator_for
    from referencing import Registry

    cls = _safe_class(validator_for(schema, default=Draft202012Validator))
    return cls(schema, registry=Registry(retrieve=_refuse_retrieval))  # type: ignore[call-arg]


def check(schema: Mapping[str, Any], display: str) -> None:
    """Refuse a form schema that jsonschema could not check safely; see the module docstring.

    Raises:
        FormError: located at the schema path (``properties/email/pattern``), with the fix.
    """
    from jsonschema import SchemaError

    try:
        validator = validator_of(schema)
        try:
            type(validator).check_schema(schema, format_checker=_formats_but_regex())
        except SchemaError as exc:
            where = "/".join(str(p) for p in exc.path) or "top level"
            raise FormError(f"{display}: not a valid JSON Schema at {where}: {exc.message}") from None
        _check_nodes(validator, schema, display)
    except RecursionError:
        raise FormError(f"{display}: the form is nested too deeply to check; flatten it") from None


@cache
def _formats_but_regex() -> Any:
    """The metaschema's format checks, less ``regex`` (Python's syntax): RE2 checks patterns, naming the feature."""
    from jsonschema import FormatChecker

    return FormatChecker([name for name in FormatChecker.checkers if name != "regex"])


def _refuse_retrieval(uri: str) -> Any:
    raise LookupError(f"flowrun fetches nothing, and {uri} is not part of the form")


def _check_nodes(validator: Any, schema: Mapping[str, Any], display: str) -> None:
    """References, nested ``$id``, patterns and reference cycles of every subschema."""
    resolver = validator._resolver  # the root resolver: every allowed pointer is relative to the form itself
    successors: dict[int, list[Any]] = {}
    where: dict[int, str] = {}
    uses = set()
    for path, node in _subschemas(schema, ()):
        at = "/".join(path) or "top level"
        where.setdefault(id(node), at)
        uses |= set(node)
        nexts = successors.setdefault(id(node), [])
        if path and isinstance(node.get("$id"), str):
            raise FormError(f"{display}: a $id at {at}; a form is one document, so give $id only at its top level")
        for key in _REFS:
            ref = node.get(key)
            if isinstance(ref, str):
                nexts.append(_target(resolver, key, ref, at, display))
        for key in _SAME_VALUE_LISTS:
            nexts += (
                [s for s in node.get(key) or () if isinstance(s, Mapping)] if isinstance(node.get(key), list) else []
            )
        nexts += [node[key] for key in _SAME_VALUE_ONE if isinstance(node.get(key), Mapping)]
        found = [(node["pattern"], "pattern")] if isinstance(node.get("pattern"), str) else []
        if isinstance(node.get("patternProperties"), Mapping):
            found += [(p, "patternProperties") for p in node["patternProperties"]]
        for pattern, keyword in found:
            reason = patterns.problem(str(pattern))
            if reason:
                raise FormError(f"{display}: at {'/'.join((*path, keyword))}: {reason}")
    if "unevaluatedProperties" in uses and "patternProperties" in uses:
        raise FormError(
            f"{display}: the form uses unevaluatedProperties together with patternProperties, which flowrun "
            "cannot check in bounded time; use additionalProperties instead"
        )
    _refuse_cycles(successors, where, display)


def _target(resolver: Any, key: str, ref: str, at: str, display: str) -> Any:
    from referencing.exceptions import Unresolvable

    fix = "a $ref may point only into the form itself, like #/$defs/address; copy the definition into the form"
    if not ref.startswith("#"):
        raise FormError(
            f"{display}: at {at}: {key} '{ref}' points outside the form, and flowrun fetches nothing; {fix}"
        )
    if key != "$ref":
        return None  # dynamic references resolve only while checking; a wrong one is a clean error then
    try:
        return resolver.lookup(ref).contents
    except Unresolvable:
        raise FormError(f"{display}: at {at}: $ref '{ref}' points to nothing in the form; {fix}") from None


def _subschemas(node: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    """Every object in schema position, with its path; data (``default``, ``enum``...) is not walked."""
    if isinstance(node, list):
        for i, value in enumerate(node):
            yield from _subschemas(value, (*path, str(i)))
        return
    if not isinstance(node, Mapping):
        return
    yield path, node
    for key, value in node.items():
        if key in _NAMED and isinstance(value, Mapping):  # names -> subschemas; a name is not a keyword
            for name, sub in value.items():
                yield from _subschemas(sub, (*path, str(key), str(name)))
        elif key not in _DATA and isinstance(value, (Mapping, list)):
            yield from _subschemas(value, (*path, str(key)))


def _refuse_cycles(successors: dict[int, list[Any]], where: dict[int, str], display: str) -> None:
    """A chain of ``$ref``/``allOf``/``not``... that comes back to where it began would recurse without end."""
    done: set[int] = set()
    for start in successors:
        if start in done:
            continue
        on_path: list[int] = []
        stack: list[tuple[int, Iterator[Any]]] = [(start, iter(successors.get(start, ())))]
        on_path.append(start)
        while stack:
            node, todo = stack[-1]
            nxt = next(todo, None)
            if nxt is None:
                stack.pop()
                on_path.pop()
                done.add(node)
                continue
            if not isinstance(nxt, Mapping) or id(nxt) in done:
                continue
            if id(nxt) in on_path:
                cycle = " -> ".join(where.get(n, "?") for n in on_path[on_path.index(id(nxt)) :])
                raise FormError(
                    f"{display}: the references at {cycle} lead back to {where.get(id(nxt), '?')} without reading "
                    "any data, so checking an answer would never end; break the cycle"
                )
            on_path.append(id(nxt))
            stack.append((id(nxt), iter(successors.get(id(nxt), ()))))


@cache
def _safe_class(base: type) -> Any:
    """``base`` with the keywords that match regular expressions replaced by RE2 versions."""
    from jsonschema.validators import extend

    mine = {"pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional}
    return extend(base, {k: v for k, v in mine.items() if k in base.VALIDATORS})  # type: ignore[attr-defined]


def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema import ValidationError

    if validator.is_type(instance, "string") and not patterns.search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, pattern_properties: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for key, value in instance.items():
            if patterns.search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional(validator: Any, additional: Any, instance: Any, schema: Any) -> Iterator[Any]:
    """jsonschema's ``additionalProperties``, with ``patternProperties`` matched by RE2."""
    from jsonschema import ValidationError

    if not validator.is_type(instance, "object"):
        return
    props = schema.get("properties", {})
    regexes = list(schema.get("patternProperties", {}))
    extras = sorted(
        (k for k in instance if k not in props and not any(patterns.search(p, k) for p in regexes)), key=str
    )
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if regexes:
            verb = "does" if len(extras) == 1 else "do"
            listed = ", ".join(repr(p) for p in sorted(regexes))
            yield ValidationError(f"{', '.join(repr(e) for e in extras)} {verb} not match any of the regexes: {listed}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(
                f"Additional properties are not allowed ({', '.join(repr(e) for e in extras)} {verb} unexpected)"
            )
