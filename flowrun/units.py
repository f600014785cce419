"""Numbers for people, by unit: durations in human units, shares in %, NPS in points, p-values.

Plain strings from the standard library only, so that the terminal, an HTML report and the
inbox (which must not import numpy) format a value the same way.
"""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    """Seconds in human units: ``45s``, ``12m 05s``, ``3h 20m``, ``2d 4h``; ``-`` for no value."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def kpi_value(value: float | None, unit: str, statistic: str = "median", signed: bool = False) -> str:
    """A KPI value (or, with ``signed``, a change of one) in the KPI's unit.

    Args:
        value: the number; ``None`` gives ``-``.
        unit: ``s`` (seconds: shown as a :func:`duration`), ``proportion`` (a share: ``%``,
            a change in percentage points ``pp``), or anything else (a plain number).
        statistic: ``nps`` shows one decimal with its sign; ``mean`` (or a fraction) two decimals.
        signed: a change: ``+`` before positive values.
    """
    if value is None:
        return "-"
    if unit == "s":
        text = duration(abs(value))
        return ("-" if value < 0 else "+" if signed and value > 0 else "") + text
    if unit == "proportion":
        return f"{100 * value:+.1f} pp" if signed else f"{100 * value:.1f}%"
    if statistic == "nps":
        return f"{value:+.1f}"
    sign = "+" if signed else ""
    if statistic == "mean" or not float(value).is_integer():
        return f"{value:{sign}.2f}"
    return f"{value:{sign}.0f}"


#: Below this, a p-value is shown as ``<0.0001``.
P_FLOOR = 0.0001


def p_value(p: float | None) -> str:
    """A p-value with four decimals, ``<0.0001`` below that, ``-`` for none."""
    if p is None:
        return "-"
    return f"<{P_FLOOR}" if p < P_FLOOR else f"{p:.4f}"


def relative(rel: float | None, decimals: int = 1) -> str:
    """A relative change as a signed percentage (``+12.5%``); ``-`` for none."""
    if rel is None:
        return "-"
    return f"{100 * rel:+.{decimals}f}%"
