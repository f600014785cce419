"""The use cases: what an operator, a designer or a script can do with a project.

Each function takes a :class:`Project`, does one whole step in one store
transaction (all of it is saved, or nothing), and returns flowrun dataclasses.
The CLI only parses arguments, calls these and renders the result; tests call
them directly.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowrun import forms
from flowrun.clock import Clock, clock_from_env, iso
from flowrun.config import Settings
from flowrun.errors import (
    AmbiguousIdError,
    ConflictError,
    DataError,
    FlowrunError,
    FormError,
    NotFoundError,
    ProjectError,
    StateError,
)
from flowrun.models import (
    COMPLETED,
    INSTANCE_COMPLETED,
    INSTANCE_ERROR,
    READY,
    RUNNING,
    STARTED,
    WAITING,
    Form,
    InboxItem,
    InstanceRecord,
    InstanceView,
    ProcessEntry,
    ServicePolicy,
    TaskRecord,
)

if TYPE_CHECKING:
    from flowrun.engine import Engine, Run
    from flowrun.handlers import Registry
    from flowrun.store import SqlStore, Tx


@dataclass
class Project:
    """A project's settings, clock and (lazily opened) store and engine."""

    settings: Settings
    clock: Clock = field(default_factory=clock_from_env)

    @cached_property
    def store(self) -> SqlStore:
        from flowrun.store import SqlStore

        return SqlStore(self.settings.database_url)

    @cached_property
    def registry(self) -> Registry:
        from flowrun.handlers import Registry

        return Registry(self.settings.services, self.settings.root)

    @cached_property
    def engine(self) -> Engine:
        from flowrun.engine import Engine
        from flowrun.handlers import once_per_step

        policies = self.settings.service_policies
        return Engine(self.clock, once_per_step(self.registry.call), lambda topic: policies.get(topic, ServicePolicy()))

    def close(self) -> None:
        """Close the database connections the project keeps open (if it opened any)."""
        store = self.__dict__.get("store")
        if store is not None:
            store.close()


# -- project ---------------------------------------------------------------------

EXAMPLE_FILES = ("flowrun.yaml", "complaint_services.py", "processes", "forms")


def example_dir() -> Path:
    """Where the shipped example lives: inside the installed package, or the source checkout."""
    packaged = Path(__file__).parent / "example"
    if (packaged / "flowrun.yaml").is_file():
        return packaged
    return Path(__file__).resolve().parent.parent


def init_project(dest: Path) -> list[str]:
    """Create a project in ``dest`` with the shipped complaint-handling example.

    Raises:
        ProjectError: ``dest`` already holds a ``flowrun.yaml``.
    """
    if (dest / "flowrun.yaml").exists():
        raise ProjectError(f"{dest} already has a flowrun.yaml; choose an empty folder")
    src = example_dir()
    dest.mkdir(parents=True, exist_ok=True)
    created = []
    for name in EXAMPLE_FILES:
        source = src / name
        target = dest / name
        if source.is_dir():
            target.mkdir(exist_ok=True)
            for item in sorted(source.iterdir()):
                if item.is_file() and not (target / item.name).exists():
                    shutil.copyfile(item, target / item.name)
                    created.append(f"{name}/{item.name}")
        elif source.is_file() and not target.exists():
            shutil.copyfile(source, target)
            created.append(name)
    return created


def list_processes(project: Project) -> list[ProcessEntry]:
    """Families and variants named in ``flowrun.yaml``, then other ``.bpmn`` files in processes/."""
    s = project.settings
    out = []
    named = set()
    for family, variants in s.families.items():
        for variant, file in variants.items():
            path = (s.root / file).resolve()
            named.add(path)
            out.append(ProcessEntry(family, variant, s.rel(path), path.is_file(), True))
    if s.processes_dir.is_dir():
        for path in sorted(s.processes_dir.iterdir()):
            if _is_bpmn(path) and path.resolve() not in named:
                out.append(ProcessEntry(_stem(path), "default", s.rel(path), True, False))
    return out


def _is_bpmn(path: Path) -> bool:
    return path.is_file() and (path.suffix.lower() == ".bpmn" or path.name.endswith(".bpmn20.xml"))


def _stem(path: Path) -> str:
    return path.name.removesuffix(".bpmn20.xml").removesuffix(".bpmn")


def resolve_process(project: Project, target: str) -> tuple[str, str, Path]:
    """``FAMILY[:VARIANT]`` or a file (path, or name in processes/) -> (family, variant, path).

    Raises:
        NotFoundError: nothing by that name; the message lists what exists.
    """
    s = project.settings
    family, _, variant = target.partition(":")
    if family in s.families:
        variants = s.families[family]
        if not variant:
            if len(variants) == 1:
                variant = next(iter(variants))
            else:
                choices = ", ".join(f"{family}:{v}" for v in variants)
                raise NotFoundError(f"process family '{family}' has several variants; say which: {choices}")
        if variant not in variants:
            raise NotFoundError(f"process family '{family}' has no variant '{variant}'; it has {', '.join(variants)}")
        return family, variant, s.root / variants[variant]
    for candidate in (Path(target), s.root / target, s.processes_dir / target, s.processes_dir / f"{target}.bpmn"):
        if _is_bpmn(candidate):
            for fam, variants in s.families.items():
                for var, file in variants.items():
                    if (s.root / file).resolve() == candidate.resolve():
                        return fam, var, candidate
            return _stem(candidate), "default", candidate
    known = ", ".join(sorted({e.family for e in list_processes(project)})) or "none"
    raise NotFoundError(
        f"no process '{target}': not a family in flowrun.yaml nor a .bpmn file (families and files: {known}); "
        "see 'flowrun processes'"
    )


# -- starting and stepping -------------------------------------------------------


@dataclass(frozen=True)
class StepResult:
    """What one start or completion did: the instance's status and its ready tasks."""

    instance: str
    status: str
    ready: list[TaskRecord]
    completed: list[TaskRecord]


