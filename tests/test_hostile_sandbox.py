"""Hostile diagram code: it cannot outrun the CPU limit, control flowrun, clobber data names or hide its reason.

The CPU limit holds against code that catches exceptions (in-process, with a low
budget) and against loops inside one C call (the installed ``flowrun`` command, whose
supervisor's kernel limit kills the step); ``SystemExit``/``KeyboardInterrupt`` are
not reachable from a diagram, whatever a diagram raises is a located script error;
any legal data name survives a script; the documented helpers work; memory and deep
data fail with their own words; conditions, DMN rules, multi-instance and timer
expressions keep the reason in the message.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest

from flowrun import app
from flowrun.engine import sandbox, step_limits
from flowrun.engine.sandbox import SandboxError, evaluate, execute
from flowrun.errors import DataError, ScriptError
from tests.conftest import ON_POSTGRES
from tests.helpers import T0, flowrun_executable, query
from tests.test_sandbox import condition_diagram, script_diagram

EVENTS = Path(__file__).parent / "data" / "events"
VALIDATE = Path(__file__).parent / "data" / "validate"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def quick_limit(monkeypatch: pytest.MonkeyPatch) -> float:
    """The in-process CPU budget of a step lowered to 0.3 s (the process installs its limits once)."""
    with sandbox.limits():
        pass
    monkeypatch.setitem(step_limits._INSTALLED, "seconds", 0.3)
    return 0.3


def _write(project_dir: Path, name: str, text: str) -> None:
    (project_dir / "processes" / f"{name}.bpmn").write_text(text)


def _no_instances(project_dir: Path) -> None:
    assert query(project_dir, "SELECT count(*) FROM instances") == [(0,)]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    env.update(extra)
    return env


def _flowrun(project_dir: Path, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed ``flowrun`` command (under its supervisor); a hang fails the test after ``timeout``."""
    try:
        return subprocess.run(
            [str(flowrun_executable()), *args],
            cwd=project_dir,
            env=_env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"flowrun {' '.join(args)} still ran after {timeout} s")


# -- 1a. the CPU stop cannot be caught or swallowed ------------------------------------------

#: Scripts that try to keep running past the stop by catching it.
CATCHING = {
    "except-exception-in-a-loop": (
        "rounds = 0\nwhile True:\n    try:\n        while True:\n            rounds += 1\n"
        "    except Exception as exc:\n        rounds = -1\n"
    ),
    "except-tuple-in-a-generator": (
        "def spin():\n    while True:\n        try:\n            yield 1\n"
        "        except (ArithmeticError, LookupError, Exception):\n            pass\n"
        "total = sum(spin())\n"
    ),
    "shadowed-error-name": (
        "ValueError = 5\nwhile True:\n    try:\n        while True:\n            pass\n"
        "    except ValueError:\n        pass\n"
    ),
}


@pytest.mark.parametrize("name", list(CATCHING))
def test_a_script_catching_everything_is_still_stopped(project, project_dir, quick_limit, name):
    """A script that catches errors around an endless loop is stopped within the budget, located; nothing saved."""
    _write(project_dir, "spin", script_diagram("spin", CATCHING[name]))
    started = time.process_time()
    with pytest.raises(ScriptError) as caught:
        app.start(project, "spin", {"ValueError": "data"})
    assert time.process_time() - started < 5
    message = str(caught.value)
    assert "Task_Script" in message
    assert "CPU time" in message
    assert "FLOWRUN_SCRIPT_SECONDS" in message
    _no_instances(project_dir)


