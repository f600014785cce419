"""Commands about instances: ``start``, ``show``, ``history``, ``instances``."""

from __future__ import annotations

from pathlib import Path

import click

from flowrun.cli.context import AppContext, pass_app
from flowrun.cli.options import data_options, json_option, parse_pairs, read_data_file
from flowrun.cli.render import echo_json, echo_ready, step_json


@click.command("start")
@click.argument("process")
@data_options
@click.option("--pilot", help="Name of the pilot (or group) this case belongs to.")
@json_option
@pass_app
def start_cmd(
    app: AppContext, process: str, data: tuple[str, ...], data_file: Path | None, pilot: str | None, as_json: bool
) -> None:
    """Start an instance of PROCESS (FAMILY[:VARIANT] or a .bpmn file) and run it to its first wait."""
    from flowrun.app import start
    from flowrun.forms import coerce

    values = read_data_file(data_file)
    values.update(coerce(None, parse_pairs(data)))
    result = start(app.project, process, values, pilot)
    if as_json:
        echo_json(step_json(result, new=True))
        return
    click.echo(result.instance[:8])
    _say_next(result)


def _say_next(result: object) -> None:
    status = getattr(result, "status", "")
    ready = getattr(result, "ready", [])
    if status == "completed":
        click.echo("  the instance has completed", err=True)
    echo_ready(ready, err=True)


@click.command("show")
@click.argument("instance")
@json_option
@pass_app
def show_cmd(app: AppContext, instance: str, as_json: bool) -> None:
    """Show an instance: status, variant, what it waits for, its data."""
    from flowrun.app import show
    from flowrun.cli.render import instance_json, instance_text

    view = show(app.project, instance)
    if as_json:
        echo_json(instance_json(view))
    else:
        instance_text(view)


@click.command("history")
@click.argument("instance")
@json_option
@pass_app
def history_cmd(app: AppContext, instance: str, as_json: bool) -> None:
    """Every task of an instance: lane, actor, ready/started/completed, waiting and touch time."""
    from flowrun.app import history
    from flowrun.app.views import claim_history
    from flowrun.cli.render import claim_json, claim_lines, history_table, task_json

    view, tasks = history(app.project, instance)
    claims = claim_history(app.project, view.id)
    if as_json:
        echo_json([{**task_json(t), "claims": claim_json(claims.get(t.ref or 0, []))} for t in tasks])
    else:
        history_table(view, tasks)
        claim_lines(tasks, claims)


@click.command("instances")
@click.option("--status", type=click.Choice(["running", "completed", "error", "cancelled"]))
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@json_option
@pass_app
def instances_cmd(app: AppContext, status: str | None, limit: int, as_json: bool) -> None:
    """List recent instances, newest first."""
    from flowrun.app import instances
    from flowrun.clock import iso

    rows = instances(app.project, status, limit)
    if as_json:
        echo_json(
            [
                {
                    "id": r.id,
                    "process": r.family,
                    "variant": r.variant,
                    "pilot": r.pilot,
                    "status": r.status,
                    "created_at": iso(r.created_at),
                    "ended_at": iso(r.ended_at),
                }
                for r in rows
            ]
        )
        return
    from rich.table import Table

    from flowrun.cli.render import console, when

    table = Table(title=f"{len(rows)} instance(s)", title_justify="left")
    for col in ("instance", "process", "pilot", "status", "started", "ended"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r.id[:8], f"{r.family}:{r.variant}", r.pilot or "", r.status, when(r.created_at), when(r.ended_at)
        )
    console().print(table)


COMMANDS = [start_cmd, show_cmd, history_cmd, instances_cmd]
