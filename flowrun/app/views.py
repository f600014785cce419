"""Reading instances and tasks: the inbox, ``show``, ``history``, ``instances``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowrun.app.project import Project
from flowrun.errors import (
    AmbiguousIdError,
    NotFoundError,
)
from flowrun.models import (
    READY,
    STARTED,
    WAITING,
    ClaimInterval,
    InboxItem,
    InboxWho,
    InstanceRecord,
    InstanceView,
    TaskRecord,
    Wait,
)

if TYPE_CHECKING:
    from flowrun.store import Tx


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
    project: Project,
    instance: str | None = None,
    lane: str | None = None,
    family: str | None = None,
    who: InboxWho | None = None,
) -> list[InboxItem]:
    """Ready user tasks across instances, oldest first; never loads an instance's state.

    Args:
        who: only one person's or group's tasks (see :class:`~flowrun.models.InboxWho`).

    Raises:
        NotFoundError: ``who.group`` is no group of ``operators:`` in flowrun.yaml (the message lists them).
    """
    if who is not None and who.group is not None:
        _check_group(project, who.group)
    now = project.clock.now()
    with project.store.read() as tx:
        inst = resolve_instance(tx, instance) if instance else None
        rows = tx.inbox(inst, lane, family, who=who)
    # vars(), not asdict(): the fields are plain values and asdict would copy each one deeply
    return [InboxItem(**vars(r), waited_s=max(0.0, ((r.started_at or now) - r.ready_at).total_seconds())) for r in rows]


def _check_group(project: Project, group: str) -> None:
    known = sorted({g for groups in project.settings.operators.values() for g in groups})
    if group in known:
        return
    if not known:
        raise NotFoundError(
            f"no group '{group}': flowrun.yaml names no groups; list operators and their groups under "
            "operators:, e.g. operators: {alice: {groups: [call-centre]}}"
        )
    raise NotFoundError(f"no group '{group}'; the groups under operators: in flowrun.yaml are: {', '.join(known)}")


def show(project: Project, instance: str) -> InstanceView:
    """An instance's status, variant, what it waits for and its data."""
    with project.store.read() as tx:
        iid = resolve_instance(tx, instance)
        rec = tx.get_instance(iid)
        tasks = tx.instance_tasks(iid)
    if rec is None:  # resolve_instance found it in this same read
        raise RuntimeError(f"instance {iid} vanished during one read")
    waiting = [
        Wait(
            kind="task" if t.type in ("userTask", "manualTask") else t.type,
            ref=t.ref,
            task=t.bpmn_id,
            name=t.name,
            lane=t.lane,
            since=t.ready_at,
            actor=t.actor,
            waits_for=t.waits_for,
            due=t.due_at,
        )
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


def claim_history(project: Project, instance_id: str) -> dict[int, list[ClaimInterval]]:
    """Each task's claim intervals (task ref -> intervals, oldest first) of an instance (its full id)."""
    with project.store.read() as tx:
        found = tx.instance_claims(instance_id)
    out: dict[int, list[ClaimInterval]] = {}
    for c in found:
        out.setdefault(c.task_ref, []).append(c)
    return out


def instances(project: Project, status: str | None = None, limit: int = 50) -> list[InstanceRecord]:
    """The most recent instances, newest first."""
    with project.store.read() as tx:
        return tx.list_instances(status, limit)
