"""The shipped example's files as a designer opens them: diagram conventions, layout and forms.

Running the example is ``test_example_paths.py`` (every gateway branch, the parallel follow-up,
the script's and the service's variables); ``flowrun validate`` on it (BPMN XSD, flows, code,
form and service references) is ``test_validate.py::test_shipped_example_validates_clean``. What
is left, checked here, is what a designer sees in Camunda Modeler and what the forms promise an
operator: one pool with named lanes, readable ids, a tidy diagram (every element drawn, nothing
overlapping, flows that are orthogonal and cross nothing), and forms that describe every field.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flowrun import app, forms
from flowrun.engine.xml import parse_bytes

EXAMPLE = app.example_dir()
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "camunda": "http://camunda.org/schema/1.0/bpmn",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
CAM = f"{{{NS['camunda']}}}"
FLOW_NODES = {
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "task", "userTask", "serviceTask", "scriptTask", "manualTask", "sendTask", "receiveTask",
    "businessRuleTask", "callActivity", "subProcess",
    "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
}  # fmt: skip
#: Camunda Modeler's default sizes, by kind of element.
SIZES = {"task": (100, 80), "event": (36, 36), "gateway": (50, 50)}
READABLE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]+$")
GENERATED_ID = re.compile(r"_[0-9a-z]{7}$")  # the modeler's random ids, e.g. Activity_0x1abcd
LANES = {
    "complaint_baseline.bpmn": ["Customer", "Call Centre", "Back Office", "Specialist", "Supervisor"],
    "complaint_reengineered.bpmn": ["Customer", "Front Office", "Specialist"],
}
Box = tuple[float, float, float, float]  # x, y, width, height
Point = tuple[float, float]


class Diagram:
    """One example diagram: its process elements by id and its drawing (DI) by element id."""

    def __init__(self, name: str) -> None:
        self.name = name
        path = EXAMPLE / "processes" / name
        self.text = path.read_text(encoding="utf-8")
        self.root = parse_bytes(path.read_bytes(), name).getroot()
        (self.collaboration,) = self.root.findall("bpmn:collaboration", NS)
        (self.process,) = self.root.findall("bpmn:process", NS)
        (self.pool,) = self.collaboration.findall("bpmn:participant", NS)
        self.nodes = {e.get("id"): e for e in self.process if isinstance(e.tag, str) and local(e) in FLOW_NODES}
        self.flows = {e.get("id"): e for e in self.process.findall("bpmn:sequenceFlow", NS)}
        (lane_set,) = self.process.findall("bpmn:laneSet", NS)
        self.lanes = lane_set.findall("bpmn:lane", NS)
        (diagram,) = self.root.findall("bpmndi:BPMNDiagram", NS)
        self.plane = diagram.find("bpmndi:BPMNPlane", NS)
        self.shapes = {s.get("bpmnElement"): s for s in self.plane.findall("bpmndi:BPMNShape", NS)}
        self.edges = {e.get("bpmnElement"): e for e in self.plane.findall("bpmndi:BPMNEdge", NS)}

    def box(self, element_id: str) -> Box:
        return bounds(self.shapes[element_id].find("dc:Bounds", NS))

    def lane_of(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for lane in self.lanes:
            for ref in lane.findall("bpmn:flowNodeRef", NS):
                out.setdefault(ref.text, []).append(lane.get("id"))
        return out

    def labels(self) -> dict[str, Box]:
        found = {**self.shapes, **self.edges}.items()
        return {i: bounds(b) for i, el in found if (b := el.find("bpmndi:BPMNLabel/dc:Bounds", NS)) is not None}

    def route(self, flow_id: str) -> list[Point]:
        return [(float(w.get("x")), float(w.get("y"))) for w in self.edges[flow_id].findall("di:waypoint", NS)]


def local(el: Any) -> str:
    return str(el.tag).rsplit("}", 1)[-1]


def kind(el: Any) -> str:
    tag = local(el)
    return "event" if tag.endswith("Event") else "gateway" if tag.endswith("Gateway") else "task"


def bounds(b: Any) -> Box:
    return (float(b.get("x")), float(b.get("y")), float(b.get("width")), float(b.get("height")))


def overlap(a: Box, b: Box) -> bool:
    """The two rectangles share interior area."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def inside(inner: Box, outer: Box) -> bool:
    x, y, w, h = outer
    return inner[0] >= x and inner[1] >= y and inner[0] + inner[2] <= x + w and inner[1] + inner[3] <= y + h