@pytest.mark.parametrize(
    ("script", "words"),
    [
        ("try:\n    x = 1\nexcept:\n    x = 2", ("Line 3", "bare 'except:'")),
        ("try:\n    x = 1\nexcept BaseException:\n    x = 2", ("Line 3", "except BaseException")),
        ("try:\n    x = 1\nexcept (KeyError, GeneratorExit):\n    x = 2", ("Line 3", "except GeneratorExit")),
        ("try:\n    x = 1\nexcept my_errors:\n    x = 2", ("Line 3", "except my_errors")),
        ("try:\n    x = 1\nexcept math.nothing:\n    x = 2", ("Line 3", "except math.nothing")),
        ("y = 0\ntry:\n    x = 1\nfinally:\n    y = 1", ("Line 5", "'finally' is not allowed")),
        ("try:\n    x = 1\nexcept* ValueError:\n    x = 2", ("Line 1", "TryStar")),
    ],
    ids=["bare", "base-exception", "generator-exit-in-tuple", "unknown-name", "attribute", "finally", "except-star"],
)
def test_handlers_that_could_swallow_the_stop_are_refused_with_their_line(script, words):
    """Compiling refuses the except clauses and finally blocks a stop could be swallowed by, naming the line."""
    with pytest.raises(SandboxError) as caught:
        execute(script, {})
    for word in words:
        assert word in str(caught.value)


def test_shared_and_cyclic_script_data_is_measured_without_hanging():
    """The size check after a script counts a container met again once, so a cycle or sharing ends quickly."""
    data: dict[str, Any] = {}
    started = time.process_time()
    execute("loop = []\nloop.append(loop)\nrow = ['x' * 100]\ngrid = [row] * 1000", data)
    assert time.process_time() - started < 1
    assert data["grid"][0] is data["row"]


def test_named_builtin_errors_are_still_caught():
    """Ordinary error handling keeps working, even when data shadows the error's name."""
    data = {"KeyError": "a string", "amounts": {"a": 1}}
    execute(
        "try:\n    x = amounts['b']\nexcept (KeyError, IndexError) as missing:\n    x = 'none: ' + str(missing)\n"
        "try:\n    y = 1 / 0\nexcept Exception:\n    y = 0\n",
        data,
    )
    assert data == {"KeyError": "a string", "amounts": {"a": 1}, "x": "none: 'b'", "y": 0}


# -- 1b. loops inside C: the supervisor's kernel limit ----------------------------------------


def test_a_condition_looping_inside_c_is_killed_and_reported(project, project_dir):
    """``flowrun start`` of a condition spinning in one C call ends with one message, exit 1, nothing saved."""
    _write(project_dir, "cspin", condition_diagram("cspin", "min(iter(float, 1.0)) > 0"))
    done = _flowrun(project_dir, "start", "cspin", FLOWRUN_SCRIPT_SECONDS="0.5")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.count("error: ") == 1, done.stderr
    assert "Gateway_Check" in done.stderr
    assert "inside a built-in function" in done.stderr
    assert "0.5 s of CPU" in done.stderr
    assert "of the new instance (not started)" in done.stderr  # its id would name nothing saved
    assert "Traceback" not in done.stderr
    _no_instances(project_dir)


def _timer_script(name: str, script: str) -> str:
    text = (EVENTS / "timer_then_script.bpmn").read_text()
    return text.replace("average = total / count", escape(script)).replace('id="timer_then_script"', f'id="{name}"')


def test_worker_once_survives_a_c_loop_and_serves_the_other_instances(project, project_dir):
    """A timer firing into a C-level loop: that instance gets an incident, the others run, the worker exits 0."""
    _write(project_dir, "good", _timer_script("good", "average = total / count"))
    _write(project_dir, "spinner", _timer_script("spinner", "big = sum(range(7 * 10**16))"))
    bad = app.start(project, "spinner").instance
    good = [app.start(project, "good", {"total": 9, "count": 3}).instance for _ in range(2)]
    later = (T0.replace(hour=T0.hour + 2)).isoformat()

    done = _flowrun(project_dir, "worker", "--once", FLOWRUN_SCRIPT_SECONDS="0.5", FLOWRUN_NOW=later)

    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "inside a built-in function" in done.stderr
    assert bad[:8] in done.stderr
    stamped = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ ")  # every worker line: the time, its zone
    assert all(stamped.match(line) for line in (done.stdout + done.stderr).splitlines()), done
    assert "Task_Average" in done.stderr
    for iid in good:
        assert app.show(project, iid).data["average"] == 3
        assert [i.name for i in app.inbox(project, iid)] == ["Read report"]
    [incident] = app.incidents(project)
    assert incident.instance == bad
    assert "FLOWRUN_SCRIPT_SECONDS" in incident.message
    assert app.show(project, bad).status == "error"


