"""The last stage: load the file as flowrun would before running it, and report what that finds."""

from __future__ import annotations

import re

from flowrun.engine.validate._common import Context, clean_name, split_fix
from flowrun.errors import FlowrunError, ModelError
from flowrun.models import Problem


def check_loading(ctx: Context) -> None:
    """Load the file as ``flowrun start`` would; report what the checks above did not already."""
    from flowrun.engine.loader import load_model

    errors = [p for p in ctx.problems if p.severity == "error"]
    try:
        info = load_model(ctx.path, ctx.display, ctx.search_dir)
    except ModelError as exc:
        found = from_model_error(exc, ctx.display)
        if any(_same_place(found, p) or _same_subject(found, p) for p in errors):
            return
        ctx.problems[:] = [p for p in ctx.problems if not (p.severity == "warning" and _same_place(found, p))]
        ctx.problems.append(found)
    except FlowrunError as exc:
        ctx.problems.append(Problem(ctx.display, None, None, None, *split_fix(str(exc), ""), severity="error"))
    except Exception as exc:  # noqa: BLE001 - SpiffWorkflow may fail in any way on a broken file
        if not errors:
            ctx.problems.append(unexpected_problem(ctx.display, exc))
    else:
        seen = {str(p) for p in ctx.problems}
        for text in getattr(info, "warnings", ()):
            warning = _from_warning(str(text), ctx.display)
            if str(warning) not in seen:
                ctx.problems.append(warning)


def _same_place(a: Problem, b: Problem) -> bool:
    if a.file != b.file:
        return False
    return (a.element is not None and a.element == b.element) or (a.line is not None and a.line == b.line)


def _same_subject(a: Problem, b: Problem) -> bool:
    """Whether an unlocated problem quotes an id that a located one already reports (a missing process)."""
    if a.line is not None or a.file != b.file:
        return False
    quoted = set(re.findall(r"""['"]([^'"]+)['"]""", a.message))
    return any(f'"{q}"' in b.message for q in quoted)


#: Fixes for the engine's messages that come without one.
_ADVICE = {
    "without condition": "add a condition to the flow, or make it the gateway's default flow",
    "cardinality or a collection": "set the loop cardinality or the input collection of the multi-instance task",
    "loopMaximum or loopCondition": "set a loop maximum or a loop condition",
    "start event is required": "draw exactly one start event in the subprocess",
    "Must contain an End event": "draw an end event in the subprocess",
}


def from_model_error(exc: ModelError, display: str) -> Problem:
    element, name = exc.element, None
    if element:
        found = re.fullmatch(r'(.*?) \("(.*)"\)', element)
        if found:
            element, name = found.group(1), found.group(2)
    message, fix = split_fix(exc.detail, "fix the element in the modeler")
    raised = re.match(r"\w+(?:Error|Exception)\('([^']*)'", message)  # SpiffWorkflow wraps some errors in repr()
    if raised:
        message = raised.group(1).replace(": %r", "")
    if re.search(r"unsupported|not supported|no support", message, re.IGNORECASE) and not fix.startswith("replace"):
        fix = "flowrun cannot run this element; replace it with a supported one or remove it"
    message = message.strip().rstrip(".").strip()
    if fix == "fix the element in the modeler":
        fix = next((advice for needle, advice in _ADVICE.items() if needle in message), fix)
    return Problem(exc.file or display, exc.line, element, clean_name(name), message, fix, "error")


def _from_warning(text: str, display: str) -> Problem:
    """A loader warning (``file:line: element ("name"): what; fix``) as a :class:`Problem`."""
    found = re.fullmatch(r'(.+?):(?:(\d+):)? (\S+)(?: \("(.*?)"\))?: (.+)', text, re.DOTALL)
    if found is None:
        return Problem(display, None, None, None, *split_fix(text, ""), severity="warning")
    file, line, element, name, rest = found.groups()
    message, fix = split_fix(rest, "")
    return Problem(file, int(line) if line else None, element, name, message, fix, "warning")


def unexpected_problem(display: str, exc: BaseException) -> Problem:
    return Problem(
        display,
        None,
        None,
        None,
        f"unexpected: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": "),
        "flowrun could not check this part of the file; please report it with the file",
        "error",
    )
