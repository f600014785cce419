"""Hostile timers, times and loops: each is refused or run in bounded time, with a located message.

Timer values that would make SpiffWorkflow walk a billion months, fire every
second, or overflow the calendar; a cycle timer three weeks behind the clock;
loops longer than SpiffWorkflow's task iterator reaches, and loops without end;
times at the very ends of the calendar given on the command line or in a log.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flowrun import app
from flowrun.clock import ManualClock
from flowrun.engine import Engine, Run, load_model
from flowrun.errors import ScriptError
from tests.helpers import T0, flowrun_executable, query

EVENTS = Path(__file__).parent / "data" / "events"
#: The timer of timer_catch.bpmn, replaced by each hostile value.
CATCH_TIMER = '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"PT2H"</bpmn:timeDuration>'
HANG_TIMEOUT = 60


def timer_catch(kind: str, text: str) -> str:
    """timer_catch.bpmn (wait, then 'Ship order') with its timer set to ``kind`` (timeDate, ...) ``text``."""
    body = (EVENTS / "timer_catch.bpmn").read_text(encoding="utf-8")
    assert CATCH_TIMER in body
    return body.replace(CATCH_TIMER, f'<bpmn:{kind} xsi:type="bpmn:tFormalExpression">{text}</bpmn:{kind}>')


def cycle_boundary(text: str) -> str:
    """timer_cycle.bpmn (a reminder boundary on 'Review request') with the cycle ``text``."""
    return (EVENTS / "timer_cycle.bpmn").read_text(encoding="utf-8").replace('"R3/PT1H"', text)


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    out["FLOWRUN_NOW"] = "2026-03-02T09:00:00+00:00"
    out.update(extra)
    return out


def flowrun(project_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """The installed ``flowrun`` command in ``project_dir``; a hang fails the test after HANG_TIMEOUT s."""
    return subprocess.run(
        [str(flowrun_executable()), *args],
        cwd=project_dir,
        env=env(**extra),
        capture_output=True,
        text=True,
        timeout=HANG_TIMEOUT,
    )


def instances(project_dir: Path) -> int:
    return int(query(project_dir, "SELECT count(*) FROM instances")[0][0])


def assert_clean_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


# -- timer values: validate ------------------------------------------------------------------

#: file name -> (diagram text, words the located refusal must contain)
HOSTILE_TIMERS = {
    "cycle_of_ages": (cycle_boundary('"R/P77777777Y"'), ("Event_Reminder", "longer than 100 years")),
    "cycle_of_months": (cycle_boundary("R/P999999999M"), ("Event_Reminder", "longer than 100 years")),
    "cycle_every_instant": (cycle_boundary('"R/PT0S"'), ("Event_Reminder", "at most once a second")),
    "cycle_negative_count": (cycle_boundary('"R-7/PT1H"'), ("Event_Reminder", "repeats -7 times")),
    "cycle_past_9999": (cycle_boundary('"R3/9999-11-01T00:00:00Z/P3M"'), ("Event_Reminder", "years 1 to 9999")),
    "cycle_huge_digits": (cycle_boundary(f'"R/PT{"7" * 500}M"'), ("Event_Reminder", "longer than 100 years")),
    "duration_of_ages": (timer_catch("timeDuration", '"P4000000000W"'), ("Event_CoolingOff", "100 years")),
    "date_before_year_one": (timer_catch("timeDate", '"0001-01-01T03:00:00+11:30"'), ("years 1 to 9999",)),
    "date_after_9999": (timer_catch("timeDate", '"9999-12-31T20:00:00-13:00"'), ("years 1 to 9999",)),
}


def test_hostile_timer_values_are_refused_by_validate_in_bounded_time(project_dir):
    """``flowrun validate`` names each absurd timer, its element and the limit, and never hangs."""
    folder = project_dir / "processes"
    for name, (text, _) in HOSTILE_TIMERS.items():
        (folder / f"{name}.bpmn").write_text(text, encoding="utf-8")
    files = [f"processes/{name}.bpmn" for name in HOSTILE_TIMERS]
    proc = flowrun(project_dir, "validate", *files)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out
    for name, (_, words) in HOSTILE_TIMERS.items():
        lines = [line for line in out.splitlines() if line.startswith(f"processes/{name}.bpmn:")]
        assert lines, f"{name}: no message in\n{out}"
        for word in words:
            assert any(word in line for line in lines), f"{name}: {word!r} not in {lines}"


@pytest.mark.parametrize(
    "cycle", ['"R/P1Y2M10DT2H30M"', '"R2/P1200M"', '"R5/2026-01-31T09:00:00Z/P1M"', '"R/P1M/2030-01-01T00:00:00Z"']
)
def test_ordinary_calendar_cycles_still_validate(project_dir, cycle):
    """Cycles over months and years, with a start or an end, are valid."""
    (project_dir / "processes" / "fine.bpmn").write_text(cycle_boundary(cycle), encoding="utf-8")
    proc = flowrun(project_dir, "validate", "processes/fine.bpmn")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)


# -- timer values: at run time ---------------------------------------------------------------

RUNTIME_TIMERS = [
    ("timeDuration", '"P" + str(n * 10**8) + "Y"', "longer than 100 years"),
    ("timeDuration", '"PT" + "9" * n * 100 + "S"', "longer than 100 years"),
    ("timeDate", '"0001-01-01T0" + str(n) + ":00:00+14:00"', "years 1 to 9999"),
    ("timeCycle", '"R/PT0." + str(n) + "S"', "at most once a second"),
    ("timeCycle", '"R/P" + str(n) + "0000000Y"', "longer than 100 years"),
    ("timeDuration", '"PT" + str(n) + "Q"', "its value is not an ISO 8601 duration"),
    ("timeCycle", "n * 3", "its value is not an ISO 8601 repeating interval"),
    ("timeDate", '"2026-02-3" + str(n)', "its value is not an ISO 8601 date and time"),
]


@pytest.mark.parametrize(("kind", "expression", "words"), RUNTIME_TIMERS)
def test_timer_computed_from_data_is_refused_at_start_naming_the_timer(project, project_dir, kind, expression, words):
    """A timer value only known at run time is bounded too: a ScriptError naming the event, nothing saved."""
    (project_dir / "processes" / "computed.bpmn").write_text(timer_catch(kind, expression), encoding="utf-8")
    before = instances(project_dir)
    with pytest.raises(ScriptError) as caught:
        app.start(project, "computed", {"n": 5})
    message = caught.value.message
    assert "Event_CoolingOff" in message, message
    assert words in message, message
    assert "fix the timer" in message
    assert instances(project_dir) == before


def test_boundary_cycle_computed_from_data_fails_start_cleanly_from_the_cli(project_dir):
    """``flowrun start`` with a boundary cycle computed as every 0 s: exit 1, one located line, nothing saved."""
    (project_dir / "processes" / "nagging.bpmn").write_text(cycle_boundary('"R/PT" + str(gap) + "S"'), encoding="utf-8")
    before = instances(project_dir)
    proc = flowrun(project_dir, "start", "nagging", "-d", "gap=0")
    assert_clean_error(proc, "Event_Reminder", "once a second")
    assert instances(project_dir) == before


def test_duration_timer_near_the_end_of_the_calendar_is_refused(project_dir):
    """A 3-day wait started on 9999-12-29 would be due after 9999: refused with the reason, not an overflow."""
    (project_dir / "processes" / "long.bpmn").write_text(timer_catch("timeDuration", '"P3D"'), encoding="utf-8")
    proc = flowrun(project_dir, "start", "long", FLOWRUN_NOW="9999-12-29T00:00:00+00:00")
    assert_clean_error(proc, "Event_CoolingOff", "after the year 9999")


# -- a cycle timer far behind the clock ------------------------------------------------------


def start_engine(clock: ManualClock, name: str, data: dict[str, Any]) -> Run:
    path = EVENTS / f"{name}.bpmn"
    info = load_model(path, path.name)
    return Engine(clock).start(info.spec, data, key=info.sha256, source=info.file, instance_id="case-1")


def cycle_state(run: Run) -> dict[str, Any]:
    """The stored state of the instance's one cycle timer (repetitions left, next round, missed rounds)."""
    tasks = json.loads(run.snapshot())["tasks"].values()
    [value] = [
        t["internal_data"]["event_value"] for t in tasks if isinstance(t["internal_data"].get("event_value"), dict)
    ]
    return dict(value)


