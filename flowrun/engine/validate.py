"""Check a BPMN or DMN file without running it, reporting every problem at once.

:func:`check_file` reads the file safely, validates it against the BPMN 2.0
schema SpiffWorkflow ships, checks its structure (ids, flows, supported
elements), compiles every condition and script in the sandbox, parses every
timer, resolves forms, service topics, called processes and decisions, and
finally tries to load it as flowrun would before running it. Each finding is a
located :class:`~flowrun.models.Problem`; nothing is raised.

Forms are checked through a callback (``check_form``) because the engine does
not import :mod:`flowrun.forms`; the use case passes one in.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from flowrun.engine import sandbox
from flowrun.engine.xml import parse_bytes, read_bytes
from flowrun.errors import FlowrunError, FormError, ModelError
from flowrun.models import Problem

#: Raises :class:`FormError` when a user task's form reference does not resolve to a valid form.
FormCheck = Callable[[Mapping[str, Any]], object]

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
_NS = {"bpmn": BPMN_NS, "camunda": CAMUNDA_NS}
_B = "{" + BPMN_NS + "}"
_OMG = "{http://www.omg.org/spec/"
_C = "{" + CAMUNDA_NS + "}"

#: Every kind of BPMN flow node; those flowrun's parser has no class for are unsupported.
FLOW_NODES = (
    "startEvent endEvent intermediateCatchEvent intermediateThrowEvent boundaryEvent task userTask manualTask "
    "serviceTask scriptTask businessRuleTask sendTask receiveTask callActivity subProcess transaction "
    "adHocSubProcess exclusiveGateway inclusiveGateway parallelGateway eventBasedGateway complexGateway"
).split()
_MAX_SCHEMA_PROBLEMS = 30
_ISO_LIKE = re.compile(r"(P[\dT][\w.,]*|R\d*/\S*|\d{4}-\d\d\S*)", re.IGNORECASE)
_PYTHON_FORMATS = ("", "python", "python3", "py", "text/x-python")


@dataclass
class _Context:
    """What every check of one file needs."""

    path: Path
    display: str
    search_dir: Path
    root: Any
    known_topics: set[str] | None
    check_form: FormCheck | None
    problems: list[Problem]

    def add(self, node: Any, message: str, fix: str, severity: str = "error", line: int | None = None) -> None:
        """Record a problem at ``node`` (its line, id and name)."""
        element = _owner(node)
        self.problems.append(
            Problem(
                file=self.display,
                line=line or _line(node) or None,
                element=element.get("id") if element is not None else None,
                name=_clean(element.get("name")) if element is not None else None,
                message=message,
                fix=fix,
                severity=severity,
            )
        )


def check_file(
    path: Path,
    display: str,
    search_dir: Path | None = None,
    *,
    known_topics: set[str] | None = None,
    check_form: FormCheck | None = None,
) -> list[Problem]:
    """Every problem of the BPMN or DMN file at ``path``, in file order; never raises.

    Args:
        path: the file to check.
        display: how to name the file in problems (relative to the project).
        search_dir: folder whose other files may provide called processes and
            decisions; defaults to the file's own folder.
        known_topics: service topics that have a handler; None skips that check.
        check_form: resolves a user task's form reference, raising
            :class:`FormError`; None skips the form check.
    """
    data = b""
    try:
        data = read_bytes(path, display)
        tree = parse_bytes(data, display)
    except ModelError as exc:
        problem = _from_model_error(exc, display)
        marker = data.find(b"<!DOCTYPE") if b"<!DOCTYPE" in data else data.find(b"<!ENTITY")
        if problem.line is None and marker >= 0:  # name the line, so the designer finds it
            problem = replace(problem, line=data[:marker].count(b"\n") + 1)
        return [problem]
    except Exception as exc:  # noqa: BLE001 - a validator reports, it never crashes
        return [_unexpected(display, exc)]
    root = tree.getroot()
    ctx = _Context(path, display, search_dir or path.parent, root, known_topics, check_form, [])
    if _namespace(root.tag).startswith(("https://www.omg.org/spec/DMN/", "http://www.omg.org/spec/DMN/")):
        stages: tuple[Callable[[_Context], None], ...] = (_check_dmn,)
    elif root.tag != _B + "definitions":
        ctx.add(
            root,
            f"not a BPMN 2.0 file: the root element is <{_local(root.tag)}> in namespace "
            f"'{_namespace(root.tag) or 'none'}'",
            f'save the diagram from a BPMN modeler; the root must be <bpmn:definitions xmlns:bpmn="{BPMN_NS}">',
        )
        return ctx.problems
    else:
        stages = (_check_schema, _check_ids, _check_flows, _check_elements, _check_code, _check_timers)
        stages += (_check_tasks, _check_calls, _check_loading)
    for stage in stages:
        try:
            stage(ctx)
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            ctx.problems.append(_unexpected(display, exc))
    return sorted(ctx.problems, key=lambda p: (p.file != display, p.line or 0))


# -- the BPMN schema ---------------------------------------------------------------


@lru_cache(maxsize=1)
def _schema() -> Any:
    from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator

    return BpmnValidator().validator


def _check_schema(ctx: _Context) -> None:
    """Every violation of the BPMN 2.0 XSD, not just the first."""
    schema = _schema()
    if schema.validate(ctx.root.getroottree()):
        return
    prefixes = {uri: prefix for prefix, uri in ctx.root.nsmap.items() if prefix}
    duplicated = _duplicated_ids(ctx.root)
    seen: set[tuple[int, str]] = set()
    count = 0
    for entry in schema.error_log:
        if _reported_elsewhere(entry.message, duplicated):
            continue
        if (entry.line, entry.message) in seen:
            continue
        seen.add((entry.line, entry.message))
        count += 1
        if count > _MAX_SCHEMA_PROBLEMS:
            continue
        node = _node_at(ctx.root, entry.path, entry.line)
        message, fix, harmless = _explain_schema(entry.message, prefixes)
        ctx.add(node, message, fix, "warning" if harmless else "error", line=entry.line)
    if count > _MAX_SCHEMA_PROBLEMS:
        ctx.add(
            ctx.root,
            f"{count - _MAX_SCHEMA_PROBLEMS} more BPMN 2.0 schema problems are not listed",
            "fix the ones above first, or save the diagram again from the modeler",
        )


def _reported_elsewhere(message: str, duplicated: set[str]) -> bool:
    """Schema messages that :func:`_check_ids` and :func:`_check_flows` report with more detail."""
    if "xs:ID'" in message and any(f"'{d}' is not" in message for d in duplicated):
        return True
    return "sequenceFlow'" in message and ("'sourceRef' is required" in message or "'targetRef' is required" in message)


def _explain_schema(raw: str, prefixes: dict[str, str]) -> tuple[str, str, bool]:
    """(message, fix, harmless) for one libxml2 schema message; harmless ones concern the drawing or vendors."""
    found = re.match(r"Element '(?:\{([^}]*)\})?([^']*)'(?:, attribute '([^']*)')?: (.*)", raw.strip(), re.DOTALL)
    if found is None:
        return f"does not fit the BPMN 2.0 schema: {raw.strip()}", _SCHEMA_FIX, False
    uri, tag, attribute, detail = found.groups()

    def short(match: re.Match[str]) -> str:
        prefix = "bpmn" if match.group(1) == BPMN_NS else prefixes.get(match.group(1))
        return f"{prefix}:{match.group(2)}" if prefix else match.group(0)

    detail = re.sub(r"\{([^}]*)\}([\w.-]+)", short, detail.strip().rstrip("."))
    if "xs:ID'" in detail:
        value = detail.split("'")[1] if "'" in detail else ""
        return (
            f"the id '{value}' is not a valid XML id, so the file does not fit the BPMN 2.0 schema",
            "ids must start with a letter or '_' and hold only letters, digits, '-', '_' and '.'; "
            "rename it in the modeler's properties panel",
            False,
        )
    prefix = "bpmn" if uri == BPMN_NS else prefixes.get(uri or "")
    element = f"<{prefix}:{tag}>" if prefix else f"<{tag}>"
    where = element + (f" (attribute {attribute})" if attribute else "")
    message = f"does not fit the BPMN 2.0 schema: {where}: {detail[:1].lower()}{detail[1:]}"
    if uri and uri != BPMN_NS:
        return message, _HARMLESS_FIX, True
    if "not expected" in detail:
        return message, "the element is misplaced or out of order; save the diagram again from the modeler", False
    if "required but missing" in detail or "Missing child" in detail:
        return message, "add what is missing in the modeler, or save the diagram again from the modeler", False
    return message, _SCHEMA_FIX, False


_SCHEMA_FIX = "correct the XML by hand or save the diagram again from a BPMN 2.0 modeler"
_HARMLESS_FIX = (
    "this detail of the drawing or vendor extension is ignored by flowrun, but other BPMN tools may reject "
    "the file; save it again from the modeler or remove it"
)


def _node_at(root: Any, path: str | None, line: int | None) -> Any:
    if path:
        try:
            found = root.getroottree().xpath(path, namespaces={k: v for k, v in root.nsmap.items() if k})
            if found and hasattr(found[0], "tag"):
                return found[0]
        except Exception:  # noqa: BLE001, S110 - libxml2 paths may use prefixes the file lacks
            pass
    for node in root.iter():
        if isinstance(node.tag, str) and node.sourceline == line:
            return node
    return root


# -- structure -----------------------------------------------------------------


def _identified(root: Any) -> Iterator[tuple[str, Any]]:
    """(id, element) of the BPMN and diagram elements; vendors' extension elements have ids of their own."""
    for node in root.iter():
        if isinstance(node.tag, str) and node.tag.startswith(_OMG) and node.get("id") is not None:
            yield node.get("id"), node


