"""``flowrun import-log``: pilots recorded outside flowrun come into the store, checked row by row, all or nothing."""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import flowrun
from flowrun import app, eventlog
from flowrun.clock import iso
from flowrun.errors import DataError, NotFoundError, StateError
from flowrun.eventlog import ColumnMapping
from tests.helpers import T0, _database_url, db_path, query
from tests.test_eventlog import FLOWRUN_ENV, Recorded, read_csv, record_example

TABLES = ("models", "instances", "tasks", "events")

CRM = """\
Ticket,Step,Team,Agent,Opened,Picked up,Closed
CRM-1,Log call,Service Desk,dana,02/03/2026 09:00,02/03/2026 09:00,02/03/2026 09:06
CRM-1,Investigate,Billing,ed,02/03/2026 09:06,02/03/2026 10:30,02/03/2026 11:15
CRM-2,Log call,Service Desk,dana,02/03/2026 09:20,02/03/2026 09:25,02/03/2026 09:31
CRM-1,Call back,Service Desk,dana,02/03/2026 11:15,02/03/2026 13:00,02/03/2026 13:10
CRM-2,Investigate,Billing,,02/03/2026 09:31,,
"""
CRM_OPTIONS = (
    "--case-column", "Ticket", "--activity-column", "Step", "--lane-column", "Team", "--resource-column", "Agent",
    "--enable-column", "Opened", "--start-column", "Picked up", "--end-column", "Closed",
    "--time-format", "%d/%m/%Y %H:%M",
)  # fmt: skip


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    with pytest.MonkeyPatch.context() as mp:
        for name in FLOWRUN_ENV:
            mp.delenv(name, raising=False)
        yield record_example(tmp_path_factory.mktemp("import") / "proj")


def counts(project_dir: Path) -> dict[str, int]:
    return {table: query(project_dir, f"SELECT count(*) FROM {table}")[0][0] for table in TABLES}


def by_case(rows: list[dict[str, str]], drop: tuple[str, ...] = ("case_id", "model_sha256")) -> Counter[Any]:
    """The rows grouped into cases, without the columns that are ids of one database."""
    cases: dict[str, list[tuple[str, ...]]] = {}
    for r in rows:
        cases.setdefault(r["case_id"], []).append(tuple(v for k, v in r.items() if k not in drop))
    return Counter(tuple(c) for c in cases.values())


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- round trip ---------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["baseline", "reengineered"])
def test_export_import_export_gives_the_same_rows(
    recorded: Recorded, project: app.Project, tmp_path: Path, variant: str
) -> None:
    """A flowrun export, imported into another project and exported again, has the same rows but for ids."""
    first = tmp_path / "first.csv"
    recorded.export("csv", first, variant=variant)

    result = app.import_log(project, first, "complaint", variant)
    app.export_log(project, "csv", tmp_path / "again.csv")

    before, after = read_csv(first), read_csv(tmp_path / "again.csv")
    assert by_case(after) == by_case(before)
    assert [r["activity"] for r in after] == [r["activity"] for r in before]  # cases and tasks in the same order
    assert {r["model_sha256"] for r in after} == {hashlib.sha256(first.read_bytes()).hexdigest()}
    assert (result.cases, result.tasks) == (len({r["case_id"] for r in before}), len(before))


def test_imported_cases_keep_their_times_status_and_cycle(recorded, project, tmp_path):
    """Created/ended times, status, pilot and cycle time of every case survive the round trip."""
    recorded.export("csv", tmp_path / "log.csv", variant="baseline")
    app.import_log(project, tmp_path / "log.csv", "complaint", "baseline")

    def cases(p: app.Project) -> Counter[Any]:
        views = [app.show(p, i.id) for i in app.instances(p)]
        return Counter(
            (v.status, v.pilot, v.created_at, v.ended_at, v.cycle_s) for v in views if v.variant == "baseline"
        )

    assert cases(project) == cases(recorded.project)
    assert sum(cases(project).values()) == 5


def test_imported_rows_are_the_store_rows(recorded, project, project_dir, tmp_path):
    """Instances, a stand-in model row, tasks and events land in the tables; foreign keys hold."""
    path = tmp_path / "log.csv"
    recorded.export("csv", path, pilot="pilot-C")
    result = app.import_log(project, path, "complaint", "baseline", pilot="imported-C")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()

    assert result.sha256 == sha
    assert query(project_dir, "SELECT sha256, process_id, spec FROM models") == [(sha, "imported", "{}")]
    [(iid, status, pilot, file, state, data)] = query(
        project_dir, "SELECT id, status, pilot, file, state, data FROM instances"
    )
    assert (status, pilot, state) == ("running", "imported-C", "")
    assert file == str(path)
    [(original,)] = query(recorded.dir, "SELECT data FROM instances WHERE id = ?", recorded.running)
    scalars = {k: v for k, v in json.loads(original).items() if isinstance(v, (str, int, float, bool))}
    assert scalars  # the case's record form: what the export carries as case:<field> columns
    assert json.loads(data) == {**scalars, "imported_case_id": recorded.running}
    if _database_url(project_dir) is None:  # PostgreSQL checks foreign keys on every write itself
        assert query(project_dir, "PRAGMA foreign_key_check") == []
    kinds = [k for (k,) in query(project_dir, "SELECT kind FROM events WHERE instance_id = ? ORDER BY id", iid)]
    assert kinds == [
        "instance_started",
        *("ready", "started", "completed"),  # Complaint received
        *("ready", "started", "completed"),  # Record complaint
        "ready",  # Analyse needs, still open
    ]


