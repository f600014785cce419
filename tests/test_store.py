"""What lands in the SQLite file: definitions once per version, small portable state, an event log."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from flowrun import app
from flowrun.config import find_project
from flowrun.errors import DataError, ScriptError
from tests.helpers import (
    ANALYSE_NO_SPECIALIST,
    RECORD,
    REPLY,
    SURVEY,
    cli_json,
    db_path,
    draft,
    query,
    ready_ref,
    work,
)


def all_text(project_dir: Path) -> list[tuple[str, str, str]]:
    """Every text value stored in the database, with its table and column."""
    conn = sqlite3.connect(db_path(project_dir))
    try:
        out = []
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            columns = [c[0] for c in cursor.description]
            for row in cursor:
                out += [(table, col, v) for col, v in zip(columns, row, strict=True) if isinstance(v, str)]
        return out
    finally:
        conn.close()


def test_definition_is_stored_once_per_model_version(project, project_dir):
    """Three instances of one variant share one stored definition; another variant adds one."""
    for _ in range(3):
        app.start(project, "complaint:baseline")
    assert query(project_dir, "SELECT count(*) FROM models") == [(1,)]
    assert query(project_dir, "SELECT count(*) FROM instances") == [(3,)]
    assert query(project_dir, "SELECT DISTINCT sha256 FROM instances") == query(
        project_dir, "SELECT sha256 FROM models"
    )

    app.start(project, "complaint:reengineered")
    assert query(project_dir, "SELECT process_id, file FROM models ORDER BY file") == [
        ("complaint_baseline", "processes/complaint_baseline.bpmn"),
        ("complaint_reengineered", "processes/complaint_reengineered.bpmn"),
    ]


def test_editing_a_diagram_adds_a_version_and_running_cases_keep_theirs(project, project_dir):
    """Instances started before an edit run on the old definition; new ones get the edit."""
    old = app.start(project, "complaint:baseline").instance
    path = project_dir / "processes" / "complaint_baseline.bpmn"
    path.write_text(path.read_text().replace('name="Draft resolution"', 'name="Draft the resolution"'))
    new = app.start(project, "complaint:baseline").instance
    assert query(project_dir, "SELECT count(*) FROM models") == [(2,)]

    for iid in (old, new):
        work(project, iid, "Record complaint", RECORD)
        work(project, iid, "Analyse needs", ANALYSE_NO_SPECIALIST)
    assert [i.name for i in app.inbox(project, old)] == ["Draft resolution"]
    assert [i.name for i in app.inbox(project, new)] == ["Draft the resolution"]


def test_state_is_small_and_holds_no_definition(project, project_dir):
    """The instance state leaves the definition out: no documentation, no conditions."""
    iid = app.start(project, "complaint:baseline").instance
    work(project, iid, "Record complaint", RECORD)
    [(spec,)] = query(project_dir, "SELECT spec FROM models")
    [(state,)] = query(project_dir, "SELECT state FROM instances")
    assert len(state) < len(spec) / 2
    assert "needs_specialist == True" in spec
    assert "needs_specialist == True" not in state
    assert "Back office reads the recorded complaint" not in state
    assert "spec" not in json.loads(state)


@pytest.mark.sqlite
def test_no_absolute_paths_are_stored(project, project_dir, tmp_path):
    """Nothing stored names a folder of this machine, so a project can move."""
    iid = app.start(project, "complaint:reengineered").instance
    work(
        project,
        iid,
        "Record and assess complaint",
        {
            "customer_name": "Ann Smith",
            "category": "billing",
            "description": "Charged twice",
            "severity": "low",
            "can_resolve_now": True,
        },
    )
    app.start(project, "complaint:baseline")
    texts = all_text(project_dir)
    assert {table for table, _, _ in texts} >= {"models", "instances", "tasks", "events"}
    leaks = [(table, col) for table, col, value in texts if str(tmp_path) in value or str(project_dir) in value]
    assert leaks == []


@pytest.mark.sqlite
def test_moving_the_project_keeps_it_working(cli, project, project_dir, tmp_path):
    """After moving the folder, the inbox, do and history work from the new place."""
    iid = app.start(project, "complaint:baseline").instance
    work(project, iid, "Record complaint", RECORD)
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    shutil.move(str(project_dir), str(moved))
    assert not project_dir.exists()

    items = cli_json(cli(moved, "tasks", "--json"))
    assert [i["name"] for i in items] == ["Analyse needs"]
    done = cli(moved, "do", str(items[0]["ref"]), "--data", "severity=low", "--data", "needs_specialist=no")
    assert done.exit_code == 0, done.stderr
    again = app.Project(settings=find_project(explicit=moved), clock=project.clock)
    assert [t.name for t in app.history(again, iid)[1]][-1] == "Draft resolution"
    assert db_path(moved).is_file()
    assert not project_dir.exists()


def test_events_are_an_append_only_log(project, project_dir):
    """Each step appends events; every user task logs ready, started, completed in order."""
    iid = app.start(project, "complaint:baseline").instance
    log = query(project_dir, "SELECT * FROM events ORDER BY id")
    for name, data in (
        ("Record complaint", RECORD),
        ("Analyse needs", ANALYSE_NO_SPECIALIST),
        ("Draft resolution", draft(80)),
        ("Reply to customer", REPLY),
        ("Satisfaction survey", SURVEY),
    ):
        work(project, iid, name, data)
        now = query(project_dir, "SELECT * FROM events ORDER BY id")
        assert now[: len(log)] == log  # nothing rewritten or removed
        assert len(now) > len(log)
        log = now

    ids = [row[0] for row in log]
    assert ids == sorted(set(ids))
    kinds = query(project_dir, "SELECT kind FROM events WHERE task_ref IS NULL ORDER BY id")
    assert kinds == [("instance_started",), ("instance_completed",)]
    _, tasks = app.history(project, iid)
    for t in tasks:
        rows = query(project_dir, "SELECT kind, at, actor FROM events WHERE task_ref = ? ORDER BY id", t.ref)
        if t.type == "userTask":
            assert [k for k, _, _ in rows] == ["ready", "claimed", "completed"], t.name
            times = [at for _, at, _ in rows]
            assert times == sorted(times)
            assert [a for _, _, a in rows] == [None, "alice", "alice"]
        else:
            assert [k for k, _, _ in rows] == ["completed"], t.name
    [(detail,)] = query(
        project_dir,
        "SELECT e.detail FROM events e JOIN tasks t ON t.id = e.task_ref "
        "WHERE t.name = 'Satisfaction survey' AND e.kind = 'completed'",
    )
    assert json.loads(detail)["data"] == SURVEY


# -- restored instances keep the restricted script engine ----------------------------

TWO_STEP = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Definitions_two_step"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="two_step" name="Two steps" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="StartEvent_1" targetRef="Task_Enter" />
    <bpmn:userTask id="Task_Enter" name="Enter amount">
      <bpmn:extensionElements>
        <camunda:formData>
          <camunda:formField id="x" label="Amount" type="long">
            <camunda:validation>
              <camunda:constraint name="required" />
              <camunda:constraint name="min" config="0" />
            </camunda:validation>
          </camunda:formField>
        </camunda:formData>
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="Task_Enter" targetRef="Task_Script" />
    <bpmn:scriptTask id="Task_Script" name="Compute" scriptFormat="python">
      <bpmn:incoming>f2</bpmn:incoming>
      <bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f3" sourceRef="Task_Script" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def _two_step(project: app.Project, project_dir: Path, script: str) -> tuple[str, str]:
    (project_dir / "processes" / "two_step.bpmn").write_text(TWO_STEP.format(script=script))
    iid = app.start(project, "two_step").instance
    return iid, ready_ref(project, iid, "Enter amount")


def test_restored_instance_runs_its_script(project, project_dir):
    """A saved instance, loaded by a fresh project, runs the script after its user task."""
    iid, ref = _two_step(project, project_dir, "y = x * 2")
    fresh = app.Project(settings=find_project(explicit=project_dir), clock=project.clock)
    with pytest.raises(DataError, match="x"):
        app.complete(fresh, ref, {"x": -1})
    result = app.complete(fresh, ref, {"x": 21}, "alice")
    assert result.status == "completed"
    assert app.show(fresh, iid).data == {"x": 21, "y": 42}


@pytest.mark.parametrize(
    "script",
    ["x2 = ().__class__.__base__.__subclasses__()", "x2 = open('/etc/passwd').read()", "import os"],
)
def test_restored_instance_refuses_hostile_script(project, project_dir, script):
    """After a reload the restricted engine still refuses hostile scripts; nothing is saved."""
    iid, ref = _two_step(project, project_dir, script)
    before = query(project_dir, "SELECT version, state, data FROM instances")
    fresh = app.Project(settings=find_project(explicit=project_dir), clock=project.clock)

    with pytest.raises(ScriptError, match="Task_Script"):
        app.complete(fresh, ref, {"x": 1}, "alice")

    assert query(project_dir, "SELECT version, state, data FROM instances") == before
    assert app.get_task(fresh, ref).status == "ready"
    assert app.show(fresh, iid).status == "running"
