"""The SQL store: SQLite by default, PostgreSQL for teams, through SQLAlchemy Core.

:class:`SqlStore` opens the database (creating a new SQLite file whole on first
use; refusing, with the fix, a file it cannot use or a schema from a newer
flowrun, see :mod:`flowrun.store.files`; reading a read-only one) and hands out
:class:`Tx` transactions. One command is one
transaction: :meth:`SqlStore.write` commits the whole step or nothing. On
SQLite every write transaction starts with ``BEGIN IMMEDIATE`` and the
database runs in WAL mode with a busy timeout, so concurrent operators wait
for each other instead of seeing "database is locked"; flowrun's own writers
also queue on a file lock (:mod:`flowrun.store.writers`), so a waiting writer
is woken as soon as the database is free instead of polling for it. How
connections are opened and kept is :mod:`flowrun.store.connect`; how records
become rows, :mod:`flowrun.store.rows`.
"""

from __future__ import annotations

import json
import os
import re
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, false, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from flowrun.errors import StoreError
from flowrun.models import (
    READY,
    STARTED,
    WAITING,
    CaseRef,
    ClaimInterval,
    EventRow,
    InboxRow,
    InboxWho,
    Incident,
    InstanceFilter,
    InstanceRecord,
    TaskRecord,
)
from flowrun.store import schema
from flowrun.store.connect import BUSY_TIMEOUT_MS, make_engine, safe_url, sqlite_path
from flowrun.store.files import inspect_file
from flowrun.store.rows import (
    UPDATABLE,
    claim_from_row,
    dumps,
    event_from_row,
    event_values,
    inbox_from_row,
    incident_from_row,
    instance_from_row,
    instance_values,
    task_from_row,
    task_values,
)
from flowrun.store.schema import claims, events, incidents, instances, models, tasks
from flowrun.store.writers import WriterQueue


