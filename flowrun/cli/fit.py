"""Tables that fit the terminal: ids, refs and times are never cut; wide columns wrap, then drop in order.

rich shrinks a table wider than the console by cutting cells short with an ellipsis,
which would cut a ref or a time. :func:`print_fitted` instead lets only the columns
marked ``wraps`` (names, lanes, data) wrap, down to :data:`MIN_WRAP` characters, and
when the table still does not fit, leaves out whole columns in the order the caller
states, saying so in the caption. ``wide`` keeps every column at its full width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

#: A column that wraps is never made narrower than this (or its header).
MIN_WRAP = 10
#: Each column costs its padding and one rule besides its text; the table one rule more.
_COLUMN_COST = 3


@dataclass
class Column:
    """One column: its header, its cells as text, whether it may wrap, and optional per-cell styles."""

    name: str
    cells: list[str]
    wraps: bool = False
    justify: str = "left"
    styles: list[str | None] = field(default_factory=list)

    def width(self, wide: bool) -> int:
        """The width the column takes: its longest cell, or at most :data:`MIN_WRAP` when it wraps."""
        longest = max([len(self.name), *(len(c) for c in self.cells)])
        return longest if wide or not self.wraps else min(longest, max(MIN_WRAP, len(self.name)))


def table_width(columns: Sequence[Column], wide: bool) -> int:
    return sum(c.width(wide) + _COLUMN_COST for c in columns) + 1


def print_fitted(
    title: str,
    columns: Sequence[Column],
    drop_order: Sequence[str],
    wide: bool = False,
    caption: str | None = None,
    row_styles: Sequence[str | None] | None = None,
) -> None:
    """Print ``columns`` as one table that fits the console (see the module docstring).

    Args:
        drop_order: column names to leave out, first to last, while the table is too wide.
        row_styles: a style per row (``dim``), or None.
    """
    from rich.markup import escape
    from rich.table import Table

    from flowrun.cli.render import console  # render imports this module

    out = console()
    cols = list(columns)
    dropped: list[str] = []
    if wide:
        out.width = max(out.width, table_width(cols, True))
    else:
        for name in drop_order:
            if table_width(cols, False) <= out.width:
                break
            if any(c.name == name for c in cols):
                cols = [c for c in cols if c.name != name]
                dropped.append(name)
    notes = [caption] if caption else []
    if dropped:
        notes.append(f"not shown for lack of width: {', '.join(dropped)} (--wide shows all)")
    table = Table(title=title, title_justify="left", caption="; ".join(notes) or None, caption_justify="left")
    for c in cols:
        table.add_column(c.name, no_wrap=not c.wraps, justify=c.justify, overflow="fold")  # type: ignore[arg-type]
    rows = len(cols[0].cells) if cols else 0
    for n in range(rows):
        cells = []
        for c in cols:
            style = c.styles[n] if c.styles else None
            text = escape(c.cells[n])
            cells.append(f"[{style}]{text}[/{style}]" if style else text)
        table.add_row(*cells, style=row_styles[n] if row_styles else None)
    out.print(table)
