"""Legal BPMN that SpiffWorkflow refuses is rewritten to run as the spec says, or refused with a clear message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from flowrun.clock import ManualClock
from flowrun.engine import Engine, load_model
from flowrun.engine.normalize import normalize
from flowrun.errors import ModelError
from tests.helpers import T0

DATA = Path(__file__).parent / "data" / "normalize"
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
NS = {"bpmn": BPMN}


class Case:
    """One instance of a fixture model, started with ``data``; knows its ready user tasks."""

    def __init__(self, name: str, data: dict[str, Any] | None = None) -> None:
        self.model = load_model(DATA / name, name)
        self.run = Engine(ManualClock(T0), lambda topic, data: {}).start(self.model.spec, data or {})
        self.ids: dict[str, str] = {}
        self._sync()

    def _sync(self) -> None:
        for record in self.run.drain():
            self.ids[record.bpmn_id] = record.task_id

    @property
    def ready(self) -> set[str]:
        ready: set[str] = set()
        for w in self.run.waiting_for():
            if w.kind == "task":
                assert w.task is not None, w
                ready.add(w.task)
        return ready

    def complete(self, bpmn_id: str, data: dict[str, Any] | None = None) -> None:
        self.run.complete(self.ids[bpmn_id], data or {}, "ann", None)
        self._sync()


def tree_of(body: str, executable: str = "true") -> Any:
    """An lxml tree of one process with ``body`` inside."""
    text = (
        f'<bpmn:definitions xmlns:bpmn="{BPMN}" id="d" targetNamespace="t">\n'
        f'<bpmn:process id="p" isExecutable="{executable}">\n{body}\n</bpmn:process>\n</bpmn:definitions>'
    )
    return etree.ElementTree(etree.fromstring(text.encode()))


def one(tree: Any, xpath: str) -> Any:
    found = tree.getroot().xpath(xpath, namespaces=NS)
    assert len(found) == 1, (xpath, found)
    return found[0]


def texts(node: Any, child: str) -> list[str]:
    return [c.text for c in node.findall(f"{{{BPMN}}}{child}")]


# -- implicit split ---------------------------------------------------------------------------


def test_task_with_two_outgoing_flows_runs_both_branches():
    """Several unconditioned flows out of a task are a parallel split."""
    case = Case("implicit_split.bpmn")
    case.complete("record")
    assert case.ready == {"notify", "assess"}
    case.complete("notify")
    case.complete("assess")
    assert case.run.completed


@pytest.mark.parametrize(("amount", "expected"), [(150, {"approve", "log"}), (50, {"pay", "log"})])
def test_conditional_flows_from_a_task_take_every_true_branch(amount, expected):
    """Conditional flows out of a task act as an inclusive gateway; an unconditioned flow is always taken."""
    case = Case("conditional_flows.bpmn")
    case.complete("check", {"amount": amount})
    assert case.ready == expected


@pytest.mark.parametrize(("amount", "expected"), [(150, {"approve"}), (50, {"standard"})])
def test_default_flow_of_a_task_is_taken_only_when_no_condition_holds(amount, expected):
    """A task's default flow moves to the inserted gateway."""
    case = Case("default_flow.bpmn")
    case.complete("check", {"amount": amount})
    assert case.ready == expected


def test_boundary_event_with_two_outgoing_flows_starts_both():
    """Several flows out of a boundary event all get a token."""
    assert Case("boundary_split.bpmn").ready == {"apologise", "report"}


