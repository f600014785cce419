"""Run process instances: start, restore, advance, complete user tasks, snapshot.

:class:`Engine` is the one door to SpiffWorkflow at run time. It hands out
:class:`Run` objects that wrap a live workflow and drive it: automated steps,
user tasks, timers, messages and signals, service jobs. Each run records the
life of its tasks with :class:`~flowrun.engine.lives.Lives` (times from the
injected :class:`~flowrun.clock.Clock`, never SpiffWorkflow's own stamps);
what it waits for is read by :mod:`flowrun.engine.waits`; its state is stored
by :mod:`flowrun.engine._spiff`. Callers get flowrun dataclasses back, never
SpiffWorkflow objects, and flowrun errors (:mod:`flowrun.engine.error_map`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from flowrun.clock import Clock
from flowrun.engine import _spiff, error_map, loops, sandbox, specs, step_limits, waits
from flowrun.engine import timers as _timers  # noqa: F401 - importing it bounds SpiffWorkflow's timers
from flowrun.engine._spiff import check_saveable
from flowrun.engine.lives import Lives, task_type
from flowrun.engine.scripts import FlowrunScriptEngine
from flowrun.errors import NotFoundError, ScriptError, ServiceError, StateError
from flowrun.models import ModelChange, PendingWork, ServiceCaller, ServiceFailure, ServicePolicy, TaskRecord, Wait

#: Rounds of firing timers one refresh may take (a cycle timer far behind the clock).
MAX_TIMER_ROUNDS = 1_000


class Engine:
    """Creates and restores runs of process models.

    Args:
        clock: where task times come from.
        service_caller: called as ``service_caller(topic, data)`` for service tasks.
        policies: the retry policy of each service topic (none: no retries, run at once).
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
            with error_map.mapped(error_map.DEFINITION):
                found = _spiff.load_definition(spec_json)
            self._specs[cache_key] = found
            self._spec_json[cache_key] = spec_json
        return found

    def documentation(self, spec_json: str | None, key: str, bpmn_id: str) -> str | None:
        """The documentation the diagram gives element ``bpmn_id`` (in the process or a subprocess); None if none."""
        spec, subs = self._spec(spec_json, key)
        for process in (spec, *subs.values()):
            for task_spec in process.task_specs.values():
                if getattr(task_spec, "bpmn_id", None) == bpmn_id:
                    text = getattr(task_spec, "documentation", None)
                    return str(text).strip() or None if text else None
        return None

    def _script_engine(self) -> FlowrunScriptEngine:
        return FlowrunScriptEngine(self.service_caller, self.policies, self.clock)

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
            instance_id: the instance's id, handed to service handlers.
        """
        spec, subs = self._spec(spec_json, key)
        if data:
            check_saveable(dict(data), "the start data")
        workflow = BpmnWorkflow(spec, subs, script_engine=self._script_engine())
        if data:
            workflow.task_tree.data.update(data)
        run = Run(workflow, self.clock, Lives(self.clock), source=source)
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

    def migrate(
        self,
        run: Run,
        new_spec_json: str,
        new_key: str,
        apply: bool = True,
    ) -> tuple[ModelChange, Run | None]:
        """Move a restored ``run`` to another version of its model (see :mod:`flowrun.engine.migration`).

        Args:
            new_spec_json, new_key: the new version's stored definition and its cache key (sha256).
            apply: False only compares (a dry run).

        Returns:
            What changes, and the moved run (None for a dry run or when the change is blocked;
            ``run`` is then unchanged). The moved run's recorder counts its tasks as they are
            after the move; :meth:`Run.open_records` lists them.
        """
        from flowrun.engine import migration

        new_spec, new_subs = self._spec(new_spec_json, new_key)
        workflow = run._wf
        if not apply:
            return migration.compare(workflow, new_spec, new_subs), None
        with _spiff.using_clock(self.clock):  # a timer started again reads flowrun's clock, not the system's
            change = migration.move(workflow, new_spec, new_subs)
        if change.blocked:
            return change, None
        return change, Run(workflow, self.clock, Lives.resumed(workflow, self.clock), source=run._source)

    def restore(
        self, spec_json: str | None, state: str, key: str | None = None, source: str = "", instance_id: str = ""
    ) -> Run:
        """Load a saved instance (from :meth:`Run.snapshot`) with the restricted script engine.

        ``spec_json`` may be None when the definition is already cached under ``key``
        (see :meth:`knows`); ``instance_id`` names the instance in a refusal of its state.

        Raises:
            StateError: the state cannot be loaded.
        """
        spec, subs = self._spec(spec_json, key)
        with error_map.mapped(error_map.STATE):
            workflow = _spiff.load_state(state, spec, subs, instance_id)
        workflow.script_engine = self._script_engine()
        return Run(workflow, self.clock, Lives.resumed(workflow, self.clock), source=source)


class Run:
    """A live instance. Every change to its tasks is recorded for :meth:`drain`."""

    def __init__(self, workflow: Any, clock: Clock, lives: Lives, source: str = "") -> None:
        self._wf = workflow
        self._clock = clock
        self._lives = lives
        self._source = source
        self._steps = 0
        self._last: Any = None
        self._max_steps = loops.max_steps()

    @property
    def instance_id(self) -> str:
        return str(self._wf.script_engine.instance_id)

    @instance_id.setter
    def instance_id(self, value: str) -> None:
        self._wf.script_engine.instance_id = value

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
                raise type(exc)(f"{self._source}: {exc.message}") from exc
            raise

    def _advance(self) -> None:
        self._steps = 0
        try:
            with error_map.mapped(error_map.RUNNING):
                self._wf.do_engine_steps(will_complete_task=self._will, did_complete_task=self._did)
        except (ScriptError, sandbox.ScriptTimeout) as exc:
            # The budget runs out inside a condition (a ScriptError caused by the timeout) or between
            # tasks, in the engine's own code (the bare ScriptTimeout): after many steps, either is a loop.
            if self._steps >= loops.LONG_STEP and loops.timed_out(exc):
                step_limits.spent()
                raise loops.runaway(
                    f"used up its CPU time (FLOWRUN_SCRIPT_SECONDS) after {self._steps} automated steps",
                    self._last,
                    "FLOWRUN_SCRIPT_SECONDS",
                ) from exc
            raise
        self._lives.scan(self._wf)

    def _will(self, task: Any) -> None:
        self._steps += 1
        self._last = task
        definition = getattr(task.task_spec, "event_definition", None)
        if definition is not None:
            _error_variables(task, definition)
        if self._steps > self._max_steps:
            raise loops.runaway(f"ran {self._max_steps} automated steps (FLOWRUN_MAX_STEPS)", task, "FLOWRUN_MAX_STEPS")
        self._lives.will(task)

    def _did(self, task: Any) -> None:
        if task_type(task.task_spec) is None:
            return
        error = task.internal_data.pop(specs.BPMN_ERROR_KEY, None)
        if error is not None:
            self._throw(task, error)
        self._lives.did(task)

    def _throw(self, task: Any, error: dict[str, Any]) -> None:
        """Throw a handler's BPMN error from ``task``; fail the step when nothing catches it."""
        from SpiffWorkflow.bpmn.util import BpmnEvent

        payload = {**error["data"], specs.BPMN_ERROR_KEY: error}
        event = BpmnEvent(specs.error_event(error["code"]), payload=payload, target=task.workflow)
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
        task.data.update(data)
        with error_map.mapped(error_map.COMPLETING):
            task.run()
        self._lives.completed(task, actor, started_at)
        self._advance()

    def _task(self, task_id: str) -> Any:
        with error_map.mapped(error_map.task_lookup(task_id)):
            task = self._wf.get_task_from_id(UUID(task_id))
        if task is None:
            raise NotFoundError(f"task {task_id} is not part of this instance")
        return task

    def run_jobs(self) -> bool:
        """Run the service tasks waiting as jobs that are due (as a worker: failures retry or become incidents).

        Returns:
            True when a job ran (whether it succeeded or failed).
        """
        now = self._clock.now()
        due = [t for t in self._jobs() if waits.job_due(t, now)]
        if not due:
            return False
        engine = self._wf.script_engine
        engine.worker_mode = True
        try:
            with self._located():
                for task in due:
                    _spiff.make_ready(task)
                self._advance()
        finally:
            engine.worker_mode = False
        return True

    def retry(self, task_id: str) -> None:
        """Run a service task whose attempts are used up again, with a fresh count of retries."""
        task = self._task(task_id)
        job = task.internal_data.get(specs.JOB_KEY)
        if task.state != TaskState.STARTED or not job:
            raise StateError(f"task {task.task_spec.bpmn_id} is not a failed service task")
        task.internal_data[specs.JOB_KEY] = {"attempt": 0, "due": self._clock.now().isoformat()}
        self.run_jobs()

    def _jobs(self) -> list[Any]:
        return [
            t for t in self._wf.get_tasks(state=TaskState.STARTED) if t.internal_data.get(specs.JOB_KEY) is not None
        ]

    def pending_work(self) -> list[PendingWork]:
        """The instance's service jobs (due or used up) and timers, as a worker would report running them."""
        out = []
        policy = self._wf.script_engine.policy
        for task in self._jobs():
            job = task.internal_data[specs.JOB_KEY]
            topic = str((getattr(task.task_spec, "extensions", None) or {}).get(specs.TOPIC_KEY) or "")
            error = job.get("error") or None
            out.append(
                PendingWork(
                    "service",
                    topic,
                    str(task.id),
                    _label(task.task_spec),
                    waits.as_time(job.get("due")),
                    attempt=int(job.get("attempt", 0)),
                    attempts=policy(topic).retries + 1,
                    incident=bool(job.get("incident")),
                    error=f"{error['type']}: {error['message']}" if error else None,
                )
            )
        for task in self._wf.event_manager.tasks.values():
            kind, due = waits.waits(task)
            if kind and "timer" in kind.split("|"):
                label = _label(task.task_spec)
                out.append(PendingWork("timer", label, str(task.id), label, due))
        return out

    def refresh(self) -> bool:
        """Fire the timers that are due by the clock and run on until the instance waits again.

        A timer due at exactly the clock's time fires (SpiffWorkflow fires only once
        its due time has passed, so timers are compared a microsecond later). A cycle
        timer many rounds late fires once for all of them (:mod:`flowrun.engine.timers`).
        Each round of firing (timers due at the same time, and the steps they lead to)
        is its own engine step, with its own script CPU budget; a timer whose path
        leads to a timer already due fires in the next round.

        Returns:
            True when a timer fired.
        """
        fired = False
        later = waits.Later(self._clock)
        for _ in range(MAX_TIMER_ROUNDS):
            with self._located(later):
                before = waits.timer_state(self._wf)
                self._wf.refresh_timers()
                self._advance()
                if waits.timer_state(self._wf) == before and not self._wf.get_tasks(
                    state=TaskState.READY, manual=False
                ):
                    break
            fired = True
        return fired

    def deliver(self, kind: str, name: str, payload: Mapping[str, Any] | None = None) -> bool:
        """Deliver a message or signal named ``name``; False when nothing in the instance waits for it."""
        from SpiffWorkflow.bpmn.util import BpmnEvent

        check_saveable(dict(payload or {}), f"the {kind} {name}")
        event = BpmnEvent(specs.event_definition(kind, name), payload=dict(payload or {}))
        # Timers that were due before the message came fire first: an event-based gateway
        # then takes its timer path, and the late message finds nothing waiting for it.
        self.refresh()
        with self._located():
            waiting = [t for t in self._wf.event_manager.tasks.values() if t.task_spec.catches(t, event)]
            if not waiting:
                return False
            # Catching evaluates the catcher's correlation expressions on the payload: diagram
            # code, which may fail in any way; the message names the expression that failed.
            blame = error_map.correlating(kind, name, lambda: self._failed_correlation(waiting, dict(payload or {})))
            with error_map.mapped(blame):
                self._wf.catch(event)
            self._advance()
        return True

    def _failed_correlation(self, waiting: list[Any], payload: dict[str, Any]) -> str:
        """Which correlation expression of the catching tasks fails on ``payload`` (only asked after one failed)."""
        found = [
            (t.task_spec, prop)
            for t in waiting
            for prop in getattr(getattr(t.task_spec, "event_definition", None), "correlation_properties", None) or []
        ]
        if len(found) > 1:  # evaluate again to tell which one it was
            for spec, prop in found:
                try:
                    self._wf.script_engine.environment.evaluate(prop.retrieval_expression, dict(payload))
                except Exception:  # noqa: BLE001 - diagram code; this is the one that fails
                    found = [(spec, prop)]
                    break
        if not found:
            return ""
        spec, prop = found[0]
        return (
            f'{spec.bpmn_id} ("{spec.bpmn_name or spec.bpmn_id}"): '
            f"its correlation property {prop.name} = {prop.retrieval_expression!r}"
        )

    # -- reading -----------------------------------------------------------------

    @property
    def changed(self) -> bool:
        """True when something happened since the last :meth:`drain` (tasks moved, incidents)."""
        return self._lives.changed

    def drain(self) -> list[TaskRecord]:
        """The task records changed since the last call, in the order they happened."""
        return self._lives.drain()

    def drain_incidents(self) -> list[ServiceFailure]:
        """Service tasks whose last attempt failed since the last call: task, topic, error, attempts."""
        return self._lives.drain_incidents()

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

    def open_records(self) -> list[TaskRecord]:
        """A record of each open task as it is now (ready, started, waiting), without times."""
        return Lives(self._clock).open_records(self._wf)

    def waiting_for(self) -> list[Wait]:
        """What the instance waits for: ready user tasks, timers, messages, signals."""
        return waits.waiting_for(self._wf)

    def snapshot(self) -> str:
        """The instance state as JSON text, without the process definition.

        Raises:
            DataError: the task data holds values that cannot be saved.
        """
        where = self._source or "the process"
        for task in self._wf.get_tasks(state=TaskState.READY | TaskState.WAITING | TaskState.STARTED):
            spec = task.task_spec
            check_saveable(task.data, f"{where}: task {spec.bpmn_id or spec.name}")
        check_saveable(self._wf.data, where)
        with error_map.mapped(error_map.SAVING):
            return _spiff.dump_state(self._wf)


def _error_variables(task: Any, definition: Any) -> None:
    """Put a caught handler error's code and message where the catching event asks for them."""
    payload = task.internal_data.get(getattr(definition, "name", None))
    if not isinstance(payload, dict) or specs.BPMN_ERROR_KEY not in payload:
        return
    error = payload.pop(specs.BPMN_ERROR_KEY)
    ext = getattr(task.task_spec, "extensions", None) or {}
    if ext.get(specs.ERROR_CODE_VAR):
        payload[ext[specs.ERROR_CODE_VAR]] = error["code"]
    if ext.get(specs.ERROR_MESSAGE_VAR):
        payload[ext[specs.ERROR_MESSAGE_VAR]] = error.get("message")


def _label(spec: Any) -> str:
    return str(getattr(spec, "bpmn_name", None) or getattr(spec, "bpmn_id", None) or spec.name)
