"""Rendering for people (rich tables) and for scripts (JSON). rich is imported only here, lazily."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

import click

from flowrun.clock import iso
from flowrun.models import ClaimInterval, InboxItem, InstanceView, StepResult, TaskRecord, Wait
from flowrun.units import duration


def console() -> Any:
    """A console for stdout; when output is not a terminal, lines are 120 wide unless $COLUMNS says otherwise."""
    import os
    import sys

    from rich.console import Console

    width = None
    if not sys.stdout.isatty() and not os.environ.get("COLUMNS"):
        width = 120
    return Console(highlight=False, soft_wrap=False, width=width)


def echo_json(value: Any) -> None:
    """JSON on stdout: indented for a person at a terminal, compact (and faster) for a program."""
    import sys

    indent = 2 if sys.stdout.isatty() else None
    click.echo(json.dumps(value, indent=indent, default=_default, ensure_ascii=False))


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    return str(value)


def when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def inbox_json(items: list[InboxItem]) -> list[dict[str, Any]]:
    return [
        {
            "ref": i.ref,
            "instance": i.instance,
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
        }
        for i in items
    ]


def inbox_table(items: list[InboxItem]) -> None:
    from rich.table import Table

    if not items:
        click.echo("No tasks are waiting.")
        return
    table = Table(title=f"{len(items)} task(s) waiting", title_justify="left")
    for col in ("ref", "task", "lane", "process", "instance", "waiting", "owner"):
        table.add_column(col, no_wrap=col in ("ref", "instance", "waiting"))
    for i in items:
        table.add_row(
            str(i.ref),
            i.name,
            i.lane or "-",
            f"{i.family}:{i.variant}",
            i.instance[:8],
            duration(i.waited_s),
            i.actor or "",
        )
    console().print(table)


def instance_json(view: InstanceView) -> dict[str, Any]:
    return {
        "id": view.id,
        "short_id": view.short_id,
        "status": view.status,
        "process": view.family,
        "variant": view.variant,
        "file": view.file,
        "sha256": view.sha256,
        "pilot": view.pilot,
        "created_at": iso(view.created_at),
        "ended_at": iso(view.ended_at),
        "cycle_s": view.cycle_s,
        "version": view.version,
        "waiting_for": [asdict(w) for w in view.waiting_for],
        "data": view.data,
        "error": view.error,
    }


def instance_text(view: InstanceView) -> None:
    c = console()
    c.print(f"[bold]instance {view.short_id}[/bold]  ({view.id})")
    c.print(f"  process   {view.family}:{view.variant}   [dim]{view.file} sha256 {view.sha256[:12]}[/dim]")
    if view.pilot:
        c.print(f"  pilot     {view.pilot}")
    c.print(f"  status    {view.status}")
    c.print(f"  started   {when(view.created_at)}")
    if view.ended_at:
        c.print(f"  ended     {when(view.ended_at)}   cycle time {duration(view.cycle_s)}")
    if view.error:
        c.print(f"  error     {view.error}")
    if view.waiting_for:
        c.print("  waits for")
        for w in view.waiting_for:
            c.print(f"    - {_wait_line(w)}", markup=False)
    if view.data:
        c.print("  data")
        width = max(len(k) for k in view.data)
        for key, value in view.data.items():
            c.print(f"    {key:<{width}}  {json.dumps(value, ensure_ascii=False, default=str)}", markup=False)


def _wait_line(w: Wait) -> str:
    waits = w.waits_for
    if not waits:
        who = f", claimed by {w.actor}" if w.actor else ""
        return f"task {w.ref}: {w.name} [{w.lane or 'no lane'}]{who}"
    what = f"{w.name} ({w.task})"
    if waits == "timer":
        when_due = when(w.due) if w.due else "an unknown time"
        return f"timer {what}, due {when_due}; 'flowrun worker' fires it"
    kind, _, name = str(waits).partition(":")
    if kind == "service":
        if not w.due:
            return f"service '{name}' at {what} failed for good; see 'flowrun incidents'"
        return f"service '{name}' at {what}, due {when(w.due)}; 'flowrun worker' runs it"
    if kind in ("message", "signal"):
        flag = " --signal" if kind == "signal" else ""
        return f"{kind} '{name}' at {what}; deliver it with 'flowrun send{flag} {name}'"
    return f"{waits} at {what}"


def task_json(t: TaskRecord) -> dict[str, Any]:
    return {
        "ref": t.ref,
        "task": t.bpmn_id,
        "name": t.name,
        "type": t.type,
        "lane": t.lane,
        "status": t.status,
        "actor": t.actor,
        "ready_at": iso(t.ready_at),
        "started_at": iso(t.started_at),
        "completed_at": iso(t.completed_at),
        "waiting_s": t.waiting_s,
        "touch_s": t.touch_s,
        "assignee": t.assignee,
        "candidates": t.candidates,
    }


def history_table(view: InstanceView, tasks: list[TaskRecord]) -> None:
    from rich.table import Table

    title = f"instance {view.short_id} {view.family}:{view.variant} - {view.status}"
    if view.cycle_s is not None:
        title += f", cycle time {duration(view.cycle_s)}"
    table = Table(title=title, title_justify="left", caption="automated steps are dimmed", caption_justify="left")
    table.add_column("ref", no_wrap=True, justify="right")
    table.add_column("task", no_wrap=True)
    table.add_column("lane", no_wrap=True)
    table.add_column("actor", no_wrap=True)
    for col in ("ready", "started", "completed", "waiting", "touch"):
        table.add_column(col, no_wrap=True, justify="right" if col in ("waiting", "touch") else "left")
    for t in tasks:
        manual = t.type in ("userTask", "manualTask")
        table.add_row(
            str(t.ref),
            t.name,
            t.lane or "-",
            t.actor or "",
            short_when(t.ready_at),
            short_when(t.started_at),
            short_when(t.completed_at) if t.status == "completed" else t.status,
            duration(t.waiting_s),
            duration(t.touch_s),
            style=None if manual else "dim",
        )
    console().print(table)


def claim_json(claims: list[ClaimInterval]) -> list[dict[str, Any]]:
    """A task's claim intervals for ``history --json`` (``released_at`` null while held)."""
    return [
        {
            "actor": c.actor,
            "claimed_at": iso(c.claimed_at),
            "released_at": iso(c.released_at),
            "outcome": c.outcome,
            "seconds": None if c.released_at is None else c.seconds(c.released_at),
        }
        for c in claims
    ]