def test_hourly_reminder_three_weeks_behind_fires_once_and_keeps_its_schedule():
    """Worker down 3 weeks: one pass fires the reminder once (503 rounds counted as missed), next due on the hour."""
    clock = ManualClock(T0)
    run = start_engine(clock, "timer_hourly_script", {"reminders": 0})
    run.drain()
    clock.set(T0 + timedelta(weeks=3, minutes=30))
    assert run.refresh()
    done = [r for r in run.drain() if r.bpmn_id == "Task_Remind"]
    assert [r.status for r in done] == ["completed"]
    state = cycle_state(run)
    assert state["missed"] == 3 * 7 * 24 - 1
    assert state["next"] == (T0 + timedelta(weeks=3, hours=1)).isoformat()
    assert [w.due for w in run.waiting_for() if w.due] == [T0 + timedelta(weeks=3, hours=1)]
    assert not run.refresh()  # nothing more is due now
    clock.advance(3600)
    assert run.refresh()
    assert cycle_state(run)["missed"] == 3 * 7 * 24 - 1


def test_counted_cycle_far_behind_uses_up_its_rounds_in_one_firing():
    """R5/PT1H three weeks late: one firing for the five rounds, then the timer is done."""
    clock = ManualClock(T0)
    body = (EVENTS / "timer_hourly_script.bpmn").read_text(encoding="utf-8").replace('"R/PT1H"', '"R5/PT1H"')
    path = EVENTS.parent / "_r5.bpmn"
    try:
        path.write_text(body, encoding="utf-8")
        info = load_model(path, "r5.bpmn")
    finally:
        path.unlink()
    run = Engine(clock).start(info.spec, {"reminders": 0}, key=info.sha256)
    run.drain()
    clock.set(T0 + timedelta(weeks=3))
    assert run.refresh()
    assert [w for w in run.waiting_for() if "timer" in w.kind] == []
    assert [r.status for r in run.drain() if r.bpmn_id == "Task_Remind"] == ["completed"]
    assert cycle_state(run)["missed"] == 4


