"""Per-case measures, computed column-wise with numpy from the rows the store reads.

A case's measures, from its completed steps (activities: user, manual, service, script,
business rule, send and receive tasks, call activities and subprocesses; never events or
gateways). Containers (call activities, subprocesses) are never steps: their inner steps are.
The family's :class:`~flowrun.analysis.blueprint.PilotSettings` say which lane is which layer.

* cycle time: start of the case to its end;
* waiting time: the case's life minus the union of its steps' started -> completed intervals
  (time when nobody worked on it; overlapping parallel branches count once);
  touch time: started -> completed, summed over the steps;
* response time: the first step's ready time to the first time a step started;
* resolution time: start to the first completion of a milestone task (NaN without one);
* sla_met: 1 when resolution time (cycle time without milestones) is within the SLA, else 0
  (also 0 for a case that never reached a milestone); only when an SLA is set;
* steps = manual_steps: steps a person did (user, manual and plain tasks); automated_steps:
  service, script, business rule, send and receive tasks;
* rework: per task, its activations beyond the first, summed (a loop twice back = 2); steps of
  one task ready at the same instant are one activation (a parallel multi-instance); the store
  has no iteration number, so a *sequential* multi-instance counts as rework;
  rework_rate: 1 for a case with any rework, else 0;
* handoffs: the manual steps in staff lanes (frontstage, backstage) ordered by completion, then
  ready time, then record order: how often the next is in another lane; customer and support
  lanes and automated steps are skipped;
* touchpoints: steps where ``settings.is_touchpoint(task, lane)``; customer_effort: steps in
  customer lanes;
* cost: manual steps' touch hours times their lane's hourly cost (0 without one); only when
  costs are set, in ``settings.currency``;
* outcome fields of the case's final data (satisfaction, NPS answer, first-contact resolution),
  as numbers: booleans are 1 and 0; a missing or unreadable value is NaN.

Durations are in seconds, each time rounded to the millisecond first. Only
completed cases get measures; the others are counted by status and never mixed in.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from flowrun.analysis.blueprint import STAFF_LAYERS, PilotSettings

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

#: The measures every case has, with their units (``steps`` means manual steps).
CASE_MEASURES = {
    "cycle_time": "s",
    "waiting_time": "s",
    "touch_time": "s",
    "response_time": "s",
    "resolution_time": "s",
    "steps": "count",
    "manual_steps": "count",
    "automated_steps": "count",
    "handoffs": "count",
    "touchpoints": "count",
    "customer_effort": "count",
    "rework": "count",
    "rework_rate": "proportion",
    "sla_met": "proportion",
    "cost": "currency",
}

#: Measures that exist only when the family's settings give them a meaning.
CONDITIONAL = {"resolution_time": "resolution", "sla_met": "sla_seconds", "cost": "hourly_cost"}

#: Step types done by a system, not a person.
AUTOMATED_TYPES = frozenset({"serviceTask", "scriptTask", "businessRuleTask", "sendTask", "receiveTask"})
#: Step types that contain other steps: their time is their inner steps' time; never a step themselves.
CONTAINER_TYPES = frozenset({"callActivity", "subprocess", "subProcess", "transaction", "adHocSubProcess"})

_TEXT_NUMBERS = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0}


@dataclass(frozen=True)
class Cases:
    """Measures of a set of cases, one array entry per case, and their completed steps.

    Attributes:
        ids, variants, pilots, statuses: what each case is.
        start, end: epoch seconds (``end`` is NaN while a case runs).
        completed: which cases have completed; all measures are NaN for the others.
        measures: name of each of :data:`CASE_MEASURES` -> values.
        outcomes: data field -> values (NaN where a case has none).
        step_case, step_task, step_lane: per completed step of a completed case: its case
            (index), task (index into ``tasks``) and lane (index into ``lanes``, -1 for none).
        step_waiting, step_touch: its waiting and touch time in seconds.
        step_position: 0 for a case's first step, 1 for the next, ...
        tasks, lanes: the task (BPMN) ids and lane names the steps refer to.
        samples: for each task, one case that ran it (to look its name up).
        step_manual: per step, whether a person did it (not automated, not a container).
        observed: for survival estimates, ``cycle_time`` and ``resolution_time`` -> (time observed
            so far, whether the event happened) for every case: running cases are observed until
            the cutoff (NaN without one); cases neither completed nor running are NaN.
    """

    ids: tuple[str, ...]
    variants: tuple[str, ...]
    pilots: tuple[str | None, ...]
    statuses: tuple[str, ...]
    start: Floats
    end: Floats
    completed: Bools
    measures: dict[str, Floats]
    outcomes: dict[str, Floats]
    step_case: Ints
    step_task: Ints
    step_lane: Ints
    step_waiting: Floats
    step_touch: Floats
    step_position: Ints
    tasks: tuple[str, ...]
    lanes: tuple[str, ...]
    samples: tuple[str, ...] = field(default=())
    step_manual: Bools = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    observed: dict[str, tuple[Floats, Bools]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def case(self, instance_id: str) -> dict[str, Any]:
        """One case's measures and outcomes as plain values (None for NaN)."""
        i = self.ids.index(instance_id)
        out: dict[str, Any] = {"id": instance_id, "variant": self.variants[i], "status": self.statuses[i]}
        for name, values in (*self.measures.items(), *self.outcomes.items()):
            v = float(values[i])
            out[name] = None if np.isnan(v) else v
        return out