def hits_interior(p: Point, q: Point, r: Box) -> bool:
    """The axis-parallel segment p-q passes through the open interior of r."""
    x, y, w, h = r
    if p[1] == q[1]:
        lo, hi = sorted((p[0], q[0]))
        return y < p[1] < y + h and lo < x + w and hi > x
    lo, hi = sorted((p[1], q[1]))
    return x < p[0] < x + w and lo < y + h and hi > y


def on_border(p: Point, r: Box, element_kind: str) -> bool:
    """Where a flow may start or end: any border point of a task, a side's middle of an event or gateway."""
    x, y, w, h = r
    if element_kind != "task":
        return p in {(x, y + h / 2), (x + w, y + h / 2), (x + w / 2, y), (x + w / 2, y + h)}
    return (p[0] in (x, x + w) and y <= p[1] <= y + h) or (p[1] in (y, y + h) and x <= p[0] <= x + w)


def cross(s: tuple[Point, Point], t: tuple[Point, Point]) -> bool:
    """A horizontal and a vertical segment cross properly (not at an end point)."""
    if s[0][1] == s[1][1] and t[0][0] == t[1][0]:
        h, v = s, t
    elif s[0][0] == s[1][0] and t[0][1] == t[1][1]:
        h, v = t, s
    else:
        return False
    hx, vy = sorted((h[0][0], h[1][0])), sorted((v[0][1], v[1][1]))
    return hx[0] < v[0][0] < hx[1] and vy[0] < h[0][1] < vy[1]


def run_together(s: tuple[Point, Point], t: tuple[Point, Point]) -> bool:
    """Two collinear segments share more than a point."""
    axis = 1 if s[0][1] == s[1][1] == t[0][1] == t[1][1] else 0 if s[0][0] == s[1][0] == t[0][0] == t[1][0] else None
    if axis is None:
        return False
    other = 1 - axis
    i, j = sorted((s[0][other], s[1][other])), sorted((t[0][other], t[1][other]))
    return min(i[1], j[1]) - max(i[0], j[0]) > 0


@pytest.fixture(scope="module", params=sorted(LANES))
def diagram(request: pytest.FixtureRequest) -> Diagram:
    return Diagram(request.param)


def test_diagrams_are_as_camunda_modeler_saves_them(diagram):
    """The header, namespaces and indentation are the modeler's, and one pool holds the process."""
    root = diagram.root
    assert {p: root.nsmap.get(p) for p in NS} == NS
    assert (root.get("exporter"), root.get("targetNamespace")) == ("Camunda Modeler", "http://bpmn.io/schema/bpmn")
    assert "\n  <bpmn:collaboration" in diagram.text
    assert "\t" not in diagram.text
    assert diagram.pool.get("processRef") == diagram.process.get("id")
    assert diagram.pool.get("name")
    assert diagram.process.get("isExecutable") == "true"


def test_every_element_is_named_with_a_readable_id_in_one_lane(diagram):
    """Ids are readable and unique, every node has a name and sits in exactly one of the expected lanes."""
    ids = [el.get("id") for el in diagram.root.iter() if isinstance(el.tag, str) and el.get("id")]
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    unreadable = [i for i in [*diagram.nodes, *diagram.flows] if not READABLE_ID.match(i) or GENERATED_ID.search(i)]
    assert unreadable == []
    assert [i for i, el in diagram.nodes.items() if not el.get("name")] == []
    assert [lane.get("name") for lane in diagram.lanes] == LANES[diagram.name]
    lane_of = diagram.lane_of()
    assert {i: len(lane_of.get(i, [])) for i in diagram.nodes} == dict.fromkeys(diagram.nodes, 1)
    assert set(lane_of) == set(diagram.nodes)


def test_decisions_name_their_flows_and_tasks_say_how_they_run(diagram):
    """Decision flows are named, the default has no condition; user, service and script tasks are complete."""
    for el_id, el in diagram.nodes.items():
        outs = [diagram.flows[o.text] for o in el.findall("bpmn:outgoing", NS)]
        if local(el) == "exclusiveGateway" and len(outs) > 1:
            for flow in outs:
                conditioned = flow.find("bpmn:conditionExpression", NS) is not None
                assert conditioned == (flow.get("id") != el.get("default")), (el_id, flow.get("id"))
                assert flow.get("name"), f"{flow.get('id')} leaves {el_id} without a name"
        if local(el) == "userTask":
            assert el.get(CAM + "formKey"), el_id
        if local(el) == "serviceTask":
            assert (el.get(CAM + "type"), bool(el.get(CAM + "topic"))) == ("external", True), el_id
        if local(el) == "scriptTask":
            assert el.get("scriptFormat") == "python", el_id