# -- imported cases in the rest of flowrun ------------------------------------------


@pytest.fixture
def imported_running(recorded: Recorded, project: app.Project, tmp_path: Path) -> str:
    recorded.export("csv", tmp_path / "log.csv", pilot="pilot-C")
    app.import_log(project, tmp_path / "log.csv", "complaint", "baseline")
    return app.instances(project)[0].id


def test_show_and_history_of_an_imported_case(cli, project_dir, imported_running):
    """show and history work; the open task is shown as waiting for the imported source."""
    shown = cli(project_dir, "show", imported_running, "--json")
    assert shown.exit_code == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert (view["status"], view["pilot"]) == ("running", "pilot-C")
    assert [(w["name"], w["waits_for"]) for w in view["waiting_for"]] == [("Analyse needs", "imported:ready")]
    history = cli(project_dir, "history", imported_running, "--json")
    assert history.exit_code == 0, history.stderr
    assert [t["name"] for t in json.loads(history.stdout)] == [
        "Complaint received",
        "Record complaint",
        "Analyse needs",
    ]
    assert cli(project_dir, "history", imported_running).exit_code == 0


def test_imported_tasks_cannot_be_worked_on(cli, project, project_dir, imported_running):
    """They are not in the inbox, and 'flowrun do' refuses them cleanly without touching the store."""
    before = counts(project_dir)
    assert app.inbox(project) == []
    refs = {t.name: t.ref for t in app.history(project, imported_running)[1]}

    open_task = cli(project_dir, "do", str(refs["Analyse needs"]), "--data", "severity=low")
    done_task = cli(project_dir, "do", str(refs["Record complaint"]), "--data", "customer_name=x")
    claimed = cli(project_dir, "claim", str(refs["Analyse needs"]))

    assert (open_task.exit_code, claimed.exit_code, done_task.exit_code) == (1, 1, 3)
    assert "imported from an event log" in open_task.stderr
    assert "was already completed" in done_task.stderr
    assert "Traceback" not in open_task.stderr + done_task.stderr + claimed.stderr
    assert cli(project_dir, "worker", "--once").exit_code == 0
    assert counts(project_dir) == before


# -- a CRM export with its own columns ------------------------------------------------


def test_crm_export_with_a_column_mapping(cli, project, project_dir, tmp_path):
    """Other headers and day-first times: cases, lanes, people and times come out right."""
    crm = write(tmp_path / "crm.csv", CRM)

    result = cli(project_dir, "import-log", crm, "--process", "complaint", "--variant", "crm-pilot", "--pilot", "north",
                 *CRM_OPTIONS)  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert (
        result.stdout
        == f"imported 2 case(s) (1 still running) with 5 task(s) from {crm} as complaint:crm-pilot, pilot north\n"
    )
    app.export_log(project, "csv", tmp_path / "back.csv")
    rows = read_csv(tmp_path / "back.csv")
    cases = {iid: [r for r in rows if r["case_id"] == iid] for iid in dict.fromkeys(r["case_id"] for r in rows)}
    first, second = cases.values()

    def at(hm: str) -> str:
        return f"2026-03-02T{hm}:00+00:00"

    fields = ("activity", "lane", "resource", "enable_time", "start_time", "end_time")
    assert [tuple(r[f] for f in fields) for r in first] == [
        ("Log call", "Service Desk", "dana", at("09:00"), at("09:00"), at("09:06")),
        ("Investigate", "Billing", "ed", at("09:06"), at("10:30"), at("11:15")),
        ("Call back", "Service Desk", "dana", at("11:15"), at("13:00"), at("13:10")),
    ]
    assert {(r["type"], r["status"], r["variant"], r["pilot"]) for r in first} == {
        ("task", "completed", "crm-pilot", "north")
    }
    assert [(r["activity"], r["status"], r["end_time"]) for r in second] == [
        ("Log call", "completed", "2026-03-02T09:31:00+00:00"),
        ("Investigate", "ready", ""),
    ]
    views = [app.show(project, iid) for iid in cases]
    assert [(v.status, v.cycle_s, v.data) for v in views] == [
        ("completed", 4 * 3600 + 10 * 60, {"imported_case_id": "CRM-1"}),
        ("running", None, {"imported_case_id": "CRM-2"}),
    ]


