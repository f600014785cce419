"""The statistics a pilot comparison needs: summaries, intervals for a difference, and tests.

* Durations, counts and scores: the median is the headline. The 95 % interval of the
  difference in medians is a percentile bootstrap; the test is Mann-Whitney U (two-sided).
* Rates (first-contact resolution): the proportion is the headline. The interval of the
  difference is Newcombe's hybrid score interval built from two Wilson intervals; the test is
  the pooled two-proportion z-test (two-sided), the same as a chi-squared test without
  continuity correction.
* NPS: 100 x (promoters 9-10 minus detractors 0-6) / responses, in points. Bootstrap interval
  of the difference, Mann-Whitney U on the raw 0-10 answers.

Every bootstrap is seeded, so the same data give the same interval. Small samples are
resampled directly (``resamples`` x n draws). Above :data:`EXACT_LIMIT` draws the bootstrap
distribution of the median is sampled from its closed form instead, which costs O(n) rather than
O(resamples x n): the k-th smallest value of a resample is at most the j-th smallest value of the
sample exactly when at least k of the n draws fall at or below it, a binomial event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
Statistic = Literal["median", "mean", "nps"]

#: Fewer cases than this in a group are too few to judge a difference by.
MIN_GROUP = 10
#: Significance level of every test.
ALPHA = 0.05
#: Resamples of a bootstrap, unless asked otherwise.
RESAMPLES = 2000
#: Up to this many draws (resamples x n), a bootstrap resamples the data directly.
EXACT_LIMIT = 2_000_000
#: The 97.5th percentile of the standard normal distribution.
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Summary:
    """A group's values of one measure: how many, median, 90th percentile and mean (None when empty)."""

    n: int
    median: float | None
    p90: float | None
    mean: float | None


def summarize(values: Array) -> Summary:
    """The summary of ``values`` (NaN values are left out)."""
    x = values[~np.isnan(values)]
    if x.size == 0:
        return Summary(0, None, None, None)
    return Summary(int(x.size), float(np.median(x)), float(np.percentile(x, 90)), float(np.mean(x)))


def nps(scores: Array) -> float | None:
    """Net Promoter Score of 0-10 answers: % promoters (9-10) minus % detractors (0-6), in points."""
    x = scores[~np.isnan(scores)]
    if x.size == 0:
        return None
    return float(100.0 * (np.count_nonzero(x >= 9) - np.count_nonzero(x <= 6)) / x.size)


def statistic(values: Array, kind: Statistic) -> float | None:
    """The headline value of a group: its median, mean or NPS."""
    x = values[~np.isnan(values)]
    if x.size == 0:
        return None
    if kind == "nps":
        return nps(x)
    return float(np.median(x) if kind == "median" else np.mean(x))


def mann_whitney(baseline: Array, variant: Array) -> float | None:
    """Two-sided p-value of the Mann-Whitney U test (scipy's exact or tie-corrected normal method)."""
    from scipy import stats

    x, y = _clean(baseline), _clean(variant)
    if x.size == 0 or y.size == 0:
        return None
    return float(stats.mannwhitneyu(y, x, alternative="two-sided").pvalue)


def two_proportions(k1: int, n1: int, k2: int, n2: int) -> float | None:
    """Two-sided p-value of the pooled z-test that k1/n1 and k2/n2 come from one proportion."""
    from scipy import stats

    if n1 == 0 or n2 == 0:
        return None
    pooled = (k1 + k2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return 1.0  # every case in both groups has the same outcome: no evidence of a difference
    z = (k2 / n2 - k1 / n1) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(2 * stats.norm.sf(abs(z)))


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (without continuity correction)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float] | None:
    """Newcombe's hybrid score interval for p2 - p1 (method 10 of Newcombe 1998), from Wilson intervals."""
    if n1 == 0 or n2 == 0:
        return None
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    d = p2 - p1
    return (d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2), d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2))


def bootstrap_diff(
    baseline: Array,
    variant: Array,
    kind: Statistic,
    rng: np.random.Generator,
    resamples: int = RESAMPLES,
) -> tuple[float, float] | None:
    """95 % percentile-bootstrap interval of statistic(variant) - statistic(baseline).

    The two groups are resampled independently, each from its own values.
    """
    x, y = _clean(baseline), _clean(variant)
    if x.size == 0 or y.size == 0:
        return None
    diffs = _replicates(y, kind, rng, resamples) - _replicates(x, kind, rng, resamples)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return (float(lo), float(hi))


