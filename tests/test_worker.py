"""``flowrun worker``: in-process with ``--once``, and as the installed console script stopped by signals.

The clock is fixed with ``FLOWRUN_NOW`` past the timers' due time, so nothing
waits for a timer in real time; the only real waiting is for a worker process
to start and to stop.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import pytest

from flowrun import app
from tests.helpers import T0, cli_json, flowrun_executable, query

EVENTS = Path(__file__).parent / "data" / "events"

BEFORE_DUE = (T0 + timedelta(hours=1)).isoformat()
PAST_DUE = (T0 + timedelta(hours=2, minutes=1)).isoformat()


def add(project_dir: Path, *names: str) -> None:
    for name in names:
        shutil.copy(EVENTS / f"{name}.bpmn", project_dir / "processes" / f"{name}.bpmn")


def ready_names(project: app.Project, instance: str) -> list[str]:
    return sorted(i.name for i in app.inbox(project, instance))


def instance_rows(project_dir: Path) -> list[tuple[Any, ...]]:
    return query(project_dir, "SELECT id, version, status, state FROM instances ORDER BY id")


# -- worker --once, in process -----------------------------------------------------------


def test_worker_once_before_the_due_time_fires_nothing(cli, project, project_dir):
    add(project_dir, "timer_catch")
    app.start(project, "timer_catch")
    before = instance_rows(project_dir)
    result = cli(project_dir, "worker", "--once", now=BEFORE_DUE)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "worker stopped after 1 pass(es)" in result.stderr
    assert instance_rows(project_dir) == before


def test_worker_once_fires_the_due_timer(cli, project, project_dir):
    """One pass fires the timer, says which instance and which task became ready, and exits 0."""
    add(project_dir, "timer_catch")
    iid = app.start(project, "timer_catch").instance
    result = cli(project_dir, "worker", "--once", now=PAST_DUE)
    assert result.exit_code == 0, result.stderr
    ref = app.inbox(project, iid)[0].ref
    assert result.stdout.splitlines() == [
        f"due work ran in instance {iid[:8]}",
        f"  ready: task {ref} Ship order [no lane]",
    ]
    assert "worker stopped after 1 pass(es)" in result.stderr
    assert ready_names(project, iid) == ["Ship order"]

    again = cli(project_dir, "worker", "--once", now=PAST_DUE)
    assert (again.exit_code, again.stdout) == (0, "")


def test_worker_once_json(cli, project, project_dir):
    add(project_dir, "timer_catch", "timer_boundary")
    waiting = app.start(project, "timer_catch").instance
    later = app.start(project, "timer_boundary").instance  # due in 48 h: not fired now
    out = cli_json(cli(project_dir, "worker", "--once", "--json", now=PAST_DUE))
    assert out["fired"] == [waiting]
    assert out["failed"] == []
    assert [(r["task"], r["name"]) for r in out["ready"]] == [("Task_Ship", "Ship order")]
    assert "Event_Deadline" in {w.task for w in app.show(project, later).waiting_for}


def test_worker_once_reports_a_failing_instance_and_fires_the_others(cli, project, project_dir):
    """A timer whose path fails is reported; its instance is left as it was; the other instances go on."""
    add(project_dir, "timer_then_script")
    bad = app.start(project, "timer_then_script", {"total": 10, "count": 0}).instance
    good = app.start(project, "timer_then_script", {"total": 10, "count": 4}).instance
    bad_before = query(project_dir, "SELECT version, state FROM instances WHERE id = ?", bad)
    result = cli(project_dir, "worker", "--once", "--json", now=PAST_DUE)
    out = cli_json(result)
    assert out["fired"] == [good]
    assert [f["instance"] for f in out["failed"]] == [bad]
    assert "Task_Average" in out["failed"][0]["error"]
    assert "ZeroDivisionError" in out["failed"][0]["error"]
    assert query(project_dir, "SELECT version, state FROM instances WHERE id = ?", bad) == bad_before
    assert app.show(project, good).data["average"] == 2.5
    assert ready_names(project, good) == ["Read report"]

    # The failure is now an incident: the worker does not spin on it, `incidents` lists it.
    again = cli_json(cli(project_dir, "worker", "--once", "--json", now=PAST_DUE))
    assert again["failed"] == []
    listed = cli_json(cli(project_dir, "incidents", "--json"))
    assert [i["instance"] for i in listed] == [bad]
    assert listed[0]["error_type"] == "ScriptError"
    assert app.show(project, bad).status == "error"


def test_worker_interval_must_be_positive(cli, project_dir):
    result = cli(project_dir, "worker", "--interval", "0")
    assert result.exit_code == 2
    assert "--interval" in result.stderr


# -- the worker as a real process --------------------------------------------------------


def _env(now: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    env["FLOWRUN_NOW"] = now
    return env


class Worker:
    """``flowrun worker`` as a child process whose output lines are collected as they come."""

    def __init__(self, project_dir: Path, now: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(flowrun_executable()), "worker", *args],
            cwd=project_dir,
            env=_env(now),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(pipe: IO[str] | None, into: list[str]) -> None:
        assert pipe is not None
        for line in pipe:
            into.append(line.rstrip("\n"))

    def wait_for_line(self, lines: list[str], start: str, timeout: float) -> str:
        """The first line of ``lines`` (self.out or self.err) starting with ``start``, waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(lines):
                if line.startswith(start):
                    return line
            if self.proc.poll() is not None:
                pytest.fail(f"the worker exited early ({self.proc.returncode}): {self.out} {self.err}")
            time.sleep(0.02)
        pytest.fail(f"the worker printed no line starting {start!r} within {timeout} s: {self.out} {self.err}")

    def stop(self, sig: int, timeout: float) -> tuple[int, float]:
        """Send ``sig``; the exit code and how long the worker took to exit."""
        sent = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the worker did not exit within {timeout} s of {signal.Signals(sig).name}")
        took = time.monotonic() - sent
        for reader in self._readers:
            reader.join(timeout=5)
        return code, took

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for reader in self._readers:
            reader.join(timeout=5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_worker_process_fires_the_timer_then_stops_cleanly_on_a_signal(project, project_dir, sig):
    """The installed ``flowrun worker`` fires the due timer, sleeps, and on SIGTERM/SIGINT exits 0 quickly."""
    add(project_dir, "timer_catch")
    iid = app.start(project, "timer_catch").instance
    worker = Worker(project_dir, PAST_DUE, "--interval", "30")
    try:
        worker.wait_for_line(worker.out, f"due work ran in instance {iid[:8]}", timeout=30)
        time.sleep(0.3)  # let it finish the pass and go to sleep (the signal must wake it up)
        code, took = worker.stop(sig, timeout=10)
    finally:
        worker.kill()
    err = "\n".join(worker.err)
    assert code == 0, err
    assert took < 2.0, f"the worker took {took:.2f} s to stop"
    assert "worker stopped" in err
    assert "Traceback" not in err
    assert "interrupted" not in err
    assert ready_names(project, iid) == ["Ship order"]


def test_a_failing_instance_does_not_make_the_worker_spin(project, project_dir):
    """With --interval 5, a worker that keeps failing on one instance makes a handful of passes a second at most."""
    add(project_dir, "timer_then_script")
    bad = app.start(project, "timer_then_script", {"total": 10, "count": 0}).instance
    worker = Worker(project_dir, PAST_DUE, "--interval", "5")
    try:
        worker.wait_for_line(worker.err, f"error: instance {bad[:8]}", timeout=30)
        time.sleep(2.0)
        code, _ = worker.stop(signal.SIGTERM, timeout=10)
    finally:
        worker.kill()
    assert code == 0
    errors = [line for line in worker.err if line.startswith(f"error: instance {bad[:8]}")]
    assert len(errors) <= 3, f"{len(errors)} failing passes in about 2 s"
