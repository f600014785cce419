"""Write an event log as OCEL 2.0 JSON: events related to the case, the resource and the lane.

Object types: ``case`` (one per instance, with its process, variant, pilot and
model sha256), ``resource`` (a person who worked on tasks) and ``lane`` (a
department). Each task gives up to three events of type *task name*, with a
``lifecycle`` attribute ``schedule``, ``start`` or ``complete`` (``ate_abort``
when cancelled or failed), as in the XES export. Every event relates to its case
(qualifier ``case``) and lane (``lane``); start and complete events also to the
resource (``resource``). A resource relates to the lanes it worked in (``works in``).

The top-level keys are those of the OCEL 2.0 JSON schema: ``objectTypes``,
``eventTypes``, ``objects``, ``events``. Events are streamed to a temporary file
while the objects are collected, then everything is written in that order.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable
from itertools import chain, groupby
from operator import itemgetter
from typing import Any, TextIO

from flowrun.eventlog._rows import (
    ACTIVITY,
    ACTIVITY_ID,
    CASE,
    ENABLE,
    END,
    LANE,
    PILOT,
    PROCESS,
    REF,
    RESOURCE,
    SHA256,
    START,
    STATUS,
    TYPE,
    VARIANT,
    LogRow,
    LogStats,
)
from flowrun.eventlog.casedata import CaseData

#: The time OCEL 2.0 readers take to mean "always" for an object attribute that never changes.
STATIC = "1970-01-01T00:00:00Z"
CASE_ATTRIBUTES = (("process", PROCESS), ("variant", VARIANT), ("pilot", PILOT), ("model_sha256", SHA256))
EVENT_ATTRIBUTES = ("lifecycle", "activity_id", "task_type")


class _Json(dict[object, str]):
    """Each distinct string as JSON text, encoded once."""

    def __missing__(self, value: object) -> str:
        text = json.dumps(value, ensure_ascii=False)
        self[value] = text
        return text


class _Objects:
    """The cases, resources and lanes met while streaming the events."""

    def __init__(self, data: CaseData) -> None:
        self.data = data
        self.cases: list[dict[str, Any]] = []
        self.lanes: dict[str, None] = {}
        self.resources: dict[str, dict[str, None]] = {}

    def add_case(self, case_id: str, row: LogRow) -> None:
        attributes = [
            {"name": name, "time": STATIC, "value": row[index]} for name, index in CASE_ATTRIBUTES if row[index]
        ]
        attributes += [{"name": k, "time": STATIC, "value": v} for k, v in self.data.of(case_id).items()]
        self.cases.append({"id": case_id, "type": "case", "attributes": attributes})

    def as_json(self) -> list[dict[str, Any]]:
        lanes = [{"id": f"lane:{lane}", "type": "lane", "attributes": []} for lane in self.lanes]
        people = [
            {
                "id": f"resource:{person}",
                "type": "resource",
                "attributes": [],
                "relationships": [{"objectId": f"lane:{lane}", "qualifier": "works in"} for lane in worked_in],
            }
            for person, worked_in in self.resources.items()
        ]
        return self.cases + people + lanes


def write_ocel(rows: Iterable[LogRow], out: TextIO, data: CaseData | None = None) -> LogStats:
    """Write ``rows`` (grouped by case) to ``out`` as an OCEL 2.0 JSON document.

    Args:
        data: the cases' attributes, written as attributes of the case objects (static: time
            :data:`STATIC`), declared on the ``case`` object type with their OCEL type
            (``boolean``, ``integer``, ``float``; ``string`` for text or mixed types).
    """
    data = data or CaseData()
    objects = _Objects(data)
    activities: dict[str, None] = {}
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        stats = _write_events(rows, spool, objects, activities)
        out.write('{"objectTypes": ')
        out.write(json.dumps(_object_types(data), ensure_ascii=False))
        out.write(',\n"eventTypes": ')
        out.write(json.dumps(_event_types(activities), ensure_ascii=False))
        out.write(',\n"objects": [\n')
        out.write(",\n".join(json.dumps(o, ensure_ascii=False) for o in objects.as_json()))
        out.write('\n],\n"events": [\n')
        spool.seek(0)
        shutil.copyfileobj(spool, out)
        out.write("\n]}\n")
    return stats


def _write_events(rows: Iterable[LogRow], out: TextIO, objects: _Objects, activities: dict[str, None]) -> LogStats:
    js = _Json()
    cases = tasks = events = 0
    separator = ""
    by_time = itemgetter(0)
    for case_id, group in groupby(rows, itemgetter(CASE)):
        case_ref = f'{{"objectId": {json.dumps(str(case_id))}, "qualifier": "case"}}'  # not cached: one per case
        buffer: list[tuple[str, str]] = []
        first = next(group)
        objects.add_case(str(case_id), first)
        for row in chain([first], group):
            tasks += 1
            activities[row[ACTIVITY]] = None
            lane = _relate(js, objects, row)
            common = f'"type": {js[row[ACTIVITY]]}, '
            extra = f'{{"name": "activity_id", "value": {js[row[ACTIVITY_ID]]}}}, '
            extra += f'{{"name": "task_type", "value": {js[row[TYPE]]}}}]'
            who = (
                f', {{"objectId": {js["resource:" + row[RESOURCE]]}, "qualifier": "resource"}}' if row[RESOURCE] else ""
            )
            for kind, at, person in _transitions(row):
                text = (
                    f'{{"id": "{row[REF]}/{kind}", {common}"time": "{at}", '
                    f'"attributes": [{{"name": "lifecycle", "value": "{kind}"}}, {extra}, '
                    f'"relationships": [{case_ref}{lane}{who if person else ""}]}}'
                )
                buffer.append((at, text))
        buffer.sort(key=by_time)
        cases += 1
        events += len(buffer)
        for _, text in buffer:
            out.write(separator)
            out.write(text)
            separator = ",\n"
    return LogStats(cases=cases, tasks=tasks, events=events)


def _transitions(row: LogRow) -> list[tuple[str, str, bool]]:
    """(lifecycle, time, done by the resource) for each time the task has."""
    out = []
    if row[ENABLE] is not None:
        out.append(("schedule", row[ENABLE], False))
    if row[START] is not None:
        out.append(("start", row[START], True))
    if row[END] is not None:
        out.append(("complete" if row[STATUS] == "completed" else "ate_abort", row[END], True))
    return out


def _relate(js: _Json, objects: _Objects, row: LogRow) -> str:
    """Note the row's lane and resource as objects; the lane relationship as JSON text."""
    lane, person = row[LANE], row[RESOURCE]
    if lane:
        objects.lanes[lane] = None
    if person:
        worked_in = objects.resources.setdefault(person, {})
        if lane:
            worked_in[lane] = None
    return f', {{"objectId": {js["lane:" + lane]}, "qualifier": "lane"}}' if lane else ""


def _object_types(data: CaseData) -> list[dict[str, Any]]:
    own = [{"name": name, "type": "string"} for name, _ in CASE_ATTRIBUTES]
    fields = [{"name": name, "type": data.type_of(name)} for name in data.fields]
    return [
        {"name": "case", "attributes": own + fields},
        {"name": "resource", "attributes": []},
        {"name": "lane", "attributes": []},
    ]


def _event_types(activities: dict[str, None]) -> list[dict[str, Any]]:
    attributes = [{"name": name, "type": "string"} for name in EVENT_ATTRIBUTES]
    return [{"name": name, "attributes": attributes} for name in activities]
