"""A comparison in words: the verdict sentences a person reads, in the terminal or in a report.

Plain strings, built from the same constants the tests use (:data:`~flowrun.analysis.stats.ALPHA`,
:data:`~flowrun.analysis.stats.MIN_GROUP`), so the words never disagree with the numbers.
"""

from __future__ import annotations

from flowrun.analysis.compare import Comparison, KpiResult
from flowrun.analysis.stats import ALPHA, MIN_GROUP
from flowrun.units import P_FLOOR, kpi_value, p_value, relative

#: The significance level as people write it: ``5%``.
LEVEL = f"{ALPHA:.0%}"
#: The mark of a KPI with too few cases in a group: ``n<10``.
TOO_SMALL_MARK = f"n<{MIN_GROUP}"

_WHAT = {"median": "median", "mean": "share", "nps": "NPS"}
_TESTS = {
    "mann-whitney-exact": "exact Mann-Whitney",
    "mann-whitney-normal": "Mann-Whitney",
    "newcombe-inversion": "Newcombe score test",
    "nps-difference-z": "NPS difference z-test",
    "log-rank": "log-rank test (running cases censored)",
}


def verdicts(result: Comparison) -> list[str]:
    """Which changes are significant, which are not, and which had too few cases to judge.

    The significant ones get a sentence each (:func:`kpi_sentence`), indented as a list;
    the others are named in one line per kind.
    """
    sig = [k for k in result.kpis if k.significant]
    lines = []
    if sig:
        lines.append(f"Significant at {LEVEL}:")
        lines += [f"  - {kpi_sentence(k)}" for k in sig]
    else:
        lines.append(f"No change is significant at {LEVEL}.")
    rest = [k.kpi for k in result.kpis if not k.significant and not k.too_small and k.p_value is not None]
    if rest:
        lines.append(f"Not significant at {LEVEL}: {', '.join(rest)}.")
    small = [k.kpi for k in result.kpis if k.too_small]
    if small:
        lines.append(f"Too few cases to judge (fewer than {MIN_GROUP} in a group): {', '.join(small)}.")
    head = [k.kpi for k in result.kpis if k.primary]
    if head:
        lines.append(
            f"Primary KPI: {head[0]} (tested at {LEVEL}); the others are Holm-adjusted and confirmatory only "
            f"when {head[0]} is significant."
        )
    elif any(k.p_adjusted is not None for k in result.kpis):
        lines.append("No primary KPI: every p-value is Holm-adjusted over all KPIs.")
    return lines


def kpi_sentence(k: KpiResult) -> str:
    """One KPI's change, e.g. ``cycle time fell from 2h 00m to 1h 30m (median, -30m 00s, -25%;
    Mann-Whitney U p = 0.0123)``: the headline values, the change, and the test that judged it.
    """
    rel = "" if k.rel_diff is None else f", {relative(k.rel_diff, 0)}"
    test = _TESTS.get(k.test, k.test)
    p = k.p_adjusted if k.p_adjusted is not None else k.p_value
    op = "<" if p is not None and p < P_FLOOR else "="
    adj = "" if k.primary or k.p_adjusted is None else " (Holm)"
    if k.diff == 0 and k.shift is not None:
        # equal medians: say what moved (the Hodges-Lehmann shift), never "rose from 0 to 0"
        return (
            f"{k.kpi}: median unchanged at {kpi_value(k.baseline.value, k.unit, k.statistic)}, but values shifted "
            f"by {kpi_value(k.shift, k.unit, k.statistic, True)} (Hodges-Lehmann); {test} p{adj} {op} "
            f"{p_value(p).lstrip('<')}"
        )
    verb = "fell" if (k.diff or 0) < 0 else "rose"
    shift = "" if k.shift is None else f"; shift {kpi_value(k.shift, k.unit, k.statistic, True)}"
    return (
        f"{k.kpi} {verb} from {kpi_value(k.baseline.value, k.unit, k.statistic)} to "
        f"{kpi_value(k.variant.value, k.unit, k.statistic)} ({_WHAT[k.statistic]}, "
        f"{kpi_value(k.diff, k.unit, k.statistic, True)}{rel}{shift}; {test} p{adj} {op} {p_value(p).lstrip('<')})"
    )
