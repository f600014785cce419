"""Loops that never wait: the step limit of one engine step, and the error that names a runaway loop's elements.

A process that loops without waiting for anyone (no user task, timer, message or
service job in the loop) is stopped after :func:`max_steps` automated steps in
one engine step, or when the step's CPU time (the sandbox's limit) runs out
first; either way the error names the elements the loop goes through.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flowrun.engine import sandbox
from flowrun.errors import ScriptError

#: Automated steps (scripts, gateways, events, service tasks) one engine step may run before the
#: process is taken to loop without end; ``FLOWRUN_MAX_STEPS`` sets another limit.
MAX_STEPS = 50_000


def max_steps(environ: Mapping[str, str] | None = None) -> int:
    """The step limit: ``FLOWRUN_MAX_STEPS`` when it is a positive whole number, else :data:`MAX_STEPS`."""
    text = (os.environ if environ is None else environ).get("FLOWRUN_MAX_STEPS", "").strip()
    try:
        value = int(text) if text.isdigit() else 0
    except ValueError:  # more digits than Python converts
        value = 0
    return value if value > 0 else MAX_STEPS


#: Automated steps after which a step that runs out of CPU time is reported as a long loop.
LONG_STEP = 1_000


def timed_out(exc: BaseException) -> bool:
    """True when ``exc`` was caused (at any depth) by the sandbox's CPU limit."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, sandbox.ScriptTimeout):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def runaway(what: str, task: Any, setting: str) -> ScriptError:
    """The error for a process that loops without waiting for anyone, naming the loop's elements."""
    return ScriptError(
        f"the process {what} without waiting for anyone, looping through {loop_of(task)}; it loops without "
        f"end - check the loop's conditions in the diagram (for a loop this long on purpose, raise {setting})"
    )


def loop_of(task: Any, looked_at: int = 200) -> str:
    """The elements a runaway loop goes through: the ones run just before ``task``, in the order of a round."""
    seen: dict[str, None] = {}
    current = task
    for _ in range(looked_at):
        if current is None:
            break
        spec = current.task_spec
        if getattr(spec, "bpmn_id", None) and not spec.bpmn_id.startswith("flowrun_"):
            label = f'{spec.bpmn_id} ("{spec.bpmn_name}")' if spec.bpmn_name else spec.bpmn_id
            seen.setdefault(label, None)
        current = current.parent
    names = list(reversed(seen))
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "") if names else str(task.task_spec.name)
