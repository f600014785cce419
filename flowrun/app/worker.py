"""What runs without an operator: due timers and service jobs (``flowrun worker``),
incidents and their retry, messages and signals (``flowrun send``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowrun.app.correlation import Target, pick_cases
from flowrun.app.project import Project, list_processes
from flowrun.app.stepping import SKIP, jsonable, run_optimistic_step
from flowrun.app.steps import start
from flowrun.errors import (
    ConflictError,
    DataError,
    FlowrunError,
    NotFoundError,
    ScriptError,
    StoreError,
)
from flowrun.models import (
    INSTANCE_ERROR,
    RUNNING,
    EventRow,
    Incident,
    InstanceRecord,
    PendingWork,
    StepResult,
    TaskRecord,
)

if TYPE_CHECKING:
    from flowrun.engine import Run
    from flowrun.store import Tx


@dataclass(frozen=True)
class WorkRan:
    """One piece of due work a worker pass ran (or tried), for its line in the worker's output.

    Attributes:
        at: when the pass ran it (the project clock's time).
        instance, key: the instance's id and business key (None when it has none).
        work: what was due, as it was before it ran; None when a step failed before
            anything due could be told (the instance could not be loaded).
        outcome: ``"fired"`` (a timer), ``"done"`` (a service call succeeded), ``"retry"``
            (it failed; ``next_at`` is the next attempt), ``"incident"`` (it failed for good).
        error: why it failed, for ``"retry"`` and ``"incident"``.
        incident: the number of the incident opened, for ``"incident"``.
    """

    at: datetime
    instance: str
    key: str | None
    work: PendingWork | None
    outcome: str
    next_at: datetime | None = None
    error: str | None = None
    incident: int | None = None


@dataclass
class WorkerPass:
    """What one worker pass did: instances whose due work ran, instances that failed, and each piece run."""

    fired: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    ready: list[TaskRecord] = field(default_factory=list)
    ran: list[WorkRan] = field(default_factory=list)


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker serves: the database (its URL without password) and the service topics of the project."""

    database: str
    topics: list[str]


def worker_setup(project: Project) -> WorkerSetup:
    """The database and the topics a worker of ``project`` serves, for its start-up line.

    Raises:
        StoreError: the database is read-only, so a worker could save nothing it runs.
    """
    store = project.store
    if store.read_only:
        raise StoreError(f"{store.read_only}; nothing was saved")
    return WorkerSetup(store.shown_url, sorted(project.settings.services))


def run_due(project: Project, limit: int = 100, worker: str | None = None, lease_s: float = 60.0) -> WorkerPass:
    """Fire due timers and run due service jobs, one instance per transaction.

    The due work is first claimed under a lease (``SELECT ... FOR UPDATE SKIP LOCKED``
    on PostgreSQL), so several workers share it without doing anything twice; a
    worker that dies loses its lease after ``lease_s`` and another takes over. A
    step that fails becomes an incident on its instance (status ``error``), which
    ``flowrun retry`` resumes once the cause is fixed; the other instances go on.
    What ran is in the result's ``ran``, one entry per timer or service call.
    """
    from flowrun.engine.step_limits import supervisor_pid

    now = project.clock.now()
    # Under the supervisor, the leases belong to it: a worker it starts again after a kill takes them back.
    owner = worker or f"{socket.gethostname()}:{supervisor_pid() or os.getpid()}"
    with project.store.write() as tx:
        due = tx.claim_due(now, owner, now + timedelta(seconds=lease_s), limit)
    result = WorkerPass()
    for instance_id in due:
        _run_instance(project, instance_id, owner, now, result)
    return result


def _run_instance(project: Project, instance_id: str, owner: str, now: datetime, result: WorkerPass) -> None:
    """Run one claimed instance's due work and add what ran (or failed) to ``result``."""
    seen: dict[str, Any] = {"key": None, "before": [], "after": []}

    def check(tx: Tx, inst: InstanceRecord) -> Any:
        seen["key"] = inst.business_key
        return None if inst.status == RUNNING else SKIP

    def act(run: Run, inst: InstanceRecord, _: Any) -> bool:
        seen["before"] = [w for w in run.pending_work() if _is_due(w, now)]
        changed = run.run_jobs() | run.refresh()
        seen["after"] = run.pending_work()
        return changed

    def finish(tx: Tx, inst: InstanceRecord, _: Any) -> None:
        tx.release(inst.id, owner)

    try:
        done = run_optimistic_step(project, instance_id, act, "its due work ran", now, check=check, finish=finish)
    except ConflictError:
        # Operators kept changing the instance: not a fault of the instance, so no incident;
        # the work stays due and the next pass takes it again.
        with project.store.write() as tx:
            tx.release(instance_id, owner)
        return
    except FlowrunError as exc:
        number = fail_instance(project, instance_id, type(exc).__name__, str(exc), owner)
        result.failed.append((instance_id, str(exc)))
        first = seen["before"][0] if seen["before"] else None
        result.ran.append(WorkRan(now, instance_id, seen["key"], first, "incident", None, str(exc), number))
        return
    if done is None:  # nothing was due after all: leave the instance as it is
        with project.store.write() as tx:
            tx.release(instance_id, owner)
        return
    inst, records = done
    result.fired.append(instance_id)
    result.ready += StepResult.of(instance_id, inst.status, records).ready
    result.ran += _what_ran(project, inst, seen["before"], seen["after"], now)


def _is_due(work: PendingWork, now: datetime) -> bool:
    return not work.incident and work.due_at is not None and work.due_at <= now


def _what_ran(
    project: Project, inst: InstanceRecord, before: list[PendingWork], after: list[PendingWork], now: datetime
) -> list[WorkRan]:
    """Each due piece of work and what became of it, comparing the instance's pending work before and after."""
    later = {w.task_id: w for w in after}
    out = []
    for work in before:
        then = later.get(work.task_id)
        if work.kind == "timer":
            if then is None or then.due_at != work.due_at:
                out.append(WorkRan(now, inst.id, inst.business_key, work, "fired"))
        elif then is None:
            out.append(WorkRan(now, inst.id, inst.business_key, work, "done"))
        elif then.incident:
            out.append(
                WorkRan(
                    now,
                    inst.id,
                    inst.business_key,
                    work,
                    "incident",
                    None,
                    then.error,
                    _incident_of(project, inst.id, work.task_id),
                )
            )
        elif then.attempt > work.attempt:
            out.append(WorkRan(now, inst.id, inst.business_key, work, "retry", then.due_at, then.error))
    return out


def _incident_of(project: Project, instance_id: str, task_id: str) -> int | None:
    """The number of the open incident of a service task (just opened by the step that failed)."""
    with project.store.read() as tx:
        found = [i.id for i in tx.list_incidents(instance=instance_id) if i.task_id == task_id]
    return found[0] if found else None


def fail_instance(project: Project, instance_id: str, error_type: str, message: str, owner: str | None = None) -> int:
    """A worker's step of an instance failed: it gets an incident and waits for ``flowrun retry``.

    Used by the worker for a step that raised, and by the ``flowrun`` supervisor for a
    worker the kernel killed in a step; ``owner``'s lease on the instance is given up.
    Returns the incident's number.
    """
    now = project.clock.now()
    with project.store.write() as tx:
        number = tx.open_incident(instance_id, None, "", None, error_type, message, 1, now)
        tx.set_instance_status(instance_id, INSTANCE_ERROR, message)
        if owner:
            tx.release(instance_id, owner)
    return number


def incidents(project: Project, include_resolved: bool = False) -> list[Incident]:
    """Incidents, newest first (open ones only unless asked)."""
    with project.store.read() as tx:
        return tx.list_incidents(include_resolved)


def retry(project: Project, incident_id: str) -> StepResult:
    """Resume the instance of an incident after its cause was fixed: run the failed step again now.

    Raises:
        NotFoundError: no such open incident.
    """
    text = incident_id.strip().lstrip("#")
    if not (text.isascii() and text.isdigit()):
        raise NotFoundError(f"'{incident_id}' is not an incident number; see 'flowrun incidents'")
    if len(text) > 19 or int(text) >= 2**63:  # no database holds a larger id
        raise NotFoundError(f"no open incident {text[:20]}; see 'flowrun incidents'")
    now = project.clock.now()
    with project.store.read() as tx:
        found = tx.get_incident(int(text))
    if found is None or found.resolved_at is not None:
        raise NotFoundError(f"no open incident {text}; see 'flowrun incidents'")

    def check(tx: Tx, inst: InstanceRecord) -> Any:
        again = tx.get_incident(int(text))
        if again is None or again.resolved_at is not None:
            raise NotFoundError(f"no open incident {text}; see 'flowrun incidents'")
        return None

    def act(run: Run, inst: InstanceRecord, _: Any) -> bool:
        if found.task_id:
            run.retry(found.task_id)
        else:
            run.refresh()
            run.run_jobs()
        inst.status, inst.error = RUNNING, None
        return True

    def finish(tx: Tx, inst: InstanceRecord, _: Any) -> None:
        tx.resolve_incident(int(text), now)
        tx.add_events([EventRow(inst.id, found.task_ref, now, "incident_retried", None, {"incident": int(text)})])

    done = run_optimistic_step(
        project, found.instance, act, f"incident {text} was retried", now, check=check, finish=finish
    )
    if done is None:  # the retry's check raises instead of skipping
        raise RuntimeError("the retry step was skipped")
    inst, records = done
    return StepResult.of(inst.id, inst.status, records)


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
    target: Target | None = None,
) -> list[StepResult]:
    """Deliver a message to the one waiting case it is for, or a signal to every waiting case.

    The case is named by ``instance`` (or ``target``'s instance, key or correlation, see
    :func:`flowrun.app.correlation.pick_cases`); a message that fits several waiting
    cases is refused unless ``target.every``. With no case waiting and none named, a
    message starts the processes of the project whose message start event catches it.

    Each instance takes the message in a step of its own. When it cannot (a correlation
    expression of its diagram fails), that instance is left as it was, the others still
    get the message, and the failure is raised after them.

    Raises:
        NotFoundError: nothing waits for it (or not the case named) and no process starts with it.
        AmbiguousTargetError: a message fits several waiting cases; the message lists them.
        DataError: the payload is beyond the data limits (see :func:`flowrun.forms.data.check_limits`).
        ScriptError: an instance could not take it; the message names the diagram, the
            expression and the reason, and the instances that did take it.
    """
    from flowrun.forms.data import check_limits

    target = replace(target or Target(), instance=instance) if instance else target or Target()
    check_limits(dict(data or {}), f"the data of the {kind} '{name}'")
    payload = jsonable(dict(data or {}))
    now = project.clock.now()
    with project.store.read() as tx:
        targets = [c.id for c in pick_cases(tx, kind, name, target)]
    results = []
    failed: list[tuple[str, FlowrunError]] = []
    for case_id in targets:
        try:
            done = _deliver(project, case_id, kind, name, payload, now)
        except (ScriptError, DataError) as exc:
            failed.append((case_id, exc))
            continue
        if done is not None:
            results.append(done)
    if failed:
        raise _not_delivered(kind, name, failed, results)
    if results or target.named:
        if not results:  # it stopped waiting between the read and the delivery
            raise NotFoundError(f"the case is no longer waiting for the {kind} '{name}'; see 'flowrun show'")
        return results
    for family, variant, path in _starters(project, kind, name):
        process = f"{family}:{variant}" if variant != "default" else str(path)
        results.append(start(project, process, payload, message=(kind, name)))
    if not results:
        raise NotFoundError(
            f"no instance waits for the {kind} '{name}' and no process starts with it; "
            "check the name against the diagram (see 'flowrun show ID' for what an instance waits for)"
        )
    return results


