"""Service handlers for the shipped complaint-handling example.

The re-engineered complaint process (``processes/complaint_reengineered.bpmn``) has one
automatic step, the service task "Check entitlement"
(``camunda:type="external" camunda:topic="check_entitlement"``). A handler is a plain
function named after the topic: it receives the case's task data (read-only) and returns
the new variables to merge into it. The returned variables are what the gateway
"Resolve at first contact?" tests::

    can_resolve_now == True and entitled == True and amount_disputed <= auto_remedy_limit

The rules are deliberately simple, deterministic and explainable, so that a pilot team can
predict every routing decision from the recorded form data:

* ``entitled`` -- every complaint category gives a right to a remedy except ``"other"``,
  which always needs a person to look at it.
* ``customer_tier`` -- ``"gold"`` when the disputed amount is 500 or more, else ``"standard"``.
* ``auto_remedy_limit`` -- how much the front office may settle on the spot:
  1000.0 for gold (so gold customers disputing up to 1000 are settled on the spot), 100.0 for standard.
"""

from collections.abc import Mapping
from typing import Any

__all__ = ["check_entitlement"]

GOLD_THRESHOLD = 500.0
"""Disputed amount from which a case is handled as a gold-tier customer."""

AUTO_REMEDY_LIMITS = {"standard": 100.0, "gold": 1000.0}
"""Highest amount the front office may settle at first contact, per customer tier."""

NOT_ENTITLED_CATEGORIES = frozenset({"other"})
"""Complaint categories that carry no automatic right to a remedy."""


def _amount(value: Any) -> float:
    """Read a money amount from form data; missing, empty or invalid counts as 0."""
    if value is None or value == "" or isinstance(value, bool):
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def check_entitlement(data: Mapping[str, Any]) -> dict[str, Any]:
    """Decide whether the customer is entitled to a remedy and the front office's limit.

    Reads ``category`` and ``amount_disputed`` from the task data and returns
    ``{"entitled": bool, "customer_tier": "standard" | "gold", "auto_remedy_limit": float}``.

    >>> check_entitlement({"category": "billing", "amount_disputed": 40})
    {'entitled': True, 'customer_tier': 'standard', 'auto_remedy_limit': 100.0}
    >>> check_entitlement({"category": "other", "amount_disputed": 750})
    {'entitled': False, 'customer_tier': 'gold', 'auto_remedy_limit': 1000.0}
    """
    entitled = data.get("category") not in NOT_ENTITLED_CATEGORIES
    tier = "gold" if _amount(data.get("amount_disputed", 0)) >= GOLD_THRESHOLD else "standard"
    return {
        "entitled": entitled,
        "customer_tier": tier,
        "auto_remedy_limit": AUTO_REMEDY_LIMITS[tier],
    }
