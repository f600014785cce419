"""Commands operators use on user tasks: ``tasks`` (the inbox), ``claim``, ``unclaim``, ``assign`` and ``do``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from flowrun.cli import completion
from flowrun.cli.context import AppContext, pass_app
from flowrun.cli.options import TASK_REF, data_options, json_option, parse_pairs, read_data_file
from flowrun.cli.prompts import ask_form
from flowrun.cli.render import echo_json, echo_ready, step_json

_AS_HELP = "(default: $FLOWRUN_USER or your login)"


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
@click.option("--mine", is_flag=True, help="Only tasks claimed by you, or assigned to you and unclaimed.")
@click.option("--unclaimed", is_flag=True, help="Only tasks nobody has claimed.")
@click.option("--owner", help="Only tasks claimed by this user.")
@click.option("--group", help="Only tasks offered to this group (camunda:candidateGroups).")
@click.option("--as", "actor", help=f"Who 'you' is for --mine {_AS_HELP}.")
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
    mine: bool,
    unclaimed: bool,
    owner: str | None,
    group: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """The inbox: ready user tasks across instances, overdue and soonest due first."""
    from flowrun.app import inbox
    from flowrun.app.ownership import operator_name
    from flowrun.cli.inbox_view import inbox_json, inbox_table
    from flowrun.models import InboxWho

    who = None
    if mine or unclaimed or owner is not None or group is not None:
        who = InboxWho(mine=operator_name(actor) if mine else None, owner=owner, unclaimed=unclaimed, group=group)
    items = inbox(app.project, instance, lane, family, where=where, sort=sort, who=who)
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
@click.option("--as", "actor", help=f"Who takes the task {_AS_HELP}.")
@json_option
@pass_app
def claim_cmd(app: AppContext, ref: str, actor: str | None, as_json: bool) -> None:
    """Take task REF: its touch time runs from now until you complete or give it back."""
    from flowrun.app import claim
    from flowrun.cli.render import task_json

    task = claim(app.project, ref, actor)
    if as_json:
        echo_json(task_json(task))
    else:
        click.echo(f"task {task.ref} ({task.name}) claimed by {task.actor}")


@click.command("unclaim")
@click.argument("ref", type=TASK_REF)
@click.option("--as", "actor", help=f"Who gives the task back {_AS_HELP}.")
@click.option("--force", is_flag=True, help="Give back a task someone else holds (say, someone away).")
@json_option
@pass_app
def unclaim_cmd(app: AppContext, ref: str, actor: str | None, force: bool, as_json: bool) -> None:
    """Give back task REF: it is ready for others again, and its waiting time runs on."""
    from flowrun.app import get_task, unclaim
    from flowrun.cli.render import task_json

    holder = get_task(app.project, ref).actor
    task = unclaim(app.project, ref, actor, force=force)
    if as_json:
        echo_json({**task_json(task), "previous_owner": holder})
    else:
        click.echo(f"task {task.ref} ({task.name}) given back by {holder}; it is unclaimed")


@click.command("assign")
@click.argument("ref", type=TASK_REF)
@click.option("--to", "to", required=True, help="Who takes over the task (an operator's user name).")
@click.option("--as", "actor", help=f"Who hands it over {_AS_HELP}.")
@json_option
@pass_app
def assign_cmd(app: AppContext, ref: str, to: str, actor: str | None, as_json: bool) -> None:
    """Hand task REF to a user: they hold its claim from now on; the previous holder's ends."""
    from flowrun.app import assign
    from flowrun.cli.render import task_json

    task, holder = assign(app.project, ref, to, actor)
    if as_json:
        echo_json({**task_json(task), "previous_owner": holder})
        return
    before = f" (was {holder})" if holder else ""
    click.echo(f"task {task.ref} ({task.name}) assigned to {task.actor}{before}")


@click.command("do")
@click.argument("ref", type=TASK_REF)
@data_options
@click.option("--as", "actor", help=f"Who completes the task {_AS_HELP}.")
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
    """Complete task REF with form data (--data, --data-file, or asked at the prompt).

    A task someone else holds is refused (exit 3) before anything is asked. Ctrl-C at the
    prompt gives back the claim this command took and saves nothing (exit 130).
    """
    from flowrun.app import complete
    from flowrun.app.ownership import operator_name
    from flowrun.app.task_input import begin_input, complete_given, give_back, wants_prompt

    who = operator_name(actor)
    values: dict[str, Any] = read_data_file(data_file)
    raw = parse_pairs(data)
    if wants_prompt(interactive, values, raw, sys.stdin.isatty()):
        pending = begin_input(app.project, ref, values, raw, who)
        task, form = pending.task, pending.form
        click.echo(f"Task {task.ref}: {task.name} [{task.lane or 'no lane'}]", err=True)
        if form is not None and form.title:
            click.echo(form.title, err=True)
        try:
            answers = ask_form(form, pending.to_ask, pending.given)
        except KeyboardInterrupt as exc:
            if _input_ended(exc):
                raise  # input that ran out (not a Ctrl-C) keeps the claim: its touch time runs on
            back = "; the task is unclaimed again" if give_back(app.project, pending) else ""
            click.echo(f"\ninterrupted: nothing was saved{back}", err=True)
            raise click.exceptions.Exit(130) from None
        result = complete(app.project, ref, {**pending.given, **answers}, who)
    else:
        result = complete_given(app.project, ref, values, raw, who)
    if as_json:
        echo_json(step_json(result))
        return
    click.echo(f"task {ref} done; instance {result.instance[:8]} is {result.status}")
    echo_ready(result.ready)


def _input_ended(exc: BaseException) -> bool:
    """Whether ``exc`` (what :func:`ask_form` raises when the operator leaves) came from the end of input."""
    seen: BaseException | None = exc
    for _ in range(4):  # KeyboardInterrupt <- click's Abort <- EOFError or the Ctrl-C's KeyboardInterrupt
        if seen is None:
            return False
        if isinstance(seen, EOFError):
            return True
        seen = seen.__context__
    return False


COMMANDS = [tasks_cmd, task_cmd, claim_cmd, unclaim_cmd, assign_cmd, do_cmd]
