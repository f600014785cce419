"""Conditions, scripts and timers: compiled in the sandbox and parsed, without running them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from flowrun.engine import sandbox, timers
from flowrun.engine.validate._common import (
    _ISO_LIKE,
    _PYTHON_FORMATS,
    CAMUNDA_TAG,
    Context,
    _sandbox_reasons,
    line_of,
    shorten,
)
from flowrun.engine.xml import BPMN_TAG, local_name


def check_code(ctx: Context) -> None:
    """Conditions compile as sandboxed expressions, scripts as sandboxed scripts."""
    for tag in ("conditionExpression", "condition", "completionCondition"):
        for node in ctx.root.iter(BPMN_TAG + tag):
            text = (node.text or "").strip()
            if text:
                _check_expression(ctx, node, text, "condition")
    for task in ctx.root.iter(BPMN_TAG + "scriptTask"):
        _check_script(ctx, task)


def _check_expression(ctx: Context, node: Any, text: str, what: str) -> None:
    """A condition compiles in the sandbox; one declared in another language is reported as such."""
    other = _language(node.get("language"))
    source = _python(ctx, node, text, what)
    if source is None:
        return
    try:
        sandbox.compile_expression(source)
    except sandbox.SandboxError as exc:
        reason = f"is written in {other}" if other else "is not a valid Python expression"
        ctx.add(
            node,
            f"the {what} `{shorten(text)}` {reason}: {_sandbox_reasons(exc)[0]}",
            "rewrite it in Python over the task data, e.g. amount > 100",
            line=line_of(node) + (exc.line or 1) - 1,
        )
        return
    if other:
        ctx.add(
            node,
            f"the {what} `{shorten(text)}` is declared as {other}, but flowrun evaluates it as Python",
            'check it means the same in Python, and set language="python" or remove the language',
            "warning",
        )


def _language(declared: str | None) -> str | None:
    """A short name for a declared expression or script language other than Python (None for Python)."""
    text = (declared or "").strip().rstrip("/")
    if text.lower() in _PYTHON_FORMATS:
        return None
    if "/DMN/" in text.upper() or text.lower().endswith("feel"):
        return "FEEL"
    return text.rsplit("/", 1)[-1]


def _python(ctx: Context, node: Any, text: str, what: str) -> str | None:
    """``text`` as Python: Camunda ``${...}`` expressions are translated when flowrun can, else reported."""
    if "${" not in text and "#{" not in text:
        return text
    translate = _el_translate()
    if translate is not None:
        try:
            return str(translate(text))
        except Exception as exc:  # noqa: BLE001 - any failure of the translation is the diagram's
            ctx.add(node, f"the Camunda expression `{shorten(text)}` cannot be translated: {exc}", _python_fix(text))
            return None
    ctx.add(
        node, f"the {what} `{shorten(text)}` is a Camunda expression, which flowrun cannot evaluate", _python_fix(text)
    )
    return None


def _python_fix(text: str) -> str:
    inner = text.strip()
    if inner.startswith(("${", "#{")) and inner.endswith("}"):
        inner = inner[2:-1].strip()
    inner = " ".join(inner.replace("&&", " and ").replace("||", " or ").split())
    return f"write it in Python over the task data, e.g. {inner}"


def _el_translate() -> Callable[[str], Any] | None:
    try:
        module = importlib.import_module("flowrun.engine.el")
    except ImportError:
        return None
    translate = getattr(module, "translate", None)
    return translate if callable(translate) else None


def _check_script(ctx: Context, task: Any) -> None:
    """A script task has a script, and it compiles in the sandbox."""
    script = task.find(BPMN_TAG + "script")
    other = _language(task.get("scriptFormat"))
    text = script.text if script is not None else None
    if not (text or "").strip():
        resource = task.get(CAMUNDA_TAG + "resource")
        where = f"it names the external script {resource}, which flowrun does not load" if resource else "it is empty"
        ctx.add(task, f"the script task has no script ({where})", "write the Python script in the properties panel")
        return
    try:
        sandbox.compile_script(text or "")
    except sandbox.SandboxError as exc:
        reason, advice = _sandbox_reasons(exc)
        ctx.add(
            task,
            f"the script is written in {other}: {reason}" if other else f"the script is refused: {reason}",
            advice or "scripts are Python over the task data, without imports or names starting with '_'",
            line=line_of(script) + (exc.line or 1) - 1,
        )
        return
    if other:
        ctx.add(
            task,
            f"the script's format is {other}, but flowrun runs it as Python",
            'check it is Python and set scriptFormat="python"',
            "warning",
        )


def check_timers(ctx: Context) -> None:
    """Timer dates, durations and cycles are valid ISO 8601 or compile as expressions."""
    for definition in ctx.root.iter(BPMN_TAG + "timerEventDefinition"):
        kinds = [
            c
            for c in definition
            if isinstance(c.tag, str) and local_name(c.tag) in ("timeDate", "timeDuration", "timeCycle")
        ]
        if not kinds or not any((c.text or "").strip() for c in kinds):
            ctx.add(
                definition, "the timer has no date, duration or cycle", "set one in the modeler, e.g. duration PT4H"
            )
            continue
        for child in kinds:
            text = (child.text or "").strip()
            problem = _timer_problem(local_name(child.tag), text)
            if problem is None and ("${" in text or not _iso_text(text)):
                source = _python(ctx, child, text, "timer expression")
                if source is not None:
                    try:
                        sandbox.compile_expression(source)
                    except sandbox.SandboxError as exc:
                        problem = f"is neither ISO 8601 nor a valid Python expression ({_sandbox_reasons(exc)[0]})"
            if problem:
                ctx.add(
                    child,
                    f"the timer {local_name(child.tag)} `{shorten(text)}` {problem}",
                    _timer_fix(local_name(child.tag)),
                )


def _iso_text(text: str) -> str | None:
    """The ISO 8601 text ``text`` means to be: a quoted literal, or bare text shaped like ISO 8601."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1].strip()
    return text if _ISO_LIKE.fullmatch(text) else None


def _timer_problem(kind: str, text: str) -> str | None:
    """Why an ISO 8601 timer text does not parse (None when it does, or is not meant as ISO 8601)."""
    from datetime import datetime

    from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition as Timer

    if "${" in text:
        return None
    iso = _iso_text(text)
    if iso is None:
        if kind == "timeCycle" and len(text.split()) >= 5:
            return "is a cron expression, which flowrun does not support"
        return None
    try:
        if kind == "timeCycle":
            Timer.parse_iso_recurring_interval(iso)
        elif kind == "timeDuration":
            if not iso.upper().startswith("P"):
                return "is not an ISO 8601 duration"
            Timer.parse_iso_duration(iso)
        elif not isinstance(Timer.parse_time_or_duration(iso), datetime):
            return "is not an ISO 8601 date and time"
    except timers.TimerValueError as exc:
        return f"is refused: {exc}"
    except Exception:  # noqa: BLE001 - SpiffWorkflow raises bare Exception and ValueError alike
        return f"is not a valid ISO 8601 {'repeating interval' if kind == 'timeCycle' else kind[4:].lower()}"
    return None


def _timer_fix(kind: str) -> str:
    example = {"timeDate": "2026-03-02T09:00:00Z", "timeDuration": "PT4H (4 hours) or P2D (2 days)"}
    return f"write it as ISO 8601, e.g. {example.get(kind, 'R3/PT1H (3 times, hourly)')}, or as a Python expression"
