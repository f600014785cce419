"""Claims mean something: who holds a task, who may take it, and touch time from claim intervals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import cli_json, flowrun_executable, intake, local_hm, query
from tests.test_cli import RECORD_ARGS, assert_error

if TYPE_CHECKING:
    from tests.conftest import CliCall

T = "2026-03-02T{}:00Z"

GROUP_DIAGRAM = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Definitions_desk" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="desk" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="StartEvent_1" targetRef="Triage" />
    <bpmn:userTask id="Triage" name="Triage" camunda:candidateGroups="call-centre" camunda:candidateUsers="dora">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="Triage" targetRef="Fix" />
    <bpmn:userTask id="Fix" name="Fix" camunda:assignee="${owner}">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f3" sourceRef="Fix" targetRef="End" />
    <bpmn:endEvent id="End"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""

OPERATORS = "operators:\n  alice: {groups: [call-centre]}\n  bob: {groups: [back-office]}\n  dora: {}\n"


def _record_task(cli: CliCall, project_dir: Path, now: str = T.format("08:00")) -> str:
    started = cli_json(cli(project_dir, "start", "complaint:baseline", "--json", now=now))
    return str(started["ready"][0]["ref"])


def _desk(cli: CliCall, project_dir: Path) -> str:
    (project_dir / "processes" / "desk.bpmn").write_text(GROUP_DIAGRAM, encoding="utf-8")
    with (project_dir / "flowrun.yaml").open("a", encoding="utf-8") as f:
        f.write(OPERATORS)
    started = cli_json(cli(project_dir, "start", "desk", "--json", now=T.format("08:00")))
    return str(started["ready"][0]["ref"])


def _events(project_dir: Path, ref: str) -> list[tuple[str, str | None]]:
    rows = query(project_dir, "SELECT kind, actor FROM events WHERE task_ref = ? ORDER BY id", int(ref))
    return [(str(k), a) for k, a in rows]


def test_do_with_data_refuses_a_task_claimed_by_someone_else(cli, project_dir):
    """``do --data`` on bob's task: exit 3 naming bob, his claim time and the fix; nothing changes."""
    ref = _record_task(cli, project_dir)
    assert cli(project_dir, "claim", ref, "--as", "bob", now=T.format("08:02")).exit_code == 0

    refused = cli(project_dir, "do", ref, "--as", "alice", *RECORD_ARGS, now=T.format("08:30"))

    assert_error(
        refused,
        3,
        f"task {ref} (Record complaint) is claimed by bob since {local_hm(T.format('08:02'))}; ask bob",
        f"`flowrun assign {ref} --to alice`",
    )
    assert query(project_dir, "SELECT status, actor FROM tasks WHERE id = ?", int(ref)) == [("started", "bob")]
    # even data that does not fit the form is not looked at: the claim is what is wrong
    wrong = cli(project_dir, "do", ref, "--as", "alice", "--data", "category=nonsense", now=T.format("08:31"))
    assert_error(wrong, 3, "is claimed by bob")


def test_unclaim_by_the_owner_or_with_force(cli, project_dir):
    """Only the holder gives a task back, unless --force; each is an event with its actor."""
    ref = _record_task(cli, project_dir)
    cli(project_dir, "claim", ref, "--as", "bob", now=T.format("08:05"))

    assert_error(cli(project_dir, "unclaim", ref, "--as", "alice"), 3, "claimed by bob, not alice", "--force")
    assert cli(project_dir, "unclaim", ref, "--as", "bob", now=T.format("08:10")).exit_code == 0
    assert [t["ref"] for t in cli_json(cli(project_dir, "tasks", "--unclaimed", "--json"))] == [int(ref)]
    assert_error(cli(project_dir, "unclaim", ref, "--as", "bob"), 1, "is not claimed")

    cli(project_dir, "claim", ref, "--as", "bob", now=T.format("08:20"))
    forced = cli(project_dir, "unclaim", ref, "--as", "carol", "--force", now=T.format("08:25"))
    assert forced.exit_code == 0, forced.stderr
    assert "given back by bob" in forced.stdout
    assert _events(project_dir, ref)[-4:] == [
        ("claimed", "bob"),
        ("unclaimed", "bob"),
        ("claimed", "bob"),
        ("unclaimed", "carol"),
    ]


