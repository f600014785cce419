"""Commands for process-mining event logs: ``export`` (CSV, XES, OCEL 2.0) and ``import-log``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from flowrun.cli import completion
from flowrun.cli.context import AppContext, pass_app
from flowrun.cli.options import json_option
from flowrun.cli.render import echo_json

FORMATS = ("csv", "xes", "ocel")
SUFFIXES = {".csv": "csv", ".xes": "xes", ".json": "ocel", ".jsonocel": "ocel"}


@click.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="csv (one row per task), xes (IEEE 1849) or ocel (OCEL 2.0 JSON); default: from the file's suffix.",
)
@click.option("--process", "family", help="Only instances of this process family.", shell_complete=completion.families)
@click.option("--variant", help="Only instances of this variant.", shell_complete=completion.variants)
@click.option("--pilot", help="Only instances of this pilot.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="The file to write ('-' for standard output).",
)
@json_option
@pass_app
def export_cmd(
    app: AppContext,
    fmt: str | None,
    family: str | None,
    variant: str | None,
    pilot: str | None,
    output: Path,
    as_json: bool,
) -> None:
    """Export recorded tasks as an event log for process-mining tools (PM4Py, ProM, Celonis, ...)."""
    from flowrun.app import export_log

    to_stdout = str(output) == "-"
    if as_json and to_stdout:
        raise click.UsageError("--json prints a summary on standard output; write the log to a file with -o FILE")
    fmt = fmt or _format_for(output)
    target: Any = sys.stdout if to_stdout else output  # looked up now, so test runners capture it
    result = export_log(app.project, fmt, target, family, variant, pilot)
    if as_json:
        echo_json(
            {
                "file": result.file,
                "format": result.format,
                "cases": result.cases,
                "tasks": result.tasks,
                "events": result.events,
            }
        )
        return
    click.echo(
        f"wrote {result.cases} case(s), {result.tasks} task(s), {result.events} event(s) "
        f"to {result.file} ({result.format})",
        err=to_stdout,
    )
    if result.cases == 0:
        click.echo("  no instance matches; see 'flowrun instances'", err=True)


def _format_for(output: Path) -> str:
    fmt = SUFFIXES.get(output.suffix.lower())
    if fmt is None:
        raise click.UsageError(f"say which format to write with --format ({', '.join(FORMATS)})")
    return fmt


#: (option, mapping field, help)
COLUMN_OPTIONS = (
    ("--case-column", "case", "the case id (default: case_id)"),
    ("--activity-column", "activity", "the task's name (default: activity)"),
    ("--lane-column", "lane", "the lane or department (default: lane)"),
    ("--resource-column", "resource", "who did the task (default: resource)"),
    ("--enable-column", "enable", "when the task was ready (default: enable_time)"),
    ("--start-column", "start", "when work began (default: start_time)"),
    ("--end-column", "end", "when it ended (default: end_time)"),
    ("--activity-id-column", "activity_id", "a stable id of the task (default: activity_id)"),
    ("--type-column", "type", "the task type (default: type; else 'task')"),
    ("--status-column", "status", "the task status (default: status; else from the times)"),
    ("--pilot-column", "pilot", "the pilot of each case, when --pilot is not given (default: pilot)"),
)


def _column_options(fn: Any) -> Any:
    for option, field, help_text in reversed(COLUMN_OPTIONS):
        fn = click.option(option, field + "_column", metavar="NAME", help=f"Column of {help_text}.")(fn)
    return fn


@click.command("import-log")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--process", "family", required=True, help="The process family the cases belong to.")
@click.option("--variant", required=True, help="The variant to file them under (e.g. the pilot's redesign).")
@click.option("--pilot", help="The pilot of every case (default: the file's pilot column, if any).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="csv, xes or ocel (OCEL 2.0 JSON); default: from the suffix (.xes; .json, .jsonocel; else csv).",
)
@_column_options
@click.option(
    "--time-format",
    metavar="FORMAT",
    help="How times are written, as for strptime, e.g. '%d/%m/%Y %H:%M' (default: ISO 8601).",
)
@click.option("--timezone", metavar="ZONE", help="IANA time zone of times written without an offset (default: UTC).")
@click.option("--delimiter", default=",", show_default=True, help="Field separator; ';' or 'tab' for some exports.")
@click.option(
    "--data-column",
    "data_columns",
    metavar="NAME",
    multiple=True,
    help="A column to keep as case data (a survey answer, an outcome), by its name or as case:NAME; "
    "repeatable. Every case:NAME column (flowrun's export) is kept without it.",
)
@json_option
@pass_app
def import_log_cmd(
    app: AppContext,
    /,
    file: Path,
    family: str,
    variant: str,
    pilot: str | None,
    fmt: str | None,
    time_format: str | None,
    timezone: str | None,
    delimiter: str,
    data_columns: tuple[str, ...],
    as_json: bool,
    **columns: str | None,
) -> None:
    """Import a task log recorded outside flowrun (CRM export, spreadsheet) so it can be compared.

    FILE is a CSV file with one row per task, or an XES or OCEL 2.0 JSON log (their
    case attributes become the cases' data). flowrun's own exports need no options;
    for other files, name the columns. Columns case:NAME (and those named with
    --data-column) become each case's data field NAME, typed back: true/false,
    whole and decimal numbers, else text. Every row is checked first: if any is bad,
    all bad rows are listed with their line numbers and nothing is imported.
    """
    from flowrun.app import import_log
    from flowrun.eventlog import ColumnMapping

    mapping = ColumnMapping(
        **{name.removesuffix("_column"): value for name, value in columns.items()},
        data=data_columns,
        time_format=time_format,
        timezone=timezone,
        delimiter=_delimiter(delimiter),
    )
    with _progress_bar() as progress:
        result = import_log(app.project, file, family, variant, pilot, mapping, progress, fmt)
    if as_json:
        echo_json(
            {
                "file": result.file,
                "sha256": result.sha256,
                "process": result.process,
                "variant": result.variant,
                "pilot": result.pilot,
                "cases": result.cases,
                "running": result.running,
                "tasks": result.tasks,
                "data_fields": list(result.data_fields),
                "warnings": list(result.warnings),
            }
        )
        return
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    running = f" ({result.running} still running)" if result.running else ""
    pilot_text = f", pilot {result.pilot}" if result.pilot else ""
    click.echo(
        f"imported {result.cases} case(s){running} with {result.tasks} task(s) from {result.file} "
        f"as {result.process}:{result.variant}{pilot_text}"
    )


@contextmanager
def _progress_bar() -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress bar on standard error while a log is imported, when that is a terminal (else None)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                label = {"reading": "checking the rows", "storing": "storing the tasks"}.get(stage, stage)
                tasks[stage] = bar.add_task(label, total=total or None)
            bar.update(tasks[stage], completed=done)

        yield report


def _delimiter(text: str) -> str:
    value = {"tab": "\t", "\\t": "\t"}.get(text.lower(), text)
    if len(value) != 1:
        raise click.BadParameter(f"'{text}' is not one character", param_hint="--delimiter")
    return value


COMMANDS = [export_cmd, import_log_cmd]
