"""``flowrun migrate``: running cases move to the fixed version of their diagram, through the ``flowrun`` command.

The stuck case: a typo in a gateway condition fails when the timer before it fires (the
worker opens an incident); the diagram is fixed, ``flowrun migrate`` moves the case, and
``flowrun retry`` takes it on along the fixed condition.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flowrun import app
from tests.conftest import CliCall
from tests.helpers import T0, cli_json, query

PAST_DUE = (T0 + timedelta(hours=2)).isoformat()
LATER = (T0 + timedelta(hours=3)).isoformat()

DIAGRAM = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="Defs_Refund" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="refund" name="Refund" isExecutable="true">
    <bpmn:startEvent id="StartEvent_Asked"><bpmn:outgoing>Flow_1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_Asked" targetRef="RECORD_ID" />
    <bpmn:userTask id="RECORD_ID" name="RECORD_NAME">
      <bpmn:incoming>Flow_1</bpmn:incoming><bpmn:outgoing>Flow_2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="Flow_2" sourceRef="RECORD_ID" targetRef="Event_Cool" />
    <bpmn:intermediateCatchEvent id="Event_Cool" name="Cooling-off hour">
      <bpmn:incoming>Flow_2</bpmn:incoming><bpmn:outgoing>Flow_3</bpmn:outgoing>
      <bpmn:timerEventDefinition id="Ted_Cool">
        <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT1H</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Event_Cool" targetRef="Gateway_Size" />
    <bpmn:exclusiveGateway id="Gateway_Size" name="How much?">
      <bpmn:incoming>Flow_3</bpmn:incoming><bpmn:outgoing>Flow_Big</bpmn:outgoing><bpmn:outgoing>Flow_Small</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="Flow_Big" sourceRef="Gateway_Size" targetRef="Task_Big">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">BIG</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="Flow_Small" sourceRef="Gateway_Size" targetRef="Task_Small">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">amount &lt;= 100</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:userTask id="Task_Big" name="Approve big refund">
      <bpmn:incoming>Flow_Big</bpmn:incoming><bpmn:outgoing>Flow_4</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:userTask id="Task_Small" name="Pay small refund">
      <bpmn:incoming>Flow_Small</bpmn:incoming><bpmn:outgoing>Flow_5</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="Flow_4" sourceRef="Task_Big" targetRef="EndEvent_Done" />
    <bpmn:sequenceFlow id="Flow_5" sourceRef="Task_Small" targetRef="EndEvent_Done" />
    <bpmn:endEvent id="EndEvent_Done"><bpmn:incoming>Flow_4</bpmn:incoming><bpmn:incoming>Flow_5</bpmn:incoming>
    </bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""

TYPO = "amont &gt; 100"
FIXED = "amount &gt; 100"


def save(project_dir: Path, big: str, record_name: str | None = "Record request") -> None:
    """The refund diagram with condition ``big``; without its first user task when ``record_name`` is None."""
    text = DIAGRAM.replace("BIG", big).replace("RECORD_NAME", record_name or "")
    if record_name is None:
        start, end = text.index('    <bpmn:userTask id="RECORD_ID"'), text.index("    <bpmn:intermediateCatchEvent")
        text = text[:start] + text[end:].replace(
            "<bpmn:incoming>Flow_2</bpmn:incoming>", "<bpmn:incoming>Flow_1</bpmn:incoming>"
        )
        text = text.replace('targetRef="RECORD_ID"', 'targetRef="Event_Cool"')
        text = text.replace('<bpmn:sequenceFlow id="Flow_2" sourceRef="RECORD_ID" targetRef="Event_Cool" />', "")
    text = text.replace("RECORD_ID", "Task_Record")
    (project_dir / "processes" / "refund.bpmn").write_text(text)


def open_tasks(project_dir: Path, instance: str) -> list[tuple[str, str, str]]:
    rows = query(
        project_dir,
        "SELECT bpmn_id, name, status FROM tasks WHERE instance_id = ? AND status IN ('ready', 'started', 'waiting')",
        instance,
    )
    return sorted(rows)


def recorded(cli: CliCall, project_dir: Path, instance: str) -> None:
    """Complete 'Record request' through the CLI: the case then waits for its cooling-off timer."""
    ref = query(project_dir, "SELECT id FROM tasks WHERE instance_id = ? AND status = 'ready'", instance)[0][0]
    result = cli(project_dir, "do", str(ref), "--data", "amount=250", "--no-interactive", now=T0.isoformat())
    assert result.exit_code == 0, result.stderr


def test_a_gateway_typo_found_at_run_time_is_fixed_by_migrate_and_retry(cli, project, project_dir):
    """The stuck case: incident at the gateway, fix the file, migrate, retry: it goes on along the fixed flow."""
    save(project_dir, TYPO)
    iid = cli_json(cli(project_dir, "start", "refund", "--json"))["id"]
    recorded(cli, project_dir, iid)
    failed = cli_json(cli(project_dir, "worker", "--once", "--json", now=PAST_DUE))
    assert [f["instance"] for f in failed["failed"]] == [iid]
    assert "amont" in failed["failed"][0]["error"]
    [incident] = cli_json(cli(project_dir, "incidents", "--json"))
    old_sha = query(project_dir, "SELECT sha256 FROM instances WHERE id = ?", iid)[0][0]

    # Retrying on the old version fails again: the typo is in the version the case runs on.
    again = cli(project_dir, "retry", str(incident["id"]), now=PAST_DUE)
    assert again.exit_code == 1
    assert "amont" in again.stderr

    save(project_dir, FIXED)
    outdated = cli_json(cli(project_dir, "instances", "--outdated", "--json"))
    assert [r["id"] for r in outdated] == [iid]

    plan = cli(project_dir, "migrate", "refund", "--dry-run")
    assert plan.exit_code == 0, plan.stderr
    assert f"instance {iid[:8]}" in plan.stdout
    assert "would move" in plan.stdout
    assert "  changed: Gateway_Size (conditions)\n" in plan.stdout, plan.stdout
    assert query(project_dir, "SELECT sha256 FROM instances WHERE id = ?", iid)[0][0] == old_sha

    moved = cli_json(cli(project_dir, "migrate", "refund", "--json", "--as", "dana"))
    assert [(m["instance"], m["done"]) for m in moved] == [(iid, True)]
    new_sha = moved[0]["to_sha256"]
    assert query(project_dir, "SELECT sha256 FROM instances WHERE id = ?", iid)[0][0] == new_sha != old_sha
    assert cli_json(cli(project_dir, "instances", "--outdated", "--json")) == []
    assert open_tasks(project_dir, iid) == [("Event_Cool", "Cooling-off hour", "waiting")]

    retried = cli(project_dir, "retry", str(incident["id"]), now=PAST_DUE)
    assert retried.exit_code == 0, retried.stderr
    assert "Approve big refund" in retried.stderr + retried.stdout
    assert open_tasks(project_dir, iid) == [("Task_Big", "Approve big refund", "ready")]
    assert app.show(project, iid).status == "running"

    kinds = [k for (k,) in query(project_dir, "SELECT kind FROM events WHERE instance_id = ? ORDER BY id", iid)]
    assert "instance_migrated" in kinds
    history = cli(project_dir, "history", iid[:8])
    assert history.exit_code == 0
    assert f"migrated by dana from model {old_sha[:12]} to {new_sha[:12]}" in history.stdout


def test_a_renamed_ready_task_keeps_its_row_and_claim(cli, project, project_dir):
    """A case waiting at a user task whose name changed: same ref, new name, the claim stays."""
    save(project_dir, TYPO)
    iid = cli_json(cli(project_dir, "start", "refund", "--json"))["id"]
    [(ref,)] = query(project_dir, "SELECT id FROM tasks WHERE instance_id = ? AND status = 'ready'", iid)
    assert cli(project_dir, "claim", str(ref), "--as", "bob").exit_code == 0
    save(project_dir, FIXED, record_name="Record the request")
    moved = cli_json(cli(project_dir, "migrate", "refund", "--instance", iid[:8], "--json"))
    assert moved[0]["done"] is True
    assert any("Task_Record (name)" in c for c in moved[0]["change"]["changed"])
    assert query(
        project_dir, "SELECT id, name, status, actor FROM tasks WHERE instance_id = ? AND status != 'completed'", iid
    ) == [(ref, "Record the request", "started", "bob")]
    done = cli(project_dir, "do", str(ref), "--data", "amount=50", "--no-interactive", "--as", "bob")
    assert done.exit_code == 0, done.stderr
    assert open_tasks(project_dir, iid) == [("Event_Cool", "Cooling-off hour", "waiting")]


def test_a_case_waiting_at_a_removed_element_is_refused(cli, project, project_dir):
    """The dry run and the migration both refuse a case whose task is gone from the new version; nothing changes."""
    save(project_dir, TYPO)
    iid = cli_json(cli(project_dir, "start", "refund", "--json"))["id"]
    before = query(project_dir, "SELECT sha256, version, state FROM instances WHERE id = ?", iid)
    save(project_dir, FIXED, record_name=None)
    for args in (["--dry-run"], []):
        result = cli(project_dir, "migrate", "refund", *args)
        assert result.exit_code == 1, (result.stdout, result.stderr)
        assert "refused" in result.stderr
        assert "Task_Record (it waits there)" in result.stderr
        assert "Traceback" not in result.stderr
    assert query(project_dir, "SELECT sha256, version, state FROM instances WHERE id = ?", iid) == before


def test_nothing_to_migrate_and_unknown_names(cli, project_dir):
    save(project_dir, FIXED)
    result = cli(project_dir, "migrate", "refund")
    assert (result.exit_code, result.stdout.strip()) == (
        0,
        "no running case is on an older version of it; nothing to migrate",
    )
    unknown = cli(project_dir, "migrate", "no_such_process")
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("error: ")


def test_a_cancelled_case_is_not_migrated(cli, project_dir):
    save(project_dir, TYPO)
    iid = cli_json(cli(project_dir, "start", "refund", "--json"))["id"]
    assert cli(project_dir, "cancel", iid[:8], "--reason", "duplicate").exit_code == 0
    save(project_dir, FIXED)
    assert cli_json(cli(project_dir, "instances", "--outdated", "--json")) == []
    result = cli(project_dir, "migrate", "refund", "--instance", iid[:8])
    assert result.exit_code == 1
    assert "is cancelled" in result.stderr


def test_a_case_of_the_example_moves_to_a_renamed_task_with_its_form(cli, project_dir):
    """The shipped example: rename the ready task with a form; the case moves and is worked on under the new name."""
    iid = cli_json(cli(project_dir, "start", "complaint:reengineered", "--json"))["id"]
    path = project_dir / "processes" / "complaint_reengineered.bpmn"
    path.write_text(path.read_text().replace('name="Record and assess complaint"', 'name="Record and assess it"'))
    moved = cli_json(cli(project_dir, "migrate", "complaint:reengineered", "--json"))
    assert [(m["instance"], m["done"], m["change"]["changed"]) for m in moved] == [
        (iid, True, ["Task_RecordAndAssess (name)"])
    ]
    [task] = cli_json(cli(project_dir, "tasks", "--json"))
    assert task["name"] == "Record and assess it"
    data = ["--data", "customer_name=Ann Smith", "--data", "category=billing", "--data", "amount_disputed=40"]
    data += [
        "--data",
        "description=Charged twice for March",
        "--data",
        "severity=medium",
        "--data",
        "can_resolve_now=true",
    ]
    done = cli(project_dir, "do", str(task["ref"]), "--no-interactive", *data)
    assert done.exit_code == 0, done.stderr
    assert [t["name"] for t in cli_json(cli(project_dir, "tasks", "--json"))] == ["Resolve at first contact"]
    sha = query(project_dir, "SELECT sha256 FROM instances WHERE id = ?", iid)[0][0]
    assert sha == moved[0]["to_sha256"]


def test_a_waiting_timer_keeps_its_due_time_unless_the_new_version_changes_it(cli, project_dir):
    """Renamed elements: the boundary timer is still due when it was; a new duration runs from the migration."""
    source = Path(__file__).parent / "data" / "events" / "timer_boundary.bpmn"
    path = project_dir / "processes" / "timer_boundary.bpmn"
    path.write_text(source.read_text())
    iid = cli_json(cli(project_dir, "start", "timer_boundary", "--json", now=T0.isoformat()))["id"]

    def due() -> str:
        shown = cli_json(cli(project_dir, "show", iid, "--json"))
        return str(next(w["due"] for w in shown["waiting_for"] if w["task"] == "Event_Deadline"))

    first = due()
    assert first.startswith((T0 + timedelta(hours=48)).date().isoformat())
    path.write_text(source.read_text().replace('name="48 hours passed"', 'name="Two days passed"'))
    assert cli_json(cli(project_dir, "migrate", "timer_boundary", "--json", now=PAST_DUE))[0]["done"] is True
    assert due() == first
    path.write_text(source.read_text().replace("PT48H", "PT4H"))
    assert cli_json(cli(project_dir, "migrate", "timer_boundary", "--json", now=PAST_DUE))[0]["done"] is True
    assert due() == (T0 + timedelta(hours=6)).isoformat()
    fired = cli_json(cli(project_dir, "worker", "--once", "--json", now=(T0 + timedelta(hours=6)).isoformat()))
    assert fired["fired"] == [iid]
    assert [t["name"] for t in cli_json(cli(project_dir, "tasks", "--json"))] == ["Escalate to supervisor"]


def test_imported_cases_are_never_candidates(cli, project_dir):
    """An open case imported from an event log has no engine state: --outdated and migrate leave it alone."""
    log = project_dir / "open.csv"
    log.write_text(
        "case_id,activity,lane,resource,enable_time,start_time,end_time\n"
        "X1,Record complaint,Call Centre,ann,2026-03-02T08:00:00+00:00,2026-03-02T08:01:00+00:00,\n"
    )
    imported = cli(project_dir, "import-log", str(log), "--process", "complaint", "--variant", "baseline")
    assert imported.exit_code == 0, imported.stderr
    iid = cli_json(cli(project_dir, "start", "complaint:baseline", "--json"))["id"]
    path = project_dir / "processes" / "complaint_baseline.bpmn"
    path.write_text(path.read_text().replace('name="Record complaint"', 'name="Record the complaint"'))
    assert [r["id"] for r in cli_json(cli(project_dir, "instances", "--outdated", "--json"))] == [iid]
    moved = cli_json(cli(project_dir, "migrate", "complaint:baseline", "--json"))
    assert [(m["instance"], m["done"]) for m in moved] == [(iid, True)]
