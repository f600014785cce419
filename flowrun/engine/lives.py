"""The life of every task of a run (ready, started, completed, cancelled) as TaskRecords, timed by flowrun's clock.

SpiffWorkflow stamps its own ``time.time()`` on state changes; :class:`Lives`
watches the changes instead (through the engine-step callbacks and a scan of
the task tree after each step) and records each with the time of the injected
:class:`~flowrun.clock.Clock`. Gateways and the elements flowrun adds while
normalising a diagram are not recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any

from SpiffWorkflow.util.task import TaskState

from flowrun.clock import Clock
from flowrun.engine import due
from flowrun.engine.assignment import who_may_take
from flowrun.engine.specs import FORM_KEY, JOB_KEY, TOPIC_KEY
from flowrun.engine.waits import as_time, camel, waits
from flowrun.models import CANCELLED, COMPLETED, ERROR, READY, STARTED, WAITING, ServiceFailure, TaskRecord

#: Flow nodes that are not recorded as tasks (they take no time and do no work).
#: (An event-based gateway is recorded: it is where the instance waits for the first of its events.)
_SKIPPED_TYPES = frozenset({"exclusiveGateway", "parallelGateway", "inclusiveGateway", "complexGateway"})

#: The states whose changes are recorded.
OBSERVED = TaskState.WAITING | TaskState.READY | TaskState.STARTED | TaskState.FINISHED_MASK

_DESCRIPTION_TYPES = {
    "Task": "task",
    "Default Start Event": "startEvent",
    "Default End Event": "endEvent",
}


def task_type(spec: Any) -> str | None:
    """The BPMN element type of a spec (``userTask``, ``endEvent``, ...), None if it is not recorded."""
    bpmn_id = getattr(spec, "bpmn_id", None)
    if bpmn_id is None or bpmn_id.startswith("flowrun_"):  # engine internals and elements flowrun added
        return None
    found = _type_of(str(spec.description or "Task"))
    return None if found in _SKIPPED_TYPES else found


@lru_cache(maxsize=256)
def _type_of(description: str) -> str:
    """SpiffWorkflow's description of a spec (``"User Task"``) as a BPMN type (``"userTask"``)."""
    return _DESCRIPTION_TYPES.get(description) or camel(description.removeprefix("Default "))


def _tasks_of(workflow: Any) -> Iterator[Any]:
    """Every task of a workflow and of its subprocesses, in the order they were made.

    The same tasks as ``workflow.get_tasks()`` (which walks the tree), read from the
    workflows' task tables instead: a scan runs after every engine step, and the walk
    cost as much as the rest of the scan.
    """
    yield from workflow.tasks.values()
    for sub in workflow.subprocesses.values():
        yield from sub.tasks.values()


