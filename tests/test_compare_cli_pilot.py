"""A pilot stepped through the installed ``flowrun`` command with known times and survey answers:
every KPI ``flowrun compare complaint`` reports equals an independent numpy/scipy computation
from the test's own script (never from flowrun's measures)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import random
import subprocess
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from scipy import optimize
from scipy import stats as sst

from tests.conftest import ON_POSTGRES
from tests.helpers import flowrun_executable

#: The pilot's first case starts here (a Monday); the pilot is judged at :data:`CUTOFF`.
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
CUTOFF = T0 + timedelta(days=14)
HOUR = 3600.0
SLA = 48 * HOUR

#: The diagrams' ``touchpoint`` overrides (docs/pilots.md, "Touchpoints"), by variant and task name.
TOUCHPOINT = {
    ("baseline", "Analyse needs"): True,
    ("baseline", "Specialist assessment"): True,
    ("reengineered", "Resolve at first contact"): False,
    ("reengineered", "Check entitlement"): False,
    ("reengineered", "Set service-level target"): False,
}
MILESTONES = {"Reply to customer", "Resolve at first contact", "Confirm resolution with customer"}
#: Who works in each lane (handoffs count lanes, not people, so one operator per lane is enough).
OPERATOR = {"Call Centre": "carol", "Front Office": "frank", "Back Office": "bea", "Specialist": "sam"}

#: One command of a case's script: verb ("claim" or "do"), task name, seconds after the case's start, data.
Command = tuple[str, str, float, dict[str, Any]]


@dataclass
class Step:
    """One task as the script knows it: ready when the command before it ran, started when claimed
    (or when completed without a claim), completed when done."""

    name: str
    lane: str
    ready: float
    started: float | None = None
    completed: float | None = None
    automated: bool = False

    def span(self) -> tuple[float, float]:
        """Started and completed time of a finished step."""
        assert self.started is not None, self
        assert self.completed is not None, self
        return self.started, self.completed

    def touch(self) -> float:
        started, completed = self.span()
        return completed - started


@dataclass
class Case:
    variant: str
    start: float
    steps: list[Step] = field(default_factory=list)
    end: float | None = None
    survey: dict[str, Any] | None = None


# --- the script ------------------------------------------------------------------------------


def _sequence(t: float, tasks: Iterable[tuple[str, float, float | None, dict[str, Any]]]) -> list[Command]:
    """Commands for tasks run one after another: each waits, is claimed (unless touch is None), is done."""
    out: list[Command] = []
    for name, wait, touch, data in tasks:
        t += wait
        if touch is not None:
            out.append(("claim", name, t, {}))
            t += touch
        out.append(("do", name, t, data))
    return out


def _touch(rng: random.Random) -> float | None:
    """A touch time in whole minutes from a short list (so touch times and costs can tie), or no claim."""
    return rng.choice([None, None, None, 300.0, 600.0, 600.0, 900.0, 1200.0, 1800.0])


def _survey(rng: random.Random, better: bool) -> dict[str, Any]:
    return {
        "satisfaction": rng.randint(3, 5) if better else rng.randint(1, 4),
        "nps": rng.randint(6, 10) if better else rng.randint(2, 9),
        "resolved_first_contact": rng.random() < (0.8 if better else 0.25),
    }


def _baseline_script(rng: random.Random, shape: str) -> tuple[list[Command], dict[str, Any] | None]:
    record = {"customer_name": "Ann Smith", "category": "billing", "description": "Charged twice for March"}
    specialist = shape == "specialist"
    amount = 150.0 if shape in ("approval", "rework") else 60.0
    analyse = {"severity": "high" if specialist else "low", "needs_specialist": specialist}
    tasks: list[tuple[str, float, float | None, dict[str, Any]]] = [
        ("Record complaint", rng.randint(60, 1800), _touch(rng), record),
        ("Analyse needs", rng.randint(1, 30) * HOUR + rng.randint(0, 3599), _touch(rng), analyse),
    ]
    if specialist:
        finding = {"finding": "meter fault confirmed", "proposed_remedy": "repair"}
        tasks.append(("Specialist assessment", rng.randint(2, 20) * HOUR + rng.randint(0, 3599), _touch(rng), finding))
    draft = {"remedy": "refund", "remedy_amount": amount, "summary": f"refund of {amount}"}
    tasks.append(("Draft resolution", rng.randint(1, 20) * HOUR + rng.randint(0, 3599), _touch(rng), draft))
    if shape in ("approval", "rework"):
        approve = {"approved": shape == "approval"}
        tasks.append(("Approve resolution", rng.randint(1, 10) * HOUR + rng.randint(0, 3599), _touch(rng), approve))
    if shape == "rework":  # rejected: drafted again, below the approval limit this time
        redraft = {"remedy": "refund", "remedy_amount": 80.0, "summary": "refund of 80"}
        tasks.append(("Draft resolution", rng.randint(1, 8) * HOUR + rng.randint(0, 3599), _touch(rng), redraft))
    reply = {"reply_channel": "email", "message": "We refunded you."}
    tasks.append(("Reply to customer", rng.randint(600, 5 * 3600), _touch(rng), reply))
    survey = None if shape == "running" else _survey(rng, better=False)
    if survey is not None:  # the customer answers without claiming the survey: its touch time is 0
        tasks.append(("Satisfaction survey", rng.randint(1, 48) * HOUR + rng.randint(0, 3599), None, survey))
    return _sequence(0.0, tasks), survey


def _reengineered_script(rng: random.Random, shape: str) -> tuple[list[Command], dict[str, Any] | None]:
    quick = shape == "quick"
    intake = {
        "customer_name": "Ann Smith",
        "category": "billing",
        "description": "Charged twice for March",
        "amount_disputed": 40,
        "severity": "low" if quick else "high",
        "can_resolve_now": quick,
    }
    first = _sequence(0.0, [("Record and assess complaint", rng.randint(30, 900), _touch(rng), intake)])
    t = first[-1][2]
    survey = None if shape == "running" else _survey(rng, better=True)
    if quick:
        resolve = {"remedy": "refund", "remedy_amount": 40, "message": "Refunded on the call."}
        rest = _sequence(t, [("Resolve at first contact", 0.0, _touch(rng), resolve)])
    else:  # the two follow-up branches overlap in time: their touch intervals must count once
        inform = {"contact_channel": "phone", "expected_days": 3}
        finding = {"finding": "meter fault confirmed", "proposed_remedy": "repair"}
        a, b = t + rng.randint(300, 3600), t + rng.randint(3700, 7200)
        rest = [("claim", "Inform customer of next steps", a, {}), ("claim", "Specialist assessment", b, {})]
        rest.append(("do", "Inform customer of next steps", b + 1200, inform))
        if shape == "running":
            return first + rest, None
        rest.append(("do", "Specialist assessment", b + rng.randint(2, 30) * HOUR, finding))
        confirm = {"remedy": "repair", "message": "The meter is repaired."}
        confirming = ("Confirm resolution with customer", rng.randint(600, 7200), _touch(rng), confirm)
        rest += _sequence(rest[-1][2], [confirming])
    assert survey is not None
    answering = ("Satisfaction survey", rng.randint(1, 24) * HOUR + rng.randint(0, 3599), None, survey)
    tail = _sequence(rest[-1][2], [answering])
    return first + rest + tail, survey


#: Eight cases a variant; one of each still running at the cut-off (censored), one on the slow path.
BASELINE_SHAPES = ["plain", "specialist", "plain", "approval", "plain", "rework", "running", "plain"]
REENGINEERED_SHAPES = ["quick", "quick", "follow-up", "quick", "quick", "running", "quick", "quick"]


# --- running it through the installed command --------------------------------------------------


def _iso(t: float) -> str:
    return (T0 + timedelta(seconds=t)).isoformat().replace("+00:00", "Z")


def _run(root: Path, *args: str, at: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    env["FLOWRUN_NOW"] = _iso(at)
    return subprocess.run(
        [str(flowrun_executable()), *args], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def _ok(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, (proc.args, proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip().startswith(("{", "[")) else proc.stdout


def _data_args(data: dict[str, Any]) -> list[str]:
    pairs = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in data.items()]
    return [arg for k, v in pairs for arg in ("--data", f"{k}={v}")]


def _step_case(root: Path, variant: str, start: float, script: list[Command], survey: dict[str, Any] | None) -> Case:
    """Run one case's script, one ``flowrun`` process per command, and note what each step's times must be."""
    case = Case(variant, start, survey=survey)
    open_steps: dict[str, tuple[str, Step]] = {}

    def became_ready(items: list[dict[str, Any]], t: float) -> None:
        for item in items:
            step = Step(item["name"], item["lane"], t)
            case.steps.append(step)
            open_steps[item["name"]] = (str(item["ref"]), step)

    started = _ok(_run(root, "start", f"complaint:{variant}", "--json", at=start))
    became_ready(started["ready"], start)
    for verb, name, offset, data in script:
        t = start + offset
        ref, step = open_steps[name]
        actor = OPERATOR.get(step.lane, "customer")
        if verb == "claim":
            _ok(_run(root, "claim", ref, "--as", actor, "--json", at=t))
            step.started = t
            continue
        done = _ok(_run(root, "do", ref, *_data_args(data), "--as", actor, "--json", at=t))
        del open_steps[name]
        step.completed, step.started = t, t if step.started is None else step.started
        if name == "Record and assess complaint":  # the diagram's two automated steps run right after it
            for auto in ("Check entitlement", "Set service-level target"):
                case.steps.append(Step(auto, step.lane, t, t, t, automated=True))
        became_ready(done["ready"], t)
        if done["status"] == "completed":
            case.end = t
    assert (case.end is None) == (survey is None), (variant, script)
    return case


@dataclass
class Pilot:
    root: Path
    cases: list[Case]
    config: dict[str, Any]
    compare: dict[str, Any]
    csv_rows: list[dict[str, str]]


@pytest.fixture(scope="module")
def pilot(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Pilot:
    """8 baseline and 8 re-engineered cases stepped through ``flowrun`` processes, then compared."""
    base = tmp_path_factory.mktemp("cli-pilot")
    _ok(_run(base, "init", "proj", at=0.0))
    root = base / "proj"
    if ON_POSTGRES:
        url = request.getfixturevalue("pg_server").create_database()
        with (root / "flowrun.yaml").open("a", encoding="utf-8") as f:
            f.write(f"database: {url}\n")
    rng = random.Random(1102)
    jobs = []
    for i, (b_shape, r_shape) in enumerate(zip(BASELINE_SHAPES, REENGINEERED_SHAPES, strict=True)):
        jobs.append(("baseline", i * 12 * HOUR, *_baseline_script(rng, b_shape)))
        jobs.append(("reengineered", i * 12 * HOUR + 600, *_reengineered_script(rng, r_shape)))
    # Cases are independent, so two run at a time (each case's own commands stay in order).
    with ThreadPoolExecutor(max_workers=2) as pool:
        cases = list(pool.map(lambda job: _step_case(root, *job), jobs))
    cutoff = (CUTOFF - T0).total_seconds()
    assert all(c.end is None or c.end < cutoff for c in cases)
    data = _ok(_run(root, "compare", "complaint", "--json", at=cutoff))
    table = _ok(_run(root, "compare", "complaint", "--csv", at=cutoff))
    config = yaml.safe_load((root / "flowrun.yaml").read_text(encoding="utf-8"))
    return Pilot(root, cases, config, data, list(csv.DictReader(io.StringIO(table))))


# --- the independent computation ----------------------------------------------------------------


def _layer(config: dict[str, Any], lane: str) -> str:
    """A lane's blueprint layer as flowrun.yaml names it; lanes it does not name are backstage."""
    layers = {k.lower(): v for k, v in (config.get("lanes") or {}).items()}
    return str(layers.get(lane.lower(), "backstage"))