def test_naive_times_in_a_time_zone_and_semicolons(project, tmp_path):
    """--timezone places naive times (Berlin is UTC+1 in March); --delimiter reads ';' files; a BOM is fine."""
    text = "\ufeffcase;activity;end\r\nA;Intake;2026-03-02 09:00\r\nA;Close;2026-03-02T10:30:00+00:00\r\n"
    path = write(tmp_path / "excel.csv", text)
    mapping = ColumnMapping(case="case", end="end", timezone="Europe/Berlin", delimiter=";")

    app.import_log(project, path, "complaint", "spreadsheet", mapping=mapping)

    [inst] = app.instances(project)
    view, tasks = app.history(project, inst.id)
    assert [(t.name, iso(t.completed_at), t.ready_at, t.started_at) for t in tasks] == [
        ("Intake", "2026-03-02T08:00:00+00:00", None, None),
        ("Close", "2026-03-02T10:30:00+00:00", None, None),
    ]
    assert view.cycle_s == 2.5 * 3600


def test_cli_import_json(cli, project_dir, tmp_path):
    """--json reports the import for scripts."""
    crm = write(tmp_path / "crm.csv", CRM)
    result = cli(project_dir, "import-log", crm, "--process", "complaint", "--variant", "crm", *CRM_OPTIONS, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "file": str(crm),
        "sha256": hashlib.sha256(crm.read_bytes()).hexdigest(),
        "process": "complaint",
        "variant": "crm",
        "pilot": None,
        "cases": 2,
        "running": 1,
        "tasks": 5,
        "data_fields": [],
        "warnings": [
            f"the log has no field '{field}': its cases will have no {kpi}; export with flowrun >= "
            f"{flowrun.__version__} or name the column with --data-column"
            for kpi, field in (("satisfaction", "satisfaction"), ("nps", "nps"), ("fcr", "resolved_first_contact"))
        ],
    }


# -- bad input: nothing is imported ---------------------------------------------------

BAD = """\
Ticket,Step,Team,Agent,Opened,Picked up,Closed
CRM-1,Log call,Service Desk,dana,02/03/2026 09:00,02/03/2026 09:00,02/03/2026 09:06
,Investigate,Billing,ed,02/03/2026 09:06,02/03/2026 10:30,02/03/2026 11:15
CRM-2,Log call,Service Desk,dana,31/02/2026 09:20,02/03/2026 09:25,02/03/2026 09:31
CRM-2,Investigate,Billing,ed,02/03/2026 10:00,02/03/2026 11:00,02/03/2026 10:30
CRM-3,,Billing,ed,,,
CRM-3,Call back,Service Desk,dana,02/03/2026 11:15
CRM-4,Call back,Service Desk,dana,2026-03-02T11:15,,
"""


def test_bad_rows_are_all_reported_and_nothing_is_imported(cli, project, project_dir, tmp_path):
    """Every bad row is named by its line, with what is wrong and how to fix it; the store is untouched."""
    app.start(project, "complaint:baseline")
    before = counts(project_dir)
    bad = write(tmp_path / "bad.csv", BAD)

    result = cli(project_dir, "import-log", bad, "--process", "complaint", "--variant", "crm", *CRM_OPTIONS)

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {bad} has 6 bad row(s); nothing was imported",
        "  - line 3: no case in column 'Ticket'; fill it in or remove the row",
        "  - line 4: Opened '31/02/2026 09:20' is not a time in the format '%d/%m/%Y %H:%M'; "
        "fix the value, or give the file's format with --time-format",
        "  - line 5: Closed 2026-03-02T10:30:00+00:00 is before Picked up 2026-03-02T11:00:00+00:00; "
        "fix the times (swapped?)",
        "  - line 6: no activity in column 'Step'; fill it in or remove the row",
        "  - line 6: no time in Opened, Picked up, Closed; a task needs at least one",
        "  - line 7: 5 fields but the header has 7; check the quoting and the delimiter (',', see --delimiter)",
        "  - line 8: Opened '2026-03-02T11:15' is not a time in the format '%d/%m/%Y %H:%M'; "
        "fix the value, or give the file's format with --time-format",
    ]
    assert counts(project_dir) == before


HEAD = "case_id,activity,end_time\n"
ROW = "A,B,2026-03-02\n"


