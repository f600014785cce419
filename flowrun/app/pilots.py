"""Judging a pilot: per-case measures and the statistical comparison of variants."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from flowrun.app.project import Project
from flowrun.clock import iso
from flowrun.errors import (
    DataError,
    NotFoundError,
    ProjectError,
)
from flowrun.models import (
    INSTANCE_COMPLETED,
    RUNNING,
)

if TYPE_CHECKING:
    from flowrun.analysis import Cases, Comparison, Kpi
    from flowrun.analysis.blueprint import PilotSettings
    from flowrun.store.analytics import Selection


def measure_cases(
    project: Project,
    family: str,
    group: str | None = None,
    pilot: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Cases:
    """Every case's measures (see :mod:`flowrun.analysis.measures`) and outcomes, per the family's settings.

    Args:
        group: ``VARIANT``, ``@PILOT`` or ``VARIANT@PILOT``; None takes every case of the family.
        pilot: only cases of this pilot.
        since, until: only cases that started at or after ``since`` and before ``until``.

    Raises:
        NotFoundError: the family, variant or pilot has no cases and is not in flowrun.yaml.
    """
    from flowrun.store.analytics import Selection

    groups = _analysis_groups(project, family, family_variants(project, family), [group] if group else [])
    if pilot is not None:
        _check_pilot(project, family, pilot)
    sel = Selection(family, tuple(groups) or ((None, None),), pilot, _epoch(since), _epoch(until))
    return _read_cases(project, sel, outcome_kpis(project))[0]


def compare(
    project: Project,
    family: str,
    baseline: str | None = None,
    variant: str | None = None,
    pilot: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    primary: str | None = None,
) -> Comparison:
    """Compare two groups of a family's completed cases KPI by KPI, with 95 % intervals and tests.

    Args:
        baseline, variant: ``VARIANT``, ``@PILOT`` or ``VARIANT@PILOT``. By default the baseline
            is the variant named "baseline" (else the first in flowrun.yaml) and the variant is
            the other one.
        pilot: only cases of this pilot, in both groups.
        since, until: only cases that started at or after ``since`` and before ``until``.
        primary: the primary KPI (tested alone at 5 %, gatekeeping the Holm-adjusted others);
            by default flowrun.yaml's ``families: FAMILY: primary:``, else none (Holm over all).

    Raises:
        NotFoundError: unknown family, variant or pilot, or no second group to compare with.
        DataError: both groups are the same, or ``primary`` is not one of the KPIs.
    """
    from flowrun import analysis
    from flowrun.app.blueprints import pilot_settings
    from flowrun.store.analytics import Selection

    variants = family_variants(project, family)
    names = _default_specs(variants, family, baseline, variant)
    groups = _analysis_groups(project, family, variants, names)
    if pilot is not None:
        _check_pilot(project, family, pilot)
    sel = Selection(family, tuple(groups), pilot, _epoch(since), _epoch(until))
    outcomes = outcome_kpis(project)
    settings = pilot_settings(project, family)
    cases, task_names = _read_cases(project, sel, outcomes, settings)
    masks = [_group_mask(cases, g) for g in groups]
    filters = {"pilot": pilot, "since": iso(since), "until": iso(until)}
    kpis = [*analysis.case_kpis(settings), *outcomes]
    if primary is None:
        primary = settings.primary
    if primary is not None and primary not in [k.name for k in kpis]:
        raise DataError(f"unknown primary KPI '{primary}'; use one of {', '.join(k.name for k in kpis)}")
    return analysis.compare(
        cases,
        (names[0], masks[0]),
        (names[1], masks[1]),
        kpis,
        task_names,
        family=family,
        filters=filters,
        primary=primary,
    )


def _read_cases(
    project: Project, sel: Selection, outcomes: list[Kpi], settings: PilotSettings | None = None
) -> tuple[Cases, dict[str, str]]:
    """The selected cases' measures, and the names of the tasks they ran, in one read transaction.

    Running cases are observed until the project clock's now, also under ``until``: that selects
    cases by when they started, and completed cases keep their whole life, so censoring a running
    case at ``until`` would drop only the slow cases' later time and make their group look faster.
    """
    from flowrun import analysis
    from flowrun.app.blueprints import pilot_settings
    from flowrun.store import analytics

    settings = settings or pilot_settings(project, sel.family)
    fields = list(dict.fromkeys(k.source for k in outcomes))
    now = _epoch(project.clock.now())
    with project.store.read() as tx:
        rows = analytics.case_rows(tx, sel, fields)
        kept = sum(1 for r in rows if r[3] in (INSTANCE_COMPLETED, RUNNING))
        cases = analysis.measure(rows, analytics.step_rows(tx, sel, kept), fields, settings, now)
        samples = [(iid, task) for iid, task in zip(cases.samples, cases.tasks, strict=True) if iid]
        names = analytics.task_names(tx, samples)
    return cases, names


def outcome_kpis(project: Project) -> list[Kpi]:
    """The KPIs read from case data that flowrun.yaml's ``kpis:`` names (satisfaction, NPS, ...).

    Raises:
        ProjectError: a KPI's definition is not valid; the message names flowrun.yaml.
    """
    from flowrun.analysis import outcome_kpi

    try:
        return [outcome_kpi(name, spec) for name, spec in project.settings.kpis.items()]
    except ValueError as exc:
        raise ProjectError(f"{project.settings.root / 'flowrun.yaml'}: kpis: {exc}") from None


def _split_group(spec: str) -> tuple[str | None, str | None]:
    """``VARIANT`` / ``@PILOT`` / ``VARIANT@PILOT`` -> (variant or None, pilot or None)."""
    variant, at, pilot = spec.strip().partition("@")
    if not variant and not pilot:
        raise NotFoundError(f"'{spec}' names no group; write VARIANT, @PILOT or VARIANT@PILOT")
    return (variant or None, pilot if at and pilot else None)


def family_variants(project: Project, family: str) -> list[str]:
    """A family's variants: flowrun.yaml's, in its order, then others that have cases.

    Raises:
        NotFoundError: the family is neither in flowrun.yaml nor in the database.
    """
    from flowrun.store.analytics import family_variants

    with project.store.read() as tx:
        found = family_variants(tx, family)
    configured = list(project.settings.families.get(family, {}))
    if not configured and not found:
        known = sorted(set(project.settings.families))
        raise NotFoundError(
            f"no process family '{family}' in flowrun.yaml or the database; families: {', '.join(known) or 'none'}"
        )
    return configured + [v for v in found if v not in configured]


def _default_specs(variants: list[str], family: str, baseline: str | None, variant: str | None) -> list[str]:
    """The two group specs, with flowrun.yaml's defaults filled in."""
    if baseline is None:
        baseline = "baseline" if "baseline" in variants else variants[0]
    if variant is None:
        base_variant = _split_group(baseline)[0]
        others = [v for v in variants if v != base_variant]
        if base_variant is None or not others:
            raise NotFoundError(
                f"say which group to compare '{baseline}' with: --variant VARIANT, @PILOT or VARIANT@PILOT "
                f"(family '{family}' has the variants {', '.join(variants)})"
            )
        variant = others[0]
    if baseline.strip() == variant.strip():
        raise DataError(f"the baseline and the variant are the same group '{baseline}'; compare two different groups")
    return [baseline.strip(), variant.strip()]