class Lives:
    """Records the task changes of one run until :meth:`drain`.

    Args:
        clock: where the times come from.
        seen: each task's state when the recording starts (a restored run's tasks
            are not recorded again until they change).
    """

    def __init__(self, clock: Clock, seen: dict[str, int] | None = None) -> None:
        self._clock = clock
        self._seen = dict(seen or {})
        # The state each task had at the last scan, keyed by the task's UUID (its text costs more
        # to make): a task whose state has not moved since is passed over without a look. Whatever
        # else writes _seen drops the task from here, so the slow path sees it again.
        self._scanned: dict[Any, int] = {}
        self._started: dict[str, datetime] = {}
        self._pending: dict[str, TaskRecord] = {}
        self._waiting: dict[str, tuple[str | None, datetime | None]] = {}
        self._incidents: list[ServiceFailure] = []

    @classmethod
    def resumed(cls, workflow: Any, clock: Clock) -> Lives:
        """A recorder for a restored workflow: its tasks as they are now count as seen."""
        return cls(clock, {str(t.id): t.state for t in workflow.get_tasks(state=OBSERVED)})

    @property
    def changed(self) -> bool:
        """True when something was recorded since the last :meth:`drain` (tasks moved, incidents)."""
        return bool(self._pending or self._incidents)

    def drain(self) -> list[TaskRecord]:
        """The task records changed since the last call, in the order they happened."""
        out = list(self._pending.values())
        self._pending = {}
        return out

    def drain_incidents(self) -> list[ServiceFailure]:
        """Service tasks whose last attempt failed since the last call: task, topic, error, attempts."""
        out, self._incidents = self._incidents, []
        return out

    def open_records(self, workflow: Any) -> list[TaskRecord]:
        """A record of every open task of ``workflow`` as it is now, without times.

        Ready user tasks, waiting events and service jobs (``waiting``) and started tasks:
        the rows a store should hold open for the workflow, as after a model migration.
        """
        out = []
        for task in _tasks_of(workflow):
            if task_type(task.task_spec) is None:
                continue
            state = task.state
            job = task.internal_data.get(JOB_KEY) if state == TaskState.STARTED else None
            if job is not None or state == TaskState.WAITING:
                rec = self._record(task, WAITING)
                if job is not None:
                    topic = (getattr(task.task_spec, "extensions", None) or {}).get(TOPIC_KEY)
                    rec.waits_for, rec.due_at = f"service:{topic}", as_time(job.get("due"))
                else:
                    rec.waits_for, rec.due_at = waits(task)
            elif state == TaskState.READY and task.task_spec.manual:
                rec = self._record(task, READY)
            elif state == TaskState.STARTED:
                rec = self._record(task, STARTED)
            else:
                continue
            self._pending.pop(str(task.id))
            out.append(rec)
        return out

    # -- what the engine steps report ---------------------------------------------------------

    def will(self, task: Any) -> None:
        """An automated task is about to run: it starts now."""
        self._started[str(task.id)] = self._clock.now()

    def did(self, task: Any) -> None:
        """An automated task has run: it completed, or waits (as a service job) or runs on."""
        self._scanned.pop(task.id, None)
        if task_type(task.task_spec) is None:
            return
        tid = str(task.id)
        state = task.state
        job = task.internal_data.get(JOB_KEY) if state == TaskState.STARTED else None
        if job is not None:
            self._seen[tid] = state
            self._job(task, job, self._started.pop(tid, self._clock.now()))
            return
        if self._seen.get(tid) == state:
            return
        self._seen[tid] = state
        now = self._clock.now()
        started = self._started.pop(tid, now)
        if state == TaskState.COMPLETED:
            rec = self._record(task, COMPLETED)
            rec.ready_at = rec.ready_at or started
            rec.started_at = started
            rec.completed_at = now
        elif state == TaskState.STARTED:
            rec = self._record(task, STARTED)
            rec.ready_at = rec.ready_at or started
            rec.started_at = started

    def completed(self, task: Any, actor: str | None, started_at: datetime | None) -> None:
        """A user completed ``task`` now (having started it at ``started_at``, or now)."""
        now = self._clock.now()
        rec = self._record(task, COMPLETED)
        rec.started_at = started_at or now
        rec.completed_at = now
        rec.actor = actor
        self._scanned.pop(task.id, None)
        self._seen[str(task.id)] = task.state

    def _job(self, task: Any, job: dict[str, Any], started: datetime) -> None:
        """A service task waiting as a job: due for its next attempt, or an incident."""
        rec = self._record(task, WAITING)
        rec.ready_at = rec.ready_at or started
        topic = (getattr(task.task_spec, "extensions", None) or {}).get(TOPIC_KEY)
        rec.waits_for = f"service:{topic}"
        rec.due_at = as_time(job.get("due"))
        rec.attempts = int(job.get("attempt", 0))
        if job.get("incident"):
            error = job["error"]
            self._incidents.append(ServiceFailure(str(task.id), topic, error["type"], error["message"], rec.attempts))

    # -- what a scan of the task tree finds ---------------------------------------------------

    def scan(self, workflow: Any) -> None:
        """Record every task whose state changed since it was last seen (after an engine step)."""
        now = self._clock.now()
        scanned = self._scanned
        for task in _tasks_of(workflow):
            state = task.state
            if not state & OBSERVED or (state != TaskState.WAITING and scanned.get(task.id) == state):
                continue
            scanned[task.id] = state
            if task_type(task.task_spec) is None:
                continue
            tid = str(task.id)
            before = self._seen.get(tid)
            if before == state:
                if state == TaskState.WAITING:
                    self._rewait(task)
                continue
            self._seen[tid] = state
            self._changed(task, state, before, now)

    def _changed(self, task: Any, state: int, before: int | None, now: datetime) -> None:
        if state == TaskState.READY:
            if task.task_spec.manual:
                rec = self._record(task, READY)
                rec.ready_at = now
                rec.assignee, rec.candidates = who_may_take(task)
                rec.deadline_at, rec.priority = due.deadline(task, now), due.priority(task)
        elif state == TaskState.WAITING:
            rec = self._record(task, WAITING)
            rec.ready_at = now
            rec.waits_for, rec.due_at = waits(task)
            self._waiting[str(task.id)] = (rec.waits_for, rec.due_at)
        elif state == TaskState.STARTED:
            rec = self._record(task, STARTED)
            rec.ready_at = rec.ready_at or now
            rec.started_at = rec.started_at or now
        elif state == TaskState.COMPLETED:
            rec = self._record(task, COMPLETED)
            rec.ready_at = rec.ready_at or now
            rec.started_at = rec.started_at or now
            rec.completed_at = now
        elif state == TaskState.CANCELLED and before is not None:
            self._record(task, CANCELLED).completed_at = now
        elif state == TaskState.ERROR:
            self._record(task, ERROR)

    def _rewait(self, task: Any) -> None:
        """A task still waiting may wait for something new (a cycle timer's next round)."""
        tid = str(task.id)
        found = waits(task)
        if self._waiting.get(tid) == found:
            return
        self._waiting[tid] = found
        rec = self._record(task, WAITING)
        rec.waits_for, rec.due_at = found

    def _record(self, task: Any, status: str) -> TaskRecord:
        tid = str(task.id)
        rec = self._pending.get(tid)
        if rec is None:
            spec = task.task_spec
            ext = getattr(spec, "extensions", None) or {}
            rec = TaskRecord(
                task_id=tid,
                bpmn_id=spec.bpmn_id,
                name=spec.bpmn_name or spec.bpmn_id,
                type=task_type(spec) or "task",
                lane=spec.lane,
                status=status,
                form=ext.get(FORM_KEY),
                documentation=spec.documentation,
            )
            self._pending[tid] = rec
        rec.status = status
        return rec
