"""Timers, messages, signals and BPMN errors, end to end on real SQLite projects.

The diagrams are in ``tests/data/events/`` (Camunda Modeler style). Time only
moves when a test moves the :class:`~flowrun.clock.ManualClock` (or sets
``FLOWRUN_NOW`` for a CLI call): nothing here sleeps.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result

from flowrun import app
from flowrun.clock import ManualClock, iso
from flowrun.config import find_project
from flowrun.errors import NotFoundError
from tests.helpers import T0, cli_json, db_path, query, ready_ref

EVENTS = Path(__file__).parent / "data" / "events"


def add(project_dir: Path, *names: str) -> None:
    """Copy diagrams from tests/data/events into the project's processes/ folder."""
    for name in names:
        shutil.copy(EVENTS / f"{name}.bpmn", project_dir / "processes" / f"{name}.bpmn")


def at(hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes, seconds=seconds)


def stamp(when: datetime) -> str:
    """``when`` as FLOWRUN_NOW text."""
    return when.isoformat()


def waits(project: app.Project, instance: str) -> dict[str, dict[str, Any]]:
    """What ``show`` says the instance waits for, by BPMN id, with times as ``show --json`` gives them."""
    out: dict[str, dict[str, Any]] = {}
    for w in app.show(project, instance).waiting_for:
        assert w.task is not None, w  # the store fills in every wait's task
        out[w.task] = {**asdict(w), "since": iso(w.since), "due": iso(w.due)}
    return out


def ready_names(project: app.Project, instance: str) -> list[str]:
    return sorted(i.name for i in app.inbox(project, instance))


def history(project: app.Project, instance: str) -> list[tuple[str, str]]:
    _, tasks = app.history(project, instance)
    return [(t.bpmn_id, t.status) for t in tasks]