def _duplicated_ids(root: Any) -> set[str]:
    seen: set[str] = set()
    dup: set[str] = set()
    for ident, _ in _identified(root):
        (dup if ident in seen else seen).add(ident)
    return dup


def _check_ids(ctx: _Context) -> None:
    """Each id used twice, reported at every later use with the line of the first."""
    first: dict[str, Any] = {}
    for ident, node in _identified(ctx.root):
        if ident not in first:
            first[ident] = node
            continue
        earlier = first[ident]
        ctx.add(
            node,
            f'the id "{ident}" is already used by the {_local(earlier.tag)} on line {_line(earlier)}',
            "give each element its own id in the modeler's properties panel",
        )


def _check_flows(ctx: _Context) -> None:
    """Sequence flows whose source or target is missing; processes without a start event."""
    ids = {n.get("id") for n in ctx.root.iter() if isinstance(n.tag, str) and n.get("id")}
    for flow in ctx.root.iter(_B + "sequenceFlow"):
        for attr in ("sourceRef", "targetRef"):
            ref = flow.get(attr)
            end = "source" if attr == "sourceRef" else "target"
            if not ref:
                ctx.add(flow, f"the sequence flow has no {attr}", f"connect its {end} in the modeler")
            elif ref not in ids:
                ctx.add(
                    flow,
                    f'the sequence flow\'s {attr} "{ref}" names no element of the file',
                    f"reconnect the flow's {end} in the modeler, or draw the missing element",
                )
    _check_gateways(ctx)
    for process in ctx.root.iter(_B + "process"):
        if process.get("isExecutable") == "false":
            continue
        if process.find(_B + "startEvent") is None and _flow_nodes(process):
            ctx.add(
                process,
                "the process has no start event, so flowrun starts it at the elements no flow leads to",
                "draw a start event to make the start explicit",
                "warning",
            )


