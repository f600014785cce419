"""Validation against the BPMN 2.0 XML schema, with the schema's messages explained for designers."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from flowrun.engine.validate._common import MAX_SCHEMA_PROBLEMS, Context
from flowrun.engine.validate.structure import duplicated_ids
from flowrun.engine.xml import BPMN_NS


@lru_cache(maxsize=1)
def _schema() -> Any:
    from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator

    return BpmnValidator().validator


def check_schema(ctx: Context) -> None:
    """Every violation of the BPMN 2.0 XSD, not just the first."""
    schema = _schema()
    if schema.validate(ctx.root.getroottree()):
        return
    prefixes = {uri: prefix for prefix, uri in ctx.root.nsmap.items() if prefix}
    duplicated = duplicated_ids(ctx.root)
    seen: set[tuple[int, str]] = set()
    count = 0
    for entry in schema.error_log:
        if _reported_elsewhere(entry.message, duplicated):
            continue
        if (entry.line, entry.message) in seen:
            continue
        seen.add((entry.line, entry.message))
        count += 1
        if count > MAX_SCHEMA_PROBLEMS:
            continue
        node = _node_at(ctx.root, entry.path, entry.line)
        message, fix, harmless = _explain_schema(entry.message, prefixes)
        ctx.add(node, message, fix, "warning" if harmless else "error", line=entry.line)
    if count > MAX_SCHEMA_PROBLEMS:
        ctx.add(
            ctx.root,
            f"{count - MAX_SCHEMA_PROBLEMS} more BPMN 2.0 schema problems are not listed",
            "fix the ones above first, or save the diagram again from the modeler",
        )


def _reported_elsewhere(message: str, duplicated: set[str]) -> bool:
    """Schema messages that :func:`check_ids` and :func:`check_flows` report with more detail."""
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
