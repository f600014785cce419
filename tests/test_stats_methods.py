"""The comparison methods against brute force, scipy and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sst

from flowrun.analysis import stats


@pytest.fixture(scope="module")
def groups() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    return rng.lognormal(3.0, 0.6, 37), rng.lognormal(3.3, 0.6, 42)


def _tie_sigma(x: np.ndarray, y: np.ndarray) -> float:
    """Tie-corrected sd of U from the textbook formula, on ranks computed by scipy."""
    m, n = x.size, y.size
    big = m + n
    _, t = np.unique(np.concatenate([x, y]), return_counts=True)
    return math.sqrt(m * n / 12 * ((big + 1) - float(np.sum(t**3 - t)) / (big * (big - 1))))


def test_shift_is_the_median_of_pairwise_differences_and_its_interval_the_order_statistics(
    groups: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = groups
    diffs = np.sort((y[:, None] - x[None, :]).ravel())
    result = stats.shift_test(x, y)
    assert result is not None
    assert result.shift == pytest.approx(float(np.median(diffs)))
    # no ties, normal null: the accepted shifts run from the order statistics of Lehmann (1975), give
    # or take the continuity correction: every difference strictly inside is accepted, none outside
    assert result.ci is not None
    lo, hi = result.ci
    m, n = x.size, y.size
    c = math.floor(m * n / 2 - sst.norm.isf(0.025) * _tie_sigma(x, y) - 0.5)
    assert diffs[c - 2] <= lo <= diffs[c]
    assert diffs[m * n - c - 1] <= hi <= diffs[m * n - c + 1]
    for d in np.linspace(lo - 5, hi + 5, 41):
        p = sst.mannwhitneyu(y - d, x, method="asymptotic").pvalue
        if abs(p - 0.05) > 0.002:
            assert (lo <= d <= hi) == (p >= 0.05), d
    # rank-biserial = 2 U / mn - 1, with scipy's U of the variant
    u = sst.mannwhitneyu(y, x).statistic
    assert result.rank_biserial == pytest.approx(2 * u / (m * n) - 1)


def test_large_groups_get_scipys_asymptotic_mann_whitney_p(groups: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = groups  # 37 + 42 values: above the exact limit
    for delta in (-20.0, -5.0, 0.0, 3.0, 10.0):
        ours = stats.shift_test(x, y + delta)
        assert ours is not None
        assert not ours.exact
        assert ours.p == pytest.approx(sst.mannwhitneyu(y + delta, x, method="asymptotic").pvalue, rel=1e-9)
    rng = np.random.default_rng(4)
    a, b = rng.integers(1, 6, 80).astype(float), rng.integers(1, 6, 90).astype(float)  # ties: corrected variance
    tied = stats.shift_test(a, b)
    assert tied is not None
    assert tied.p == pytest.approx(sst.mannwhitneyu(b, a, method="asymptotic").pvalue, rel=1e-9)


def test_small_groups_get_the_exact_p() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=12), rng.normal(size=15) + 0.5
    ours = stats.shift_test(x, y)
    assert ours is not None
    assert ours.exact
    assert ours.p == pytest.approx(sst.mannwhitneyu(y, x, method="exact").pvalue, rel=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_verdict_and_interval_agree_at_every_level_even_with_heavy_ties(seed: int) -> None:
    """1-5 scores and small counts: whatever the data, p < 1 - level exactly when the interval excludes 0."""
    rng = np.random.default_rng(seed)
    for _ in range(60):
        n1, n2 = rng.integers(10, 40, 2)
        x = rng.integers(1, 6, n1).astype(float)
        y = np.clip(rng.integers(1, 6, n2) + rng.integers(0, 2), 1, 5).astype(float)
        result = stats.shift_test(x, y)
        assert result is not None
        mw = stats.MannWhitney(x, y)
        for level in (0.95, 0.99, 0.9875):
            ci = mw.interval(level)
            excludes = ci is not None and (ci[0] > 0 or ci[1] < 0)
            assert excludes == (result.p < 1 - level), (x, y, level, ci, result.p)


def test_heavy_ties_get_the_permutation_p() -> None:
    """Tie-heavy 1-5 scores: the p-value is the exact permutation p of Mann-Whitney's U given the ties
    (checked against scipy's permutation_test with 20,000 random relabellings, within Monte Carlo error)."""
    rng = np.random.default_rng(5)
    x = rng.choice([1, 2, 3, 4, 5], 14, p=[0.1, 0.2, 0.4, 0.2, 0.1]).astype(float)
    y = rng.choice([1, 2, 3, 4, 5], 13, p=[0.05, 0.1, 0.3, 0.35, 0.2]).astype(float)

    def u(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.asarray(sst.mannwhitneyu(b, a, axis=axis).statistic)

    perm = sst.permutation_test((x, y), u, n_resamples=20_000, random_state=1, vectorized=True)
    ours = stats.shift_test(x, y)
    assert ours is not None
    assert ours.exact
    assert abs(ours.p - perm.pvalue) <= 4 * math.sqrt(perm.pvalue * (1 - perm.pvalue) / 20_000)


def test_nps_difference_is_a_trinomial_contrast_with_a_consistent_test() -> None:
    x = np.array([10, 9, 9, 8, 7, 6, 3, 10, 5, 9, 0, 8], dtype=float)
    y = np.array([10, 10, 9, 9, 9, 8, 8, 7, 10, 6, 9, 10, 9], dtype=float)
    result = stats.nps_test(x, y)
    assert result is not None
    # raw NPS: x: 5 promoters, 4 detractors of 12; y: 9 promoters, 1 detractor of 13
    assert result.diff == pytest.approx(100 * (8 / 13) - 100 * (1 / 12))
    # centre and variance with half an extra answer of each kind per group, by hand
    p1, d1, p2, d2 = 5.5 / 13.5, 4.5 / 13.5, 9.5 / 14.5, 1.5 / 14.5
    se = 100 * math.sqrt((p1 + d1 - (p1 - d1) ** 2) / 13.5 + (p2 + d2 - (p2 - d2) ** 2) / 14.5)
    centre = 100 * ((p2 - d2) - (p1 - d1))
    assert result.ci == pytest.approx((centre - 1.959963984540054 * se, centre + 1.959963984540054 * se))
    assert result.p == pytest.approx(2 * sst.norm.sf(abs(centre) / se))
    for level in (0.9, 0.95, 0.99):
        at = stats.nps_test(x, y, level)
        assert at is not None
        assert (at.ci[0] > 0 or at.ci[1] < 0) == (result.p < 1 - level)


@pytest.mark.parametrize(("k1", "n1", "k2", "n2"), [(5, 56, 0, 29), (9, 10, 3, 10), (56, 70, 48, 80), (10, 10, 0, 20)])
def test_newcombe_p_is_the_level_where_its_interval_touches_zero(k1: int, n1: int, k2: int, n2: int) -> None:
    p = stats.newcombe_p(k1, n1, k2, n2)
    assert p is not None
    assert 0 < p < 1
    z = sst.norm.isf(p / 2)
    tight = stats.newcombe(k1, n1, k2, n2, z * 0.999)
    loose = stats.newcombe(k1, n1, k2, n2, z * 1.001)
    assert tight is not None
    assert loose is not None
    assert tight[0] > 0 or tight[1] < 0
    assert loose[0] <= 0 <= loose[1]


def test_newcombe_matches_newcombe_1998_table() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, table II, example (a): 56/70 - 48/80, method 10.
    ci = stats.newcombe(48, 80, 56, 70)
    assert ci is not None
    assert ci[0] == pytest.approx(0.0524, abs=1e-4)
    assert ci[1] == pytest.approx(0.3339, abs=1e-4)


def test_cohens_h_by_hand() -> None:
    assert stats.cohens_h(0.5, 0.7) == pytest.approx(2 * math.asin(math.sqrt(0.7)) - 2 * math.asin(math.sqrt(0.5)))
    assert stats.cohens_h(0.3, 0.3) == 0


def test_holm_against_a_hand_list() -> None:
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_large_groups_select_the_exact_pairwise_differences() -> None:
    """Above the in-memory limit (here 600 x 650 continuous values) the k-th difference found by
    counting is still exactly the k-th of all pairwise differences, at the extremes too."""
    rng = np.random.default_rng(8)
    x, y = np.sort(rng.lognormal(5, 1, 600)), np.sort(rng.lognormal(5.1, 1, 650))
    mw = stats.MannWhitney(x, y)
    diffs = np.sort((y[:, None] - x[None, :]).ravel())
    assert diffs.size > stats.PAIRS_IN_MEMORY
    for k in (1, 2, diffs.size // 3, diffs.size // 2, diffs.size // 2 + 1, diffs.size - 1, diffs.size):
        assert mw.kth(k) == diffs[k - 1]
    for d in (diffs[0], diffs[diffs.size // 2], 0.0, diffs[-1]):
        assert mw.at_most(float(d)) == np.count_nonzero(diffs <= d)
        assert mw.below(float(d)) == np.count_nonzero(diffs < d)