def _check_gateways(ctx: _Context) -> None:
    """Every flow out of an exclusive or inclusive gateway has a condition or is its default."""
    outgoing: dict[str, list[Any]] = {}
    for flow in ctx.root.iter(_B + "sequenceFlow"):
        outgoing.setdefault(flow.get("sourceRef") or "", []).append(flow)
    for tag in ("exclusiveGateway", "inclusiveGateway"):
        for gateway in ctx.root.iter(_B + tag):
            flows = outgoing.get(gateway.get("id") or "", [])
            if len(flows) < 2:
                continue
            for flow in flows:
                condition = flow.find(_B + "conditionExpression")
                if flow.get("id") != gateway.get("default") and not (condition is not None and condition.text):
                    ctx.add(
                        flow,
                        f'the flow out of the gateway "{gateway.get("id")}" has no condition and is not its default',
                        "add a condition to the flow, or make it the gateway's default flow",
                    )


def _flow_nodes(container: Any) -> list[Any]:
    return [n for n in container if isinstance(n.tag, str) and n.tag.startswith(_B) and _local(n.tag) in FLOW_NODES]


def _check_elements(ctx: _Context) -> None:
    """Flow nodes flowrun cannot run, and SpiffArena scripts it would not run."""
    from flowrun.engine._parser import FlowrunParser

    known = {_local(t) for t in (*FlowrunParser.PARSER_CLASSES, *FlowrunParser.OVERRIDE_PARSER_CLASSES)}
    for node in ctx.root.iter():
        if not isinstance(node.tag, str):
            continue
        local = _local(node.tag)
        if node.tag.startswith(_B) and local in FLOW_NODES and local not in known:
            ctx.add(
                node,
                f"a {local} is not supported by flowrun",
                "replace it with an exclusive, inclusive or parallel gateway"
                if local.endswith("Gateway")
                else "replace it with a supported element",
            )
        if local in ("preScript", "postScript") and (node.text or "").strip():
            ctx.add(
                node,
                f"the SpiffArena {local} is not run by flowrun",
                "move the code into a script task before or after this task",
                "warning",
            )


