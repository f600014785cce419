"""The SQL store: SQLite by default, PostgreSQL for teams, through SQLAlchemy Core.

:class:`SqlStore` opens the database (creating and migrating a new SQLite file
on first use) and hands out :class:`Tx` transactions. One command is one
transaction: :meth:`SqlStore.write` commits the whole step or nothing. On
SQLite every write transaction starts with ``BEGIN IMMEDIATE`` and the
database runs in WAL mode with a busy timeout, so concurrent operators wait
for each other instead of seeing "database is locked"; flowrun's own writers
also queue on a file lock (:mod:`flowrun.store.writers`), so a waiting writer
is woken as soon as the database is free instead of polling for it.
"""

from __future__ import annotations

import json
import os
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, create_engine, event, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool, QueuePool

from flowrun.errors import StoreError
from flowrun.models import READY, STARTED, WAITING, InstanceRecord, TaskRecord
from flowrun.store import schema
from flowrun.store.schema import events, incidents, instances, models, tasks
from flowrun.store.writers import WriterQueue

_BUSY_TIMEOUT_MS = 30_000


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
        new_file = False
        path = _sqlite_path(url) if self.is_sqlite else None
        # flowrun's SQLite writers queue on a file next to the database (see flowrun.store.writers)
        self._writers = WriterQueue(path.with_name(path.name + ".writers") if path else None, _BUSY_TIMEOUT_MS / 1000)
        if path is not None:
            new_file = not path.exists()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder for the database {path.parent}: {exc.strerror}") from None
        try:
            self.engine: Engine = _make_engine(url, self.is_sqlite)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(
                f"cannot use the database URL {_safe(url)}: {exc}; check 'database:' in flowrun.yaml"
            ) from None
        # A store dropped without close() still closes its connections (psycopg would warn) and lock file.
        weakref.finalize(self, _close, self.engine, self._writers)
        if check:
            self._check_schema(auto_create or new_file)

    def _check_schema(self, auto_create: bool) -> None:
        try:
            with self.engine.connect().execution_options(flowrun_write=False) as conn:
                current = _current_revision(conn)
        except OperationalError as exc:
            raise StoreError(f"cannot open the database {_safe(self.url)}: {exc.orig}") from None
        except DBAPIError as exc:
            raise StoreError(f"cannot open the database {_safe(self.url)}: {exc.orig}") from None
        if current == schema.HEAD_REVISION:
            return
        if current is None and auto_create:
            self.upgrade()
            return
        if current is None:
            raise StoreError(f"the database {_safe(self.url)} has no flowrun schema; run 'flowrun db upgrade'")
        raise StoreError(
            f"the database schema is at revision {current}, this flowrun needs {schema.HEAD_REVISION}; "
            "run 'flowrun db upgrade'"
        )

    def upgrade(self) -> str:
        """Bring the schema to the newest revision with Alembic; returns that revision."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot migrate the database {_safe(self.url)}: {exc}") from None
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
        with self._writers.turn() if write else nullcontext(), self._transaction(write, snapshot) as tx:
            yield tx

    @contextmanager
    def _transaction(self, write: bool, snapshot: bool) -> Iterator[Tx]:
        try:
            conn = self.engine.connect().execution_options(flowrun_write=write, flowrun_snapshot=snapshot)
            if not snapshot and not self.is_sqlite:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the database {_safe(self.url)}: {exc}") from None
        try:
            with conn.begin():
                yield Tx(conn)
        except IntegrityError as exc:
            raise StoreError(f"the database refused the change: {exc.orig}") from None
        except OperationalError as exc:
            raise StoreError(f"database error: {exc.orig}; nothing was saved") from None
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
        self.conn.execute(
            insert(instances).values(
                id=rec.id,
                family=rec.family,
                variant=rec.variant,
                file=rec.file,
                sha256=rec.sha256,
                process_id=rec.process_id,
                pilot=rec.pilot,
                status=rec.status,
                created_at=rec.created_at,
                ended_at=rec.ended_at,
                updated_at=now,
                version=rec.version,
                data=_dumps(rec.data),
                state=rec.state or "",
                error=rec.error,
            )
        )

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
                data=_dumps(rec.data),
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
            data=json.loads(row["data"] or "{}"),
            state=row.get("state"),
            error=row["error"],
        )

    def instance_ids_like(self, prefix: str, limit: int = 20) -> list[str]:
        """Instance ids starting with ``prefix`` (at most ``limit``)."""
        rows = self.conn.execute(
            select(instances.c.id).where(instances.c.id.like(_like_prefix(prefix), escape="\\")).limit(limit)
        )
        return [r[0] for r in rows]

    def list_instances(self, status: str | None = None, limit: int = 100) -> list[InstanceRecord]:
        q = select(instances.c.id).order_by(instances.c.created_at.desc()).limit(limit)
        if status:
            q = q.where(instances.c.status == status)
        ids = [r[0] for r in self.conn.execute(q)]
        return [rec for rec in (self.get_instance(i) for i in ids) if rec is not None]

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
                result = self.conn.execute(insert(tasks).values(**_task_values(rec), instance_id=instance_id))
                key = result.inserted_primary_key
                assert key is not None
                rec.ref = int(key[0])
            else:
                rec.ref = ref
                values = {k: v for k, v in _task_values(rec).items() if v is not None and k in _UPDATABLE}
                if rec.status == WAITING:
                    values["due_at"] = rec.due_at  # a new wait replaces the old due time, even with none
                self.conn.execute(update(tasks).where(tasks.c.id == ref).values(**values))

    def task_by_ref(self, ref: int) -> TaskRecord | None:
        row = self.conn.execute(select(tasks).where(tasks.c.id == ref)).mappings().first()
        return _task_from_row(row) if row is not None else None

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
        return [_task_from_row(r) for r in rows]

    def instance_tasks(self, instance_id: str) -> list[TaskRecord]:
        rows = self.conn.execute(
            select(tasks).where(tasks.c.instance_id == instance_id).order_by(tasks.c.id)
        ).mappings()
        return [_task_from_row(r) for r in rows]

    def claim(self, ref: int, actor: str | None, at: datetime) -> bool:
        """Mark a ready task as started by ``actor``; False if it is no longer ready."""
        result = self.conn.execute(
            update(tasks)
            .where(and_(tasks.c.id == ref, tasks.c.status == READY))
            .values(status=STARTED, started_at=at, actor=actor)
        )
        return bool(result.rowcount == 1)

    def inbox(
        self,
        instance_id: str | None = None,
        lane: str | None = None,
        family: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Ready and claimed user tasks with their instance's family, variant and pilot."""
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
        if limit:
            q = q.limit(limit)
        return [dict(r) for r in self.conn.execute(q).mappings()]

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
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def get_incident(self, incident_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().first()
        return _incident(row) if row is not None else None

    def list_incidents(self, include_resolved: bool = False) -> list[dict[str, Any]]:
        q = select(incidents).order_by(incidents.c.id.desc())
        if not include_resolved:
            q = q.where(incidents.c.resolved_at.is_(None))
        return [_incident(r) for r in self.conn.execute(q).mappings()]

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

    def instances_waiting_for(self, waits_for: str, instance_id: str | None = None) -> list[str]:
        """Instances with a task waiting for ``waits_for`` (``message:NAME``, ``signal:NAME``)."""
        q = select(tasks.c.instance_id).where(and_(tasks.c.status == WAITING, _waits_for(waits_for)))
        if instance_id:
            q = q.where(tasks.c.instance_id == instance_id)
        return list(dict.fromkeys(r[0] for r in self.conn.execute(q.order_by(tasks.c.id))))

    # -- events ------------------------------------------------------------------

    def add_events(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(
                insert(events),
                [{**r, "detail": _dumps(r["detail"]) if r.get("detail") is not None else None} for r in rows],
            )

    def instance_events(self, instance_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(events).where(events.c.instance_id == instance_id).order_by(events.c.id)
        ).mappings()
        return [{**dict(r), "detail": json.loads(r["detail"]) if r["detail"] else None} for r in rows]


def _incident(row: Any) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "instance": row["instance_id"],
        "task_ref": row["task_ref"],
        "task_id": row["task_id"],
        "topic": row["topic"],
        "error_type": row["error_type"],
        "message": row["message"],
        "attempts": row["attempts"],
        "created_at": row["created_at"],
        "resolved_at": row["resolved_at"],
    }


def _waits_for(token: str) -> Any:
    """Rows waiting for ``token``, alone or among others (``message:reply|timer``)."""
    col = tasks.c.waits_for
    esc = token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(
        col == token,
        col.like(f"{esc}|%", escape="\\"),
        col.like(f"%|{esc}", escape="\\"),
        col.like(f"%|{esc}|%", escape="\\"),
    )


_UPDATABLE = {"status", "started_at", "completed_at", "actor", "ready_at", "waits_for", "due_at", "attempts"}


def _task_values(rec: TaskRecord) -> dict[str, Any]:
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
        "form": _dumps(rec.form) if rec.form is not None else None,
        "waits_for": rec.waits_for,
        "due_at": rec.due_at,
        "attempts": rec.attempts,
    }