def test_worker_pass_after_three_weeks_leaves_the_instance_healthy(project, project_dir, clock):
    """``worker --once`` three weeks late: the instance fired, nothing failed, no incident, still reviewable."""
    shutil.copy(EVENTS / "timer_hourly_script.bpmn", project_dir / "processes" / "timer_hourly_script.bpmn")
    iid = app.start(project, "timer_hourly_script", {"reminders": 0}).instance
    clock.set(T0 + timedelta(weeks=3, minutes=5))
    result = app.run_due(project)
    assert (result.fired, result.failed) == ([iid], [])
    assert app.incidents(project) == []
    assert [t.name for t in result.ready] == []
    shown = app.show(project, iid)
    assert shown.status == "running"
    reminders = [t for t in app.history(project, iid)[1] if t.bpmn_id == "Task_Remind"]
    assert [t.status for t in reminders] == ["completed"]
    assert [w.due for w in shown.waiting_for if w.due] == [T0 + timedelta(weeks=3, hours=1)]
    assert app.next_due(project) == T0 + timedelta(weeks=3, hours=1)


# -- loops -------------------------------------------------------------------------------------


def test_loop_deeper_than_spiffworkflows_iterator_runs_to_its_end():
    """1,500 rounds of script + gateway (4,500 tasks deep) complete with the right count, not '{}'."""
    run = start_engine(ManualClock(T0), "loop_counter", {"rounds": 0, "limit": 1500})
    assert run.completed
    assert run.data() == {"rounds": 1500, "limit": 1500}
    ends = [r for r in run.drain() if r.bpmn_id == "EndEvent_Counted"]
    assert [r.status for r in ends] == ["completed"]