def cases_per_person_hour(cases: Cases, mask: Bools) -> float | None:
    """Completed cases of ``mask`` per person-hour of manual touch time they took (None without any).

    A group-level figure (not a per-case KPI): how many cases one hour of people's work finishes.
    """
    done = mask & cases.completed
    in_group = done[cases.step_case] & cases.step_manual
    hours = float(cases.step_touch[in_group].sum()) / 3600.0
    return float(done.sum()) / hours if hours > 0 else None


def measure(
    case_rows: Sequence[Sequence[Any]],
    step_chunks: Iterable[Sequence[Sequence[Any]]],
    fields: Sequence[str] = (),
    settings: PilotSettings | Sequence[str] | None = None,
    cutoff: float | None = None,
) -> Cases:
    """Compute every case's measures.

    Args:
        case_rows: per case: id, variant, pilot, status, start, end (epoch seconds), then one
            value per name in ``fields``.
        step_chunks: chunks of completed steps: instance id, task id, lane, kind (:data:`MANUAL`,
            :data:`CONTAINER`, :data:`AUTOMATED`, or the BPMN element type), ready, started, completed
            (epoch seconds), record id. Steps of cases not in ``case_rows``, or neither completed
            nor running, are ignored; running cases' steps only feed ``observed``.
        fields: the data fields ``case_rows`` carries, in order.
        settings: the family's blueprint, costs, milestones and SLA (a list of lane names is
            read as the customer lanes, as before PilotSettings existed).
        cutoff: the analysis time (epoch seconds): running cases are observed until then.
    """
    if settings is None or not isinstance(settings, PilotSettings):
        settings = PilotSettings(lanes={str(lane).casefold(): "customer" for lane in settings or ()})
    columns = list(zip(*case_rows, strict=True)) if case_rows else [()] * (6 + len(fields))
    ids = tuple(str(x) for x in columns[0])
    statuses = tuple(str(x) for x in columns[3])
    completed = np.array([s == "completed" for s in statuses], dtype=np.bool_)
    running = np.array([s == "running" for s in statuses], dtype=np.bool_)
    start, end = _millis(columns[4]) / 1000.0, _millis(columns[5]) / 1000.0
    kept = {iid: i for i, iid in enumerate(ids) if completed[i] or running[i]}
    every = _Steps.read(step_chunks, kept)
    n = len(ids)
    per, resolved_at = every.per_case(n, settings, tuple(str(x) for x in columns[1]))
    life = end - start
    per["cycle_time"] = life
    per["waiting_time"] = life - per.pop("busy")
    resolution = resolved_at - start if settings.resolution else np.full(n, np.nan)
    per["resolution_time"] = resolution
    if settings.sla_seconds is not None:
        reached = resolution if settings.resolution else life
        per["sla_met"] = np.where(np.isnan(reached), 0.0, (reached <= settings.sla_seconds).astype(np.float64))
    measures = {
        name: np.where(completed, per[name], np.nan)
        for name in CASE_MEASURES
        if name in per and applies(name, settings)
    }
    steps = every.only(completed[every.case] if every.case.size else np.zeros(0, dtype=np.bool_))
    return Cases(
        ids=ids,
        variants=tuple(str(x) for x in columns[1]),
        pilots=tuple(None if x is None else str(x) for x in columns[2]),
        statuses=statuses,
        start=start,
        end=end,
        completed=completed,
        measures=measures,
        outcomes={f: numbers(columns[6 + k]) for k, f in enumerate(fields)},
        step_case=steps.case,
        step_task=steps.task,
        step_lane=steps.lane,
        step_waiting=steps.waiting,
        step_touch=steps.touch,
        step_position=steps.position,
        tasks=steps.task_ids,
        lanes=steps.lane_names,
        samples=_samples(ids, steps),
        step_manual=steps.manual,
        observed=_observed(completed, running, start, life, resolution, settings, cutoff),
    )


