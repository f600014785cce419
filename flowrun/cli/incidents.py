"""Commands about steps that failed for good: ``incidents`` and ``retry``."""

from __future__ import annotations

import click

from flowrun.cli.context import AppContext, pass_app
from flowrun.cli.options import INCIDENT, json_option
from flowrun.cli.render import echo_json, echo_ready, step_json


@click.command("incidents")
@click.option("--all", "include_resolved", is_flag=True, help="Also list resolved incidents.")
@json_option
@pass_app
def incidents_cmd(app: AppContext, include_resolved: bool, as_json: bool) -> None:
    """Steps that failed for good: services whose attempts are used up, failed worker steps."""
    from flowrun.app import incidents
    from flowrun.clock import iso

    found = incidents(app.project, include_resolved)
    if as_json:
        echo_json(
            [
                {
                    "id": i.id,
                    "instance": i.instance,
                    "task_ref": i.task_ref,
                    "topic": i.topic,
                    "error_type": i.error_type,
                    "message": i.message,
                    "attempts": i.attempts,
                    "created_at": iso(i.created_at),
                    "resolved_at": iso(i.resolved_at),
                }
                for i in found
            ]
        )
        return
    if not found:
        click.echo("No open incidents.")
        return
    from rich.table import Table

    from flowrun.cli.render import console, when

    table = Table(title=f"{len(found)} incident(s)", title_justify="left")
    for col in ("incident", "instance", "task", "service", "error", "attempts", "since"):
        table.add_column(col)
    for i in found:
        table.add_row(
            str(i.id),
            i.instance[:8],
            str(i.task_ref or "-"),
            i.topic or "-",
            f"{i.error_type}: {i.message}",
            str(i.attempts),
            when(i.created_at) + (" (resolved)" if i.resolved_at else ""),
        )
    console().print(table)
    click.echo("Fix the cause, then: flowrun retry INCIDENT", err=True)


@click.command("retry")
@click.argument("incident", type=INCIDENT)
@json_option
@pass_app
def retry_cmd(app: AppContext, incident: str, as_json: bool) -> None:
    """Run the failed step of INCIDENT again now (after its cause was fixed)."""
    from flowrun.app import retry

    result = retry(app.project, incident)
    if as_json:
        echo_json(step_json(result))
        return
    click.echo(f"incident {incident} retried; instance {result.instance[:8]} is {result.status}")
    echo_ready(result.ready)


COMMANDS = [incidents_cmd, retry_cmd]