def test_long_loop_survives_a_snapshot_and_restore_half_way():
    """A loop 700 rounds deep waits nowhere; the restored state of a deep tree still loads and reads right."""
    clock = ManualClock(T0)
    path = EVENTS / "loop_counter.bpmn"
    info = load_model(path, path.name)
    engine = Engine(clock)
    run = engine.start(info.spec, {"rounds": 0, "limit": 700}, key=info.sha256)
    state = run.snapshot()
    assert "_flowrun_jumps" not in state  # the engine's remembered jumps are not part of the state
    again = engine.restore(None, state, key=info.sha256)
    assert again.completed
    assert again.data()["rounds"] == 700


def test_endless_script_loop_is_stopped_by_the_step_limit_naming_its_elements(project_dir):
    """``limit=0`` loops for ever: FLOWRUN_MAX_STEPS stops it, the message names the loop, nothing is saved."""
    shutil.copy(EVENTS / "loop_counter.bpmn", project_dir / "processes" / "loop_counter.bpmn")
    before = instances(project_dir)
    proc = flowrun(project_dir, "start", "loop_counter", "-d", "rounds=0", "-d", "limit=0", FLOWRUN_MAX_STEPS="2000")
    assert_clean_error(
        proc, "2000 automated steps", "FLOWRUN_MAX_STEPS", "Task_Count", "Gateway_Check", "loop_counter.bpmn"
    )
    assert instances(project_dir) == before


def test_endless_gateway_loop_is_stopped_within_the_cpu_budget_naming_its_gateways(project_dir):
    """Two gateways chasing each other: stopped by the step's CPU budget, named as a loop, not as 'a script'."""
    shutil.copy(EVENTS / "loop_gateways.bpmn", project_dir / "processes" / "loop_gateways.bpmn")
    before = instances(project_dir)
    proc = flowrun(project_dir, "start", "loop_gateways", FLOWRUN_SCRIPT_SECONDS="0.5")
    assert_clean_error(proc, "without waiting for anyone", "G1", "G2", "loops without end")
    assert re.search(r"after \d+ automated steps|ran \d+ automated steps", proc.stderr)
    assert instances(project_dir) == before


def test_endless_loop_found_by_a_worker_after_a_timer_fails_that_instance_only(
    project, project_dir, clock, monkeypatch
):
    """A timer leading into an endless loop: the worker reports the instance failed and carries on."""
    body = (EVENTS / "loop_gateways.bpmn").read_text(encoding="utf-8")
    timer = (
        '<bpmn:intermediateCatchEvent id="Event_Wait"><bpmn:incoming>f1</bpmn:incoming>'
        '<bpmn:outgoing>f0</bpmn:outgoing><bpmn:timerEventDefinition id="T1">'
        '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"PT1H"</bpmn:timeDuration>'
        "</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
        '<bpmn:sequenceFlow id="f0" sourceRef="Event_Wait" targetRef="G1" />'
    )
    body = body.replace(
        '<bpmn:sequenceFlow id="f1" sourceRef="S" targetRef="G1" />',
        timer + '<bpmn:sequenceFlow id="f1" sourceRef="S" targetRef="Event_Wait" />',
    )
    body = body.replace(
        "<bpmn:incoming>f1</bpmn:incoming><bpmn:incoming>f3</bpmn:incoming>",
        "<bpmn:incoming>f0</bpmn:incoming><bpmn:incoming>f3</bpmn:incoming>",
    )
    (project_dir / "processes" / "later_loop.bpmn").write_text(body, encoding="utf-8")
    iid = app.start(project, "later_loop").instance
    clock.advance(2 * 3600)
    monkeypatch.setenv("FLOWRUN_MAX_STEPS", "300")
    result = app.run_due(project)
    assert [i for i, _ in result.failed] == [iid]
    assert "G1" in result.failed[0][1]
    assert "FLOWRUN_MAX_STEPS" in result.failed[0][1]


