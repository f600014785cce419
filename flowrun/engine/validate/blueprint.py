"""Blueprint properties: a task's ``touchpoint`` extension property must say true or false."""

from __future__ import annotations

from flowrun.engine.properties import TOUCHPOINT, touchpoint_value
from flowrun.engine.validate._common import CAMUNDA_TAG, Context, shorten


def check_touchpoints(ctx: Context) -> None:
    """Every ``<camunda:property name="touchpoint">`` has the value true, false, yes or no."""
    for prop in ctx.root.iter(CAMUNDA_TAG + "property"):
        if (prop.get("name") or "").strip() != TOUCHPOINT:
            continue
        value = prop.get("value")
        if touchpoint_value(value) is None:
            ctx.add(
                prop,
                f"the touchpoint property is {shorten(repr(value or ''))}, which is neither true nor false",
                "in the modeler's Extension properties, set touchpoint to true (a customer contact) or false",
            )