def start(project: Project, target: str, data: Mapping[str, Any] | None = None, pilot: str | None = None) -> StepResult:
    """Start an instance of a process and run its automated steps until the first wait."""
    family, variant, path = resolve_process(project, target)
    s = project.settings
    display = s.rel(path)
    store = project.store
    sha = _file_sha(path, display)
    with store.read(snapshot=False) as tx:
        spec = _stored_spec(tx, sha)
    process_id = None
    if spec is None:
        from flowrun.engine import load_model

        info = load_model(path, display, s.processes_dir if path.parent == s.processes_dir else None)
        spec, sha, process_id = info.spec, info.sha256, info.process_id
    instance_id = uuid.uuid4().hex
    run = project.engine.start(spec, dict(data or {}), key=sha, source=display, instance_id=instance_id)
    now = project.clock.now()
    records = run.drain()
    rec = InstanceRecord(
        id=instance_id,
        family=family,
        variant=variant,
        file=display,
        sha256=sha,
        process_id=process_id or "",
        pilot=pilot,
        status=INSTANCE_COMPLETED if run.completed else RUNNING,
        created_at=now,
        ended_at=now if run.completed else None,
        version=1,
        data=_jsonable(run.data()),
        state="",
    )
    rec.state = _verified_snapshot(project, run, rec)
    with store.write() as tx:
        if process_id is not None:
            tx.ensure_model(sha, process_id, display, spec, now)
        else:
            rec.process_id = tx.model_process_id(sha)
        tx.insert_instance(rec, now)
        tx.save_tasks(rec.id, records)
        events = [_event(rec.id, None, now, "instance_started", None, {"pilot": pilot, "variant": variant})]
        events += _task_events(rec.id, records)
        if run.completed:
            events.append(_event(rec.id, None, now, "instance_completed", None, None))
        tx.add_events(events)
    return _result(rec.id, rec.status, records)


def _file_sha(path: Path, display: str) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise NotFoundError(f"cannot read {display}: {exc.strerror}") from None


def _stored_spec(tx: Tx, sha: str) -> str | None:
    return tx.model_spec(sha) if tx.has_model(sha) else None


def task_form(project: Project, task: TaskRecord) -> Form | None:
    """The form a user task asks for (None when it has none)."""
    s = project.settings
    try:
        return forms.resolve_form(task.form, s.forms_dir, s.root)
    except FormError as exc:
        raise FormError(f"task {task.ref} ({task.name}): {exc}") from None


def get_task(project: Project, ref: str) -> TaskRecord:
    """A task by its ref number (as the inbox shows it)."""
    text = ref.strip().lstrip("#")
    if not text.isdigit():
        raise NotFoundError(f"'{ref}' is not a task ref; refs are the numbers 'flowrun tasks' shows")
    with project.store.read(snapshot=False) as tx:
        task = tx.task_by_ref(int(text))
    if task is None:
        raise NotFoundError(f"no task with ref {text}; see 'flowrun tasks' for the open ones")
    return task


def _check_open(task: TaskRecord) -> None:
    if task.status == COMPLETED:
        who = task.actor or "someone"
        raise ConflictError(f"task {task.ref} ({task.name}) was already completed by {who} at {iso(task.completed_at)}")
    if (task.waits_for or "").startswith("imported:"):
        raise StateError(
            f"task {task.ref} ({task.name}) belongs to a case imported from an event log; "
            "imported cases are for comparison and cannot be worked on"
        )
    if task.status not in (READY, STARTED):
        raise StateError(f"task {task.ref} ({task.name}) is {task.status}; only ready tasks can be worked on")
    if task.type not in ("userTask", "manualTask"):
        raise StateError(f"task {task.ref} ({task.name}) is a {task.type}, which runs by itself")


def claim(project: Project, ref: str, actor: str | None) -> TaskRecord:
    """Record that ``actor`` started work on a ready task (so touch time is measured)."""
    task = get_task(project, ref)
    _check_open(task)
    if task.status == STARTED:
        if task.actor == actor or actor is None:
            return task
        raise ConflictError(
            f"task {task.ref} ({task.name}) was already claimed by {task.actor} at {iso(task.started_at)}"
        )
    now = project.clock.now()
    with project.store.write() as tx:
        if not tx.claim(int(task.ref or 0), actor, now):
            fresh = tx.task_by_ref(int(task.ref or 0))
            if fresh is not None:
                _check_open(fresh)
                raise ConflictError(f"task {task.ref} ({task.name}) was claimed by {fresh.actor} just now")
        tx.add_events([_event(task.instance_id or "", task.ref, now, "started", actor, None)])
    task.status, task.actor, task.started_at = STARTED, actor, now
    return task


def complete(
    project: Project,
    ref: str,
    data: Mapping[str, Any],
    actor: str | None = None,
    text: Mapping[str, str] | None = None,
) -> StepResult:
    """Complete a user task with ``data`` (validated against its form first) and run on.

    Args:
        data: field values, already typed (from a JSON/YAML file or a program).
        text: field values as typed on the command line (``--data k=v``), converted to
            the types the form asks for and merged over ``data``.

    Raises:
        DataError: the data does not fit the form; nothing is changed.
        ConflictError: someone completed the task first (exit code 3).
    """
    task = get_task(project, ref)
    _check_open(task)
    form = task_form(project, task)
    values = dict(data)
    if text:
        values.update(forms.coerce(form, text))
    values = forms.validate(form, values, f"task {task.ref}, {task.name}")
    now = project.clock.now()

    def check(tx: Tx, inst: InstanceRecord) -> TaskRecord:
        # The task is read after its instance: if someone completes it in between, this
        # sees it completed; otherwise the instance read is no older than the task.
        fresh = tx.task_by_ref(int(task.ref or 0))
        if fresh is None:
            raise NotFoundError(f"task {task.ref} disappeared")
        _check_open(fresh)
        return fresh

    def act(run: Run, inst: InstanceRecord, fresh: TaskRecord) -> bool:
        started = fresh.started_at if fresh.status == STARTED else None
        run.complete(fresh.task_id, values, actor or fresh.actor, started)
        return True

    done = _step(
        project,
        task.instance_id or "",
        act,
        f"task {task.ref} was being completed",
        now,
        check=check,
        data_for=task.task_id,
        data=values,
    )
    assert done is not None
    inst, records = done
    return _result(inst.id, inst.status, records)


