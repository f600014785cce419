"""The SQL that feeds the pilot analysis: the cases of two groups and their completed steps, as plain rows.

Two reads, the same on SQLite and PostgreSQL except for two expressions:

* a time as epoch seconds: ``x / 1000000.0`` on SQLite (which stores whole microseconds, see
  :class:`flowrun.store.schema.UTCDateTime`), ``extract(epoch from x)`` on PostgreSQL;
* a field of the case's final data (``instances.data``, JSON text): ``json_extract(data, '$."f"')``
  on SQLite, ``data::json ->> 'f'`` on PostgreSQL (which gives text; the analysis reads numbers
  and booleans from either).

Rows come straight from the DB-API cursor as tuples, in chunks, with no SQLAlchemy row objects
or per-value type conversion: a pilot database holds millions of task rows. The per-case sums,
orderings and counts are computed from these rows by :mod:`flowrun.analysis.measures`; see
docs/pilots.md for why that is faster than aggregating in SQLite.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from flowrun.store.sql import Tx

#: Element types that count as a step of a case: activities, not events or gateways.
STEP_TYPES = (
    "task",
    "userTask",
    "manualTask",
    "serviceTask",
    "scriptTask",
    "businessRuleTask",
    "sendTask",
    "receiveTask",
    "callActivity",
    "subprocess",
    "subProcess",
    "transaction",
    "adHocSubProcess",
)

#: Columns of :func:`case_rows`, before one column per requested data field.
CASE_COLUMNS = ("id", "variant", "pilot", "status", "start", "end")

#: Columns of :func:`step_rows`.
STEP_COLUMNS = ("instance_id", "bpmn_id", "lane", "kind", "ready", "started", "completed", "ref")

#: Step types done by a system (kind 2); containers (kind 1) hold other steps; the rest are people's (kind 0).
AUTOMATED_TYPES = ("serviceTask", "scriptTask", "businessRuleTask", "sendTask", "receiveTask")
CONTAINER_TYPES = ("callActivity", "subprocess", "subProcess", "transaction", "adHocSubProcess")

_CHUNK = 50_000


@dataclass(frozen=True)
class Selection:
    """Which cases to read: one family, optionally one pilot and a window of start times.

    Attributes:
        family: the process family.
        groups: (variant, pilot) pairs, None meaning any; a case is read when it matches one.
        pilot: a pilot every case must belong to (``--pilot``), or None.
        since: epoch seconds; cases that started earlier are left out.
        until: epoch seconds; cases that started at or after it are left out.
    """

    family: str
    groups: tuple[tuple[str | None, str | None], ...] = ((None, None),)
    pilot: str | None = None
    since: float | None = None
    until: float | None = None


class _Sql:
    """The dialect's spelling of epoch times, JSON fields and bound parameters."""

    def __init__(self, tx: Tx) -> None:
        self.sqlite = tx.conn.dialect.name == "sqlite"
        self.mark = "?" if self.sqlite else "%s"

    def epoch(self, column: str) -> str:
        if self.sqlite:
            return f"({column} / 1000000.0)"
        return f"CAST(extract(epoch from {column}) AS double precision)"

    def field(self, data: str) -> str:
        """A JSON field of ``data``; the field's path or name is a bound parameter."""
        if self.sqlite:
            return f"json_extract({data}, {self.mark})"
        return f"(CAST({data} AS json) ->> CAST({self.mark} AS text))"

    def field_param(self, name: str) -> str:
        if self.sqlite:
            return '$."' + name.replace('"', '""') + '"'
        return name

    def where(self, sel: Selection, alias: str) -> tuple[str, list[Any]]:
        """The WHERE clause choosing ``sel``'s cases from ``instances`` as ``alias``."""
        m = self.mark
        parts = [f"{alias}.family = {m}"]
        params: list[Any] = [sel.family]
        if sel.pilot is not None:
            parts.append(f"{alias}.pilot = {m}")
            params.append(sel.pilot)
        if sel.since is not None:
            parts.append(f"{self.epoch(alias + '.created_at')} >= {m}")
            params.append(sel.since)
        if sel.until is not None:
            parts.append(f"{self.epoch(alias + '.created_at')} < {m}")
            params.append(sel.until)
        alternatives: list[str] = []
        group_params: list[Any] = []
        for variant, pilot in sel.groups:
            conds = []
            if variant is not None:
                conds.append(f"{alias}.variant = {m}")
                group_params.append(variant)
            if pilot is not None:
                conds.append(f"{alias}.pilot = {m}")
                group_params.append(pilot)
            if not conds:  # a group of every case of the family: no condition at all
                alternatives, group_params = [], []
                break
            alternatives.append("(" + " AND ".join(conds) + ")")
        if alternatives:
            parts.append("(" + " OR ".join(alternatives) + ")")
            params += group_params
        return " AND ".join(parts), params


