"""The ``flowrun`` command line, run in-process with click's CliRunner against real SQLite files."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import Result

from flowrun import app
from flowrun.cli.main import cli as root
from tests.helpers import (
    ANALYSE_NO_SPECIALIST,
    RECORD,
    REPLY,
    SPECIALIST,
    cli_json,
    draft,
    local_hm,
    query,
    ready_ref,
    work,
)

if TYPE_CHECKING:
    from tests.conftest import CliCall

NOW = "2026-03-02T08:00:00+00:00"
RECORD_ARGS = ("--data", "customer_name=Ann Smith", "--data", "category=billing", "--data", "description=Charged twice")


def assert_error(result: Result, code: int, *needles: str) -> str:
    """The command failed cleanly: exit ``code``, an 'error:' line naming ``needles``, no traceback."""
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    for needle in needles:
        assert needle in result.stderr
    return result.stderr


def start(cli: CliCall, project_dir: Path, target: str = "complaint:baseline", now: str = NOW) -> dict[str, Any]:
    started = cli_json(cli(project_dir, "start", target, "--json", now=now))
    assert isinstance(started, dict), started
    return started


def snapshot(project_dir: Path) -> tuple[object, ...]:
    """Everything a failed command must leave alone."""
    return (
        query(project_dir, "SELECT id, version, status, data, state FROM instances ORDER BY id"),
        query(project_dir, "SELECT * FROM tasks ORDER BY id"),
        query(project_dir, "SELECT count(*) FROM events"),
    )


# -- listing and starting ---------------------------------------------------------


def test_processes_json(cli, project_dir):
    """``processes --json`` lists both configured variants of the example."""
    rows = cli_json(cli(project_dir, "processes", "--json"))
    assert rows == [
        {
            "process": "complaint",
            "variant": "baseline",
            "file": "processes/complaint_baseline.bpmn",
            "exists": True,
            "configured": True,
        },
        {
            "process": "complaint",
            "variant": "reengineered",
            "file": "processes/complaint_reengineered.bpmn",
            "exists": True,
            "configured": True,
        },
    ]


def test_start_json_gives_id_and_first_task(cli, project_dir):
    """``start --json`` prints the new instance's full id and the task it waits for."""
    out = start(cli, project_dir)
    assert re.fullmatch(r"[0-9a-f]{32}", out["id"])
    assert out["short_id"] == out["id"][:8]
    assert out["status"] == "running"
    assert [(t["name"], t["lane"]) for t in out["ready"]] == [("Record complaint", "Call Centre")]


def test_start_without_json_prints_short_id(cli, project_dir):
    """Plain ``start`` prints the short id on stdout and what is ready on stderr."""
    result = cli(project_dir, "start", "complaint:reengineered", "--pilot", "north", now=NOW)
    assert result.exit_code == 0
    short = result.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{8}", short)
    assert "Record and assess complaint" in result.stderr
    shown = cli_json(cli(project_dir, "show", short, "--json"))
    assert (shown["variant"], shown["pilot"]) == ("reengineered", "north")


def test_start_family_with_several_variants_asks_which(cli, project_dir):
    """A family name alone is ambiguous when it has two variants."""
    assert_error(cli(project_dir, "start", "complaint"), 1, "complaint:baseline", "complaint:reengineered")


# -- the inbox ---------------------------------------------------------------------


def test_tasks_json_fields_and_times(cli, project_dir):
    """Inbox entries carry ref, instance, task, name, lane and an ISO ready time with offset."""
    started = start(cli, project_dir, now="2026-03-02T09:00:00+01:00")
    items = cli_json(cli(project_dir, "tasks", "--json", now="2026-03-02T08:30:00Z"))
    assert len(items) == 1
    item = items[0]
    assert {"ref", "instance", "task", "name", "lane", "ready_at"} <= set(item)
    assert item["ref"] == started["ready"][0]["ref"]
    assert item["instance"] == started["id"]
    assert (item["task"], item["name"], item["lane"]) == ("Task_RecordComplaint", "Record complaint", "Call Centre")
    assert item["ready_at"] == "2026-03-02T08:00:00+00:00"
    assert item["waited_s"] == 1800.0


