"""User task forms: JSON Schema files from ``forms/`` and forms drawn inline in diagrams.

A user task names its form by ``camunda:formKey`` (a file name or path), by
SpiffArena's ``formJsonSchemaFilename``, or carries Camunda Modeler's generated
``camunda:formData`` fields, which are translated into the same JSON Schema
(:mod:`~flowrun.forms.schema`). Data is coerced and checked against the form
before the engine is touched (:mod:`~flowrun.forms.data`), flat forms by a fast
path of their own (:mod:`~flowrun.forms.flat`).
"""

from flowrun.forms.data import check_field, coerce, coerce_value, validate
from flowrun.forms.schema import resolve_form, schema_from_camunda
from flowrun.models import Form, FormField

__all__ = [
    "Form",
    "FormField",
    "check_field",
    "coerce",
    "coerce_value",
    "resolve_form",
    "schema_from_camunda",
    "validate",
]
