"""Seeded simulations of many pilots: interval coverage and the family-wise false-positive rate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flowrun.analysis import stats

PILOTS = 1000
#: Three Monte Carlo standard errors of a 95 % coverage over PILOTS pilots.
SLACK = 3 * math.sqrt(0.05 * 0.95 / PILOTS)


@pytest.mark.parametrize("n", [11, 30])
def test_hodges_lehmann_interval_covers_a_lognormal_shift(n: int) -> None:
    """Durations: variant = baseline distribution + 600 s; the 95 % HL interval covers 600 s in ~95 %."""
    rng = np.random.default_rng(n)
    x = rng.lognormal(7.5, 0.8, (PILOTS, n))
    y = rng.lognormal(7.5, 0.8, (PILOTS, n)) + 600.0
    covered = 0
    for i in range(PILOTS):
        result = stats.hodges_lehmann(x[i], y[i])
        assert result is not None
        covered += result[1] <= 600.0 <= result[2]
    assert 0.93 <= covered / PILOTS <= 0.97 + SLACK


@pytest.mark.parametrize("n", [11, 30])
def test_newcombe_interval_covers_the_true_difference(n: int) -> None:
    """Proportions 0.5 -> 0.7: the Newcombe interval covers +0.2 in 93-97 % of pilots."""
    rng = np.random.default_rng(100 + n)
    k1, k2 = rng.binomial(n, 0.5, PILOTS), rng.binomial(n, 0.7, PILOTS)
    covered = 0
    for a, b in zip(k1.tolist(), k2.tolist(), strict=True):
        ci = stats.newcombe(a, n, b, n)
        assert ci is not None
        covered += ci[0] <= 0.2 <= ci[1]
    assert 0.93 - SLACK <= covered / PILOTS <= 0.97 + SLACK


def test_holm_over_null_pilots_keeps_the_family_wise_error_at_five_percent() -> None:
    """Null pilots (both groups from one distribution), a duration and a proportion KPI, Holm over both:
    at most 5 % (+3 Monte Carlo SE) of pilots call anything significant."""
    rng = np.random.default_rng(7)
    n = 30
    x, y = rng.lognormal(7.5, 0.8, (PILOTS, n)), rng.lognormal(7.5, 0.8, (PILOTS, n))
    k1, k2 = rng.binomial(n, 0.6, PILOTS), rng.binomial(n, 0.6, PILOTS)
    false = 0
    for i in range(PILOTS):
        p_dur = stats.mann_whitney(x[i], y[i])
        p_prop = stats.newcombe_p(int(k1[i]), n, int(k2[i]), n)
        assert p_dur is not None
        assert p_prop is not None
        false += any(p < stats.ALPHA for p in stats.holm([p_dur, p_prop]))
    assert false / PILOTS <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / PILOTS)
