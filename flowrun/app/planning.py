"""``flowrun plan``: how many cases per group a pilot needs, from a baseline's completed cases.

The sample sizes are :mod:`flowrun.analysis.power`'s (two-sided ``alpha`` 0.05, ``power`` 0.8,
equal groups), computed for the tests ``flowrun compare`` runs on each KPI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from flowrun.app.pilots import family_variants, measure_cases, outcome_kpis
from flowrun.app.project import Project
from flowrun.errors import DataError

#: Fewer completed baseline cases than this say too little about the spread to plan from.
MIN_BASELINE = 10
#: The changes planned for when none is asked for, by KPI name (only those the project has).
DEFAULT_CHANGES = {"cycle_time": "-20%", "waiting_time": "-20%", "satisfaction": "+0.5", "nps": "+10", "fcr": "+10"}


class ChangeError(DataError):
    """A ``--change`` that names no KPI or asks for a change that makes no sense (wrong usage)."""

    exit_code: ClassVar[int] = 2


@dataclass(frozen=True)
class PlanRow:
    """One KPI's plan.

    Attributes:
        kpi, kind, unit: the KPI as compare reports it.
        n: the baseline's completed cases with a value.
        baseline: its median (durations, counts, scores), share (proportions, 0-1) or NPS (points).
        change: the change asked for: relative for durations/counts (-0.2), points for scores,
            percentage points for proportions, NPS points; ``change_text`` as given.
        needed: cases per group to detect it (None: the change does not move the test at all).
        detectable: the smallest change, in ``change``'s units, the baseline's own n per group
            detects (None: none within sensible bounds).
    """

    kpi: str
    kind: str
    unit: str
    n: int
    baseline: float
    change: float
    change_text: str
    needed: int | None
    detectable: float | None


@dataclass(frozen=True)
class Plan:
    """A pilot plan: the family, the baseline group, the test's level and power, one row per KPI."""

    family: str
    baseline: str
    alpha: float
    power: float
    rows: tuple[PlanRow, ...]


def parse_change(kpi: str, kind: str, text: str) -> float:
    """``-20%`` (durations and counts: relative), ``+0.5`` (scores), ``+10`` (pp, NPS points).

    Raises:
        ChangeError: not a number, a relative change for a KPI measured in points or the reverse,
            or a change that makes no sense (at or below -100 %, zero).
    """
    raw = text.strip()
    relative = raw.endswith("%")
    number = raw.rstrip("%").removesuffix("pp").strip()
    try:
        value = float(number)
    except ValueError:
        raise ChangeError(f"--change {kpi}={text}: '{number}' is not a number; e.g. {kpi}=-20% or {kpi}=+10") from None
    if not math.isfinite(value) or value == 0:
        raise ChangeError(f"--change {kpi}={text}: give a non-zero change, e.g. {kpi}=-20% or {kpi}=+10")
    if kind in ("duration", "count"):
        if not relative:
            raise ChangeError(f"--change {kpi}={text}: {kpi} changes by a percentage, e.g. {kpi}=-20%")
        if value <= -100:
            raise ChangeError(f"--change {kpi}={text}: a change at or below -100% leaves nothing; e.g. {kpi}=-20%")
        return value / 100
    if relative and kind != "proportion":
        raise ChangeError(f"--change {kpi}={text}: {kpi} changes by points, not a percentage, e.g. {kpi}=+10")
    return value


def plan(
    project: Project,
    family: str,
    baseline: str | None = None,
    changes: Mapping[str, str] | None = None,
    power: float = 0.8,
    alpha: float = 0.05,
) -> Plan:
    """Cases per group needed to detect each change, from ``baseline``'s completed cases.

    Args:
        baseline: ``VARIANT``, ``@PILOT`` or ``VARIANT@PILOT``; by default the variant named
            "baseline", else the family's first.
        changes: KPI name -> change text (:func:`parse_change`); None plans for
            :data:`DEFAULT_CHANGES` among the KPIs the project has.

    Raises:
        ChangeError: an unknown KPI, a bad change or power (exit code 2).
        DataError: fewer than :data:`MIN_BASELINE` completed baseline cases.
        NotFoundError: the family or group does not exist.
    """
    import numpy as np  # here, not at import: `flowrun tasks` and `do` must not load numpy

    from flowrun import analysis
    from flowrun.analysis import power as pw
    from flowrun.app.blueprints import pilot_settings

    if not 0.5 <= power < 1:
        raise ChangeError(f"--power {power:g}: give a power from 0.5 up to (not including) 1, e.g. 0.8")
    kpis = {k.name: k for k in [*analysis.case_kpis(pilot_settings(project, family)), *outcome_kpis(project)]}
    if changes:
        for name in changes:
            if name not in kpis:
                raise ChangeError(f"--change {name}=...: no KPI '{name}'; use one of {', '.join(kpis)}")
        asked = dict(changes)
    else:
        asked = {k: v for k, v in DEFAULT_CHANGES.items() if k in kpis}
    if baseline is None:
        variants = family_variants(project, family)
        baseline = "baseline" if "baseline" in variants else variants[0]
    cases = measure_cases(project, family, baseline)
    rows = []
    for name, text in asked.items():
        kpi = kpis[name]
        change = parse_change(name, kpi.kind, text)
        source = cases.measures.get(kpi.source, cases.outcomes.get(kpi.source))
        values = np.zeros(0) if source is None else source[cases.completed]
        values = values[~np.isnan(values)]
        if values.size < MIN_BASELINE:
            raise DataError(
                f"baseline '{baseline}' of {family} has {values.size} completed case(s) with {name}; "
                f"planning needs at least {MIN_BASELINE}: run the baseline longer first"
            )
        kind = kpi.kind
        try:
            needed = pw.cases_needed(values, change, kind, alpha, power)
        except ValueError as exc:
            raise ChangeError(f"--change {name}={text}: {exc}") from None
        if kind == "nps":
            shown = 100 * (float(np.mean(values >= 9)) - float(np.mean(values <= 6)))
        elif kind == "proportion":
            shown = float(np.mean(values))
        else:
            shown = float(np.median(values))
        detectable = pw.detectable_change(values, int(values.size), kind, alpha, power)
        rows.append(PlanRow(name, kind, kpi.unit, int(values.size), shown, change, text, needed, detectable))
    return Plan(family, baseline, alpha, power, tuple(rows))
