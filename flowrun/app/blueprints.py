"""A family's pilot settings: the blueprint layers of its lanes, touchpoint overrides, costs, milestones."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowrun.app.project import Project

if TYPE_CHECKING:
    from flowrun.analysis.blueprint import PilotSettings


def pilot_settings(project: Project, family: str) -> PilotSettings:
    """What ``flowrun.yaml`` and the family's diagrams say its KPIs need.

    Lanes listed in ``customer_facing_lanes`` are the customer's layer; every other lane is
    backstage until flowrun.yaml classifies it.
    """
    from flowrun.analysis.blueprint import PilotSettings

    lanes = {name.casefold(): "customer" for name in project.settings.customer_facing_lanes}
    return PilotSettings(lanes=lanes)  # type: ignore[arg-type]
