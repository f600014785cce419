"""The new comparison methods against brute force, scipy and hand-computed values."""

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


def test_hodges_lehmann_is_the_median_of_pairwise_differences(groups: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = groups
    diffs = np.sort((y[:, None] - x[None, :]).ravel())
    result = stats.hodges_lehmann(x, y)
    assert result is not None
    shift, lo, hi = result
    assert shift == pytest.approx(float(np.median(diffs)))
    m, n = x.size, y.size
    c = math.floor(m * n / 2 - stats.Z95 * math.sqrt(m * n * (m + n + 1) / 12))
    assert lo == pytest.approx(diffs[c - 1])
    assert hi == pytest.approx(diffs[m * n - c])


def test_hodges_lehmann_interval_matches_the_mann_whitney_verdict(groups: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = groups
    for delta in np.linspace(-40, 40, 81):
        result = stats.hodges_lehmann(x, y + delta)
        assert result is not None
        _, lo, hi = result
        p = sst.mannwhitneyu(y + delta, x, method="asymptotic", use_continuity=False).pvalue
        if abs(p - 0.05) > 0.005:  # order statistics are discrete: only clear-cut cases must agree
            assert (lo > 0 or hi < 0) == (p < 0.05)


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


def test_holm_against_a_hand_list() -> None:
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
