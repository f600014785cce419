"""Reading instances and tasks: the inbox, ``show``, ``history``, ``instances``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from flowrun.app.project import Project
from flowrun.app.worklist import matches, parse_where, refuse_unknown_filters, sort_items
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
    InstanceFilter,
    InstanceRecord,
    InstanceView,
    TaskPreview,
    TaskRecord,
    Wait,
)

if TYPE_CHECKING:
    from flowrun.store import Tx


def resolve_instance(tx: Tx, ref: str) -> str:
    """The full id of the instance named by ``ref``: its business key, or its id or an id prefix.

    A key and an id prefix that name different instances (or one key in several
    families) are ambiguous: the message lists them, each by id and key.

    Raises:
        NotFoundError / AmbiguousIdError.
    """
    text = ref.strip()
    by_key = tx.instance_ids_with_key(text) if text else []
    prefix = text.lower()
    is_hex = bool(prefix) and all(c in "0123456789abcdef" for c in prefix)
    found = list(dict.fromkeys([*by_key, *(tx.instance_ids_like(prefix) if is_hex else [])]))
    if not found:
        if not is_hex:
            raise NotFoundError(
                f"no instance with key or id '{ref}'; a case is named by its key ('flowrun start --key') or by "
                "the hex id 'flowrun start' printed; see 'flowrun tasks' or 'flowrun instances'"
            )
        raise NotFoundError(f"no instance with id or key '{ref}'; see 'flowrun tasks' or 'flowrun instances'")
    if len(found) > 1:
        keyed = set(by_key)
        raise AmbiguousIdError("instance", ref, [f"{f[:12]} (key {ref})" if f in keyed else f[:12] for f in found])
    return found[0]


def inbox(
    project: Project,
    instance: str | None = None,
    lane: str | None = None,
    family: str | None = None,
    *,
    where: Sequence[str] = (),
    sort: str | None = None,
    who: InboxWho | None = None,
) -> list[InboxItem]:
    """Ready user tasks across instances, in ``sort`` order (see :func:`~flowrun.app.worklist.sort_items`).

    Args:
        instance: an instance id, id prefix or business key.
        lane: a lane, matched without case.
        where: ``FIELD=VALUE`` filters on the case data (all must hold).
        who: only one person's or group's tasks (see :class:`~flowrun.models.InboxWho`).

    Never loads an instance's state; reads the case data only when the inbox shows data
    columns (``inbox: columns:`` in flowrun.yaml) or ``where`` filters on it.

    Raises:
        NotFoundError: nothing is waiting and ``lane`` or ``family`` names nothing known (listing what is).
        DataError: a malformed ``where`` or ``sort``.
        NotFoundError: ``who.group`` is no group of ``operators:`` in flowrun.yaml (the message lists them).
    """
    if who is not None and who.group is not None:
        _check_group(project, who.group)
    filters = parse_where(where)
    now = project.clock.now()
    with_data = bool(filters or project.settings.inbox_columns)
    with project.store.read() as tx:
        inst = resolve_instance(tx, instance) if instance else None
        rows = tx.inbox(inst, lane, family, with_data=with_data, who=who)
        if not rows:
            refuse_unknown_filters(project, tx, lane, family)
    items = [
        # vars(), not asdict(): the fields are plain values and asdict would copy each one deeply
        InboxItem(
            **vars(r),
            waited_s=max(0.0, ((r.started_at or now) - r.ready_at).total_seconds()),
            due_s=(r.deadline_at - now).total_seconds() if r.deadline_at is not None else None,
        )
        for r in rows
        if not filters or matches(r.data, filters)
    ]
    return sort_items(items, sort)


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
            due=t.deadline_at if t.type in ("userTask", "manualTask") else t.due_at,
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
        business_key=rec.business_key,
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


def preview_task(project: Project, ref: str) -> TaskPreview:
    """Task ``ref`` as an operator previews it before claiming: its form and its case's data so far.

    Nothing is changed: the task stays unclaimed.

    Raises:
        NotFoundError: no task with that ref. FormError: its form cannot be read.
    """
    from flowrun.app.steps import get_task, task_form

    task = get_task(project, ref)
    with project.store.read() as tx:
        rec = tx.get_instance(task.instance_id or "")
        spec = None if rec is None or project.engine.knows(rec.sha256) else tx.model_spec(rec.sha256)
    if rec is None:
        raise NotFoundError(f"task {task.ref} belongs to no instance; the database was changed outside flowrun")
    from flowrun.app.logs import IMPORTED_PROCESS_ID

    if rec.process_id != IMPORTED_PROCESS_ID:  # an imported case has no model to read documentation from
        task.documentation = project.engine.documentation(spec, rec.sha256, task.bpmn_id)
    form = task_form(project, task) if task.type in ("userTask", "manualTask") else None
    return TaskPreview(task, rec.family, rec.variant, rec.business_key, form, rec.data)