@pytest.mark.fresh_database
@pytest.mark.parametrize(
    ("text", "mapping", "message"),
    [
        ("Ticket,activity,end_time\n", ColumnMapping(),
         "has no column 'case_id' (name it with --case-column); its columns are: Ticket, activity, end_time"),
        (HEAD, ColumnMapping(lane="Team"), "has no column 'Team' (name it with --lane-column)"),
        ("case_id,activity,when\n" + ROW, ColumnMapping(), "has no time column (enable_time, start_time, end_time)"),
        (HEAD, ColumnMapping(), "has a header but no rows"),
        ("", ColumnMapping(), "is empty"),
        (HEAD + ROW, ColumnMapping(timezone="Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        ("case_id,activity,end_time,status\nA,B,2026-03-02,done\n", ColumnMapping(),
         "line 2: status 'done' is not one of"),
        ("case_id,activity,end_time,status\nA,B,,completed\n", ColumnMapping(), "line 2: no time in end_time"),
        ("case_id,activity,start_time,status\nA,B,2026-03-02,completed\n", ColumnMapping(),
         "line 2: status is completed but there is no end time"),
        (HEAD + 'A,"B,2026-03-02\n', ColumnMapping(), "line 2: 2 fields but the header has 3"),
    ],
)  # fmt: skip
def test_file_level_problems(project, project_dir, tmp_path, text, mapping, message):
    """Missing or misnamed columns, empty files, unknown time zones: a clear message, nothing written."""
    path = write(tmp_path / "log.csv", text)
    with pytest.raises(DataError) as caught:
        app.import_log(project, path, "complaint", "x", mapping=mapping)
    assert message in str(caught.value)
    assert not db_path(project_dir).exists()  # checked before the database is even opened


def test_variant_of_a_flowrun_export_must_match(recorded, project, tmp_path):
    """A flowrun export of several variants is not silently filed under one."""
    recorded.export("csv", tmp_path / "log.csv")
    with pytest.raises(DataError) as caught:
        app.import_log(project, tmp_path / "log.csv", "complaint", "baseline")
    problems = caught.value.problems
    assert len(problems) == sum(1 for r in read_csv(tmp_path / "log.csv") if r["variant"] == "reengineered")
    assert problems[0].endswith(
        "variant is 'reengineered' but --variant is 'baseline'; "
        "import each variant on its own (flowrun export --variant reengineered)"
    )


def test_not_utf8(project, tmp_path):
    """A file in another encoding is refused with the way to save it."""
    path = tmp_path / "latin1.csv"
    path.write_bytes("case_id,activity,end_time\nA,Prüfung,2026-03-02\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"is not UTF-8 text \(byte 30\); save it as UTF-8"):
        app.import_log(project, path, "complaint", "x")


def test_the_same_file_is_not_imported_twice(cli, project_dir, tmp_path):
    """A second import of the same file would count its cases twice: refused, nothing written."""
    crm = write(tmp_path / "crm.csv", CRM)
    args = ("import-log", crm, "--process", "complaint", "--variant", "crm", *CRM_OPTIONS)
    assert cli(project_dir, *args).exit_code == 0
    before = counts(project_dir)

    again = cli(project_dir, *args)

    assert again.exit_code == 1
    assert again.stderr == f"error: {crm} was imported before (2 cases); importing it again would count them twice\n"
    assert counts(project_dir) == before


def test_missing_file_and_unknown_family(cli, project_dir, tmp_path):
    """Both exit 1 with a message naming the file or the families that exist."""
    missing = cli(project_dir, "import-log", tmp_path / "nope.csv", "--process", "complaint", "--variant", "x")
    assert (missing.exit_code, missing.stderr) == (
        1,
        f"error: cannot read {tmp_path / 'nope.csv'}: No such file or directory\n",
    )

    crm = write(tmp_path / "crm.csv", CRM)
    family = cli(project_dir, "import-log", crm, "--process", "complaints", "--variant", "x", *CRM_OPTIONS)
    assert (family.exit_code, family.stderr) == (
        1,
        "error: no process family 'complaints'; the project has complaint (see 'flowrun processes')\n",
    )

    usage = cli(project_dir, "import-log", crm, "--process", "complaint")
    assert usage.exit_code == 2
    assert "Missing option '--variant'" in usage.stderr


def test_app_errors_for_missing_file(project, tmp_path):
    """The use case raises the flowrun errors the CLI maps to exit codes."""
    with pytest.raises(NotFoundError, match="cannot read"):
        app.import_log(project, tmp_path / "nope.csv", "complaint", "x")
    write(tmp_path / "crm.csv", CRM)
    mapping = ColumnMapping(case="Ticket", activity="Step", enable="Opened", time_format="%d/%m/%Y %H:%M")
    app.import_log(project, tmp_path / "crm.csv", "complaint", "x", mapping=mapping)
    with pytest.raises(StateError, match="was imported before"):
        app.import_log(project, tmp_path / "crm.csv", "complaint", "x", mapping=mapping)


def test_awkward_text_survives_export_and_import():
    """Commas, quotes, line breaks and non-ASCII names round-trip through flowrun's CSV."""
    row = (
        "c1", 'Check "tier", then\nreply', "Kundenservice Zürich", "o'brien", "2026-03-02T08:00:00+00:00", None,
        "2026-03-02T08:01:00.250000+00:00", "a,1", "userTask", "completed", "p", "v", None, "sha", 7,
    )  # fmt: skip
    out = io.StringIO(newline="")
    eventlog.write_csv([row], out)

    [case] = eventlog.read_cases(io.StringIO(out.getvalue(), newline=""), "log.csv")

    [task] = case.tasks
    assert (task.activity, task.lane, task.resource, task.activity_id) == row[1:4] + (row[7],)
    assert (task.enable, task.start, task.end) == (T0, None, T0 + timedelta(seconds=60.25))


# -- large files: streamed, bounded, located ------------------------------------------------


def crm_log(rows: int, seed: int = 1) -> bytes:
    """A log of ``rows`` tasks in cases of five, the cases interleaved (a case's rows are not together)."""
    import random

    rnd = random.Random(seed)
    lines = ["case_id,activity,lane,resource,start_time,end_time"]
    cases = rows // 5
    order = [(c, step) for step in range(5) for c in range(cases)]
    rnd.shuffle(order)
    for c, step in order:
        day = f"2026-03-0{1 + step}"
        lines.append(f"K{c:07d},Step {step} ✓,Desk,agent{c % 7},{day}T09:00:00Z,{day}T09:30:00Z")
    return ("\n".join(lines) + "\n").encode("utf-8")


def scanned_cases(data: bytes, source: str = "log.csv") -> tuple[str, list[tuple[str, tuple[Any, ...]]]]:
    scanned = eventlog.scan_log(io.BytesIO(data), source, size=len(data))
    try:
        return scanned.sha256, sorted((c.case_id, tuple(c.tasks)) for c in scanned.cases())
    finally:
        scanned.close()


def test_scan_reads_across_chunk_and_file_boundaries_as_read_cases_does(monkeypatch):
    """Tiny chunks (CRLF, multi-byte characters and BOM cut in two) and many spill files give the same cases."""
    from flowrun.eventlog import _spill

    data = b"\xef\xbb\xbf" + crm_log(400).replace(b"\n", b"\r\n")
    expected = sorted(
        (c.case_id, tuple(c.tasks))
        for c in eventlog.read_cases(io.StringIO(data.decode("utf-8-sig"), newline=""), "log.csv")
    )
    for chunk, share in ((7, 1), (3, 500), (1 << 20, 1 << 20)):
        monkeypatch.setattr(_spill, "CHUNK", chunk)
        monkeypatch.setattr(_spill, "SHARE", share)
        sha, cases = scanned_cases(data)
        assert sha == hashlib.sha256(data).hexdigest()
        assert cases == expected, (chunk, share)
    assert len(expected) == 80
    assert {len(tasks) for _, tasks in expected} == {5}


def test_scan_names_the_byte_where_utf8_ends_deep_in_the_file(monkeypatch):
    """The offset of a bad byte is counted from the start of the file, not of the chunk."""
    from flowrun.eventlog import _spill

    monkeypatch.setattr(_spill, "CHUNK", 64)
    good = crm_log(50)
    data = good + b"K9,Pr\xfcfung,Desk,x,2026-03-02T09:00:00Z,\n"
    with pytest.raises(DataError, match=rf"is not UTF-8 text \(byte {len(good) + 5}\)"):
        scanned_cases(data)


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (b'K1,"never closed,Desk,x,2026-03-02T09:00:00Z,\n' + b"x" * 200_000, "line 53: field larger than field limit"),
        (b"K1,Two,2026-03-02T09:00:00Z\n", "line 52: 3 fields but the header has 6"),
    ],
    ids=["unclosed-quote", "short-row"],
)
def test_malformed_record_late_in_a_log_names_its_line(tail, message):
    """A broken record is reported by line, however far into the file, without reading the rest into one field."""
    with pytest.raises(DataError, match=message):
        scanned_cases(crm_log(50) + tail)


