"""Structure: duplicate ids, dangling flows, gateways, elements flowrun cannot run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flowrun.engine.validate._common import FLOW_NODES, OMG_PREFIX, Context, line_of
from flowrun.engine.xml import BPMN_TAG, local_name


def _identified(root: Any) -> Iterator[tuple[str, Any]]:
    """(id, element) of the BPMN and diagram elements; vendors' extension elements have ids of their own."""
    for node in root.iter():
        if isinstance(node.tag, str) and node.tag.startswith(OMG_PREFIX) and node.get("id") is not None:
            yield node.get("id"), node


def duplicated_ids(root: Any) -> set[str]:
    seen: set[str] = set()
    dup: set[str] = set()
    for ident, _ in _identified(root):
        (dup if ident in seen else seen).add(ident)
    return dup


def check_ids(ctx: Context) -> None:
    """Each id used twice, reported at every later use with the line of the first."""
    first: dict[str, Any] = {}
    for ident, node in _identified(ctx.root):
        if ident not in first:
            first[ident] = node
            continue
        earlier = first[ident]
        ctx.add(
            node,
            f'the id "{ident}" is already used by the {local_name(earlier.tag)} on line {line_of(earlier)}',
            "give each element its own id in the modeler's properties panel",
        )


def check_flows(ctx: Context) -> None:
    """Sequence flows whose source or target is missing; processes without a start event."""
    ids = {n.get("id") for n in ctx.root.iter() if isinstance(n.tag, str) and n.get("id")}
    for flow in ctx.root.iter(BPMN_TAG + "sequenceFlow"):
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
    for process in ctx.root.iter(BPMN_TAG + "process"):
        if process.get("isExecutable") == "false":
            continue
        if process.find(BPMN_TAG + "startEvent") is None and _flow_nodes(process):
            ctx.add(
                process,
                "the process has no start event, so flowrun starts it at the elements no flow leads to",
                "draw a start event to make the start explicit",
                "warning",
            )


def _check_gateways(ctx: Context) -> None:
    """Every flow out of an exclusive or inclusive gateway has a condition or is its default."""
    outgoing: dict[str, list[Any]] = {}
    for flow in ctx.root.iter(BPMN_TAG + "sequenceFlow"):
        outgoing.setdefault(flow.get("sourceRef") or "", []).append(flow)
    for tag in ("exclusiveGateway", "inclusiveGateway"):
        for gateway in ctx.root.iter(BPMN_TAG + tag):
            flows = outgoing.get(gateway.get("id") or "", [])
            if len(flows) < 2:
                continue
            for flow in flows:
                condition = flow.find(BPMN_TAG + "conditionExpression")
                if flow.get("id") != gateway.get("default") and not (condition is not None and condition.text):
                    ctx.add(
                        flow,
                        f'the flow out of the gateway "{gateway.get("id")}" has no condition and is not its default',
                        "add a condition to the flow, or make it the gateway's default flow",
                    )


def _flow_nodes(container: Any) -> list[Any]:
    return [
        n
        for n in container
        if isinstance(n.tag, str) and n.tag.startswith(BPMN_TAG) and local_name(n.tag) in FLOW_NODES
    ]


def check_elements(ctx: Context) -> None:
    """Flow nodes flowrun cannot run, and SpiffArena scripts it would not run."""
    from flowrun.engine._parser import FlowrunParser

    known = {local_name(t) for t in (*FlowrunParser.PARSER_CLASSES, *FlowrunParser.OVERRIDE_PARSER_CLASSES)}
    for node in ctx.root.iter():
        if not isinstance(node.tag, str):
            continue
        local = local_name(node.tag)
        if node.tag.startswith(BPMN_TAG) and local in FLOW_NODES and local not in known:
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
