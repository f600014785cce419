#!/usr/bin/env python3
"""flowrun performance benchmarks: each figure is a ratio against a reference taken in the same run.

Usage (from the repository root)::

    python benchmarks/run.py             # full run: 15 runs per command, about 2 minutes on 2 cores
    python benchmarks/run.py --quick     # 5 runs per command, about 1 minute
    python benchmarks/run.py --profile   # also write profiles of the measured commands to benchmarks/profiles/

``python`` is the project's virtualenv interpreter (the one next to the installed ``flowrun``
console script); any other interpreter re-runs the script with ``.venv/bin/python``.

Measurements (details in benchmarks/README.md):

(a) ``do``: one ``flowrun do REF --data ...`` process (completing "Record and assess complaint",
    which also runs the entitlement service task, the service-level script and the gateway)
    against the import floor ``python -c "import SpiffWorkflow.bpmn, click, rich, sqlalchemy"``.
    Medians of N warm, interleaved runs of each (wall time). Target: ratio <= 1.5.
(b) ``tasks``: ``flowrun tasks --json`` with 10,000 waiting instances against 10 (two projects,
    seeded in process through ``flowrun.app.start``). Medians of N warm, interleaved runs of
    each (wall time). Target: ratio <= 2.0.
(c) ``engine``: 1,000 instances run to completion in process through ``flowrun.engine.Engine``,
    ``Run.complete`` and ``Run.drain`` against raw SpiffWorkflow (``CamundaParser``,
    ``BpmnWorkflow``) on the same diagram, data and service results: the re-engineered diagram
    on its first-contact path and the baseline diagram on its specialist + approval path.
    Median of 20 paired ABBA chunks (wall time). Target: ratio <= 1.15 for each diagram.
(d) ``storage``: bytes per waiting instance in the 10,000-instance SQLite database (reported).
(e) ``limits`` (only with ``--only e``, reported, no target): the engine of (c) with the per-step
    limits of flowrun.engine.sandbox unarmed, armed as in process (SIGPROF timer), and armed as
    under the ``flowrun`` supervisor (timer + kernel RLIMIT_CPU + the shared page), in the same
    run: CPU per instance and per engine step, as ratios against unarmed.

CPU time (user+sys) ratios are reported next to every wall-time ratio. ``--save PATH`` writes the
results as JSON (``benchmarks/results.json`` is the tracked record of a full run; nothing is written
without ``--save``); exit status 0 when every target passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _common
from _common import (
    HERE,
    REPO,
    TABLE_HEAD,
    child_env,
    error_row,
    flowrun_exe,
    log,
    print_aligned,
    ratio_row,
    run_timed,
    save_results,
)

PROFILES = HERE / "profiles"

FLOOR_CODE = "import SpiffWorkflow.bpmn, click, rich, sqlalchemy"
REENGINEERED = "complaint:reengineered"

TARGETS = {"do": 1.5, "tasks": 2.0, "engine": 1.15}

# Valid form data (checked against forms/*.json before anything is timed).
# Re-engineered diagram, first-contact path: a standard-tier billing complaint of 40 that the
# front office may settle (entitled, 40 <= 100) -> Resolve at first contact -> survey.
REENGINEERED_DATA: dict[str, dict[str, Any]] = {
    "Task_RecordAndAssess": {
        "customer_name": "Ann Lee",
        "channel": "phone",
        "category": "billing",
        "description": "I was charged twice for my March bill.",
        "amount_disputed": 40.0,
        "severity": "low",
        "can_resolve_now": True,
    },
    "Task_ResolveAtFirstContact": {
        "remedy": "refund",
        "remedy_amount": 40.0,
        "message": "The double charge is refunded.",
    },
    "Task_SatisfactionSurvey": {"satisfaction": 5, "nps": 9, "resolved_first_contact": True},
}
REENGINEERED_PATH = ["Task_RecordAndAssess", "Task_ResolveAtFirstContact", "Task_SatisfactionSurvey"]

# Baseline diagram, the path through every gateway condition: specialist needed, remedy over
# 100 so the supervisor approves, then reply and survey.
BASELINE_DATA: dict[str, dict[str, Any]] = {
    "Task_RecordComplaint": {
        "customer_name": "Bo Chen",
        "channel": "email",
        "category": "product_fault",
        "description": "The kettle stopped heating after a week.",
        "amount_disputed": 150.0,
    },
    "Task_AnalyseNeeds": {"severity": "medium", "needs_specialist": True},
    "Task_SpecialistAssessment": {"finding": "Heating element failed", "proposed_remedy": "replacement"},
    "Task_DraftResolution": {"remedy": "replacement", "remedy_amount": 150.0, "summary": "We replace the kettle."},
    "Task_ApproveResolution": {"approved": True, "comment": "Fault confirmed."},
    "Task_ReplyToCustomer": {"reply_channel": "email", "message": "A new kettle is on its way."},
    "Task_SatisfactionSurvey": {"satisfaction": 4, "nps": 8, "resolved_first_contact": False},
}
BASELINE_PATH = [
    "Task_RecordComplaint",
    "Task_AnalyseNeeds",
    "Task_SpecialistAssessment",
    "Task_DraftResolution",
    "Task_ApproveResolution",
    "Task_ReplyToCustomer",
    "Task_SatisfactionSurvey",
]

# The same intake as command-line text, typed by the form in `flowrun do`.
DO_ARGS = [
    f"{k}={'true' if v is True else ('false' if v is False else v)}"
    for k, v in REENGINEERED_DATA["Task_RecordAndAssess"].items()
]


# -- helpers ---------------------------------------------------------------------------


def timed(
    argv: Sequence[str], cwd: Path, check: Callable[[subprocess.CompletedProcess[str]], None] | None = None
) -> tuple[float, float]:
    """(wall time, CPU time user+sys) of one process, start to exit, output captured."""
    wall, cpu, proc = run_timed(argv, cwd)
    if check is not None:
        check(proc)
    return wall, cpu


def stats(samples: list[tuple[float, float]]) -> dict[str, Any]:
    xs = [w for w, _ in samples]
    cpu = [c for _, c in samples]
    return {
        "median_s": statistics.median(xs),
        "min_s": min(xs),
        "max_s": max(xs),
        "runs": len(xs),
        "cpu_median_s": statistics.median(cpu),
        "all_s": [round(x, 5) for x in xs],
        "all_cpu_s": [round(x, 5) for x in cpu],
    }


def init_project(dest: Path) -> Path:
    proc = subprocess.run([flowrun_exe(), "init", str(dest)], env=child_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"flowrun init {dest} failed: {proc.stderr}")
    return dest


def open_project(root: Path) -> Any:
    from flowrun.app import Project
    from flowrun.config import find_project

    return Project(find_project(explicit=root))


class _BatchedStore:
    """A project's ``SqlStore`` whose transactions share one connection, committed every ``batch`` writes.

    ``flowrun.app.start`` runs unchanged against it: only the commit granularity differs from
    ``flowrun start``; the same rows are written by the same code (``app.start`` ->
    ``Tx.ensure_model/insert_instance/save_tasks/add_events``). It offers ``SqlStore``'s
    transaction methods with their signatures (checked when it is made, so that a change of the
    store interface stops the benchmark at once instead of making it seed start by start), and
    passes everything else through. Seeding runs alone on a fresh database, so the batch holds
    SQLite's write lock without queueing behind other writers.
    """

    def __init__(self, store: Any, batch: int) -> None:
        import inspect

        from flowrun.store import SqlStore, Tx

        for name in ("read", "write"):
            mine = inspect.signature(getattr(type(self), name))
            theirs = inspect.signature(getattr(SqlStore, name))
            if mine.parameters.keys() != theirs.parameters.keys():
                raise TypeError(f"_BatchedStore.{name}{mine} no longer matches SqlStore.{name}{theirs}; update it")
        self._store = store
        self._batch = batch
        self._tx_class = Tx
        self._conn: Any = None
        self._trans: Any = None
        self._writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _tx(self) -> Any:
        if self._conn is None:
            self._conn = self._store.engine.connect().execution_options(flowrun_write=True)
            self._trans = self._conn.begin()
        return self._tx_class(self._conn)

    @contextmanager
    def read(self, snapshot: bool = True) -> Iterator[Any]:
        """A read inside the open batch: it sees the batch's own writes, whatever ``snapshot`` asks."""
        yield self._tx()

    @contextmanager
    def write(self) -> Iterator[Any]:
        """A write inside the open batch, which commits after every ``batch`` writes."""
        yield self._tx()
        self._writes += 1
        if self._writes % self._batch == 0:
            self.flush()

    def flush(self) -> None:
        """Commit the open batch."""
        if self._conn is not None:
            self._trans.commit()
            self._conn.close()
            self._conn = self._trans = None

    def abort(self) -> None:
        """Roll the open batch back."""
        if self._conn is not None:
            self._trans.rollback()
            self._conn.close()
            self._conn = self._trans = None


