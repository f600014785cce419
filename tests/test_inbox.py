"""An inbox a team can work from: business keys, due dates, priorities, data columns and filters, previews."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers import cli_json, flowrun_executable, query

if TYPE_CHECKING:
    from click.testing import Result

    from tests.conftest import CliCall

NOW = "2026-03-02T08:00:00+00:00"
DUE_DATES = Path(__file__).parent / "data" / "inbox" / "due_dates.bpmn"


def assert_error(result: Result, code: int, *needles: str) -> str:
    """The command failed cleanly: exit ``code``, one 'error:' message naming ``needles``, no traceback."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    return result.stderr


def configure(project_dir: Path, text: str) -> None:
    with (project_dir / "flowrun.yaml").open("a", encoding="utf-8") as f:
        f.write(text)


def start(cli: CliCall, project_dir: Path, *args: str, target: str = "complaint:baseline", now: str = NOW) -> Any:
    return cli_json(cli(project_dir, "start", target, "--json", *args, now=now))


def inbox(cli: CliCall, project_dir: Path, *args: str, now: str = NOW) -> Any:
    return cli_json(cli(project_dir, "tasks", "--json", *args, now=now))


def add_due_dates(project_dir: Path) -> None:
    shutil.copy(DUE_DATES, project_dir / "processes" / "due_dates.bpmn")
    text = (project_dir / "flowrun.yaml").read_text(encoding="utf-8")
    text = text.replace("processes:\n", "processes:\n  due:\n    v1: processes/due_dates.bpmn\n", 1)
    (project_dir / "flowrun.yaml").write_text(text, encoding="utf-8")


# -- business keys ---------------------------------------------------------------------------


def test_a_key_names_the_case_wherever_an_id_does(cli, project_dir):
    """start --key C-1042, then show, history, tasks --instance and instances know the case by it."""
    started = start(cli, project_dir, "--key", "C-1042")
    assert started["key"] == "C-1042"
    shown = cli_json(cli(project_dir, "show", "C-1042", "--json"))
    assert (shown["id"], shown["key"]) == (started["id"], "C-1042")
    assert "key       C-1042" in cli(project_dir, "show", "C-1042").stdout
    assert "(C-1042)" in cli(project_dir, "history", "C-1042").stdout
    [item] = inbox(cli, project_dir, "--instance", "C-1042")
    assert (item["instance"], item["key"]) == (started["id"], "C-1042")
    assert "C-1042" in cli(project_dir, "tasks").stdout
    assert [r["key"] for r in cli_json(cli(project_dir, "instances", "--json"))] == ["C-1042"]


def test_a_duplicate_key_is_refused_naming_the_case_that_has_it(cli, project_dir):
    """Keys are unique per family: the second start fails (exit 3), saves nothing, and names the first case."""
    first = start(cli, project_dir, "--key", "C-1042")
    assert_error(cli(project_dir, "start", "complaint:reengineered", "--key", "C-1042"), 3, first["id"][:8], "C-1042")
    assert query(project_dir, "SELECT count(*) FROM instances")[0][0] == 1


def test_a_key_that_collides_with_an_id_prefix_is_ambiguous(cli, project_dir):
    """A key that is also the start of another case's id is refused as ambiguous, listing both."""
    other = start(cli, project_dir)
    keyed = start(cli, project_dir, "--key", other["id"][:4], target="complaint:reengineered")
    err = assert_error(cli(project_dir, "show", other["id"][:4]), 1, "ambiguous", other["id"][:12], keyed["id"][:12])
    assert f"(key {other['id'][:4]})" in err
    assert cli_json(cli(project_dir, "show", other["id"][:8], "--json"))["id"] == other["id"]


def test_an_unknown_key_says_how_cases_are_named(cli, project_dir):
    """A name that is neither a key nor an id: one message with the way to find cases."""
    assert_error(cli(project_dir, "show", "C-9999"), 1, "no instance with key or id 'C-9999'", "flowrun instances")


def test_keys_are_numbered_from_the_pattern_in_flowrun_yaml(cli, project_dir):
    """keys: {complaint: "C-{n:04d}"} numbers the family's cases; --key still wins."""
    configure(project_dir, 'keys:\n  complaint: "C-{n:04d}"\n')
    assert start(cli, project_dir)["key"] == "C-0001"
    assert start(cli, project_dir, "--key", "VIP-7")["key"] == "VIP-7"
    assert start(cli, project_dir)["key"] == "C-0003"