def test_touch_time_is_the_completers_claims_and_the_gaps_are_waiting(cli, project_dir):
    """Claimed 10 min, given back 20 min, claimed 10 min again: touch 20 min, waiting the rest."""
    ref = _record_task(cli, project_dir)
    cli(project_dir, "claim", ref, "--as", "alice", now=T.format("08:00"))
    cli(project_dir, "unclaim", ref, "--as", "alice", now=T.format("08:10"))
    cli(project_dir, "claim", ref, "--as", "alice", now=T.format("08:30"))
    done = cli(project_dir, "do", ref, "--as", "alice", *RECORD_ARGS, now=T.format("08:40"))
    assert done.exit_code == 0, done.stderr

    iid = query(project_dir, "SELECT instance_id FROM tasks WHERE id = ?", int(ref))[0][0]
    task = next(t for t in cli_json(cli(project_dir, "history", iid, "--json")) if t["ref"] == int(ref))
    assert (task["touch_s"], task["waiting_s"], task["actor"]) == (20 * 60, 20 * 60, "alice")
    assert task["started_at"] == "2026-03-02T08:20:00+00:00"  # completed minus touch
    assert [(c["actor"], c["outcome"], c["seconds"]) for c in task["claims"]] == [
        ("alice", "unclaimed", 600.0),
        ("alice", "completed", 600.0),
    ]
    text = cli(project_dir, "history", iid).stdout
    assert f"task {ref} Record complaint: alice 03-02 " in text
    assert "unclaimed, 10m" in text


def test_assign_hands_the_claim_over(cli, project_dir):
    """bob's interval ends as 'assigned'; alice holds it from then on, and only her time is touch."""
    ref = _record_task(cli, project_dir)
    cli(project_dir, "claim", ref, "--as", "bob", now=T.format("08:00"))
    moved = cli(project_dir, "assign", ref, "--to", "alice", "--as", "carol", now=T.format("08:15"))
    assert moved.exit_code == 0, moved.stderr
    assert "assigned to alice (was bob)" in moved.stdout
    assert_error(cli(project_dir, "do", ref, "--as", "bob", *RECORD_ARGS), 3, "claimed by alice")
    assert cli(project_dir, "do", ref, "--as", "alice", *RECORD_ARGS, now=T.format("08:45")).exit_code == 0

    iid = query(project_dir, "SELECT instance_id FROM tasks WHERE id = ?", int(ref))[0][0]
    task = next(t for t in cli_json(cli(project_dir, "history", iid, "--json")) if t["ref"] == int(ref))
    assert task["touch_s"] == 30 * 60
    assert [(c["actor"], c["outcome"]) for c in task["claims"]] == [("bob", "assigned"), ("alice", "completed")]
    assert ("assigned", "carol") in _events(project_dir, ref)


def test_candidates_and_assignee_from_the_diagram_decide_who_may_take_a_task(cli, project_dir):
    """candidateGroups/Users limit who may claim; ``${owner}`` names the assignee from the case data."""
    ref = _desk(cli, project_dir)

    assert_error(
        cli(project_dir, "claim", ref, "--as", "bob"),
        3,
        "offered to group call-centre, user dora",
        "bob's groups: back-office",
    )
    assert_error(cli(project_dir, "do", ref, "--as", "erin", "--data", "owner=bob"), 3, "erin is in no group")
    iid = query(project_dir, "SELECT instance_id FROM tasks WHERE id = ?", int(ref))[0][0]
    triage = next(t for t in cli_json(cli(project_dir, "history", iid, "--json")) if t["ref"] == int(ref))
    assert (triage["assignee"], triage["candidates"]) == (None, {"users": ["dora"], "groups": ["call-centre"]})
    listed = cli_json(cli(project_dir, "tasks", "--group", "call-centre", "--json"))
    assert [t["ref"] for t in listed] == [int(ref)]
    assert cli_json(cli(project_dir, "tasks", "--group", "back-office", "--json")) == []
    assert_error(cli(project_dir, "tasks", "--group", "call-center"), 1, "back-office, call-centre")

    done = cli_json(cli(project_dir, "do", ref, "--as", "dora", "--data", "owner=bob", "--json"))
    fix = str(done["ready"][0]["ref"])
    assert_error(cli(project_dir, "claim", fix, "--as", "alice"), 3, "is assigned to bob, not alice")
    assert [t["ref"] for t in cli_json(cli(project_dir, "tasks", "--mine", "--as", "bob", "--json"))] == [int(fix)]
    assert cli(project_dir, "claim", fix, "--as", "bob").exit_code == 0
    assert [t["ref"] for t in cli_json(cli(project_dir, "tasks", "--owner", "bob", "--json"))] == [int(fix)]
    assert cli_json(cli(project_dir, "tasks", "--unclaimed", "--json")) == []


