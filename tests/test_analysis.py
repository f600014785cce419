"""Per-case measures on the shipped example's paths, and the statistics checked against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from flowrun import app
from flowrun.analysis import stats
from flowrun.analysis.compare import case_kpis, compare, outcome_kpi
from flowrun.analysis.measures import Cases, measure, numbers
from tests.helpers import RECORD, SPECIALIST, SURVEY, T0, intake, work
from tests.test_example_paths import BASELINE, FIRST_CONTACT, LANE, RE_LANE, drive, timing


def _sums(n_steps: int) -> tuple[float, float]:
    """Waiting and touch time of a case whose i-th user task waited and worked :func:`timing` (i)."""
    return float(sum(timing(i)[0] for i in range(n_steps))), float(sum(timing(i)[1] for i in range(n_steps)))


#: Baseline path -> (steps, handoffs, rework): lanes Call Centre, Back Office, Specialist, Supervisor, Customer.
#: The hand-over to the Customer's survey is not a handoff (the customer is not staff).
BASELINE_EXPECTED = {
    "no-specialist-remedy-100": (5, 2, 0),  # CC BO BO CC | Cu
    "specialist-needed": (6, 4, 0),  # CC BO Sp BO CC | Cu
    "over-100-approved": (6, 3, 0),  # CC BO BO Su CC | Cu
    "rejected-then-approved": (8, 5, 2),  # CC BO BO Su BO Su CC | Cu: draft and approval done twice
}
#: The example's hourly costs (flowrun.yaml) and the baseline's contacts with the customer: record,
#: the back office's call-back (Analyse needs), the specialist's call, the reply and the survey.
RATE = {"Call Centre": 32, "Back Office": 38, "Specialist": 55, "Supervisor": 60, "Customer": 0}
CONTACTS = {"Record complaint", "Analyse needs", "Specialist assessment", "Reply to customer", "Satisfaction survey"}


@pytest.mark.parametrize("path", list(BASELINE))
def test_baseline_path_measures(project, path):
    """Cycle, waiting, touch time, steps, handoffs, touchpoints, rework and survey answers of each baseline path."""
    iid, _ = drive(project, "complaint:baseline", BASELINE[path], LANE)

    case = app.measure_cases(project, "complaint").case(iid)

    steps, handoffs, rework = BASELINE_EXPECTED[path]
    waiting, touch = _sums(steps)
    names = [name for name, _ in BASELINE[path]]
    reply = names.index("Reply to customer")
    cost = sum(timing(i)[1] * RATE[LANE[name]] for i, name in enumerate(names)) / 3600
    assert case.pop("cost") == pytest.approx(cost)
    assert case == {
        "id": iid,
        "variant": "baseline",
        "status": "completed",
        "cycle_time": waiting + touch,
        "waiting_time": waiting,
        "touch_time": touch,
        "steps": steps,
        "handoffs": handoffs,
        "touchpoints": sum(name in CONTACTS for name in names),
        "customer_effort": 1,
        "rework": rework,
        "rework_rate": float(rework > 0),
        "response_time": timing(0)[0],
        "manual_steps": steps,
        "automated_steps": 0,
        "resolution_time": sum(sum(timing(i)) for i in range(reply + 1)),  # up to the reply's end
        "sla_met": 1.0,  # well within 48 h
        "satisfaction": 4,
        "nps": 9,
        "resolved_first_contact": 0,
    }


def test_reengineered_first_contact_measures(project):
    """Automated steps are counted apart from the manual ones; the front office keeps the case until the survey."""
    iid, _ = drive(project, "complaint:reengineered", FIRST_CONTACT, RE_LANE)

    case = app.measure_cases(project, "complaint", group="reengineered").case(iid)

    waiting, touch = _sums(3)
    # Touchpoints: record-and-assess (one contact, resolved on it) and the survey.
    assert (case["steps"], case["handoffs"], case["touchpoints"], case["rework"]) == (3, 0, 2, 0)
    assert (case["manual_steps"], case["automated_steps"]) == (3, 2)  # entitlement and SLA target are services
    assert (case["waiting_time"], case["touch_time"], case["cycle_time"]) == (waiting, touch, waiting + touch)
    assert (case["satisfaction"], case["nps"], case["resolved_first_contact"]) == (4, 9, 1)


def test_parallel_branches_are_ordered_by_completion(project, clock):
    """The specialist finishes after the front office's update: FO FO Sp FO | Cu is two handoffs.

    The specialist waited 300 s while the front office worked on the update: that is not waiting
    of the case (someone was on it), so waiting time is the case's life minus its busy time.
    """
    iid = app.start(project, "complaint:reengineered").instance
    work(project, iid, "Record and assess complaint", intake(can_resolve_now=False, severity="low"))
    work(
        project,
        iid,
        "Inform customer of next steps",
        {"contact_channel": "sms", "expected_days": 3},
        wait=120,
        touch=180,
    )
    work(project, iid, "Specialist assessment", SPECIALIST, "sam", wait=0, touch=1800)
    confirm = {"remedy": "refund", "remedy_amount": 80, "message": "Refund on its way."}
    work(project, iid, "Confirm resolution with customer", confirm, wait=60, touch=240)
    work(project, iid, "Satisfaction survey", SURVEY, "customer", wait=3600, touch=120)

    case = app.measure_cases(project, "complaint").case(iid)

    # Touchpoints: record, inform, confirm, survey; the specialist does not call in this variant.
    assert (case["steps"], case["handoffs"], case["touchpoints"], case["rework"]) == (5, 2, 4, 0)
    assert case["waiting_time"] == 300 + 120 + 60 + 3600
    assert case["touch_time"] == 420 + 180 + 1800 + 240 + 120
    assert case["cycle_time"] == 720 + 300 + 1800 + 60 + 240 + 3600 + 120


def test_running_cases_have_no_measures_and_are_counted_apart(project):
    """A running case is listed with its status, without measures, and never enters the statistics."""
    done, _ = drive(project, "complaint:baseline", BASELINE["no-specialist-remedy-100"], LANE)
    running = app.start(project, "complaint:baseline").instance
    work(project, running, "Record complaint", RECORD)

    cases = app.measure_cases(project, "complaint")

    assert cases.case(running)["status"] == "running"
    assert all(v is None for k, v in cases.case(running).items() if k not in ("id", "variant", "status"))
    assert cases.case(done)["steps"] == 5
    result = app.compare(project, "complaint")
    assert (result.baseline.n, result.baseline.running) == (1, 1)
    cycle = next(k for k in result.kpis if k.kpi == "cycle_time")
    # the running case is censored in cycle time (Kaplan-Meier, log-rank), not dropped ...
    assert (cycle.baseline.n, cycle.censored, cycle.test) == (2, (1, 0), "log-rank")
    # ... and left out of the KPIs a running case has no value of yet
    steps = next(k for k in result.kpis if k.kpi == "steps")
    assert (steps.baseline.n, steps.censored) == (1, (0, 0))


def test_steps_of_running_and_failed_cases_are_ignored():
    """measure() keeps only the completed steps of completed cases it was given."""
    rows = [("a", "v", None, "completed", 0.0, 100.0), ("b", "v", None, "running", 0.0, None)]
    steps = [
        ("a", "T1", "L1", 0, 0.0, 10.0, 30.0, 1),
        ("b", "T1", "L1", 0, 0.0, 10.0, 30.0, 2),
        ("zzz", "T1", "L2", 0, 0.0, 10.0, 30.0, 3),
    ]
    cases = measure(rows, [steps], (), ["l1"])
    assert cases.case("a")["steps"] == 1
    assert cases.case("a")["touchpoints"] == 1  # lane names compare without case
    assert cases.case("b")["steps"] is None
    assert cases.step_case.tolist() == [0]


def test_handoffs_ignore_steps_without_a_lane_and_break_ties_by_ready_time():
    """Lane-less steps are skipped; steps completed together are ordered by ready time, then record."""
    rows = [("a", "v", None, "completed", 0.0, 100.0)]
    steps = [
        ("a", "T3", "Back", 0, 5.0, 5.0, 20.0, 3),
        ("a", "T1", "Front", 0, 0.0, 0.0, 10.0, 1),
        ("a", "T2", None, 0, 10.0, 10.0, 15.0, 2),
        ("a", "T4", "Front", 0, 20.0, 20.0, 20.0, 4),
        ("a", "Sub", "Front", 1, 0.0, 0.0, 20.0, 5),
    ]
    case = measure(rows, [steps]).case("a")
    # by completion: T1 Front (10), T2 none (15), T3 Back (20, ready 5), T4 Front (20, ready 20); the
    # subprocess (flag 1) is a container, not a step: Front Back Front
    assert case["handoffs"] == 2
    assert case["steps"] == 4
    assert case["touch_time"] == 10 + 5 + 15 + 0  # the subprocess's own time is its inner steps' time


def test_data_fields_become_numbers():
    """Numbers stay, booleans and yes/no become 1/0, text numbers are read, anything else is NaN."""
    values = numbers([4, None, True, False, "7", "true", "no", "n/a", 2.5])
    assert values[[0, 2, 3, 4, 5, 6, 8]].tolist() == [4, 1, 0, 7, 1, 0, 2.5]
    assert np.isnan(values[[1, 7]]).all()


# -- statistics ------------------------------------------------------------------

BASE = np.array([31, 45, 52, 38, 60, 75, 41, 55, 49, 66, 58, 47], dtype=float)
VAR = np.array([22, 35, 30, 41, 28, 33, 25, 39, 36, 27, 31], dtype=float)


def test_mann_whitney_matches_scipy_exact_on_a_small_pilot():
    """12 + 11 values without ties: the p-value is scipy's exact two-sided Mann-Whitney U."""
    var = np.where(np.isin(VAR, BASE), VAR + 0.5, VAR)  # scipy's exact method assumes no ties
    expected = sps.mannwhitneyu(var, BASE, alternative="two-sided", method="exact").pvalue
    found = stats.shift_test(BASE, var)
    assert found is not None
    assert found.p == pytest.approx(expected, rel=1e-9)
    assert stats.shift_test(BASE, np.array([])) is None