def _union(intervals: list[tuple[float, float]]) -> float:
    total, reach = 0.0, -np.inf
    for lo, hi in sorted(intervals):
        if hi > reach:
            total += hi - max(lo, reach)
            reach = hi
    return total


def _touchpoint(variant: str, step: Step, config: dict[str, Any]) -> bool:
    """A step crosses the line of interaction: its lane is customer or frontstage, unless the task says."""
    return TOUCHPOINT.get((variant, step.name), _layer(config, step.lane) in ("customer", "frontstage"))


def _measures(case: Case, config: dict[str, Any]) -> dict[str, float]:
    """Every per-case KPI of a completed case, from the script's times and docs/pilots.md's definitions."""
    assert case.end is not None
    steps = case.steps
    manual = [s for s in steps if not s.automated]
    times = [s.span() for s in steps]
    staff = sorted(
        (s for s in manual if _layer(config, s.lane) in ("frontstage", "backstage")),
        key=lambda s: (s.completed, s.ready),
    )
    rates = config.get("hourly_cost") or {}
    rounds: dict[str, set[float]] = {}
    for s in steps:
        rounds.setdefault(s.name, set()).add(s.ready)
    rework = sum(len(r) - 1 for r in rounds.values())
    resolved = min(s.span()[1] for s in steps if s.name in MILESTONES)
    cycle = case.end - case.start
    survey = case.survey or {}
    return {
        "cycle_time": cycle,
        "waiting_time": cycle - _union(times),
        "touch_time": float(sum(s.touch() for s in steps)),
        "response_time": min(a for a, _ in times) - min(s.ready for s in steps),
        "resolution_time": resolved - case.start,
        "sla_met": float(resolved - case.start <= SLA),
        "steps": float(len(manual)),
        "automated_steps": float(len(steps) - len(manual)),
        "handoffs": float(sum(a.lane != b.lane for a, b in itertools.pairwise(staff))),
        "touchpoints": float(sum(_touchpoint(case.variant, s, config) for s in steps)),
        "customer_effort": float(sum(_layer(config, s.lane) == "customer" for s in steps)),
        "rework": float(rework),
        "rework_rate": float(rework > 0),
        "cost": sum(s.touch() / HOUR * float(rates.get(s.lane, 0)) for s in manual),
        "satisfaction": float(survey["satisfaction"]),
        "nps": float(survey["nps"]),
        "fcr": float(survey["resolved_first_contact"]),
    }


