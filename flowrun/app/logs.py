"""Event logs out (``flowrun export``: CSV, XES, OCEL) and in (``flowrun import-log``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowrun.app.project import Project, list_processes
from flowrun.errors import (
    DataError,
    NotFoundError,
    StateError,
)
from flowrun.models import (
    COMPLETED,
    INSTANCE_COMPLETED,
    READY,
    RUNNING,
    STARTED,
    EventRow,
    InstanceRecord,
    TaskRecord,
)

if TYPE_CHECKING:
    pass


if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import TextIO

    from flowrun.eventlog import CaseData, ColumnMapping, ImportedCase, LogStats, ScannedLog

#: Event log formats ``export_log`` writes.
LOG_FORMATS = ("csv", "xes", "ocel")
#: File suffix -> the format ``import_log`` reads it as (anything else: CSV).
IMPORT_SUFFIXES = {".xes": "xes", ".json": "ocel", ".jsonocel": "ocel"}
#: Process id of the stand-in model row of an imported file (its spec is ``{}``: nothing to run).
IMPORTED_PROCESS_ID = "imported"


@dataclass(frozen=True)
class ExportResult:
    """What ``export_log`` wrote: where, in which format, and how many cases, tasks and events."""

    file: str
    format: str
    cases: int
    tasks: int
    events: int


def export_log(
    project: Project,
    fmt: str,
    out: Path | TextIO,
    process: str | None = None,
    variant: str | None = None,
    pilot: str | None = None,
) -> ExportResult:
    """Write the recorded tasks of the matching instances as a CSV, XES or OCEL 2.0 event log.

    Rows stream from one read transaction straight into the file. A file is
    written under a temporary name and renamed at the end, so a failed export
    leaves no half-written log.

    Args:
        fmt: ``csv``, ``xes`` or ``ocel``.
        out: a file to (over)write, or an open text stream.
        process, variant, pilot: export only instances of this family, variant, pilot.

    Raises:
        NotFoundError: ``process`` is not a family of the project or the store.
        DataError: the file cannot be written.
    """
    from flowrun.eventlog import case_data
    from flowrun.store import case_data_rows, task_log_rows

    if fmt not in LOG_FORMATS:
        raise DataError(f"unknown event log format '{fmt}'; use one of {', '.join(LOG_FORMATS)}")
    if process is not None:
        _check_family(project, process)
    with project.store.read() as tx:
        data = case_data(case_data_rows(tx, process, variant, pilot))
        writer = _log_writer(fmt, _log_name(process, variant, pilot), data)
        rows = task_log_rows(tx, process, variant, pilot)
        if isinstance(out, Path):
            display = project.settings.rel(out)
            stats = _write_file(out, display, lambda stream: writer(rows, stream))
        else:
            display, stats = "-", writer(rows, out)
    return ExportResult(display, fmt, stats.cases, stats.tasks, stats.events)


def _log_writer(fmt: str, name: str, data: CaseData) -> Callable[[Iterable[Any], TextIO], LogStats]:
    from flowrun import eventlog

    if fmt == "csv":
        return lambda rows, out: eventlog.write_csv(rows, out, data)
    if fmt == "xes":
        return lambda rows, out: eventlog.write_xes(rows, out, name, data)
    if fmt == "ocel":
        return lambda rows, out: eventlog.write_ocel(rows, out, data)
    raise AssertionError(fmt)  # export_log checked the format


def _log_name(process: str | None, variant: str | None, pilot: str | None) -> str:
    chosen = [
        f"{label} {value}" for label, value in (("process", process), ("variant", variant), ("pilot", pilot)) if value
    ]
    return "flowrun export" + (f" ({', '.join(chosen)})" if chosen else "")


def _write_file(path: Path, display: str, write: Callable[[TextIO], LogStats]) -> LogStats:

    partial = path.with_name(path.name + ".part")
    try:
        with partial.open("w", encoding="utf-8", newline="") as stream:
            stats = write(stream)
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        reason = exc.strerror or str(exc)
        raise DataError(f"cannot write {display}: {reason}; check the folder exists and is writable") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return stats


def _check_family(project: Project, family: str) -> None:
    """Raise NotFoundError unless ``family`` is a process family of the project or has instances."""
    from flowrun.store import instance_families

    known = {e.family for e in list_processes(project)}
    if family in known:
        return
    with project.store.read() as tx:
        known.update(instance_families(tx))
    if family not in known:
        raise NotFoundError(
            f"no process family '{family}'; the project has {', '.join(sorted(known)) or 'none'} "
            "(see 'flowrun processes')"
        )


@dataclass(frozen=True)
class ImportResult:
    """What ``import_log`` stored: the cases of one file, as one family, variant and pilot."""

    file: str
    sha256: str
    process: str
    variant: str
    pilot: str | None
    cases: int
    running: int
    tasks: int
    #: The case data fields the file gave (``case:<field>`` and ``--data-column`` columns), sorted.
    data_fields: tuple[str, ...] = ()
    #: One line per KPI of flowrun.yaml whose field no imported case has.
    warnings: tuple[str, ...] = ()


#: Reports import progress: ``(stage, done, total)``; stage ``reading`` counts bytes, ``storing`` tasks.
Progress = Callable[[str, int, int], None]


def import_log(
    project: Project,
    path: Path,
    process: str,
    variant: str,
    pilot: str | None = None,
    mapping: ColumnMapping | None = None,
    progress: Progress | None = None,
    fmt: str | None = None,
) -> ImportResult:
    """Bring a task log recorded outside flowrun (CRM export, spreadsheet) into the store.

    Each case becomes an instance of ``process``/``variant`` (completed, or
    running when a task has no end), its rows become tasks, and events are
    written as a run would have. Imported cases can be shown, exported and
    compared, but not stepped. Every row is checked first: one bad row and
    nothing is imported. The file's sha256 keys a stand-in model row, which
    also refuses importing the same file twice.

    The file is streamed: read once in chunks to check it (tasks kept in temporary
    files, see :func:`flowrun.eventlog.scan_log`), then stored in one transaction,
    a share of the cases at a time, so memory stays bounded for a log of any size.

    Args:
        pilot: the pilot of every case; None takes it from the file's pilot column, if any.
        mapping: the file's columns and time format; None reads flowrun's own CSV export.
        progress: told how far reading and storing got (for a progress bar).
        fmt: ``csv``, ``xes`` or ``ocel``; None takes it from the suffix (``.xes``; ``.json``,
            ``.jsonocel``; else CSV). XES trace attributes and OCEL case object attributes
            become the cases' data; the column options of ``mapping`` are for CSV only.

    Raises:
        NotFoundError: the file cannot be read, or ``process`` is not a family of the project.
        DataError: rows are bad (every one is listed with its line number).
        StateError: this file was imported before.
    """
    from flowrun.eventlog import scan_log

    display = project.settings.rel(path)
    fmt = fmt or IMPORT_SUFFIXES.get(path.suffix.lower(), "csv")
    if fmt not in LOG_FORMATS:
        raise DataError(f"unknown event log format '{fmt}'; use one of {', '.join(LOG_FORMATS)}")
    if fmt != "csv" and mapping is not None and _names_columns(mapping):
        raise DataError(
            f"{display} is read as {fmt}: the column, time and delimiter options are for CSV files only; "
            "leave them out (or give --format csv)"
        )
    try:
        stream = path.open("rb")
        size = os.fstat(stream.fileno()).st_size
    except OSError as exc:
        raise NotFoundError(f"cannot read {display}: {exc.strerror}") from None
    with stream:
        _check_family(project, process)
        report = None if progress is None else lambda done: progress("reading", done, size)
        try:
            expect = {"process": process, "variant": variant}
            scanned = scan_log(stream, display, mapping, expect, size, report, fmt)
        except OSError as exc:
            raise NotFoundError(f"cannot read {display}: {exc.strerror}") from None
    try:
        return _store_imported(project, scanned, display, process, variant, pilot, progress)
    finally:
        scanned.close()


def _names_columns(mapping: ColumnMapping) -> bool:
    from flowrun.eventlog import ColumnMapping

    return mapping != ColumnMapping()


def _store_imported(
    project: Project,
    scanned: ScannedLog,
    display: str,
    process: str,
    variant: str,
    pilot: str | None,
    progress: Progress | None,
) -> ImportResult:
    """Store the checked cases of one file in one transaction, 1000 cases at a time."""
    from flowrun.config import max_data_bytes
    from flowrun.store import count_imported, insert_imported

    sha = scanned.sha256
    now = project.clock.now()
    limit = max_data_bytes()
    fields: set[str] = set()
    cases = tasks = running = 0
    with project.store.write() as tx:
        before = count_imported(tx, sha)
        if before:
            raise StateError(
                f"{display} was imported before ({before} cases); importing it again would count them twice"
            )
        tx.ensure_model(sha, IMPORTED_PROCESS_ID, display, "{}", now)
        for chunk in _chunks(scanned.cases(), 1000):
            batch = [_imported_instance(c, sha, display, process, variant, pilot) for c in chunk]
            for rec, _ in batch:
                _check_data_size(rec, display, limit)
                fields.update(rec.data)
            insert_imported(tx, batch, now)
            tx.add_events([e for rec, recs in batch for e in _imported_events(rec, recs, display)])
            cases, tasks = cases + len(batch), tasks + sum(len(recs) for _, recs in batch)
            running += sum(1 for rec, _ in batch if rec.status == RUNNING)
            if progress is not None:
                progress("storing", tasks, scanned.tasks)
    fields.discard("imported_case_id")
    warnings = tuple(_missing_kpi_fields(project, fields))
    return ImportResult(display, sha, process, variant, pilot, cases, running, tasks, tuple(sorted(fields)), warnings)


def _check_data_size(rec: InstanceRecord, display: str, limit: int) -> None:
    """Refuse a case whose data is larger than ``FLOWRUN_MAX_DATA_MB`` (the transaction then stores nothing)."""
    import json

    size = len(json.dumps(rec.data, ensure_ascii=False).encode("utf-8"))
    if size > limit:
        case_id = rec.data["imported_case_id"]
        raise DataError(
            f"{display}: case '{case_id}' has {size} bytes of data, more than FLOWRUN_MAX_DATA_MB allows "
            f"({limit} bytes); leave out the long columns, or raise FLOWRUN_MAX_DATA_MB; nothing was imported"
        )


def _missing_kpi_fields(project: Project, fields: set[str]) -> Iterator[str]:
    """A warning for each outcome KPI of flowrun.yaml whose data field the imported log does not have."""
    from flowrun import __version__

    for kpi, spec in project.settings.kpis.items():
        name = spec.get("field") if isinstance(spec, dict) else None
        if isinstance(name, str) and name not in fields:
            yield (
                f"the log has no field '{name}': its cases will have no {kpi}; export with flowrun >= "
                f"{__version__} or name the column with --data-column"
            )


def _chunks(items: Iterable[ImportedCase], size: int) -> Iterator[list[ImportedCase]]:
    chunk: list[ImportedCase] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _imported_instance(
    case: ImportedCase, sha: str, display: str, process: str, variant: str, pilot: str | None
) -> tuple[InstanceRecord, list[TaskRecord]]:
    rec = InstanceRecord(
        id=uuid.uuid4().hex,
        family=process,
        variant=variant,
        file=display,
        sha256=sha,
        process_id=IMPORTED_PROCESS_ID,
        pilot=pilot if pilot is not None else case.pilot,
        status=RUNNING if case.is_open else INSTANCE_COMPLETED,
        created_at=case.created_at,
        ended_at=case.ended_at,
        version=1,
        data={**case.data, "imported_case_id": case.case_id},
        state="",
    )
    tasks = [
        TaskRecord(
            task_id=f"import-{i}",
            bpmn_id=t.activity_id or t.activity[:255],
            name=t.activity,
            type=t.type,
            lane=t.lane,
            status=t.status,
            ready_at=t.enable,
            started_at=t.start,
            completed_at=t.end,
            actor=t.resource,
        )
        for i, t in enumerate(case.tasks, 1)
    ]
    return rec, tasks


def _imported_events(rec: InstanceRecord, tasks: list[TaskRecord], display: str) -> list[EventRow]:
    """The events a run would have logged, in time order (the store has filled in the task refs)."""
    from flowrun.models import CANCELLED, ERROR

    detail = {
        "pilot": rec.pilot,
        "variant": rec.variant,
        "imported_from": display,
        "case_id": rec.data["imported_case_id"],
    }
    out = [EventRow(rec.id, None, rec.created_at, "instance_started", None, detail)]
    for t in tasks:
        about = {"task": t.bpmn_id, "name": t.name}
        end_kind = t.status if t.status in (COMPLETED, CANCELLED, ERROR) else COMPLETED
        for at, kind, actor in (
            (t.ready_at, READY, None),
            (t.started_at, STARTED, t.actor),
            (t.completed_at, end_kind, t.actor),
        ):
            if at is not None:
                out.append(EventRow(rec.id, t.ref, at, kind, actor, about))
    if rec.ended_at is not None:
        out.append(EventRow(rec.id, None, rec.ended_at, "instance_completed", None))
    out[1:] = sorted(out[1:], key=lambda e: e.at)
    return out
