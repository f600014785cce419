"""Event log exports: CSV rows, XES lifecycle events and OCEL 2.0 objects, from cases run on a manual clock."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from flowrun import app, eventlog
from flowrun.clock import ManualClock, iso
from flowrun.config import find_project
from flowrun.errors import NotFoundError
from flowrun.eventlog import _rows
from flowrun.eventlog._rows import CSV_COLUMNS
from flowrun.store import task_log_rows
from tests.helpers import RECORD, SPECIALIST, SURVEY, T0, intake, query, work
from tests.test_example_paths import ACTOR, BASELINE, FIRST_CONTACT, LANE, RE_LANE, timing

XES = "{http://www.xes-standard.org/}"
FLOWRUN_ENV = ("FLOWRUN_NOW", "FLOWRUN_PROJECT", "FLOWRUN_DATABASE_URL", "FLOWRUN_USER", "FLOWRUN_DEBUG")

FOLLOW_UP = [
    ("Record and assess complaint", intake(can_resolve_now=False, severity="low")),
    ("Inform customer of next steps", {"contact_channel": "sms", "expected_days": 3}),
    ("Specialist assessment", SPECIALIST),
    ("Confirm resolution with customer", {"remedy": "refund", "remedy_amount": 80, "message": "Refund on its way."}),
    ("Satisfaction survey", SURVEY),
]
#: Every path of the shipped example, run to its end one after the other: (process, steps, lanes, pilot).
PATHS = [
    *(("complaint:baseline", steps, LANE, "pilot-A") for steps in BASELINE.values()),
    ("complaint:reengineered", FIRST_CONTACT, RE_LANE, "pilot-B"),
    ("complaint:reengineered", FOLLOW_UP, RE_LANE, "pilot-B"),
]


@dataclass
class Recorded:
    """A project whose cases were all run on a manual clock, and what flowrun recorded about them."""

    dir: Path
    project: app.Project
    cycles: dict[str, float]
    running: str

    @property
    def first(self) -> str:
        return next(iter(self.cycles))

    def export(self, fmt: str, path: Path, **filters: str) -> app.ExportResult:
        return app.export_log(self.project, fmt, path, **filters)


def record_example(root: Path) -> Recorded:
    """Run every path of the example (waits and touches from ``timing``), plus one case left running."""
    app.init_project(root)
    clock = ManualClock(T0)
    project = app.Project(find_project(explicit=root), clock)
    done = []
    for target, steps, lanes, pilot in PATHS:
        iid = app.start(project, target, pilot=pilot).instance
        for i, (name, data) in enumerate(steps):
            wait, touch = timing(i)
            work(project, iid, name, data, ACTOR[lanes[name]], wait, touch)
        done.append(iid)
        clock.advance(600)
    running = app.start(project, "complaint:baseline", pilot="pilot-C").instance
    work(project, running, "Record complaint", RECORD, "carol", wait=0.5, touch=1.25)
    cycles = {}
    for iid in done:
        cycle = app.show(project, iid).cycle_s
        assert cycle is not None
        cycles[iid] = cycle
    return Recorded(root, project, cycles, running)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    with pytest.MonkeyPatch.context() as mp:
        for name in FLOWRUN_ENV:
            mp.delenv(name, raising=False)
        yield record_example(tmp_path_factory.mktemp("recorded") / "proj")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def history_rows(project: app.Project, iid: str) -> list[tuple[Any, ...]]:
    """What flowrun's history says about each task, as the CSV should write it."""
    view, tasks = app.history(project, iid)
    return [
        (
            iid,
            t.name,
            t.lane or "",
            t.actor or "",
            iso(t.ready_at) or "",
            iso(t.started_at) or "",
            iso(t.completed_at) or "",
            t.bpmn_id,
            t.type,
            t.status,
            view.family,
            view.variant,
            view.pilot or "",
            view.sha256,
        )
        for t in tasks
    ]


# -- CSV ---------------------------------------------------------------------------