def _observed(case: Case, kpi: str, cutoff: float) -> tuple[float, bool]:
    """A duration as survival analysis sees it: (time so far, whether the event happened)."""
    if kpi == "cycle_time":
        return ((case.end if case.end is not None else cutoff) - case.start, case.end is not None)
    done = [s.completed for s in case.steps if s.name in MILESTONES and s.completed is not None]
    if done:
        return min(done) - case.start, True
    return (case.end if case.end is not None else cutoff) - case.start, False


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    p = k / n
    centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def _newcombe(k1: int, n1: int, k2: int, n2: int, z: float) -> tuple[float, float]:
    """Newcombe's (1998) method 10 for p2 - p1."""
    (l1, u1), (l2, u2) = _wilson(k1, n1, z), _wilson(k2, n2, z)
    p1, p2 = k1 / n1, k2 / n2
    d = p2 - p1
    return d - np.hypot(p2 - l2, u1 - p1), d + np.hypot(u2 - p2, p1 - l1)


def _newcombe_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """The two-sided level at which Newcombe's interval just reaches 0 (found by root search)."""
    d = k2 / n2 - k1 / n1
    if d == 0:
        return 1.0
    end: Callable[[float], float] = (
        (lambda z: _newcombe(k1, n1, k2, n2, z)[0]) if d > 0 else (lambda z: _newcombe(k1, n1, k2, n2, z)[1])
    )
    z = optimize.brentq(end, 1e-9, 40.0, xtol=1e-14)
    return float(2 * sst.norm.sf(z))


