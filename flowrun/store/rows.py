"""Rows to records and back: the one place that knows how a record is laid out in its table.

JSON columns (instance data, a task's form, event details) are written compactly
with :func:`dumps` and read with :func:`loads`, which turns a column that is not
JSON (changed in the database, nested too deep to read) into one message; times go
through :class:`~flowrun.store.schema.UTCDateTime`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flowrun.errors import StoreError
from flowrun.models import ClaimInterval, EventRow, InboxRow, Incident, InstanceRecord, TaskRecord

#: Task columns an update may change (the others are fixed when the row is inserted).
UPDATABLE = {
    "status",
    "started_at",
    "completed_at",
    "actor",
    "ready_at",
    "waits_for",
    "due_at",
    "attempts",
    "deadline_at",
    "priority",
}


def dumps(value: Any) -> str:
    """``value`` as compact JSON text (values JSON does not know become text)."""
    return json.dumps(value, separators=(",", ":"), default=str)


def loads(text: str, what: str) -> Any:
    """A JSON column's value; ``what`` names the column in the message.

    Raises:
        StoreError: the text is not JSON flowrun can read (flowrun never stores such text).
    """
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        reason = "it is nested too deep" if isinstance(exc, RecursionError) else str(exc)
        raise StoreError(
            f"{what} in the database is not readable JSON ({reason}); flowrun never stores such text, so it was "
            "changed in the database: restore the database from a backup"
        ) from None


def instance_values(rec: InstanceRecord, now: datetime) -> dict[str, Any]:
    """The ``instances`` row of a new instance, updated at ``now``."""
    return {
        "id": rec.id,
        "family": rec.family,
        "variant": rec.variant,
        "file": rec.file,
        "sha256": rec.sha256,
        "process_id": rec.process_id,
        "pilot": rec.pilot,
        "status": rec.status,
        "created_at": rec.created_at,
        "ended_at": rec.ended_at,
        "updated_at": now,
        "version": rec.version,
        "data": dumps(rec.data),
        "state": rec.state or "",
        "error": rec.error,
        "business_key": rec.business_key,
    }


def instance_from_row(row: Any) -> InstanceRecord:
    """An ``instances`` row (a mapping; ``state`` may be left out of the select)."""
    return InstanceRecord(
        id=row["id"],
        family=row["family"],
        variant=row["variant"],
        file=row["file"],
        sha256=row["sha256"],
        process_id=row["process_id"],
        pilot=row["pilot"],
        status=row["status"],
        created_at=row["created_at"],
        ended_at=row["ended_at"],
        version=row["version"],
        data=loads(row["data"] or "{}", f"the data of instance {str(row['id'])[:8]}"),
        state=row.get("state"),
        error=row["error"],
        business_key=row["business_key"],
    )


def task_values(rec: TaskRecord) -> dict[str, Any]:
    """The ``tasks`` columns of a record, without its ``instance_id`` and ``id`` (the ref)."""
    return {
        "task_id": rec.task_id,
        "bpmn_id": rec.bpmn_id,
        "name": rec.name,
        "type": rec.type,
        "lane": rec.lane,
        "status": rec.status,
        "ready_at": rec.ready_at,
        "started_at": rec.started_at,
        "completed_at": rec.completed_at,
        "actor": rec.actor,
        "form": dumps(rec.form) if rec.form is not None else None,
        "waits_for": rec.waits_for,
        "due_at": rec.due_at,
        "attempts": rec.attempts,
        "assignee": rec.assignee,
        "candidates": candidates_text(rec.candidates),
        "deadline_at": rec.deadline_at,
        "priority": rec.priority,
    }


def candidates_text(candidates: dict[str, list[str]] | None) -> str | None:
    """A task's candidates as stored: ``{"users": [...], "groups": [...]}``, groups last.

    Groups come last so that :meth:`flowrun.store.Tx.inbox` can find a group with a
    ``LIKE '%"groups":[%"NAME"%'`` on every database (nothing after the groups list).
    """
    if candidates is None:
        return None
    return dumps({"users": list(candidates.get("users", [])), "groups": list(candidates.get("groups", []))})


def task_from_row(row: Any) -> TaskRecord:
    """A ``tasks`` row (a mapping) as a record; its ``id`` becomes the ``ref``."""
    return TaskRecord(
        task_id=row["task_id"],
        bpmn_id=row["bpmn_id"],
        name=row["name"],
        type=row["type"],
        lane=row["lane"],
        status=row["status"],
        ready_at=row["ready_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        actor=row["actor"],
        form=loads(row["form"], f"the form of task {row['id']}") if row["form"] else None,
        ref=int(row["id"]),
        instance_id=row["instance_id"],
        waits_for=row["waits_for"],
        due_at=row["due_at"],
        attempts=row["attempts"] or 0,
        deadline_at=row["deadline_at"],
        priority=row["priority"],
        assignee=row["assignee"],
        candidates=loads(row["candidates"], f"the candidates of task {row['id']}") if row["candidates"] else None,
    )


def claim_from_row(row: Any) -> ClaimInterval:
    """A ``claims`` row (a mapping)."""
    return ClaimInterval(
        task_ref=int(row["task_ref"]),
        actor=row["actor"],
        claimed_at=row["claimed_at"],
        released_at=row["released_at"],
        outcome=row["outcome"],
    )


def incident_from_row(row: Any) -> Incident:
    """An ``incidents`` row (a mapping)."""
    return Incident(
        id=int(row["id"]),
        instance=row["instance_id"],
        task_ref=row["task_ref"],
        task_id=row["task_id"],
        topic=row["topic"],
        error_type=row["error_type"],
        message=row["message"],
        attempts=row["attempts"],
        created_at=row["created_at"],
        resolved_at=row["resolved_at"],
    )


def inbox_from_row(row: Any) -> InboxRow:
    """A row of :meth:`flowrun.store.Tx.inbox`'s select, in its column order (the case data last, if selected)."""
    ref, instance, task, name, lane, ready_at, started_at, actor, family, variant, pilot, key, deadline, prio = row[:14]
    data = loads(row[14] or "{}", f"the data of instance {str(instance)[:8]}") if len(row) > 14 else None
    return InboxRow(
        int(ref),
        instance,
        task,
        name,
        lane,
        family,
        variant,
        pilot,
        ready_at,
        started_at,
        actor,
        key,
        deadline,
        prio,
        data if isinstance(data, dict) or data is None else {},
    )


def event_values(event: EventRow) -> dict[str, Any]:
    """The ``events`` row of an event (its ``detail`` as JSON text)."""
    return {
        "instance_id": event.instance_id,
        "task_ref": event.task_ref,
        "at": event.at,
        "kind": event.kind,
        "actor": event.actor,
        "detail": dumps(event.detail) if event.detail is not None else None,
    }


def event_from_row(row: Any) -> EventRow:
    """An ``events`` row (a mapping)."""
    return EventRow(
        instance_id=row["instance_id"],
        task_ref=row["task_ref"],
        at=row["at"],
        kind=row["kind"],
        actor=row["actor"],
        detail=loads(row["detail"], f"an event of instance {str(row['instance_id'])[:8]}") if row["detail"] else None,
    )
