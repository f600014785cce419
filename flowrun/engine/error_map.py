"""SpiffWorkflow's exceptions mapped to flowrun's errors, each mapping one table (as httpx maps httpcore's).

Wrap a call into SpiffWorkflow in ``with mapped(TABLE):``. A table is a
sequence of ``(exception class or classes, factory)`` pairs; the first pair
whose classes the exception is an instance of makes the flowrun error, which is
raised ``from`` the original, so a traceback (``FLOWRUN_DEBUG=1``) still shows
where SpiffWorkflow failed. :class:`~flowrun.errors.FlowrunError`\\ s pass
through unchanged, and an exception no pair matches propagates as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException

from flowrun.engine.sandbox import SandboxError, depth_message, memory_message
from flowrun.errors import DataError, FlowrunError, ModelError, NotFoundError, ScriptError, StateError

#: Makes the flowrun error for a caught exception.
Factory = Callable[[Any], FlowrunError]
#: ``(exception classes, factory)`` pairs, tried in order.
Table = Sequence[tuple[type[BaseException] | tuple[type[BaseException], ...], Factory]]


class mapped:  # lower case: it reads as a function, ``with mapped(TABLE):``
    """Raise the flowrun error ``table`` makes for an exception of the block, from that exception.

    A class rather than a ``@contextmanager`` generator: it wraps every engine step (thousands per
    second in a simulation), and a generator-based context manager costs several times as much.
    """

    __slots__ = ("_table",)

    def __init__(self, table: Table) -> None:
        self._table = table

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        # Returns None: the block's exception is never swallowed, only replaced by flowrun's.
        if exc is None or isinstance(exc, FlowrunError) or not isinstance(exc, Exception):
            return
        for classes, make in self._table:
            if isinstance(exc, classes):
                raise make(exc) from exc


def script_error(exc: WorkflowException) -> FlowrunError:
    """A failed script or condition, named by its element and line, with the fix.

    A :class:`~flowrun.errors.DataError` the engine wrapped on its way (a DMN rule wraps what
    its expressions raise) comes out as it was: it blames the data, not the diagram.
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, DataError):
            return cause
        cause = cause.__cause__ or cause.__context__
    spec = getattr(exc, "task_spec", None)
    where = ""
    if spec is not None and getattr(spec, "bpmn_id", None):
        where = f'{spec.bpmn_id} ("{spec.bpmn_name or spec.bpmn_id}")'
    # SpiffWorkflow keeps its notes (the DMN row, "did you mean") in a list its __str__ appends.
    notes = [*(getattr(exc, "notes", None) or []), *(getattr(exc, "__notes__", None) or [])]
    line = getattr(exc, "line_number", None)
    at = f" at line {line}" if line else ""
    detail = str(exc.args[0] if exc.args else exc).split("\n")[0].rstrip(". ")
    text = f"{where}{at}: {detail}" if where or at else detail
    text = text.removeprefix(" ")
    extra = ". ".join(n.strip().rstrip(".") for n in notes if n and n.strip() and n.strip() not in text)
    if extra:
        text += f" ({extra})"
    return ScriptError(text + "; fix the script or condition in the diagram")


def _failed(doing: str, advice: str = "") -> Factory:
    return lambda exc: ScriptError(f"{doing}: {exc.__class__.__name__}: {exc}{advice}")


#: Out of memory or data nested too deeply, anywhere in a step (a script's own failures are located).
_LIMITS: Table = (
    (MemoryError, lambda exc: ScriptError(f"the step {memory_message()}; nothing was saved for this step")),
    (RecursionError, lambda exc: DataError(depth_message())),
)

#: Running the automated steps of an instance (scripts, conditions, gateways, events).
RUNNING: Table = (
    (SandboxError, lambda exc: ScriptError(f"a script or condition was refused: {exc}")),
    (WorkflowException, script_error),
    *_LIMITS,
    (SpiffWorkflowException, lambda exc: ScriptError(f"the process failed: {exc}")),
    # Diagram code may fail in any way; the user gets a message, never a traceback.
    (
        Exception,
        _failed(
            "the process failed",
            "; check the scripts, conditions and message correlations in the diagram",
        ),
    ),
)