def test_split_rewires_flows_refs_and_lanes():
    """The task keeps one outgoing flow to the new gateway; incoming/outgoing and lane refs follow."""
    tree = tree_of(
        """<bpmn:laneSet><bpmn:lane id="L" name="Clerk">
          <bpmn:flowNodeRef>A</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
        <bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="A"/>
        <bpmn:task id="A"><bpmn:incoming>f0</bpmn:incoming>
          <bpmn:outgoing>f1</bpmn:outgoing><bpmn:outgoing>f2</bpmn:outgoing></bpmn:task>
        <bpmn:sequenceFlow id="f1" sourceRef="A" targetRef="B"/><bpmn:sequenceFlow id="f2" sourceRef="A" targetRef="C"/>
        <bpmn:endEvent id="B"/><bpmn:endEvent id="C"/>"""
    )
    assert normalize(tree, "x.bpmn") == []
    gateway = one(tree, "//bpmn:parallelGateway")
    link = one(tree, "//bpmn:sequenceFlow[@targetRef='flowrun_split_A']")
    assert gateway.get("id") == "flowrun_split_A"
    assert link.get("sourceRef") == "A"
    assert texts(one(tree, "//bpmn:task"), "outgoing") == [link.get("id")]
    assert texts(gateway, "incoming") == [link.get("id")]
    assert texts(gateway, "outgoing") == ["f1", "f2"]
    assert {
        f.get("sourceRef") for f in tree.getroot().xpath("//bpmn:sequenceFlow[@id='f1' or @id='f2']", namespaces=NS)
    } == {"flowrun_split_A"}
    assert texts(one(tree, "//bpmn:lane"), "flowNodeRef") == ["A", "flowrun_split_A"]


def test_generated_ids_never_clash_with_existing_ones():
    """An id already taken gets a numbered variant."""
    tree = tree_of(
        """<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="A"/>
        <bpmn:task id="A"/><bpmn:task id="flowrun_split_A"/>
        <bpmn:sequenceFlow id="f1" sourceRef="A" targetRef="B"/><bpmn:sequenceFlow id="f2" sourceRef="A" targetRef="C"/>
        <bpmn:endEvent id="B"/><bpmn:endEvent id="C"/>"""
    )
    normalize(tree, "x.bpmn")
    assert one(tree, "//bpmn:parallelGateway").get("id") == "flowrun_split_A_2"
    ids = tree.getroot().xpath("//@id")
    assert len(ids) == len(set(ids))


def test_start_event_with_a_conditional_flow_gets_an_inclusive_gateway():
    """Flows without condition get True, so they are always taken beside the conditional ones."""
    tree = tree_of(
        """<bpmn:startEvent id="s"/>
        <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="A"><bpmn:conditionExpression>vip</bpmn:conditionExpression>
        </bpmn:sequenceFlow>
        <bpmn:sequenceFlow id="f2" sourceRef="s" targetRef="B"/><bpmn:endEvent id="A"/><bpmn:endEvent id="B"/>"""
    )
    normalize(tree, "x.bpmn")
    one(tree, "//bpmn:inclusiveGateway[@id='flowrun_split_s']")
    assert one(tree, "//bpmn:sequenceFlow[@id='f1']/bpmn:conditionExpression").text == "vip"
    assert one(tree, "//bpmn:sequenceFlow[@id='f2']/bpmn:conditionExpression").text == "True"


def test_gateways_and_single_plain_flows_are_left_alone():
    """Only non-gateway nodes with several (or conditional) outgoing flows change."""
    tree = tree_of(
        """<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="G"/>
        <bpmn:exclusiveGateway id="G" default="f2"/>
        <bpmn:sequenceFlow id="f1" sourceRef="G" targetRef="A"><bpmn:conditionExpression>x</bpmn:conditionExpression>
        </bpmn:sequenceFlow>
        <bpmn:sequenceFlow id="f2" sourceRef="G" targetRef="A"/><bpmn:endEvent id="A"/>"""
    )
    before = etree.tostring(tree)
    normalize(tree, "x.bpmn")
    assert etree.tostring(tree) == before


# -- implicit start and end -------------------------------------------------------------------


def test_process_without_start_event_starts_every_node_without_incoming_flow():
    """Not the boundary event's target, the compensation task or the event sub-process."""
    case = Case("implicit_start.bpmn")
    assert case.ready == {"intake", "triage"}
    assert any(w.kind != "task" for w in case.run.waiting_for())  # the boundary timer waits


