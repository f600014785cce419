"""Who may take a user task: ``camunda:assignee``, ``candidateUsers`` and ``candidateGroups``.

The parser (:mod:`flowrun.engine._parser`) reads the three attributes with :func:`read_assignment`
into the task spec's extensions: a plain value or comma list is kept as its names, a ``${...}``
expression is translated to Python once (:func:`flowrun.engine.el.translate`). When the task
becomes ready, :func:`who_may_take` evaluates the expressions with the case data in flowrun's
sandbox (through the workflow's script engine), so the names are fixed from then on.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException

from flowrun.engine import el
from flowrun.errors import ScriptError

#: The extensions key of a user task's assignment (see :func:`read_assignment`).
ASSIGNMENT_KEY = "flowrun:assignment"

_CAMUNDA = "{http://camunda.org/schema/1.0/bpmn}"

#: Camunda's attribute -> the key it is kept under.
_ATTRIBUTES = {"assignee": "assignee", "candidateUsers": "users", "candidateGroups": "groups"}


def read_assignment(node: Any) -> dict[str, dict[str, Any]] | None:
    """The assignment attributes of a ``userTask`` element; None when it has none.

    Each present attribute becomes ``{"names": [...]}`` (a value or comma list) or
    ``{"expression": PYTHON, "text": ORIGINAL}`` (a ``${...}`` or ``#{...}`` expression).

    Raises:
        ValueError: an expression flowrun cannot translate; the message says why.
    """
    out: dict[str, dict[str, Any]] = {}
    for attribute, key in _ATTRIBUTES.items():
        text = (node.get(_CAMUNDA + attribute) or "").strip()
        if not text:
            continue
        if text.startswith(("${", "#{")) and text.endswith("}"):
            try:
                out[key] = {"expression": el.translate(text), "text": text}
            except ValueError as exc:
                raise ValueError(f"camunda:{attribute} {text} cannot be translated: {exc}") from None
        else:
            out[key] = {"names": names(text)}
    return out or None


def names(value: Any) -> list[str]:
    """A comma list (or a list of texts) as names, blanks dropped, order kept, each once."""
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return list(dict.fromkeys(str(x).strip() for x in items if x is not None and str(x).strip()))


def who_may_take(task: Any) -> tuple[str | None, dict[str, list[str]] | None]:
    """``(assignee, candidates)`` of a user task that just became ready, expressions evaluated now.

    ``candidates`` is ``{"users": [...], "groups": [...]}``, or None when the diagram names
    none (then anyone may take the task, unless it has an assignee).

    Raises:
        ScriptError: an expression failed, or gave something that is not a name or a list of names.
    """
    spec = task.task_spec
    found = (getattr(spec, "extensions", None) or {}).get(ASSIGNMENT_KEY)
    if not found:
        return None, None
    values = {key: _names_of(task, key, entry) for key, entry in found.items()}
    assignee = values.pop("assignee", [])
    if len(assignee) > 1:
        raise ScriptError(
            f"user task {spec.bpmn_id}: camunda:assignee names {len(assignee)} people ({', '.join(assignee)}); "
            "name one, or list them in camunda:candidateUsers"
        )
    candidates = {"users": values.get("users", []), "groups": values.get("groups", [])} if values else None
    return (assignee[0] if assignee else None), candidates


def _names_of(task: Any, key: str, entry: dict[str, Any]) -> list[str]:
    if "names" in entry:
        return list(entry["names"])
    attribute = next(a for a, k in _ATTRIBUTES.items() if k == key)
    where = f"user task {task.task_spec.bpmn_id}: camunda:{attribute} {entry['text']}"
    try:
        value = task.workflow.top_workflow.script_engine.evaluate(task, entry["expression"])
    except WorkflowTaskException as exc:
        reason = str(exc).strip().rstrip(".")
        raise ScriptError(f"{where} failed: {reason}; check the expression and the case data it reads") from None
    if value is None:
        return []
    if not (isinstance(value, str) or (isinstance(value, list | tuple) and all(isinstance(v, str) for v in value))):
        raise ScriptError(f"{where} gave {type(value).__name__} {str(value)[:40]!r}; it must give a name or a list")
    return names(value)