def test_csv_first_case_rows_exactly(recorded, tmp_path):
    """The first baseline case, row by row: every time is T0 plus the waits and touches the clock moved."""
    recorded.export("csv", tmp_path / "log.csv")
    rows = read_csv(tmp_path / "log.csv")
    sha = hashlib.sha256((recorded.dir / "processes" / "complaint_baseline.bpmn").read_bytes()).hexdigest()

    first = [r for r in rows if r["case_id"] == recorded.first]

    def at(hms: str) -> str:
        return f"2026-03-02T{hms}+00:00"

    expected = [
        ("Complaint received", "Call Centre", "", at("08:00:00"), at("08:00:00"), at("08:00:00"),
         "StartEvent_ComplaintReceived", "startEvent"),
        ("Record complaint", "Call Centre", "carol", at("08:00:00"), at("08:05:00"), at("08:12:00"),
         "Task_RecordComplaint", "userTask"),
        ("Analyse needs", "Back Office", "bob", at("08:12:00"), at("08:18:00"), at("08:25:30"),
         "Task_AnalyseNeeds", "userTask"),
        ("Draft resolution", "Back Office", "bob", at("08:25:30"), at("08:32:30"), at("08:40:30"),
         "Task_DraftResolution", "userTask"),
        ("Reply to customer", "Call Centre", "carol", at("08:40:30"), at("08:48:30"), at("08:57:00"),
         "Task_ReplyToCustomer", "userTask"),
        ("Satisfaction survey", "Customer", "customer", at("08:57:00"), at("09:06:00"), at("09:15:00"),
         "Task_SatisfactionSurvey", "userTask"),
        ("Complaint closed", "Customer", "", at("09:15:00"), at("09:15:00"), at("09:15:00"),
         "EndEvent_ComplaintClosed", "endEvent"),
    ]  # fmt: skip
    assert [tuple(r.values())[: len(CSV_COLUMNS)] for r in first] == [
        (recorded.first, *row, "completed", "complaint", "baseline", "pilot-A", sha) for row in expected
    ]


def test_csv_header(recorded, tmp_path):
    """The columns mining tools map by name come first, then flowrun's own."""
    recorded.export("csv", tmp_path / "log.csv")
    header = (tmp_path / "log.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith(
        "case_id,activity,lane,resource,enable_time,start_time,end_time,"
        "activity_id,type,status,process,variant,pilot,model_sha256,case:"
    )


def test_csv_rows_match_the_history_of_every_case(recorded, tmp_path):
    """One row per recorded task, cases oldest first, tasks in history order, times as ISO 8601 with offset."""
    result = recorded.export("csv", tmp_path / "log.csv")
    with (tmp_path / "log.csv").open(newline="", encoding="utf-8") as f:
        rows = [tuple(r[: len(CSV_COLUMNS)]) for r in list(csv.reader(f))[1:]]

    ids = [*recorded.cycles, recorded.running]
    assert rows == [row for iid in ids for row in history_rows(recorded.project, iid)]
    assert (result.cases, result.tasks) == (len(ids), len(rows))
    assert result.events == sum(sum(1 for t in r[4:7] if t) for r in rows)


def test_csv_keeps_fractions_of_seconds_and_leaves_missing_times_empty(recorded, tmp_path):
    """The running case: microseconds survive, the open task has no start or end."""
    recorded.export("csv", tmp_path / "log.csv", pilot="pilot-C")
    rows = read_csv(tmp_path / "log.csv")
    record = next(r for r in rows if r["activity"] == "Record complaint")
    analyse = next(r for r in rows if r["activity"] == "Analyse needs")
    assert (record["start_time"], record["end_time"]) == (
        "2026-03-02T17:37:30.500000+00:00",
        "2026-03-02T17:37:31.750000+00:00",
    )
    assert (analyse["enable_time"], analyse["start_time"], analyse["end_time"]) == (record["end_time"], "", "")
    assert analyse["status"] == "ready"


# -- XES ---------------------------------------------------------------------------


def xes_traces(path: Path) -> dict[str, list[dict[str, str]]]:
    """case id -> its events, each as a dict of attribute key -> value (parsed by a strict XML parser)."""
    root = ET.parse(path).getroot()
    out: dict[str, list[dict[str, str]]] = {}
    for trace in root.iter(f"{XES}trace"):
        name = next(a.attrib["value"] for a in trace.findall(f"{XES}string") if a.get("key") == "concept:name")
        out[name] = [{a.attrib["key"]: a.attrib["value"] for a in event} for event in trace.iter(f"{XES}event")]
    return out


