"""SpiffWorkflow's internals, in one place: how flowrun stores its objects and the private names it uses.

Everything here depends on how SpiffWorkflow works inside rather than on what
it documents, so a SpiffWorkflow upgrade that changes its internals should
break this module and no other:

* the serializer: the process definition as JSON (:func:`dump_definition`,
  :func:`load_definition`), an instance's state as JSON without the definition
  (:func:`dump_state`, :func:`load_state`, with SpiffWorkflow's version
  migration), and what task data can be stored (:func:`check_saveable`);
* the private attributes flowrun needs: the serializer's encoder class and
  mode, a task's forced state change (:func:`make_ready`), the SpiffArena
  parser's extension reader (:func:`spiff_extensions`);
* how its task iterators walk the tree (:mod:`flowrun.engine._tree`, installed on import);
* the clock SpiffWorkflow's timers read (:func:`using_clock`): its timer module
  calls ``datetime.now()`` itself, so the name ``datetime`` in that module is
  replaced.

Errors are mapped to flowrun's by the caller, with :mod:`flowrun.engine.error_map`.
"""

from __future__ import annotations

import contextvars
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.serializer import DEFAULT_CONFIG as BPMN_CONFIG
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.task_spec import BpmnTaskSpecConverter
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _timer_module
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.camunda.serializer import DEFAULT_CONFIG as CAMUNDA_CONFIG
from SpiffWorkflow.util.task import TaskState

from flowrun.clock import Clock
from flowrun.engine import _tree as _tree  # importing it lets task queries walk the tree to any depth, fast
from flowrun.engine.specs import FlowrunServiceTask, FlowrunUserTask
from flowrun.errors import DataError, StateError

# -- the serializer ---------------------------------------------------------------------------


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
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


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


_SERIALIZER = make_serializer()
_REGISTRY = _SERIALIZER.registry
#: The converter registry of flowrun's serializer (SpiffWorkflow's spec diff compares specs as it converts them).
REGISTRY = _REGISTRY
#: SpiffWorkflow's JSON encoder for its registry's types (datetimes, UUIDs, ...); it has no public name.
_ENCODER: type[json.JSONEncoder] = _SERIALIZER._encoder_cls


def dump_definition(spec: Any, subprocess_specs: dict[str, Any]) -> str:
    """A parsed process (and the processes it calls) as JSON text, stored once per model version.

    Raises:
        TypeError, ValueError: the definition holds something the serializer cannot store.
    """
    return json.dumps(
        {
            "spec": _REGISTRY.convert(spec),
            "subprocess_specs": {name: _REGISTRY.convert(s) for name, s in subprocess_specs.items()},
        },
        cls=_ENCODER,
        separators=(",", ":"),
    )


def load_definition(text: str) -> tuple[Any, dict[str, Any]]:
    """The process spec and its called processes' specs from :func:`dump_definition`'s text.

    Raises:
        ValueError, KeyError, TypeError, SpiffWorkflowException: the text is not such a definition.
    """
    dct = json.loads(text)
    spec = _REGISTRY.restore(dct["spec"])
    subs = {name: _REGISTRY.restore(s) for name, s in dct["subprocess_specs"].items()}
    return spec, subs


def dump_state(workflow: Any) -> str:
    """A workflow's state as JSON text, without its definition, marked with the serializer version.

    Raises:
        TypeError, ValueError: the task data holds values JSON cannot hold (see :func:`check_saveable`).
    """
    # Encoder mode makes the registry leave plain values to the JSON encoder (as serialize_json does).
    _REGISTRY._encoder_mode = True
    try:
        dct = _REGISTRY.convert(workflow)
        dct[_SERIALIZER.VERSION_KEY] = _SERIALIZER.VERSION
        return json.dumps(dct, cls=_ENCODER, separators=(",", ":"), allow_nan=False)
    finally:
        _REGISTRY._encoder_mode = False


def load_state(text: str, spec: Any, subprocess_specs: dict[str, Any], instance_id: str = "") -> Any:
    """A workflow from :func:`dump_state`'s text and its definition, migrated from older serializer versions.

    The state is data read from the database, which others may write (a shared
    PostgreSQL server): it is only ever migrated from a version flowrun writes
    (see :func:`check_state_version`), and the migrations never evaluate code
    (see :func:`_no_code_in_migrations`).

    Raises:
        StateError: the state is in a serializer format flowrun never writes.
        ValueError, KeyError, TypeError, SpiffWorkflowException: the text is not a loadable state.
    """
    try:
        dct = json.loads(text)
    except RecursionError:
        raise ValueError("the state is nested too deep to read") from None
    if not isinstance(dct, dict):
        raise ValueError(f"the state is a JSON {type(dct).__name__}, not an object")
    version = dct.pop(_SERIALIZER.VERSION_KEY, None)
    check_state_version(version, f"the saved state of instance {instance_id[:8]}" if instance_id else "the saved state")
    if version != _SERIALIZER.VERSION:
        dct[_SERIALIZER.VERSION_KEY] = version
        _SERIALIZER.migrate(dct)
    try:
        return _REGISTRY.restore(dct, spec=spec, subprocess_specs=subprocess_specs)
    except RecursionError:
        raise ValueError("the state is nested too deep to restore") from None


