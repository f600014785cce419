"""Censored durations: Kaplan-Meier median intervals, compare_censored and the hazard-ratio interval against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from flowrun.analysis.survival import compare_censored, kaplan_meier, logrank

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


def test_hazard_ratio_interval_excludes_one_exactly_when_logrank_rejects() -> None:
    rng = np.random.default_rng(11)
    disagreements, rejections = 0, 0
    for _ in range(300):
        n1, n2 = rng.integers(8, 40, size=2)
        scale = rng.uniform(0.6, 1.6)
        t1, t2 = np.ceil(rng.exponential(10, n1)), np.ceil(rng.exponential(10 * scale, n2))
        e1, e2 = rng.random(n1) < 0.8, rng.random(n2) < 0.8
        alpha = float(rng.choice([0.05, 0.0125]))
        res = compare_censored(t1, e1, t2, e2, alpha=alpha)
        assert res.interval is not None
        excludes = not (res.interval[0] <= 1.0 <= res.interval[1])
        rejections += res.significant
        disagreements += excludes != res.significant
        ref = stats.logrank(stats.CensoredData.right_censored(t2, ~e2), stats.CensoredData.right_censored(t1, ~e1))
        assert res.p == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-12)
    assert disagreements == 0
    assert 20 < rejections < 280  # the datasets exercise both outcomes


def test_compare_censored_reports_medians_counts_and_methods() -> None:
    res = compare_censored(TIME, EVENT, OTHER_T, OTHER_E)
    assert res.base_median == kaplan_meier(TIME, EVENT).median
    assert res.var_median == kaplan_meier(OTHER_T, OTHER_E).median
    assert res.difference == pytest.approx(res.var_median - res.base_median)  # type: ignore[operator]
    assert (res.base_censored, res.var_censored) == (6, 3)
    assert res.test == "log-rank"
    assert "hazard ratio" in res.effect
    assert res.level == 0.95
