"""Commands that move instances without an operator: ``worker`` (timers) and ``send`` (messages, signals)."""

from __future__ import annotations

import signal
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from flowrun.cli import completion
from flowrun.cli.context import AppContext, pass_app
from flowrun.cli.options import data_options, json_option, parse_pairs, read_data_file
from flowrun.cli.render import echo_json, echo_ready, ready_json, step_json
from flowrun.clock import human, iso

if TYPE_CHECKING:
    from flowrun.app.worker import WorkRan


@click.command("worker")
@click.option("--once", is_flag=True, help="Do one pass over due timers and exit.")
@click.option(
    "--interval",
    type=click.FloatRange(0.05, 3600),
    default=5.0,
    show_default=True,
    help="Longest sleep between passes, in seconds (it wakes earlier for the next due timer).",
)
@json_option
@pass_app
def worker_cmd(app: AppContext, once: bool, interval: float, as_json: bool) -> None:
    """Fire due timers and run due service jobs across instances until stopped.

    Each line it prints starts with the local time and says what ran: the timer or
    the service (topic, attempt n of m), the instance and its key, the incident
    opened. Ctrl-C or SIGTERM finish the current step and exit. Several workers, on
    several machines, can share one database: work is claimed under a lease.
    """
    from flowrun.app import next_due, run_due
    from flowrun.app.worker import worker_setup

    stop = {"now": False}

    def _stop(signum: int, frame: Any) -> None:
        stop["now"] = True

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    passes = 0
    if not as_json:
        setup = worker_setup(app.project)
        topics = ", ".join(setup.topics) or "none (timers only)"
        _echo(app, f"worker started on {setup.database}; services: {topics}", err=True)
    try:
        while True:
            result = run_due(app.project)
            passes += 1
            _report(app, result, as_json)
            if once or stop["now"]:
                break
            _sleep(app, interval, next_due(app.project), stop)
            if stop["now"]:
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not as_json:
        _echo(app, f"worker stopped after {passes} pass(es)", err=True)


def _sleep(app: AppContext, interval: float, due: Any, stop: dict[str, bool]) -> None:
    wait = interval
    if due is not None:
        wait = max(0.05, min(interval, (due - app.project.clock.now()).total_seconds()))
    end = time.monotonic() + wait
    while not stop["now"] and time.monotonic() < end:
        time.sleep(min(0.1, max(0.0, end - time.monotonic())))


def _echo(app: AppContext, text: str, err: bool = False, at: datetime | None = None) -> None:
    """One line of the worker's log, starting with the local time (of ``at``, else now)."""
    click.echo(f"{human(at or app.project.clock.now())} {text}", err=err)


def _report(app: AppContext, result: Any, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "fired": result.fired,
                "failed": [{"instance": i, "error": e} for i, e in result.failed],
                "ready": ready_json(result.ready),
                "ran": [_ran_json(r) for r in result.ran],
            }
        )
        return
    for ran in result.ran:
        _echo(app, ran_line(ran), err=ran.outcome == "incident", at=ran.at)
    for t in result.ready:
        where = f" (instance {t.instance_id[:8]})" if t.instance_id else ""
        _echo(app, f"ready: task {t.ref} {t.name} [{t.lane or 'no lane'}]{where}")


def ran_line(ran: WorkRan) -> str:
    """What one piece of due work was and what became of it, e.g.
    ``service check_entitlement ("Check entitlement") in instance 7b5f30f1 (key C-1042):
    attempt 2 of 4 failed (RuntimeError: CRM down); next attempt at 2026-03-02 09:06:20``."""
    work = ran.work
    where = f"instance {ran.instance[:8]}" + (f" (key {ran.key})" if ran.key else "")
    if work is None:
        return f"the due work of {where} failed ({ran.error}); {_incident(ran)}"
    if work.kind == "timer":
        head = f'timer "{work.name}" in {where}'
        return f"{head} fired" if ran.outcome == "fired" else f"{head} failed ({ran.error}); {_incident(ran)}"
    attempt = f"attempt {work.attempt + 1} of {work.attempts}"
    head = f'service {work.name} ("{work.task}") in {where}: {attempt}'
    if ran.outcome == "done":
        return f"{head} succeeded"
    if ran.outcome == "retry":
        return f"{head} failed ({ran.error}); next attempt at {human(ran.next_at) if ran.next_at else 'once retried'}"
    return f"{head} failed ({ran.error}); {_incident(ran)}"


def _incident(ran: WorkRan) -> str:
    number = f"incident {ran.incident}" if ran.incident is not None else "an incident"
    return f"{number} opened (see 'flowrun incidents'; 'flowrun retry' once the cause is fixed)"


def _ran_json(ran: WorkRan) -> dict[str, Any]:
    work = ran.work
    return {
        "at": iso(ran.at),
        "instance": ran.instance,
        "key": ran.key,
        "kind": work.kind if work else None,
        "name": work.name if work else None,
        "task": work.task if work else None,
        "attempt": work.attempt + 1 if work and work.kind == "service" else None,
        "attempts": work.attempts if work and work.kind == "service" else None,
        "outcome": ran.outcome,
        "next_at": iso(ran.next_at) if ran.next_at else None,
        "error": ran.error,
        "incident": ran.incident,
    }


@click.command("send")
@click.argument("name", shell_complete=completion.messages)
@click.option("--instance", help="Deliver to this case (instance id or prefix).", shell_complete=completion.instances)
@click.option("--key", help="Deliver to the case with this business key.", shell_complete=completion.instances)
@click.option(
    "--correlate",
    multiple=True,
    metavar="VAR=VALUE",
    help="Deliver to the waiting case whose variable VAR is VALUE (repeat: all must match).",
)
@click.option("--all", "every", is_flag=True, help="Deliver a message to every case it fits, not just one.")
@click.option("--signal", "as_signal", is_flag=True, help="Broadcast a signal (to every case waiting) instead.")
@data_options
@json_option
@pass_app
def send_cmd(
    app: AppContext,
    name: str,
    instance: str | None,
    key: str | None,
    correlate: tuple[str, ...],
    every: bool,
    as_signal: bool,
    data: tuple[str, ...],
    data_file: Path | None,
    as_json: bool,
) -> None:
    """Deliver message NAME (with --data) to the one case waiting for it, or start a process with it.

    A message that fits several waiting cases is refused with their list: name the case
    with --instance, --key or --correlate, or give --all.
    """
    from flowrun.app import send
    from flowrun.app.correlation import Target
    from flowrun.forms import coerce

    values = read_data_file(data_file)
    values.update(coerce(None, parse_pairs(data)))
    target = Target(instance, key, parse_pairs(correlate, "--correlate"), every)
    results = send(app.project, name, data=values, kind="signal" if as_signal else "message", target=target)
    if as_json:
        echo_json([step_json(r) for r in results])
        return
    for r in results:
        click.echo(f"delivered to instance {r.instance[:8]}; it is {r.status}")
        echo_ready(r.ready)


COMMANDS = [worker_cmd, send_cmd]