def test_implicit_start_adds_one_none_start_event():
    """The start event is named after the process and has a flow to each entry node."""
    tree = tree_of(
        '<bpmn:task id="A"/><bpmn:task id="B"/><bpmn:intermediateCatchEvent id="L"><bpmn:linkEventDefinition/>'
        "</bpmn:intermediateCatchEvent>"
    )
    normalize(tree, "x.bpmn")
    start = one(tree, "//bpmn:startEvent")
    assert start.get("id") == "flowrun_start_p"
    assert len(start) == 1  # one outgoing flow, to the parallel split for A and B
    split = one(tree, "//bpmn:parallelGateway[@id='flowrun_split_flowrun_start_p']")
    targets = {f.get("targetRef") for f in tree.getroot().xpath("//bpmn:sequenceFlow", namespaces=NS)}
    assert {"A", "B", split.get("id")} <= targets
    assert "L" not in targets


def test_process_with_nothing_to_start_is_left_to_the_engine():
    """No entry node, no start event added: SpiffWorkflow reports "No start event found"."""
    tree = tree_of('<bpmn:subProcess id="E" triggeredByEvent="true"/>')
    normalize(tree, "x.bpmn")
    assert not tree.getroot().xpath("//bpmn:process/bpmn:startEvent", namespaces=NS)


def test_paths_without_end_event_end_and_keep_their_data():
    """A dangling path and a sub-process drawn without events both finish, and their data reaches the result."""
    case = Case("implicit_end.bpmn")
    assert case.run.completed
    assert case.run.data() == {"x": 1, "y": 2, "z": 3}


def test_empty_sub_process_passes_the_token_on_with_a_warning():
    """A collapsed sub-process drawn without content does nothing, and says so."""
    tree = tree_of(
        """<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="S"/>
        <bpmn:subProcess id="S" name="Repair"/>"""
    )
    warnings = normalize(tree, "x.bpmn")
    assert warnings == [
        'x.bpmn:4: S ("Repair"): the sub-process is empty, so it does nothing; '
        "draw its steps inside it, or make it a task"
    ]
    one(tree, "//bpmn:subProcess/bpmn:startEvent")
    one(tree, "//bpmn:subProcess/bpmn:endEvent")


# -- boundary events --------------------------------------------------------------------------


def test_boundary_event_without_trigger_is_dropped_with_a_warning():
    """It can never fire; bpmn-js draws one when an event is dropped on a task."""
    tree = tree_of('<bpmn:task id="T"/><bpmn:boundaryEvent id="B" name="?" attachedToRef="T"/>')
    warnings = normalize(tree, "x.bpmn")
    assert warnings == [
        'x.bpmn:3: B ("?"): the boundary event has no trigger, so it can never fire; it is ignored; '
        "choose its trigger or delete it"
    ]
    assert not tree.getroot().xpath("//bpmn:boundaryEvent", namespaces=NS)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '<bpmn:task id="T"/><bpmn:boundaryEvent id="B" attachedToRef="T"/>'
            '<bpmn:sequenceFlow id="f" sourceRef="B" targetRef="E"/><bpmn:endEvent id="E"/>',
            "x.bpmn:3: B: the boundary event has no trigger, so it can never fire; choose its trigger",
        ),
        (
            '<bpmn:task id="T"/><bpmn:boundaryEvent id="B" attachedToRef="T">'
            "<bpmn:compensateEventDefinition/></bpmn:boundaryEvent>",
            "x.bpmn:3: B: compensation is not supported: flowrun cannot undo completed work",
        ),
    ],
    ids=["untriggered-with-flow", "compensation"],
)
def test_boundary_events_that_cannot_run_are_refused(body, message):
    """Refused with the element and line, never SpiffWorkflow's XML dump."""
    with pytest.raises(ModelError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        normalize(tree_of(body), "x.bpmn")


# -- data stores and data associations --------------------------------------------------------


def test_data_store_is_ignored_with_a_warning_and_data_objects_still_work():
    """The store and its associations go; the data object passes the order on."""
    case = Case("data_store.bpmn")
    assert case.model.warnings == (
        'data_store.bpmn:6: DataStoreReference_crm ("CRM"): data store ignored; '
        "flowrun does not read or write data stores",
    )
    assert case.run.completed
    assert case.run.data()["items"] == 3


def test_declared_data_store_is_removed_everywhere():
    """SpiffWorkflow reads every <dataStore> of the file, so none may stay."""
    text = (
        f'<bpmn:definitions xmlns:bpmn="{BPMN}" id="d" targetNamespace="t"><bpmn:dataStore id="DS" name="ERP"/>'
        '<bpmn:process id="p"><bpmn:dataStoreReference id="R" dataStoreRef="DS"/></bpmn:process></bpmn:definitions>'
    )
    tree = etree.ElementTree(etree.fromstring(text.encode()))
    assert len(normalize(tree, "x.bpmn")) == 1
    assert not tree.getroot().xpath("//bpmn:dataStore | //bpmn:dataStoreReference", namespaces=NS)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ('<bpmn:dataObjectReference id="R" dataObjectRef="missing"/>', None),
        ("", 'a data association points at "R", which the file does not define'),
        ('<bpmn:ioSpecification><bpmn:dataInput id="R" name="Badge"/></bpmn:ioSpecification>', "connects dataInput"),
    ],
    ids=["data-object", "nothing", "process-input"],
)
def test_data_associations_spiffworkflow_cannot_resolve_are_refused_clearly(target, message):
    """Data object references are left to SpiffWorkflow; a missing id or a process input is refused."""
    tree = tree_of(
        f"""{target}<bpmn:task id="T" name="Read"><bpmn:dataInputAssociation id="A">
        <bpmn:sourceRef>R</bpmn:sourceRef></bpmn:dataInputAssociation></bpmn:task>"""
    )
    if message is None:
        normalize(tree, "x.bpmn")
        return
    with pytest.raises(ModelError, match=message) as err:
        normalize(tree, "x.bpmn")
    assert err.value.element == 'T ("Read")'
    assert err.value.line == 3