def test_as_defaults_to_flowrun_user(cli, project_dir, monkeypatch):
    """Without --as, FLOWRUN_USER is who claims (and --mine is theirs)."""
    ref = _record_task(cli, project_dir)
    monkeypatch.setenv("FLOWRUN_USER", "zoe")
    assert "claimed by zoe" in cli(project_dir, "claim", ref).stdout
    assert [t["ref"] for t in cli_json(cli(project_dir, "tasks", "--mine", "--json"))] == [int(ref)]


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("operators: [alice]\n", ("'operators' must map each operator",)),
        ("operators:\n  alice: {group: [a]}\n", ("'alice' must be a mapping with only 'groups:'",)),
        ("operators:\n  alice: {groups: call-centre}\n", ("'alice': 'groups' must be a list",)),
    ],
)
def test_a_bad_operators_setting_names_the_key_and_the_fix(cli, project_dir, text, needles):
    """A malformed ``operators:`` in flowrun.yaml is one message with an example."""
    with (project_dir / "flowrun.yaml").open("a", encoding="utf-8") as f:
        f.write(text)
    assert_error(cli(project_dir, "tasks"), 1, *needles, "operators: {alice: {groups: [call-centre]}}")


def _env(now: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    env["FLOWRUN_NOW"] = now
    return env


def test_ctrl_c_at_the_prompt_gives_back_the_claim(cli, project_dir):
    """Ctrl-C in an interactive ``do`` (a real process): exit 130, task unclaimed, nothing saved."""
    ref = _record_task(cli, project_dir)
    args = [str(flowrun_executable()), "do", ref, "-i", "--as", "alice"]
    env = _env(T.format("08:05"))
    with subprocess.Popen(
        args, cwd=project_dir, env=env, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdin is not None
        assert proc.stderr is not None
        proc.stdin.write("Ann Smith\n")
        proc.stdin.flush()
        seen = ""
        deadline = time.monotonic() + 60
        while "Contact channel" not in seen and time.monotonic() < deadline:
            seen += proc.stderr.read(1)
        assert query(project_dir, "SELECT status, actor FROM tasks WHERE id = ?", int(ref)) == [("started", "alice")]
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)  # stdin stays open: closing it first could end the input before the Ctrl-C
        rest = proc.stderr.read()

    assert proc.returncode == 130, seen + rest
    assert "interrupted: nothing was saved; the task is unclaimed again" in rest
    assert "Traceback" not in rest
    assert query(project_dir, "SELECT status, actor FROM tasks WHERE id = ?", int(ref)) == [("ready", None)]
    assert query(project_dir, "SELECT actor, outcome FROM claims WHERE task_ref = ?", int(ref)) == [
        ("alice", "interrupted")
    ]
    iid = query(project_dir, "SELECT instance_id FROM tasks WHERE id = ?", int(ref))[0][0]
    assert "customer_name" not in cli_json(cli(project_dir, "show", iid, "--json"))["data"]


def test_two_operators_claiming_and_completing_the_same_task_at_once(cli, project_dir):
    """Two real ``flowrun`` processes claim then complete one task: one wins, the other exits 3; nothing lost."""
    for round_ in range(3):
        ref = _record_task(cli, project_dir)
        barrier = threading.Barrier(2)
        results: dict[str, list[subprocess.CompletedProcess[str]]] = {}
        round_env = _env(f"2026-03-02T09:{round_:02d}:00Z")

        def operator(
            name: str,
            ref: str = ref,
            barrier: threading.Barrier = barrier,
            results: dict[str, list[subprocess.CompletedProcess[str]]] = results,
            env: dict[str, str] = round_env,
        ) -> None:
            barrier.wait()
            out = results.setdefault(name, [])
            for step in (["claim", ref, "--as", name], ["do", ref, "--as", name, *RECORD_ARGS]):
                args = [str(flowrun_executable()), *step]
                out.append(subprocess.run(args, cwd=project_dir, env=env, capture_output=True, text=True, timeout=60))
                if out[-1].returncode != 0:
                    break

        threads = [threading.Thread(target=operator, args=(n,)) for n in ("olga", "pete")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = {n: [r.returncode for r in rs] for n, rs in results.items()}
        winners = [n for n, c in codes.items() if c == [0, 0]]
        assert len(winners) == 1, {n: [(r.returncode, r.stderr) for r in rs] for n, rs in results.items()}
        winner = winners[0]
        loser = next(n for n in codes if n != winner)
        assert codes[loser] == [3]
        last = results[loser][-1].stderr
        assert last.startswith("error: ")
        assert "Traceback" not in last
        assert f"claimed by {winner}" in last or f"completed by {winner}" in last
        assert query(project_dir, "SELECT status, actor FROM tasks WHERE id = ?", int(ref)) == [("completed", winner)]
        assert query(project_dir, "SELECT actor, outcome FROM claims WHERE task_ref = ?", int(ref)) == [
            (winner, "completed")
        ]
        done = query(project_dir, "SELECT count(*) FROM events WHERE task_ref = ? AND kind = 'completed'", int(ref))
        assert done == [(1,)]


SLOW_ENTITLEMENT = '''"""check_entitlement that waits inside its call until the test says go."""
import time
from pathlib import Path

HERE = Path(__file__).parent


def check_entitlement(data):
    (HERE / "handler-started").touch()
    deadline = time.monotonic() + 30
    while not (HERE / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return {"entitled": True, "customer_tier": "standard", "auto_remedy_limit": 100.0}
'''


def test_a_claim_made_while_a_completion_runs_wins_over_it(cli, project_dir):
    """bob claims while alice's ``do`` is inside its service call: her save is refused (exit 3), nothing kept."""
    (project_dir / "slow_services.py").write_text(SLOW_ENTITLEMENT, encoding="utf-8")
    yaml_path = project_dir / "flowrun.yaml"
    text = yaml_path.read_text(encoding="utf-8")
    yaml_path.write_text(text.replace("complaint_services:check_entitlement", "slow_services:check_entitlement"))
    started = cli_json(cli(project_dir, "start", "complaint:reengineered", "--json", now=T.format("08:00")))
    ref = str(started["ready"][0]["ref"])
    (project_dir / "intake.json").write_text(json.dumps(intake()), encoding="utf-8")
    args = [str(flowrun_executable()), "do", ref, "--as", "alice", "--data-file", "intake.json"]
    alice = subprocess.Popen(
        args, cwd=project_dir, env=_env(T.format("08:10")), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not (project_dir / "handler-started").exists() and time.monotonic() < deadline:
        time.sleep(0.01)

    claimed = cli(project_dir, "claim", ref, "--as", "bob", now=T.format("08:11"))
    (project_dir / "go").touch()
    _, err = alice.communicate(timeout=60)

    assert claimed.exit_code == 0, claimed.stderr
    assert alice.returncode == 3, err
    assert "is claimed by bob" in err
    assert "Traceback" not in err
    assert query(project_dir, "SELECT status, actor FROM tasks WHERE id = ?", int(ref)) == [("started", "bob")]
    assert "customer_name" not in cli_json(cli(project_dir, "show", started["id"], "--json"))["data"]
    assert query(project_dir, "SELECT actor, released_at FROM claims WHERE task_ref = ?", int(ref)) == [("bob", None)]


def test_an_assignee_expression_that_fails_saves_nothing(cli, project_dir):
    """``${owner}`` with no ``owner`` in the case data: the step fails naming the attribute; the task stays open."""
    ref = _desk(cli, project_dir)
    failed = cli(project_dir, "do", ref, "--as", "alice")
    assert_error(failed, 1, "processes/desk.bpmn", "user task Fix: camunda:assignee ${owner} failed", "owner")
    assert query(project_dir, "SELECT status FROM tasks WHERE id = ?", int(ref)) == [("ready",)]


def test_an_assignee_expression_flowrun_cannot_translate_is_refused_on_load(cli, project_dir):
    """A Camunda expression outside what flowrun translates is refused naming the file and the attribute."""
    (project_dir / "processes" / "desk.bpmn").write_text(
        GROUP_DIAGRAM.replace("${owner}", "${execution.getVariable('owner')}"), encoding="utf-8"
    )
    assert_error(cli(project_dir, "start", "desk"), 1, "desk.bpmn", "camunda:assignee", "cannot be translated")


def test_a_boundary_timer_ends_the_holders_claim_as_cancelled(cli, project_dir):
    """The 48 h deadline fires while bob holds the review: his interval ends 'cancelled' when the task goes."""
    events = Path(__file__).parent / "data" / "events"
    shutil.copy(events / "timer_boundary.bpmn", project_dir / "processes" / "timer_boundary.bpmn")
    started = cli_json(cli(project_dir, "start", "timer_boundary", "--json", now=T.format("08:00")))
    ref = str(started["ready"][0]["ref"])
    cli(project_dir, "claim", ref, "--as", "bob", now=T.format("09:00"))

    fired = cli(project_dir, "worker", "--once", now="2026-03-04T09:00:00Z")

    assert fired.exit_code == 0, fired.stderr
    assert query(project_dir, "SELECT status FROM tasks WHERE id = ?", int(ref)) == [("cancelled",)]
    assert query(project_dir, "SELECT actor, outcome FROM claims WHERE task_ref = ?", int(ref)) == [
        ("bob", "cancelled")
    ]


def test_assign_an_unclaimed_task_and_only_to_a_known_operator(cli, project_dir):
    """With ``operators:`` set, assign names an operator; an unclaimed task handed over is held by them."""
    ref = _desk(cli, project_dir)
    assert_error(cli(project_dir, "assign", ref, "--to", "zed"), 1, "no operator 'zed'", "alice, bob, dora")
    out = cli_json(cli(project_dir, "assign", ref, "--to", "bob", "--as", "alice", "--json"))
    assert (out["actor"], out["status"], out["previous_owner"]) == ("bob", "started", None)
    # the assignment overrides the diagram's candidates: bob, in no candidate group, completes it
    assert cli(project_dir, "do", ref, "--as", "bob", "--data", "owner=dora").exit_code == 0
