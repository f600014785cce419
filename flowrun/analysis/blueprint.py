"""How a family's pilot KPIs read its lanes and tasks: the service blueprint, costs, milestones.

The app builds one :class:`PilotSettings` per family from ``flowrun.yaml`` and the family's
diagrams (:func:`flowrun.app.blueprints.pilot_settings`); :func:`flowrun.analysis.measure` and
:func:`flowrun.analysis.compare` read it. Lane names are compared without case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

#: The layers of a service blueprint a lane can belong to.
LaneClass = Literal["customer", "frontstage", "backstage", "support"]
LANE_CLASSES: tuple[LaneClass, ...] = ("customer", "frontstage", "backstage", "support")
#: Layers whose steps are touchpoints unless a task says otherwise.
TOUCHPOINT_LAYERS: frozenset[str] = frozenset({"customer", "frontstage"})
#: Layers whose lanes are people or departments: a change between two of them is a handoff.
STAFF_LAYERS: frozenset[str] = frozenset({"frontstage", "backstage"})
#: The layer of a lane flowrun.yaml does not classify.
DEFAULT_LAYER: LaneClass = "backstage"


@dataclass(frozen=True)
class PilotSettings:
    """What a family's KPIs need beyond the recorded steps.

    Attributes:
        lanes: lane name (casefolded) -> its blueprint layer; unnamed lanes are :data:`DEFAULT_LAYER`.
        touchpoints: task (BPMN id) -> True/False where a task overrides its lane's default.
        hourly_cost: lane name (casefolded) -> cost of one person-hour in that lane.
        currency: the unit of ``hourly_cost`` (e.g. ``EUR``), "" when none is set.
        resolution: the milestone tasks (BPMN ids): a case is resolved when the first of them completes.
        sla_seconds: the family's service level, on resolution time (cycle time without milestones).
        primary: the pilot's primary KPI, None when none is declared.
    """

    lanes: Mapping[str, LaneClass] = field(default_factory=dict)
    touchpoints: Mapping[str, bool] = field(default_factory=dict)
    variant_touchpoints: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)
    hourly_cost: Mapping[str, float] = field(default_factory=dict)
    currency: str = ""
    resolution: frozenset[str] = frozenset()
    sla_seconds: float | None = None
    primary: str | None = None

    def layer(self, lane: str | None) -> LaneClass | None:
        """The blueprint layer of ``lane`` (None for a step without a lane)."""
        if lane is None:
            return None
        return self.lanes.get(lane.casefold(), DEFAULT_LAYER)

    def is_touchpoint(self, task: str, lane: str | None, variant: str | None = None) -> bool:
        """Whether a step of ``task`` in ``lane`` (of ``variant``, when known) crosses the line of interaction."""
        overrides = self.variant_touchpoints.get(variant, self.touchpoints) if variant else self.touchpoints
        if task in overrides:
            return overrides[task]
        return self.layer(lane) in TOUCHPOINT_LAYERS