#: How often a step is run again because someone else changed its instance meanwhile.
_STEP_ATTEMPTS = 10

#: Returned by a step's ``check`` when the step no longer applies (nothing is saved).
_SKIP: Any = object()


def _step(
    project: Project,
    instance_id: str,
    act: Callable[[Run, InstanceRecord, Any], bool],
    doing: str,
    now: datetime,
    check: Callable[[Tx, InstanceRecord], Any] | None = None,
    finish: Callable[[Tx, InstanceRecord, Any], None] | None = None,
    data_for: str | None = None,
    data: Any = None,
) -> tuple[InstanceRecord, list[TaskRecord]] | None:
    """Run one engine step on an instance and save it, holding no lock while the engine runs.

    1. A read transaction reads the instance and calls ``check(tx, inst)``, which
       raises when the step no longer applies (say, the task was completed by
       someone else: ConflictError), returns :data:`_SKIP` to do nothing, or returns
       a value handed on to ``act`` and ``finish``.
    2. Outside any transaction, ``act(run, inst, value)`` runs the engine (service
       handlers included); False means there is nothing to save. The new state is
       snapshotted and loaded back to prove it loadable.
    3. A short write transaction saves the state only if the instance's version is
       still the one read (a conditional update), with its task rows, incidents
       and events, and whatever ``finish(tx, inst, value)`` writes.

    If someone changed the instance between 1 and 3, the step is run again on the
    fresh state; service calls repeated that way are answered from the first call
    (:func:`flowrun.handlers.step_memo`). So a slow service call or a long script
    never holds up other operators, and SQLite's single write lock is held only
    for the writes.

    Returns:
        The saved instance and its changed task records; None when nothing was saved.
    """
    from flowrun.handlers import step_memo

    engine = project.engine
    with step_memo():
        for _ in range(_STEP_ATTEMPTS):
            with project.store.read(snapshot=False) as tx:  # reads ordered: instance first, see check
                inst = tx.get_instance(instance_id, with_state=True)
                if inst is None:
                    raise NotFoundError(f"instance {instance_id[:8]} is missing")
                value = check(tx, inst) if check is not None else None
                if value is _SKIP:
                    return None
                spec = None if engine.knows(inst.sha256) else tx.model_spec(inst.sha256)
            run = _restore(project, spec, inst)
            if not act(run, inst, value):
                return None
            version = inst.version
            pending = _prepare(project, run, inst, now)
            with project.store.write() as tx:
                if not tx.update_instance(inst, version, now):
                    continue  # changed by someone else meanwhile: run the step again on the new state
                _write(tx, inst, pending, now, data_for, data)
                if finish is not None:
                    finish(tx, inst, value)
            return inst, pending.records
    raise ConflictError(
        f"instance {instance_id[:8]} kept being changed by others while {doing}; check 'flowrun show' and try again"
    )


def _restore(project: Project, spec: str | None, inst: InstanceRecord) -> Run:
    if not inst.state:
        raise StateError(f"instance {inst.id[:8]} has no engine state (an imported case cannot be run)")
    run = project.engine.restore(spec, inst.state, key=inst.sha256, source=inst.file)
    run.instance_id = inst.id
    return run


@dataclass
class _Pending:
    """A step's results, prepared outside the write transaction."""

    records: list[TaskRecord]
    failed: list[dict[str, Any]]
    completed: bool


def _prepare(project: Project, run: Run, inst: InstanceRecord, now: datetime) -> _Pending:
    """Drain the run into ``inst`` (state proven loadable, data, status) and its records."""
    records = run.drain()
    inst.state = _verified_snapshot(project, run, inst)
    inst.data = _jsonable(run.data())
    failed = run.drain_incidents()
    if run.completed:
        inst.status, inst.ended_at = INSTANCE_COMPLETED, now
    elif failed:
        inst.status = INSTANCE_ERROR
        inst.error = f"{failed[-1]['error_type']}: {failed[-1]['message']}"
    return _Pending(records, failed, run.completed)


def _write(
    tx: Tx, inst: InstanceRecord, pending: _Pending, now: datetime, data_for: str | None = None, data: Any = None
) -> None:
    """Write a step's task rows, incidents and events (the instance row is already updated)."""
    records = pending.records
    tx.save_tasks(inst.id, records)
    refs = {r.task_id: r.ref for r in records}
    for f in pending.failed:
        tx.open_incident(
            inst.id, refs.get(f["task_id"]), f["task_id"], f["topic"], f["error_type"], f["message"], f["attempts"], now
        )
    events = _task_events(inst.id, records, data_for=data_for, data=data)
    if pending.completed:
        events.append(_event(inst.id, None, now, "instance_completed", None, None))
    tx.add_events(events)


def _verified_snapshot(project: Project, run: Run, inst: InstanceRecord) -> str:
    """The run's state, proven loadable by loading it back before anything is written."""
    state = run.snapshot()
    try:
        project.engine.verify(state, inst.sha256)
    except FlowrunError as exc:
        raise DataError(f"the instance could not be loaded back after this step ({exc}); nothing was saved") from None
    return state


def _result(instance_id: str, status: str, records: list[TaskRecord]) -> StepResult:
    return StepResult(
        instance=instance_id,
        status=status,
        ready=[r for r in records if r.status == READY and r.type in ("userTask", "manualTask")],
        completed=[r for r in records if r.status == COMPLETED],
    )


