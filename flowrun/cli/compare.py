"""``flowrun compare``: a pilot's KPIs, baseline against variant, with intervals and tests."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import click

from flowrun.cli import completion
from flowrun.cli.context import AppContext, pass_app
from flowrun.cli.render import echo_json
from flowrun.units import duration, kpi_value, p_value, relative

if TYPE_CHECKING:
    from flowrun.analysis import Comparison, KpiResult, Side, TaskResult, TaskSide

GROUP_HELP = "VARIANT, @PILOT or VARIANT@PILOT"


@click.command("compare")
@click.argument("family", shell_complete=completion.families)
@click.option(
    "--baseline",
    metavar="GROUP",
    help=f"The group to compare against ({GROUP_HELP}).",
    shell_complete=completion.variants,
)
@click.option(
    "--variant", metavar="GROUP", help=f"The group being judged ({GROUP_HELP}).", shell_complete=completion.variants
)
@click.option("--pilot", help="Only cases of this pilot, in both groups.")
@click.option("--since", metavar="DATE", help="Only cases started on or after DATE (or an ISO 8601 time).")
@click.option("--until", metavar="DATE", help="Only cases started up to the end of DATE (or before a time).")
@click.option(
    "--primary", metavar="KPI", help="The primary KPI (overrides flowrun.yaml); the others are Holm-adjusted."
)
@click.option("--json", "as_json", is_flag=True, help="Print every number as JSON (durations in seconds).")
@click.option("--csv", "as_csv", is_flag=True, help="Print the KPI table as CSV.")
@pass_app
def compare_cmd(
    app: AppContext,
    family: str,
    baseline: str | None,
    variant: str | None,
    pilot: str | None,
    since: str | None,
    until: str | None,
    primary: str | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Compare the completed cases of two groups of process FAMILY, KPI by KPI.

    By default the baseline is the variant named "baseline" (else the first in flowrun.yaml)
    and the variant is the other one. Running cases are counted, never compared.
    """
    from flowrun.analysis import to_dict
    from flowrun.app import compare

    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    result = compare(
        app.project,
        family,
        baseline,
        variant,
        pilot,
        _bound(since, "--since", end=False),
        _bound(until, "--until", end=True),
        primary=primary,
    )
    if as_json:
        echo_json(to_dict(result))
    elif as_csv:
        click.echo(kpi_csv(result), nl=False)
    else:
        comparison_text(result)


def _bound(text: str | None, option: str, end: bool) -> datetime | None:
    """A date (the day's start, or the next day's start for an end) or an ISO 8601 time, in UTC."""
    from flowrun.clock import parse_time

    if text is None:
        return None
    value = text.strip()
    try:
        if len(value) == 10:
            day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=timezone.utc)
            if not end:
                return day
            return day + timedelta(days=1) if day.date() < date.max else datetime.max.replace(tzinfo=timezone.utc)
        return parse_time(value)
    except ValueError as exc:
        reason = (
            str(exc) if "years 1 to 9999" in str(exc) else f"'{text}' is not a date (2026-03-02) or an ISO 8601 time"
        )
        raise click.BadParameter(reason, param_hint=option) from None


# -- CSV -------------------------------------------------------------------------

CSV_COLUMNS = (
    "kpi",
    "unit",
    "statistic",
    *(f"{side}_{key}" for side in ("baseline", "variant") for key in ("n", "median", "p90", "mean", "value")),
    "diff",
    "rel_diff",
    "change_unit",
    "shift",
    "ci95_low",
    "ci95_high",
    "ci_method",
    "p_value",
    "test",
    "p_adjusted",
    "ci_adjusted_low",
    "ci_adjusted_high",
    "ci_adjusted_level",
    "effect_size",
    "effect_size_name",
    "primary",
    "significant",
    "too_small",
    "ci_null",
    "baseline_censored",
    "variant_censored",
    "notes",
)


def kpi_csv(result: Comparison) -> str:
    """The KPI table as CSV, one row per KPI; durations in seconds, empty cells where there is no value."""
    from flowrun.eventlog import spreadsheet_text

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for k in result.kpis:
        sides = [
            getattr(getattr(k, side), key)
            for side in ("baseline", "variant")
            for key in ("n", "median", "p90", "mean", "value")
        ]
        low, high = k.ci95 if k.ci95 is not None else (None, None)
        a_low, a_high = k.ci_adjusted if k.ci_adjusted is not None else (None, None)
        row = [
            *(k.kpi, k.unit, k.statistic, *sides, k.diff, k.rel_diff, k.change_unit, k.shift),
            *(low, high, k.ci_method, k.p_value, k.test, k.p_adjusted, a_low, a_high, k.ci_adjusted_level),
            *(k.effect_size, k.effect_size_name),
        ]
        cells = ["" if v is None else spreadsheet_text(v) for v in row]
        flags = [str(x).lower() for x in (k.primary, k.significant, k.too_small)]
        censored = [str(k.ci_null), str(k.censored[0]), str(k.censored[1])]
        writer.writerow([*cells, *flags, *censored, spreadsheet_text("; ".join(k.notes)) if k.notes else ""])
    return out.getvalue()


# -- terminal --------------------------------------------------------------------


