"""A family's pilot settings: the blueprint layers of its lanes, touchpoint overrides, costs, milestones.

``flowrun.yaml`` classifies lanes (``lanes:``, ``customer_facing_lanes:``), prices them
(``hourly_cost:``, ``currency:``) and names each family's primary KPI, milestone tasks and
service level (``families:``). The family's diagrams (every variant) add per-task
``touchpoint`` extension properties; each variant's steps follow its own diagram's, so a task
id two variants share may be a contact in one and not in the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowrun.app.project import Project
from flowrun.config import CONFIG_NAME, Settings
from flowrun.errors import ModelError, ProjectError

if TYPE_CHECKING:
    from flowrun.analysis.blueprint import PilotSettings
    from flowrun.engine.properties import DiagramBlueprint
    from flowrun.models import Problem


@dataclass(frozen=True)
class _Issue:
    """Something wrong with the blueprint, located in a diagram or in flowrun.yaml."""

    file: str
    line: int | None
    element: str | None
    message: str
    fix: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.element + ': ' if self.element else ''}{self.message}; {self.fix}"


def pilot_settings(project: Project, family: str) -> PilotSettings:
    """What ``flowrun.yaml`` and the family's diagrams say its KPIs need.

    Lanes in ``customer_facing_lanes`` are the customer layer; ``lanes:`` classifies the others
    (a lane it does not name is backstage). Touchpoint overrides come from the ``touchpoint``
    extension property of the tasks of every variant of the family. A family without an entry
    under ``processes:`` (an imported log's) gets the project-wide lanes and costs only.

    Raises:
        ProjectError: a lane is given two layers, a diagram cannot be read, a touchpoint property
            is neither true nor false, or a milestone task is in
            none of the family's diagrams; the message names the file and the fix.
    """
    from flowrun.analysis.blueprint import PilotSettings

    s = project.settings
    lanes = _layers(s)
    diagrams = _diagrams(s, family)
    touchpoints, per_variant, issues = _touchpoints(diagrams)
    pilot = s.pilots.get(family)
    resolution = pilot.resolution if pilot is not None else ()
    issues += _resolution_issues(family, resolution, diagrams)
    if issues:
        raise ProjectError(str(issues[0]))
    return PilotSettings(
        lanes=lanes,  # type: ignore[arg-type]  # config checked each layer is one of LANE_CLASSES
        touchpoints=touchpoints,
        variant_touchpoints=per_variant,
        hourly_cost={lane.casefold(): cost for lane, cost in s.hourly_cost.items()},
        currency=s.currency,
        resolution=frozenset(resolution),
        sla_seconds=pilot.sla_seconds if pilot is not None else None,
        primary=pilot.primary if pilot is not None else None,
    )


def blueprint_problems(settings: Settings) -> list[Problem]:
    """What ``flowrun validate`` reports about the blueprint beyond each file's own checks.

    Errors: milestone tasks no diagram of the family has, a lane given two layers (bad
    touchpoint values are each file's own check). Warnings: lanes named under ``lanes:`` or
    ``hourly_cost:`` that no diagram of the project has (a typo there silently costs nothing),
    and entries under ``families:`` that are not under ``processes:``.
    Diagrams that cannot be read are left to the file checks.
    """
    from flowrun.models import Problem

    issues: list[_Issue] = []
    warnings: list[_Issue] = []
    try:
        _layers(settings)
    except ProjectError as exc:
        issues.append(_Issue(CONFIG_NAME, None, None, *_split(str(exc))))
    seen_lanes: dict[str, str] = {}  # casefolded -> as the diagrams write it
    for family in settings.families:
        try:
            diagrams = _diagrams(settings, family)
        except ProjectError:
            continue
        for _, _, blueprint in diagrams:
            seen_lanes.update((lane.casefold(), lane) for lane in blueprint.lanes)
        pilot = settings.pilots.get(family)
        if pilot is not None:
            issues += _resolution_issues(family, pilot.resolution, diagrams)
    for family in settings.pilots:
        if family not in settings.families:
            known = ", ".join(settings.families) or "none"
            warnings.append(
                _Issue(
                    CONFIG_NAME,
                    None,
                    None,
                    f"families: {family} is not a family under 'processes:' ({known}), so its milestones are unchecked",
                    "fine for an imported log's family; otherwise write the family's name as under 'processes:'",
                )
            )
    if settings.families:
        for key, names in (("lanes", settings.lanes), ("hourly_cost", settings.hourly_cost)):
            unknown = [lane for lane in names if lane.casefold() not in seen_lanes]
            if unknown:
                have = ", ".join(sorted(seen_lanes.values())) or "none"
                warnings.append(
                    _Issue(
                        CONFIG_NAME,
                        None,
                        None,
                        f"{key}: no diagram of the project has the lane(s) {', '.join(unknown)} (lanes: {have})",
                        "write the lane's name as the diagrams do (case does not matter), or remove it",
                    )
                )
    return [
        Problem(file=i.file, line=i.line, element=i.element, name=None, message=i.message, fix=i.fix, severity=sev)
        for sev, found in (("error", issues), ("warning", warnings))
        for i in found
    ]


def _split(text: str) -> tuple[str, str]:
    message, _, fix = text.partition("; ")
    return message, fix


def _layers(s: Settings) -> dict[str, str]:
    """Lane (casefolded) -> layer: ``customer_facing_lanes`` are customers, ``lanes:`` the rest."""
    lanes = {name.casefold(): "customer" for name in s.customer_facing_lanes}
    for name, layer in s.lanes.items():
        if lanes.get(name.casefold(), layer) != layer:
            raise ProjectError(
                f"{s.root / CONFIG_NAME}: the lane '{name}' is in customer_facing_lanes and is {layer} under "
                "'lanes:'; give it one layer (remove it from customer_facing_lanes or write customer)"
            )
        lanes[name.casefold()] = layer
    return lanes


def _diagrams(s: Settings, family: str) -> list[tuple[str, str, DiagramBlueprint]]:
    """(variant, file as shown, blueprint) of each variant's diagram; only lanes and properties are read."""
    from flowrun.engine.properties import read_blueprint

    out: list[tuple[str, str, DiagramBlueprint]] = []
    read: dict[str, DiagramBlueprint] = {}
    for variant, file in s.families.get(family, {}).items():
        try:
            blueprint = read.get(file) or read.setdefault(file, read_blueprint(s.root / file, file))
            out.append((variant, file, blueprint))
        except ModelError as exc:
            raise ProjectError(f"{file}: {exc}; fix the diagram of family '{family}' in flowrun.yaml") from None
    return out


def _touchpoints(
    diagrams: list[tuple[str, str, DiagramBlueprint]],
) -> tuple[dict[str, bool], dict[str, dict[str, bool]], list[_Issue]]:
    """Task id -> override where the variants agree, variant -> its own overrides, and bad values."""
    from flowrun.engine.properties import TOUCHPOINT, touchpoint_value

    per_variant: dict[str, dict[str, bool]] = {}
    issues: list[_Issue] = []
    for variant, file, blueprint in diagrams:
        own = per_variant.setdefault(variant, {})
        for task, props in blueprint.tasks.items():
            if TOUCHPOINT not in props:
                continue
            value = touchpoint_value(props[TOUCHPOINT])
            if value is None:
                issues.append(
                    _Issue(
                        file,
                        blueprint.lines.get(task),
                        task,
                        f"the touchpoint property is {props[TOUCHPOINT]!r}, which is neither true nor false",
                        "set it to true or false in the modeler's Extension properties (flowrun validate lists all)",
                    )
                )
            else:
                own[task] = value
    merged: dict[str, bool] = {}
    split: set[str] = set()
    for own in per_variant.values():
        for task, value in own.items():
            if merged.setdefault(task, value) != value:
                split.add(task)
    return {t: v for t, v in merged.items() if t not in split}, per_variant, issues


def _resolution_issues(
    family: str, resolution: tuple[str, ...], diagrams: list[tuple[str, str, DiagramBlueprint]]
) -> list[_Issue]:
    """Milestone task ids that none of the family's diagrams has (unchecked without diagrams)."""
    if not diagrams:
        return []
    known = {task for _, _, blueprint in diagrams for task in blueprint.tasks}
    unknown = [task for task in resolution if task not in known]
    if not unknown:
        return []
    return [
        _Issue(
            CONFIG_NAME,
            None,
            None,
            f"families: {family}: resolution names {', '.join(unknown)}, which no diagram of the family has",
            f"name task ids of its diagrams: {', '.join(sorted(known)) or 'none'}",
        )
    ]
