"""``flowrun cancel``: the case ends as cancelled, its tasks close, the reason is kept, the KPIs leave it out."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

from flowrun import app
from flowrun.clock import ManualClock
from tests.conftest import CliCall
from tests.helpers import T0, cli_json, flowrun_executable, query


def start(cli: CliCall, project_dir: Path, target: str = "complaint:baseline") -> str:
    return str(cli_json(cli(project_dir, "start", target, "--json"))["id"])


def test_cancel_closes_the_case_and_keeps_the_reason(cli, project_dir):
    iid = start(cli, project_dir)
    [(ref,)] = query(project_dir, "SELECT id FROM tasks WHERE instance_id = ? AND status = 'ready'", iid)
    assert cli(project_dir, "claim", str(ref), "--as", "bob").exit_code == 0
    result = cli(project_dir, "cancel", iid[:8], "--reason", "customer withdrew the complaint", "--as", "dana")
    assert result.exit_code == 0, result.stderr
    assert (
        result.stdout.strip()
        == f"instance {iid[:8]} (complaint:baseline) is cancelled: customer withdrew the complaint"
    )

    shown = cli_json(cli(project_dir, "show", iid, "--json"))
    assert (shown["status"], shown["error"]) == ("cancelled", "customer withdrew the complaint")
    assert shown["waiting_for"] == []
    assert cli_json(cli(project_dir, "tasks", "--json")) == []
    assert query(project_dir, "SELECT status FROM tasks WHERE id = ?", ref) == [("cancelled",)]
    events = query(project_dir, "SELECT kind, actor, detail FROM events WHERE instance_id = ? ORDER BY id", iid)
    assert ("instance_cancelled", "dana", json.dumps({"reason": "customer withdrew the complaint"})) in [
        (k, a, json.dumps(json.loads(d)) if d else None) for k, a, d in events
    ]
    history = cli(project_dir, "history", iid)
    assert "cancelled by dana: customer withdrew the complaint" in history.stdout


def test_a_cancelled_task_cannot_be_done_and_a_case_is_cancelled_once(cli, project_dir):
    iid = start(cli, project_dir)
    [(ref,)] = query(project_dir, "SELECT id FROM tasks WHERE instance_id = ? AND status = 'ready'", iid)
    assert cli(project_dir, "cancel", iid, "--reason", "duplicate of C-7").exit_code == 0
    done = cli(project_dir, "do", str(ref), "--no-interactive", "--data", "customer_name=Ann")
    assert done.exit_code == 1
    assert "cancelled" in done.stderr
    again = cli(project_dir, "cancel", iid, "--reason", "again")
    assert again.exit_code == 1
    assert again.stderr.startswith("error: ")
    assert "already cancelled: duplicate of C-7" in again.stderr


def test_cancel_needs_a_reason_and_a_known_case(cli, project_dir):
    iid = start(cli, project_dir)
    assert cli(project_dir, "cancel", iid).exit_code == 2
    blank = cli(project_dir, "cancel", iid, "--reason", "   ")
    assert blank.exit_code == 1
    assert "--reason" in blank.stderr
    unknown = cli(project_dir, "cancel", "ffffffff", "--reason", "x")
    assert unknown.exit_code == 1
    assert "no instance" in unknown.stderr
    assert query(project_dir, "SELECT status FROM instances WHERE id = ?", iid) == [("running",)]


def test_exports_show_the_case_cancelled_with_its_reason(cli, project_dir):
    iid = start(cli, project_dir)
    assert cli(project_dir, "cancel", iid, "--reason", "spam").exit_code == 0
    xes = cli(project_dir, "export", "--format", "xes", "-o", "-")
    assert xes.exit_code == 0, xes.stderr
    assert '<string key="case_status" value="cancelled"/>' in xes.stdout
    assert '<string key="cancel_reason" value="spam"/>' in xes.stdout
    assert '"ate_abort"' in xes.stdout
    rows = list(csv.DictReader(io.StringIO(cli(project_dir, "export", "--format", "csv", "-o", "-").stdout)))
    ours = [r for r in rows if r["case_id"] == iid]
    assert {r["case:cancel_reason"] for r in ours} == {"spam"}
    assert "cancelled" in {r["status"] for r in ours}
    ocel = json.loads(cli(project_dir, "export", "--format", "ocel", "-o", "-").stdout)
    [case] = [o for o in ocel["objects"] if o["id"] == iid]
    attributes = {a["name"]: a["value"] for a in case["attributes"]}
    assert (attributes["case_status"], attributes["cancel_reason"]) == ("cancelled", "spam")


def test_cancelled_cases_are_left_out_of_the_kpis_and_counted_in_the_warnings(cli, project_dir):
    ids = [start(cli, project_dir, "complaint:baseline") for _ in range(3)]
    for _ in range(3):
        start(cli, project_dir, "complaint:reengineered")
    assert cli(project_dir, "cancel", ids[0], "--reason", "opened by mistake").exit_code == 0
    out = cli_json(cli(project_dir, "compare", "complaint", "--json"))
    assert "group 'baseline': 1 case(s) that failed or were cancelled are left out" in out["warnings"]
    assert not any("group 'reengineered'" in w and "cancelled" in w for w in out["warnings"])
    running = [w for w in out["warnings"] if "group 'baseline'" in w and "still running" in w]
    assert running
    assert running[0].startswith("group 'baseline': 2 case(s) still running")


def test_cancel_by_business_key(cli, project_dir):
    """A case's business key is accepted where its id is."""
    from tests.test_send_targets import set_key

    iid = start(cli, project_dir)
    set_key(project_dir, iid, "C-1042")
    result = cli(project_dir, "cancel", "C-1042", "--reason", "raised twice")
    assert result.exit_code == 0, result.stderr
    assert query(project_dir, "SELECT status, error FROM instances WHERE id = ?", iid) == [
        ("cancelled", "raised twice")
    ]


