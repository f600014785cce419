"""Many operators and workers on one database, as real processes: races, then a crowd on many instances.

Each test runs on whichever database the run uses (SQLite, or PostgreSQL with
``FLOWRUN_TEST_DB=postgres``) through the ``project_dir`` fixture. The operators
and workers are forked processes that build their own :class:`flowrun.app.Project`
(own store, own engine) and call ``flowrun.app`` directly: the real code path of
``flowrun do`` and ``flowrun worker`` without the ~0.4 s interpreter start of each
command. One test also races the installed console script to see exit code 3.

What is checked is read back with plain SQL (``tests.helpers.query``), not
through flowrun, so a bookkeeping mistake in flowrun cannot hide itself.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import sqlite3
import subprocess
import threading
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from flowrun import app
from flowrun.clock import ManualClock, SystemClock
from flowrun.config import find_project
from flowrun.errors import ConflictError
from tests.conftest import ON_POSTGRES
from tests.helpers import T0, db_path, flowrun_executable, query

EVENTS = Path(__file__).parent / "data" / "events"

# -- shared with test_crash.py --------------------------------------------------------------

#: User tasks of the shipped example, by name.
BASELINE_TASKS = (
    "Record complaint",
    "Analyse needs",
    "Specialist assessment",
    "Draft resolution",
    "Approve resolution",
    "Reply to customer",
    "Satisfaction survey",
)
REENGINEERED_TASKS = (
    "Record and assess complaint",
    "Resolve at first contact",
    "Inform customer of next steps",
    "Specialist assessment",
    "Confirm resolution with customer",
    "Satisfaction survey",
)


def task_data(name: str, rng: random.Random, note: str = "") -> dict[str, Any]:
    """Valid data for the form of the example's user task ``name``, with random branch choices.

    ``note`` goes into a free-text field where the form has one, so a test can tell
    whose data was stored.
    """
    amount = rng.choice([0, 40, 90, 250, 750])
    text = note or "see notes"
    if name == "Record complaint":
        return {
            "customer_name": note or "Ann Smith",
            "category": rng.choice(["billing", "product_fault", "service_delay", "other"]),
            "description": f"complaint: {text}",
            "amount_disputed": amount,
        }
    if name == "Record and assess complaint":
        return {
            "customer_name": note or "Ann Smith",
            "category": rng.choice(["billing", "product_fault", "service_delay", "other"]),
            "description": f"complaint: {text}",
            "amount_disputed": amount,
            "severity": rng.choice(["low", "medium", "high"]),
            "can_resolve_now": rng.random() < 0.6,
        }
    if name == "Analyse needs":
        return {
            "severity": rng.choice(["low", "medium", "high"]),
            "needs_specialist": rng.random() < 0.4,
            "notes": text,
        }
    if name == "Specialist assessment":
        return {"finding": text, "proposed_remedy": rng.choice(["refund", "repair", "replacement", "apology"])}
    if name == "Draft resolution":
        value = rng.choice([0, 40, 250])
        return {"remedy": "refund" if value else "apology", "remedy_amount": value, "summary": text}
    if name == "Approve resolution":
        return {"approved": rng.random() < 0.8, "comment": text}
    if name == "Reply to customer":
        return {"reply_channel": rng.choice(["phone", "email", "letter"]), "message": text}
    if name == "Satisfaction survey":
        return {
            "satisfaction": rng.randint(1, 5),
            "nps": rng.randint(0, 10),
            "resolved_first_contact": rng.random() < 0.5,
            "comment": text,
        }
    if name == "Resolve at first contact":
        return {"remedy": "refund", "remedy_amount": 40, "message": text}
    if name == "Inform customer of next steps":
        return {"contact_channel": rng.choice(["phone", "email", "sms"]), "expected_days": rng.randint(1, 30)}
    if name == "Confirm resolution with customer":
        return {"remedy": rng.choice(["refund", "repair", "none"]), "remedy_amount": 40, "message": text}
    raise AssertionError(f"no test data for the task '{name}'")


def make_async(project_dir: Path, topic_settings: str = "async: true", handler: str | None = None) -> None:
    """Make ``check_entitlement`` a worker-only topic in the project's flowrun.yaml."""
    path = project_dir / "flowrun.yaml"
    text = path.read_text(encoding="utf-8")
    old = "  check_entitlement: complaint_services:check_entitlement\n"
    assert old in text, text
    target = handler or "complaint_services:check_entitlement"
    path.write_text(text.replace(old, f"  check_entitlement: {{handler: {target}, {topic_settings}}}\n"))


