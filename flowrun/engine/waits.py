"""What an instance waits for: user tasks, timers, messages, signals, service jobs, and when each is due.

Read from SpiffWorkflow's waiting tasks and their event definitions; the
recorder (:mod:`flowrun.engine.lives`) puts :func:`waits` into each waiting
task's record, and :meth:`Run.waiting_for <flowrun.engine.runner.Run.waiting_for>`
lists them.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from SpiffWorkflow.util.task import TaskState

from flowrun.clock import Clock
from flowrun.engine.specs import JOB_KEY
from flowrun.models import Wait


def waiting_for(workflow: Any) -> list[Wait]:
    """What ``workflow`` waits for: ready user tasks, timers (``due`` when it is a time), messages, signals."""
    out: list[Wait] = []
    for task in workflow.get_tasks(state=TaskState.READY, manual=True):
        spec = task.task_spec
        out.append(Wait("task", task=spec.bpmn_id, name=spec.bpmn_name, lane=spec.lane))
    for event in workflow.waiting_events():
        kind = str(getattr(event, "event_type", "event")).replace("EventDefinition", "").lower()
        due = as_time(getattr(event, "value", None))
        out.append(Wait(kind or "event", name=getattr(event, "name", None), due=due))
    return out


def waits(task: Any) -> tuple[str | None, datetime | None]:
    """What a waiting task waits for (``timer``, ``message:NAME``, ``signal:NAME``, ...) and when it is due.

    A task waiting for several events (an event-based gateway, a multiple event)
    waits for ``"message:NAME|timer"``, due when its earliest timer is.
    """
    definition = getattr(task.task_spec, "event_definition", None)
    if definition is None:
        return None, None
    parts = getattr(definition, "event_definitions", None)
    if parts:
        found = [_wait(task, part) for part in parts]
        kinds = sorted({k for k, _ in found if k})
        dues = [d for _, d in found if d is not None]
        return "|".join(kinds) or None, min(dues) if dues else None
    return _wait(task, definition)


def _wait(task: Any, definition: Any) -> tuple[str | None, datetime | None]:
    try:
        pending = definition.details(task)
    except Exception:  # noqa: BLE001 - details of exotic events; waiting without a name is fine
        return "event", None
    kind = str(getattr(pending, "event_type", "") or definition.__class__.__name__)
    name = getattr(pending, "name", None)
    value = getattr(pending, "value", None)
    if "Timer" in kind or "TimeDate" in kind:
        return "timer", as_time(value)
    for prefix, label in (
        ("Message", "message"),
        ("Signal", "signal"),
        ("Error", "error"),
        ("Escalation", "escalation"),
    ):
        if kind.startswith(prefix):
            return f"{label}:{name}", None
    if kind.startswith("Conditional"):
        return "condition", None
    return camel(kind.replace("EventDefinition", "")) or "event", None


def job_due(task: Any, now: datetime) -> bool:
    """True when ``task`` is a service job due by ``now`` (not an incident)."""
    job = task.internal_data.get(JOB_KEY) or {}
    due = as_time(job.get("due"))
    return not job.get("incident") and due is not None and due <= now


def timer_state(workflow: Any) -> list[tuple[str, int, str]]:
    """The state of every task waiting for an event, to tell whether refreshing the timers fired one."""
    return [
        (str(t.id), t.state, json.dumps(t.internal_data.get("event_value"), default=str, sort_keys=True))
        for t in workflow.event_manager.tasks.values()
    ]


class Later:
    """A clock a microsecond ahead, so that a timer due now counts as passed."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> datetime:
        return self._clock.now() + timedelta(microseconds=1)


def as_time(value: Any) -> datetime | None:
    """``value`` (a datetime or ISO 8601 text) as an aware datetime (naive means UTC); None otherwise."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def camel(text: str) -> str:
    """``"Intermediate Catch Event"`` -> ``"intermediateCatchEvent"`` (``"task"`` for no words)."""
    words: list[str] = re.findall(r"[A-Za-z0-9]+", text)
    if not words:
        return "task"
    return words[0].lower() + "".join(w[:1].upper() + w[1:] for w in words[1:])
