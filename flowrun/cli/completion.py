"""Shell completion of flowrun's arguments: click's ``shell_complete`` callbacks for its parameters.

The shell runs ``flowrun`` with ``_FLOWRUN_COMPLETE=bash_complete`` (zsh, fish alike) and
the words typed so far; click calls these with the context parsed so far. They read the
project named by ``--project`` (or found from here upwards) through :mod:`flowrun.app.completions`,
and never print: a broken or missing project, or any other failure, offers nothing.
"""

from __future__ import annotations

import contextlib
import io
import signal
from collections.abc import Callable, Iterator
from typing import Any

import click
from click.shell_completion import CompletionItem

from flowrun.cli.context import AppContext

Complete = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


#: Seconds completion may take before it gives up and offers nothing (a database server that does
#: not answer would otherwise hold the shell until its connection times out).
TIME_LIMIT_S = 2.0


class _TooSlow(BaseException):  # not an Exception: code that catches those must not catch this
    pass


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`_TooSlow` in the block once ``seconds`` of wall time have passed (POSIX)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise _TooSlow

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _items(ctx: click.Context, fetch: Callable[[Any], list[tuple[str, str]]]) -> list[CompletionItem]:
    """``fetch(project)`` as completion items; nothing at all when it fails in any way or is too slow."""
    try:
        with (
            _time_limit(TIME_LIMIT_S),
            contextlib.redirect_stderr(io.StringIO()),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            # Completing parses the words typed without running the root command, so the
            # context it would build is built here, from the --project parsed (or $FLOWRUN_PROJECT).
            app = AppContext(ctx.find_root().params.get("project_dir"))
            try:
                return [CompletionItem(value, help=help or None) for value, help in fetch(app.project)]
            finally:
                app.close()
    except (Exception, _TooSlow):  # noqa: BLE001 - completion must never show an error in the middle of typing
        return []


def processes(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """FAMILY and FAMILY:VARIANT (for ``start``)."""
    from flowrun.app.completions import process_targets

    return _items(ctx, lambda p: process_targets(p, incomplete))


def families(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Process families (for ``compare``, ``plan`` and ``--process``)."""
    from flowrun.app.completions import process_targets

    return _items(ctx, lambda p: process_targets(p, incomplete, with_variants=False))


def variants(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The variants of the family given so far (as the FAMILY argument or ``--process``), else of all."""
    from flowrun.app.completions import variants as of

    family = ctx.params.get("family")
    return _items(ctx, lambda p: of(p, family if isinstance(family, str) else None, incomplete))


def task_refs(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The refs of open user tasks."""
    from flowrun.app.completions import open_task_refs

    return _items(ctx, lambda p: open_task_refs(p, incomplete))


def instances(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Instance short ids and business keys."""
    from flowrun.app.completions import instance_names

    return _items(ctx, lambda p: instance_names(p, incomplete))


def messages(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Message names from the diagrams (signal names once ``--signal`` is given)."""
    from flowrun.app.completions import message_names

    kind = "signal" if ctx.params.get("as_signal") else "message"
    return _items(ctx, lambda p: message_names(p, incomplete, kind))