def seed(project: Any, n: int, label: str, batch: int = 0) -> dict[str, Any]:
    """Start ``n`` instances of the re-engineered process through ``flowrun.app.start``.

    ``batch`` > 0 commits every ``batch`` starts (see :class:`_BatchedStore`); 0 gives every start
    its own transactions, exactly as ``flowrun start`` does.
    """
    from flowrun.app import start

    batched = _BatchedStore(project.store, batch) if batch > 0 else None
    if batched is not None:
        project.__dict__["store"] = batched  # Project.store is a cached_property
    t_first = time.perf_counter()
    first = start(project, REENGINEERED)  # parses the diagram and stores the model once
    t_first = time.perf_counter() - t_first
    if first.status != "running" or len(first.ready) != 1:
        raise RuntimeError(f"unexpected start result: {first}")
    t0 = time.perf_counter()
    try:
        for i in range(1, n):
            result = start(project, REENGINEERED)
            if result.status != "running" or len(result.ready) != 1:
                raise RuntimeError(f"unexpected start result: {result}")
            if n >= 2000 and (i + 1) % 2000 == 0:
                log(f"    seeded {i + 1}/{n} ({time.perf_counter() - t0:.1f}s)")
        if batched is not None:
            batched.flush()
    except BaseException:
        if batched is not None:
            batched.abort()
        raise
    finally:
        if batched is not None:
            project.__dict__["store"] = batched._store
    dt = time.perf_counter() - t0
    return {
        "project": label,
        "instances": n,
        "first_start_s": round(t_first, 3),
        "mode": f"flowrun.app.start, one commit per {batch} starts"
        if batch
        else "flowrun.app.start, own transactions per start (as `flowrun start`)",
        "seconds": round(t_first + dt, 3),
        "per_instance_ms": round(dt / max(1, n - 1) * 1000, 3),
    }


def check_form_data(project_root: Path) -> None:
    """Every payload used here is valid for its task's form (forms/*.json, JSON Schema)."""
    import jsonschema

    forms = {
        "Task_RecordAndAssess": "intake_assess.json",
        "Task_ResolveAtFirstContact": "resolve_now.json",
        "Task_SatisfactionSurvey": "satisfaction_survey.json",
        "Task_RecordComplaint": "record_complaint.json",
        "Task_AnalyseNeeds": "analyse_needs.json",
        "Task_SpecialistAssessment": "specialist_assessment.json",
        "Task_DraftResolution": "draft_resolution.json",
        "Task_ApproveResolution": "approve_resolution.json",
        "Task_ReplyToCustomer": "reply_to_customer.json",
    }
    for payloads in (REENGINEERED_DATA, BASELINE_DATA):
        for task, data in payloads.items():
            schema = json.loads((project_root / "forms" / forms[task]).read_text(encoding="utf-8"))
            jsonschema.validate(data, schema)


# -- (a) one `flowrun do` step -----------------------------------------------------------


def bench_do(work: Path, runs: int, warmup: int) -> dict[str, Any]:
    from flowrun.app import inbox

    root = work / "proj_do"
    project = open_project(root)
    seeding = seed(project, runs + warmup, "proj_do")
    refs = [str(i.ref) for i in inbox(project) if i.task == "Task_RecordAndAssess"]
    if len(refs) < runs + warmup:
        raise RuntimeError(f"expected {runs + warmup} ready intake tasks, found {len(refs)}")
    floor_argv = [sys.executable, "-c", FLOOR_CODE]

    def do_argv(ref: str) -> list[str]:
        argv = [flowrun_exe(), "do", ref, "--as", "bench"]
        for pair in DO_ARGS:
            argv += ["--data", pair]
        return argv

    def check_do(proc: subprocess.CompletedProcess[str]) -> None:
        if "done" not in proc.stdout or "Resolve at first contact" not in proc.stdout:
            raise RuntimeError(f"flowrun do did not reach 'Resolve at first contact': {proc.stdout} {proc.stderr}")

    floor: list[tuple[float, float]] = []
    do: list[tuple[float, float]] = []
    for i, ref in enumerate(refs[: runs + warmup]):
        f = timed(floor_argv, root)
        d = timed(do_argv(ref), root, check_do)
        if i >= warmup:
            floor.append(f)
            do.append(d)
    res_floor, res_do = stats(floor), stats(do)
    return ratio_row(
        "a",
        "flowrun do (one step) vs import floor",
        res_do["median_s"],
        res_floor["median_s"],
        TARGETS["do"],
        f"wall time, median of {runs} runs",
        res_do["cpu_median_s"] / res_floor["cpu_median_s"],
        flowrun=res_do,
        reference=res_floor,
        reference_command=f'python -c "{FLOOR_CODE}"',
        command="flowrun do REF --as bench " + " ".join(f"--data {p}" for p in DO_ARGS),
        step=(
            "Record and assess complaint -> Check entitlement (service) -> Set service-level target (script)"
            " -> gateway -> Resolve at first contact"
        ),
        seeding=seeding,
        _profile_args=do_argv,
        _project=root,
        _spare_refs=[],
    )


# -- (b) `flowrun tasks --json` at 10 and at 10,000 -----------------------------------------