def _analysis_groups(
    project: Project, family: str, variants: list[str], specs: list[str]
) -> list[tuple[str | None, str | None]]:
    """Parsed group specs, each variant and pilot checked against the family's."""
    out = []
    for spec in specs:
        variant, pilot = _split_group(spec)
        if variant is not None and variant not in variants:
            raise NotFoundError(f"family '{family}' has no variant '{variant}'; it has {', '.join(variants)}")
        if pilot is not None:
            _check_pilot(project, family, pilot)
        out.append((variant, pilot))
    return out


def _check_pilot(project: Project, family: str, pilot: str) -> None:
    """Raises NotFoundError, listing the family's pilots, when it has no case of ``pilot``."""
    from flowrun.store.analytics import family_pilots, has_pilot

    with project.store.read() as tx:
        if not has_pilot(tx, family, pilot):
            known = ", ".join(family_pilots(tx, family)) or "none"
            raise NotFoundError(f"family '{family}' has no cases of pilot '{pilot}'; pilots with cases: {known}")


def _group_mask(cases: Cases, group: tuple[str | None, str | None]) -> Any:
    import numpy as np

    variant, pilot = group
    keep = [
        (variant is None or v == variant) and (pilot is None or p == pilot)
        for v, p in zip(cases.variants, cases.pilots, strict=True)
    ]
    return np.array(keep, dtype=np.bool_)


def _epoch(when: datetime | None) -> float | None:
    from flowrun.clock import as_utc

    return None if when is None else as_utc(when).timestamp()
