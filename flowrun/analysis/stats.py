"""The statistics a pilot comparison needs: summaries, and for each kind of KPI one test with the interval
that inverts it, so that a verdict and its interval never disagree (docs/pilots.md, "The statistics").

* Durations, counts and scores: the Hodges-Lehmann shift, with the shifts Mann-Whitney does not
  reject as its interval (:class:`MannWhitney`: exact given the ties on small pilots, else normal).
* Proportions: Newcombe's hybrid score interval and the level at which it touches 0 (:func:`newcombe_p`).
* NPS: the difference of two NPS as a trinomial contrast, with its Wald interval and z-test (:func:`nps_test`).
* Holm's step-down adjustment (:func:`holm`), effect sizes (rank-biserial, Cohen's h).

Nothing is resampled; numpy and the standard library only (no scipy import at run time).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
Statistic = Literal["median", "mean", "nps"]

#: Fewer cases than this in a group are too few to judge a difference by.
MIN_GROUP = 10
#: Significance level of every test.
ALPHA = 0.05
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


def _clean(values: Array) -> Array:
    return np.asarray(values[~np.isnan(values)], dtype=np.float64)


def _count_at_most(xs: Array, ys: Array, d: float) -> int:
    """How many pairwise differences y - x are <= d, with ``xs`` sorted, without materialising them."""
    # y - x <= d  <=>  x >= y - d; for each y, the x at or above y - d are the tail of xs.
    return int(xs.size * ys.size - _first_within(xs, ys, d, strict=False).sum())


def _first_within(xs: Array, ys: Array, d: float, strict: bool) -> Any:
    """For each y, the first index i such that every x from xs[i] on has y - x <= d (< d if ``strict``).

    ``searchsorted`` on y - d finds it up to rounding (y - (y - x) need not be x in floating
    point); the loop moves each index by the differences as computed, so counts agree exactly
    with the differences :func:`_kth_difference` lists, also at a difference's own value.
    """
    idx = np.searchsorted(xs, ys - d, side="right" if strict else "left")
    m = xs.size

    def within(i: Any) -> Any:
        diff = ys - xs[np.minimum(i, m - 1)]
        return diff < d if strict else diff <= d

    for _ in range(64):
        down = (idx > 0) & within(idx - 1)  # the one before also qualifies
        up = (idx < m) & ~within(idx)  # this one does not
        if not (down.any() or up.any()):
            break
        idx = idx - down + up
    return idx


def _kth_difference(xs: Array, ys: Array, k: int) -> float:
    """The k-th smallest (1-based) pairwise difference y - x (``xs``, ``ys`` sorted), without materialising them all.

    Keeps a bracket (lo, hi] with #(<= lo) < k <= #(<= hi), narrowed by interpolating the count
    (every other step by halving, so it always converges), until at most a few differences per
    value lie inside; those are then listed and the right one picked with ``np.partition``.
    About a dozen O(n log n) counts, where plain bisection on the value needs some fifty.
    """
    # one unit outside the extremes, so rounding in y - d cannot drop the extreme pairs from the counts
    lo, hi = float(ys[0] - xs[-1]) - 1.0, float(ys[-1] - xs[0]) + 1.0
    c_lo, c_hi = 0, xs.size * ys.size
    enough = 4 * (xs.size + ys.size) + 1000
    for step in range(200):
        if c_hi - c_lo <= enough:
            break
        if step % 2 == 0:
            mid = lo + (hi - lo) * (k - c_lo) / (c_hi - c_lo)
        else:
            mid = (lo + hi) / 2
        if not lo < mid < hi:
            mid = (lo + hi) / 2
            if not lo < mid < hi:
                break
        c = _count_at_most(xs, ys, mid)
        if c >= k:
            hi, c_hi = mid, c
        else:
            lo, c_lo = mid, c
    # the differences in (lo, hi]: for each y, the x with y - hi <= x < y - lo
    starts = _first_within(xs, ys, hi, strict=False)
    ends = _first_within(xs, ys, lo, strict=False)
    lens = ends - starts
    rows = np.repeat(np.arange(ys.size), lens)
    cols = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(starts, lens)
    inside = ys[rows] - xs[cols]
    rank = min(max(k - c_lo, 1), inside.size)
    return float(np.partition(inside, rank - 1)[rank - 1])


#: Up to this many values in both groups together, Mann-Whitney's p comes from its exact permutation distribution.
EXACT_MW_LIMIT = 60
#: Up to this many pairs of distinct values, their differences are sorted in memory (16 bytes each).
PAIRS_IN_MEMORY = 250_000
#: Continuity correction of the normal approximation, in pairs (scipy's default).
CONTINUITY = 0.5


@dataclass(frozen=True)
class Shift:
    """A shift KPI compared: the Hodges-Lehmann shift, its interval, the matching test and effect size.

    Attributes:
        shift: median of all pairwise differences variant - baseline.
        ci: the interval at the level asked for; None when the groups are too small to bound it.
        p: two-sided Mann-Whitney p-value; ``p < 1 - level`` exactly when ``ci`` excludes 0.
        exact: whether ``p`` is from the exact permutation distribution (else the normal one).
        rank_biserial: (#(variant > baseline) - #(variant < baseline)) / pairs, in [-1, 1].
    """

    shift: float
    ci: tuple[float, float] | None
    p: float
    exact: bool
    rank_biserial: float


def z_for(level: float) -> float:
    """The two-sided standard-normal critical value of a confidence level (0.95 -> 1.96)."""
    return NormalDist().inv_cdf(0.5 + level / 2)


class MannWhitney:
    """Mann-Whitney's U of ``variant`` shifted by any amount against ``baseline``, and its null distribution.

    ``U(d) = #(y - x > d) + #(y - x = d) / 2`` over all pairs. The null distribution is the one of
    the observed data (shift 0): exact under permutation, given the ties, for up to
    :data:`EXACT_MW_LIMIT` values, else normal with the tie-corrected variance and a continuity
    correction of half a pair (then ``p`` equals scipy's ``mannwhitneyu(method="asymptotic")``).
    A shift d is accepted at a level when ``|U(d) - mn/2| <= h(level)``; the interval is the set of
    accepted shifts, so at shift 0 it excludes 0 exactly when ``p < 1 - level``.
    """

    def __init__(self, baseline: Array, variant: Array) -> None:
        self.xs, self.ys = np.sort(_clean(baseline)), np.sort(_clean(variant))
        self.m, self.n = self.xs.size, self.ys.size
        self.total = self.m * self.n
        self.exact = 0 < self.m + self.n <= EXACT_MW_LIMIT
        self.sigma = _u_sigma(self.xs, self.ys) if self.total else 0.0
        self._dist = _exact_distances(self.xs, self.ys) if self.exact and self.total else None
        # Few distinct values (small groups, or counts and scores with many ties): the differences of
        # distinct values, sorted, with how many pairs each stands for, make every count one search.
        xv, xc = np.unique(self.xs, return_counts=True)
        yv, yc = np.unique(self.ys, return_counts=True)
        self._diffs: Array | None = None
        self._cum = np.zeros(0, dtype=np.int64)
        if 0 < xv.size * yv.size <= PAIRS_IN_MEMORY:
            diffs = (yv[:, None] - xv[None, :]).ravel()
            order = np.argsort(diffs, kind="stable")
            self._diffs = diffs[order]
            self._cum = np.cumsum((yc[:, None] * xc[None, :]).ravel()[order])

    def at_most(self, d: float) -> int:
        """#(y - x <= d)."""
        if self._diffs is not None:
            i = int(np.searchsorted(self._diffs, d, side="right"))
            return int(self._cum[i - 1]) if i else 0
        return _count_at_most(self.xs, self.ys, d)

    def below(self, d: float) -> int:
        """#(y - x < d)."""
        if self._diffs is not None:
            i = int(np.searchsorted(self._diffs, d, side="left"))
            return int(self._cum[i - 1]) if i else 0
        return _count_below(self.xs, self.ys, d)

    def kth(self, k: int) -> float:
        """The k-th smallest (1-based) pairwise difference."""
        if self._diffs is not None:
            return float(self._diffs[int(np.searchsorted(self._cum, k, side="left"))])
        return _kth_difference(self.xs, self.ys, k)

    def u(self, d: float) -> float:
        """U of the variant shifted down by ``d``."""
        above = self.total - self.at_most(d)
        equal = self.total - above - self.below(d)
        return above + equal / 2

    def p(self) -> float:
        """Two-sided p-value at shift 0."""
        dist = abs(self.u(0.0) - self.total / 2)
        if self._dist is not None:
            values, probs = self._dist
            return float(min(1.0, probs[values >= dist - 1e-9].sum()))
        if self.sigma == 0.0:
            return 1.0
        return min(1.0, math.erfc(max(0.0, dist - CONTINUITY) / self.sigma / math.sqrt(2)))

    def half_width(self, level: float) -> float | None:
        """h: the largest |U - mn/2| accepted at ``level``; None when every U is accepted."""
        alpha = 1 - level
        if self._dist is not None:
            values, probs = self._dist
            tail = np.cumsum(probs[::-1])[::-1]  # P(D >= values[i])
            ok = values[tail >= alpha - 1e-12]
            h = float(ok.max()) if ok.size else 0.0
        else:
            h = z_for(level) * self.sigma + CONTINUITY
        return None if h >= self.total / 2 else h  # |U - mn/2| never exceeds mn/2

    def interval(self, level: float) -> tuple[float, float] | None:
        """The shifts accepted at ``level``, as a closed interval (None when unbounded or empty).

        The set is an interval because U falls as the shift grows. Its ends are pairwise
        differences; an end that is itself not accepted (U jumps over the bound there) is reported
        halfway to the next difference inside, or at 0 when 0 lies in that gap and is accepted.
        """
        h = self.half_width(level)
        if h is None or self.total == 0:
            return None
        t_hi, t_lo = self.total / 2 + h, self.total / 2 - h
        k = math.ceil(self.total - t_hi - 1e-9)  # smallest d with #(<= d) >= k has U(d+) <= t_hi
        big = self.total - math.floor(self.total - t_lo + 1e-9)  # ... #(>= d) >= big has U(d-) >= t_lo
        if k < 1 or big < 1:
            return None
        lo = self.kth(k)
        if self.u(lo) > t_hi + 1e-9:  # lo itself not accepted: the accepted set starts just above it
            nxt = self._next_above(lo)
            lo = 0.0 if lo < 0.0 < nxt else (lo + nxt) / 2
        hi = self.kth(self.total - big + 1)
        if self.u(hi) < t_lo - 1e-9:
            prev = self._next_below(hi)
            hi = 0.0 if prev < 0.0 < hi else (hi + prev) / 2
        return None if lo > hi else (lo, hi)

    def _next_above(self, d: float) -> float:
        below = self.at_most(d)
        return self.kth(below + 1) if below < self.total else d

    def _next_below(self, d: float) -> float:
        below = self.below(d)
        return self.kth(below) if below > 0 else d


def shift_test(baseline: Array, variant: Array, level: float = 0.95, mw: MannWhitney | None = None) -> Shift | None:
    """Hodges-Lehmann shift, its Mann-Whitney interval at ``level`` and the p-value of the same test.

    See :class:`MannWhitney` (pass ``mw`` when it is already built for these groups).
    Pairwise differences are counted with sorted arrays and
    ``searchsorted``, never materialised (O(n log n) per bisection step). None when a group is empty.
    """
    mw = mw or MannWhitney(baseline, variant)
    if mw.total == 0:
        return None
    total = mw.total
    shift = mw.kth(total // 2 + 1) if total % 2 else (mw.kth(total // 2) + mw.kth(total // 2 + 1)) / 2
    rb = 2 * mw.u(0.0) / total - 1
    return Shift(shift, mw.interval(level), mw.p(), mw.exact, rb)


def _count_below(xs: Array, ys: Array, d: float) -> int:
    """How many pairwise differences y - x are < d (``xs`` sorted)."""
    # y - x < d  <=>  x > y - d
    return int(xs.size * ys.size - _first_within(xs, ys, d, strict=True).sum())


def _exact_distances(xs: Array, ys: Array) -> tuple[Array, Array]:
    """The exact permutation distribution of |U - mn/2| given the ties: its values and probabilities.

    U = (sum of the variant's mid-ranks) - n(n+1)/2. Doubled mid-ranks are whole numbers, so the
    number of ways n of the N values reach each doubled rank sum is a small dynamic programme.
    """
    m, n = xs.size, ys.size
    if n > m:  # |U - mn/2| has the same distribution either way round: pick the smaller group
        xs, ys, m, n = ys, xs, n, m
    pooled = np.concatenate([xs, ys])
    _, first, counts = np.unique(np.sort(pooled), return_index=True, return_counts=True)
    mid = first + (counts + 1) / 2.0  # 1-based mid-rank of each distinct value
    doubled = np.rint(2 * mid).astype(np.int64)
    top = int(np.sum(doubled * counts))
    # ways[j, s]: ways to pick j values with doubled rank sum s (relative weights, renormalised).
    # Tied values share a rank: t of a tie of c values add t x its rank in C(c, t) ways.
    ways = np.zeros((n + 1, top + 1))
    ways[0, 0] = 1.0
    for i, (r, c) in enumerate(zip(doubled.tolist(), counts.tolist(), strict=True)):
        if c == 1:  # numpy buffers the overlapping operands, so this reads the old rows
            ways[1:, r:] += ways[:-1, : top + 1 - r]
        else:
            new = ways.copy()
            for t in range(1, min(c, n) + 1):
                new[t:, t * r :] += math.comb(c, t) * ways[: n + 1 - t, : top + 1 - t * r]
            ways = new
        if i % 16 == 15 or c > 1:
            ways /= max(1.0, float(ways.max()))
    probs = ways[n] / ways[n].sum()
    sums = np.nonzero(probs)[0]
    u = sums / 2.0 - n * (n + 1) / 2
    dist = np.abs(u - m * n / 2)
    values, inverse = np.unique(np.round(dist, 6), return_inverse=True)
    return np.asarray(values, dtype=np.float64), np.asarray(np.bincount(inverse, weights=probs[sums]), dtype=np.float64)


def sorted_clean(values: Array) -> Array:
    """The values without NaN, sorted."""
    return np.sort(_clean(values))


def _u_sigma(xs: Array, ys: Array) -> float:
    """Standard deviation of Mann-Whitney's U under the null, corrected for ties."""
    m, n = xs.size, ys.size
    big = m + n
    _, counts = np.unique(np.concatenate([xs, ys]), return_counts=True)
    ties = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    var = m * n / 12.0 * ((big + 1) - ties / (big * (big - 1))) if big > 1 else 0.0
    return math.sqrt(max(var, 0.0))


@dataclass(frozen=True)
class NpsDiff:
    """The difference of two NPS, in points: the estimate, its interval and the matching Wald test."""

    diff: float
    ci: tuple[float, float]
    p: float


def nps_test(baseline: Array, variant: Array, level: float = 0.95) -> NpsDiff | None:
    """Difference of NPS (variant - baseline) as a difference of trinomial proportions.

    NPS = 100 (P - D) / n is a linear contrast of a multinomial, with variance
    100^2 (p + d - (p - d)^2) / n. Like Agresti and Caffo's interval for two proportions, each
    group gets :data:`NPS_PSEUDO` extra answers of each kind (promoter, passive, detractor) for the
    centre and the variance, which keeps the coverage near 95 % from 11 answers a group on (checked
    by simulation in tests/test_stats_simulation.py) and the variance above 0 when every answer is
    the same. The test is the same statistic, ``z = centre / se``:
    ``p < 1 - level`` exactly when the interval excludes 0. None when a group has no answers.
    """
    x, y = _clean(baseline), _clean(variant)
    if x.size == 0 or y.size == 0:
        return None
    (c1, v1), (c2, v2) = _nps_moments(x), _nps_moments(y)
    centre = c2 - c1
    se = math.sqrt(v1 + v2)
    z = z_for(level)
    p = math.erfc(abs(centre) / se / math.sqrt(2))
    raw = float(nps(y) or 0.0) - float(nps(x) or 0.0)
    return NpsDiff(raw, (centre - z * se, centre + z * se), min(1.0, p))


#: Pseudo-answers of each kind (promoter, passive, detractor) added to a group for the NPS interval.
NPS_PSEUDO = 0.5


def _nps_moments(x: Array) -> tuple[float, float]:
    n = x.size + 3 * NPS_PSEUDO
    pro = (np.count_nonzero(x >= 9) + NPS_PSEUDO) / n
    det = (np.count_nonzero(x <= 6) + NPS_PSEUDO) / n
    return 100.0 * (pro - det), 100.0**2 * (pro + det - (pro - det) ** 2) / n


def cohens_h(p1: float, p2: float) -> float:
    """Cohen's h for two proportions: 2 asin(sqrt p2) - 2 asin(sqrt p1)."""
    return 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1))


def inverted_p(interval_at: Callable[[float], tuple[float, float] | None]) -> float:
    """The level at which an interval family just touches 0: ``p < 1 - level`` iff it excludes 0 there.

    ``interval_at(z)`` gives the interval at critical value z; bisection on z.
    """
    lo, hi = 0.0, 40.0
    for _ in range(100):
        mid = (lo + hi) / 2
        ci = interval_at(mid)
        if ci is not None and (ci[0] > 0 or ci[1] < 0):
            lo = mid
        else:
            hi = mid
    return math.erfc(hi / math.sqrt(2))


def newcombe_p(k1: int, n1: int, k2: int, n2: int) -> float | None:
    """Two-sided p-value consistent with :func:`newcombe`: the level at which its interval touches 0.

    The interval at level 1 - p excludes 0 exactly when p < the returned value's level, so the
    verdict from this p and the reported Newcombe interval never disagree. Found by bisection on z.
    """
    if n1 == 0 or n2 == 0:
        return None
    if k1 * n2 == k2 * n1:
        return 1.0
    return inverted_p(lambda z: newcombe(k1, n1, k2, n2, z))


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (family-wise error at any level)."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted = [0.0] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted
