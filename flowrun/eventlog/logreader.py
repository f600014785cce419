"""Read XES and OCEL 2.0 event logs as task records, for the checks the CSV importer makes.

Both formats hold lifecycle events, not tasks: a task is the ``schedule``, ``start``
and ``complete`` (or ``ate_abort``) events of one activity in one case. Events are
paired by ``concept:instance`` (XES) or by the task ref in the event id
``REF/<lifecycle>`` (OCEL), as flowrun writes them; without those, by activity in
time order (a transition already seen opens the next task of that activity).
Other transitions (``suspend``, ``resume``...) are left out.

Case attributes come back typed: XES ``<int>``, ``<float>``, ``<boolean>``,
``<string>`` (``<date>`` and ``<id>`` as text); OCEL attribute values as JSON gives
them (the latest value of an attribute that changes). A nested attribute (an XES
``<list>`` or ``<container>``, an OCEL array or object) is refused: flowrun keeps
scalar case data only. Events of an OCEL file that relate to no object of type
``case`` are left out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from xml.parsers import expat

from flowrun.errors import DataError
from flowrun.eventlog._rows import CSV_COLUMNS
from flowrun.eventlog.casedata import MAX_DIGITS, RESERVED, Scalar, is_scalar
from flowrun.eventlog.importer import Record

CHUNK = 1 << 20
#: The lifecycle transitions that give a task's times: transition -> (time, status).
TRANSITIONS = {
    "schedule": ("enable", ""),
    "start": ("start", ""),
    "complete": ("end", "completed"),
    "ate_abort": ("end", "cancelled"),
    "pi_abort": ("end", "cancelled"),
}
#: Trace (case) attributes that fill flowrun's columns rather than the case data.
COLUMN_ATTRIBUTES = ("process", "variant", "pilot", "model_sha256")
_SCALAR_TAGS = {"string", "date", "int", "float", "boolean", "id"}
_NESTED_TAGS = {"list", "container"}


@dataclass
class _Event:
    line: int
    activity: str
    transition: str
    time: str
    lane: str = ""
    resource: str = ""
    instance: str = ""
    activity_id: str = ""
    type: str = ""


@dataclass
class _Case:
    line: int
    attributes: dict[str, Scalar] = field(default_factory=dict)
    events: list[_Event] = field(default_factory=list)


class Hashed:
    """A binary stream's chunks, hashed as they pass, with progress reported in bytes."""

    def __init__(self, stream: BinaryIO, progress: Callable[[int], None] | None) -> None:
        self._stream, self._progress = stream, progress
        self._hash = hashlib.sha256()
        self._done = 0

    def chunks(self) -> Iterator[bytes]:
        while chunk := self._stream.read(CHUNK):
            self._hash.update(chunk)
            self._done += len(chunk)
            if self._progress is not None:
                self._progress(self._done)
            yield chunk

    def sha256(self) -> str:
        return self._hash.hexdigest()


def xes_records(source: Hashed, name: str) -> Iterator[Record]:
    """The task records of an XES file, a trace at a time (the file is parsed as it is read)."""
    reader = _XesReader(name)
    for chunk in source.chunks():
        reader.feed(chunk, final=False)
        yield from _drain(reader.done)
    reader.feed(b"", final=True)
    yield from _drain(reader.done)


def _drain(cases: list[tuple[str, _Case]]) -> Iterator[Record]:
    for case_id, case in cases:
        yield from _case_records(case_id, case)
    cases.clear()


