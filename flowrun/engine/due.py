"""A user task's due date and priority, read from its diagram when the task becomes ready.

* ``camunda:dueDate``: an ISO 8601 date and time (``2026-03-01T17:00:00Z``; without an
  offset, the machine's time zone), an ISO 8601 duration counted from the moment the task
  is ready (``P2D``, ``PT4H``), or a ``${...}`` expression giving either (or a datetime).
* else the earliest timer on the task's boundary: the escalation deadline.
* ``camunda:priority``: a whole number or a ``${...}`` expression giving one; higher is
  more urgent (Camunda's convention).

An expression that fails at run time (a variable the case lacks) leaves the task without
a due date or priority rather than stopping the case; one that cannot be translated is
refused when the diagram is loaded (see :func:`parse_value`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flowrun.engine import el
from flowrun.engine.specs import DUE_KEY, PRIORITY_KEY
from flowrun.engine.timers import get_datetime, parse_duration, timedelta_from_start
from flowrun.engine.waits import as_time, waits


def parse_value(text: str | None) -> dict[str, str] | None:
    """A ``camunda:dueDate`` or ``camunda:priority`` attribute as stored in the task spec.

    Returns:
        ``{"text": TEXT}`` for a value, ``{"text": TEXT, "python": SOURCE}`` for an expression; None when absent.

    Raises:
        ValueError: a ``${...}`` expression that flowrun cannot translate (the reason says why).
    """
    value = (text or "").strip()
    if not value:
        return None
    if value.startswith(("${", "#{")):
        return {"text": value, "python": el.translate(value)}
    return {"text": value}


def deadline(task: Any, now: datetime) -> datetime | None:
    """When ``task`` (ready ``now``) is due: its ``camunda:dueDate``, else its earliest boundary timer."""
    ext = getattr(task.task_spec, "extensions", None) or {}
    given = _value(task, ext.get(DUE_KEY))
    if given is not None:
        return _as_deadline(given, now)
    return _boundary_timer(task)


def priority(task: Any) -> int | None:
    """``task``'s ``camunda:priority`` as a whole number; None when absent or not a number."""
    ext = getattr(task.task_spec, "extensions", None) or {}
    value = _value(task, ext.get(PRIORITY_KEY))
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit() and len(value.strip()) < 19:
        return int(value.strip())
    return None


def _value(task: Any, stored: dict[str, str] | None) -> Any:
    if not stored:
        return None
    source = stored.get("python")
    if source is None:
        return stored["text"]
    try:
        return task.workflow.script_engine.environment.evaluate(source, task.data)
    except Exception:  # noqa: BLE001 - a failing due date or priority must not stop the case (module docstring)
        return None


def _as_deadline(value: Any, now: datetime) -> datetime | None:
    if isinstance(value, datetime):
        return as_time(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if text[:1] in ("P", "p"):
            return now + timedelta_from_start(parse_duration(text.upper()), now)
        return get_datetime(text.replace("Z", "+00:00"))
    except Exception:  # noqa: BLE001 - SpiffWorkflow's duration parser raises plain exceptions
        return None


def _boundary_timer(task: Any) -> datetime | None:
    """The earliest due timer among the events on ``task``'s boundary (its escalation deadline)."""
    parent = task.parent
    if parent is None or type(parent.task_spec).__name__ != "BoundaryEventSplit":
        return None
    dues = []
    for sibling in parent.children:
        if sibling is task:
            continue
        kind, due = waits(sibling)
        if due is not None and kind and "timer" in kind.split("|"):
            dues.append(due)
    return min(dues) if dues else None


__all__ = ["deadline", "parse_value", "priority"]
