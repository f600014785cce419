"""The one exception tree of flowrun.

Every error a user can cause is a :class:`FlowrunError` whose message names the
thing that is wrong and how to fix it. The CLI maps them to exit codes in one
place (``flowrun.cli.main``)::

    FlowrunError                 exit 1
    ├── ProjectError             flowrun.yaml missing or invalid
    ├── ModelError               a BPMN file cannot be loaded (file, line, element)
    ├── NotFoundError            no such instance, task, process or form
    │   ├── AmbiguousIdError     a short id matches several objects
    │   └── AmbiguousTargetError a message matches several waiting cases
    ├── FormError                a form file is missing or is not a valid schema
    ├── DataError                data does not fit its form, or cannot be saved
    ├── ServiceError             a service task handler is missing or failed
    │   └── UnknownServiceError  no handler is registered for a topic
    ├── ScriptError              a script or condition in a diagram failed
    ├── StateError               the operation does not fit the instance's state
    ├── StoreError               the database cannot be used
    └── ConflictError            exit 3: someone else changed it first

:class:`BpmnError` is not a failure: a service handler raises it to throw a BPMN
error that an error boundary event in the diagram catches.
"""

from __future__ import annotations

from typing import ClassVar


class FlowrunError(Exception):
    """Root of every error flowrun reports to a user."""

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ProjectError(FlowrunError):
    """The project folder or its ``flowrun.yaml`` cannot be used."""


class ModelError(FlowrunError):
    """A BPMN or DMN file cannot be loaded or executed.

    Attributes:
        file: the file, relative to the project where possible.
        line: the line of the offending element, if known.
        element: the id of the offending element, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        element: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.element = element
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        if element:
            where += f"{element}: "
        super().__init__(where + message)
        self.detail = message


class NotFoundError(FlowrunError):
    """An instance, task, process or form that was named does not exist."""


class AmbiguousIdError(NotFoundError):
    """A short id or prefix matches more than one object."""

    def __init__(self, kind: str, prefix: str, candidates: list[str]) -> None:
        listed = ", ".join(candidates[:10])
        more = f" (and {len(candidates) - 10} more)" if len(candidates) > 10 else ""
        super().__init__(f"{kind} id '{prefix}' is ambiguous: it matches {listed}{more}; type more characters")
        self.candidates = candidates


class AmbiguousTargetError(NotFoundError):
    """A message matches several waiting cases and the sender did not say to deliver it to all."""


class FormError(FlowrunError):
    """A form referenced by a user task is missing or is not a valid JSON Schema."""


class DataError(FlowrunError):
    """Data does not fit its form, or could not be stored and loaded again."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        if self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class ServiceError(FlowrunError):
    """A service task could not be run by its handler.

    ``original`` is the handler's own exception type and message, when it raised one.
    """

    original: tuple[str, str] | None = None


class UnknownServiceError(ServiceError):
    """No handler is registered for the topic a service task names."""


class ScriptError(FlowrunError):
    """A script or a condition in a diagram failed or is not allowed."""


class StateError(FlowrunError):
    """The operation does not fit the current state (e.g. the instance has ended)."""


class StoreError(FlowrunError):
    """The database cannot be opened, migrated or written."""


class ConflictError(FlowrunError):
    """Someone else changed the same instance or task first (exit code 3)."""

    exit_code: ClassVar[int] = 3


class BpmnError(Exception):
    """Raised by a service handler to throw a BPMN error into the process.

    An error boundary event on the service task with the same error code (or with no
    code) catches it; ``camunda:errorCodeVariable`` and ``camunda:errorMessageVariable``
    on that event receive ``code`` and ``message``, and ``data`` is merged into the
    task data. When nothing catches it, the step fails like any other service error.

    Args:
        code: the error code, as in the diagram's ``bpmn:error errorCode``.
        message: a human-readable message.
        data: variables to merge into the task data of the catching path.
    """

    def __init__(self, code: str, message: str | None = None, data: dict[str, object] | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.data = dict(data or {})