def test_tasks_filters(cli, project_dir):
    """--lane, --process and --instance (full id or 8-character prefix) narrow the inbox."""
    base = start(cli, project_dir, "complaint:baseline")
    re_ = start(cli, project_dir, "complaint:reengineered")

    def names(*args: str) -> list[str]:
        return sorted(i["name"] for i in cli_json(cli(project_dir, "tasks", "--json", *args)))

    assert names() == ["Record and assess complaint", "Record complaint"]
    assert names("--lane", "Call Centre") == ["Record complaint"]
    assert names("--lane", "front office") == ["Record and assess complaint"]
    assert names("--lane", "Supervisor") == []
    assert names("--process", "complaint") == ["Record and assess complaint", "Record complaint"]
    assert_error(cli(project_dir, "tasks", "--process", "billing"), 1, "no process family 'billing'", "complaint")
    assert names("--instance", base["id"]) == ["Record complaint"]
    assert names("--instance", re_["id"][:8]) == ["Record and assess complaint"]
    assert names("--instance", re_["id"][:8].upper()) == ["Record and assess complaint"]


def test_tasks_table_for_people(cli, project_dir):
    """Without --json the inbox is a table naming the task, lane and process."""
    start(cli, project_dir)
    result = cli(project_dir, "tasks", "--wide")  # at 80 columns a name may wrap (tests/test_inbox.py)
    assert result.exit_code == 0
    assert "Record complaint" in result.stdout
    assert "complaint:baseline" in result.stdout


# -- doing tasks -----------------------------------------------------------------


def test_do_types_values_by_form(cli, project, project_dir):
    """``--data k=v`` text becomes the form's type: number, integer, boolean yes/no."""
    iid = start(cli, project_dir, "complaint:reengineered")["id"]
    ref = ready_ref(project, iid, "Record and assess complaint")
    result = cli(
        project_dir,
        "do",
        ref,
        *RECORD_ARGS,
        "--data",
        "amount_disputed=250.5",
        "--data",
        "severity=high",
        "--data",
        "can_resolve_now=no",
    )
    assert result.exit_code == 0, result.stderr
    data = cli_json(cli(project_dir, "show", iid, "--json"))["data"]
    assert data["amount_disputed"] == 250.5
    assert data["can_resolve_now"] is False
    assert data["customer_name"] == "Ann Smith"
    assert data["sla_hours"] == 4

    inform = ready_ref(project, iid, "Inform customer of next steps")
    ok = cli(project_dir, "do", inform, "--data", "contact_channel=phone", "--data", "expected_days=3")
    assert ok.exit_code == 0, ok.stderr
    work(project, iid, "Specialist assessment", SPECIALIST)
    data = cli_json(cli(project_dir, "show", iid, "--json"))["data"]
    assert data["expected_days"] == 3
    assert type(data["expected_days"]) is int


def test_do_boolean_yes_takes_the_specialist_branch(cli, project, project_dir):
    """``needs_specialist=yes`` is true, so the specialist gets the case."""
    iid = start(cli, project_dir)["id"]
    assert cli(project_dir, "do", ready_ref(project, iid, "Record complaint"), *RECORD_ARGS).exit_code == 0
    out = cli_json(
        cli(
            project_dir,
            "do",
            ready_ref(project, iid, "Analyse needs"),
            "--data",
            "severity=low",
            "--data",
            "needs_specialist=yes",
            "--json",
        )
    )
    assert [t["name"] for t in out["ready"]] == ["Specialist assessment"]
    assert cli_json(cli(project_dir, "show", iid, "--json"))["data"]["needs_specialist"] is True


def test_do_keeps_text_fields_as_text(cli, project, project_dir):
    """A text field keeps what was typed, even when it looks like a number or JSON."""
    iid = start(cli, project_dir)["id"]
    ref = ready_ref(project, iid, "Record complaint")
    result = cli(
        project_dir,
        "do",
        ref,
        "--data",
        "customer_name=007",
        "--data",
        "category=other",
        "--data",
        "description=null and void",
    )
    assert result.exit_code == 0, result.stderr
    data = cli_json(cli(project_dir, "show", iid, "--json"))["data"]
    assert (data["customer_name"], data["description"]) == ("007", "null and void")


