"""PM4Py reads every export, and its case durations are flowrun's cycle times.

PM4Py is AGPL-licensed and only a test dependency (the ``dev`` extra); without
it these tests are skipped. PM4Py warns about optional speed-ups and prints
progress bars; its warnings are not flowrun's, so they are ignored here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flowrun import app
from tests.test_eventlog import FLOWRUN_ENV, Recorded, record_example

pm4py = pytest.importorskip(
    "pm4py", reason="pm4py (AGPL, test-only) is not installed; install the dev extra: pip install -e '.[dev]'"
)
pd = pytest.importorskip("pandas", reason="pandas comes with pm4py")

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    with pytest.MonkeyPatch.context() as mp:
        for name in FLOWRUN_ENV:
            mp.delenv(name, raising=False)
        yield record_example(tmp_path_factory.mktemp("pm4py") / "proj")


def durations(log: Any, case_key: str = "case:concept:name") -> dict[str, float]:
    """Case id -> PM4Py's case duration in seconds (first to last event of the case).

    ``log`` is the pandas DataFrame ``pm4py.read_xes`` returns (pm4py and pandas come from
    ``pytest.importorskip``, so there is no static type to name here).
    """
    cases = pm4py.get_all_case_durations(log, case_id_key=case_key)
    per_case = (
        log.groupby(case_key)[["time:timestamp"]]
        .agg(["min", "max"])
        .droplevel(0, axis=1)
        .apply(lambda r: (r["max"] - r["min"]).total_seconds(), axis=1)
    )
    assert sorted(per_case.tolist()) == cases  # the same figures PM4Py reports, by case
    return {str(k): float(v) for k, v in per_case.items()}


def test_every_case_starts_with_its_start_event(recorded):
    """Precondition of the duration checks: the first task of each case is ready at the case's start."""
    for iid in recorded.cycles:
        view, tasks = app.history(recorded.project, iid)
        assert tasks[0].type == "startEvent"
        assert tasks[0].ready_at == view.created_at
        assert tasks[-1].completed_at == view.ended_at


@pytest.mark.parametrize("variant", ["iterparse", "chunk_regex", "line_by_line"])
def test_xes_case_durations_are_cycle_times(recorded: Recorded, tmp_path: Path, variant: str) -> None:
    """pm4py.read_xes (each of its parsers) gives every completed case flowrun's cycle time."""
    recorded.export("xes", tmp_path / "log.xes")
    log = pm4py.read_xes(str(tmp_path / "log.xes"), variant=variant)

    found = durations(log)
    assert {iid: found[iid] for iid in recorded.cycles} == recorded.cycles
    assert set(found) == {*recorded.cycles, recorded.running}
    assert set(log["lifecycle:transition"]) == {"schedule", "start", "complete"}


def test_xes_attributes_as_pm4py_sees_them(recorded, tmp_path):
    """Activities, lanes as org:role, people as org:resource, and the trace attributes as case: columns."""
    recorded.export("xes", tmp_path / "log.xes")
    log = pm4py.read_xes(str(tmp_path / "log.xes"))
    first = log[log["case:concept:name"] == recorded.first]

    _, tasks = app.history(recorded.project, recorded.first)
    assert list(dict.fromkeys(first["concept:name"])) == [t.name for t in tasks]
    assert set(first["org:role"]) == {t.lane for t in tasks}
    assert set(first["org:resource"].dropna()) == {t.actor for t in tasks if t.actor}
    assert set(first["case:variant"]) == {"baseline"}
    assert set(first["case:pilot"]) == {"pilot-A"}
    starts = first[first["lifecycle:transition"] == "start"]
    assert [ts.to_pydatetime() for ts in starts["time:timestamp"]] == [t.started_at for t in tasks]


def test_csv_case_durations_are_cycle_times(recorded, tmp_path):
    """pandas.read_csv + pm4py.format_dataframe on the end times: durations are cycle times."""
    recorded.export("csv", tmp_path / "log.csv")
    frame = pd.read_csv(tmp_path / "log.csv", dtype=str)
    frame = frame[frame["end_time"].notna()]
    log = pm4py.format_dataframe(frame, case_id="case_id", activity_key="activity", timestamp_key="end_time")

    found = durations(log)
    assert {iid: found[iid] for iid in recorded.cycles} == recorded.cycles


