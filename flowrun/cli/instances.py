"""Commands about instances: ``start``, ``show``, ``history``, ``instances``."""

from __future__ import annotations

from pathlib import Path

import click

from flowrun.cli import completion
from flowrun.cli.context import AppContext, pass_app
from flowrun.cli.options import data_options, json_option, parse_pairs, read_data_file
from flowrun.cli.render import echo_json, echo_ready, step_json


@click.command("start")
@click.argument("process", shell_complete=completion.processes)
@data_options
@click.option("--pilot", help="Name of the pilot (or group) this case belongs to.")
@click.option("--key", help="The case's business key, unique in its family (e.g. C-1042); accepted wherever an id is.")
@json_option
@pass_app
def start_cmd(
    app: AppContext,
    process: str,
    data: tuple[str, ...],
    data_file: Path | None,
    pilot: str | None,
    key: str | None,
    as_json: bool,
) -> None:
    """Start an instance of PROCESS (FAMILY[:VARIANT] or a .bpmn file) and run it to its first wait."""
    from flowrun.app import start
    from flowrun.forms import coerce

    values = read_data_file(data_file)
    values.update(coerce(None, parse_pairs(data)))
    result = start(app.project, process, values, pilot, key=key)
    if as_json:
        echo_json({**step_json(result, new=True), "key": result.key})
        return
    click.echo(result.instance[:8])
    if result.key:
        click.echo(f"  key {result.key}", err=True)
    _say_next(result)


def _say_next(result: object) -> None:
    status = getattr(result, "status", "")
    ready = getattr(result, "ready", [])
    if status == "completed":
        click.echo("  the instance has completed", err=True)
    echo_ready(ready, err=True)


@click.command("show")
@click.argument("instance", metavar="INSTANCE", shell_complete=completion.instances)
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
@click.argument("instance", shell_complete=completion.instances)
@click.option("--wide", is_flag=True, help="Show every column at full width, however wide the terminal.")
@json_option
@pass_app
def history_cmd(app: AppContext, instance: str, wide: bool, as_json: bool) -> None:
    """Every task of an instance: lane, actor, ready/started/completed, waiting and touch time."""
    from flowrun.app import history
    from flowrun.app.admin import case_notes
    from flowrun.app.views import claim_history
    from flowrun.cli.render import claim_json, claim_lines, history_table, task_json, when

    view, tasks = history(app.project, instance)
    claims = claim_history(app.project, view.id)
    if as_json:
        echo_json([{**task_json(t), "claims": claim_json(claims.get(t.ref or 0, []))} for t in tasks])
        return
    history_table(view, tasks, wide)
    claim_lines(tasks, claims)
    for note in case_notes(app.project, view.id):
        click.echo(f"{when(note.at)}  {note.text}")


@click.command("instances")
@click.option("--process", "family", metavar="FAMILY", help="Only instances of this process family.")
@click.option("--variant", help="Only instances of this variant.")
@click.option("--pilot", help="Only instances of this pilot.")
@click.option("--status", type=click.Choice(["running", "completed", "error", "cancelled"]))
@click.option("--outdated", is_flag=True, help="Only running or failed instances on an older version of their file.")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@click.option("--wide", is_flag=True, help="Show every column at full width, however wide the terminal.")
@json_option
@pass_app
def instances_cmd(
    app: AppContext,
    family: str | None,
    variant: str | None,
    pilot: str | None,
    status: str | None,
    outdated: bool,
    limit: int,
    wide: bool,
    as_json: bool,
) -> None:
    """List recent instances, newest first (``--outdated``: the ones ``flowrun migrate`` would move)."""
    from flowrun.app.views import list_instances, outdated_filter
    from flowrun.clock import iso
    from flowrun.models import InstanceFilter

    where = InstanceFilter(status=status, family=family, variant=variant, pilot=pilot)
    rows, total = list_instances(app.project, outdated_filter(app.project, where) if outdated else where, limit)
    if as_json:
        echo_json(
            [
                {
                    "id": r.id,
                    "key": r.business_key,
                    "process": r.family,
                    "variant": r.variant,
                    "pilot": r.pilot,
                    "status": r.status,
                    "created_at": iso(r.created_at),
                    "ended_at": iso(r.ended_at),
                    "sha256": r.sha256,
                }
                for r in rows
            ]
        )
    else:
        from flowrun.cli.fit import Column, print_fitted
        from flowrun.cli.render import short_when

        columns = [
            Column("instance", [r.id[:8] for r in rows]),
            Column("key", [r.business_key or "" for r in rows]),
            Column("process", [f"{r.family}:{r.variant}" for r in rows], wraps=True),
            Column("pilot", [r.pilot or "" for r in rows], wraps=True),
            Column("status", [r.status for r in rows]),
            Column("started", [short_when(r.created_at) for r in rows]),
            Column("ended", [short_when(r.ended_at) for r in rows]),
        ]
        print_fitted(f"{total} instance(s)", columns, ["pilot", "ended"], wide)
    if total > len(rows):
        click.echo(f"{len(rows)} of {total} shown; use --limit", err=True)


COMMANDS = [start_cmd, show_cmd, history_cmd, instances_cmd]