def _event(
    instance_id: str, ref: int | None, at: datetime, kind: str, actor: str | None, detail: Any
) -> dict[str, Any]:
    return {"instance_id": instance_id, "task_ref": ref, "at": at, "kind": kind, "actor": actor, "detail": detail}


def _task_events(
    instance_id: str, records: list[TaskRecord], data_for: str | None = None, data: Any = None
) -> list[dict[str, Any]]:
    out = []
    for r in records:
        at = r.completed_at or r.started_at or r.ready_at
        if at is None:
            continue
        detail: dict[str, Any] = {"task": r.bpmn_id, "name": r.name}
        if data_for is not None and r.task_id == data_for:
            detail["data"] = _jsonable(data)
        out.append(_event(instance_id, r.ref, at, r.status, r.actor, detail))
    return out


def _jsonable(data: Any) -> Any:
    import json

    return json.loads(json.dumps(data, default=str))


# -- timers and messages ---------------------------------------------------------


@dataclass
class WorkerPass:
    """What one worker pass did: instances whose timers fired, and instances that failed."""

    fired: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    ready: list[TaskRecord] = field(default_factory=list)


def run_due(project: Project, limit: int = 100, worker: str | None = None, lease_s: float = 60.0) -> WorkerPass:
    """Fire due timers and run due service jobs, one instance per transaction.

    The due work is first claimed under a lease (``SELECT ... FOR UPDATE SKIP LOCKED``
    on PostgreSQL), so several workers share it without doing anything twice; a
    worker that dies loses its lease after ``lease_s`` and another takes over. A
    step that fails becomes an incident on its instance (status ``error``), which
    ``flowrun retry`` resumes once the cause is fixed; the other instances go on.
    """
    now = project.clock.now()
    owner = worker or f"{socket.gethostname()}:{os.getpid()}"
    with project.store.write() as tx:
        due = tx.claim_due(now, owner, now + timedelta(seconds=lease_s), limit)
    result = WorkerPass()

    def check(tx: Tx, inst: InstanceRecord) -> Any:
        return None if inst.status == RUNNING else _SKIP

    def act(run: Run, inst: InstanceRecord, _: Any) -> bool:
        return run.run_jobs() | run.refresh()

    def finish(tx: Tx, inst: InstanceRecord, _: Any) -> None:
        tx.release(inst.id, owner)

    for instance_id in due:
        try:
            done = _step(project, instance_id, act, "its due work ran", now, check=check, finish=finish)
        except FlowrunError as exc:
            _instance_incident(project, instance_id, exc, now, owner)
            result.failed.append((instance_id, str(exc)))
            continue
        if done is None:  # nothing was due after all: leave the instance as it is
            with project.store.write() as tx:
                tx.release(instance_id, owner)
            continue
        inst, records = done
        result.fired.append(instance_id)
        result.ready += _result(instance_id, inst.status, records).ready
    return result


def _instance_incident(project: Project, instance_id: str, exc: FlowrunError, now: datetime, owner: str) -> None:
    """A worker's step failed: the instance gets an incident and waits for ``flowrun retry``."""
    with project.store.write() as tx:
        tx.open_incident(instance_id, None, "", None, type(exc).__name__, str(exc), 1, now)
        tx.set_instance_status(instance_id, INSTANCE_ERROR, str(exc))
        tx.release(instance_id, owner)


@dataclass(frozen=True)
class Incident:
    """A step that failed for good: a service whose attempts are used up, or a worker step."""

    id: int
    instance: str
    task_ref: int | None
    task_id: str
    topic: str | None
    error_type: str
    message: str
    attempts: int
    created_at: datetime
    resolved_at: datetime | None


def incidents(project: Project, include_resolved: bool = False) -> list[Incident]:
    """Incidents, newest first (open ones only unless asked)."""
    with project.store.read() as tx:
        return [Incident(**row) for row in tx.list_incidents(include_resolved)]


def retry(project: Project, incident_id: str) -> StepResult:
    """Resume the instance of an incident after its cause was fixed: run the failed step again now.

    Raises:
        NotFoundError: no such open incident.
    """
    text = incident_id.strip().lstrip("#")
    if not text.isdigit():
        raise NotFoundError(f"'{incident_id}' is not an incident number; see 'flowrun incidents'")
    now = project.clock.now()
    with project.store.read() as tx:
        found = tx.get_incident(int(text))
    if found is None or found["resolved_at"] is not None:
        raise NotFoundError(f"no open incident {text}; see 'flowrun incidents'")

    def check(tx: Tx, inst: InstanceRecord) -> Any:
        again = tx.get_incident(int(text))
        if again is None or again["resolved_at"] is not None:
            raise NotFoundError(f"no open incident {text}; see 'flowrun incidents'")
        return None

    def act(run: Run, inst: InstanceRecord, _: Any) -> bool:
        if found["task_id"]:
            run.retry(found["task_id"])
        else:
            run.refresh()
            run.run_jobs()
        inst.status, inst.error = RUNNING, None
        return True

    def finish(tx: Tx, inst: InstanceRecord, _: Any) -> None:
        tx.resolve_incident(int(text), now)
        tx.add_events([_event(inst.id, found["task_ref"], now, "incident_retried", None, {"incident": int(text)})])

    done = _step(project, found["instance"], act, f"incident {text} was retried", now, check=check, finish=finish)
    assert done is not None
    inst, records = done
    return _result(inst.id, inst.status, records)


def next_due(project: Project) -> datetime | None:
    """When the next timer of any instance is due (None when no timer waits)."""
    with project.store.read(snapshot=False) as tx:
        return tx.next_due()


