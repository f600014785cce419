"""Censored durations: Kaplan-Meier curves, median intervals and log-rank against scipy on known data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from flowrun.analysis.survival import kaplan_meier, logrank

# Known data with ties among events, ties between an event and a censoring, and censoring.
TIME = np.array([2, 3, 3, 3, 5, 6, 6, 8, 9, 9, 11, 12, 12, 14, 15, 18, 20, 21], dtype=float)
EVENT = np.array([1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 0, 1, 0], dtype=bool)
OTHER_T = np.array([1, 2, 2, 3, 4, 4, 4, 5, 6, 7, 7, 8, 10, 10, 11], dtype=float)
OTHER_E = np.array([1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1], dtype=bool)


def _scipy_ecdf(t: np.ndarray, e: np.ndarray) -> stats._survival.ECDFResult:
    return stats.ecdf(stats.CensoredData.right_censored(t, ~e))


def test_kaplan_meier_matches_scipy_curve_and_median() -> None:
    km = kaplan_meier(TIME, EVENT)
    ref = _scipy_ecdf(TIME, EVENT).sf
    np.testing.assert_allclose(km.survival, ref.evaluate(km.times), rtol=1e-12)
    # scipy's median: the first time the survival function is at or below one half.
    assert km.median == float(ref.quantiles[np.argmax(ref.probabilities <= 0.5)])
    assert km.censored == 6
    assert km.n == 18


def test_median_interval_is_brookmeyer_crowley_on_scipys_loglog_band() -> None:
    km = kaplan_meier(TIME, EVENT)
    band = _scipy_ecdf(TIME, EVENT).sf.confidence_interval(0.95, method="log-log")
    lower, upper = band.low.evaluate(km.times), band.high.evaluate(km.times)
    expected_lo = km.times[np.argmax(lower <= 0.5)]
    hi = np.nonzero(upper <= 0.5)[0]
    lo, up = km.median_interval(0.95)
    assert lo == expected_lo
    assert up == (float(km.times[hi[0]]) if hi.size else None)
    assert lo is not None
    assert km.median is not None
    assert lo <= km.median
    assert up is None or km.median <= up


def test_median_is_none_when_most_cases_are_still_running() -> None:
    km = kaplan_meier(np.arange(1.0, 11.0), np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0], dtype=bool))
    assert km.median is None
    assert km.median_interval()[1] is None


def test_logrank_matches_scipy_with_ties_and_censoring() -> None:
    ours = logrank(TIME, EVENT, OTHER_T, OTHER_E)
    ref = stats.logrank(
        stats.CensoredData.right_censored(OTHER_T, ~OTHER_E),
        stats.CensoredData.right_censored(TIME, ~EVENT),
    )
    assert ours is not None
    assert abs(ours.z) == pytest.approx(abs(ref.statistic), rel=1e-9)
    assert ours.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert ours.hazard_ratio > 1  # the variant (OTHER) finishes sooner
