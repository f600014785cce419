"""KPI definitions per case (issue 11): each measure against a hand or plain-Python computation."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import numpy as np
import pytest

from flowrun import app
from flowrun.analysis import case_kpis, cases_per_person_hour, measure
from flowrun.analysis.blueprint import PilotSettings
from tests.helpers import RECORD, T0, work
from tests.test_example_paths import BASELINE, LANE, drive

SETTINGS = PilotSettings(
    lanes={"front": "frontstage", "back": "backstage", "cust": "customer", "it": "support"},
    touchpoints={"CallBack": True, "Note": False},
    hourly_cost={"front": 36.0, "back": 72.0},
    currency="EUR",
    resolution=frozenset({"Reply"}),
    sla_seconds=100.0,
)


_REF = itertools.count(1)


def _step(
    iid: str, task: str, lane: str | None, ready: float, started: float, done: float, kind: str = "userTask"
) -> tuple[Any, ...]:
    """A step row as the store gives it (record ids increase in the order steps are written here)."""
    return (iid, task, lane, kind, ready, started, done, next(_REF))


def test_parallel_branches_wait_is_life_minus_the_union_of_busy_intervals():
    """Two overlapping branches: busy [10,30] + [35,60] + [90,95] = 50 s of a 100 s life -> 50 s waiting."""
    rows = [("a", "v", None, "completed", 0.0, 100.0)]
    steps = [
        _step("a", "Take", "Front", 0, 10, 30),
        _step("a", "Check", "Back", 30, 35, 60),  # branch 1
        _step("a", "Note", "Front", 30, 40, 50),  # branch 2, inside branch 1's work
        _step("a", "Sub", "Back", 30, 30, 60, "subProcess"),  # a container: its time is its inner steps'
        _step("a", "Mail", "Front", 60, 60, 60, "sendTask"),
        _step("a", "Survey", "Cust", 60, 90, 95),
    ]
    case = measure(rows, [steps], (), SETTINGS).case("a")
    assert case["waiting_time"] == 50
    assert case["touch_time"] == 20 + 25 + 10 + 0 + 5
    assert case["cycle_time"] == 100
    assert (case["steps"], case["manual_steps"], case["automated_steps"]) == (4, 4, 1)
    assert case["response_time"] == 10  # first ready at 0, first started at 10


def test_waiting_matches_a_plain_python_union_on_random_cases():
    """300 random cases with overlapping steps: waiting = life - merged intervals, computed one by one."""
    rnd = random.Random(4)
    rows, steps, expected = [], [], {}
    for k in range(300):
        iid = f"c{k}"
        start = 1_700_000_000.0 + rnd.randrange(10**6)
        intervals = []
        for j in range(rnd.randrange(0, 7)):
            s = start + rnd.randrange(0, 5000)
            c = s + rnd.randrange(0, 3000)
            intervals.append((s, c))
            steps.append(_step(iid, f"T{j}", "Front", s - rnd.randrange(0, 50), s, c))
        end = max([start + 1.0] + [c for _, c in intervals]) + rnd.randrange(0, 100)
        rows.append((iid, "v", None, "completed", start, end))
        busy, reach = 0.0, -math.inf
        for s, c in sorted(intervals):
            busy += max(0.0, c - max(s, reach))
            reach = max(reach, c)
        expected[iid] = (end - start) - busy
    rnd.shuffle(steps)
    cases = measure(rows, [steps[:700], steps[700:]], (), SETTINGS)
    got = dict(zip(cases.ids, cases.measures["waiting_time"].tolist(), strict=True))
    assert got == pytest.approx(expected, abs=1e-6)


def test_rework_counts_extra_rounds_not_parallel_instances():
    """Draft and Approve looped back twice: 2 extra rounds each; three instances ready together are one activation."""
    rows = [("a", "v", None, "completed", 0.0, 200.0), ("b", "v", None, "completed", 0.0, 200.0)]
    steps = [
        _step("a", "Draft", "Back", 0, 0, 10),
        _step("a", "Approve", "Back", 10, 10, 20),
        _step("a", "Draft", "Back", 20, 20, 30),  # round 2
        _step("a", "Approve", "Back", 30, 30, 40),  # round 2
        _step("a", "Draft", "Back", 40, 40, 50),  # round 3
        _step("a", "Approve", "Back", 50, 50, 60),  # round 3
        *(_step("b", "Review", "Back", 5, 5 + i, 20) for i in range(3)),  # parallel multi-instance
    ]
    cases = measure(rows, [steps], (), SETTINGS)
    assert (cases.case("a")["rework"], cases.case("a")["rework_rate"]) == (4, 1)  # Draft 2 + Approve 2
    assert (cases.case("b")["rework"], cases.case("b")["rework_rate"]) == (0, 0)
    assert cases.case("b")["manual_steps"] == 3


def test_handoffs_count_staff_lane_changes_only():
    """Front Cust Front Back IT Back [service in Back] Front: staff persons Front Front Back Back Front = 2."""
    rows = [("a", "v", None, "completed", 0.0, 100.0)]
    lanes = ["Front", "Cust", "Front", "Back", "IT", "Back"]
    steps = [_step("a", f"T{i}", lane, i, i, i + 1) for i, lane in enumerate(lanes)]
    steps += [_step("a", "Auto", "Back", 6, 6, 7, "serviceTask"), _step("a", "Last", "Front", 7, 7, 8)]
    case = measure(rows, [steps], (), SETTINGS).case("a")
    staff = [lane for lane in [*lanes, "Front"] if lane in ("Front", "Back")]
    assert case["handoffs"] == sum(a != b for a, b in zip(staff, staff[1:], strict=False)) == 2
    assert case["customer_effort"] == 1


def test_touchpoints_follow_lane_layers_and_task_overrides():
    """Frontstage and customer steps are touchpoints; CallBack (backstage) is one by override, Note is not."""
    rows = [("a", "v", None, "completed", 0.0, 100.0)]
    steps = [
        _step("a", "Take", "Front", 0, 0, 1),  # yes (frontstage)
        _step("a", "Note", "Front", 1, 1, 2),  # no (override)
        _step("a", "Check", "Back", 2, 2, 3),  # no (backstage)
        _step("a", "CallBack", "Back", 3, 3, 4),  # yes (override)
        _step("a", "Survey", "Cust", 4, 4, 5),  # yes (customer)
        _step("a", "Fix", "IT", 5, 5, 6),  # no (support)
        _step("a", "Other", "Unlisted", 6, 6, 7),  # no (default backstage)
    ]
    case = measure(rows, [steps], (), SETTINGS).case("a")
    assert case["touchpoints"] == 3
    assert case["customer_effort"] == 1


def test_resolution_response_sla_and_cost():
    """Reply first completes at 80 (and again at 150): resolved in 80 s, within the 100 s SLA; cost by lane."""
    rows = [
        ("a", "v", None, "completed", 0.0, 300.0),
        ("b", "v", None, "completed", 0.0, 300.0),
        ("c", "v", None, "completed", 0.0, 50.0),
    ]
    steps = [
        _step("a", "Take", "Front", 5, 20, 20 + 1800),  # half an hour at 36/h = 18
        _step("a", "Reply", "Front", 60, 70, 80),
        _step("a", "Check", "Back", 80, 80, 80 + 3600),  # an hour at 72/h = 72
        _step("a", "Reply", "Front", 100, 140, 150),
        _step("a", "Bot", "Back", 0, 0, 3600, "scriptTask"),  # automated: no person-hours, no cost
        _step("a", "Fix", "IT", 0, 0, 3600),  # a lane without a cost
        _step("b", "Reply", "Front", 10, 10, 150),
        _step("c", "Take", "Front", 0, 0, 10),
    ]
    cases = measure(rows, [steps], (), SETTINGS)
    a, b, c = (cases.case(x) for x in "abc")
    assert (a["resolution_time"], a["response_time"], a["sla_met"]) == (80, 0, 1)
    assert a["cost"] == pytest.approx(36 * 0.5 + 72 * 1 + 36 * 20 / 3600)
    assert (b["resolution_time"], b["sla_met"]) == (150, 0)
    assert (c["resolution_time"], c["sla_met"]) == (None, 0)  # never resolved: the SLA was not kept
    person_hours = (1800 + 10 + 3600 + 10 + 3600 + 140 + 10) / 3600
    everyone = np.ones(3, dtype=np.bool_)
    assert cases_per_person_hour(cases, everyone) == pytest.approx(3 / person_hours)
    kpis = {k.name: k.unit for k in case_kpis(SETTINGS)}
    assert (kpis["cost"], kpis["sla_met"], kpis["rework_rate"]) == ("EUR", "proportion", "proportion")
    plain = {k.name for k in case_kpis(PilotSettings())}
    assert not plain & {"cost", "sla_met", "resolution_time"}
    assert not {"cost", "sla_met", "resolution_time"} & measure(rows, [steps]).measures.keys()


def test_running_cases_are_censored_at_the_cutoff():
    """Running cases: observed until the cutoff without the event, unless their milestone already completed."""
    rows = [
        ("done", "v", None, "completed", 0.0, 90.0),
        ("open", "v", None, "running", 50.0, None),
        ("replied", "v", None, "running", 100.0, None),
        ("unresolved", "v", None, "completed", 0.0, 40.0),
        ("failed", "v", None, "error", 0.0, None),
    ]
    steps = [
        _step("done", "Reply", "Front", 0, 10, 60),
        _step("open", "Take", "Front", 50, 60, 70),
        _step("replied", "Reply", "Front", 100, 110, 170),
        _step("unresolved", "Take", "Front", 0, 0, 10),
    ]
    cases = measure(rows, [steps], (), SETTINGS, cutoff=200.0)
    time, event = cases.observed["cycle_time"]
    assert time[:4].tolist() == [90, 150, 100, 40]
    assert event.tolist() == [True, False, False, True, False]
    assert math.isnan(time[4])
    time, event = cases.observed["resolution_time"]
    assert time[:4].tolist() == [60, 150, 70, 40]
    assert event.tolist() == [True, False, True, False, False]
    assert cases.case("replied")["resolution_time"] is None  # measures stay for completed cases only
    assert cases.step_case.tolist() == [0, 3]  # running cases' steps feed no task or lane table


def test_app_observes_running_cases_until_the_project_clock(project, clock):
    """Through the app: a running case is censored at the clock's now, a completed one is an event."""
    done, _ = drive(project, "complaint:baseline", BASELINE["no-specialist-remedy-100"], LANE)
    running = app.start(project, "complaint:baseline").instance
    started = clock.now()
    work(project, running, "Record complaint", RECORD)
    cases = app.measure_cases(project, "complaint")
    time, event = cases.observed["cycle_time"]
    i, j = cases.ids.index(done), cases.ids.index(running)
    assert (bool(event[i]), time[i]) == (True, cases.case(done)["cycle_time"])
    assert bool(event[j]) is False
    assert time[j] == pytest.approx((clock.now() - started).total_seconds())
    assert clock.now() > T0


def test_sla_without_milestones_is_kept_on_cycle_time():
    """No resolution milestone: the 100 s SLA is judged on cycle time (100 s kept, 101 s missed)."""
    settings = PilotSettings(lanes=SETTINGS.lanes, sla_seconds=100.0)
    rows = [("in", "v", None, "completed", 0.0, 100.0), ("late", "v", None, "completed", 0.0, 101.0)]
    steps = [_step("in", "Take", "Front", 0, 5, 10), _step("late", "Take", "Front", 0, 5, 10)]
    cases = measure(rows, [steps], (), settings)
    assert (cases.case("in")["sla_met"], cases.case("late")["sla_met"]) == (1, 0)
    assert "resolution_time" not in cases.measures
