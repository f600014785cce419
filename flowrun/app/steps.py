"""Starting instances and completing tasks: the engine step and how it is saved.

A step never holds the database while the engine runs (see :func:`run_step`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowrun import forms
from flowrun.app.project import Project, resolve_process
from flowrun.clock import human, iso
from flowrun.errors import (
    ConflictError,
    DataError,
    FlowrunError,
    FormError,
    NotFoundError,
    StateError,
)
from flowrun.models import (
    COMPLETED,
    INSTANCE_COMPLETED,
    INSTANCE_ERROR,
    READY,
    RUNNING,
    STARTED,
    Form,
    InstanceRecord,
    TaskRecord,
)

if TYPE_CHECKING:
    from flowrun.engine import Run
    from flowrun.store import Tx


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
        data=jsonable(run.data()),
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
        events = [event_row(rec.id, None, now, "instance_started", None, {"pilot": pilot, "variant": variant})]
        events += _task_events(rec.id, records)
        if run.completed:
            events.append(event_row(rec.id, None, now, "instance_completed", None, None))
        tx.add_events(events)
    return step_result(rec.id, rec.status, records)


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
        when = human(task.completed_at) if task.completed_at else "an unknown time"
        raise ConflictError(f"task {task.ref} ({task.name}) was already completed by {who} at {when}")
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
        tx.add_events([event_row(task.instance_id or "", task.ref, now, "started", actor, None)])
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

    done = run_step(
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
    return step_result(inst.id, inst.status, records)


#: How often a step is run again because someone else changed its instance meanwhile.
_STEP_ATTEMPTS = 10

#: Returned by a step's ``check`` when the step no longer applies (nothing is saved).
SKIP: Any = object()


def run_step(
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
       someone else: ConflictError), returns :data:`SKIP` to do nothing, or returns
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
                if value is SKIP:
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
    inst.data = jsonable(run.data())
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
        events.append(event_row(inst.id, None, now, "instance_completed", None, None))
    tx.add_events(events)


def _verified_snapshot(project: Project, run: Run, inst: InstanceRecord) -> str:
    """The run's state, proven loadable by loading it back before anything is written."""
    state = run.snapshot()
    try:
        project.engine.verify(state, inst.sha256)
    except FlowrunError as exc:
        raise DataError(f"the instance could not be loaded back after this step ({exc}); nothing was saved") from None
    return state


def step_result(instance_id: str, status: str, records: list[TaskRecord]) -> StepResult:
    return StepResult(
        instance=instance_id,
        status=status,
        ready=[r for r in records if r.status == READY and r.type in ("userTask", "manualTask")],
        completed=[r for r in records if r.status == COMPLETED],
    )


def event_row(
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
            detail["data"] = jsonable(data)
        out.append(event_row(instance_id, r.ref, at, r.status, r.actor, detail))
    return out


def jsonable(data: Any) -> Any:
    import json

    return json.loads(json.dumps(data, default=str))