def test_supervisor_imports_only_the_standard_library_before_forking():
    """The console script's module loads neither click nor the rest of flowrun by itself."""
    code = "import sys, flowrun.cli.supervisor; print(sorted(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    loaded = set(json.loads(done.stdout.replace("'", '"')))
    assert not {m for m in loaded if m.startswith(("click", "flowrun.cli.main", "flowrun.engine", "flowrun.app"))}


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["worker", "--once"], "worker"),
        (["--project", "worker", "worker"], "worker"),
        (["--project", "p", "start", "worker"], "start"),
        (["--version"], ""),
    ],
)
def test_the_supervisor_finds_the_command_it_runs(args, command):
    """Only a worker's kill becomes an incident: the supervisor reads the command past ``--project``'s value."""
    from flowrun.cli.supervisor import _command

    assert _command(args) == command


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the supervisor runs on Linux only")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_sent_to_the_command_reaches_the_worker(project, project_dir, signum):
    """SIGINT or SIGTERM sent to ``flowrun worker`` (the supervisor) stops the worker cleanly: exit 0."""
    proc = subprocess.Popen(
        [str(flowrun_executable()), "worker", "--interval", "0.05"],
        cwd=project_dir,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_database(proc.pid, project_dir)
        os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 0, err
    assert "worker stopped after" in err


def _wait_for_database(pid: int, project_dir: Path, timeout: float = 30) -> None:
    """Until the supervised child of ``pid`` has the project's database open (on PostgreSQL: a socket)."""
    db = "socket:" if ON_POSTGRES else str(project_dir / ".flowrun")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = _children(pid)
        try:
            if kids and any(
                os.readlink(f"/proc/{kids[0]}/fd/{fd}").startswith(db) for fd in os.listdir(f"/proc/{kids[0]}/fd")
            ):
                return
        except OSError:
            pass
        time.sleep(0.02)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the supervisor runs on Linux only")
def test_a_real_ctrl_c_on_the_terminal_still_interrupts(project_dir):
    """Ctrl-C typed on the terminal during a long script: one "interrupted" line, exit 130, nothing saved."""
    import pty
    import select

    _write(project_dir, "long", script_diagram("long", "n = 0\nwhile True:\n    n += 1"))
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child becomes flowrun
        os.chdir(project_dir)
        argv = ["flowrun", "start", "long"]
        os.execve(str(flowrun_executable()), argv, _env(FLOWRUN_SCRIPT_SECONDS="30"))  # noqa: S606
    out = b""
    try:
        _wait_for_database(pid, project_dir)
        time.sleep(0.5)  # into the script
        os.write(fd, b"\x03")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
    finally:
        deadline = time.monotonic() + 30
        ended, status = os.waitpid(pid, os.WNOHANG)
        while not ended and time.monotonic() < deadline:
            time.sleep(0.05)
            ended, status = os.waitpid(pid, os.WNOHANG)
        if not ended:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 130, text
    assert text.count("interrupted; nothing was saved") == 1, text
    _no_instances(project_dir)


# -- 2. diagram code does not control flowrun ------------------------------------------------

#: Scripts raising what would stop flowrun or read as Ctrl-C, and the words of their located error.
RAISING = {
    "system-exit": ("raise SystemExit(3)", "SystemExit"),
    "keyboard-interrupt": ("if True:\n    raise KeyboardInterrupt('bye')", "KeyboardInterrupt"),
    "generator-exit": ("x = [GeneratorExit]", "GeneratorExit"),
    "base-exception-from-mro": ("top = ValueError.mro()[-2]\nraise top('from the top')", "BaseException"),
}


@pytest.mark.parametrize("name", list(RAISING))
def test_start_of_a_script_raising_control_exceptions_is_a_located_error(project_dir, name):
    """``flowrun start``: exit 1 with the task named, never a silent exit, never "interrupted"."""
    script, word = RAISING[name]
    _write(project_dir, "raiser", script_diagram("raiser", script))
    done = _flowrun(project_dir, "start", "raiser")
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert done.stderr.startswith("error: ")
    assert "Task_Script" in done.stderr
    assert word in done.stderr
    assert "interrupted" not in done.stderr
    assert "Traceback" not in done.stderr
    _no_instances(project_dir)


def test_a_looping_worker_keeps_running_after_a_script_raises_a_base_exception(project, project_dir):
    """The worker opens an incident for the raising instance and goes on to the next pass."""
    _write(project_dir, "quitter", _timer_script("quitter", "raise ValueError.mro()[-2]()"))
    bad = app.start(project, "quitter").instance
    later = (T0.replace(hour=T0.hour + 2)).isoformat()
    proc = subprocess.Popen(
        [str(flowrun_executable()), "worker", "--interval", "0.05"],
        cwd=project_dir,
        env=_env(FLOWRUN_NOW=later),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not app.incidents(project) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert proc.poll() is None, "the worker stopped"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.communicate()
    [incident] = app.incidents(project)
    assert incident.instance == bad
    assert "Task_Average" in incident.message
    assert "BaseException" in incident.message
    assert proc.returncode == 0, err


# -- 3. data names and the sandbox's names ---------------------------------------------------

SHADOWING = ["date", "math", "datetime", "timedelta", "printed", "print", "_getattr_", "_print", "_write_", "_", "sum"]


@pytest.mark.parametrize("name", SHADOWING)
def test_a_data_variable_survives_and_leaves_the_helpers_alone(name):
    """A data variable with the name of a helper, a hook or a reserved word is kept, and later scripts still work."""
    data = {name: "kept as it was", "n": 2}
    execute("m = n * 2", data)
    assert data == {name: "kept as it was", "n": 2, "m": 4}
    later: dict[str, Any] = {"n": 3}
    execute(
        "root = math.sqrt(n * 3)\nwhen = (date(2026, 3, 2) + timedelta(days=n)).isoformat()\n"
        "stamp = datetime(2026, 3, 2, 8).isoformat()\ntotal = sum([n, 1])\nprint(n)\nshown = printed\n",
        later,
    )
    assert later["root"] == 3.0
    assert later["when"] == "2026-03-05"
    assert later["total"] == 4
    assert later["stamp"] == "2026-03-02T08:00:00"
    assert later["shown"] == "3\n"


def test_data_names_survive_a_diagram_end_to_end(cli, project, project_dir):
    """Through ``flowrun start``: odd data names come back unchanged after a script ran with them."""
    _write(project_dir, "names", script_diagram("names", "label = 'x' + str(len(items))"))
    data = {"date": "2026-01-01", "math": 7, "_getattr_": "evil", "printed": True, "_print": [1], "items": [1, 2]}
    args = [a for k, v in data.items() for a in ("--data", f"{k}={json.dumps(v)}")]
    result = cli(project_dir, "start", "names", *args, "--json")
    assert result.exit_code == 0, result.stderr
    iid = json.loads(result.stdout)["id"]
    assert app.show(project, iid).data == {**data, "label": "x2"}


# -- 4. the documented helpers ---------------------------------------------------------------

HELPERS = {
    "strftime": ("date(2026, 3, 2).strftime('%d.%m.%Y')", "02.03.2026"),
    "datetime-strftime": ("datetime(2026, 3, 2, 14, 5).strftime('%H:%M on %A')", "14:05 on Monday"),
    "strptime": ("datetime.strptime('02/03/2026 14:05', '%d/%m/%Y %H:%M').isoformat()", "2026-03-02T14:05:00"),
    "timetuple": ("date(2026, 3, 2).timetuple().tm_yday", 61),
    "isoformat-arithmetic": ("(datetime(2026, 3, 2) + timedelta(hours=36)).isoformat()", "2026-03-03T12:00:00"),
    "fromisoformat": ("date.fromisoformat('2026-03-02').weekday()", 0),
    "timedelta-seconds": ("timedelta(days=1, minutes=30).total_seconds()", 88200.0),
    "math": ("math.floor(math.log10(12345)) + math.ceil(math.pi)", 8),
    "builtins": (
        "[len('abc'), min(4, 2), max([1, 9]), sum([1, 2]), sorted([3, 1])[0], round(2.567, 1), abs(-2), "
        "int('7'), float('1.5'), str(3), bool(0), list(reversed([1, 2])), any([0, 1]), all([1, 1]), "
        "dict(zip(['a'], [1])), list(map(str, [1])), list(filter(None, [0, 2])), list(enumerate('a')), "
        "tuple(range(2)), set([1]) == {1}, next(iter([5])), isinstance(1, int), divmod(7, 2), pow(2, 3)]",
        [
            3,
            2,
            9,
            3,
            1,
            2.6,
            2,
            7,
            1.5,
            "3",
            False,
            [2, 1],
            True,
            True,
            {"a": 1},
            ["1"],
            [2],
            [(0, "a")],
            (0, 1),
            True,
            5,
            True,
            (3, 1),
            8,
        ],
    ),
}


@pytest.mark.parametrize("name", list(HELPERS))
def test_documented_helpers_work(name):
    """Each helper docs/designers.md names works in a condition and in a script."""
    source, expected = HELPERS[name]
    assert evaluate(source, {}) == expected
    data: dict[str, object] = {}
    execute(f"result = {source}", data)
    assert data["result"] == expected


@pytest.mark.parametrize("module", ["os", "sys", "subprocess", "importlib", "builtins", "time.os"])
def test_the_sandbox_import_hook_allows_only_what_datetime_imports(module):
    """The builtins' ``__import__`` (which only datetime's C code reaches) refuses every other module."""
    with pytest.raises(ImportError, match="imports are not allowed"):
        sandbox._BUILTINS["__import__"](module)
    with pytest.raises(ImportError):
        sandbox._BUILTINS["__import__"]("time", None, None, (), 1)


# -- 5. memory --------------------------------------------------------------------------------


def test_a_script_holding_too_much_memory_is_a_located_error(project_dir):
    """A script allocating past FLOWRUN_SCRIPT_MEMORY_MB fails naming the task and the limit; nothing saved."""
    _write(project_dir, "hog", script_diagram("hog", "parts = ['ab' * 1000]\nblob = 'cd' * 300_000_000"))
    done = _flowrun(project_dir, "start", "hog", FLOWRUN_SCRIPT_MEMORY_MB="150")
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Task_Script" in done.stderr
    assert "FLOWRUN_SCRIPT_MEMORY_MB" in done.stderr
    assert "internal error" not in done.stderr
    _no_instances(project_dir)


def test_data_too_big_to_save_within_the_memory_limit_is_refused(project_dir):
    """A script leaving data that fits the limit but could not be saved within it: located, exit 1, nothing saved."""
    _write(
        project_dir, "big", script_diagram("big", "rows = [str(i) * 10 for i in range(10)]\nblob = 'e' * 40_000_000")
    )
    done = _flowrun(project_dir, "start", "big", FLOWRUN_SCRIPT_MEMORY_MB="200")
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Task_Script" in done.stderr
    assert "more than 25 MB of task data" in done.stderr
    assert "FLOWRUN_SCRIPT_MEMORY_MB" in done.stderr
    assert "internal error" not in done.stderr
    _no_instances(project_dir)


# -- 6. reasons kept ---------------------------------------------------------------------------


def _multi_instance(process_id: str, cardinality: str) -> str:
    loop = (
        '<bpmn:multiInstanceLoopCharacteristics isSequential="true">'
        f"<bpmn:loopCardinality>{escape(cardinality)}</bpmn:loopCardinality>"
        "</bpmn:multiInstanceLoopCharacteristics>"
    )
    text = script_diagram(process_id, "done_one = True")
    return text.replace("<bpmn:outgoing>f2</bpmn:outgoing>", "<bpmn:outgoing>f2</bpmn:outgoing>" + loop, 1)


def _timer(process_id: str, duration: str) -> str:
    text = (EVENTS / "timer_then_script.bpmn").read_text().replace('id="timer_then_script"', f'id="{process_id}"')
    return text.replace(">PT1H<", f">{escape(duration)}<")


SPIN = "sum(1 for tick in iter(int, 1))"

#: name -> (diagram maker, expression, data, words the message keeps)
REASONS = {
    "gateway-unknown-name": (
        condition_diagram,
        "refund_limit > 10",
        {},
        ("Gateway_Check", "NameError", "refund_limit"),
    ),
    "gateway-timeout": (condition_diagram, f"{SPIN} > 0", {}, ("Gateway_Check", "CPU time")),
    "multi-instance-type": (_multi_instance, "copies + 1", {"copies": "two"}, ("Task_Script", "TypeError", "copies")),
    "multi-instance-timeout": (_multi_instance, SPIN, {}, ("Task_Script", "CPU time")),
    "timer-unknown-name": (_timer, "'PT' + str(wait_hours) + 'H'", {}, ("Event_Night", "NameError", "wait_hours")),
    "timer-timeout": (_timer, f"'PT' + str({SPIN}) + 'H'", {}, ("Event_Night", "CPU time")),
}


@pytest.mark.parametrize("name", list(REASONS))
def test_failing_expressions_keep_their_reason(project, project_dir, quick_limit, name):
    """Conditions, multi-instance and timer expressions: the message names the element and why it failed."""
    make, expression, data, words = REASONS[name]
    _write(project_dir, "why", make("why", expression))
    with pytest.raises(ScriptError) as caught:
        app.start(project, "why", data)
    for word in words:
        assert word in str(caught.value)
    _no_instances(project_dir)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"amount_disputed": "lots"}, ("Task_ChooseRemedy", "TypeError", "row 1")),
        ({}, ("Task_ChooseRemedy", "NameError", "amount_disputed")),
    ],
    ids=["type", "unknown-name"],
)
def test_failing_dmn_rules_keep_their_reason(project, project_dir, data, words):
    """A decision table whose rule cannot be evaluated names the task, the row and the reason."""
    for name in ("choose_remedy.bpmn", "remedy.dmn"):
        (project_dir / "processes" / name).write_text((VALIDATE / name).read_text())
    app.start(project, "choose_remedy", {"amount_disputed": 50})  # the table itself works
    with pytest.raises(ScriptError) as caught:
        app.start(project, "choose_remedy", data)
    for word in words:
        assert word in str(caught.value)


def _deep(levels: int) -> list[object]:
    value: list[object] = []
    for _ in range(levels):
        value = [value]
    return value


def test_deeply_nested_data_blames_the_data_not_the_script(project, project_dir):
    """Data that can be stored but is too deep to copy for a script: the message says so and names no script."""
    _write(project_dir, "innocent", script_diagram("innocent", "ok = True"))
    with pytest.raises(DataError) as caught:
        app.start(project, "innocent", {"tree": _deep(700)})
    assert "nested too deeply" in str(caught.value)
    assert "Task_Script" not in str(caught.value)
    assert "fix the script" not in str(caught.value)


def test_a_script_building_deep_data_is_refused_without_internal_error(project_dir):
    """``flowrun start``: data a script nested thousands deep ends in the depth message, exit 1, nothing saved."""
    _write(project_dir, "deepen", script_diagram("deepen", "tree = []\nfor level in range(4000):\n    tree = [tree]"))
    done = _flowrun(project_dir, "start", "deepen")
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "nested too deeply" in done.stderr
    assert "internal error" not in done.stderr
    _no_instances(project_dir)


@pytest.mark.parametrize(
    "source",
    ["order.missing_attribute", "amount.real.nope > 3", "'text'.upperr()", "datetime(2026, 1, 2).weekdayy()"],
)
def test_a_missing_attribute_is_an_error_not_none(source):
    """RestrictedPython's stock attribute hook answers None for a missing attribute; a misspelt
    attribute in a condition must fail with the name instead of quietly steering a gateway."""
    with pytest.raises(AttributeError, match="has no attribute"):
        evaluate(source, {"order": 5, "amount": 7})


def test_attributes_that_exist_still_read():
    assert evaluate("amount.real + datetime(2026, 1, 2).year", {"amount": 7}) == 2033
    assert evaluate("'abc'.upper()", {}) == "ABC"
