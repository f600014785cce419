"""Run process instances: start, restore, advance, complete user tasks, snapshot.

:class:`Engine` is the one door to SpiffWorkflow at run time. It hands out
:class:`Run` objects that wrap a live workflow and record the life of every
task (ready, started, completed, cancelled) with times from the injected
:class:`~flowrun.clock.Clock`, never SpiffWorkflow's own ``time.time()``
stamps. Callers get flowrun dataclasses back, never SpiffWorkflow objects.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.util.task import TaskState

from flowrun.clock import Clock
from flowrun.engine import _spiff, sandbox
from flowrun.engine.sandbox import SandboxError
from flowrun.errors import (
    DataError,
    FlowrunError,
    ModelError,
    NotFoundError,
    ScriptError,
    ServiceError,
    StateError,
)
from flowrun.models import (
    CANCELLED,
    COMPLETED,
    ERROR,
    READY,
    STARTED,
    WAITING,
    ServiceCaller,
    ServiceFailure,
    ServicePolicy,
    TaskRecord,
    Wait,
)

_SERIALIZER = _spiff.make_serializer()
_REGISTRY = _SERIALIZER.registry
_ENCODER = _SERIALIZER._encoder_cls

#: Flow nodes that are not recorded as tasks (they take no time and do no work).
#: (An event-based gateway is recorded: it is where the instance waits for the first of its events.)
_SKIPPED_TYPES = frozenset({"exclusiveGateway", "parallelGateway", "inclusiveGateway", "complexGateway"})

#: Rounds of firing timers one refresh may take (a cycle timer far behind the clock).
MAX_TIMER_ROUNDS = 1_000

#: Automated steps one advance may take before the process is taken to loop without end.
MAX_STEPS = 50_000

_OBSERVED = TaskState.WAITING | TaskState.READY | TaskState.STARTED | TaskState.FINISHED_MASK


class Engine:
    """Creates and restores runs of process models.

    Args:
        clock: where task times come from.
        service_caller: called as ``service_caller(topic, data)`` for service tasks.
    """

    def __init__(
        self,
        clock: Clock,
        service_caller: ServiceCaller | None = None,
        policies: Callable[[str], ServicePolicy] | None = None,
    ) -> None:
        self.clock = clock
        self.service_caller = service_caller
        self.policies = policies
        self._specs: dict[str, tuple[Any, Any]] = {}
        self._spec_json: dict[str, str] = {}

    def knows(self, key: str) -> bool:
        """True when the definition cached under ``key`` is loaded (restore needs no ``spec_json`` then)."""
        return key in self._specs

    def _spec(self, spec_json: str | None, key: str | None) -> tuple[Any, Any]:
        cache_key = key or spec_json or ""
        found = self._specs.get(cache_key)
        if found is None:
            if spec_json is None:
                raise StateError(f"no definition is loaded for model {cache_key[:12]}")
            try:
                dct = json.loads(spec_json)
                spec = _REGISTRY.restore(dct["spec"])
                subs = {name: _REGISTRY.restore(s) for name, s in dct["subprocess_specs"].items()}
            except (ValueError, KeyError, TypeError, SpiffWorkflowException) as exc:
                raise ModelError(f"the stored process definition cannot be read ({exc})") from None
            found = (spec, subs)
            self._specs[cache_key] = found
            self._spec_json[cache_key] = spec_json
        return found

    def _script_engine(self) -> _spiff.FlowrunScriptEngine:
        return _spiff.FlowrunScriptEngine(self.service_caller, self.policies, self.clock)

    def start(
        self,
        spec_json: str,
        data: Mapping[str, Any] | None = None,
        key: str | None = None,
        source: str = "",
        instance_id: str = "",
    ) -> Run:
        """Create a new instance of the model and run it until the first wait.

        Args:
            spec_json: the model's stored definition (``ModelInfo.spec``).
            data: initial process variables.
            key: a cache key for the parsed definition (the model's sha256).
            source: the model's file, named in error messages.
        """
        spec, subs = self._spec(spec_json, key)
        if data:
            check_saveable(dict(data), "the start data")
        workflow = BpmnWorkflow(spec, subs, script_engine=self._script_engine())
        if data:
            workflow.task_tree.data.update(data)
        run = Run(workflow, self.clock, seen={}, source=source)
        run.instance_id = instance_id
        run.advance()
        return run

    def verify(self, state: str, key: str) -> None:
        """Load ``state`` back with the definition cached under ``key``, to prove it can be.

        Raises:
            StateError: the state cannot be loaded (nothing should be saved then).
        """
        spec_json = self._spec_json.get(key)
        if spec_json is None:
            raise StateError(f"no definition is loaded for model {key[:12]}")
        self.restore(spec_json, state, key=key)

    def restore(self, spec_json: str | None, state: str, key: str | None = None, source: str = "") -> Run:
        """Load a saved instance (from :meth:`Run.snapshot`) with the restricted script engine.

        ``spec_json`` may be None when the definition is already cached under ``key``
        (see :meth:`knows`).
        """
        spec, subs = self._spec(spec_json, key)
        try:
            dct = json.loads(state)
            version = dct.pop(_SERIALIZER.VERSION_KEY, _SERIALIZER.VERSION)
            if version != _SERIALIZER.VERSION:
                dct[_SERIALIZER.VERSION_KEY] = version
                _SERIALIZER.migrate(dct)
            workflow = _REGISTRY.restore(dct, spec=spec, subprocess_specs=subs)
        except (ValueError, KeyError, TypeError, SpiffWorkflowException) as exc:
            raise StateError(f"the saved instance cannot be loaded ({exc})") from None
        workflow.script_engine = self._script_engine()
        seen = {str(t.id): t.state for t in workflow.get_tasks(state=_OBSERVED)}
        return Run(workflow, self.clock, seen=seen, source=source)


class Run:
    """A live instance. Every change to its tasks is recorded for :meth:`drain`."""

    def __init__(self, workflow: Any, clock: Clock, seen: dict[str, int], source: str = "") -> None:
        self._wf = workflow
        self._source = source
        self._incidents: list[ServiceFailure] = []
        self._clock = clock
        self._seen = seen
        self._started: dict[str, datetime] = {}
        self._pending: dict[str, TaskRecord] = {}
        self._steps = 0
        self._waiting: dict[str, tuple[str | None, datetime | None]] = {}

    # -- running -----------------------------------------------------------------

    def advance(self) -> None:
        """Run automated steps (scripts, gateways, service tasks) until the instance waits."""
        with self._located():
            self._advance()

    @contextmanager
    def _located(self, clock: Clock | None = None) -> Iterator[None]:
        """Name the model file in script and service errors; timers use the run's clock."""
        try:
            with _spiff.using_clock(clock or self._clock), sandbox.limits():
                yield
        except (ScriptError, ServiceError) as exc:
            if self._source and not exc.message.startswith(self._source):
                raise type(exc)(f"{self._source}: {exc.message}") from None
            raise

    @property
    def instance_id(self) -> str:
        return str(self._wf.script_engine.instance_id)

    @instance_id.setter
    def instance_id(self, value: str) -> None:
        self._wf.script_engine.instance_id = value

    def run_jobs(self) -> bool:
        """Run the service tasks waiting as jobs that are due (as a worker: failures retry or become incidents).

        Returns:
            True when a job ran (whether it succeeded or failed).
        """
        now = self._clock.now()
        due = [t for t in self._jobs() if _job_due(t, now)]
        if not due:
            return False
        engine = self._wf.script_engine
        engine.worker_mode = True
        try:
            with self._located():
                for task in due:
                    task._set_state(TaskState.READY)
                self._advance()
        finally:
            engine.worker_mode = False
        return True

    def retry(self, task_id: str) -> None:
        """Run a service task whose attempts are used up again, with a fresh count of retries."""
        task = self._task(task_id)
        job = task.internal_data.get(_spiff.JOB_KEY)
        if task.state != TaskState.STARTED or not job:
            raise StateError(f"task {task.task_spec.bpmn_id} is not a failed service task")
        task.internal_data[_spiff.JOB_KEY] = {"attempt": 0, "due": self._clock.now().isoformat()}
        self.run_jobs()

    def _jobs(self) -> list[Any]:
        return [
            t for t in self._wf.get_tasks(state=TaskState.STARTED) if t.internal_data.get(_spiff.JOB_KEY) is not None
        ]

    @property
    def changed(self) -> bool:
        """True when something happened since the last :meth:`drain` (tasks moved, incidents)."""
        return bool(self._pending or self._incidents)

    def drain_incidents(self) -> list[ServiceFailure]:
        """Service tasks whose last attempt failed since the last call: task, topic, error, attempts."""
        out, self._incidents = self._incidents, []
        return out

    def refresh(self) -> bool:
        """Fire the timers that are due by the clock and run on until the instance waits again.

        A timer due at exactly the clock's time fires (SpiffWorkflow fires only once
        its due time has passed, so timers are compared a microsecond later). Every
        overdue round of a cycle timer fires in one call.

        Returns:
            True when a timer fired.
        """
        fired = False
        with self._located(_Later(self._clock)):
            for _ in range(MAX_TIMER_ROUNDS):
                before = self._timer_state()
                self._wf.refresh_timers()
                self._advance()
                if self._timer_state() == before and not self._wf.get_tasks(state=TaskState.READY, manual=False):
                    break
                fired = True
        return fired

    def _timer_state(self) -> list[tuple[str, int, str]]:
        return [
            (str(t.id), t.state, json.dumps(t.internal_data.get("event_value"), default=str, sort_keys=True))
            for t in self._wf.event_manager.tasks.values()
        ]

    def deliver(self, kind: str, name: str, payload: Mapping[str, Any] | None = None) -> bool:
        """Deliver a message or signal named ``name``; False when nothing in the instance waits for it."""
        from SpiffWorkflow.bpmn.util import BpmnEvent

        check_saveable(dict(payload or {}), f"the {kind} {name}")
        event = BpmnEvent(_spiff.event_definition(kind, name), payload=dict(payload or {}))
        # Timers that were due before the message came fire first: an event-based gateway
        # then takes its timer path, and the late message finds nothing waiting for it.
        self.refresh()
        with self._located():
            waiting = [t for t in self._wf.event_manager.tasks.values() if t.task_spec.catches(t, event)]
            if not waiting:
                return False
            self._wf.catch(event)
            self._advance()
        return True

    def _advance(self) -> None:
        self._steps = 0
        try:
            self._wf.do_engine_steps(will_complete_task=self._will, did_complete_task=self._did)
        except FlowrunError:
            raise
        except SandboxError as exc:
            raise ScriptError(f"a script or condition was refused: {exc}") from None
        except WorkflowException as exc:
            raise _script_error(exc) from None
        except SpiffWorkflowException as exc:
            raise ScriptError(f"the process failed: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - diagram code may fail in any way; never a traceback
            raise ScriptError(
                f"the process failed: {exc.__class__.__name__}: {exc}; check the scripts, conditions "
                "and message correlations in the diagram"
            ) from None
        self._scan()

    def complete(self, task_id: str, data: Mapping[str, Any], actor: str | None, started_at: datetime | None) -> None:
        """Complete a ready user (or manual) task with ``data`` and run on until the next wait.

        Raises:
            NotFoundError: no such task in this instance.
            StateError: the task is not ready.
        """
        with self._located():
            self._complete(task_id, data, actor, started_at)

    def _complete(self, task_id: str, data: Mapping[str, Any], actor: str | None, started_at: datetime | None) -> None:
        task = self._task(task_id)
        if not (task.state == TaskState.READY and task.task_spec.manual):
            raise StateError(f"task {task.task_spec.bpmn_id} is {TaskState.get_name(task.state).lower()}, not ready")
        check_saveable(dict(data), f"task {task.task_spec.bpmn_id}")
        now = self._clock.now()
        task.data.update(data)
        try:
            task.run()
        except FlowrunError:
            raise
        except WorkflowException as exc:
            raise _script_error(exc) from None
        except Exception as exc:  # noqa: BLE001 - diagram code may fail in any way; never a traceback
            raise ScriptError(f"completing the task failed: {exc.__class__.__name__}: {exc}") from None
        rec = self._record(task, COMPLETED)
        rec.started_at = started_at or now
        rec.completed_at = now
        rec.actor = actor
        self._seen[task_id] = task.state
        self._advance()

    def _task(self, task_id: str) -> Any:
        try:
            task = self._wf.get_task_from_id(UUID(task_id))
        except (ValueError, KeyError, WorkflowException):
            task = None
        if task is None:
            raise NotFoundError(f"task {task_id} is not part of this instance")
        return task

    def _will(self, task: Any) -> None:
        self._steps += 1
        definition = getattr(task.task_spec, "event_definition", None)
        if definition is not None:
            _error_variables(task, definition)
        if self._steps > MAX_STEPS:
            raise ScriptError(
                f"the process ran {MAX_STEPS} automated steps without waiting for anyone "
                f"(last: {task.task_spec.bpmn_id or task.task_spec.name}); it loops without end - "
                "check the loop conditions in the diagram"
            )
        self._started[str(task.id)] = self._clock.now()

    def _did(self, task: Any) -> None:
        if _task_type(task.task_spec) is None:
            return
        error = task.internal_data.pop(_spiff.BPMN_ERROR_KEY, None)
        if error is not None:
            self._throw(task, error)
        tid = str(task.id)
        state = task.state
        job = task.internal_data.get(_spiff.JOB_KEY) if state == TaskState.STARTED else None
        if job is not None:
            self._seen[tid] = state
            self._job_record(task, job, self._started.pop(tid, self._clock.now()))
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

    def _job_record(self, task: Any, job: dict[str, Any], started: datetime) -> None:
        """A service task waiting as a job: due for its next attempt, or an incident."""
        rec = self._record(task, WAITING)
        rec.ready_at = rec.ready_at or started
        topic = (getattr(task.task_spec, "extensions", None) or {}).get(_spiff.TOPIC_KEY)
        rec.waits_for = f"service:{topic}"
        rec.due_at = _as_time(job.get("due"))
        rec.attempts = int(job.get("attempt", 0))
        if job.get("incident"):
            error = job["error"]
            self._incidents.append(ServiceFailure(str(task.id), topic, error["type"], error["message"], rec.attempts))

    def _throw(self, task: Any, error: dict[str, Any]) -> None:
        """Throw a handler's BPMN error from ``task``; fail the step when nothing catches it."""
        from SpiffWorkflow.bpmn.util import BpmnEvent

        payload = {**error["data"], _spiff.BPMN_ERROR_KEY: error}
        event = BpmnEvent(_spiff.error_event(error["code"]), payload=payload, target=task.workflow)
        catchers = [t for t in self._wf.event_manager.tasks.values() if t.task_spec.catches(t, event)]
        if not catchers:
            spec = task.task_spec
            detail = f" ({error['message']})" if error.get("message") else ""
            raise ServiceError(
                f'service task {spec.bpmn_id} ("{spec.bpmn_name or spec.bpmn_id}") threw BPMN error '
                f"'{error['code']}'{detail} and no error boundary event catches it; draw an error boundary "
                "event with that code on the task, or handle the error in the service"
            )
        self._wf.top_workflow.catch(event)

    def _scan(self) -> None:
        now = self._clock.now()
        for task in self._wf.get_tasks(state=_OBSERVED):
            tid = str(task.id)
            state = task.state
            before = self._seen.get(tid)
            if _task_type(task.task_spec) is None:
                continue
            if before == state:
                if state == TaskState.WAITING:
                    self._rewait(task)
                continue
            self._seen[tid] = state
            if state == TaskState.READY:
                if task.task_spec.manual:
                    self._record(task, READY).ready_at = now
                continue
            if state == TaskState.WAITING:
                rec = self._record(task, WAITING)
                rec.ready_at = now
                rec.waits_for, rec.due_at = _waits(task)
                self._waiting[tid] = (rec.waits_for, rec.due_at)
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
        waits = _waits(task)
        if self._waiting.get(tid) == waits:
            return
        self._waiting[tid] = waits
        rec = self._record(task, WAITING)
        rec.waits_for, rec.due_at = waits

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
                type=_task_type(spec) or "task",
                lane=spec.lane,
                status=status,
                form=ext.get(_spiff.FORM_KEY),
                documentation=spec.documentation,
            )
            self._pending[tid] = rec
        rec.status = status
        return rec

    # -- reading -----------------------------------------------------------------

    def drain(self) -> list[TaskRecord]:
        """The task records changed since the last call, in the order they happened."""
        out = list(self._pending.values())
        self._pending = {}
        return out

    @property
    def completed(self) -> bool:
        return bool(self._wf.is_completed())

    def data(self) -> dict[str, Any]:
        """The process variables as the next step sees them (or as they ended)."""
        if self._wf.is_completed():
            return dict(self._wf.data)
        merged: dict[str, Any] = {}
        for task in self._wf.get_tasks(state=TaskState.READY | TaskState.WAITING | TaskState.STARTED):
            merged.update(task.data)
        return merged

    def waiting_for(self) -> list[Wait]:
        """What the instance waits for: ready user tasks, timers (``due`` when it is a time), messages, signals."""
        out: list[Wait] = []
        for task in self._wf.get_tasks(state=TaskState.READY, manual=True):
            spec = task.task_spec
            out.append(Wait("task", task=spec.bpmn_id, name=spec.bpmn_name, lane=spec.lane))
        for event in self._wf.waiting_events():
            kind = str(getattr(event, "event_type", "event")).replace("EventDefinition", "").lower()
            due = _as_time(getattr(event, "value", None))
            out.append(Wait(kind or "event", name=getattr(event, "name", None), due=due))
        return out

    def snapshot(self) -> str:
        """The instance state as JSON text, without the process definition.

        Raises:
            DataError: the task data holds values that cannot be saved.
        """
        for task in self._wf.get_tasks(state=TaskState.READY | TaskState.WAITING | TaskState.STARTED):
            spec = task.task_spec
            check_saveable(task.data, f"{self._source or 'the process'}: task {spec.bpmn_id or spec.name}")
        check_saveable(self._wf.data, f"{self._source or 'the process'}")
        _REGISTRY._encoder_mode = True
        try:
            dct = _REGISTRY.convert(self._wf)
            dct[_SERIALIZER.VERSION_KEY] = _SERIALIZER.VERSION
            return json.dumps(dct, cls=_ENCODER, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"the task data cannot be saved ({exc}); use only text, numbers, booleans, "
                "lists and objects in task data"
            ) from None
        finally:
            _REGISTRY._encoder_mode = False


class _Later:
    """A clock a microsecond ahead, so that a timer due now counts as passed."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> datetime:
        return self._clock.now() + timedelta(microseconds=1)


_DESCRIPTION_TYPES = {
    "Task": "task",
    "Default Start Event": "startEvent",
    "Default End Event": "endEvent",
}


def _task_type(spec: Any) -> str | None:
    """The BPMN element type of a spec (``userTask``, ``endEvent``, ...), None if not recorded."""
    bpmn_id = getattr(spec, "bpmn_id", None)
    if bpmn_id is None or bpmn_id.startswith("flowrun_"):  # engine internals and elements flowrun added
        return None
    cached: str | None = getattr(spec, "_flowrun_type", None)
    if cached is None:
        desc = str(spec.description or "Task")
        cached = _DESCRIPTION_TYPES.get(desc) or _camel(desc.removeprefix("Default "))
        spec._flowrun_type = cached
    return None if cached in _SKIPPED_TYPES else cached


_SCALARS = (str, int, float, bool, type(None), datetime, date, timedelta)


def check_saveable(data: Any, where: str, path: str = "") -> None:
    """Refuse values that cannot be stored and loaded again, naming the key and the fix.

    Task data is stored as JSON through SpiffWorkflow's serializer: text, numbers
    (finite), booleans, null, lists, objects with text keys, and dates and times.
    Keys named ``typename`` or starting with ``__`` would be mistaken for the
    serializer's own markers.

    Raises:
        DataError: some value cannot be saved.
    """
    here = path or "the data"
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str):
                raise DataError(f"{where}: the key {key!r} in {here} is not text; use text keys")
            if key == "typename" or key.startswith("__"):
                raise DataError(f"{where}: the key '{key}' in {here} is reserved; rename it")
            check_saveable(value, where, f"{path}.{key}" if path else key)
    elif isinstance(data, (list, tuple)):
        for i, value in enumerate(data):
            check_saveable(value, where, f"{here}[{i}]")
    elif isinstance(data, float) and not math.isfinite(data):
        raise DataError(f"{where}: {here} is {data}, which cannot be saved; use a finite number or null")
    elif not isinstance(data, _SCALARS):
        raise DataError(
            f"{where}: {here} is a {type(data).__name__}, which cannot be saved; "
            "use text, numbers, booleans, lists or objects"
        )


def _job_due(task: Any, now: datetime) -> bool:
    job = task.internal_data.get(_spiff.JOB_KEY) or {}
    due = _as_time(job.get("due"))
    return not job.get("incident") and due is not None and due <= now


def _error_variables(task: Any, definition: Any) -> None:
    """Put a caught handler error's code and message where the catching event asks for them."""
    payload = task.internal_data.get(getattr(definition, "name", None))
    if not isinstance(payload, dict) or _spiff.BPMN_ERROR_KEY not in payload:
        return
    error = payload.pop(_spiff.BPMN_ERROR_KEY)
    ext = getattr(task.task_spec, "extensions", None) or {}
    if ext.get(_spiff.ERROR_CODE_VAR):
        payload[ext[_spiff.ERROR_CODE_VAR]] = error["code"]
    if ext.get(_spiff.ERROR_MESSAGE_VAR):
        payload[ext[_spiff.ERROR_MESSAGE_VAR]] = error.get("message")


def _waits(task: Any) -> tuple[str | None, datetime | None]:
    """What a waiting task waits for (``timer``, ``message:NAME``, ``signal:NAME``, ...) and when it is due.

    A task waiting for several events (an event-based gateway, a multiple event)
    waits for ``"message:NAME|timer"``, due when its earliest timer is.
    """
    definition = getattr(task.task_spec, "event_definition", None)
    if definition is None:
        return None, None
    parts = getattr(definition, "event_definitions", None)
    if parts:
        found = [_wait(task, part) for part in parts]
        kinds = sorted({k for k, _ in found if k})
        dues = [d for _, d in found if d is not None]
        return "|".join(kinds) or None, min(dues) if dues else None
    return _wait(task, definition)


def _wait(task: Any, definition: Any) -> tuple[str | None, datetime | None]:
    try:
        pending = definition.details(task)
    except Exception:  # noqa: BLE001 - details of exotic events; waiting without a name is fine
        return "event", None
    kind = str(getattr(pending, "event_type", "") or definition.__class__.__name__)
    name = getattr(pending, "name", None)
    value = getattr(pending, "value", None)
    if "Timer" in kind or "TimeDate" in kind:
        return "timer", _as_time(value)
    for prefix, label in (
        ("Message", "message"),
        ("Signal", "signal"),
        ("Error", "error"),
        ("Escalation", "escalation"),
    ):
        if kind.startswith(prefix):
            return f"{label}:{name}", None
    if kind.startswith("Conditional"):
        return "condition", None
    return _camel(kind.replace("EventDefinition", "")) or "event", None


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def _camel(text: str) -> str:
    words: list[str] = re.findall(r"[A-Za-z0-9]+", text)
    if not words:
        return "task"
    return words[0].lower() + "".join(w[:1].upper() + w[1:] for w in words[1:])


def _script_error(exc: WorkflowException) -> ScriptError:
    spec = getattr(exc, "task_spec", None)
    where = ""
    if spec is not None and getattr(spec, "bpmn_id", None):
        where = f'{spec.bpmn_id} ("{spec.bpmn_name or spec.bpmn_id}"): '
    notes = " ".join(getattr(exc, "__notes__", []) or [])
    line = getattr(exc, "line_number", None)
    at = f" at line {line}" if line else ""
    detail = str(exc).split("\n")[0]
    text = f"{where}{detail}{at}"
    if notes and notes not in text:
        text += f" ({notes})"
    return ScriptError(text + "; fix the script or condition in the diagram")