def test_start_data_is_guessed_as_json(cli, project_dir):
    """``start --data`` values have no form, so JSON-looking text becomes numbers and booleans."""
    out = cli_json(
        cli(
            project_dir,
            "start",
            "complaint:baseline",
            "--data",
            "priority=2",
            "--data",
            "vip=true",
            "--data",
            "note=call back",
            "--json",
        )
    )
    data = cli_json(cli(project_dir, "show", out["id"], "--json"))["data"]
    assert data == {"priority": 2, "vip": True, "note": "call back"}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("record.json", '{"customer_name": "Ann Smith", "category": "billing", "description": "Charged twice"}'),
        ("record.yaml", "customer_name: Ann Smith\ncategory: billing\ndescription: Charged twice\n"),
    ],
)
def test_do_with_data_file(cli, project, project_dir, tmp_path, name, text):
    """``--data-file`` takes the fields from JSON or YAML; ``--data`` overrides single fields."""
    ref = record_ref(project)
    data_file = tmp_path / name
    data_file.write_text(text)
    result = cli(
        project_dir,
        "do",
        ref,
        "--data-file",
        str(data_file),
        "--data",
        "amount_disputed=12.5",
        "--data",
        "category=other",
        "--as",
        "carol",
    )
    assert result.exit_code == 0, result.stderr
    task = app.get_task(project, ref)
    assert task.instance_id is not None
    data = app.show(project, task.instance_id).data
    assert (data["customer_name"], data["category"], data["amount_disputed"]) == ("Ann Smith", "other", 12.5)


def test_do_with_a_broken_data_file(cli, project, project_dir, tmp_path):
    """A data file that is not JSON or YAML is a usage error naming the file."""
    ref = record_ref(project)
    data_file = tmp_path / "broken.json"
    data_file.write_text('{"customer_name": ')
    result = cli(project_dir, "do", ref, "--data-file", str(data_file))
    assert result.exit_code == 2
    assert "broken.json" in result.stderr
    assert app.get_task(project, ref).status == "ready"


def test_actor_defaults_to_flowrun_user(runner, project, project_dir):
    """Without --as, the actor is $FLOWRUN_USER."""
    ref = record_ref(project)
    args = ["--project", str(project_dir), "do", ref, *RECORD_ARGS]
    result = runner.invoke(root, args, env={"FLOWRUN_USER": "zoe"})
    assert result.exit_code == 0, result.stderr
    assert app.get_task(project, ref).actor == "zoe"


def test_claim_by_a_second_operator_is_a_conflict(cli, project, project_dir, berlin_time):
    """A task one operator claimed cannot be claimed by another (exit 3), naming the claim's local time."""
    ref = record_ref(project)
    assert cli(project_dir, "claim", ref, "--as", "alice", now="2026-03-02T08:01:00Z").exit_code == 0
    assert_error(
        cli(project_dir, "claim", ref, "--as", "bob", now="2026-03-02T09:00:00Z"),
        3,
        f"is claimed by alice since {local_hm('2026-03-02T08:01:00Z')}; ask alice, or `flowrun assign {ref} --to bob`",
    )
    again = cli(project_dir, "claim", ref, "--as", "alice", "--json")
    assert cli_json(again)["started_at"] == "2026-03-02T08:01:00+00:00"


def test_inbox_is_oldest_first_and_instances_newest_first(cli, project_dir):
    """The inbox lists the longest-waiting task first; ``instances`` the newest case first."""
    late = start(cli, project_dir, now="2026-03-02T10:00:00Z")["id"]
    early = start(cli, project_dir, now="2026-03-02T07:00:00Z")["id"]
    assert [i["instance"] for i in cli_json(cli(project_dir, "tasks", "--json"))] == [early, late]
    assert [i["id"] for i in cli_json(cli(project_dir, "instances", "--json"))] == [late, early]
    assert cli_json(cli(project_dir, "instances", "--status", "completed", "--json")) == []