def open_project(project_dir: str | Path, clock: Any = None) -> app.Project:
    """A fresh Project (own store and engine), as a separate process would make it."""
    settings = find_project(explicit=Path(project_dir))
    return app.Project(settings=settings, clock=clock or SystemClock())


def fork_context() -> Any:
    """Processes forked from the test process: they start in milliseconds instead of re-importing."""
    return multiprocessing.get_context("fork")


def start_process(ctx: Any, target: Callable[..., None], *args: Any) -> Any:
    proc = ctx.Process(target=target, args=args, daemon=True)
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a process with threads; the children here
        # only use what they create themselves (a fresh Project, their own connections).
        warnings.simplefilter("ignore", DeprecationWarning)
        proc.start()
    return proc


def collect(procs: list[Any], pipes: list[Connection], timeout: float) -> list[Any]:
    """Each child's one message, then wait for them all to exit."""
    deadline = time.monotonic() + timeout
    out = []
    for pipe in pipes:
        left = max(0.1, deadline - time.monotonic())
        if not pipe.poll(left):
            for p in procs:
                p.kill()
            pytest.fail(f"a child process sent nothing within {timeout} s")
        out.append(pipe.recv())
    for proc in procs:
        proc.join(timeout=max(1.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
    return out


def completed_counts(project_dir: Path) -> dict[int, int]:
    """task ref -> number of 'completed' events."""
    rows = query(project_dir, "SELECT task_ref, count(*) FROM events WHERE kind = 'completed' GROUP BY task_ref")
    return {int(ref): int(n) for ref, n in rows if ref is not None}


def check_log_agrees(project_dir: Path) -> None:
    """Task rows, events and instance rows tell the same story, for every instance.

    * no task of an instance (engine task id) is stored twice;
    * every completed task row has exactly one 'completed' event, and no other row has one;
    * a completed instance has an end, one 'instance_completed' event and no open task;
      a running instance has at least one open task (ready, started or waiting).
    """
    dup = query(
        project_dir,
        "SELECT instance_id, task_id, count(*) FROM tasks GROUP BY instance_id, task_id HAVING count(*) > 1",
    )
    assert dup == [], f"tasks stored twice: {dup[:5]}"
    events = completed_counts(project_dir)
    rows = query(project_dir, "SELECT id, status FROM tasks")
    done = {int(ref) for ref, status in rows if status == "completed"}
    twice = {ref: n for ref, n in events.items() if n != 1}
    assert twice == {}, f"tasks with more than one 'completed' event: {list(twice.items())[:5]}"
    assert set(events) == done, (
        f"completed rows without an event: {sorted(done - set(events))[:5]}; "
        f"events of rows not completed: {sorted(set(events) - done)[:5]}"
    )
    inst = {
        iid: (status, ended) for iid, status, ended in query(project_dir, "SELECT id, status, ended_at FROM instances")
    }
    open_by = Counter(
        iid
        for (iid,) in query(
            project_dir, "SELECT instance_id FROM tasks WHERE status IN ('ready', 'started', 'waiting')"
        )
    )
    ends = Counter(
        iid for (iid,) in query(project_dir, "SELECT instance_id FROM events WHERE kind = 'instance_completed'")
    )
    for iid, (status, ended) in inst.items():
        if status == "completed":
            assert ended is not None, iid
            assert (ends[iid], open_by[iid]) == (1, 0), f"completed instance {iid}: end events, open tasks"
        else:
            assert status == "running", (iid, status)
            assert ends[iid] == 0, iid
            assert open_by[iid] >= 1, f"running instance {iid} has no open task"


# -- 1. two operators, one task, 100 times ---------------------------------------------------

RACES = 100


def _record_by(name: str) -> dict[str, Any]:
    return {"customer_name": f"Customer of {name}", "category": "billing", "description": f"Recorded by {name}"}


def _racer(project_dir: str, refs: list[str], name: str, barrier: Any, out: Connection) -> None:
    results: list[tuple[str, str, str, float, float]] = []
    try:
        project = open_project(project_dir)
        # A step of 20 ms more: both racers read the task as ready and run the engine at the same
        # time, so the loser's save finds the instance changed and it learns of the winner then.
        restore = project.engine.restore

        def slow_restore(*args: Any, **kwargs: Any) -> Any:
            time.sleep(0.02)
            return restore(*args, **kwargs)

        project.engine.restore = slow_restore  # type: ignore[method-assign]
        data = _record_by(name)
        for ref in refs:
            barrier.wait(timeout=60)
            began = time.monotonic()
            try:
                app.complete(project, ref, data, actor=name)
                outcome, message = "ok", ""
            except ConflictError as exc:
                outcome, message = "conflict", str(exc)
            except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
                outcome, message = "error", f"{type(exc).__name__}: {exc}"
            results.append((ref, outcome, message, began, time.monotonic()))
    except Exception:  # noqa: BLE001
        barrier.abort()
        results.append(("", "crash", traceback.format_exc(), 0.0, 0.0))
    out.send(results)


def test_two_processes_complete_the_same_task_100_times(project_dir):
    """Behind a barrier, two processes complete the same task: one wins, the other gets ConflictError."""
    clock = ManualClock(T0)
    project = open_project(project_dir, clock)
    refs = []
    for _ in range(RACES):
        started = app.start(project, "complaint:baseline")
        refs.append(str(started.ready[0].ref))

    ctx = fork_context()
    barrier = ctx.Barrier(2)
    names = ("olga", "pete")
    pipes, procs = [], []
    for name in names:
        recv, send = ctx.Pipe(duplex=False)
        procs.append(start_process(ctx, _racer, str(project_dir), refs, name, barrier, send))
        pipes.append(recv)
    began = time.monotonic()
    by_name = dict(zip(names, collect(procs, pipes, timeout=240), strict=True))
    took = time.monotonic() - began

    winners: dict[str, str] = {}
    overlapped = 0
    for i, ref in enumerate(refs):
        calls = {name: by_name[name][i] for name in names}
        assert all(c[0] == ref for c in calls.values()), calls
        outcomes = sorted(c[1] for c in calls.values())
        assert outcomes == ["conflict", "ok"], f"race on task {ref}: {calls}"
        winner = next(n for n, c in calls.items() if c[1] == "ok")
        loser = next(n for n, c in calls.items() if c[1] == "conflict")
        assert f"already completed by {winner}" in calls[loser][2], calls[loser][2]
        winners[ref] = winner
        # The loser was already inside complete() while the winner's step was running:
        # it got past the first check and learned of the winner when it tried to save.
        if calls[loser][3] < calls[winner][4]:
            overlapped += 1
    assert ConflictError.exit_code == 3
    assert overlapped >= RACES * 0.9, f"only {overlapped} of {RACES} calls overlapped; the barrier did not hold"
    assert set(Counter(winners.values())) <= set(names)

    # The stored data, task rows and events are the winner's, once.
    data = {iid: json.loads(d) for iid, d in query(project_dir, "SELECT id, data FROM instances")}
    versions = dict(query(project_dir, "SELECT id, version FROM instances"))
    rows = query(project_dir, "SELECT id, instance_id, name, status, actor FROM tasks WHERE type = 'userTask'")
    by_ref = {str(r[0]): r for r in rows}
    next_ready = Counter(r[1] for r in rows if r[2] == "Analyse needs" and r[3] == "ready")
    events = {
        str(ref): (n, actor)
        for ref, n, actor in query(
            project_dir,
            "SELECT task_ref, count(*), min(actor) FROM events WHERE kind = 'completed' GROUP BY task_ref",
        )
    }
    for ref, winner in winners.items():
        _, iid, name, status, actor = by_ref[ref]
        assert (name, status, actor) == ("Record complaint", "completed", winner)
        assert data[iid]["customer_name"] == f"Customer of {winner}"
        assert data[iid]["description"] == f"Recorded by {winner}"
        assert versions[iid] == 2
        assert next_ready[iid] == 1
        assert events[ref] == (1, winner)
    check_log_agrees(project_dir)
    print(f"\n{RACES} races in {took:.1f} s; {overlapped} overlapped; wins {dict(Counter(winners.values()))}")


def test_the_loser_of_a_race_between_two_do_commands_exits_3(project_dir):
    """The installed ``flowrun do``, twice at once on each of 3 tasks: exit codes 0 and 3."""
    project = open_project(project_dir, ManualClock(T0))
    refs = [str(app.start(project, "complaint:baseline").ready[0].ref) for _ in range(3)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    env["FLOWRUN_NOW"] = "2026-03-02T08:10:00Z"
    for ref in refs:
        barrier = threading.Barrier(2)
        results: dict[str, subprocess.CompletedProcess[str]] = {}

        def operator(
            name: str,
            ref: str = ref,
            barrier: threading.Barrier = barrier,
            results: dict[str, subprocess.CompletedProcess[str]] = results,
        ) -> None:
            args = [str(flowrun_executable()), "do", ref, "--as", name, "--data", f"customer_name=Customer of {name}"]
            args += ["--data", "category=billing", "--data", f"description=Recorded by {name}"]
            barrier.wait()
            results[name] = subprocess.run(args, cwd=project_dir, env=env, capture_output=True, text=True, timeout=60)

        threads = [threading.Thread(target=operator, args=(n,)) for n in ("olga", "pete")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.returncode for r in results.values())
        assert codes == [0, 3], {n: (r.returncode, r.stderr) for n, r in results.items()}
        winner = next(n for n, r in results.items() if r.returncode == 0)
        loser = next(n for n, r in results.items() if r.returncode == 3)
        assert f"already completed by {winner}" in results[loser].stderr
        assert "Traceback" not in results[loser].stderr
        assert query(project_dir, "SELECT actor FROM tasks WHERE id = ?", int(ref)) == [(winner,)]
    check_log_agrees(project_dir)


# -- the first start of a new model, in several processes at once ---------------------------

FIRST_START_ROUNDS = 6
FIRST_STARTERS = 4


def _first_starter(project_dir: str, target: str, barrier: Any, out: Connection) -> None:
    try:
        project = open_project(project_dir)
        barrier.wait(timeout=60)
        out.send(("ok", app.start(project, target).instance))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        barrier.abort()
        out.send(("error", f"{type(exc).__name__}: {exc}"))


def test_first_starts_of_a_new_model_version_at_once_all_succeed(project_dir):
    """Several operators start the first instances of a just-edited diagram at the same moment."""
    source = (project_dir / "processes" / "complaint_baseline.bpmn").read_text(encoding="utf-8")
    open_project(project_dir).store.close()
    ctx = fork_context()
    failures = []
    for round_ in range(FIRST_START_ROUNDS):
        name = f"edited_{round_}.bpmn"  # a new file: a model version the database has not seen
        (project_dir / "processes" / name).write_text(source + f"<!-- edit {round_} -->\n", encoding="utf-8")
        barrier = ctx.Barrier(FIRST_STARTERS)
        pipes, procs = [], []
        for _ in range(FIRST_STARTERS):
            recv, send = ctx.Pipe(duplex=False)
            procs.append(start_process(ctx, _first_starter, str(project_dir), name, barrier, send))
            pipes.append(recv)
        failures += [msg for kind, msg in collect(procs, pipes, timeout=120) if kind != "ok"]
    assert failures == []
    assert query(project_dir, "SELECT count(*) FROM instances") == [(FIRST_START_ROUNDS * FIRST_STARTERS,)]


# -- 2. 20 operators and 2 workers on many instances ----------------------------------------

#: How many instances the crowd works through; FLOWRUN_LOAD_INSTANCES overrides it.
LOAD_INSTANCES = int(os.environ.get("FLOWRUN_LOAD_INSTANCES", "1000"))
OPERATORS = 20
WORKERS = 2
#: Tasks an operator tries from one look at the inbox before looking again.
PICKS_PER_LOOK = 6


def _operator(
    project_dir: str, name: str, seed: int, to_start: int, go: Any, all_started: Any, out: Connection
) -> None:
    """Start a share of the instances, then work random tasks from the inbox until every instance is done."""
    rng = random.Random(seed)
    report: dict[str, Any] = {
        "name": name,
        "ok": [],
        "conflicts": 0,
        "errors": [],
        "looks": 0,
        "look_s": 0.0,
        "latency": [],
        "conflict_s": 0.0,
    }
    try:
        project = open_project(project_dir)
        go.wait(timeout=120)
        for i in range(to_start):
            app.start(project, "complaint:baseline" if (seed + i) % 2 == 0 else "complaint:reengineered")
        all_started.wait(timeout=300)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            looked = time.perf_counter()
            items = app.inbox(project)
            report["looks"] += 1
            report["look_s"] += time.perf_counter() - looked
            if not items:
                if not app.instances(project, "running", limit=1):
                    break
                time.sleep(0.02)  # instances wait for the workers' service jobs
                continue
            for item in rng.sample(items, min(PICKS_PER_LOOK, len(items))):
                data = task_data(item.name, rng, note=f"{name} on {item.ref}")
                began = time.perf_counter()
                try:
                    app.complete(project, str(item.ref), data, actor=name)
                except ConflictError:
                    report["conflicts"] += 1
                    report["conflict_s"] += time.perf_counter() - began
                    continue
                except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
                    report["errors"].append(f"task {item.ref} ({item.name}): {type(exc).__name__}: {exc}")
                    continue
                report["latency"].append(time.perf_counter() - began)
                report["ok"].append((item.ref, item.instance, item.name, data))
        else:
            report["errors"].append("gave up after 600 s with instances still running")
    except Exception:  # noqa: BLE001
        report["errors"].append(traceback.format_exc())
        go.abort()
        all_started.abort()
    out.send(report)


def _worker(project_dir: str, name: str, go: Any, stop: Any, out: Connection) -> None:
    """``run_due`` in a loop on the system clock (it moves forward), as ``flowrun worker`` does."""
    report: dict[str, Any] = {"name": name, "fired": 0, "passes": 0, "failed": [], "errors": []}
    # passes, fired: how busy the worker was
    try:
        project = open_project(project_dir)
        go.wait(timeout=120)
        while not stop.is_set():
            try:
                result = app.run_due(project, worker=name)
            except Exception as exc:  # noqa: BLE001
                report["errors"].append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.05)
                continue
            report["passes"] += 1
            report["fired"] += len(result.fired)
            report["failed"] += result.failed
            if not result.fired:
                time.sleep(0.1)  # idle: look again soon (each pass is a transaction, on PostgreSQL a connection)
    except Exception:  # noqa: BLE001
        report["errors"].append(traceback.format_exc())
    out.send(report)


@pytest.mark.slow
def test_20_operators_and_2_workers_complete_every_task_once(project_dir):
    """A crowd on both variants of the example: every task completed once, by the one who was told so."""
    make_async(project_dir)
    n = LOAD_INSTANCES
    # One instance of each variant first: it creates the SQLite file and stores both models
    first = open_project(project_dir)
    for variant in ("baseline", "reengineered"):
        app.start(first, f"complaint:{variant}")
    ctx = fork_context()
    go = ctx.Barrier(OPERATORS + WORKERS + 1)
    all_started = ctx.Barrier(OPERATORS)
    stop = ctx.Event()
    shares = [(n - 2) // OPERATORS + (1 if i < (n - 2) % OPERATORS else 0) for i in range(OPERATORS)]
    op_pipes, op_procs, wk_pipes, wk_procs = [], [], [], []
    for i in range(OPERATORS):
        recv, send = ctx.Pipe(duplex=False)
        op_procs.append(
            start_process(ctx, _operator, str(project_dir), f"op{i:02d}", i, shares[i], go, all_started, send)
        )
        op_pipes.append(recv)
    for i in range(WORKERS):
        recv, send = ctx.Pipe(duplex=False)
        wk_procs.append(start_process(ctx, _worker, str(project_dir), f"worker-{i}", go, stop, send))
        wk_pipes.append(recv)
    go.wait(timeout=120)
    began = time.monotonic()
    try:
        operators = collect(op_procs, op_pipes, timeout=900)
    finally:
        stop.set()
    workers = collect(wk_procs, wk_pipes, timeout=60)
    took = time.monotonic() - began

    errors = [f"{r['name']}: {e}" for r in operators + workers for e in r["errors"]]
    errors += [f"{w['name']}: instance {i}: {e}" for w in workers for i, e in w["failed"]]
    assert errors == [], "\n".join(sorted(errors, key=lambda e: "BrokenBarrier" in e)[:20])
    assert not any("database is locked" in e for e in errors)

    # Every instance ran to its end.
    assert query(project_dir, "SELECT status, count(*) FROM instances GROUP BY status") == [("completed", n)]

    # The completions the operators were told succeeded are exactly the completed user tasks, by them.
    told = {ref: (r["name"], iid, name) for r in operators for ref, iid, name, _ in r["ok"]}
    steps = sum(len(r["ok"]) for r in operators)
    assert len(told) == steps, "an operator was told it completed a task someone else also completed"
    stored = {
        int(ref): (actor, iid, name)
        for ref, actor, iid, name in query(
            project_dir,
            "SELECT id, actor, instance_id, name FROM tasks WHERE type = 'userTask' AND status = 'completed'",
        )
    }
    assert stored == told
    open_tasks = query(project_dir, "SELECT count(*) FROM tasks WHERE status IN ('ready', 'started', 'waiting')")
    assert open_tasks == [(0,)]

    # Per instance: one intake, one survey, and the service job of each re-engineered case ran once.
    per = Counter((iid, name) for _, iid, name in stored.values())
    variants = dict(query(project_dir, "SELECT id, variant FROM instances"))
    for iid, variant in variants.items():
        first_task = "Record complaint" if variant == "baseline" else "Record and assess complaint"
        assert (per[(iid, first_task)], per[(iid, "Satisfaction survey")]) == (1, 1), (iid, variant)
    services = dict(
        query(
            project_dir,
            "SELECT instance_id, count(*) FROM tasks WHERE type = 'serviceTask' AND status = 'completed' "
            "GROUP BY instance_id",
        )
    )
    reengineered = {iid for iid, v in variants.items() if v == "reengineered"}
    assert set(services) == reengineered
    assert set(services.values()) == {1}
    assert sum(w["fired"] for w in workers) >= len(reengineered)
    assert query(project_dir, "SELECT count(*) FROM incidents") == [(0,)]
    check_log_agrees(project_dir)

    latencies = sorted(x for r in operators for x in r["latency"])
    conflicts = sum(r["conflicts"] for r in operators)
    p50 = latencies[len(latencies) // 2] * 1000
    p95 = latencies[int(len(latencies) * 0.95)] * 1000
    db = "PostgreSQL" if ON_POSTGRES else "SQLite"
    print(
        f"\n{db}: {n} instances, {steps} steps by {OPERATORS} operators in {took:.1f} s "
        f"({steps / took:.1f} steps/s, p50 {p50:.0f} ms, p95 {p95:.0f} ms), {conflicts} conflicts; "
        f"service jobs per worker {[w['fired'] for w in workers]} in {[w['passes'] for w in workers]} passes; "
        f"{sum(r['looks'] for r in operators)} inbox reads took {sum(r['look_s'] for r in operators):.0f} s, "
        f"steps {sum(latencies):.0f} s, conflicts {sum(r['conflict_s'] for r in operators):.0f} s "
        "(summed over operators)"
    )


# -- workers and slow or failing services ---------------------------------------------------

SLOW_SERVICE = '''"""A service that takes its time (an external system under load)."""

import time
from pathlib import Path


def check_entitlement(data):
    Path(__file__).with_name("handler-started").touch()
    time.sleep(2.5)
    return {"entitled": True, "customer_tier": "standard", "auto_remedy_limit": 100.0}
'''


def _run_due_once(project_dir: str, out: Connection) -> None:
    try:
        result = app.run_due(open_project(project_dir, ManualClock(T0 + timedelta(days=1))), worker="slow-worker")
        out.send(("ok", result.fired, result.failed))
    except Exception:  # noqa: BLE001 - reported to the test
        out.send(("error", traceback.format_exc(), []))


def _worker_inside_its_service_call(project_dir: Path) -> tuple[Any, Connection]:
    """A worker process running one pass, once its handler has started (the handler touches a file)."""
    ctx = fork_context()
    recv, send = ctx.Pipe(duplex=False)
    proc = start_process(ctx, _run_due_once, str(project_dir), send)
    deadline = time.monotonic() + 60
    while not (project_dir / "handler-started").exists():
        assert time.monotonic() < deadline, "the worker never called the handler"
        time.sleep(0.01)
    return proc, recv


def test_a_slow_service_call_does_not_hold_up_operators_on_other_instances(project_dir):
    (project_dir / "slow_services.py").write_text(SLOW_SERVICE)
    make_async(project_dir, handler="slow_services:check_entitlement")
    project = open_project(project_dir, ManualClock(T0))
    rng = random.Random(1)
    slow = app.start(project, "complaint:reengineered")
    app.complete(project, str(slow.ready[0].ref), task_data("Record and assess complaint", rng), "alice")
    other = app.start(project, "complaint:baseline")
    proc, recv = _worker_inside_its_service_call(project_dir)
    began = time.monotonic()
    app.complete(project, str(other.ready[0].ref), task_data("Record complaint", rng), "bob")
    took = time.monotonic() - began
    ((kind, fired, failed),) = collect([proc], [recv], timeout=60)
    assert (kind, fired, failed) == ("ok", [slow.instance], [])
    assert took < 1.0, f"completing a task of another instance waited {took:.1f} s for the worker's service call"


WAITING_SERVICE = '''"""A warranty check that waits until the test lets it answer, and counts its calls."""

import time
from pathlib import Path

HERE = Path(__file__).parent


def check_warranty(data, context):
    with open(HERE / "warranty-calls", "a") as calls:
        calls.write(f"{context.idempotency_key} {context.attempt}\\n")
    (HERE / "handler-started").touch()
    deadline = time.monotonic() + 30
    while not (HERE / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return {"under_warranty": True}
'''


def test_a_step_that_lost_a_race_is_run_again_without_calling_the_service_twice(project_dir):
    """The worker's service call runs outside any transaction, so an operator can complete a parallel
    task of the same instance meanwhile; the worker's save then finds the instance changed, runs its
    step again on the new state, and reuses the service's answer instead of calling it again."""
    shutil.copy(EVENTS / "parallel_service.bpmn", project_dir / "processes" / "parallel_service.bpmn")
    (project_dir / "warranty_services.py").write_text(WAITING_SERVICE)
    yaml_path = project_dir / "flowrun.yaml"
    yaml_path.write_text(
        yaml_path.read_text().replace(
            "services:\n",
            "services:\n  check_warranty: {handler: warranty_services:check_warranty, async: true}\n",
        )
    )
    project = open_project(project_dir, ManualClock(T0))
    started = app.start(project, "parallel_service")
    (note,) = started.ready
    proc, recv = _worker_inside_its_service_call(project_dir)
    began = time.monotonic()
    app.complete(project, str(note.ref), {"remark": "customer called twice"}, "alice")
    assert time.monotonic() - began < 1.0, "completing a parallel task waited for the worker's service call"
    (project_dir / "go").touch()
    ((kind, fired, failed),) = collect([proc], [recv], timeout=60)
    assert (kind, fired, failed) == ("ok", [started.instance], [])
    calls = (project_dir / "warranty-calls").read_text().splitlines()
    assert len(calls) == 1, calls
    view = app.show(project, started.instance)
    assert view.data["under_warranty"] is True
    assert view.data["remark"] == "customer called twice"
    assert [i.name for i in app.inbox(project, started.instance)] == ["Reply to customer"]
    completed = query(
        project_dir, "SELECT name FROM tasks WHERE status = 'completed' AND type != 'startEvent' ORDER BY name"
    )
    assert ("Check warranty",) in completed
    assert ("Note the call",) in completed
    details = query(
        project_dir, "SELECT detail FROM events WHERE kind = 'completed' AND instance_id = ?", started.instance
    )
    assert sum(json.loads(d)["name"] == "Check warranty" for (d,) in details) == 1


FLAKY_SERVICE = '''"""A service that is down."""


def check_entitlement(data):
    raise ConnectionError("upstream unavailable")
'''


def test_next_due_tells_the_worker_when_a_service_retry_is_due(project_dir):
    (project_dir / "flaky_services.py").write_text(FLAKY_SERVICE)
    make_async(project_dir, "retries: 2, backoff: 1, async: true", handler="flaky_services:check_entitlement")
    clock = ManualClock(T0)
    project = open_project(project_dir, clock)
    started = app.start(project, "complaint:reengineered")
    app.complete(project, str(started.ready[0].ref), task_data("Record and assess complaint", random.Random(2)), "al")
    assert app.run_due(project, worker="w").fired == [started.instance]  # attempt 1 fails, retry due in 1 s
    assert query(project_dir, "SELECT attempts FROM tasks WHERE type = 'serviceTask'") == [(1,)]
    assert app.next_due(project) == T0 + timedelta(seconds=1)


def test_an_idle_worker_sleeps_until_another_workers_lease_runs_out(project_dir):
    make_async(project_dir)
    clock = ManualClock(T0)
    project = open_project(project_dir, clock)
    started = app.start(project, "complaint:reengineered")
    app.complete(project, str(started.ready[0].ref), task_data("Record and assess complaint", random.Random(3)), "al")
    assert app.next_due(project) == T0  # the entitlement check is due now
    with project.store.write() as tx:  # another worker takes it and is still busy with it (or died)
        assert tx.claim_due(T0, "busy-worker", T0 + timedelta(seconds=60)) == [started.instance]
    assert app.next_due(project) == T0 + timedelta(seconds=60)
    assert app.run_due(project, worker="idle-worker").fired == []
    clock.advance(61)  # the lease ran out: the idle worker takes over
    assert app.run_due(project, worker="idle-worker").fired == [started.instance]
    assert app.next_due(project) is None


def _keep_changing(project: app.Project, project_dir: Path, instance_id: str) -> list[int]:
    """Every time the engine loads the instance, someone else saves it first (its version moves on)."""
    restore = project.engine.restore
    bumps: list[int] = []

    def restore_and_bump(*args: Any, **kwargs: Any) -> Any:
        run = restore(*args, **kwargs)
        if kwargs.get("source"):  # the step's own load, not the check of the snapshot
            other = open_project(project_dir)
            with other.store.write() as tx:
                inst = tx.get_instance(instance_id, with_state=True)
                assert inst is not None
                assert tx.update_instance(inst, inst.version, T0)
            other.close()
            bumps.append(1)
        return run

    project.engine.restore = restore_and_bump  # type: ignore[method-assign]
    return bumps


def test_a_step_that_keeps_losing_gives_up_cleanly(project_dir):
    """An operator's step on an instance that others keep changing ends in a conflict, not a loop;
    a worker's does not turn into an incident: the work stays due for the next pass."""
    make_async(project_dir)
    clock = ManualClock(T0)
    project = open_project(project_dir, clock)
    started = app.start(project, "complaint:reengineered")
    rng = random.Random(4)
    app.complete(project, str(started.ready[0].ref), task_data("Record and assess complaint", rng), "al")
    version = query(project_dir, "SELECT version FROM instances")[0][0]

    worker = open_project(project_dir, clock)
    bumps = _keep_changing(worker, project_dir, started.instance)
    result = app.run_due(worker, worker="unlucky")
    assert (result.fired, result.failed) == ([], [])
    assert len(bumps) == 10
    assert query(project_dir, "SELECT count(*) FROM incidents") == [(0,)]
    assert query(project_dir, "SELECT status, version FROM instances") == [("running", version + 10)]
    assert query(project_dir, "SELECT lease_owner FROM tasks WHERE type = 'serviceTask'") == [(None,)]
    assert app.next_due(project) == T0  # still due: the next pass takes it
    assert app.run_due(project, worker="lucky").fired == [started.instance]

    other = app.start(project, "complaint:baseline")
    operator = open_project(project_dir, clock)
    _keep_changing(operator, project_dir, other.instance)
    with pytest.raises(ConflictError, match=r"kept being changed by others while task \d+ was being completed"):
        app.complete(operator, str(other.ready[0].ref), task_data("Record complaint", rng), "bo")
    assert [t.name for t in app.inbox(project, other.instance)] == ["Record complaint"]  # nothing half-done


@pytest.mark.sqlite
def test_reading_the_inbox_does_not_wait_for_a_writer(project_dir):
    """In WAL mode readers never wait for the writer; a command that only reads should not either."""
    app.start(open_project(project_dir, ManualClock(T0)), "complaint:baseline")
    writer = sqlite3.connect(db_path(project_dir), isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")  # a step in progress (a worker in a slow service call, say)
    release = threading.Timer(2.0, writer.rollback)
    release.start()
    try:
        began = time.monotonic()
        items = app.inbox(open_project(project_dir))  # a new process would open the store like this
        took = time.monotonic() - began
    finally:
        release.join()
        writer.close()
    assert [i.name for i in items] == ["Record complaint"]
    assert took < 1.0, f"reading the inbox waited {took:.1f} s for a writer"
