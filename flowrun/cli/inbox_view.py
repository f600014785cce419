"""The inbox as people and scripts see it: a table that fits the terminal, and JSON.

The table's columns are ``ref``, ``case`` (the business key, else the short id),
``task``, ``lane``, ``due``, ``prio``, ``waiting``, ``owner``, the case data fields
under ``inbox: columns:`` in flowrun.yaml, and ``process``. Refs, cases and times are
never cut. When the table is wider than the terminal, the task name and data columns
wrap, and columns are dropped in this order until it fits: ``process``, the data
columns (the last named first), ``lane``, ``prio``. The caption says what was dropped;
``--wide`` keeps every column at its full width.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from flowrun.app.worklist import cell_text
from flowrun.cli.fit import Column, print_fitted
from flowrun.clock import iso
from flowrun.models import InboxItem
from flowrun.units import duration


def due_text(due_s: float | None) -> str:
    """``in 3h 20m``, ``OVERDUE 2h 05m``, or ``-`` without a due date."""
    if due_s is None:
        return "-"
    return f"in {duration(due_s)}" if due_s >= 0 else f"OVERDUE {duration(-due_s)}"


def inbox_table(items: list[InboxItem], columns: Sequence[str], wide: bool = False) -> None:
    """Print the inbox (see the module docstring for the columns and what is dropped first)."""
    if not items:
        click.echo("No tasks are waiting.")
        return
    drop = ["process", *reversed(columns), "lane", "prio"]
    print_fitted(f"{len(items)} task(s) waiting", _columns(items, columns), drop, wide)


def _columns(items: list[InboxItem], columns: Sequence[str]) -> list[Column]:
    due = [due_text(i.due_s) for i in items]
    out = [
        Column("ref", [str(i.ref) for i in items], justify="right"),
        Column("case", [i.case for i in items]),
        Column("task", [i.name for i in items], wraps=True),
        Column("lane", [i.lane or "-" for i in items], wraps=True),
        Column("due", due, styles=["bold red" if d.startswith("OVERDUE") else None for d in due]),
        Column("prio", ["-" if i.priority is None else str(i.priority) for i in items], justify="right"),
        Column("waiting", [duration(i.waited_s) for i in items], justify="right"),
        Column("owner", [i.actor or "" for i in items]),
    ]
    for name in columns:
        values = [(i.data or {}).get(name) for i in items]
        out.append(Column(name, ["" if v is None else cell_text(v) for v in values], wraps=True))
    out.append(Column("process", [f"{i.family}:{i.variant}" for i in items], wraps=True))
    return out


def inbox_json(items: list[InboxItem], columns: Sequence[str]) -> list[dict[str, Any]]:
    """The inbox for scripts: every field, with times in ISO 8601 and the data columns under ``columns``."""
    return [
        {
            "ref": i.ref,
            "instance": i.instance,
            "key": i.business_key,
            "task": i.task,
            "name": i.name,
            "lane": i.lane,
            "process": i.family,
            "variant": i.variant,
            "pilot": i.pilot,
            "ready_at": iso(i.ready_at),
            "started_at": iso(i.started_at),
            "owner": i.actor,
            "waited_s": i.waited_s,
            "due_at": iso(i.deadline_at),
            "due_s": i.due_s,
            "overdue": i.due_s is not None and i.due_s < 0,
            "priority": i.priority,
            **({"columns": {c: (i.data or {}).get(c) for c in columns}} if columns else {}),
        }
        for i in items
    ]