def assert_error(result: Result, code: int, *needles: str) -> str:
    """The command failed cleanly: exit ``code``, an 'error:' line naming ``needles``, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert isinstance(result.exception, SystemExit), result.exception
    text = result.stdout + result.stderr
    assert "Traceback" not in text
    assert result.stderr.startswith("error: "), result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)
    return result.stderr


def db_state(project_dir: Path) -> tuple[list[tuple[Any, ...]], ...]:
    """Everything a refused step must leave alone (empty when no SQLite database was created yet)."""
    if not db_path(project_dir).parent.exists() and "postgresql" not in (project_dir / "flowrun.yaml").read_text():
        return ([], [], [])
    return (
        query(project_dir, "SELECT id, version, status, data, state FROM instances ORDER BY id"),
        query(project_dir, "SELECT * FROM tasks ORDER BY id"),
        query(project_dir, "SELECT * FROM events ORDER BY id"),
    )


# -- timers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "process",
    [
        "timer_boundary",  # timeDuration "PT48H", a quoted Python string as SpiffWorkflow wants it
        "timer_boundary_bare",  # timeDuration PT48H, plain ISO 8601 as Camunda Modeler writes it
    ],
)
def test_interrupting_timer_boundary_escalates_after_48_hours(project, project_dir, clock, process):
    """The deadline is shown with its due time, fires only once due, and cancels the task it sits on."""
    add(project_dir, process)
    started = app.start(project, process)
    iid = started.instance
    due = at(hours=48)

    shown = waits(project, iid)
    assert shown["Event_Deadline"]["waits_for"] == "timer"
    assert shown["Event_Deadline"]["due"] == iso(due) == "2026-03-04T08:00:00+00:00"
    assert shown["Task_Review"]["kind"] == "task"
    assert app.next_due(project) == due

    clock.set(due - timedelta(minutes=1))
    early = app.run_due(project)
    assert (early.fired, early.failed, early.ready) == ([], [], [])
    assert ready_names(project, iid) == ["Review request"]

    clock.set(due + timedelta(seconds=1))
    fired = app.run_due(project)
    assert fired.fired == [iid]
    assert fired.failed == []
    assert [t.name for t in fired.ready] == ["Escalate to supervisor"]
    assert ready_names(project, iid) == ["Escalate to supervisor"]
    assert history(project, iid) == [
        ("StartEvent_Received", "completed"),
        ("Task_Review", "cancelled"),
        ("Event_Deadline", "completed"),
        ("Task_Escalate", "ready"),
    ]
    _, tasks = app.history(project, iid)
    boundary = next(t for t in tasks if t.bpmn_id == "Event_Deadline")
    assert boundary.completed_at == due + timedelta(seconds=1)
    assert "Event_Deadline" not in waits(project, iid)
    assert app.next_due(project) is None

    again = app.run_due(project)
    assert again.fired == []


def test_show_json_lists_the_timer_and_its_due_time(cli, project_dir):
    """``flowrun show --json`` lists the boundary timer with waits_for 'timer' and an ISO due time."""
    add(project_dir, "timer_boundary")
    started = cli_json(cli(project_dir, "start", "timer_boundary", "--json", now="2026-03-02T08:00:00Z"))
    shown = cli_json(cli(project_dir, "show", started["short_id"], "--json", now="2026-03-02T09:00:00Z"))
    timers = [w for w in shown["waiting_for"] if w["waits_for"] == "timer"]
    assert len(timers) == 1
    assert timers[0]["task"] == "Event_Deadline"
    assert timers[0]["name"] == "48 hours passed"
    assert timers[0]["due"] == "2026-03-04T08:00:00+00:00"
    assert datetime.fromisoformat(timers[0]["due"]) == at(hours=48)
    assert [w["name"] for w in shown["waiting_for"] if w["kind"] == "task"] == ["Review request"]


def test_completing_the_task_cancels_its_deadline(project, project_dir, clock):
    """Once the reviewed task is done, its boundary timer no longer waits and never fires."""
    add(project_dir, "timer_boundary")
    iid = app.start(project, "timer_boundary").instance
    clock.advance(3600)
    app.complete(project, ready_ref(project, iid, "Review request"), {"ok": True})
    assert app.show(project, iid).status == "completed"
    assert app.next_due(project) is None
    clock.set(at(hours=100))
    assert app.run_due(project).fired == []
    statuses = dict(history(project, iid))
    assert statuses["Task_Review"] == "completed"
    assert "Task_Escalate" not in statuses


def test_non_interrupting_timer_adds_a_reminder_and_keeps_the_task(project, project_dir, clock):
    """A non-interrupting boundary timer creates the reminder task while the original stays ready."""
    add(project_dir, "timer_reminder")
    iid = app.start(project, "timer_reminder").instance
    shown = waits(project, iid)
    assert shown["Event_Reminder"]["waits_for"] == "timer"
    assert shown["Event_Reminder"]["due"] == iso(at(hours=24))

    clock.set(at(hours=23, minutes=59))
    assert app.run_due(project).fired == []

    clock.set(at(hours=24, seconds=1))
    result = app.run_due(project)
    assert result.fired == [iid]
    assert ready_names(project, iid) == ["Remind reviewer", "Review request"]
    statuses = dict(history(project, iid))
    assert statuses["Task_Review"] == "ready"
    assert statuses["Event_Reminder"] == "completed"

    # the original task is still the one to complete, and completing it ends its path
    app.complete(project, ready_ref(project, iid, "Review request"), {"ok": True})
    assert ready_names(project, iid) == ["Remind reviewer"]
    app.complete(project, ready_ref(project, iid, "Remind reviewer"), {})
    assert app.show(project, iid).status == "completed"


def test_intermediate_timer_catch_event_waits_two_hours(project, project_dir, clock):
    """A timeDuration catch event holds the token until the duration has passed."""
    add(project_dir, "timer_catch")
    started = app.start(project, "timer_catch", {"order": 7})
    iid = started.instance
    assert started.ready == []
    shown = waits(project, iid)
    assert list(shown) == ["Event_CoolingOff"]
    assert (shown["Event_CoolingOff"]["waits_for"], shown["Event_CoolingOff"]["due"]) == ("timer", iso(at(hours=2)))
    assert app.inbox(project, iid) == []

    clock.set(at(hours=1, minutes=59, seconds=59))
    assert app.run_due(project).fired == []
    clock.set(at(hours=2, seconds=1))
    assert app.run_due(project).fired == [iid]
    assert ready_names(project, iid) == ["Ship order"]
    assert app.show(project, iid).data == {"order": 7}
    assert history(project, iid)[1] == ("Event_CoolingOff", "completed")


def test_time_date_timer_fires_on_its_date(project, project_dir, clock):
    """A timeDate catch event is due at its date, whenever the instance started."""
    add(project_dir, "timer_date")
    iid = app.start(project, "timer_date").instance
    due = datetime.fromisoformat("2026-03-05T09:30:00+00:00")
    assert waits(project, iid)["Event_CoolingOff"]["due"] == iso(due)
    assert app.next_due(project) == due

    clock.set(due - timedelta(seconds=1))
    assert app.run_due(project).fired == []
    clock.set(due + timedelta(minutes=5))
    assert app.run_due(project).fired == [iid]
    assert ready_names(project, iid) == ["Ship order"]


def test_cycle_timer_fires_exactly_three_times_over_five_hours(project, project_dir, clock):
    """R3/PT1H on a non-interrupting boundary: three reminders, an hour apart, then no more."""
    add(project_dir, "timer_cycle")
    iid = app.start(project, "timer_cycle").instance
    dues = [waits(project, iid)["Event_Reminder"]["due"]]
    fired_at = []
    clock.advance(300)
    for _ in range(30):  # 5 hours in 10-minute worker passes, at 08:05, 08:15, ... 13:05
        clock.advance(600)
        result = app.run_due(project)
        reminders = [t for t in result.ready if t.name == "Remind reviewer"]
        fired_at += [clock.now()] * len(reminders)
        timer = waits(project, iid).get("Event_Reminder")
        if timer is not None and timer["due"] != dues[-1]:
            dues.append(timer["due"])
    assert fired_at == [at(hours=1, minutes=5), at(hours=2, minutes=5), at(hours=3, minutes=5)]
    assert dues == [iso(at(hours=1)), iso(at(hours=2)), iso(at(hours=3))]
    assert ready_names(project, iid) == ["Remind reviewer"] * 3 + ["Review request"]
    assert "Event_Reminder" not in waits(project, iid)
    assert app.next_due(project) is None
    assert dict(history(project, iid))["Event_Reminder"] == "completed"


def test_cycle_timer_fires_once_after_an_outage_and_counts_the_missed_rounds(project, project_dir, clock):
    """A worker down for a day fires the late R3/PT1H reminder once; its three rounds are used up."""
    add(project_dir, "timer_cycle")
    iid = app.start(project, "timer_cycle").instance
    clock.set(at(hours=24))
    result = app.run_due(project)
    assert result.fired == [iid]
    assert [t.name for t in result.ready] == ["Remind reviewer"]
    assert app.next_due(project) is None
    clock.set(at(hours=48))
    assert app.run_due(project).fired == []
    assert ready_names(project, iid) == ["Remind reviewer", "Review request"]


def test_late_cycle_timer_keeps_its_schedule_after_catching_up(project, project_dir, clock):
    """Down from 00:30 to 02:30 past the start: one reminder for the rounds due at 1 h and 2 h, the next at 3 h."""
    add(project_dir, "timer_cycle")
    iid = app.start(project, "timer_cycle").instance
    clock.set(at(hours=2, minutes=30))
    result = app.run_due(project)
    assert [t.name for t in result.ready] == ["Remind reviewer"]
    assert waits(project, iid)["Event_Reminder"]["due"] == iso(at(hours=3))
    clock.set(at(hours=3))
    assert [t.name for t in app.run_due(project).ready] == ["Remind reviewer"]
    assert app.next_due(project) is None


def test_timer_fires_at_exactly_its_due_time(project, project_dir, clock):
    """``show`` says due 10:00; the worker pass at 10:00 fires it."""
    add(project_dir, "timer_catch")
    iid = app.start(project, "timer_catch").instance
    clock.set(at(hours=2))
    app.run_due(project)
    assert ready_names(project, iid) == ["Ship order"]


def test_run_due_reports_only_timers_that_fired(project, project_dir, clock):
    """An instance is reported as fired only when a timer really fired (and otherwise left alone)."""
    add(project_dir, "timer_catch")
    iid = app.start(project, "timer_catch").instance
    before = db_state(project_dir)
    clock.set(at(hours=2))
    result = app.run_due(project)
    if iid in result.fired:
        assert ready_names(project, iid) == ["Ship order"]
    else:
        assert db_state(project_dir) == before


# -- messages and signals ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("process", "catcher", "catcher_type"),
    [
        ("message_catch", "Event_PaymentReceived", "messageIntermediateCatchEvent"),
        ("message_receive", "Task_ReceivePayment", None),
    ],
)
def test_message_catch_and_receive_task(project, project_dir, clock, process, catcher, catcher_type):
    """An intermediate message catch event and a receive task both wait for the message and merge its data."""
    add(project_dir, process)
    iid = app.start(project, process, {"order": 7}).instance
    shown = waits(project, iid)
    assert shown[catcher]["waits_for"] == "message:payment_received"
    assert shown[catcher]["due"] is None
    assert app.run_due(project).fired == []

    clock.advance(600)
    results = app.send(project, "payment_received", data={"amount": 40, "paid_by": "card"})
    assert [(r.instance, r.status) for r in results] == [(iid, "running")]
    assert [t.name for t in results[0].ready] == ["Ship order"]
    assert app.show(project, iid).data == {"order": 7, "amount": 40, "paid_by": "card"}
    _, tasks = app.history(project, iid)
    caught = next(t for t in tasks if t.bpmn_id == catcher)
    assert (caught.status, caught.completed_at) == ("completed", at(minutes=10))
    if catcher_type is not None:
        assert caught.type == catcher_type
    received = query(project_dir, "SELECT kind, detail FROM events WHERE kind = 'message_received'")
    assert len(received) == 1
    assert json.loads(received[0][1]) == {"name": "payment_received", "data": {"amount": 40, "paid_by": "card"}}

    with pytest.raises(NotFoundError, match="payment_received"):
        app.send(project, "payment_received", data={"amount": 1})


def test_receive_task_is_recorded_as_a_receive_task(project, project_dir):
    """history names a receive task's type like every other element type."""
    add(project_dir, "message_receive")
    iid = app.start(project, "message_receive").instance
    app.send(project, "payment_received")
    _, tasks = app.history(project, iid)
    receive = next(t for t in tasks if t.bpmn_id == "Task_ReceivePayment")
    assert receive.type == "receiveTask"


