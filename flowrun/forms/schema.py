"""Forms as read: JSON Schema files from ``forms/`` and forms drawn inline in diagrams.

A user task names its form by ``camunda:formKey`` (a file name or path), by
SpiffArena's ``formJsonSchemaFilename``, or carries Camunda Modeler's generated
``camunda:formData`` fields, which are translated here into the same JSON
Schema (types, enum values, required, min, max, minlength, maxlength,
readonly). Either way the result is one :class:`~flowrun.models.Form`.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flowrun.config import PathRefused, inside
from flowrun.errors import FormError
from flowrun.forms import flat, validator
from flowrun.forms.data import coerce_value
from flowrun.models import Form, FormField

_CAMUNDA_TYPES = {"string": "string", "long": "integer", "boolean": "boolean", "enum": "string", "date": "string"}


def resolve_form(ref: Mapping[str, Any] | None, forms_dir: Path, root: Path) -> Form | None:
    """The :class:`Form` a task's form reference points to, or None for a task without a form.

    Raises:
        FormError: the form file is missing, unreadable or not a valid JSON Schema.
    """
    if not ref:
        return None
    if ref.get("fields"):
        schema = schema_from_camunda(ref["fields"])
        return _form(schema, "the form drawn in the diagram")
    key = str(ref.get("key") or "")
    if not key:
        return None
    path = _find_form_file(key, str(ref.get("attribute") or "the form key"), forms_dir, root)
    display = _display(path, root)
    schema = _read_json(path, display)
    if not isinstance(schema, dict):
        raise FormError(f"{display}: a form must be a JSON Schema object")
    _check_schema(schema, display)
    return _form(schema, display)


#: Larger form files are refused unread (a generated form of a hundred fields is about 30 KB).
MAX_FORM_BYTES = 1024 * 1024


def _read_json(path: Path, display: str) -> Any:
    """The JSON of a form file, read without following a link again and refusing all but small plain files."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FormError(f"cannot read the form {display}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise FormError(f"{display}: the form is not a plain file; make it a JSON file")
        if info.st_size > MAX_FORM_BYTES:
            raise FormError(
                f"{display}: the form is {info.st_size // 1024} KiB, more than the {MAX_FORM_BYTES // 1024} KiB "
                "flowrun reads for one form; make it smaller"
            )
        data = stream.read(MAX_FORM_BYTES + 1)
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise FormError(f"{display}:{exc.lineno}: the form is not valid JSON ({exc.msg}); fix the file") from None
    except (RecursionError, ValueError) as exc:
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise FormError(f"{display}: the form cannot be read as JSON ({reason}); fix the file") from None


def _find_form_file(key: str, attribute: str, forms_dir: Path, root: Path) -> Path:
    """The form file a key names: in forms/, then in the project folder; never outside the project."""
    name = key.removeprefix("camunda-forms:deployment:").removeprefix("embedded:deployment:")
    tried: list[Path] = []
    for base in (forms_dir, root):
        for candidate in (name, f"{name}.json", f"{name}.schema.json"):
            try:
                path = inside(base, candidate, within=root, what="the project")
            except PathRefused as exc:
                raise FormError(
                    f"{attribute} '{key}' {exc.reason}, so flowrun opens nothing for it; forms are looked up in "
                    f"{_display(forms_dir, root)}/ of the project: move the file there and name it by its file name"
                ) from None
            tried.append(path)
            try:
                if path.is_file():
                    return path
            except OSError as exc:  # a name too long for the file system, say
                raise FormError(
                    f"{attribute} '{key[:80]}' cannot be looked up ({exc.strerror}); name the form by its file name"
                ) from None
    raise FormError(
        f"form '{key}' not found (looked for {_display(tried[0], root)} and the same name in the project "
        f"folder); create the JSON Schema file in {_display(forms_dir, root)}/ or fix {attribute} in the diagram"
    )


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _check_schema(schema: Mapping[str, Any], display: str) -> None:
    if flat.is_flat(schema):
        return  # every keyword of a flat form was checked for its type by is_flat, its patterns by RE2
    validator.check(schema, display)


def _form(schema: Mapping[str, Any], source: str) -> Form:
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    fields = []
    for name, prop in props.items():
        if not isinstance(prop, Mapping):
            continue
        prop = {**_referred(schema, prop), **prop}
        kind = prop.get("type", "string")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        choices = prop.get("enum")
        fields.append(
            FormField(
                name=name,
                label=str(prop.get("title") or name),
                type=str(kind),
                required=name in required,
                description=prop.get("description"),
                choices=tuple(choices) if isinstance(choices, list) else None,
                default=prop.get("default"),
                has_default="default" in prop,
                minimum=prop.get("minimum"),
                maximum=prop.get("maximum"),
                readonly=bool(prop.get("readOnly")),
            )
        )
    return Form(title=str(schema.get("title") or ""), source=source, schema=schema, fields=tuple(fields))


def _referred(schema: Mapping[str, Any], prop: Mapping[str, Any]) -> Mapping[str, Any]:
    """What a field's local ``$ref`` (``#/$defs/amount``) points to, for its type, title and default; else {}."""
    target: Any = prop
    for _ in range(8):  # a chain of references; a longer one is left to the checker, which refuses cycles
        ref = target.get("$ref") if isinstance(target, Mapping) else None
        if not isinstance(ref, str) or not ref.startswith("#/"):
            break
        target = schema
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, Mapping) else None
    if target is prop or not isinstance(target, Mapping):
        return {}
    return {k: v for k, v in target.items() if k != "$ref"}


def schema_from_camunda(fields: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Translate Camunda Modeler's generated form fields into a JSON Schema."""
    props: dict[str, Any] = {}
    required: list[str] = []
    for f in fields:
        fid = str(f.get("id") or "")
        if not fid:
            continue
        ftype = str(f.get("type") or "string")
        prop: dict[str, Any] = {"type": _CAMUNDA_TYPES.get(ftype, "string"), "title": f.get("label") or fid}
        if ftype == "enum":
            prop["enum"] = [v["id"] for v in f.get("values") or []]
        if ftype == "date":
            prop["format"] = "date"
            prop["pattern"] = r"^\d{4}-\d{2}-\d{2}$"
        default = f.get("default")
        if default not in (None, ""):
            prop["default"] = _typed(default, prop["type"])
        rules = f.get("validation") or {}
        number = prop["type"] in ("integer", "number")
        for rule, config in rules.items():
            if rule == "required":
                required.append(fid)
            elif rule == "readonly":
                prop["readOnly"] = True
            elif rule == "min" and config is not None:
                prop["minimum" if number else "minLength"] = _typed(config, "number")
            elif rule == "max" and config is not None:
                prop["maximum" if number else "maxLength"] = _typed(config, "number")
            elif rule == "minlength" and config is not None:
                prop["minLength"] = int(float(config))
            elif rule == "maxlength" and config is not None:
                prop["maxLength"] = int(float(config))
        props[fid] = prop
    return {"type": "object", "properties": props, "required": required}


def _typed(value: Any, kind: str) -> Any:
    try:
        return coerce_value(str(value), kind)
    except ValueError:
        return value
