"""The SQL behind event logs: stream task rows out for export, insert imported cases in bulk.

Export reads plain tuples in one ordered query, without the ORM and without the
per-value :class:`~flowrun.store.schema.UTCDateTime` conversion: on SQLite the
stored UTC text is turned into ISO 8601 by SQLite itself, elsewhere a small
Python step formats the driver's datetimes. The column order is
:data:`flowrun.models.LOG_COLUMNS`, which the writers of ``flowrun.eventlog`` index by.

Imported cases come from outside flowrun and cannot be stepped: their open tasks
are stored as ``waiting`` for ``imported:<status>``, so that the operators' inbox,
``flowrun do`` and the worker leave them alone, and export gives back the status
they were imported with.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import String, and_, case, func, insert, literal_column, or_, select
from sqlalchemy.sql.elements import ColumnElement

from flowrun.models import INSTANCE_CANCELLED, READY, STARTED, WAITING, InstanceRecord, TaskRecord
from flowrun.store.rows import instance_values, task_values
from flowrun.store.schema import instances, tasks
from flowrun.store.sql import Tx

#: ``waits_for`` of an imported task that was still open; the original status follows.
IMPORTED_WAIT = "imported:"

#: Process id of the stand-in model row every imported source gets (its spec is ``{}``).
IMPORTED_PROCESS_ID = "imported"

_TIMES = slice(4, 7)
_Case = tuple[InstanceRecord, Sequence[TaskRecord]]
_BATCH = 5000


def task_log_rows(
    tx: Tx,
    process: str | None = None,
    variant: str | None = None,
    pilot: str | None = None,
    sql_times: bool | None = None,
) -> Iterator[tuple[Any, ...]]:
    """Every recorded task of the matching instances, grouped by case, oldest case first.

    Tasks without any time are left out. Times are ISO 8601 text with offset, or None.

    Args:
        tx: an open (read) transaction; rows stream while it stays open.
        process, variant, pilot: keep only instances of this family, variant, pilot.
        sql_times: format times in SQL (default: on SQLite); False formats them in Python.
    """
    if sql_times is None:
        sql_times = tx.conn.dialect.name == "sqlite"
    query = (
        select(
            instances.c.id,
            tasks.c.name,
            tasks.c.lane,
            tasks.c.actor,
            *(_time_text(c, sql_times) for c in (tasks.c.ready_at, tasks.c.started_at, tasks.c.completed_at)),
            tasks.c.bpmn_id,
            tasks.c.type,
            _export_status(),
            instances.c.family,
            instances.c.variant,
            instances.c.pilot,
            instances.c.sha256,
            tasks.c.id,
        )
        .select_from(instances.join(tasks, tasks.c.instance_id == instances.c.id))
        .where(or_(tasks.c.ready_at.is_not(None), tasks.c.started_at.is_not(None), tasks.c.completed_at.is_not(None)))
        .order_by(instances.c.created_at, instances.c.id, tasks.c.id)
    )
    for column, value in ((instances.c.family, process), (instances.c.variant, variant), (instances.c.pilot, pilot)):
        if value is not None:
            query = query.where(column == value)
    result = tx.conn.execute(query.execution_options(stream_results=True))
    if sql_times:
        for batch in result.partitions(_BATCH):
            yield from batch
    else:
        for batch in result.partitions(_BATCH):
            yield from (_with_iso_times(row) for row in batch)


def case_data_rows(
    tx: Tx, process: str | None = None, variant: str | None = None, pilot: str | None = None
) -> Iterator[tuple[str, str, str | None]]:
    """``(instance id, data as JSON text, business key)`` of the instances :func:`task_log_rows` exports.

    The filters are :func:`task_log_rows`'s.

    One row per instance (not per task), so an export reads each case's data once
    instead of repeating it on every task row of a million-row log.
    """
    has_task = (
        select(tasks.c.id)
        .where(tasks.c.instance_id == instances.c.id)
        .where(or_(tasks.c.ready_at.is_not(None), tasks.c.started_at.is_not(None), tasks.c.completed_at.is_not(None)))
        .exists()
    )
    query = (
        select(instances.c.id, instances.c.data, instances.c.business_key, instances.c.status, instances.c.error)
        .where(has_task)
        .order_by(instances.c.created_at, instances.c.id)
    )
    for column, value in ((instances.c.family, process), (instances.c.variant, variant), (instances.c.pilot, pilot)):
        if value is not None:
            query = query.where(column == value)
    for batch in tx.conn.execute(query.execution_options(stream_results=True)).partitions(_BATCH):
        for iid, data, key, status, error in batch:
            yield str(iid), str(data) if status != INSTANCE_CANCELLED else _cancelled(str(data), error), key


def _cancelled(data: str, reason: str | None) -> str:
    """A cancelled case's data with ``case_status`` and ``cancel_reason``, so every export says why it ended."""
    values = json.loads(data)
    values.update(case_status=INSTANCE_CANCELLED, cancel_reason=reason or "")
    return json.dumps(values)


