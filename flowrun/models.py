"""Plain data that crosses layers: what the engine, the store and the CLI exchange.

Everything here is a frozen or simple dataclass of built-in types, so it can be
rendered, serialised to JSON and compared in tests without touching the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Calls the service handler registered for ``topic`` with the task data.
ServiceCaller = Callable[[str, Mapping[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True)
class ServicePolicy:
    """How a service topic runs: retries after a failure, their backoff, and where it runs.

    Attributes:
        retries: attempts after the first one; 0 means a failure is final.
        backoff_s: seconds before the first retry; each later retry waits twice as long.
        run_async: run only by ``flowrun worker``, never inside an operator's command.
    """

    retries: int = 0
    backoff_s: float = 10.0
    run_async: bool = False

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(self.backoff_s * 2 ** max(0, attempt - 1))


@dataclass(frozen=True)
class ServiceContext:
    """What a handler may want to know besides the data: which call this is.

    ``idempotency_key`` is the same for every attempt at the same task of the same
    instance, so a handler can make its effect happen once despite retries.
    """

    topic: str
    instance: str
    task: str
    attempt: int

    @property
    def idempotency_key(self) -> str:
        return f"{self.instance}:{self.task}"


#: The call in progress, set by the engine around each handler call.
SERVICE_CONTEXT: ContextVar[ServiceContext | None] = ContextVar("flowrun_service_context", default=None)

#: Task statuses as recorded in the store.
READY = "ready"
STARTED = "started"
COMPLETED = "completed"
CANCELLED = "cancelled"
WAITING = "waiting"
ERROR = "error"

#: Instance statuses.
RUNNING = "running"
INSTANCE_COMPLETED = "completed"
INSTANCE_ERROR = "error"
INSTANCE_CANCELLED = "cancelled"

#: The columns of an event log's task rows, in the order the store streams them and the
#: writers (``flowrun.eventlog``) index them; the first 14 are the columns of the CSV export.
LOG_COLUMNS = (
    "case_id",
    "activity",
    "lane",
    "resource",
    "enable_time",
    "start_time",
    "end_time",
    "activity_id",
    "type",
    "status",
    "process",
    "variant",
    "pilot",
    "model_sha256",
    "task_ref",
)


@dataclass
class TaskRecord:
    """The life of one task of one instance: when it was ready, started, completed, by whom.

    ``task_id`` is the engine's id for the task (unique within the instance);
    ``ref`` is the short number operators type, assigned by the store.
    ``form`` is the form reference of a user task: ``{"key": ...}`` for a form
    file, ``{"schema": {...}}`` for a form drawn inline in the diagram.
    ``deadline_at`` is a user task's due date (``due_at`` is when a wait, a timer or a
    service retry, is due) and ``priority`` its ``camunda:priority`` (higher is more urgent).
    """

    task_id: str
    bpmn_id: str
    name: str
    type: str
    lane: str | None
    status: str
    ready_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    actor: str | None = None
    form: dict[str, Any] | None = None
    documentation: str | None = None
    ref: int | None = None
    instance_id: str | None = None
    waits_for: str | None = None
    due_at: datetime | None = None
    attempts: int = 0
    #: Who the diagram gives a user task to (``camunda:assignee``), evaluated when it became ready.
    assignee: str | None = None
    #: Who else may take it: ``{"users": [...], "groups": [...]}`` (``camunda:candidate*``); None: anyone.
    candidates: dict[str, list[str]] | None = None
    deadline_at: datetime | None = None
    priority: int | None = None

    @property
    def waiting_s(self) -> float | None:
        """Seconds from ready to started, once started."""
        if self.ready_at is None or self.started_at is None:
            return None
        return (self.started_at - self.ready_at).total_seconds()

    @property
    def touch_s(self) -> float | None:
        """Seconds from started to completed, once completed.

        At completion ``started_at`` is set to ``completed_at`` minus the completer's claim
        intervals (see :class:`ClaimInterval`), so this is the completer's touch time.
        """
        if self.started_at is None or self.completed_at is None:
            return None
        return (self.completed_at - self.started_at).total_seconds()


#: How a claim interval ended (``ClaimInterval.outcome``).
CLAIM_OUTCOMES = ("completed", "unclaimed", "assigned", "interrupted", "cancelled")


@dataclass(frozen=True)
class ClaimInterval:
    """One interval a person held a task: from its claim to its release (None while held).

    Touch time counts only inside the intervals of the person who completed the task;
    the time between a release and the next claim is waiting.
    """

    task_ref: int
    actor: str
    claimed_at: datetime
    released_at: datetime | None = None
    outcome: str | None = None

    def seconds(self, now: datetime) -> float:
        """How long the interval lasted (up to ``now`` while it is held)."""
        return max(0.0, ((self.released_at or now) - self.claimed_at).total_seconds())


@dataclass(frozen=True)
class ModelInfo:
    """A parsed, executable process model, ready to be stored once per version.

    ``spec`` is the engine's serialised definition (opaque JSON text); ``sha256``
    is the hash of the BPMN file's bytes and keys the stored definition.
    ``warnings`` name what was left out to run the diagram (e.g. data stores).
    """

    file: str
    sha256: str
    process_id: str
    name: str | None
    spec: str
    lanes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProcessEntry:
    """One runnable process of the project, as ``flowrun processes`` lists it."""

    family: str
    variant: str
    file: str
    exists: bool
    named_in_config: bool


@dataclass
class InstanceView:
    """An instance as ``flowrun show`` presents it."""

    id: str
    family: str
    variant: str
    file: str
    sha256: str
    pilot: str | None
    status: str
    created_at: datetime
    ended_at: datetime | None
    version: int
    data: dict[str, Any]
    waiting_for: list[Wait] = field(default_factory=list)
    error: str | None = None
    business_key: str | None = None

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def cycle_s(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.created_at).total_seconds()


@dataclass(frozen=True)
class FormField:
    """One field of a form, as an operator is asked for it."""

    name: str
    label: str
    type: str
    required: bool
    description: str | None = None
    choices: tuple[Any, ...] | None = None
    default: Any = None
    has_default: bool = False
    minimum: float | None = None
    maximum: float | None = None
    readonly: bool = False


@dataclass(frozen=True)
class Form:
    """A user task's form: its JSON Schema and the fields to ask, in order."""

    title: str
    source: str
    schema: Mapping[str, Any]
    fields: tuple[FormField, ...]