#: The oldest serializer version flowrun writes: SpiffWorkflow 3.2's (flowrun needs SpiffWorkflow >= 3.2).
OLDEST_STATE_VERSION = "1.5"


def check_state_version(version: Any, what: str = "the saved state") -> None:
    """Refuse a stored state that flowrun cannot have written, before any migration looks at it.

    Every state flowrun saves carries the version of the serializer that wrote it.
    Only versions from :data:`OLDEST_STATE_VERSION` to the installed SpiffWorkflow's
    are migrated: SpiffWorkflow's migrations from older formats (1.0 to 1.4) run
    ``eval()`` on timer expressions found in the state, so a forged row would run
    code on every machine that loads it.

    Args:
        version: the version the state says it has.
        what: the state in the message ("the saved state of instance 1a2b3c4d").

    Raises:
        StateError: the version is missing, older than flowrun ever wrote, or newer than this SpiffWorkflow.
    """
    current = _SERIALIZER.VERSION
    restore = "restore the database from a backup taken before the instance was changed"
    key = _version_key(version)
    if key is None:
        raise StateError(
            f"{what} has no valid serializer version ({_SERIALIZER.VERSION_KEY}: {version!r}); "
            f"flowrun never saves such a state, so it was changed in the database: {restore}, "
            "and check who can write to the database"
        )
    if key < _version_key_of(OLDEST_STATE_VERSION):
        raise StateError(
            f"{what} is in SpiffWorkflow's serializer format {version}, which flowrun never writes "
            f"(it writes {OLDEST_STATE_VERSION} and later), so it was not saved by flowrun or was changed in "
            f"the database; it is not migrated (that would run code stored in it): {restore}, "
            "and check who can write to the database"
        )
    if key > _version_key_of(current):
        raise StateError(
            f"{what} is in serializer format {version}, newer than this SpiffWorkflow's ({current}): "
            "it was saved by a flowrun with a newer SpiffWorkflow; install the same flowrun and SpiffWorkflow "
            "versions here as on the machines that run the instances (pip install -U flowrun SpiffWorkflow)"
        )


def _version_key(version: Any) -> tuple[int, ...] | None:
    """``"1.5"`` -> ``(1, 5)``; None for anything but a few dot-separated numbers."""
    if not isinstance(version, str):
        return None
    parts = version.split(".")
    if not 1 <= len(parts) <= 4 or not all(p.isdigit() and p.isascii() and len(p) <= 4 for p in parts):
        return None
    return tuple(int(p) for p in parts)


def _version_key_of(version: str) -> tuple[int, ...]:
    key = _version_key(version)
    if key is None:  # SpiffWorkflow's own version is always numbers
        raise RuntimeError(f"unexpected serializer version {version!r}")
    return key


def _refuse_code(*args: Any, **kwargs: Any) -> Any:
    raise ValueError("a stored state holds code, which is never evaluated while it is loaded")


def _no_code_in_migrations() -> None:
    """Shadow ``eval`` and ``exec`` in SpiffWorkflow's migration modules with a refusal.

    A second wall behind :func:`check_state_version`: should a migration that is
    allowed ever evaluate text from the state, it fails (as a
    ``VersionMigrationError``) instead of running it.
    """
    import importlib
    import pkgutil

    from SpiffWorkflow.bpmn.serializer import migration

    for info in pkgutil.iter_modules(migration.__path__, migration.__name__ + "."):
        module = importlib.import_module(info.name)
        module.eval = _refuse_code  # type: ignore[attr-defined]
        module.exec = _refuse_code  # type: ignore[attr-defined]


_no_code_in_migrations()


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


# -- private attributes -----------------------------------------------------------------------


def make_ready(task: Any) -> None:
    """Put a started task (a service job that is due) back to ready, so the next engine step runs it.

    The public ``state`` setter refuses to go back from STARTED to READY.
    """
    task._set_state(TaskState.READY)


def spiff_extensions(node: Any) -> dict[str, Any]:
    """The SpiffArena extensions (``spiffworkflow:*``) of a BPMN element, read as SpiffWorkflow reads them."""
    from SpiffWorkflow.spiff.parser.task_spec import SpiffTaskParser

    return SpiffTaskParser._parse_extensions(node)  # type: ignore[no-any-return]


# -- the clock of SpiffWorkflow's timers ------------------------------------------------------

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


def current_clock() -> Clock | None:
    """The clock of the :func:`using_clock` block being run, if any."""
    return _CLOCK.get()