def test_keys_from_a_data_field(cli, project_dir):
    """keys: {complaint: "{customer_ref}"} takes the start data's field; without the field, a clear error."""
    configure(project_dir, 'keys:\n  complaint: "REF-{customer_ref}"\n')
    assert start(cli, project_dir, "--data", "customer_ref=77")["key"] == "REF-77"
    assert_error(cli(project_dir, "start", "complaint:baseline"), 1, "customer_ref", "--key")
    assert_error(cli(project_dir, "start", "complaint:baseline", "--data", "customer_ref=77"), 3, "REF-77")


@pytest.mark.parametrize(
    ("pattern", "needle"),
    [('"C-{n!r}"', "not valid"), ('"FIXED"', "names no field"), ("[1]", "key pattern")],
)
def test_a_bad_key_pattern_is_a_project_error(cli, project_dir, pattern, needle):
    """flowrun.yaml's keys: must be format patterns naming fields."""
    configure(project_dir, f"keys:\n  complaint: {pattern}\n")
    assert_error(cli(project_dir, "tasks"), 1, "keys: complaint", needle)


def test_the_key_is_a_case_attribute_of_the_export(cli, project_dir, tmp_path):
    """XES keeps the id as concept:name and carries the key as the business_key trace attribute."""
    started = start(cli, project_dir, "--key", "C-1042")
    out = tmp_path / "log.xes"
    assert cli(project_dir, "export", "-o", str(out)).exit_code == 0
    text = out.read_text(encoding="utf-8")
    assert f'<string key="concept:name" value="{started["id"]}"/>' in text
    assert '<string key="business_key" value="C-1042"/>' in text


def _env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}, "FLOWRUN_NOW": NOW}


def test_start_with_a_key_in_a_real_process(project_dir):
    """The installed flowrun command: start --key, then the inbox of that case by its key."""

    def flowrun(*args: str) -> subprocess.CompletedProcess[str]:
        exe = str(flowrun_executable())
        return subprocess.run([exe, *args], cwd=project_dir, env=_env(), capture_output=True, text=True, timeout=60)

    run = flowrun("start", "complaint:baseline", "--key", "C-1")
    assert run.returncode == 0, run.stderr
    tasks = flowrun("tasks", "--instance", "C-1")
    assert tasks.returncode == 0, tasks.stderr
    assert "C-1" in tasks.stdout
    assert "Record complaint" in tasks.stdout