def test_ocel_read_by_pm4py(recorded, tmp_path):
    """pm4py.read_ocel2_json reads the OCEL 2.0 export: objects, relations, and per-case durations."""
    recorded.export("ocel", tmp_path / "log.json")
    ocel = pm4py.read_ocel2_json(str(tmp_path / "log.json"))

    objects = ocel.objects.groupby("ocel:type")["ocel:oid"].apply(set).to_dict()
    assert objects["case"] == {*recorded.cycles, recorded.running}
    assert objects["lane"] == {"lane:Call Centre", "lane:Back Office", "lane:Specialist", "lane:Supervisor",
                               "lane:Customer", "lane:Front Office"}  # fmt: skip
    assert len(ocel.events) == len(ocel.relations[ocel.relations["ocel:qualifier"] == "case"])
    flat = pm4py.ocel_flattening(ocel, "case")
    found = durations(flat)
    assert {iid: found[iid] for iid in recorded.cycles} == recorded.cycles


def test_imported_crm_log_durations(project, tmp_path):
    """A log imported from outside flowrun exports to XES with PM4Py durations equal to its cycle times."""
    crm = tmp_path / "crm.csv"
    crm.write_text(
        "Ticket,Step,Opened,Closed\n"
        "T1,Intake,02/03/2026 08:00,02/03/2026 08:10\n"
        "T1,Resolve,02/03/2026 08:10,02/03/2026 09:40\n"
        "T2,Intake,02/03/2026 09:00,02/03/2026 09:05\n"
        "T2,Resolve,02/03/2026 09:30,03/03/2026 10:00\n",
        encoding="utf-8",
    )
    from flowrun.eventlog import ColumnMapping

    mapping = ColumnMapping(case="Ticket", activity="Step", enable="Opened", end="Closed", time_format="%d/%m/%Y %H:%M")
    app.import_log(project, crm, "complaint", "crm-pilot", mapping=mapping)
    app.export_log(project, "xes", tmp_path / "log.xes")

    found = durations(pm4py.read_xes(str(tmp_path / "log.xes")))
    cycles = {i.id: app.show(project, i.id).cycle_s for i in app.instances(project)}
    assert found == cycles
    assert sorted(found.values()) == [
        timedelta(hours=1, minutes=40).total_seconds(),
        timedelta(hours=25).total_seconds(),
    ]


# -- case attributes --------------------------------------------------------------------


def survey(recorded: Recorded) -> dict[str, tuple[Any, Any, Any]]:
    """Case id -> (satisfaction, nps, resolved_first_contact) of the completed cases, as flowrun stored them."""
    out = {}
    for iid in recorded.cycles:
        data = app.show(recorded.project, iid).data
        out[iid] = (data.get("satisfaction"), data.get("nps"), data.get("resolved_first_contact"))
    return out


def test_case_attributes_as_pm4py_reads_them(recorded, tmp_path):
    """Survey answers reach PM4Py typed: XES case: columns, CSV case: columns, OCEL case object attributes."""
    expected = survey(recorded)
    keys = ("case:satisfaction", "case:nps", "case:resolved_first_contact")
    for fmt in ("xes", "csv", "ocel"):
        recorded.export(fmt, tmp_path / f"log.{fmt}")
    xes = pm4py.read_xes(str(tmp_path / "log.xes")).groupby("case:concept:name").first()
    assert {iid: tuple(xes.loc[iid, list(keys)]) for iid in expected} == expected
    done = xes.loc[list(expected)]
    assert done["case:nps"].dtype.kind in "if"  # typed <int>, not text
    assert {type(v).__name__ for v in done["case:resolved_first_contact"]} <= {"bool", "bool_"}

    frame = pd.read_csv(tmp_path / "log.csv")
    frame = pm4py.format_dataframe(frame, case_id="case_id", activity_key="activity", timestamp_key="start_time")
    per_case = frame.groupby("case:concept:name").first()
    assert {iid: tuple(per_case.loc[iid, list(keys)]) for iid in expected} == expected

    ocel = pm4py.read_ocel2_json(str(tmp_path / "log.ocel"))
    cases = ocel.objects[ocel.objects["ocel:type"] == "case"].set_index("ocel:oid")
    assert {iid: tuple(cases.loc[iid, [k.removeprefix("case:") for k in keys]]) for iid in expected} == expected


def test_ocel_directly_follows_on_complete_events(recorded, tmp_path):
    """As docs/eventlogs.md shows: filtered to complete events, the flattened OCEL gives the XES log's DFG."""
    recorded.export("ocel", tmp_path / "log.json")
    recorded.export("xes", tmp_path / "log.xes")
    ocel = pm4py.read_ocel2_json(str(tmp_path / "log.json"))
    flat = pm4py.ocel_flattening(ocel, "case")
    complete = flat[flat["lifecycle"] == "complete"]
    xes = pm4py.read_xes(str(tmp_path / "log.xes"))
    xes = xes[xes["lifecycle:transition"] == "complete"]

    dfg, _, _ = pm4py.discover_dfg(complete)
    assert dfg == pm4py.discover_dfg(xes)[0]
    assert ("Record complaint", "Analyse needs") in dfg
    assert all(a != b or a == "Specialist assessment" for a, b in dfg)  # no schedule/start self-loops