# -- times at the ends of the calendar ----------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "words"),
    [
        ("0001-01-01T00:00:00+14:00", "outside the years 1 to 9999"),
        ("9999-12-31T23:30:00-14:00", "outside the years 1 to 9999"),
        ("9999-12-31T18:00:00+00:00", "too close to the ends of the calendar"),
        ("0001-01-01T06:00:00Z", "too close to the ends of the calendar"),
    ],
)
def test_flowrun_now_at_the_ends_of_the_calendar_is_refused_with_the_reason(cli, project_dir, now, words):
    """FLOWRUN_NOW at the calendar's edges: a usage error that says why, never an internal error."""
    result = cli(project_dir, "start", "complaint_baseline", now=now)
    assert result.exit_code not in (0, 70), result.output
    assert words in result.output
    assert "FLOWRUN_NOW" in result.output
    assert "internal error" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("--since", "0001-01-01T00:00:00+14:00"),
        ("--until", "9999-12-31T23:59:59-14:00"),
    ],
)
def test_compare_window_beyond_the_calendar_is_refused(cli, project_dir, args):
    """``compare --since/--until`` a time outside the years 1 to 9999 in UTC: a usage error naming the option."""
    result = cli(project_dir, "compare", "complaint", *args)
    assert result.exit_code == 2, result.output
    assert args[0] in result.output
    assert "years 1 to 9999" in result.output


def test_compare_until_the_last_day_of_the_calendar_works(cli, project_dir):
    """``--until 9999-12-31`` is the end of time, not an overflow."""
    result = cli(project_dir, "compare", "complaint", "--until", "9999-12-31")
    assert result.exit_code in (0, 1), result.output
    assert "internal error" not in result.output


def test_import_log_with_a_time_before_the_year_one_names_the_line(cli, project_dir, tmp_path):
    """A log time of 0001-01-01T01:00:00+05:00 is a bad row with its line, not an internal error."""
    log = tmp_path / "log.csv"
    log.write_text(
        "case_id,activity,start_time,end_time\n"
        "c1,Check,2026-01-05T09:00:00Z,2026-01-05T09:30:00Z\n"
        "c2,Check,0001-01-01T01:00:00+05:00,2026-01-05T09:30:00Z\n",
        encoding="utf-8",
    )
    result = cli(project_dir, "import-log", str(log), "--process", "complaint", "--variant", "crm")
    assert result.exit_code == 1, result.output
    assert "line 3" in result.output
    assert "years 1 to 9999" in result.output


# -- the arithmetic is SpiffWorkflow's calendar -------------------------------------------------


@pytest.mark.parametrize("text", ["P1M", "P13M", "P2Y3M", "P1Y2M10DT2H", "P30D", "PT90M", "P2W", "P0M"])
def test_calendar_arithmetic_gives_the_durations_spiffworkflows_month_walk_gives(text):
    """From each month's 1st, 15th and last days of 2023-2025, forwards and back: the same timedelta."""
    from calendar import monthrange
    from datetime import datetime, timezone

    from flowrun.engine import timers

    for year in (2023, 2024, 2025):
        for month in range(1, 13):
            for day in (1, 15, monthrange(year, month)[1]):
                when = datetime(year, month, day, 9, 30, tzinfo=timezone.utc)
                parsed = timers.parse_duration(text)
                assert timers.timedelta_from_start(dict(parsed), when) == timers.SPIFF_FROM_START(dict(parsed), when)
                assert timers.timedelta_from_end(dict(parsed), when) == timers.SPIFF_FROM_END(dict(parsed), when)


