"""Shell completion through the installed ``flowrun``, by click's protocol (the variables bash and zsh set)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from flowrun import app
from tests.helpers import db_path, flowrun_executable, ready_ref

EVENTS = Path(__file__).parent / "data" / "events"


def complete(cwd: Path, line: str, syntax: str = "bash") -> list[str]:
    """What the shell is offered for the last word of ``line`` (``flowrun ...``; a trailing space: a new word).

    For zsh each offer is ``value:help``. The command must exit 0 and print nothing on stderr.
    """
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    env.update(_FLOWRUN_COMPLETE=f"{syntax}_complete", COMP_WORDS=line, COMP_CWORD=str(cword))
    proc = subprocess.run([str(flowrun_executable())], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, ""), proc
    lines = [line for line in proc.stdout.splitlines() if line]
    if syntax == "zsh":  # type, value, help: three lines per offer
        return [f"{lines[i + 1]}:{lines[i + 2]}" for i in range(0, len(lines), 3)]
    return [entry.split(",", 1)[1] for entry in lines]


def test_families_and_variants(project_dir):
    """``start`` offers families and FAMILY:VARIANT; ``--variant`` the variants of the family given."""
    assert complete(project_dir, "flowrun start ") == ["complaint", "complaint:baseline", "complaint:reengineered"]
    assert complete(project_dir, "flowrun start complaint:r") == ["complaint:reengineered"]
    assert complete(project_dir, "flowrun compare ") == ["complaint"]
    assert complete(project_dir, "flowrun compare complaint --variant ") == ["baseline", "reengineered"]
    assert complete(project_dir, "flowrun tasks --process c") == ["complaint"]


def test_open_task_refs_with_what_they_are(project, project_dir):
    """``do`` and ``claim`` offer the refs of open tasks (claimed ones too), never of completed ones."""
    first = app.start(project, "complaint:baseline").instance
    second = app.start(project, "complaint:baseline").instance
    done = ready_ref(project, first, "Record complaint")
    app.complete(project, done, {"customer_name": "A", "category": "billing", "description": "twice"}, "al")
    analyse = ready_ref(project, first, "Analyse needs")
    record = ready_ref(project, second, "Record complaint")
    app.claim(project, record, "bob")

    assert sorted(complete(project_dir, "flowrun do ")) == sorted([analyse, record])
    assert sorted(complete(project_dir, "flowrun claim ", syntax="zsh")) == sorted(
        [
            f"{record}:Record complaint [Call Centre] {second[:8]}, claimed by bob",
            f"{analyse}:Analyse needs [Back Office] {first[:8]}",
        ]
    )


def test_instance_ids_and_keys(project, project_dir):
    """Where an instance is asked for, short ids and business keys are offered."""
    keyed = app.start(project, "complaint:baseline", key="C-1042").instance
    other = app.start(project, "complaint:reengineered").instance

    assert complete(project_dir, "flowrun show C-") == ["C-1042"]
    assert sorted(complete(project_dir, "flowrun history ")) == sorted(["C-1042", keyed[:8], other[:8]])
    assert complete(project_dir, f"flowrun tasks --instance {other[:3]}") == [other[:8]]
    assert complete(project_dir, f"flowrun send x --instance {keyed[:8]}") == [keyed]


def test_message_and_signal_names_from_the_diagrams(project_dir):
    """``send`` offers the messages the diagrams declare, and the signals after ``--signal``."""
    for name in ("message_catch", "signal_catch"):
        shutil.copy(EVENTS / f"{name}.bpmn", project_dir / "processes" / f"{name}.bpmn")

    assert complete(project_dir, "flowrun send ") == ["payment_received"]
    assert complete(project_dir, "flowrun send --signal ") == ["product_recall"]


def test_command_names_and_another_project(project_dir, tmp_path):
    """Command names complete as before; --project names the project to complete from."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert "show" in complete(elsewhere, "flowrun sh")
    assert complete(elsewhere, f"flowrun --project {project_dir} compare ") == ["complaint"]


def test_a_broken_or_missing_project_offers_nothing(project_dir, tmp_path):
    """No project, or a flowrun.yaml that does not parse: no offers, no error, exit 0."""
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    assert complete(nowhere, "flowrun start ") == []
    (project_dir / "flowrun.yaml").write_text("families: [unclosed\n")
    assert complete(project_dir, "flowrun start ") == []
    assert complete(project_dir, "flowrun do ") == []


@pytest.mark.sqlite
@pytest.mark.fresh_database
def test_completion_never_makes_the_database(project_dir):
    """A project whose SQLite file is not made yet offers no tasks, and completing does not make it."""
    assert complete(project_dir, "flowrun do ") == []
    assert complete(project_dir, "flowrun show ") == []
    assert not db_path(project_dir).exists()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_scripts_the_readme_evaluates(tmp_path, shell):
    """``_FLOWRUN_COMPLETE=<shell>_source flowrun`` prints the script that asks flowrun back."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    env["_FLOWRUN_COMPLETE"] = f"{shell}_source"
    proc = subprocess.run(
        [str(flowrun_executable())], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert f"_FLOWRUN_COMPLETE={shell}_complete" in proc.stdout


def test_a_database_that_does_not_answer_offers_nothing_quickly(project_dir):
    """A PostgreSQL server that takes the connection but never answers: nothing offered within a few seconds."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        config = project_dir / "flowrun.yaml"
        url = f"postgresql+psycopg://flowrun:secret@127.0.0.1:{port}/flowrun"
        kept = [line for line in config.read_text().splitlines() if not line.startswith("database:")]
        config.write_text("\n".join([*kept, f"database: {url}", ""]))
        began = time.monotonic()
        assert complete(project_dir, "flowrun do ") == []
        assert time.monotonic() - began < 10