def send(
    project: Project,
    name: str,
    instance: str | None = None,
    data: Mapping[str, Any] | None = None,
    kind: str = "message",
) -> list[StepResult]:
    """Deliver a message (or signal) to the instances waiting for it.

    With no waiting instance, a message starts the processes of the project whose
    message start event catches it.

    Raises:
        NotFoundError: nothing waits for it and no process starts with it.
    """
    payload = _jsonable(dict(data or {}))
    now = project.clock.now()
    with project.store.read() as tx:
        iid = resolve_instance(tx, instance) if instance else None
        targets = tx.instances_waiting_for(f"{kind}:{name}", iid)
    results = []
    for target in targets:
        done = _deliver(project, target, kind, name, payload, now, only_running=True)
        if done is not None:
            results.append(done)
    if results or iid is not None:
        if not results:
            raise NotFoundError(
                f"instance {instance} is not waiting for the {kind} '{name}'; see 'flowrun show {instance}'"
            )
        return results
    for family, variant, path in _starters(project, kind, name):
        started = start(project, f"{family}:{variant}" if variant != "default" else str(path), payload)
        started = _deliver(project, started.instance, kind, name, payload, now, only_running=False) or started
        results.append(started)
    if not results:
        raise NotFoundError(
            f"no instance waits for the {kind} '{name}' and no process starts with it; "
            "check the name against the diagram (see 'flowrun show ID' for what an instance waits for)"
        )
    return results


def _deliver(
    project: Project,
    instance_id: str,
    kind: str,
    name: str,
    payload: dict[str, Any],
    now: datetime,
    only_running: bool,
) -> StepResult | None:
    """Deliver a message or signal to one instance; None when it was not waiting for it."""
    delivered = False

    def check(tx: Tx, inst: InstanceRecord) -> Any:
        return _SKIP if only_running and inst.status != RUNNING else None

    def act(run: Run, inst: InstanceRecord, _: Any) -> bool:
        nonlocal delivered
        delivered = run.deliver(kind, name, payload)
        return delivered or run.changed  # a timer that was due first may have taken the instance elsewhere

    def finish(tx: Tx, inst: InstanceRecord, _: Any) -> None:
        if delivered:
            tx.add_events([_event(inst.id, None, now, f"{kind}_received", None, {"name": name, "data": payload})])

    done = _step(project, instance_id, act, f"the {kind} {name} was delivered", now, check=check, finish=finish)
    if done is None or not delivered:
        return None
    inst, records = done
    return _result(inst.id, inst.status, records)


def _starters(project: Project, kind: str, name: str) -> list[tuple[str, str, Path]]:
    from flowrun.engine.loader import start_events

    out = []
    for entry in list_processes(project):
        path = project.settings.root / entry.file
        if entry.exists and (kind, name) in start_events(path):
            out.append((entry.family, entry.variant, path))
    return out


# -- reading ---------------------------------------------------------------------


def resolve_instance(tx: Tx, prefix: str) -> str:
    """The full id of the instance whose id starts with ``prefix``.

    Raises:
        NotFoundError / AmbiguousIdError.
    """
    text = prefix.strip().lower()
    if not text or not all(c in "0123456789abcdef" for c in text):
        raise NotFoundError(f"'{prefix}' is not an instance id; ids are the hex numbers 'flowrun start' printed")
    found = tx.instance_ids_like(text)
    if not found:
        raise NotFoundError(f"no instance with id '{prefix}'; see 'flowrun tasks' or 'flowrun instances'")
    if len(found) > 1:
        raise AmbiguousIdError("instance", prefix, [f[:12] for f in found])
    return found[0]


def inbox(
    project: Project, instance: str | None = None, lane: str | None = None, family: str | None = None
) -> list[InboxItem]:
    """Ready user tasks across instances, oldest first; never loads an instance's state."""
    now = project.clock.now()
    with project.store.read() as tx:
        inst = resolve_instance(tx, instance) if instance else None
        rows = tx.inbox(inst, lane, family)
    return [
        InboxItem(
            ref=int(r["id"]),
            instance=r["instance_id"],
            task=r["bpmn_id"],
            name=r["name"],
            lane=r["lane"],
            family=r["family"],
            variant=r["variant"],
            pilot=r["pilot"],
            ready_at=r["ready_at"],
            started_at=r["started_at"],
            actor=r["actor"],
            waited_s=max(0.0, ((r["started_at"] or now) - r["ready_at"]).total_seconds()),
        )
        for r in rows
    ]


def show(project: Project, instance: str) -> InstanceView:
    """An instance's status, variant, what it waits for and its data."""
    with project.store.read() as tx:
        iid = resolve_instance(tx, instance)
        rec = tx.get_instance(iid)
        tasks = tx.instance_tasks(iid)
    assert rec is not None
    waiting = [
        {
            "kind": "task" if t.type in ("userTask", "manualTask") else t.type,
            "ref": t.ref,
            "task": t.bpmn_id,
            "name": t.name,
            "lane": t.lane,
            "since": iso(t.ready_at),
            "actor": t.actor,
            "waits_for": t.waits_for,
            "due": iso(t.due_at),
        }
        for t in tasks
        if t.status in (READY, STARTED, WAITING)
    ]
    return InstanceView(
        id=rec.id,
        family=rec.family,
        variant=rec.variant,
        file=rec.file,
        sha256=rec.sha256,
        pilot=rec.pilot,
        status=rec.status,
        created_at=rec.created_at,
        ended_at=rec.ended_at,
        version=rec.version,
        data=rec.data,
        waiting_for=waiting,
        error=rec.error,
    )


def history(project: Project, instance: str) -> tuple[InstanceView, list[TaskRecord]]:
    """Every task of an instance with lane, actor and its ready/started/completed times."""
    view = show(project, instance)
    with project.store.read() as tx:
        tasks = tx.instance_tasks(view.id)
    return view, tasks


def instances(project: Project, status: str | None = None, limit: int = 50) -> list[InstanceRecord]:
    """The most recent instances, newest first."""
    with project.store.read() as tx:
        return tx.list_instances(status, limit)


def db_upgrade(project: Project) -> str:
    """Create or migrate the database schema; returns the revision it is at."""
    from flowrun.store import SqlStore

    store = SqlStore(project.settings.database_url, check=False)
    try:
        return store.upgrade()
    finally:
        store.close()


