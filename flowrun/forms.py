"""User task forms: JSON Schema files from ``forms/`` and forms drawn inline in diagrams.

A user task names its form by ``camunda:formKey`` (a file name or path), by
SpiffArena's ``formJsonSchemaFilename``, or carries Camunda Modeler's generated
``camunda:formData`` fields, which are translated here into the same JSON
Schema (types, enum values, required, min, max, minlength, maxlength,
readonly). Data is checked against the form before the engine is touched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flowrun import _flatschema
from flowrun.errors import DataError, FormError
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
    if _flatschema.is_flat(schema):
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
    if _flatschema.is_flat(schema):
        return _flatschema.problems(schema, data)
    from jsonschema.validators import validator_for

    out = []
    for err in validator_for(schema)(schema).iter_errors(data):
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
    if _flatschema.is_flat(form.schema):
        return [message for _, message in _flatschema.field_problems(prop, value)]
    from jsonschema.validators import validator_for

    mini = {"type": "object", "properties": {name: prop}}
    if "$schema" in form.schema:
        mini["$schema"] = form.schema["$schema"]
    validator = validator_for(mini)(mini)
    return [err.message for err in validator.iter_errors({name: value})]
