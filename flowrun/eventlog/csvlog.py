"""Write an event log as CSV: one row per task, the columns process-mining tools map by name.

``case_id, activity, lane, resource, enable_time, start_time, end_time`` come
first (times ISO 8601 with offset, empty when the task never got there), then
``activity_id, type, status, process, variant, pilot, model_sha256``. The same
layout is what ``flowrun import-log`` reads without any options.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from flowrun.eventlog._rows import CASE, CSV_COLUMNS, ENABLE, END, REF, START, LogRow, LogStats


def write_csv(rows: Iterable[LogRow], out: TextIO) -> LogStats:
    """Write ``rows`` (grouped by case) to ``out``, which should be opened with ``newline=""``.

    Returns:
        How many cases, task rows and lifecycle events (times) were written.
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    cases = tasks = events = 0
    last_case = None
    for row in rows:
        writer.writerow(row[:REF])
        tasks += 1
        events += (row[ENABLE] is not None) + (row[START] is not None) + (row[END] is not None)
        if row[CASE] != last_case:
            cases += 1
            last_case = row[CASE]
    return LogStats(cases=cases, tasks=tasks, events=events)