def _logrank_parts(x: list[tuple[float, bool]], y: list[tuple[float, bool]]) -> tuple[float, float]:
    """O - E and V of the variant's (y's) events over the pooled event times, by hand."""
    o_e = v = 0.0
    for t in sorted({t for t, e in x + y if e}):
        at_risk_x, at_risk_y = sum(s >= t for s, _ in x), sum(s >= t for s, _ in y)
        dead_x, dead_y = sum(s == t and e for s, e in x), sum(s == t and e for s, e in y)
        n, d = at_risk_x + at_risk_y, dead_x + dead_y
        o_e += dead_y - d * at_risk_y / n
        if n > 1:
            v += d * (at_risk_y / n) * (1 - at_risk_y / n) * (n - d) / (n - 1)
    return o_e, v


def _km_median(obs: list[tuple[float, bool]]) -> float | None:
    t = np.array([o[0] for o in obs])
    e = np.array([o[1] for o in obs])
    sf = sst.ecdf(sst.CensoredData.right_censored(t, ~e)).sf
    grid = np.unique(t[e])
    below = grid[sf.evaluate(grid) <= 0.5]
    return float(below[0]) if below.size else None


def _has_ties(x: np.ndarray, y: np.ndarray) -> bool:
    return bool(np.unique(np.concatenate([x, y])).size < x.size + y.size)


