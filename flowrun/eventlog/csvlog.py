"""Write an event log as CSV: one row per task, the columns process-mining tools map by name.

``case_id, activity, lane, resource, enable_time, start_time, end_time`` come
first (times ISO 8601 with offset, empty when the task never got there), then
``activity_id, type, status, process, variant, pilot, model_sha256``. The same
layout is what ``flowrun import-log`` reads without any options.

Task and actor names come from diagrams and operators. A text cell starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to a spreadsheet
(``=HYPERLINK(...)`` runs when the file is opened), so such a cell is written with a
single quote in front, as OWASP recommends (:func:`spreadsheet_text`); the importer
takes the quote off again. XES and OCEL files are written exactly.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, TextIO

from flowrun.eventlog._rows import CASE, CSV_COLUMNS, ENABLE, END, REF, START, LogRow, LogStats
from flowrun.eventlog.casedata import CSV_PREFIX, CaseData, Scalar, csv_text

#: What a spreadsheet takes a cell starting with for a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: Any) -> Any:
    """``value``, with a ``'`` in front when it is text a spreadsheet would run as a formula.

    Numbers are left alone (``-1.5`` is a number, not a formula); only ``str`` cells change.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def unquote_spreadsheet_text(text: str) -> str:
    """The inverse of :func:`spreadsheet_text`, for reading an export back."""
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


def _cell(value: Scalar) -> str:
    """A case attribute's cell: text gets the formula quote, numbers not (-2 is a number, not a formula)."""
    return str(spreadsheet_text(value)) if isinstance(value, str) else csv_text(value)


def write_csv(rows: Iterable[LogRow], out: TextIO, data: CaseData | None = None) -> LogStats:
    """Write ``rows`` (grouped by case) to ``out``, which should be opened with ``newline=""``.

    Args:
        data: the cases' attributes, written as columns ``case:<field>`` after flowrun's
            columns, on every row of the case (empty where the case has no such field).

    Returns:
        How many cases, task rows and lifecycle events (times) were written.
    """
    data = data or CaseData()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(CSV_PREFIX + name for name in data.fields)])
    cases = tasks = events = 0
    last_case = None
    extra: list[str] = []
    for row in rows:
        if row[CASE] != last_case:
            cases += 1
            last_case = row[CASE]
            attrs = data.of(last_case)
            extra = [_cell(attrs[n]) if n in attrs else "" for n in data.fields]
        writer.writerow([*(spreadsheet_text(cell) for cell in row[:REF]), *extra])
        tasks += 1
        events += (row[ENABLE] is not None) + (row[START] is not None) + (row[END] is not None)
    return LogStats(cases=cases, tasks=tasks, events=events)
