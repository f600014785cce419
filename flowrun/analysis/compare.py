"""Compare two groups of cases KPI by KPI: baseline against variant, with intervals and tests.

The difference is always variant minus baseline; the relative difference divides it by the
baseline's value. A group with fewer than :data:`~flowrun.analysis.stats.MIN_GROUP` values of a
KPI is flagged ``too_small``: its numbers are shown but it is never called significant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from flowrun.analysis import stats
from flowrun.analysis.blueprint import PilotSettings
from flowrun.analysis.measures import CASE_MEASURES, CONDITIONAL, Bools, Cases, Floats, applies, cases_per_person_hour
from flowrun.analysis.stats import MIN_GROUP, Statistic

Kind = Literal["duration", "count", "score", "nps", "proportion"]

#: The kinds a KPI of flowrun.yaml may have, and the unit each is reported in.
OUTCOME_KINDS: dict[str, str] = {"score": "score", "nps": "score", "proportion": "proportion"}

_UNITS: dict[str, Kind] = {"s": "duration", "count": "count", "proportion": "proportion", "currency": "count"}


@dataclass(frozen=True)
class Kpi:
    """One KPI to compare: its name, unit, kind and where its values come from (a measure or a data field)."""

    name: str
    unit: str
    kind: Kind
    source: str

    @property
    def statistic(self) -> Statistic:
        if self.kind == "proportion":
            return "mean"
        return "nps" if self.kind == "nps" else "median"


def case_kpis(settings: PilotSettings | None = None) -> list[Kpi]:
    """The KPIs of :data:`CASE_MEASURES` that mean something for a family with ``settings``.

    Resolution time needs milestones, sla_met an SLA, cost hourly costs (its unit is the
    settings' currency, "currency" when none is named). Without settings: the unconditional ones.
    """
    settings = settings or PilotSettings()
    out = []
    for name, unit in CASE_MEASURES.items():
        if name == "manual_steps" or (name in CONDITIONAL and not applies(name, settings)):
            continue  # manual_steps is steps under its explicit name: one KPI, not two tests
        shown = (settings.currency or unit) if unit == "currency" else unit
        out.append(Kpi(name, shown, _UNITS[unit], name))
    return out


def outcome_kpi(name: str, spec: Mapping[str, Any]) -> Kpi:
    """A KPI from flowrun.yaml's ``kpis:`` (``{field: ..., kind: score | nps | proportion}``).

    Raises:
        ValueError: the field or kind is missing or the kind is unknown.
    """
    kind = spec.get("kind")
    data_field = spec.get("field")
    if kind not in OUTCOME_KINDS:
        raise ValueError(f"KPI '{name}' has kind {kind!r}; use one of {', '.join(OUTCOME_KINDS)}")
    if not isinstance(data_field, str) or not data_field:
        raise ValueError(f"KPI '{name}' names no data field; give it one, e.g. {{field: {name}, kind: {kind}}}")
    return Kpi(name, OUTCOME_KINDS[kind], kind, data_field)


@dataclass(frozen=True)
class Side:
    """One group's values of a KPI: how many, median, 90th percentile, mean and the headline value."""

    n: int
    median: float | None
    p90: float | None
    mean: float | None
    value: float | None


@dataclass(frozen=True)
class KpiResult:
    """A KPI compared: both sides, the change, its 95 % interval, the test and the verdict."""

    kpi: str
    unit: str
    statistic: str
    baseline: Side
    variant: Side
    diff: float | None
    rel_diff: float | None
    ci95: tuple[float, float] | None
    ci_method: str
    p_value: float | None
    test: str
    significant: bool
    too_small: bool
    #: Hodges-Lehmann shift (variant - baseline) and its 95 % MW-inversion interval (shift KPIs only).
    shift: float | None = None
    shift_ci95: tuple[float, float] | None = None
    #: Holm-adjusted p (gatekept by the primary KPI); the verdict ``significant`` follows it.
    p_adjusted: float | None = None
    primary: bool = False
    #: What the change is measured in: "%" of the baseline, "pp" (percentage points) or "points".
    change_unit: str = "%"
    #: Free-text caveats (censoring, power, gatekeeping) other parts attach.
    notes: list[str] = field(default_factory=list)
    #: Effect size and its name: "rank-biserial" (shifts), "cohens-h" (proportions), "none" (NPS).
    effect_size: float | None = None
    effect_size_name: str = "none"
    #: The interval at the level that matches the adjusted verdict (Holm step or ALPHA for the primary).
    ci_adjusted: tuple[float, float] | None = None
    ci_adjusted_level: float | None = None
    #: The value of "no change" on the interval's scale: 0 for differences, 1 for a hazard ratio.
    ci_null: float = 0.0
    #: Cases still running at the cut-off, per group, censored in a survival estimate (else (0, 0)).
    censored: tuple[int, int] = (0, 0)

    @property
    def verdict(self) -> str:
        """In words: ``significant decrease``, ``no significant change``, ``too few cases to judge``, ..."""
        if self.too_small:
            return "too few cases to judge"
        if self.p_value is None or self.diff is None:
            return "no data"
        if not self.significant:
            return "no significant change"
        if self.diff == 0:
            return "significant difference (same headline value)"
        return "significant increase" if self.diff > 0 else "significant decrease"


@dataclass(frozen=True)
class TaskSide:
    """A task's (or lane's) executions in one group: how many, and median and p90 waiting and touch time."""

    n: int
    waiting_median: float
    touch_median: float
    waiting_p90: float
    touch_p90: float


@dataclass(frozen=True)
class TaskResult:
    """A task side by side; a side is None when the task never ran in that group."""

    task: str
    name: str
    lane: str | None
    baseline: TaskSide | None
    variant: TaskSide | None


@dataclass(frozen=True)
class Group:
    """One side of the comparison: its spec, and its cases by status (only completed ones are compared)."""

    name: str
    n: int
    running: int
    other: int
    #: Completed cases per person-hour of manual touch time (staff efficiency); None without any.
    cases_per_person_hour: float | None = None


@dataclass(frozen=True)
class Comparison:
    """Everything ``flowrun compare`` shows, as data."""

    family: str
    baseline: Group
    variant: Group
    kpis: list[KpiResult]
    tasks: list[TaskResult]
    lanes: list[TaskResult]
    warnings: list[str]
    filters: dict[str, Any] = field(default_factory=dict)

    @property
    def significant(self) -> list[KpiResult]:
        return [k for k in self.kpis if k.significant]


def compare(
    cases: Cases,
    baseline: tuple[str, Bools],
    variant: tuple[str, Bools],
    kpis: Sequence[Kpi],
    names: Mapping[str, str] | None = None,
    family: str = "",
    filters: Mapping[str, Any] | None = None,
    primary: str | None = None,
) -> Comparison:
    """Compare the cases selected by two masks (each a (group name, mask over ``cases``) pair).

    Only completed cases enter the statistics; running and other cases are counted per group.
    ``primary`` names the primary KPI, tested at :data:`~flowrun.analysis.stats.ALPHA`; the others
    are Holm-adjusted and only confirmatory when the primary is significant (gatekeeping keeps the
    family-wise error at ALPHA). Without a primary, Holm runs over every KPI.

    Raises:
        ValueError: ``primary`` is not one of ``kpis`` (the message lists them).
    """
    if primary is not None and primary not in [k.name for k in kpis]:
        raise ValueError(f"unknown primary KPI '{primary}'; use one of {', '.join(k.name for k in kpis)}")
    (bname, bmask), (vname, vmask) = baseline, variant
    groups = [
        replace(_group(bname, cases, bmask), cases_per_person_hour=cases_per_person_hour(cases, bmask)),
        replace(_group(vname, cases, vmask), cases_per_person_hour=cases_per_person_hour(cases, vmask)),
    ]
    bdone, vdone = bmask & cases.completed, vmask & cases.completed
    results = []
    intervals: dict[str, IntervalAt] = {}
    baselines: dict[str, Floats] = {}
    for kpi in kpis:
        censored = _censored(cases, kpi, bmask, vmask)
        if censored is not None:
            result, intervals[kpi.name] = censored
        else:
            values = _values(cases, kpi)
            result, intervals[kpi.name] = _kpi(kpi, values[bdone], values[vdone])
            baselines[kpi.name] = values[bdone]
        results.append(result)
    results = _adjust(results, intervals, primary)
    results = [_power_note(r, kpis, baselines) for r in results]
    tasks = _tasks(cases, bdone, vdone, names or {})
    lanes = _lanes(cases, bdone, vdone)
    return Comparison(
        family=family,
        baseline=groups[0],
        variant=groups[1],
        kpis=results,
        tasks=tasks,
        lanes=lanes,
        warnings=_warnings(groups, results),
        filters=dict(filters or {}),
    )


def _adjust(results: list[KpiResult], intervals: Mapping[str, IntervalAt], primary: str | None) -> list[KpiResult]:
    """Holm-adjusted p-values, verdicts and intervals; the primary alone at ALPHA, gatekeeping the rest.

    Each secondary's adjusted interval is at the level of its Holm step (ALPHA / (m - i) for the
    i-th smallest p, 0-based), or of the step where Holm stopped for the KPIs after it, so it
    excludes 0 exactly when the adjusted verdict is significant. When a primary is declared and
    not significant, the secondaries are not tested (gatekeeping) and get no adjusted interval.
    """
    tested = [r for r in results if r.p_value is not None and not r.too_small]
    head = [r for r in tested if r.kpi == primary]
    rest = sorted((r for r in tested if r.kpi != primary), key=lambda r: (r.p_value or 1.0, r.kpi))
    gate = not head or (head[0].p_value or 1.0) < stats.ALPHA
    m = len(rest)
    adjusted = dict(zip([r.kpi for r in rest], stats.holm([r.p_value or 1.0 for r in rest]), strict=True))
    stop = next((i for i, r in enumerate(rest) if (r.p_value or 1.0) >= stats.ALPHA / (m - i)), m)
    levels = {r.kpi: 1 - stats.ALPHA / (m - min(i, stop)) for i, r in enumerate(rest)}
    if head:
        adjusted[head[0].kpi] = head[0].p_value or 1.0
        levels[head[0].kpi] = 1 - stats.ALPHA
    out = []
    for r in results:
        p_adj = adjusted.get(r.kpi)
        is_primary = r.kpi == primary
        ok = p_adj is not None and p_adj < stats.ALPHA and (is_primary or gate)
        level = levels.get(r.kpi) if (is_primary or gate) else None
        ci_adj = None
        if level is not None:
            ci_adj = r.ci95 if abs(level - (1 - stats.ALPHA)) < 1e-12 else intervals[r.kpi](level)
        notes = list(r.notes)
        if p_adj is not None and not (is_primary or gate):
            notes.append(f"not tested: the primary KPI {primary} showed no significant change (gatekeeping)")
        out.append(
            replace(
                r,
                p_adjusted=p_adj,
                primary=is_primary,
                significant=ok and not r.too_small,
                ci_adjusted=ci_adj,
                ci_adjusted_level=level,
                notes=notes,
            )
        )
    return out


def _values(cases: Cases, kpi: Kpi) -> Floats:
    if kpi.source in cases.measures and kpi.source in CASE_MEASURES:
        return cases.measures[kpi.source]
    return cases.outcomes.get(kpi.source, np.full(len(cases), np.nan))


def _group(name: str, cases: Cases, mask: Bools) -> Group:
    statuses = [s for s, m in zip(cases.statuses, mask.tolist(), strict=True) if m]
    done = statuses.count("completed")
    running = statuses.count("running")
    return Group(name, done, running, len(statuses) - done - running)


def _side(values: Floats, kind: Statistic) -> Side:
    s = stats.summarize(values)
    return Side(s.n, s.median, s.p90, s.mean, stats.statistic(values, kind))


#: Gives a KPI's interval at another confidence level (for the Holm-adjusted interval).
IntervalAt = Callable[[float], tuple[float, float] | None]


def _kpi(kpi: Kpi, base: Floats, var: Floats) -> tuple[KpiResult, IntervalAt]:
    """One KPI's sides, change, interval and the test that matches it (see docs/pilots.md, "The statistics")."""
    b, v = _side(base, kpi.statistic), _side(var, kpi.statistic)
    diff = None if b.value is None or v.value is None else v.value - b.value
    relative = kpi.kind in ("duration", "count")
    rel = None if diff is None or not b.value or not relative else diff / abs(b.value)
    unit = "%" if relative else "pp" if kpi.kind == "proportion" else "points"
    shift: float | None = None
    ci: tuple[float, float] | None = None
    p: float | None = None
    effect: float | None = None
    interval_at: IntervalAt = _no_interval
    if kpi.kind == "proportion":
        k1, k2 = int(np.nansum(base > 0.5)), int(np.nansum(var > 0.5))
        n1, n2 = b.n, v.n
        ci_method, test, effect_name = "newcombe-wilson", "newcombe-inversion", "cohens-h"
        if n1 and n2:
            ci, p = stats.newcombe(k1, n1, k2, n2), stats.newcombe_p(k1, n1, k2, n2)
            effect = stats.cohens_h(k1 / n1, k2 / n2)

            def interval_at(level: float) -> tuple[float, float] | None:
                return stats.newcombe(k1, n1, k2, n2, stats.z_for(level))

    elif kpi.kind == "nps":
        ci_method, test, effect_name = "trinomial-wald-pseudo-half", "nps-difference-z", "none"
        result = stats.nps_test(base, var)
        if result is not None:
            ci, p = result.ci, result.p

            def interval_at(level: float) -> tuple[float, float] | None:
                found = stats.nps_test(base, var, level)
                return None if found is None else found.ci

    else:
        ci_method, test, effect_name = "hodges-lehmann-mann-whitney", "mann-whitney", "rank-biserial"
        mw = stats.MannWhitney(base, var)
        found_shift = stats.shift_test(base, var, mw=mw)
        if found_shift is not None:
            shift, ci, p, effect = found_shift.shift, found_shift.ci, found_shift.p, found_shift.rank_biserial
            test = "mann-whitney-exact" if found_shift.exact else "mann-whitney-normal"
            interval_at = mw.interval

    too_small = b.n < MIN_GROUP or v.n < MIN_GROUP
    significant = p is not None and p < stats.ALPHA and not too_small
    result_ = KpiResult(
        kpi.name,
        kpi.unit,
        kpi.statistic,
        b,
        v,
        diff,
        rel,
        ci,
        ci_method,
        p,
        test,
        significant,
        too_small,
        shift=shift,
        shift_ci95=ci if shift is not None else None,
        change_unit=unit,
        effect_size=effect,
        effect_size_name=effect_name,
    )
    return result_, interval_at


def _censored(cases: Cases, kpi: Kpi, bmask: Bools, vmask: Bools) -> tuple[KpiResult, IntervalAt] | None:
    """A duration with cases still running at the cut-off: Kaplan-Meier medians, log-rank, hazard ratio.

    None when the KPI has no censored observations in either group (then the usual methods apply).
    The interval is of the hazard ratio of finishing (variant / baseline; above 1 the variant's
    cases finish sooner), Peto's log-rank estimate: it excludes 1 exactly when the log-rank test rejects.
    """
    from flowrun.analysis import survival

    observed = cases.observed.get(kpi.source) if kpi.kind == "duration" else None
    if observed is None:
        return None
    time, event = observed
    seen = ~np.isnan(time)
    bo, vo = bmask & seen, vmask & seen
    running = int(np.count_nonzero(~event[bo])), int(np.count_nonzero(~event[vo]))
    if not any(running):
        return None
    km_b, km_v = survival.kaplan_meier(time[bo], event[bo]), survival.kaplan_meier(time[vo], event[vo])
    b = Side(km_b.n, km_b.median, None, None, km_b.median)
    v = Side(km_v.n, km_v.median, None, None, km_v.median)
    diff = None if b.value is None or v.value is None else v.value - b.value
    rel = None if diff is None or not b.value else diff / abs(b.value)
    test = survival.logrank(time[bo], event[bo], time[vo], event[vo])
    too_small = b.n < MIN_GROUP or v.n < MIN_GROUP
    p = None if test is None else test.p
    note = (
        f"{running[0]} + {running[1]} case(s) still running at the cut-off are censored, not dropped: "
        "Kaplan-Meier medians, log-rank test, interval of the hazard ratio of finishing (variant / baseline)"
    )
    result = KpiResult(
        kpi.name,
        kpi.unit,
        kpi.statistic,
        b,
        v,
        diff,
        rel,
        None if test is None else test.interval(),
        "peto-hazard-ratio",
        p,
        "log-rank",
        p is not None and p < stats.ALPHA and not too_small,
        too_small,
        change_unit="%",
        notes=[note],
        effect_size=None if test is None else test.hazard_ratio,
        effect_size_name="hazard-ratio",
        ci_null=1.0,
        censored=running,
    )
    return result, (lambda level: None if test is None else test.interval(level))


#: Above this many cases a group, a pilot is not called under-powered (and the search is skipped).
POWER_CHECK_LIMIT = 2000


def _power_note(r: KpiResult, kpis: Sequence[Kpi], baselines: Mapping[str, Floats]) -> KpiResult:
    """A note on a KPI reported as no change when the pilot was too small to see a sizeable one.

    The change 80 % power needs at the pilot's size (the smaller group), searched in the improving
    direction from the baseline's own values (:func:`flowrun.analysis.power.detectable_change`).
    """
    from flowrun.analysis import power

    n = min(r.baseline.n, r.variant.n)
    base = baselines.get(r.kpi)
    kind = next((k.kind for k in kpis if k.name == r.kpi), None)
    if r.significant or r.too_small or base is None or kind is None or n > POWER_CHECK_LIMIT:
        return r
    x = base[~np.isnan(base)]
    if x.size < MIN_GROUP or np.ptp(x) == 0:
        return r
    size = power.detectable_change(x, n, kind)
    if kind in ("duration", "count"):
        big = size is None or size <= -0.2  # a cut of less than 20 % would usually be missed
        text = "none up to -99%" if size is None else f"{size:+.0%}"
    elif kind == "proportion":
        big, text = size is None or size >= 10, "none" if size is None else f"{size:+.1f} pp"
    elif kind == "nps":
        big, text = size is None or size >= 10, "none" if size is None else f"{size:+.1f} points"
    else:
        big, text = size is None or size >= 0.5, "none" if size is None else f"{size:+.2f} points"
    if not big:
        return r
    note = (
        f"under-powered: with {n} cases a group the pilot detects (at 80 % power) only a change of {text} or more; "
        "'no significant change' does not show there is none (flowrun plan tells how many cases it needs)"
    )
    return replace(r, notes=[*r.notes, note])


def _no_interval(level: float) -> tuple[float, float] | None:
    return None


def _task_side(mask: Bools, waiting: Floats, touch: Floats) -> TaskSide | None:
    if not mask.any():
        return None
    w, t = waiting[mask], touch[mask]
    return TaskSide(
        int(mask.sum()),
        float(np.median(w)),
        float(np.median(t)),
        float(np.percentile(w, 90)),
        float(np.percentile(t, 90)),
    )


def _tasks(cases: Cases, bdone: Bools, vdone: Bools, names: Mapping[str, str]) -> list[TaskResult]:
    """Each task's waiting and touch time per group, in the order tasks usually run."""
    in_b, in_v = bdone[cases.step_case], vdone[cases.step_case]
    rows = []
    for code, task in enumerate(cases.tasks):
        mine = cases.step_task == code
        b, v = mine & in_b, mine & in_v
        if not (b.any() or v.any()):
            continue
        lanes = cases.step_lane[mine & (in_b | in_v)]
        lane = _most_common(lanes, cases.lanes)
        side_b = _task_side(b, cases.step_waiting, cases.step_touch)
        side_v = _task_side(v, cases.step_waiting, cases.step_touch)
        position = float(np.mean(cases.step_position[mine & (in_b | in_v)]))
        rows.append((position, TaskResult(task, names.get(task, task), lane, side_b, side_v)))
    return [r for _, r in sorted(rows, key=lambda item: item[0])]


def _lanes(cases: Cases, bdone: Bools, vdone: Bools) -> list[TaskResult]:
    """Each lane's waiting and touch time per step, per group."""
    in_b, in_v = bdone[cases.step_case], vdone[cases.step_case]
    out = []
    for code, lane in enumerate(cases.lanes):
        mine = cases.step_lane == code
        b, v = mine & in_b, mine & in_v
        if b.any() or v.any():
            out.append(
                TaskResult(
                    lane,
                    lane,
                    lane,
                    _task_side(b, cases.step_waiting, cases.step_touch),
                    _task_side(v, cases.step_waiting, cases.step_touch),
                )
            )
    return out


def _most_common(codes: Any, names: Sequence[str]) -> str | None:
    codes = codes[codes >= 0]
    if codes.size == 0:
        return None
    return names[int(np.bincount(codes).argmax())]


def _warnings(groups: Sequence[Group], results: Sequence[KpiResult]) -> list[str]:
    out = []
    for g in groups:
        if g.n < MIN_GROUP:
            count = f"only {g.n} completed case(s)" if g.n else "no completed cases"
            out.append(
                f"group '{g.name}' has {count}, fewer than {MIN_GROUP}: too few to judge; "
                "with so few cases a difference of this size can come from chance alone, and the tests and "
                "intervals are unreliable"
            )
        if g.running:
            survived = [k.kpi for k in results if any(k.censored)]
            where = (
                f"censored at the cut-off in {', '.join(survived)} (Kaplan-Meier, log-rank) and left out of "
                "the other KPIs"
                if survived
                else "left out of every statistic"
            )
            out.append(f"group '{g.name}': {g.running} case(s) still running are {where}")
        if g.other:
            out.append(f"group '{g.name}': {g.other} case(s) that failed or were cancelled are left out")
    for side, g in (("baseline", groups[0]), ("variant", groups[1])):
        empty = [k.kpi for k in results if k.unit in ("score", "proportion") and getattr(k, side).n == 0]
        if g.n and empty:
            out.append(
                f"group '{g.name}' has {g.n} completed case(s) but no values of {', '.join(empty)}: their data "
                "lack those fields (an imported log without them? import it with --data-column)"
            )
    weak = [k.kpi for k in results if any(n.startswith("under-powered") for n in k.notes)]
    if weak:
        out.append(
            f"under-powered for {', '.join(weak)}: a change of a size a team would act on would usually be "
            "missed with this many cases (see each KPI's note in --json; flowrun plan FAMILY sizes a pilot)"
        )
    small = [k.kpi for k in results if k.too_small and min(k.baseline.n, k.variant.n) > 0]
    small = [k for k in small if all(g.n >= MIN_GROUP for g in groups)]
    if small:
        out.append(
            f"fewer than {MIN_GROUP} values in a group for {', '.join(small)} (the cases without that answer are "
            "left out): too few to judge those KPIs"
        )
    return out


def to_dict(c: Comparison) -> dict[str, Any]:
    """The comparison with stable keys, every number included; durations in seconds."""
    return {
        "family": c.family,
        "filters": c.filters,
        "groups": {
            g.name: {"n": g.n, "running": g.running, "other": g.other, "cases_per_person_hour": g.cases_per_person_hour}
            for g in (c.baseline, c.variant)
        },
        "baseline": c.baseline.name,
        "variant": c.variant.name,
        "kpis": [_kpi_dict(k) for k in c.kpis],
        "tasks": [_task_dict(t) for t in c.tasks],
        "lanes": [_lane_dict(t) for t in c.lanes],
        "significant": [k.kpi for k in c.significant],
        "warnings": c.warnings,
        "alpha": stats.ALPHA,
        "min_group": MIN_GROUP,
        # every method is exact or closed-form: no resampling, so nothing depends on a seed
        "seed": None,
        "resamples": 0,
    }


def _kpi_dict(k: KpiResult) -> dict[str, Any]:
    def side(s: Side) -> dict[str, Any]:
        return {"n": s.n, "median": s.median, "p90": s.p90, "mean": s.mean, "value": s.value}

    return {
        "kpi": k.kpi,
        "unit": k.unit,
        "statistic": k.statistic,
        "baseline": side(k.baseline),
        "variant": side(k.variant),
        "diff": k.diff,
        "rel_diff": k.rel_diff,
        "ci95": list(k.ci95) if k.ci95 is not None else None,
        "ci_method": k.ci_method,
        "p_value": k.p_value,
        "p_adjusted": k.p_adjusted,
        "primary": k.primary,
        "shift": k.shift,
        "shift_ci95": list(k.shift_ci95) if k.shift_ci95 is not None else None,
        "ci_adjusted": list(k.ci_adjusted) if k.ci_adjusted is not None else None,
        "ci_adjusted_level": k.ci_adjusted_level,
        "effect_size": k.effect_size,
        "effect_size_name": k.effect_size_name,
        "ci_null": k.ci_null,
        "censored": {"baseline": k.censored[0], "variant": k.censored[1]},
        "change_unit": k.change_unit,
        "notes": k.notes,
        "test": k.test,
        "significant": k.significant,
        "too_small": k.too_small,
        "verdict": k.verdict,
    }


def _side_dict(s: TaskSide | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "n": s.n,
        "waiting_median": s.waiting_median,
        "touch_median": s.touch_median,
        "waiting_p90": s.waiting_p90,
        "touch_p90": s.touch_p90,
    }


def _task_dict(t: TaskResult) -> dict[str, Any]:
    return {
        "task": t.task,
        "name": t.name,
        "lane": t.lane,
        "baseline": _side_dict(t.baseline),
        "variant": _side_dict(t.variant),
    }


def _lane_dict(t: TaskResult) -> dict[str, Any]:
    return {"lane": t.task, "baseline": _side_dict(t.baseline), "variant": _side_dict(t.variant)}
