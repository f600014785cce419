"""Per-case measures, computed column-wise with numpy from the rows the store reads.

A case's measures, from its completed steps (activities: user, manual, service, script,
business rule, send and receive tasks, call activities and subprocesses; never events or
gateways):

* cycle time: start of the case to its end;
* waiting time: ready -> started, summed over the steps; touch time: started -> completed,
  summed (a call activity's or subprocess's own time is left out: its inner steps carry it);
* steps: how many steps completed; rework: steps minus distinct steps (a step done twice counts 1);
* handoffs: the steps ordered by completion, then ready time, then record order, ignoring steps
  without a lane: how often the next step is in another lane than the one before;
* touchpoints: steps in a customer-facing lane (lane names compared without case);
* outcome fields of the case's final data (satisfaction, NPS answer, first-contact resolution),
  as numbers: booleans are 1 and 0; a missing or unreadable value is NaN.

Durations are in seconds, rounded to the millisecond (SQLite keeps milliseconds). Only
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

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

#: The measures every case has, with their units.
CASE_MEASURES = {
    "cycle_time": "s",
    "waiting_time": "s",
    "touch_time": "s",
    "steps": "count",
    "handoffs": "count",
    "touchpoints": "count",
    "rework": "count",
}

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


def measure(
    case_rows: Sequence[Sequence[Any]],
    step_chunks: Iterable[Sequence[Sequence[Any]]],
    fields: Sequence[str] = (),
    customer_lanes: Sequence[str] = (),
) -> Cases:
    """Compute every case's measures.

    Args:
        case_rows: per case: id, variant, pilot, status, start, end (epoch seconds), then one
            value per name in ``fields``.
        step_chunks: chunks of completed steps: instance id, task id, lane, container flag,
            ready, started, completed (epoch seconds), record id. Steps of cases not in
            ``case_rows``, or not completed, are ignored.
        fields: the data fields ``case_rows`` carries, in order.
        customer_lanes: lanes whose steps are customer touchpoints.
    """
    columns = list(zip(*case_rows, strict=True)) if case_rows else [()] * (6 + len(fields))
    ids = tuple(str(x) for x in columns[0])
    statuses = tuple(str(x) for x in columns[3])
    completed = np.array([s == "completed" for s in statuses], dtype=np.bool_)
    start, end = _millis(columns[4]) / 1000.0, _millis(columns[5]) / 1000.0
    steps = _Steps.read(step_chunks, {iid: i for i, iid in enumerate(ids) if completed[i]})
    n = len(ids)
    measures = steps.per_case(n, {lane.casefold() for lane in customer_lanes})
    measures = {"cycle_time": np.where(completed, end - start, np.nan), **measures}
    for name in ("waiting_time", "touch_time", "steps", "handoffs", "touchpoints", "rework"):
        measures[name] = np.where(completed, measures[name], np.nan)
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
    )


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
    """The completed steps of the kept cases, sorted by case, completion, ready time and record."""

    case: Ints
    task: Ints
    lane: Ints
    container: Bools
    waiting: Floats
    touch: Floats
    position: Ints
    task_ids: tuple[str, ...]
    lane_names: tuple[str, ...]

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
            iid, bpmn, lane, container, ready, started, done, ref = zip(*chunk, strict=True)
            case = np.fromiter(map(index.get, iid, repeat(-1)), dtype=np.int64, count=len(iid))
            keep = case >= 0
            task = _codes(bpmn, tasks)
            lane_code = _codes(lane, lanes)
            r, s, c = _millis(ready), _millis(started), _millis(done)
            parts.append(
                (
                    case[keep],
                    task[keep],
                    lane_code[keep],
                    np.array(container, dtype=np.bool_)[keep],
                    r[keep],
                    s[keep],
                    c[keep],
                    np.array(ref, dtype=np.int64)[keep],
                )
            )
        return cls._sorted(parts, tuple(tasks), tuple(k for k in lanes if k is not None))

    @classmethod
    def _sorted(cls, parts: list[tuple[Any, ...]], task_ids: tuple[str, ...], lane_names: tuple[str, ...]) -> _Steps:
        if parts:
            case, task, lane, container, r, s, c, ref = (np.concatenate(col) for col in zip(*parts, strict=True))
        else:
            case, task, lane, ref = (np.zeros(0, dtype=np.int64) for _ in range(4))
            container = np.zeros(0, dtype=np.bool_)
            r = s = c = np.zeros(0)
        order = np.lexsort((ref, r, c, case))
        case = case[order]
        first = np.searchsorted(case, case, side="left")
        return cls(
            case=case,
            task=task[order],
            lane=lane[order],
            container=container[order],
            waiting=np.nan_to_num((s - r)[order] / 1000.0),
            touch=np.nan_to_num((c - s)[order] / 1000.0),
            position=np.arange(case.size, dtype=np.int64) - first,
            task_ids=task_ids,
            lane_names=lane_names,
        )

    def per_case(self, n: int, customer: set[str]) -> dict[str, Floats]:
        """Sums and counts per case (index 0..n-1)."""
        timed = ~self.container
        steps = _per_case(self.case, n)
        pairs = np.sort(self.case * max(1, len(self.task_ids)) + self.task)
        distinct = pairs[np.diff(pairs, prepend=-1) != 0] // max(1, len(self.task_ids))
        customer_lane = np.array([name.casefold() in customer for name in self.lane_names] + [False], dtype=np.bool_)
        laned = self.lane >= 0
        lc, ll = self.case[laned], self.lane[laned]
        change = (lc[1:] == lc[:-1]) & (ll[1:] != ll[:-1])
        return {
            "waiting_time": _per_case(self.case[timed], n, self.waiting[timed]),
            "touch_time": _per_case(self.case[timed], n, self.touch[timed]),
            "steps": steps,
            "handoffs": _per_case(lc[1:][change], n),
            "touchpoints": _per_case(self.case, n, customer_lane[self.lane]),
            "rework": steps - _per_case(distinct, n),
        }


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