@pytest.mark.fresh_database
def test_database_setting_is_relative_to_the_project(cli, project_dir, tmp_path, monkeypatch):
    """A relative sqlite path in flowrun.yaml lives in the project folder, whatever the cwd."""
    with (project_dir / "flowrun.yaml").open("a") as f:
        f.write("database: sqlite:///data/cases.db\n")
    monkeypatch.chdir(tmp_path)
    start(cli, project_dir)
    assert (project_dir / "data" / "cases.db").is_file()
    assert not (tmp_path / "data").exists()
    assert not (project_dir / ".flowrun").exists()


@pytest.mark.sqlite
@pytest.mark.fresh_database
def test_unusable_database(cli, project_dir):
    """A database file that is not SQLite is reported, not a crash."""
    (project_dir / ".flowrun").mkdir()
    (project_dir / ".flowrun" / "flowrun.db").write_bytes(b"not a database " * 20)
    assert_error(cli(project_dir, "tasks"), 1, "flowrun.db", "not a database")


def test_show_json_keys(cli, project_dir):
    """``show --json`` has id, status, process, variant, waiting_for and data."""
    started = start(cli, project_dir)
    shown = cli_json(cli(project_dir, "show", started["id"][:8], "--json"))
    assert {"id", "status", "process", "variant", "waiting_for", "data"} <= set(shown)
    assert shown["id"] == started["id"]
    assert (shown["status"], shown["process"], shown["variant"]) == ("running", "complaint", "baseline")
    assert [w["name"] for w in shown["waiting_for"]] == ["Record complaint"]
    assert shown["data"] == {}


def test_show_text(cli, project_dir):
    """``show`` for people names the instance, its status and what it waits for."""
    started = start(cli, project_dir)
    result = cli(project_dir, "show", started["short_id"])
    assert result.exit_code == 0
    assert started["short_id"] in result.stdout
    assert "running" in result.stdout
    assert "Record complaint" in result.stdout


def test_history_json_times_follow_flowrun_now(cli, project_dir):
    """FLOWRUN_NOW fixes each command's time: claim starts the touch time, do ends it."""
    started = start(cli, project_dir, now="2026-03-02T09:00:00+01:00")
    ref = str(started["ready"][0]["ref"])
    claimed = cli(project_dir, "claim", ref, "--as", "carol", now="2026-03-02T08:05:00Z")
    assert claimed.exit_code == 0
    assert "claimed by carol" in claimed.stdout
    assert cli(project_dir, "do", ref, *RECORD_ARGS, "--as", "carol", now="2026-03-02T08:12:00Z").exit_code == 0
    analyse = cli_json(cli(project_dir, "tasks", "--json"))[0]["ref"]
    assert (
        cli(
            project_dir,
            "do",
            analyse,
            "--data",
            "severity=low",
            "--data",
            "needs_specialist=no",
            "--as",
            "bob",
            now="2026-03-02T09:00:00Z",
        ).exit_code
        == 0
    )

    rows = cli_json(cli(project_dir, "history", started["id"], "--json"))
    keys = {"task", "name", "type", "lane", "actor", "ready_at", "started_at", "completed_at", "waiting_s", "touch_s"}
    assert all(keys <= set(r) for r in rows)
    by_name = {r["name"]: r for r in rows}
    assert [r["name"] for r in rows] == ["Complaint received", "Record complaint", "Analyse needs", "Draft resolution"]
    record = by_name["Record complaint"]
    assert (record["ready_at"], record["started_at"], record["completed_at"]) == (
        "2026-03-02T08:00:00+00:00",
        "2026-03-02T08:05:00+00:00",
        "2026-03-02T08:12:00+00:00",
    )
    assert (record["waiting_s"], record["touch_s"], record["actor"], record["type"]) == (
        300.0,
        420.0,
        "carol",
        "userTask",
    )
    # done without a claim: all of its time counts as waiting
    analyse_row = by_name["Analyse needs"]
    assert (analyse_row["waiting_s"], analyse_row["touch_s"], analyse_row["actor"]) == (2880.0, 0.0, "bob")
    assert by_name["Draft resolution"]["ready_at"] == "2026-03-02T09:00:00+00:00"
    assert by_name["Draft resolution"]["completed_at"] is None
    assert by_name["Complaint received"]["type"] == "startEvent"