def _task_from_row(row: Any) -> TaskRecord:
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
        form=json.loads(row["form"]) if row["form"] else None,
        ref=int(row["id"]),
        instance_id=row["instance_id"],
        waits_for=row["waits_for"],
        due_at=row["due_at"],
        attempts=row["attempts"] or 0,
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _current_revision(conn: Connection) -> str | None:
    """The schema revision, None for a database without flowrun's tables (a lock error is raised)."""
    try:
        row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    except (OperationalError, DBAPIError) as exc:
        text = str(exc.orig).lower()
        if "no such table" not in text and "does not exist" not in text:
            raise
        conn.rollback()
        return None
    return str(row[0]) if row else None


def _sqlite_path(url: str) -> Path | None:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    path = path.split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


#: Engines of this process, so that a forked child never shares their connections.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_inherited_connections() -> None:
    """In a forked child: drop the parent's pooled connections without closing them.

    Closing would end the parent's sessions (PostgreSQL) or disturb its file locks
    (SQLite); the child opens its own connections on first use instead.
    """
    for engine in list(_ENGINES):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_connections)


#: A pooled PostgreSQL connection idle longer than this is checked before use.
_PING_AFTER_IDLE_S = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection that sat idle before handing it out; replace it if the server dropped it.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one more round trip per
    transaction, which cost a third of the throughput with 16 operators on 2 cores
    (every round trip is two context switches). A connection in steady use is not
    pinged; one that sat idle (a worker between passes, the server restarted
    meanwhile) is, and a dead one is replaced transparently.
    """

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_conn: Any, record: Any) -> None:
        record.info["flowrun_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("flowrun_idle_since")
        if since is None or time.monotonic() - since < _PING_AFTER_IDLE_S:
            return
        try:
            cursor = dbapi_conn.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_conn.rollback()
        except Exception as exc:  # noqa: BLE001 - any failure means: use another connection
            raise DisconnectionError(f"pooled connection is gone: {exc}") from None


def _make_engine(url: str, is_sqlite: bool) -> Engine:
    """An engine that keeps a few connections open for the transactions of one process.

    A new PostgreSQL connection costs about 5 ms of server CPU (a backend is forked
    and authenticated) against 0.03 ms for a query on an open one, and a step is
    two or three transactions; on SQLite, closing the last connection checkpoints
    and deletes the WAL, which the next one creates again. So a process keeps its
    connections (one that sat idle is checked first, see :func:`_ping_when_idle`).
    """
    if not is_sqlite:
        engine = create_engine(url, poolclass=QueuePool, pool_size=2, max_overflow=8, pool_recycle=1800)
        _ping_when_idle(engine)
        _ENGINES.add(engine)
        return engine
    if _sqlite_path(url) is None:  # in memory: one connection is the whole database
        poolclass: Any = NullPool
    else:
        poolclass = QueuePool
    engine = create_engine(
        url,
        poolclass=poolclass,
        connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000, "isolation_level": None, "check_same_thread": False},
        **({"pool_size": 1, "max_overflow": 8} if poolclass is QueuePool else {}),
    )
    _ENGINES.add(engine)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("flowrun_write", True):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif options.get("flowrun_snapshot", True):
            conn.exec_driver_sql("BEGIN")
        # else: statements run on their own (autocommit)

    return engine


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
