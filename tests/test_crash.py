"""``kill -9`` of the installed ``flowrun do`` and ``flowrun worker`` at random points, and idempotent services.

A step is one database transaction, so a process killed at any point leaves
every task either done or still open, never half: these tests kill real
processes (SIGKILL, no clean-up of any kind) and then read the database back
with plain SQL and through flowrun.

Where the kills land: a ``flowrun do`` spends its first ~0.4 s importing Python
modules and only the last ~0.1 s talking to the database, so a delay counted
from the process start would only ever kill imports. Each kill is therefore
timed from the moment the process opens the database (its SQLite file, or its
first socket for PostgreSQL), read from ``/proc/PID/fd``: a random delay of
0-300 ms from then lands before, during or after the step's transaction.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flowrun import app
from flowrun.clock import ManualClock
from flowrun.models import RUNNING
from tests.conftest import ON_POSTGRES
from tests.helpers import T0, flowrun_executable, query
from tests.test_concurrency import check_log_agrees, make_async, open_project, task_data

KILL_ROUNDS = 50
#: Each round's processes run this much later than the round before, so leases of killed workers (60 s) expire.
ROUND_STEP = timedelta(minutes=2)


def _env(now: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    env["FLOWRUN_NOW"] = now
    env.update(extra or {})
    return env


class Child:
    """One ``flowrun`` command as a real process, its output in files (a killed process leaves no pipe behind)."""

    def __init__(self, project_dir: Path, out_dir: Path, label: str, args: list[str], now: str, **env: str) -> None:
        self.label = label
        self.out = out_dir / f"{label}.out"
        self.err = out_dir / f"{label}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [str(flowrun_executable()), *args], cwd=project_dir, env=_env(now, env), stdout=out, stderr=err
            )
        self.started = time.monotonic()
        self.db_open_after: float | None = None
        self.ran_after_open: float | None = None
        self.killed = False
        self.seen_worker = self.proc.pid

    @property
    def worker_pid(self) -> int:
        """The process doing the work: the ``flowrun`` command's supervised child (itself when unsupervised)."""
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            children = []
        return int(children[0]) if children else self.proc.pid

    def wait_for_database(self, is_db: Any, timeout: float = 30) -> bool:
        """Poll /proc until the process has the database open; False if it exited first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                self.seen_worker = self.worker_pid
                fd_dir = Path(f"/proc/{self.seen_worker}/fd")
                targets = [os.readlink(fd_dir / fd) for fd in os.listdir(fd_dir)]
            except OSError:  # the process is exiting, or an fd closed while listed
                targets = []
            if any(is_db(t) for t in targets):
                self.db_open_after = time.monotonic() - self.started
                return True
            time.sleep(0.002)
        return False

    def kill_after(self, delay: float) -> None:
        """SIGKILL ``delay`` s from now unless it exits first (then ``ran_after_open`` says when it did)."""
        # The supervisor: its child dies with it (PR_SET_PDEATHSIG), as a kill -9 of the command would do.
        opened = time.monotonic()
        try:
            self.proc.wait(timeout=delay)
            self.ran_after_open = time.monotonic() - opened
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.killed = True

    def finish(self) -> int:
        worker = self.seen_worker
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while worker != self.proc.pid and Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
            time.sleep(0.005)  # the supervised child, killed with its supervisor, is gone a moment later
        return code

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    @property
    def stdout(self) -> str:
        return self.out.read_text(errors="replace")


def database_matcher(project_dir: Path) -> Any:
    """Tells whether a /proc/PID/fd link target is the project's database connection."""
    if ON_POSTGRES:
        return lambda target: target.startswith("socket:")
    db = str(project_dir / ".flowrun" / "flowrun.db")
    return lambda target: target.startswith(db)


