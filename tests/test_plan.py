"""Pilot planning: the sample sizes give the power they promise in simulation; `flowrun plan`."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from flowrun.analysis.power import cases_needed, detectable_change, nps_after, superiority

SIMS = 2000
Z = stats.norm.ppf(0.975)


def _mw_rejects(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Two-sided normal-approximation Mann-Whitney test with tie correction, one row per pilot."""
    n1, n2 = x.shape[1], y.shape[1]
    both = np.concatenate([x, y], axis=1)
    ranks = stats.rankdata(both, axis=1)
    u = ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2
    n = n1 + n2
    # Ties differ from one pilot to the next: correct each row's variance by its own tie counts.
    ties = np.array([np.sum((c := np.unique(row, return_counts=True)[1]) ** 3 - c) for row in both])
    var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    return np.asarray(np.abs(u - n1 * n2 / 2) / np.sqrt(var) > Z)


@pytest.fixture(scope="module")
def durations() -> np.ndarray:
    # A right-skewed baseline with ties (minutes rounded), like recorded cycle times.
    return np.round(np.random.default_rng(7).lognormal(4, 0.7, 60))


def test_superiority_matches_scipy_mann_whitney_u(durations: np.ndarray) -> None:
    changed = durations * 0.8
    u = stats.mannwhitneyu(durations, changed).statistic  # counts pairs baseline > changed
    assert superiority(durations, changed) == pytest.approx(1 - u / durations.size**2)


def test_duration_sample_size_gives_eighty_percent_power(durations: np.ndarray) -> None:
    n = cases_needed(durations, -0.2, "duration")
    assert n is not None
    assert 20 < n < 400
    rng = np.random.default_rng(1)
    base = rng.choice(durations, size=(SIMS, n))
    var = rng.choice(durations, size=(SIMS, n)) * 0.8
    power = _mw_rejects(base, var).mean()
    assert 0.75 <= power <= 0.85


def test_proportion_sample_size_gives_eighty_percent_power() -> None:
    shares = (np.arange(50) < 30).astype(float)  # 60 % first-contact resolution
    n = cases_needed(shares, 10, "proportion")
    assert n is not None
    rng = np.random.default_rng(2)
    x, y = rng.binomial(n, 0.6, SIMS) / n, rng.binomial(n, 0.7, SIMS) / n
    pooled = (x + y) / 2
    z = (y - x) / np.sqrt(pooled * (1 - pooled) * 2 / n)
    assert 0.75 <= (np.abs(z) > Z).mean() <= 0.85


def test_nps_sample_size_gives_eighty_percent_power() -> None:
    answers = np.repeat([3.0, 7.0, 9.0], [30, 40, 30])  # NPS 0
    pro, pas, det = nps_after(answers, 10)
    assert (pro, pas, det) == pytest.approx((0.3, 0.5, 0.2))  # detractors -> passives first
    n = cases_needed(answers, 10, "nps")
    assert n is not None
    rng = np.random.default_rng(3)
    a = rng.multinomial(n, [0.3, 0.4, 0.3], SIMS) / n
    b = rng.multinomial(n, [pro, pas, det], SIMS) / n
    d_a, d_b = a[:, 0] - a[:, 2], b[:, 0] - b[:, 2]
    se = np.sqrt((a[:, 0] + a[:, 2] - d_a**2 + b[:, 0] + b[:, 2] - d_b**2) / n)
    assert 0.75 <= (np.abs(d_b - d_a) / se > Z).mean() <= 0.85


def test_detectable_change_inverts_cases_needed(durations: np.ndarray) -> None:
    change = detectable_change(durations, 50, "duration")
    assert change is not None
    assert -0.99 < change < 0
    assert cases_needed(durations, change, "duration") <= 50  # type: ignore[operator]
    assert cases_needed(durations, change * 0.9, "duration") > 50  # type: ignore[operator]
    assert math.isclose(detectable_change(np.repeat([0.0, 1.0], 25), 10**6, "proportion") or 0, 0, abs_tol=0.5)


def test_nonsense_changes_are_refused(durations: np.ndarray) -> None:
    with pytest.raises(ValueError, match="-100%"):
        cases_needed(durations, -1.5, "duration")
    with pytest.raises(ValueError, match="outside"):
        cases_needed(np.ones(20), 10, "proportion")
