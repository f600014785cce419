"""What every check shares: the namespaces, the per-file context and small helpers."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowrun.engine import sandbox
from flowrun.engine.xml import BPMN_NS, local_name
from flowrun.models import Problem

#: Raises :class:`FormError` when a user task's form reference does not resolve to a valid form.
FormCheck = Callable[[Mapping[str, Any]], object]

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
NAMESPACES = {"bpmn": BPMN_NS, "camunda": CAMUNDA_NS}
OMG_PREFIX = "{http://www.omg.org/spec/"
CAMUNDA_TAG = "{" + CAMUNDA_NS + "}"

#: Every kind of BPMN flow node; those flowrun's parser has no class for are unsupported.
FLOW_NODES = (
    "startEvent endEvent intermediateCatchEvent intermediateThrowEvent boundaryEvent task userTask manualTask "
    "serviceTask scriptTask businessRuleTask sendTask receiveTask callActivity subProcess transaction "
    "adHocSubProcess exclusiveGateway inclusiveGateway parallelGateway eventBasedGateway complexGateway"
).split()
MAX_SCHEMA_PROBLEMS = 30
_ISO_LIKE = re.compile(r"(P[\dT][\w.,]*|R\d*/\S*|\d{4}-\d\d\S*)", re.IGNORECASE)
_PYTHON_FORMATS = ("", "python", "python3", "py", "text/x-python")


@dataclass
class Context:
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
                line=line or line_of(node) or None,
                element=element.get("id") if element is not None else None,
                name=clean_name(element.get("name")) if element is not None else None,
                message=message,
                fix=fix,
                severity=severity,
            )
        )


def split_fix(text: str, default_fix: str) -> tuple[str, str]:
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
        local = local_name(candidate.tag)
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


def line_of(node: Any) -> int:
    return int(getattr(node, "sourceline", None) or 0)


def clean_name(name: str | None) -> str | None:
    return " ".join(name.split()) if name and name.strip() else None


def shorten(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def namespace_of(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""