def test_wilson_interval_matches_scipy():
    """Wilson intervals agree with scipy's binomtest for several counts, including 0 and n."""
    for k, n in ((3, 10), (0, 12), (12, 12), (45, 62)):
        ci = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert stats.wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_newcombe_interval_matches_the_published_example_and_scipy_wilson():
    """Newcombe (1998), 56/70 - 48/80: hybrid score interval 0.0524 to 0.3339."""
    interval = stats.newcombe(48, 80, 56, 70)
    assert interval is not None
    lo, hi = interval
    assert (lo, hi) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    w1 = sps.binomtest(48, 80).proportion_ci(method="wilson")
    w2 = sps.binomtest(56, 70).proportion_ci(method="wilson")
    p1, p2 = 48 / 80, 56 / 70
    assert lo == pytest.approx(p2 - p1 - math.hypot(p2 - w2.low, w1.high - p1))
    assert hi == pytest.approx(p2 - p1 + math.hypot(w2.high - p2, p1 - w1.low))


def test_nps_arithmetic():
    """NPS = % promoters (9-10) - % detractors (0-6), in points; 7 and 8 are passives."""
    scores = np.array([10, 9, 8, 7, 6, 0, 10, np.nan])
    assert stats.nps(scores) == pytest.approx(100 * (3 - 2) / 7)
    assert stats.nps(np.array([7.0, 8.0])) == 0.0
    assert stats.nps(np.array([np.nan])) is None


