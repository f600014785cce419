"""``flowrun validate``: every problem of a diagram at once, located, without running anything."""

from __future__ import annotations

import json
import shutil
import signal
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from flowrun import app
from flowrun.cli.main import cli as root
from flowrun.engine import validate as checks
from flowrun.models import Problem

DATA = Path(__file__).parent / "data" / "validate"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SUMMARY_CLEAN = "2 file(s) checked, 0 error(s), 0 warning(s)"

#: (line, element id, words of the message) of each problem planted in many_problems.bpmn.
PLANTED = [
    (8, "Task_Record", "form 'no_such_form.json' not found"),
    (13, "Task_Lookup", "'send_fax'"),
    (22, "Task_Score", "imports are not allowed"),
    (31, "Flow_Large", "not a valid Python expression"),
    (33, "Flow_Small", '"Task_Nowhere"'),
    (38, "Task_Wait", "`PT4X` is not a valid ISO 8601 duration"),
    (42, "Activity_Escalate", '"no_such_process"'),
    (47, "Task_Remedy", '"no_such_decision"'),
    (55, "Task_Record", 'the id "Task_Record" is already used by the userTask on line 8'),
]

BPMN_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" '
    'id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn">\n'
)


def diagram(body: str, extra: str = "") -> str:
    """A one-process diagram: start, ``body`` (reached by Flow_In, leaving by Flow_Out), end."""
    return (
        BPMN_HEAD + '  <bpmn:process id="p" name="P" isExecutable="true">\n'
        '    <bpmn:startEvent id="Start_1"><bpmn:outgoing>Flow_In</bpmn:outgoing></bpmn:startEvent>\n'
        '    <bpmn:sequenceFlow id="Flow_In" sourceRef="Start_1" targetRef="Body" />\n'
        f"    {body}\n"
        '    <bpmn:sequenceFlow id="Flow_Out" sourceRef="Body" targetRef="End_1" />\n'
        '    <bpmn:endEvent id="End_1"><bpmn:incoming>Flow_Out</bpmn:incoming></bpmn:endEvent>\n'
        f"  </bpmn:process>\n{extra}</bpmn:definitions>\n"
    )


@pytest.fixture
def alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with no flowrun.yaml in it or above it, as the current folder."""
    folder = tmp_path / "loose"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(root, list(args))
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result.exit_code, result.stdout, result.stderr


def found(problems: list[Problem] | tuple[Problem, ...], line: int, element: str, words: str) -> bool:
    return any(p.line == line and p.element == element and words in p.message for p in problems)


# -- the example and clean files -------------------------------------------------------


def test_shipped_example_validates_clean(cli, project_dir):
    """A new project's diagrams have nothing to report, and the command exits 0."""
    result = cli(project_dir, "validate")
    assert result.exit_code == 0, result.stdout
    assert result.stdout.strip() == SUMMARY_CLEAN


def test_app_validate_lists_the_project_files(project):
    """With no paths, processes/ and the files flowrun.yaml names are checked."""
    report = app.validate(project)
    assert report.files == ("processes/complaint_baseline.bpmn", "processes/complaint_reengineered.bpmn")
    assert report.problems == ()


def test_decision_and_quoted_timer_resolve(alone):
    """A business rule task finds its decision in a .dmn beside it; a quoted ISO duration parses."""
    shutil.copy(DATA / "remedy.dmn", alone)
    shutil.copy(DATA / "choose_remedy.bpmn", alone)
    code, out, err = run("validate", ".")
    assert (code, out.strip()) == (0, SUMMARY_CLEAN)
    assert err.startswith("note: no flowrun.yaml")


# -- every problem at once ---------------------------------------------------------------


def test_every_planted_problem_is_reported_with_its_line(cli, project_dir):
    """Nine different problems in one diagram: all reported at once, each at its line and element."""
    target = project_dir / "processes" / "many_problems.bpmn"
    shutil.copy(DATA / "many_problems.bpmn", target)
    result = cli(project_dir, "validate", str(target))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[-1] == "1 file(s) checked, 9 error(s), 0 warning(s)"
    for line, element, words in PLANTED:
        prefix = f"processes/many_problems.bpmn:{line}: {element} ("
        assert any(text.startswith(prefix) and words in text for text in lines), (line, element, lines)


def test_app_reports_the_same_problems(project):
    """The use case returns located Problems with a message and a fix."""
    target = project.settings.processes_dir / "many_problems.bpmn"
    shutil.copy(DATA / "many_problems.bpmn", target)
    report = app.validate(project, [target])
    assert (report.errors, report.warnings) == (len(PLANTED), 0)
    for line, element, words in PLANTED:
        assert found(report.problems, line, element, words), (line, element, report.problems)
    assert all(p.fix and p.file == "processes/many_problems.bpmn" for p in report.problems)


