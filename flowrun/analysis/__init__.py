"""Pilot analysis: per-case measures, statistics, and the comparison of two groups of cases.

Pure computation on numpy arrays: it reads nothing itself. ``flowrun.app`` fetches the rows
(``flowrun.store.analytics``) and hands them to :func:`measure`, then to :func:`compare`.
"""

from flowrun.analysis.compare import (
    Comparison,
    Group,
    Kpi,
    KpiResult,
    Side,
    TaskResult,
    TaskSide,
    case_kpis,
    compare,
    outcome_kpi,
    to_dict,
)
from flowrun.analysis.measures import Cases, cases_per_person_hour, measure

__all__ = [
    "Cases",
    "Comparison",
    "Group",
    "Kpi",
    "KpiResult",
    "Side",
    "TaskResult",
    "TaskSide",
    "case_kpis",
    "cases_per_person_hour",
    "compare",
    "measure",
    "outcome_kpi",
    "to_dict",
]