def test_xes_is_xml_with_the_standard_extensions(recorded, tmp_path):
    """An IEEE 1849 log: namespace, version, the four extensions, globals, classifiers."""
    recorded.export("xes", tmp_path / "log.xes")
    root = ET.parse(tmp_path / "log.xes").getroot()

    assert root.tag == f"{XES}log"
    assert root.get("xes.version") == "1849-2016"
    assert {(e.get("prefix"), e.get("uri")) for e in root.findall(f"{XES}extension")} == {
        ("concept", "http://www.xes-standard.org/concept.xesext"),
        ("lifecycle", "http://www.xes-standard.org/lifecycle.xesext"),
        ("org", "http://www.xes-standard.org/org.xesext"),
        ("time", "http://www.xes-standard.org/time.xesext"),
    }
    assert {g.get("scope") for g in root.findall(f"{XES}global")} == {"trace", "event"}
    assert {c.get("keys") for c in root.findall(f"{XES}classifier")} == {
        "concept:name",
        "concept:name lifecycle:transition",
    }
    traces = root.findall(f"{XES}trace")
    assert len(traces) == len(recorded.cycles) + 1
    first = {a.get("key"): a.get("value") for a in traces[0].findall(f"{XES}string")}
    assert {k: first[k] for k in ("concept:name", "process", "variant", "pilot", "model_sha256")} == {
        "concept:name": recorded.first,
        "process": "complaint",
        "variant": "baseline",
        "pilot": "pilot-A",
        "model_sha256": app.show(recorded.project, recorded.first).sha256,
    }


def test_xes_traces_carry_the_case_data_typed(recorded, tmp_path):
    """Survey answers and outcome fields are trace attributes of their XES type; nested values are left out."""
    recorded.export("xes", tmp_path / "log.xes")
    trace = ET.parse(tmp_path / "log.xes").getroot().findall(f"{XES}trace")[0]
    typed = {a.get("key"): (a.tag.removeprefix(XES), a.get("value")) for a in trace if a.tag != f"{XES}event"}
    data = stored_data(recorded, recorded.first)

    assert typed["satisfaction"] == ("int", "4")
    assert typed["nps"] == ("int", "9")
    assert typed["resolved_first_contact"] == ("boolean", "false")
    assert typed["comment"] == ("string", "ok")
    scalars = {k for k, v in data.items() if isinstance(v, (str, int, float, bool))}
    assert {k for k in typed if k not in ("concept:name", "process", "variant", "pilot", "model_sha256")} == (
        scalars - {"pilot"}
    )


def stored_data(recorded: Recorded, iid: str) -> dict[str, Any]:
    """The instance's final data as the database holds it."""
    [(text,)] = query(recorded.dir, f"SELECT data FROM instances WHERE id = '{iid}'")
    return dict(json.loads(text))


def test_xes_gives_schedule_start_complete_per_task(recorded, tmp_path):
    """Each task's events carry its name, lane as org:role, ref as concept:instance, and its three times."""
    recorded.export("xes", tmp_path / "log.xes")
    traces = xes_traces(tmp_path / "log.xes")

    for iid in [*recorded.cycles, recorded.running]:
        _, tasks = app.history(recorded.project, iid)
        events = traces[iid]
        assert len(events) == sum(3 if t.completed_at else 1 if t.started_at is None else 2 for t in tasks)
        for t in tasks:
            mine = [e for e in events if e["concept:instance"] == str(t.ref)]
            expected = [
                ("schedule", t.ready_at, None),
                ("start", t.started_at, t.actor),
                ("complete", t.completed_at, t.actor),
            ]
            assert [(e["lifecycle:transition"], e["time:timestamp"], e.get("org:resource")) for e in mine] == [
                (kind, iso(at), actor) for kind, at, actor in expected if at is not None
            ]
            assert {(e["concept:name"], e["org:role"], e["activity_id"], e["task_type"]) for e in mine} == {
                (t.name, t.lane, t.bpmn_id, t.type)
            }


def test_xes_events_are_in_time_order_within_each_trace(recorded, tmp_path):
    """Tools that take a trace's first and last event as its span see the case's start and end."""
    recorded.export("xes", tmp_path / "log.xes")
    for iid, events in xes_traces(tmp_path / "log.xes").items():
        times = [e["time:timestamp"] for e in events]
        assert times == sorted(times)
        if iid in recorded.cycles:
            view = app.show(recorded.project, iid)
            assert (times[0], times[-1]) == (iso(view.created_at), iso(view.ended_at))


def test_xes_parallel_tasks_interleave_by_time(recorded, tmp_path):
    """In the follow-up case the specialist's task is scheduled before the customer update starts."""
    recorded.export("xes", tmp_path / "log.xes", variant="reengineered", pilot="pilot-B")
    traces = xes_traces(tmp_path / "log.xes").values()
    follow_up = next(events for events in traces if any(e["concept:name"] == "Specialist assessment" for e in events))
    order = [(e["concept:name"], e["lifecycle:transition"]) for e in follow_up]
    assert order.index(("Specialist assessment", "schedule")) < order.index(("Inform customer of next steps", "start"))
    assert order.index(("Inform customer of next steps", "complete")) < order.index(("Specialist assessment", "start"))


def test_xes_escapes_what_xml_cannot_hold():
    """Quotes, ampersands, angle brackets, line breaks survive; characters XML forbids are replaced."""
    row = (
        "c1", 'Q&A <"check">', "R&D\nteam", "o'brien\x01", "2026-03-02T08:00:00+00:00", None,
        "2026-03-02T08:01:00+00:00", "a", "userTask", "cancelled", "p", "v", None, "sha", 7,
    )  # fmt: skip
    out = io.StringIO()
    stats = eventlog.write_xes([row], out, name="A & B")

    root = ET.fromstring(out.getvalue())
    events = [{a.get("key"): a.get("value") for a in e} for e in root.iter(f"{XES}event")]
    assert [(e["concept:name"], e["org:role"], e.get("org:resource")) for e in events] == [
        ('Q&A <"check">', "R&D\nteam", None),
        ('Q&A <"check">', "R&D\nteam", "o'brien\ufffd"),
    ]
    assert [e["lifecycle:transition"] for e in events] == ["schedule", "ate_abort"]
    assert stats == eventlog.LogStats(cases=1, tasks=1, events=2)
    first = root.find(f"{XES}trace")
    assert first is not None
    trace = {a.get("key"): a.get("value") for a in first.findall(f"{XES}string")}
    assert "pilot" not in trace


# -- OCEL 2.0 -------------------------------------------------------------------------

#: The structure the OCEL 2.0 JSON schema (ocel-standard.org) asks for, as a JSON Schema.
OCEL2_SCHEMA = {
    "type": "object",
    "required": ["objectTypes", "eventTypes", "objects", "events"],
    "definitions": {
        "type": {
            "type": "object",
            "required": ["name", "attributes"],
            "properties": {
                "name": {"type": "string"},
                "attributes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "type"],
                        "properties": {
                            "name": {"type": "string"},
                            "type": {"enum": ["string", "time", "integer", "float", "boolean"]},
                        },
                    },
                },
            },
        },
        "relationships": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["objectId", "qualifier"],
                "properties": {"objectId": {"type": "string"}, "qualifier": {"type": "string"}},
            },
        },
    },
    "properties": {
        "objectTypes": {"type": "array", "items": {"$ref": "#/definitions/type"}},
        "eventTypes": {"type": "array", "items": {"$ref": "#/definitions/type"}},
        "objects": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "type"],
                "properties": {
                    "id": {"type": "string"},
                    "type": {"type": "string"},
                    "attributes": {
                        "type": "array",
                        "items": {"type": "object", "required": ["name", "time", "value"]},
                    },
                    "relationships": {"$ref": "#/definitions/relationships"},
                },
            },
        },
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "type", "time"],
                "properties": {
                    "id": {"type": "string"},
                    "type": {"type": "string"},
                    "time": {"type": "string", "format": "date-time"},
                    "attributes": {"type": "array", "items": {"type": "object", "required": ["name", "value"]}},
                    "relationships": {"$ref": "#/definitions/relationships"},
                },
            },
        },
    },
}


@pytest.fixture
def ocel(recorded: Recorded, tmp_path: Path) -> dict[str, Any]:
    recorded.export("ocel", tmp_path / "log.json")
    log: dict[str, Any] = json.loads((tmp_path / "log.json").read_text(encoding="utf-8"))
    return log


def test_ocel_has_the_ocel2_structure(ocel):
    """The four top-level keys, and types, objects and events shaped as the OCEL 2.0 JSON schema says."""
    jsonschema.validate(ocel, OCEL2_SCHEMA)
    assert list(ocel) == ["objectTypes", "eventTypes", "objects", "events"]
    assert [t["name"] for t in ocel["objectTypes"]] == ["case", "resource", "lane"]
    event_types = {t["name"] for t in ocel["eventTypes"]}
    assert {e["type"] for e in ocel["events"]} == event_types
    assert len({e["id"] for e in ocel["events"]}) == len(ocel["events"])
    assert len({o["id"] for o in ocel["objects"]}) == len(ocel["objects"])


def test_ocel_objects_are_cases_people_and_lanes(recorded, ocel):
    """One object per case (with its process, variant, pilot), per person and per lane."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for obj in ocel["objects"]:
        by_type.setdefault(obj["type"], []).append(obj)
    assert [o["id"] for o in by_type["case"]] == [*recorded.cycles, recorded.running]
    first = {a["name"]: a["value"] for a in by_type["case"][0]["attributes"]}
    assert (first["process"], first["variant"], first["pilot"]) == ("complaint", "baseline", "pilot-A")
    assert {o["id"] for o in by_type["resource"]} == {f"resource:{a}" for a in ACTOR.values()}
    assert {o["id"] for o in by_type["lane"]} == {f"lane:{lane}" for lane in {*LANE.values(), *RE_LANE.values()}}
    sam = next(o for o in by_type["resource"] if o["id"] == "resource:sam")
    assert sam["relationships"] == [{"objectId": "lane:Specialist", "qualifier": "works in"}]


def test_ocel_events_relate_to_their_case_lane_and_resource(recorded, ocel, tmp_path):
    """Every relationship names an object; the events are those of the XES export."""
    ids = {o["id"] for o in ocel["objects"]}
    for event in ocel["events"]:
        qualifiers = {r["qualifier"]: r["objectId"] for r in event["relationships"]}
        assert set(qualifiers.values()) <= ids
        assert qualifiers["case"] in recorded.cycles or qualifiers["case"] == recorded.running
        lifecycle = {a["name"]: a["value"] for a in event["attributes"]}["lifecycle"]
        assert ("resource" in qualifiers) <= (lifecycle != "schedule")
    recorded.export("xes", tmp_path / "log.xes")
    xes_events = Counter(
        (case, e["concept:name"], e["lifecycle:transition"], e["time:timestamp"])
        for case, events in xes_traces(tmp_path / "log.xes").items()
        for e in events
    )
    ocel_events = Counter(
        (
            next(r["objectId"] for r in e["relationships"] if r["qualifier"] == "case"),
            e["type"],
            e["attributes"][0]["value"],
            e["time"],
        )
        for e in ocel["events"]
    )
    assert ocel_events == xes_events


# -- filters, files, store -------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {("baseline", "pilot-A"): 4, ("reengineered", "pilot-B"): 2, ("baseline", "pilot-C"): 1}),
        (
            {"process": "complaint"},
            {("baseline", "pilot-A"): 4, ("reengineered", "pilot-B"): 2, ("baseline", "pilot-C"): 1},
        ),
        ({"variant": "reengineered"}, {("reengineered", "pilot-B"): 2}),
        ({"pilot": "pilot-C"}, {("baseline", "pilot-C"): 1}),
        ({"variant": "baseline", "pilot": "pilot-A"}, {("baseline", "pilot-A"): 4}),
        ({"variant": "reengineered", "pilot": "pilot-A"}, {}),
    ],
)
def test_filters_choose_the_cases(recorded, tmp_path, filters, expected):
    """--process, --variant and --pilot combine; a filter that matches nothing writes an empty log."""
    result = recorded.export("csv", tmp_path / "log.csv", **filters)
    rows = read_csv(tmp_path / "log.csv")
    cases = {(r["case_id"], r["variant"], r["pilot"]) for r in rows}
    assert Counter((v, p) for _, v, p in cases) == Counter(expected)
    assert result.cases == sum(expected.values())


def test_unknown_family_is_refused(recorded, tmp_path):
    """A family that is neither in flowrun.yaml nor in the store is a typo: say which exist."""
    with pytest.raises(NotFoundError, match="no process family 'complain'; the project has complaint"):
        recorded.export("xes", tmp_path / "log.xes", process="complain")
    assert not list(tmp_path.iterdir())


def test_a_failed_export_leaves_no_file(recorded, tmp_path, monkeypatch):
    """The log is written under a temporary name and renamed only when complete."""
    (tmp_path / "log.csv").write_text("the previous export\n")

    def broken(rows, out, data=None):
        out.write("half a log")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(eventlog, "write_csv", broken)
    with pytest.raises(RuntimeError):
        recorded.export("csv", tmp_path / "log.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["log.csv"]
    assert (tmp_path / "log.csv").read_text() == "the previous export\n"


def test_store_rows_have_the_layout_the_writers_index_by(recorded):
    """Every streamed row has one value per column of :data:`flowrun.models.LOG_COLUMNS`, in that order."""
    with recorded.project.store.read() as tx:
        rows = list(task_log_rows(tx))
        ids = {r[0] for r in rows}
        shas = {tx.get_instance(i).sha256 for i in ids}
    assert rows
    assert all(len(r) == len(_rows.COLUMNS) for r in rows)
    assert {r[_rows.SHA256] for r in rows} == shas
    assert {"userTask", "serviceTask"} <= {r[_rows.TYPE] for r in rows}


def test_times_formatted_in_sql_equal_python_iso(recorded):
    """SQLite's text formatting gives exactly what Python's isoformat gives (the path other databases take)."""
    with recorded.project.store.read() as tx:
        in_sql = list(task_log_rows(tx, sql_times=True))
        in_python = list(task_log_rows(tx, sql_times=False))
    assert [tuple(r) for r in in_sql] == [tuple(r) for r in in_python]
    assert any(".500000+00:00" in (r[5] or "") for r in in_sql)


# -- command line -----------------------------------------------------------------


@pytest.mark.parametrize(("name", "fmt"), [("log.csv", "csv"), ("log.xes", "xes"), ("log.json", "ocel")])
def test_cli_export_takes_the_format_from_the_suffix(cli, recorded, tmp_path, name, fmt):
    """``flowrun export -o FILE`` writes the file and says what it wrote."""
    result = cli(recorded.dir, "export", "-o", tmp_path / name)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("wrote 7 case(s), ")
    assert result.stdout.rstrip().endswith(f"({fmt})")
    assert (tmp_path / name).stat().st_size > 0


def test_cli_export_json_summary_and_filters(cli, recorded, tmp_path):
    """--json prints what was written; filters are passed through."""
    out = tmp_path / "pilot.xes"
    result = cli(
        recorded.dir, "export", "--format", "xes", "--process", "complaint", "--pilot", "pilot-B", "-o", out, "--json"
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    traces = xes_traces(out)
    assert summary == {
        "file": str(out),
        "format": "xes",
        "cases": 2,
        "tasks": len({(c, e["concept:instance"]) for c, events in traces.items() for e in events}),
        "events": sum(len(events) for events in traces.values()),
    }
    assert len(traces) == 2


def test_cli_export_to_standard_output(cli, recorded):
    """``-o -`` streams the log to stdout and the summary to stderr."""
    result = cli(recorded.dir, "export", "--format", "csv", "--pilot", "pilot-C", "-o", "-")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["case_id"] for r in rows} == {recorded.running}
    assert result.stderr.startswith("wrote 1 case(s)")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("-o", "log.txt"), 2, "say which format to write with --format"),
        (("--format", "pdf", "-o", "log.pdf"), 2, "'pdf' is not one of"),
        (("--format", "csv"), 2, "Missing option '-o'"),
        (("--process", "nope", "-o", "log.csv"), 1, "error: no process family 'nope'"),
        (("-o", "no/such/folder/log.csv"), 1, "error: cannot write"),
    ],
)
def test_cli_export_errors(cli, recorded, tmp_path, monkeypatch, args, code, message):
    """Wrong usage exits 2, a wrong family or an unwritable file exits 1, each with a message."""
    monkeypatch.chdir(tmp_path)
    result = cli(recorded.dir, "export", *args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())
