"""Starting instances, claiming and completing tasks.

A completion is run and saved by :func:`flowrun.app.stepping.run_optimistic_step`,
which holds no database lock while the engine runs.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowrun import forms
from flowrun.app.deadlines import apply_service_level
from flowrun.app.keys import check_key, generated_key, refuse_taken
from flowrun.app.ownership import check_may_work, claimed_message, touch_seconds
from flowrun.app.project import Project, resolve_process
from flowrun.app.stepping import jsonable, run_optimistic_step, task_events, verified_snapshot
from flowrun.clock import human
from flowrun.errors import (
    ConflictError,
    FormError,
    NotFoundError,
    StateError,
    StoreError,
)
from flowrun.models import (
    COMPLETED,
    INSTANCE_COMPLETED,
    READY,
    RUNNING,
    STARTED,
    EventRow,
    Form,
    InstanceRecord,
    StepResult,
    TaskRecord,
)

if TYPE_CHECKING:
    from flowrun.engine import Run
    from flowrun.store import Tx


def start(
    project: Project,
    target: str,
    data: Mapping[str, Any] | None = None,
    pilot: str | None = None,
    *,
    message: tuple[str, str] | None = None,
    key: str | None = None,
) -> StepResult:
    """Start an instance of a process and run its automated steps until the first wait.

    Args:
        key: the case's business key (unique in its family); None makes one from the
            family's pattern under ``keys:`` in flowrun.yaml, or leaves the case without.
        message: ``(kind, name)`` of a message or signal to deliver (with ``data`` as its
            payload) before anything is saved, so an instance whose start event cannot
            catch it (a failing correlation) is not saved at all.
    """
    family, variant, path = resolve_process(project, target)
    s = project.settings
    given_key = check_key(key) if key is not None else None
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
    caught = message is not None and run.deliver(*message, dict(data or {}))
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
    rec.state = verified_snapshot(project, run, rec)
    apply_service_level(project, rec, records)
    received = None
    if message is not None and caught:
        kind, name = message
        received = EventRow(rec.id, None, now, f"{kind}_received", None, {"name": name, "data": dict(data or {})})
    model = (sha, process_id, display, spec)
    for attempt in range(_KEY_ATTEMPTS):
        try:
            with store.write() as tx:
                _save_started(project, tx, rec, records, given_key, model, received)
            break
        except StoreError:
            # PostgreSQL: another start took the same key between the check and the insert
            # (the unique index refused it). Nothing was saved: refuse a given key, number again.
            if rec.business_key is None or attempt == _KEY_ATTEMPTS - 1:
                raise
            with store.read() as tx:
                if not tx.instance_ids_with_key(rec.business_key, family):
                    raise
                if given_key is not None:
                    refuse_taken(tx, family, given_key)
    return StepResult.of(rec.id, rec.status, records, rec.business_key)


def _save_started(
    project: Project,
    tx: Tx,
    rec: InstanceRecord,
    records: list[TaskRecord],
    given_key: str | None,
    model: tuple[str, str | None, str, str],
    received: EventRow | None,
) -> None:
    """Write a new instance: its key, its model version (once), its row, tasks and events."""
    sha, process_id, display, spec = model
    now = rec.created_at
    _assign_key(project, tx, rec, given_key)
    if process_id is not None:
        tx.ensure_model(sha, process_id, display, spec, now)
    else:
        rec.process_id = tx.model_process_id(sha)
    tx.insert_instance(rec, now)
    tx.save_tasks(rec.id, records)
    events = [EventRow(rec.id, None, now, "instance_started", None, _started_detail(rec))]
    events += task_events(rec.id, records)
    if received is not None:
        events.append(received)
    if rec.status == INSTANCE_COMPLETED:
        events.append(EventRow(rec.id, None, now, "instance_completed", None))
    tx.add_events(events)


#: How often a start is saved again when a concurrent start took the key it was given.
_KEY_ATTEMPTS = 5


def _assign_key(project: Project, tx: Tx, rec: InstanceRecord, given: str | None) -> None:
    """Give ``rec`` its business key: ``given`` (refused when taken), else its family's pattern, else none."""
    pattern = project.settings.keys.get(rec.family)
    if given is not None:
        refuse_taken(tx, rec.family, given)
        rec.business_key = given
    elif pattern is not None:
        rec.business_key = generated_key(tx, rec.family, pattern, rec.data)


