"""Read a task log recorded outside flowrun (a CRM export, a spreadsheet) into cases.

Every row is one task of one case. :class:`ColumnMapping` names the columns; by
default they are those of flowrun's own CSV export, so an export reads back with
no options. Every row is checked before anything is returned, and all the bad
rows are reported together as ``line N: what is wrong; how to fix it``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import NamedTuple

from flowrun.errors import DataError
from flowrun.eventlog._rows import CSV_COLUMNS
from flowrun.models import CANCELLED, COMPLETED, ERROR, READY, STARTED, WAITING

STATUSES = (READY, STARTED, COMPLETED, WAITING, CANCELLED, ERROR)
OPEN = (READY, STARTED, WAITING)
#: Longest values the store keeps (the columns' sizes).
LIMITS = {"activity": 1024, "activity_id": 255, "lane": 255, "resource": 255, "type": 64}


@dataclass(frozen=True)
class ColumnMapping:
    """Which column holds what, and how times are written.

    A column left as None is the flowrun export's column of that meaning
    (``case_id``, ``activity``, ``lane``, ``resource``, ``enable_time``,
    ``start_time``, ``end_time``, ``activity_id``, ``type``, ``status``, ``pilot``),
    used when the file has it. A column named here must exist.

    Attributes:
        time_format: a :func:`~datetime.datetime.strptime` format; None reads ISO 8601.
        timezone: the IANA zone of times written without an offset; None means UTC.
        delimiter: the field separator (``;`` for many European spreadsheet exports).
    """

    case: str | None = None
    activity: str | None = None
    lane: str | None = None
    resource: str | None = None
    enable: str | None = None
    start: str | None = None
    end: str | None = None
    activity_id: str | None = None
    type: str | None = None
    status: str | None = None
    pilot: str | None = None
    time_format: str | None = None
    timezone: str | None = None
    delimiter: str = ","


#: Meaning -> the flowrun export's column name.
DEFAULTS = {
    "case": "case_id",
    "activity": "activity",
    "lane": "lane",
    "resource": "resource",
    "enable": "enable_time",
    "start": "start_time",
    "end": "end_time",
    "activity_id": "activity_id",
    "type": "type",
    "status": "status",
    "pilot": "pilot",
}
#: The command-line option that names each column.
OPTIONS = {meaning: f"--{meaning.replace('_', '-')}-column" for meaning in DEFAULTS}
TIMES = ("enable", "start", "end")


class ImportedTask(NamedTuple):
    """One valid row: a task with its times as aware UTC datetimes."""

    line: int
    activity: str
    activity_id: str | None
    type: str
    lane: str | None
    resource: str | None
    status: str
    enable: datetime | None
    start: datetime | None
    end: datetime | None

    @property
    def first(self) -> datetime:
        return min(t for t in (self.enable, self.start, self.end) if t is not None)


@dataclass
class ImportedCase:
    """The tasks of one case, in time order (ties keep the file's order)."""

    case_id: str
    pilot: str | None
    tasks: list[ImportedTask] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return any(t.status in OPEN for t in self.tasks)

    @property
    def created_at(self) -> datetime:
        return min(t.first for t in self.tasks)

    @property
    def ended_at(self) -> datetime | None:
        if self.is_open:
            return None
        return max(t for task in self.tasks for t in (task.enable, task.start, task.end) if t is not None)


def read_cases(
    lines: Iterable[str],
    source: str,
    mapping: ColumnMapping | None = None,
    expect: Mapping[str, str] | None = None,
) -> list[ImportedCase]:
    """Parse and check a CSV task log.

    Args:
        lines: the file's text (e.g. the open file).
        source: the file's name, for messages.
        mapping: the columns and time format (default: flowrun's export).
        expect: column -> value every row of a flowrun export must have, such
            as ``{"process": "complaint", "variant": "baseline"}``; checked only
            when the file has all of flowrun's export columns.

    Raises:
        DataError: a named column is missing, or some rows are bad (all listed); nothing is returned.
    """
    mapping = mapping or ColumnMapping()
    reader = csv.reader(lines, delimiter=mapping.delimiter)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DataError(f"{source}: line 1: {exc}; is it a CSV file?") from None
    if not header:
        raise DataError(f"{source} is empty; it needs a header row naming the columns, then one row per task")
    parser = _RowParser(header, mapping, source, _zone(mapping.timezone), expect)
    cases: dict[str, ImportedCase] = {}
    problems: list[str] = []
    for line, fields in _records(reader, source):
        parsed = parser.parse(line, fields, problems)
        if parsed is None:
            continue
        case_id, pilot, task = parsed
        found = cases.get(case_id)
        if found is None:
            found = cases[case_id] = ImportedCase(case_id, pilot)
        found.tasks.append(task)
    if problems:
        bad = len({p.split(":", 1)[0] for p in problems})
        raise DataError(f"{source} has {bad} bad row(s); nothing was imported", problems)
    if not cases:
        raise DataError(f"{source} has a header but no rows; nothing was imported")
    for case in cases.values():
        case.tasks.sort(key=lambda t: t.first)
    return sorted(cases.values(), key=lambda c: c.created_at)


def _records(reader: Iterator[list[str]], source: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank record."""
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = getattr(reader, "line_num", 0)
            raise DataError(f"{source}: line {line}: {exc}; fix the quoting there") from None
        if fields and any(f.strip() for f in fields):
            yield getattr(reader, "line_num", 0), fields


def _zone(name: str | None) -> tzinfo:
    if not name or name.upper() == "UTC":
        return timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DataError(
            f"unknown time zone '{name}'; use an IANA name such as Europe/Berlin or America/New_York"
        ) from None


class _RowParser:
    """Turns one record into a checked task, or adds its problems to the list."""

    def __init__(
        self,
        header: Sequence[str],
        mapping: ColumnMapping,
        source: str,
        zone: tzinfo,
        expect: Mapping[str, str] | None,
    ) -> None:
        self.header = [h.strip() for h in header]
        self.mapping = mapping
        self.zone = zone
        self.index = _column_index(self.header, mapping, source)
        is_export = set(CSV_COLUMNS) <= set(self.header)
        self.expect = {self.header.index(k): (k, v) for k, v in (expect or {}).items() if is_export}
        self.width = len(self.header)

    def parse(self, line: int, fields: list[str], problems: list[str]) -> tuple[str, str | None, ImportedTask] | None:
        before = len(problems)
        if len(fields) != self.width:
            problems.append(
                f"line {line}: {len(fields)} fields but the header has {self.width}; "
                f"check the quoting and the delimiter ({self.mapping.delimiter!r}, see --delimiter)"
            )
            return None
        value = {meaning: fields[i].strip() for meaning, i in self.index.items()}
        for meaning in ("case", "activity"):
            if not value[meaning]:
                column = self.header[self.index[meaning]]
                problems.append(f"line {line}: no {meaning} in column '{column}'; fill it in or remove the row")
        for meaning, limit in LIMITS.items():
            if len(value.get(meaning, "")) > limit:
                problems.append(f"line {line}: the {meaning} is longer than {limit} characters; shorten it")
        for i, (column, wanted) in self.expect.items():
            if fields[i].strip() and fields[i].strip() != wanted:
                problems.append(
                    f"line {line}: {column} is '{fields[i].strip()}' but --{column} is '{wanted}'; "
                    f"import each {column} on its own (flowrun export --{column} {fields[i].strip()})"
                )
        if not any(value.get(m) for m in TIMES):
            names = ", ".join(self.header[self.index[m]] for m in TIMES if m in self.index)
            problems.append(f"line {line}: no time in {names}; a task needs at least one")
            return None
        unreadable = len(problems)
        times = {meaning: self._time(line, meaning, value.get(meaning, ""), problems) for meaning in TIMES}
        if len(problems) > unreadable:
            return None
        status = self._status(line, value.get("status", ""), times, problems)
        self._check_order(line, times, problems)
        if len(problems) > before or status is None:
            return None
        task = ImportedTask(
            line=line,
            activity=value["activity"],
            activity_id=value.get("activity_id") or None,
            type=value.get("type") or "task",
            lane=value.get("lane") or None,
            resource=value.get("resource") or None,
            status=status,
            enable=times["enable"],
            start=times["start"],
            end=times["end"],
        )
        return value["case"], value.get("pilot") or None, task

    def _time(self, line: int, meaning: str, text: str, problems: list[str]) -> datetime | None:
        if not text:
            return None
        fmt = self.mapping.time_format
        try:
            when = datetime.strptime(text, fmt) if fmt else _iso(text)
        except ValueError:
            column = self.header[self.index[meaning]]
            if fmt:
                problems.append(
                    f"line {line}: {column} '{text}' is not a time in the format '{fmt}'; "
                    "fix the value, or give the file's format with --time-format"
                )
            else:
                problems.append(
                    f"line {line}: {column} '{text}' is not an ISO 8601 time such as 2026-03-02T09:30:00+01:00; "
                    "fix the value, or give the file's format with --time-format (e.g. '%d/%m/%Y %H:%M')"
                )
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=self.zone)
        try:
            return when.astimezone(timezone.utc)
        except OverflowError:  # 0001-01-01T00:00:00+14:00 is before the year 1 in UTC
            column = self.header[self.index[meaning]]
            problems.append(f"line {line}: {column} '{text}' lies outside the years 1 to 9999 in UTC; fix the value")
            return None

    def _status(self, line: int, text: str, times: Mapping[str, datetime | None], problems: list[str]) -> str | None:
        if not text:
            return COMPLETED if times["end"] else STARTED if times["start"] else READY
        status = text.lower()
        if status not in STATUSES:
            problems.append(f"line {line}: status '{text}' is not one of {', '.join(STATUSES)}; fix it")
            return None
        if status == COMPLETED and times["end"] is None:
            problems.append(f"line {line}: status is completed but there is no end time; add it")
            return None
        return status

    def _check_order(self, line: int, times: Mapping[str, datetime | None], problems: list[str]) -> None:
        present = [(m, t) for m in TIMES if (t := times.get(m)) is not None]
        for (earlier, t1), (later, t2) in zip(present, present[1:], strict=False):
            if t2 < t1:
                a, b = self.header[self.index[later]], self.header[self.index[earlier]]
                problems.append(
                    f"line {line}: {a} {t2.isoformat()} is before {b} {t1.isoformat()}; fix the times (swapped?)"
                )


def _column_index(header: list[str], mapping: ColumnMapping, source: str) -> dict[str, int]:
    """Meaning -> column position; raises when a required or named column is missing."""
    index: dict[str, int] = {}
    missing = []
    for meaning, default in DEFAULTS.items():
        named = getattr(mapping, meaning)
        name = named or default
        if name in header:
            index[meaning] = header.index(name)
        elif named or meaning in ("case", "activity"):
            missing.append(f"'{name}' (name it with {OPTIONS[meaning]})")
    if missing:
        raise DataError(f"{source} has no column {' nor '.join(missing)}; its columns are: {', '.join(header)}")
    if not any(m in index for m in TIMES):
        raise DataError(
            f"{source} has no time column ({', '.join(DEFAULTS[m] for m in TIMES)}); "
            "name at least one with --enable-column, --start-column or --end-column"
        )
    return index


def _iso(text: str) -> datetime:
    """An ISO 8601 time; a trailing Z means UTC (also on Python 3.10)."""
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)