def _cases(base: np.ndarray, var: np.ndarray) -> Cases:
    rows = [(f"b{i}", "baseline", None, "completed", 0.0, float(x)) for i, x in enumerate(base)]
    rows += [(f"v{i}", "new", None, "completed", 0.0, float(x)) for i, x in enumerate(var)]
    return measure(rows, [])


def test_small_groups_are_flagged_and_never_significant():
    """With fewer than 10 cases a group is called too small, even when the test's p is below 5 %."""
    cases = _cases(np.full(8, 1000.0) + np.arange(8), np.full(9, 100.0) + np.arange(9))
    result = compare(cases, ("baseline", np.arange(17) < 8), ("new", np.arange(17) >= 8), case_kpis())
    cycle = result.kpis[0]
    assert cycle.p_value is not None
    assert cycle.p_value < 0.05
    assert (cycle.too_small, cycle.significant, cycle.verdict) == (True, False, "too few cases to judge")
    assert any("only 8 completed case(s), fewer than 10" in w and "chance" in w for w in result.warnings)


def test_diff_is_variant_minus_baseline_and_relative_to_the_baseline():
    """diff = variant - baseline in the KPI's unit; rel_diff divides by the baseline value."""
    cases = _cases(np.arange(100, 130, dtype=float), np.arange(50, 80, dtype=float))
    result = compare(cases, ("baseline", np.arange(60) < 30), ("new", np.arange(60) >= 30), case_kpis())
    cycle = result.kpis[0]
    assert (cycle.baseline.median, cycle.variant.median) == (114.5, 64.5)
    assert (cycle.diff, cycle.rel_diff) == (-50.0, -50.0 / 114.5)
    assert cycle.significant
    assert cycle.verdict == "significant decrease"


def test_outcome_kpis_from_flowrun_yaml():
    """A KPI needs a field and a known kind; scores and NPS are reported as scores, rates as proportions."""
    assert outcome_kpi("nps", {"field": "nps", "kind": "nps"}).statistic == "nps"
    assert outcome_kpi("fcr", {"field": "f", "kind": "proportion"}).unit == "proportion"
    with pytest.raises(ValueError, match="kind 'stars'"):
        outcome_kpi("x", {"field": "x", "kind": "stars"})
    with pytest.raises(ValueError, match="names no data field"):
        outcome_kpi("x", {"kind": "score"})


def test_cases_start_at_the_clock(project):
    """Case start times are the clock's, in epoch seconds."""
    iid = app.start(project, "complaint:baseline").instance
    cases = app.measure_cases(project, "complaint")
    assert cases.start[cases.ids.index(iid)] == T0.timestamp()
