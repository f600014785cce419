"""``flowrun compare`` on a realistic pilot: 30 baseline and 30 re-engineered complaints with seeded durations."""

from __future__ import annotations

import csv
import io
import json
import math
import random
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flowrun import app
from flowrun.analysis import to_dict
from flowrun.clock import ManualClock
from flowrun.config import find_project
from flowrun.store import analytics
from tests.conftest import ON_POSTGRES
from tests.helpers import (
    ANALYSE_NO_SPECIALIST,
    ANALYSE_SPECIALIST,
    RECORD,
    REPLY,
    SPECIALIST,
    T0,
    db_path,
    draft,
    intake,
)

N_PER_VARIANT = 30
#: Case i starts at T0 + i x 2 h, so dates select known cases.
SPACING = timedelta(hours=2)

KPI_KEYS = {
    "kpi",
    "ci_null",
    "censored",
    "ci_adjusted",
    "ci_adjusted_level",
    "effect_size",
    "effect_size_name",
    "p_adjusted",
    "primary",
    "shift",
    "shift_ci95",
    "change_unit",
    "notes",
    "unit",
    "statistic",
    "baseline",
    "variant",
    "diff",
    "rel_diff",
    "ci95",
    "ci_method",
    "p_value",
    "test",
    "significant",
    "too_small",
    "verdict",
}
SIDE_KEYS = {"n", "median", "p90", "mean", "value"}
TASK_SIDE_KEYS = {"n", "waiting_median", "touch_median", "waiting_p90", "touch_p90"}


def _survey(rng: random.Random, good: bool) -> dict[str, Any]:
    return {
        "satisfaction": rng.randint(3, 5) if good else rng.randint(1, 4),
        "nps": rng.randint(6, 10) if good else rng.randint(0, 9),
        "resolved_first_contact": rng.random() < (0.8 if good else 0.3),
    }