# -- timers -----------------------------------------------------------------------------------


def timer_model(tmp_path: Path, kind: str, value: str) -> Path:
    path = tmp_path / "timer.bpmn"
    tree = tree_of(
        f"""<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="wait"/>
        <bpmn:intermediateCatchEvent id="wait" name="Wait">
          <bpmn:timerEventDefinition><bpmn:{kind}>{value}</bpmn:{kind}></bpmn:timerEventDefinition>
        </bpmn:intermediateCatchEvent>"""
    )
    tree.write(str(path))
    return path


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("timeDuration", "PT48H"),
        ("timeDuration", "P1DT12H"),
        ("timeDuration", "P2W"),
        ("timeCycle", "R3/PT1H"),
        ("timeCycle", "R/P1D"),
        ("timeDate", "2099-03-01T09:00:00Z"),
        ("timeDate", "2099-03-01T09:00+01:00"),
        ("timeDuration", "${delay}"),
    ],
)
def test_timer_written_in_plain_iso_8601_waits(tmp_path, kind, value):
    """The instance parses the value and waits on the timer instead of failing."""
    model = load_model(timer_model(tmp_path, kind, value), "timer.bpmn")
    run = Engine(ManualClock(T0), lambda topic, data: {}).start(model.spec, {"delay": "PT1H"})
    waiting = run.waiting_for()
    assert len(waiting) == 1
    assert waiting[0].kind in ("durationtimer", "cycletimer", "timedate")
    assert not run.completed