def test_problem_text_format():
    """``file:line: element-id ("name"): what is wrong; how to fix it``; warnings say so."""
    error = Problem("p.bpmn", 7, "Task_A", "Check it", "the script is refused", "remove the import")
    assert str(error) == 'p.bpmn:7: Task_A ("Check it"): the script is refused; remove the import'
    warning = Problem("p.bpmn", None, "p", None, "no start event", "draw one", "warning")
    assert str(warning) == "p.bpmn: p: warning: no start event; draw one"


def test_without_a_project_forms_and_topics_are_skipped(alone):
    """Files given without a flowrun.yaml are checked alone, with a note on stderr."""
    shutil.copy(DATA / "many_problems.bpmn", alone)
    code, out, err = run("validate", "many_problems.bpmn")
    assert code == 1
    assert "forms and service topics were not checked" in err
    assert "send_fax" not in out
    assert "no_such_form" not in out
    assert out.splitlines()[-1] == "1 file(s) checked, 7 error(s), 0 warning(s)"


def test_no_paths_and_no_project_is_an_error(alone):
    """Nothing to check: the usual project error, exit 1."""
    code, _, err = run("validate")
    assert code == 1
    assert err.startswith("error: no flowrun.yaml found")


# -- unreadable files ----------------------------------------------------------------------


def test_malformed_xml_reports_its_line(alone):
    """A broken tag is reported at the line the parser stopped on."""
    text = diagram('<bpmn:task id="Body">\n    <bpmn:outgoing>Flow_Out</bpmn:outgoing>')
    (alone / "broken.bpmn").write_text(text)
    code, out, _ = run("validate", "broken.bpmn")
    assert code == 1
    assert out.startswith("broken.bpmn:10: not well-formed XML (Opening and ending tag mismatch")


def test_doctype_is_refused(alone):
    """A DOCTYPE (the door to entity expansion) is refused before parsing, at its line."""
    text = diagram('<bpmn:task id="Body" name="&lol;" />').replace(
        "\n", '\n<!DOCTYPE bpmn:definitions [<!ENTITY lol "lol">]>\n', 1
    )
    (alone / "doctype.bpmn").write_text(text)
    code, out, _ = run("validate", "doctype.bpmn")
    assert code == 1
    assert out.startswith("doctype.bpmn:2: the file declares a DOCTYPE")
    assert "lol" not in out


def test_missing_file_is_a_problem_not_a_crash(alone):
    """A path that does not exist is reported like any other problem."""
    code, out, _ = run("validate", "nowhere.bpmn")
    assert code == 1
    assert out.startswith("nowhere.bpmn: file not found")


# -- the schema, warnings, expressions, decisions ------------------------------------------


def test_schema_errors_are_all_reported(alone):
    """Every violation of the BPMN 2.0 schema, not just the first, each at its line."""
    text = diagram('<bpmn:task id="Body"><bpmn:bogus /></bpmn:task>\n    <bpmn:unknownThing id="U" />')
    (alone / "schema.bpmn").write_text(text)
    report = app.validate(None, [Path("schema.bpmn")])
    schema = [p for p in report.problems if "BPMN 2.0 schema" in p.message]
    assert [(p.line, p.severity) for p in schema] == [(6, "error"), (7, "error")]
    assert "<bpmn:bogus>" in schema[0].message
    assert schema[0].fix.startswith("the element is misplaced")


def test_drawing_details_are_only_warnings(alone):
    """A vendor's colour on a diagram shape fails the XSD but is harmless: a warning, exit 0."""
    extra = (
        '  <bpmndi:BPMNDiagram id="D"><bpmndi:BPMNPlane id="Plane" bpmnElement="p">\n'
        '    <bpmndi:BPMNShape id="Body_di" bpmnElement="Body" background-color="#fff">'
        '<dc:Bounds x="0" y="0" width="100" height="80" /></bpmndi:BPMNShape>\n'
        "  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>\n"
    )
    (alone / "coloured.bpmn").write_text(diagram('<bpmn:task id="Body" name="Work" />', extra))
    code, out, _ = run("validate", "coloured.bpmn")
    assert code == 0, out
    assert out.startswith("coloured.bpmn:11: Body_di: warning: does not fit the BPMN 2.0 schema: <bpmndi:BPMNShape>")
    assert out.splitlines()[-1] == "1 file(s) checked, 0 error(s), 1 warning(s)"


def test_camunda_expressions_without_a_translator(alone, monkeypatch):
    """When flowrun cannot translate ${...}, the condition is reported with a Python rewrite."""
    monkeypatch.setattr(checks.code, "_el_translate", lambda: None)
    body = (
        '<bpmn:exclusiveGateway id="Body" default="Flow_Out" />\n'
        '    <bpmn:sequenceFlow id="Flow_Big" sourceRef="Body" targetRef="End_1">'
        "<bpmn:conditionExpression>${amount &gt; 100 &amp;&amp; approved}</bpmn:conditionExpression>"
        "</bpmn:sequenceFlow>"
    )
    (alone / "el.bpmn").write_text(diagram(body))
    report = app.validate(None, [Path("el.bpmn")])
    (problem,) = [p for p in report.problems if p.element == "Flow_Big" and p.severity == "error"]
    assert "Camunda expression" in problem.message
    assert problem.fix.endswith("e.g. amount > 100 and approved")