def test_bad_rows_are_listed_up_to_a_limit_and_counted(project, tmp_path):
    """Hundreds of bad rows: the first ones listed, the rest counted, nothing imported."""
    from flowrun.eventlog.importer import MAX_PROBLEMS

    bad = "".join(f"K{i},Step,Desk,x,not a time,\n" for i in range(MAX_PROBLEMS + 150))
    path = tmp_path / "bad.csv"
    path.write_bytes(crm_log(10) + bad.encode())
    with pytest.raises(DataError) as caught:
        app.import_log(project, path, "complaint", "x")
    assert f"has {MAX_PROBLEMS + 150} bad row(s); nothing was imported" in caught.value.message
    assert len(caught.value.problems) == MAX_PROBLEMS + 1
    assert caught.value.problems[-1] == "... and 150 more problem(s) not listed"
    assert app.instances(project) == []


def test_scan_memory_does_not_grow_with_the_log(monkeypatch):
    """Ten times the log, about the same peak memory: the tasks wait in temporary files, a share at a time."""
    import tracemalloc

    from flowrun.eventlog import _spill

    monkeypatch.setattr(_spill, "SHARE", 40_000)  # (and chunks smaller than the small log, as 1 MB is in use)
    monkeypatch.setattr(_spill, "CHUNK", 4096)

    def peak(data: bytes) -> int:
        tracemalloc.start()
        try:
            scanned = eventlog.scan_log(io.BytesIO(data), "log.csv", size=len(data))
            try:
                for _ in scanned.cases():
                    pass
            finally:
                scanned.close()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = crm_log(500), crm_log(5_000)
    ratio = peak(large) / peak(small)
    assert ratio < 2.5, f"peak memory grew {ratio:.1f} times for a 10 times larger log"


