"""Hostile and broken input: XML bombs, external entities, huge files, runaway scripts, unsaveable data.

Each is refused quickly with a clear message (exit 1, no traceback) and leaves
the database as it was; a diagram in an unusual but legal encoding loads and
runs with its names intact.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result

from flowrun import app
from flowrun.engine import load_model
from flowrun.errors import ModelError, ScriptError
from tests.helpers import cli_json, db_path, flowrun_executable, query

EVENTS = Path(__file__).parent / "data" / "events"
REPO = Path(__file__).resolve().parent.parent

#: A small valid diagram whose text the hostile files are built around.
VALID = (EVENTS / "timer_catch.bpmn").read_text(encoding="utf-8")
BODY = VALID.split("\n", 1)[1]  # without the XML declaration


def billion_laughs(levels: int = 10) -> str:
    """The classic entity bomb: ``&lol9;`` expands to 10**9 'lol's (about 3 GB) if a parser lets it."""
    entities = ['  <!ENTITY lol "lol">']
    for i in range(1, levels):
        previous = "lol" if i == 1 else f"lol{i - 1}"
        entities.append(f'  <!ENTITY lol{i} "{f"&{previous};" * 10}">')
    doctype = "<!DOCTYPE lolz [\n" + "\n".join(entities) + "\n]>\n"
    return '<?xml version="1.0"?>\n' + doctype + BODY.replace('name="Ship order"', f'name="&lol{levels - 1};"')


def external_entity() -> str:
    doctype = '<!DOCTYPE definitions [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    return '<?xml version="1.0"?>\n' + doctype + BODY.replace('name="Ship order"', 'name="&xxe;"')


def doctype_only() -> str:
    return '<?xml version="1.0"?>\n<!DOCTYPE definitions>\n' + BODY


#: name -> (file bytes, words the refusal must contain)
HOSTILE_XML = {
    "billion-laughs": (billion_laughs().encode("utf-8"), ("DOCTYPE",)),
    "external-entity": (external_entity().encode("utf-8"), ("DOCTYPE",)),
    "doctype-only": (doctype_only().encode("utf-8"), ("DOCTYPE",)),
    "billion-laughs-utf16": (
        billion_laughs().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>').encode("utf-16"),
        ("DOCTYPE",),
    ),
    "external-entity-utf16be": (
        external_entity()
        .replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16BE"?>')
        .encode("utf-16-be"),
        ("DOCTYPE",),
    ),
}


@pytest.fixture
def hostile_file(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, tuple[str, ...]]:
    data, words = HOSTILE_XML[request.param]
    path = tmp_path / f"{request.param}.bpmn"
    path.write_bytes(data)
    return path, words


def big_file(folder: Path, megabytes: int = 20) -> Path:
    """A valid diagram padded with a comment to ``megabytes`` MB."""
    path = folder / "huge.bpmn"
    head, tail = VALID.rsplit("</bpmn:definitions>", 1)
    with path.open("wb") as f:
        f.write(head.encode())
        f.write(b"<!-- " + b"x" * (megabytes * 1024 * 1024) + b" -->\n")
        f.write(b"</bpmn:definitions>" + tail.encode())
    return path


def refused_by_cli(cli: Callable[..., Result], project_dir: Path, path: Path, *words: str) -> Result:
    """``flowrun start FILE`` exits 1 with a clean message in under a second and stores nothing."""
    assert cli(project_dir, "db", "upgrade").exit_code == 0  # the database exists: only the refusal is timed
    path = Path(shutil.copyfile(path, project_dir / "processes" / path.name))  # flowrun runs only its own
    started = time.perf_counter()
    result: Result = cli(project_dir, "start", str(path))
    took = time.perf_counter() - started
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.startswith("error: ")
    for word in words:
        assert word in result.stderr
    assert took < 1.0, f"refusing {path.name} took {took:.2f} s"
    return result


def rows(project_dir: Path) -> tuple[list[tuple[Any, ...]], ...]:
    """The rows of instances, tasks and events (empty before the SQLite database exists)."""
    if not db_path(project_dir).exists() and "postgresql" not in (project_dir / "flowrun.yaml").read_text():
        return ([], [], [])
    return (
        query(project_dir, "SELECT * FROM instances ORDER BY id"),
        query(project_dir, "SELECT * FROM tasks ORDER BY id"),
        query(project_dir, "SELECT * FROM events ORDER BY id"),
    )


def counts(project_dir: Path) -> tuple[int, int, int]:
    instances, tasks, events = rows(project_dir)
    return len(instances), len(tasks), len(events)


# -- hostile XML -------------------------------------------------------------------------


@pytest.mark.parametrize("hostile_file", list(HOSTILE_XML), indirect=True)
def test_hostile_xml_is_refused_by_load_model(hostile_file):
    path, words = hostile_file
    started = time.perf_counter()
    with pytest.raises(ModelError) as caught:
        load_model(path, path.name)
    assert time.perf_counter() - started < 1.0
    assert caught.value.file == path.name
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize("hostile_file", list(HOSTILE_XML), indirect=True)
def test_hostile_xml_is_refused_by_start(cli, project_dir, hostile_file):
    path, words = hostile_file
    result = refused_by_cli(cli, project_dir, path, *words)
    assert path.name in result.stderr
    assert counts(project_dir) == (0, 0, 0)


def test_external_entity_never_reads_the_file(cli, project_dir, tmp_path):
    """Nothing of /etc/passwd appears anywhere: not in the message, not in a stored name."""
    path = tmp_path / "xxe.bpmn"
    path.write_text(external_entity())
    result = refused_by_cli(cli, project_dir, path, "DOCTYPE")
    assert "root:" not in result.stdout + result.stderr


def test_billion_laughs_refusal_stays_small_in_memory(tmp_path):
    """Refusing the entity bomb allocates next to nothing (Python heap and process RSS alike)."""
    path = tmp_path / "lol.bpmn"
    path.write_text(billion_laughs())

    tracemalloc.start()
    try:
        with pytest.raises(ModelError):
            load_model(path, path.name)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024, f"peak Python allocation {peak / 1e6:.1f} MB"

    # libxml2 allocates outside the Python heap: measure a fresh process's peak RSS too.
    probe = (
        "import resource, sys, time\n"
        "from flowrun.engine import load_model\n"
        "from flowrun.errors import ModelError\n"
        "import flowrun.engine.loader\n"
        "from pathlib import Path\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "t = time.perf_counter()\n"
        "try:\n"
        "    load_model(Path(sys.argv[1]), 'lol.bpmn')\n"
        "    print('LOADED')\n"
        "except ModelError:\n"
        "    pass\n"
        "took = time.perf_counter() - t\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(after - before, took)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    grown_kb, took = proc.stdout.split()
    assert int(grown_kb) < 50 * 1024, f"RSS grew by {int(grown_kb) / 1024:.1f} MB"
    assert float(took) < 1.0


def test_twenty_megabyte_file_is_refused_quickly_with_its_size(cli, project_dir, tmp_path):
    path = big_file(tmp_path)
    started = time.perf_counter()
    with pytest.raises(ModelError, match="MiB") as caught:
        load_model(path, path.name)
    assert time.perf_counter() - started < 1.0
    assert re.search(r"the file is 2\d{4} KiB, more than the \d+ MiB", str(caught.value))
    result = refused_by_cli(cli, project_dir, path, "MiB", "huge.bpmn")
    assert "split it" in result.stderr
    assert counts(project_dir) == (0, 0, 0)


UTF16_NAMES = {
    "process": "Réclamation — 苦情処理",
    "lane": "Kundendienst Über-Team",
    "first": "Prüfen & bestätigen (確認)",
    "second": "Rückruf 📞 an Kundin",
}


def test_utf16_diagram_with_non_ascii_names_loads_and_runs(project, project_dir):
    """A UTF-16 file (with BOM) loads in under a second and every name survives to the inbox and history."""
    path = EVENTS / "utf16_names.bpmn"
    assert path.read_bytes()[:2] == b"\xff\xfe"
    started = time.perf_counter()
    info = load_model(path, path.name)
    assert time.perf_counter() - started < 1.0
    assert info.process_id == "utf16_names"
    assert info.name == UTF16_NAMES["process"]
    assert info.lanes == (UTF16_NAMES["lane"],)

    shutil.copy(path, project_dir / "processes" / path.name)
    iid = app.start(project, "utf16_names").instance
    [item] = app.inbox(project, iid)
    assert (item.name, item.lane) == (UTF16_NAMES["first"], UTF16_NAMES["lane"])
    app.complete(project, str(item.ref), {"notiz": "Grüße 👋"})
    [item] = app.inbox(project, iid)
    assert item.name == UTF16_NAMES["second"]
    _, tasks = app.history(project, iid)
    assert [t.name for t in tasks] == ["Beschwerde eingegangen", UTF16_NAMES["first"], UTF16_NAMES["second"]]
    assert app.show(project, iid).data == {"notiz": "Grüße 👋"}


def test_utf16_diagram_runs_from_the_cli(cli, project_dir):
    """``flowrun start FILE --json`` on the UTF-16 file prints the names as they are."""
    shutil.copyfile(EVENTS / "utf16_names.bpmn", project_dir / "processes" / "utf16_names.bpmn")
    started = time.perf_counter()
    out = cli_json(cli(project_dir, "start", "utf16_names", "--json"))
    assert time.perf_counter() - started < 1.0
    assert [(t["name"], t["lane"]) for t in out["ready"]] == [(UTF16_NAMES["first"], UTF16_NAMES["lane"])]


# -- runaway and failing scripts ---------------------------------------------------------


def _add(project_dir: Path, name: str) -> None:
    shutil.copy(EVENTS / f"{name}.bpmn", project_dir / "processes" / f"{name}.bpmn")


def run_measured(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str, str, float, int]:
    """Run a command; its exit code, stdout, stderr, wall time and peak RSS in KiB (from wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        status, usage = None, None
        while time.monotonic() - started < timeout:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.01)
        else:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = -9
            pytest.fail(f"{' '.join(args[1:])} still ran after {timeout} s")
        took = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read(), err.read(), took, usage.ru_maxrss