# -- validating ------------------------------------------------------------------

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from flowrun.models import Problem, ValidationReport

DIAGRAM_SUFFIXES = (".bpmn", ".dmn", ".bpmn20.xml")


def validate(project: Project | None, paths: Sequence[Path] = ()) -> ValidationReport:
    """Check diagrams without running anything and report every problem at once.

    Args:
        project: the project whose forms and service handlers are checked; None
            checks the files alone (forms and service topics are then not checked).
        paths: files or folders to check; none means every ``.bpmn`` and ``.dmn``
            file in processes/ and every file ``flowrun.yaml`` names.

    Raises:
        ProjectError: no paths were given and there is no project to check.
    """
    from flowrun.engine.validate import check_file
    from flowrun.models import ValidationReport

    if project is None and not paths:
        raise ProjectError("nothing to validate: name the files to check, or run inside a project (flowrun init)")
    s = project.settings if project is not None else None
    targets = _validation_targets(s, paths)
    known = set(project.registry.known()) if project is not None else None
    check_form = _form_checker(s) if s is not None else None
    problems: list[Problem] = []
    for path in targets:
        display = s.rel(path) if s is not None else str(path)
        search_dir = s.processes_dir if s is not None and path.resolve().parent == s.processes_dir.resolve() else None
        problems += check_file(path, display, search_dir, known_topics=known, check_form=check_form)
    files = tuple(s.rel(p) if s is not None else str(p) for p in targets)
    return ValidationReport(files=files, problems=tuple(problems))


def _validation_targets(s: Settings | None, paths: Sequence[Path]) -> list[Path]:
    """The files to check: those given (folders expanded), else the project's diagrams."""
    found: list[Path] = []
    if paths:
        for path in paths:
            found += _diagrams_in(path) if path.is_dir() else [path]
    elif s is not None:
        found += _diagrams_in(s.processes_dir)
        found += [s.root / file for variants in s.families.values() for file in variants.values()]
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _diagrams_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(DIAGRAM_SUFFIXES))


def _form_checker(s: Settings) -> Callable[[Mapping[str, Any]], object]:
    """Resolves a user task's form reference in the project, raising :class:`FormError`."""

    def check(ref: Mapping[str, Any]) -> object:
        return forms.resolve_form(ref, s.forms_dir, s.root)

    return check


# -- event logs ------------------------------------------------------------------

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import TextIO

    from flowrun.eventlog import ColumnMapping, ImportedCase, LogStats

#: Event log formats ``export_log`` writes.
LOG_FORMATS = ("csv", "xes", "ocel")
#: Process id of the stand-in model row of an imported file (its spec is ``{}``: nothing to run).
IMPORTED_PROCESS_ID = "imported"


@dataclass(frozen=True)
class ExportResult:
    """What ``export_log`` wrote: where, in which format, and how many cases, tasks and events."""

    file: str
    format: str
    cases: int
    tasks: int
    events: int


def export_log(
    project: Project,
    fmt: str,
    out: Path | TextIO,
    process: str | None = None,
    variant: str | None = None,
    pilot: str | None = None,
) -> ExportResult:
    """Write the recorded tasks of the matching instances as a CSV, XES or OCEL 2.0 event log.

    Rows stream from one read transaction straight into the file. A file is
    written under a temporary name and renamed at the end, so a failed export
    leaves no half-written log.

    Args:
        fmt: ``csv``, ``xes`` or ``ocel``.
        out: a file to (over)write, or an open text stream.
        process, variant, pilot: export only instances of this family, variant, pilot.

    Raises:
        NotFoundError: ``process`` is not a family of the project or the store.
        DataError: the file cannot be written.
    """
    from flowrun.store import task_log_rows

    writer = _log_writer(fmt, _log_name(process, variant, pilot))
    if process is not None:
        _check_family(project, process)
    with project.store.read() as tx:
        rows = task_log_rows(tx, process, variant, pilot)
        if isinstance(out, Path):
            display = project.settings.rel(out)
            stats = _write_file(out, display, lambda stream: writer(rows, stream))
        else:
            display, stats = "-", writer(rows, out)
    return ExportResult(display, fmt, stats.cases, stats.tasks, stats.events)


def _log_writer(fmt: str, name: str) -> Callable[[Iterable[Any], TextIO], LogStats]:
    from flowrun import eventlog

    if fmt == "csv":
        return eventlog.write_csv
    if fmt == "xes":
        return lambda rows, out: eventlog.write_xes(rows, out, name)
    if fmt == "ocel":
        return eventlog.write_ocel
    raise DataError(f"unknown event log format '{fmt}'; use one of {', '.join(LOG_FORMATS)}")


def _log_name(process: str | None, variant: str | None, pilot: str | None) -> str:
    chosen = [
        f"{label} {value}" for label, value in (("process", process), ("variant", variant), ("pilot", pilot)) if value
    ]
    return "flowrun export" + (f" ({', '.join(chosen)})" if chosen else "")


def _write_file(path: Path, display: str, write: Callable[[TextIO], LogStats]) -> LogStats:
    import os

    partial = path.with_name(path.name + ".part")
    try:
        with partial.open("w", encoding="utf-8", newline="") as stream:
            stats = write(stream)
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        reason = exc.strerror or str(exc)
        raise DataError(f"cannot write {display}: {reason}; check the folder exists and is writable") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return stats


def _check_family(project: Project, family: str) -> None:
    """Raise NotFoundError unless ``family`` is a process family of the project or has instances."""
    from flowrun.store import instance_families

    known = {e.family for e in list_processes(project)}
    if family in known:
        return
    with project.store.read() as tx:
        known.update(instance_families(tx))
    if family not in known:
        raise NotFoundError(
            f"no process family '{family}'; the project has {', '.join(sorted(known)) or 'none'} "
            "(see 'flowrun processes')"
        )