# -- conditions, scripts and timers ------------------------------------------------


def _check_code(ctx: _Context) -> None:
    """Conditions compile as sandboxed expressions, scripts as sandboxed scripts."""
    for tag in ("conditionExpression", "condition", "completionCondition"):
        for node in ctx.root.iter(_B + tag):
            text = (node.text or "").strip()
            if text:
                _check_expression(ctx, node, text, "condition")
    for task in ctx.root.iter(_B + "scriptTask"):
        _check_script(ctx, task)


def _check_expression(ctx: _Context, node: Any, text: str, what: str) -> None:
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
            f"the {what} `{_short(text)}` {reason}: {_sandbox_reasons(exc)[0]}",
            "rewrite it in Python over the task data, e.g. amount > 100",
            line=_line(node) + (exc.line or 1) - 1,
        )
        return
    if other:
        ctx.add(
            node,
            f"the {what} `{_short(text)}` is declared as {other}, but flowrun evaluates it as Python",
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


def _python(ctx: _Context, node: Any, text: str, what: str) -> str | None:
    """``text`` as Python: Camunda ``${...}`` expressions are translated when flowrun can, else reported."""
    if "${" not in text and "#{" not in text:
        return text
    translate = _el_translate()
    if translate is not None:
        try:
            return str(translate(text))
        except Exception as exc:  # noqa: BLE001 - any failure of the translation is the diagram's
            ctx.add(node, f"the Camunda expression `{_short(text)}` cannot be translated: {exc}", _python_fix(text))
            return None
    ctx.add(
        node, f"the {what} `{_short(text)}` is a Camunda expression, which flowrun cannot evaluate", _python_fix(text)
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


def _check_script(ctx: _Context, task: Any) -> None:
    """A script task has a script, and it compiles in the sandbox."""
    script = task.find(_B + "script")
    other = _language(task.get("scriptFormat"))
    text = script.text if script is not None else None
    if not (text or "").strip():
        resource = task.get(_C + "resource")
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
            line=_line(script) + (exc.line or 1) - 1,
        )
        return
    if other:
        ctx.add(
            task,
            f"the script's format is {other}, but flowrun runs it as Python",
            'check it is Python and set scriptFormat="python"',
            "warning",
        )


def _check_timers(ctx: _Context) -> None:
    """Timer dates, durations and cycles are valid ISO 8601 or compile as expressions."""
    for definition in ctx.root.iter(_B + "timerEventDefinition"):
        kinds = [
            c
            for c in definition
            if isinstance(c.tag, str) and _local(c.tag) in ("timeDate", "timeDuration", "timeCycle")
        ]
        if not kinds or not any((c.text or "").strip() for c in kinds):
            ctx.add(
                definition, "the timer has no date, duration or cycle", "set one in the modeler, e.g. duration PT4H"
            )
            continue
        for child in kinds:
            text = (child.text or "").strip()
            problem = _timer_problem(_local(child.tag), text)
            if problem is None and ("${" in text or not _iso_text(text)):
                source = _python(ctx, child, text, "timer expression")
                if source is not None:
                    try:
                        sandbox.compile_expression(source)
                    except sandbox.SandboxError as exc:
                        problem = f"is neither ISO 8601 nor a valid Python expression ({_sandbox_reasons(exc)[0]})"
            if problem:
                ctx.add(
                    child, f"the timer {_local(child.tag)} `{_short(text)}` {problem}", _timer_fix(_local(child.tag))
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
    except Exception:  # noqa: BLE001 - SpiffWorkflow raises bare Exception and ValueError alike
        return f"is not a valid ISO 8601 {'repeating interval' if kind == 'timeCycle' else kind[4:].lower()}"
    return None


def _timer_fix(kind: str) -> str:
    example = {"timeDate": "2026-03-02T09:00:00Z", "timeDuration": "PT4H (4 hours) or P2D (2 days)"}
    return f"write it as ISO 8601, e.g. {example.get(kind, 'R3/PT1H (3 times, hourly)')}, or as a Python expression"


# -- forms, services, calls and decisions ----------------------------------------


def _check_tasks(ctx: _Context) -> None:
    """User tasks' forms resolve; service tasks name a handler that is registered."""
    if ctx.check_form is not None:
        for task in ctx.root.iter(_B + "userTask"):
            ref = _form_ref(task)
            if ref is None:
                continue
            try:
                ctx.check_form(ref)
            except FormError as exc:
                message, fix = _split(str(exc), "create the form in forms/ or fix the form key in the diagram")
                ctx.add(task, message, fix)
    for task in ctx.root.iter(_B + "serviceTask"):
        topic = _topic(task)
        if not topic:
            ctx.add(
                task,
                "the service task names no handler",
                'set camunda:topic (with camunda:type="external") or a SpiffArena serviceTaskOperator',
            )
        elif ctx.known_topics is not None and topic not in ctx.known_topics:
            known = ", ".join(sorted(ctx.known_topics)) or "none"
            ctx.add(
                task,
                f"no handler is registered for the service topic '{topic}' (known: {known})",
                f"add '{topic}: module:function' under 'services:' in flowrun.yaml, or fix the topic in the diagram",
            )


def _form_ref(task: Any) -> dict[str, Any] | None:
    """The task's form reference, read the way flowrun's parser reads it."""
    from flowrun.engine._parser import _camunda_field, _spiff_extensions

    fields = task.xpath(".//camunda:formData/camunda:formField", namespaces=_NS)
    if fields:
        return {"fields": [_camunda_field(f) for f in fields], "key": task.get(_C + "formKey")}
    key = task.get(_C + "formKey")
    if key:
        return {"key": key}
    key = (_spiff_extensions(task).get("properties") or {}).get("formJsonSchemaFilename")
    return {"key": key} if key else None


def _topic(task: Any) -> str | None:
    """The handler a service task names, read the way flowrun's parser reads it."""
    from flowrun.engine._parser import _spiff_extensions

    topic = task.get(_C + "topic") if task.get(_C + "type") == "external" else None
    for attr in ("class", "expression", "delegateExpression"):
        topic = topic or task.get(_C + attr)
    operator = _spiff_extensions(task).get("serviceTaskOperator") or {}
    return topic or operator.get("name") or None


def _check_calls(ctx: _Context) -> None:
    """Called processes and decisions exist in this file or the other files of the folder."""
    own = {p.get("id") for p in ctx.root.iter(_B + "process")}
    index = _folder_index(ctx.search_dir, ctx.path)
    folder = _folder_name(ctx)
    for call in ctx.root.iter(_B + "callActivity"):
        called = call.get("calledElement")
        if not called:
            ctx.add(call, "the call activity names no process to call", "set its Called element to a process id")
        elif "${" in called:
            ctx.add(call, f"the called process `{called}` is decided at run time", "name a fixed process id")
        elif called not in own and called not in index.processes:
            known = ", ".join(sorted(own | set(index.processes))[:10]) or "none"
            ctx.add(
                call,
                f'calls the process "{called}", which is in neither this file nor the other files of {folder}',
                f"add a file defining it to {folder}, or fix the Called element (processes found: {known})",
            )
    from flowrun.engine._parser import DecisionTaskParser

    for task in ctx.root.iter(_B + "businessRuleTask"):
        ref = DecisionTaskParser.get_decision_ref(task)
        if not ref:
            ctx.add(
                task,
                "the business rule task names no decision",
                "set camunda:decisionRef (Camunda Modeler: Implementation = DMN) to the id of a decision",
            )
        elif ref not in index.decisions:
            known = ", ".join(sorted(d for d, first in index.decisions.items() if first)[:10]) or "none"
            ctx.add(
                task,
                f'the decision "{ref}" is not in any .dmn file of {folder}',
                f"add the DMN file to {folder}, or fix the decision id (decisions found: {known})",
            )
        elif not index.decisions[ref]:
            ctx.add(
                task,
                f'the decision "{ref}" is not the first decision of its .dmn file, and flowrun reads only the first',
                "move the decision into a .dmn file of its own",
            )


@dataclass(frozen=True)
class _Index:
    processes: frozenset[str]
    decisions: Mapping[str, bool]  # decision id -> is it the first of its file


def _folder_index(folder: Path, exclude: Path) -> _Index:
    try:
        files = sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and (p.suffix.lower() in (".bpmn", ".dmn") or p.name.endswith(".bpmn20.xml"))
        )
    except OSError:
        files = []
    processes: set[str] = set()
    decisions: dict[str, bool] = {}
    for p in files:
        if p.resolve() == exclude.resolve():
            continue
        stat = p.stat()
        procs, decs = _ids_of(p, stat.st_mtime_ns, stat.st_size)
        processes |= procs
        for i, d in enumerate(decs):
            decisions.setdefault(d, i == 0)
    return _Index(frozenset(processes), decisions)


@lru_cache(maxsize=1024)
def _ids_of(path: Path, mtime: int, size: int) -> tuple[frozenset[str], tuple[str, ...]]:
    """Process ids and decision ids (in file order) of one file; empty if it cannot be read."""
    try:
        root = parse_bytes(read_bytes(path, path.name), path.name).getroot()
    except ModelError:
        return frozenset(), ()
    procs = frozenset(str(i) for i in root.xpath("//*[local-name()='process']/@id"))
    decs = tuple(str(i) for i in root.xpath("/*/*[local-name()='decision']/@id"))
    return procs, decs


def _folder_name(ctx: _Context) -> str:
    """The search folder as the user knows it: as the file's display names it, when it is the file's folder."""
    if ctx.search_dir.resolve() == ctx.path.parent.resolve():
        parent = Path(ctx.display).parent.as_posix()
        return "its folder" if parent == "." else f"{parent}/"
    return f"{ctx.search_dir.name}/"


# -- DMN -------------------------------------------------------------------------


def _check_dmn(ctx: _Context) -> None:
    """A DMN file parses with SpiffWorkflow's DMN parser and has a decision table."""
    from SpiffWorkflow.exceptions import SpiffWorkflowException

    from flowrun.engine._parser import FlowrunParser

    decisions = ctx.root.xpath("/*/*[local-name()='decision']")
    if not decisions:
        ctx.add(ctx.root, "the DMN file defines no decision", "draw a decision table in the DMN modeler")
        return
    if len(decisions) > 1:
        names = ", ".join(str(d.get("id")) for d in decisions)
        ctx.add(
            decisions[1],
            f"the file has {len(decisions)} decisions ({_short(names)}), and flowrun reads one decision per file",
            "move each decision into a .dmn file of its own",
        )
        return
    try:
        parser = FlowrunParser()
        parser.add_dmn_xml(ctx.root, filename=ctx.display)
        dmn = next(iter(parser.dmn_parsers.values()))
        dmn.parse()
        if not dmn.decision.decisionTables:
            ctx.add(decisions[0], "the decision has no decision table", "flowrun runs decision tables; draw one")
    except (SpiffWorkflowException, KeyError, ValueError, AttributeError, TypeError, IndexError, SyntaxError) as exc:
        node = ctx.root
        ident = getattr(exc, "id", "")
        if ident:
            node = next(iter(ctx.root.xpath("//*[@id=$i]", i=ident)), ctx.root)
        text = str(exc).split("\n")[0] or exc.__class__.__name__
        if isinstance(exc, KeyError):
            text = f"missing attribute {text}"
        message, fix = _split(text, "fix the decision in the DMN modeler")
        ctx.add(node, f"the DMN cannot be parsed: {message}", fix)


# -- loading -----------------------------------------------------------------------


def _check_loading(ctx: _Context) -> None:
    """Load the file as ``flowrun start`` would; report what the checks above did not already."""
    from flowrun.engine.loader import load_model

    errors = [p for p in ctx.problems if p.severity == "error"]
    try:
        info = load_model(ctx.path, ctx.display, ctx.search_dir)
    except ModelError as exc:
        found = _from_model_error(exc, ctx.display)
        if any(_same_place(found, p) or _same_subject(found, p) for p in errors):
            return
        ctx.problems[:] = [p for p in ctx.problems if not (p.severity == "warning" and _same_place(found, p))]
        ctx.problems.append(found)
    except FlowrunError as exc:
        ctx.problems.append(Problem(ctx.display, None, None, None, *_split(str(exc), ""), severity="error"))
    except Exception as exc:  # noqa: BLE001 - SpiffWorkflow may fail in any way on a broken file
        if not errors:
            ctx.problems.append(_unexpected(ctx.display, exc))
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


def _from_model_error(exc: ModelError, display: str) -> Problem:
    element, name = exc.element, None
    if element:
        found = re.fullmatch(r'(.*?) \("(.*)"\)', element)
        if found:
            element, name = found.group(1), found.group(2)
    message, fix = _split(exc.detail, "fix the element in the modeler")
    raised = re.match(r"\w+(?:Error|Exception)\('([^']*)'", message)  # SpiffWorkflow wraps some errors in repr()
    if raised:
        message = raised.group(1).replace(": %r", "")
    if re.search(r"unsupported|not supported|no support", message, re.IGNORECASE) and not fix.startswith("replace"):
        fix = "flowrun cannot run this element; replace it with a supported one or remove it"
    message = message.strip().rstrip(".").strip()
    if fix == "fix the element in the modeler":
        fix = next((advice for needle, advice in _ADVICE.items() if needle in message), fix)
    return Problem(exc.file or display, exc.line, element, _clean(name), message, fix, "error")


def _from_warning(text: str, display: str) -> Problem:
    """A loader warning (``file:line: element ("name"): what; fix``) as a :class:`Problem`."""
    found = re.fullmatch(r'(.+?):(?:(\d+):)? (\S+)(?: \("(.*?)"\))?: (.+)', text, re.DOTALL)
    if found is None:
        return Problem(display, None, None, None, *_split(text, ""), severity="warning")
    file, line, element, name, rest = found.groups()
    message, fix = _split(rest, "")
    return Problem(file, int(line) if line else None, element, name, message, fix, "warning")


def _unexpected(display: str, exc: BaseException) -> Problem:
    return Problem(
        display,
        None,
        None,
        None,
        f"unexpected: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": "),
        "flowrun could not check this part of the file; please report it with the file",
        "error",
    )


# -- small helpers ---------------------------------------------------------------


def _split(text: str, default_fix: str) -> tuple[str, str]:
    """Split ``"what is wrong; how to fix it"`` into its two halves."""
    message, sep, fix = text.partition("; ")
    return (message, fix) if sep else (text, default_fix)


def _sandbox_reasons(exc: sandbox.SandboxError) -> tuple[str, str | None]:
    """The sandbox's reasons without their ``Line N:`` prefixes (the problem has the line), and its advice."""
    parts = str(exc).split("; ")
    reasons = [parts[0], *(p for p in parts[1:] if p.startswith("Line "))]
    advice = [p for p in parts[1:] if not p.startswith("Line ")]
    cleaned = (re.sub(r"^Line \d+: ", "", r).rstrip(". ") for r in reasons)
    return ", ".join(dict.fromkeys(cleaned)), "; ".join(advice) or None


def _owner(node: Any) -> Any:
    """The nearest element with an id: the problem is named after it."""
    for candidate in _ancestors(node):
        local = _local(candidate.tag)
        if candidate.get("id") and local not in _PARTS and not local.endswith("EventDefinition"):
            return candidate
    return None


#: Parts of an element that name the element they belong to in problems, even when they have an id.
_PARTS = frozenset(
    "definitions extensionElements conditionExpression condition completionCondition script timeDate "
    "timeDuration timeCycle multiInstanceLoopCharacteristics standardLoopCharacteristics".split()
)


def _ancestors(node: Any) -> Iterator[Any]:
    while node is not None:
        yield node
        node = node.getparent()


def _line(node: Any) -> int:
    return int(getattr(node, "sourceline", None) or 0)


def _clean(name: str | None) -> str | None:
    return " ".join(name.split()) if name and name.strip() else None


def _short(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""
