"""The script engine every workflow gets: diagram code in the sandbox, service calls to flowrun's handlers.

SpiffWorkflow evaluates conditions and runs scripts through its script engine;
flowrun's runs them in :mod:`flowrun.engine.sandbox` instead of plain
``eval``/``exec``, and answers :class:`~flowrun.engine.specs.FlowrunServiceTask`'s
calls with the injected service caller. The engine is attached on creation and
again on every load (it is not part of the saved state).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from flowrun.clock import Clock
from flowrun.engine import sandbox
from flowrun.engine._spiff import check_saveable, current_clock
from flowrun.errors import ServiceError
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
        if not isinstance(result, Mapping):
            raise ServiceError(
                f"the handler for '{topic}' ({label}) returned {type(result).__name__}; "
                "a handler must return a dict, which is merged into the task data"
            )
        check_saveable(dict(result), f"the result of the service '{topic}' ({label})")
        return result
