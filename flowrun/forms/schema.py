"""Forms as read: JSON Schema files from ``forms/`` and forms drawn inline in diagrams.

A user task names its form by ``camunda:formKey`` (a file name or path), by
SpiffArena's ``formJsonSchemaFilename``, or carries Camunda Modeler's generated
``camunda:formData`` fields, which are translated here into the same JSON
Schema (types, enum values, required, min, max, minlength, maxlength,
readonly). Either way the result is one :class:`~flowrun.models.Form`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flowrun.errors import FormError
from flowrun.forms import flat
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
    path = _find_form_file(key, forms_dir, root)
    display = _display(path, root)
    try:
        schema = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise FormError(f"{display}:{exc.lineno}: the form is not valid JSON ({exc.msg}); fix the file") from None
    except OSError as exc:
        raise FormError(f"cannot read the form {display}: {exc.strerror}") from None
    if not isinstance(schema, dict):
        raise FormError(f"{display}: a form must be a JSON Schema object")
    _check_schema(schema, display)
    return _form(schema, display)


def _find_form_file(key: str, forms_dir: Path, root: Path) -> Path:
    name = key.removeprefix("camunda-forms:deployment:").removeprefix("embedded:deployment:")
    tried: list[Path] = []
    for base in (forms_dir, root):
        for candidate in (name, f"{name}.json", f"{name}.schema.json"):
            path = base / candidate
            tried.append(path)
            if path.is_file():
                return path
    raise FormError(
        f"form '{key}' not found (looked for {_display(tried[0], root)} and the same name in the project "
        f"folder); create the JSON Schema file in {_display(forms_dir, root)}/ or fix camunda:formKey in the diagram"
    )


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _check_schema(schema: Mapping[str, Any], display: str) -> None:
    if flat.is_flat(schema):
        return  # every keyword of a flat form was checked for its type by is_flat
    from jsonschema import SchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "top level"
        raise FormError(f"{display}: not a valid JSON Schema at {where}: {exc.message}") from None


def _form(schema: Mapping[str, Any], source: str) -> Form:
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    fields = []
    for name, prop in props.items():
        if not isinstance(prop, Mapping):
            continue
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
