"""Commands that administer whole cases: ``cancel`` and ``migrate``."""

from __future__ import annotations

import click

from flowrun.cli import completion
from flowrun.cli.context import AppContext, pass_app
from flowrun.cli.options import json_option
from flowrun.cli.render import echo_json
from flowrun.models import Migration


@click.command("cancel")
@click.argument("instance", shell_complete=completion.instances)
@click.option("--reason", required=True, help="Why the case is cancelled (kept in its history and the event log).")
@click.option("--as", "actor", help="Who cancels it (default: $FLOWRUN_USER or your login).")
@json_option
@pass_app
def cancel_cmd(app: AppContext, instance: str, reason: str, actor: str | None, as_json: bool) -> None:
    """Cancel case INSTANCE (id, prefix or business key): its open tasks close, it leaves the KPIs."""
    from flowrun.app.admin import cancel
    from flowrun.app.ownership import operator_name

    rec = cancel(app.project, instance, reason, operator_name(actor))
    if as_json:
        echo_json({"instance": rec.id, "status": rec.status, "reason": rec.error})
        return
    click.echo(f"instance {rec.id[:8]} ({rec.family}:{rec.variant}) is cancelled: {rec.error}")


@click.command("migrate")
@click.argument("process", shell_complete=completion.processes)
@click.option(
    "--instance",
    "instances",
    multiple=True,
    help="Only this case (id, prefix or key); repeat for more.",
    shell_complete=completion.instances,
)
@click.option("--dry-run", is_flag=True, help="Only list what would change for each case; save nothing.")
@click.option("--as", "actor", help="Who migrates (default: $FLOWRUN_USER or your login).")
@json_option
@click.pass_context
def migrate_cmd(
    ctx: click.Context, process: str, instances: tuple[str, ...], dry_run: bool, actor: str | None, as_json: bool
) -> None:
    """Move running cases of older versions of PROCESS (FAMILY[:VARIANT] or a .bpmn file) to its current file.

    Cases waiting at an element the current file no longer has (or that ran one) are
    refused and keep running on their version; the command then exits 1. A failed case
    stays failed after the move: 'flowrun retry' runs its step again on the new version.
    """
    from flowrun.app.migration import migrate
    from flowrun.app.ownership import operator_name

    app = ctx.find_object(AppContext)
    if app is None:  # the root group always makes one
        raise RuntimeError("flowrun migrate ran without its context")
    moves = migrate(app.project, process, instances, dry_run, operator_name(actor))
    if as_json:
        echo_json([_move_json(m) for m in moves])
    else:
        _move_text(moves, dry_run)
    if any(m.change.blocked for m in moves):
        ctx.exit(1)


def _move_json(m: Migration) -> dict[str, object]:
    from dataclasses import asdict

    return asdict(m)


def _move_text(moves: list[Migration], dry_run: bool) -> None:
    if not moves:
        click.echo("no running case is on an older version of it; nothing to migrate")
        return
    for m in moves:
        c = m.change
        head = f"instance {m.instance[:8]} ({m.family}:{m.variant}) {m.from_sha256[:12]} -> {m.to_sha256[:12]}"
        if c.blocked:
            click.echo(f"{head}: refused, it cannot move; the new version lacks {', '.join(c.blocked)}", err=True)
            continue
        click.echo(f"{head}: {'would move' if dry_run else 'moved'}")
        for label, items in (("added", c.added), ("removed", c.removed), ("changed", c.changed)):
            if items:
                click.echo(f"  {label}: {', '.join(items)}")
        if not (c.added or c.removed or c.changed):
            click.echo("  no element changed")


COMMANDS = [cancel_cmd, migrate_cmd]