@pytest.mark.parametrize("value", ['"PT48H"', "'P1D'", "timedelta(hours=48)", "due_date", "PTX"])
def test_timer_values_that_are_python_are_left_alone(value):
    """Quoted strings, calls and variable names are Python already."""
    tree = tree_of(
        f'<bpmn:intermediateCatchEvent id="w"><bpmn:timerEventDefinition><bpmn:timeDuration>{value}'
        "</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
    )
    normalize(tree, "x.bpmn")
    assert one(tree, "//bpmn:timeDuration").text == value


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ("<bpmn:timerEventDefinition/>", "the timer has no date, duration or cycle"),
        ("<bpmn:timerEventDefinition><bpmn:timeDate> </bpmn:timeDate></bpmn:timerEventDefinition>", "no date"),
        (
            "<bpmn:timerEventDefinition><bpmn:timeCycle>0/5 0/1 * 1/1 * ?</bpmn:timeCycle></bpmn:timerEventDefinition>",
            r"the timer cycle 0/5 0/1 \* 1/1 \* \? is a cron expression",
        ),
    ],
    ids=["no-value", "blank", "cron"],
)
def test_timers_that_cannot_run_are_refused(definition, message):
    """The timer's event is named, with how to fix it."""
    tree = tree_of(f'<bpmn:startEvent id="s" name="Daily">{definition}</bpmn:startEvent>')
    with pytest.raises(ModelError, match=message) as err:
        normalize(tree, "x.bpmn")
    assert err.value.element == 's ("Daily")'


def test_non_executable_processes_are_not_touched():
    """SpiffWorkflow never runs them, so their drawing stays as it is."""
    tree = tree_of(
        '<bpmn:task id="A"/><bpmn:intermediateCatchEvent id="w"><bpmn:timerEventDefinition/>'
        "</bpmn:intermediateCatchEvent>",
        executable="false",
    )
    before = etree.tostring(tree)
    assert normalize(tree, "x.bpmn") == []
    assert etree.tostring(tree) == before


# -- Camunda expressions ----------------------------------------------------------------------

ROUTES = [
    ({"amount": 150, "approved": True, "comment": "ok", "status": "new"}, "big"),
    ({"amount": 150, "approved": False, "comment": "", "status": "new"}, "no_comment"),
    ({"amount": 50, "approved": True, "comment": None, "status": "new"}, "no_comment"),
    ({"amount": 50, "approved": True, "comment": [], "status": "new"}, "no_comment"),
    ({"amount": 50, "approved": True, "comment": "ok", "status": "open"}, "open_case"),
    ({"amount": 50, "approved": True, "comment": "ok", "status": "closed"}, "other"),
]


@pytest.mark.parametrize(("data", "expected"), ROUTES)
def test_camunda_conditions_are_translated_and_route(data, expected):
    """${amount > 100 && approved}, ${empty comment} and ${status == 'open'} decide as in Camunda."""
    assert Case("camunda_conditions.bpmn", data).ready == {expected}


def test_translated_conditions_are_reported():
    """Each translation is a warning naming the flow, the EL and the Python that runs."""
    warnings = load_model(DATA / "camunda_conditions.bpmn", "camunda_conditions.bpmn").warnings
    assert warnings[0] == (
        'camunda_conditions.bpmn:8: Flow_big ("large and approved"): Camunda condition ${amount > 100 && approved} '
        "runs as the Python condition (amount > 100) and approved; write it in Python to be explicit"
    )
    assert len(warnings) == 3


def test_untranslatable_condition_is_refused_with_element_line_and_expression():
    """Method calls on execution have no Python equivalent."""
    with pytest.raises(ModelError) as err:
        load_model(DATA / "untranslatable.bpmn", "untranslatable.bpmn")
    assert err.value.file == "untranslatable.bpmn"
    assert err.value.line == 8
    assert err.value.element == 'Flow_yes ("x set")'
    assert str(err.value).startswith(
        'untranslatable.bpmn:8: Flow_yes ("x set"): condition ${execution.getVariable("x")} cannot be translated: '
    )
    assert str(err.value).endswith("write it as a Python expression such as amount > 100")


def test_condition_of_a_default_flow_is_ignored_as_bpmn_says():
    """A default flow's condition is never evaluated, so it is neither translated nor refused."""
    tree = tree_of(
        """<bpmn:exclusiveGateway id="G" default="f2"/>
        <bpmn:sequenceFlow id="f2" sourceRef="G" targetRef="E">
          <bpmn:conditionExpression>${a.b()}</bpmn:conditionExpression>
        </bpmn:sequenceFlow><bpmn:endEvent id="E"/>"""
    )
    assert normalize(tree, "x.bpmn") == []
