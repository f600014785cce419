"""The rules of who holds and who may take a user task, and how long its completer held it.

Who may take a task comes from the diagram (``camunda:assignee``, ``candidateUsers``,
``candidateGroups``, stored on the task row when it became ready) and from ``operators:`` in
``flowrun.yaml`` (each operator's groups): a task with an assignee is that user's; a task with
candidates is for a candidate user or a member of a candidate group; a task with neither is
anyone's. Touch time is the time the person who completed a task held it, summed over all of
their claim intervals (:func:`touch_seconds`); the time between a release and the next claim
is waiting. The commands that change claims are in :mod:`flowrun.app.claims`.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence
from datetime import datetime

from flowrun.app.project import Project
from flowrun.errors import ConflictError, ProjectError
from flowrun.models import STARTED, ClaimInterval, TaskRecord


def operator_name(given: str | None) -> str:
    """Who runs the command: ``given`` (``--as``), else ``$FLOWRUN_USER``, else the login name.

    Raises:
        ProjectError: none of them is available (no login name in this environment).
    """
    if given is not None and given.strip():
        return given.strip()
    from_env = os.environ.get("FLOWRUN_USER", "").strip()
    if from_env:
        return from_env
    try:
        login = getpass.getuser().strip()
    except (KeyError, OSError, ImportError):
        login = ""
    if not login:
        raise ProjectError("cannot tell who you are: give --as NAME, or set FLOWRUN_USER=NAME")
    return login


def claimed_message(task: TaskRecord, holder: str, since: datetime | None, actor: str, now: datetime) -> str:
    """Why ``actor`` cannot work on a task ``holder`` holds, and what to do instead."""
    when = f" since {_local(since, now)}" if since is not None else ""
    return (
        f"task {task.ref} ({task.name}) is claimed by {holder}{when}; ask {holder}, "
        f"or `flowrun assign {task.ref} --to {actor}`"
    )


def _local(when: datetime, now: datetime) -> str:
    """A time in local time to the minute; the date too when it is not today's."""
    local, today = when.astimezone(), now.astimezone()
    return local.strftime("%H:%M") if local.date() == today.date() else local.strftime("%Y-%m-%d %H:%M")


def refusal(project: Project, task: TaskRecord, actor: str) -> str | None:
    """Why ``actor`` may not take ``task`` by what the diagram says; None when they may."""
    fix = f"ask one of them, or `flowrun assign {task.ref} --to {actor}`"
    if task.assignee is not None:
        if task.assignee == actor:
            return None
        return f"task {task.ref} ({task.name}) is assigned to {task.assignee}, not {actor}; {fix}"
    if task.candidates is None:
        return None
    users, groups = task.candidates.get("users", []), task.candidates.get("groups", [])
    mine = project.settings.operators.get(actor, ())
    if actor in users or any(g in groups for g in mine):
        return None
    offered = [f"group {g}" for g in groups] + [f"user {u}" for u in users]
    known = (
        f"{actor}'s groups: {', '.join(mine)}" if mine else f"{actor} is in no group under operators: in flowrun.yaml"
    )
    return f"task {task.ref} ({task.name}) is offered to {', '.join(offered) or 'nobody'} ({known}); {fix}"


def check_may_take(project: Project, task: TaskRecord, actor: str) -> None:
    """Raise :class:`ConflictError` (exit 3) when ``actor`` may not take ``task``."""
    reason = refusal(project, task, actor)
    if reason is not None:
        raise ConflictError(reason)


def check_may_work(project: Project, task: TaskRecord, actor: str, now: datetime) -> None:
    """Raise :class:`ConflictError` (exit 3) unless ``actor`` holds ``task`` or may claim it.

    Checked before any form data is read or asked, so the refusal is the first thing said.
    """
    holder = task.actor if task.status == STARTED else None
    if holder is None:
        check_may_take(project, task, actor)
    elif holder != actor:
        raise ConflictError(claimed_message(task, holder, task.started_at, actor, now))


def touch_seconds(intervals: Sequence[ClaimInterval], actor: str | None, now: datetime) -> float:
    """The seconds ``actor`` held the task, summed over their claim intervals (an open one up to ``now``)."""
    return sum(c.seconds(now) for c in intervals if c.actor == actor)
