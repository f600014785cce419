"""Hostile file names and form schemas: nothing outside the project is opened, nothing is fetched, no pattern hangs.

A diagram names its forms (``camunda:formKey``, SpiffArena's ``formJsonSchemaFilename``),
its called processes and decisions; ``flowrun.yaml`` names folders. Each name is looked up
only inside the project, a form's ``$ref`` only inside the form, and a form's patterns are
matched in linear time, so ``flowrun validate`` and ``flowrun do`` refuse with a located
message instead of reading other files, reaching the network, or hanging.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.helpers import flowrun_executable, query

#: Paths opened while a test watches (see :func:`opened`); the audit hook stays for the session.
_WATCHING: list[list[str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _WATCHING and isinstance(args[0], (str, bytes, os.PathLike)):
        _WATCHING[-1].append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@pytest.fixture
def opened() -> Iterator[list[str]]:
    """Every file this process opens during the test."""
    seen: list[str] = []
    _WATCHING.append(seen)
    yield seen
    _WATCHING.remove(seen)


SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"


def diagram(form_attrs: str = "", extension: str = "", process_id: str = "ask", body: str = "") -> str:
    """One user task (``Ask``) between a start and an end event, with the form reference given."""
    ext = f"<bpmn:extensionElements>{extension}</bpmn:extensionElements>" if extension else ""
    task = body or (
        f'<bpmn:userTask id="Ask" name="Ask" {form_attrs}>{ext}'
        "<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>"
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:spiffworkflow="{SPIFF_NS}"
    id="defs" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="{process_id}" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    {task}
    <bpmn:endEvent id="EndEvent_1"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="StartEvent_1" targetRef="Ask" />
    <bpmn:sequenceFlow id="f2" sourceRef="Ask" targetRef="EndEvent_1" />
  </bpmn:process>
</bpmn:definitions>
"""


def spiff_form(name: str) -> str:
    return (
        f'<spiffworkflow:properties><spiffworkflow:property name="formJsonSchemaFilename" value="{name}" />'
        "</spiffworkflow:properties>"
    )