def _replicates(x: Array, kind: Statistic, rng: np.random.Generator, resamples: int) -> Array:
    """The statistic of ``resamples`` bootstrap resamples of ``x``."""
    n = x.size
    if kind == "nps":
        counts = rng.multinomial(n, [np.mean(x <= 6), np.mean((x > 6) & (x < 9)), np.mean(x >= 9)], size=resamples)
        return np.asarray(100.0 * (counts[:, 2] - counts[:, 0]) / n, dtype=np.float64)
    if kind == "median" and n * resamples > EXACT_LIMIT:
        return _median_replicates(np.sort(x), rng, resamples)
    out = np.empty(resamples)
    step = max(1, EXACT_LIMIT // n)
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        sample = x[rng.integers(0, n, size=(stop - start, n))]
        out[start:stop] = np.median(sample, axis=1) if kind == "median" else sample.mean(axis=1)
    return out


def _median_replicates(ordered: Array, rng: np.random.Generator, resamples: int) -> Array:
    """Bootstrap medians drawn from their exact distribution over the sorted sample.

    P(k-th smallest of a resample <= ordered[j-1]) = P(Binomial(n, j/n) >= k). For an odd n the
    median is the ((n+1)/2)-th smallest and this is exact; for an even n the two middle order
    statistics are drawn with one uniform number (so the lower never exceeds the upper), which
    keeps each one's distribution exact and their gap approximately right.
    """
    from scipy import stats

    n = ordered.size
    u = rng.random(resamples)
    # Outside k +- 12 sqrt(n) the binomial probability is 0 or 1 to double precision: skip it.
    reach = int(12 * math.sqrt(n)) + 1

    def kth(k: int) -> Array:
        lo, hi = max(1, k - reach), min(n, k + reach)
        cdf = stats.binom.sf(k - 1, n, np.arange(lo, hi + 1) / n)
        cdf[-1] = 1.0
        return ordered[np.searchsorted(cdf, u, side="left") + lo - 1]

    if n % 2:
        return kth((n + 1) // 2)
    return np.asarray((kth(n // 2) + kth(n // 2 + 1)) / 2.0, dtype=np.float64)


def _clean(values: Array) -> Array:
    return np.asarray(values[~np.isnan(values)], dtype=np.float64)


def _count_at_most(xs: Array, ys: Array, d: float) -> int:
    """How many pairwise differences y - x are <= d, with ``xs`` sorted, without materialising them."""
    # y - x <= d  <=>  x >= y - d; for each y, the x at or above y - d are the tail of xs.
    return int(xs.size * ys.size - np.searchsorted(xs, ys - d, side="left").sum())


def _kth_difference(xs: Array, ys: Array, k: int) -> float:
    """The k-th smallest (1-based) pairwise difference y - x, by bisection on its value."""
    lo, hi = float(ys[0] - xs[-1]), float(ys[-1] - xs[0])
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        if _count_at_most(xs, ys, mid) >= k:
            hi = mid
        else:
            lo = mid
    d = hi if _count_at_most(xs, ys, lo) < k else lo
    # snap to the actual difference: the largest y - x <= d (bisection only brackets it)
    idx = np.searchsorted(xs, ys - d, side="left")
    ok = idx < xs.size
    return float(np.max(ys[ok] - xs[idx[ok]]))


def hodges_lehmann(baseline: Array, variant: Array, z: float = Z95) -> tuple[float, float, float] | None:
    """Hodges-Lehmann shift of ``variant`` over ``baseline`` and its interval (normal-approximation MW).

    The shift is the median of all pairwise differences variant - baseline; the interval is
    the classic pair of order statistics of those differences obtained by inverting the
    Mann-Whitney test (Lehmann 1975), with the normal approximation for the critical count.
    Differences are counted with sorted arrays and ``searchsorted``, never materialised, so
    50,000 cases per group cost O(n log n) per bisection step. None when a group is empty.
    """
    xs, ys = np.sort(_clean(baseline)), np.sort(_clean(variant))
    m, n = xs.size, ys.size
    if m == 0 or n == 0:
        return None
    total = m * n
    if total % 2:
        shift = _kth_difference(xs, ys, total // 2 + 1)
    else:
        shift = (_kth_difference(xs, ys, total // 2) + _kth_difference(xs, ys, total // 2 + 1)) / 2
    c = math.floor(total / 2 - z * math.sqrt(total * (m + n + 1) / 12))
    c = max(c, 1)
    return (shift, _kth_difference(xs, ys, c), _kth_difference(xs, ys, total - c + 1))


def newcombe_p(k1: int, n1: int, k2: int, n2: int) -> float | None:
    """Two-sided p-value consistent with :func:`newcombe`: the level at which its interval touches 0.

    The interval at level 1 - p excludes 0 exactly when p < the returned value's level, so the
    verdict from this p and the reported Newcombe interval never disagree. Found by bisection on z.
    """
    if n1 == 0 or n2 == 0:
        return None
    if k1 * n2 == k2 * n1:
        return 1.0
    lo, hi = 0.0, 40.0
    for _ in range(100):
        mid = (lo + hi) / 2
        ci = newcombe(k1, n1, k2, n2, mid)
        if ci is not None and (ci[0] > 0 or ci[1] < 0):  # interval at this z still excludes 0: the touching z is larger
            lo = mid
        else:
            hi = mid
    return math.erfc(hi / math.sqrt(2))


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (family-wise error at any level)."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted = [0.0] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted
