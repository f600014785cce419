"""Write an event log as XES (IEEE 1849-2016), streamed: one trace per case.

Each task gives up to three events, in time order within its trace:
``schedule`` when it was ready, ``start`` when work began and ``complete`` when
it ended (``ate_abort`` when it was cancelled or failed). Events carry
``concept:name`` (the task's name), ``lifecycle:transition``, ``time:timestamp``,
``org:role`` (the lane), ``org:resource`` (who worked on it; on start and
complete), ``concept:instance`` (the task's ref, which pairs the events of one
task) and flowrun's ``activity_id`` and ``task_type``. Traces carry the case id
as ``concept:name`` and ``process``, ``variant``, ``pilot``, ``model_sha256``.

The file is written as text with every attribute as ``key="..." value="..."``
on its own line, which the strict XML parsers and PM4Py's regex importer read alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from itertools import groupby
from operator import itemgetter
from typing import TextIO

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
from flowrun.eventlog.casedata import CaseData, Scalar, kind

_HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1849-2016" xes.features="" xmlns="http://www.xes-standard.org/">
\t<extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
\t<extension name="Lifecycle" prefix="lifecycle" uri="http://www.xes-standard.org/lifecycle.xesext"/>
\t<extension name="Organizational" prefix="org" uri="http://www.xes-standard.org/org.xesext"/>
\t<extension name="Time" prefix="time" uri="http://www.xes-standard.org/time.xesext"/>
\t<global scope="trace">
\t\t<string key="concept:name" value="__INVALID__"/>
\t</global>
\t<global scope="event">
\t\t<string key="concept:name" value="__INVALID__"/>
\t\t<string key="lifecycle:transition" value="complete"/>
\t\t<date key="time:timestamp" value="1970-01-01T00:00:00+00:00"/>
\t\t<string key="concept:instance" value="__INVALID__"/>
\t</global>
\t<classifier name="Activity" keys="concept:name"/>
\t<classifier name="Activity and transition" keys="concept:name lifecycle:transition"/>
\t<string key="concept:name" value="{name}"/>
\t<string key="lifecycle:model" value="standard"/>
\t<string key="source" value="flowrun"/>
"""

#: Characters XML 1.0 does not allow at all; replaced so the file always parses.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
_SPECIAL = re.compile('[&<>"\n\r\t]')

_TRANSITION = {
    kind: f'\t\t\t<string key="lifecycle:transition" value="{kind}"/>\n'
    for kind in ("schedule", "start", "complete", "ate_abort")
}
_DATE = '\t\t\t<date key="time:timestamp" value="'


def escape(text: str) -> str:
    """``text`` as an XML attribute value (quotes, ampersands, line breaks; invalid characters dropped)."""
    text = _INVALID_XML.sub("\ufffd", text)
    return _SPECIAL.sub(lambda m: _ENTITIES[m.group()], text)


class _Lines(dict[object, str]):
    """One escaped attribute line per distinct value: names, lanes and people repeat a lot."""

    def __init__(self, kind: str, key: str) -> None:
        super().__init__()
        self.prefix = f'\t\t\t<{kind} key="{key}" value="'

    def __missing__(self, value: object) -> str:
        line = "" if value is None else f'{self.prefix}{escape(str(value))}"/>\n'
        self[value] = line
        return line


def write_xes(rows: Iterable[LogRow], out: TextIO, name: str = "flowrun", data: CaseData | None = None) -> LogStats:
    """Write ``rows`` (grouped by case) to ``out`` as an XES document.

    Args:
        rows: task rows, see :mod:`flowrun.eventlog._rows`.
        out: a text stream opened with UTF-8 encoding.
        name: the log's ``concept:name``.
        data: the cases' attributes, written as typed trace attributes
            (``<boolean>``, ``<int>``, ``<float>``, ``<string>``).
    """
    data = data or CaseData()
    names = _Lines("string", "concept:name")
    roles = _Lines("string", "org:role")
    resources = _Lines("string", "org:resource")
    activity_ids = _Lines("string", "activity_id")
    types = _Lines("string", "task_type")
    out.write(_HEADER.format(name=escape(name)))
    cases = tasks = events = 0
    write = out.write
    by_time = itemgetter(0)
    for case_id, group in groupby(rows, itemgetter(CASE)):
        first = None
        buffer: list[tuple[str, str]] = []
        for row in group:
            first = first or row
            tasks += 1
            head = "\t\t<event>\n" + names[row[ACTIVITY]]
            tail = (
                f'{roles[row[LANE]]}\t\t\t<string key="concept:instance" value="{row[REF]}"/>\n'
                f"{activity_ids[row[ACTIVITY_ID]]}{types[row[TYPE]]}\t\t</event>\n"
            )
            who = resources[row[RESOURCE]]
            if row[ENABLE] is not None:
                buffer.append((row[ENABLE], f'{head}{_TRANSITION["schedule"]}{_DATE}{row[ENABLE]}"/>\n{tail}'))
            if row[START] is not None:
                buffer.append((row[START], f'{head}{_TRANSITION["start"]}{_DATE}{row[START]}"/>\n{who}{tail}'))
            if row[END] is not None:
                kind = "complete" if row[STATUS] == "completed" else "ate_abort"
                buffer.append((row[END], f'{head}{_TRANSITION[kind]}{_DATE}{row[END]}"/>\n{who}{tail}'))
        if first is None:  # every row has a start; the buffer is written only after one
            raise RuntimeError("an event-log case without events")
        buffer.sort(key=by_time)
        cases += 1
        events += len(buffer)
        write(_trace_head(str(case_id), first, data.of(case_id)))
        write("".join([text for _, text in buffer]))
        write("\t</trace>\n")
    write("</log>\n")
    return LogStats(cases=cases, tasks=tasks, events=events)


#: XES element of each case attribute type.
_XES_TYPES = {"boolean": "boolean", "integer": "int", "float": "float", "string": "string"}


def _trace_head(case_id: str, row: LogRow, attributes: Mapping[str, Scalar]) -> str:
    lines = [f'\t<trace>\n\t\t<string key="concept:name" value="{escape(case_id)}"/>\n']
    for key, index in (("process", PROCESS), ("variant", VARIANT), ("pilot", PILOT), ("model_sha256", SHA256)):
        if row[index] is not None:
            lines.append(f'\t\t<string key="{key}" value="{escape(str(row[index]))}"/>\n')
    for key, value in attributes.items():
        element = _XES_TYPES[kind(value)]
        text = str(value).lower() if isinstance(value, bool) else repr(value) if element == "float" else str(value)
        lines.append(f'\t\t<{element} key="{escape(key)}" value="{escape(text)}"/>\n')
    return "".join(lines)