@dataclass(frozen=True)
class ImportResult:
    """What ``import_log`` stored: the cases of one file, as one family, variant and pilot."""

    file: str
    sha256: str
    process: str
    variant: str
    pilot: str | None
    cases: int
    running: int
    tasks: int


def import_log(
    project: Project,
    path: Path,
    process: str,
    variant: str,
    pilot: str | None = None,
    mapping: ColumnMapping | None = None,
) -> ImportResult:
    """Bring a task log recorded outside flowrun (CRM export, spreadsheet) into the store.

    Each case becomes an instance of ``process``/``variant`` (completed, or
    running when a task has no end), its rows become tasks, and events are
    written as a run would have. Imported cases can be shown, exported and
    compared, but not stepped. Every row is checked first: one bad row and
    nothing is imported. The file's sha256 keys a stand-in model row, which
    also refuses importing the same file twice.

    Args:
        pilot: the pilot of every case; None takes it from the file's pilot column, if any.
        mapping: the file's columns and time format; None reads flowrun's own CSV export.

    Raises:
        NotFoundError: the file cannot be read, or ``process`` is not a family of the project.
        DataError: rows are bad (every one is listed with its line number).
        StateError: this file was imported before.
    """
    import io

    from flowrun.eventlog import read_cases
    from flowrun.store import count_imported, insert_imported

    display = project.settings.rel(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotFoundError(f"cannot read {display}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{display} is not UTF-8 text (byte {exc.start}); save it as UTF-8 (in Excel: 'CSV UTF-8')"
        ) from None
    _check_family(project, process)
    cases = read_cases(io.StringIO(text, newline=""), display, mapping, {"process": process, "variant": variant})
    sha = hashlib.sha256(raw).hexdigest()
    now = project.clock.now()
    tasks = running = 0
    with project.store.write() as tx:
        before = count_imported(tx, sha)
        if before:
            raise StateError(
                f"{display} was imported before ({before} cases); importing it again would count them twice"
            )
        tx.ensure_model(sha, IMPORTED_PROCESS_ID, display, "{}", now)
        for start in range(0, len(cases), 1000):
            batch = [_imported_instance(c, sha, display, process, variant, pilot) for c in cases[start : start + 1000]]
            insert_imported(tx, batch, now)
            tx.add_events([e for rec, recs in batch for e in _imported_events(rec, recs, display)])
            tasks += sum(len(recs) for _, recs in batch)
            running += sum(1 for rec, _ in batch if rec.status == RUNNING)
    return ImportResult(display, sha, process, variant, pilot, len(cases), running, tasks)


def _imported_instance(
    case: ImportedCase, sha: str, display: str, process: str, variant: str, pilot: str | None
) -> tuple[InstanceRecord, list[TaskRecord]]:
    rec = InstanceRecord(
        id=uuid.uuid4().hex,
        family=process,
        variant=variant,
        file=display,
        sha256=sha,
        process_id=IMPORTED_PROCESS_ID,
        pilot=pilot if pilot is not None else case.pilot,
        status=RUNNING if case.is_open else INSTANCE_COMPLETED,
        created_at=case.created_at,
        ended_at=case.ended_at,
        version=1,
        data={"imported_case_id": case.case_id},
        state="",
    )
    tasks = [
        TaskRecord(
            task_id=f"import-{i}",
            bpmn_id=t.activity_id or t.activity[:255],
            name=t.activity,
            type=t.type,
            lane=t.lane,
            status=t.status,
            ready_at=t.enable,
            started_at=t.start,
            completed_at=t.end,
            actor=t.resource,
        )
        for i, t in enumerate(case.tasks, 1)
    ]
    return rec, tasks


def _imported_events(rec: InstanceRecord, tasks: list[TaskRecord], display: str) -> list[dict[str, Any]]:
    """The events a run would have logged, in time order (the store has filled in the task refs)."""
    from flowrun.models import CANCELLED, ERROR

    detail = {
        "pilot": rec.pilot,
        "variant": rec.variant,
        "imported_from": display,
        "case_id": rec.data["imported_case_id"],
    }
    out = [_event(rec.id, None, rec.created_at, "instance_started", None, detail)]
    for t in tasks:
        about = {"task": t.bpmn_id, "name": t.name}
        end_kind = t.status if t.status in (COMPLETED, CANCELLED, ERROR) else COMPLETED
        for at, kind, actor in (
            (t.ready_at, READY, None),
            (t.started_at, STARTED, t.actor),
            (t.completed_at, end_kind, t.actor),
        ):
            if at is not None:
                out.append(_event(rec.id, t.ref, at, kind, actor, about))
    if rec.ended_at is not None:
        out.append(_event(rec.id, None, rec.ended_at, "instance_completed", None, None))
    out[1:] = sorted(out[1:], key=lambda e: e["at"])
    return out


# -- pilot analysis --------------------------------------------------------------

if TYPE_CHECKING:
    from flowrun.analysis import Cases, Comparison, Kpi
    from flowrun.store.analytics import Selection


def measure_cases(
    project: Project,
    family: str,
    group: str | None = None,
    pilot: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Cases:
    """Every case's measures: cycle, waiting and touch time, steps, handoffs, touchpoints, rework, outcomes.

    Args:
        group: ``VARIANT``, ``@PILOT`` or ``VARIANT@PILOT``; None takes every case of the family.
        pilot: only cases of this pilot.
        since, until: only cases that started at or after ``since`` and before ``until``.

    Raises:
        NotFoundError: the family, variant or pilot has no cases and is not in flowrun.yaml.
    """
    from flowrun.store.analytics import Selection

    groups = _analysis_groups(project, family, _family_variants(project, family), [group] if group else [])
    sel = Selection(family, tuple(groups) or ((None, None),), pilot, _epoch(since), _epoch(until))
    return _read_cases(project, sel, _outcome_kpis(project))[0]


def compare(
    project: Project,
    family: str,
    baseline: str | None = None,
    variant: str | None = None,
    pilot: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    seed: int = 0,
    resamples: int = 2000,
) -> Comparison:
    """Compare two groups of a family's completed cases KPI by KPI, with 95 % intervals and tests.

    Args:
        baseline, variant: ``VARIANT``, ``@PILOT`` or ``VARIANT@PILOT``. By default the baseline
            is the variant named "baseline" (else the first in flowrun.yaml) and the variant is
            the other one.
        pilot: only cases of this pilot, in both groups.
        since, until: only cases that started at or after ``since`` and before ``until``.
        seed, resamples: of the bootstrap intervals (the same seed gives the same intervals).

    Raises:
        NotFoundError: unknown family, variant or pilot, or no second group to compare with.
        DataError: both groups are the same.
    """
    from flowrun import analysis
    from flowrun.store.analytics import Selection

    variants = _family_variants(project, family)
    names = _default_specs(variants, family, baseline, variant)
    groups = _analysis_groups(project, family, variants, names)
    sel = Selection(family, tuple(groups), pilot, _epoch(since), _epoch(until))
    outcomes = _outcome_kpis(project)
    cases, task_names = _read_cases(project, sel, outcomes)
    masks = [_group_mask(cases, g) for g in groups]
    filters = {"pilot": pilot, "since": iso(since), "until": iso(until)}
    return analysis.compare(
        cases,
        (names[0], masks[0]),
        (names[1], masks[1]),
        [*analysis.case_kpis(), *outcomes],
        task_names,
        seed=seed,
        resamples=resamples,
        family=family,
        filters=filters,
    )


def _read_cases(project: Project, sel: Selection, outcomes: list[Kpi]) -> tuple[Cases, dict[str, str]]:
    """The selected cases' measures, and the names of the tasks they ran, in one read transaction."""
    from flowrun import analysis
    from flowrun.store import analytics

    fields = list(dict.fromkeys(k.source for k in outcomes))
    lanes = project.settings.customer_facing_lanes
    with project.store.read() as tx:
        rows = analytics.case_rows(tx, sel, fields)
        done = sum(1 for r in rows if r[3] == INSTANCE_COMPLETED)
        cases = analysis.measure(rows, analytics.step_rows(tx, sel, done), fields, lanes)
        samples = [(iid, task) for iid, task in zip(cases.samples, cases.tasks, strict=True) if iid]
        names = analytics.task_names(tx, samples)
    return cases, names


def _outcome_kpis(project: Project) -> list[Kpi]:
    from flowrun.analysis import outcome_kpi

    try:
        return [outcome_kpi(name, spec) for name, spec in project.settings.kpis.items()]
    except ValueError as exc:
        raise ProjectError(f"{project.settings.root / 'flowrun.yaml'}: kpis: {exc}") from None


def _split_group(spec: str) -> tuple[str | None, str | None]:
    """``VARIANT`` / ``@PILOT`` / ``VARIANT@PILOT`` -> (variant or None, pilot or None)."""
    variant, at, pilot = spec.strip().partition("@")
    if not variant and not pilot:
        raise NotFoundError(f"'{spec}' names no group; write VARIANT, @PILOT or VARIANT@PILOT")
    return (variant or None, pilot if at and pilot else None)


def _family_variants(project: Project, family: str) -> list[str]:
    """A family's variants: flowrun.yaml's, in its order, then others that have cases.

    Raises:
        NotFoundError: the family is neither in flowrun.yaml nor in the database.
    """
    from flowrun.store.analytics import family_variants

    with project.store.read() as tx:
        found = family_variants(tx, family)
    configured = list(project.settings.families.get(family, {}))
    if not configured and not found:
        known = sorted(set(project.settings.families))
        raise NotFoundError(
            f"no process family '{family}' in flowrun.yaml or the database; families: {', '.join(known) or 'none'}"
        )
    return configured + [v for v in found if v not in configured]


def _default_specs(variants: list[str], family: str, baseline: str | None, variant: str | None) -> list[str]:
    """The two group specs, with flowrun.yaml's defaults filled in."""
    if baseline is None:
        baseline = "baseline" if "baseline" in variants else variants[0]
    if variant is None:
        base_variant = _split_group(baseline)[0]
        others = [v for v in variants if v != base_variant]
        if base_variant is None or not others:
            raise NotFoundError(
                f"say which group to compare '{baseline}' with: --variant VARIANT, @PILOT or VARIANT@PILOT "
                f"(family '{family}' has the variants {', '.join(variants)})"
            )
        variant = others[0]
    if baseline.strip() == variant.strip():
        raise DataError(f"the baseline and the variant are the same group '{baseline}'; compare two different groups")
    return [baseline.strip(), variant.strip()]


def _analysis_groups(
    project: Project, family: str, variants: list[str], specs: list[str]
) -> list[tuple[str | None, str | None]]:
    """Parsed group specs, each variant and pilot checked against the family's."""
    from flowrun.store.analytics import family_pilots, has_pilot

    out = []
    for spec in specs:
        variant, pilot = _split_group(spec)
        if variant is not None and variant not in variants:
            raise NotFoundError(f"family '{family}' has no variant '{variant}'; it has {', '.join(variants)}")
        if pilot is not None:
            with project.store.read() as tx:
                if not has_pilot(tx, family, pilot):
                    known = ", ".join(family_pilots(tx, family)) or "none"
                    raise NotFoundError(
                        f"family '{family}' has no cases of pilot '{pilot}'; pilots with cases: {known}"
                    )
        out.append((variant, pilot))
    return out


def _group_mask(cases: Cases, group: tuple[str | None, str | None]) -> Any:
    import numpy as np

    variant, pilot = group
    keep = [
        (variant is None or v == variant) and (pilot is None or p == pilot)
        for v, p in zip(cases.variants, cases.pilots, strict=True)
    ]
    return np.array(keep, dtype=np.bool_)


def _epoch(when: datetime | None) -> float | None:
    from flowrun.clock import as_utc

    return None if when is None else as_utc(when).timestamp()
