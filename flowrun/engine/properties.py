"""What a diagram says about its tasks for a pilot's KPIs: lanes and Camunda extension properties.

Camunda Modeler's "Extension properties" panel writes
``<camunda:properties><camunda:property name="touchpoint" value="true"/></camunda:properties>``
inside a task's ``<bpmn:extensionElements>``. :func:`read_blueprint` reads those and the lanes,
and nothing else (no schema check, no SpiffWorkflow parse), so ``flowrun compare`` stays quick.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowrun.engine.xml import BPMN_TAG, local_name, parse_bytes, read_bytes

_CAMUNDA = "{http://camunda.org/schema/1.0/bpmn}"
#: The property that makes a task a customer touchpoint (true) or not (false), whatever its lane.
TOUCHPOINT = "touchpoint"
_TRUE = frozenset({"true", "yes"})
_FALSE = frozenset({"false", "no"})
#: Elements whose steps a pilot counts: tasks, call activities and subprocesses.
_STEPS = frozenset(
    "task userTask manualTask serviceTask scriptTask businessRuleTask sendTask receiveTask callActivity "
    "subProcess transaction adHocSubProcess".split()
)


def touchpoint_value(text: str | None) -> bool | None:
    """``true``/``yes`` -> True, ``false``/``no`` -> False (any case, spaces ignored); anything else None."""
    word = (text or "").strip().casefold()
    return True if word in _TRUE else False if word in _FALSE else None


@dataclass(frozen=True)
class DiagramBlueprint:
    """The lanes and task properties of one diagram.

    Attributes:
        tasks: every step's BPMN id -> its Camunda extension properties (name -> value, may be empty).
        lanes: the names of the diagram's lanes, in file order.
        lines: BPMN id -> the line of its ``touchpoint`` property (for messages).
    """

    tasks: dict[str, dict[str, str]] = field(default_factory=dict)
    lanes: tuple[str, ...] = ()
    lines: dict[str, int] = field(default_factory=dict)


def read_blueprint(path: Path, display: str) -> DiagramBlueprint:
    """The steps, their extension properties and the lanes of the BPMN file at ``path``.

    Raises:
        ModelError: the file cannot be read or is not well-formed XML (named ``display``).
    """
    root = parse_bytes(read_bytes(path, display), display).getroot()
    return blueprint_of(root)


def blueprint_of(root: Any) -> DiagramBlueprint:
    """:func:`read_blueprint` of an already parsed diagram (its root element)."""
    tasks: dict[str, dict[str, str]] = {}
    lines: dict[str, int] = {}
    for node in root.iter():
        if not (isinstance(node.tag, str) and node.tag.startswith(BPMN_TAG)) or local_name(node.tag) not in _STEPS:
            continue
        ident = node.get("id")
        if not ident:
            continue
        props: dict[str, str] = {}
        ext = node.find(BPMN_TAG + "extensionElements")
        for prop in ext.iter(_CAMUNDA + "property") if ext is not None else ():
            if prop.getparent().tag != _CAMUNDA + "properties" or prop.getparent().getparent() is not ext:
                continue  # a form field's own properties are not the task's
            name = (prop.get("name") or "").strip()
            if name:
                props[name] = prop.get("value") or ""
                if name == TOUCHPOINT:
                    lines[ident] = int(prop.sourceline or 0)
        tasks[ident] = props
    lanes = tuple(dict.fromkeys(" ".join(str(lane.get("name") or "").split()) for lane in root.iter(BPMN_TAG + "lane")))
    return DiagramBlueprint(tasks=tasks, lanes=tuple(x for x in lanes if x), lines=lines)