def test_camunda_expressions_with_the_translator(alone):
    """With flowrun.engine.el present, a plain ${...} condition is accepted."""
    pytest.importorskip("flowrun.engine.el")
    body = (
        '<bpmn:exclusiveGateway id="Body" default="Flow_Out" />\n'
        '    <bpmn:sequenceFlow id="Flow_Big" sourceRef="Body" targetRef="End_1">'
        "<bpmn:conditionExpression>${amount &gt; 100}</bpmn:conditionExpression></bpmn:sequenceFlow>"
    )
    (alone / "el.bpmn").write_text(diagram(body))
    report = app.validate(None, [Path("el.bpmn")])
    assert report.errors == 0, report.problems


def test_dmn_with_two_decisions_is_an_error(alone):
    """flowrun reads one decision per DMN file; a second one is reported where it starts."""
    text = (DATA / "remedy.dmn").read_text()
    second = text[text.index("  <decision") : text.index("</definitions>")].replace('"choose_remedy"', '"other"')
    (alone / "two.dmn").write_text(text.replace("</definitions>", second + "</definitions>"))
    report = app.validate(None, [Path("two.dmn")])
    (problem,) = report.problems
    assert (problem.line, problem.element) == (29, "other")
    assert "2 decisions" in problem.message


def test_loader_warnings_become_warning_problems(alone, monkeypatch):
    """What the loader left out to run a diagram is passed on as located warnings."""
    from flowrun.engine import loader

    def fake_load(path, display, search_dir=None):
        text = f'{display}:4: Store_1 ("Ledger"): the data store is left out; the engine has no data stores'
        return SimpleNamespace(file=display, warnings=(text,))  # a ModelInfo, as far as validate looks

    monkeypatch.setattr(loader, "load_model", fake_load)
    (alone / "store.bpmn").write_text(diagram('<bpmn:task id="Body" />'))
    report = app.validate(None, [Path("store.bpmn")])
    expected = Problem("store.bpmn", 4, "Store_1", "Ledger", "the data store is left out", "", "warning")
    assert report.problems == (replace(expected, fix="the engine has no data stores"),)


def test_json_shape(alone):
    """``--json`` gives the files, every problem's fields and the counts."""
    shutil.copy(DATA / "many_problems.bpmn", alone)
    shutil.copy(DATA / "remedy.dmn", alone)
    code, out, _ = run("validate", "many_problems.bpmn", "remedy.dmn", "--json")
    assert code == 1
    doc = json.loads(out)
    assert set(doc) == {"files", "problems", "errors", "warnings"}
    assert doc["files"] == ["many_problems.bpmn", "remedy.dmn"]
    assert (doc["errors"], doc["warnings"]) == (7, 0)
    first = doc["problems"][0]
    assert set(first) == {"file", "line", "element", "name", "message", "fix", "severity"}
    assert (first["file"], first["line"], first["element"], first["name"]) == (
        "many_problems.bpmn",
        22,
        "Task_Score",
        "Score complaint",
    )


# -- the third-party corpus ----------------------------------------------------------------

CORPUS_FILES = sorted(
    p for p in CORPUS.rglob("*") if p.is_file() and p.name.lower().endswith((".bpmn", ".bpmn20.xml", ".dmn"))
)


@pytest.mark.skipif(not CORPUS_FILES, reason="../shared/corpus is not present")
def test_corpus_never_raises(alone):
    """Each third-party file, checked alone as ``flowrun validate FILE --json``: JSON out, no crash, in time."""
    runner = CliRunner()
    began = time.monotonic()
    outcomes = {"clean": 0, "warnings": 0, "errors": 0}
    previous = signal.signal(signal.SIGALRM, _too_slow)
    signal.alarm(120)
    try:
        for path in CORPUS_FILES:
            result = runner.invoke(root, ["validate", str(path), "--json"])
            assert result.exception is None or isinstance(result.exception, SystemExit), (path, result.exception)
            assert result.exit_code in (0, 1), (path, result.stderr)
            doc = json.loads(result.stdout)
            assert doc["files"] == [str(path)]
            assert all(p["file"] and p["message"] and p["severity"] in ("error", "warning") for p in doc["problems"])
            outcomes["errors" if doc["errors"] else "warnings" if doc["warnings"] else "clean"] += 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - began < 60, outcomes
    assert outcomes["clean"] >= 50, outcomes


def _too_slow(signum, frame):
    raise TimeoutError("validating the corpus took more than 120 s")
