"""Commands operators use on user tasks: ``tasks`` (the inbox), ``claim`` and ``do``."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Any

import click

from flowrun.cli import completion
from flowrun.cli.context import AppContext, pass_app
from flowrun.cli.options import TASK_REF, data_options, json_option, parse_pairs, read_data_file
from flowrun.cli.prompts import ask_form
from flowrun.cli.render import echo_json, echo_ready, step_json


def _default_actor() -> str | None:
    try:
        return os.environ.get("FLOWRUN_USER") or getpass.getuser()
    except (KeyError, OSError):
        return None


@click.command("tasks")
@click.option(
    "--instance", help="Only tasks of this instance (key, id or id prefix).", shell_complete=completion.instances
)
@click.option("--lane", help="Only tasks in this lane (department); case does not matter.")
@click.option("--process", "family", help="Only tasks of this process family.", shell_complete=completion.families)
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Only cases whose data field has this value (repeatable).",
)
@click.option(
    "--sort",
    type=click.Choice(["due", "priority", "waiting"]),
    help="Order: due (default: overdue first, then by due date, then longest waiting), priority, or waiting.",
)
@click.option("--wide", is_flag=True, help="Show every column at full width, however wide the terminal.")
@json_option
@pass_app
def tasks_cmd(
    app: AppContext,
    instance: str | None,
    lane: str | None,
    family: str | None,
    where: tuple[str, ...],
    sort: str | None,
    wide: bool,
    as_json: bool,
) -> None:
    """The inbox: ready user tasks across instances, overdue and soonest due first."""
    from flowrun.app import inbox
    from flowrun.cli.inbox_view import inbox_json, inbox_table

    items = inbox(app.project, instance, lane, family, where=where, sort=sort)
    columns = app.project.settings.inbox_columns
    if as_json:
        echo_json(inbox_json(items, columns))
    else:
        inbox_table(items, columns, wide)


@click.command("task")
@click.argument("ref", type=TASK_REF)
@json_option
@pass_app
def task_cmd(app: AppContext, ref: str, as_json: bool) -> None:
    """Preview task REF without claiming it: its documentation, form fields and the case data so far."""
    from flowrun.app import preview_task
    from flowrun.cli.render import preview_json, preview_text

    preview = preview_task(app.project, ref)
    if as_json:
        echo_json(preview_json(preview))
    else:
        preview_text(preview)


@click.command("claim")
@click.argument("ref", type=TASK_REF)
@click.option("--as", "actor", help="Who takes the task (default: $FLOWRUN_USER or your login).")
@json_option
@pass_app
def claim_cmd(app: AppContext, ref: str, actor: str | None, as_json: bool) -> None:
    """Record that work on task REF started, and who took it."""
    from flowrun.app import claim
    from flowrun.cli.render import task_json

    task = claim(app.project, ref, actor or _default_actor())
    if as_json:
        echo_json(task_json(task))
    else:
        click.echo(f"task {task.ref} ({task.name}) claimed by {task.actor}")


@click.command("do")
@click.argument("ref", type=TASK_REF)
@data_options
@click.option("--as", "actor", help="Who completes the task (default: $FLOWRUN_USER or your login).")
@click.option(
    "--interactive/--no-interactive",
    "-i",
    default=None,
    help="Ask each form field at the prompt (default: when no data is given and input is a terminal).",
)
@json_option
@pass_app
def do_cmd(
    app: AppContext,
    ref: str,
    data: tuple[str, ...],
    data_file: Path | None,
    actor: str | None,
    interactive: bool | None,
    as_json: bool,
) -> None:
    """Complete task REF with form data (--data, --data-file, or asked at the prompt)."""
    from flowrun.app import complete
    from flowrun.app.task_input import begin_input, complete_given, wants_prompt

    who = actor or _default_actor()
    values: dict[str, Any] = read_data_file(data_file)
    raw = parse_pairs(data)
    if wants_prompt(interactive, values, raw, sys.stdin.isatty()):
        pending = begin_input(app.project, ref, values, raw, who)
        task, form = pending.task, pending.form
        click.echo(f"Task {task.ref}: {task.name} [{task.lane or 'no lane'}]", err=True)
        if form is not None and form.title:
            click.echo(form.title, err=True)
        result = complete(app.project, ref, {**pending.given, **ask_form(form, pending.to_ask, pending.given)}, who)
    else:
        result = complete_given(app.project, ref, values, raw, who)
    if as_json:
        echo_json(step_json(result))
        return
    click.echo(f"task {ref} done; instance {result.instance[:8]} is {result.status}")
    echo_ready(result.ready)


COMMANDS = [tasks_cmd, task_cmd, claim_cmd, do_cmd]