def kill_randomly(children: list[Child], is_db: Any, rng: random.Random, spans: list[float]) -> None:
    """Each child: once it has the database open, SIGKILL after a random 0 to ``spans[i]`` s (if still running)."""

    def one(child: Child, delay: float) -> None:
        if child.wait_for_database(is_db):
            child.kill_after(delay)

    threads = [
        threading.Thread(target=one, args=(c, rng.uniform(0, span))) for c, span in zip(children, spans, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def engine_ready_tasks(project: app.Project, iid: str) -> tuple[bool, list[str]]:
    """Restore the instance's saved engine state: is it completed, and which user tasks are ready."""
    with project.store.read() as tx:
        inst = tx.get_instance(iid, with_state=True)
        assert inst is not None
        spec = tx.model_spec(inst.sha256)
    run = project.engine.restore(spec, inst.state or "", key=inst.sha256)
    return run.completed, sorted(w.task or "" for w in run.waiting_for() if w.kind == "task")


def check_every_instance_loads(project: app.Project, project_dir: Path) -> None:
    """show, history and the engine state agree with the task rows, for every instance."""
    for (iid,) in query(project_dir, "SELECT id FROM instances"):
        view = app.show(project, iid)
        assert view.status in ("running", "completed"), (iid, view.status, view.error)
        hist_view, tasks = app.history(project, iid)
        assert hist_view.version == view.version
        assert tasks
        completed, ready = engine_ready_tasks(project, iid)
        assert completed == (view.status == "completed"), iid
        stored_ready = sorted(t.bpmn_id for t in tasks if t.status in ("ready", "started") and t.type == "userTask")
        assert ready == stored_ready, f"instance {iid}: engine has {ready} ready, the task rows {stored_ready}"


def finish_everything(project: app.Project, clock: ManualClock, rng: random.Random, label: str) -> int:
    """Run due jobs and complete every open task until every instance has ended; returns the steps done."""
    steps = 0
    for _ in range(500):
        clock.advance(600)  # past any lease of a killed worker
        app.run_due(project, worker=f"{label}-finisher")
        items = app.inbox(project)
        if not items:
            if not app.instances(project, RUNNING, limit=1):
                return steps
            continue
        for item in items:
            app.complete(project, str(item.ref), task_data(item.name, rng, note=f"{label} finisher"), actor="finisher")
            steps += 1
    raise AssertionError("the instances did not finish")


# -- 3. kill -9 of flowrun do and flowrun worker --------------------------------------------


@pytest.mark.slow
def test_kill_9_of_do_and_worker_leaves_every_task_done_or_open(project_dir, tmp_path):
    """50 rounds of a `flowrun do` and a `flowrun worker`, each killed at a random point: nothing is half done."""
    make_async(project_dir)
    clock = ManualClock(T0)
    project = open_project(project_dir, clock)
    for i in range(16):
        app.start(project, "complaint:baseline" if i % 2 else "complaint:reengineered")
    rng = random.Random(20260302)
    is_db = database_matcher(project_dir)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    outcomes: Counter[str] = Counter()
    confirmed: dict[int, tuple[str, dict[str, Any]]] = {}
    committed: dict[int, str] = {}
    problems: list[str] = []
    db_open: list[float] = []
    ran_after_open: list[float] = []
    do_span = 0.3
    for i in range(KILL_ROUNDS):
        now = (T0 + ROUND_STEP * (i + 1)).isoformat()
        items = app.inbox(project)
        if len(items) < 3:
            clock.set(T0 + ROUND_STEP * (i + 1))
            for variant in ("baseline", "reengineered"):
                app.start(project, f"complaint:{variant}")
            items = app.inbox(project)
        item = rng.choice(items)
        actor = f"op{i}"
        data = task_data(item.name, rng, note=f"kill round {i}")
        data_file = out_dir / f"data{i}.json"
        data_file.write_text(json.dumps(data))
        args = ["do", str(item.ref), "--as", actor, "--data-file", str(data_file), "--json"]
        do = Child(project_dir, out_dir, f"do{i}", args, now)
        worker = Child(project_dir, out_dir, f"worker{i}", ["worker", "--interval", "0.05"], now)
        kill_randomly([do, worker], is_db, rng, [do_span, 0.3])
        do_code, worker_code = do.finish(), worker.finish()
        # The kills must land on both sides of `do`'s commit and after its exit, however fast this machine
        # is: `do`'s window follows how long it ran past opening the database (until it has exited once).
        if do.ran_after_open is not None:
            ran_after_open.append(do.ran_after_open)
            do_span = 1.3 * statistics.median(ran_after_open)
        elif not ran_after_open:
            do_span = min(do_span * 1.3, 5.0)
        if do.db_open_after is not None:
            db_open.append(do.db_open_after)
        if do_code == 0:  # (a SIGKILL sent as it exited does not matter: it exited 0)
            confirmed[item.ref] = (actor, data)
            outcomes["do exited 0 before the kill"] += 1
        elif do_code == -signal.SIGKILL:
            # Killed: the whole step was committed, or nothing of it (the task may be picked again later).
            row = query(project_dir, "SELECT status, actor FROM tasks WHERE id = ?", item.ref)
            if row == [("completed", actor)]:
                outcomes["do killed after its commit"] += 1
                committed[item.ref] = actor
            elif row == [("ready", None)]:
                outcomes["do killed before its commit"] += 1
            else:
                problems.append(f"do{i} was killed and left task {item.ref} as {row}")
        else:
            problems.append(f"do{i} exited {do_code}: {do.stderr}")
        if worker_code != -signal.SIGKILL:
            problems.append(f"worker{i} exited {worker_code}: {worker.stderr}")
        for child in (do, worker):
            if "Traceback" in child.stderr or "database is locked" in child.stderr:
                problems.append(f"{child.label}: {child.stderr}")
    assert problems == [], "\n".join(problems)

    # Every confirmed completion is there, with its actor and data.
    tasks = {int(r[0]): r[1:] for r in query(project_dir, "SELECT id, status, actor, instance_id FROM tasks")}
    events = {
        int(ref): json.loads(detail)
        for ref, detail in query(project_dir, "SELECT task_ref, detail FROM events WHERE kind = 'completed'")
        if ref is not None
    }
    for ref, (actor, data) in confirmed.items():
        assert tasks[ref][:2] == ("completed", actor), (ref, tasks[ref], actor)
        stored = events[ref]["data"]
        assert {k: stored[k] for k in data} == data, (ref, stored, data)
    for ref, actor in committed.items():
        assert tasks[ref][:2] == ("completed", actor)
    assert query(project_dir, "SELECT count(*) FROM incidents") == [(0,)]
    check_log_agrees(project_dir)
    check_every_instance_loads(project, project_dir)

    # The rest of every process can still be worked to its end.
    clock.set(T0 + ROUND_STEP * (KILL_ROUNDS + 1))
    finish_everything(project, clock, rng, "crash")
    assert query(project_dir, "SELECT DISTINCT status FROM instances") == [("completed",)]
    check_log_agrees(project_dir)
    check_every_instance_loads(project, project_dir)
    jobs = query(project_dir, "SELECT count(*) FROM tasks WHERE type = 'serviceTask' AND status = 'completed'")
    opened = sorted(db_open)
    print(
        f"\n{KILL_ROUNDS} rounds: {dict(outcomes)}; service jobs run {jobs[0][0]}; "
        f"`do` opened the database after {opened[len(opened) // 2]:.2f} s (median)"
    )
    # The kills did land on both sides of the commit.
    assert outcomes["do exited 0 before the kill"] > 0
    assert outcomes["do killed before its commit"] > 0


# -- 4. one effect per service task despite kills and retries --------------------------------

SERVICE_MODULE = '''"""check_entitlement with an external effect that must happen once per task."""

import os
import sqlite3
import time
from pathlib import Path

DB = Path(__file__).with_name("effects.sqlite")
FAIL_FIRST = 2


def check_entitlement(data, context):
    key = context.idempotency_key
    con = sqlite3.connect(DB, timeout=60, isolation_level=None)
    try:
        con.execute("INSERT INTO calls (key, attempt, pid) VALUES (?, ?, ?)", (key, context.attempt, os.getpid()))
        if context.attempt <= FAIL_FIRST:
            raise ConnectionError(f"upstream unavailable (attempt {context.attempt})")
        # The effect, once per idempotency key (a payment, a letter...).
        con.execute(
            "INSERT OR IGNORE INTO effects (key, attempt, pid) VALUES (?, ?, ?)", (key, context.attempt, os.getpid())
        )
    finally:
        con.close()
    # Between the effect and the commit of the step: a kill here loses the step, not the effect.
    time.sleep(float(os.environ.get("EFFECT_HOLD_S", "0.02")))
    amount = float(data.get("amount_disputed") or 0)
    tier = "gold" if amount >= 500 else "standard"
    return {
        "entitled": data.get("category") != "other",
        "customer_tier": tier,
        "auto_remedy_limit": 1000.0 if tier == "gold" else 100.0,
    }
'''

EFFECT_INSTANCES = 24
EFFECT_ROUNDS = 12


def _effects(project_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(project_dir / "effects.sqlite", timeout=60)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_one_effect_per_service_task_despite_kills_and_retries(project_dir, tmp_path):
    """Workers killed mid-job and a handler that fails twice: one effect per task, keyed by its idempotency key."""
    (project_dir / "idem_services.py").write_text(SERVICE_MODULE)
    make_async(project_dir, "retries: 4, backoff: 0, async: true", handler="idem_services:check_entitlement")
    con = sqlite3.connect(project_dir / "effects.sqlite")
    con.executescript(
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE calls (id INTEGER PRIMARY KEY, key TEXT NOT NULL, attempt INTEGER NOT NULL, pid INTEGER);"
        "CREATE TABLE effects (key TEXT PRIMARY KEY, attempt INTEGER NOT NULL, pid INTEGER);"
    )
    con.close()
    clock = ManualClock(T0)
    project = open_project(project_dir, clock)
    rng = random.Random(7)
    for _ in range(EFFECT_INSTANCES):
        started = app.start(project, "complaint:reengineered")
        app.complete(project, str(started.ready[0].ref), task_data("Record and assess complaint", rng), "alice")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    is_db = database_matcher(project_dir)

    # Round 0, on purpose: a worker killed after its handler made the effect, before the step committed.
    now = (T0 + ROUND_STEP).isoformat()
    held = Child(project_dir, out_dir, "held", ["worker", "--interval", "0.05"], now, EFFECT_HOLD_S="30")
    deadline = time.monotonic() + 60
    while not _effects(project_dir, f"SELECT key FROM effects WHERE pid = {held.worker_pid}"):
        assert held.proc.poll() is None, held.stderr
        assert time.monotonic() < deadline, "the worker made no effect within 60 s"
        time.sleep(0.01)
    worker_pid = held.worker_pid
    os.kill(held.proc.pid, signal.SIGKILL)
    assert held.finish() == -signal.SIGKILL
    ((lost_key,),) = _effects(project_dir, f"SELECT key FROM effects WHERE pid = {worker_pid}")
    iid, task_id = lost_key.split(":")
    assert query(project_dir, "SELECT status FROM tasks WHERE instance_id = ? AND task_id = ?", iid, task_id) == [
        ("waiting",)
    ], "the killed worker's step must not be saved"

    # Then two workers per round, each killed at a random point of its work.
    problems = []
    for r in range(1, EFFECT_ROUNDS + 1):
        now = (T0 + ROUND_STEP * (r + 1)).isoformat()
        workers = [Child(project_dir, out_dir, f"w{r}-{k}", ["worker", "--interval", "0.05"], now) for k in range(2)]
        kill_randomly(workers, is_db, rng, [0.3, 0.3])
        for w in workers:
            code = w.finish()
            if code != -signal.SIGKILL or "Traceback" in w.stderr or "database is locked" in w.stderr:
                problems.append(f"{w.label} exited {code}: {w.stderr}")
    assert problems == [], "\n".join(problems)

    # Whatever the kills left, a worker finishes (on a clock past every lease).
    clock.set(T0 + ROUND_STEP * (EFFECT_ROUNDS + 3))
    for _ in range(20):
        clock.advance(600)
        app.run_due(project, worker="finisher")
        if not query(project_dir, "SELECT count(*) FROM tasks WHERE status = 'waiting'")[0][0]:
            break
    service = query(
        project_dir, "SELECT instance_id, task_id, status FROM tasks WHERE type = 'serviceTask' ORDER BY instance_id"
    )
    assert len(service) == EFFECT_INSTANCES
    assert {s for _, _, s in service} == {"completed"}
    keys = {f"{i}:{t}" for i, t, _ in service}
    effects = Counter(k for (k,) in _effects(project_dir, "SELECT key FROM effects"))
    calls = Counter(k for (k,) in _effects(project_dir, "SELECT key FROM calls"))
    # Exactly one effect per service task, under the key of that task, and no effect under any other key.
    assert set(effects) == keys
    assert set(effects.values()) == {1}
    # The handler was called more often than that: two failed attempts per task, and replays after kills.
    assert all(calls[k] >= 3 for k in keys), calls
    replays = {k: n - 3 for k, n in calls.items() if n > 3}
    assert lost_key in replays
    attempts = Counter((k, a) for k, a in _effects(project_dir, "SELECT key, attempt FROM calls") if k == lost_key)
    assert attempts[(lost_key, 3)] >= 2, "the killed attempt was made again, under the same key"
    assert query(project_dir, "SELECT count(*) FROM incidents") == [(0,)]
    assert all("entitled" in json.loads(d) for (d,) in query(project_dir, "SELECT data FROM instances"))
    check_log_agrees(project_dir)
    check_every_instance_loads(project, project_dir)
    print(
        f"\n{EFFECT_INSTANCES} service tasks, {sum(calls.values())} handler calls, "
        f"{len(effects)} effects; {len(replays)} tasks called again after a kill ({sum(replays.values())} calls)"
    )
