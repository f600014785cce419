#!/usr/bin/env python3
"""Check the shipped complaint-handling example end to end.

For each example BPMN file this script

1. parses it with lxml (no entity resolution, no network) and validates it against the
   BPMN 2.0 XSD that ships with SpiffWorkflow;
2. checks the house conventions: Camunda Modeler header, one collaboration with one pool,
   one lane set, every flow node in exactly one lane, readable ids and names, user tasks
   with a form key, external service tasks with a topic, python script tasks, gateway
   conditions and default flows;
3. checks the diagram (BPMN DI): a shape for the pool, every lane and every flow node, an
   edge for every sequence flow, standard shape sizes, lanes stacked inside the pool, every
   node inside its lane, no overlapping shapes or labels, orthogonal edges that start and end
   on the borders of their source and target, do not pass through other shapes, and neither
   overlap nor cross other edges;
4. checks every form named by a form key: it exists in forms/, is a valid JSON Schema
   (Draft 2020-12) and follows the form conventions;
5. parses the process with SpiffWorkflow's CamundaParser and drives it through every gateway
   branch, filling each user task with example data that is first validated against the
   task's form. External service tasks are not run by the engine: SpiffWorkflow 3.2 leaves
   them STARTED (waiting for a worker), so the script plays the worker -- it calls the
   handler named by the topic in complaint_services.py, merges the result into the task
   data and completes the task.

Usage: python tools/check_example.py      (exit status 0 when everything passes)
"""

from __future__ import annotations

import copy
import json
import re
import sys
from collections import Counter
from pathlib import Path

import jsonschema
from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.util.task import TaskState

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import complaint_services  # noqa: E402  (the example's service handlers)

PROCESSES = ROOT / "processes"
FORMS = ROOT / "forms"

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "camunda": "http://camunda.org/schema/1.0/bpmn",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
CAM = "{%s}" % NS["camunda"]
XSI_TYPE = "{%s}type" % NS["xsi"]

FLOW_NODE_TAGS = {
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "task", "userTask", "serviceTask", "scriptTask", "manualTask", "sendTask", "receiveTask",
    "businessRuleTask", "callActivity", "subProcess",
    "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
}
SIZES = {"task": (100, 80), "event": (36, 36), "gateway": (50, 50)}
ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]+$")
GENERATED_ID_RE = re.compile(r"_[0-9a-z]{7}$")  # Camunda Modeler's random ids, e.g. Activity_0x1abcd

# ----------------------------------------------------------------------------- expectations

EXPECTED = {
    "complaint_baseline.bpmn": {
        "process_id": "complaint_baseline",
        "lanes": ["Customer", "Call Centre", "Back Office", "Specialist", "Supervisor"],
    },
    "complaint_reengineered.bpmn": {
        "process_id": "complaint_reengineered",
        "lanes": ["Customer", "Front Office", "Specialist"],
    },
}

# Example form data, keyed by form key. Scenarios override single fields; a list value is
# consumed one item per visit of the task (for the rework loop).
FORM_DATA = {
    "record_complaint.json": {
        "customer_name": "Ana Pereira", "channel": "phone", "category": "billing",
        "description": "I was charged twice for my May invoice.", "amount_disputed": 59.9,
    },
    "analyse_needs.json": {"severity": "medium", "needs_specialist": False, "notes": "Duplicate direct debit."},
    "specialist_assessment.json": {
        "finding": "Payment run executed twice on 3 May; the second debit is not owed.",
        "proposed_remedy": "refund",
    },
    "draft_resolution.json": {"remedy": "refund", "remedy_amount": 59.9, "summary": "Refund the duplicate debit."},
    "approve_resolution.json": {"approved": True, "comment": "OK."},
    "reply_to_customer.json": {"reply_channel": "email", "message": "We have refunded the duplicate debit."},
    "satisfaction_survey.json": {"satisfaction": 4, "nps": 8, "resolved_first_contact": False, "comment": ""},
    "intake_assess.json": {
        "customer_name": "Ana Pereira", "channel": "phone", "category": "billing",
        "description": "I was charged twice for my May invoice.", "amount_disputed": 59.9,
        "severity": "medium", "can_resolve_now": True,
    },
    "resolve_now.json": {"remedy": "refund", "remedy_amount": 59.9, "message": "Refunded today; sorry for the trouble."},
    "inform_customer.json": {"contact_channel": "sms", "expected_days": 5},
    "confirm_resolution.json": {"remedy": "repair", "remedy_amount": 0, "message": "Your repair is booked for Monday."},
}