@dataclass
class InstanceRecord:
    """An instance row as the store keeps it; ``state`` is the engine's opaque snapshot."""

    id: str
    family: str
    variant: str
    file: str
    sha256: str
    process_id: str
    pilot: str | None
    status: str
    created_at: datetime
    ended_at: datetime | None
    version: int
    data: dict[str, Any]
    state: str | None = None
    error: str | None = None
    business_key: str | None = None


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a diagram, as ``flowrun validate`` reports it.

    ``severity`` is ``"error"`` (the file cannot be run as it is) or ``"warning"``
    (it runs, but probably not as meant, or other tools may reject it).
    """

    file: str
    line: int | None
    element: str | None
    name: str | None
    message: str
    fix: str
    severity: str = "error"

    def __str__(self) -> str:
        """``file:line: element-id ("name"): what is wrong; how to fix it``."""
        where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        if self.element:
            where += f'{self.element} ("{self.name}"): ' if self.name else f"{self.element}: "
        if self.severity != "error":
            where += f"{self.severity}: "
        return where + (f"{self.message}; {self.fix}" if self.fix else self.message)


@dataclass(frozen=True)
class ValidationReport:
    """What ``flowrun validate`` checked and found: the files, and every problem in file order."""

    files: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> int:
        return sum(1 for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for p in self.problems if p.severity != "error")


@dataclass(frozen=True)
class StepResult:
    """What one start or completion did: the instance's status and its ready tasks."""

    instance: str
    status: str
    ready: list[TaskRecord]
    completed: list[TaskRecord]
    key: str | None = None

    @classmethod
    def of(cls, instance: str, status: str, records: list[TaskRecord], key: str | None = None) -> StepResult:
        """The result of a step that changed ``records``: the user tasks it made ready, the tasks it completed."""
        return cls(
            instance=instance,
            status=status,
            ready=[r for r in records if r.status == READY and r.type in ("userTask", "manualTask")],
            completed=[r for r in records if r.status == COMPLETED],
            key=key,
        )


@dataclass(frozen=True)
class EventRow:
    """One entry of an instance's event log (``instance_started``, a task ``completed``, ...).

    ``detail`` is JSON-safe data about the event (the task, the data entered), or None.
    """

    instance_id: str
    task_ref: int | None
    at: datetime
    kind: str
    actor: str | None
    detail: Any = None


@dataclass(frozen=True)
class ServiceFailure:
    """A service task whose last attempt failed since the run was last drained; saved as an :class:`Incident`."""

    task_id: str
    topic: str | None
    error_type: str
    message: str
    attempts: int