def applies(name: str, settings: PilotSettings) -> bool:
    """Whether a measure means something for this family (an SLA, milestones, costs are set)."""
    needs = CONDITIONAL.get(name)
    if needs is None:
        return True
    value = getattr(settings, needs)
    return value is not None and (not hasattr(value, "__len__") or len(value) > 0)


def _observed(
    completed: Bools,
    running: Bools,
    start: Floats,
    life: Floats,
    resolution: Floats,
    settings: PilotSettings,
    cutoff: float | None,
) -> dict[str, tuple[Floats, Bools]]:
    """Right-censored observations of cycle and resolution time for every case."""
    so_far = (cutoff - start) if cutoff is not None else np.full(start.shape, np.nan)
    so_far = np.where(running, so_far, np.nan)
    cycle = (np.where(completed, life, so_far), completed.copy())
    out = {"cycle_time": cycle}
    if settings.resolution:
        happened = ~np.isnan(resolution) & (completed | running)
        # A completed case that never reached a milestone is censored at its end: it never will.
        time = np.where(happened, resolution, np.where(completed, life, so_far))
        out["resolution_time"] = (time, happened)
    return out


def numbers(values: Sequence[Any]) -> Floats:
    """Values of a data field as floats: numbers as they are, booleans 1/0, "true"/"yes" 1 ... else NaN."""
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.array([_number(v) for v in values], dtype=np.float64)


def _number(value: Any) -> float:
    if value is None:
        return float("nan")
    if isinstance(value, (bool, int, float)):
        return float(value)
    text = str(value).strip().lower()
    if text in _TEXT_NUMBERS:
        return _TEXT_NUMBERS[text]
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _millis(values: Sequence[Any]) -> Floats:
    """Epoch seconds as whole milliseconds (NaN stays NaN), so differences come out exact."""
    return np.rint(np.array(values, dtype=np.float64) * 1000.0)


