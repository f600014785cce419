"""How an engine step is run and saved: optimistically, holding no lock while the engine runs.

Every change to an instance (starting aside) is one step, run by
:func:`run_optimistic_step`:

1. **Read.** A read transaction reads the instance (its version and state) and
   whatever the step checks first (say, that the task is still open).
2. **Run.** Outside any transaction, the engine runs on that state: scripts,
   gateways, service calls. The new state is snapshotted and loaded back to
   prove it loadable.
3. **Save.** A short write transaction saves the state only if the instance's
   version is still the one read (a conditional ``UPDATE ... WHERE version = ?``),
   with the step's task rows, incidents and events.

If someone saved the instance between 1 and 3, nothing is written and the step
is run again from 1 on the fresh state. The service calls of the first run must
not happen twice: while a step runs, :func:`remembered_service_calls` keeps each
call's result by (idempotency key, attempt, topic), and the service caller the
engine gets (:func:`once_per_step`) answers a repeated call from there. So a slow
service call or a long script never holds up other operators, and SQLite's one
write lock is held only for the writes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flowrun.app.deadlines import apply_service_level
from flowrun.errors import BpmnError, ConflictError, DataError, FlowrunError, NotFoundError, StateError
from flowrun.models import (
    CANCELLED,
    INSTANCE_COMPLETED,
    INSTANCE_ERROR,
    SERVICE_CONTEXT,
    EventRow,
    InstanceRecord,
    ServiceCaller,
    ServiceFailure,
    TaskRecord,
)

if TYPE_CHECKING:
    from flowrun.app.project import Project
    from flowrun.engine import Run
    from flowrun.store import Tx

#: How often a step is run again because someone else changed its instance meanwhile.
_STEP_ATTEMPTS = 10

#: Returned by a step's ``check`` when the step no longer applies (nothing is saved).
SKIP: Any = object()


def run_optimistic_step(
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

    Args:
        act: ``act(run, inst, value)`` runs the engine (outside any transaction); False
            means there is nothing to save.
        doing: what the step does, for the error when others keep changing the instance.
        check: ``check(tx, inst)``, in the read transaction: raises when the step no
            longer applies (say, ConflictError: the task was completed by someone else),
            returns :data:`SKIP` to do nothing, or a value handed on to ``act`` and ``finish``.
        finish: ``finish(tx, inst, value)`` writes more in the saving transaction.
        data_for, data: the task whose completion event records ``data``.

    Returns:
        The saved instance and its changed task records; None when nothing was saved.

    Raises:
        ConflictError: the instance was changed by others on every one of the attempts.
    """
    with remembered_service_calls():
        for _ in range(_STEP_ATTEMPTS):
            read = _read(project, instance_id, check)
            if read is None:
                return None
            inst, spec, value = read
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


def _read(
    project: Project, instance_id: str, check: Callable[[Tx, InstanceRecord], Any] | None
) -> tuple[InstanceRecord, str | None, Any] | None:
    """Step 1: the instance, its definition (None when the engine has it), ``check``'s value; None to skip."""
    with project.store.read(snapshot=False) as tx:  # reads ordered: instance first, then what check reads
        inst = tx.get_instance(instance_id, with_state=True)
        if inst is None:
            raise NotFoundError(f"instance {instance_id[:8]} is missing")
        value = check(tx, inst) if check is not None else None
        if value is SKIP:
            return None
        spec = None if project.engine.knows(inst.sha256) else tx.model_spec(inst.sha256)
    return inst, spec, value


def _restore(project: Project, spec: str | None, inst: InstanceRecord) -> Run:
    if not inst.state:
        raise StateError(f"instance {inst.id[:8]} has no engine state (an imported case cannot be run)")
    run = project.engine.restore(spec, inst.state, key=inst.sha256, source=inst.file, instance_id=inst.id)
    run.instance_id = inst.id
    return run


@dataclass
class _Pending:
    """A step's results, prepared outside the write transaction."""

    records: list[TaskRecord]
    failed: list[ServiceFailure]
    completed: bool