@dataclass(frozen=True)
class Incident:
    """A step that failed for good: a service whose attempts are used up, or a worker step.

    ``task_id`` is empty (and ``task_ref`` None) for a worker step that failed as a whole.
    """

    id: int
    instance: str
    task_ref: int | None
    task_id: str
    topic: str | None
    error_type: str
    message: str
    attempts: int
    created_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class Wait:
    """Something an instance waits for: a ready or claimed user task, a timer, a message, a service job.

    ``kind`` is ``"task"`` for a user task, else the task or event type. From the store
    (``flowrun show``) every field the task row has is filled in; a live run
    (:meth:`flowrun.engine.Run.waiting_for`) knows no ``ref``, ``since``, ``actor`` or ``waits_for``.
    """

    kind: str
    ref: int | None = None
    task: str | None = None
    name: str | None = None
    lane: str | None = None
    since: datetime | None = None
    actor: str | None = None
    waits_for: str | None = None
    due: datetime | None = None


@dataclass(frozen=True)
class InboxWho:
    """Whose tasks the inbox lists (each field set narrows it further).

    Attributes:
        mine: claimed by this user, or unclaimed and assigned to them.
        owner: claimed by this user.
        unclaimed: claimed by nobody.
        group: offered to this group (``camunda:candidateGroups``).
    """

    mine: str | None = None
    owner: str | None = None
    unclaimed: bool = False
    group: str | None = None


@dataclass(frozen=True)
class InboxRow:
    """A ready or claimed user task as the store reads it for the inbox (see :class:`InboxItem`)."""

    ref: int
    instance: str
    task: str
    name: str
    lane: str | None
    family: str
    variant: str
    pilot: str | None
    ready_at: datetime
    started_at: datetime | None
    actor: str | None
    business_key: str | None = None
    deadline_at: datetime | None = None
    priority: int | None = None
    #: The case's data, read only when the inbox shows or filters on data fields (else None).
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class InboxItem(InboxRow):
    """A ready user task, as the operators' inbox shows it: the stored row and how long it has waited.

    ``due_s`` is the time left until its deadline (negative: overdue by that much), None without one.
    """

    waited_s: float = 0.0
    due_s: float | None = None

    @property
    def case(self) -> str:
        """The case as people name it: its business key, else its short id."""
        return self.business_key or self.instance[:8]


@dataclass(frozen=True)
class TaskPreview:
    """What ``flowrun task REF`` shows before anyone claims the task."""

    task: TaskRecord
    family: str
    variant: str
    business_key: str | None
    form: Form | None
    data: dict[str, Any]


@dataclass(frozen=True)
class InstanceFilter:
    """Which instances ``flowrun instances`` lists (each None or empty: any).

    Attributes:
        outdated: ``(family, variant, sha256 of its current file)`` per process; when given,
            only running or failed instances of those processes on another model version.
    """

    status: str | None = None
    family: str | None = None
    variant: str | None = None
    pilot: str | None = None
    outdated: tuple[tuple[str, str, str], ...] | None = None


@dataclass(frozen=True)
class CaseRef:
    """A case as a message's target: its id, family, business key and data (to correlate on)."""

    id: str
    family: str
    variant: str
    key: str | None
    data: Mapping[str, Any]


@dataclass(frozen=True)
class CaseNote:
    """Something that happened to a whole case, for ``flowrun history``: a cancellation, a migration."""

    at: datetime
    kind: str
    actor: str | None
    text: str


@dataclass(frozen=True)
class ModelChange:
    """What moving an instance to a new model version changes, by BPMN element id.

    Attributes:
        added, removed, changed: elements of the new version that the old lacks, of the old
            that the new lacks, and in both with different attributes (``"Gateway_1 (conditions)"``).
        blocked: elements the instance is waiting at that the new version no longer has;
            an instance with any cannot be moved.
    """

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    blocked: tuple[str, ...]


@dataclass(frozen=True)
class Migration:
    """One instance's move (or planned move) to the current version of its model."""

    instance: str
    family: str
    variant: str
    from_sha256: str
    to_sha256: str
    change: ModelChange
    done: bool


@dataclass(frozen=True)
class PendingWork:
    """Work of an instance that waits for a worker: a service job or a timer (``Run.pending_work``).

    Attributes:
        kind: ``"service"`` or ``"timer"``.
        name: the service's topic, or the timer event's name (its id when it has none).
        task_id: the engine's id of the waiting task.
        task: the name of the service task or timer event in the diagram.
        due_at: when it is due (None: a service job whose attempts are used up).
        attempt: for a service job, the attempts made so far.
        attempts: for a service job, the attempts its topic's policy allows (retries + 1).
        incident: a service job whose last attempt failed for good.
        error: the last failed attempt's error, ``"Type: message"``.
    """

    kind: str
    name: str
    task_id: str
    task: str
    due_at: datetime | None
    attempt: int = 0
    attempts: int = 1
    incident: bool = False
    error: str | None = None