def claim_lines(tasks: list[TaskRecord], claims: dict[int, list[ClaimInterval]]) -> None:
    """Under the history table: who held each claimed task, from when to when, and how it ended."""
    shown = [t for t in tasks if claims.get(t.ref or 0)]
    if not shown:
        return
    click.echo("claims (touch time counts only within the completer's):")
    for t in shown:
        for c in claims[t.ref or 0]:
            until = (
                f"{short_when(c.released_at)} {c.outcome}, {duration(c.seconds(c.released_at))}"
                if c.released_at
                else "held"
            )
            click.echo(f"  task {t.ref} {t.name}: {c.actor} {short_when(c.claimed_at)} - {until}")


def short_when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone().strftime("%m-%d %H:%M")


def plain(value: Any) -> dict[str, Any]:
    return asdict(value)


def ready_json(tasks: list[TaskRecord]) -> list[dict[str, Any]]:
    """The tasks a step made ready, for ``--json`` output."""
    return [{"ref": t.ref, "task": t.bpmn_id, "name": t.name, "lane": t.lane} for t in tasks]


def step_json(result: StepResult, new: bool = False) -> dict[str, Any]:
    """What a step did (start, ``do``, ``retry``, ``send``), for ``--json`` output.

    Args:
        new: the step started the instance, which is then named ``id`` and ``short_id``
            (as ``flowrun show --json`` names it) instead of ``instance``.
    """
    name = {"id": result.instance, "short_id": result.instance[:8]} if new else {"instance": result.instance}
    return {**name, "status": result.status, "ready": ready_json(result.ready)}


def echo_ready(tasks: list[TaskRecord], err: bool = False) -> None:
    """One line per task a step made ready, with the ref an operator types next."""
    for t in tasks:
        click.echo(f"  ready: task {t.ref} {t.name} [{t.lane or 'no lane'}]", err=err)