def _time_text(column: Any, sql_times: bool) -> ColumnElement[Any]:
    if not sql_times:
        return column  # type: ignore[no-any-return]
    # SQLite stores whole microseconds since 1970 (schema.UTCDateTime); this is Python's
    # datetime.isoformat() of it in SQL: seconds floored (also before 1970), ".ffffff" unless 0.
    name = f"{column.table.name}.{column.name}"
    frac = f"((({name} % 1000000) + 1000000) % 1000000)"
    text = (
        f"CASE WHEN {name} IS NULL THEN NULL ELSE "
        f"strftime('%Y-%m-%dT%H:%M:%S', ({name} - {frac}) / 1000000, 'unixepoch') "
        f"|| CASE WHEN {frac} = 0 THEN '' ELSE '.' || printf('%06d', {frac}) END || '+00:00' END"
    )
    return literal_column(text, String)


def _export_status() -> ColumnElement[Any]:
    parked = and_(tasks.c.status == WAITING, tasks.c.waits_for.like(IMPORTED_WAIT + "%"))
    return case((parked, func.substr(tasks.c.waits_for, len(IMPORTED_WAIT) + 1)), else_=tasks.c.status)


def _with_iso_times(row: Sequence[Any]) -> tuple[Any, ...]:
    values = list(row)
    values[_TIMES] = [_iso(v) for v in values[_TIMES]]
    return tuple(values)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat()


def instance_families(tx: Tx) -> list[str]:
    """The process families that have instances in the store, sorted."""
    return sorted(r[0] for r in tx.conn.execute(select(instances.c.family).distinct()))


def count_imported(tx: Tx, sha256: str) -> int:
    """How many instances were imported from the source whose stand-in model is ``sha256``."""
    return int(tx.conn.execute(select(func.count()).where(instances.c.sha256 == sha256)).scalar() or 0)


def insert_imported(tx: Tx, cases: Sequence[_Case], now: datetime) -> None:
    """Insert imported instances and their tasks in bulk; fills in each task's ``ref`` and ``instance_id``.

    Open tasks (ready, started, waiting) are parked as ``waiting`` for
    ``imported:<status>``, see the module docstring. The instances' model row
    (``sha256``) must exist: a stand-in with process id :data:`IMPORTED_PROCESS_ID`
    and spec ``{}``, so the foreign key holds.

    Args:
        cases: each instance with its tasks (``task_id`` unique within the instance).
    """
    for chunk in _chunks(cases, _BATCH):
        tx.conn.execute(insert(instances), [instance_values(rec, now) for rec, _ in chunk])
        rows = [_imported_task_values(rec.id, t) for rec, recs in chunk for t in recs]
        if rows:
            tx.conn.execute(insert(tasks), rows)
        _fill_refs(tx, chunk)


def _imported_task_values(instance_id: str, rec: TaskRecord) -> dict[str, Any]:
    """A task row of an imported case: an open task is parked (see the module docstring)."""
    parked = rec.status in (READY, STARTED, WAITING)
    return {
        **task_values(rec),
        "instance_id": instance_id,
        "status": WAITING if parked else rec.status,
        "form": None,
        "waits_for": IMPORTED_WAIT + rec.status if parked else None,
        "due_at": None,
    }


def _fill_refs(tx: Tx, chunk: Sequence[_Case]) -> None:
    ids = [rec.id for rec, _ in chunk]
    query = select(tasks.c.instance_id, tasks.c.task_id, tasks.c.id).where(tasks.c.instance_id.in_(ids))
    refs = {(iid, task_id): ref for iid, task_id, ref in tx.conn.execute(query)}
    for rec, recs in chunk:
        for task in recs:
            task.ref, task.instance_id = int(refs[(rec.id, task.task_id)]), rec.id


def _chunks(items: Sequence[_Case], size: int) -> Iterable[Sequence[_Case]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