def test_cancel_and_migrate_through_the_installed_command(project_dir):
    """The console script: cancel a case, then find nothing to migrate; both exit 0 with one line each."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(flowrun_executable()), *args]
        return subprocess.run(command, cwd=project_dir, env=env, capture_output=True, text=True, timeout=120)

    iid = json.loads(run("start", "complaint:baseline", "--json").stdout)["id"]
    cancelled = run("cancel", iid[:8], "--reason", "customer withdrew")
    assert (cancelled.returncode, cancelled.stderr) == (0, "")
    assert cancelled.stdout == f"instance {iid[:8]} (complaint:baseline) is cancelled: customer withdrew\n"
    nothing = run("migrate", "complaint:baseline")
    assert (nothing.returncode, nothing.stdout) == (
        0,
        "no running case is on an older version of it; nothing to migrate\n",
    )
    again = run("cancel", iid, "--reason", "twice")
    assert again.returncode == 1
    assert again.stderr.startswith("error: instance")
    assert "Traceback" not in again.stderr


def test_a_step_running_while_its_case_is_cancelled_is_not_saved(project_dir):
    """A worker is inside a service call of the case when it is cancelled: its step finds the case
    changed, reads it again, sees it cancelled and saves nothing; the case stays cancelled."""
    from tests.test_concurrency import (
        EVENTS,
        WAITING_SERVICE,
        _worker_inside_its_service_call,
        collect,
        open_project,
    )

    shutil.copy(EVENTS / "parallel_service.bpmn", project_dir / "processes" / "parallel_service.bpmn")
    (project_dir / "warranty_services.py").write_text(WAITING_SERVICE)
    yaml_path = project_dir / "flowrun.yaml"
    yaml_path.write_text(
        yaml_path.read_text().replace(
            "services:\n", "services:\n  check_warranty: {handler: warranty_services:check_warranty, async: true}\n"
        )
    )
    project = open_project(project_dir, ManualClock(T0))
    iid = app.start(project, "parallel_service").instance
    proc, recv = _worker_inside_its_service_call(project_dir)
    app.cancel(project, iid, "customer closed the account", "dana")
    (project_dir / "go").touch()
    ((kind, fired, failed),) = collect([proc], [recv], timeout=60)
    assert (kind, fired, failed) == ("ok", [], [])
    assert query(project_dir, "SELECT status FROM instances WHERE id = ?", iid) == [("cancelled",)]
    open_rows = query(
        project_dir, "SELECT name FROM tasks WHERE instance_id = ? AND status IN ('ready', 'started', 'waiting')", iid
    )
    assert open_rows == []
    assert not query(
        project_dir,
        "SELECT 1 FROM tasks WHERE instance_id = ? AND name = 'Check warranty' AND status = 'completed'",
        iid,
    )