def test_message_boundary_event_interrupts_the_task(project, project_dir):
    """A message boundary event cancels the task it sits on and takes the cancellation path."""
    add(project_dir, "message_boundary")
    iid = app.start(project, "message_boundary").instance
    assert waits(project, iid)["Event_CancelRequested"]["waits_for"] == "message:cancel_requested"
    app.send(project, "cancel_requested", data={"reason": "changed my mind"})
    assert ready_names(project, iid) == ["Confirm cancellation"]
    statuses = dict(history(project, iid))
    assert (statuses["Task_Handle"], statuses["Event_CancelRequested"]) == ("cancelled", "completed")
    assert app.show(project, iid).data == {"reason": "changed my mind"}


def test_event_based_gateway_takes_the_message_path(project, project_dir, clock):
    """Reply before the timeout: the message path runs and the timer path is dropped."""
    add(project_dir, "event_gateway")
    iid = app.start(project, "event_gateway").instance
    gateway = waits(project, iid)["Gateway_ReplyOrTimeout"]
    assert "message:customer_replied" in gateway["waits_for"].split("|")
    assert "timer" in gateway["waits_for"].split("|")
    assert gateway["due"] == iso(at(hours=72))
    clock.advance(3600)
    app.send(project, "customer_replied", data={"answer": "yes"})
    assert ready_names(project, iid) == ["Process reply"]
    assert app.show(project, iid).data == {"answer": "yes"}
    clock.set(at(hours=100))
    assert app.run_due(project).fired == []
    assert ready_names(project, iid) == ["Process reply"]