def test_history_table(cli, project_dir):
    """``history`` for people lists the tasks with their lanes."""
    started = start(cli, project_dir)
    result = cli(project_dir, "history", started["short_id"])
    assert result.exit_code == 0
    assert "Record complaint" in result.stdout
    assert "Call Centre" in result.stdout


def test_invalid_flowrun_now_is_a_usage_error(cli, project_dir):
    """A FLOWRUN_NOW that is not a time is refused, naming the variable."""
    result = cli(project_dir, "tasks", now="yesterday")
    assert result.exit_code == 2
    assert "FLOWRUN_NOW" in result.stderr
    assert "Traceback" not in result.stderr


# -- ids -------------------------------------------------------------------------


def test_ambiguous_prefix_lists_candidates(cli, project, project_dir):
    """A one-character prefix shared by two instances is refused, listing both."""
    by_first: dict[str, list[str]] = {}
    while not any(len(ids) > 1 for ids in by_first.values()):
        iid = app.start(project, "complaint:baseline").instance
        by_first.setdefault(iid[0], []).append(iid)
    prefix, ids = next((k, v) for k, v in by_first.items() if len(v) > 1)

    for args in (("show", prefix), ("history", prefix, "--json"), ("tasks", "--instance", prefix)):
        err = assert_error(cli(project_dir, *args), 1, "ambiguous", *(i[:12] for i in ids))
        assert prefix in err
    assert cli(project_dir, "show", ids[0]).exit_code == 0


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("do", "999", "--data", "x=1"), ("999",)),
        (("claim", "999"), ("999",)),
        (("do", "abc", "--data", "x=1"), ("abc",)),
        (("show", "deadbeef"), ("deadbeef",)),
        (("history", "deadbeef"), ("deadbeef",)),
        (("show", "not-an-id"), ("not-an-id",)),
        (("tasks", "--instance", "deadbeef"), ("deadbeef",)),
        (("start", "nosuch"), ("nosuch", "complaint")),
        (("start", "complaint:nosuch"), ("nosuch", "baseline", "reengineered")),
        (("start", "processes/missing.bpmn"), ("missing.bpmn",)),
    ],
)
def test_unknown_names_fail_cleanly(cli, project_dir, args, needles):
    """Unknown refs, instances and processes exit 1 with a message naming them."""
    start(cli, project_dir)
    assert_error(cli(project_dir, *args), 1, *needles)


# -- invalid data changes nothing ------------------------------------------------


def survey_ref(project: app.Project) -> str:
    iid = app.start(project, "complaint:baseline").instance
    for name, data in (
        ("Record complaint", RECORD),
        ("Analyse needs", ANALYSE_NO_SPECIALIST),
        ("Draft resolution", draft(20)),
        ("Reply to customer", REPLY),
    ):
        work(project, iid, name, data)
    return ready_ref(project, iid, "Satisfaction survey")


def record_ref(project: app.Project) -> str:
    iid = app.start(project, "complaint:baseline").instance
    return ready_ref(project, iid, "Record complaint")


@pytest.mark.parametrize(
    ("setup", "data", "needles"),
    [
        (record_ref, [*RECORD_ARGS[:2], "--data", "category=food", *RECORD_ARGS[4:]], ("category", "food")),
        (record_ref, RECORD_ARGS[:4], ("description", "required")),
        (record_ref, [*RECORD_ARGS, "--data", "amount_disputed=lots"], ("amount_disputed", "lots")),
        (record_ref, [*RECORD_ARGS, "--data", "amount_disputed=-5"], ("amount_disputed",)),
        (record_ref, [*RECORD_ARGS, "--data", "amount_disputed=nan"], ("amount_disputed", "nan")),
        (record_ref, [*RECORD_ARGS, "--data", "colour=red"], ("colour",)),
        (
            survey_ref,
            ["--data", "satisfaction=9", "--data", "nps=5", "--data", "resolved_first_contact=yes"],
            ("satisfaction", "9"),
        ),
        (
            survey_ref,
            ["--data", "satisfaction=4.5", "--data", "nps=5", "--data", "resolved_first_contact=yes"],
            ("satisfaction", "4.5"),
        ),
        (
            survey_ref,
            ["--data", "satisfaction=4", "--data", "nps=5", "--data", "resolved_first_contact=maybe"],
            ("resolved_first_contact", "maybe"),
        ),
    ],
    ids=[
        "enum",
        "missing",
        "not-a-number",
        "below-minimum",
        "nan",
        "unknown-field",
        "out-of-range",
        "not-whole",
        "not-boolean",
    ],
)
def test_invalid_form_data_changes_nothing(cli, project, project_dir, setup, data, needles):
    """Data that does not fit the form exits 1 naming the field; the task stays ready."""
    ref = setup(project)
    before = snapshot(project_dir)

    assert_error(cli(project_dir, "do", ref, *data, "--as", "mallory"), 1, *needles)

    assert snapshot(project_dir) == before
    task = app.get_task(project, ref)
    assert (task.status, task.actor, task.started_at) == ("ready", None, None)


