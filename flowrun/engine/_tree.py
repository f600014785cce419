"""How SpiffWorkflow's task iterators walk the task tree: to any depth, and past the finished history of a loop.

Every round of a loop adds its tasks to the tree below the last round's, so the
tree of a 10 000-round loop is 30 000 tasks deep. SpiffWorkflow's iterators

* stop descending at a depth of 1000 by default, so past about 500 rounds the
  engine finds no ready task and takes the instance as completed (its data
  empty); and
* walk the tree from its root for every query (the ready tasks after each task,
  the waiting tasks after each completion), so a loop's cost grows with the
  square of its rounds.

Importing this module makes their default depth unbounded, and lets a query for
unfinished tasks (ready, waiting, ...) in a workflow of :data:`BIG_TREE` tasks or
more jump over a chain of finished tasks that each have one child, the way a
loop's history looks. The jumps are remembered
per workflow and forgotten whenever a task of such a chain changes (it gets a
second child, loses its child, or becomes unfinished again), so the tasks found,
and their order, are exactly those of SpiffWorkflow's own walk. Endless loops are
stopped by flowrun's step limit (:func:`flowrun.engine.loops.max_steps`).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskIterator, TaskState
from SpiffWorkflow.workflow import Workflow

_FINISHED = TaskState.FINISHED_MASK

#: The fewest tasks a workflow holds before its queries jump: smaller trees (any ordinary process)
#: are walked exactly as SpiffWorkflow walks them, at the same cost; a loop grows past this quickly.
BIG_TREE = 100

#: Bumped whenever a finished task's children or state change in a way that may break a remembered jump.
_generation = 0
#: The attribute of a workflow holding its jumps: (the generation they were made in, task id -> the
#: first task after its chain). On the workflow itself, so they go when it goes (a weak mapping from
#: the workflow would be kept alive by the tasks it holds); the serializer only stores named fields.
_ATTRIBUTE = "_flowrun_jumps"


def _forget() -> None:
    global _generation
    _generation += 1


def _jumps(workflow: Any) -> dict[Any, Any]:
    found: tuple[int, dict[Any, Any]] | None = getattr(workflow, _ATTRIBUTE, None)
    if found is None or found[0] != _generation:
        found = (_generation, {})
        setattr(workflow, _ATTRIBUTE, found)
    return found[1]


def _chained(task: Any) -> bool:
    """True when ``task`` is finished, has exactly one child and no subprocess: a link of a chain to jump over."""
    return (
        task._state & _FINISHED != 0
        and len(task._children) == 1
        and task.id not in task.workflow.top_workflow.subprocesses
    )


def _after_chain(task: Any) -> Any:
    """The first task below the chain of finished one-child tasks starting at ``task`` (itself such a task)."""
    jumps = _jumps(task.workflow)
    tasks = task.workflow.tasks
    passed = []
    current = task
    while True:
        passed.append(current.id)
        following = jumps.get(current.id) or tasks[current._children[0]]
        if not _chained(following):
            break
        current = following
    for tid in passed:
        jumps[tid] = following
    return following


def _skips_finished(iterator: Any) -> bool:
    state = iterator.task_filter.state
    return (
        iterator.max_depth == sys.maxsize
        and iterator.depth_first
        and iterator.end_at_spec is None
        and isinstance(state, int)
        and state & _FINISHED == 0
    )


def _deciding(original: Any) -> Any:
    """An iterator's ``__init__`` that also decides, once, whether the iteration may jump.

    An iteration that may gets the jumping ``_next`` as its own attribute; every other one keeps
    SpiffWorkflow's, so an ordinary query costs one length test more and nothing per task.
    """

    def __init__(self: Any, task: Any, *args: Any, **kwargs: Any) -> None:
        original(self, task, *args, **kwargs)
        if len(task.workflow.tasks) >= BIG_TREE and _skips_finished(self):
            self._next = types.MethodType(type(self)._flowrun_skipping, self)

    return __init__


def _skipping(original: Any) -> Any:
    """An iterator's ``_next`` that jumps over the chain at the head of its list, else does as ``original``."""

    def _next(self: Any) -> Any:
        if self.task_list:
            task = self.task_list[0]
            if _chained(task):
                self.task_list[0] = _after_chain(task)
                return task
        return original(self)

    return _next


# -- what breaks a remembered jump --------------------------------------------------------------

_set_state = Task._set_state
_child_added = Task._child_added_notify
_remove_task = Workflow._remove_task


def _set_state_watched(self: Any, value: int) -> None:
    if self._state & _FINISHED and not value & _FINISHED:
        _forget()
    _set_state(self, value)


def _child_added_watched(self: Any, child: Any) -> None:
    if self._children and self._state & _FINISHED:
        _forget()
    _child_added(self, child)


def _remove_task_watched(self: Any, task_id: Any) -> None:
    parent = self.tasks[task_id].parent
    if parent is not None and len(parent._children) == 1 and parent._state & _FINISHED:
        _forget()
    _remove_task(self, task_id)


def _patches() -> list[tuple[Any, str, Any]]:
    """What :func:`_install` sets: (owner, attribute, flowrun's value)."""
    patched: list[tuple[Any, str, Any]] = []
    for iterator in (TaskIterator, BpmnTaskIterator):
        patched.append((iterator, "_flowrun_skipping", _skipping(iterator._next)))
    children = Task.children
    patched += [
        (TaskIterator, "__init__", _deciding(TaskIterator.__init__)),
        (Task, "_set_state", _set_state_watched),
        (Task, "_child_added_notify", _child_added_watched),
        (Workflow, "_remove_task", _remove_task_watched),
        (Task, "children", children.setter(_children_set(children.fset))),
    ]
    return patched


#: SpiffWorkflow's own values of what flowrun patches, and the iterators' default arguments.
_ORIGINALS: list[tuple[Any, str, Any]] = []
_DEFAULTS = {it: it.__init__.__defaults__ for it in (TaskIterator, BpmnTaskIterator)}
_PATCHED: list[tuple[Any, str, Any]] = []


def _install() -> None:
    for iterator in (TaskIterator, BpmnTaskIterator):
        defaults = _DEFAULTS[iterator]  # (end_at_spec, max_depth, ...)
        iterator.__dict__["__init__"].__defaults__ = (defaults[0], sys.maxsize, *defaults[2:])
    _PATCHED[:] = _patches()
    _ORIGINALS[:] = [(owner, name, owner.__dict__.get(name)) for owner, name, _ in _PATCHED]
    for owner, name, value in _PATCHED:
        setattr(owner, name, value)


@contextmanager
def spiffworkflow_as_released() -> Iterator[None]:
    """SpiffWorkflow exactly as released, while the block runs (the benchmarks' reference side).

    Not for flowrun's own use: without the patches, long loops end early (see the module text).
    """
    for owner, name, value in _ORIGINALS:
        if value is None:
            delattr(owner, name)
        else:
            setattr(owner, name, value)
    released = {it: it.__dict__["__init__"] for it in (TaskIterator, BpmnTaskIterator)}
    flowrun_defaults = {it: f.__defaults__ for it, f in released.items()}
    for iterator, init in released.items():
        init.__defaults__ = _DEFAULTS[iterator]
    try:
        yield
    finally:
        for iterator, init in released.items():
            init.__defaults__ = flowrun_defaults[iterator]
        for owner, name, value in _PATCHED:
            setattr(owner, name, value)


def _children_set(setter: Any) -> Any:
    def set_children(self: Any, tasks: Any) -> None:
        _forget()
        setter(self, tasks)

    return set_children


_install()
