"""flowrun's task specs: user tasks that remember their form, service tasks that call a handler.

The parser (:mod:`flowrun.engine._parser`) fills the ``extensions`` keys
defined here; the serializer (:mod:`flowrun.engine._spiff`) registers the two
classes, and the script engine (:mod:`flowrun.engine.scripts`) answers the
service task's calls. This module imports no other part of flowrun's engine,
so each of those can import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from SpiffWorkflow.bpmn.specs.defaults import ServiceTask, UserTask

from flowrun.errors import BpmnError, ServiceError
from flowrun.models import SERVICE_CONTEXT, ServiceContext, ServicePolicy

FORM_KEY = "flowrun:form"
DUE_KEY = "flowrun:due_date"
PRIORITY_KEY = "flowrun:priority"
TOPIC_KEY = "flowrun:topic"
PARAMS_KEY = "flowrun:parameters"
RESULT_KEY = "flowrun:result_variable"
BPMN_ERROR_KEY = "flowrun:bpmn_error"
JOB_KEY = "flowrun:job"
ERROR_CODE_VAR = "flowrun:error_code_variable"
ERROR_MESSAGE_VAR = "flowrun:error_message_variable"


@runtime_checkable
class ServiceRunner(Protocol):
    """What a service task needs from the script engine (:class:`flowrun.engine.scripts.FlowrunScriptEngine`)."""

    worker_mode: bool
    instance_id: str

    def policy(self, topic: str | None) -> ServicePolicy: ...

    def now(self) -> datetime: ...

    def evaluate(self, task: Any, expression: str) -> Any: ...

    def call_handler(self, spec: Any, topic: str | None, payload: Mapping[str, Any]) -> Mapping[str, Any]: ...


class FlowrunUserTask(UserTask):  # type: ignore[misc]
    """A user task; its form reference lives in ``extensions["flowrun:form"]``."""


class FlowrunServiceTask(ServiceTask):  # type: ignore[misc]
    """A service task that calls the handler registered for its topic."""

    # ``_execute`` is the hook SpiffWorkflow's task specs override to do their work.
    def _execute(self, my_task: Any) -> bool | None:
        ext = getattr(self, "extensions", {}) or {}
        topic = ext.get(TOPIC_KEY)
        engine = my_task.workflow.top_workflow.script_engine
        if not isinstance(engine, ServiceRunner):
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