def _prepare(project: Project, run: Run, inst: InstanceRecord, now: datetime) -> _Pending:
    """Step 2's end: drain the run into ``inst`` (state proven loadable, data, status) and its records."""
    records = run.drain()
    apply_service_level(project, inst, records)
    inst.state = verified_snapshot(project, run, inst)
    inst.data = jsonable(run.data())
    failed = run.drain_incidents()
    if run.completed:
        inst.status, inst.ended_at = INSTANCE_COMPLETED, now
    elif failed:
        inst.status = INSTANCE_ERROR
        inst.error = f"{failed[-1].error_type}: {failed[-1].message}"
    return _Pending(records, failed, run.completed)


def _write(
    tx: Tx, inst: InstanceRecord, pending: _Pending, now: datetime, data_for: str | None = None, data: Any = None
) -> None:
    """Step 3: a step's task rows, incidents and events (the instance row is already updated)."""
    records = pending.records
    tx.save_tasks(inst.id, records)
    for r in records:
        if r.status == CANCELLED and r.ref is not None and r.type in ("userTask", "manualTask"):
            tx.end_claim(r.ref, now, "cancelled")  # a boundary event took the task away from its holder
    refs = {r.task_id: r.ref for r in records}
    for f in pending.failed:
        tx.open_incident(inst.id, refs.get(f.task_id), f.task_id, f.topic, f.error_type, f.message, f.attempts, now)
    events = task_events(inst.id, records, data_for=data_for, data=data)
    if pending.completed:
        events.append(EventRow(inst.id, None, now, "instance_completed", None))
    tx.add_events(events)


def verified_snapshot(project: Project, run: Run, inst: InstanceRecord) -> str:
    """The run's state, proven loadable by loading it back before anything is written.

    Raises:
        DataError: the state does not load back; nothing may be saved.
    """
    state = run.snapshot()
    try:
        project.engine.verify(state, inst.sha256)
    except FlowrunError as exc:
        raise DataError(f"the instance could not be loaded back after this step ({exc}); nothing was saved") from None
    return state


def task_events(
    instance_id: str, records: list[TaskRecord], data_for: str | None = None, data: Any = None
) -> list[EventRow]:
    """One event per changed task record, at its latest time; the completion of ``data_for`` records ``data``."""
    out = []
    for r in records:
        at = r.completed_at or r.started_at or r.ready_at
        if at is None:
            continue
        detail: dict[str, Any] = {"task": r.bpmn_id, "name": r.name}
        if data_for is not None and r.task_id == data_for:
            detail["data"] = jsonable(data)
        out.append(EventRow(instance_id, r.ref, at, r.status, r.actor, detail))
    return out


def jsonable(data: Any) -> Any:
    """``data`` as it reads back from JSON (values JSON does not know become text)."""
    return json.loads(json.dumps(data, default=str))


# -- service calls within one step ---------------------------------------------------

#: The service results of the step being run, by (idempotency key, attempt, topic); None outside a step.
_CALLS: ContextVar[dict[tuple[str, int, str], tuple[bool, Any]] | None] = ContextVar("flowrun_step_calls", default=None)


@contextmanager
def remembered_service_calls() -> Iterator[None]:
    """Within this block, each service call (idempotency key, attempt, topic) reaches its handler once.

    A step run again because its instance changed meanwhile makes its service calls
    again; :func:`once_per_step` hands them the first call's result (or raises its
    error again) instead of calling the handler a second time for the same attempt.
    """
    token = _CALLS.set({})
    try:
        yield
    finally:
        _CALLS.reset(token)


def once_per_step(call: ServiceCaller) -> ServiceCaller:
    """``call``, answering the repeated calls of one step from :func:`remembered_service_calls`.

    Outside that block, or outside a service call's context, every call goes through.
    Results are deep-copied both ways, so the engine cannot change a remembered one.
    """

    def caller(topic: str, data: Mapping[str, Any]) -> Mapping[str, Any]:
        memo = _CALLS.get()
        context = SERVICE_CONTEXT.get()
        if memo is None or context is None:
            return call(topic, data)
        key = (context.idempotency_key, context.attempt, topic)
        if key in memo:
            ok, value = memo[key]
            if not ok:
                raise value
            return copy.deepcopy(value)
        try:
            result = call(topic, data)
        except (FlowrunError, BpmnError) as exc:
            memo[key] = (False, exc)
            raise
        memo[key] = (True, copy.deepcopy(result))
        return result

    return caller
