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
from dataclasses import dataclass, field
from typing import Any

import click

from flowrun.app.worklist import cell_text
from flowrun.cli.render import console
from flowrun.clock import iso
from flowrun.models import InboxItem
from flowrun.units import duration

#: Columns that may wrap are never made narrower than this.
_MIN_WRAP = 10
#: Each column costs its padding and one rule besides its text; the table one rule more.
_COLUMN_COST = 3


@dataclass
class _Column:
    name: str
    cells: list[str]
    wraps: bool = False
    justify: str = "left"
    styles: list[str | None] = field(default_factory=list)

    def width(self, wide: bool) -> int:
        longest = max([len(self.name), *(len(c) for c in self.cells)])
        return longest if wide or not self.wraps else min(longest, max(_MIN_WRAP, len(self.name)))


def due_text(due_s: float | None) -> str:
    """``in 3h 20m``, ``OVERDUE 2h 05m``, or ``-`` without a due date."""
    if due_s is None:
        return "-"
    return f"in {duration(due_s)}" if due_s >= 0 else f"OVERDUE {duration(-due_s)}"


def inbox_table(items: list[InboxItem], columns: Sequence[str], wide: bool = False) -> None:
    """Print the inbox (see the module docstring for the columns and what is dropped first)."""
    from rich.table import Table

    if not items:
        click.echo("No tasks are waiting.")
        return
    cols = _columns(items, columns)
    out = console()
    dropped: list[str] = []
    if not wide:
        order = ["process", *reversed([f"{c}" for c in columns]), "lane", "prio"]
        for name in order:
            if _fits(cols, out.width):
                break
            cols = [c for c in cols if c.name != name]
            dropped.append(name)
    else:
        out.width = max(out.width, sum(c.width(True) + _COLUMN_COST for c in cols) + 1)
    caption = f"not shown for lack of width: {', '.join(dropped)} (--wide shows all)" if dropped else None
    table = Table(title=f"{len(items)} task(s) waiting", title_justify="left", caption=caption, caption_justify="left")
    for c in cols:
        table.add_column(c.name, no_wrap=not c.wraps, justify=c.justify, overflow="fold")  # type: ignore[arg-type]
    for n in range(len(items)):
        cells: list[Any] = []
        for c in cols:
            style = c.styles[n] if c.styles else None
            cells.append(f"[{style}]{_escape(c.cells[n])}[/{style}]" if style else _escape(c.cells[n]))
        table.add_row(*cells)
    out.print(table)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _fits(cols: list[_Column], width: int) -> bool:
    return sum(c.width(False) + _COLUMN_COST for c in cols) + 1 <= width


def _columns(items: list[InboxItem], columns: Sequence[str]) -> list[_Column]:
    due = [due_text(i.due_s) for i in items]
    out = [
        _Column("ref", [str(i.ref) for i in items], justify="right"),
        _Column("case", [i.case for i in items]),
        _Column("task", [i.name for i in items], wraps=True),
        _Column("lane", [i.lane or "-" for i in items], wraps=True),
        _Column("due", due, styles=["bold red" if d.startswith("OVERDUE") else None for d in due]),
        _Column("prio", ["-" if i.priority is None else str(i.priority) for i in items], justify="right"),
        _Column("waiting", [duration(i.waited_s) for i in items], justify="right"),
        _Column("owner", [i.actor or "" for i in items]),
    ]
    for name in columns:
        values = [(i.data or {}).get(name) for i in items]
        out.append(_Column(name, ["" if v is None else cell_text(v) for v in values], wraps=True))
    out.append(_Column("process", [f"{i.family}:{i.variant}" for i in items], wraps=True))
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
