"""The service blueprint in flowrun.yaml and the diagrams (issue 11): lanes, touchpoints, costs, milestones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flowrun import app
from flowrun.analysis.blueprint import LANE_CLASSES
from flowrun.analysis.measures import measure
from flowrun.app.blueprints import pilot_settings
from flowrun.config import LANE_LAYERS, Settings, find_project, load_settings
from flowrun.errors import ProjectError

BASE = "processes: {complaint: {baseline: processes/b.bpmn}}\n"


def _settings(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "flowrun.yaml"
    path.write_text(BASE + text, encoding="utf-8")
    return load_settings(path)


def test_every_key_is_read():
    """Lanes, costs, currency and a family's primary KPI, milestones and SLA, as written in flowrun.yaml."""
    s = load_settings(Path(app.example_dir()) / "flowrun.yaml")
    assert s.lanes["Call Centre"] == "frontstage"
    assert s.lanes["Specialist"] == "backstage"
    assert s.hourly_cost == {
        "Call Centre": 32.0,
        "Front Office": 36.0,
        "Back Office": 38.0,
        "Specialist": 55.0,
        "Supervisor": 60.0,
    }
    assert s.currency == "EUR"
    pilot = s.pilots["complaint"]
    assert pilot.primary == "cycle_time"
    assert pilot.resolution == ("Task_ReplyToCustomer", "Task_ResolveAtFirstContact", "Task_ConfirmResolution")
    assert pilot.sla_seconds == 48 * 3600
    assert LANE_LAYERS == LANE_CLASSES  # config sits below analysis, so it keeps its own copy


@pytest.mark.parametrize(
    ("sla", "seconds"),
    [("48h", 172800), ("2d", 172800), ("90m", 5400), ("PT48H", 172800), ("P1DT12H", 129600), (3600, 3600)],
)
def test_sla_durations(tmp_path, sla, seconds):
    s = _settings(tmp_path, f"families: {{complaint: {{sla: {sla}}}}}\n")
    assert s.pilots["complaint"].sla_seconds == seconds