def _not_delivered(
    kind: str, name: str, failed: list[tuple[str, FlowrunError]], results: list[StepResult]
) -> FlowrunError:
    """One error for the instances that could not take the message, naming those that did."""
    first_id, first = failed[0]
    text = f"instance {first_id[:8]}: {first.message}"
    if len(failed) > 1:
        text += f" (and {len(failed) - 1} more instance(s): {', '.join(i[:8] for i, _ in failed[1:])})"
    if results:
        text += f"; the {kind} was delivered to {', '.join(r.instance[:8] for r in results)}"
    return type(first)(text)


def _deliver(
    project: Project,
    instance_id: str,
    kind: str,
    name: str,
    payload: dict[str, Any],
    now: datetime,
) -> StepResult | None:
    """Deliver a message or signal to one running instance; None when it was not waiting for it."""
    delivered = False

    def check(tx: Tx, inst: InstanceRecord) -> Any:
        return SKIP if inst.status != RUNNING else None

    def act(run: Run, inst: InstanceRecord, _: Any) -> bool:
        nonlocal delivered
        delivered = run.deliver(kind, name, payload)
        return delivered or run.changed  # a timer that was due first may have taken the instance elsewhere

    def finish(tx: Tx, inst: InstanceRecord, _: Any) -> None:
        if delivered:
            tx.add_events([EventRow(inst.id, None, now, f"{kind}_received", None, {"name": name, "data": payload})])

    done = run_optimistic_step(
        project, instance_id, act, f"the {kind} {name} was delivered", now, check=check, finish=finish
    )
    if done is None or not delivered:
        return None
    inst, records = done
    return StepResult.of(inst.id, inst.status, records)


def _starters(project: Project, kind: str, name: str) -> list[tuple[str, str, Path]]:
    from flowrun.engine.loader import start_events

    out = []
    for entry in list_processes(project):
        path = project.settings.root / entry.file
        if entry.exists and (kind, name) in start_events(path):
            out.append((entry.family, entry.variant, path))
    return out
