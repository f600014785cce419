"""Seeded simulations of many pilots: interval coverage and the family-wise false-positive rate.

The coverage checks call the functions compare's verdicts use; the false-positive check runs
``flowrun.analysis.compare`` itself on whole simulated pilots (four KPIs of every kind).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from flowrun.analysis import Kpi, compare, measure, stats
from tests.conftest import ON_POSTGRES

# Pure computation: nothing here touches a database, so the PostgreSQL run need not repeat it.
pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="no database involved: runs in the SQLite run")

PILOTS = 1000
#: Three Monte Carlo standard errors of a 95 % coverage over PILOTS pilots.
SLACK = 3 * math.sqrt(0.05 * 0.95 / PILOTS)
SCORES = np.array([1, 2, 3, 4, 5], dtype=float)
SCORE_P = [0.1, 0.2, 0.3, 0.25, 0.15]


def _covered(hits: int) -> None:
    assert 0.93 - SLACK <= hits / PILOTS <= 0.97 + SLACK, hits / PILOTS


@pytest.mark.parametrize("n", [11, 30])
def test_shift_interval_covers_a_lognormal_shift(n: int) -> None:
    """Durations: variant = baseline distribution + 600 s; the 95 % HL interval covers 600 s in 93-97 %."""
    rng = np.random.default_rng(n)
    x = rng.lognormal(7.5, 0.8, (PILOTS, n))
    y = rng.lognormal(7.5, 0.8, (PILOTS, n)) + 600.0
    hits = 0
    for i in range(PILOTS):
        ci = stats.MannWhitney(x[i], y[i]).interval(0.95)
        hits += ci is not None and ci[0] <= 600.0 <= ci[1]
    _covered(hits)


@pytest.mark.parametrize("n", [11, 30])
def test_shift_interval_covers_a_shift_of_one_point_on_tied_scores(n: int) -> None:
    """1-5 scores, the variant's one point higher (2-6): heavy ties, and the interval still covers +1 in 93-97 %."""
    rng = np.random.default_rng(50 + n)
    x = rng.choice(SCORES, (PILOTS, n), p=SCORE_P)
    y = rng.choice(SCORES, (PILOTS, n), p=SCORE_P) + 1
    hits = 0
    for i in range(PILOTS):
        ci = stats.MannWhitney(x[i], y[i]).interval(0.95)
        hits += ci is not None and ci[0] <= 1.0 <= ci[1]
    _covered(hits)


@pytest.mark.parametrize("n", [11, 30])
def test_nps_interval_covers_the_true_nps_difference(n: int) -> None:
    """Detractors/passives/promoters 30/40/30 % -> 20/40/40 %: NPS 0 -> +20; the interval covers +20 in 93-97 %."""
    rng = np.random.default_rng(200 + n)
    x = rng.choice([3.0, 7.0, 10.0], (PILOTS, n), p=[0.3, 0.4, 0.3])
    y = rng.choice([3.0, 7.0, 10.0], (PILOTS, n), p=[0.2, 0.4, 0.4])
    hits = 0
    for i in range(PILOTS):
        found = stats.nps_test(x[i], y[i])
        assert found is not None
        hits += found.ci[0] <= 20.0 <= found.ci[1]
    _covered(hits)


@pytest.mark.parametrize("n", [11, 30])
def test_newcombe_interval_covers_the_true_difference(n: int) -> None:
    """Proportions 0.5 -> 0.7: the Newcombe interval covers +0.2 in 93-97 % of pilots."""
    rng = np.random.default_rng(100 + n)
    k1, k2 = rng.binomial(n, 0.5, PILOTS), rng.binomial(n, 0.7, PILOTS)
    hits = 0
    for a, b in zip(k1.tolist(), k2.tolist(), strict=True):
        ci = stats.newcombe(a, n, b, n)
        assert ci is not None
        hits += ci[0] <= 0.2 <= ci[1]
    _covered(hits)


KPIS = [
    Kpi("cycle_time", "s", "duration", "cycle_time"),
    Kpi("satisfaction", "score", "score", "satisfaction"),
    Kpi("nps", "score", "nps", "nps"),
    Kpi("fcr", "proportion", "proportion", "fcr"),
]


def _null_pilot(rng: np.random.Generator, n: int) -> tuple[object, np.ndarray]:
    """2n completed cases from one distribution: cycle time, a 1-5 score, a 0-10 answer and a yes/no."""
    rows = []
    for i in range(2 * n):
        start = 1_700_000_000.0 + i
        rows.append(
            (
                f"c{i:03d}",
                "baseline" if i < n else "reengineered",
                None,
                "completed",
                start,
                start + round(float(rng.lognormal(8.0, 0.7)), 3),
                float(rng.choice(SCORES, p=SCORE_P)),
                float(rng.integers(0, 11)),
                bool(rng.random() < 0.6),
            )
        )
    cases = measure(rows, [], ["satisfaction", "nps", "fcr"])
    mask = np.array([v == "baseline" for v in cases.variants])
    return cases, mask


@pytest.mark.parametrize("primary", [None, "cycle_time"])
def test_null_pilots_call_something_significant_in_at_most_five_percent(primary: str | None) -> None:
    """1,000 null pilots of 25 + 25 cases through compare: the share of pilots with any KPI called
    significant stays within 5 % + 3 Monte Carlo SE, with Holm over all KPIs or a primary gatekeeping."""
    rng = np.random.default_rng(7 if primary is None else 8)
    false = 0
    for _ in range(PILOTS):
        cases, mask = _null_pilot(rng, 25)
        result = compare(cases, ("baseline", mask), ("reengineered", ~mask), KPIS, primary=primary)  # type: ignore[arg-type]
        for k in result.kpis:  # the verdict always matches the adjusted interval
            if k.ci_adjusted is not None:
                assert k.significant == (k.ci_adjusted[0] > k.ci_null or k.ci_adjusted[1] < k.ci_null), k
        false += bool(result.significant)
    assert false / PILOTS <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / PILOTS)
