"""Who holds a user task: claiming, giving back and handing over.

A claim is an interval in the ``claims`` table, opened by :func:`claim` (or an interactive
``do``) and ended by :func:`unclaim` (``unclaimed``), :func:`assign` (``assigned``), a Ctrl-C
in ``do`` (``interrupted``) or the completion (``completed``). A task claimed by one person
cannot be claimed or completed by another; :func:`assign` hands it over. Who may take a task
at all, and how touch time follows from the claims, is :mod:`flowrun.app.ownership`.
"""

from __future__ import annotations

from datetime import datetime

from flowrun.app.ownership import check_may_work, claimed_message, operator_name
from flowrun.app.project import Project
from flowrun.app.steps import check_open, get_task
from flowrun.errors import ConflictError, NotFoundError, StateError
from flowrun.models import READY, STARTED, EventRow, TaskRecord


def claim(project: Project, ref: str, actor: str | None) -> TaskRecord:
    """``actor`` (default: see :func:`operator_name`) takes a ready task; their touch time starts.

    Claiming a task one already holds changes nothing.

    Raises:
        ConflictError: someone else holds the task, or the diagram gives it to others (exit 3).
    """
    who = operator_name(actor)
    task = get_task(project, ref)
    check_open(task)
    now = project.clock.now()
    check_may_work(project, task, who, now)
    if task.status == STARTED:
        return task  # held by who already
    with project.store.write() as tx:
        if not tx.claim(int(task.ref or 0), task.instance_id or "", who, now):
            _refuse_changed(tx.task_by_ref(int(task.ref or 0)), task, who, now)
        tx.add_events([EventRow(task.instance_id or "", task.ref, now, "claimed", who)])
    task.status, task.actor, task.started_at = STARTED, who, now
    return task


def _refuse_changed(fresh: TaskRecord | None, task: TaskRecord, who: str, now: datetime) -> None:
    """Raise what changed a task since it was read (completed, or claimed by another)."""
    if fresh is None:
        raise NotFoundError(f"task {task.ref} disappeared")
    check_open(fresh)
    raise ConflictError(claimed_message(fresh, fresh.actor or "someone", fresh.started_at, who, now))


def unclaim(
    project: Project, ref: str, actor: str | None, force: bool = False, outcome: str = "unclaimed"
) -> TaskRecord:
    """Give back a claimed task: it is ready again, and the holder's claim interval ends.

    Args:
        actor: who gives it back; only the holder may, unless ``force``.
        outcome: how the interval ended (``unclaimed``; ``interrupted`` for a Ctrl-C in ``do``).

    Raises:
        StateError: the task is not claimed. ConflictError: someone else holds it and not ``force``.
    """
    who = operator_name(actor)
    task = get_task(project, ref)
    check_open(task)
    now = project.clock.now()
    if task.status != STARTED or task.actor is None:
        raise StateError(f"task {task.ref} ({task.name}) is not claimed; nothing to give back")
    holder = task.actor
    if holder != who and not force:
        raise ConflictError(
            f"task {task.ref} ({task.name}) is claimed by {holder}, not {who}; only {holder} can give it back, "
            f"or run `flowrun unclaim {task.ref} --force`"
        )
    with project.store.write() as tx:
        if not tx.unclaim(int(task.ref or 0), holder, now, outcome):
            _refuse_changed(tx.task_by_ref(int(task.ref or 0)), task, who, now)
        detail = {"holder": holder, "outcome": outcome, "force": force and holder != who}
        tx.add_events([EventRow(task.instance_id or "", task.ref, now, "unclaimed", who, detail)])
    task.status, task.actor, task.started_at = READY, None, None
    return task


def assign(project: Project, ref: str, to: str, actor: str | None) -> tuple[TaskRecord, str | None]:
    """Hand task ``ref`` to ``to``: they become its assignee and hold its claim from now on.

    The previous holder's claim interval ends with the outcome ``assigned``. An assignment
    overrides what the diagram says about who may take the task.

    Returns:
        The task and who held it before (None when nobody did).

    Raises:
        NotFoundError: ``operators:`` in flowrun.yaml names operators and ``to`` is not one of them.
    """
    who = operator_name(actor)
    target = to.strip()
    known = project.settings.operators
    if not target or (known and target not in known):
        names = ", ".join(sorted(known))
        raise NotFoundError(f"no operator '{to}'; the operators in flowrun.yaml are: {names}")
    task = get_task(project, ref)
    check_open(task)
    now = project.clock.now()
    holder = task.actor if task.status == STARTED else None
    if holder == target:
        return task, holder
    with project.store.write() as tx:
        if not tx.hand_over(int(task.ref or 0), task.instance_id or "", holder, target, now):
            fresh = tx.task_by_ref(int(task.ref or 0))
            if fresh is not None:
                check_open(fresh)
            raise ConflictError(f"task {task.ref} ({task.name}) changed hands just now; look again and retry")
        detail = {"to": target, "from": holder}
        tx.add_events([EventRow(task.instance_id or "", task.ref, now, "assigned", who, detail)])
    task.status, task.actor, task.started_at, task.assignee = STARTED, target, now, target
    return task, holder
