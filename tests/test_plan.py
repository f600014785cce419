"""Pilot planning: the sample sizes give the power they promise in simulation; `flowrun plan`."""

from __future__ import annotations

import json
import math
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

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


# --- `flowrun plan` on a small project: 12 baseline cases, 3 re-engineered ones ------------------


@pytest.fixture(scope="module")
def small_pilot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from flowrun import app
    from flowrun.clock import ManualClock
    from flowrun.config import find_project
    from tests.helpers import T0
    from tests.test_compare import _baseline_steps, _reengineered_steps, _run_case

    root = tmp_path_factory.mktemp("plan") / "proj"
    app.init_project(root)
    clock = ManualClock(T0)
    project = app.Project(find_project(explicit=root), clock)
    rng = random.Random(11)
    for i in range(15):
        clock.set(T0 + timedelta(hours=2 * i))
        baseline = i < 12
        steps = _baseline_steps(rng) if baseline else _reengineered_steps(rng)
        _run_case(project, clock, f"complaint:{'baseline' if baseline else 'reengineered'}", steps, rng, baseline)
    project.store.close()
    return root


def _plan_json(cli: Any, root: Path, *args: str) -> dict[str, Any]:
    result = cli(root, "plan", "complaint", "--json", *args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_plan_defaults_cover_the_projects_kpis(cli: Any, small_pilot: Path) -> None:
    data = _plan_json(cli, small_pilot)
    assert data["baseline"] == "baseline"
    assert (data["alpha"], data["power"]) == (0.05, 0.8)
    rows = {r["kpi"]: r for r in data["rows"]}
    assert list(rows) == ["cycle_time", "waiting_time", "satisfaction", "nps", "fcr"]
    assert set(rows["cycle_time"]) == {
        "kpi", "kind", "unit", "n", "baseline", "change", "change_text", "needed", "detectable"
    }  # fmt: skip
    assert rows["cycle_time"]["n"] == 12
    assert rows["cycle_time"]["change"] == pytest.approx(-0.2)
    assert rows["nps"]["change"] == 10
    # Smaller changes need more cases; a bigger power too.
    half = _plan_json(cli, small_pilot, "--change", "cycle_time=-10%")["rows"][0]
    assert half["needed"] > rows["cycle_time"]["needed"]
    strong = _plan_json(cli, small_pilot, "--change", "cycle_time=-20%", "--power", "0.9")["rows"][0]
    assert strong["needed"] > rows["cycle_time"]["needed"]


def test_plan_table_names_each_kpi_and_the_cases_needed(cli: Any, small_pilot: Path) -> None:
    result = cli(small_pilot, "plan", "complaint", "--change", "cycle_time=-30%", "--change", "fcr=+20")
    assert result.exit_code == 0, result.stderr
    assert "cases per group" in result.stdout
    assert "cycle_time" in result.stdout
    assert "-30%" in result.stdout
    assert "+20.0 pp" in result.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("speed=-20%", "no KPI 'speed'"),
        ("cycle_time=-150%", "-100%"),
        ("cycle_time=fast", "not a number"),
        ("cycle_time=-20", "percentage"),
        ("cycle_time", "KPI=CHANGE"),
        ("nps=+10%", "points"),
    ],
)
def test_bad_changes_are_usage_errors(cli: Any, small_pilot: Path, change: str, message: str) -> None:
    result = cli(small_pilot, "plan", "complaint", "--change", change)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_baseline_with_too_few_cases_is_refused(cli: Any, small_pilot: Path) -> None:
    result = cli(small_pilot, "plan", "complaint", "--baseline", "reengineered")
    assert result.exit_code == 1
    assert "at least 10" in result.stderr
    assert "Traceback" not in result.stderr


def test_compare_calls_a_small_null_pilot_under_powered_and_a_large_one_not() -> None:
    """No real change: 12 + 12 cases cannot show a 20 % cut or a 10-point NPS rise, so compare says so
    on those KPIs and in a warning; with 1,500 cases a group the same KPI gets no such note."""
    import numpy as np

    from flowrun.analysis import Kpi, compare, measure

    def pilot(n: int) -> Any:
        rng = np.random.default_rng(n)
        rows = []
        for i in range(2 * n):
            start = 1_700_000_000.0 + i
            life = round(float(rng.lognormal(8.0, 0.7)), 3)
            rows.append(
                (f"c{i:05d}", "b" if i < n else "v", None, "completed", start, start + life, float(rng.integers(0, 11)))
            )
        cases = measure(rows, [], ["nps"])
        mask = np.array([v == "b" for v in cases.variants])
        kpis = [Kpi("cycle_time", "s", "duration", "cycle_time"), Kpi("nps", "score", "nps", "nps")]
        return compare(cases, ("b", mask), ("v", ~mask), kpis)

    small = pilot(12)
    notes = {k.kpi: " ".join(k.notes) for k in small.kpis if not k.significant}
    assert all("under-powered: with 12 cases a group" in notes[name] for name in notes)
    assert any(w.startswith("under-powered for") for w in small.warnings)
    large = pilot(1500)
    cycle = large.kpis[0]
    assert not any("under-powered" in n for n in cycle.notes)