@pytest.mark.parametrize(
    "name",
    ["timer_cycle", "timer_boundary", "timer_reminder", "event_gateway", "message_boundary", "timer_hourly_script"],
)
def test_task_queries_find_what_a_full_walk_of_the_tree_finds(name, monkeypatch):
    """Jumping over finished history changes no query's answer or order (ready, waiting, unfinished, started)."""
    from SpiffWorkflow.util.task import TaskState

    from flowrun.engine import _tree

    clock = ManualClock(T0)
    run = start_engine(clock, name, {"reminders": 0})
    for hours in (1, 2, 5):
        clock.set(T0 + timedelta(hours=hours, minutes=1))
        run.refresh()
    workflow = run._wf
    masks = (TaskState.READY, TaskState.WAITING, TaskState.STARTED, TaskState.NOT_FINISHED_MASK)
    fast = [[t.id for t in workflow.get_tasks(state=mask)] for mask in masks]
    monkeypatch.setattr(_tree, "_skips_finished", lambda iterator: False)  # SpiffWorkflow walks alone
    assert fast == [[t.id for t in workflow.get_tasks(state=mask)] for mask in masks]


def test_worker_once_three_weeks_late_from_the_cli(project_dir):
    """``FLOWRUN_NOW`` three weeks on, ``flowrun worker --once`` exits 0; ``show`` has the timer due next hour."""
    shutil.copy(EVENTS / "timer_hourly_script.bpmn", project_dir / "processes" / "timer_hourly_script.bpmn")
    started = flowrun(project_dir, "start", "timer_hourly_script", "-d", "reminders=0", FLOWRUN_NOW=T0.isoformat())
    assert started.returncode == 0, started.stderr
    instance = started.stdout.split()[0]
    late = T0 + timedelta(weeks=3, minutes=20)
    worker = flowrun(project_dir, "worker", "--once", "--json", FLOWRUN_NOW=late.isoformat())
    assert worker.returncode == 0, worker.stderr
    assert "Traceback" not in worker.stderr
    shown = json.loads(flowrun(project_dir, "show", instance, "--json", FLOWRUN_NOW=late.isoformat()).stdout)
    assert shown["status"] == "running"
    dues = [w["due"] for w in shown["waiting_for"] if w.get("due")]
    assert dues == [(T0 + timedelta(weeks=3, hours=1)).isoformat()]


@pytest.mark.parametrize("where", ["engine", "condition"])
def test_cpu_stop_landing_anywhere_in_a_long_loop_names_the_loop(monkeypatch, where):
    """The budget may run out in a gateway's condition or in the engine's own code between two tasks:
    after many automated steps both are reported as the loop, with its gateways, not as "a script"."""
    from flowrun.engine import runner, sandbox
    from flowrun.engine.step_limits import ScriptTimeout, timeout_message

    path = EVENTS / "loop_gateways.bpmn"
    info = load_model(path, path.name, path.parent)
    calls = {"n": 0}
    if where == "engine":
        will = runner.Run._will

        def tired_will(self: Any, task: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 1500:
                raise ScriptTimeout(timeout_message())  # as SIGPROF would, between two tasks
            will(self, task)

        monkeypatch.setattr(runner.Run, "_will", tired_will)
    else:
        evaluate = sandbox.evaluate

        def tired_evaluate(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 1500:
                raise ScriptTimeout(timeout_message())  # as SIGPROF would, inside the condition
            return evaluate(*args, **kwargs)

        monkeypatch.setattr(sandbox, "evaluate", tired_evaluate)
    with pytest.raises(ScriptError) as caught:
        Engine(ManualClock(T0)).start(info.spec, {}, key=info.sha256)
    message = str(caught.value)
    assert "without waiting for anyone" in message, message
    assert "G1" in message, message
    assert "G2" in message, message
    assert "FLOWRUN_SCRIPT_SECONDS" in message
