"""SpiffWorkflow at run time: flowrun's task specs, the serializer and the script engine.

The diagram parser lives in :mod:`flowrun.engine._parser`, so restoring an
instance never imports it. flowrun adds to SpiffWorkflow's Camunda flavour:

* user tasks that remember their form (``camunda:formKey``, inline
  ``camunda:formData`` fields, or SpiffArena's ``formJsonSchemaFilename``) in
  ``extensions["flowrun:form"]``;
* service tasks that dispatch to a named handler (``camunda:topic``,
  ``camunda:class``, ``camunda:expression``, ``camunda:delegateExpression`` or
  SpiffArena's ``serviceTaskOperator``), named in ``extensions["flowrun:topic"]``;
* a script engine whose scripts and conditions run in :mod:`flowrun.engine.sandbox`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta, tzinfo
from typing import Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.serializer import DEFAULT_CONFIG as BPMN_CONFIG
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.task_spec import BpmnTaskSpecConverter
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.specs.defaults import ServiceTask, UserTask
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _timer_module
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.camunda.serializer import DEFAULT_CONFIG as CAMUNDA_CONFIG

from flowrun.clock import Clock
from flowrun.engine import sandbox
from flowrun.errors import BpmnError, ServiceError
from flowrun.models import SERVICE_CONTEXT, ServiceCaller, ServiceContext, ServicePolicy

FORM_KEY = "flowrun:form"
TOPIC_KEY = "flowrun:topic"
PARAMS_KEY = "flowrun:parameters"
RESULT_KEY = "flowrun:result_variable"
BPMN_ERROR_KEY = "flowrun:bpmn_error"
JOB_KEY = "flowrun:job"
ERROR_CODE_VAR = "flowrun:error_code_variable"
ERROR_MESSAGE_VAR = "flowrun:error_message_variable"


_CLOCK: contextvars.ContextVar[Clock | None] = contextvars.ContextVar("flowrun_clock", default=None)


class _ClockedDatetime(datetime):
    """``datetime`` whose ``now()`` reads flowrun's clock while a run is active.

    SpiffWorkflow's timer events call ``datetime.now(timezone.utc)`` directly; this
    class replaces the name ``datetime`` in that one module so timers fire by the
    injected clock (tests and replays advance time instead of sleeping).
    """

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> Any:
        clock = _CLOCK.get()
        if clock is None:
            return super().now(tz)
        value = clock.now()
        return value.astimezone(tz) if tz is not None else value.astimezone().replace(tzinfo=None)


_timer_module.datetime = _ClockedDatetime


@contextmanager
def using_clock(clock: Clock) -> Iterator[None]:
    """Timers evaluated inside this block use ``clock``."""
    token = _CLOCK.set(clock)
    try:
        yield
    finally:
        _CLOCK.reset(token)


class FlowrunUserTask(UserTask):  # type: ignore[misc]
    """A user task; its form reference lives in ``extensions["flowrun:form"]``."""


class FlowrunServiceTask(ServiceTask):  # type: ignore[misc]
    """A service task that calls the handler registered for its topic."""

    def _execute(self, my_task: Any) -> bool | None:
        ext = getattr(self, "extensions", {}) or {}
        topic = ext.get(TOPIC_KEY)
        engine = my_task.workflow.top_workflow.script_engine
        if not isinstance(engine, FlowrunScriptEngine):
            raise ServiceError("service tasks need flowrun's script engine")
        payload = dict(my_task.data)
        for name, expression in (ext.get(PARAMS_KEY) or {}).items():
            payload[name] = engine.evaluate(my_task, expression)
        policy = engine.policy(topic)
        job = my_task.internal_data.get(JOB_KEY) or {}
        if policy.run_async and not engine.worker_mode:
            # Left for `flowrun worker`: the task waits as a job due now.
            my_task.internal_data[JOB_KEY] = {"attempt": 0, "due": engine.now().isoformat()}
            return None
        attempt = int(job.get("attempt", 0)) + 1
        context = ServiceContext(topic or "", engine.instance_id, str(my_task.id), attempt)
        token = SERVICE_CONTEXT.set(context)
        try:
            result = engine.call_handler(self, topic, payload)
        except BpmnError as exc:
            # Thrown after the task has stopped running (see Run._did), so that the
            # boundary event can cancel it like any other interrupted activity.
            my_task.internal_data.pop(JOB_KEY, None)
            my_task.internal_data[BPMN_ERROR_KEY] = {"code": exc.code, "message": exc.message, "data": exc.data}
            return None
        except ServiceError as exc:
            if not engine.worker_mode and policy.retries == 0 and not job:
                raise  # in an operator's command with no retries: the command fails, nothing is saved
            final = attempt > policy.retries
            due = None if final else (engine.now() + timedelta(seconds=policy.delay(attempt))).isoformat()
            error_type, error_message = getattr(exc, "original", (type(exc).__name__, str(exc)))
            my_task.internal_data[JOB_KEY] = {
                "attempt": attempt,
                "due": due,
                "incident": final,
                "error": {"type": error_type, "message": error_message},
            }
            return None
        finally:
            SERVICE_CONTEXT.reset(token)
        my_task.internal_data.pop(JOB_KEY, None)
        target = ext.get(RESULT_KEY)
        if target:
            my_task.data[target] = dict(result)
        else:
            my_task.data.update(result)
        return True


class _Environment(BasePythonScriptEngineEnvironment):  # type: ignore[misc]
    """Runs diagram code in the restricted sandbox instead of plain eval/exec."""

    def evaluate(self, expression: str, context: Mapping[str, Any], external_context: Any = None) -> Any:
        return sandbox.evaluate(expression, context, external_context)

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        sandbox.execute(script, context, external_context)
        return True

    def call_service(self, context: Any, **kwargs: Any) -> Any:
        raise ServiceError("service tasks are dispatched by FlowrunServiceTask")


class FlowrunScriptEngine(PythonScriptEngine):  # type: ignore[misc]
    """The script engine every workflow gets, on creation and on every load."""

    def __init__(
        self,
        service_caller: ServiceCaller | None = None,
        policies: Callable[[str], ServicePolicy] | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(environment=_Environment())
        self.service_caller = service_caller
        self.policies = policies
        self.clock = clock
        #: True while a worker runs due jobs: failures are retried or become incidents.
        self.worker_mode = False
        #: The instance being run, for the handlers' idempotency keys.
        self.instance_id = ""

    def policy(self, topic: str | None) -> ServicePolicy:
        return self.policies(topic) if (self.policies and topic) else ServicePolicy()

    def now(self) -> datetime:
        clock = _CLOCK.get() or self.clock
        if clock is None:
            raise ServiceError("no clock for scheduling service retries")
        return clock.now()

    def validate(self, expression: str) -> None:
        sandbox.compile_expression(expression)

    def call_handler(self, spec: Any, topic: str | None, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        """Call the handler for ``topic``; ``FlowrunError``s pass through unchanged."""
        label = f"service task {spec.bpmn_id} ({spec.bpmn_name or 'unnamed'})"
        if not topic:
            raise ServiceError(
                f'{label} names no handler; set camunda:topic (with camunda:type="external") '
                "or a SpiffArena serviceTaskOperator in the diagram"
            )
        if self.service_caller is None:
            raise ServiceError(f"{label} needs a handler for '{topic}' but no services are configured")
        result = self.service_caller(topic, payload)
        if isinstance(result, Mapping):
            from flowrun.engine.runner import check_saveable

            check_saveable(dict(result), f"the result of the service '{topic}' ({label})")
        if not isinstance(result, Mapping):
            raise ServiceError(
                f"the handler for '{topic}' ({label}) returned {type(result).__name__}; "
                "a handler must return a dict, which is merged into the task data"
            )
        return result


class StateConverter(BpmnWorkflowConverter):  # type: ignore[misc]
    """Converts a workflow's state without its definition.

    The definition is most of a serialised workflow and is the same for every
    instance of a model version, so flowrun stores it once (keyed by the model's
    sha256) and hands the restored spec objects back in on load.
    """

    def to_dict(self, workflow: Any) -> dict[str, Any]:
        dct: dict[str, Any] = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], spec: Any = None, subprocess_specs: Any = None) -> Any:
        if spec is None:
            return super().from_dict(dct)
        from uuid import UUID

        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def event_definition(kind: str, name: str) -> Any:
    """A message or signal event definition to deliver from outside, matched by name."""
    if kind == "signal":
        from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition

        return SignalEventDefinition(name)
    from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition

    return MessageEventDefinition(name)


def error_event(code: str) -> Any:
    """The BPMN error event definition for ``code``."""
    from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import ErrorEventDefinition

    return ErrorEventDefinition(code, code=code)


def make_serializer() -> BpmnWorkflowSerializer:
    """A serializer that knows flowrun's task specs and stores state without the definition."""
    config = dict(CAMUNDA_CONFIG)
    # Diagrams mix flavours: keep the plain BPMN classes Camunda's config replaces.
    for cls, converter in BPMN_CONFIG.items():
        config.setdefault(cls, converter)
    config[FlowrunUserTask] = BpmnTaskSpecConverter
    config[FlowrunServiceTask] = BpmnTaskSpecConverter
    config[BpmnWorkflow] = StateConverter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))