SCENARIOS = {
    "complaint_baseline.bpmn": [
        ("no specialist, remedy up to 100", {}, [
            "Record complaint", "Analyse needs", "Draft resolution", "Reply to customer", "Satisfaction survey"]),
        ("remedy exactly 100 (no approval)", {"draft_resolution.json": {"remedy_amount": 100}}, [
            "Record complaint", "Analyse needs", "Draft resolution", "Reply to customer", "Satisfaction survey"]),
        ("specialist needed", {"analyse_needs.json": {"needs_specialist": True, "severity": "high"},
                               "draft_resolution.json": {"remedy_amount": 80}}, [
            "Record complaint", "Analyse needs", "Specialist assessment", "Draft resolution",
            "Reply to customer", "Satisfaction survey"]),
        ("remedy over 100, approved", {"draft_resolution.json": {"remedy_amount": 250}}, [
            "Record complaint", "Analyse needs", "Draft resolution", "Approve resolution",
            "Reply to customer", "Satisfaction survey"]),
        ("remedy over 100, rejected then approved",
         {"draft_resolution.json": [{"remedy_amount": 400}, {"remedy_amount": 150}],
          "approve_resolution.json": [{"approved": False, "comment": "Too generous."}, {"approved": True}]}, [
            "Record complaint", "Analyse needs", "Draft resolution", "Approve resolution",
            "Draft resolution", "Approve resolution", "Reply to customer", "Satisfaction survey"]),
    ],
    "complaint_reengineered.bpmn": [
        ("resolved at first contact", {"satisfaction_survey.json": {"satisfaction": 5, "nps": 10,
                                                                    "resolved_first_contact": True}}, [
            "Record and assess complaint", "Resolve at first contact", "Satisfaction survey"]),
        ("cannot resolve now -> specialist in parallel",
         {"intake_assess.json": {"can_resolve_now": False, "severity": "high", "category": "product_fault"}}, [
            "Record and assess complaint", "Inform customer of next steps", "Specialist assessment",
            "Confirm resolution with customer", "Satisfaction survey"]),
        ("not entitled (category other)",
         {"intake_assess.json": {"category": "other", "severity": "low"}}, [
            "Record and assess complaint", "Inform customer of next steps", "Specialist assessment",
            "Confirm resolution with customer", "Satisfaction survey"]),
        ("amount over the front-office limit",
         {"intake_assess.json": {"amount_disputed": 180}}, [
            "Record and assess complaint", "Inform customer of next steps", "Specialist assessment",
            "Confirm resolution with customer", "Satisfaction survey"]),
    ],
}

# Tasks that must be offered at the same time (parallel branches) whenever the run reaches them.
PARALLEL = {
    "complaint_reengineered.bpmn": {"Specialist assessment", "Inform customer of next steps"},
}

# Variables that must hold these values when a scenario ends (checks scripts and handlers).
EXPECTED_DATA = {
    ("complaint_reengineered.bpmn", "resolved at first contact"):
        {"sla_hours": 24, "entitled": True, "customer_tier": "standard", "auto_remedy_limit": 100.0},
    ("complaint_reengineered.bpmn", "cannot resolve now -> specialist in parallel"): {"sla_hours": 4},
    ("complaint_reengineered.bpmn", "not entitled (category other)"): {"sla_hours": 72, "entitled": False},
    ("complaint_reengineered.bpmn", "amount over the front-office limit"): {"auto_remedy_limit": 100.0},
}


# ----------------------------------------------------------------------------- helpers

class Report:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.checks = 0

    def check(self, ok: bool, message: str) -> bool:
        self.checks += 1
        if not ok:
            self.errors.append(message)
        return ok