def script_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    env["FLOWRUN_NOW"] = "2026-03-02T09:00:00+00:00"
    env.update(extra)
    return env


@pytest.fixture
def after_task(project: app.Project, project_dir: Path) -> Callable[..., tuple[str, str]]:
    """Start a diagram whose script runs after the user task 'Enter details'; yields (instance, ref)."""

    def start(name: str, data: dict[str, Any] | None = None) -> tuple[str, str]:
        _add(project_dir, name)
        started = app.start(project, name, data or {})
        [task] = started.ready
        assert task.name == "Enter details"
        return started.instance, str(task.ref)

    return start


def test_endless_script_is_stopped_and_the_instance_keeps_its_last_state(project, project_dir, after_task):
    """``while True: pass`` after a user task: ``do`` fails within FLOWRUN_SCRIPT_SECONDS, nothing is saved."""
    iid, ref = after_task("script_endless", {"amount": 3})
    before = rows(project_dir)
    code, out, err, took, _ = run_measured(
        [str(flowrun_executable()), "do", ref, "--data", "note=x", "--no-interactive"],
        project_dir,
        script_env(FLOWRUN_SCRIPT_SECONDS="1"),
        timeout=20,
    )
    assert code == 1, (out, err)
    assert "Traceback" not in err
    assert err.startswith("error: ")
    assert "Task_Compute" in err
    assert "FLOWRUN_SCRIPT_SECONDS" in err
    assert "1 s of CPU time" in err
    assert took < 5.0, f"stopping the endless script took {took:.1f} s"
    assert rows(project_dir) == before
    assert [(str(i.ref), i.name) for i in app.inbox(project, iid)] == [(ref, "Enter details")]
    assert app.show(project, iid).data == {"amount": 3}


