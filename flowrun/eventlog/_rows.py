"""The shape of one task row of an event log, as the store reads it and every writer takes it.

A row is a plain tuple (no objects, no per-row conversion) so that a million of
them stream from the database to a file quickly. Times are ISO 8601 strings with
an offset (``2026-03-02T08:00:00+00:00``) or None; the store formats them.
Rows arrive grouped by case, tasks in the order they were recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowrun.models import LOG_COLUMNS

#: Column names, in row order (the store streams rows in this order).
COLUMNS = LOG_COLUMNS

CASE, ACTIVITY, LANE, RESOURCE, ENABLE, START, END, ACTIVITY_ID, TYPE, STATUS = range(10)
PROCESS, VARIANT, PILOT, SHA256, REF = range(10, 15)

#: The columns of flowrun's CSV export (every column but the task ref, which is an id of one database).
CSV_COLUMNS = COLUMNS[:REF]

#: A task row: see :data:`COLUMNS` for what each position holds.
LogRow = tuple[Any, ...]


@dataclass(frozen=True)
class LogStats:
    """What an export wrote: cases (traces), task rows, and events (lifecycle transitions)."""

    cases: int
    tasks: int
    events: int