def test_event_based_gateway_takes_the_timer_path(project, project_dir, clock):
    """No reply within 3 days: the timer path runs and the message is no longer awaited."""
    add(project_dir, "event_gateway")
    iid = app.start(project, "event_gateway").instance
    assert app.next_due(project) == at(hours=72)
    clock.set(at(hours=72, seconds=1))
    assert app.run_due(project).fired == [iid]
    assert ready_names(project, iid) == ["Chase customer"]
    with pytest.raises(NotFoundError):
        app.send(project, "customer_replied")


def test_event_based_gateway_message_after_timeout_takes_one_path(project, project_dir, clock):
    """A reply arriving after the timeout but before the worker ran: the timer, due first, wins."""
    add(project_dir, "event_gateway")
    iid = app.start(project, "event_gateway").instance
    clock.set(at(hours=80))
    with pytest.raises(NotFoundError, match="customer_replied"):
        app.send(project, "customer_replied")
    assert ready_names(project, iid) == ["Chase customer"]


def test_message_start_event_starts_an_instance_with_the_data(project, project_dir):
    """With nothing waiting, a message starts the process whose start event catches it."""
    add(project_dir, "message_start", "message_catch")
    results = app.send(project, "order_received", data={"sku": "X1", "qty": 2})
    assert len(results) == 1
    started = results[0]
    assert [t.name for t in started.ready] == ["Pick order"]
    view = app.show(project, started.instance)
    assert (view.family, view.status, view.data) == ("message_start", "running", {"sku": "X1", "qty": 2})
    assert history(project, started.instance)[0] == ("StartEvent_OrderReceived", "completed")
    # a second message starts a second instance
    again = app.send(project, "order_received", data={"sku": "X2"})
    assert again[0].instance != started.instance
    assert len(app.instances(project)) == 2


