"""``flowrun worker``: in-process with ``--once``, and as the installed console script stopped by signals.

The clock is fixed with ``FLOWRUN_NOW`` past the timers' due time, so nothing
waits for a timer in real time; the only real waiting is for a worker process
to start and to stop.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest

from flowrun import app
from flowrun.clock import ManualClock, human
from flowrun.config import find_project
from tests.helpers import T0, cli_json, flowrun_executable, intake, query

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
    at = human(datetime.fromisoformat(PAST_DUE))
    assert result.stdout.splitlines() == [
        f'{at} timer "2 hours cooling-off" in instance {iid[:8]} fired',
        f"{at} ready: task {ref} Ship order [no lane] (instance {iid[:8]})",
    ]
    assert f"{at} worker stopped after 1 pass(es)" in result.stderr
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


DOWN_SERVICE = '''"""A service that is down while a file named 'down' is next to it."""

from pathlib import Path


def check_entitlement(data):
    if (Path(__file__).parent / "down").exists():
        raise ConnectionError("upstream unavailable")
    return {"entitled": True}
'''

#: A line of the worker's log: it starts with the local time, to the second, and its zone.
STAMPED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ \S")


def _async_service(project_dir: Path, settings: str) -> None:
    """Make check_entitlement a worker-only service of DOWN_SERVICE, down until the file 'down' goes."""
    (project_dir / "down_services.py").write_text(DOWN_SERVICE)
    (project_dir / "down").touch()
    path = project_dir / "flowrun.yaml"
    old = "  check_entitlement: complaint_services:check_entitlement\n"
    text = path.read_text(encoding="utf-8")
    assert old in text
    new = f"  check_entitlement: {{handler: down_services:check_entitlement, {settings}}}\n"
    path.write_text(text.replace(old, new))


def _case_at_the_service(project_dir: Path, key: str | None) -> tuple[app.Project, str]:
    """A re-engineered case whose intake is done, so its entitlement check waits for a worker.

    The project is opened afresh, with the flowrun.yaml :func:`_async_service` wrote.
    """
    project = app.Project(settings=find_project(explicit=project_dir), clock=ManualClock(T0))
    started = app.start(project, "complaint:reengineered", key=key)
    app.complete(project, str(started.ready[0].ref), intake(can_resolve_now=False), "al")
    return project, started.instance


def test_worker_lines_name_the_service_the_case_and_the_attempt(cli, project_dir):
    """Each line: the local time, the service (topic), the instance and its key, attempt n of m and what came of it."""
    _async_service(project_dir, "retries: 2, backoff: 60, async: true")
    project, iid = _case_at_the_service(project_dir, "C-1042")
    service = f'service check_entitlement ("Check entitlement") in instance {iid[:8]} (key C-1042)'

    first = cli(project_dir, "worker", "--once", now=T0.isoformat())

    assert first.exit_code == 0, first.stderr
    assert first.stderr.splitlines()[0] == (
        f"{human(T0)} worker started on {project.store.shown_url}; services: check_entitlement"
    )
    assert first.stdout.splitlines() == [
        f"{human(T0)} {service}: attempt 1 of 3 failed (ConnectionError: upstream unavailable); "
        f"next attempt at {human(T0 + timedelta(seconds=60))}"
    ]

    (project_dir / "down").unlink()  # the service is back
    later = T0 + timedelta(seconds=61)
    second = cli(project_dir, "worker", "--once", now=later.isoformat())

    assert second.exit_code == 0, second.stderr
    lines = second.stdout.splitlines()
    assert lines[0] == f"{human(later)} {service}: attempt 2 of 3 succeeded"
    assert lines[1].startswith(f"{human(later)} ready: task ")
    assert all(STAMPED.match(line) for line in lines + second.stderr.splitlines()), second.output


def test_worker_line_names_the_incident_it_opened(cli, project_dir):
    """--json: the last failed attempt names the incident it opened; a case without a key has key null."""
    _async_service(project_dir, "retries: 0, async: true")
    project, iid = _case_at_the_service(project_dir, None)

    result = cli(project_dir, "worker", "--once", "--json", now=T0.isoformat())
    [ran] = cli_json(result)["ran"]
    text = cli(project_dir, "incidents", "--json")
    [incident] = cli_json(text)

    assert (ran["kind"], ran["name"], ran["instance"], ran["key"]) == ("service", "check_entitlement", iid, None)
    assert (ran["attempt"], ran["attempts"], ran["outcome"], ran["incident"]) == (1, 1, "incident", incident["id"])
    assert ran["error"] == "ConnectionError: upstream unavailable"


def test_worker_line_for_the_last_attempt_goes_to_stderr(cli, project_dir):
    """'attempt 1 of 1 failed (...); incident N opened' is an error line, with the time first."""
    _async_service(project_dir, "retries: 0, async: true")
    project, iid = _case_at_the_service(project_dir, None)

    result = cli(project_dir, "worker", "--once", now=T0.isoformat())

    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    [line] = [x for x in result.stderr.splitlines() if "check_entitlement" in x and "attempt" in x]
    [incident] = app.incidents(project)
    assert line == (
        f'{human(T0)} service check_entitlement ("Check entitlement") in instance {iid[:8]}: attempt 1 of 1 failed '
        f"(ConnectionError: upstream unavailable); incident {incident.id} opened "
        "(see 'flowrun incidents'; 'flowrun retry' once the cause is fixed)"
    )


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

    def wait_for_line(self, lines: list[str], text: str, timeout: float) -> str:
        """The first line of ``lines`` (self.out or self.err) holding ``text``, waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(lines):
                if text in line:
                    return line
            if self.proc.poll() is not None:
                pytest.fail(f"the worker exited early ({self.proc.returncode}): {self.out} {self.err}")
            time.sleep(0.02)
        pytest.fail(f"the worker printed no line with {text!r} within {timeout} s: {self.out} {self.err}")

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
        worker.wait_for_line(worker.out, f"in instance {iid[:8]} fired", timeout=30)
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
        worker.wait_for_line(worker.err, f"in instance {bad[:8]} failed", timeout=30)
        time.sleep(2.0)
        code, _ = worker.stop(signal.SIGTERM, timeout=10)
    finally:
        worker.kill()
    assert code == 0
    errors = [line for line in worker.err if f"in instance {bad[:8]} failed" in line]
    assert len(errors) <= 3, f"{len(errors)} failing passes in about 2 s"
