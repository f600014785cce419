"""flowrun's BPMN parser: SpiffWorkflow's Camunda parser with flowrun's user, service and rule tasks.

User tasks remember their form, service tasks the handler they call (see
:mod:`flowrun.engine.specs`), and business rule tasks accept the Camunda
(``camunda:decisionRef``) and SpiffArena (``calledDecisionId``) ways of naming
a decision.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser, full_tag
from SpiffWorkflow.bpmn.parser.event_parsers import BoundaryEventParser
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.camunda.parser.task_spec import (
    CAMUNDA_MODEL_NS,
    BusinessRuleTaskParser,
    CamundaTaskParser,
)

from flowrun.engine import due
from flowrun.engine._spiff import spiff_extensions
from flowrun.engine.assignment import ASSIGNMENT_KEY, read_assignment
from flowrun.engine.specs import (
    DUE_KEY,
    ERROR_CODE_VAR,
    ERROR_MESSAGE_VAR,
    FORM_KEY,
    PARAMS_KEY,
    PRIORITY_KEY,
    RESULT_KEY,
    TOPIC_KEY,
    FlowrunServiceTask,
    FlowrunUserTask,
)

_CAMUNDA = "{" + CAMUNDA_MODEL_NS + "}"


class UserTaskParser(CamundaTaskParser):  # type: ignore[misc]
    """Reads a user task, the form it asks for, and who may take it."""

    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        ext: dict[str, Any] = dict(super().parse_extensions(node))
        form = self._form()
        if form is not None:
            ext[FORM_KEY] = form
        try:
            assignment = read_assignment(self.node)
        except ValueError as exc:
            self.raise_validation_exception(f"{exc}; write it as a name, a comma list, or ${{variable}}")
        if assignment is not None:
            ext[ASSIGNMENT_KEY] = assignment
        for attribute, key in (("dueDate", DUE_KEY), ("priority", PRIORITY_KEY)):
            try:
                value = due.parse_value(self.node.get(_CAMUNDA + attribute))
            except ValueError as exc:
                raise ValidationException(
                    f"camunda:{attribute} cannot be translated: {exc}; write a value or a simple ${{...}} expression",
                    node=self.node,
                    file_name=self.filename,
                ) from None
            if value is not None:
                ext[key] = value
        return ext

    def _form(self) -> dict[str, Any] | None:
        fields = self.xpath(".//camunda:formData/camunda:formField")
        if fields:
            return {"fields": [_camunda_field(f) for f in fields], "key": self.node.get(_CAMUNDA + "formKey")}
        key = self.node.get(_CAMUNDA + "formKey")
        if key:
            return {"key": key}
        props = spiff_extensions(self.node).get("properties") or {}
        spiff_key = props.get("formJsonSchemaFilename")
        if spiff_key:
            return {"key": spiff_key}
        return None


def _camunda_field(node: Any) -> dict[str, Any]:
    values = [{"id": v.get("id"), "name": v.get("name")} for v in node if v.tag == _CAMUNDA + "value"]
    validation: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    for child in node:
        if child.tag == _CAMUNDA + "validation":
            for c in child:
                validation[c.get("name")] = c.get("config")
        elif child.tag == _CAMUNDA + "properties":
            for p in child:
                properties[p.get("id")] = p.get("value")
    return {
        "id": node.get("id"),
        "label": node.get("label"),
        "type": node.get("type") or "string",
        "default": node.get("defaultValue"),
        "values": values,
        "validation": validation,
        "properties": properties,
    }


class ServiceTaskParser(CamundaTaskParser):  # type: ignore[misc]
    """Reads which handler a service task calls, however the modeler wrote it."""

    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        ext: dict[str, Any] = dict(super().parse_extensions(node))
        n = self.node
        topic = None
        if n.get(_CAMUNDA + "type") == "external":
            topic = n.get(_CAMUNDA + "topic")
        topic = (
            topic
            or n.get(_CAMUNDA + "class")
            or n.get(_CAMUNDA + "expression")
            or n.get(_CAMUNDA + "delegateExpression")
        )
        operator = spiff_extensions(n).get("serviceTaskOperator")
        if operator:
            topic = topic or operator.get("name")
            params = {k: v.get("value") for k, v in (operator.get("parameters") or {}).items()}
            if params:
                ext[PARAMS_KEY] = params
            if operator.get("resultVariable"):
                ext[RESULT_KEY] = operator["resultVariable"]
        ext[TOPIC_KEY] = topic
        return ext


class DecisionTaskParser(BusinessRuleTaskParser):  # type: ignore[misc]
    """A business rule task naming its DMN decision the Camunda or the SpiffArena way."""

    @staticmethod
    def get_decision_ref(node: Any) -> str | None:
        ref = node.get(_CAMUNDA + "decisionRef") or spiff_extensions(node).get("calledDecisionId")
        return ref or None

    def create_task(self) -> Any:
        ref = self.get_decision_ref(self.node)
        if not ref:
            self.raise_validation_exception(
                "the business rule task names no decision; set camunda:decisionRef "
                "(Camunda Modeler: Implementation = DMN) to the id of a decision in processes/"
            )
        engine = self.process_parser.parser.get_engine(ref, self.node)
        return self.spec_class(self.spec, self.bpmn_id, dmnEngine=engine, **self.bpmn_attributes)


class ErrorAwareBoundaryParser(BoundaryEventParser):  # type: ignore[misc]
    """A boundary event that remembers where Camunda puts a caught error's code and message."""

    def parse_extensions(self, node: Any = None) -> dict[str, Any]:
        ext: dict[str, Any] = dict(super().parse_extensions(node) or {})
        for definition in self.xpath("./bpmn:errorEventDefinition"):
            code_var = definition.get(_CAMUNDA + "errorCodeVariable")
            message_var = definition.get(_CAMUNDA + "errorMessageVariable")
            if code_var:
                ext[ERROR_CODE_VAR] = code_var
            if message_var:
                ext[ERROR_MESSAGE_VAR] = message_var
        return ext


def _bpmn(tag: str) -> tuple[Any, Any]:
    return BpmnParser.PARSER_CLASSES[full_tag(tag)]  # type: ignore[no-any-return]


class FlowrunParser(CamundaParser):  # type: ignore[misc]
    """SpiffWorkflow's Camunda parser with flowrun's user and service tasks."""

    OVERRIDE_PARSER_CLASSES = {
        **CamundaParser.OVERRIDE_PARSER_CLASSES,
        # Events use the plain BPMN parsers: a caught message's or signal's data is merged
        # into the task data (Camunda's parsers would nest it under "<task>_Response").
        full_tag("startEvent"): _bpmn("startEvent"),
        full_tag("endEvent"): _bpmn("endEvent"),
        full_tag("intermediateCatchEvent"): _bpmn("intermediateCatchEvent"),
        full_tag("intermediateThrowEvent"): _bpmn("intermediateThrowEvent"),
        full_tag("boundaryEvent"): (ErrorAwareBoundaryParser, _bpmn("boundaryEvent")[1]),
        full_tag("userTask"): (UserTaskParser, FlowrunUserTask),
        full_tag("serviceTask"): (ServiceTaskParser, FlowrunServiceTask),
        full_tag("businessRuleTask"): (
            DecisionTaskParser,
            CamundaParser.OVERRIDE_PARSER_CLASSES[full_tag("businessRuleTask")][1],
        ),
    }