@pytest.mark.parametrize(
    ("text", "named", "fix"),
    [
        ("lanes: {Call Centre: front}\n", "lanes: 'Call Centre'", "frontstage"),
        ("lanes: [Customer]\n", "'lanes'", "customer, frontstage, backstage, support"),
        ("hourly_cost: {Call Centre: -5}\n", "hourly_cost: 'Call Centre'", "a number >= 0"),
        ("hourly_cost: {Call Centre: '32 EUR'}\n", "hourly_cost: 'Call Centre'", "a number >= 0"),
        ("hourly_cost: {Call Centre: .nan}\n", "hourly_cost", "a number >= 0"),
        ("currency: 12\n", "'currency'", "such as EUR"),
        ("families: {complaint: {sla: 2 days}}\n", "families: complaint: sla", "48h, 2d, 90m, PT48H"),
        ("families: {complaint: {sla: P1M}}\n", "families: complaint: sla", "48h, 2d, 90m, PT48H"),
        ("families: {complaint: {sla: 0}}\n", "families: complaint: sla", "more than 0"),
        ("families: {complaint: {primary: ''}}\n", "'primary'", "primary: cycle_time"),
        ("families: {complaint: {resolution: {a: 1}}}\n", "'resolution'", "resolution: [Task_ReplyToCustomer]"),
        ("families: {complaint: {goal: fast}}\n", "unknown settings ['goal']", "primary, resolution, sla"),
        ("families: [complaint]\n", "'families'", "families: {complaint:"),
        ("customer_facing_lanes: Customer\n", "'customer_facing_lanes'", "[Customer]"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(tmp_path, text, named, fix):
    with pytest.raises(ProjectError) as err:
        _settings(tmp_path, text)
    message = str(err.value)
    assert "flowrun.yaml" in message
    assert named in message
    assert fix in message


def test_a_bad_value_stops_the_cli_with_one_message(cli, project_dir):
    with (project_dir / "flowrun.yaml").open("a", encoding="utf-8") as f:
        f.write("hourly_cost: {Call Centre: lots}\n")
    result = cli(project_dir, "validate")
    assert result.exit_code != 0
    assert "hourly_cost: 'Call Centre' is 'lots'" in result.output
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def example():
    return pilot_settings(app.Project(find_project(explicit=app.example_dir())), "complaint")


def test_the_example_classifies_lanes_costs_and_milestones(example):
    assert example.layer("customer") == "customer"
    assert example.layer("Call Centre") == example.layer("Front Office") == "frontstage"
    assert {example.layer(x) for x in ("Back Office", "Specialist", "Supervisor")} == {"backstage"}
    assert example.hourly_cost["front office"] == 36.0
    assert example.currency == "EUR"
    assert example.resolution == {"Task_ReplyToCustomer", "Task_ResolveAtFirstContact", "Task_ConfirmResolution"}
    assert (example.sla_seconds, example.primary) == (172800.0, "cycle_time")


def test_the_example_overrides_touchpoints_per_variant(example):
    """Baseline: the back office and the specialist call the customer; re-engineered: they do not."""
    assert example.variant_touchpoints["baseline"] == {"Task_AnalyseNeeds": True, "Task_SpecialistAssessment": True}
    assert example.variant_touchpoints["reengineered"] == {
        "Task_CheckEntitlement": False,
        "Task_SetServiceLevel": False,
        "Task_ResolveAtFirstContact": False,
    }
    assert example.is_touchpoint("Task_SpecialistAssessment", "Specialist", "baseline")
    assert not example.is_touchpoint("Task_SpecialistAssessment", "Specialist", "reengineered")
    assert not example.is_touchpoint("Task_ResolveAtFirstContact", "Front Office", "reengineered")
    assert example.is_touchpoint("Task_InformCustomer", "Front Office", "reengineered")


def test_fewer_customer_contacts_show_in_the_measures(example):
    """The specialist path of each variant, measured: 5 contacts in the baseline, 4 re-engineered."""
    rows = [("b", "baseline", None, "completed", 0.0, 100.0), ("r", "reengineered", None, "completed", 0.0, 100.0)]
    baseline: list[tuple[str, ...]] = [
        ("Task_RecordComplaint", "Call Centre"),
        ("Task_AnalyseNeeds", "Back Office"),
        ("Task_SpecialistAssessment", "Specialist"),
        ("Task_DraftResolution", "Back Office"),
        ("Task_ReplyToCustomer", "Call Centre"),
        ("Task_SatisfactionSurvey", "Customer"),
    ]
    reengineered: list[tuple[str, ...]] = [
        ("Task_RecordAndAssess", "Front Office"),
        ("Task_CheckEntitlement", "Front Office", "serviceTask"),
        ("Task_SetServiceLevel", "Front Office", "scriptTask"),
        ("Task_InformCustomer", "Front Office"),
        ("Task_SpecialistAssessment", "Specialist"),
        ("Task_ConfirmResolution", "Front Office"),
        ("Task_SatisfactionSurvey", "Customer"),
    ]
    steps = [
        (iid, task, lane, kind[0] if kind else "userTask", 1000 * i, 1000 * i, 1000 * (i + 1), 100 * n + i)
        for n, (iid, path) in enumerate([("b", baseline), ("r", reengineered)])
        for i, (task, lane, *kind) in enumerate(path)
    ]
    cases = measure(rows, [steps], (), example)
    assert cases.case("b")["touchpoints"] == 5
    assert cases.case("r")["touchpoints"] == 4


def _bad_touchpoint(project_dir: Path) -> int:
    """Set the baseline's first touchpoint property to 'maybe'; returns its line."""
    path = project_dir / "processes" / "complaint_baseline.bpmn"
    text = path.read_text(encoding="utf-8")
    marker = '<camunda:property name="touchpoint" value="true" />'
    line = text[: text.index(marker)].count("\n") + 1
    path.write_text(text.replace(marker, '<camunda:property name="touchpoint" value="maybe" />', 1), encoding="utf-8")
    return line


def test_validate_reports_a_bad_touchpoint_with_its_line(cli, project_dir):
    line = _bad_touchpoint(project_dir)
    result = cli(project_dir, "validate")
    assert result.exit_code != 0
    assert re.search(
        rf"processes/complaint_baseline\.bpmn:{line}: Task_AnalyseNeeds .*touchpoint property is 'maybe'.*true",
        result.output,
    ), result.output


def test_pilot_settings_refuses_a_bad_touchpoint(project_dir):
    line = _bad_touchpoint(project_dir)
    with pytest.raises(ProjectError, match=rf"complaint_baseline\.bpmn:{line}: Task_AnalyseNeeds: .*'maybe'"):
        pilot_settings(app.Project(find_project(explicit=project_dir)), "complaint")


def test_touchpoint_values_ignore_case(tmp_path):
    from flowrun.engine.properties import touchpoint_value

    assert [touchpoint_value(v) for v in ("TRUE", " yes ", "No", "false", "1", "")] == [
        True,
        True,
        False,
        False,
        None,
        None,
    ]


def test_unknown_milestones_and_lanes_are_named(cli, project_dir):
    """A milestone no diagram has is an error naming the ids the diagrams have; an unknown lane a warning."""
    path = project_dir / "flowrun.yaml"
    text = path.read_text(encoding="utf-8").replace("Task_ConfirmResolution]", "Task_Confirm]")
    text = text.replace("Supervisor: 60}", "Supervisor: 60, Back Ofice: 40}")
    text = text.replace("  complaint:\n    primary:", "  claims: {sla: 2d}\n  complaint:\n    primary:")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProjectError) as err:
        pilot_settings(app.Project(find_project(explicit=project_dir)), "complaint")
    assert "flowrun.yaml: families: complaint: resolution names Task_Confirm" in str(err.value)
    assert "Task_ConfirmResolution" in str(err.value)  # among the ids the diagrams have
    result = cli(project_dir, "validate")
    assert result.exit_code != 0
    assert "resolution names Task_Confirm," in result.output
    assert "hourly_cost: no diagram of the project has the lane(s) Back Ofice" in result.output
    assert "families: claims is not a family under 'processes:' (complaint)" in result.output