def test_every_element_is_drawn_in_its_lane_without_overlaps(diagram):
    """The pool, its stacked lanes and every node have a shape of the standard size inside its lane."""
    pool = diagram.box(diagram.pool.get("id"))
    top = pool[1]
    for lane in diagram.lanes:
        x, y, w, h = diagram.box(lane.get("id"))
        assert (x, w, y) == (pool[0] + 30, pool[2] - 30, top), lane.get("name")  # right of the label column
        assert 150 <= h <= 300, lane.get("name")
        top = y + h
    assert top == pool[1] + pool[3]
    lane_of = diagram.lane_of()
    for el_id, el in diagram.nodes.items():
        assert diagram.box(el_id)[2:] == SIZES[kind(el)], el_id
        assert inside(diagram.box(el_id), diagram.box(lane_of[el_id][0])), el_id
        if kind(el) != "task":
            assert diagram.shapes[el_id].find("bpmndi:BPMNLabel/dc:Bounds", NS) is not None, el_id
    drawn = {diagram.pool.get("id"), *(lane.get("id") for lane in diagram.lanes), *diagram.nodes}
    assert set(diagram.shapes) == drawn
    clashes = [
        (a, b) for a, b in itertools.combinations(sorted(diagram.nodes), 2) if overlap(*map(diagram.box, (a, b)))
    ]
    assert clashes == []


def test_labels_sit_in_the_pool_clear_of_shapes_and_each_other(diagram):
    """No label covers a shape or another label, and every named flow has one."""
    pool = diagram.box(diagram.pool.get("id"))
    labels = diagram.labels()
    assert [i for i, b in labels.items() if not inside(b, pool)] == []
    assert [(i, n) for i, b in labels.items() for n in diagram.nodes if overlap(b, diagram.box(n))] == []
    assert [(a, b) for a, b in itertools.combinations(sorted(labels), 2) if overlap(labels[a], labels[b])] == []
    assert [f for f, el in diagram.flows.items() if el.get("name") and f not in labels] == []


def test_flows_are_orthogonal_from_border_to_border_and_cross_nothing(diagram):
    """Each flow is drawn with right-angled segments from its source's border to its target's."""
    assert set(diagram.edges) == set(diagram.flows)
    pool = diagram.box(diagram.pool.get("id"))
    routes = {f: diagram.route(f) for f in diagram.flows}
    for fid, pts in routes.items():
        flow = diagram.flows[fid]
        source, target = flow.get("sourceRef"), flow.get("targetRef")
        assert on_border(pts[0], diagram.box(source), kind(diagram.nodes[source])), fid
        assert on_border(pts[-1], diagram.box(target), kind(diagram.nodes[target])), fid
        for p, q in itertools.pairwise(pts):
            assert p != q, (fid, p)
            assert p[0] == q[0] or p[1] == q[1], (fid, p, q)
            assert inside((min(p[0], q[0]), min(p[1], q[1]), abs(p[0] - q[0]), abs(p[1] - q[1])), pool), fid
            assert [n for n in diagram.nodes if hits_interior(p, q, diagram.box(n))] == [], fid
        assert [
            b for a, b, c in zip(pts, pts[1:], pts[2:], strict=False) if a[0] == b[0] == c[0] or a[1] == b[1] == c[1]
        ] == []
    tangled = [
        (a, b)
        for a, b in itertools.combinations(sorted(routes), 2)
        for s in itertools.pairwise(routes[a])
        for t in itertools.pairwise(routes[b])
        if cross(s, t) or run_together(s, t)
    ]
    assert tangled == []


def form_files() -> list[Path]:
    return sorted((EXAMPLE / "forms").glob("*.json"))


@pytest.mark.parametrize("path", form_files(), ids=lambda p: p.name)
def test_forms_describe_every_field(path):
    """Each form is a closed Draft 2020-12 object whose fields all have a title, a description and a scalar type."""
    form = forms.resolve_form({"key": path.name}, path.parent, EXAMPLE)
    assert form is not None
    schema = form.schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert (schema["type"], schema["additionalProperties"]) == ("object", False)
    assert schema["title"]
    assert schema["description"]
    assert schema["properties"]
    assert set(schema.get("required", [])) <= set(schema["properties"])
    for name, prop in schema["properties"].items():
        assert {"title", "description", "type"} <= set(prop), name
        assert prop["type"] in {"string", "integer", "number", "boolean"}, name
    assert [(f.name, forms.check_field(form, f.name, f.default)) for f in form.fields if f.has_default] == [
        (f.name, []) for f in form.fields if f.has_default
    ]


def test_every_form_is_used_by_a_diagram():
    """The forms folder holds exactly the forms the two diagrams name."""
    keys = {key for name in LANES for key in re.findall(r'camunda:formKey="([^"]+)"', Diagram(name).text)}
    assert keys == {p.name for p in form_files()}
