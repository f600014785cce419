"""The tables of a flowrun database (SQLAlchemy Core), the same on SQLite and PostgreSQL.

* ``models``: one row per model version (sha256 of the BPMN file): the
  serialised process definition, stored once instead of inside every instance.
* ``instances``: one row per case, with its engine state and a version number
  that every write checks (optimistic concurrency).
* ``tasks``: one row per task that ran or waits; ``id`` is the short ``ref``
  operators type. The inbox reads only this table and ``instances``' columns.
* ``events``: the append-only log of every transition.
* ``incidents``: steps that failed for good, until retried.
* ``flowrun_meta``: facts about the database itself, by key: ``migrated_by`` is
  the flowrun version that last created or migrated the schema, so that an older
  flowrun can say which version it needs (see :data:`MIGRATED_BY`).

Times are stored as UTC and always come back timezone-aware.
"""

from __future__ import annotations

from datetime import datetime, timezone
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
from sqlalchemy.types import TypeDecorator

#: The Alembic revisions of flowrun's schema, oldest first (the files in ``migrations/versions``).
REVISIONS = ("0001_initial", "0002_waits", "0003_jobs", "0004_meta")

#: The Alembic revision this code expects; checked on open without importing Alembic.
HEAD_REVISION = REVISIONS[-1]

#: The ``flowrun_meta`` key of the flowrun version that last created or migrated the schema.
MIGRATED_BY = "migrated_by"


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC (naive values from SQLite come back as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


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
    Index("ix_instances_family_variant", "family", "variant"),
    Index("ix_instances_status", "status"),
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

flowrun_meta = Table(
    "flowrun_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)
