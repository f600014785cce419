"""The words and numbers a person reads about a comparison: flowrun.analysis.wording and flowrun.units."""

from __future__ import annotations

import numpy as np
import pytest

from flowrun.analysis import stats
from flowrun.analysis.compare import Comparison, case_kpis, compare, outcome_kpi
from flowrun.analysis.measures import measure
from flowrun.analysis.wording import LEVEL, TOO_SMALL_MARK, kpi_sentence, verdicts
from flowrun.units import duration, kpi_value, p_value, relative

KPIS = [
    case_kpis()[0],  # cycle_time
    outcome_kpi("fcr", {"field": "fcr", "kind": "proportion"}),
    outcome_kpi("nps", {"field": "nps", "kind": "nps"}),
]


def _pilot(n_base: int, n_new: int, faster: bool = True) -> Comparison:
    """Baseline cases of 2h + 1 min each, new ones 30 min faster (or not); first contact 50 % -> 90 %;
    survey answers 3-7 (NPS -80) -> 7-9 (NPS +33.3)."""
    rows = [
        (f"b{i}", "baseline", None, "completed", 0.0, 7200.0 + 60 * i, i % 2 == 0, 3 + i % 5) for i in range(n_base)
    ]
    start = 5400.0 if faster else 7200.0
    rows += [(f"v{i}", "new", None, "completed", 0.0, start + 60 * i, i % 10 != 0, 9 - i % 3) for i in range(n_new)]
    cases = measure(rows, [], fields=("fcr", "nps"))
    n = n_base + n_new
    return compare(cases, ("baseline", np.arange(n) < n_base), ("new", np.arange(n) >= n_base), KPIS)


def test_level_and_mark_come_from_the_constants():
    """The level reads '5%' and the small-group mark 'n<10', from ALPHA and MIN_GROUP."""
    assert (stats.ALPHA, stats.MIN_GROUP) == (0.05, 10)
    assert (LEVEL, TOO_SMALL_MARK) == ("5%", "n<10")


def test_significant_changes_get_one_sentence_each():
    """Each significant KPI is told in its unit: durations in h/m, shares in % and pp, NPS in points."""
    lines = verdicts(_pilot(30, 30))

    assert lines == [
        "Significant at 5%:",
        "  - cycle_time fell from 2h 14m to 1h 44m (median, -30m 00s, -22%; shift -30m 00s; "
        "exact Mann-Whitney p (Holm) < 0.0001)",
        "  - fcr rose from 50.0% to 90.0% (share, +40.0 pp; Newcombe score test p (Holm) = 0.0007)",
        "  - nps rose from -80.0 to +33.3 (NPS, +113.3; NPS difference z-test p (Holm) < 0.0001)",
        "No primary KPI: every p-value is Holm-adjusted over all KPIs.",
    ]


def test_a_change_that_is_not_significant_is_named_not_told():
    """Equal cycle times are 'not significant'; the still significant KPIs keep their sentences."""
    result = _pilot(30, 30, faster=False)
    cycle = result.kpis[0]
    assert (cycle.significant, cycle.diff) == (False, 0.0)

    lines = verdicts(result)
    assert lines[0] == "Significant at 5%:"
    assert [line for line in lines if not line.startswith("  - ")] == [
        "Significant at 5%:",
        "Not significant at 5%: cycle_time.",
        "No primary KPI: every p-value is Holm-adjusted over all KPIs.",
    ]
    assert kpi_sentence(result.kpis[1]) in lines[1]


def test_too_small_groups_are_never_called_significant():
    """With 8 baseline cases every KPI is too few to judge, though each test's p is below 5 %."""
    result = _pilot(8, 30)
    assert all(k.p_value is not None and k.p_value < stats.ALPHA for k in result.kpis)

    assert verdicts(result) == [
        "No change is significant at 5%.",
        "Too few cases to judge (fewer than 10 in a group): cycle_time, fcr, nps.",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (44.6, "45s"), (59.4, "59s"), (60, "1m 00s"), (725, "12m 05s"), (12000, "3h 20m"), (187200, "2d 4h")],
)
def test_duration_in_human_units(seconds, text):
    """Seconds become s, m and s, h and m, or d and h, rounded to the second."""
    assert duration(seconds) == text


def test_kpi_values_and_changes_in_their_unit():
    """A value has no sign; a change has one; shares are %, their changes percentage points."""
    assert kpi_value(-1800, "s", signed=True) == "-30m 00s"
    assert kpi_value(1800, "s", signed=True) == "+30m 00s"
    assert kpi_value(1800, "s") == "30m 00s"
    assert kpi_value(0.5, "proportion", "mean") == "50.0%"
    assert kpi_value(0.4, "proportion", "mean", signed=True) == "+40.0 pp"
    assert kpi_value(-80.0, "score", "nps") == "-80.0"
    assert kpi_value(5.0, "count") == "5"
    assert kpi_value(-1.0, "count", signed=True) == "-1"
    assert kpi_value(5.4, "count", "mean") == "5.40"
    assert kpi_value(None, "s") == "-"


def test_p_values_and_relative_changes():
    """p has four decimals and a floor of <0.0001; a relative change is a signed percentage."""
    assert [p_value(p) for p in (None, 0.00001, 0.0514, 1.0)] == ["-", "<0.0001", "0.0514", "1.0000"]
    assert [relative(r) for r in (None, -0.774, 0.0)] == ["-", "-77.4%", "+0.0%"]
    assert relative(-0.223, 0) == "-22%"


def test_a_primary_kpi_is_named_and_an_unknown_one_refused():
    """A declared primary is tested alone at 5 % and named; a KPI name that does not exist is refused."""
    rows = [(f"b{i}", "baseline", None, "completed", 0.0, 7200.0 + 60 * i, i % 2 == 0, 3 + i % 5) for i in range(30)]
    rows += [(f"v{i}", "new", None, "completed", 0.0, 5400.0 + 60 * i, i % 10 != 0, 9 - i % 3) for i in range(30)]
    cases = measure(rows, [], fields=("fcr", "nps"))
    masks = (("baseline", np.arange(60) < 30), ("new", np.arange(60) >= 30))
    result = compare(cases, *masks, KPIS, primary="fcr")
    fcr = result.kpis[1]
    assert fcr.primary
    assert fcr.p_adjusted == fcr.p_value
    assert verdicts(result)[-1].startswith("Primary KPI: fcr (tested at 5%)")
    with pytest.raises(ValueError, match="unknown primary KPI 'speed'; use one of cycle_time, fcr, nps"):
        compare(cases, *masks, KPIS, primary="speed")


def test_equal_medians_say_what_moved():
    """Medians 3 and 3 but a third of the answers moved from 1 to 5: the sentence tells the shift, not '3 to 3'."""
    scores = [3] * 20 + [1] * 10 + [3] * 20 + [5] * 10
    rows = [(f"c{i}", "b" if i < 30 else "v", None, "completed", 0.0, 60.0, True, s) for i, s in enumerate(scores)]
    cases = measure(rows, [], fields=("fcr", "sat"))
    kpi = outcome_kpi("sat", {"field": "sat", "kind": "score"})
    result = compare(cases, ("b", np.arange(60) < 30), ("v", np.arange(60) >= 30), [kpi])
    sat = result.kpis[0]
    assert (sat.diff, sat.shift, sat.rel_diff, sat.change_unit) == (0.0, 2.0, None, "points")
    assert sat.significant
    assert kpi_sentence(sat).startswith("sat: median unchanged at 3")
    assert "shifted by +2" in kpi_sentence(sat)
