"""``flowrun migrate``: move running cases of older versions of a diagram to its current file.

flowrun keeps each version of a model by its sha256 (the ``models`` table), and a
case runs on the version it started with. When a diagram had a mistake (a typo in a
gateway condition that fails at run time), the fixed file is a new version; this
moves the cases still running (or failed) on older versions to it, with
SpiffWorkflow's workflow diff (:mod:`flowrun.engine.migration`). Each move is one
optimistic step (:func:`flowrun.app.stepping.run_optimistic_step`) that also brings
the case's task rows in line with the moved state, and is recorded in the event log
(``instance_migrated``) and so in ``flowrun history``. A failed case stays failed:
``flowrun retry`` then runs its step again on the new version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flowrun.app.project import Project, resolve_process
from flowrun.app.stepping import run_optimistic_step
from flowrun.app.steps import _file_sha, _stored_spec
from flowrun.app.views import resolve_instance
from flowrun.errors import NotFoundError, StateError
from flowrun.models import (
    INSTANCE_ERROR,
    RUNNING,
    EventRow,
    InstanceFilter,
    InstanceRecord,
    Migration,
    ModelChange,
    TaskRecord,
)

if TYPE_CHECKING:
    from flowrun.engine import Run
    from flowrun.store import Tx

#: Most cases one ``flowrun migrate`` moves (run it again for more).
MAX_CASES = 10_000


@dataclass(frozen=True)
class _Model:
    """The current version of a process: its file, sha256, stored definition and process id."""

    family: str
    variant: str
    file: str
    sha256: str
    spec: str
    process_id: str


def migrate(
    project: Project,
    target: str,
    instances: Sequence[str] = (),
    dry_run: bool = False,
    actor: str | None = None,
) -> list[Migration]:
    """Move the running and failed cases of older versions of ``target``'s file to the current one.

    Args:
        target: ``FAMILY[:VARIANT]`` or a .bpmn file, as for ``flowrun start``.
        instances: only these cases (ids, prefixes or business keys); by default every outdated one.
        dry_run: only say what would change; nothing is saved.

    Returns:
        One :class:`Migration` per case, oldest first; ``done`` is False for a dry run and for a
        case whose ``change.blocked`` names the elements that keep it from moving.

    Raises:
        NotFoundError: unknown process, or a named case is not one of its cases.
        StateError: a named case has ended or already runs on the current version.
        ModelError: the current file cannot be loaded.
    """
    model = _current_model(project, target, store=not dry_run)
    with project.store.read() as tx:
        cases = _named(tx, model, instances) if instances else _outdated(tx, model)
    return [_migrate_one(project, model, rec, dry_run, actor) for rec in cases]


def _current_model(project: Project, target: str, store: bool) -> _Model:
    family, variant, path = resolve_process(project, target)
    s = project.settings
    display = s.rel(path)
    sha = _file_sha(path, display)
    with project.store.read(snapshot=False) as tx:
        spec = _stored_spec(tx, sha)
        process_id = tx.model_process_id(sha) if spec is not None else ""
    if spec is None:
        from flowrun.engine import load_model

        info = load_model(path, display, s.processes_dir if path.parent == s.processes_dir else None)
        spec, sha, process_id = info.spec, info.sha256, info.process_id
        if store:
            with project.store.write() as tx:
                tx.ensure_model(sha, process_id, display, spec, project.clock.now())
    return _Model(family, variant, display, sha, spec, process_id)


def _outdated(tx: Tx, model: _Model) -> list[InstanceRecord]:
    where = InstanceFilter(
        family=model.family, variant=model.variant, outdated=((model.family, model.variant, model.sha256),)
    )
    return list(reversed(tx.list_instances(limit=MAX_CASES, where=where)))


def _named(tx: Tx, model: _Model, names: Sequence[str]) -> list[InstanceRecord]:
    out = []
    for name in dict.fromkeys(names):
        rec = tx.get_instance(resolve_instance(tx, name))
        if rec is None:
            raise NotFoundError(f"instance {name} is missing")
        if (rec.family, rec.variant) != (model.family, model.variant):
            raise NotFoundError(
                f"instance {rec.id[:8]} is a case of {rec.family}:{rec.variant}, not of {model.family}:{model.variant}"
            )
        if rec.status not in (RUNNING, INSTANCE_ERROR):
            raise StateError(f"instance {rec.id[:8]} is {rec.status}; only running or failed cases can be migrated")
        if rec.sha256 == model.sha256:
            raise StateError(f"instance {rec.id[:8]} already runs on the current version of {model.file}")
        out.append(rec)
    return out


def _migrate_one(project: Project, model: _Model, rec: InstanceRecord, dry_run: bool, actor: str | None) -> Migration:
    """Move one case (or, for a dry run, say what would change); a blocked case is left as it is."""
    now = project.clock.now()
    found: dict[str, Any] = {}

    def check(tx: Tx, inst: InstanceRecord) -> Any:
        if inst.status not in (RUNNING, INSTANCE_ERROR) or inst.sha256 == model.sha256:
            raise StateError(f"instance {inst.id[:8]} changed meanwhile (it is {inst.status}); see 'flowrun show'")
        return inst.sha256

    def act(run: Run, inst: InstanceRecord, old_sha: str) -> bool:
        change, moved = project.engine.migrate(run, model.spec, model.sha256, apply=not dry_run)
        found.update(change=change, records=moved.open_records() if moved else [], old=old_sha)
        if moved is None:
            return False
        inst.sha256, inst.file, inst.process_id = model.sha256, model.file, model.process_id
        return True

    def finish(tx: Tx, inst: InstanceRecord, old_sha: str) -> None:
        tx.set_instance_model(inst.id, model.sha256, model.process_id, model.file)
        _align_tasks(tx, inst.id, found["records"], now)
        change: ModelChange = found["change"]
        detail: dict[str, Any] = {"from": old_sha, "to": model.sha256, "file": model.file}
        detail.update(added=list(change.added), removed=list(change.removed), changed=list(change.changed))
        tx.add_events([EventRow(inst.id, None, now, "instance_migrated", actor, detail)])

    done = run_optimistic_step(
        project, rec.id, act, f"instance {rec.id[:8]} was being migrated", now, check=check, finish=finish
    )
    return Migration(
        instance=rec.id,
        family=rec.family,
        variant=rec.variant,
        from_sha256=found.get("old", rec.sha256),
        to_sha256=model.sha256,
        change=found["change"],
        done=done is not None,
    )


def _align_tasks(tx: Tx, instance_id: str, records: list[TaskRecord], now: datetime) -> None:
    """The case's task rows after a move: gone tasks cancelled, known ones re-described, new ones added."""
    rows = {t.task_id: t for t in tx.instance_tasks(instance_id) if t.status in ("ready", "started", "waiting")}
    live = {r.task_id for r in records}
    gone = [t for t in rows.values() if t.task_id not in live]
    tx.close_tasks(instance_id, [t.task_id for t in gone], now)
    tx.respec_tasks(instance_id, [r for r in records if r.task_id in rows])
    # New tasks, and tasks whose element changed kind (a timer that is now a user task), start now;
    # a claimed task stays claimed (the engine knows no claims: to it the task is just ready).
    new = [r for r in records if r.task_id not in rows]
    moved = [r for r in records if r.task_id in rows and r.status != rows[r.task_id].status]
    moved = [r for r in moved if (rows[r.task_id].status, r.status) != ("started", "ready")]
    for r in new + moved:
        r.ready_at = now
    tx.save_tasks(instance_id, new + moved)
    events = [EventRow(instance_id, t.ref, now, "cancelled", None, {"task": t.bpmn_id, "name": t.name}) for t in gone]
    events += [EventRow(instance_id, r.ref, now, r.status, None, {"task": r.bpmn_id, "name": r.name}) for r in new]
    tx.add_events(events)
