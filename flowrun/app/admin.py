"""Case administration: cancelling a case, and what happened to a whole case for ``flowrun history``.

Moving cases to a fixed diagram is :mod:`flowrun.app.migration`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowrun.app.logs import IMPORTED_PROCESS_ID
from flowrun.app.project import Project
from flowrun.app.views import resolve_instance
from flowrun.clock import human
from flowrun.errors import DataError, NotFoundError, StateError
from flowrun.models import (
    INSTANCE_CANCELLED,
    INSTANCE_COMPLETED,
    READY,
    STARTED,
    WAITING,
    CaseNote,
    EventRow,
    InstanceRecord,
)

if TYPE_CHECKING:
    pass

#: The event kinds that are about a whole case, as ``flowrun history`` lists them below the tasks.
CASE_EVENTS = ("instance_cancelled", "instance_migrated")

#: Longest cancellation reason kept (a sentence or two, not a document).
MAX_REASON = 2000


def cancel(project: Project, instance: str, reason: str, actor: str | None = None) -> InstanceRecord:
    """End a running (or failed) case as ``cancelled``, for ``reason``.

    Its open tasks are closed as cancelled, open claims end with outcome ``cancelled``,
    open incidents are resolved, and the reason goes to the event log (``instance_cancelled``)
    and to the case's ``error`` text, which ``show``, ``history`` and the exports show.
    A step being run on the case meanwhile is not saved (the case's version moves on).

    Raises:
        DataError: no reason was given.
        NotFoundError: no such case.
        StateError: the case has already ended.
    """
    text = " ".join(reason.split())
    if not text:
        raise DataError("say why the case is cancelled: --reason TEXT")
    if len(text) > MAX_REASON:
        raise DataError(f"the reason is {len(text)} characters long; keep it under {MAX_REASON}")
    now = project.clock.now()
    with project.store.write() as tx:
        iid = resolve_instance(tx, instance)
        rec = tx.get_instance(iid)
        if rec is None:
            raise NotFoundError(f"instance {iid[:8]} is missing")
        _check_cancellable(rec)
        open_tasks = [t for t in tx.instance_tasks(iid) if t.status in (READY, STARTED, WAITING)]
        if not tx.cancel_instance(iid, text, now):
            raise StateError(f"instance {iid[:8]} ended meanwhile; see 'flowrun show {iid[:8]}'")
        events = [EventRow(iid, None, now, "instance_cancelled", actor, {"reason": text})]
        events += [
            EventRow(iid, t.ref, now, "cancelled", actor, {"task": t.bpmn_id, "name": t.name}) for t in open_tasks
        ]
        tx.add_events(events)
    rec.status, rec.ended_at, rec.error = INSTANCE_CANCELLED, now, text
    return rec


def _check_cancellable(rec: InstanceRecord) -> None:
    if rec.status == INSTANCE_CANCELLED:
        raise StateError(f"instance {rec.id[:8]} was already cancelled: {rec.error or 'no reason given'}")
    if rec.status == INSTANCE_COMPLETED:
        when = human(rec.ended_at) if rec.ended_at else "an unknown time"
        raise StateError(f"instance {rec.id[:8]} completed at {when}; only running or failed cases can be cancelled")
    if rec.process_id == IMPORTED_PROCESS_ID:
        raise StateError(f"instance {rec.id[:8]} was imported from an event log; imported cases cannot be cancelled")


def case_notes(project: Project, instance_id: str) -> list[CaseNote]:
    """What happened to the whole case (cancelled, migrated), oldest first, in words."""
    with project.store.read() as tx:
        rows = [e for e in tx.instance_events(instance_id) if e.kind in CASE_EVENTS]
    return [CaseNote(e.at, e.kind, e.actor, _note_text(e)) for e in rows]


def _note_text(event: EventRow) -> str:
    detail = event.detail if isinstance(event.detail, dict) else {}
    who = f" by {event.actor}" if event.actor else ""
    if event.kind == "instance_cancelled":
        return f"cancelled{who}: {detail.get('reason', '')}"
    moved = f"migrated{who} from model {str(detail.get('from', ''))[:12]} to {str(detail.get('to', ''))[:12]}"
    parts = [f"{k} {', '.join(detail[k])}" for k in ("added", "removed", "changed") if detail.get(k)]
    return moved + (f" ({'; '.join(parts)})" if parts else " (no element changed)")