def test_greedy_script_fails_with_memory_error_instead_of_eating_the_machine(project, project_dir, after_task):
    """A script allocating without bound hits FLOWRUN_SCRIPT_MEMORY_MB and fails cleanly; nothing is saved."""
    iid, ref = after_task("script_memory")
    before = rows(project_dir)
    code, out, err, took, peak_kib = run_measured(
        [str(flowrun_executable()), "do", ref, "--data", "note=x", "--no-interactive"],
        project_dir,
        script_env(FLOWRUN_SCRIPT_MEMORY_MB="200", FLOWRUN_SCRIPT_SECONDS="20"),
        timeout=30,
    )
    assert code == 1, (out, err)
    assert "Traceback" not in err
    assert err.startswith("error: ")
    assert "MemoryError" in err
    assert "Task_Compute" in err
    assert peak_kib < 600 * 1024, f"the process grew to {peak_kib / 1024:.0f} MB"
    assert took < 10.0
    assert rows(project_dir) == before
    assert [(str(i.ref), i.name) for i in app.inbox(project, iid)] == [(ref, "Enter details")]


def test_script_failing_half_way_leaves_the_task_data_as_it_was(cli, project, project_dir, after_task):
    """Assignments and list appends before the failing line are not kept; the user task is still ready."""
    iid, ref = after_task("script_half_way", {"amount": 3, "items": [1]})
    before = rows(project_dir)
    result = cli(project_dir, "do", ref, "--data", "note=x", "--no-interactive")
    assert result.exit_code == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "Task_Compute" in result.stderr
    assert "IndexError" in result.stderr
    assert rows(project_dir) == before
    assert app.show(project, iid).data == {"amount": 3, "items": [1]}

    with pytest.raises(ScriptError, match="Task_Compute"):
        app.complete(project, ref, {"note": "x"})
    assert rows(project_dir) == before