def test_message_start_via_cli(cli, project_dir):
    """``flowrun send NAME --data`` with no waiting instance starts the process with that message start."""
    add(project_dir, "message_start")
    out = cli_json(cli(project_dir, "send", "order_received", "--data", "sku=X1", "--data", "qty=2", "--json"))
    assert len(out) == 1
    assert [t["name"] for t in out[0]["ready"]] == ["Pick order"]
    shown = cli_json(cli(project_dir, "show", out[0]["instance"], "--json"))
    assert (shown["process"], shown["data"]) == ("message_start", {"sku": "X1", "qty": 2})


def test_send_cli_merges_data_into_the_catching_path(cli, project_dir):
    """``send --data k=v`` values (typed as JSON where they parse) end up in the task data after the catch."""
    add(project_dir, "message_catch")
    iid = cli_json(cli(project_dir, "start", "message_catch", "--data", "order=7", "--json"))["id"]
    result = cli(project_dir, "send", "payment_received", "--data", "amount=40.5", "--data", "ref=INV 9")
    assert result.exit_code == 0, result.stderr
    assert f"delivered to instance {iid[:8]}" in result.stdout
    assert "Ship order" in result.stdout
    shown = cli_json(cli(project_dir, "show", iid, "--json"))
    assert shown["data"] == {"order": 7, "amount": 40.5, "ref": "INV 9"}
    assert [w["name"] for w in shown["waiting_for"]] == ["Ship order"]


def test_send_instance_restricts_delivery(cli, project, project_dir):
    """``--instance`` delivers to that instance only; the other keeps waiting."""
    add(project_dir, "message_catch")
    first = app.start(project, "message_catch").instance
    second = app.start(project, "message_catch").instance
    out = cli_json(cli(project_dir, "send", "payment_received", "--instance", second[:8], "--json"))
    assert [r["instance"] for r in out] == [second]
    assert waits(project, first)["Event_PaymentReceived"]["waits_for"] == "message:payment_received"
    assert ready_names(project, second) == ["Ship order"]

    # the same instance again: it no longer waits for it
    before = db_state(project_dir)
    assert_error(cli(project_dir, "send", "payment_received", "--instance", second[:8]), 1, second[:8])
    assert db_state(project_dir) == before


def test_send_to_nothing_waiting_exits_1_naming_the_message(cli, project_dir):
    """A message nobody waits for and no process starts with is an error, and changes nothing."""
    add(project_dir, "message_catch")
    cli_json(cli(project_dir, "start", "message_catch", "--json"))
    before = db_state(project_dir)
    assert_error(cli(project_dir, "send", "no_such_message", "--data", "x=1"), 1, "'no_such_message'")
    assert db_state(project_dir) == before