def _baseline_steps(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    specialist = rng.random() < 0.4
    steps: list[tuple[str, dict[str, Any]]] = [
        ("Record complaint", RECORD),
        ("Analyse needs", ANALYSE_SPECIALIST if specialist else ANALYSE_NO_SPECIALIST),
    ]
    if specialist:
        steps.append(("Specialist assessment", SPECIALIST))
    steps.append(("Draft resolution", draft(rng.choice([40, 80]))))
    return [*steps, ("Reply to customer", REPLY), ("Satisfaction survey", _survey(rng, good=False))]


def _reengineered_steps(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    survey = ("Satisfaction survey", _survey(rng, good=True))
    if rng.random() < 0.7:
        resolve = {"remedy": "refund", "remedy_amount": 40, "message": "Refunded now."}
        return [("Record and assess complaint", intake()), ("Resolve at first contact", resolve), survey]
    confirm = {"remedy": "refund", "remedy_amount": 80, "message": "Refund on its way."}
    return [
        ("Record and assess complaint", intake(can_resolve_now=False)),
        ("Inform customer of next steps", {"contact_channel": "sms", "expected_days": 3}),
        ("Specialist assessment", SPECIALIST),
        ("Confirm resolution with customer", confirm),
        survey,
    ]


def _run_case(
    project: app.Project,
    clock: ManualClock,
    target: str,
    steps: list[tuple[str, dict[str, Any]]],
    rng: random.Random,
    slow: bool,
) -> str:
    iid = app.start(project, target, pilot=rng.choice(["north", "south"])).instance
    for name, data in steps:
        ref = next(i.ref for i in app.inbox(project, iid) if i.name == name)
        clock.advance(rng.uniform(1800, 7200) if slow else rng.uniform(300, 2400))  # waiting
        app.claim(project, str(ref), "op")
        clock.advance(rng.uniform(300, 1200) if slow else rng.uniform(240, 900))  # touch
        app.complete(project, str(ref), data, "op")
    return iid


@pytest.fixture(scope="module")
def pilot(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> tuple[Path, dict[str, Any]]:
    """A project with 30 baseline and 30 faster re-engineered cases (pilots north and south) and 2 running ones."""
    url = request.getfixturevalue("pg_server").create_database() if ON_POSTGRES else None
    return _build_pilot(tmp_path_factory.mktemp("pilot") / "proj", url)


@pytest.fixture(scope="module")
def sqlite_pilot_project(tmp_path_factory: pytest.TempPathFactory) -> app.Project:
    """The same pilot on SQLite, for the checks of SQLite's own query paths (in both test runs)."""
    root, _ = _build_pilot(tmp_path_factory.mktemp("pilot-sqlite") / "proj", None)
    return app.Project(find_project(explicit=root), ManualClock(T0 + timedelta(days=30)))


def _build_pilot(root: Path, url: str | None) -> tuple[Path, dict[str, Any]]:
    app.init_project(root)
    if url:
        with (root / "flowrun.yaml").open("a", encoding="utf-8") as f:
            f.write(f"database: {url}\n")
    clock = ManualClock(T0)
    project = app.Project(find_project(explicit=root), clock)
    rng = random.Random(20260302)
    starts: dict[str, datetime] = {}
    for i in range(2 * N_PER_VARIANT):
        clock.set(T0 + i * SPACING)
        baseline = i % 2 == 0
        steps = _baseline_steps(rng) if baseline else _reengineered_steps(rng)
        target = "complaint:baseline" if baseline else "complaint:reengineered"
        starts[_run_case(project, clock, target, steps, rng, slow=baseline)] = T0 + i * SPACING
    clock.set(T0 + 2 * N_PER_VARIANT * SPACING)
    for target in ("complaint:baseline", "complaint:reengineered"):
        app.start(project, target, pilot="north")
    project.store.close()
    return root, {"starts": starts}


@pytest.fixture
def pilot_project(pilot: tuple[Path, dict[str, Any]]) -> app.Project:
    return app.Project(find_project(explicit=pilot[0]), ManualClock(T0 + timedelta(days=30)))


def _compare_json(cli: Any, root: Path, *args: str) -> dict[str, Any]:
    result = cli(root, "compare", "complaint", "--json", *args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_reengineered_cycle_time_improvement_is_significant(pilot_project):
    """The faster re-engineered process: cycle time falls, significantly, with a negative interval."""
    result = app.compare(pilot_project, "complaint")

    assert (result.baseline.name, result.variant.name) == ("baseline", "reengineered")
    assert (result.baseline.n, result.variant.n) == (N_PER_VARIANT, N_PER_VARIANT)
    assert (result.baseline.running, result.variant.running) == (1, 1)
    cycle = next(k for k in result.kpis if k.kpi == "cycle_time")
    # one running case per group: censored, so cycle time is judged by Kaplan-Meier and log-rank
    assert (cycle.censored, cycle.test, cycle.ci_null) == ((1, 1), "log-rank", 1.0)
    assert (cycle.baseline.n, cycle.variant.n) == (N_PER_VARIANT + 1, N_PER_VARIANT + 1)
    assert cycle.significant
    assert cycle.verdict == "significant decrease"
    assert cycle.p_value is not None
    assert cycle.p_value < 0.001
    assert cycle.ci95 is not None
    assert cycle.diff is not None
    assert 1 < cycle.ci95[0] < cycle.ci95[1]  # the re-engineered cases finish sooner: hazard ratio above 1
    assert cycle.diff < 0
    assert cycle.variant.median is not None
    assert cycle.baseline.median is not None
    assert cycle.diff == cycle.variant.median - cycle.baseline.median
    handoffs = next(k for k in result.kpis if k.kpi == "handoffs")
    assert handoffs.significant
    assert handoffs.diff is not None
    assert handoffs.diff < 0


def test_json_has_exactly_the_documented_keys(cli, pilot):
    """Groups, KPI rows and task rows carry stable keys; durations are seconds."""
    data = _compare_json(cli, pilot[0])

    assert set(data) == {
        "family",
        "filters",
        "groups",
        "baseline",
        "variant",
        "kpis",
        "tasks",
        "lanes",
        "significant",
        "warnings",
        "alpha",
        "min_group",
        "seed",
        "resamples",
    }
    per_hour = {name: g.pop("cases_per_person_hour") for name, g in data["groups"].items()}
    assert data["groups"] == {
        "baseline": {"n": N_PER_VARIANT, "running": 1, "other": 0},
        "reengineered": {"n": N_PER_VARIANT, "running": 1, "other": 0},
    }
    # completed cases per hour of people's touch time, from the per-case touch times
    touch = {k["kpi"]: k for k in data["kpis"]}["touch_time"]
    assert touch["baseline"]["n"] == N_PER_VARIANT
    for name in ("baseline", "reengineered"):
        side = touch["baseline" if name == "baseline" else "variant"]
        assert per_hour[name] == pytest.approx(N_PER_VARIANT / (side["mean"] * N_PER_VARIANT / 3600))
    assert [k["kpi"] for k in data["kpis"]] == [
        "cycle_time",
        "waiting_time",
        "touch_time",
        "response_time",
        "resolution_time",  # the example names milestones, an SLA and costs (flowrun.yaml)
        "steps",
        "automated_steps",
        "handoffs",
        "touchpoints",
        "customer_effort",
        "rework",
        "rework_rate",
        "sla_met",
        "cost",
        "satisfaction",
        "nps",
        "fcr",
    ]
    units = {k["kpi"]: k["unit"] for k in data["kpis"]}
    assert units["cycle_time"] == "s"
    assert units["steps"] == "count"
    assert (units["satisfaction"], units["nps"], units["fcr"]) == ("score", "score", "proportion")
    for k in data["kpis"]:
        assert set(k) == KPI_KEYS
        assert set(k["baseline"]) == SIDE_KEYS == set(k["variant"])
        assert isinstance(k["significant"], bool)
        assert len(k["ci95"]) == 2
    tests = {k["kpi"]: (k["test"], k["ci_method"]) for k in data["kpis"]}
    assert tests["cycle_time"] == ("log-rank", "peto-hazard-ratio")  # a running case per group: censored
    assert tests["touch_time"] == ("mann-whitney-exact", "hodges-lehmann-mann-whitney")  # 30 + 30 cases: exact
    assert tests["nps"] == ("nps-difference-z", "trinomial-wald-pseudo-half")
    assert tests["fcr"] == ("newcombe-inversion", "newcombe-wilson")
    changes = {k["kpi"]: (k["change_unit"], k["rel_diff"]) for k in data["kpis"]}
    assert changes["satisfaction"] == ("points", None)
    assert changes["fcr"] == ("pp", None)
    assert changes["cycle_time"][0] == "%"
    for t in data["tasks"]:
        assert set(t) == {"task", "name", "lane", "baseline", "variant"}
        for side in (t["baseline"], t["variant"]):
            assert side is None or set(side) == TASK_SIDE_KEYS
    assert "cycle_time" in data["significant"]


def test_tasks_side_by_side_and_tasks_of_one_variant(cli, pilot):
    """Shared tasks have both sides; a task only one variant has shows null for the other."""
    tasks = {t["task"]: t for t in _compare_json(cli, pilot[0])["tasks"]}

    survey = tasks["Task_SatisfactionSurvey"]
    assert survey["name"] == "Satisfaction survey"
    assert survey["lane"] == "Customer"
    assert survey["baseline"]["n"] == N_PER_VARIANT == survey["variant"]["n"]
    record = next(t for t in tasks.values() if t["name"] == "Record complaint")
    assert record["variant"] is None
    assert record["baseline"]["n"] == N_PER_VARIANT
    intake_task = next(t for t in tasks.values() if t["name"] == "Record and assess complaint")
    assert intake_task["baseline"] is None
    assert intake_task["variant"]["n"] == N_PER_VARIANT
    assert list(tasks)[0] in (record["task"], intake_task["task"])  # tasks come in the order they run


def test_nps_is_in_points_and_fcr_a_share(cli, pilot, pilot_project):
    """NPS per group is 100 x (promoters - detractors) / n; first-contact resolution is a proportion."""
    data = _compare_json(cli, pilot[0])
    cases = app.measure_cases(pilot_project, "complaint")
    kpis = {k["kpi"]: k for k in data["kpis"]}
    for side, variant in (("baseline", "baseline"), ("variant", "reengineered")):
        keep = np.array([v == variant for v in cases.variants]) & cases.completed
        answers = cases.outcomes["nps"][keep]
        expected = 100 * (np.count_nonzero(answers >= 9) - np.count_nonzero(answers <= 6)) / answers.size
        assert kpis["nps"][side]["value"] == pytest.approx(expected)
        assert kpis["fcr"][side]["value"] == pytest.approx(np.mean(cases.outcomes["resolved_first_contact"][keep]))
    assert kpis["nps"]["diff"] == pytest.approx(kpis["nps"]["variant"]["value"] - kpis["nps"]["baseline"]["value"])


def test_csv_parses_with_the_csv_module(cli, pilot):
    """--csv: a header and one row per KPI, numbers in seconds."""
    result = cli(pilot[0], "compare", "complaint", "--csv")
    assert result.exit_code == 0, result.stderr

    rows = list(csv.DictReader(io.StringIO(result.stdout)))

    assert [r["kpi"] for r in rows][:3] == ["cycle_time", "waiting_time", "touch_time"]
    assert len(rows) == 17
    cycle = rows[0]
    assert int(cycle["baseline_n"]) == N_PER_VARIANT + 1  # the running case is censored, not dropped
    assert (cycle["baseline_censored"], cycle["variant_censored"], cycle["ci_null"]) == ("1", "1", "1.0")
    assert float(cycle["diff"]) == pytest.approx(float(cycle["variant_median"]) - float(cycle["baseline_median"]))
    assert cycle["significant"] == "true"
    assert float(cycle["ci95_low"]) < float(cycle["ci95_high"])


def test_table_renders_with_human_durations(cli, pilot):
    """The rich table shows hours and minutes, and says which changes are significant in words."""
    result = cli(pilot[0], "compare", "complaint")
    assert result.exit_code == 0, result.stderr
    out = result.stdout

    assert "complaint: baseline (baseline) vs reengineered (variant)" in out
    assert "baseline: 30 completed case(s), 1 running" in out
    assert re.search(r"cycle_time\s+baseline\s+31\s+\d+h \d\dm", out)
    assert re.search(r"HR \d+\.\d\d-\d+\.\d\d", out)
    assert "Significant at 5%:" in out
    assert re.search(r"cycle_time fell from \d+h \d\dm to \d+h \d\dm \(median, -\d+h \d\dm, -\d+%", out)
    assert "Per task: median waiting and touch time" in out
    assert re.search(r"Record complaint\s+Call Centre\s+30\s+\S+.*-\s+not run", out)
    assert "still running are censored at the cut-off in cycle_time" in out


def test_since_and_until_filter_by_case_start(cli, pilot):
    """--since a date takes cases started from its midnight; --until a date includes that whole day."""
    root, info = pilot
    since, until = "2026-03-03", "2026-03-04"
    lo = datetime(2026, 3, 3, tzinfo=timezone.utc)
    hi = datetime(2026, 3, 5, tzinfo=timezone.utc)
    data = _compare_json(cli, root, "--since", since, "--until", until)

    picked = [when for when in info["starts"].values() if lo <= when < hi]
    total = sum(g["n"] for g in data["groups"].values())
    assert total == len(picked) == 24  # 12 cases a day
    assert data["filters"] == {"pilot": None, "since": lo.isoformat(), "until": hi.isoformat()}
    later = _compare_json(cli, root, "--since", "2026-03-06T08:00:00Z")
    assert sum(g["n"] for g in later["groups"].values()) == sum(
        1 for w in info["starts"].values() if w >= hi + timedelta(hours=32)
    )


def test_comparing_two_pilots_of_the_same_variant(cli, pilot, pilot_project):
    """Groups can be pilots: baseline@north against baseline@south, named by their specs."""
    data = _compare_json(cli, pilot[0], "--baseline", "baseline@north", "--variant", "baseline@south")

    cases = app.measure_cases(pilot_project, "complaint", group="baseline")
    north = sum(1 for p, done in zip(cases.pilots, cases.completed, strict=True) if p == "north" and done)
    assert data["groups"]["baseline@north"]["n"] == north
    assert data["groups"]["baseline@south"]["n"] == N_PER_VARIANT - north
    assert data["groups"]["baseline@north"]["running"] == 1


def test_pilot_option_filters_both_groups(cli, pilot, pilot_project):
    """--pilot keeps only that pilot's cases in both groups; @PILOT alone takes every variant of it."""
    data = _compare_json(cli, pilot[0], "--pilot", "south")
    cases = app.measure_cases(pilot_project, "complaint", pilot="south")
    for name in ("baseline", "reengineered"):
        expected = sum(1 for v, done in zip(cases.variants, cases.completed, strict=True) if v == name and done)
        assert data["groups"][name]["n"] == expected
    by_pilot = _compare_json(cli, pilot[0], "--baseline", "@north", "--variant", "@south")
    assert sum(g["n"] for g in by_pilot["groups"].values()) == 2 * N_PER_VARIANT


def test_small_groups_are_called_out(cli, pilot):
    """A day's window leaves fewer than 10 cases a group: every KPI is 'too few to judge', with the reason."""
    result = cli(pilot[0], "compare", "complaint", "--since", "2026-03-02", "--until", "2026-03-02")
    assert result.exit_code == 0, result.stderr
    assert "fewer than 10: too few to judge" in result.stdout
    assert "can come from chance alone" in result.stdout
    assert "No change is significant at 5%." in result.stdout
    data = _compare_json(cli, pilot[0], "--since", "2026-03-02", "--until", "2026-03-02")
    assert all(k["too_small"] and not k["significant"] for k in data["kpis"])


def test_unknown_groups_and_bad_options_are_refused(cli, pilot):
    """Unknown family, variant or pilot exit 1 naming what exists; --json with --csv or a bad date exit 2."""
    root = pilot[0]
    missing = cli(root, "compare", "nosuch")
    assert missing.exit_code == 1
    assert "no process family 'nosuch'" in missing.stderr
    variant = cli(root, "compare", "complaint", "--variant", "fast")
    assert variant.exit_code == 1
    assert "has no variant 'fast'; it has baseline, reengineered" in variant.stderr
    pilot_missing = cli(root, "compare", "complaint", "--variant", "@east")
    assert pilot_missing.exit_code == 1
    assert "pilots with cases: north, south" in pilot_missing.stderr
    same = cli(root, "compare", "complaint", "--baseline", "reengineered", "--variant", "reengineered")
    assert same.exit_code == 1
    assert "same group" in same.stderr
    assert cli(root, "compare", "complaint", "--json", "--csv").exit_code == 2
    bad = cli(root, "compare", "complaint", "--since", "March")
    assert bad.exit_code == 2
    assert "not a date" in bad.stderr
    primary = cli(root, "compare", "complaint", "--primary", "speed")
    assert primary.exit_code == 1
    assert "unknown primary KPI 'speed'; use one of cycle_time, waiting_time" in primary.stderr
    assert "Traceback" not in primary.stderr


def test_primary_option_is_tested_alone_and_named(cli, pilot):
    """--primary cycle_time: its adjusted p is its raw p, the others are Holm-adjusted, the text says so."""
    data = json.loads(cli(pilot[0], "compare", "complaint", "--json", "--primary", "cycle_time").stdout)
    cycle = next(k for k in data["kpis"] if k["kpi"] == "cycle_time")
    assert cycle["primary"]
    assert cycle["p_adjusted"] == cycle["p_value"]
    others = [k for k in data["kpis"] if k["kpi"] != "cycle_time" and k["p_adjusted"] is not None]
    assert all(k["p_adjusted"] >= k["p_value"] for k in others)
    text = cli(pilot[0], "compare", "complaint", "--primary", "cycle_time").stdout
    assert "Primary KPI: cycle_time" in text


def test_the_result_does_not_depend_on_row_order_or_chance(pilot_project):
    """Every method is exact or closed-form: the same data give the same numbers, whatever order the
    database returns the cases in (the cases are shuffled here before they are compared)."""
    from flowrun import analysis
    from flowrun.analysis.compare import _values

    first = to_dict(app.compare(pilot_project, "complaint"))
    assert first == to_dict(app.compare(pilot_project, "complaint"))
    assert first["seed"] is None
    assert first["resamples"] == 0
    cases = app.measure_cases(pilot_project, "complaint")
    kpis = analysis.case_kpis()
    base = np.array([v == "baseline" for v in cases.variants])
    rng = np.random.default_rng(1)
    order = rng.permutation(len(cases))
    for kpi in kpis:
        values = _values(cases, kpi)
        done = cases.completed
        a = analysis.stats.shift_test(values[base & done], values[~base & done])
        b = analysis.stats.shift_test(values[order][(base & done)[order]], values[order][(~base & done)[order]])
        assert a == b, kpi.name


def test_measures_agree_with_a_plain_sql_reference(sqlite_pilot_project):
    """Steps, rework, handoffs and times per case equal a direct SQL computation, plus the union of intervals.

    Manual steps are user tasks; rework counts activations (distinct ready times) beyond the first per
    task; handoffs are lane changes between user tasks outside the customer lane; waiting time is the
    case's life minus the union of its steps' busy intervals (merged here in plain Python).
    """
    steps = "'userTask','serviceTask','scriptTask'"
    reference = f"""
        WITH s AS (
          SELECT instance_id AS iid, bpmn_id, lane, type, ready_at,
                 (completed_at - started_at) / 1e6 AS h,
                 LAG(lane) OVER (PARTITION BY instance_id, (type = 'userTask' AND lane <> 'Customer')
                                 ORDER BY completed_at, ready_at, id) AS prev
          FROM tasks WHERE status = 'completed' AND type IN ({steps}))
        SELECT iid, SUM(type = 'userTask'), COUNT(DISTINCT bpmn_id || '@' || ready_at) - COUNT(DISTINCT bpmn_id),
               SUM(type = 'userTask' AND lane <> 'Customer' AND lane <> prev), SUM(h),
               (MAX(i.ended_at) - MAX(i.created_at)) / 1e6
        FROM s JOIN instances i ON i.id = s.iid WHERE i.status = 'completed' GROUP BY iid"""
    intervals = f"""
        SELECT instance_id, started_at / 1e6, completed_at / 1e6 FROM tasks
        WHERE status = 'completed' AND type IN ({steps}) ORDER BY instance_id, started_at"""
    conn = sqlite3.connect(db_path(sqlite_pilot_project.settings.root))
    try:
        rows = conn.execute(reference).fetchall()
        busy: dict[str, float] = {}
        reach: dict[str, float] = {}
        for iid, s, c in conn.execute(intervals):
            covered = reach.get(iid, -math.inf)
            busy[iid] = busy.get(iid, 0.0) + max(0.0, c - max(s, covered))
            reach[iid] = max(covered, c)
    finally:
        conn.close()
    cases = app.measure_cases(sqlite_pilot_project, "complaint")
    assert len(rows) == 2 * N_PER_VARIANT
    for iid, n, rework, handoffs, touch, life in rows:
        case = cases.case(iid)
        assert (case["steps"], case["rework"], case["handoffs"]) == (n, rework, handoffs or 0)
        assert case["waiting_time"] == pytest.approx(life - busy[iid], abs=1e-2)
        # flowrun rounds each time to the millisecond; the reference sums the exact microseconds
        assert case["touch_time"] == pytest.approx(touch, abs=1e-2)


def test_scan_and_lookup_reads_give_the_same_steps(sqlite_pilot_project):
    """Reading every step and dropping others equals reading the selected cases' steps by index (SQLite)."""
    pilot_project = sqlite_pilot_project
    sel = analytics.Selection("complaint", (("baseline", "north"),))
    with pilot_project.store.read() as tx:
        scanned = sorted(r for chunk in analytics.step_rows(tx, sel, wanted=10**9) for r in chunk)
        looked_up = sorted(r for chunk in analytics.step_rows(tx, sel, wanted=0) for r in chunk)
        ids = {r[0] for r in analytics.case_rows(tx, sel)}
    assert {r[0] for r in looked_up} <= ids
    assert [r for r in scanned if r[0] in ids] == looked_up
    assert len(scanned) > len(looked_up) > 0


def test_a_family_without_cases_compares_to_nothing_significant(cli, project_dir):
    """With no cases yet, every KPI is empty and flagged too small, and the text says so."""
    data = _compare_json(cli, project_dir)
    assert data["groups"] == {
        "baseline": {"n": 0, "running": 0, "other": 0, "cases_per_person_hour": None},
        "reengineered": {"n": 0, "running": 0, "other": 0, "cases_per_person_hour": None},
    }
    assert all(k["diff"] is None and k["too_small"] and not k["significant"] for k in data["kpis"])
    assert data["tasks"] == []
    text = cli(project_dir, "compare", "complaint")
    assert text.exit_code == 0, text.stderr
    assert "group 'baseline' has no completed cases, fewer than 10" in text.stdout


def test_every_kpi_test_equals_scipy_on_the_pilot(cli, pilot, pilot_project):
    """The pilot's per-case values, judged independently: exact Mann-Whitney (scipy) where no value
    ties, scipy's permutation test where they do, Wilson/Newcombe for shares, the NPS z by hand;
    and each KPI's interval excludes its null value exactly when its p is below 5 %."""
    from scipy import stats as sst

    from flowrun.analysis import case_kpis
    from flowrun.analysis.compare import _values
    from flowrun.app.blueprints import pilot_settings

    data = _compare_json(cli, pilot[0])
    cases = app.measure_cases(pilot_project, "complaint")
    base = np.array([v == "baseline" for v in cases.variants]) & cases.completed
    var = np.array([v == "reengineered" for v in cases.variants]) & cases.completed
    measured = {k.name: k for k in case_kpis(pilot_settings(pilot_project, "complaint"))}
    checked = {"exact": 0, "permutation": 0}
    for k in data["kpis"]:
        if k["p_value"] is not None and k["ci95"] is not None:
            excludes = k["ci95"][0] > k["ci_null"] or k["ci95"][1] < k["ci_null"]
            assert excludes == (k["p_value"] < 0.05), k["kpi"]
        if k["test"] != "mann-whitney-exact":
            continue
        source = measured.get(k["kpi"])
        kind = source.kind if source else "score"
        values = _values(cases, source) if source else cases.outcomes[k["kpi"]]
        x, y = values[base], values[var]
        x, y = x[~np.isnan(x)], y[~np.isnan(y)]
        if np.unique(np.concatenate([x, y])).size == x.size + y.size:
            expected = sst.mannwhitneyu(y, x, method="exact").pvalue
            assert k["p_value"] == pytest.approx(expected, rel=1e-9), k["kpi"]
            checked["exact"] += 1
        elif kind != "proportion":
            perm = sst.permutation_test(
                (x, y),
                lambda a, b, axis: sst.mannwhitneyu(b, a, axis=axis).statistic,
                n_resamples=4000,
                random_state=0,
                vectorized=True,
            )
            assert abs(k["p_value"] - perm.pvalue) <= 4 * np.sqrt(max(perm.pvalue, 0.01) / 4000) + 1e-9, k["kpi"]
            checked["permutation"] += 1
    assert checked["exact"] >= 2, checked
    assert checked["permutation"] >= 2, checked
    fcr = next(k for k in data["kpis"] if k["kpi"] == "fcr")
    f = cases.outcomes["resolved_first_contact"]
    k1, n1 = int(np.nansum(f[base])), int(np.count_nonzero(~np.isnan(f[base])))
    k2, n2 = int(np.nansum(f[var])), int(np.count_nonzero(~np.isnan(f[var])))
    w1 = sst.binomtest(k1, n1).proportion_ci(method="wilson")
    w2 = sst.binomtest(k2, n2).proportion_ci(method="wilson")
    p1, p2 = k1 / n1, k2 / n2
    assert fcr["ci95"][0] == pytest.approx(p2 - p1 - np.hypot(p2 - w2.low, w1.high - p1))
    assert fcr["ci95"][1] == pytest.approx(p2 - p1 + np.hypot(w2.high - p2, p1 - w1.low))
    nps = next(k for k in data["kpis"] if k["kpi"] == "nps")
    a, b = cases.outcomes["nps"][base], cases.outcomes["nps"][var]

    def moments(v: np.ndarray) -> tuple[float, float]:
        v = v[~np.isnan(v)]
        n = v.size + 1.5
        pro, det = (np.count_nonzero(v >= 9) + 0.5) / n, (np.count_nonzero(v <= 6) + 0.5) / n
        return 100 * (pro - det), 1e4 * (pro + det - (pro - det) ** 2) / n

    (c1, v1), (c2, v2) = moments(a), moments(b)
    assert nps["p_value"] == pytest.approx(2 * sst.norm.sf(abs(c2 - c1) / np.sqrt(v1 + v2)))
