"""Scripts and conditions from diagrams run restricted: escapes are refused, failures change nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from flowrun import app
from flowrun.engine.sandbox import SandboxError, evaluate, execute
from flowrun.errors import ScriptError
from tests.helpers import flowrun_executable, query

DATA = Path(__file__).parent / "data"

#: Python a diagram could carry to break out, and how the sandbox stops it.
HOSTILE = {
    "subclasses": ("().__class__.__base__.__subclasses__()", SandboxError),
    "dunder-import": ("__import__('os')", SandboxError),
    "open": ("open('/etc/passwd')", NameError),
    "getattr": ("getattr(1, '__class__')", NameError),
    "type": ("type(1)", NameError),
    "globals-of-lambda": ("(lambda: 0).__globals__", SandboxError),
    "eval": ("eval('1')", SandboxError),
    "format-escape": ("'{0.__class__}'.format(1)", NotImplementedError),
    "module-loader": ("math.__loader__", SandboxError),
    "generator-frame": ("(i for i in [1]).gi_frame", SandboxError),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_condition_is_refused(name):
    """A hostile expression never evaluates."""
    source, error = HOSTILE[name]
    with pytest.raises(error):
        evaluate(source, {"amount": 1})


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_script_is_refused_and_changes_nothing(name):
    """A hostile script never runs, and the task data stays as it was."""
    source, error = HOSTILE[name]
    data = {"amount": 1}
    with pytest.raises(error):
        execute(f"before = 1\nx = {source}", data)
    assert data == {"amount": 1}


@pytest.mark.parametrize(
    "script",
    ["import os", "from os import path", "x = 1\nimport subprocess as sp", "def f():\n    import os\n    return os"],
)
def test_imports_are_refused_with_their_line(script):
    """``import`` anywhere in a script is refused, naming the line."""
    with pytest.raises(SandboxError, match="imports are not allowed") as caught:
        execute(script, {})
    assert caught.value.line == script[: script.index("import")].count("\n") + 1


def test_normal_script_computes():
    """Ordinary scripts compute with the data, builtins, math and dates."""
    data = {"items": [4, 5, 6], "severity": "high"}
    execute(
        "total = sum(items)\n"
        "label = 'big' if total > 10 else 'small'\n"
        "root = math.sqrt(total + 1)\n"
        "due = (date(2026, 3, 2) + timedelta(days=sla)).isoformat() if False else None\n"
        "sla = {'high': 4, 'low': 72}[severity]\n"
        "doubled = [i * 2 for i in sorted(items, reverse=True)]\n"
        "total += 1\n",
        data,
    )
    assert data == {
        "items": [4, 5, 6],
        "severity": "high",
        "total": 16,
        "label": "big",
        "root": 4.0,
        "due": None,
        "sla": 4,
        "doubled": [12, 10, 8],
    }
    assert evaluate("total > 10 and label == 'big'", data) is True
    assert evaluate("amount <= limit", {"amount": 100, "limit": 100.0}) is True


def test_script_failing_half_way_leaves_data_unchanged():
    """The assignments before the failing line are not kept."""
    data = {"x": 3, "items": [1]}
    with pytest.raises(IndexError):
        execute("y = x * 2\nitems.append(9)\nz = items[5]", data)
    assert data == {"x": 3, "items": [1]}


# -- end to end, through diagrams ---------------------------------------------------


def _diagram(process_id: str, body: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    id="Definitions_{process_id}" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="{process_id}" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
{body}
  </bpmn:process>
</bpmn:definitions>
"""


def script_diagram(process_id: str, script: str) -> str:
    return _diagram(
        process_id,
        f"""
    <bpmn:sequenceFlow id="f1" sourceRef="StartEvent_1" targetRef="Task_Script" />
    <bpmn:scriptTask id="Task_Script" name="Compute" scriptFormat="python">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>{escape(script)}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="Task_Script" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>""",
    )


