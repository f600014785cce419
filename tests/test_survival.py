"""Running cases at the cut-off: Kaplan-Meier and log-rank against scipy, and compare's censored verdicts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sst

from flowrun.analysis import Kpi, compare, measure, survival


def _data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a, b = np.round(rng.exponential(10, 25)), np.round(rng.exponential(6, 22))  # rounded: tied times
    return a, rng.random(25) < 0.7, b, rng.random(22) < 0.8


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kaplan_meier_is_scipys_ecdf_of_right_censored_data(seed: int) -> None:
    a, ea, _, _ = _data(seed)
    km = survival.kaplan_meier(a, ea)
    ref = sst.ecdf(sst.CensoredData.right_censored(a, ~ea))
    assert km.survival == pytest.approx(ref.sf.evaluate(km.times))
    below = km.times[ref.sf.evaluate(km.times) <= 0.5]
    assert km.median == (float(below[0]) if below.size else None)
    assert (km.n, km.censored) == (25, int((~ea).sum()))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_logrank_is_scipys(seed: int) -> None:
    a, ea, b, eb = _data(seed)
    ours = survival.logrank(a, ea, b, eb)
    ref = sst.logrank(sst.CensoredData.right_censored(b, ~eb), sst.CensoredData.right_censored(a, ~ea))
    assert ours is not None
    assert ours.z == pytest.approx(ref.statistic)
    assert ours.p == pytest.approx(ref.pvalue)


def test_the_hazard_ratio_interval_excludes_1_exactly_when_logrank_rejects() -> None:
    rng = np.random.default_rng(9)
    for _ in range(300):
        a, b = rng.exponential(10, 30), rng.exponential(rng.uniform(4, 12), 30)
        ea, eb = rng.random(30) < 0.8, rng.random(30) < 0.8
        test = survival.logrank(a, ea, b, eb)
        assert test is not None
        for level in (0.95, 0.99):
            ci = test.interval(level)
            assert ci is not None
            assert (ci[0] > 1 or ci[1] < 1) == (test.p < 1 - level)


def test_compare_censors_running_cases_instead_of_dropping_them() -> None:
    """12 + 12 cases, 3 of the slow baseline's still running at the cut-off: cycle time is the
    log-rank test of all 24 (scipy's p), and the KM medians; steps-like KPIs ignore running cases."""
    rng = np.random.default_rng(4)
    cutoff = 1_000_000.0
    rows = []
    for i in range(24):
        base = i < 12
        start = cutoff - 50_000 + i
        life = float(np.round(rng.exponential(20_000 if base else 8_000)))
        running = base and i < 3
        rows.append(
            (
                f"c{i:02d}",
                "baseline" if base else "new",
                None,
                "running" if running else "completed",
                start,
                None if running else start + life,
            )
        )
    cases = measure(rows, [], cutoff=cutoff)
    mask = np.array([v == "baseline" for v in cases.variants])
    result = compare(cases, ("baseline", mask), ("new", ~mask), [Kpi("cycle_time", "s", "duration", "cycle_time")])
    cycle = result.kpis[0]
    time, event = cases.observed["cycle_time"]
    ref = sst.logrank(
        sst.CensoredData.right_censored(time[~mask], ~event[~mask]),
        sst.CensoredData.right_censored(time[mask], ~event[mask]),
    )
    assert cycle.censored == (3, 0)
    assert cycle.p_value == pytest.approx(ref.pvalue)
    assert (cycle.baseline.n, cycle.variant.n) == (12, 12)
    km = sst.ecdf(sst.CensoredData.right_censored(time[mask], ~event[mask]))
    assert cycle.baseline.median == pytest.approx(float(km.sf.quantiles[np.argmax(km.sf.probabilities <= 0.5)]))
    assert any("censored" in w for w in result.warnings)
