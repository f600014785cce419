"""``flowrun plan``: how many cases per group a pilot needs, from the baseline's completed cases."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from flowrun.cli import completion
from flowrun.cli.context import AppContext, pass_app
from flowrun.cli.render import echo_json
from flowrun.units import kpi_value

if TYPE_CHECKING:
    from flowrun.app.planning import Plan, PlanRow


@click.command("plan")
@click.argument("family", shell_complete=completion.families)
@click.option("--baseline", metavar="GROUP", help="The group to plan from (VARIANT, @PILOT or VARIANT@PILOT).")
@click.option(
    "--change",
    "changes",
    metavar="KPI=CHANGE",
    multiple=True,
    help="The change to detect: cycle_time=-20% (durations, counts), satisfaction=+0.5, nps=+10, fcr=+10 (pp).",
)
@click.option("--power", type=float, default=0.8, show_default=True, help="The chance of detecting the change.")
@click.option("--json", "as_json", is_flag=True, help="Print every number as JSON.")
@pass_app
def plan_cmd(
    app: AppContext, family: str, baseline: str | None, changes: tuple[str, ...], power: float, as_json: bool
) -> None:
    """Cases per group a pilot of FAMILY needs to detect each change (two-sided 5 % tests, equal groups).

    Without --change: cycle_time and waiting_time -20%, satisfaction +0.5, nps +10, fcr +10 pp
    (those the project has).
    """
    from flowrun.app import plan

    asked: dict[str, str] = {}
    for item in changes:
        name, eq, value = item.partition("=")
        if not eq or not name.strip() or not value.strip():
            raise click.UsageError(f"--change {item}: write KPI=CHANGE, e.g. cycle_time=-20% or nps=+10")
        asked[name.strip()] = value.strip()
    result = plan(app.project, family, baseline, asked or None, power)
    if as_json:
        echo_json(asdict(result))
        return
    _table(result)


def _change(row: PlanRow, value: float | None) -> str:
    if value is None:
        return "-"
    if row.kind in ("duration", "count"):
        return f"{100 * value:+.0f}%"
    if row.kind == "proportion":
        return f"{value:+.1f} pp"
    return f"{value:+.2f}" if row.kind == "score" else f"{value:+.1f}"


def _table(result: Plan) -> None:
    from rich import box
    from rich.table import Table

    from flowrun.cli.render import console

    table = Table(
        title=f"Plan for {result.family}: from {result.baseline}, {result.power:.0%} power, two-sided {result.alpha:g}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    for col in ("KPI", "baseline n", "baseline", "change", "cases per group", "detectable at n"):
        table.add_column(col, justify="left" if col == "KPI" else "right", no_wrap=True)
    for row in result.rows:
        stat = "nps" if row.kind == "nps" else "mean" if row.kind == "proportion" else "median"
        unit = "proportion" if row.kind == "proportion" else row.unit
        table.add_row(
            row.kpi,
            str(row.n),
            kpi_value(row.baseline, unit, stat),
            _change(row, row.change),
            "-" if row.needed is None else str(row.needed),
            _change(row, row.detectable),
        )
    console().print(table)


COMMANDS = [plan_cmd]
