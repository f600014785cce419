"""Reading instances and tasks: the inbox, ``show``, ``history``, ``instances``."""

from __future__ import annotations

from dataclasses import replace
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
    InboxItem,
    InstanceFilter,
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
    project: Project, instance: str | None = None, lane: str | None = None, family: str | None = None
) -> list[InboxItem]:
    """Ready user tasks across instances, oldest first; never loads an instance's state."""
    now = project.clock.now()
    with project.store.read() as tx:
        inst = resolve_instance(tx, instance) if instance else None
        rows = tx.inbox(inst, lane, family)
    # vars(), not asdict(): the fields are plain values and asdict would copy each one deeply
    return [InboxItem(**vars(r), waited_s=max(0.0, ((r.started_at or now) - r.ready_at).total_seconds())) for r in rows]


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


def instances(project: Project, status: str | None = None, limit: int = 50) -> list[InstanceRecord]:
    """The most recent instances, newest first."""
    return list_instances(project, InstanceFilter(status=status), limit)[0]


def list_instances(project: Project, where: InstanceFilter, limit: int = 50) -> tuple[list[InstanceRecord], int]:
    """The newest ``limit`` instances ``where`` selects, newest first, and how many it selects in all.

    Raises:
        NotFoundError: ``where`` names a family or variant that neither flowrun.yaml nor the
            database knows; the message lists the known ones.
    """
    with project.store.read() as tx:
        _check_names(project, tx, where)
        return tx.list_instances(limit=limit, where=where), tx.count_instances(where)


def outdated_filter(project: Project, where: InstanceFilter) -> InstanceFilter:
    """``where``, keeping only running or failed instances on an older version of their process's file."""
    import hashlib

    from flowrun.app.project import list_processes

    current = []
    for entry in list_processes(project):
        if entry.exists:
            sha = hashlib.sha256((project.settings.root / entry.file).read_bytes()).hexdigest()
            current.append((entry.family, entry.variant, sha))
    return replace(where, outdated=tuple(current))


def _check_names(project: Project, tx: Tx, where: InstanceFilter) -> None:
    from flowrun.app.project import list_processes

    entries = list_processes(project)
    if where.family is not None:
        known = sorted({e.family for e in entries} | set(tx.instance_families()))
        if where.family not in known:
            raise NotFoundError(f"no process family '{where.family}'; families: {', '.join(known) or 'none'}")
    if where.variant is not None:
        variants = {e.variant for e in entries if where.family in (None, e.family)}
        found = tx.list_instances(limit=1, where=replace(where, status=None, pilot=None, outdated=None))
        variants |= {r.variant for r in found}
        if where.variant not in variants:
            raise NotFoundError(f"no variant '{where.variant}'; variants: {', '.join(sorted(variants)) or 'none'}")