def test_import_streams_and_reports_progress(project, tmp_path):
    """The app reports bytes read and tasks stored; the result counts every case of an interleaved log."""
    path = tmp_path / "crm.csv"
    data = crm_log(500)
    path.write_bytes(data)
    seen: list[tuple[str, int, int]] = []
    result = app.import_log(project, path, "complaint", "crm", progress=lambda *p: seen.append(p))
    assert (result.cases, result.tasks) == (100, 500)
    assert seen[0][0] == "reading"
    assert ("reading", len(data), len(data)) in seen
    assert seen[-1] == ("storing", 500, 500)
    assert result.sha256 == hashlib.sha256(data).hexdigest()


# -- case data survives the round trip -------------------------------------------------

OUTCOMES = ("satisfaction", "nps", "fcr")


def outcome_values(comparison: Any) -> dict[str, tuple[Any, ...]]:
    """Per outcome KPI: (n, median, mean, value) of each group, the figures compare prints."""
    by_kpi = {k.kpi: k for k in comparison.kpis}
    return {
        name: tuple((s.n, s.median, s.mean, s.value) for s in (by_kpi[name].baseline, by_kpi[name].variant))
        for name in OUTCOMES
    }


def import_both(recorded: Recorded, project: app.Project, tmp_path: Path, fmt: str, suffix: str) -> None:
    for variant in ("baseline", "reengineered"):
        path = tmp_path / f"{variant}{suffix}"
        recorded.export(fmt, path, variant=variant)
        result = app.import_log(project, path, "complaint", variant)
        assert {"satisfaction", "nps", "resolved_first_contact"} <= set(result.data_fields)
        assert result.warnings == ()


def survey_answers(project: app.Project, key: str) -> dict[str, tuple[Any, ...]]:
    """Case id -> (satisfaction, nps, resolved_first_contact) as stored, for the completed cases."""
    rows = query(project.settings.root, "SELECT id, data FROM instances WHERE status = 'completed'")
    out = {}
    for iid, text in rows:
        data = json.loads(text)
        out[data.get(key, iid)] = tuple(data.get(f) for f in ("satisfaction", "nps", "resolved_first_contact"))
    return out


@pytest.mark.parametrize(("fmt", "suffix"), [("csv", ".csv"), ("xes", ".xes"), ("ocel", ".json")])
def test_round_trip_keeps_the_survey_answers_and_compares_the_same(recorded, project, tmp_path, fmt, suffix):
    """Exported and imported, every case keeps its satisfaction, NPS and FCR answers, typed, and compare
    gives the same outcome KPIs (n > 0) for the imported groups as for the recorded ones."""
    import_both(recorded, project, tmp_path, fmt, suffix)

    before = survey_answers(recorded.project, "id")
    after = survey_answers(project, "imported_case_id")
    assert after == before
    assert all(isinstance(s, int) and isinstance(f, bool) for s, _, f in after.values())
    original = outcome_values(app.compare(recorded.project, "complaint"))
    again = outcome_values(app.compare(project, "complaint"))
    assert again == original
    assert all(n > 0 for sides in again.values() for n, *_ in sides)


@pytest.mark.parametrize(("fmt", "suffix"), [("xes", ".xes"), ("ocel", ".json")])
def test_xes_and_ocel_exports_import_to_the_same_tasks(recorded, project, tmp_path, fmt, suffix):
    """An XES or OCEL export, imported and exported as CSV, has the CSV export's task rows but for ids."""
    recorded.export("csv", tmp_path / "first.csv", variant="baseline")
    recorded.export(fmt, tmp_path / f"log{suffix}", variant="baseline")

    result = app.import_log(project, tmp_path / f"log{suffix}", "complaint", "baseline")
    app.export_log(project, "csv", tmp_path / "again.csv")

    def tasks_only(path: Path) -> list[dict[str, str]]:
        return [{k: v for k, v in r.items() if not k.startswith("case:")} for r in read_csv(path)]

    assert by_case(tasks_only(tmp_path / "again.csv")) == by_case(tasks_only(tmp_path / "first.csv"))
    assert result.running == 1