def test_concurrent_starts_get_different_numbered_keys(project_dir):
    """Four flowrun processes starting at once: four cases, keys C-0001 to C-0004, none refused."""
    configure(project_dir, 'keys:\n  complaint: "C-{n:04d}"\n')
    exe = str(flowrun_executable())
    procs = [
        subprocess.Popen(
            [exe, "start", "complaint:baseline", "--json"],
            cwd=project_dir,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    keys = sorted(r[0] for r in query(project_dir, "SELECT business_key FROM instances"))
    assert keys == ["C-0001", "C-0002", "C-0003", "C-0004"]


# -- due dates and priorities ---------------------------------------------------------------


def test_due_dates_come_from_the_diagram_then_the_service_level(cli, project_dir):
    """camunda:dueDate (date, duration, expression), a boundary timer, else families: sla:, else none."""
    add_due_dates(project_dir)
    text = (project_dir / "flowrun.yaml").read_text(encoding="utf-8")
    (project_dir / "flowrun.yaml").write_text(text.replace("families:\n", "families:\n  due:\n    sla: 72h\n", 1))
    start(cli, project_dir, "--data", "urgency=60", "--data", "reply_by=2026-03-02T18:00:00Z", target="due")
    due = {i["task"]: (i["due_at"], i["priority"]) for i in inbox(cli, project_dir, "--process", "due")}
    assert due == {
        "Task_Fixed": ("2026-03-03T12:00:00+00:00", 80),
        "Task_Duration": ("2026-03-02T12:00:00+00:00", 60),
        "Task_Expression": ("2026-03-02T18:00:00+00:00", None),
        "Task_Boundary": ("2026-03-04T08:00:00+00:00", None),
        "Task_Plain": ("2026-03-05T08:00:00+00:00", None),
    }


def test_a_task_without_any_due_date_has_none(cli, project_dir):
    """No dueDate, no boundary timer and no sla: the inbox shows '-' and sorts it after the dated ones."""
    add_due_dates(project_dir)
    start(cli, project_dir, "--data", "urgency=1", "--data", "reply_by=2026-03-02T18:00:00Z", target="due")
    items = inbox(cli, project_dir, "--process", "due")
    assert (items[-1]["task"], items[-1]["due_at"], items[-1]["due_s"]) == ("Task_Plain", None, None)


def test_the_inbox_sorts_overdue_first_then_by_priority_or_waiting(cli, project_dir):
    """Default: overdue first, then soonest due; --sort priority: highest first; --sort waiting: oldest first."""
    add_due_dates(project_dir)
    start(cli, project_dir, now="2026-03-02T07:00:00Z")  # due at the example's sla: 48h after its start
    start(cli, project_dir, "--data", "urgency=90", "--data", "reply_by=2026-03-02T09:00:00Z", target="due")
    later = "2026-03-02T13:00:00+00:00"

    def order(*args: str) -> list[str]:
        return [i["task"] for i in inbox(cli, project_dir, *args, now=later)]

    by_due = ["Task_Expression", "Task_Duration", "Task_Fixed", "Task_RecordComplaint", "Task_Boundary", "Task_Plain"]
    assert order() == by_due
    assert order("--sort", "due") == by_due
    assert order("--sort", "priority") == [
        "Task_Duration",
        "Task_Fixed",
        "Task_Expression",
        "Task_RecordComplaint",
        "Task_Boundary",
        "Task_Plain",
    ]
    assert order("--sort", "waiting")[0] == "Task_RecordComplaint"
    overdue = {i["task"]: (i["overdue"], i["due_s"]) for i in inbox(cli, project_dir, now=later)}
    assert overdue["Task_Expression"] == (True, -4 * 3600)
    assert overdue["Task_Fixed"] == (False, 23 * 3600)


def test_the_table_says_due_in_and_overdue(cli, project_dir):
    """People read 'in 23h 00m' and 'OVERDUE 4h 00m' and the priority."""
    add_due_dates(project_dir)
    start(cli, project_dir, "--data", "urgency=90", "--data", "reply_by=2026-03-02T09:00:00Z", target="due")
    out = cli(project_dir, "tasks", "--wide", now="2026-03-02T13:00:00Z").stdout
    assert re.search(r"From the data .*OVERDUE 4h 00m", out), out
    assert re.search(r"Fixed date .*in 23h 00m .*80", out), out


def test_an_expression_that_cannot_be_translated_is_refused_at_start(cli, project_dir):
    """camunda:priority="${a ? b : c}" is refused naming the element, never a traceback."""
    add_due_dates(project_dir)
    path = project_dir / "processes" / "due_dates.bpmn"
    path.write_text(path.read_text().replace('camunda:priority="80"', 'camunda:priority="${a ? 1 : 2}"'))
    assert_error(cli(project_dir, "start", "due"), 1, "Task_Fixed", "camunda:priority")
    checked = cli(project_dir, "validate")
    assert checked.exit_code == 1
    assert 'Task_Fixed ("Fixed date"): camunda:priority cannot be translated' in checked.stdout + checked.stderr


# -- data columns and filters ---------------------------------------------------------------


def test_inbox_columns_and_where_filters(cli, project_dir):
    """inbox: columns: shows case data; --where narrows on it (text, numbers, without case)."""
    configure(project_dir, "inbox:\n  columns: [customer_name, amount_disputed]\n")
    start(cli, project_dir, "--data", "customer_name=Ann", "--data", "amount_disputed=80.5")
    start(cli, project_dir, "--data", "customer_name=Bob")
    items = inbox(cli, project_dir)
    assert [i["columns"] for i in items] == [
        {"customer_name": "Ann", "amount_disputed": 80.5},
        {"customer_name": "Bob", "amount_disputed": None},
    ]
    assert [i["columns"]["customer_name"] for i in inbox(cli, project_dir, "--where", "customer_name=ann")] == ["Ann"]
    assert len(inbox(cli, project_dir, "--where", "customer_name=Ann", "--where", "amount_disputed=80.50")) == 1
    assert inbox(cli, project_dir, "--where", "amount_disputed=80") == []
    assert inbox(cli, project_dir, "--where", "no_such_field=1") == []
    table = cli(project_dir, "tasks", "--wide").stdout
    assert "customer_name" in table
    assert "80.5" in table
    assert "Bob" in table


def test_a_malformed_where_is_an_error(cli, project_dir):
    start(cli, project_dir)
    assert_error(cli(project_dir, "tasks", "--where", "customer_name"), 1, "--where", "FIELD=VALUE")


def test_a_bad_inbox_setting_is_a_project_error(cli, project_dir):
    configure(project_dir, "inbox:\n  colums: [a]\n")
    assert_error(cli(project_dir, "tasks"), 1, "inbox: unknown settings ['colums']")


# -- lanes and families ----------------------------------------------------------------------


def test_lane_matches_without_case_and_a_typo_lists_the_lanes(cli, project_dir):
    start(cli, project_dir)
    assert [i["lane"] for i in inbox(cli, project_dir, "--lane", "CALL centre")] == ["Call Centre"]
    assert inbox(cli, project_dir, "--lane", "Supervisor") == []
    assert_error(cli(project_dir, "tasks", "--lane", "Call Center"), 1, "no lane 'Call Center'", "Call Centre, ")
    assert_error(cli(project_dir, "tasks", "--process", "complain"), 1, "no process family 'complain'", "complaint")


# -- preview ---------------------------------------------------------------------------------


def test_task_preview_shows_documentation_form_and_data_without_claiming(cli, project_dir):
    """flowrun task REF: documentation, fields (label, type, required, choices), the case data; still unclaimed."""
    add_due_dates(project_dir)
    start(cli, project_dir, "--data", "urgency=3", "--data", "reply_by=2026-03-02T18:00:00Z", target="due")
    [fixed] = [i for i in inbox(cli, project_dir) if i["task"] == "Task_Fixed"]
    out = cli(project_dir, "task", str(fixed["ref"])).stdout
    assert "Call the customer back before noon." in out
    assert "urgency" in out
    assert "priority  80" in out
    start(cli, project_dir, "--data", "customer_name=Ann", "--key", "C-7")
    [record] = inbox(cli, project_dir, "--instance", "C-7")
    preview = cli_json(cli(project_dir, "task", str(record["ref"]), "--json"))
    assert preview["key"] == "C-7"
    assert preview["status"] == "ready"
    assert preview["data"] == {"customer_name": "Ann"}
    category = next(f for f in preview["form"]["fields"] if f["name"] == "category")
    assert category["required"]
    assert "billing" in category["choices"]
    text = cli(project_dir, "task", str(record["ref"])).stdout
    assert "Complaint category (category: string; one of: billing" in text
    assert inbox(cli, project_dir, "--instance", "C-7")[0]["owner"] is None


def test_task_preview_of_an_unknown_ref(cli, project_dir):
    assert_error(cli(project_dir, "task", "999"), 1, "no task with ref 999")


# -- fitting the terminal --------------------------------------------------------------------


def test_tables_fit_80_columns_and_never_cut_refs_or_times(cli, project_dir, monkeypatch):
    """At COLUMNS=80 no line is longer than 80, every ref, key and time is whole, and dropped columns are named."""
    configure(project_dir, "inbox:\n  columns: [customer_name, description]\n")
    long = "a very long description of what went wrong " * 3
    for n in range(3):
        start(
            cli,
            project_dir,
            "--key",
            f"CASE-2026-{n:05d}",
            "--data",
            "customer_name=Annabel Smith-Jones",
            "--data",
            f"description={long}",
        )
    monkeypatch.setenv("COLUMNS", "80")
    out = cli(project_dir, "tasks", now="2026-03-06T09:30:00Z").stdout
    assert max(len(line) for line in out.splitlines()) <= 80, out
    for item in inbox(cli, project_dir):
        assert re.search(rf"\b{item['ref']}\b .*{item['key']}", out), out
    assert "OVERDUE 2d 1h" in out
    assert "not shown for lack of width: process" in out
    for command in (("instances",), ("history", "CASE-2026-00000")):
        lines = cli(project_dir, *command).stdout.splitlines()
        assert max(len(line) for line in lines) <= 80, lines
    wide = cli(project_dir, "tasks", "--wide").stdout
    assert "complaint:baseline" in wide
    assert long.strip() in wide.replace("\n", "")