def bench_tasks(
    work: Path, runs: int, warmup: int, large: int, seed_batch: int
) -> tuple[dict[str, Any], dict[str, Path]]:
    small_root = init_project(work / "proj_tasks_10")
    large_root = init_project(work / f"proj_tasks_{large}")
    for root in (small_root, large_root):  # the inbox reads and shows case data columns, sorted by due date
        with (root / "flowrun.yaml").open("a", encoding="utf-8") as f:
            f.write("inbox:\n  columns: [customer_name, amount_disputed]\n")
    log(f"  seeding 10 and {large} waiting instances through flowrun.app.start ...")
    seed_small = seed(open_project(small_root), 10, small_root.name)
    seed_large = seed(open_project(large_root), large, large_root.name, batch=seed_batch)
    log(
        f"  seeded {large} in {seed_large['seconds']:.1f}s"
        f" ({seed_large['per_instance_ms']:.2f} ms/instance; {seed_large['mode']})"
    )
    argv = [flowrun_exe(), "tasks", "--json"]

    def expect(n: int) -> Callable[[subprocess.CompletedProcess[str]], None]:
        def check(proc: subprocess.CompletedProcess[str]) -> None:
            items = json.loads(proc.stdout)
            if len(items) != n:
                raise RuntimeError(f"flowrun tasks --json listed {len(items)} tasks, expected {n}")

        return check

    t_small: list[tuple[float, float]] = []
    t_large: list[tuple[float, float]] = []
    for i in range(runs + warmup):
        s = timed(argv, small_root, expect(10))
        big = timed(argv, large_root, expect(large))
        if i >= warmup:
            t_small.append(s)
            t_large.append(big)
    rs, rl = stats(t_small), stats(t_large)
    out = ratio_row(
        "b",
        f"flowrun tasks --json, {large:,} vs 10 waiting",
        rl["median_s"],
        rs["median_s"],
        TARGETS["tasks"],
        f"wall time, median of {runs} runs",
        rl["cpu_median_s"] / rs["cpu_median_s"],
        flowrun=rl,
        reference=rs,
        command="flowrun tasks --json",
        seeding={"small": seed_small, "large": seed_large},
        json_bytes_large=None,
    )
    return out, {"small": small_root, "large": large_root}


# -- (c) engine layer vs raw SpiffWorkflow --------------------------------------------------


class _EngineSides:
    """The same diagram, data and service result, driven by flowrun's engine and by raw SpiffWorkflow."""

    def __init__(self, project_root: Path, file: str, process_id: str, data: dict[str, dict[str, Any]]) -> None:
        from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
        from SpiffWorkflow.camunda.parser import CamundaParser
        from SpiffWorkflow.util.task import TaskState

        from flowrun.clock import SystemClock
        from flowrun.config import find_project
        from flowrun.engine import Engine, load_model
        from flowrun.engine._tree import spiffworkflow_as_released
        from flowrun.handlers import Registry

        settings = find_project(explicit=project_root)
        path = project_root / file
        self.data = data
        # flowrun: the stored definition (JSON) as `flowrun start` would store it, the project's
        # service registry (complaint_services.check_entitlement) and the system clock.
        info = load_model(path, file, path.parent)
        self.spec_json, self.sha = info.spec, info.sha256
        registry = Registry(settings.services, settings.root)
        self.engine = Engine(SystemClock(), registry.call)
        # raw SpiffWorkflow: CamundaParser; the external service task is left STARTED by
        # SpiffWorkflow 3.2, so we act as the worker with the very same handler function.
        parser = CamundaParser()
        parser.add_bpmn_file(str(path))
        self.raw_spec = parser.get_spec(process_id)
        self.raw_subs = parser.get_subprocess_specs(process_id)
        self.handlers = {
            spec.bpmn_id: registry.get(topic)
            for spec in self.raw_spec.task_specs.values()
            if (topic := _external_topic(path, getattr(spec, "bpmn_id", None)))
        }
        self.BpmnWorkflow = BpmnWorkflow
        self.released = spiffworkflow_as_released
        self.READY = TaskState.READY
        self.STARTED = TaskState.STARTED

    def flowrun_one(self) -> tuple[dict[str, Any], list[str], int]:
        from flowrun.models import CANCELLED, COMPLETED, READY

        run = self.engine.start(self.spec_json, {}, key=self.sha)
        ready: dict[str, str] = {}
        trail: list[str] = []
        nrec = 0
        while True:
            records = run.drain()
            nrec += len(records)
            for r in records:
                if r.status == READY and r.type in ("userTask", "manualTask"):
                    ready[r.task_id] = r.bpmn_id
                elif r.status in (COMPLETED, CANCELLED):
                    ready.pop(r.task_id, None)
            if run.completed:
                break
            task_id, bpmn_id = min(ready.items(), key=lambda kv: kv[1])
            run.complete(task_id, self.data[bpmn_id], "bench", None)
            trail.append(bpmn_id)
        return run.data(), trail, nrec

    def raw_one(self) -> tuple[dict[str, Any], list[str]]:
        """One instance on raw SpiffWorkflow; call it inside ``self.released()`` (see bench_engine)."""
        wf = self.BpmnWorkflow(self.raw_spec, self.raw_subs)
        handlers = self.handlers
        trail: list[str] = []
        while True:
            wf.do_engine_steps()
            if wf.is_completed():
                break
            waiting = [t for t in wf.get_tasks(state=self.STARTED) if t.task_spec.bpmn_id in handlers]
            if waiting:
                for task in waiting:
                    task.data.update(handlers[task.task_spec.bpmn_id](dict(task.data)))
                    task.complete()
                continue
            ready = wf.get_tasks(state=self.READY, manual=True)
            task = min(ready, key=lambda t: t.task_spec.bpmn_id)
            task.data.update(self.data[task.task_spec.bpmn_id])
            task.run()
            trail.append(task.task_spec.bpmn_id)
        return dict(wf.data), trail


def _external_topic(path: Path, bpmn_id: str | None) -> str | None:
    if not bpmn_id:
        return None
    from lxml import etree

    cam = "{http://camunda.org/schema/1.0/bpmn}"
    tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
    for el in tree.iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}serviceTask"):
        if el.get("id") == bpmn_id and el.get(cam + "type") == "external":
            topic = el.get(cam + "topic")
            return str(topic) if topic else None
    return None