def test_nested_or_huge_case_attributes_are_refused(project, tmp_path):
    """An XES list attribute, an OCEL object value or a 101-digit number: one message naming it, nothing saved."""
    xes = (
        '<log xmlns="http://www.xes-standard.org/"><trace><string key="concept:name" value="A"/>'
        '<list key="answers"><int key="q1" value="4"/></list>'
        '<event><string key="concept:name" value="Intake"/><date key="time:timestamp" value="2026-03-02T09:00:00Z"/>'
        "</event></trace></log>"
    )
    ocel = {
        "objects": [{"id": "A", "type": "case", "attributes": [{"name": "nps", "time": "x", "value": {"a": 1}}]}],
        "events": [],
    }
    big = xes.replace('<list key="answers"><int key="q1" value="4"/></list>', f'<int key="n" value="{"9" * 101}"/>')
    cases = [
        ("nested.xes", xes, "the trace attribute 'answers' is a list"),
        ("nested.json", json.dumps(ocel), "the attribute 'nps' is not a scalar"),
        ("big.xes", big, "the trace attribute 'n' is not an int"),
    ]
    for name, text, message in cases:
        with pytest.raises(DataError, match=message):
            app.import_log(project, write(tmp_path / name, text), "complaint", "crm")
    assert counts(project.settings.root) == dict.fromkeys(TABLES, 0)


SURVEYED = """\
Ticket,Step,Closed,Score,Recommend,Solved,Note
CRM-1,Log call,2026-03-02T09:06:00Z,,,,
CRM-1,Survey,2026-03-02T12:00:00Z,4,9,TRUE,=1+1
CRM-2,Log call,2026-03-02T09:31:00Z,,,,
CRM-2,Survey,2026-03-02T13:00:00Z,2,6,false,007
"""
SURVEYED_OPTIONS = ("--case-column", "Ticket", "--activity-column", "Step", "--end-column", "Closed")


def test_data_columns_of_a_crm_file_become_typed_case_data(cli, project_dir, tmp_path):
    """--data-column keeps a column as case data: numbers, booleans and text typed as compare reads them
    (a number with a leading zero is an identifier: it stays text)."""
    path = write(tmp_path / "crm.csv", SURVEYED)
    data_options = ("--data-column", "Score", "--data-column", "case:Recommend", "--data-column", "Solved")
    result = cli(project_dir, "import-log", path, "--process", "complaint", "--variant", "crm",
                 *SURVEYED_OPTIONS, *data_options, "--data-column", "Note")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    # the yaml's KPI fields are satisfaction, nps and resolved_first_contact: the CRM names differ
    assert result.stderr.count("warning: the log has no field") == 3
    assert "its cases will have no nps; export with flowrun >=" in result.stderr
    rows = query(project_dir, "SELECT data FROM instances")
    stored = sorted((json.loads(d) for (d,) in rows), key=lambda d: d["imported_case_id"])
    assert stored == [
        {"Score": 4, "Recommend": 9, "Solved": True, "Note": "=1+1", "imported_case_id": "CRM-1"},
        {"Score": 2, "Recommend": 6, "Solved": False, "Note": "007", "imported_case_id": "CRM-2"},
    ]


def test_a_data_column_not_in_the_file_is_refused(cli, project_dir, tmp_path):
    """A --data-column the file does not have: one message naming it and the file's columns; nothing saved."""
    path = write(tmp_path / "crm.csv", SURVEYED)
    result = cli(project_dir, "import-log", path, "--process", "complaint", "--variant", "crm",
                 *SURVEYED_OPTIONS, "--data-column", "nps")  # fmt: skip
    assert result.exit_code != 0
    assert "has no column 'nps' (given with --data-column); its columns are: Ticket," in result.stderr
    assert "Traceback" not in result.stderr
    assert counts(project_dir) == dict.fromkeys(TABLES, 0)


def test_case_data_above_flowrun_max_data_mb_is_refused(project, tmp_path, monkeypatch):
    """A case whose data exceeds FLOWRUN_MAX_DATA_MB is refused by name, and nothing is saved."""
    monkeypatch.setenv("FLOWRUN_MAX_DATA_MB", "0.00005")  # 50 bytes
    path = write(tmp_path / "crm.csv", SURVEYED.replace("=1+1", "x" * 60))
    mapping = ColumnMapping(case="Ticket", activity="Step", end="Closed", data=("Note",))
    with pytest.raises(DataError, match="case 'CRM-1' has .* bytes of data, more than FLOWRUN_MAX_DATA_MB"):
        app.import_log(project, path, "complaint", "crm", mapping=mapping)
    assert counts(project.settings.root) == dict.fromkeys(TABLES, 0)


