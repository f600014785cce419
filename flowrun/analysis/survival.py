"""Durations of cases still running at a pilot's cut-off: right-censored survival estimates.

A case still running at the cut-off has a cycle time of *at least* what has passed so far;
dropping it would make the slow group look fast. Kaplan-Meier gives each group's median, the
log-rank test compares the groups, and the hazard ratio with Peto's log-rank estimate,
``ln HR = (O - E) / V`` with interval ``ln HR +- z / sqrt(V)``, is the interval that matches the
test: it excludes 1 exactly when the log-rank z-test rejects at that level.

Every function is O(n log n) (sorted times and ``searchsorted``), numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class KaplanMeier:
    """A Kaplan-Meier curve: the distinct event times, survival just after each, and the median.

    ``median`` is the first time the curve is at or below 0.5 (None when it never gets there);
    ``n`` counts every case, ``censored`` those still running.
    """

    times: Floats
    survival: Floats
    median: float | None
    n: int
    censored: int
    greenwood: Floats | None = None

    def median_interval(self, level: float = 0.95) -> tuple[float | None, float | None]:
        """Brookmeyer-Crowley interval of the median from the log-log Greenwood band of the curve.

        The interval is every time whose pointwise band contains 0.5: its lower end is the first
        time the band's lower limit is at or below 0.5, its upper end the first time the upper
        limit is (None when the band never falls that far: the data cannot bound it).
        """
        from statistics import NormalDist

        if self.greenwood is None or self.times.size == 0:
            return (None, None)
        z = NormalDist().inv_cdf(0.5 + level / 2)
        lower, upper = _loglog_band(self.survival, self.greenwood, z)
        lo = np.nonzero(lower <= 0.5)[0]
        hi = np.nonzero(upper <= 0.5)[0]
        return (
            float(self.times[lo[0]]) if lo.size else None,
            float(self.times[hi[0]]) if hi.size else None,
        )


def kaplan_meier(time: Floats, event: Bools) -> KaplanMeier:
    """The Kaplan-Meier estimate of ``time`` (``event`` False: still running, censored there)."""
    t, e = np.asarray(time, dtype=np.float64), np.asarray(event, dtype=np.bool_)
    times = np.unique(t[e])
    at_risk, deaths = _at_risk(t, times), _events(t[e], times)
    surv = np.asarray(np.cumprod(1.0 - deaths / np.maximum(at_risk, 1)), dtype=np.float64)
    below = np.nonzero(surv <= 0.5)[0]
    median = float(times[below[0]]) if below.size else None
    # Greenwood's sum d / (n (n - d)); infinite once the curve reaches 0 (nobody left at risk).
    with np.errstate(divide="ignore"):
        terms = np.where(at_risk > deaths, deaths / (at_risk * np.maximum(at_risk - deaths, 1)), np.inf)
    return KaplanMeier(times, surv, median, int(t.size), int((~e).sum()), np.cumsum(terms))


def _loglog_band(surv: Floats, greenwood: Floats, z: float) -> tuple[Floats, Floats]:
    """Pointwise log-log (Kalbfleisch-Prentice) band of a Kaplan-Meier curve: S ** exp(+- z se)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_s = np.log(surv)
        se = np.sqrt(greenwood) / np.abs(log_s)
        lower = np.where(surv >= 1.0, 1.0, surv ** np.exp(z * se))
        upper = np.where(surv >= 1.0, 1.0, surv ** np.exp(-z * se))
    dead = surv <= 0.0
    return np.where(dead, 0.0, lower), np.where(dead, 0.0, upper)


@dataclass(frozen=True)
class LogRank:
    """The log-rank comparison of a variant with a baseline.

    Attributes:
        observed_minus_expected: O - E of the variant's events.
        variance: V, the hypergeometric variance of O - E.
        z: (O - E) / sqrt(V); p: its two-sided p-value.
        hazard_ratio: Peto's estimate exp((O - E) / V): above 1, the variant's cases finish sooner.
    """

    observed_minus_expected: float
    variance: float
    z: float
    p: float
    hazard_ratio: float

    def interval(self, level: float = 0.95) -> tuple[float, float] | None:
        """The hazard ratio's interval at ``level``; it excludes 1 exactly when ``p < 1 - level``."""
        from statistics import NormalDist

        if self.variance <= 0:
            return None
        z = NormalDist().inv_cdf(0.5 + level / 2)
        log_hr = self.observed_minus_expected / self.variance
        half = z / math.sqrt(self.variance)
        return (math.exp(log_hr - half), math.exp(log_hr + half))


def logrank(base_t: Floats, base_e: Bools, var_t: Floats, var_e: Bools) -> LogRank | None:
    """Two-sided log-rank test of equal survival, the variant against the baseline (None without events)."""
    a, ea = np.asarray(base_t, np.float64), np.asarray(base_e, np.bool_)
    b, eb = np.asarray(var_t, np.float64), np.asarray(var_e, np.bool_)
    times = np.unique(np.concatenate([a[ea], b[eb]]))
    if times.size == 0:
        return None
    n1, n2 = _at_risk(b, times), _at_risk(a, times)  # group 1 is the variant
    d1, d2 = _events(b[eb], times), _events(a[ea], times)
    n, d = n1 + n2, d1 + d2
    expected = d * n1 / n
    var = float(np.sum(np.where(n > 1, d * (n1 / n) * (n2 / n) * (n - d) / np.maximum(n - 1, 1), 0.0)))
    o_e = float(d1.sum() - expected.sum())
    if var <= 0:
        return LogRank(o_e, 0.0, 0.0, 1.0, 1.0)
    z = o_e / math.sqrt(var)
    return LogRank(o_e, var, z, min(1.0, math.erfc(abs(z) / math.sqrt(2))), math.exp(o_e / var))


def _at_risk(t: Floats, times: Floats) -> Floats:
    """How many of ``t`` are at or after each of ``times``."""
    return np.asarray(t.size - np.searchsorted(np.sort(t), times, side="left"), dtype=np.float64)


def _events(event_times: Floats, times: Floats) -> Floats:
    """How many events happen at each of ``times``."""
    ordered = np.sort(event_times)
    hits = np.searchsorted(ordered, times, side="right") - np.searchsorted(ordered, times, side="left")
    return np.asarray(hits, dtype=np.float64)