def with_form_key(project_dir: Path, key: str, attribute: str) -> Path:
    """processes/ask.bpmn, whose user task names its form ``key`` by ``attribute``."""
    if attribute == "camunda:formKey":
        text = diagram(form_attrs=f'camunda:formKey="{key}"')
    else:
        text = diagram(extension=spiff_form(key))
    path = project_dir / "processes" / "ask.bpmn"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A JSON Schema outside the project whose default would land in the case data if it were read."""
    path = tmp_path / "outside" / "secret.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"type": "object", "properties": {"stolen": {"type": "string", "default": "S3CRET"}}}))
    return path


def started_task(cli: Callable[..., Result], project_dir: Path) -> str:
    """Start processes/ask.bpmn; the ref of its ready task."""
    result = cli(project_dir, "start", "ask", "--json")
    assert result.exit_code == 0, result.stderr
    return str(json.loads(result.stdout)["ready"][0]["ref"])


def refused(result: Result, *words: str) -> str:
    """Exit 1 with one clean ``error:`` message holding every word."""
    text = result.stdout + result.stderr
    assert result.exit_code == 1, (result.exit_code, text)
    assert "Traceback" not in text
    assert "internal error" not in text
    for word in words:
        assert word in text, (word, text)
    return text


def escaping_keys(secret: Path) -> dict[str, str]:
    """Form keys that name ``secret`` (beside the project folder) from forms/, in every way a path can leave it."""
    return {
        "dot-dot": "../" * 12 + str(secret).lstrip("/"),
        "absolute": str(secret),
        "file-url": secret.as_uri(),
        "file-no-slashes": f"file:{secret}",
        "nested-climb": "sub/../../../outside/secret.json",
    }


KEY_KINDS = ["dot-dot", "absolute", "file-url", "file-no-slashes", "nested-climb"]


@pytest.mark.parametrize("attribute", ["camunda:formKey", "formJsonSchemaFilename"])
@pytest.mark.parametrize("kind", KEY_KINDS)
def test_form_key_leaving_the_project_is_refused_and_never_opened(cli, project_dir, secret, opened, attribute, kind):
    """validate names the file, task and attribute; do refuses; the outside file is never opened."""
    key = escaping_keys(secret)[kind]
    with_form_key(project_dir, key, attribute)
    opened.clear()
    found = refused(cli(project_dir, "validate", str(project_dir / "processes" / "ask.bpmn")), "processes/ask.bpmn")
    for word in ("Ask", attribute, "forms/ of the project"):
        assert word in found
    ref = started_task(cli, project_dir)
    refused(cli(project_dir, "do", ref, "--no-interactive"), f"task {ref}", "forms/ of the project", "element Ask")
    assert str(secret) not in opened
    assert not [p for p in opened if "secret" in p]
    data = query(project_dir, "SELECT data FROM instances")
    assert all("S3CRET" not in row[0] for row in data)


def test_symlink_in_forms_leading_outside_is_refused(cli, project_dir, secret, opened):
    """A link in forms/ to a file outside the project is not followed; a link to a form inside is."""
    (project_dir / "forms" / "shared.json").symlink_to(secret)
    (project_dir / "forms" / "alias.json").symlink_to(project_dir / "forms" / "record_complaint.json")
    with_form_key(project_dir, "shared", "formJsonSchemaFilename")
    opened.clear()
    refused(cli(project_dir, "validate", str(project_dir / "processes" / "ask.bpmn")), "symbolic link")
    ref = started_task(cli, project_dir)
    refused(cli(project_dir, "do", ref, "--no-interactive"), "symbolic link", "forms/ of the project")
    assert not [p for p in opened if "secret" in p]
    with_form_key(project_dir, "alias.json", "camunda:formKey")
    assert cli(project_dir, "validate", str(project_dir / "processes" / "ask.bpmn")).exit_code == 0


def test_forms_folder_linked_outside_is_refused(cli, project_dir, secret):
    """forms/ itself as a link to another folder counts as leaving the project too: the project is refused."""
    forms = project_dir / "forms"
    forms.rename(project_dir / "forms_real")
    forms.symlink_to(secret.parent)
    with_form_key(project_dir, "secret.json", "camunda:formKey")
    refused(cli(project_dir, "validate"), "flowrun.yaml", "forms_dir 'forms'", "symbolic link")
    refused(cli(project_dir, "tasks"), "forms_dir 'forms'", "symbolic link")


def test_form_key_with_a_loop_of_links_is_refused(cli, project_dir):
    """A link loop in forms/ is reported, not an internal error."""
    (project_dir / "forms" / "a.json").symlink_to(project_dir / "forms" / "b.json")
    (project_dir / "forms" / "b.json").symlink_to(project_dir / "forms" / "a.json")
    with_form_key(project_dir, "a.json", "camunda:formKey")
    refused(cli(project_dir, "validate", str(project_dir / "processes" / "ask.bpmn")), "loop of symbolic links")


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("forms_dir: ../../elsewhere\n", ("forms_dir", "climbs out of the project")),
        ("processes_dir: /etc\n", ("processes_dir", "absolute path")),
        ("processes:\n  stolen: {default: /etc/hostname}\n", ("process family 'stolen'", "absolute path")),
        ("processes:\n  stolen: {default: ../../../x.bpmn}\n", ("variant 'default'", "climbs out")),
    ],
)
def test_flowrun_yaml_folders_outside_the_project_are_refused(cli, project_dir, setting, words):
    """flowrun.yaml names folders and diagrams inside the project; anything else is a clear error."""
    (project_dir / "flowrun.yaml").write_text(setting)
    refused(cli(project_dir, "processes"), "flowrun.yaml", *words)


CALLER = diagram(
    process_id="caller",
    body=(
        '<bpmn:callActivity id="Ask" name="Ask" calledElement="stolen_process">'
        "<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:callActivity>"
    ),
)


def test_called_diagram_behind_a_link_leading_outside_is_not_read(cli, project_dir, tmp_path, opened):
    """A call activity finds called processes in processes/ only: a link there to a file outside is passed over."""
    outside = tmp_path / "outside_lib.bpmn"
    outside.write_text(diagram(process_id="stolen_process", form_attrs='camunda:formKey="x"'), encoding="utf-8")
    (project_dir / "processes" / "lib.bpmn").symlink_to(outside)
    (project_dir / "processes" / "caller.bpmn").write_text(CALLER, encoding="utf-8")
    opened.clear()  # from here on, flowrun works
    refused(
        cli(project_dir, "validate", str(project_dir / "processes" / "caller.bpmn")),
        "stolen_process",
        "lib.bpmn: symbolic links that lead out of the folder",
    )
    refused(cli(project_dir, "start", "caller"), "stolen_process")
    assert str(outside) not in opened


# -- $ref in form schemas ---------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A local port that records whether anything connected to it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    sock.settimeout(0.05)
    yield sock
    sock.close()


def nobody_connected(sock: socket.socket) -> bool:
    try:
        sock.accept()[0].close()
    except TimeoutError:
        return True
    return False


def ref_schemas(secret: Path, port: int) -> dict[str, tuple[dict[str, Any], tuple[str, ...]]]:
    """name -> (form schema, words the refusal holds)."""

    def one(prop: dict[str, Any], **top: Any) -> dict[str, Any]:
        return {"type": "object", "properties": {"v": prop}, **top}

    return {
        "file-uri": (one({"$ref": secret.as_uri()}), ("properties/v", "points outside the form")),
        "http": (one({"$ref": f"http://127.0.0.1:{port}/s.json"}), ("points outside the form", "fetches nothing")),
        "https-in-allof": (one({"allOf": [{"$ref": f"https://127.0.0.1:{port}/s"}]}), ("allOf/0",)),
        "relative-file": (one({"$ref": "secret.json#/properties"}), ("points outside the form",)),
        "missing-pointer": (one({"$ref": "#/$defs/absent"}), ("points to nothing", "#/$defs/absent")),
        "missing-anchor": (one({"$ref": "#no-such-anchor"}), ("points to nothing",)),
        "two-step-cycle": (
            one(
                {"$ref": "#/$defs/left"},
                **{"$defs": {"left": {"$ref": "#/$defs/right"}, "right": {"not": {"$ref": "#/$defs/left"}}}},
            ),
            ("lead back", "break the cycle"),
        ),
        "self": (one({"$ref": "#/properties/v"}), ("lead back",)),
        "nested-id": (one({"$id": f"http://127.0.0.1:{port}/v", "$ref": "#/x"}), ("$id",)),
    }


REF_KINDS = [
    "file-uri", "http", "https-in-allof", "relative-file", "missing-pointer", "missing-anchor",
    "two-step-cycle", "self", "nested-id",
]  # fmt: skip


@pytest.mark.parametrize("kind", REF_KINDS)
def test_form_ref_outside_the_form_is_refused_fetching_nothing(cli, project_dir, secret, listener, opened, kind):
    """validate and do refuse the form with the schema path; no file is read, no connection made."""
    schema, words = ref_schemas(secret, listener.getsockname()[1])[kind]
    (project_dir / "forms" / "refs.json").write_text(json.dumps(schema))
    with_form_key(project_dir, "refs.json", "camunda:formKey")
    opened.clear()
    refused(cli(project_dir, "validate", str(project_dir / "processes" / "ask.bpmn")), "forms/refs.json", *words)
    ref = started_task(cli, project_dir)
    refused(cli(project_dir, "do", ref, "--data", "v=1", "--no-interactive"), "forms/refs.json", *words)
    assert nobody_connected(listener)
    assert not [p for p in opened if "secret" in p]


def test_recursive_form_through_data_is_allowed(cli, project_dir):
    """A $ref cycle that descends into the data (a tree of items) is legal and checks as deep as the data."""
    schema = {
        "type": "object",
        "$defs": {
            "node": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}
        },
        "properties": {"tree": {"$ref": "#/$defs/node"}},
        "required": ["tree"],
    }
    legal_form(
        cli,
        project_dir,
        schema,
        refuses='tree={"kids": [{"kids": 3}]}',
        takes='tree={"kids": [{"kids": []}]}',
        why="is not of type 'array'",
    )


def legal_form(
    cli: Callable[..., Result], project_dir: Path, schema: dict[str, Any], refuses: str, takes: str, why: str
) -> None:
    """``schema`` passes validate; its task refuses ``refuses`` (saying ``why``) and completes with ``takes``."""
    (project_dir / "forms" / "legal.json").write_text(json.dumps(schema))
    with_form_key(project_dir, "legal.json", "camunda:formKey")
    assert cli(project_dir, "validate", str(project_dir / "processes" / "ask.bpmn")).exit_code == 0
    ref = started_task(cli, project_dir)
    refused(cli(project_dir, "do", ref, "--data", refuses, "--no-interactive"), why)
    done = cli(project_dir, "do", ref, "--data", takes, "--no-interactive")
    assert done.exit_code == 0, done.stderr


# -- patterns ---------------------------------------------------------------------------

#: name -> (pattern, an answer on which a backtracking engine takes exponential time)
HOSTILE_PATTERNS = {
    "nested-plus": (r"^(x+x+)+y$", "x" * 5000),
    "overlapping-alternation": (r"^(b|bb|bbb)*$", "b" * 5000 + "!"),
    "star-of-optional-words": (r"^(\w+\s?)*$", "word " * 1000 + "!"),
    "nested-groups": (r"^((c*)*)*d$", "c" * 5000),
}


def run_do(project_dir: Path, ref: str, data: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``flowrun do REF --data K=V ...`` as its own process, stopped after a generous 60 s."""
    args = [str(flowrun_executable()), "--project", str(project_dir), "do", ref]
    args += [arg for key, value in data.items() for arg in ("--data", f"{key}={value}")]
    return subprocess.run([*args, "--no-interactive"], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("flat", [True, False], ids=["flat-form", "jsonschema-form"])
def test_hostile_patterns_do_not_hang_flowrun_do(cli, project_dir, flat):
    """Each catastrophic-backtracking pattern answers "does not match" at once on a long answer."""
    props = {name: {"type": "string", "pattern": pattern} for name, (pattern, _) in HOSTILE_PATTERNS.items()}
    schema: dict[str, Any] = {"type": "object", "properties": props, "required": list(props)}
    if not flat:  # the same patterns again under allOf, which leaves the fast path for jsonschema
        schema["allOf"] = [{"properties": {name: {"pattern": p} for name, (p, _) in HOSTILE_PATTERNS.items()}}]
    (project_dir / "forms" / "patterns.json").write_text(json.dumps(schema))
    with_form_key(project_dir, "patterns.json", "camunda:formKey")
    ref = started_task(cli, project_dir)
    started = time.perf_counter()
    proc = run_do(project_dir, ref, {name: answer for name, (_, answer) in HOSTILE_PATTERNS.items()})
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("error: "), proc.stderr
    for name in HOSTILE_PATTERNS:
        assert f"  - {name}: " in proc.stderr, (name, proc.stderr[:2000])
    assert "does not match" in proc.stderr
    assert time.perf_counter() - started < 30


def test_hostile_pattern_properties_do_not_hang(cli, project_dir):
    """patternProperties and additionalProperties match keys with RE2 as well."""
    schema = {
        "type": "object",
        "properties": {"code": {"type": "object", "patternProperties": {"^(k+k+)+$": {"type": "integer"}},
                                "additionalProperties": False}},
    }  # fmt: skip
    (project_dir / "forms" / "keys.json").write_text(json.dumps(schema))
    with_form_key(project_dir, "keys.json", "camunda:formKey")
    ref = started_task(cli, project_dir)
    proc = run_do(project_dir, ref, {"code": json.dumps({"k" * 3000 + "!": 1})})
    assert proc.returncode == 1, proc.stderr
    assert "do not match any of the regexes" in proc.stderr or "does not match any of the regexes" in proc.stderr


@pytest.mark.parametrize(
    ("pattern", "feature"),
    [
        (r"^(ab)\1$", "backreference"),
        (r"^(?=.*\d)\w+$", "lookahead"),
        (r"(?<!x)y", "negative lookahead or lookbehind"),
        (r"^a{2000}$", "repetition count above 1000"),
        (r"(?>ab)c", "atomic group"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_with_the_feature(cli, project_dir, pattern, feature):
    """validate and do name the feature a pattern uses that linear-time matching lacks."""
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": pattern}}}
    (project_dir / "forms" / "bad_pattern.json").write_text(json.dumps(schema))
    with_form_key(project_dir, "bad_pattern.json", "camunda:formKey")
    found = refused(
        cli(project_dir, "validate", str(project_dir / "processes" / "ask.bpmn")), feature, "properties/code/pattern"
    )
    assert "re2.cc" not in found  # RE2's own log line stays silent
    ref = started_task(cli, project_dir)
    refused(cli(project_dir, "do", ref, "--data", "code=abab", "--no-interactive"), feature)


def test_patterns_re2_reads_run_in_both_paths(cli, project_dir):
    """Unicode classes and named groups, which RE2 reads, work in flat and jsonschema forms alike."""
    for extra in ({}, {"allOf": [{"required": ["code"]}]}):
        schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": r"^\p{Lu}(?P<rest>\w+)$"}}}
        legal_form(
            cli, project_dir, {**schema, **extra}, refuses="code=ärger", takes="code=Ärger", why="does not match"
        )


def test_form_key_too_long_for_the_file_system_is_a_clean_error(cli, project_dir):
    """A 300-character form key is reported as such, not as an unexpected OSError."""
    with_form_key(project_dir, "k" * 300, "camunda:formKey")
    found = refused(cli(project_dir, "validate", str(project_dir / "processes" / "ask.bpmn")), "cannot be looked up")
    assert "unexpected" not in found


# -- diagrams: only the project's own ------------------------------------------------------


def test_a_diagram_linked_from_outside_is_neither_started_listed_nor_read(cli, project_dir, tmp_path, opened):
    """A cloned project may hold processes/x.bpmn -> a file elsewhere: flowrun runs, lists and
    validates only the project's own diagrams, so the file behind the link is never opened."""
    outside = tmp_path / "elsewhere" / "visit.bpmn"
    outside.parent.mkdir()
    outside.write_text(diagram(process_id="visit_from_outside"), encoding="utf-8")
    (project_dir / "processes" / "visit.bpmn").symlink_to(outside)
    opened.clear()
    refused(
        cli(project_dir, "start", "visit"),
        "processes/visit.bpmn is a symbolic link that leads out of the project",
        "copy the file into processes/",
    )
    listing = cli(project_dir, "processes")
    assert listing.exit_code == 0, listing.output
    assert "visit" not in listing.output
    report = cli(project_dir, "validate")
    assert report.exit_code == 1, report.output
    assert "processes/visit.bpmn" in report.output
    assert "does not read it" in report.output
    assert str(outside) not in opened
    assert query(project_dir, "SELECT count(*) FROM instances")[0][0] == 0


def test_a_diagram_outside_the_project_named_on_the_command_line_is_refused(cli, project_dir, tmp_path, opened):
    """``flowrun start /some/where/x.bpmn`` would store and run a diagram the project does not hold."""
    outside = tmp_path / "loose.bpmn"
    outside.write_text(diagram(process_id="loose"), encoding="utf-8")
    opened.clear()
    refused(cli(project_dir, "start", str(outside)), "lies outside the project", "copy the file into processes/")
    assert str(outside) not in opened
    assert query(project_dir, "SELECT count(*) FROM instances")[0][0] == 0