def test_cli_reads_xes_by_its_suffix_and_refuses_csv_options_for_it(cli, recorded, project_dir, tmp_path):
    """import-log FILE.xes needs no --format; CSV column options or an empty log get one clear message."""
    path = tmp_path / "log.xes"
    recorded.export("xes", path, variant="reengineered")
    refused = cli(project_dir, "import-log", path, "--process", "complaint", "--variant", "reengineered",
                  "--case-column", "Ticket")  # fmt: skip
    assert refused.exit_code == 1
    assert "is read as xes: the column, time and delimiter options are for CSV files only" in refused.stderr
    empty = write(tmp_path / "empty.xes", '<log xmlns="http://www.xes-standard.org/"></log>')
    result = cli(project_dir, "import-log", empty, "--process", "complaint", "--variant", "reengineered")
    assert result.exit_code == 1
    assert "has no traces with events; nothing was imported" in result.stderr

    result = cli(project_dir, "import-log", path, "--process", "complaint", "--variant", "reengineered", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["cases"], summary["warnings"]) == (path.read_text(encoding="utf-8").count("<trace>"), [])
    assert {"satisfaction", "nps", "resolved_first_contact"} <= set(summary["data_fields"])


def test_case_columns_quote_formulas_not_numbers_and_read_back_typed(project, tmp_path):
    """A text answer '=cmd' gets the quote; -2, 4.5, false and 01234 stay plain; import gives each back typed."""
    row = ("c1", "Survey", "", "", None, None, "2026-03-02T09:00:00+00:00", "T", "userTask", "completed",
           "complaint", "crm", None, None, 1)  # fmt: skip
    data = eventlog.CaseData(["note", "delta", "score", "ok", "zip"])
    data.values["c1"] = {"note": "=cmd|' /C calc'!A0", "delta": -2, "score": 4.5, "ok": False, "zip": "01234"}
    out = io.StringIO()
    eventlog.write_csv([row], out, data)
    header, cells = out.getvalue().splitlines()
    assert header.endswith(",case:note,case:delta,case:score,case:ok,case:zip")
    assert cells.endswith(",'=cmd|' /C calc'!A0,-2,4.5,false,01234")

    path = write(tmp_path / "log.csv", out.getvalue())
    app.import_log(project, path, "complaint", "crm")
    [(text,)] = query(project.settings.root, "SELECT data FROM instances")
    assert json.loads(text) == {**data.values["c1"], "imported_case_id": "c1"}


FOREIGN_XES = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1.0" xmlns="http://www.xes-standard.org/">
  <trace>
    <string key="concept:name" value="T-7"/>
    <float key="satisfaction" value="4.5"/>
    <boolean key="resolved_first_contact" value="true"/>
    <date key="closed_on" value="2026-03-02T12:00:00.000+01:00"/>
    <event><string key="concept:name" value="Check"/><string key="lifecycle:transition" value="start"/>
      <date key="time:timestamp" value="2026-03-02T09:00:00.000+01:00"/><string key="org:resource" value="ann"/></event>
    <event><string key="concept:name" value="Check"/><string key="lifecycle:transition" value="complete"/>
      <date key="time:timestamp" value="2026-03-02T09:10:00.000+01:00"/></event>
    <event><string key="concept:name" value="Check"/><string key="lifecycle:transition" value="suspend"/>
      <date key="time:timestamp" value="2026-03-02T09:20:00.000+01:00"/></event>
    <event><string key="concept:name" value="Check"/>
      <date key="time:timestamp" value="2026-03-02T10:00:00Z"/><string key="org:role" value="Back Office"/></event>
  </trace>
</log>
"""


def test_a_foreign_xes_pairs_events_by_activity_and_keeps_typed_attributes(project, tmp_path):
    """Without concept:instance, a start and the next complete of an activity are one task; a second complete
    is a second round; trace attributes come back as float, boolean and (for a date) text."""
    result = app.import_log(project, write(tmp_path / "mined.xes", FOREIGN_XES), "complaint", "mined")

    [inst] = app.instances(project)
    _, tasks = app.history(project, inst.id)
    assert [(t.name, iso(t.started_at), iso(t.completed_at), t.actor, t.lane) for t in tasks] == [
        ("Check", "2026-03-02T08:00:00+00:00", "2026-03-02T08:10:00+00:00", "ann", None),
        ("Check", None, "2026-03-02T10:00:00+00:00", None, "Back Office"),
    ]
    [(text,)] = query(project.settings.root, "SELECT data FROM instances")
    assert json.loads(text) == {
        "satisfaction": 4.5,
        "resolved_first_contact": True,
        "closed_on": "2026-03-02T12:00:00.000+01:00",
        "imported_case_id": "T-7",
    }
    assert result.warnings == (
        f"the log has no field 'nps': its cases will have no nps; export with flowrun >= {flowrun.__version__} "
        "or name the column with --data-column",
    )
