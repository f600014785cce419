"""Read a task log recorded outside flowrun (a CRM export, a spreadsheet) into cases.

Every row is one task of one case. :class:`ColumnMapping` names the columns; by
default they are those of flowrun's own CSV export, so an export reads back with
no options. Every row is checked before anything is returned, and the bad rows
are reported together as ``line N: what is wrong; how to fix it`` (the first
:data:`MAX_PROBLEMS` of them, and how many there are).

:func:`read_cases` reads a small log into memory. :func:`scan_log` reads a log of
any size in one pass with bounded memory (see :mod:`flowrun.eventlog._spill`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import BinaryIO, NamedTuple

from flowrun.errors import DataError
from flowrun.eventlog._rows import CSV_COLUMNS
from flowrun.eventlog._spill import SpilledCases, TextLines
from flowrun.eventlog.casedata import CSV_PREFIX, RESERVED, Scalar, parse_text
from flowrun.eventlog.csvlog import unquote_spreadsheet_text
from flowrun.models import CANCELLED, COMPLETED, ERROR, READY, STARTED, WAITING

STATUSES = (READY, STARTED, COMPLETED, WAITING, CANCELLED, ERROR)
OPEN = (READY, STARTED, WAITING)
#: Bad rows a refusal lists one by one (the rest are counted).
MAX_PROBLEMS = 100
#: Longest values the store keeps (the columns' sizes).
LIMITS = {"activity": 1024, "activity_id": 255, "lane": 255, "resource": 255, "type": 64}
#: Longest text of one case data cell (the whole data of a case is held to ``FLOWRUN_MAX_DATA_MB``).
MAX_DATA_TEXT = 100_000


@dataclass(frozen=True)
class ColumnMapping:
    """Which column holds what, and how times are written.

    A column left as None is the flowrun export's column of that meaning
    (``case_id``, ``activity``, ``lane``, ``resource``, ``enable_time``,
    ``start_time``, ``end_time``, ``activity_id``, ``type``, ``status``, ``pilot``),
    used when the file has it. A column named here must exist.

    Attributes:
        data: more columns to keep as case data (``--data-column``), by their header name
            or as ``case:NAME``; every ``case:<field>`` column (flowrun's export) is kept anyway.
            A field is stored under its name without the ``case:`` prefix.
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
    data: tuple[str, ...] = ()
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
    #: The row's case data cells (``case:<field>`` and ``--data-column`` columns), typed; empty ones left out.
    data: Mapping[str, Scalar] | None = None

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
    def data(self) -> dict[str, Scalar]:
        """The case's data fields: for each, the value on its latest row (in time order) that has one."""
        out: dict[str, Scalar] = {}
        for task in self.tasks:
            out.update(task.data or {})
        return out

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
    """Parse and check a CSV task log, in memory (see :func:`scan_log` for large files).

    Args:
        lines: the file's text (e.g. the open file).
        source: the file's name, for messages.
        mapping: the columns and time format (default: flowrun's export).
        expect: column -> value every row of a flowrun export must have, such
            as ``{"process": "complaint", "variant": "baseline"}``; checked only
            when the file has all of flowrun's export columns.

    Raises:
        DataError: a named column is missing, or some rows are bad (listed); nothing is returned.
    """
    cases: dict[str, ImportedCase] = {}

    def add(case_id: str, pilot: str | None, task: ImportedTask) -> None:
        found = cases.get(case_id)
        if found is None:
            found = cases[case_id] = ImportedCase(case_id, pilot)
        found.tasks.append(task)

    check_rows(lines, source, mapping, expect, add)
    for case in cases.values():
        case.tasks.sort(key=lambda t: t.first)
    return sorted(cases.values(), key=lambda c: c.created_at)


@dataclass
class ScannedLog:
    """A checked log file: its sha256, how many tasks it holds, and its cases to read back once."""

    sha256: str
    tasks: int
    spilled: SpilledCases

    def cases(self) -> Iterator[ImportedCase]:
        """The cases, each with its tasks in time order; a group of cases at a time, in time order within it."""
        for group in self.spilled.groups():
            yield from sorted(_grouped(group), key=lambda c: c.created_at)

    def close(self) -> None:
        """Remove the temporary files."""
        self.spilled.close()


def scan_log(
    stream: BinaryIO,
    source: str,
    mapping: ColumnMapping | None = None,
    expect: Mapping[str, str] | None = None,
    size: int = 0,
    progress: Callable[[int], None] | None = None,
    fmt: str = "csv",
) -> ScannedLog:
    """Check a task log of any size in one pass, keeping its tasks in temporary files.

    Memory stays bounded: the file is read in chunks (hashed as it goes), and the
    checked tasks are spread over temporary files by case, so that reading the cases
    back (:meth:`ScannedLog.cases`) holds one file's share of them at a time. An XES
    file is parsed as it is read, a trace at a time; an OCEL JSON file is read whole.

    Args:
        stream: the file, opened in binary mode.
        size: its size in bytes (to choose how many temporary files), 0 when unknown.
        progress: called with the number of bytes read so far, after each chunk.
        fmt: ``csv``, ``xes`` or ``ocel`` (see :mod:`flowrun.eventlog.logreader`); the
            column options of ``mapping`` apply to CSV only.

    Raises:
        DataError: the file is not UTF-8 (or not XES / OCEL JSON), a named column is
            missing, or some rows are bad (listed); the temporary files are removed.
    """
    spilled = SpilledCases(size)
    try:
        if fmt == "csv":
            text = TextLines(stream, source, progress)
            tasks = check_rows(text.lines(), source, mapping, expect, spilled.add)
            sha = text.sha256()
        else:
            tasks, sha = _scan_events(stream, source, fmt, expect, progress, spilled)
    except BaseException:
        spilled.close()
        raise
    return ScannedLog(sha, tasks, spilled)


def _scan_events(
    stream: BinaryIO,
    source: str,
    fmt: str,
    expect: Mapping[str, str] | None,
    progress: Callable[[int], None] | None,
    spilled: SpilledCases,
) -> tuple[int, str]:
    from flowrun.eventlog import logreader

    hashed = logreader.Hashed(stream, progress)
    records = logreader.xes_records(hashed, source) if fmt == "xes" else logreader.ocel_records(hashed, source)
    empty = "has no events of a case" if fmt == "ocel" else "has no traces with events"
    tasks = check_records(logreader.HEADER, records, source, ColumnMapping(), expect, spilled.add, empty)
    for _ in hashed.chunks():  # the rest of the file after the closing tag, so the hash is of all of it
        pass
    return tasks, hashed.sha256()


def _grouped(tasks: Iterable[tuple[str, str | None, ImportedTask]]) -> Iterator[ImportedCase]:
    cases: dict[str, ImportedCase] = {}
    for case_id, pilot, task in tasks:
        found = cases.get(case_id)
        if found is None:
            found = cases[case_id] = ImportedCase(case_id, pilot)
        found.tasks.append(task)
    for case in cases.values():
        case.tasks.sort(key=lambda t: t.first)
        yield case


def check_rows(
    lines: Iterable[str],
    source: str,
    mapping: ColumnMapping | None,
    expect: Mapping[str, str] | None,
    add: Callable[[str, str | None, ImportedTask], None],
) -> int:
    """Check every row, handing each good one to ``add(case_id, pilot, task)``; returns how many.

    Raises:
        DataError: as :func:`read_cases`; the first :data:`MAX_PROBLEMS` problems are listed.
    """
    mapping = mapping or ColumnMapping()
    reader = csv.reader(lines, delimiter=mapping.delimiter)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DataError(f"{source}: line 1: {exc}; is it a CSV file?") from None
    if not header:
        raise DataError(f"{source} is empty; it needs a header row naming the columns, then one row per task")
    records = ((line, fields, None) for line, fields in _records(reader, source))
    return check_records(header, records, source, mapping, expect, add)


#: A task as text fields under a header, with its case data when the format gives it typed (XES, OCEL).
Record = tuple[int, list[str], "Mapping[str, Scalar] | None"]


def check_records(
    header: Sequence[str],
    records: Iterable[Record],
    source: str,
    mapping: ColumnMapping,
    expect: Mapping[str, str] | None,
    add: Callable[[str, str | None, ImportedTask], None],
    empty: str = "has a header but no rows",
) -> int:
    """Check every record as :func:`check_rows` does a CSV row (the XES and OCEL readers give records too).

    Args:
        empty: what the refusal of a file without records says about it.
    """
    parser = _RowParser(header, mapping, source, _zone(mapping.timezone), expect)
    problems: list[str] = []
    bad = more = count = 0
    for line, fields, data in records:
        found: list[str] = []
        parsed = parser.parse(line, fields, found, data)
        if found:
            bad += 1
            room = MAX_PROBLEMS - len(problems)
            problems += found[: max(room, 0)]
            more += max(len(found) - max(room, 0), 0)
        if parsed is not None and not problems:
            add(*parsed)
            count += 1
    if problems:
        if more:
            problems.append(f"... and {more} more problem(s) not listed")
        raise DataError(f"{source} has {bad} bad row(s); nothing was imported", problems)
    if not count:
        raise DataError(f"{source} {empty}; nothing was imported")
    return count


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
        self.data = _data_columns(self.header, mapping.data, source)
        is_export = set(CSV_COLUMNS) <= set(self.header)
        self.expect = {self.header.index(k): (k, v) for k, v in (expect or {}).items() if is_export}
        self.width = len(self.header)

    def parse(
        self, line: int, fields: list[str], problems: list[str], typed: Mapping[str, Scalar] | None = None
    ) -> tuple[str, str | None, ImportedTask] | None:
        before = len(problems)
        if len(fields) != self.width:
            problems.append(
                f"line {line}: {len(fields)} fields but the header has {self.width}; "
                f"check the quoting and the delimiter ({self.mapping.delimiter!r}, see --delimiter)"
            )
            return None
        value = {meaning: unquote_spreadsheet_text(fields[i]).strip() for meaning, i in self.index.items()}
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
        data = dict(typed) if typed is not None else self._data(line, fields, problems)
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
            data=data,
        )
        return value["case"], value.get("pilot") or None, task

    def _data(self, line: int, fields: list[str], problems: list[str]) -> dict[str, Scalar] | None:
        if not self.data:
            return None
        out: dict[str, Scalar] = {}
        for name, i in self.data:
            text = unquote_spreadsheet_text(fields[i])
            if len(text) > MAX_DATA_TEXT:
                problems.append(
                    f"line {line}: {self.header[i]} holds {len(text)} characters, more than {MAX_DATA_TEXT}; "
                    "a case attribute is a short value (a score, an answer): shorten it or leave the column out"
                )
                continue
            value = parse_text(text)
            if value is not None:
                out[name] = value
        return out

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


def _data_columns(header: list[str], named: Sequence[str], source: str) -> list[tuple[str, int]]:
    """(field, column position) of the case data columns: every ``case:`` column, and those named."""
    prefixed = ((h.removeprefix(CSV_PREFIX), i) for i, h in enumerate(header) if h.startswith(CSV_PREFIX))
    found = {name: i for name, i in prefixed if name not in RESERVED}
    missing = []
    for name in named:
        bare = name.removeprefix(CSV_PREFIX)
        column = next((c for c in (name, CSV_PREFIX + bare, bare) if c in header), None)
        if column is None:
            missing.append(f"'{name}'")
        else:
            found[bare] = header.index(column)
    if missing:
        raise DataError(
            f"{source} has no column {' nor '.join(missing)} (given with --data-column); "
            f"its columns are: {', '.join(header)}"
        )
    return list(found.items())


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