class SqlStore:
    """A flowrun database.

    Args:
        url: an SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://...``).
        auto_create: create and migrate the schema when the database is new.
        check: refuse a database whose schema is not this flowrun's (off for ``db upgrade``).
    """

    def __init__(self, url: str, auto_create: bool = True, check: bool = True) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        path = sqlite_path(url) if self.is_sqlite else None
        #: Why this database may only be read (and the fix); None when flowrun may write it.
        self.read_only: str | None = None
        read_only_uri = None
        new_file = False
        if path is not None:
            found = inspect_file(path)
            new_file = not found.exists
            self.read_only = found.read_only
            read_only_uri = found.uri() if found.read_only else None
            if new_file:
                _create_file(path)
        # flowrun's SQLite writers queue on a file next to the database (see flowrun.store.writers)
        self._writers = WriterQueue(
            path.with_name(path.name + ".writers") if path and not self.read_only else None, BUSY_TIMEOUT_MS / 1000
        )
        try:
            self.engine: Engine = make_engine(url, self.is_sqlite, read_only_uri)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(
                f"cannot use the database URL {safe_url(url)}: {exc}; check 'database:' in flowrun.yaml"
            ) from None
        # A store dropped without close() still closes its connections (psycopg would warn) and lock file.
        weakref.finalize(self, _close, self.engine, self._writers)
        if check:
            self._check_schema(auto_create or new_file)

    @property
    def shown_url(self) -> str:
        """The database URL without its password, for messages and the worker's log."""
        return safe_url(self.url)

    def _check_schema(self, auto_create: bool) -> None:
        current = self._revision()
        if current == schema.HEAD_REVISION:
            return
        if current is None and auto_create:
            self.upgrade()
            return
        if current is None:
            raise StoreError(f"the database {safe_url(self.url)} has no flowrun schema; run 'flowrun db upgrade'")
        raise StoreError(
            f"the database schema is at revision {current}, this flowrun needs {schema.HEAD_REVISION}; "
            "run 'flowrun db upgrade'"
        )

    def _revision(self) -> str | None:
        """The schema revision (None: no flowrun schema yet).

        Raises:
            StoreError: the database cannot be opened, or its revision is not one this flowrun knows.
        """
        with self._opening(), self.engine.connect().execution_options(flowrun_write=False) as conn:
            current = _current_revision(conn)
            unknown = current is not None and current not in schema.REVISIONS
            migrated_by = _migrated_by(conn) if unknown else None
        _refuse_unknown(current, migrated_by)
        return current

    @contextmanager
    def _opening(self) -> Iterator[None]:
        """Errors of opening the database as one message with the fix."""
        try:
            yield
        except (OperationalError, DBAPIError) as exc:
            raise StoreError(f"cannot open the database {safe_url(self.url)}: {_reason(exc, self.is_sqlite)}") from None

    def upgrade(self) -> str:
        """Bring the schema to the newest revision with Alembic; returns that revision.

        Raises:
            StoreError: the database is read-only, or was migrated by a newer flowrun (nothing is changed then).
        """
        if self.read_only:
            raise StoreError(f"cannot migrate the database: {self.read_only}")
        self._revision()
        _migrate(self.engine, self.url, self.is_sqlite)
        return schema.HEAD_REVISION

    @contextmanager
    def read(self, snapshot: bool = True) -> Iterator[Tx]:
        """A read-only transaction.

        Args:
            snapshot: all reads see the database as of one moment (on SQLite; PostgreSQL's
                READ COMMITTED gives each statement its own). With False each statement
                runs on its own (autocommit), which saves the BEGIN and COMMIT round trips
                of a short lookup; the caller orders its reads so that this is safe.
        """
        with self._tx(write=False, snapshot=snapshot) as tx:
            yield tx

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A write transaction: everything inside commits together, or nothing does."""
        with self._tx(write=True) as tx:
            yield tx

    @contextmanager
    def _tx(self, write: bool, snapshot: bool = True) -> Iterator[Tx]:
        if write and self.read_only:
            raise StoreError(f"{self.read_only}; nothing was saved")
        with self._writers.turn() if write else nullcontext(), self._transaction(write, snapshot) as tx:
            yield tx

    @contextmanager
    def _transaction(self, write: bool, snapshot: bool) -> Iterator[Tx]:
        try:
            conn = self.engine.connect().execution_options(flowrun_write=write, flowrun_snapshot=snapshot)
            if not snapshot and not self.is_sqlite:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the database {safe_url(self.url)}: {exc}") from None
        try:
            with conn.begin():
                yield Tx(conn)
        except IntegrityError as exc:
            raise StoreError(f"the database refused the change: {exc.orig}") from None
        except OperationalError as exc:
            if self.is_sqlite and _is_read_only(exc):
                raise StoreError(
                    f"the database {safe_url(self.url)} is read-only for this user: {exc.orig}; make the file and "
                    "its folder writable (the folder holds its -wal and -shm files); nothing was saved"
                ) from None
            raise StoreError(f"database error: {exc.orig}; nothing was saved") from None
        except DBAPIError as exc:
            if not _is_refused_write(exc):
                raise
            raise StoreError(
                f"the database {safe_url(self.url)} does not let this user write: {str(exc.orig).strip()}; "
                "grant the user INSERT, UPDATE and DELETE on flowrun's tables (or connect as one who has them); "
                "nothing was saved"
            ) from None
        finally:
            conn.close()

    def close(self) -> None:
        """Close the connections this store keeps open (it can still be used afterwards)."""
        _close(self.engine, self._writers)


def _close(engine: Engine, writers: WriterQueue) -> None:
    engine.dispose()
    writers.close()


class Tx:
    """One transaction's worth of reads and writes."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- models ------------------------------------------------------------------

    def ensure_model(self, sha256: str, process_id: str, file: str, spec: str, now: datetime) -> None:
        """Store a model version's definition once."""
        values = {"sha256": sha256, "process_id": process_id, "file": file, "spec": spec, "created_at": now}
        if self.conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            # Two first starts of a new model version at once: the second insert is a no-op.
            self.conn.execute(pg_insert(models).values(**values).on_conflict_do_nothing(index_elements=["sha256"]))
            return
        found = self.conn.execute(select(models.c.sha256).where(models.c.sha256 == sha256)).first()
        if found is None:  # SQLite: the write transaction (BEGIN IMMEDIATE) already serialises writers
            self.conn.execute(insert(models).values(**values))

    def has_model(self, sha256: str) -> bool:
        return self.conn.execute(select(models.c.sha256).where(models.c.sha256 == sha256)).first() is not None

    def model_process_id(self, sha256: str) -> str:
        return str(self.conn.execute(select(models.c.process_id).where(models.c.sha256 == sha256)).scalar() or "")

    def model_spec(self, sha256: str) -> str:
        spec = self.conn.execute(select(models.c.spec).where(models.c.sha256 == sha256)).scalar()
        if spec is None:
            raise StoreError(f"the stored model {sha256[:12]} is missing from the database")
        return str(spec)

    # -- instances ---------------------------------------------------------------

    def insert_instance(self, rec: InstanceRecord, now: datetime) -> None:
        self.conn.execute(insert(instances).values(**instance_values(rec, now)))

    def update_instance(self, rec: InstanceRecord, expected_version: int, now: datetime) -> bool:
        """Save ``rec`` if the stored version is still ``expected_version``; False if not."""
        result = self.conn.execute(
            update(instances)
            .where(and_(instances.c.id == rec.id, instances.c.version == expected_version))
            .values(
                status=rec.status,
                ended_at=rec.ended_at,
                updated_at=now,
                version=expected_version + 1,
                data=dumps(rec.data),
                state=rec.state,
                error=rec.error,
            )
        )
        if result.rowcount == 1:
            rec.version = expected_version + 1
            return True
        return False

    def get_instance(self, instance_id: str, with_state: bool = False, lock: bool = False) -> InstanceRecord | None:
        """An instance; ``lock`` holds its row until the transaction ends (PostgreSQL ``FOR UPDATE``)."""
        cols = [c for c in instances.c if with_state or c.name != "state"]
        q = select(*cols).where(instances.c.id == instance_id)
        if lock:
            q = q.with_for_update()
        row = self.conn.execute(q).mappings().first()
        if row is None:
            return None
        return instance_from_row(row)

    def instance_ids_with_key(self, key: str, family: str | None = None) -> list[str]:
        """Instances whose business key is ``key`` (one per family at most), in the given family if named."""
        q = select(instances.c.id).where(instances.c.business_key == key).order_by(instances.c.id)
        if family is not None:
            q = q.where(instances.c.family == family)
        return [r[0] for r in self.conn.execute(q)]

    def count_family(self, family: str) -> int:
        """How many instances of ``family`` there are (for numbering their business keys)."""
        return int(self.conn.execute(select(func.count()).where(instances.c.family == family)).scalar() or 0)

    def lanes_in_use(self) -> list[str]:
        """The lanes of the user tasks in the database, in alphabetical order."""
        rows = self.conn.execute(select(tasks.c.lane).where(tasks.c.lane.is_not(None)).distinct())
        return sorted(str(r[0]) for r in rows)

    def has_family(self, family: str) -> bool:
        return (
            self.conn.execute(select(instances.c.id).where(instances.c.family == family).limit(1)).first() is not None
        )

    def instance_ids_like(self, prefix: str, limit: int = 20) -> list[str]:
        """Instance ids starting with ``prefix`` (at most ``limit``)."""
        rows = self.conn.execute(
            select(instances.c.id).where(instances.c.id.like(_like_prefix(prefix), escape="\\")).limit(limit)
        )
        return [r[0] for r in rows]

    def list_instances(
        self, status: str | None = None, limit: int = 100, where: InstanceFilter | None = None
    ) -> list[InstanceRecord]:
        """The newest instances that ``where`` (and ``status``) select, newest first."""
        where = replace(where or InstanceFilter(), status=status) if status else where
        q = select(instances.c.id).order_by(instances.c.created_at.desc(), instances.c.id).limit(limit)
        ids = [r[0] for r in self.conn.execute(q.where(*_instance_filter(where)))]
        return [rec for rec in (self.get_instance(i) for i in ids) if rec is not None]

    def instances_named_like(self, prefix: str, limit: int = 50) -> list[tuple[str, str | None, str, str, str]]:
        """``(id, business_key, family, variant, status)`` of instances whose id or key starts with ``prefix``,
        newest first (for shell completion)."""
        like = _like_prefix(prefix)
        q = (
            select(
                instances.c.id, instances.c.business_key, instances.c.family, instances.c.variant, instances.c.status
            )
            .where(or_(instances.c.id.like(like, escape="\\"), instances.c.business_key.like(like, escape="\\")))
            .order_by(instances.c.created_at.desc())
            .limit(limit)
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in self.conn.execute(q)]

    def count_instances(self, where: InstanceFilter | None = None) -> int:
        """How many instances ``where`` selects."""
        q = select(func.count()).select_from(instances).where(*_instance_filter(where))
        return int(self.conn.execute(q).scalar() or 0)

    def instance_families(self) -> list[str]:
        """The families that have instances, sorted."""
        return [r[0] for r in self.conn.execute(select(instances.c.family).distinct().order_by(instances.c.family))]

    def instances_by_key(self, key: str) -> list[tuple[str, str]]:
        """``(id, family)`` of the instances whose business key is ``key`` (one per family at most)."""
        q = select(instances.c.id, instances.c.family).where(instances.c.business_key == key)
        return [(r[0], r[1]) for r in self.conn.execute(q.order_by(instances.c.family))]

    def set_instance_model(self, instance_id: str, sha256: str, process_id: str, file: str) -> None:
        """Point an instance at another version of its model (after a migration of its state)."""
        self.conn.execute(
            update(instances)
            .where(instances.c.id == instance_id)
            .values(sha256=sha256, process_id=process_id, file=file)
        )

    def cancel_instance(self, instance_id: str, reason: str, now: datetime) -> bool:
        """End a running or failed instance as cancelled, with its open tasks, claims and incidents.

        The instance's version moves on, so a step being run on it meanwhile is not saved.
        Returns False (and changes nothing) when the instance is no longer running or failed.
        """
        done = self.conn.execute(
            update(instances)
            .where(and_(instances.c.id == instance_id, instances.c.status.in_(["running", "error"])))
            .values(status="cancelled", ended_at=now, updated_at=now, error=reason, version=instances.c.version + 1)
        )
        if done.rowcount != 1:
            return False
        self.conn.execute(
            update(tasks)
            .where(and_(tasks.c.instance_id == instance_id, tasks.c.status.in_([READY, STARTED, WAITING])))
            .values(status="cancelled", completed_at=now, lease_owner=None, lease_until=None)
        )
        self.conn.execute(
            update(claims)
            .where(and_(claims.c.instance_id == instance_id, claims.c.released_at.is_(None)))
            .values(released_at=now, outcome="cancelled")
        )
        self.conn.execute(
            update(incidents)
            .where(and_(incidents.c.instance_id == instance_id, incidents.c.resolved_at.is_(None)))
            .values(resolved_at=now)
        )
        return True

    # -- tasks -------------------------------------------------------------------

    def save_tasks(self, instance_id: str, records: Sequence[TaskRecord]) -> None:
        """Insert new task rows and update known ones; fills in each record's ``ref``."""
        if not records:
            return
        known = {
            r.task_id: r.id
            for r in self.conn.execute(
                select(tasks.c.task_id, tasks.c.id).where(
                    and_(tasks.c.instance_id == instance_id, tasks.c.task_id.in_([x.task_id for x in records]))
                )
            )
        }
        for rec in records:
            rec.instance_id = instance_id
            ref = known.get(rec.task_id)
            if ref is None:
                result = self.conn.execute(insert(tasks).values(**task_values(rec), instance_id=instance_id))
                key = result.inserted_primary_key
                rec.ref = _inserted_id(key)
            else:
                rec.ref = ref
                values = {k: v for k, v in task_values(rec).items() if v is not None and k in UPDATABLE}
                if rec.status == WAITING:
                    values["due_at"] = rec.due_at  # a new wait replaces the old due time, even with none
                self.conn.execute(update(tasks).where(tasks.c.id == ref).values(**values))

    def respec_tasks(self, instance_id: str, records: Sequence[TaskRecord]) -> None:
        """Give known task rows the element, name, type, lane and form of ``records`` (after a model migration).

        Claims, actors and times stay; a waiting task also takes what it waits for and when.
        """
        kept = ("bpmn_id", "name", "type", "lane", "form", "documentation")
        for rec in records:
            row = task_values(rec)
            values = {k: row[k] for k in kept if k in row}
            if rec.status == WAITING:
                values.update(waits_for=row["waits_for"], due_at=row["due_at"])
            self.conn.execute(
                update(tasks)
                .where(and_(tasks.c.instance_id == instance_id, tasks.c.task_id == rec.task_id))
                .values(**values)
            )

    def close_tasks(self, instance_id: str, task_ids: Sequence[str], now: datetime) -> None:
        """Mark open task rows as cancelled at ``now`` (their tasks are gone from the engine's state).

        Claims held on them end with outcome ``interrupted``.
        """
        if not task_ids:
            return
        chosen = and_(
            tasks.c.instance_id == instance_id,
            tasks.c.task_id.in_(list(task_ids)),
            tasks.c.status.in_([READY, STARTED, WAITING]),
        )
        refs = [r[0] for r in self.conn.execute(select(tasks.c.id).where(chosen))]
        self.conn.execute(
            update(tasks).where(chosen).values(status="cancelled", completed_at=now, lease_owner=None, lease_until=None)
        )
        self.conn.execute(
            update(claims)
            .where(and_(claims.c.task_ref.in_(refs), claims.c.released_at.is_(None)))
            .values(released_at=now, outcome="interrupted")
        )

    def task_by_ref(self, ref: int) -> TaskRecord | None:
        row = self.conn.execute(select(tasks).where(tasks.c.id == ref)).mappings().first()
        return task_from_row(row) if row is not None else None

    def ready_task_by_bpmn_id(self, instance_id: str, bpmn_id: str) -> list[TaskRecord]:
        rows = self.conn.execute(
            select(tasks).where(
                and_(
                    tasks.c.instance_id == instance_id,
                    tasks.c.bpmn_id == bpmn_id,
                    tasks.c.status.in_([READY, STARTED]),
                )
            )
        ).mappings()
        return [task_from_row(r) for r in rows]

    def instance_tasks(self, instance_id: str) -> list[TaskRecord]:
        rows = self.conn.execute(
            select(tasks).where(tasks.c.instance_id == instance_id).order_by(tasks.c.id)
        ).mappings()
        return [task_from_row(r) for r in rows]

    # -- claims ------------------------------------------------------------------

    def claim(self, ref: int, instance_id: str, actor: str, at: datetime) -> bool:
        """Mark a ready task as claimed by ``actor`` and open its claim interval; False if it is not ready."""
        result = self.conn.execute(
            update(tasks)
            .where(and_(tasks.c.id == ref, tasks.c.status == READY))
            .values(status=STARTED, started_at=at, actor=actor)
        )
        if result.rowcount != 1:
            return False
        self.conn.execute(insert(claims).values(task_ref=ref, instance_id=instance_id, actor=actor, claimed_at=at))
        return True

    def unclaim(self, ref: int, actor: str, at: datetime, outcome: str) -> bool:
        """Give back ``actor``'s claim on a task (it is ready again); False if ``actor`` does not hold it."""
        result = self.conn.execute(
            update(tasks)
            .where(and_(tasks.c.id == ref, tasks.c.status == STARTED, tasks.c.actor == actor))
            .values(status=READY, started_at=None, actor=None)
        )
        if result.rowcount != 1:
            return False
        self.end_claim(ref, at, outcome)
        return True

    def hand_over(self, ref: int, instance_id: str, holder: str | None, to: str, at: datetime) -> bool:
        """Give a task to ``to`` (it becomes its assignee and holds the claim); ``holder``'s claim ends.

        Returns False when the task is no longer as read: claimed by someone other than
        ``holder`` (None: unclaimed), or not open.
        """
        held = tasks.c.actor == holder if holder is not None else tasks.c.status == READY
        result = self.conn.execute(
            update(tasks)
            .where(and_(tasks.c.id == ref, tasks.c.status.in_([READY, STARTED]), held))
            .values(status=STARTED, started_at=at, actor=to, assignee=to)
        )
        if result.rowcount != 1:
            return False
        self.end_claim(ref, at, "assigned")
        self.conn.execute(insert(claims).values(task_ref=ref, instance_id=instance_id, actor=to, claimed_at=at))
        return True

    def end_claim(self, ref: int, at: datetime, outcome: str) -> str | None:
        """End the open claim interval of a task with ``outcome``; returns who held it (None: nobody)."""
        open_claim = and_(claims.c.task_ref == ref, claims.c.released_at.is_(None))
        holder = self.conn.execute(select(claims.c.actor).where(open_claim)).scalar()
        if holder is not None:
            self.conn.execute(update(claims).where(open_claim).values(released_at=at, outcome=outcome))
        return None if holder is None else str(holder)

    def task_claims(self, ref: int) -> list[ClaimInterval]:
        """A task's claim intervals, oldest first."""
        rows = self.conn.execute(select(claims).where(claims.c.task_ref == ref).order_by(claims.c.id)).mappings()
        return [claim_from_row(r) for r in rows]

    def instance_claims(self, instance_id: str) -> list[ClaimInterval]:
        """The claim intervals of all of an instance's tasks, oldest first."""
        q = select(claims).where(claims.c.instance_id == instance_id).order_by(claims.c.id)
        return [claim_from_row(r) for r in self.conn.execute(q).mappings()]

    def inbox(
        self,
        instance_id: str | None = None,
        lane: str | None = None,
        family: str | None = None,
        limit: int | None = None,
        with_data: bool = False,
        who: InboxWho | None = None,
    ) -> list[InboxRow]:
        """Ready and claimed user tasks with their instance's family, variant, pilot and key, oldest first.

        ``with_data`` also reads each case's data (for the inbox's data columns and filters);
        ``who`` keeps only the tasks of one person or group (see :class:`~flowrun.models.InboxWho`).
        """
        q = (
            select(
                tasks.c.id,
                tasks.c.instance_id,
                tasks.c.bpmn_id,
                tasks.c.name,
                tasks.c.lane,
                tasks.c.ready_at,
                tasks.c.started_at,
                tasks.c.actor,
                instances.c.family,
                instances.c.variant,
                instances.c.pilot,
                instances.c.business_key,
                tasks.c.deadline_at,
                tasks.c.priority,
                *([instances.c.data] if with_data else []),
            )
            .join(instances, instances.c.id == tasks.c.instance_id)
            .where(tasks.c.status.in_([READY, STARTED]))
            .where(tasks.c.type.in_(["userTask", "manualTask"]))
            .order_by(tasks.c.ready_at, tasks.c.id)
        )
        if instance_id:
            q = q.where(tasks.c.instance_id == instance_id)
        if lane:
            q = q.where(func.lower(tasks.c.lane) == lane.lower())
        if family:
            q = q.where(instances.c.family == family)
        if who is not None:
            q = q.where(*_who_filter(who))
        if limit:
            q = q.limit(limit)
        return [inbox_from_row(r) for r in self.conn.execute(q)]

    def due_instances(self, now: datetime, limit: int = 1000) -> list[str]:
        """Instances with a timer due at ``now`` or earlier, most overdue first."""
        rows = self.conn.execute(
            select(tasks.c.instance_id, func.min(tasks.c.due_at))
            .where(and_(tasks.c.status == WAITING, _waits_for("timer"), tasks.c.due_at <= now))
            .group_by(tasks.c.instance_id)
            .order_by(func.min(tasks.c.due_at))
            .limit(limit)
        )
        return [r[0] for r in rows]

    def claim_due(self, now: datetime, owner: str, until: datetime, limit: int = 100) -> list[str]:
        """Claim the instances with due timers or service jobs for ``owner`` until ``until``.

        Rows leased by another live worker are skipped; on PostgreSQL the candidate
        rows are locked with ``FOR UPDATE SKIP LOCKED`` so concurrent workers never
        claim the same work. Returns the claimed instances, most overdue first.
        """
        due = or_(_waits_for("timer"), tasks.c.waits_for.like("service:%"))
        free = or_(tasks.c.lease_until.is_(None), tasks.c.lease_until < now, tasks.c.lease_owner == owner)
        q = (
            select(tasks.c.id, tasks.c.instance_id, tasks.c.due_at)
            .join(instances, instances.c.id == tasks.c.instance_id)
            .where(and_(tasks.c.status == WAITING, due, tasks.c.due_at <= now, free, instances.c.status == "running"))
            .order_by(tasks.c.due_at, tasks.c.id)
            .limit(limit)
        )
        if self.conn.dialect.name == "postgresql":
            q = q.with_for_update(of=tasks, skip_locked=True)
        rows = self.conn.execute(q).all()
        if not rows:
            return []
        self.conn.execute(
            update(tasks).where(tasks.c.id.in_([r[0] for r in rows])).values(lease_owner=owner, lease_until=until)
        )
        return list(dict.fromkeys(r[1] for r in rows))

    def release(self, instance_id: str, owner: str) -> None:
        """Give up ``owner``'s leases on an instance's rows."""
        self.conn.execute(
            update(tasks)
            .where(and_(tasks.c.instance_id == instance_id, tasks.c.lease_owner == owner))
            .values(lease_owner=None, lease_until=None)
        )

    def set_instance_status(self, instance_id: str, status: str, error: str | None) -> None:
        self.conn.execute(update(instances).where(instances.c.id == instance_id).values(status=status, error=error))

    # -- incidents ---------------------------------------------------------------

    def open_incident(
        self,
        instance_id: str,
        task_ref: int | None,
        task_id: str,
        topic: str | None,
        error_type: str,
        message: str,
        attempts: int,
        now: datetime,
    ) -> int:
        result = self.conn.execute(
            insert(incidents).values(
                instance_id=instance_id,
                task_ref=task_ref,
                task_id=task_id,
                topic=topic,
                error_type=error_type,
                message=message,
                attempts=attempts,
                created_at=now,
            )
        )
        return _inserted_id(result.inserted_primary_key)

    def get_incident(self, incident_id: int) -> Incident | None:
        row = self.conn.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().first()
        return incident_from_row(row) if row is not None else None

    def list_incidents(self, include_resolved: bool = False, instance: str | None = None) -> list[Incident]:
        """Incidents, newest first: open ones unless ``include_resolved``, of one instance if given."""
        q = select(incidents).order_by(incidents.c.id.desc())
        if instance is not None:
            q = q.where(incidents.c.instance_id == instance)
        if not include_resolved:
            q = q.where(incidents.c.resolved_at.is_(None))
        return [incident_from_row(r) for r in self.conn.execute(q).mappings()]

    def resolve_incident(self, incident_id: int, now: datetime) -> None:
        self.conn.execute(update(incidents).where(incidents.c.id == incident_id).values(resolved_at=now))

    def next_due(self) -> datetime | None:
        """When the next timer or service retry of any running instance can be claimed.

        Work leased by a worker counts from the end of its lease: until then no other
        worker may take it, so an idle worker has no reason to wake before.
        """
        ready_at = case(
            (and_(tasks.c.lease_until.is_not(None), tasks.c.lease_until > tasks.c.due_at), tasks.c.lease_until),
            else_=tasks.c.due_at,
        )
        value = self.conn.execute(
            select(func.min(ready_at))
            .join(instances, instances.c.id == tasks.c.instance_id)
            .where(
                and_(
                    tasks.c.status == WAITING,
                    or_(_waits_for("timer"), tasks.c.waits_for.like("service:%")),
                    instances.c.status == "running",
                )
            )
        ).scalar()
        if isinstance(value, str):  # SQLite returns aggregates of timestamps as text
            value = datetime.fromisoformat(value)
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value

    def cases_waiting_for(self, waits_for: str) -> list[CaseRef]:
        """The running instances with a task waiting for ``waits_for``, oldest first, with key and data."""
        waiting = select(tasks.c.instance_id).where(and_(tasks.c.status == WAITING, _waits_for(waits_for)))
        q = (
            select(instances.c.id, instances.c.family, instances.c.variant, instances.c.business_key, instances.c.data)
            .where(and_(instances.c.id.in_(waiting), instances.c.status == "running"))
            .order_by(instances.c.created_at, instances.c.id)
        )
        return [CaseRef(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in self.conn.execute(q)]

    def instances_waiting_for(self, waits_for: str, instance_id: str | None = None) -> list[str]:
        """Instances with a task waiting for ``waits_for`` (``message:NAME``, ``signal:NAME``)."""
        q = select(tasks.c.instance_id).where(and_(tasks.c.status == WAITING, _waits_for(waits_for)))
        if instance_id:
            q = q.where(tasks.c.instance_id == instance_id)
        return list(dict.fromkeys(r[0] for r in self.conn.execute(q.order_by(tasks.c.id))))

    # -- events ------------------------------------------------------------------

    def add_events(self, rows: Sequence[EventRow]) -> None:
        if rows:
            self.conn.execute(insert(events), [event_values(r) for r in rows])

    def instance_events(self, instance_id: str) -> list[EventRow]:
        """An instance's event log, oldest first."""
        rows = self.conn.execute(
            select(events).where(events.c.instance_id == instance_id).order_by(events.c.id)
        ).mappings()
        return [event_from_row(r) for r in rows]


def _who_filter(who: InboxWho) -> list[Any]:
    """The conditions of :class:`~flowrun.models.InboxWho` on the ``tasks`` table."""
    out: list[Any] = []
    if who.unclaimed:
        out.append(tasks.c.status == READY)
    if who.owner is not None:
        out.append(and_(tasks.c.status == STARTED, tasks.c.actor == who.owner))
    if who.mine is not None:
        mine = and_(tasks.c.status == READY, tasks.c.assignee == who.mine)
        out.append(or_(and_(tasks.c.status == STARTED, tasks.c.actor == who.mine), mine))
    if who.group is not None:
        # candidates_text writes the groups list last, so this matches a name inside it only
        name = _like_escape(dumps(who.group))
        out.append(tasks.c.candidates.like(f'%"groups":[%{name}%', escape="\\"))
    return out


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _waits_for(token: str) -> Any:
    """Rows waiting for ``token``, alone or among others (``message:reply|timer``)."""
    col = tasks.c.waits_for
    esc = _like_escape(token)
    return or_(
        col == token,
        col.like(f"{esc}|%", escape="\\"),
        col.like(f"%|{esc}", escape="\\"),
        col.like(f"%|{esc}|%", escape="\\"),
    )


def _instance_filter(where: InstanceFilter | None) -> list[Any]:
    """The WHERE clauses of an :class:`InstanceFilter`."""
    if where is None:
        return []
    out: list[Any] = []
    for column, value in (
        (instances.c.status, where.status),
        (instances.c.family, where.family),
        (instances.c.variant, where.variant),
        (instances.c.pilot, where.pilot),
    ):
        if value is not None:
            out.append(column == value)
    if where.outdated is not None:
        older = [
            and_(instances.c.family == f, instances.c.variant == v, instances.c.sha256 != sha)
            for f, v, sha in where.outdated
        ]
        # Imported cases (no engine state) have nothing to migrate.
        live = and_(instances.c.status.in_(["running", "error"]), instances.c.state != "")
        out.append(and_(live, or_(false(), *older)))
    return out


def _like_prefix(prefix: str) -> str:
    return _like_escape(prefix) + "%"


def _current_revision(conn: Connection) -> str | None:
    """The schema revision, None for a database without flowrun's tables (a lock error is raised)."""
    try:
        row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    except (OperationalError, DBAPIError) as exc:
        if not _no_such_table(exc):
            raise
        conn.rollback()
        return None
    return str(row[0]) if row else None


def _migrated_by(conn: Connection) -> str | None:
    """The flowrun version that last created or migrated the schema; None when the database does not say."""
    try:
        value = conn.execute(
            select(schema.flowrun_meta.c.value).where(schema.flowrun_meta.c.key == schema.MIGRATED_BY)
        ).scalar()
    except (OperationalError, DBAPIError) as exc:
        if not _no_such_table(exc):
            raise
        conn.rollback()
        return None
    text = str(value) if value is not None else ""
    # Text read from the database lands in a message with an install command: only a plain version does.
    return text if _VERSION.fullmatch(text) else None


#: A flowrun version as ``migrated_by`` may hold it (``0.4.2``, ``1.0.0rc1``, ``1.2.dev3``).
_VERSION = re.compile(r"[0-9]{1,4}(\.[0-9]{1,4}){0,3}([a-z]{1,5}[0-9]{0,4})?(\.[a-z]{1,5}[0-9]{0,4})?")

#: A schema revision as it is shown in a message (others are shown quoted and cut short).
_REVISION = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _set_migrated_by(conn: Connection) -> None:
    from flowrun import __version__

    meta = schema.flowrun_meta
    conn.execute(meta.delete().where(meta.c.key == schema.MIGRATED_BY))
    conn.execute(insert(meta).values(key=schema.MIGRATED_BY, value=__version__))


def _refuse_unknown(revision: str | None, migrated_by: str | None) -> None:
    """Refuse a schema revision this flowrun does not know, naming the flowrun that made it.

    Raises:
        StoreError: ``revision`` is not one of :data:`~flowrun.store.schema.REVISIONS`.
    """
    if revision is None or revision in schema.REVISIONS:
        return
    from flowrun import __version__

    shown = revision if _REVISION.fullmatch(revision) else repr(revision[:64])
    unknown = f"schema revision {shown}, which this flowrun {__version__} does not know"
    if migrated_by is not None:
        raise StoreError(
            f"the database was migrated by flowrun {migrated_by} ({unknown}): install flowrun >= {migrated_by} "
            f"(pip install 'flowrun>={migrated_by}'); nothing was changed"
        )
    number = revision.split("_", 1)[0]
    head = int(schema.HEAD_REVISION.split("_", 1)[0])
    if _REVISION.fullmatch(revision) and number.isdigit() and int(number) > head:
        raise StoreError(
            f"the database was migrated by a newer flowrun ({unknown}): install the newest flowrun "
            "(pip install -U flowrun); nothing was changed"
        )
    raise StoreError(
        f"the database has {unknown} and that flowrun never wrote: it belongs to another program or was changed "
        "by hand; name flowrun's database in 'database:' in flowrun.yaml; nothing was changed"
    )


def _no_such_table(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return "no such table" in text or "does not exist" in text


def _is_read_only(exc: DBAPIError) -> bool:
    return "readonly database" in str(exc.orig).lower() or "read-only" in str(exc.orig).lower()


def _is_refused_write(exc: DBAPIError) -> bool:
    """PostgreSQL refused a write: no privilege (42501), or a read-only transaction or server (25006)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in ("42501", "25006")


def _reason(exc: Exception, is_sqlite: bool) -> str:
    """A driver error in a sentence, with the fix where flowrun knows it."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().replace("\n", " ")
    if is_sqlite:
        if "not a database" in text.lower() or "malformed" in text.lower():
            return f"{text}: the file is damaged; restore it from a backup (or name another file in flowrun.yaml)"
        return text
    return (
        f"{text}; check the host, port, user, password and database name in 'database:' in flowrun.yaml "
        "(or FLOWRUN_DATABASE_URL) and that the server is running"
    )


def _migrate(engine: Engine, url: str, is_sqlite: bool) -> None:
    """Run Alembic's migrations to the head revision and record this flowrun's version, in one transaction."""
    from alembic import command
    from alembic.config import Config
    from alembic.util import CommandError

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            _set_migrated_by(conn)
    except (SQLAlchemyError, CommandError) as exc:
        raise StoreError(f"cannot migrate the database {safe_url(url)}: {_reason(exc, is_sqlite)}") from None


def _create_file(path: Path) -> None:
    """Create a new SQLite database at ``path`` whole: migrated in a file beside it, then linked into place.

    A reader never sees a half-made database (SQLite leaves an empty file between
    creating it and the first commit, and an empty file is refused as a damaged
    one); of two processes that create it at once, the first one's is kept.

    Raises:
        StoreError: the folder cannot be created or written.
    """
    import secrets

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the folder for the database {path.parent}: {exc.strerror}; "
            "create it, or name another place in 'database:' in flowrun.yaml"
        ) from None
    temp = path.with_name(f".flowrun-new-{os.getpid()}-{secrets.token_hex(4)}.db")
    url = f"sqlite:///{temp}"
    try:
        engine = make_engine(url, is_sqlite=True)
        try:
            _migrate(engine, url, is_sqlite=True)
        finally:
            engine.dispose()  # the last connection checkpoints the WAL into the file
        try:
            os.link(temp, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        except OSError:  # a file system without hard links: a rename, unless the file appeared meanwhile
            if not path.exists():
                os.replace(temp, path)
    except OSError as exc:
        raise StoreError(
            f"cannot create the database {path}: {exc.strerror}; make the folder {path.parent} writable, "
            "or name another place in 'database:' in flowrun.yaml"
        ) from None
    finally:
        for leftover in (temp, *(temp.with_name(temp.name + s) for s in ("-wal", "-shm", "-journal"))):
            leftover.unlink(missing_ok=True)


def _inserted_id(key: Any) -> int:
    """The id the database gave an inserted row (both SQLite and PostgreSQL return it)."""
    if key is None:
        raise RuntimeError("the database returned no id for an inserted row")
    return int(key[0])