def test_message_is_not_delivered_as_a_signal_or_the_reverse(cli, project_dir):
    """A name is looked up as a message or as a signal, not both."""
    add(project_dir, "message_catch", "signal_catch")
    cli_json(cli(project_dir, "start", "message_catch", "--json"))
    cli_json(cli(project_dir, "start", "signal_catch", "--json"))
    before = db_state(project_dir)
    assert_error(cli(project_dir, "send", "payment_received", "--signal"), 1, "payment_received")
    assert_error(cli(project_dir, "send", "product_recall"), 1, "product_recall")
    assert db_state(project_dir) == before


def test_signal_is_broadcast_to_every_waiting_instance(cli, project, project_dir):
    """``send --signal`` reaches all instances waiting for the signal, each with the data."""
    add(project_dir, "signal_catch", "message_catch")
    waiting = {app.start(project, "signal_catch", {"customer": c}).instance for c in ("ann", "bob", "cy")}
    other = app.start(project, "message_catch").instance
    out = cli_json(cli(project_dir, "send", "product_recall", "--signal", "--data", "batch=B7", "--json"))
    assert {r["instance"] for r in out} == waiting
    for iid in waiting:
        assert ready_names(project, iid) == ["Contact customer"]
        assert app.show(project, iid).data["batch"] == "B7"
    assert "Event_PaymentReceived" in waits(project, other)
    assert_error(cli(project_dir, "send", "product_recall", "--signal"), 1, "product_recall")


def test_send_with_unsaveable_data_is_refused(cli, project, project_dir):
    """A message carrying NaN is refused, naming the key, before anything is written."""
    add(project_dir, "message_catch", "message_start")
    app.start(project, "message_catch")
    before = db_state(project_dir)
    assert_error(cli(project_dir, "send", "payment_received", "--data", "amount=NaN"), 1, "amount")
    assert_error(cli(project_dir, "send", "order_received", "--data", "qty=NaN"), 1, "qty")
    assert db_state(project_dir) == before


# -- BPMN errors thrown by service handlers ----------------------------------------------

SERVICES = '''"""Stock service for the BPMN error tests: the data says how it behaves."""

from flowrun import BpmnError


def reserve(data):
    mode = data.get("mode", "ok")
    if mode == "no_stock":
        raise BpmnError("NO_STOCK", "only 5 left", {"left": 5})
    if mode == "blocked":
        raise BpmnError("CREDIT_BLOCKED", "card declined")
    if mode == "crash":
        raise RuntimeError("stock database down")
    if mode == "set":
        return {"tags": {1, 2}}
    if mode == "bytes":
        return {"blob": b"\\x00\\x01"}
    return {"reserved": True}
'''


@pytest.fixture
def stock_dir(project_dir: Path) -> Path:
    """The example project with a ``reserve_stock`` service and the BPMN error diagrams."""
    (project_dir / "stock_services.py").write_text(SERVICES)
    config_file = project_dir / "flowrun.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["services"]["reserve_stock"] = "stock_services:reserve"
    config_file.write_text(yaml.safe_dump(config))
    add(project_dir, "bpmn_error", "bpmn_error_any", "bpmn_error_after_task")
    return project_dir


@pytest.fixture
def stock(stock_dir: Path, clock: ManualClock) -> app.Project:
    return app.Project(settings=find_project(explicit=stock_dir), clock=clock)


def test_service_without_error_takes_the_normal_path(stock):
    """The handler's result is merged and the normal path runs (the diagrams themselves are fine)."""
    result = app.start(stock, "bpmn_error", {"mode": "ok"})
    assert [t.name for t in result.ready] == ["Ship order"]
    assert app.show(stock, result.instance).data == {"mode": "ok", "reserved": True}


