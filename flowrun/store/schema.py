"""The tables of a flowrun database (SQLAlchemy Core), the same on SQLite and PostgreSQL.

* ``models``: one row per model version (sha256 of the BPMN file): the
  serialised process definition, stored once instead of inside every instance.
* ``instances``: one row per case, with its engine state and a version number
  that every write checks (optimistic concurrency).
* ``tasks``: one row per task that ran or waits; ``id`` is the short ``ref``
  operators type. The inbox reads only this table and ``instances``' columns.
* ``events``: the append-only log of every transition.
* ``incidents``: steps that failed for good, until retried.
* ``claims``: each interval a person held a task (touch time counts only within
  the completer's claims); see migration ``0006_operators`` for the task columns
  that say who may take a task, its due date and priority, and the case's key.
* ``flowrun_meta``: facts about the database itself, by key: ``migrated_by`` is
  the flowrun version that last created or migrated the schema, so that an older
  flowrun can say which version it needs (see :data:`MIGRATED_BY`).

Times are stored as UTC and always come back timezone-aware (on SQLite as integer
microseconds since 1970, see :class:`UTCDateTime`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator, UserDefinedType

from flowrun.errors import StoreError

#: The Alembic revisions of flowrun's schema, oldest first (the files in ``migrations/versions``).
REVISIONS = ("0001_initial", "0002_waits", "0003_jobs", "0004_meta", "0005_epoch_times", "0006_operators")

#: The Alembic revision this code expects; checked on open without importing Alembic.
HEAD_REVISION = REVISIONS[-1]

#: The ``flowrun_meta`` key of the flowrun version that last created or migrated the schema.
MIGRATED_BY = "migrated_by"


#: SQLite stores a time as whole microseconds since 1970-01-01 UTC (see :class:`UTCDateTime`).
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(value: datetime) -> int:
    """``value`` (aware, or naive taken as UTC) as whole microseconds since :data:`EPOCH`; exact."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return (value - EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    """The aware UTC datetime ``value`` microseconds after :data:`EPOCH`; exact."""
    return EPOCH + timedelta(microseconds=int(value))


class _Micros(UserDefinedType[int]):
    """SQLite's column type for a time: an integer in a column still declared ``DATETIME``.

    Integers rather than SQLAlchemy's default ISO text: the pilot analysis reads millions of
    times, and converting text to numbers in SQL (``julianday``) cost it a sixth of its time.
    The declared type is unchanged, so databases made before and after this change have the
    same DDL; migration ``0005_epoch_times`` converts the stored values.
    """

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "DATETIME"


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC; it always comes back aware.

    PostgreSQL: ``timestamp with time zone``. SQLite: whole microseconds since 1970 UTC
    (:func:`to_micros`), so SQL compares, sorts and subtracts times as numbers.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_Micros())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Any) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return to_micros(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        if isinstance(value, int):
            return from_micros(value)
        # Anything else in a SQLite time column was not written by flowrun.
        raise StoreError(
            f"the database holds {str(value)[:40]!r} where a time belongs: it was changed outside flowrun; "
            "restore the database from a backup"
        )


metadata = MetaData()

models = Table(
    "models",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("process_id", String(255), nullable=False),
    Column("file", String(1024), nullable=False),
    Column("spec", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

instances = Table(
    "instances",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("family", String(255), nullable=False),
    Column("variant", String(255), nullable=False),
    Column("file", String(1024), nullable=False),
    Column("sha256", String(64), ForeignKey("models.sha256"), nullable=False),
    Column("process_id", String(255), nullable=False),
    Column("pilot", String(255)),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    Column("data", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("error", Text),
    Column("business_key", String(255)),
    Index("ix_instances_family_variant", "family", "variant"),
    Index("ix_instances_status", "status"),
    Index("ux_instances_family_key", "family", "business_key", unique=True),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("instance_id", String(32), ForeignKey("instances.id"), nullable=False),
    Column("task_id", String(36), nullable=False),
    Column("bpmn_id", String(255), nullable=False),
    Column("name", String(1024), nullable=False),
    Column("type", String(64), nullable=False),
    Column("lane", String(255)),
    Column("status", String(16), nullable=False),
    Column("ready_at", UTCDateTime),
    Column("started_at", UTCDateTime),
    Column("completed_at", UTCDateTime),
    Column("actor", String(255)),
    Column("form", Text),
    Column("waits_for", String(255)),
    Column("due_at", UTCDateTime),
    Column("lease_owner", String(255)),
    Column("lease_until", UTCDateTime),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("assignee", String(255)),
    Column("candidates", Text),
    Column("deadline_at", UTCDateTime),
    Column("priority", Integer),
    UniqueConstraint("instance_id", "task_id", name="uq_tasks_instance_task"),
    Index("ix_tasks_status", "status"),
    Index("ix_tasks_waiting", "status", "waits_for", "due_at"),
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("instance_id", String(32), ForeignKey("instances.id"), nullable=False),
    Column("task_ref", BigInteger),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("actor", String(255)),
    Column("detail", Text),
    Index("ix_events_instance", "instance_id"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("instance_id", String(32), ForeignKey("instances.id"), nullable=False),
    Column("task_ref", BigInteger),
    Column("task_id", String(36), nullable=False),
    Column("topic", String(255)),
    Column("error_type", String(255), nullable=False),
    Column("message", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Index("ix_incidents_open", "resolved_at", "instance_id"),
)

claims = Table(
    "claims",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("task_ref", BigInteger, nullable=False),
    Column("instance_id", String(32), ForeignKey("instances.id"), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("claimed_at", UTCDateTime, nullable=False),
    Column("released_at", UTCDateTime),
    Column("outcome", String(32)),
    Index("ix_claims_task", "task_ref"),
)

flowrun_meta = Table(
    "flowrun_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)
