"""The text of ``flowrun compare`` and ``flowrun history`` at a fixed width, against files in tests/golden/.

A small pilot (two cases of each variant) is stepped through the CLI on fixed times (``FLOWRUN_NOW``),
so every number is the same on every run; instance ids, the only random part, become placeholders.
``FLOWRUN_UPDATE_GOLDEN=1`` rewrites the files instead of comparing (review the diff before committing).
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from flowrun import app
from flowrun.clock import iso
from tests.helpers import (
    ANALYSE_NO_SPECIALIST,
    ANALYSE_SPECIALIST,
    RECORD,
    REPLY,
    SPECIALIST,
    SURVEY,
    T0,
    draft,
    local_zone,
)
from tests.helpers import intake as intake_data

pytestmark = pytest.mark.sqlite  # the text is the same on PostgreSQL; one database is enough to pin it

GOLDEN = Path(__file__).parent / "golden"
WIDTH = "120"  # what the CLI uses when output is not a terminal

RESOLVE = {"remedy": "refund", "remedy_amount": 40, "message": "Refunded now."}
CONFIRM = {"remedy": "refund", "remedy_amount": 80, "message": "Refund on its way."}
NEXT_STEPS = {"contact_channel": "sms", "expected_days": 3}

#: (process, pilot, [(task name, data, waiting minutes, touch minutes)]) per case, started an hour apart.
CASES: list[tuple[str, str, list[tuple[str, dict[str, Any], int, int]]]] = [
    (
        "complaint:baseline",
        "north",
        [
            ("Record complaint", RECORD, 20, 12),
            ("Analyse needs", ANALYSE_SPECIALIST, 95, 25),
            ("Specialist assessment", SPECIALIST, 180, 40),
            ("Draft resolution", draft(80), 60, 15),
            ("Reply to customer", REPLY, 45, 10),
            ("Satisfaction survey", SURVEY, 30, 5),
        ],
    ),
    (
        "complaint:reengineered",
        "north",
        [
            ("Record and assess complaint", intake_data(), 5, 14),
            ("Resolve at first contact", RESOLVE, 2, 9),
            ("Satisfaction survey", {**SURVEY, "nps": 10, "resolved_first_contact": True}, 10, 4),
        ],
    ),
    (
        "complaint:baseline",
        "south",
        [
            ("Record complaint", RECORD, 35, 9),
            ("Analyse needs", ANALYSE_NO_SPECIALIST, 70, 20),
            ("Draft resolution", draft(40), 50, 12),
            ("Reply to customer", REPLY, 40, 8),
            ("Satisfaction survey", {**SURVEY, "nps": 5}, 25, 6),
        ],
    ),
    (
        "complaint:reengineered",
        "south",
        [
            ("Record and assess complaint", intake_data(can_resolve_now=False), 8, 16),
            ("Inform customer of next steps", NEXT_STEPS, 3, 5),
            ("Specialist assessment", SPECIALIST, 120, 35),
            ("Confirm resolution with customer", CONFIRM, 30, 7),
            ("Satisfaction survey", {**SURVEY, "nps": 8}, 15, 4),
        ],
    ),
]


class Pilot:
    """Steps the cases through the CLI, each command at its own ``FLOWRUN_NOW``."""

    def __init__(self, root: Path) -> None:
        from flowrun.cli.main import cli

        self.root, self.cli, self.runner = root, cli, CliRunner()
        self.ids: list[str] = []

    def run(self, when: Any, *args: str) -> Result:
        env = {"FLOWRUN_NOW": iso(when), "COLUMNS": WIDTH, "FLOWRUN_USER": "op"}
        result = self.runner.invoke(self.cli, ["--project", str(self.root), *args], env=env)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    def play(self) -> None:
        for n, (process, pilot, steps) in enumerate(CASES):
            now = T0 + timedelta(hours=n)
            iid = json.loads(self.run(now, "start", process, "--pilot", pilot, "--json").stdout)["id"]
            self.ids.append(iid)
            for name, data, waiting, touch in steps:
                tasks = json.loads(self.run(now, "tasks", "--instance", iid, "--json").stdout)
                ref = str(next(t["ref"] for t in tasks if t["name"] == name))
                now += timedelta(minutes=waiting)
                self.run(now, "claim", ref)
                now += timedelta(minutes=touch)
                data_file = self.root / "data.json"
                data_file.write_text(json.dumps(data), encoding="utf-8")
                self.run(now, "do", ref, "--data-file", str(data_file))

    def text(self, *args: str) -> str:
        """A command's output with each instance id (full or short) replaced by ``CASE000n``."""
        out = self.run(T0 + timedelta(days=2), *args).stdout
        for n, iid in enumerate(self.ids, start=1):
            out = out.replace(iid, f"CASE{n:04d}").replace(iid[:8], f"CASE{n:04d}")
        return out


@pytest.fixture(scope="module")
def pilot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pilot]:
    """The played pilot, with local time pinned to UTC (history prints local times)."""
    with local_zone("UTC"):
        root = tmp_path_factory.mktemp("golden") / "proj"
        app.init_project(root)
        played = Pilot(root)
        played.play()
        yield played


def assert_golden(name: str, actual: str) -> None:
    """``actual`` equals tests/golden/NAME, shown as a unified diff when not; FLOWRUN_UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    if os.environ.get("FLOWRUN_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"{path} is missing; run with FLOWRUN_UPDATE_GOLDEN=1 to write it"
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True), f"golden/{name}", "actual"
        )
        pytest.fail(f"output differs from {path} (FLOWRUN_UPDATE_GOLDEN=1 rewrites it):\n{''.join(diff)}")


def test_compare_text(pilot):
    """``flowrun compare complaint``: KPI table, verdicts and per-task table, as the pilot team reads them."""
    assert_golden("compare.txt", pilot.text("compare", "complaint"))


def test_history_text(pilot):
    """``flowrun history``: every task of the baseline case that went through the specialist, with its times."""
    assert_golden("history.txt", pilot.text("history", pilot.ids[0]))