def _started_detail(rec: InstanceRecord) -> dict[str, Any]:
    """The ``instance_started`` event's detail: pilot, variant, and the key when the case has one."""
    detail: dict[str, Any] = {"pilot": rec.pilot, "variant": rec.variant}
    if rec.business_key:
        detail["key"] = rec.business_key
    return detail


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
        raise FormError(
            f"task {task.ref} ({task.name}, element {task.bpmn_id}): {exc} "
            "('flowrun validate' shows the diagram file and line)"
        ) from None


def get_task(project: Project, ref: str) -> TaskRecord:
    """A task by its ref number (as the inbox shows it)."""
    text = ref.strip().lstrip("#")
    if not (text.isascii() and text.isdigit()):
        raise NotFoundError(f"'{ref}' is not a task ref; refs are the numbers 'flowrun tasks' shows")
    if len(text) > 19 or int(text) >= 2**63:  # no database holds a larger id
        raise NotFoundError(f"no task with ref {text[:20]}; see 'flowrun tasks' for the open ones")
    with project.store.read(snapshot=False) as tx:
        task = tx.task_by_ref(int(text))
    if task is None:
        raise NotFoundError(f"no task with ref {text}; see 'flowrun tasks' for the open ones")
    return task


def check_open(task: TaskRecord) -> None:
    """Raise unless ``task`` is a ready or claimed user task of a case that can be worked on."""
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


def complete(
    project: Project,
    ref: str,
    data: Mapping[str, Any],
    actor: str | None = None,
    text: Mapping[str, str] | None = None,
) -> StepResult:
    """Complete a user task with ``data`` (validated against its form first) and run on.

    The completer's touch time is the sum of their claim intervals (see
    :mod:`flowrun.app.claims`); the task's ``started_at`` is set to ``completed_at`` minus
    it, so readers computing touch as completed - started get it right.

    Args:
        data: field values, already typed (from a JSON/YAML file or a program).
        text: field values as typed on the command line (``--data k=v``), converted to
            the types the form asks for and merged over ``data``.
        actor: who completes it; refused when someone else holds the claim or the diagram
            gives the task to others. None: whoever holds it (a program's completion).

    Raises:
        DataError: the data does not fit the form; nothing is changed.
        ConflictError: someone completed the task first, holds its claim, or the task is
            not for ``actor`` (exit code 3).
    """
    task = get_task(project, ref)
    check_open(task)
    now = project.clock.now()
    if actor is not None:
        check_may_work(project, task, actor, now)
    form = task_form(project, task)
    values = dict(data)
    if text:
        values.update(forms.coerce(form, text))
    values = forms.validate(form, values, f"task {task.ref}, {task.name}")

    def check(tx: Tx, inst: InstanceRecord) -> tuple[TaskRecord, datetime | None]:
        # The task is read after its instance: if someone completes it in between, this
        # sees it completed; otherwise the instance read is no older than the task.
        fresh = tx.task_by_ref(int(task.ref or 0))
        if fresh is None:
            raise NotFoundError(f"task {task.ref} disappeared")
        check_open(fresh)
        if actor is not None:
            check_may_work(project, fresh, actor, now)
        holder = fresh.actor if fresh.status == STARTED else None
        touch = touch_seconds(tx.task_claims(int(task.ref or 0)), actor or holder, now)
        return fresh, (now - timedelta(seconds=touch) if touch > 0 else None)

    def act(run: Run, inst: InstanceRecord, value: tuple[TaskRecord, datetime | None]) -> bool:
        fresh, started = value
        run.complete(fresh.task_id, values, actor or fresh.actor, started)
        return True

    def finish(tx: Tx, inst: InstanceRecord, value: tuple[TaskRecord, datetime | None]) -> None:
        # A claim saved after check read the task changes no instance version: see it here.
        fresh = value[0]
        expected = fresh.actor if fresh.status == STARTED else None
        holder = tx.end_claim(int(task.ref or 0), now, "completed")
        if holder != expected:
            raise ConflictError(claimed_message(fresh, holder or "someone", now, actor or "you", now))

    done = run_optimistic_step(
        project,
        task.instance_id or "",
        act,
        f"task {task.ref} was being completed",
        now,
        check=check,
        finish=finish,
        data_for=task.task_id,
        data=values,
    )
    if done is None:  # run_optimistic_step skips only when check says so, and complete's check never does
        raise RuntimeError("the completing step was skipped")
    inst, records = done
    return StepResult.of(inst.id, inst.status, records)