class _XesReader:
    """An expat parser that collects each finished trace (refusing a DTD: no entity tricks)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.done: list[tuple[str, _Case]] = []
        self._parser = expat.ParserCreate()
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.StartDoctypeDeclHandler = self._doctype
        self._stack: list[str] = []
        self._case: _Case | None = None
        self._event: dict[str, str] | None = None
        self._event_line = 0

    def feed(self, chunk: bytes, final: bool) -> None:
        try:
            self._parser.Parse(chunk, final)
        except expat.ExpatError as exc:
            raise DataError(
                f"{self.name}: line {exc.lineno}: {expat.ErrorString(exc.code)}; is it an XES file?"
            ) from None

    def _doctype(self, *_: Any) -> None:
        raise DataError(f"{self.name}: an XES file has no DOCTYPE; remove it")

    def _start(self, tag: str, attrs: dict[str, str]) -> None:
        tag = tag.rpartition(":")[2]
        parent = self._stack[-1] if self._stack else ""
        self._stack.append(tag)
        line = self._parser.CurrentLineNumber
        if tag == "trace":
            self._case = _Case(line)
        elif tag == "event" and self._case is not None:
            self._event, self._event_line = {}, line
        elif parent == "event" and self._event is not None and tag in _SCALAR_TAGS:
            self._event[attrs.get("key", "")] = attrs.get("value", "")
        elif parent == "trace" and self._case is not None:
            self._trace_attribute(tag, attrs, line)

    def _trace_attribute(self, tag: str, attrs: dict[str, str], line: int) -> None:
        key = attrs.get("key", "")
        if tag in _NESTED_TAGS:
            raise DataError(
                f"{self.name}: line {line}: the trace attribute '{key}' is a {tag}; flowrun keeps scalar "
                "case attributes only (string, int, float, boolean, date): flatten or remove it"
            )
        if tag in _SCALAR_TAGS and self._case is not None:
            self._case.attributes[key] = _typed(tag, attrs.get("value", ""), self.name, line, key)

    def _end(self, tag: str) -> None:
        tag = tag.rpartition(":")[2]
        self._stack.pop()
        if tag == "event" and self._event is not None and self._case is not None:
            event = self._event
            self._event = None
            self._case.events.append(
                _Event(
                    self._event_line,
                    event.get("concept:name", ""),
                    event.get("lifecycle:transition", "complete").lower(),
                    event.get("time:timestamp", ""),
                    event.get("org:role", ""),
                    event.get("org:resource", ""),
                    event.get("concept:instance", ""),
                    event.get("activity_id", ""),
                    event.get("task_type", ""),
                )
            )
        elif tag == "trace" and self._case is not None:
            case, self._case = self._case, None
            case_id = str(case.attributes.pop("concept:name", "") or f"trace at line {case.line}")
            self.done.append((case_id, case))


def _typed(tag: str, text: str, name: str, line: int, key: str) -> Scalar:
    try:
        if tag == "int":
            if len(text.strip().lstrip("+-")) > MAX_DIGITS:
                raise ValueError
            return int(text)
        if tag == "float":
            value = float(text)
            if not is_scalar(value):
                raise ValueError
            return value
    except ValueError:
        raise DataError(
            f"{name}: line {line}: the trace attribute '{key}' is not {'an' if tag == 'int' else 'a'} {tag} "
            f"('{text[:40]}'); "
            f"fix the value (at most {MAX_DIGITS} digits, finite)"
        ) from None
    if tag == "boolean":
        return text.strip().lower() == "true"
    return text


def ocel_records(source: Hashed, name: str) -> Iterator[Record]:
    """The task records of an OCEL 2.0 JSON file (read whole: JSON has no streaming form)."""
    try:
        doc = json.loads(b"".join(source.chunks()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{name} is not JSON ({exc}); is it an OCEL 2.0 JSON file?") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("objects"), list) or not isinstance(doc.get("events"), list):
        raise DataError(f"{name} has no 'objects' and 'events' lists; is it an OCEL 2.0 JSON file?")
    cases = _ocel_cases(doc["objects"], name)
    for index, event in enumerate(doc["events"], 1):
        if isinstance(event, dict):
            _ocel_event(event, index, cases)
    for case_id, case in cases.items():
        yield from _case_records(case_id, case)


def _ocel_cases(objects: list[Any], name: str) -> dict[str, _Case]:
    cases: dict[str, _Case] = {}
    for index, obj in enumerate(objects, 1):
        if not isinstance(obj, dict) or obj.get("type") != "case":
            continue
        case = cases[str(obj.get("id"))] = _Case(index)
        attributes = sorted(
            (a for a in obj.get("attributes") or [] if isinstance(a, dict)), key=lambda a: str(a.get("time", ""))
        )
        for attribute in attributes:
            key, value = str(attribute.get("name", "")), attribute.get("value")
            if value is None:
                continue
            if not is_scalar(value) or (isinstance(value, int) and len(str(abs(value))) > MAX_DIGITS):
                raise DataError(
                    f"{name}: object '{obj.get('id')}': the attribute '{key}' is not a scalar "
                    f"(text, number, boolean) of at most {MAX_DIGITS} digits; flatten or remove it"
                )
            case.attributes[key] = value
    if not cases:
        raise DataError(f"{name} has no objects of type 'case'; flowrun imports one case per 'case' object")
    return cases


def _ocel_event(event: Mapping[str, Any], index: int, cases: dict[str, _Case]) -> None:
    related: dict[str, str] = {}
    for rel in event.get("relationships") or []:
        if isinstance(rel, dict):
            related.setdefault(str(rel.get("qualifier", "")), str(rel.get("objectId", "")))
    case = cases.get(related.get("case", ""))
    if case is None:
        return
    attrs = {str(a.get("name")): str(a.get("value", "")) for a in event.get("attributes") or [] if isinstance(a, dict)}
    transition = attrs.get("lifecycle", "complete").lower()
    ref, _, kind = str(event.get("id", "")).rpartition("/")
    case.events.append(
        _Event(
            index,
            str(event.get("type", "")),
            transition,
            str(event.get("time", "")),
            related.get("lane", "").removeprefix("lane:"),
            related.get("resource", "").removeprefix("resource:"),
            ref if kind == transition else "",
            attrs.get("activity_id", ""),
            attrs.get("task_type", ""),
        )
    )


def _case_records(case_id: str, case: _Case) -> Iterator[Record]:
    """One record per task of the case, in flowrun's CSV column layout."""
    columns = {k: str(case.attributes.get(k, "")) for k in COLUMN_ATTRIBUTES}
    data = {k: v for k, v in case.attributes.items() if k not in RESERVED}
    for task in _tasks(case.events):
        first = task["events"][0]
        fields = [
            case_id,
            first.activity,
            first.lane,
            next((e.resource for e in task["events"] if e.resource), ""),
            task.get("enable", ""),
            task.get("start", ""),
            task.get("end", ""),
            first.activity_id,
            first.type,
            task.get("status", ""),
            *(columns[k] for k in COLUMN_ATTRIBUTES),
        ]
        yield first.line, fields, data


def _tasks(events: list[_Event]) -> list[dict[str, Any]]:
    """The events paired into tasks (see the module docstring)."""
    tasks: list[dict[str, Any]] = []
    open_tasks: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.transition not in TRANSITIONS:
            continue
        slot, status = TRANSITIONS[event.transition]
        key = event.instance or f"activity:{event.activity}"
        task = open_tasks.get(key)
        if task is None or slot in task or (not event.instance and "end" in task):
            task = open_tasks[key] = {"events": []}
            tasks.append(task)
        task[slot] = event.time
        task["events"].append(event)
        if status:
            task["status"] = status
    return tasks


#: The header the records of :func:`xes_records` and :func:`ocel_records` are under.
HEADER = list(CSV_COLUMNS)