def test_completing_twice_is_a_conflict(cli, project, project_dir, berlin_time):
    """The second completion exits 3 and says who completed the task and when."""
    ref = record_ref(project)
    first = cli(project_dir, "do", ref, *RECORD_ARGS, "--as", "alice", now="2026-03-02T08:10:00Z")
    assert first.exit_code == 0
    before = snapshot(project_dir)

    second = cli(
        project_dir,
        "do",
        ref,
        "--data",
        "customer_name=Bob Jones",
        "--data",
        "category=other",
        "--data",
        "description=something else",
        "--as",
        "bob",
        now="2026-03-02T08:11:00Z",
    )

    assert_error(second, 3, "already completed by alice at 2026-03-02 09:10:00 CET")
    assert second.stdout == ""
    assert snapshot(project_dir) == before
    claim = cli(project_dir, "claim", ref, "--as", "bob")
    assert_error(claim, 3, "already completed by alice")


def test_do_without_data_and_without_terminal(cli, project, project_dir):
    """No data and no terminal to ask: exit 1 naming the required fields; nothing claimed."""
    ref = record_ref(project)
    before = snapshot(project_dir)

    err = assert_error(cli(project_dir, "do", ref, "--as", "carol", input=""), 1, "terminal")

    for name in ("customer_name", "category", "description"):
        assert f"--data {name}=" in err
    assert snapshot(project_dir) == before


# -- projects ----------------------------------------------------------------------


def test_init_creates_a_project(runner, tmp_path):
    """``init DIR`` copies the example: flowrun.yaml, processes/ and forms/."""
    target = tmp_path / "new" / "place"
    result = runner.invoke(root, ["init", str(target)])
    assert result.exit_code == 0, result.stderr
    assert (target / "flowrun.yaml").is_file()
    assert (target / "processes" / "complaint_baseline.bpmn").is_file()
    assert (target / "processes" / "complaint_reengineered.bpmn").is_file()
    assert (target / "forms" / "record_complaint.json").is_file()
    assert (target / "complaint_services.py").is_file()
    assert "flowrun.yaml" in result.stdout
    # the new project works straight away
    listed = runner.invoke(root, ["--project", str(target), "processes", "--json"])
    assert len(cli_json(listed)) == 2

    again = runner.invoke(root, ["init", str(target)])
    assert_error(again, 1, "already has a flowrun.yaml")


def test_missing_flowrun_yaml(cli, runner, tmp_path, monkeypatch):
    """No flowrun.yaml: exit 1 saying where it looked and to run 'flowrun init'."""
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_error(cli(empty, "processes"), 1, "no flowrun.yaml", str(empty), "flowrun init")

    monkeypatch.chdir(empty)
    assert_error(runner.invoke(root, ["tasks"]), 1, "no flowrun.yaml", "flowrun init")


def test_flowrun_yaml_found_from_a_subfolder(runner, project_dir, monkeypatch):
    """Without --project the nearest flowrun.yaml upwards is used."""
    monkeypatch.chdir(project_dir / "forms")
    assert len(cli_json(runner.invoke(root, ["processes", "--json"]))) == 2


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("processes_dir: processes\nforms_dir: forms\nservices: x: y\n", ("flowrun.yaml:3", "invalid YAML")),
        ("processes_dir: processes\nprocesses: {complaint: [\n", ("flowrun.yaml:", "invalid YAML")),
        ("services: [complaint_services]\n", ("flowrun.yaml", "services")),
        ("processes:\n  complaint: [a, b]\n", ("flowrun.yaml", "complaint")),
        ("- just\n- a list\n", ("flowrun.yaml", "mapping")),
    ],
    ids=["bad-yaml", "unclosed", "services-list", "variants-list", "top-level-list"],
)
def test_broken_flowrun_yaml(cli, project_dir, text, needles):
    """An invalid flowrun.yaml is reported with its file (and line for YAML errors)."""
    (project_dir / "flowrun.yaml").write_text(text)
    assert_error(cli(project_dir, "processes"), 1, *needles)