def bench_engine(project_root: Path, instances: int, chunks: int) -> list[dict[str, Any]]:
    cases = [
        (
            "c1",
            "re-engineered, first-contact path",
            "processes/complaint_reengineered.bpmn",
            "complaint_reengineered",
            REENGINEERED_DATA,
            REENGINEERED_PATH,
        ),
        (
            "c2",
            "baseline, specialist + approval path",
            "processes/complaint_baseline.bpmn",
            "complaint_baseline",
            BASELINE_DATA,
            BASELINE_PATH,
        ),
    ]
    out = []
    for cid, label, file, pid, data, path in cases:
        sides = _EngineSides(project_root, file, pid, data)
        # same result on both sides: path taken and final process data
        # flowrun patches how SpiffWorkflow walks its task tree (flowrun.engine._tree); the reference
        # side runs SpiffWorkflow as released, so the ratio counts those patches on flowrun's side.
        # The switch is made once per chunk, not per instance: changing class attributes drops the
        # interpreter's specialised code for those classes, a cost that would land on one side only.
        released = sides.released
        fdata, ftrail, nrec = sides.flowrun_one()
        with released():
            rdata, rtrail = sides.raw_one()
        if ftrail != path or rtrail != path:
            raise RuntimeError(f"{label}: unexpected path flowrun={ftrail} raw={rtrail}, expected {path}")
        if fdata != rdata:
            diff = {k: (fdata.get(k), rdata.get(k)) for k in set(fdata) | set(rdata) if fdata.get(k) != rdata.get(k)}
            raise RuntimeError(f"{label}: final data differs between flowrun and raw SpiffWorkflow: {diff}")
        for _ in range(max(20, instances // 20)):  # warm-up: caches, allocator, branch predictors
            sides.flowrun_one()
        with released():
            for _ in range(max(20, instances // 20)):
                sides.raw_one()
        # Move everything alive now (modules, parsed specs, the other benchmarks' leftovers) out of
        # the collector's reach, so a full collection costs what the instances themselves left.
        gc.collect()
        gc.freeze()
        per_chunk = max(1, instances // chunks)
        wall = {"fr": 0.0, "raw": 0.0}
        cpu = {"fr": 0.0, "raw": 0.0}
        cpu_ratios: list[float] = []
        wall_ratios: list[float] = []
        for c in range(chunks):
            order = [("fr", sides.flowrun_one), ("raw", sides.raw_one)]
            if c % 2:
                order.reverse()  # ABBA, so drift hits both sides alike
            w: dict[str, float] = {}
            p: dict[str, float] = {}
            for name, fn in order:
                gc.collect()
                with released() if name == "raw" else contextlib.nullcontext():
                    c0 = time.process_time()
                    t0 = time.perf_counter()
                    for _ in range(per_chunk):
                        fn()
                    w[name] = time.perf_counter() - t0
                    p[name] = time.process_time() - c0
            for name in w:
                wall[name] += w[name]
                cpu[name] += p[name]
            cpu_ratios.append(p["fr"] / p["raw"])
            wall_ratios.append(w["fr"] / w["raw"])
        gc.unfreeze()
        n = per_chunk * chunks
        # Gate: the median of the paired per-chunk wall-time ratios (each pair ran back to back, in
        # ABBA order, so a burst of load from another process hits one pair, not the median).
        # CPU time (process_time) is reported alongside; it ignores time the CPU was taken away.
        ratio = statistics.median(wall_ratios)
        out.append(
            ratio_row(
                cid,
                f"engine, {n:,} instances, {label}",
                wall["fr"],
                wall["raw"],
                TARGETS["engine"],
                f"wall time, median of {chunks} paired chunks",
                statistics.median(cpu_ratios),
                ratio,
                wall_ratio_of_totals=wall["fr"] / wall["raw"],
                cpu_ratio_of_totals=cpu["fr"] / cpu["raw"],
                cpu_s=cpu["fr"],
                reference_cpu_s=cpu["raw"],
                instances=n,
                flowrun_per_instance_ms=wall["fr"] / n * 1000,
                raw_per_instance_ms=wall["raw"] / n * 1000,
                wall_chunk_ratios=[round(r, 4) for r in wall_ratios],
                cpu_chunk_ratios=[round(r, 4) for r in cpu_ratios],
                user_tasks_per_instance=len(path),
                task_records_per_instance=nrec,
                diagram=file,
                path=path,
            )
        )
        log(
            f"  {cid} {label}: wall flowrun {wall['fr']:.3f}s raw {wall['raw']:.3f}s, median chunk ratio {ratio:.3f};"
            f" CPU {cpu['fr']:.3f}s vs {cpu['raw']:.3f}s, median chunk ratio {statistics.median(cpu_ratios):.3f}"
        )
    return out


# -- (d) storage ---------------------------------------------------------------------------


def _db_path(project_root: Path) -> Path:
    return project_root / ".flowrun" / "flowrun.db"


def _files_size(db: Path) -> tuple[int, int]:
    wal = Path(str(db) + "-wal")
    return db.stat().st_size, wal.stat().st_size if wal.exists() else 0


def bench_storage(roots: dict[str, Path]) -> dict[str, Any]:
    large_db, small_db = _db_path(roots["large"]), _db_path(roots["small"])
    main_l, wal_l = _files_size(large_db)
    main_s, wal_s = _files_size(small_db)
    con = sqlite3.connect(f"file:{large_db}?mode=ro", uri=True)
    try:
        n = con.execute("select count(*) from instances where status = 'running'").fetchone()[0]
        total_instances = con.execute("select count(*) from instances").fetchone()[0]
        avg_state, avg_data, max_state = con.execute(
            "select avg(length(state)), avg(length(data)), max(length(state)) from instances"
        ).fetchone()
        task_rows, task_payload = con.execute(
            "select count(*), avg(length(task_id) + length(bpmn_id) + length(name) + length(type)"
            " + ifnull(length(lane), 0)"
            " + length(status) + ifnull(length(ready_at), 0) + ifnull(length(started_at), 0)"
            " + ifnull(length(completed_at), 0) + ifnull(length(actor), 0) + ifnull(length(form), 0)) from tasks"
        ).fetchone()
        event_rows, event_payload = con.execute(
            "select count(*), avg(length(kind) + length(at) + ifnull(length(detail), 0)"
            " + ifnull(length(actor), 0)) from events"
        ).fetchone()
        models = con.execute("select sha256, length(spec) from models").fetchall()
        page_size = con.execute("pragma page_size").fetchone()[0]
        page_count = con.execute("pragma page_count").fetchone()[0]
        freelist = con.execute("pragma freelist_count").fetchone()[0]
        owner = {name: table for name, table in con.execute("select name, tbl_name from sqlite_master")}
        try:
            per_object = {
                name: int(size)
                for name, size in con.execute("select name, sum(pgsize) from dbstat group by name order by 2 desc")
            }
        except sqlite3.Error:  # SQLite built without the dbstat table
            per_object = {}
    finally:
        con.close()
    per_table: dict[str, int] = {}
    for name, size in per_object.items():
        table = owner.get(name, name)
        key = table if table == name else f"{table} indexes"
        per_table[key] = per_table.get(key, 0) + size
    total_l = main_l + wal_l
    total_s = main_s + wal_s
    return {
        "id": "d",
        "name": f"stored bytes per waiting instance ({n:,} waiting)",
        "instances": total_instances,
        "waiting_instances": n,
        "db_file_bytes": main_l,
        "wal_bytes": wal_l,
        "bytes_per_instance": total_l / total_instances,
        "marginal_bytes_per_instance": (total_l - total_s) / (total_instances - 10),
        "small_db_bytes": total_s,
        "avg_state_bytes": avg_state,
        "max_state_bytes": max_state,
        "avg_data_bytes": avg_data,
        "task_rows_per_instance": task_rows / total_instances,
        "avg_task_row_payload_bytes": task_payload,
        "event_rows_per_instance": event_rows / total_instances,
        "avg_event_row_payload_bytes": event_payload,
        "models_rows": len(models),
        "model_spec_bytes": [size for _, size in models],
        "page_size": page_size,
        "page_count": page_count,
        "freelist_pages": freelist,
        "bytes_by_object": per_object,
        "bytes_per_instance_by_table": {
            k: v / total_instances
            for k, v in sorted(per_table.items(), key=lambda kv: -kv[1])
            if v / total_instances >= 1
        },
    }


# -- profiles (--profile) -----------------------------------------------------------------

_PROFILE_CLI = """
import cProfile, sys
out = sys.argv[1]
pr = cProfile.Profile(); pr.enable()
try:
    from flowrun.cli.main import cli
    cli.main(args=sys.argv[2:], prog_name="flowrun", standalone_mode=False)
finally:
    pr.disable(); pr.dump_stats(out)
"""


def _importtime(argv: list[str], cwd: Path) -> dict[str, tuple[int, int]]:
    env = child_env()
    proc = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=cwd, env=env, capture_output=True, text=True)
    mods: dict[str, tuple[int, int]] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, self_us, cum_us, name = [p.strip() for p in line.replace("import time:", "|", 1).split("|")]
        mods[name] = (int(self_us), int(cum_us))
    return mods


def _pstats_text(prof: Path, sort: str, limit: int) -> str:
    import io
    import pstats

    buf = io.StringIO()
    st = pstats.Stats(str(prof), stream=buf)
    st.strip_dirs().sort_stats(sort).print_stats(limit)
    return buf.getvalue()


def _import_summary(title: str, mods: dict[str, tuple[int, int]], floor: dict[str, tuple[int, int]]) -> str:
    extra = {k: v for k, v in mods.items() if k not in floor}
    by_pkg: dict[str, int] = {}
    for name, (self_us, _) in extra.items():
        pkg = name.split(".")[0]
        by_pkg[pkg] = by_pkg.get(pkg, 0) + self_us
    lines = [
        f"== {title}: python -X importtime (self time, microseconds; inflated by the measurement)",
        f"modules imported: {len(mods)}; floor imports {len(floor)}; beyond the floor: {len(extra)}",
        f"self time of all imports {sum(v[0] for v in mods.values()) / 1000:.1f} ms;"
        f" floor {sum(v[0] for v in floor.values()) / 1000:.1f} ms;"
        f" beyond the floor {sum(v[0] for v in extra.values()) / 1000:.1f} ms",
        "beyond the floor, by top-level package:",
    ]
    for pkg, us in sorted(by_pkg.items(), key=lambda kv: -kv[1])[:25]:
        lines.append(f"  {us / 1000:8.1f} ms  {pkg}")
    lines.append("largest cumulative imports beyond the floor:")
    for name, (s, c) in sorted(extra.items(), key=lambda kv: -kv[1][1])[:25]:
        lines.append(f"  {c / 1000:8.1f} ms cum {s / 1000:7.1f} ms self  {name}")
    return "\n".join(lines) + "\n"


_MODULES_CLI = """
import json, sys
out = sys.argv[1]
try:
    from flowrun.cli.main import cli
    cli.main(args=sys.argv[2:], prog_name="flowrun", standalone_mode=False)
finally:
    with open(out, "w") as f:
        json.dump([m for m in sys.modules if m != "__main__"], f)
"""


def _decompose_do(root: Path, do_argv: Callable[[str], list[str]], runs: int) -> str:
    """Wall time of the floor, of the floor plus each extra package `do` imports, of every module
    `do` imports (no work) and of `do` itself: medians of interleaved runs."""
    from flowrun.app import inbox, start

    project = open_project(root)
    n = max(runs, 5) + 2
    for _ in range(n + 1 + 4):
        start(project, REENGINEERED)
    refs = [str(i.ref) for i in inbox(project) if i.task == "Task_RecordAndAssess"]
    mods_file = PROFILES / "a_do_modules.json"
    subprocess.run(
        [sys.executable, "-c", _MODULES_CLI, str(mods_file), *do_argv(refs.pop())[1:]],
        cwd=root,
        env=child_env(),
        capture_output=True,
        check=True,
    )
    do_mods = json.loads(mods_file.read_text())
    mods_file.unlink()
    floor_mods = set(
        json.loads(
            subprocess.run(
                [sys.executable, "-c", FLOOR_CODE + "; import sys, json; print(json.dumps(list(sys.modules)))"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    )
    extra = [m for m in do_mods if m not in floor_mods]
    groups = {
        "jsonschema (+referencing, attrs, rpds)": "jsonschema",
        "yaml": "yaml",
        "RestrictedPython": "RestrictedPython",
        "SpiffWorkflow serializer + camunda/dmn specs": (
            "SpiffWorkflow.bpmn.serializer, SpiffWorkflow.camunda.serializer"
        ),
        "sqlalchemy sqlite dialect": "sqlalchemy.dialects.sqlite",
        "flowrun's own modules (pulls in the above)": ", ".join(
            ["flowrun.cli.main"]
            + [
                m
                for m in extra
                if m.startswith("flowrun") and m != "flowrun.cli.main" and not m.startswith("flowrun.cli")
            ]
        ),
    }
    # flowrun.cli.main first: it registers the command modules (importing those first is circular)
    ordered = ["flowrun.cli.main"] + [m for m in extra if m != "flowrun.cli.main"]
    load_all = f"import importlib\nfor m in {ordered!r}:\n    importlib.import_module(m)\n"
    variants: dict[str, list[str] | None] = {"floor": [sys.executable, "-c", FLOOR_CODE]}
    for label, modules in groups.items():
        variants[f"floor + {label}"] = [sys.executable, "-c", f"{FLOOR_CODE}, {modules}"]
    variants[f"floor + every module `do` imports ({len(extra)} beyond the floor), no work"] = [
        sys.executable,
        "-c",
        FLOOR_CODE + "\n" + load_all,
    ]
    variants["flowrun do (the measured command)"] = None
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    order = list(variants.items())
    shuffle = random.Random(1234).shuffle
    for i in range(n):
        shuffle(order)  # no variant always runs right after the same other one
        for label, argv in order:
            sample = timed(argv if argv is not None else do_argv(refs.pop()), root)
            if i >= 2:
                times[label].append(sample)
    floor_w = statistics.median(w for w, _ in times["floor"])
    floor_c = statistics.median(c for _, c in times["floor"])
    lines = [
        f"== (a) decomposition of one `flowrun do`: medians of {n - 2} warm runs, variants in shuffled order",
        "   (each line is one process; differences below ~10 ms are within the noise of this machine)",
        "      wall time                          |  CPU time (user+sys)",
    ]
    for label, ts in times.items():
        w = statistics.median(x for x, _ in ts)
        c = statistics.median(x for _, x in ts)
        lines.append(
            f"  {w * 1000:7.1f} ms {w / floor_w:5.2f}x (+{(w - floor_w) * 1000:6.1f} ms) |"
            f" {c * 1000:7.1f} ms {c / floor_c:5.2f}x (+{(c - floor_c) * 1000:6.1f} ms)  {label}"
        )
    tops: dict[str, int] = {}
    for m in extra:
        tops[m.split(".")[0]] = tops.get(m.split(".")[0], 0) + 1
    lines.append(
        "  modules `do` imports beyond the floor, by package: "
        + ", ".join(f"{k} {v}" for k, v in sorted(tops.items(), key=lambda kv: -kv[1]))
    )
    lines.append("")
    lines.append(_do_work(root, ordered, [do_argv(refs.pop())[1:] for _ in range(4)]))
    return "\n".join(lines) + "\n"


_WORK_CLI = """
import cProfile, importlib, io, json, pstats, sys, time
mods, argvs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for m in mods:
    importlib.import_module(m)
from flowrun.cli.main import cli
times = []
for argv in argvs[:-1]:
    t0 = time.perf_counter()
    cli.main(args=argv, prog_name="flowrun", standalone_mode=False)
    times.append(time.perf_counter() - t0)
pr = cProfile.Profile()
pr.enable()
cli.main(args=argvs[-1], prog_name="flowrun", standalone_mode=False)
pr.disable()
buf = io.StringIO()
pstats.Stats(pr, stream=buf).strip_dirs().sort_stats("cumulative").print_stats(40)
sys.stderr.write(json.dumps({"times": times, "profile": buf.getvalue()}))
"""


def _do_work(root: Path, modules: list[str], argvs: list[list[str]]) -> str:
    """`flowrun do` in a process that has already imported every module it needs: the work alone."""
    proc = subprocess.run(
        [sys.executable, "-c", _WORK_CLI, json.dumps(modules), json.dumps(argvs)],
        cwd=root,
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    res = json.loads(proc.stderr[proc.stderr.index("{") :])
    times = ", ".join(f"{t * 1000:.1f}" for t in res["times"])
    return (
        "== (a) the work of `flowrun do` without imports (every module imported beforehand, same process):\n"
        f"   wall ms of {len(res['times'])} runs: {times} (the first also connects and compiles the SQL)\n"
        "   cProfile of one more run, cumulative:\n" + str(res["profile"])
    )


_TASKS_PHASES = """
import json, os, sys, time
from pathlib import Path
out = {}
t = time.perf_counter()
from flowrun.cli.main import cli
from flowrun.app import Project, inbox
from flowrun.config import find_project
from flowrun.cli.inbox_view import inbox_json
from flowrun.cli.render import _default
out["import flowrun.cli.main + flowrun.app"] = time.perf_counter() - t
t = time.perf_counter()
project = Project(find_project(explicit=Path(".")))
project.store
out["read flowrun.yaml + open the store"] = time.perf_counter() - t
t = time.perf_counter()
items = inbox(project)
out["app.inbox, first call (SQL compile, fetch, row dicts, InboxItems)"] = time.perf_counter() - t
t = time.perf_counter()
items = inbox(project)
out["app.inbox, second call"] = time.perf_counter() - t
with project.store.read() as tx:
    t = time.perf_counter()
    rows = tx.inbox()
    out["  of which Tx.inbox (SQLAlchemy execute + fetch + InboxRow per row)"] = time.perf_counter() - t
    t = time.perf_counter()
    raw = tx.conn.exec_driver_sql("select count(*) from tasks").fetchall()
    out["  (a count(*) over tasks, for scale)"] = time.perf_counter() - t
t = time.perf_counter()
js = inbox_json(items, project.settings.inbox_columns)
out["inbox_view.inbox_json (dicts with ISO times)"] = time.perf_counter() - t
t = time.perf_counter()
text = json.dumps(js, indent=2, default=_default, ensure_ascii=False)
out["json.dumps(indent=2) as echo_json does (pure-Python encoder)"] = time.perf_counter() - t
t = time.perf_counter()
compact = json.dumps(js, default=_default, ensure_ascii=False)
out["json.dumps without indent (C encoder), for comparison"] = time.perf_counter() - t
with open(os.devnull, "w") as f:
    t = time.perf_counter()
    f.write(text)
    out["write the text"] = time.perf_counter() - t
out["items"] = len(items)
out["json_bytes"] = len(text.encode())
print(json.dumps(out))
"""


def _tasks_phases(roots: dict[str, Path]) -> str:
    res = {}
    for key in ("small", "large"):
        proc = subprocess.run(
            [sys.executable, "-c", _TASKS_PHASES],
            cwd=roots[key],
            env=child_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        res[key] = json.loads(proc.stdout)
    lines = [
        "== (b) where `flowrun tasks --json` spends its time: phases timed in one process (wall, ms, not profiled)",
        f"  {'phase':<72} {res['small']['items']:>8} {res['large']['items']:>8}",
    ]
    for phase in res["small"]:
        if phase in ("items", "json_bytes"):
            continue
        lines.append(f"  {phase:<72} {res['small'][phase] * 1000:8.1f} {res['large'][phase] * 1000:8.1f}")
    lines.append(f"  {'JSON output bytes':<72} {res['small']['json_bytes']:8d} {res['large']['json_bytes']:8d}")
    return "\n".join(lines) + "\n\n"


_ENGINE_CASES = {
    "re-engineered": ("processes/complaint_reengineered.bpmn", "complaint_reengineered", REENGINEERED_DATA),
    "baseline": ("processes/complaint_baseline.bpmn", "complaint_baseline", BASELINE_DATA),
}


def _warm_up(sides: _EngineSides, rounds: int = 50) -> None:
    for _ in range(rounds):
        sides.flowrun_one()
    with sides.released():
        for _ in range(rounds):
            sides.raw_one()


def _engine_profiles(root: Path) -> str:
    """cProfile of both sides for both diagrams, flowrun's own functions, and an A/B of the sandbox."""
    import cProfile
    import io
    import pstats

    texts = []
    for case, (file, pid, data) in _ENGINE_CASES.items():
        sides = _EngineSides(root, file, pid, data)
        _warm_up(sides)
        for name, fn in (("flowrun engine", sides.flowrun_one), ("raw SpiffWorkflow", sides.raw_one)):
            with sides.released() if name.startswith("raw") else contextlib.nullcontext():
                pr = cProfile.Profile()
                pr.enable()
                for _ in range(300):
                    fn()
                pr.disable()
            buf = io.StringIO()
            st = pstats.Stats(pr, stream=buf)
            st.strip_dirs().sort_stats("tottime").print_stats(25)
            if name.startswith("flowrun"):
                buf.write("flowrun's own code and what it adds (cumulative):\n")
                st.sort_stats("cumulative").print_stats(r"runner.py|_spiff.py|sandbox.py|copy.py|signal.py|handlers.py")
            texts.append(f"== (c) {name}, 300 {case} instances: cProfile (under the profiler, times are inflated)\n")
            texts.append(buf.getvalue())
    texts.append(_sandbox_ab(root))
    return "\n".join(texts)


def _sandbox_ab(root: Path) -> str:
    """CPU per instance: raw, flowrun as is, and flowrun with conditions evaluated without the
    deep copy of the task data and without arming the CPU-limit timer (a diagnostic only)."""
    try:
        from flowrun.engine import sandbox

        compile_expression = sandbox.compile_expression
        scope_of = sandbox._scope
        builtins = sandbox._BUILTINS
        original = sandbox.evaluate
    except (ImportError, AttributeError) as exc:
        return f"== (c) sandbox A/B skipped: {exc}\n"

    def no_timer(source: str, data: Any, extra: Any = None) -> Any:
        return eval(compile_expression(source), scope_of(data, extra))  # noqa: S307 - the sandbox's own code

    def no_copy_no_timer(source: str, data: Any, extra: Any = None) -> Any:
        scope = {"__builtins__": builtins, **(extra or {}), **data}
        return eval(compile_expression(source), scope)  # noqa: S307 - the sandbox's own compiled code

    lines = ["== (c) what conditions cost in flowrun's sandbox: CPU ms per instance, medians of 12 rounds x 60"]
    for case, (file, pid, data) in _ENGINE_CASES.items():
        sides = _EngineSides(root, file, pid, data)
        variants: dict[str, tuple[Callable[[], Any], Callable[..., Any] | None]] = {
            "raw SpiffWorkflow": (sides.raw_one, None),
            "flowrun as is (copy of the data + limits per step)": (sides.flowrun_one, original),
            "flowrun, conditions without the CPU-limit timer": (sides.flowrun_one, no_timer),
            "flowrun, conditions without deep copy and timer": (sides.flowrun_one, no_copy_no_timer),
        }
        res: dict[str, list[float]] = {k: [] for k in variants}
        try:
            _warm_up(sides)
            for _ in range(12):
                for label, (fn, evaluate) in variants.items():
                    if evaluate is not None:
                        sandbox.evaluate = evaluate
                    gc.collect()
                    with sides.released() if evaluate is None else contextlib.nullcontext():
                        t0 = time.process_time()
                        for _ in range(60):
                            fn()
                        res[label].append((time.process_time() - t0) / 60 * 1000)
        finally:
            sandbox.evaluate = original
        raw = statistics.median(res["raw SpiffWorkflow"])
        lines.append(f"  {case}:")
        for label, xs in res.items():
            med = statistics.median(xs)
            lines.append(f"    {med:7.3f} ms  {med / raw:6.3f}x raw  {label}")
    return "\n".join(lines) + "\n"


# -- (e) what the per-step limits cost ------------------------------------------------------


class _Unarmed:
    """A stand-in for ``sandbox.limits`` that arms nothing."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def bench_limits(project_root: Path, instances: int, rounds: int = 12) -> str:
    """CPU per instance with the step limits unarmed, armed in process, and armed as under the supervisor."""
    import mmap

    from flowrun.engine import sandbox, step_limits

    armed = sandbox.limits
    with armed():  # install once (handler, memory ceiling), as the first step of a process does
        pass
    steps = {"n": 0}

    class _Counted(armed):  # type: ignore[misc, valid-type]
        def __enter__(self) -> None:
            steps["n"] += 1
            super().__enter__()

    supervisor = step_limits._Supervisor(mmap.mmap(-1, mmap.PAGESIZE))  # the child's side of the shared page
    variants: dict[str, tuple[Any, Any]] = {
        "unarmed": (_Unarmed, None),
        "in process: SIGPROF timer": (armed, None),
        "supervised: timer + RLIMIT_CPU + page": (armed, supervisor),
    }
    lines = [f"== (e) per-step limits: CPU per instance, medians of {rounds} rounds x {instances}"]
    saved = step_limits._SUPERVISOR[:]
    module: Any = sandbox
    try:
        for case, (file, pid, data) in _ENGINE_CASES.items():
            sides = _EngineSides(project_root, file, pid, data)
            module.limits = _Counted  # the runner calls sandbox.limits() per step
            steps["n"] = 0
            sides.flowrun_one()
            per_instance = steps["n"]
            for _ in range(20):
                sides.flowrun_one()
            res: dict[str, list[float]] = {k: [] for k in variants}
            for r in range(rounds):
                order = list(variants.items())
                if r % 2:
                    order.reverse()
                for label, (limits, watcher) in order:
                    module.limits = limits
                    step_limits._SUPERVISOR[:] = [watcher]
                    gc.collect()
                    t0 = time.process_time()
                    for _ in range(instances):
                        sides.flowrun_one()
                    res[label].append((time.process_time() - t0) / instances)
            base = statistics.median(res["unarmed"])
            lines.append(f"  {case} ({per_instance} limited steps per instance):")
            for label, xs in res.items():
                med = statistics.median(xs)
                per_step_us = (med - base) / per_instance * 1e6
                lines.append(
                    f"    {med * 1000:7.3f} ms  {med / base:6.3f}x unarmed  {per_step_us:+6.1f} us/step  {label}"
                )
    finally:
        module.limits = armed
        step_limits._SUPERVISOR[:] = saved
    return "\n".join(lines) + "\n"


def write_profiles(
    do_res: dict[str, Any] | None, tasks_roots: dict[str, Path] | None, engine_root: Path | None
) -> list[str]:
    PROFILES.mkdir(exist_ok=True)
    written = []
    floor = _importtime(["-c", FLOOR_CODE], REPO)
    if do_res is not None:
        from flowrun.app import inbox, start

        root = do_res["_project"]
        project = open_project(root)
        for _ in range(2):
            start(project, REENGINEERED)
        refs = [str(i.ref) for i in inbox(project) if i.task == "Task_RecordAndAssess"]
        argv_do = do_res["_profile_args"](refs[0])[1:]
        mods = _importtime(["-m", "flowrun", *argv_do], root)
        prof = PROFILES / "a_do.prof"
        argv2 = do_res["_profile_args"](refs[1])[1:]
        subprocess.run(
            [sys.executable, "-c", _PROFILE_CLI, str(prof), *argv2],
            cwd=root,
            env=child_env(),
            capture_output=True,
            check=True,
        )
        text = _decompose_do(root, do_res["_profile_args"], do_res["flowrun"]["runs"])
        text += "\n" + _import_summary("(a) flowrun do", mods, floor)
        text += "\n== (a) flowrun do: cProfile, cumulative\n" + _pstats_text(prof, "cumulative", 60)
        text += "\n== (a) flowrun do: cProfile, own time\n" + _pstats_text(prof, "tottime", 30)
        (PROFILES / "a_do.txt").write_text(text, encoding="utf-8")
        written.append("benchmarks/profiles/a_do.txt")
    if tasks_roots is not None:
        parts = []
        for key in ("small", "large"):
            prof = PROFILES / f"b_tasks_{key}.prof"
            subprocess.run(
                [sys.executable, "-c", _PROFILE_CLI, str(prof), "tasks", "--json"],
                cwd=tasks_roots[key],
                env=child_env(),
                capture_output=True,
                check=True,
            )
            parts.append(
                f"== (b) flowrun tasks --json, {key} project: cProfile, cumulative\n"
                + _pstats_text(prof, "cumulative", 45)
            )
            parts.append(
                f"== (b) flowrun tasks --json, {key} project: cProfile, own time\n" + _pstats_text(prof, "tottime", 25)
            )
        (PROFILES / "b_tasks.txt").write_text(_tasks_phases(tasks_roots) + "\n".join(parts), encoding="utf-8")
        written.append("benchmarks/profiles/b_tasks.txt")
    if engine_root is not None:
        (PROFILES / "c_engine.txt").write_text(_engine_profiles(engine_root), encoding="utf-8")
        written.append("benchmarks/profiles/c_engine.txt")
    for prof in PROFILES.glob("*.prof"):  # the text summaries above are what we keep
        prof.unlink()
    return written


# -- report --------------------------------------------------------------------------------


def print_table(measurements: list[dict[str, Any]], storage: dict[str, Any] | None) -> None:
    rows: list[tuple[str, ...]] = [TABLE_HEAD]
    for m in measurements:
        if "error" in m:
            rows.append((m["id"], m["name"], "-", "-", "-", f"<= {m['target']:.2f}x", "FAIL (error)", "-", "-"))
            continue
        other = f"CPU {m['cpu_ratio']:.3f}x"
        rows.append(
            (
                m["id"],
                m["name"],
                _fmt_s(m["value_s"]),
                _fmt_s(m["reference_s"]),
                f"{m['ratio']:.3f}x",
                f"<= {m['target']:.2f}x",
                "PASS" if m["pass"] else "FAIL",
                m.get("basis", ""),
                other,
            )
        )
    if storage is not None:
        rows.append(
            (
                "d",
                storage["name"],
                f"{storage['bytes_per_instance']:,.0f} B",
                f"spec {storage['model_spec_bytes'][0]:,} B x{storage['models_rows']}"
                if storage["model_spec_bytes"]
                else "-",
                "-",
                "(report)",
                "-",
                "file size / instances",
                "-",
            )
        )
    print_aligned(rows)


def _fmt_s(s: float) -> str:
    return f"{s * 1000:.1f} ms" if s < 10 else f"{s:.2f} s"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def print_details(
    measurements: list[dict[str, Any]], storage: dict[str, Any] | None, seeding: dict[str, Any] | None
) -> None:
    print()
    for m in measurements:
        mid = m["id"]
        if "error" in m:
            print(f"({mid}) error: {m['error']}")
            continue
        if mid in ("a", "b"):
            f, r = m["flowrun"], m["reference"]
            print(
                f"({mid}) wall, median of {f['runs']}: {_ms(f['median_s'])}"
                f" (min {_ms(f['min_s'])}, max {_ms(f['max_s'])})"
                f" vs {_ms(r['median_s'])} (min {_ms(r['min_s'])}, max {_ms(r['max_s'])})"
            )
            print(
                f"    CPU (user+sys), median: {_ms(f['cpu_median_s'])} vs {_ms(r['cpu_median_s'])}"
                f" = {m['cpu_ratio']:.3f}x"
            )
        else:
            cr, wr = m["cpu_chunk_ratios"], m["wall_chunk_ratios"]
            print(
                f"({mid}) {m['instances']:,} instances, wall: flowrun {m['flowrun_per_instance_ms']:.3f} ms/instance,"
                f" raw SpiffWorkflow {m['raw_per_instance_ms']:.3f} ms/instance"
            )
            print(
                f"    wall ratio: median of {len(wr)} paired chunks {m['ratio']:.3f}x"
                f" (range {min(wr):.3f}-{max(wr):.3f}), totals {m['wall_ratio_of_totals']:.3f}x"
            )
            print(
                f"    CPU: {_ms(m['cpu_s'])} vs {_ms(m['reference_cpu_s'])}, median of chunks {m['cpu_ratio']:.3f}x"
                f" (range {min(cr):.3f}-{max(cr):.3f}), totals {m['cpu_ratio_of_totals']:.3f}x"
            )
        if mid == "a" and "seeding" in m:
            sd = m["seeding"]
            print(
                f"    seeding {sd['instances']} instances: first start {_ms(sd['first_start_s'])} (parses and stores"
                f" the model), then {sd['per_instance_ms']:.2f} ms each ({sd['mode']})"
            )
        if mid == "b" and seeding:
            sd = seeding["large"]
            print(
                f"    seeding {sd['instances']:,} waiting instances: {sd['seconds']:.1f} s in all,"
                f" {sd['per_instance_ms']:.2f} ms per start after the first ({sd['mode']})"
            )
    if storage:
        st = storage
        specs = ", ".join(f"{b:,} B" for b in st["model_spec_bytes"])
        print(
            f"(d) {st['db_file_bytes']:,} B database file (+{st['wal_bytes']:,} B WAL)"
            f" for {st['instances']:,} instances:"
            f" {st['bytes_per_instance']:,.0f} B/instance (marginal {st['marginal_bytes_per_instance']:,.0f} B)"
        )
        print(
            f"    instances.state avg {st['avg_state_bytes']:,.0f} B (max {st['max_state_bytes']:,}),"
            f" instances.data avg {st['avg_data_bytes']:,.0f} B"
        )
        print(
            f"    {st['task_rows_per_instance']:.1f} task rows/instance"
            f" (payload avg {st['avg_task_row_payload_bytes']:.0f} B),"
            f" {st['event_rows_per_instance']:.1f} event rows/instance"
            f" (payload avg {st['avg_event_row_payload_bytes']:.0f} B)"
        )
        print(f"    models: {st['models_rows']} row(s), spec {specs} (stored once, not per instance)")
        by_table = ", ".join(f"{k} {v:,.0f}" for k, v in st["bytes_per_instance_by_table"].items())
        print(f"    bytes per instance by table (dbstat): {by_table}")


def machine_info() -> dict[str, Any]:
    return _common.machine_info(
        ("flowrun", "SpiffWorkflow", "SQLAlchemy", "click", "rich", "RestrictedPython", "jsonschema")
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 runs per command instead of 15")
    ap.add_argument("--profile", action="store_true", help="also write profiles to benchmarks/profiles/")
    ap.add_argument("--only", default="abcd", help="which benchmarks to run, e.g. 'ac' (d needs b)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary projects and print where they are")
    ap.add_argument(
        "--save",
        type=Path,
        metavar="PATH",
        help="write the results as JSON to PATH (nothing is written without it; benchmarks/results.json is tracked)",
    )
    ap.add_argument("--instances", type=int, default=10_000, help="waiting instances for (b)/(d) (default 10000)")
    ap.add_argument(
        "--seed-plain",
        action="store_true",
        help="seed (b) with app.start's own transactions per instance (as `flowrun start`), not one commit per 500",
    )
    ap.add_argument("--engine-instances", type=int, default=1_000, help="instances per side for (c) (default 1000)")
    args = ap.parse_args(argv)
    _common.ensure_venv_python(__file__)
    runs = 5 if args.quick else 15
    warmup = 2
    only = set(args.only)
    if "d" in only:
        only.add("b")
    t_start = time.perf_counter()
    info = machine_info()
    work = Path(tempfile.mkdtemp(prefix="flowrun-bench-"))
    measurements: list[dict[str, Any]] = []
    storage = None
    seeding = None
    do_res = None
    tasks_roots = None
    try:
        log(f"flowrun benchmarks ({'quick' if args.quick else 'full'}: {runs} runs per command) in {work}")
        do_root = init_project(work / "proj_do")
        check_form_data(do_root)
        if "c" in only:
            log(f"(c) engine layer vs raw SpiffWorkflow, {args.engine_instances:,} instances per diagram ...")
            try:
                measurements += bench_engine(do_root, args.engine_instances, chunks=20)
            except Exception as exc:  # noqa: BLE001
                measurements.append(error_row("c", "engine vs raw SpiffWorkflow", TARGETS["engine"], exc))
        if "a" in only:
            log(f"(a) flowrun do vs import floor, {runs} runs each ...")
            try:
                do_res = bench_do(work, runs, warmup)
                measurements.insert(0, do_res)
            except Exception as exc:  # noqa: BLE001
                measurements.insert(
                    0,
                    error_row("a", "flowrun do vs import floor", TARGETS["do"], exc),
                )
        if "b" in only:
            log(f"(b) flowrun tasks --json, 10 vs {args.instances:,} waiting instances, {runs} runs each ...")
            try:
                tasks_res, tasks_roots = bench_tasks(work, runs, warmup, args.instances, 0 if args.seed_plain else 500)
                seeding = tasks_res["seeding"]
                idx = 1 if measurements and measurements[0]["id"] == "a" else 0
                measurements.insert(idx, tasks_res)
                if "d" in only:
                    storage = bench_storage(tasks_roots)
            except Exception as exc:  # noqa: BLE001
                measurements.append(error_row("b", "flowrun tasks --json", TARGETS["tasks"], exc))
        limits_text = ""
        if "e" in only:
            log("(e) per-step limits: unarmed vs armed, in process and supervised ...")
            limits_text = bench_limits(do_root, 20 if args.quick else 60)
        profiles: list[str] = []
        if args.profile:
            log("writing profiles ...")
            profiles = write_profiles(do_res, tasks_roots, do_root if "c" in only else None)
        elapsed = time.perf_counter() - t_start
        print()
        print(
            f"flowrun benchmarks - {'quick' if args.quick else 'full'} run, {info['cpus']} CPUs,"
            f" Python {info['python']}, SQLite {info['sqlite']}"
        )
        print_table(measurements, storage)
        print_details(measurements, storage, seeding)
        if limits_text:
            print("\n" + limits_text)
        print(
            f"\ntotal time {elapsed:.1f} s"
            + (f"; results in {args.save}" if args.save else "")
            + (f"; profiles: {', '.join(profiles)}" if profiles else "")
        )
        info["loadavg_end"] = os.getloadavg()
        clean = [{k: v for k, v in m.items() if not k.startswith("_")} for m in measurements]
        results = {
            "mode": "quick" if args.quick else "full",
            "runs_per_command": runs,
            "warmup_runs": warmup,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "elapsed_s": round(elapsed, 2),
            "machine": info,
            "measurements": clean,
            "storage": storage,
            "all_pass": all(m.get("pass") for m in measurements),
            "profiles": profiles,
        }
        if args.save:
            save_results(args.save, results)
        return 0 if results["all_pass"] else 1
    finally:
        if args.keep:
            log(f"kept the projects in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
