"""SQLite keeps times as integer microseconds since 1970 UTC instead of ISO text.

Reading a million task times as text and converting them in SQL cost the pilot analysis a sixth
of its time; integers are read as they are. The columns keep their declared type (``DATETIME``),
so only the values change. PostgreSQL keeps ``timestamp with time zone``: nothing to do there.

The conversion is exact: text is parsed by Python's ``datetime.fromisoformat`` (not SQLite's
``julianday``, which is a double and loses tens of microseconds), batch by batch.

Revision ID: 0005_epoch_times
Revises: 0004_meta
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from alembic import op

revision = "0005_epoch_times"
down_revision = "0004_meta"
branch_labels = None
depends_on = None

#: The time columns of each table, by their primary key.
TIME_COLUMNS = {
    ("models", "sha256"): ("created_at",),
    ("instances", "id"): ("created_at", "ended_at", "updated_at"),
    ("tasks", "id"): ("ready_at", "started_at", "completed_at", "due_at", "lease_until"),
    ("events", "id"): ("at",),
    ("incidents", "id"): ("created_at", "resolved_at"),
}

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_BATCH = 10_000


def _to_micros(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - _EPOCH) // _MICROSECOND


def _to_text(value: Any) -> Any:
    if not isinstance(value, int):
        return value
    return (_EPOCH + timedelta(microseconds=value)).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _convert(change: Callable[[Any], Any], stored: str) -> None:
    """Rewrite every time column whose values are of SQLite type ``stored`` with ``change``."""
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        return
    raw: Any = conn.connection.driver_connection
    for (table, key), columns in TIME_COLUMNS.items():
        existing = {row[1] for row in raw.execute(f"PRAGMA table_info({table})")}
        for column in (c for c in columns if c in existing):
            query = f"SELECT {key}, {column} FROM {table} WHERE typeof({column}) = ? ORDER BY {key}"
            rows = raw.execute(query, (stored,)).fetchall()
            for start in range(0, len(rows), _BATCH):
                batch = [(change(value), k) for k, value in rows[start : start + _BATCH]]
                raw.executemany(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", batch)


def upgrade() -> None:
    _convert(_to_micros, "text")


def downgrade() -> None:
    _convert(_to_text, "integer")
