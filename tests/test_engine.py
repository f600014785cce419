"""The engine on its own: Engine and Run in memory, with a ManualClock and no store.

These are the calls a simulator driving the engine makes: start, complete user
tasks, move the clock, fire timers, read the task records, snapshot and restore.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from flowrun.clock import ManualClock
from flowrun.engine import Engine, Run, load_model
from flowrun.errors import NotFoundError, ScriptError, StateError
from flowrun.models import COMPLETED, READY, WAITING, ModelInfo, TaskRecord, Wait
from tests.helpers import ANALYSE_NO_SPECIALIST, RECORD, REPLY, SURVEY, T0, draft, intake

ROOT = Path(__file__).resolve().parent.parent
EVENTS = Path(__file__).parent / "data" / "events"

#: Where the shipped example diagrams may live (the first folder holding them is used).
EXAMPLE_DIRS = (ROOT / "processes", ROOT / "flowrun" / "example" / "processes", ROOT / "flowrun" / "example")


def example(name: str) -> Path:
    """The shipped example diagram ``name`` (``complaint_baseline``, ...): its location is known only here."""
    for folder in EXAMPLE_DIRS:
        path = folder / f"{name}.bpmn"
        if path.is_file():
            return path
    raise FileNotFoundError(f"{name}.bpmn is in none of {[str(d) for d in EXAMPLE_DIRS]}")


@cache
def model(path: Path) -> ModelInfo:
    """The loaded model of a diagram (parsed once per test session)."""
    return load_model(path, path.name)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def start(engine: Engine, path: Path, data: Mapping[str, Any] | None = None) -> Run:
    info = model(path)
    return engine.start(info.spec, data, key=info.sha256, source=info.file, instance_id="case-1")


def by_id(records: list[TaskRecord]) -> dict[str, TaskRecord]:
    return {r.bpmn_id: r for r in records}


def ready_task(run: Run, bpmn_id: str, records: list[TaskRecord]) -> str:
    """The engine id of the ready user task ``bpmn_id`` among ``records``."""
    (rec,) = [r for r in records if r.bpmn_id == bpmn_id and r.status == READY]
    assert ("task", bpmn_id) in [(w.kind, w.task) for w in run.waiting_for()]
    return rec.task_id


def test_start_records_the_start_event_and_the_first_ready_task(clock):
    """Starting runs to the first user task; its record is ready now, in its lane, with its form."""
    run = start(Engine(clock), example("complaint_baseline"))
    records = by_id(run.drain())
    assert set(records) == {"StartEvent_ComplaintReceived", "Task_RecordComplaint"}
    first = records["Task_RecordComplaint"]
    assert (first.type, first.status, first.lane) == ("userTask", READY, "Call Centre")
    assert (first.ready_at, first.started_at, first.completed_at) == (T0, None, None)
    assert first.form == {"key": "record_complaint.json"}
    assert records["StartEvent_ComplaintReceived"].completed_at == T0
    assert run.waiting_for() == [Wait("task", task="Task_RecordComplaint", name="Record complaint", lane="Call Centre")]
    assert not run.completed
    assert run.drain() == []


def test_completing_a_task_records_its_times_actor_and_data(clock):
    """A completion is timed by the clock, names its actor, and the data reaches the next task."""
    run = start(Engine(clock), example("complaint_baseline"))
    task = ready_task(run, "Task_RecordComplaint", run.drain())
    clock.advance(300)
    run.complete(task, RECORD, actor="ann", started_at=T0 + timedelta(seconds=60))
    records = by_id(run.drain())
    done = records["Task_RecordComplaint"]
    assert (done.status, done.actor) == (COMPLETED, "ann")
    assert (done.started_at, done.completed_at) == (T0 + timedelta(seconds=60), T0 + timedelta(seconds=300))
    nxt = records["Task_AnalyseNeeds"]
    assert (nxt.status, nxt.ready_at, nxt.lane) == (READY, T0 + timedelta(seconds=300), "Back Office")
    assert run.data().items() >= RECORD.items()


def test_the_baseline_runs_to_its_end(clock):
    """Every user task of the baseline, completed in turn, ends the instance with all the data."""
    run = start(Engine(clock), example("complaint_baseline"))
    steps = [
        ("Task_RecordComplaint", RECORD),
        ("Task_AnalyseNeeds", ANALYSE_NO_SPECIALIST),
        ("Task_DraftResolution", draft(40)),
        ("Task_ReplyToCustomer", REPLY),
        ("Task_SatisfactionSurvey", SURVEY),
    ]
    records = run.drain()
    for bpmn_id, data in steps:
        task = ready_task(run, bpmn_id, records)
        clock.advance(600)
        run.complete(task, data, actor="bob", started_at=None)
        records = run.drain()
        assert by_id(records)[bpmn_id].completed_at == clock.now()
    assert run.completed
    assert run.waiting_for() == []
    assert by_id(records)["EndEvent_ComplaintClosed"].status == COMPLETED
    assert run.data()["remedy_amount"] == 40


def test_snapshot_and_restore_round_trip(clock):
    """A restored run waits for the same task, has the same data, records nothing old, and snapshots alike."""
    engine = Engine(clock)
    run = start(engine, example("complaint_baseline"))
    task = ready_task(run, "Task_RecordComplaint", run.drain())
    run.complete(task, RECORD, actor="ann", started_at=None)
    records = run.drain()
    state = run.snapshot()
    assert "spec" not in json.loads(state)  # the definition is stored once, not in every state

    again = engine.restore(None, state, key=model(example("complaint_baseline")).sha256)
    assert again.waiting_for() == run.waiting_for()
    assert again.data() == run.data()
    assert again.drain() == []
    assert again.snapshot() == state
    clock.advance(60)
    again.complete(ready_task(again, "Task_AnalyseNeeds", records), ANALYSE_NO_SPECIALIST, "cy", None)
    assert by_id(again.drain())["Task_DraftResolution"].ready_at == T0 + timedelta(seconds=60)


def test_a_fresh_engine_restores_with_the_definition(clock):
    """An engine that has not seen the model restores from the stored definition text."""
    info = model(example("complaint_baseline"))
    run = start(Engine(clock), example("complaint_baseline"))
    fresh = Engine(clock)
    assert not fresh.knows(info.sha256)
    again = fresh.restore(info.spec, run.snapshot(), key=info.sha256)
    assert fresh.knows(info.sha256)
    assert again.waiting_for() == run.waiting_for()


def test_a_service_task_calls_the_service_caller(clock):
    """The service caller gets the topic and the task data; its result is merged and the script uses it."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def caller(topic: str, data: Mapping[str, Any]) -> dict[str, Any]:
        calls.append((topic, dict(data)))
        return {"entitled": True, "tier": "gold", "auto_remedy_limit": 100}

    run = start(Engine(clock, service_caller=caller), example("complaint_reengineered"))
    task = ready_task(run, "Task_RecordAndAssess", run.drain())
    clock.advance(120)
    run.complete(task, intake(severity="high"), actor="dee", started_at=None)
    assert [topic for topic, _ in calls] == ["check_entitlement"]
    assert calls[0][1]["amount_disputed"] == 40
    records = by_id(run.drain())
    service = records["Task_CheckEntitlement"]
    assert (service.type, service.status, service.lane) == ("serviceTask", COMPLETED, "Front Office")
    assert service.started_at == service.completed_at == T0 + timedelta(seconds=120)
    assert records["Task_SetServiceLevel"].type == "scriptTask"
    assert run.data()["sla_hours"] == 4
    assert run.data()["tier"] == "gold"
    assert records["Task_ResolveAtFirstContact"].status == READY


