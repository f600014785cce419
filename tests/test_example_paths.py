"""The shipped complaint example, driven through every gateway branch on a manual clock."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest

from flowrun import app
from flowrun.clock import iso
from flowrun.models import InstanceView, TaskRecord, Wait
from tests.helpers import (
    ANALYSE_NO_SPECIALIST,
    ANALYSE_SPECIALIST,
    RECORD,
    REPLY,
    SPECIALIST,
    SURVEY,
    T0,
    draft,
    intake,
    work,
)

LANE = {
    "Complaint received": "Call Centre",
    "Record complaint": "Call Centre",
    "Analyse needs": "Back Office",
    "Specialist assessment": "Specialist",
    "Draft resolution": "Back Office",
    "Approve resolution": "Supervisor",
    "Reply to customer": "Call Centre",
    "Satisfaction survey": "Customer",
    "Complaint closed": "Customer",
}
RE_LANE = {
    "Complaint received": "Front Office",
    "Record and assess complaint": "Front Office",
    "Check entitlement": "Front Office",
    "Set service-level target": "Front Office",
    "Resolve at first contact": "Front Office",
    "Inform customer of next steps": "Front Office",
    "Specialist assessment": "Specialist",
    "Confirm resolution with customer": "Front Office",
    "Satisfaction survey": "Customer",
    "Complaint closed": "Customer",
}
ACTOR = {
    "Call Centre": "carol",
    "Back Office": "bob",
    "Specialist": "sam",
    "Supervisor": "sue",
    "Customer": "customer",
    "Front Office": "fiona",
}
AUTOMATED_TYPES = {"startEvent", "endEvent", "serviceTask", "scriptTask"}

Steps = list[tuple[str, dict[str, Any]]]

BASELINE: dict[str, Steps] = {
    "no-specialist-remedy-100": [
        ("Record complaint", RECORD),
        ("Analyse needs", ANALYSE_NO_SPECIALIST),
        ("Draft resolution", draft(100)),
        ("Reply to customer", REPLY),
        ("Satisfaction survey", SURVEY),
    ],
    "specialist-needed": [
        ("Record complaint", RECORD),
        ("Analyse needs", ANALYSE_SPECIALIST),
        ("Specialist assessment", SPECIALIST),
        ("Draft resolution", draft(60)),
        ("Reply to customer", REPLY),
        ("Satisfaction survey", SURVEY),
    ],
    "over-100-approved": [
        ("Record complaint", RECORD),
        ("Analyse needs", ANALYSE_NO_SPECIALIST),
        ("Draft resolution", draft(100.5)),
        ("Approve resolution", {"approved": True}),
        ("Reply to customer", REPLY),
        ("Satisfaction survey", SURVEY),
    ],
    "rejected-then-approved": [
        ("Record complaint", RECORD),
        ("Analyse needs", ANALYSE_NO_SPECIALIST),
        ("Draft resolution", draft(250)),
        ("Approve resolution", {"approved": False, "comment": "too generous"}),
        ("Draft resolution", draft(150)),
        ("Approve resolution", {"approved": True}),
        ("Reply to customer", REPLY),
        ("Satisfaction survey", SURVEY),
    ],
}

FIRST_CONTACT: Steps = [
    ("Record and assess complaint", intake(severity="high")),
    ("Resolve at first contact", {"remedy": "refund", "remedy_amount": 40, "message": "Refunded now."}),
    ("Satisfaction survey", {**SURVEY, "resolved_first_contact": True}),
]


def timing(i: int) -> tuple[int, int]:
    """Waiting and touch seconds of the i-th user task: all different, so mix-ups show."""
    return 300 + 60 * i, 420 + 30 * i


def drive(project: app.Project, target: str, steps: Steps, lanes: dict[str, str]) -> tuple[str, list[Any]]:
    """Start ``target`` and work each step; returns the instance id and the expected timings."""
    started = app.start(project, target, pilot="pilot-A")
    expected = []
    for i, (name, data) in enumerate(steps):
        assert app.show(project, started.instance).status == "running"
        wait, touch = timing(i)
        actor = ACTOR[lanes[name]]
        work(project, started.instance, name, data, actor, wait, touch)
        expected.append((name, float(wait), float(touch), actor))
    return started.instance, expected


def _names(waits: Iterable[Wait]) -> list[str]:
    """The names of what an instance waits for (each one has a name)."""
    names: list[str] = []
    for w in waits:
        assert w.name is not None, w
        names.append(w.name)
    return names


def check_finished(
    project: app.Project,
    iid: str,
    expected: list[Any],
    automated: list[str],
    lanes: dict[str, str],
    cycle: float | None = None,
) -> tuple[InstanceView, list[TaskRecord]]:
    """History, lanes, timings, cycle time and status of a finished instance."""
    view, tasks = app.history(project, iid)
    user_names = [name for name, *_ in expected]
    names = ["Complaint received", user_names[0], *automated, *user_names[1:], "Complaint closed"]
    assert [t.name for t in tasks] == names
    assert [t.lane for t in tasks] == [lanes[n] for n in names]
    assert {t.status for t in tasks} == {"completed"}
    assert [(t.name, t.waiting_s, t.touch_s, t.actor) for t in tasks if t.type == "userTask"] == expected
    for t in tasks:
        if t.type != "userTask":
            assert t.type in AUTOMATED_TYPES
            assert (t.name, t.waiting_s, t.touch_s, t.actor) == (t.name, 0.0, 0.0, None)
    if cycle is None:
        cycle = sum(wait + touch for _, wait, touch, _ in expected)
    assert view.status == "completed"
    assert view.created_at == T0
    assert view.ended_at is not None
    assert view.ended_at - view.created_at == timedelta(seconds=cycle)
    assert view.cycle_s == cycle
    assert view.waiting_for == []
    assert app.inbox(project, iid) == []
    return view, tasks


@pytest.mark.parametrize("case", list(BASELINE))
def test_baseline_branch(project, case):
    """Each baseline branch records its tasks, lanes, actors and the times the clock moved."""
    steps = BASELINE[case]
    iid, expected = drive(project, "complaint:baseline", steps, LANE)

    view, tasks = check_finished(project, iid, expected, [], LANE)

    assert (view.family, view.variant, view.pilot) == ("complaint", "baseline", "pilot-A")
    assert view.data["satisfaction"] == 4
    assert view.data["nps"] == 9
    assert view.data["resolved_first_contact"] is False
    assert view.data["customer_name"] == "Ann Smith"
    assert view.data["channel"] == "phone"  # the form's default, filled in
    last_draft = [d for n, d in steps if n == "Draft resolution"][-1]
    assert view.data["remedy_amount"] == last_draft["remedy_amount"]


def test_baseline_handoffs_are_instant(project):
    """A task becomes ready the moment its predecessor completes, and waits from then."""
    iid, _ = drive(project, "complaint:baseline", BASELINE["rejected-then-approved"], LANE)
    _, tasks = app.history(project, iid)
    user = [t for t in tasks if t.type == "userTask"]
    assert user[0].ready_at == T0
    for before, after in zip(user, user[1:], strict=False):
        assert after.ready_at == before.completed_at
    assert tasks[-1].completed_at == user[-1].completed_at


def test_baseline_rework_creates_a_second_draft_task(project):
    """A rejected draft goes back to the back office as a new task with its own ref."""
    started = app.start(project, "complaint:baseline")
    iid = started.instance
    work(project, iid, "Record complaint", RECORD)
    work(project, iid, "Analyse needs", ANALYSE_NO_SPECIALIST)
    first = work(project, iid, "Draft resolution", draft(250))
    assert [t.name for t in first.ready] == ["Approve resolution"]
    assert first.ready[0].lane == "Supervisor"
    rejected = work(project, iid, "Approve resolution", {"approved": False})
    assert [t.name for t in rejected.ready] == ["Draft resolution"]
    _, tasks = app.history(project, iid)
    drafts = [t for t in tasks if t.name == "Draft resolution"]
    assert [t.status for t in drafts] == ["completed", "ready"]
    assert drafts[0].ref != drafts[1].ref
    assert app.show(project, iid).data["approved"] is False


def test_baseline_waiting_for_lists_the_ready_task(project):
    """While running, show() says which task in which lane the instance waits for."""
    started = app.start(project, "complaint:baseline")
    work(project, started.instance, "Record complaint", RECORD)
    view = app.show(project, started.instance)
    assert view.status == "running"
    assert view.ended_at is None
    assert view.cycle_s is None
    assert [(w.name, w.lane, iso(w.since)) for w in view.waiting_for] == [
        ("Analyse needs", "Back Office", "2026-03-02T08:12:00+00:00")
    ]


def test_reengineered_first_contact(project):
    """Entitled, resolvable and within the limit: settled by the front office at once."""
    iid, expected = drive(project, "complaint:reengineered", FIRST_CONTACT, RE_LANE)

    view, tasks = check_finished(project, iid, expected, ["Check entitlement", "Set service-level target"], RE_LANE)

    by_name = {t.name: t for t in tasks}
    assert by_name["Check entitlement"].type == "serviceTask"
    assert by_name["Set service-level target"].type == "scriptTask"
    intake_done = by_name["Record and assess complaint"].completed_at
    for auto in ("Check entitlement", "Set service-level target"):
        t = by_name[auto]
        assert t.ready_at == t.started_at == t.completed_at == intake_done
    assert by_name["Resolve at first contact"].ready_at == intake_done
    data = view.data
    assert (data["entitled"], data["customer_tier"], data["auto_remedy_limit"]) == (True, "standard", 100.0)
    assert data["sla_hours"] == 4
    assert data["message"] == "Refunded now."
    assert (data["satisfaction"], data["nps"], data["resolved_first_contact"]) == (4, 9, True)


def test_reengineered_follow_up_runs_in_parallel(project, clock):
    """Not resolvable now: specialist and customer update are ready together, then confirmation."""
    iid = app.start(project, "complaint:reengineered", pilot="pilot-B").instance
    split = work(project, iid, "Record and assess complaint", intake(can_resolve_now=False, severity="low"))
    split_at = T0 + timedelta(seconds=720)

    assert sorted((t.name, t.lane) for t in split.ready) == [
        ("Inform customer of next steps", "Front Office"),
        ("Specialist assessment", "Specialist"),
    ]
    assert {t.ready_at for t in split.ready} == {split_at}
    inbox = app.inbox(project, iid)
    assert sorted(i.name for i in inbox) == ["Inform customer of next steps", "Specialist assessment"]
    assert [i.name for i in app.inbox(project, lane="Specialist")] == ["Specialist assessment"]
    assert sorted(_names(app.show(project, iid).waiting_for)) == [
        "Inform customer of next steps",
        "Specialist assessment",
    ]

    after_inform = work(
        project,
        iid,
        "Inform customer of next steps",
        {"contact_channel": "sms", "expected_days": 3},
        "fiona",
        wait=120,
        touch=180,
    )
    assert after_inform.ready == []  # the join waits for the specialist
    assert [i.name for i in app.inbox(project, iid)] == ["Specialist assessment"]
    work(project, iid, "Specialist assessment", SPECIALIST, "sam", wait=0, touch=1800)
    work(
        project,
        iid,
        "Confirm resolution with customer",
        {"remedy": "refund", "remedy_amount": 80, "message": "Refund on its way."},
        "fiona",
        wait=60,
        touch=240,
    )
    work(project, iid, "Satisfaction survey", SURVEY, "customer", wait=3600, touch=120)

    view, tasks = app.history(project, iid)
    assert [t.name for t in tasks] == [
        "Complaint received",
        "Record and assess complaint",
        "Check entitlement",
        "Set service-level target",
        "Inform customer of next steps",
        "Specialist assessment",
        "Confirm resolution with customer",
        "Satisfaction survey",
        "Complaint closed",
    ]
    assert [t.lane for t in tasks] == [RE_LANE[t.name] for t in tasks]
    timings = {t.name: (t.waiting_s, t.touch_s, t.actor) for t in tasks if t.type == "userTask"}
    assert timings == {
        "Record and assess complaint": (300.0, 420.0, "alice"),
        "Inform customer of next steps": (120.0, 180.0, "fiona"),
        # ready at the split, claimed once the front office had finished its part
        "Specialist assessment": (300.0, 1800.0, "sam"),
        "Confirm resolution with customer": (60.0, 240.0, "fiona"),
        "Satisfaction survey": (3600.0, 120.0, "customer"),
    }
    by_name = {t.name: t for t in tasks}
    assert by_name["Specialist assessment"].ready_at == split_at
    assert by_name["Confirm resolution with customer"].ready_at == by_name["Specialist assessment"].completed_at
    assert view.status == "completed"
    assert view.cycle_s == 720 + 300 + 1800 + 60 + 240 + 3600 + 120
    assert view.ended_at == clock.now()
    data = view.data
    assert data["sla_hours"] == 72
    assert (data["contact_channel"], data["expected_days"]) == ("sms", 3)
    assert data["finding"] == "double billing confirmed"
    assert data["message"] == "Refund on its way."
    assert data["satisfaction"] == 4


def test_reengineered_other_category_is_not_entitled(project):
    """Category 'other' never settles at first contact, even when the agent could."""
    iid, expected = drive(
        project,
        "complaint:reengineered",
        [
            ("Record and assess complaint", intake(category="other", amount_disputed=10)),
            ("Inform customer of next steps", {"contact_channel": "email", "expected_days": 5}),
            ("Specialist assessment", {"finding": "not our fault", "proposed_remedy": "apology"}),
            ("Confirm resolution with customer", {"remedy": "apology", "message": "Sorry."}),
            ("Satisfaction survey", {"satisfaction": 2, "nps": 3, "resolved_first_contact": False}),
        ],
        RE_LANE,
    )
    # the specialist's task was ready since the split, while the front office informed the customer
    name, wait, touch, actor = expected[2]
    expected[2] = (name, wait + sum(timing(1)), touch, actor)

    cycle = sum(sum(timing(i)) for i in range(5))
    view, _ = check_finished(project, iid, expected, ["Check entitlement", "Set service-level target"], RE_LANE, cycle)

    assert view.data["entitled"] is False
    assert view.data["remedy_amount"] == 0  # the form's default
    assert "comment" not in view.data


@pytest.mark.parametrize(
    ("category", "amount", "can_resolve", "entitled", "tier", "limit", "first_contact"),
    [
        ("billing", 40, True, True, "standard", 100.0, True),
        ("billing", 100, True, True, "standard", 100.0, True),
        ("billing", 100.5, True, True, "standard", 100.0, False),
        ("product_fault", 499.99, True, True, "standard", 100.0, False),
        ("service_delay", 500, True, True, "gold", 1000.0, True),
        ("billing", 1000, True, True, "gold", 1000.0, True),
        ("billing", 1000.01, True, True, "gold", 1000.0, False),
        ("other", 10, True, False, "standard", 100.0, False),
        ("billing", 10, False, True, "standard", 100.0, False),
    ],
)
def test_reengineered_first_contact_decision(
    project, category, amount, can_resolve, entitled, tier, limit, first_contact
):
    """The entitlement service's outputs decide the 'Resolve at first contact?' gateway."""
    iid = app.start(project, "complaint:reengineered").instance
    result = work(
        project,
        iid,
        "Record and assess complaint",
        intake(category=category, amount_disputed=amount, can_resolve_now=can_resolve),
    )

    data = app.show(project, iid).data
    assert (data["entitled"], data["customer_tier"], data["auto_remedy_limit"]) == (entitled, tier, limit)
    names = sorted(t.name for t in result.ready)
    if first_contact:
        assert names == ["Resolve at first contact"]
    else:
        assert names == ["Inform customer of next steps", "Specialist assessment"]


def test_reengineered_amount_defaults_to_zero(project):
    """Leaving out the disputed amount uses the form's default 0, which is within the limit."""
    iid = app.start(project, "complaint:reengineered").instance
    data = intake()
    del data["amount_disputed"]
    result = work(project, iid, "Record and assess complaint", data)
    assert app.show(project, iid).data["amount_disputed"] == 0
    assert [t.name for t in result.ready] == ["Resolve at first contact"]


@pytest.mark.parametrize(("severity", "hours"), [("high", 4), ("medium", 24), ("low", 72)])
def test_service_level_script_sets_sla_hours(project, severity, hours):
    """The script task turns severity into the resolution target in hours."""
    iid = app.start(project, "complaint:reengineered").instance
    work(project, iid, "Record and assess complaint", intake(severity=severity))
    assert app.show(project, iid).data["sla_hours"] == hours
