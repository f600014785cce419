"""The script engine every workflow gets: diagram code in the sandbox, service calls to flowrun's handlers.

SpiffWorkflow evaluates conditions and runs scripts through its script engine;
flowrun's runs them in :mod:`flowrun.engine.sandbox` instead of plain
``eval``/``exec``, and answers :class:`~flowrun.engine.specs.FlowrunServiceTask`'s
calls with the injected service caller. The engine is attached on creation and
again on every load (it is not part of the saved state).

Whatever diagram code raises (``SystemExit``, a stopped endless loop, ``MemoryError``,
any ``BaseException``) leaves it as a ``WorkflowTaskException`` naming the task and
the reason; only a real Ctrl-C (``KeyboardInterrupt``, which diagram code cannot
name) passes as it is, and data nested too deeply to copy is a
:class:`~flowrun.errors.DataError` that blames no script.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from flowrun.clock import Clock
from flowrun.engine import sandbox, step_limits
from flowrun.engine._spiff import check_saveable, current_clock
from flowrun.errors import DataError, ServiceError
from flowrun.models import ServiceCaller, ServicePolicy


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
        clock = current_clock() or self.clock
        if clock is None:
            raise ServiceError("no clock for scheduling service retries")
        return clock.now()

    def validate(self, expression: str) -> None:
        """Raise ``SyntaxError`` for text that is no Python expression (a DMN rule's ``< 100`` is then
        completed with its input), :class:`~flowrun.engine.sandbox.SandboxError` for a refused one."""
        ast.parse(expression.strip(), mode="eval")
        sandbox.compile_expression(expression)

    def evaluate(self, task: Any, expression: str, external_context: Any = None) -> Any:
        """Evaluate a condition or expression of ``task``; a failure names the task and why."""
        self._note(task)
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except KeyboardInterrupt:
            raise  # a real Ctrl-C: diagram code cannot name KeyboardInterrupt
        except BaseException as exc:
            raise _failure(task, exc, f"the expression '{expression.strip()}' failed: ") from exc

    def execute(self, task: Any, script: str, external_context: Any = None) -> bool:
        """Run a script task's script; a failure names the task, the line and why."""
        self._note(task)
        try:
            return bool(self.environment.execute(script, task.data, external_context or {}))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            raise _failure(task, exc, "") from exc

    def _note(self, task: Any) -> None:
        if step_limits.watched():
            spec = task.task_spec
            step_limits.note_running(
                self.instance_id, spec, lambda: f"{spec.bpmn_id or spec.name} ({spec.bpmn_name or 'unnamed'})"
            )

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
        if step_limits.watched():
            step_limits.note_running(self.instance_id, spec, lambda: label, topic)
        result = self.service_caller(topic, payload)
        if not isinstance(result, Mapping):
            raise ServiceError(
                f"the handler for '{topic}' ({label}) returned {type(result).__name__}; "
                "a handler must return a dict, which is merged into the task data"
            )
        check_saveable(dict(result), f"the result of the service '{topic}' ({label})")
        return result


def _failure(task: Any, exc: BaseException, doing: str) -> Exception:
    """What leaves the engine when diagram code of ``task`` raised ``exc`` (not a Ctrl-C)."""
    if isinstance(exc, sandbox.DataTooDeep):
        return DataError(str(exc))
    if isinstance(exc, step_limits.ScriptTimeout):
        step_limits.spent()
    detail = doing + sandbox.describe(exc)
    error: Exception = WorkflowTaskException(detail, task=task, exception=exc, line_number=sandbox.line_of(exc))
    return error