def condition_diagram(process_id: str, condition: str) -> str:
    return _diagram(
        process_id,
        f"""
    <bpmn:sequenceFlow id="f1" sourceRef="StartEvent_1" targetRef="Gateway_Check" />
    <bpmn:exclusiveGateway id="Gateway_Check" name="Check?" default="f_no">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f_yes</bpmn:outgoing><bpmn:outgoing>f_no</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f_yes" sourceRef="Gateway_Check" targetRef="End_Yes">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(condition)}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_no" sourceRef="Gateway_Check" targetRef="End_No" />
    <bpmn:endEvent id="End_Yes"><bpmn:incoming>f_yes</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="End_No"><bpmn:incoming>f_no</bpmn:incoming></bpmn:endEvent>""",
    )


def _no_instances(project_dir: Path) -> None:
    assert query(project_dir, "SELECT count(*) FROM instances") == [(0,)]
    assert query(project_dir, "SELECT count(*) FROM tasks") == [(0,)]


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_script_task_stops_start(project, project_dir, name):
    """A diagram whose script task is hostile cannot be started; nothing is stored."""
    (project_dir / "processes" / "evil.bpmn").write_text(script_diagram("evil", f"x = {HOSTILE[name][0]}"))
    with pytest.raises(ScriptError, match="Task_Script"):
        app.start(project, "evil")
    _no_instances(project_dir)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_gateway_condition_stops_start(project, project_dir, name):
    """A diagram whose gateway condition is hostile cannot be started; nothing is stored."""
    (project_dir / "processes" / "evil.bpmn").write_text(condition_diagram("evil", HOSTILE[name][0]))
    with pytest.raises(ScriptError):
        app.start(project, "evil")
    _no_instances(project_dir)


def test_script_and_condition_run_in_a_diagram(project, project_dir):
    """A harmless script computes and its result routes the gateway."""
    body = script_diagram("calc", "total = sum(items)\nbig = total > 10").replace(
        '<bpmn:endEvent id="EndEvent_1">', '<bpmn:endEvent id="EndEvent_1" name="Done">'
    )
    (project_dir / "processes" / "calc.bpmn").write_text(body)
    result = app.start(project, "calc", {"items": [4, 5, 6]})
    assert result.status == "completed"
    assert app.show(project, result.instance).data == {"items": [4, 5, 6], "total": 15, "big": True}
    (project_dir / "processes" / "route.bpmn").write_text(condition_diagram("route", "total > 10"))
    _, tasks = app.history(project, app.start(project, "route", {"total": 11}).instance)
    assert [t.task_id and t.bpmn_id for t in tasks] == ["StartEvent_1", "End_Yes"]


def test_gateway_condition_cannot_change_data(project, project_dir):
    """Evaluating a gateway condition leaves the process data as it was."""
    (project_dir / "processes" / "sneaky.bpmn").write_text(
        condition_diagram("sneaky", "items.append(3) is None and len(items) > 5")
    )
    result = app.start(project, "sneaky", {"items": [1, 2]})
    assert app.show(project, result.instance).data == {"items": [1, 2]}


def test_hostile_script_file_end_to_end(project, project_dir, cli):
    """tests/data/hostile_script.bpmn is refused by app.start and by the CLI, storing nothing."""
    shutil.copy(DATA / "hostile_script.bpmn", project_dir / "processes" / "hostile_script.bpmn")

    with pytest.raises(ScriptError, match="Task_Hostile") as caught:
        app.start(project, "hostile_script")
    assert "__subclasses__" in str(caught.value)

    result = cli(project_dir, "start", "hostile_script")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Task_Hostile" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    _no_instances(project_dir)


def test_endless_script_is_stopped(project_dir):
    """A script that never ends is stopped with an error instead of hanging the command."""
    (project_dir / "processes" / "loop.bpmn").write_text(script_diagram("loop", "while True:\n    pass"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    env["FLOWRUN_SCRIPT_SECONDS"] = "2"
    proc = subprocess.Popen(
        [str(flowrun_executable()), "start", "loop"],
        cwd=project_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = proc.communicate(timeout=8)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("flowrun start was still running a 'while True' script after 8 s")
    assert proc.returncode == 1
    assert "Task_Script" in err
