"""The installed ``flowrun`` executable, run as real processes (slow: keep these few)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

from tests.helpers import flowrun_executable, query

RECORD = ["--data", "customer_name=Ann Smith", "--data", "category=billing", "--data", "description=Charged twice"]


def run(project_dir: Path, *args: str, now: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(flowrun_executable()), *args],
        cwd=project_dir,
        env=_env(now),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _env(now: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    env["FLOWRUN_NOW"] = now
    return env


def _ok_output(proc: subprocess.CompletedProcess[str]) -> object:
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    parsed: object = json.loads(proc.stdout)
    return parsed


def ok_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON object a successful command printed."""
    parsed = _ok_output(proc)
    assert isinstance(parsed, dict), parsed
    return parsed


def ok_json_list(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The JSON list of objects a successful command printed."""
    parsed = _ok_output(proc)
    assert isinstance(parsed, list), parsed
    assert all(isinstance(item, dict) for item in parsed), parsed
    return parsed


def test_start_tasks_do_history(project_dir):
    """start -> tasks -> do -> history, each a separate process in the project folder."""
    started = ok_json(run(project_dir, "start", "complaint:baseline", "--json", now="2026-03-02T08:00:00Z"))
    assert isinstance(started, dict)
    iid = started["id"]

    inbox = ok_json_list(run(project_dir, "tasks", "--json", now="2026-03-02T08:03:00Z"))
    assert [(i["instance"], i["name"], i["waited_s"]) for i in inbox] == [(iid, "Record complaint", 180.0)]
    ref = str(inbox[0]["ref"])

    done = ok_json(run(project_dir, "do", ref, *RECORD, "--as", "carol", "--json", now="2026-03-02T08:09:00Z"))
    assert done["instance"] == iid
    assert [t["name"] for t in done["ready"]] == ["Analyse needs"]

    history = ok_json_list(run(project_dir, "history", iid[:8], "--json", now="2026-03-02T09:00:00Z"))
    assert [(h["name"], h["status"]) for h in history] == [
        ("Complaint received", "completed"),
        ("Record complaint", "completed"),
        ("Analyse needs", "ready"),
    ]
    record = history[1]
    assert (record["actor"], record["waiting_s"], record["touch_s"]) == ("carol", 540.0, 0.0)
    assert record["completed_at"] == "2026-03-02T08:09:00+00:00"

    missing = run(project_dir, "show", "feedfacefeed", now="2026-03-02T09:00:00Z")
    assert missing.returncode == 1
    assert "feedfacefeed" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_two_operators_complete_the_same_task(project_dir):
    """Two ``do`` processes racing on one task: one wins, the other exits 3 and changes nothing."""
    started = ok_json(run(project_dir, "start", "complaint:baseline", "--json", now="2026-03-02T08:00:00Z"))
    iid = started["id"]
    ref = str(started["ready"][0]["ref"])
    barrier = threading.Barrier(2)
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def operator(name: str) -> None:
        args = [
            str(flowrun_executable()),
            "do",
            ref,
            "--as",
            name,
            "--data",
            f"customer_name=Customer of {name}",
            "--data",
            "category=billing",
            "--data",
            f"description=Recorded by {name}",
        ]
        barrier.wait()
        proc = subprocess.Popen(
            args,
            cwd=project_dir,
            env=_env("2026-03-02T08:10:00Z"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = proc.communicate(timeout=60)
        results[name] = subprocess.CompletedProcess(args, proc.returncode, out, err)

    threads = [threading.Thread(target=operator, args=(name,)) for name in ("olga", "pete")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    codes = {name: r.returncode for name, r in results.items()}
    assert sorted(codes.values()) == [0, 3], {n: (r.returncode, r.stderr) for n, r in results.items()}
    winner = next(n for n, c in codes.items() if c == 0)
    loser = next(n for n, c in codes.items() if c == 3)
    assert f"already completed by {winner}" in results[loser].stderr
    assert "Traceback" not in results[loser].stderr

    shown = ok_json(run(project_dir, "show", iid, "--json", now="2026-03-02T08:11:00Z"))
    assert shown["data"]["customer_name"] == f"Customer of {winner}"
    assert shown["data"]["description"] == f"Recorded by {winner}"
    assert shown["version"] == 2
    # the next task exists once, and the contested task completed once
    assert query(project_dir, "SELECT name, status, actor FROM tasks ORDER BY id") == [
        ("Complaint received", "completed", None),
        ("Record complaint", "completed", winner),
        ("Analyse needs", "ready", None),
    ]
    assert query(project_dir, "SELECT count(*) FROM events WHERE kind = 'completed' AND task_ref = ?", int(ref)) == [
        (1,)
    ]