# -- broken diagrams ---------------------------------------------------------------


def _truncated(source: bytes) -> bytes:
    return source[:3000]


def _mismatched(source: bytes) -> bytes:
    return source.replace(b"</bpmn:userTask>", b"</bpmn:task>", 1)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">
  <bpmn:process id="lol" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:documentation>&lol4;</bpmn:documentation></bpmn:startEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def _line_of_error(name: str, broken: bytes, source: bytes) -> int | None:
    if name == "truncated":
        return broken.count(b"\n") + 1
    if name == "mismatched":
        return broken[: broken.index(b"</bpmn:task>")].count(b"\n") + 1
    if name == "not-executable":
        return broken[: broken.index(b"<bpmn:process ")].count(b"\n") + 1
    return None


@pytest.mark.parametrize(
    ("name", "make", "needles"),
    [
        ("truncated", _truncated, ("not well-formed XML",)),
        ("mismatched", _mismatched, ("not well-formed XML",)),
        ("billion-laughs", lambda _: BILLION_LAUGHS, ("DOCTYPE",)),
        (
            "not-executable",
            lambda s: s.replace(b'isExecutable="true"', b'isExecutable="false"'),
            ('isExecutable="false"',),
        ),
        ("empty", lambda _: b"", ("empty",)),
        ("not-bpmn", lambda _: b"<html><body>hello</body></html>", ("not a BPMN",)),
    ],
)
def test_start_of_broken_diagram(cli, project_dir, name, make, needles):
    """A broken BPMN file exits 1 naming the file (and line), without a traceback or an instance."""
    source = (project_dir / "processes" / "complaint_baseline.bpmn").read_bytes()
    broken = make(source)
    (project_dir / "processes" / f"{name}.bpmn").write_bytes(broken)

    err = assert_error(cli(project_dir, "start", name), 1, f"processes/{name}.bpmn", *needles)

    line = _line_of_error(name, broken, source)
    if line is not None:
        assert f"processes/{name}.bpmn:{line}:" in err
    assert cli_json(cli(project_dir, "instances", "--json")) == []
    assert query(project_dir, "SELECT count(*) FROM models") == [(0,)]


# -- forms and services ------------------------------------------------------------


def test_missing_form_file(cli, project, project_dir):
    """A task whose form file is gone exits 1 naming the form and how to fix it."""
    (project_dir / "forms" / "analyse_needs.json").unlink()
    iid = app.start(project, "complaint:baseline").instance
    assert cli(project_dir, "do", ready_ref(project, iid, "Record complaint"), *RECORD_ARGS).exit_code == 0
    ref = ready_ref(project, iid, "Analyse needs")
    before = snapshot(project_dir)

    for args in ((), ("--data", "severity=low", "--data", "needs_specialist=no")):
        assert_error(cli(project_dir, "do", ref, *args), 1, "analyse_needs.json", "forms/", "create")

    assert snapshot(project_dir) == before


def test_missing_form_file_interactive_claims_nothing(cli, project, project_dir):
    """An interactive ``do`` that cannot load the form leaves the task unclaimed."""
    (project_dir / "forms" / "record_complaint.json").unlink()
    ref = record_ref(project)
    before = snapshot(project_dir)

    assert_error(cli(project_dir, "do", ref, "--interactive", "--as", "carol", input="x\n"), 1, "record_complaint.json")

    task = app.get_task(project, ref)
    assert (task.status, task.actor, task.started_at) == ("ready", None, None)
    assert snapshot(project_dir) == before


def _use_services(project_dir: Path, line: str) -> None:
    config = project_dir / "flowrun.yaml"
    text = config.read_text()
    old = "check_entitlement: complaint_services:check_entitlement"
    assert old in text
    config.write_text(text.replace(old, line))