def correlating(kind: str, name: str, blame: Callable[[], str]) -> Table:
    """The table for catching the ``kind`` ``name``: its correlation expressions run on the payload.

    ``blame`` names the catching element and the expression that failed; it is asked only
    after a failure.
    """

    def make(exc: Any) -> ScriptError:
        text = (str(exc).splitlines() or [""])[0].rstrip(".")
        reason = f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
        if isinstance(exc, SandboxError):
            reason = f"refused: {text}"
        culprit = blame()
        where = f" at {culprit}" if culprit else ""
        return ScriptError(
            f"the {kind} '{name}' cannot be correlated{where}: {reason}; nothing was delivered - "
            "fix the correlation expression in the diagram, or send the data it reads"
        )

    return ((Exception, make),)


#: Completing a user task (its output mappings and scripts run).
COMPLETING: Table = (
    (WorkflowException, script_error),
    *_LIMITS,
    (Exception, _failed("completing the task failed")),
)


def task_lookup(task_id: str) -> Table:
    """The table for finding the task ``task_id`` in a workflow (a malformed or unknown id)."""
    return (
        (
            (ValueError, KeyError, WorkflowException),
            lambda exc: NotFoundError(f"task {task_id} is not part of this instance"),
        ),
    )


_UNREADABLE = (ValueError, KeyError, TypeError, SpiffWorkflowException)

#: Reading a stored process definition.
DEFINITION: Table = ((_UNREADABLE, lambda exc: ModelError(f"the stored process definition cannot be read ({exc})")),)

#: Loading a saved instance.
STATE: Table = ((_UNREADABLE, lambda exc: StateError(f"the saved instance cannot be loaded ({exc})")),)

#: Saving an instance's state.
SAVING: Table = (
    *_LIMITS,
    (
        (TypeError, ValueError),
        lambda exc: DataError(
            f"the task data cannot be saved ({exc}); use only text, numbers, booleans, lists and objects in task data"
        ),
    ),
)

#: What SpiffWorkflow's parser raises besides its located ValidationException.
_PARSING = (SpiffWorkflowException, KeyError, ValueError, AttributeError, TypeError, IndexError)


def parsing(doing: str, trees: dict[str, Any], display: str) -> Table:
    """The table for parsing the diagram ``display`` (``doing``: "cannot be parsed", ...).

    ``trees`` are the lxml trees of the files read so far, by display name, to
    find the line of an element SpiffWorkflow names without one.
    """
    from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException

    return (
        (ValidationException, lambda exc: located(exc, trees, display)),
        (_PARSING, lambda exc: ModelError(f"{doing}: {_describe(exc)}", file=display)),
    )


def storing(display: str) -> Table:
    """The table for storing the parsed definition of ``display``."""
    return (
        (
            (TypeError, ValueError),
            lambda exc: ModelError(f"uses an element flowrun cannot store yet ({exc})", file=display),
        ),
    )


def located(exc: Any, trees: dict[str, Any], default: str) -> ModelError:
    """A SpiffWorkflow ValidationException as a ModelError with its file, line and element."""
    file = getattr(exc, "file_name", "") or default
    element = getattr(exc, "id", "") or None
    line = getattr(exc, "line_number", "") or None
    tree = trees.get(file)
    if element and not line and tree is not None:
        found = tree.getroot().xpath("//*[@id=$id]", id=element)
        if found:
            line = found[0].sourceline
    name = getattr(exc, "name", "") or ""
    if element and name:
        element = f'{element} ("{name}")'
    message = str(exc).split("\n")[0]
    for prefix in ("ValidationException: ",):
        message = message.removeprefix(prefix)
    return ModelError(_advise(message), file=file, line=int(line) if line else None, element=element)


_ADVICE = {
    "No start event found": "draw a start event in the process",
    "Multiple outgoing flows are not supported": "add a parallel or exclusive gateway after the task",
    "No outgoing": "connect the element to the rest of the process",
}


def _advise(message: str) -> str:
    for needle, fix in _ADVICE.items():
        if needle in message and ";" not in message:
            return f"{message.rstrip('.')}; {fix}"
    return message


def _describe(exc: BaseException) -> str:
    text = str(exc).split("\n")[0] or exc.__class__.__name__
    if isinstance(exc, KeyError):
        text = f"missing attribute or reference {text}"
    return text
