"""What a diagram refers to: forms, service topics, called processes and decisions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from flowrun.engine.loader import diagrams_in
from flowrun.engine.validate._common import CAMUNDA_TAG, NAMESPACES, Context, split_fix
from flowrun.engine.xml import BPMN_TAG, parse_bytes, read_bytes
from flowrun.errors import FormError, ModelError


def check_tasks(ctx: Context) -> None:
    """User tasks' forms resolve; service tasks name a handler that is registered."""
    if ctx.check_form is not None:
        for task in ctx.root.iter(BPMN_TAG + "userTask"):
            ref = _form_ref(task)
            if ref is None:
                continue
            try:
                ctx.check_form(ref)
            except FormError as exc:
                message, fix = split_fix(str(exc), "create the form in forms/ or fix the form key in the diagram")
                ctx.add(task, message, fix)
    for task in ctx.root.iter(BPMN_TAG + "serviceTask"):
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
    from flowrun.engine._parser import _camunda_field
    from flowrun.engine._spiff import spiff_extensions

    fields = task.xpath(".//camunda:formData/camunda:formField", namespaces=NAMESPACES)
    if fields:
        return {"fields": [_camunda_field(f) for f in fields], "key": task.get(CAMUNDA_TAG + "formKey")}
    key = task.get(CAMUNDA_TAG + "formKey")
    if key:
        return {"key": key, "attribute": "camunda:formKey"}
    key = (spiff_extensions(task).get("properties") or {}).get("formJsonSchemaFilename")
    return {"key": key, "attribute": "formJsonSchemaFilename"} if key else None


def _topic(task: Any) -> str | None:
    """The handler a service task names, read the way flowrun's parser reads it."""
    from flowrun.engine._spiff import spiff_extensions

    topic = task.get(CAMUNDA_TAG + "topic") if task.get(CAMUNDA_TAG + "type") == "external" else None
    for attr in ("class", "expression", "delegateExpression"):
        topic = topic or task.get(CAMUNDA_TAG + attr)
    operator = spiff_extensions(task).get("serviceTaskOperator") or {}
    return topic or operator.get("name") or None


def check_calls(ctx: Context) -> None:
    """Called processes and decisions exist in this file or the other files of the folder."""
    own = {p.get("id") for p in ctx.root.iter(BPMN_TAG + "process")}
    index = _folder_index(ctx.search_dir, ctx.path)
    folder = _folder_name(ctx)
    for call in ctx.root.iter(BPMN_TAG + "callActivity"):
        called = call.get("calledElement")
        if not called:
            ctx.add(call, "the call activity names no process to call", "set its Called element to a process id")
        elif "${" in called:
            ctx.add(call, f"the called process `{called}` is decided at run time", "name a fixed process id")
        elif called not in own and called not in index.processes:
            known = ", ".join(sorted(own | set(index.processes))[:10]) or "none"
            ctx.add(
                call,
                f'calls the process "{called}", which is in neither this file nor the other files of {folder}'
                + _passed_over(index),
                f"add a file defining it to {folder}, or fix the Called element (processes found: {known})",
            )
    from flowrun.engine._parser import DecisionTaskParser

    for task in ctx.root.iter(BPMN_TAG + "businessRuleTask"):
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
                f'the decision "{ref}" is not in any .dmn file of {folder}' + _passed_over(index),
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
    passed_over: tuple[str, ...] = ()  # links that lead out of the folder, not read


def _passed_over(index: _Index) -> str:
    if not index.passed_over:
        return ""
    names = ", ".join(index.passed_over[:5])
    return f" ({names}: symbolic links that lead out of the folder, which flowrun does not follow)"


def _folder_index(folder: Path, exclude: Path) -> _Index:
    processes: set[str] = set()
    decisions: dict[str, bool] = {}
    passed_over: list[str] = []
    for p in diagrams_in(folder, passed_over):
        if p == exclude.resolve():
            continue
        stat = p.stat()
        procs, decs = _ids_of(p, stat.st_mtime_ns, stat.st_size)
        processes |= procs
        for i, d in enumerate(decs):
            decisions.setdefault(d, i == 0)
    return _Index(frozenset(processes), decisions, tuple(passed_over))


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


def _folder_name(ctx: Context) -> str:
    """The search folder as the user knows it: as the file's display names it, when it is the file's folder."""
    if ctx.search_dir.resolve() == ctx.path.parent.resolve():
        parent = Path(ctx.display).parent.as_posix()
        return "its folder" if parent == "." else f"{parent}/"
    return f"{ctx.search_dir.name}/"