def _mann_whitney_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided p of U: scipy's exact distribution without ties, else the full permutation distribution."""
    if not _has_ties(x, y):
        return float(sst.mannwhitneyu(y, x, method="exact").pvalue)
    perm = sst.permutation_test(
        (x, y),
        lambda a, b, axis: sst.mannwhitneyu(b, a, axis=axis).statistic,
        n_resamples=np.inf,  # every one of the C(n1 + n2, n1) splits: exact, no Monte Carlo error
        vectorized=True,
    )
    return float(perm.pvalue)


# --- the checks -----------------------------------------------------------------------------------


def _groups(pilot: Pilot) -> Iterator[tuple[str, list[Case]]]:
    for variant in ("baseline", "reengineered"):
        yield variant, [c for c in pilot.cases if c.variant == variant]


def _values(pilot: Pilot, kpi: str) -> tuple[np.ndarray, np.ndarray]:
    (_, base), (_, var) = _groups(pilot)
    done = [[_measures(c, pilot.config)[kpi] for c in cases if c.end is not None] for cases in (base, var)]
    return np.array(done[0]), np.array(done[1])


def _kpis(pilot: Pilot) -> dict[str, dict[str, Any]]:
    return {k["kpi"]: k for k in pilot.compare["kpis"]}


def test_the_pilot_ran_as_scripted(pilot: Pilot) -> None:
    """Each group counts its completed and running cases, and compare reports every KPI the docs list."""
    assert pilot.compare["baseline"] == "baseline"
    assert pilot.compare["variant"] == "reengineered"
    for variant, cases in _groups(pilot):
        group = pilot.compare["groups"][variant]
        done = [c for c in cases if c.end is not None]
        assert (group["n"], group["running"], group["other"]) == (len(done), len(cases) - len(done), 0)
        touch_hours = sum(s.touch() / HOUR for c in done for s in c.steps if not s.automated)
        assert group["cases_per_person_hour"] == pytest.approx(len(done) / touch_hours)
    assert set(_kpis(pilot)) == set(_measures(pilot.cases[0], pilot.config))


@pytest.mark.parametrize("kpi", ["cycle_time", "resolution_time"])
def test_censored_durations_are_kaplan_meier_and_scipys_logrank(pilot: Pilot, kpi: str) -> None:
    """With a case of each group still running, the durations are judged by log-rank on all 16 cases."""
    k = _kpis(pilot)[kpi]
    cutoff = (CUTOFF - T0).total_seconds()
    (_, base), (_, var) = _groups(pilot)
    x, y = [_observed(c, kpi, cutoff) for c in base], [_observed(c, kpi, cutoff) for c in var]
    running = sum(not e for _, e in x), sum(not e for _, e in y)
    assert any(running)
    assert (k["test"], k["ci_method"], k["ci_null"]) == ("log-rank", "peto-hazard-ratio", 1.0)
    assert (k["censored"]["baseline"], k["censored"]["variant"]) == running
    assert (k["baseline"]["n"], k["variant"]["n"]) == (len(x), len(y))
    assert k["baseline"]["median"] == _km_median(x)
    assert k["variant"]["median"] == _km_median(y)

    def censored(obs: list[tuple[float, bool]]) -> sst.CensoredData:
        return sst.CensoredData.right_censored([t for t, _ in obs], [not e for _, e in obs])

    assert k["p_value"] == pytest.approx(sst.logrank(censored(y), censored(x)).pvalue, rel=1e-9)
    o_e, v = _logrank_parts(x, y)
    assert k["effect_size"] == pytest.approx(np.exp(o_e / v), rel=1e-9)
    half = sst.norm.isf(0.025) / np.sqrt(v)
    assert k["ci95"] == pytest.approx([np.exp(o_e / v - half), np.exp(o_e / v + half)], rel=1e-9)