def family_variants(tx: Tx, family: str) -> list[str]:
    """The variants a family has cases of, sorted (read from the family/variant index alone)."""
    m = _Sql(tx).mark
    rows = _fetchall(tx, f"SELECT DISTINCT variant FROM instances WHERE family = {m} ORDER BY variant", [family])
    return [str(v) for (v,) in rows]


def family_pilots(tx: Tx, family: str) -> list[str]:
    """The pilots a family has cases of, sorted."""
    m = _Sql(tx).mark
    query = f"SELECT DISTINCT pilot FROM instances WHERE family = {m} AND pilot IS NOT NULL ORDER BY pilot"
    return [str(p) for (p,) in _fetchall(tx, query, [family])]


def has_pilot(tx: Tx, family: str, pilot: str) -> bool:
    """Whether the family has a case of ``pilot``."""
    m = _Sql(tx).mark
    query = f"SELECT 1 FROM instances WHERE family = {m} AND pilot = {m} LIMIT 1"
    return bool(_fetchall(tx, query, [family, pilot]))


def case_rows(tx: Tx, sel: Selection, fields: Sequence[str] = ()) -> list[tuple[Any, ...]]:
    """Every selected case, whatever its status: :data:`CASE_COLUMNS`, then one value per data field.

    ``start`` and ``end`` are epoch seconds (``end`` is None while the case runs).
    """
    sql = _Sql(tx)
    where, params = sql.where(sel, "i")
    if sql.sqlite and _family_is_most(tx, sel.family):
        # "+i.family": when a family is most of the table, one scan reads the rows faster than a
        # lookup per row through ix_instances_family_variant (each row holds its case's state).
        where = "+" + where
    values = ", ".join(sql.field("i.data") for _ in fields)
    columns = f"i.id, i.variant, i.pilot, i.status, {sql.epoch('i.created_at')}, {sql.epoch('i.ended_at')}"
    query = f"SELECT {columns}{', ' + values if fields else ''} FROM instances i WHERE {where}"
    rows = _fetchall(tx, query, [*(sql.field_param(f) for f in fields), *params])
    # Ordered by id (in Python: cheaper than the database's temporary sort of wide rows), so that
    # no statistic depends on the order the database happens to return rows in.
    rows.sort(key=itemgetter(0))
    return rows


