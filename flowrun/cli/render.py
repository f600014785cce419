"""Rendering for people (rich tables) and for scripts (JSON). rich is imported only here, lazily."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

import click

from flowrun.clock import iso
from flowrun.models import ClaimInterval, InstanceView, StepResult, TaskPreview, TaskRecord, Wait
from flowrun.units import duration


def console() -> Any:
    """A console for stdout; when output is not a terminal, lines are 120 wide unless $COLUMNS says otherwise."""
    import os
    import sys

    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich would exit 1 on its own; the root command ends every command's closed pipe alike.
            self.quiet = True
            raise BrokenPipeError

    width = None
    if not sys.stdout.isatty() and not os.environ.get("COLUMNS"):
        width = 120
    return _Console(highlight=False, soft_wrap=False, width=width)


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


def instance_json(view: InstanceView) -> dict[str, Any]:
    return {
        "id": view.id,
        "short_id": view.short_id,
        "key": view.business_key,
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
    if view.business_key:
        c.print(f"  key       {view.business_key}", markup=False)
    c.print(f"  process   {view.family}:{view.variant}   [dim]{view.file} sha256 {view.sha256[:12]}[/dim]")
    if view.pilot:
        c.print(f"  pilot     {view.pilot}")
    c.print(f"  status    {view.status}")
    c.print(f"  started   {when(view.created_at)}")
    if view.ended_at:
        c.print(f"  ended     {when(view.ended_at)}   cycle time {duration(view.cycle_s)}")
    if view.error:
        label = "reason" if view.status == "cancelled" else "error"
        c.print(f"  {label:<9} {view.error}", markup=False)
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
        due = f", due {when(w.due)}" if w.due else ""
        return f"task {w.ref}: {w.name} [{w.lane or 'no lane'}]{who}{due}"
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
        "due_at": iso(t.deadline_at),
        "priority": t.priority,
    }


def history_table(view: InstanceView, tasks: list[TaskRecord], wide: bool = False) -> None:
    """Every task of an instance; when too wide, lane, then actor, then started are left out."""
    from flowrun.cli.fit import Column, print_fitted

    key = f" ({view.business_key})" if view.business_key else ""
    title = f"instance {view.short_id}{key} {view.family}:{view.variant} - {view.status}"
    if view.cycle_s is not None:
        title += f", cycle time {duration(view.cycle_s)}"
    done = [short_when(t.completed_at) if t.status == "completed" else t.status for t in tasks]
    columns = [
        Column("ref", [str(t.ref) for t in tasks], justify="right"),
        Column("task", [t.name for t in tasks], wraps=True),
        Column("lane", [t.lane or "-" for t in tasks], wraps=True),
        Column("actor", [t.actor or "" for t in tasks], wraps=True),
        Column("ready", [short_when(t.ready_at) for t in tasks]),
        Column("started", [short_when(t.started_at) for t in tasks]),
        Column("completed", done),
        Column("waiting", [duration(t.waiting_s) for t in tasks], justify="right"),
        Column("touch", [duration(t.touch_s) for t in tasks], justify="right"),
    ]
    styles = [None if t.type in ("userTask", "manualTask") else "dim" for t in tasks]
    print_fitted(title, columns, ["lane", "actor", "started"], wide, "automated steps are dimmed", styles)


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


def preview_json(p: TaskPreview) -> dict[str, Any]:
    """``flowrun task REF --json``: the task, its documentation, its form's fields and the case data."""
    fields = [
        {
            "name": f.name,
            "label": f.label,
            "type": f.type,
            "required": f.required,
            "choices": list(f.choices) if f.choices else None,
            "description": f.description,
        }
        for f in (p.form.fields if p.form else ())
    ]
    return {
        **task_json(p.task),
        "instance": p.task.instance_id,
        "key": p.business_key,
        "process": p.family,
        "variant": p.variant,
        "documentation": p.task.documentation,
        "form": {"title": p.form.title, "fields": fields} if p.form else None,
        "data": p.data,
    }


def preview_text(p: TaskPreview) -> None:
    """``flowrun task REF``: what the task asks for and what the case holds, before anyone claims it."""
    c = console()
    t = p.task
    case = p.business_key or (t.instance_id or "")[:8]
    c.print(f"task {t.ref}: {t.name} [{t.lane or 'no lane'}]", markup=False, style="bold")
    c.print(f"  case      {case}  {p.family}:{p.variant}", markup=False)
    claimed = f" by {t.actor} since {when(t.started_at)}" if t.status == "started" else ""
    c.print(f"  status    {t.status}{claimed}, ready since {when(t.ready_at)}", markup=False)
    if t.deadline_at:
        c.print(f"  due       {when(t.deadline_at)}", markup=False)
    if t.priority is not None:
        c.print(f"  priority  {t.priority}", markup=False)
    if t.documentation:
        c.print("  documentation", markup=False)
        for line in t.documentation.splitlines():
            c.print(f"    {line}", markup=False)
    if p.form is not None and p.form.fields:
        c.print(f"  form      {p.form.title or p.form.source}", markup=False)
        for f in p.form.fields:
            rule = f.type + ("" if f.required else ", optional")
            choices = f"; one of: {', '.join(str(x) for x in f.choices)}" if f.choices else ""
            c.print(f"    - {f.label} ({f.name}: {rule}{choices})", markup=False)
    if p.data:
        c.print("  case data so far", markup=False)
        width = max(len(k) for k in p.data)
        for key, value in p.data.items():
            c.print(f"    {key:<{width}}  {json.dumps(value, ensure_ascii=False, default=str)}", markup=False)
    c.print(f"  claim it with 'flowrun claim {t.ref}', or complete it with 'flowrun do {t.ref}'", markup=False)


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
