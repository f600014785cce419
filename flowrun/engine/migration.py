"""Moving a live workflow to a new version of its model, with SpiffWorkflow's workflow diff.

:func:`compare` says what a move changes (:class:`~flowrun.models.ModelChange`) and
which elements block it; :func:`move` makes it. SpiffWorkflow aligns the old and new
task specs by BPMN id (then by structure), gives every task the aligned spec, and
resets the branches of ready and waiting tasks so that what comes after them is
predicted from the new diagram.

A move is refused when the case has a task at an element the new version lacks:
waiting there (it could never go on), or having run there (its record names a spec
the new definition cannot restore). A waiting timer keeps its due time across the
reset (SpiffWorkflow would start it again from now), so a case that failed at a
gateway after its timer fired can be retried on the new version at once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.util.diff import SpecDiff, WorkflowDiff, migrate_workflow
from SpiffWorkflow.util.task import TaskState

from flowrun.engine._spiff import REGISTRY
from flowrun.errors import StateError
from flowrun.models import ModelChange

#: States of a task that has not happened yet (dropped and predicted again by a move).
_PREDICTED = TaskState.PREDICTED_MASK | TaskState.FUTURE

#: Attribute names of SpiffWorkflow's serialised specs, as a designer calls them.
_ATTRIBUTES = {
    "cond_task_specs": "conditions",
    "name": "id",
    "bpmn_id": "id",
    "bpmn_name": "name",
    "inputs": "incoming",
    "outputs": "outgoing",
    "default_task_spec": "default flow",
    "extensions": "extension properties",
}


@dataclass
class _Diffs:
    """The diffs of a workflow and of each of its subprocesses, and the new specs they move to."""

    pairs: list[tuple[Any, WorkflowDiff, Any]]  # (workflow or subworkflow, its diff, its new spec)
    specs: list[SpecDiff]
    gone: list[Any]  # subworkflows whose process the new version no longer has


def compare(workflow: Any, new_spec: Any, new_subs: dict[str, Any]) -> ModelChange:
    """What moving ``workflow`` to ``new_spec`` (calling ``new_subs``) would change; nothing is changed."""
    return _change(workflow, _diff(workflow, new_spec, new_subs))


def move(workflow: Any, new_spec: Any, new_subs: dict[str, Any]) -> ModelChange:
    """Move ``workflow`` to ``new_spec`` in place, unless the change is blocked (then it is left as it was).

    Returns:
        The change; when its ``blocked`` is not empty, nothing was moved.
    """
    diffs = _diff(workflow, new_spec, new_subs)
    change = _change(workflow, diffs)
    if change.blocked:
        return change
    timers = {
        t.id: (_definition(t.task_spec), copy.deepcopy(t.internal_data))
        for wf, _, _ in diffs.pairs
        for t in wf.get_tasks(state=TaskState.WAITING, skip_subprocesses=True)
    }
    for wf, diff, spec in diffs.pairs:
        migrate_workflow(diff, wf, spec)
    workflow.subprocess_specs = dict(new_subs)
    for wf, _, _ in diffs.pairs:
        for task in wf.get_tasks(state=TaskState.WAITING, skip_subprocesses=True):
            before = timers.get(task.id)
            # The reset started its timer again from now: keep the time it was due at, unless the
            # new version changed the timer itself (then it runs from now, as the new one reads).
            if before is not None and before[0] == _definition(task.task_spec):
                task.internal_data.update(before[1])
    return change


def _definition(spec: Any) -> Any:
    """What a spec waits for (its serialised event definition), leaving out the names of its parts."""
    return _unnamed(REGISTRY.convert(spec).get("event_definition"))


def _unnamed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unnamed(v) for k, v in value.items() if k != "name"}
    if isinstance(value, list):
        return [_unnamed(v) for v in value]
    return value


def _diff(workflow: Any, new_spec: Any, new_subs: dict[str, Any]) -> _Diffs:
    try:
        top = SpecDiff(REGISTRY, workflow.spec, new_spec)
        out = _Diffs([(workflow, WorkflowDiff(workflow, top), new_spec)], [top], [])
        for sub in workflow.subprocesses.values():
            new = new_subs.get(sub.spec.name)
            if new is None:
                out.gone.append(sub)
                continue
            spec_diff = SpecDiff(REGISTRY, sub.spec, new)
            out.specs.append(spec_diff)
            out.pairs.append((sub, WorkflowDiff(sub, spec_diff), new))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise StateError(f"the two versions of the diagram cannot be compared: {exc}") from exc
    return out


def _change(workflow: Any, diffs: _Diffs) -> ModelChange:
    added = sorted({_id(s) for d in diffs.specs for s in d.added} - {""})
    removed = sorted({_id(s) for d in diffs.specs for s in d.removed} - {""})
    changed = sorted(
        f"{_id(s)} ({', '.join(dict.fromkeys(_ATTRIBUTES.get(a, a) for a in attrs))})"
        for d in diffs.specs
        for s, attrs in d.changed.items()
        if _id(s)
    )
    blocked: dict[str, str] = {}
    for _, diff, _ in diffs.pairs:
        for task in diff.removed:
            if task.has_state(_PREDICTED) or not _id(task.task_spec):
                continue
            how = "it ran there" if task.has_state(TaskState.FINISHED_MASK) else "it waits there"
            blocked.setdefault(_id(task.task_spec), how)
    for sub in diffs.gone:
        if not sub.is_completed():
            blocked.setdefault(str(sub.spec.name), "its subprocess is gone")
    return ModelChange(
        added=tuple(added),
        removed=tuple(removed),
        changed=tuple(changed),
        blocked=tuple(f"{element} ({how})" for element, how in sorted(blocked.items())),
    )


def _id(spec: Any) -> str:
    """A spec's BPMN id; empty for SpiffWorkflow's own and the elements flowrun adds."""
    bpmn_id = getattr(spec, "bpmn_id", None)
    return "" if not bpmn_id or str(bpmn_id).startswith("flowrun_") else str(bpmn_id)