def step_rows(tx: Tx, sel: Selection, wanted: int) -> Iterator[list[tuple[Any, ...]]]:
    """The completed steps of the selected completed and running cases, in chunks of :data:`STEP_COLUMNS`.

    Times are epoch seconds; ``kind`` is read from the task's type: 0 a person's task, 1 a container
    (call activity, subprocess), 2 automated (service, script, business rule, send, receive);
    running cases' steps are read for their milestones (resolution time of a running case);
    ``ref`` is the task row's id, which orders steps completed and ready at the same instant.
    On SQLite, when ``wanted`` (the number of cases the caller will keep) is at least half of
    all cases, every completed step is read in table order and the caller drops the steps of
    other cases: one sequential scan is several times faster than an index lookup per case.
    Rows of one case may come in any order.
    """
    sql = _Sql(tx)
    m = sql.mark
    steps = ", ".join(m for _ in STEP_TYPES)
    containers = ", ".join(f"'{t}'" for t in CONTAINER_TYPES)
    automated = ", ".join(f"'{t}'" for t in AUTOMATED_TYPES)
    # A small integer rather than the type name: a million short ints convert far faster than strings.
    kind = f"CASE WHEN t.type IN ({containers}) THEN 1 WHEN t.type IN ({automated}) THEN 2 ELSE 0 END"
    columns = (
        f"t.instance_id, t.bpmn_id, t.lane, {kind}, "
        f"{sql.epoch('t.ready_at')}, {sql.epoch('t.started_at')}, {sql.epoch('t.completed_at')}, t.id"
    )
    # "+t.status" keeps SQLite from reading nearly every row through ix_tasks_status.
    status = "+t.status" if sql.sqlite else "t.status"
    base = f"{status} = {m} AND t.type IN ({steps})"
    params: list[Any] = ["completed", *STEP_TYPES]
    if sql.sqlite and _scan_is_cheaper(tx, wanted):
        query = f"SELECT {columns} FROM tasks t WHERE {base}"
    else:
        where, extra = sql.where(sel, "i")
        query = (
            f"SELECT {columns} FROM tasks t JOIN instances i ON i.id = t.instance_id "
            f"WHERE {where} AND i.status IN ({m}, {m}) AND {base}"
        )
        params = [*extra, "completed", "running", *params]
    yield from _chunks(tx, query, params)


def task_names(tx: Tx, samples: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The name of each task, looked up in one case that ran it: (instance id, bpmn id) pairs."""
    if not samples:
        return {}
    sql = _Sql(tx)
    cases = sorted({iid for iid, _ in samples})
    marks = ", ".join(sql.mark for _ in cases)
    rows = _fetchall(tx, f"SELECT bpmn_id, name FROM tasks WHERE instance_id IN ({marks})", cases)
    wanted = {bpmn for _, bpmn in samples}
    return {str(b): str(n) for b, n in rows if b in wanted}


def _family_is_most(tx: Tx, family: str) -> bool:
    """Whether at least half of all cases are of ``family`` (both counts come from an index)."""
    m = _Sql(tx).mark
    total = _fetchall(tx, "SELECT COUNT(*) FROM instances", [])[0][0]
    mine = _fetchall(tx, f"SELECT COUNT(*) FROM instances WHERE family = {m}", [family])[0][0]
    return 2 * int(mine or 0) >= int(total or 0)


def _scan_is_cheaper(tx: Tx, wanted: int) -> bool:
    total = _fetchall(tx, "SELECT COUNT(*) FROM instances", [])[0][0]
    return 2 * wanted >= int(total or 0)


def _fetchall(tx: Tx, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    return [row for chunk in _chunks(tx, query, params) for row in chunk]


def _chunks(tx: Tx, query: str, params: Sequence[Any]) -> Iterator[list[tuple[Any, ...]]]:
    """Rows as the driver returns them, without SQLAlchemy's row objects.

    The cyclic garbage collector is paused while a chunk is fetched: a million freshly made
    tuples would otherwise trigger full collections that cost as much as the fetch.
    """
    cursor = tx.conn.connection.cursor()
    try:
        cursor.execute(query, tuple(params))
        while True:
            enabled = gc.isenabled()
            gc.disable()
            try:
                chunk = cursor.fetchmany(_CHUNK)
            finally:
                if enabled:
                    gc.enable()
            if not chunk:
                return
            yield chunk  # type: ignore[misc]  # DB-API fetchmany gives a list of tuples
    finally:
        cursor.close()