def test_rank_kpis_equal_numpy_and_scipy(pilot: Pilot) -> None:
    """Durations, counts and scores: medians, Hodges-Lehmann shift, rank-biserial r and Mann-Whitney p."""
    checked = {"exact": 0, "tied": 0}
    for name, k in _kpis(pilot).items():
        if k["ci_method"] != "hodges-lehmann-mann-whitney":
            continue
        x, y = _values(pilot, name)
        for side, values in (("baseline", x), ("variant", y)):
            got = k[side]
            assert got["n"] == values.size, name
            assert got["median"] == pytest.approx(np.median(values)), name
            assert got["mean"] == pytest.approx(np.mean(values)), name
            assert got["p90"] == pytest.approx(np.percentile(values, 90)), name
        assert k["diff"] == pytest.approx(np.median(y) - np.median(x)), name
        assert k["shift"] == pytest.approx(np.median(np.subtract.outer(y, x))), name
        u = sst.mannwhitneyu(y, x).statistic
        assert k["effect_size"] == pytest.approx(2 * u / (x.size * y.size) - 1), name
        assert k["test"] == "mann-whitney-exact", name  # 7 + 7 cases: exact given the ties
        expected = _mann_whitney_p(x, y)
        if np.ptp(np.concatenate([x, y])) == 0:
            assert k["p_value"] in (None, pytest.approx(1.0)), name
            continue
        assert k["p_value"] == pytest.approx(expected, rel=1e-9), name
        checked["tied" if _has_ties(x, y) else "exact"] += 1
    assert checked["exact"] >= 2, checked
    assert checked["tied"] >= 3, checked


def test_proportions_equal_wilson_and_newcombe_by_hand(pilot: Pilot) -> None:
    """Shares, Newcombe's interval, the p at which it reaches 0, and Cohen's h, for every 0/1 KPI."""
    proportions = [name for name, k in _kpis(pilot).items() if k["ci_method"] == "newcombe-wilson"]
    assert set(proportions) == {"sla_met", "rework_rate", "fcr"}
    for name in proportions:
        k = _kpis(pilot)[name]
        x, y = _values(pilot, name)
        k1, n1, k2, n2 = int(x.sum()), x.size, int(y.sum()), y.size
        assert (k["baseline"]["value"], k["variant"]["value"]) == pytest.approx((k1 / n1, k2 / n2)), name
        assert k["ci95"] == pytest.approx(_newcombe(k1, n1, k2, n2, sst.norm.isf(0.025))), name
        assert k["p_value"] == pytest.approx(_newcombe_p(k1, n1, k2, n2), rel=1e-6), name
        h = 2 * np.arcsin(np.sqrt(k2 / n2)) - 2 * np.arcsin(np.sqrt(k1 / n1))
        assert k["effect_size"] == pytest.approx(h), name


def test_nps_equals_the_trinomial_contrast_by_hand(pilot: Pilot) -> None:
    """NPS in points from the answers, and its z test and interval with half a pseudo-answer of each kind."""
    k = _kpis(pilot)["nps"]
    x, y = _values(pilot, "nps")

    def nps(v: np.ndarray) -> float:
        return float(100 * (np.count_nonzero(v >= 9) - np.count_nonzero(v <= 6)) / v.size)

    def moments(v: np.ndarray) -> tuple[float, float]:
        n = v.size + 1.5
        pro, det = (np.count_nonzero(v >= 9) + 0.5) / n, (np.count_nonzero(v <= 6) + 0.5) / n
        return 100 * (pro - det), 1e4 * (pro + det - (pro - det) ** 2) / n

    assert (k["baseline"]["value"], k["variant"]["value"]) == pytest.approx((nps(x), nps(y)))
    assert k["diff"] == pytest.approx(nps(y) - nps(x))
    (c1, v1), (c2, v2) = moments(x), moments(y)
    se = np.sqrt(v1 + v2)
    assert k["p_value"] == pytest.approx(2 * sst.norm.sf(abs(c2 - c1) / se), rel=1e-9)
    assert k["ci95"] == pytest.approx([c2 - c1 - sst.norm.isf(0.025) * se, c2 - c1 + sst.norm.isf(0.025) * se])


def test_every_interval_excludes_its_null_exactly_when_p_is_below_5_percent(pilot: Pilot) -> None:
    tested = [k for k in pilot.compare["kpis"] if k["p_value"] is not None and k["ci95"] is not None]
    assert len(tested) >= 15
    for k in tested:
        lo, hi = k["ci95"]
        assert (lo > k["ci_null"] or hi < k["ci_null"]) == (k["p_value"] < 0.05), k["kpi"]
    assert any(k["p_value"] < 0.05 for k in tested)
    assert any(k["p_value"] >= 0.05 for k in tested)