def comparison_text(result: Comparison) -> None:
    """The KPI table, the verdicts in words, the per-task table and the warnings."""
    from flowrun.analysis.wording import verdicts
    from flowrun.cli.render import console

    c = console()
    b, v = result.baseline, result.variant
    c.print(f"[bold]{result.family}[/bold]: {b.name} (baseline) vs {v.name} (variant)", markup=True)
    for g in (b, v):
        extra = f", {g.running} running" if g.running else ""
        extra += f", {g.other} failed or cancelled" if g.other else ""
        if g.cases_per_person_hour is not None:
            extra += f"; {g.cases_per_person_hour:.2f} cases per person-hour"
        c.print(f"  {g.name}: {g.n} completed case(s){extra}", markup=False)
    filters = {k: val for k, val in result.filters.items() if val}
    if filters:
        c.print("  only cases with " + ", ".join(f"{k} {val}" for k, val in filters.items()), markup=False)
    c.print(kpi_table(result))
    for line in verdicts(result):
        c.print(line, markup=False)
    if result.tasks:
        c.print(task_table(result, result.tasks, "task"))
    if result.lanes:
        c.print(task_table(result, result.lanes, "lane"))
    for warning in result.warnings:
        c.print(f"warning: {warning}", markup=False, style="yellow")


def kpi_table(result: Comparison) -> Any:
    """Two rows per KPI, one per group: n, median, p90, mean; the change sits on the variant's row."""
    from rich import box
    from rich.table import Table

    from flowrun.analysis.wording import LEVEL, TOO_SMALL_MARK

    table = Table(
        title="KPIs; change = variant - baseline: Hodges-Lehmann shift (times, counts, scores), else difference",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
        caption=(
            f"* significant at {LEVEL} after the adjustment (p adj.: primary alone, others Holm)   "
            f"{TOO_SMALL_MARK}: too few cases to judge"
        ),
        caption_justify="left",
    )
    for col in ("KPI", "group", "n", "median", "mean", "change", "rel.", "95% CI", "p", "p adj.", ""):
        table.add_column(col, no_wrap=True, justify="left" if col in ("KPI", "group", "") else "right")
    for k in result.kpis:
        rows: list[list[str]] = []
        for side, group in ((k.baseline, result.baseline.name), (k.variant, result.variant.name)):
            rows.append([k.kpi if not rows else "", group, str(side.n), *_side_cells(k, side)])
        # "rel." belongs to the change shown: the shift's share of the baseline median where there is one
        shown_rel = k.rel_diff
        if k.shift is not None and k.rel_diff is not None and k.baseline.median:
            shown_rel = k.shift / abs(k.baseline.median)
        rel = relative(shown_rel)
        ci = _interval(k, k.ci95)
        mark = "*" if k.significant else TOO_SMALL_MARK if k.too_small else ""
        change = kpi_value(k.shift if k.shift is not None else k.diff, k.unit, k.statistic, signed=True)
        rows[0] += ["", "", "", "", "", ""]
        rows[1] += [change, rel, ci, p_value(k.p_value), p_value(k.p_adjusted), mark]
        table.add_row(*rows[0])
        table.add_row(*rows[1], style="bold" if k.significant else None, end_section=True)
    return table


def _interval(k: KpiResult, ci: tuple[float, float] | None) -> str:
    """An interval in the KPI's unit, or a hazard ratio's (``HR 0.41-0.88``) for censored durations."""
    if ci is None:
        return "-"
    if k.ci_null == 1.0:
        return f"HR {ci[0]:.2f}-{ci[1]:.2f}"
    return "[" + ", ".join(kpi_value(x, k.unit, k.statistic, True) for x in ci) + "]"


def _side_cells(k: KpiResult, side: Side) -> list[str]:
    """median and mean of one group; a rate shows only its share, NPS its score and the mean answer.

    The 90th percentile is in ``--json`` and ``--csv``; the table leaves it out to fit 120 columns.
    """
    if k.unit == "proportion":
        return ["-", kpi_value(side.mean, k.unit)]
    if k.statistic == "nps":
        return [kpi_value(side.value, k.unit, "nps"), f"{side.mean:.1f}/10" if side.mean is not None else "-"]
    return [kpi_value(side.median, k.unit), kpi_value(side.mean, k.unit, "mean")]


def task_table(result: Comparison, rows: list[TaskResult], kind: str) -> Any:
    """Median waiting and touch time per task (or lane), the groups side by side; "not run" where a group lacks it."""
    from rich import box
    from rich.table import Table

    b, v = result.baseline.name, result.variant.name
    title = (
        "Per task: median waiting and touch time"
        if kind == "task"
        else "Per lane: median waiting and touch time per step"
    )
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    table.add_column(kind, no_wrap=True)
    if kind == "task":
        table.add_column("lane", no_wrap=True)
    for name in (b, v):
        table.add_column(f"{name}\nn", justify="right", no_wrap=True)
        table.add_column("waiting", justify="right", no_wrap=True)
        table.add_column("touch", justify="right", no_wrap=True)
    for t in rows:
        cells = [t.name] + ([t.lane or "-"] if kind == "task" else [])
        table.add_row(*cells, *_task_cells(t.baseline), *_task_cells(t.variant))
    return table


def _task_cells(side: TaskSide | None) -> list[str]:
    if side is None:
        return ["-", "not run", "-"]
    return [str(side.n), duration(side.waiting_median), duration(side.touch_median)]


COMMANDS = [compare_cmd]