def test_a_timer_waits_and_fires_by_the_clock(clock):
    """A two-hour timer is recorded as waiting, due in two hours, and fires only when the clock gets there."""
    run = start(Engine(clock), EVENTS / "timer_catch.bpmn")
    timer = by_id(run.drain())["Event_CoolingOff"]
    assert (timer.status, timer.waits_for, timer.due_at) == (WAITING, "timer", T0 + timedelta(hours=2))
    assert [w.kind for w in run.waiting_for()] == ["durationtimer"]
    clock.advance(3599)
    assert not run.refresh()
    assert run.drain() == []
    clock.set(T0 + timedelta(hours=2))
    assert run.refresh()
    records = by_id(run.drain())
    assert records["Event_CoolingOff"].completed_at == T0 + timedelta(hours=2)
    assert (records["Task_Ship"].status, records["Task_Ship"].ready_at) == (READY, T0 + timedelta(hours=2))


def _causes(exc: BaseException) -> list[BaseException]:
    found = []
    while exc.__cause__ is not None:
        exc = exc.__cause__
        found.append(exc)
    return found


def test_a_failing_script_is_a_script_error_caused_by_spiffworkflows(clock):
    """A script that fails names its element and file, and keeps SpiffWorkflow's exception as its cause."""

    def caller(topic: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return {"entitled": False, "auto_remedy_limit": 0}

    run = start(Engine(clock, service_caller=caller), example("complaint_reengineered"))
    task = ready_task(run, "Task_RecordAndAssess", run.drain())
    data = intake()
    del data["severity"]
    with pytest.raises(ScriptError, match="Task_SetServiceLevel") as caught:
        run.complete(task, data, actor="dee", started_at=None)
    assert str(caught.value).startswith("complaint_reengineered.bpmn: ")
    assert any(type(c).__module__.startswith("SpiffWorkflow") for c in _causes(caught.value))


def test_unknown_task_and_unreadable_state_keep_their_causes(clock):
    """Lookup and load failures are flowrun errors whose cause is the original exception."""
    engine = Engine(clock)
    run = start(engine, example("complaint_baseline"))
    with pytest.raises(NotFoundError, match="not-a-uuid") as caught:
        run.complete("not-a-uuid", {}, None, None)
    assert isinstance(caught.value.__cause__, ValueError)
    with pytest.raises(StateError, match="cannot be loaded") as unreadable:
        engine.restore(None, "{not json", key=model(example("complaint_baseline")).sha256)
    assert isinstance(unreadable.value.__cause__, json.JSONDecodeError)


def test_spiffworkflow_as_released_is_the_unpatched_walk_and_flowruns_comes_back():
    """The benchmarks' reference side: inside the block SpiffWorkflow walks as released (depth 1000,
    its own state setter); after it, flowrun's patches are back, also when the block raised."""
    from SpiffWorkflow.task import Task
    from SpiffWorkflow.util.task import TaskIterator

    from flowrun.engine import _tree

    patched_set_state = Task._set_state
    patched_init = TaskIterator.__dict__["__init__"]
    assert patched_set_state is _tree._set_state_watched
    inside: dict[str, Any] = {}

    def look_inside() -> None:
        with _tree.spiffworkflow_as_released():
            inside["set_state"] = Task._set_state
            inside["init"] = TaskIterator.__dict__["__init__"]
            inside["depth"] = TaskIterator.__init__.__defaults__[1]
            inside["skipping"] = hasattr(TaskIterator, "_flowrun_skipping")
            raise RuntimeError("the block fails")

    with pytest.raises(RuntimeError):
        look_inside()
    assert inside["set_state"] is _tree._set_state
    assert inside["init"] is not patched_init
    assert inside["depth"] == 1000
    assert inside["skipping"] is False
    assert Task._set_state is patched_set_state
    assert hasattr(TaskIterator, "_flowrun_skipping")
    assert TaskIterator.__dict__["__init__"] is patched_init