def test_groups_below_10_cases_are_never_called_significant(pilot: Pilot) -> None:
    """7 completed cases a group: every KPI is flagged too small, has no adjusted p and says so."""
    for k in pilot.compare["kpis"]:
        assert k["too_small"], k["kpi"]
        assert not k["significant"], k["kpi"]
        assert k["p_adjusted"] is None, k["kpi"]
        assert k["verdict"] == "too few cases to judge", k["kpi"]
    assert pilot.compare["significant"] == []
    assert any("fewer than 10" in w or "too few" in w for w in pilot.compare["warnings"]), pilot.compare["warnings"]


def test_csv_carries_the_same_numbers(pilot: Pilot) -> None:
    """``--csv`` has one row per KPI with the JSON's numbers (empty cells for nulls)."""
    rows = {r["kpi"]: r for r in pilot.csv_rows}
    assert list(rows) == [k["kpi"] for k in pilot.compare["kpis"]]
    for name, k in _kpis(pilot).items():
        row = rows[name]
        pairs = {
            "p_value": k["p_value"],
            "ci95_low": k["ci95"][0] if k["ci95"] else None,
            "ci95_high": k["ci95"][1] if k["ci95"] else None,
            "baseline_n": k["baseline"]["n"],
            "baseline_value": k["baseline"]["value"],
            "variant_n": k["variant"]["n"],
            "variant_value": k["variant"]["value"],
            "diff": k["diff"],
            "shift": k["shift"],
            "effect_size": k["effect_size"],
            "ci_null": k["ci_null"],
            "baseline_censored": k["censored"]["baseline"],
            "variant_censored": k["censored"]["variant"],
        }
        for column, value in pairs.items():
            if value is None:
                assert row[column] == "", (name, column)
            else:
                assert float(row[column]) == pytest.approx(value, rel=1e-12), (name, column)
        assert (row["test"], row["ci_method"]) == (k["test"], k["ci_method"])


def _timing_side(steps: list[Step]) -> dict[str, float | int] | None:
    if not steps:
        return None
    waiting = np.array([s.span()[0] - s.ready for s in steps])
    touch = np.array([s.touch() for s in steps])
    return {
        "n": len(steps),
        "waiting_median": float(np.median(waiting)),
        "touch_median": float(np.median(touch)),
        "waiting_p90": float(np.percentile(waiting, 90)),
        "touch_p90": float(np.percentile(touch, 90)),
    }


def _assert_side(got: dict[str, Any] | None, expected: dict[str, float | int] | None, what: str) -> None:
    if expected is None:
        assert got is None, what
        return
    assert got is not None, what
    assert {k: got[k] for k in expected} == pytest.approx(expected), what


def test_per_task_and_per_lane_timings_equal_numpy(pilot: Pilot) -> None:
    """The task and lane tables: how often each ran in the completed cases, median and p90 waiting and touch."""
    (_, base), (_, var) = _groups(pilot)
    done = [[s for c in cases if c.end is not None for s in c.steps] for cases in (base, var)]
    rows = {row["name"]: row for row in pilot.compare["tasks"]}
    names = {s.name for steps in done for s in steps}
    assert names <= set(rows), names - set(rows)
    for name in names:
        for side, steps in zip(("baseline", "variant"), done, strict=True):
            _assert_side(rows[name][side], _timing_side([s for s in steps if s.name == name]), f"{name} {side}")
    lanes = {row["lane"]: row for row in pilot.compare["lanes"]}
    for lane in {s.lane for steps in done for s in steps}:
        for side, steps in zip(("baseline", "variant"), done, strict=True):
            _assert_side(lanes[lane][side], _timing_side([s for s in steps if s.lane == lane]), f"{lane} {side}")


def test_until_after_every_start_changes_nothing(pilot: Pilot) -> None:
    """``--until`` selects cases by start: one after every case's start selects the same cases and
    must give the same verdicts; running cases stay observed until now, not cut off at ``--until``."""
    last_start = max(c.start for c in pilot.cases)
    until = _iso(last_start + HOUR)
    cutoff = (CUTOFF - T0).total_seconds()
    data = _ok(_run(pilot.root, "compare", "complaint", "--json", "--until", until, at=cutoff))
    assert data["groups"] == pilot.compare["groups"]
    assert data["kpis"] == pilot.compare["kpis"]
