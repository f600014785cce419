"""How the inbox filters and orders its tasks: ``--where FIELD=VALUE``, ``--sort``, and the known lanes.

The store reads the ready and claimed user tasks (:meth:`flowrun.store.Tx.inbox`,
by ``tasks.status``, indexed); what the inbox does on top of that happens here, in
memory: a filter on case data (the data is JSON, the same on SQLite and PostgreSQL)
and one sort.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flowrun.errors import DataError, NotFoundError
from flowrun.models import InboxItem

if TYPE_CHECKING:
    from flowrun.app.project import Project
    from flowrun.store import Tx

#: The orders ``flowrun tasks --sort`` knows; ``due`` is the default.
SORTS = ("due", "priority", "waiting")

_FAR = float("inf")


def parse_where(pairs: Sequence[str]) -> list[tuple[str, str]]:
    """``--where FIELD=VALUE`` filters as (field, value) pairs.

    Raises:
        DataError: a filter without ``=`` or without a field name.
    """
    out = []
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name.strip():
            raise DataError(f"--where {pair!r} is not FIELD=VALUE; write e.g. --where customer_name=Ann")
        out.append((name.strip(), value.strip()))
    return out


def matches(data: dict[str, Any] | None, where: Iterable[tuple[str, str]]) -> bool:
    """True when each (field, value) equals the case's field: numbers as numbers, the rest as text without case.

    A case without the field does not match (the field need not exist in any case).
    """
    for name, value in where:
        if data is None or name not in data or not _equal(data[name], value):
            return False
    return True


def _equal(stored: Any, given: str) -> bool:
    if isinstance(stored, int | float) and not isinstance(stored, bool):
        try:
            return float(given) == stored
        except ValueError:
            return False
    return cell_text(stored).casefold() == given.casefold()


def cell_text(value: Any) -> str:
    """A data value as the inbox shows it: text as it is, anything else as JSON (``true``, ``80.5``)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def sort_items(items: list[InboxItem], order: str | None) -> list[InboxItem]:
    """``items`` in the inbox's ``order``.

    ``due`` (the default): overdue first, then by due date, tasks without one after them;
    ties and the rest by longest waiting. ``priority``: highest ``camunda:priority`` first,
    then as ``due``. ``waiting``: longest waiting first.

    Raises:
        DataError: an order not in :data:`SORTS`.
    """
    order = order or "due"
    if order not in SORTS:
        raise DataError(f"--sort {order!r} is not an order; use one of {', '.join(SORTS)}")
    if order == "waiting":
        return sorted(items, key=lambda i: (i.ready_at, i.ref))

    def by_due(i: InboxItem) -> tuple[float, datetime, int]:
        return (i.due_s if i.due_s is not None else _FAR, i.ready_at, i.ref)

    if order == "priority":
        return sorted(items, key=lambda i: (-(i.priority if i.priority is not None else -(2**63)), *by_due(i)))
    return sorted(items, key=by_due)


def refuse_unknown_filters(project: Project, tx: Tx, lane: str | None, family: str | None) -> None:
    """Say what is wrong when a ``--lane`` or ``--process`` filter names nothing this project knows.

    Called only when the inbox came back empty, so the usual case reads no diagram.

    Raises:
        NotFoundError: listing the known families or lanes.
    """
    s = project.settings
    if family is not None and family not in s.families and not tx.has_family(family):
        known = ", ".join(sorted(s.families)) or "none yet"
        raise NotFoundError(f"no process family '{family}'; the families are: {known}")
    if lane is None:
        return
    lanes = set(tx.lanes_in_use()) | set(_diagram_lanes(project))
    if lane.casefold() not in {x.casefold() for x in lanes}:
        known = ", ".join(sorted(lanes, key=str.casefold)) or "none (the diagrams have no lanes)"
        raise NotFoundError(f"no lane '{lane}' in this project's diagrams; the lanes are: {known}")


def _diagram_lanes(project: Project) -> list[str]:
    """The lanes of the diagrams named in flowrun.yaml (a diagram that cannot be read adds none)."""
    from flowrun.engine.properties import read_blueprint
    from flowrun.errors import ModelError

    s = project.settings
    out: list[str] = []
    for variants in s.families.values():
        for file in variants.values():
            try:
                out += read_blueprint(s.root / file, file).lanes
            except ModelError:
                continue
    return out