def local(el) -> str:
    return etree.QName(el).localname


def kind(tag: str) -> str:
    if tag.endswith("Event"):
        return "event"
    if tag.endswith("Gateway"):
        return "gateway"
    return "task"


def bounds_of(shape) -> tuple[float, float, float, float] | None:
    b = shape.find("dc:Bounds", NS)
    if b is None:
        return None
    return tuple(float(b.get(k)) for k in ("x", "y", "width", "height"))


def label_bounds(el) -> tuple[float, float, float, float] | None:
    b = el.find("bpmndi:BPMNLabel/dc:Bounds", NS)
    return None if b is None else tuple(float(b.get(k)) for k in ("x", "y", "width", "height"))


def overlap(a, b) -> bool:
    """True when two rectangles (x, y, w, h) share interior area."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def inside(inner, outer) -> bool:
    return (inner[0] >= outer[0] and inner[1] >= outer[1]
            and inner[0] + inner[2] <= outer[0] + outer[2] and inner[1] + inner[3] <= outer[1] + outer[3])


def segment_hits_interior(p, q, r) -> bool:
    """True when the axis-parallel segment p-q passes through the open interior of rectangle r."""
    x, y, w, h = r
    (x1, y1), (x2, y2) = p, q
    if y1 == y2:  # horizontal
        lo, hi = sorted((x1, x2))
        return y < y1 < y + h and lo < x + w and hi > x
    lo, hi = sorted((y1, y2))
    return x < x1 < x + w and lo < y + h and hi > y


def on_connection_point(p, r, k: str) -> bool:
    """A waypoint on a shape: any border point of a task; a side midpoint of an event/gateway."""
    x, y, w, h = r
    px, py = p
    if k != "task":
        return p in {(x, y + h / 2), (x + w, y + h / 2), (x + w / 2, y), (x + w / 2, y + h)}
    on_v = px in (x, x + w) and y <= py <= y + h
    on_h = py in (y, y + h) and x <= px <= x + w
    return on_v or on_h


def segments(points):
    return list(zip(points, points[1:]))


def segments_cross(s, t) -> bool:
    """A proper crossing of a horizontal and a vertical segment (not at an end point)."""
    (a, b), (c, d) = s, t
    if a[1] == b[1] and c[0] == d[0]:
        h, v = (a, b), (c, d)
    elif a[0] == b[0] and c[1] == d[1]:
        h, v = (c, d), (a, b)
    else:
        return False
    hx = sorted((h[0][0], h[1][0]))
    vy = sorted((v[0][1], v[1][1]))
    return hx[0] < v[0][0] < hx[1] and vy[0] < h[0][1] < vy[1]


def segments_overlap(s, t) -> bool:
    """Two collinear segments sharing more than a point."""
    (a, b), (c, d) = s, t
    if a[1] == b[1] == c[1] == d[1]:
        i, j = sorted((a[0], b[0])), sorted((c[0], d[0]))
    elif a[0] == b[0] == c[0] == d[0]:
        i, j = sorted((a[1], b[1])), sorted((c[1], d[1]))
    else:
        return False
    return min(i[1], j[1]) - max(i[0], j[0]) > 0


# ----------------------------------------------------------------------------- checks

def check_forms_dir(rep: Report) -> dict[str, dict]:
    forms = {}
    for path in sorted(FORMS.glob("*.json")):
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            rep.check(False, f"{path.name}: not JSON: {exc}")
            continue
        forms[path.name] = schema
        where = f"forms/{path.name}"
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
            rep.check(True, "")
        except jsonschema.SchemaError as exc:
            rep.check(False, f"{where}: invalid Draft 2020-12 schema: {exc.message}")
        rep.check(schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema", f"{where}: $schema")
        rep.check(schema.get("type") == "object", f"{where}: type must be object")
        rep.check(schema.get("additionalProperties") is False, f"{where}: additionalProperties must be false")
        rep.check(bool(schema.get("title")) and bool(schema.get("description")), f"{where}: title/description")
        props = schema.get("properties", {})
        rep.check(bool(props), f"{where}: no properties")
        for field in schema.get("required", []):
            rep.check(field in props, f"{where}: required field {field!r} not in properties")
        for name, prop in props.items():
            for key in ("title", "description", "type"):
                rep.check(key in prop, f"{where}: property {name!r} lacks {key!r}")
            rep.check(prop.get("type") in {"string", "integer", "number", "boolean"},
                      f"{where}: property {name!r} has unsupported type {prop.get('type')!r}")
            if "default" in prop:
                try:
                    jsonschema.Draft202012Validator(prop).validate(prop["default"])
                    rep.check(True, "")
                except jsonschema.ValidationError as exc:
                    rep.check(False, f"{where}: default of {name!r} is invalid: {exc.message}")
        example = FORM_DATA.get(path.name)
        if rep.check(example is not None, f"{where}: no example data in check_example.py"):
            validate_form_data(rep, path.name, schema, example)
    return forms


def validate_form_data(rep: Report, form_key: str, schema: dict, data: dict) -> None:
    try:
        errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(data)]
    except Exception as exc:  # a broken schema (reported by check_schema) can make validation crash
        errors = [f"cannot validate: {type(exc).__name__}: {exc}"]
    rep.check(not errors, f"example data for {form_key} invalid: {sorted(errors)}")


def check_bpmn(rep: Report, path: Path, forms: dict[str, dict]) -> dict[str, str]:
    """Structural, DI and geometry checks. Returns {service task id: topic}."""
    name = path.name
    expected = EXPECTED[name]
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)
    tree = etree.parse(str(path), parser)
    root = tree.getroot()

    # XSD validation against the BPMN 2.0 schema shipped with SpiffWorkflow
    try:
        BpmnValidator().validate(copy.deepcopy(root), name)
        rep.check(True, "")
    except Exception as exc:  # ValidationException
        rep.check(False, f"{name}: BPMN XSD validation failed: {exc}")

    # header
    rep.check(local(root) == "definitions", f"{name}: root is not bpmn:definitions")
    for prefix in ("bpmn", "bpmndi", "dc", "di", "camunda", "xsi"):
        rep.check(root.nsmap.get(prefix) == NS[prefix], f"{name}: namespace {prefix} missing or wrong")
    rep.check(root.get("exporter") == "Camunda Modeler" and root.get("exporterVersion") == "5.31.0",
              f"{name}: exporter attributes")
    rep.check(root.get("targetNamespace") == "http://bpmn.io/schema/bpmn", f"{name}: targetNamespace")
    rep.check(bool(root.get("id")), f"{name}: definitions id")
    text = path.read_text(encoding="utf-8")
    rep.check("\n  <bpmn:collaboration" in text and "\t" not in text, f"{name}: not 2-space indented XML")

    # collaboration / pool / process
    collabs = root.findall("bpmn:collaboration", NS)
    processes = root.findall("bpmn:process", NS)
    rep.check(len(collabs) == 1, f"{name}: expected one collaboration")
    rep.check(len(processes) == 1, f"{name}: expected one process")
    collab, proc = collabs[0], processes[0]
    participants = collab.findall("bpmn:participant", NS)
    rep.check(len(participants) == 1, f"{name}: expected one participant")
    participant = participants[0]
    rep.check(participant.get("processRef") == proc.get("id"), f"{name}: participant does not reference process")
    rep.check(bool(participant.get("name")), f"{name}: participant has no name")
    rep.check(proc.get("id") == expected["process_id"], f"{name}: process id {proc.get('id')!r}")
    rep.check(proc.get("isExecutable") == "true", f"{name}: process is not executable")

    # elements
    nodes = {el.get("id"): el for el in proc if isinstance(el.tag, str) and local(el) in FLOW_NODE_TAGS}
    flows = {el.get("id"): el for el in proc.findall("bpmn:sequenceFlow", NS)}
    all_ids = [el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id")]
    dupes = [i for i, c in Counter(all_ids).items() if c > 1]
    rep.check(not dupes, f"{name}: duplicate ids {dupes}")
    for el_id in list(nodes) + list(flows):
        rep.check(bool(ID_RE.match(el_id)) and not GENERATED_ID_RE.search(el_id),
                  f"{name}: id {el_id!r} is not a readable id")
    for el_id, el in nodes.items():
        rep.check(bool(el.get("name")), f"{name}: {el_id} has no name")

    # lanes
    lane_sets = proc.findall("bpmn:laneSet", NS)
    rep.check(len(lane_sets) == 1, f"{name}: expected one laneSet")
    lanes = lane_sets[0].findall("bpmn:lane", NS)
    rep.check([l.get("name") for l in lanes] == expected["lanes"],
              f"{name}: lanes {[l.get('name') for l in lanes]} != {expected['lanes']}")
    lane_of: dict[str, list[str]] = {}
    for lane in lanes:
        rep.check(bool(ID_RE.match(lane.get("id", ""))), f"{name}: lane id {lane.get('id')!r}")
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            rep.check(ref.text in nodes, f"{name}: lane {lane.get('name')} references unknown {ref.text}")
            lane_of.setdefault(ref.text, []).append(lane.get("id"))
    for el_id in nodes:
        rep.check(len(lane_of.get(el_id, [])) == 1,
                  f"{name}: {el_id} is in {len(lane_of.get(el_id, []))} lanes (must be exactly one)")

    # flows, incoming/outgoing, gateways
    for fid, f in flows.items():
        src, tgt = f.get("sourceRef"), f.get("targetRef")
        rep.check(src in nodes and tgt in nodes, f"{name}: {fid} has unknown source/target")
        if src in nodes:
            rep.check(fid in [o.text for o in nodes[src].findall("bpmn:outgoing", NS)],
                      f"{name}: {src} does not list outgoing {fid}")
        if tgt in nodes:
            rep.check(fid in [o.text for o in nodes[tgt].findall("bpmn:incoming", NS)],
                      f"{name}: {tgt} does not list incoming {fid}")
        cond = f.find("bpmn:conditionExpression", NS)
        if cond is not None:
            rep.check(cond.get(XSI_TYPE) == "bpmn:tFormalExpression", f"{name}: {fid} condition xsi:type")
            try:
                compile(cond.text, fid, "eval")
                rep.check(True, "")
            except SyntaxError as exc:
                rep.check(False, f"{name}: {fid} condition is not a Python expression: {exc}")
    for el_id, el in nodes.items():
        tag = local(el)
        outs = [flows[o.text] for o in el.findall("bpmn:outgoing", NS) if o.text in flows]
        ins = el.findall("bpmn:incoming", NS)
        if tag == "startEvent":
            rep.check(not ins and len(outs) == 1, f"{name}: start event {el_id} wiring")
        elif tag == "endEvent":
            rep.check(len(ins) >= 1 and not outs, f"{name}: end event {el_id} wiring")
        else:
            rep.check(len(ins) >= 1 and len(outs) >= 1, f"{name}: {el_id} must have incoming and outgoing")
        if tag == "exclusiveGateway" and len(outs) > 1:
            default = el.get("default")
            for f in outs:
                has_cond = f.find("bpmn:conditionExpression", NS) is not None
                if f.get("id") == default:
                    rep.check(not has_cond, f"{name}: default flow {default} must not have a condition")
                else:
                    rep.check(has_cond, f"{name}: {f.get('id')} leaves {el_id} without a condition")
                rep.check(bool(f.get("name")), f"{name}: {f.get('id')} leaves decision {el_id} without a name")
            if default:
                rep.check(default in [f.get("id") for f in outs], f"{name}: {el_id} default is not outgoing")
        if tag == "parallelGateway":
            for f in outs:
                rep.check(f.find("bpmn:conditionExpression", NS) is None,
                          f"{name}: {f.get('id')} leaves parallel gateway with a condition")
        if tag == "userTask":
            key = el.get(CAM + "formKey")
            if rep.check(bool(key), f"{name}: user task {el_id} has no camunda:formKey"):
                rep.check(key in forms, f"{name}: form {key} of {el_id} not found in forms/")
        if tag == "serviceTask":
            rep.check(el.get(CAM + "type") == "external" and bool(el.get(CAM + "topic")),
                      f"{name}: service task {el_id} must be camunda:type=external with a topic")
            topic = el.get(CAM + "topic")
            rep.check(callable(getattr(complaint_services, topic or "", None)),
                      f"{name}: no handler {topic!r} in complaint_services.py")
        if tag == "scriptTask":
            rep.check(el.get("scriptFormat") == "python", f"{name}: {el_id} scriptFormat must be python")
            script = el.find("bpmn:script", NS)
            if rep.check(script is not None and bool((script.text or "").strip()), f"{name}: {el_id} has no script"):
                rep.check("import" not in script.text and "__" not in script.text,
                          f"{name}: {el_id} script must not import or use dunders")
                try:
                    compile(script.text, el_id, "exec")
                except SyntaxError as exc:
                    rep.check(False, f"{name}: {el_id} script is not valid Python: {exc}")

    # ---------------------------------------------------------------- DI and geometry
    diagrams = root.findall("bpmndi:BPMNDiagram", NS)
    rep.check(len(diagrams) == 1, f"{name}: expected one BPMNDiagram")
    plane = diagrams[0].find("bpmndi:BPMNPlane", NS)
    rep.check(plane is not None and plane.get("bpmnElement") == collab.get("id"),
              f"{name}: BPMNPlane must reference the collaboration")
    shapes = {s.get("bpmnElement"): s for s in plane.findall("bpmndi:BPMNShape", NS)}
    edges = {e.get("bpmnElement"): e for e in plane.findall("bpmndi:BPMNEdge", NS)}

    pool_shape = shapes.get(participant.get("id"))
    if not rep.check(pool_shape is not None, f"{name}: no shape for the pool"):
        return {}
    rep.check(pool_shape.get("isHorizontal") == "true", f"{name}: pool not isHorizontal")
    pool = bounds_of(pool_shape)
    lane_bounds = {}
    next_y = pool[1]
    for lane in lanes:
        s = shapes.get(lane.get("id"))
        if not rep.check(s is not None, f"{name}: no shape for lane {lane.get('name')}"):
            continue
        rep.check(s.get("isHorizontal") == "true", f"{name}: lane {lane.get('name')} not isHorizontal")
        lb = bounds_of(s)
        lane_bounds[lane.get("id")] = lb
        rep.check(lb[0] == pool[0] + 30 and lb[2] == pool[2] - 30,
                  f"{name}: lane {lane.get('name')} must span the pool right of the 30px label column")
        rep.check(lb[1] == next_y, f"{name}: lane {lane.get('name')} is not stacked directly below the previous")
        rep.check(150 <= lb[3] <= 300, f"{name}: lane {lane.get('name')} height {lb[3]}")
        next_y = lb[1] + lb[3]
    rep.check(next_y == pool[1] + pool[3], f"{name}: lanes do not fill the pool height")

    node_bounds = {}
    for el_id, el in nodes.items():
        s = shapes.get(el_id)
        if not rep.check(s is not None, f"{name}: no DI shape for {el_id}"):
            continue
        b = bounds_of(s)
        node_bounds[el_id] = b
        k = kind(local(el))
        rep.check((b[2], b[3]) == SIZES[k], f"{name}: {el_id} size {b[2]}x{b[3]} != {SIZES[k]}")
        if local(el) == "exclusiveGateway":
            rep.check(s.get("isMarkerVisible") == "true", f"{name}: {el_id} isMarkerVisible")
        if k in ("event", "gateway"):
            rep.check(label_bounds(s) is not None, f"{name}: {el_id} has no BPMNLabel bounds")
        lanes_here = lane_of.get(el_id, [])
        if lanes_here and lanes_here[0] in lane_bounds:
            rep.check(inside(b, lane_bounds[lanes_here[0]]), f"{name}: {el_id} is drawn outside its lane")
    extra = set(shapes) - set(nodes) - {participant.get("id")} - {l.get("id") for l in lanes}
    rep.check(not extra, f"{name}: shapes for unknown elements {sorted(extra)}")

    ids = sorted(node_bounds)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            rep.check(not overlap(node_bounds[a], node_bounds[b]), f"{name}: shapes {a} and {b} overlap")

    labels = {}
    for el_id, s in shapes.items():
        lb = label_bounds(s)
        if lb:
            labels[el_id] = lb
    for fid, e in edges.items():
        lb = label_bounds(e)
        if lb:
            labels[fid] = lb
    for lid, lb in labels.items():
        rep.check(inside(lb, pool), f"{name}: label of {lid} outside the pool")
        for nid, nb in node_bounds.items():
            rep.check(not overlap(lb, nb), f"{name}: label of {lid} overlaps shape {nid}")
    lids = sorted(labels)
    for i, a in enumerate(lids):
        for b in lids[i + 1:]:
            rep.check(not overlap(labels[a], labels[b]), f"{name}: labels of {a} and {b} overlap")

    routes = {}
    for fid, f in flows.items():
        e = edges.get(fid)
        if not rep.check(e is not None, f"{name}: no DI edge for {fid}"):
            continue
        pts = [(float(w.get("x")), float(w.get("y"))) for w in e.findall("di:waypoint", NS)]
        routes[fid] = pts
        if not rep.check(len(pts) >= 2, f"{name}: {fid} has fewer than 2 waypoints"):
            continue
        if f.get("name"):
            rep.check(label_bounds(e) is not None, f"{name}: named flow {fid} has no label bounds")
        src, tgt = f.get("sourceRef"), f.get("targetRef")
        if src in node_bounds:
            rep.check(on_connection_point(pts[0], node_bounds[src], kind(local(nodes[src]))),
                      f"{name}: {fid} does not start on the border of {src}")
        if tgt in node_bounds:
            rep.check(on_connection_point(pts[-1], node_bounds[tgt], kind(local(nodes[tgt]))),
                      f"{name}: {fid} does not end on the border of {tgt}")
        for p, q in segments(pts):
            rep.check(p != q and (p[0] == q[0] or p[1] == q[1]), f"{name}: {fid} segment {p}->{q} is not orthogonal")
            rep.check(inside((min(p[0], q[0]), min(p[1], q[1]), abs(p[0] - q[0]), abs(p[1] - q[1])), pool),
                      f"{name}: {fid} leaves the pool")
            for nid, nb in node_bounds.items():
                rep.check(not segment_hits_interior(p, q, nb), f"{name}: {fid} passes through {nid}")
        for a, b, c in zip(pts, pts[1:], pts[2:]):
            rep.check(not (a[0] == b[0] == c[0] or a[1] == b[1] == c[1]), f"{name}: {fid} has a redundant bend at {b}")
    extra = set(edges) - set(flows)
    rep.check(not extra, f"{name}: edges for unknown elements {sorted(extra)}")

    fids = sorted(routes)
    for i, a in enumerate(fids):
        for b in fids[i + 1:]:
            for s in segments(routes[a]):
                for t in segments(routes[b]):
                    rep.check(not segments_cross(s, t), f"{name}: flows {a} and {b} cross")
                    rep.check(not segments_overlap(s, t), f"{name}: flows {a} and {b} run on top of each other")

    print(f"  diagram: pool {pool[2]:.0f}x{pool[3]:.0f}, {len(lane_bounds)} lanes, {len(node_bounds)} shapes, "
          f"{len(routes)} edges, {len(labels)} labels; overlaps/crossings checked")
    return {el_id: el.get(CAM + "topic") for el_id, el in nodes.items() if local(el) == "serviceTask"}


# ----------------------------------------------------------------------------- execution

def run_scenario(rep: Report, path: Path, forms: dict[str, dict], topics: dict[str, str],
                 title: str, overrides: dict, expected: list[str]) -> None:
    pid = EXPECTED[path.name]["process_id"]
    parser = CamundaParser()
    parser.add_bpmn_file(str(path))
    spec = parser.get_spec(pid)
    subs = parser.get_subprocess_specs(pid)
    wf = BpmnWorkflow(spec, subs)

    queues = {k: list(v) if isinstance(v, list) else None for k, v in overrides.items()}
    services_run: list[str] = []

    trail: list[tuple[str, str]] = []
    concurrent: list[set[str]] = []
    for _ in range(100):
        wf.do_engine_steps()
        if wf.is_completed():
            break
        # SpiffWorkflow 3.2 leaves a plain (external) service task STARTED: it waits for a
        # worker. Act as the worker: call the handler named by the topic, merge its result
        # into the task data and complete the task, then let the engine carry on.
        waiting = [t for t in wf.get_tasks(state=TaskState.STARTED) if t.task_spec.bpmn_id in topics]
        if waiting:
            for task in waiting:
                handler = getattr(complaint_services, topics[task.task_spec.bpmn_id])
                task.data.update(handler(dict(task.data)))
                task.complete()
                services_run.append(task.task_spec.bpmn_name)
            continue
        ready = wf.get_tasks(state=TaskState.READY, manual=True)
        if not rep.check(bool(ready), f"{path.name} [{title}]: stuck, no ready user task"):
            return
        names_ready = {t.task_spec.bpmn_name for t in ready}
        if len(names_ready) > 1:
            concurrent.append(names_ready)
        task = ready[0]
        key = task.task_spec.form.key
        data = dict(FORM_DATA[key])
        if key in overrides:
            data.update(queues[key].pop(0) if queues[key] is not None else overrides[key])
        validate_form_data(rep, f"{key} ({title})", forms[key], data)
        task.data.update(data)
        task.run()
        trail.append((task.task_spec.bpmn_name, task.task_spec.lane or "?"))
    rep.check(wf.is_completed(), f"{path.name} [{title}]: did not complete")

    names = [t for t, _ in trail]
    handoffs = sum(1 for a, b in zip(trail, trail[1:]) if a[1] != b[1])
    print(f"  run: {title}")
    print("    " + " -> ".join(f"{t} [{l}]" for t, l in trail))
    print(f"    steps={len(trail)} handoffs={handoffs} "
          f"customer_touchpoints={sum(1 for _, l in trail if l == 'Customer')}"
          + (f" services={services_run}" if services_run else ""))
    if concurrent:
        print("    in parallel: " + "; ".join(" + ".join(sorted(c)) for c in concurrent))
    rep.check(names == expected, f"{path.name} [{title}]: path {names} != expected {expected}")
    together = PARALLEL.get(path.name, set())
    if together & set(names):
        rep.check(any(together <= c for c in concurrent),
                  f"{path.name} [{title}]: {sorted(together)} were not offered in parallel")
    final = wf.last_task.data if wf.last_task is not None else {}
    for var, value in EXPECTED_DATA.get((path.name, title), {}).items():
        rep.check(final.get(var) == value, f"{path.name} [{title}]: {var}={final.get(var)!r}, expected {value!r}")


def main() -> int:
    rep = Report()
    print(f"forms/ ({FORMS})")
    forms = check_forms_dir(rep)
    print(f"  {len(forms)} forms: {', '.join(sorted(forms))}")
    used = set()
    for name in EXPECTED:
        path = PROCESSES / name
        print(f"{path.relative_to(ROOT)}")
        if not rep.check(path.exists(), f"{name}: missing"):
            continue
        text = path.read_text(encoding="utf-8")
        used.update(re.findall(r'camunda:formKey="([^"]+)"', text))
        topics = check_bpmn(rep, path, forms)
        for title, overrides, expected in SCENARIOS[name]:
            try:
                run_scenario(rep, path, forms, topics, title, overrides, expected)
            except Exception as exc:  # report the engine error and carry on with the next run
                rep.check(False, f"{name} [{title}]: {type(exc).__name__}: {exc}")
    rep.check(used == set(forms), f"forms not used by any process: {sorted(set(forms) - used)}")
    print()
    if rep.errors:
        print(f"FAILED: {len(rep.errors)} of {rep.checks} checks")
        for err in rep.errors:
            print(f"  - {err}")
        return 1
    print(f"OK: {rep.checks} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