def test_bpmn_error_is_caught_by_the_error_boundary(stock):
    """NO_STOCK from the handler: back-order path, code and message in the named variables, data merged."""
    result = app.start(stock, "bpmn_error", {"mode": "no_stock"})
    assert [t.name for t in result.ready] == ["Back-order items"]
    data = app.show(stock, result.instance).data
    assert data == {"mode": "no_stock", "left": 5, "error_code": "NO_STOCK", "error_message": "only 5 left"}
    statuses = dict(history(stock, result.instance))
    assert (statuses["Task_Reserve"], statuses["Event_NoStock"]) == ("cancelled", "completed")
    assert "Task_Ship" not in statuses


@pytest.mark.parametrize(
    ("mode", "code", "message"),
    [("no_stock", "NO_STOCK", "only 5 left"), ("blocked", "CREDIT_BLOCKED", "card declined")],
)
def test_error_boundary_without_error_ref_catches_any_code(stock, mode, code, message):
    """An error boundary event that names no error catches every code a handler throws."""
    result = app.start(stock, "bpmn_error_any", {"mode": mode})
    assert [t.name for t in result.ready] == ["Back-order items"]
    data = app.show(stock, result.instance).data
    assert (data["error_code"], data["error_message"]) == (code, message)


def test_bpmn_error_after_a_user_task_via_cli(cli, stock_dir):
    """``flowrun do`` completing the task before the service task takes the back-order path."""
    started = cli_json(cli(stock_dir, "start", "bpmn_error_after_task", "--json"))
    ref = str(started["ready"][0]["ref"])
    done = cli_json(cli(stock_dir, "do", ref, "--data", "mode=no_stock", "--no-interactive", "--json"))
    assert [t["name"] for t in done["ready"]] == ["Back-order items"]
    shown = cli_json(cli(stock_dir, "show", started["id"], "--json"))
    assert shown["data"]["error_code"] == "NO_STOCK"
    assert shown["data"]["left"] == 5


def test_uncaught_bpmn_error_on_start_fails_and_saves_nothing(cli, stock_dir):
    """A code no boundary catches fails ``start`` with exit 1 naming the code; no instance is created."""
    before = db_state(stock_dir)
    assert_error(cli(stock_dir, "start", "bpmn_error", "--data", "mode=blocked"), 1, "CREDIT_BLOCKED")
    assert db_state(stock_dir) == before
    assert query(stock_dir, "SELECT count(*) FROM instances") == [(0,)]


def test_uncaught_bpmn_error_names_the_task_and_the_code(cli, stock_dir):
    """The message says which service task threw which code."""
    assert_error(cli(stock_dir, "start", "bpmn_error", "--data", "mode=blocked"), 1, "Task_Reserve", "CREDIT_BLOCKED")


def test_uncaught_bpmn_error_in_do_leaves_the_user_task_ready(cli, stock_dir):
    """``do`` whose service task throws an uncaught code: exit 1, nothing saved, the task still ready."""
    started = cli_json(cli(stock_dir, "start", "bpmn_error_after_task", "--json"))
    ref = str(started["ready"][0]["ref"])
    before = db_state(stock_dir)
    assert_error(cli(stock_dir, "do", ref, "--data", "mode=blocked", "--no-interactive"), 1, "CREDIT_BLOCKED")
    assert db_state(stock_dir) == before
    tasks = cli_json(cli(stock_dir, "tasks", "--json"))
    assert [(str(t["ref"]), t["name"]) for t in tasks] == [(ref, "Enter order")]


@pytest.mark.parametrize("process", ["bpmn_error", "bpmn_error_any"])
def test_runtime_error_in_a_handler_is_a_failure_not_a_bpmn_error(cli, stock_dir, process):
    """A plain exception never takes an error boundary path, even one that catches any code."""
    before = db_state(stock_dir)
    err = assert_error(cli(stock_dir, "start", process, "--data", "mode=crash"), 1, "RuntimeError")
    assert "stock database down" in err
    assert "reserve_stock" in err
    assert db_state(stock_dir) == before


def test_runtime_error_in_do_leaves_the_user_task_ready(cli, stock_dir):
    started = cli_json(cli(stock_dir, "start", "bpmn_error_after_task", "--json"))
    ref = str(started["ready"][0]["ref"])
    before = db_state(stock_dir)
    assert_error(cli(stock_dir, "do", ref, "--data", "mode=crash", "--no-interactive"), 1, "RuntimeError")
    assert db_state(stock_dir) == before