@dataclass(frozen=True)
class _Steps:
    """The completed steps of the kept cases, sorted by case, completion, ready time and record.

    ``ready``, ``started``, ``done`` are epoch milliseconds (NaN where the store has none).
    """

    case: Ints
    task: Ints
    lane: Ints
    container: Bools
    manual: Bools
    ready: Floats
    started: Floats
    done: Floats
    position: Ints
    task_ids: tuple[str, ...]
    lane_names: tuple[str, ...]

    @property
    def waiting(self) -> Floats:
        return np.nan_to_num((self.started - self.ready) / 1000.0)

    @property
    def touch(self) -> Floats:
        return np.nan_to_num((self.done - self.started) / 1000.0)

    @classmethod
    def read(cls, chunks: Iterable[Sequence[Sequence[Any]]], index: Mapping[str, int]) -> _Steps:
        """Encode the steps chunk by chunk, with the cyclic garbage collector paused.

        A million rows are millions of short-lived tuples; each would otherwise count towards
        full collections of the whole heap, which together cost as much as reading the rows.
        """
        enabled = gc.isenabled()
        gc.disable()
        try:
            return cls._read(chunks, index)
        finally:
            if enabled:
                gc.enable()

    @classmethod
    def _read(cls, chunks: Iterable[Sequence[Sequence[Any]]], index: Mapping[str, int]) -> _Steps:
        tasks: dict[Any, int] = {}
        lanes: dict[Any, int] = {None: -1}
        parts: list[tuple[Any, ...]] = []
        for chunk in chunks:
            iid, bpmn, lane, kind, ready, started, done, ref = zip(*chunk, strict=True)
            case = np.fromiter(map(index.get, iid, repeat(-1)), dtype=np.int64, count=len(iid))
            keep = case >= 0
            task = _codes(bpmn, tasks)
            lane_code = _codes(lane, lanes)
            type_code = _kinds(kind)
            r, s, c = _millis(ready), _millis(started), _millis(done)
            parts.append(
                (
                    case[keep],
                    task[keep],
                    lane_code[keep],
                    type_code[keep],
                    r[keep],
                    s[keep],
                    c[keep],
                    np.array(ref, dtype=np.int64)[keep],
                )
            )
        return cls._sorted(parts, tuple(tasks), tuple(k for k in lanes if k is not None))

    @classmethod
    def _sorted(
        cls,
        parts: list[tuple[Any, ...]],
        task_ids: tuple[str, ...],
        lane_names: tuple[str, ...],
    ) -> _Steps:
        if parts:
            case, task, lane, kind, r, s, c, ref = (np.concatenate(col) for col in zip(*parts, strict=True))
        else:
            case, task, lane, kind, ref = (np.zeros(0, dtype=np.int64) for _ in range(5))
            r = s = c = np.zeros(0)
        order = np.lexsort((ref, r, c, case))
        kind = kind[order]
        container = kind == CONTAINER
        return cls._make(
            case[order], task[order], lane[order], container, kind == MANUAL,
            r[order], s[order], c[order], task_ids, lane_names,
        )  # fmt: skip

    @classmethod
    def _make(cls, case: Ints, *rest: Any) -> _Steps:
        first = np.searchsorted(case, case, side="left")
        position = np.arange(case.size, dtype=np.int64) - first
        return cls(case, *rest[:7], position, *rest[7:])  # type: ignore[call-arg]

    def only(self, keep: Bools) -> _Steps:
        """The steps where ``keep`` is true (order kept, positions renumbered)."""
        return _Steps._make(
            self.case[keep], self.task[keep], self.lane[keep], self.container[keep], self.manual[keep],
            self.ready[keep], self.started[keep], self.done[keep], self.task_ids, self.lane_names,
        )  # fmt: skip

    def per_case(
        self, n: int, settings: PilotSettings, variants: Sequence[str] = ()
    ) -> tuple[dict[str, Floats], Floats]:
        """Sums and counts per case (index 0..n-1), plus the time (s) each first reached a milestone.

        ``variants`` (per case) lets each variant's diagram decide its tasks' touchpoints.
        """
        timed = ~self.container
        case, manual = self.case, self.manual
        nt = max(1, len(self.task_ids))
        # Rework: rounds of a task beyond its first. Executions of one task that became ready at
        # the same instant are one activation (a parallel multi-instance), not rework.
        # One sort by (case and task, ready) gives both: a new ready time of the same task is a round.
        tc = case[timed] * nt + self.task[timed]
        ready = np.nan_to_num(self.ready[timed], nan=-1.0)
        by = np.lexsort((ready, tc))
        tc, ready = tc[by], ready[by]
        again = np.zeros(tc.size, dtype=np.bool_)
        again[1:] = (tc[1:] == tc[:-1]) & (ready[1:] != ready[:-1])
        rework = _per_case(tc[again] // nt, n)
        layers = [settings.layer(name) for name in self.lane_names] + [None]
        staff = np.array([layer in STAFF_LAYERS for layer in layers], dtype=np.bool_)
        customer = np.array([layer == "customer" for layer in layers], dtype=np.bool_)
        handed = manual & staff[self.lane]
        hc, hl = case[handed], self.lane[handed]
        change = (hc[1:] == hc[:-1]) & (hl[1:] != hl[:-1])
        out = {
            "touch_time": _per_case(case[timed], n, self.touch[timed]),
            "busy": self._busy(n, timed),
            "response_time": self._response(n, timed),
            "steps": _per_case(case[manual], n),
            "manual_steps": _per_case(case[manual], n),
            "automated_steps": _per_case(case[timed & ~manual], n),
            "handoffs": _per_case(hc[1:][change], n),
            "touchpoints": _per_case(case[timed], n, self._touchpoint(settings, variants)[timed]),
            "customer_effort": _per_case(case[timed], n, customer[self.lane][timed]),
            "rework": rework,
            "rework_rate": (rework > 0).astype(np.float64),
        }
        if settings.hourly_cost:
            rates = np.array([settings.hourly_cost.get(name.casefold(), 0.0) for name in self.lane_names] + [0.0])
            out["cost"] = _per_case(case[manual], n, (self.touch * rates[self.lane] / 3600.0)[manual])
        resolved = np.full(n, np.inf)
        milestone = np.array([t in settings.resolution for t in self.task_ids] + [False], dtype=np.bool_)
        hit = milestone[self.task] & ~np.isnan(self.done)
        np.minimum.at(resolved, case[hit], self.done[hit] / 1000.0)
        return out, np.where(np.isinf(resolved), np.nan, resolved)

    def _touchpoint(self, settings: PilotSettings, variants: Sequence[str] = ()) -> Bools:
        """Per step: settings.is_touchpoint(task, lane, variant), evaluated once per distinct triple.

        The variant matters only for variants with overrides of their own; the others share one code.
        """
        own = [v if v in settings.variant_touchpoints else None for v in variants]
        kinds: dict[str | None, int] = {None: 0}
        codes = np.array([kinds.setdefault(v, len(kinds)) for v in own] or [0], dtype=np.int64)
        names_of = list(kinds)
        nl = len(self.lane_names) + 1
        nt = max(1, len(self.task_ids))
        step_kind = codes[self.case] if len(own) and self.case.size else np.zeros(self.case.size, dtype=np.int64)
        triple = (step_kind * nt + self.task) * nl + self.lane + 1
        table = np.zeros(len(kinds) * nt * nl, dtype=np.bool_)
        names = (*self.lane_names, None)
        for p in np.flatnonzero(np.bincount(triple, minlength=table.size)).tolist():
            kind, rest = divmod(p, nt * nl)
            table[p] = settings.is_touchpoint(self.task_ids[rest // nl], names[rest % nl - 1], names_of[kind])
        return np.asarray(table[triple], dtype=np.bool_)

    def _busy(self, n: int, timed: Bools) -> Floats:
        """Per case: the length (s) of the union of its steps' started -> completed intervals.

        Sorted by (case, start), a running maximum of the ends tells how far the case was
        already covered; each interval adds only what sticks out beyond it. The running maximum
        is taken over all cases at once by lifting each case's times above the previous case's.
        """
        ok = timed & ~np.isnan(self.started) & ~np.isnan(self.done)
        case, s, c = self.case[ok], self.started[ok], self.done[ok]
        if case.size == 0:
            return np.zeros(n)
        order = np.lexsort((s, case))
        # Whole milliseconds in int64: exact however many cases are lifted.
        low = int(min(s.min(), c.min()))
        case = case[order]
        si, ci = s[order].astype(np.int64) - low, c[order].astype(np.int64) - low
        lift = case * (int(max(si.max(), ci.max())) + 1)
        reach = np.maximum.accumulate(ci + lift) - lift
        before = np.empty_like(reach)
        before[0] = -1
        before[1:] = np.where(case[1:] == case[:-1], reach[:-1], -1)
        added = np.clip(ci - np.maximum(si, before), 0, None)
        return _per_case(case, n, added / 1000.0)

    def _response(self, n: int, timed: Bools) -> Floats:
        """Per case: its first step's ready time to the first time any step started (s)."""
        first_ready = np.full(n, np.inf)
        first_start = np.full(n, np.inf)
        r, s = self.ready[timed], self.started[timed]
        np.minimum.at(first_ready, self.case[timed][~np.isnan(r)], r[~np.isnan(r)])
        np.minimum.at(first_start, self.case[timed][~np.isnan(s)], s[~np.isnan(s)])
        with np.errstate(invalid="ignore"):  # a case without timed steps: inf - inf
            out = (first_start - first_ready) / 1000.0
        return np.where(np.isfinite(out), out, np.nan)


#: Step kinds as :func:`flowrun.store.analytics.step_rows` gives them (or as read from a type name).
MANUAL, CONTAINER, AUTOMATED = 0, 1, 2


def _kinds(values: Sequence[Any]) -> Ints:
    """Step kinds: small integers as they are; BPMN type names mapped (other names are a person's task)."""
    try:
        return np.array(values, dtype=np.int64)
    except (TypeError, ValueError):
        names = {t: CONTAINER for t in CONTAINER_TYPES} | {t: AUTOMATED for t in AUTOMATED_TYPES}
        return np.fromiter((names.get(v, MANUAL) for v in values), dtype=np.int64, count=len(values))


def _codes(values: Sequence[Any], known: dict[Any, int]) -> Ints:
    """Small integer codes of ``values``; new values get the next code (``None`` may be pre-set)."""
    for value in sorted(set(values) - known.keys(), key=str):
        known[value] = len(known) - (None in known)
    return np.fromiter(map(known.__getitem__, values), dtype=np.int64, count=len(values))


def _per_case(case: Ints, n: int, weights: Any = None) -> Floats:
    """Per case 0..n-1: how many entries of ``case`` name it, or the sum of their ``weights``."""
    return np.asarray(np.bincount(case, weights=weights, minlength=n), dtype=np.float64)


def _samples(ids: tuple[str, ...], steps: _Steps) -> tuple[str, ...]:
    """For each task, the id of one case that ran it ("" when none of the kept cases did)."""
    out = [""] * len(steps.task_ids)
    tasks, first = np.unique(steps.task, return_index=True)
    for task, row in zip(tasks.tolist(), first.tolist(), strict=True):
        out[task] = ids[int(steps.case[row])]
    return tuple(out)