# -- unsaveable data ---------------------------------------------------------------------

SERVICES = '''"""Handlers returning values that cannot be stored."""


def give_set(data):
    return {"tags": {1, 2}}


def give_bytes(data):
    return {"blob": b"\\x00\\x01"}
'''


@pytest.fixture
def saved_dir(project_dir: Path, project: app.Project) -> Path:
    """A project holding one running instance already, so 'nothing written' is checked against real rows."""
    app.start(project, "complaint:baseline")
    return project_dir


def refused(result: Result, *words: str) -> None:
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["--data", "typename=1"], "'typename'"),
        (["--data", "__class__=x"], "'__class__'"),
        (["--data", "x=NaN"], "x is nan"),
        (["--data", "x=-Infinity"], "x is -inf"),
        (["--data", 'nested={"typename": 1}'], "'typename' in nested"),
    ],
    ids=["typename", "dunder", "nan", "infinity", "nested-typename"],
)
def test_unsaveable_start_data_is_refused(cli, saved_dir, args, key):
    before = rows(saved_dir)
    assert counts(saved_dir) > (0, 0, 0)
    refused(cli(saved_dir, "start", "complaint:baseline", *args), key)
    assert rows(saved_dir) == before


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("tags: !!set {a: null, b: null}\n", "tags is a set"),
        ("blob: !!binary aGVsbG8=\n", "blob is a bytes"),
        ("nested:\n  deep: !!set {a: null}\n", "nested.deep is a set"),
        ("when: 2026-03-02\nitems: [1, .nan]\n", "items[1] is nan"),
    ],
    ids=["set", "binary", "nested-set", "nan-in-list"],
)
def test_unsaveable_data_file_is_refused(cli, saved_dir, tmp_path, text, key):
    data_file = tmp_path / "data.yaml"
    data_file.write_text(text)
    before = rows(saved_dir)
    refused(cli(saved_dir, "start", "complaint:baseline", "--data-file", str(data_file)), key)
    assert rows(saved_dir) == before


def test_binary_data_file_is_refused_cleanly(cli, saved_dir, tmp_path):
    data_file = tmp_path / "data.json"
    data_file.write_bytes(bytes(range(256)) * 4)
    before = rows(saved_dir)
    result = cli(saved_dir, "start", "complaint:baseline", "--data-file", str(data_file))
    assert result.exit_code in (1, 2), (result.exit_code, result.stderr)
    assert "internal error" not in result.stderr
    assert "data.json" in result.stderr
    assert rows(saved_dir) == before


def test_unsaveable_task_data_is_refused(cli, saved_dir, project):
    _add(saved_dir, "timer_boundary")
    [item] = app.start(project, "timer_boundary").ready  # a user task without a form: no schema in the way
    before = rows(saved_dir)
    refused(cli(saved_dir, "do", str(item.ref), "--data", "x=NaN", "--no-interactive"), "x is nan")
    assert rows(saved_dir) == before


@pytest.fixture
def greedy_services(saved_dir: Path) -> Path:
    (saved_dir / "odd_services.py").write_text(SERVICES)
    config_file = saved_dir / "flowrun.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["services"].update({"give_set": "odd_services:give_set", "give_bytes": "odd_services:give_bytes"})
    config_file.write_text(yaml.safe_dump(config))
    for topic in ("give_set", "give_bytes"):
        text = (EVENTS / "bpmn_error.bpmn").read_text()
        text = text.replace('camunda:topic="reserve_stock"', f'camunda:topic="{topic}"')
        text = text.replace('id="bpmn_error"', f'id="{topic}"')
        (saved_dir / "processes" / f"{topic}.bpmn").write_text(text)
    return saved_dir


@pytest.mark.parametrize(("topic", "key"), [("give_set", "tags is a set"), ("give_bytes", "blob is a bytes")])
def test_handler_returning_unsaveable_data_is_refused(cli, greedy_services, topic, key):
    before = rows(greedy_services)
    refused(cli(greedy_services, "start", topic), key, topic)
    assert rows(greedy_services) == before


def test_script_producing_a_set_is_refused(cli, project, project_dir, after_task):
    iid, ref = after_task("script_set")
    before = rows(project_dir)
    refused(cli(project_dir, "do", ref, "--data", "note=x", "--no-interactive"), "s")
    assert rows(project_dir) == before