def test_failing_service_saves_nothing(cli, project, project_dir):
    """A service handler that raises exits 1 naming the topic and the error; intake stays ready."""
    module = f"backend_{uuid.uuid4().hex[:8]}"
    (project_dir / f"{module}.py").write_text(
        "def check(data):\n    raise RuntimeError('entitlement backend is down')\n"
    )
    _use_services(project_dir, f"check_entitlement: {module}:check")
    iid = start(cli, project_dir, "complaint:reengineered")["id"]
    ref = ready_ref(project, iid, "Record and assess complaint")
    before = snapshot(project_dir)

    assert_error(
        cli(project_dir, "do", ref, *RECORD_ARGS, "--data", "severity=low", "--data", "can_resolve_now=yes"),
        1,
        "check_entitlement",
        "RuntimeError",
        "entitlement backend is down",
    )

    assert snapshot(project_dir) == before
    items = cli_json(cli(project_dir, "tasks", "--json"))
    assert [(i["ref"], i["name"], i["started_at"]) for i in items] == [(int(ref), "Record and assess complaint", None)]
    assert cli_json(cli(project_dir, "show", iid, "--json"))["data"] == {}


def test_service_module_that_cannot_be_imported(cli, project, project_dir):
    """A services entry naming a missing module says which module and topic."""
    _use_services(project_dir, "check_entitlement: no_such_module_xyz:check")
    iid = start(cli, project_dir, "complaint:reengineered")["id"]
    ref = ready_ref(project, iid, "Record and assess complaint")
    result = cli(project_dir, "do", ref, *RECORD_ARGS, "--data", "severity=low", "--data", "can_resolve_now=yes")
    assert_error(result, 1, "no_such_module_xyz", "check_entitlement")
    assert app.get_task(project, ref).status == "ready"


def test_unknown_service_topic_lists_known_handlers(cli, project, project_dir):
    """A service task whose topic has no handler names the topic and the known ones."""
    _use_services(project_dir, "loyalty_lookup: complaint_services:check_entitlement")
    iid = start(cli, project_dir, "complaint:reengineered")["id"]
    ref = ready_ref(project, iid, "Record and assess complaint")
    before = snapshot(project_dir)

    result = cli(project_dir, "do", ref, *RECORD_ARGS, "--data", "severity=low", "--data", "can_resolve_now=yes")

    assert_error(result, 1, "'check_entitlement'", "known: loyalty_lookup", "flowrun.yaml")
    assert snapshot(project_dir) == before


PLAIN_DIAGRAM = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Definitions_plain"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="plain" isExecutable="true">
    <bpmn:startEvent id="{start}"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="{start}" targetRef="{task}" />
    <bpmn:userTask id="{task}" name="Do it">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="{task}" targetRef="{end}" />
    <bpmn:endEvent id="{end}"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def test_start_of_a_minimal_diagram(cli, project_dir):
    """A minimal hand-written diagram without lanes or forms starts and completes."""
    (project_dir / "processes" / "plain.bpmn").write_text(
        PLAIN_DIAGRAM.format(start="StartEvent_1", task="Task_1", end="End")
    )
    out = cli_json(cli(project_dir, "start", "plain", "--json"))
    assert [(t["name"], t["lane"]) for t in out["ready"]] == [("Do it", None)]
    done = cli_json(cli(project_dir, "do", str(out["ready"][0]["ref"]), "--json"))
    assert done["status"] == "completed"


@pytest.mark.parametrize(("start", "task"), [("Start", "Task_1"), ("StartEvent_1", "Root")])
def test_start_of_a_diagram_with_reserved_ids(cli, project_dir, start, task):
    """Element ids SpiffWorkflow uses internally still start, or fail naming the file."""
    (project_dir / "processes" / "plain.bpmn").write_text(PLAIN_DIAGRAM.format(start=start, task=task, end="End"))
    result = cli(project_dir, "start", "plain")
    assert "internal error" not in result.stderr
    assert result.exit_code in (0, 1), result.stderr
    if result.exit_code == 1:
        assert "processes/plain.bpmn" in result.stderr
