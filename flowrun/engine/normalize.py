"""Rewrite legal BPMN that SpiffWorkflow refuses into equivalent BPMN it runs, before it parses it.

:func:`normalize` changes the lxml tree of one file in place and returns
warnings for what it had to leave out. Only executable processes are touched
(SpiffWorkflow never runs the others). The transforms, as the BPMN 2.0 spec
reads them:

* **Implicit split.** A task or event with several outgoing sequence flows
  sends a token down each (uncontrolled flow): a parallel gateway is put
  after it. If some flows carry conditions (conditional sequence flows), an
  inclusive gateway is put after it instead; flows without a condition get
  ``True``, and a ``default`` flow moves to the gateway. One conditional flow
  alone gets an inclusive gateway too, so its condition is not ignored.
* **Implicit start.** A process or sub-process without a start event starts
  every flow node that has no incoming flow: a none start event is added with
  a flow to each (not to boundary events, compensation activities, event
  sub-processes or link catch events). An empty sub-process gets a start
  event connected to an end event, so it passes the token on, with a warning.
* **Implicit end.** A flow node without outgoing flow ends its path: an end
  event is added after it, so sub-processes have the end event SpiffWorkflow
  requires and the data of that path reaches the process result.
* **Boundary events** without a trigger can never fire: they are removed with a
  warning (refused if flows leave them). Compensation boundary events are
  refused: SpiffWorkflow cannot compensate.
* **Data stores** are removed with their data associations, with a warning
  (SpiffWorkflow has no implementation for them). Data objects stay. Data
  associations with process or activity inputs, outputs and properties, or
  with ids the file does not define, are refused with a clear message.
* **Timers** written as plain ISO 8601 (``PT48H``, ``R3/PT1H``,
  ``2026-03-01T09:00:00Z``) are quoted, since SpiffWorkflow evaluates timer
  text as Python; Python expressions are left alone. Cron cycles and empty
  timers are refused.
* **Camunda expressions** ``${...}`` in conditions and timers are translated to
  Python by :mod:`flowrun.engine.el`, with a warning; those it cannot
  translate are refused.

Generated ids start with ``flowrun_`` (``flowrun_split_<node>``,
``flowrun_start_<process>``, ``flowrun_end_<node>``, ``flowrun_flow_<a>_<b>``).
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from flowrun.engine import el
from flowrun.engine.xml import BPMN_TAG as _B
from flowrun.engine.xml import local_name as _local
from flowrun.errors import ModelError

__all__ = ["normalize"]

_GATEWAYS = frozenset("exclusiveGateway parallelGateway inclusiveGateway eventBasedGateway complexGateway".split())
_ACTIVITIES = frozenset(
    "task userTask manualTask scriptTask serviceTask sendTask receiveTask businessRuleTask callActivity "
    "subProcess adHocSubProcess transaction".split()
)
_EVENTS = frozenset("startEvent endEvent intermediateCatchEvent intermediateThrowEvent boundaryEvent".split())
_FLOW_NODES = _GATEWAYS | _ACTIVITIES | _EVENTS
#: Elements messages name: the element itself, or the nearest of these around it.
_SUBJECTS = _FLOW_NODES | {"sequenceFlow", "dataStore", "dataStoreReference"}
_TIMER_VALUES = ("timeDate", "timeDuration", "timeCycle")

_NUM = r"\d+(?:[.,]\d+)?"
_DURATION = (
    rf"P(?=\d|T\d)(?:{_NUM}Y)?(?:{_NUM}M)?(?:{_NUM}W)?(?:{_NUM}D)?"
    rf"(?:T(?=\d)(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?"
)
_TIME = r"(?:T\d{2}(?::\d{2}(?::\d{2}(?:[.,]\d+)?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
_DATE = rf"(?:\d{{4}}-\d{{2}}-\d{{2}}|\d{{4}}-?W\d{{2}}-?\d){_TIME}"
_ISO_8601 = re.compile(rf"(?:{_DURATION}|{_DATE}|R\d*/(?:{_DURATION}|{_DATE})(?:/(?:{_DURATION}|{_DATE}))?)")
_CRON_FIELD = r"(?:[0-9*?]|[A-Z]{3}|L)[0-9A-Z*?/,#\-]*"
_CRON = re.compile(rf"{_CRON_FIELD}(?:\s+{_CRON_FIELD}){{4,6}}")


def normalize(tree: Any, display: str) -> list[str]:
    """Make the BPMN in ``tree`` executable by SpiffWorkflow without changing what it means.

    Args:
        tree: the parsed file (an lxml element tree); changed in place.
        display: how to name the file in messages.

    Returns:
        Warnings, each ``file:line: element ("name"): what; fix``.

    Raises:
        ModelError: a condition or timer cannot be run as written.
    """
    root = tree.getroot()
    ids = _Ids(root)
    warnings = _drop_data_stores(root, display)
    for process in _executable_processes(root):
        _check_associations(process, root, display)
        warnings += _drop_untriggered_boundary_events(process, display)
        warnings += _translate_conditions(process, display)
        warnings += _fix_timers(process, display)
        for container in [process, *process.iter(_B + "subProcess", _B + "transaction", _B + "adHocSubProcess")]:
            warnings += _fill_empty_subprocess(container, display, ids)
            _add_implicit_start(container, ids)
            _add_implicit_ends(container, ids)
            _add_implicit_splits(container, ids)
    return warnings


class _Ids:
    """The ids of a document, handing out new unique ones."""

    def __init__(self, root: Any) -> None:
        self.taken: set[str] = {str(i) for i in root.xpath("//@id")}

    def new(self, base: str) -> str:
        candidate, n = base, 1
        while candidate in self.taken:
            n += 1
            candidate = f"{base}_{n}"
        self.taken.add(candidate)
        return candidate


# -- reading the tree -------------------------------------------------------------------------


def _executable_processes(root: Any) -> list[Any]:
    return [p for p in root.iter(_B + "process") if p.get("isExecutable") != "false"]


def _in_executable_process(element: Any) -> bool:
    process = next(element.iterancestors(_B + "process"), None)
    return process is not None and process.get("isExecutable") != "false"


def _flow_nodes(container: Any) -> list[Any]:
    return [c for c in container if isinstance(c.tag, str) and c.tag.startswith(_B) and _local(c.tag) in _FLOW_NODES]


def _flows(container: Any) -> list[Any]:
    return list(container.iter(_B + "sequenceFlow"))


def _has_definition(node: Any, kind: str) -> bool:
    return node.find(f"{_B}{kind}EventDefinition") is not None


def _condition(flow: Any) -> str | None:
    expression = flow.find(_B + "conditionExpression")
    text = (expression.text or "").strip() if expression is not None else ""
    return text or None


def _label(element: Any) -> str:
    name = " ".join((element.get("name") or "").split())
    return f'{element.get("id")} ("{name}")' if name else str(element.get("id"))


def _subject(element: Any) -> Any:
    """The element a message about ``element`` names: itself, or the flow node or flow around it."""
    for candidate in (element, *element.iterancestors()):
        if _local(candidate.tag) in _SUBJECTS:
            return candidate
    return element


def _warning(display: str, element: Any, what: str, fix: str) -> str:
    where = f"{display}:{element.sourceline}" if element.sourceline else display
    return f"{where}: {_label(_subject(element))}: {what}; {fix}"


def _refuse(display: str, element: Any, message: str) -> NoReturn:
    raise ModelError(message, file=display, line=element.sourceline, element=_label(_subject(element)))


# -- writing the tree -------------------------------------------------------------------------


def _new(container: Any, kind: str, ident: str) -> Any:
    return container.makeelement(_B + kind, {"id": ident})


def _add_ref(node: Any, kind: str, flow_id: str) -> None:
    """Add an ``<incoming>``/``<outgoing>`` child naming ``flow_id``, where the schema puts it."""
    ref = node.makeelement(_B + kind, {})
    ref.text = flow_id
    before = ("documentation", "extensionElements", "incoming") + (("outgoing",) if kind == "outgoing" else ())
    previous = [c for c in node if _local(c.tag) in before]
    if previous:
        previous[-1].addnext(ref)
    else:
        node.insert(0, ref)


def _remove_refs(node: Any, kind: str, flow_ids: set[str]) -> None:
    for ref in node.findall(_B + kind):
        if (ref.text or "").strip() in flow_ids:
            node.remove(ref)


def _connect(container: Any, source: Any, target: Any, ids: _Ids) -> Any:
    flow = _new(container, "sequenceFlow", ids.new(f"flowrun_flow_{source.get('id')}_{target.get('id')}"))
    flow.set("sourceRef", source.get("id"))
    flow.set("targetRef", target.get("id"))
    container.append(flow)
    _add_ref(source, "outgoing", flow.get("id"))
    _add_ref(target, "incoming", flow.get("id"))
    return flow


def _share_lane(container: Any, node: Any, new: Any) -> None:
    """Put ``new`` in the lanes ``node`` is in."""
    for ref in list(container.iterfind(f"{_B}laneSet//{_B}flowNodeRef")):
        if (ref.text or "").strip() == node.get("id"):
            copy = ref.makeelement(ref.tag, {})
            copy.text = new.get("id")
            ref.addnext(copy)


def _set_condition(flow: Any, source: str) -> None:
    expression = flow.find(_B + "conditionExpression")
    if expression is None:
        expression = flow.makeelement(_B + "conditionExpression", {})
        flow.append(expression)
    expression.text = source


# -- implicit start, end and split ------------------------------------------------------------


def _fill_empty_subprocess(container: Any, display: str, ids: _Ids) -> list[str]:
    """Give a sub-process drawn without content a start and an end event, so it passes the token on."""
    if _local(container.tag) not in ("subProcess", "transaction") or container.get("triggeredByEvent") == "true":
        return []
    if _flow_nodes(container):
        return []
    start = _new(container, "startEvent", ids.new(f"flowrun_start_{container.get('id')}"))
    end = _new(container, "endEvent", ids.new(f"flowrun_end_{container.get('id')}"))
    container.extend([start, end])
    _connect(container, start, end, ids)
    what = "the sub-process is empty, so it does nothing"
    return [_warning(display, container, what, "draw its steps inside it, or make it a task")]


def _add_implicit_start(container: Any, ids: _Ids) -> None:
    if _local(container.tag) == "adHocSubProcess" or container.get("triggeredByEvent") == "true":
        return
    nodes = _flow_nodes(container)
    if any(_local(n.tag) == "startEvent" for n in nodes):
        return
    targeted = {f.get("targetRef") for f in _flows(container)}
    entries = [n for n in nodes if n.get("id") not in targeted and _may_start(n)]
    if not entries:
        return  # SpiffWorkflow refuses with its own message
    start = _new(container, "startEvent", ids.new(f"flowrun_start_{container.get('id')}"))
    entries[0].addprevious(start)
    for node in entries:
        _connect(container, start, node, ids)


def _may_start(node: Any) -> bool:
    kind = _local(node.tag)
    return not (
        kind in ("startEvent", "boundaryEvent")
        or node.get("isForCompensation") == "true"
        or node.get("triggeredByEvent") == "true"
        or (kind == "intermediateCatchEvent" and _has_definition(node, "link"))
    )


def _add_implicit_ends(container: Any, ids: _Ids) -> None:
    if _local(container.tag) == "adHocSubProcess":
        return
    sources = {f.get("sourceRef") for f in _flows(container)}
    for node in _flow_nodes(container):
        if node.get("id") in sources or not _may_end(node):
            continue
        end = _new(container, "endEvent", ids.new(f"flowrun_end_{node.get('id')}"))
        node.addnext(end)
        _connect(container, node, end, ids)
        _share_lane(container, node, end)


def _may_end(node: Any) -> bool:
    kind = _local(node.tag)
    return not (
        kind in ("endEvent", "eventBasedGateway")
        or node.get("isForCompensation") == "true"
        or node.get("triggeredByEvent") == "true"
        or (kind == "intermediateThrowEvent" and _has_definition(node, "link"))
        or (kind == "boundaryEvent" and _has_definition(node, "compensate"))
    )


def _add_implicit_splits(container: Any, ids: _Ids) -> None:
    outgoing: dict[str, list[Any]] = {}
    for flow in _flows(container):
        outgoing.setdefault(str(flow.get("sourceRef")), []).append(flow)
    for node in _flow_nodes(container):
        flows = outgoing.get(str(node.get("id")), [])
        if _local(node.tag) in _GATEWAYS or not flows:
            continue
        conditional = any(_condition(f) is not None for f in flows)
        if len(flows) > 1 or conditional:
            inclusive = conditional or node.get("default") is not None
            _insert_split(container, node, flows, inclusive, ids)


def _insert_split(container: Any, node: Any, flows: list[Any], inclusive: bool, ids: _Ids) -> None:
    kind = "inclusiveGateway" if inclusive else "parallelGateway"
    gateway = _new(container, kind, ids.new(f"flowrun_split_{node.get('id')}"))
    node.addnext(gateway)
    default = node.attrib.pop("default", None)
    if default is not None:
        gateway.set("default", default)
    for flow in flows:
        flow.set("sourceRef", gateway.get("id"))
        _add_ref(gateway, "outgoing", flow.get("id"))
        if inclusive and flow.get("id") != default and _condition(flow) is None:
            _set_condition(flow, "True")  # an unconditioned flow always gets a token
    _remove_refs(node, "outgoing", {str(f.get("id")) for f in flows})
    _connect(container, node, gateway, ids)
    _share_lane(container, node, gateway)


# -- data stores and data associations --------------------------------------------------------

_DATA_ASSOCIATIONS = (_B + "dataInputAssociation", _B + "dataOutputAssociation")
_UNBOUND_DATA = ("dataInput", "dataOutput", "property")
_NO_STORES = "flowrun does not read or write data stores"


def _association_refs(association: Any) -> list[str]:
    """The ids an association reads from or writes to, as SpiffWorkflow resolves them."""
    end = "sourceRef" if _local(association.tag) == "dataInputAssociation" else "targetRef"
    return [(r.text or "").strip() for r in association.findall(_B + end)]


def _drop_data_stores(root: Any, display: str) -> list[str]:
    stores = {str(s.get("id")): s for s in root.iter(_B + "dataStore", _B + "dataStoreReference")}
    used: set[str] = set()
    for association in list(root.iter(*_DATA_ASSOCIATIONS)):
        hit = [i for i in _association_refs(association) if i in stores]
        if hit:
            association.getparent().remove(association)
            used |= set(hit) if _in_executable_process(association) else set()
    warnings = []
    for ident, store in stores.items():
        if _in_executable_process(store) or (ident in used and _local(store.tag) == "dataStore"):
            warnings.append(_warning(display, store, "data store ignored", _NO_STORES))
        store.getparent().remove(store)
    return warnings


def _check_associations(process: Any, root: Any, display: str) -> None:
    """Refuse data associations SpiffWorkflow cannot resolve, saying why instead of printing XML."""
    known = {str(e.get("id")): e for e in root.xpath("//*[@id]")}
    for association in process.iter(*_DATA_ASSOCIATIONS):
        for ident in _association_refs(association):
            target = known.get(ident)
            if target is None:
                _refuse(
                    display,
                    association,
                    f'a data association points at "{ident}", which the file does not define; '
                    "reconnect or delete it in the modeler",
                )
            if _local(target.tag) in _UNBOUND_DATA:
                _refuse(
                    display,
                    association,
                    f"a data association connects {_local(target.tag)} {_label(target)}, which flowrun cannot map: "
                    "tasks read and write process variables by name; connect a data object instead, or delete "
                    "the association",
                )


# -- boundary events --------------------------------------------------------------------------


def _drop_untriggered_boundary_events(process: Any, display: str) -> list[str]:
    """Remove boundary events that have no trigger (they never fire); refuse compensation."""
    sources = {f.get("sourceRef") for f in _flows(process)}
    warnings = []
    for event in list(process.iter(_B + "boundaryEvent")):
        if _has_definition(event, "compensate"):
            _refuse(
                display,
                event,
                "compensation is not supported: flowrun cannot undo completed work; delete the compensation "
                "boundary event and its compensation activity, or draw the undo steps as normal flow",
            )
        if any(_local(c.tag).endswith("EventDefinition") for c in event):
            continue
        what = "the boundary event has no trigger, so it can never fire"
        if event.get("id") in sources:
            _refuse(display, event, f"{what}; choose its trigger (timer, message, error, ...) in the modeler")
        warnings.append(_warning(display, event, f"{what}; it is ignored", "choose its trigger or delete it"))
        event.getparent().remove(event)
    return warnings


# -- conditions and timers --------------------------------------------------------------------


def _is_el(text: str) -> bool:
    return text.startswith(("${", "#{")) and text.endswith("}")


def _translate(text: str, what: str, element: Any, display: str) -> str:
    try:
        return el.translate(text)
    except ValueError as exc:
        example = "amount > 100" if what == "condition" else '"PT48H" or a variable name'
        _refuse(
            display,
            element,
            f"{what} {text} cannot be translated: {exc}; write it as a Python expression such as {example}",
        )


def _translate_conditions(process: Any, display: str) -> list[str]:
    defaults = {str(n.get("default")) for n in process.iter() if n.get("default")}
    warnings = []
    for expression in process.iter(_B + "conditionExpression", _B + "condition"):
        text = (expression.text or "").strip()
        if _is_el(text) and expression.getparent().get("id") not in defaults:  # BPMN ignores a default's condition
            expression.text = _translate(text, "condition", expression, display)
            what = f"Camunda condition {text} runs as the Python condition {expression.text}"
            warnings.append(_warning(display, expression, what, "write it in Python to be explicit"))
    return warnings


def _fix_timers(process: Any, display: str) -> list[str]:
    warnings = []
    for definition in process.iter(_B + "timerEventDefinition"):
        found = {_local(c.tag): c for c in definition.iterchildren(*(_B + k for k in _TIMER_VALUES))}
        value = next((found[k] for k in _TIMER_VALUES if k in found), None)  # SpiffWorkflow's order
        text = (value.text or "").strip() if value is not None else ""
        if value is None or not text:
            _refuse(
                display,
                definition,
                "the timer has no date, duration or cycle; set its type and value in the modeler's "
                'properties panel (e.g. duration "PT48H")',
            )
        if _is_el(text):
            value.text = _translate(text, "timer value", value, display)
            what = f"Camunda timer value {text} runs as the Python expression {value.text}"
            warnings.append(_warning(display, value, what, "write it in Python to be explicit"))
        elif _ISO_8601.fullmatch(text):
            value.text = f'"{text}"'
        elif _CRON.fullmatch(text):
            _refuse(
                display,
                value,
                f"the timer cycle {text} is a cron expression, which flowrun does not run; write it as an "
                'ISO 8601 cycle such as "R/PT1H" (every hour)',
            )
    return warnings
