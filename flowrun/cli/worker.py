"""Commands that move instances without an operator: ``worker`` (timers) and ``send`` (messages, signals)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import click

from flowrun.cli.context import AppContext, pass_app
from flowrun.cli.options import data_options, json_option, parse_pairs, read_data_file
from flowrun.cli.render import echo_json, echo_ready, ready_json, step_json


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

    Ctrl-C or SIGTERM finish the current step and exit. Several workers, on several
    machines, can share one database: work is claimed under a lease.
    """
    from flowrun.app import next_due, run_due

    stop = {"now": False}

    def _stop(signum: int, frame: Any) -> None:
        stop["now"] = True

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    passes = 0
    try:
        while True:
            result = run_due(app.project)
            passes += 1
            _report(result, as_json)
            if once or stop["now"]:
                break
            _sleep(app, interval, next_due(app.project), stop)
            if stop["now"]:
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not as_json:
        click.echo(f"worker stopped after {passes} pass(es)", err=True)


def _sleep(app: AppContext, interval: float, due: Any, stop: dict[str, bool]) -> None:
    wait = interval
    if due is not None:
        wait = max(0.05, min(interval, (due - app.project.clock.now()).total_seconds()))
    end = time.monotonic() + wait
    while not stop["now"] and time.monotonic() < end:
        time.sleep(min(0.1, max(0.0, end - time.monotonic())))


def _report(result: Any, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "fired": result.fired,
                "failed": [{"instance": i, "error": e} for i, e in result.failed],
                "ready": ready_json(result.ready),
            }
        )
        return
    for instance in result.fired:
        click.echo(f"due work ran in instance {instance[:8]}")
    echo_ready(result.ready)
    for instance, error in result.failed:
        click.echo(f"error: instance {instance[:8]}: {error} (see 'flowrun incidents')", err=True)


@click.command("send")
@click.argument("name")
@click.option("--instance", help="Deliver to this case (instance id or prefix).")
@click.option("--key", help="Deliver to the case with this business key.")
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
