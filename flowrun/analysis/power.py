"""How many cases a pilot needs: sample sizes and detectable changes for the tests compare uses.

All at a two-sided level ``alpha`` (0.05) and a ``power`` (0.8), equal groups, from a baseline's data:

- durations and counts (``kind="duration"``/``"count"``): a relative change of the values
  (``change=-0.2`` multiplies every baseline value by 0.8); scores (``kind="score"``): a shift in
  points. The Mann-Whitney test's power by Noether's formula,
  ``n per group = (z_(1-alpha/2) + z_power)^2 / (6 (p - 1/2)^2)``, where ``p = P(X' > X) + P(X' = X)/2``
  is estimated from the baseline sample ``X`` and the changed sample ``X'`` (every pair).
- proportions (``kind="proportion"``, values 0/1): a change in percentage points, the
  two-proportion normal formula.
- NPS (``kind="nps"``, answers 0-10): a rise of ``k`` points moves ``k`` % of all answers from
  detractors to passives (raising the NPS by exactly ``k``) and, once no detractor is left, from
  passives to promoters; the normal approximation with each group's trinomial variance
  ``v = promoters + detractors - NPS^2`` (shares), ``n = (z_a + z_b)^2 (v0 + v1) / delta^2``.

Pure numpy and :mod:`statistics`; nothing is read here.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Literal

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Kind = Literal["duration", "count", "score", "proportion", "nps"]
KINDS: tuple[Kind, ...] = ("duration", "count", "score", "proportion", "nps")


def _z(alpha: float, power: float) -> float:
    norm = NormalDist()
    return norm.inv_cdf(1 - alpha / 2) + norm.inv_cdf(power)


def superiority(baseline: Floats, changed: Floats) -> float:
    """``P(X' > X) + P(X' = X) / 2`` over every pair of a changed and a baseline value (O(n log n))."""
    x = np.sort(np.asarray(baseline, dtype=np.float64))
    y = np.asarray(changed, dtype=np.float64)
    below = np.searchsorted(x, y, side="left")
    ties = np.searchsorted(x, y, side="right") - below
    return float((below.sum() + ties.sum() / 2) / (x.size * y.size))


def apply_change(values: Floats, change: float, kind: Kind) -> Floats:
    """The baseline as the change would make it (durations/counts: relative; scores: points).

    Raises:
        ValueError: a relative change at or below -100 %, or a kind this does not apply to.
    """
    v = np.asarray(values, dtype=np.float64)
    if kind in ("duration", "count"):
        if change <= -1:
            raise ValueError(f"a relative change of {change:+.0%} leaves nothing; use one above -100%")
        return v * (1 + change)
    if kind == "score":
        return v + change
    raise ValueError(f"apply_change does not apply to {kind!r}")


def _nps_shares(answers: Floats) -> tuple[float, float, float]:
    a = np.asarray(answers, dtype=np.float64)
    return float(np.mean(a >= 9)), float(np.mean((a >= 7) & (a <= 8))), float(np.mean(a <= 6))


def nps_after(answers: Floats, rise: float) -> tuple[float, float, float]:
    """(promoters, passives, detractors) shares after a rise of ``rise`` NPS points (module doc).

    Raises:
        ValueError: the rise would need more than every detractor and passive, or is negative.
    """
    pro, pas, det = _nps_shares(answers)
    m = rise / 100
    if m < 0:
        raise ValueError("an NPS change must be a rise (a positive number of points)")
    from_det = min(m, det)
    rest = m - from_det  # once detractors are gone, passives become promoters: +1 point per %
    if rest > pas + from_det + 1e-12:
        raise ValueError(f"an NPS rise of {rise:g} points is more than this baseline allows")
    return pro + rest, pas + from_det - rest, det - from_det


def cases_needed(values: Floats, change: float, kind: Kind, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Cases per group to detect ``change`` at ``power`` (None when the change has no effect).

    ``change``: relative for durations/counts (-0.2), points for scores, percentage points for
    proportions (+10), NPS points for NPS (+10). Raises ValueError for a change that makes no sense.
    """
    v = np.asarray(values, dtype=np.float64)
    zz = _z(alpha, power)
    if kind in ("duration", "count", "score"):
        p = superiority(v, apply_change(v, change, kind))
        if abs(p - 0.5) < 1e-12:
            return None
        return math.ceil(zz**2 / (6 * (p - 0.5) ** 2))
    if kind == "proportion":
        p0 = float(np.mean(v))
        p1 = p0 + change / 100
        if not 0 <= p1 <= 1:
            raise ValueError(f"a change of {change:+g} pp takes the share {p0:.0%} outside 0-100%")
        if p1 == p0:
            return None
        pbar = (p0 + p1) / 2
        za, zb = NormalDist().inv_cdf(1 - alpha / 2), NormalDist().inv_cdf(power)
        num = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p0 * (1 - p0) + p1 * (1 - p1))
        return math.ceil(num**2 / (p1 - p0) ** 2)
    if kind == "nps":
        pro0, _, det0 = _nps_shares(v)
        pro1, _, det1 = nps_after(v, change)
        d0, d1 = pro0 - det0, pro1 - det1
        if abs(d1 - d0) < 1e-12:
            return None
        var = (pro0 + det0 - d0**2) + (pro1 + det1 - d1**2)
        return math.ceil(zz**2 * var / (d1 - d0) ** 2)
    raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")


def detectable_change(
    values: Floats, n_per_group: int, kind: Kind, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """The smallest change (in ``cases_needed``'s units) ``n_per_group`` detects at ``power``.

    Searched in the improving direction compare's defaults use: durations/counts shorter (a
    negative relative change), scores, proportions and NPS higher. None when even the largest
    sensible change needs more cases.
    """
    v = np.asarray(values, dtype=np.float64)
    if kind in ("duration", "count"):
        lo, hi, sign = 0.0, 0.99, -1.0
    elif kind == "score":
        spread = float(np.ptp(v)) or 1.0
        lo, hi, sign = 0.0, 2 * spread, 1.0
    elif kind == "proportion":
        lo, hi, sign = 0.0, 100 * (1 - float(np.mean(v))), 1.0
    elif kind == "nps":
        _, pas, det = _nps_shares(v)
        lo, hi, sign = 0.0, 100 * (pas + det), 1.0
    else:
        raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")

    def enough(size: float) -> bool:
        n = cases_needed(v, sign * size, kind, alpha, power)
        return n is not None and n <= n_per_group

    if hi <= 0 or not enough(hi):
        return None
    for _ in range(40):  # bisection: power grows with the change's size
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return sign * hi
